// The span primitive on 32-byte vectors, shared by the AVX2 and AVX-512 kernels: each unit that
// includes it compiles its own copy (anonymous namespace) for its instruction set. The AVX-512
// kernel spans 32 bytes at a time too: most spans stop within their first 32 bytes, and where a
// 512-bit operation costs two 256-bit ones (AMD Zen 4), its 64-byte span made that kernel slower
// than AVX2 (bench/bench_sip_parse.cpp).
#pragma once

#include <immintrin.h>

#include "sipex/sip_scan.hpp"

namespace sipex {
namespace {

struct Avx2Span {
  // The SSE4.2 algorithm (sip_scan_sse42.cpp): bit i set iff byte i of the 32 at p is NOT in
  // the set.
  static uint32_t outside32(const char* p, __m256i lo_table) {
    const __m256i hi_bit = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, static_cast<char>(128), 0, 0, 0, 0, 0, 0, 0, 0,
                                            1, 2, 4, 8, 16, 32, 64, static_cast<char>(128), 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i rows = _mm256_shuffle_epi8(lo_table, _mm256_and_si256(v, low));
    const __m256i bit = _mm256_shuffle_epi8(hi_bit, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
    return static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(rows, bit), _mm256_setzero_si256())));
  }
  static __m256i table(const CharSet& set) {
    return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(set.by_low_nibble)));
  }
  // 32 bytes per step, then 16, then bytes. The first byte is tested on its own: many spans stop
  // there, and it spares the vector set-up.
  static const char* span(const char* p, const char* end, const CharSet& set) {
    if (p == end || !set.member[static_cast<unsigned char>(*p)]) return p;
    const __m256i lo_table = table(set);
    for (; end - p >= 32; p += 32) {
      const uint32_t out = outside32(p, lo_table);
      if (out != 0) return p + __builtin_ctz(out);
    }
    if (end - p >= 16) {
      const __m128i lo128 = _mm256_castsi256_si128(lo_table);
      const __m128i hi_bit = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, static_cast<char>(128), 0, 0, 0, 0, 0, 0, 0, 0);
      const __m128i l = _mm_set1_epi8(0x0F);
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i rows = _mm_shuffle_epi8(lo128, _mm_and_si128(v, l));
      const __m128i bit = _mm_shuffle_epi8(hi_bit, _mm_and_si128(_mm_srli_epi16(v, 4), l));
      const unsigned out =
          static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(rows, bit), _mm_setzero_si128())));
      if (out != 0) return p + __builtin_ctz(out);
      p += 16;
    }
    while (p < end && set.member[static_cast<unsigned char>(*p)]) ++p;
    return p;
  }
};

}  // namespace
}  // namespace sipex
