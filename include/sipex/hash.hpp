#pragma once
// Integer finalisers shared by the stages that hash on the hot path (flow affinity, the
// transaction table, the mirror-duplicate filter). Pure functions, no state: any thread.
#include <cstdint>

namespace sipex {

// MurmurHash3's 64-bit finaliser (fmix64): every input bit affects every output bit.
inline uint64_t mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

// MurmurHash3's 32-bit finaliser (fmix32).
inline uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

}  // namespace sipex
