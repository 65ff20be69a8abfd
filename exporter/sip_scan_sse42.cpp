#include <immintrin.h>

#include "sipex/sip_scan.hpp"

namespace sipex {

// 16 bytes per step. Two loads, one shifted by a byte: `cur` finds the '\n' bytes, `next` is
// classified with two nibble lookups (pshufb): a byte is a candidate start iff
// lo_table[low nibble] & hi_table[high nibble] != 0. Bit 1: c i l f (0x4_/0x6_ with low nibble
// 3 9 c 6); bit 2: v t (0x5_/0x7_ with low nibble 6 4); bit 4: CR LF (0x0_ with low nibble d a).
size_t find_candidates_sse42(const char* buf, size_t len, size_t from, uint32_t* out, size_t max) {
  size_t n = 0;
  size_t i = from;
  const __m128i nl = _mm_set1_epi8('\n');
  const __m128i low_mask = _mm_set1_epi8(0x0F);
  const __m128i lo_table = _mm_setr_epi8(0, 0, 0, 1, 2, 0, 3, 0, 0, 1, 4, 0, 1, 4, 0, 0);
  const __m128i hi_table = _mm_setr_epi8(4, 0, 0, 0, 1, 2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m128i zero = _mm_setzero_si128();
  for (; i + 17 <= len; i += 16) {
    const __m128i cur = _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf + i));
    const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf + i + 1));
    const __m128i lo = _mm_shuffle_epi8(lo_table, _mm_and_si128(next, low_mask));
    const __m128i hi = _mm_shuffle_epi8(hi_table, _mm_and_si128(_mm_srli_epi16(next, 4), low_mask));
    const __m128i not_class = _mm_cmpeq_epi8(_mm_and_si128(lo, hi), zero);
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_andnot_si128(not_class, _mm_cmpeq_epi8(cur, nl))));
    while (mask != 0) {
      const size_t p = i + static_cast<unsigned>(__builtin_ctz(mask));
      out[n++] = static_cast<uint32_t>(p);
      const char c = buf[p + 1];
      if (n == max || c == '\r' || c == '\n') return n;
      mask &= mask - 1;
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

// 16 bytes per step: the low nibble selects which high nibbles are members (by_low_nibble), the
// high nibble selects one bit (1 << h, none for h >= 8); a byte is a member iff the two meet.
const char* span_sse42(const char* p, const char* end, const CharSet& set) {
  const __m128i lo_table = _mm_load_si128(reinterpret_cast<const __m128i*>(set.by_low_nibble));
  const __m128i hi_bit = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, static_cast<char>(128), 0, 0, 0, 0, 0, 0, 0, 0);
  const __m128i low = _mm_set1_epi8(0x0F);
  const __m128i zero = _mm_setzero_si128();
  for (; end - p >= 16; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i rows = _mm_shuffle_epi8(lo_table, _mm_and_si128(v, low));
    const __m128i bit = _mm_shuffle_epi8(hi_bit, _mm_and_si128(_mm_srli_epi16(v, 4), low));
    const unsigned out = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(rows, bit), zero)));
    if (out != 0) return p + __builtin_ctz(out);
  }
  while (p < end && set.member[static_cast<unsigned char>(*p)]) ++p;
  return p;
}

}  // namespace sipex
