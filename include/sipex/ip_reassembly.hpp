// IPv4 and IPv6 fragment reassembly, one instance per worker (flows are worker-affine, so every
// fragment of a datagram reaches the same instance). Not thread-safe: the owning worker is the
// only caller; stats() may be read from any thread.
//
// Bounds: at most `max_datagrams` datagrams in progress and `max_bytes` of fragment storage;
// all memory is allocated at construction, none per fragment. Whatever cannot be completed is
// evicted and counted by reason. Cost per fragment: O(1) hash lookup plus work proportional to
// its length (no per-datagram fragment lists are walked, so tiny fragments cannot make it quadratic).
//
// Overlaps: an exact duplicate (same offset, length and bytes) is ignored; any other overlap
// gives the datagram up (RFC 5722, applied to IPv4 too as Linux does).
// Fragment offsets are multiples of 8 in both IP versions; anything else is `invalid`.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "sipex/decode.hpp"
#include "sipex/packet.hpp"

namespace sipex {

struct IpReassemblyLimits {
  uint32_t max_datagrams = 8192;            // datagrams in progress at once (at least 1 is used)
  uint32_t max_bytes = 16u << 20;           // fragment storage, used in 512-byte chunks: a fragment
                                            // takes the chunks its byte range touches
  int64_t timeout_ns = 30'000'000'000;      // a datagram not completed this long after its first fragment is evicted
};

// Why a datagram in progress was given up. Labels of sip_exporter_reassembly_evictions_total{kind="ip"}.
enum class FragmentEviction : uint8_t {
  timeout,     // not completed within timeout_ns (packet timestamps, so file replays are deterministic)
  table_full,  // max_datagrams in progress: the oldest is evicted to make room
  memory,      // max_bytes buffered: the oldest are evicted to make room
  overlap,     // overlapping fragments with different data (RFC 5722; Linux drops them for IPv4 too)
  too_large,   // the datagram would exceed 65535 bytes of payload
  invalid,     // inconsistent fragments: a second last fragment disagreeing on the length, data past the end
};
inline constexpr size_t kFragmentEvictionCount = 6;
std::string_view fragment_eviction_name(FragmentEviction e);

struct IpReassemblyStats {
  Counter fragments;                            // fragments given to add()
  Counter completed;                            // datagrams reassembled
  Counter duplicates;                           // exact duplicates of a fragment already held (ignored)
  Counter evicted[kFragmentEvictionCount];      // datagrams given up, by reason
  Counter evicted_fragments;                    // fragments thrown away with them (or arriving for a dropped datagram)
  std::atomic<uint32_t> datagrams{0};           // in progress now
  std::atomic<uint32_t> bytes{0};               // storage in use now (whole chunks), <= max_bytes
};

class IpReassembler {
 public:
  explicit IpReassembler(const IpReassemblyLimits& limits = {});
  ~IpReassembler();
  IpReassembler(const IpReassembler&) = delete;
  IpReassembler& operator=(const IpReassembler&) = delete;

  // The payload of a completed datagram: valid until the next call to add() or expire().
  struct Datagram {
    const uint8_t* data = nullptr;
    uint32_t len = 0;
    explicit operator bool() const { return data != nullptr; }
  };

  // Adds one fragment seen at `now_ns` (the packet's capture time). Returns the reassembled
  // payload when this fragment completes its datagram (key: version, src, dst, id, protocol),
  // else an empty Datagram. Exact duplicates are ignored; overlaps with different data evict the
  // datagram (as do `invalid` and `too_large`), and later fragments of it are dropped, counted in
  // evicted_fragments, for timeout_ns after that. Also evicts whatever has timed out by now_ns.
  // A fragment with offset 0 and no more fragments is a whole datagram and is returned at once.
  Datagram add(const IpFragment& f, int64_t now_ns);
  // Evicts datagrams whose first fragment is more than timeout_ns older than `now_ns`. Looks only
  // at the oldest entries: O(1) when nothing expired. Entries are aged in arrival order, so with
  // timestamps that go backwards an entry may expire late, never early.
  void expire(int64_t now_ns);

  const IpReassemblyStats& stats() const { return stats_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  IpReassemblyStats stats_;
};

}  // namespace sipex
