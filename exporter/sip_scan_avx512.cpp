// GCC 12's AVX-512 headers build some vectors from _mm512_undefined_*(), which -Wuninitialized
// reports when inlined (a known false positive); nothing here reads an undefined lane.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "sipex/sip_scan.hpp"

namespace sipex {

// The SSE4.2 algorithms (see sip_scan_sse42.cpp) on 64 bytes per step. Masked loads do not touch
// the bytes they leave out, so the last partial block needs no scalar tail and nothing past
// `len` (or `end`) is ever read.
namespace {

inline __mmask64 first_bytes(size_t n) { return n >= 64 ? ~__mmask64{0} : _bzhi_u64(~uint64_t{0}, static_cast<unsigned>(n)); }

}  // namespace

size_t find_candidates_avx512(const char* buf, size_t len, size_t from, uint32_t* out, size_t max) {
  size_t n = 0;
  if (from + 1 >= len) return 0;
  const __m512i nl = _mm512_set1_epi8('\n');
  const __m512i low_mask = _mm512_set1_epi8(0x0F);
  const __m512i lo_table = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 1, 2, 0, 3, 0, 0, 1, 4, 0, 1, 4, 0, 0));
  const __m512i hi_table = _mm512_broadcast_i32x4(_mm_setr_epi8(4, 0, 0, 0, 1, 2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0));
  // Candidates are '\n' bytes at [from, len - 1): each needs its next byte.
  for (size_t i = from; i + 1 < len; i += 64) {
    const __mmask64 in = first_bytes(len - 1 - i);
    const __m512i cur = _mm512_maskz_loadu_epi8(in, buf + i);
    const __m512i next = _mm512_maskz_loadu_epi8(in, buf + i + 1);
    const __m512i lo = _mm512_shuffle_epi8(lo_table, _mm512_and_si512(next, low_mask));
    const __m512i hi = _mm512_shuffle_epi8(hi_table, _mm512_and_si512(_mm512_srli_epi16(next, 4), low_mask));
    uint64_t mask = _mm512_mask_cmpeq_epi8_mask(_mm512_test_epi8_mask(lo, hi) & in, cur, nl);
    while (mask != 0) {
      const size_t p = i + static_cast<size_t>(_tzcnt_u64(mask));
      out[n++] = static_cast<uint32_t>(p);
      const char c = buf[p + 1];
      if (n == max || c == '\r' || c == '\n') return n;
      mask = _blsr_u64(mask);
    }
  }
  return n;
}

const char* span_avx512(const char* p, const char* end, const CharSet& set) {
  const __m512i lo_table = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(set.by_low_nibble)));
  const __m512i hi_bit = _mm512_broadcast_i32x4(
      _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, static_cast<char>(128), 0, 0, 0, 0, 0, 0, 0, 0));
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (; p < end; p += 64) {
    const __mmask64 in = first_bytes(static_cast<size_t>(end - p));
    const __m512i v = _mm512_maskz_loadu_epi8(in, p);
    const __m512i rows = _mm512_shuffle_epi8(lo_table, _mm512_and_si512(v, low));
    const __m512i bit = _mm512_shuffle_epi8(hi_bit, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
    const uint64_t out = _mm512_mask_testn_epi8_mask(in, rows, bit);
    if (out != 0) return p + _tzcnt_u64(out);
  }
  return end;
}

}  // namespace sipex
