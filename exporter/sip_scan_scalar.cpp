#include "sipex/sip_scan.hpp"

namespace sipex {

size_t find_candidates_scalar(const char* buf, size_t len, size_t from, uint32_t* out, size_t max) {
  size_t n = 0;
  for (size_t i = from; i + 1 < len; ++i) {
    if (buf[i] != '\n') continue;
    const auto next = static_cast<unsigned char>(buf[i + 1]);
    if (!is_candidate_start(next)) continue;
    out[n++] = static_cast<uint32_t>(i);
    if (n == max || next == '\r' || next == '\n') break;
  }
  return n;
}

const char* span_scalar(const char* p, const char* end, const CharSet& set) {
  while (p < end && set.member[static_cast<unsigned char>(*p)]) ++p;
  return p;
}

}  // namespace sipex
