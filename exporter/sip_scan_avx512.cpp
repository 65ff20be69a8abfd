// The AVX-512BW kernel: 64 bytes per vector. Masked loads do not touch the bytes they leave out,
// so a partial block needs no scalar tail and nothing past the end is ever read.
//
// GCC 12's AVX-512 headers build some vectors from _mm512_undefined_*(), which -Wuninitialized
// reports when inlined (a known false positive); nothing here reads an undefined lane.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "sip_parse_impl.hpp"

namespace sipex {
namespace {

struct Avx512Ops {
  static constexpr bool kFastPaths = true;
  static __mmask64 first_bytes(size_t n) {
    return n >= 64 ? ~__mmask64{0} : _bzhi_u64(~uint64_t{0}, static_cast<unsigned>(n));
  }
  static uint64_t newline_mask(const char* buf, size_t len, size_t base) {
    const __mmask64 in = first_bytes(len - base);
    return _mm512_mask_cmpeq_epi8_mask(in, _mm512_maskz_loadu_epi8(in, buf + base), _mm512_set1_epi8('\n'));
  }
  // The SSE4.2 algorithm (sip_scan_sse42.cpp) on 64 bytes per step: the low-nibble rows and
  // high-nibble bits of the bytes of v.
  static __m512i rows(__m512i v, const CharSet& set) {
    const __m512i lo_table = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(set.by_low_nibble)));
    return _mm512_shuffle_epi8(lo_table, _mm512_and_si512(v, _mm512_set1_epi8(0x0F)));
  }
  static __m512i bits(__m512i v) {
    const __m512i hi_bit = _mm512_broadcast_i32x4(
        _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, static_cast<char>(128), 0, 0, 0, 0, 0, 0, 0, 0));
    return _mm512_shuffle_epi8(hi_bit, _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F)));
  }
  // The first byte is tested on its own: many spans stop there, and it spares the vector set-up.
  static const char* span(const char* p, const char* end, const CharSet& set) {
    if (p == end || !set.member[static_cast<unsigned char>(*p)]) return p;
    for (; p < end; p += 64) {
      const __mmask64 in = first_bytes(static_cast<size_t>(end - p));
      const __m512i v = _mm512_maskz_loadu_epi8(in, p);
      const uint64_t out = _mm512_mask_testn_epi8_mask(in, rows(v, set), bits(v));
      if (out != 0) return p + _tzcnt_u64(out);
    }
    return end;
  }
};

}  // namespace

SIPEX_KERNEL_ENTRY_POINTS(avx512, Avx512Ops)

}  // namespace sipex
