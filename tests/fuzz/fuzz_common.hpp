// Shared by the libFuzzer targets (tests/fuzz/fuzz_*.cpp) and the seed extractor: the link-type
// selector byte, exact-size copies, buffers placed against an inaccessible page, and the check
// macro. Plain C++: nothing here depends on libFuzzer or GoogleTest.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace sipex::fuzz {

// The harness's own checking code needs no coverage feedback (only the code under test does), and
// libFuzzer's comparison tracing in its loops would cost most of the run time.
#if defined(__clang__)
#define FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_NO_COVERAGE
#endif

// A failed invariant: say which, then abort (libFuzzer saves the input as a crash).
#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

// The link types a selector byte picks, by `byte % kLinkSelectorCount`: every supported one
// (decode.hpp's LinkType), then one unsupported value. The seed extractor writes the index.
inline constexpr uint16_t kLinkSelector[] = {
    1,    // Ethernet
    113,  // Linux cooked v1 (SLL)
    276,  // Linux cooked v2 (SLL2)
    12,   // DLT_RAW
    0,    // BSD NULL
    108,  // OpenBSD LOOP
    228,  // IPv4
    229,  // IPv6
    101,  // LINKTYPE_RAW as a file says it
    147,  // DLT_USER0: unsupported
};
inline constexpr size_t kLinkSelectorCount = sizeof(kLinkSelector) / sizeof(kLinkSelector[0]);
inline uint16_t link_type(uint8_t selector) { return kLinkSelector[selector % kLinkSelectorCount]; }
// The selector of a pcap link type; -1 if it has none.
inline int link_selector(int linktype) {
  for (size_t i = 0; i < kLinkSelectorCount; ++i) {
    if (kLinkSelector[i] == linktype) return static_cast<int>(i);
  }
  return -1;
}

// An exact-size heap copy: new[] of exactly n bytes, so AddressSanitizer's redzone starts right
// at the end (a NUL-padded or rounded copy would hide an over-read).
class HeapCopy {
 public:
  HeapCopy(const void* p, size_t n) : p_(new uint8_t[n]), n_(n) {
    if (n != 0) std::memcpy(p_.get(), p, n);
  }
  const uint8_t* data() const { return p_.get(); }
  const char* chars() const { return reinterpret_cast<const char*>(p_.get()); }
  size_t size() const { return n_; }

 private:
  std::unique_ptr<uint8_t[]> p_;
  size_t n_;
};

// A reusable mapping with an inaccessible page on each side. place_back() puts bytes so that the
// last one is right before the upper PROT_NONE page; place_front() so that the first one is right
// after the lower one. Any read past either end faults at once, whatever the allocator does. Up
// to `capacity` bytes (rounded up to whole pages).
class GuardedArea {
 public:
  explicit GuardedArea(size_t capacity) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    data_pages_ = (capacity + page_ - 1) / page_ + 1;
    size_ = (data_pages_ + 2) * page_;
    void* m = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    base_ = static_cast<uint8_t*>(m);
    if (mprotect(base_, page_, PROT_NONE) != 0) std::abort();
    if (mprotect(base_ + (data_pages_ + 1) * page_, page_, PROT_NONE) != 0) std::abort();
  }
  ~GuardedArea() { munmap(base_, size_); }
  GuardedArea(const GuardedArea&) = delete;
  GuardedArea& operator=(const GuardedArea&) = delete;

  size_t capacity() const { return data_pages_ * page_; }
  const uint8_t* place_back(const void* p, size_t n) {
    if (n > capacity()) std::abort();
    uint8_t* d = base_ + (data_pages_ + 1) * page_ - n;
    if (n != 0) std::memcpy(d, p, n);
    return d;
  }
  const uint8_t* place_front(const void* p, size_t n) {
    if (n > capacity()) std::abort();
    uint8_t* d = base_ + page_;
    if (n != 0) std::memcpy(d, p, n);
    return d;
  }

 private:
  uint8_t* base_;
  size_t page_;
  size_t data_pages_;
  size_t size_;
};

// Reads a fuzz input front to back; past the end every read yields zeros.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool empty() const { return i_ >= n_; }
  size_t left() const { return i_ < n_ ? n_ - i_ : 0; }
  uint8_t u8() { return i_ < n_ ? p_[i_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() << 8 | u8()); }
  uint32_t u32() { return static_cast<uint32_t>(u16()) << 16 | u16(); }
  // Up to n bytes (fewer at the end of the input).
  const uint8_t* bytes(size_t n, size_t* got) {
    *got = n < left() ? n : left();
    const uint8_t* r = p_ + i_;
    i_ += *got;
    return r;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t i_ = 0;
};

}  // namespace sipex::fuzz
