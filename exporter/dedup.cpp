#include "sipex/dedup.hpp"
#include "sipex/hash.hpp"

#include <bit>
#include <cstring>

namespace sipex {
namespace {

// Addresses, ports, IPv4 identification, length, and the payload's first 64 and last 16 bytes:
// copies agree on all of them; two datagrams that differ almost surely differ in one.
uint64_t fingerprint(const Decoded& d) {
  uint64_t w[4];
  std::memcpy(w, d.src.bytes, 16);
  std::memcpy(w + 2, d.dst.bytes, 16);
  uint64_t h = mix64(w[0] ^ (w[1] * 3) ^ (w[2] * 5) ^ (w[3] * 7) ^
                   (uint64_t{d.sport} << 48 | uint64_t{d.dport} << 32 | uint64_t{d.ip_id} << 16 | d.ip_protocol));
  h = mix64(h ^ d.payload_len);
  const uint32_t head = d.payload_len < 64 ? d.payload_len : 64;
  for (uint32_t i = 0; i + 8 <= head; i += 8) {
    uint64_t x;
    std::memcpy(&x, d.payload + i, 8);
    h = mix64(h ^ x);
  }
  if (d.payload_len >= 16) {
    uint64_t x[2];
    std::memcpy(x, d.payload + d.payload_len - 16, 16);
    h = mix64(h ^ x[0] ^ (x[1] << 1));
  } else {
    // Short payloads: the head loop took the first 8 bytes (if there are 8); mix in the last
    // up-to-8 so every byte counts, without reading or writing past either buffer.
    const uint32_t n = d.payload_len < 8 ? d.payload_len : 8;
    uint64_t x = 0;
    if (n != 0) std::memcpy(&x, d.payload + d.payload_len - n, n);
    h = mix64(h ^ x);
  }
  return h | 1;  // never 0: 0 marks an empty slot
}

}  // namespace

DuplicateFilter::DuplicateFilter(int64_t window_ns, uint32_t slots) : window_ns_(window_ns) {
  const uint32_t cap = std::bit_ceil(slots < 16 ? 16u : slots);
  if (window_ns_ > 0) slots_.reset(new Slot[cap]());
  mask_ = cap - 1;
}

bool DuplicateFilter::duplicate(const Decoded& d, int64_t now_ns) {
  const uint64_t p = fingerprint(d);
  Slot& s = slots_[static_cast<uint32_t>(p >> 32) & mask_];
  const bool dup = s.print == p && now_ns - s.ts <= window_ns_ && now_ns >= s.ts;
  s.print = p;
  s.ts = now_ns;
  return dup;
}

}  // namespace sipex
