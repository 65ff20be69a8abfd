// libFuzzer target: the SIP parser and its SIMD kernels.
//
// The input is one buffer. It is copied to an exact-size heap block (new[] of exactly its size,
// so AddressSanitizer's redzone starts at its end) and to a mapping where it ends right before a
// PROT_NONE page, and starts right after one (over-reads the allocator's rounding would hide).
// Then, for every kernel this CPU supports (scan_kernels()):
//   - parse_sip in both framings, on every copy: the status and every SipMessage field (views by
//     offset and length) must equal parse_sip_reference()'s (the general algorithm without the
//     kernels' fast paths) on the heap copy;
//   - the result must keep parse_sip's contract: every field inside the start line and header
//     section (never from the body or what follows the message), message_length and
//     header_length consistent with the framing and Content-Length, codes and methods in range;
//     a message that stream framing accepts must parse identically as a datagram of its own length;
//   - span() for several character sets (the parser's, and one taken from the input) and
//     start/end positions must equal span_scalar's answer (computed for every start in one pass,
//     and checked against span_scalar itself); newline_mask() at every base below 200 and every
//     64th after must equal the mask computed from the bytes.
// Any difference aborts (a crash for libFuzzer).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "sipex/sip_parse.hpp"
#include "sipex/sip_scan.hpp"

using namespace sipex;
using sipex::fuzz::GuardedArea;
using sipex::fuzz::HeapCopy;

