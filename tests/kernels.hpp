// Test helpers: every supported scan kernel as a GoogleTest parameter, and exact-size buffers
// placed against an inaccessible page so that any over-read crashes at once.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "sipex/sip_scan.hpp"

namespace sipex::test {

inline std::vector<const ScanKernel*> supported_kernels() {
  size_t n = 0;
  const ScanKernel* ks = scan_kernels(&n);
  std::vector<const ScanKernel*> out;
  for (size_t i = 0; i < n; ++i) {
    if (ks[i].supported()) out.push_back(&ks[i]);
  }
  return out;
}

inline std::string kernel_param_name(const testing::TestParamInfo<const ScanKernel*>& info) {
  return info.param->name;
}

// Copies `bytes` so that its last byte is the last byte before a PROT_NONE page. The copy lives
// until the object is destroyed. Reading one byte past the end faults.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(std::string_view bytes) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t data_pages = (bytes.size() + page - 1) / page + 1;
    size_ = (data_pages + 1) * page;
    base_ = static_cast<char*>(mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED) throw std::runtime_error("mmap");
    char* guard = base_ + data_pages * page;
    if (mprotect(guard, page, PROT_NONE) != 0) throw std::runtime_error("mprotect");
    data_ = guard - bytes.size();
    std::memcpy(data_, bytes.data(), bytes.size());
    len_ = bytes.size();
  }
  ~GuardedBuffer() { munmap(base_, size_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  const char* data() const { return data_; }
  size_t size() const { return len_; }

 private:
  char* base_;
  size_t size_;
  char* data_;
  size_t len_;
};

}  // namespace sipex::test
