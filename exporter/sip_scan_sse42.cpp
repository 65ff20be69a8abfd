// The SSE4.2 kernel: 16 bytes per vector.
#include <immintrin.h>

#include "sip_parse_impl.hpp"

namespace sipex {
namespace {

struct Sse42Ops {
  static constexpr bool kFastPaths = true;
  static uint64_t nl16(const char* p) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));
  }
  static uint64_t nl64(const char* p) {
    return nl16(p) | nl16(p + 16) << 16 | nl16(p + 32) << 32 | nl16(p + 48) << 48;
  }
  // A tail shorter than 64 bytes is read as the last 64 bytes of the buffer, shifted down (bytes
  // before `base` were read before); only a buffer shorter than 64 bytes is read byte by byte.
  static uint64_t newline_mask(const char* buf, size_t len, size_t base) {
    const size_t n = len - base;
    if (n >= 64) return nl64(buf + base);
    if (len >= 64) return nl64(buf + len - 64) >> (64 - n);
    uint64_t m = 0;
    for (size_t i = 0; i < n; ++i) m |= uint64_t{buf[base + i] == '\n'} << i;
    return m;
  }
  // The low nibble selects which high nibbles are members (by_low_nibble), the high nibble
  // selects one bit (1 << h, none for h >= 8); a byte is a member iff the two meet.
  // Bit i set iff byte i of the 16 at p is NOT in the set.
  static unsigned outside16(const char* p, __m128i lo_table) {
    const __m128i hi_bit = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, static_cast<char>(128), 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i low = _mm_set1_epi8(0x0F);
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i rows = _mm_shuffle_epi8(lo_table, _mm_and_si128(v, low));
    const __m128i bit = _mm_shuffle_epi8(hi_bit, _mm_and_si128(_mm_srli_epi16(v, 4), low));
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(rows, bit), _mm_setzero_si128())));
  }
  // The first byte is tested on its own: many spans stop there, and it spares the vector set-up.
  static const char* span(const char* p, const char* end, const CharSet& set) {
    if (p == end || !set.member[static_cast<unsigned char>(*p)]) return p;
    const __m128i lo_table = _mm_load_si128(reinterpret_cast<const __m128i*>(set.by_low_nibble));
    for (; end - p >= 16; p += 16) {
      const unsigned out = outside16(p, lo_table);
      if (out != 0) return p + __builtin_ctz(out);
    }
    while (p < end && set.member[static_cast<unsigned char>(*p)]) ++p;
    return p;
  }
};

}  // namespace

SIPEX_KERNEL_ENTRY_POINTS(sse42, Sse42Ops)

}  // namespace sipex
