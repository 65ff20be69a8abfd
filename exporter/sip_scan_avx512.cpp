// The AVX-512BW kernel: a block's newline mask is one 64-byte compare, and a partial block's one
// masked load, which does not touch the bytes it leaves out (nothing past the end is read). Spans
// run on 32-byte vectors (sip_span_avx2.hpp says why).
//
// GCC 12's AVX-512 headers build some vectors from _mm512_undefined_*(), which -Wuninitialized
// reports when inlined (a known false positive); nothing here reads an undefined lane.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // clang (the fuzz build) has no such group, and would warn about it
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "sip_parse_impl.hpp"
#include "sip_span_avx2.hpp"

namespace sipex {
namespace {

struct Avx512Ops : Avx2Span {
  static constexpr bool kFastPaths = true;
  static uint64_t newline_mask(const char* buf, size_t len, size_t base) {
    const __m512i nl = _mm512_set1_epi8('\n');
    const size_t n = len - base;
    if (n >= 64) return _mm512_cmpeq_epi8_mask(_mm512_loadu_si512(buf + base), nl);
    const __mmask64 in = _bzhi_u64(~uint64_t{0}, static_cast<unsigned>(n));
    return _mm512_mask_cmpeq_epi8_mask(in, _mm512_maskz_loadu_epi8(in, buf + base), nl);
  }
};

}  // namespace

SIPEX_KERNEL_ENTRY_POINTS(avx512, Avx512Ops)

}  // namespace sipex
