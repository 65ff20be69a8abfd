#include <immintrin.h>

#include "sipex/sip_scan.hpp"

namespace sipex {

// The SSE4.2 algorithm on 32 bytes per step (vpshufb looks up within each 128-bit lane, so the
// nibble tables are repeated in both lanes). See sip_scan_sse42.cpp for the classification.
size_t find_candidates_avx2(const char* buf, size_t len, size_t from, uint32_t* out, size_t max) {
  size_t n = 0;
  size_t i = from;
  const __m256i nl = _mm256_set1_epi8('\n');
  const __m256i low_mask = _mm256_set1_epi8(0x0F);
  const __m256i lo_table = _mm256_setr_epi8(0, 0, 0, 1, 2, 0, 3, 0, 0, 1, 4, 0, 1, 4, 0, 0,
                                            0, 0, 0, 1, 2, 0, 3, 0, 0, 1, 4, 0, 1, 4, 0, 0);
  const __m256i hi_table = _mm256_setr_epi8(4, 0, 0, 0, 1, 2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0,
                                            4, 0, 0, 0, 1, 2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i zero = _mm256_setzero_si256();
  for (; i + 33 <= len; i += 32) {
    const __m256i cur = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(buf + i));
    const __m256i next = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(buf + i + 1));
    const __m256i lo = _mm256_shuffle_epi8(lo_table, _mm256_and_si256(next, low_mask));
    const __m256i hi = _mm256_shuffle_epi8(hi_table, _mm256_and_si256(_mm256_srli_epi16(next, 4), low_mask));
    const __m256i not_class = _mm256_cmpeq_epi8(_mm256_and_si256(lo, hi), zero);
    uint32_t mask = static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_andnot_si256(not_class, _mm256_cmpeq_epi8(cur, nl))));
    while (mask != 0) {
      const size_t p = i + static_cast<unsigned>(__builtin_ctz(mask));
      out[n++] = static_cast<uint32_t>(p);
      const char c = buf[p + 1];
      if (n == max || c == '\r' || c == '\n') return n;
      mask = _blsr_u32(mask);
    }
  }
  for (; i + 1 < len; ++i) {
    if (buf[i] != '\n') continue;
    const auto next = static_cast<unsigned char>(buf[i + 1]);
    if (!is_candidate_start(next)) continue;
    out[n++] = static_cast<uint32_t>(i);
    if (n == max || next == '\r' || next == '\n') break;
  }
  return n;
}

// The SSE4.2 algorithm (see sip_scan_sse42.cpp) on 32 bytes per step, then 16, then bytes.
const char* span_avx2(const char* p, const char* end, const CharSet& set) {
  const __m128i lo128 = _mm_load_si128(reinterpret_cast<const __m128i*>(set.by_low_nibble));
  const __m256i lo_table = _mm256_broadcastsi128_si256(lo128);
  const __m256i hi_bit = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, static_cast<char>(128), 0, 0, 0, 0, 0, 0, 0, 0,
                                          1, 2, 4, 8, 16, 32, 64, static_cast<char>(128), 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i zero = _mm256_setzero_si256();
  for (; end - p >= 32; p += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i rows = _mm256_shuffle_epi8(lo_table, _mm256_and_si256(v, low));
    const __m256i bit = _mm256_shuffle_epi8(hi_bit, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
    const auto out = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(rows, bit), zero)));
    if (out != 0) return p + __builtin_ctz(out);
  }
  if (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i l = _mm_set1_epi8(0x0F);
    const __m128i rows = _mm_shuffle_epi8(lo128, _mm_and_si128(v, l));
    const __m128i bit = _mm_shuffle_epi8(_mm256_castsi256_si128(hi_bit), _mm_and_si128(_mm_srli_epi16(v, 4), l));
    const unsigned out =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(rows, bit), _mm_setzero_si128())));
    if (out != 0) return p + __builtin_ctz(out);
    p += 16;
  }
  while (p < end && set.member[static_cast<unsigned char>(*p)]) ++p;
  return p;
}

}  // namespace sipex
