// The scalar kernel: plain byte loops, the reference the SIMD kernels are tested against.
#include "sip_parse_impl.hpp"

namespace sipex {
namespace {

struct ScalarOps {
  static constexpr bool kFastPaths = true;
  static uint64_t newline_mask(const char* buf, size_t len, size_t base) {
    const size_t n = len - base < 64 ? len - base : 64;
    uint64_t m = 0;
    for (size_t i = 0; i < n; ++i) m |= uint64_t{buf[base + i] == '\n'} << i;
    return m;
  }
  static const char* span(const char* p, const char* end, const CharSet& set) {
    while (p < end && set.member[static_cast<unsigned char>(*p)]) ++p;
    return p;
  }
};

// The general algorithm alone: the reference the fast paths are tested against.
struct ReferenceOps : ScalarOps {
  static constexpr bool kFastPaths = false;
};

}  // namespace

SIPEX_KERNEL_ENTRY_POINTS(scalar, ScalarOps)
ParseStatus parse_sip_reference(const char* buf, size_t len, Framing framing, SipMessage& out) {
  return parse_impl<ReferenceOps>(buf, len, framing, out);
}

std::string_view header_tag(std::string_view value) {
  return Parser<ReferenceOps>::from_to_tag(value.data(), value.data() + value.size());
}

}  // namespace sipex
