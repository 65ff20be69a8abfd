// Mirror duplicates: a SPAN session that copies both a port's ingress and egress (or two ports a
// packet crosses) delivers the same IP packet twice within microseconds. When enabled, a worker
// counts such a datagram once. A SIP retransmission is not a duplicate: it is sent at least T1
// (500 ms) later and, over IPv4, carries a new IP identification.
//
// A direct-mapped table of recent fingerprints: lookups and inserts are one probe, memory is
// fixed; a collision can only make a duplicate go unnoticed, never drop a distinct packet whose
// fingerprint differs. Not thread-safe: one per worker.
#pragma once

#include <cstdint>
#include <memory>

#include "sipex/decode.hpp"

namespace sipex {

class DuplicateFilter {
 public:
  // window_ns 0 disables the filter.
  explicit DuplicateFilter(int64_t window_ns, uint32_t slots = 4096);
  bool enabled() const { return window_ns_ > 0; }
  // Whether an identical datagram (addresses, ports, IPv4 identification, payload) was seen in
  // the last window_ns before now_ns. Records this one either way.
  bool duplicate(const Decoded& d, int64_t now_ns);

 private:
  struct Slot {
    uint64_t print;
    int64_t ts;
  };
  int64_t window_ns_;
  std::unique_ptr<Slot[]> slots_;
  uint32_t mask_;
};

}  // namespace sipex
