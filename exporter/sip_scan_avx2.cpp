// The AVX2 kernel: 32 bytes per vector (vpshufb looks up within each 128-bit lane, so the nibble
// tables are repeated in both lanes).
#include <immintrin.h>

#include "sip_parse_impl.hpp"
#include "sip_span_avx2.hpp"

namespace sipex {
namespace {

struct Avx2Ops : Avx2Span {
  static constexpr bool kFastPaths = true;
  static uint64_t nl32(const char* p) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('\n'))));
  }
  // A tail shorter than 64 bytes is read as the last 64 bytes of the buffer, shifted down (bytes
  // before `base` were read before); only a buffer shorter than 64 bytes is read byte by byte.
  static uint64_t newline_mask(const char* buf, size_t len, size_t base) {
    const size_t n = len - base;
    if (n >= 64) return nl32(buf + base) | nl32(buf + base + 32) << 32;
    if (len >= 64) return (nl32(buf + len - 64) | nl32(buf + len - 32) << 32) >> (64 - n);
    uint64_t m = 0;
    for (size_t i = 0; i < n; ++i) m |= uint64_t{buf[base + i] == '\n'} << i;
    return m;
  }
};

}  // namespace

SIPEX_KERNEL_ENTRY_POINTS(avx2, Avx2Ops)

}  // namespace sipex