namespace {

constexpr size_t kMaxInput = 1 << 20;

std::vector<const ScanKernel*> supported_kernels() {
  size_t n = 0;
  const ScanKernel* ks = scan_kernels(&n);
  std::vector<const ScanKernel*> out;
  for (size_t i = 0; i < n; ++i) {
    if (ks[i].supported()) out.push_back(&ks[i]);
  }
  // scan_kernels() lists the scalar kernel first: the reference.
  if (out.empty() || std::string_view(out[0]->name) != "scalar") std::abort();
  return out;
}

// Character sets like the parser's (sip_parse.cpp), and the edge cases.
bool tok(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-.!%*_+`'~").find(static_cast<char>(c)) != std::string_view::npos;
}
bool word(unsigned char c) { return c > 0x20 && c < 0x7F; }
bool param_scan(unsigned char c) { return c != ';' && c != ',' && c != '\r' && c != '\n' && c != '"'; }
bool uri(unsigned char c) { return c != '>' && c != '\r' && c != '\n'; }
bool digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool lws(unsigned char c) { return c == ' ' || c == '\t'; }
bool none(unsigned char) { return false; }
bool ascii(unsigned char) { return true; }  // make_char_set keeps only bytes below 0x80

const CharSet kSets[] = {make_char_set(tok),   make_char_set(word),  make_char_set(param_scan),
                         make_char_set(uri),   make_char_set(digit), make_char_set(lws),
                         make_char_set(none),  make_char_set(ascii)};

// A set taken from 16 input bytes: the low-nibble table, and the member table derived from it.
FUZZ_NO_COVERAGE CharSet set_from(const uint8_t* p) {
  CharSet s{};
  for (unsigned c = 0; c < 128; ++c) {
    if (p[c & 15] >> (c >> 4) & 1) {
      s.member[c] = true;
      s.by_low_nibble[c & 15] = static_cast<uint8_t>(s.by_low_nibble[c & 15] | (1u << (c >> 4)));
    }
  }
  return s;
}

struct View {
  bool empty;
  size_t off, len;
  bool operator==(const View& o) const { return empty == o.empty && (empty || (off == o.off && len == o.len)); }
};
FUZZ_NO_COVERAGE View view(std::string_view v, const char* base) {
  if (v.empty()) return {true, 0, 0};
  return {false, static_cast<size_t>(v.data() - base), v.size()};
}

FUZZ_NO_COVERAGE void check_view_inside(std::string_view v, const char* base, size_t len) {
  if (v.empty()) return;
  FUZZ_CHECK(v.data() >= base && v.data() + v.size() <= base + len);
}

FUZZ_NO_COVERAGE bool same(const SipMessage& a, const char* abase, const SipMessage& b, const char* bbase) {
  return a.is_request == b.is_request && a.method == b.method &&
         view(a.method_token, abase) == view(b.method_token, bbase) &&
         view(a.request_uri, abase) == view(b.request_uri, bbase) && a.status_code == b.status_code &&
         view(a.reason, abase) == view(b.reason, bbase) && a.has_cseq == b.has_cseq &&
         a.cseq_number_valid == b.cseq_number_valid && a.cseq_number == b.cseq_number &&
         a.cseq_method == b.cseq_method && view(a.cseq_method_token, abase) == view(b.cseq_method_token, bbase) &&
         view(a.call_id, abase) == view(b.call_id, bbase) && view(a.via_branch, abase) == view(b.via_branch, bbase) &&
         view(a.from, abase) == view(b.from, bbase) && view(a.to, abase) == view(b.to, bbase) &&
         a.content_length == b.content_length && view(a.head, abase) == view(b.head, bbase) &&
         a.header_length == b.header_length && a.message_length == b.message_length;
}

FUZZ_NO_COVERAGE void report(const char* what, const ScanKernel& k, Framing f, ParseStatus s1, ParseStatus s2) {
  std::fprintf(stderr, "%s: kernel %s, framing %s: the reference says %d, the kernel %d\n", what, k.name,
               f == Framing::stream ? "stream" : "datagram", static_cast<int>(s1), static_cast<int>(s2));
}

// parse_sip's contract for one result.
FUZZ_NO_COVERAGE void check_contract(const char* buf, size_t len, Framing f, ParseStatus st, const SipMessage& m) {
  const bool filled = st == ParseStatus::ok || (st == ParseStatus::incomplete && m.header_length != 0);
  if (!filled) return;
  FUZZ_CHECK(m.header_length <= len);
  // Every field lies in the start line or the header section: nothing comes from the body or
  // from bytes after the message.
  for (std::string_view v : {m.method_token, m.request_uri, m.reason, m.cseq_method_token, m.call_id, m.via_branch,
                             m.from, m.to}) {
    check_view_inside(v, buf, m.header_length);
  }
  // A tag lies inside its header value.
  for (std::string_view v : {m.from, m.to}) {
    const std::string_view t = header_tag(v);
    FUZZ_CHECK(t.empty() || (t.data() >= v.data() && t.data() + t.size() <= v.data() + v.size()));
  }
  FUZZ_CHECK(m.head.data() == buf && m.head.size() == m.header_length);
  FUZZ_CHECK(m.header_length <= m.message_length);
  FUZZ_CHECK(m.content_length >= -1);
  if (m.content_length >= 0) {
    FUZZ_CHECK(m.message_length == uint64_t{m.header_length} + static_cast<uint64_t>(m.content_length));
  } else {
    FUZZ_CHECK(f == Framing::datagram && m.message_length == len);
  }
  if (st == ParseStatus::ok) {
    FUZZ_CHECK(m.message_length <= len);
  } else {
    FUZZ_CHECK(f == Framing::stream && m.message_length > len);
  }
  if (m.is_request) {
    FUZZ_CHECK(!m.method_token.empty() && m.method == classify_method(m.method_token));
    FUZZ_CHECK(m.status_code == 0);
  } else {
    FUZZ_CHECK(m.status_code >= 100 && m.status_code <= 699);
    FUZZ_CHECK(m.has_cseq);
    FUZZ_CHECK(m.method == m.cseq_method);
  }
  if (m.has_cseq) FUZZ_CHECK(m.cseq_method == classify_method(m.cseq_method_token));
  if (m.cseq_number_valid) FUZZ_CHECK(m.cseq_number <= 0x7FFFFFFFu);
}

FUZZ_NO_COVERAGE void check_parse(const std::vector<const ScanKernel*>& kernels, const HeapCopy& heap, const char* back,
                 const char* front) {
  const size_t len = heap.size();
  for (Framing f : {Framing::datagram, Framing::stream}) {
    SipMessage ref;
    const ParseStatus rs = parse_sip_reference(heap.chars(), len, f, ref);
    check_contract(heap.chars(), len, f, rs, ref);
    for (const ScanKernel* k : kernels) {
      const char* bases[] = {heap.chars(), back, front};
      for (const char* base : bases) {
        SipMessage m;
        const ParseStatus s = parse_sip(base, len, f, m, *k);
        if (s != rs || !same(ref, heap.chars(), m, base)) {
          report("parse_sip differs", *k, f, rs, s);
          std::abort();
        }
      }
    }
    // A message framed in a stream is the same message as a datagram of exactly its bytes.
    if (f == Framing::stream && rs == ParseStatus::ok) {
      const HeapCopy prefix(heap.data(), ref.message_length);
      SipMessage d;
      const ParseStatus ds = parse_sip(prefix.chars(), prefix.size(), Framing::datagram, d, *kernels[0]);
      if (ds != ParseStatus::ok || !same(ref, heap.chars(), d, prefix.chars())) {
        report("stream-framed message parses differently as a datagram", *kernels[0], Framing::datagram, rs, ds);
        std::abort();
      }
    }
  }
}

// The buffers the kernels run on: the heap copy (where the scalar reference runs) and the two
// guarded copies. Offsets are compared, not pointers.
struct Buffers {
  const char* bufs[3];
  size_t len;
};

FUZZ_NO_COVERAGE void check_span(const std::vector<const ScanKernel*>& kernels, const Buffers& b, const CharSet& set) {
  const size_t len = b.len;
  const char* ref = b.bufs[0];
  // The answer for every start, in one backward pass: next[i] = first position >= i whose byte is
  // not in the set (len if none). With an earlier end E the answer is min(next[i], E).
  static std::vector<uint32_t> next;
  next.resize(len + 1);
  next[len] = static_cast<uint32_t>(len);
  for (size_t i = len; i-- > 0;) {
    next[i] = set.member[static_cast<unsigned char>(ref[i])] ? next[i + 1] : static_cast<uint32_t>(i);
  }
  // span_scalar agrees with it (checked at a few starts: the scalar loop is slow under coverage
  // tracing); every other kernel is checked at all the starts below.
  for (size_t from : {size_t{0}, len / 2, len > 0 ? len - 1 : 0}) {
    FUZZ_CHECK(static_cast<size_t>(span_scalar(ref + from, ref + len, set) - ref) == next[from]);
  }
  // Start positions: the first vector alignments, the edges of 16-, 32- and 64-byte vectors, the
  // middle, and close to the end; ends: the buffer's end, and a few bytes short of it.
  size_t starts[16];
  size_t ns = 0;
  for (size_t i : {size_t{0}, size_t{1}, size_t{7}, size_t{15}, size_t{16}, size_t{31}, size_t{32}, size_t{33},
                   size_t{63}, size_t{64}}) {
    starts[ns++] = i;
  }
  starts[ns++] = len / 2;
  for (size_t back : {size_t{65}, size_t{33}, size_t{17}, size_t{1}}) starts[ns++] = len > back ? len - back : 0;
  for (size_t si = 0; si < ns; ++si) {
    const size_t from = starts[si];
    if (from > len) continue;
    for (size_t cut : {size_t{0}, size_t{1}, size_t{33}}) {
      if (cut > len - from) continue;
      const size_t to = len - cut;
      const size_t want = std::min<size_t>(next[from], to);
      for (size_t ki = 1; ki < kernels.size(); ++ki) {
        const ScanKernel* k = kernels[ki];
        for (const char* buf : b.bufs) {
          const char* got = k->span(buf + from, buf + to, set);
          if (static_cast<size_t>(got - buf) != want) {
            std::fprintf(stderr, "span differs: kernel %s, start %zu, end %zu: scalar %zu, kernel %zd\n", k->name,
                         from, to, want, got - buf);
            std::abort();
          }
        }
      }
    }
  }
}

FUZZ_NO_COVERAGE void check_newlines(const std::vector<const ScanKernel*>& kernels, const Buffers& b) {
  const size_t len = b.len;
  const char* ref = b.bufs[0];
  // Every 64-byte window the parser asks for, plus windows at odd bases (a short tail read as the
  // buffer's last 64 bytes, shifted down), checked bit by bit against the bytes themselves.
  for (size_t base = 0; base < len; base += (base < 200 ? 1 : 64)) {
    uint64_t want = 0;
    for (size_t i = 0; i < 64 && base + i < len; ++i) want |= uint64_t{ref[base + i] == '\n'} << i;
    for (const ScanKernel* k : kernels) {
      for (const char* buf : b.bufs) {
        const uint64_t got = k->newline_mask(buf, len, base);
        if (got != want) {
          std::fprintf(stderr, "newline_mask differs: kernel %s, len %zu, base %zu: %016llx vs %016llx\n", k->name,
                       len, base, static_cast<unsigned long long>(want), static_cast<unsigned long long>(got));
          std::abort();
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<const ScanKernel*> kernels = supported_kernels();
  static GuardedArea back_area(kMaxInput), front_area(kMaxInput);
  if (size > kMaxInput) return 0;

  const HeapCopy heap(data, size);
  const char* back = reinterpret_cast<const char*>(back_area.place_back(data, size));
  const char* front = reinterpret_cast<const char*>(front_area.place_front(data, size));

  check_parse(kernels, heap, back, front);

  const Buffers b{{heap.chars(), back, front}, size};
  for (const CharSet& set : kSets) check_span(kernels, b, set);
  if (size >= 16) check_span(kernels, b, set_from(data));
  check_newlines(kernels, b);
  return 0;
}
