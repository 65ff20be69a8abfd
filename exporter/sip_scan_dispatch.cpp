#include <cstdlib>
#include <cstring>

#include "sipex/sip_scan.hpp"

namespace sipex {
namespace {

bool always() { return true; }
bool has_sse42() { return __builtin_cpu_supports("sse4.2"); }
// Every instruction set the kernel's unit is compiled with (CMakeLists.txt): the whole parser is
// built there, so the compiler may use any of them anywhere (BMI2 shifts, for one).
bool has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
}
bool has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("bmi") &&
         __builtin_cpu_supports("bmi2");
}

const ScanKernel kKernels[] = {
    {"scalar", parse_sip_scalar, newline_mask_scalar, span_scalar, always},
    {"sse42", parse_sip_sse42, newline_mask_sse42, span_sse42, has_sse42},
    {"avx2", parse_sip_avx2, newline_mask_avx2, span_avx2, has_avx2},
    {"avx512", parse_sip_avx512, newline_mask_avx512, span_avx512, has_avx512},
};

const char* g_selection_error = nullptr;

const ScanKernel& choose() {
  const char* want = std::getenv("SIPEX_KERNEL");
  if (want != nullptr && *want != '\0') {
    if (const ScanKernel* k = find_kernel(want)) return *k;
    g_selection_error = "SIPEX_KERNEL names no kernel this CPU supports (scalar, sse42, avx2, avx512); using the best one";
  }
  for (size_t i = sizeof(kKernels) / sizeof(kKernels[0]); i-- > 0;) {
    if (kKernels[i].supported()) return kKernels[i];
  }
  return kKernels[0];
}

}  // namespace

const ScanKernel* scan_kernels(size_t* count) {
  *count = sizeof(kKernels) / sizeof(kKernels[0]);
  return kKernels;
}

const ScanKernel* find_kernel(const char* name) {
  for (const ScanKernel& k : kKernels) {
    if (std::strcmp(k.name, name) == 0) return k.supported() ? &k : nullptr;
  }
  return nullptr;
}

const ScanKernel& active_kernel() {
  static const ScanKernel& k = choose();
  return k;
}

const char* kernel_selection_error() {
  (void)active_kernel();
  return g_selection_error;
}

}  // namespace sipex
