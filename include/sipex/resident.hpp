#pragma once
// Memory for the writer-private indexes the workers probe at random (KeyIndex in aggregate.hpp).
//
// Why not calloc: a probe reads a slot before the first write to its page, so every page of a
// calloc'd table was first mapped to the shared zero page and then copied on the first write, and
// that copy flushes the TLB of every CPU the process runs on (an inter-processor interrupt per
// page). Measured on a 32 MB series table filled by a file replay: about a quarter of the whole
// run's CPU time went to those faults. Random probing touches nearly every page of an index soon
// anyway, so the memory is made resident when the index is created: one write fault per page, no
// copy, no flush. Arrays of 2 MiB and more are aligned to 2 MiB and asked for transparent huge
// pages (where the kernel allows them), which also spares the random probes most TLB misses.
// Only for arrays whose size follows what was counted: sized from a configured limit, an array
// would make that limit resident at start-up. Such an array (a transaction or stream index) is
// made with Touch::lazy instead: no page is touched up front, but it is still aligned and asked
// for huge pages, so where the kernel gives them the zero-page copies and their TLB flushes come
// once per 2 MiB instead of once per 4 KiB page (without them, it is calloc's behaviour).
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace sipex {

// Whether ResidentArray makes its pages resident when it is created (now) or leaves each to its
// first touch (lazy).
enum class Touch : uint8_t { now, lazy };

// n zero-initialised objects of T (trivially constructible and destructible), resident from the
// start unless `touch` is lazy, freed by the destructor. Move-only. Not thread-safe in itself: the
// owner decides who touches what.
template <class T>
class ResidentArray {
  static_assert(std::is_trivially_default_constructible_v<T> && std::is_trivially_destructible_v<T>);

 public:
  ResidentArray() = default;
  explicit ResidentArray(size_t n, Touch touch = Touch::now) {
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t bytes = (n == 0 ? 1 : n) * sizeof(T);
    const bool huge = bytes >= kHuge;
    map_len_ = huge ? (bytes + kHuge - 1) / kHuge * kHuge + kHuge : bytes;
    void* m = mmap(nullptr, map_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    map_ = static_cast<char*>(m);
    char* p = map_;
    if (huge) {
      p = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(map_) + kHuge - 1) & ~(kHuge - 1));
      madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without THP the table is still resident
    }
    // One write per page makes it resident and private (anonymous pages are zero-filled).
    if (touch == Touch::now) {
      for (size_t off = 0; off < bytes; off += 4096) p[off] = 0;
    }
    data_ = reinterpret_cast<T*>(p);
  }
  ~ResidentArray() {
    if (map_ != nullptr) munmap(map_, map_len_);
  }
  ResidentArray(ResidentArray&& o) noexcept : map_(o.map_), map_len_(o.map_len_), data_(o.data_) {
    o.map_ = nullptr;
    o.data_ = nullptr;
  }
  ResidentArray& operator=(ResidentArray&& o) noexcept {
    std::swap(map_, o.map_);
    std::swap(map_len_, o.map_len_);
    std::swap(data_, o.data_);
    return *this;
  }
  ResidentArray(const ResidentArray&) = delete;
  ResidentArray& operator=(const ResidentArray&) = delete;

  T& operator[](size_t i) const { return data_[i]; }
  T* get() const { return data_; }
  explicit operator bool() const { return data_ != nullptr; }

 private:
  char* map_ = nullptr;
  size_t map_len_ = 0;
  T* data_ = nullptr;
};

}  // namespace sipex
