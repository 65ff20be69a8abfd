// The SIP parser's algorithm, written once. Each kernel translation unit
// (exporter/sip_scan_<isa>.cpp, compiled for its instruction set) defines an Ops type with two
// inline primitives and a switch, and instantiates parse_impl<Ops>:
//   static uint64_t newline_mask(const char* buf, size_t len, size_t base);   // NewlineMaskFn
//   static const char* span(const char* p, const char* end, const CharSet& set);  // SpanFn
//   static constexpr bool kFastPaths;
// with the contracts of sip_scan.hpp. kFastPaths is false only in the reference build
// (sip_parse_reference()), which runs the general algorithm alone: every fast path below must
// give exactly its answer, and the tests compare the two on every input they have.
//
// Everything here is in an anonymous namespace: each kernel unit gets its own copy with internal
// linkage, so code built for AVX2 is never what the linker picks for another unit. For the same
// reason this file uses no standard-library template that could be emitted out of line
// (string_view construction only).
#pragma once

#include <cstring>

#include "sipex/sip_parse.hpp"
#include "sipex/sip_scan.hpp"

namespace sipex {
namespace {

// RFC 3261 25.1 token characters.
struct TokenTable {
  bool t[256] = {};
  constexpr TokenTable() {
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (char c : std::string_view("-.!%*_+`'~")) t[static_cast<unsigned char>(c)] = true;
  }
};
constexpr TokenTable kToken;
inline bool is_token(char c) { return kToken.t[static_cast<unsigned char>(c)]; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
// Linear white space inside a (possibly folded) header value.
inline bool is_lws(char c) {  // SP, HT, CR, LF: one compare and a bit test
  const auto u = static_cast<unsigned char>(c);
  return u <= ' ' && ((uint64_t{0x100002600} >> u) & 1) != 0;
}
inline bool is_sp(char c) { return c == ' ' || c == '\t'; }
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline const char* skip_lws(const char* p, const char* e) {
  while (p < e && is_lws(*p)) ++p;
  return p;
}

enum class Header : uint8_t { none, call_id, cseq, via, content_length, from, to };

// The first letters of the header names the parser reads (either case), as bits, and kEnd for
// CR and LF, which start the empty line that ends the header section. A line whose first byte
// maps to none of the bits still wanted is passed over unread.
enum : uint8_t {
  kLetterC = 1, kLetterI = 2, kLetterV = 4, kLetterL = 8, kLetterF = 16, kLetterT = 32, kAllLetters = 63, kEnd = 64,
};
struct LetterTable {
  uint8_t bit[256] = {};
  constexpr LetterTable() {
    const char* letters = "civlft";
    for (int i = 0; i < 6; ++i) {
      bit[static_cast<unsigned char>(letters[i])] = static_cast<uint8_t>(1u << i);
      bit[static_cast<unsigned char>(letters[i] - 32)] = static_cast<uint8_t>(1u << i);
    }
    bit[static_cast<unsigned char>('\r')] = bit[static_cast<unsigned char>('\n')] = kEnd;
  }
};
constexpr LetterTable kLetters;

// A header or parameter name (lower case letters, digits and '-') as two 8-byte words for a
// compare of 16 bytes: `fold` has 0x20 on the letters, so OR-ing it lowers them and only them
// (OR-ing 0x20 into every byte would also turn CR into '-'), and `care` covers the name's bytes.
struct Name {
  uint64_t word[2] = {}, fold[2] = {}, care[2] = {};
  size_t n = 0;
  const char* text = nullptr;
  constexpr explicit Name(const char* lit) : text(lit) {
    while (lit[n] != 0) ++n;
    for (size_t i = 0; i < n; ++i) {
      const auto c = static_cast<uint64_t>(static_cast<unsigned char>(lit[i]));
      word[i / 8] |= c << (8 * (i % 8));
      if (c >= 'a' && c <= 'z') fold[i / 8] |= uint64_t{0x20} << (8 * (i % 8));
      care[i / 8] |= uint64_t{0xFF} << (8 * (i % 8));
    }
  }
};
constexpr Name kCallIdName{"call-id"}, kCseqName{"cseq"}, kContentLengthName{"content-length"}, kViaName{"via"},
    kFromName{"from"}, kToName{"to"}, kBranchName{"branch"}, kTagName{"tag"};

inline uint64_t load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// Whether [p, p + name.n) is `name`, case-insensitively. Reads p[0, 16) when `wide`, else only
// p[0, name.n).
inline bool name_eq(const char* p, const Name& name, bool wide) {
  if (wide) {
    if (((load8(p) | name.fold[0]) & name.care[0]) != name.word[0]) return false;
    return name.n <= 8 || ((load8(p + 8) | name.fold[1]) & name.care[1]) == name.word[1];
  }
  for (size_t i = 0; i < name.n; ++i) {
    if (lower(p[i]) != name.text[i]) return false;
  }
  return true;
}

// Whether the header name at p is `name` followed by SP, HT or ':'; on success *after is the
// first byte after the name. The buffer ends at `end`.
inline bool name_is(const char* p, const char* end, const Name& name, const char** after) {
  const size_t room = static_cast<size_t>(end - p);
  if (room <= name.n || !name_eq(p, name, room >= 16)) return false;
  const char t = p[name.n];
  if (t != ':' && !is_sp(t)) return false;
  *after = p + name.n;
  return true;
}

// Identifies the header whose line starts at p (the buffer ends at `end`) and sets *value to the
// first byte after the colon. Only the headers the counters need are recognised, each tried by
// its full and compact name; any other name costs a switch or a word compare.
inline Header identify_header(const char* p, const char* end, const char** value) {
  const char* ne = nullptr;
  Header h;
  switch (*p | 0x20) {
    case 'c': {
      // The second letter tells the three names apart ("c" alone is Content-Type's compact form).
      if (end - p < 2) return Header::none;
      const char second = static_cast<char>(p[1] | 0x20);
      if (second == 'a' && name_is(p, end, kCallIdName, &ne)) {
        h = Header::call_id;
      } else if (second == 's' && name_is(p, end, kCseqName, &ne)) {
        h = Header::cseq;
      } else if (second == 'o' && name_is(p, end, kContentLengthName, &ne)) {
        h = Header::content_length;
      } else {
        return Header::none;
      }
      break;
    }
    case 'i': h = Header::call_id; break;
    case 'l': h = Header::content_length; break;
    case 'v': h = Header::via; if (name_is(p, end, kViaName, &ne)) break; ne = nullptr; break;
    case 'f': h = Header::from; if (name_is(p, end, kFromName, &ne)) break; ne = nullptr; break;
    case 't': h = Header::to; if (name_is(p, end, kToName, &ne)) break; ne = nullptr; break;
    default: return Header::none;
  }
  if (ne == nullptr) {  // the compact form: the single letter
    if (h == Header::cseq || end - p < 2 || (p[1] != ':' && !is_sp(p[1]))) return Header::none;
    ne = p + 1;
  }
  if (ne < end && *ne == ':') {  // no white space before the colon, as usually written
    *value = ne + 1;
    return h;
  }
  while (ne < end && is_sp(*ne)) ++ne;
  if (ne == end || *ne != ':') return Header::none;
  *value = ne + 1;
  return h;
}

// Character sets for the span primitive: the bytes a scan may run over.
constexpr bool token_char(unsigned char c) { return kToken.t[c]; }
constexpr bool param_value_char(unsigned char c) { return kToken.t[c] || c == ':' || c == '[' || c == ']'; }
constexpr bool word_char(unsigned char c) { return c > 0x20 && c < 0x7F; }
// Inside header parameters: anything but what starts a parameter, ends a value or a line, or
// opens a quoted string.
constexpr bool param_scan_char(unsigned char c) {
  return c != ';' && c != ',' && c != '\r' && c != '\n' && c != '"';
}
// Inside a From/To value: anything but the above and '<' (a name-addr's URI).
constexpr bool addr_scan_char(unsigned char c) { return param_scan_char(c) && c != '<'; }
constexpr bool uri_char(unsigned char c) { return c != '>' && c != '\r' && c != '\n'; }
// Inside a quoted string: anything but its end, an escape, or a line break.
constexpr bool qdtext_char(unsigned char c) { return c != '"' && c != '\\' && c != '\r' && c != '\n'; }
constexpr CharSet kTokenSet = make_char_set(token_char);
constexpr CharSet kParamValueSet = make_char_set(param_value_char);
constexpr CharSet kWordSet = make_char_set(word_char);
constexpr CharSet kParamScanSet = make_char_set(param_scan_char);
constexpr CharSet kAddrScanSet = make_char_set(addr_scan_char);
constexpr CharSet kUriSet = make_char_set(uri_char);
constexpr CharSet kQdtextSet = make_char_set(qdtext_char);
template <class Ops>
struct Parser {
  // Runs over bytes of `set`, and over bytes >= 0x80 (UTF-8), which CharSet cannot hold but every
  // set here admits.
  static const char* span_utf8(const char* p, const char* e, const CharSet& set) {
    p = Ops::span(p, e, set);
    while (p < e && static_cast<unsigned char>(*p) >= 0x80) p = Ops::span(p + 1, e, set);
    return p;
  }

  // If p is at a line break followed by SP or HT (a folded header line, RFC 3261 7.3.1), the
  // position after the break; otherwise nullptr: the header ends at p.
  static const char* unfold(const char* p, const char* e) {
    const char* q = p + ((*p == '\r' && p + 1 < e && p[1] == '\n') ? 2 : 1);
    return (q < e && is_sp(*q)) ? q : nullptr;
  }

  // Skips white space within a header value, folded line breaks included.
  static const char* skip_ws(const char* p, const char* e) {
    for (;;) {
      while (p < e && is_sp(*p)) ++p;
      if (p == e || (*p != '\r' && *p != '\n')) return p;
      const char* q = unfold(p, e);
      if (q == nullptr) return p;
      p = q;
    }
  }

  // p at the opening '"'. Returns the position after the closing quote; for a quote left open,
  // the line break that ends the header value (or e), so a value never reaches into the next
  // header or the body. RFC 3261 25.1: qdtext may hold folded LWS, a quoted-pair never escapes CR
  // or LF.
  static const char* skip_quoted(const char* p, const char* e) {
    ++p;
    for (;;) {
      p = span_utf8(p, e, kQdtextSet);
      if (p == e) return p;
      const char c = *p;
      if (c == '"') return p + 1;
      if (c == '\\') {
        p += (p + 1 < e && p[1] != '\r' && p[1] != '\n') ? 2 : 1;
        continue;
      }
      const char* q = unfold(p, e);  // CR or LF
      if (q == nullptr) return p;
      p = q;
    }
  }

  // Finds parameter `name` among the ";name=value" parameters from p to the end of the header
  // value (its line, folds included) or its first ',' (the next value). Names are
  // case-insensitive; white space may surround ';' and '=' (RFC 3261 25.1 SEMI and EQUAL).
  static std::string_view find_param(const char* p, const char* e, const Name& name) {
    for (;;) {
      p = span_utf8(p, e, kParamScanSet);
      if (p == e || *p == ',') return {};
      if (*p == '"') {
        p = skip_quoted(p, e);
        continue;
      }
      if (*p != ';') {  // a line break: a fold goes on, anything else ends the value
        p = unfold(p, e);
        if (p == nullptr) return {};
        continue;
      }
      bool match;
      if (Ops::kFastPaths && static_cast<size_t>(e - p) > name.n + 17 && p[name.n + 1] == '=' &&
          name_eq(p + 1, name, true)) {
        // ";name=" as usually written: what the general steps below would find, without them.
        match = true;
        p += name.n + 1;
      } else {
        p = skip_ws(p + 1, e);
        const char* ns = p;
        p = Ops::span(p, e, kTokenSet);
        match = static_cast<size_t>(p - ns) == name.n && name_eq(ns, name, false);
        p = skip_ws(p, e);
        if (p == e || *p != '=') {
          if (match) return {};
          continue;
        }
      }
      p = skip_ws(p + 1, e);
      const char* vs = p;
      p = (p < e && *p == '"') ? skip_quoted(p, e) : Ops::span(p, e, kParamValueSet);
      if (match) return {vs, static_cast<size_t>(p - vs)};
    }
  }

  // The tag parameter of the From/To value [p, e) (header_tag()).
  static std::string_view from_to_tag(const char* p, const char* e) {
    for (;;) {
      p = span_utf8(p, e, kAddrScanSet);
      if (p == e || *p == ',') return {};
      switch (*p) {
        case '"': p = skip_quoted(p, e); break;
        case '<':
          p = span_utf8(p + 1, e, kUriSet);
          if (p == e || *p != '>') return {};
          ++p;
          break;
        case ';': return find_param(p, e, kTagName);
        default:
          p = unfold(p, e);
          if (p == nullptr) return {};
      }
    }
  }
};

// Reads 1*DIGIT at *p (bounded by e) and moves *p past it; false if there is no digit. *value is
// the number, or kTooLarge if it is above 2^31-1 (leading zeros do not count towards that).
// With `fast` and a buffer [lo, hi) of at least 8 bytes that holds [*p, e), a number of 1-7
// digits is read from one 8-byte load (SWAR): the 8 bytes at p, or near the buffer's end the last
// 8, shifted down; an empty [*p, e) and a number of 8 or more digits take the general loop.
constexpr uint64_t kTooLarge = ~uint64_t{0};
inline bool read_number(const char** pp, const char* e, const char* lo, const char* hi, bool fast, uint64_t* value) {
  const char* p = *pp;
  if (fast && hi - lo >= 8 && e > p) {
    constexpr uint64_t k01 = 0x0101010101010101;
    // Past hi the shifted word holds zero bytes, which are not digits. hi > p (as e > p), so the
    // shift is below 64.
    const uint64_t w = hi - p >= 8 ? load8(p) : load8(hi - 8) >> (8 * (8 - (hi - p)));
    // A byte is a digit iff its high nibble is 3 and its low nibble plus 6 stays below 16; x has
    // a non-zero byte exactly at the non-digits (its bytes are at most 0xF0: no carry below).
    const uint64_t x = ((w & (0xF0 * k01)) ^ (0x30 * k01)) | (((w & (0x0F * k01)) + 0x06 * k01) & (0x10 * k01));
    const uint64_t nondigit = (((x & (0x7F * k01)) + 0x7F * k01) | x) & (0x80 * k01);
    size_t n = nondigit == 0 ? 8 : static_cast<size_t>(__builtin_ctzll(nondigit)) >> 3;
    if (n > static_cast<size_t>(e - p)) n = static_cast<size_t>(e - p);
    if (n == 0) {
      *value = 0;
      return false;
    }
    if (n < 8) {  // at most 9,999,999: never kTooLarge, whatever the leading zeros
      // The digits' values, most significant first, moved to the top bytes (zeros above them);
      // a borrow from a non-digit byte only runs into the bytes shifted out.
      uint64_t d = (w - 0x30 * k01) << (8 * (8 - n));
      d = d * 10 + (d >> 8);  // pairs of digits
      d = (((d & 0x000000FF000000FF) * (100 + (uint64_t{1000000} << 32))) +
           (((d >> 16) & 0x000000FF000000FF) * (1 + (uint64_t{10000} << 32)))) >> 32;
      *pp = p + n;
      *value = d;
      return true;
    }
  }
  const char* const ds = p;
  while (p < e && *p == '0') ++p;
  const char* const ss = p;
  uint64_t v = 0;
  for (unsigned d; p < e && (d = static_cast<unsigned>(static_cast<unsigned char>(*p)) - '0') < 10; ++p) {
    v = v * 10 + d;  // no wrap: beyond 19 digits the count below decides
  }
  *pp = p;
  *value = (p - ss > 10 || v > 0x7fffffffu) ? kTooLarge : v;
  return p != ds;
}

// Parses "1*DIGIT LWS Method" in [p, e). The number is bounded: more than 2^31-1 marks it invalid
// instead of wrapping (RFC 3261 8.1.1.5; RFC 4475 scalar02/scalarlg).
// `end` is the buffer's end, beyond e (the value's end, a '\n' or end): a token never holds CR
// or LF, so the method's span may run to it and still stop by e, at vector width.
template <class Ops>
void parse_cseq(const char* p, const char* e, const char* buf, const char* end, SipMessage& m) {
  p = skip_lws(p, e);
  uint64_t v;
  if (!read_number(&p, e, buf, end, Ops::kFastPaths, &v)) return;
  const char* ws = p;
  p = skip_lws(p, e);
  if (p == ws) return;
  const char* ms = p;
  p = Ops::span(p, end, kTokenSet);
  if (p == ms) return;
  if (skip_lws(p, e) != e) return;
  m.has_cseq = true;
  m.cseq_number_valid = v != kTooLarge;
  m.cseq_number = v != kTooLarge ? static_cast<uint32_t>(v) : 0;
  m.cseq_method_token = {ms, static_cast<size_t>(p - ms)};
  m.cseq_method = classify_method(m.cseq_method_token);
}

// Returns false if [p, e) is not a decimal number below 2^31 (leading zeros allowed: RFC 3261
// 25.1 1*DIGIT), with LWS around it. The buffer [buf, end) holds [p, e).
template <class Ops>
bool parse_content_length(const char* p, const char* e, const char* buf, const char* end, int64_t* out) {
  p = skip_lws(p, e);
  uint64_t v;
  if (!read_number(&p, e, buf, end, Ops::kFastPaths, &v) || v == kTooLarge || skip_lws(p, e) != e) return false;  // no SIP message is that large
  *out = static_cast<int64_t>(v);
  return true;
}

// "SIP/" prefix, case-insensitively: RFC 3261 7.1 makes the version string case-insensitive.
// OR-ing 0x20 into the first three bytes maps only 'S'/'s', 'I'/'i' and 'P'/'p' to "sip".
inline bool sip_prefix(const char* p, size_t n) {
  if (n < 4) return false;
  uint32_t w;
  std::memcpy(&w, p, 4);
  uint32_t sip;
  std::memcpy(&sip, "sip/", 4);
  return (w | 0x00202020u) == sip;
}
inline bool is_sip20(const char* p, size_t n) {
  return n == 7 && sip_prefix(p, n) && p[4] == '2' && p[5] == '.' && p[6] == '0';
}
// "SIP/" 1*DIGIT "." 1*DIGIT: a SIP version, not necessarily 2.0.
inline bool is_sip_version(const char* p, size_t n) {
  if (n < 7 || !sip_prefix(p, n)) return false;
  size_t i = 4;
  const size_t a = i;
  while (i < n && is_digit(p[i])) ++i;
  if (i == a || i >= n || p[i] != '.') return false;
  const size_t b = ++i;
  while (i < n && is_digit(p[i])) ++i;
  return i > b && i == n;
}

// Parses the start line [b, e) (CR excluded).
template <class Ops>
ParseStatus parse_start_line(const char* b, const char* e, SipMessage& m) {
  const size_t n = static_cast<size_t>(e - b);
  if (sip_prefix(b, n)) {
    const char* sp = b + 4;
    if (Ops::kFastPaths && n >= 8 && load8(b) == load8("SIP/2.0 ")) {
      sp = b + 7;  // the usual spelling: where the general steps below stop
    } else {
      while (sp < e && *sp != ' ') ++sp;
      if (sp == e || !is_sip20(b, static_cast<size_t>(sp - b))) {
        return is_sip_version(b, static_cast<size_t>(sp - b)) ? ParseStatus::bad_version : ParseStatus::bad_start_line;
      }
    }
    const char* p = sp;
    while (p < e && *p == ' ') ++p;
    // Exactly three digits, then SP or the end of the line (RFC 4475 bigcode, noreason).
    if (e - p < 3 || !is_digit(p[0]) || !is_digit(p[1]) || !is_digit(p[2]) || (e - p > 3 && p[3] != ' ')) {
      return ParseStatus::bad_status_code;
    }
    const int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    if (code < 100 || code > 699) return ParseStatus::bad_status_code;
    m.is_request = false;
    m.status_code = static_cast<uint16_t>(code);
    p += 3;
    if (p < e) ++p;
    m.reason = {p, static_cast<size_t>(e - p)};
    return ParseStatus::ok;
  }
  // Request-Line: Method SP Request-URI SP SIP-Version. Extra SP between the elements and at the
  // end are tolerated (RFC 4475 lwsstart, trws, lwsruri): the first token is the method, the
  // last one the version.
  const char* p = Ops::span(b, e, kTokenSet);
  const std::string_view method(b, static_cast<size_t>(p - b));
  const char* vs;
  if (Ops::kFastPaths && e - p >= 8 && load8(e - 8) == load8(" SIP/2.0")) {
    vs = e - 7;  // the usual ending: what the general steps below find
  } else {
    while (e > p && is_sp(e[-1])) --e;
    vs = e;
    while (vs > p && !is_sp(vs[-1])) --vs;
  }
  const size_t vn = static_cast<size_t>(e - vs);
  const bool sip_shaped = sip_prefix(vs, vn);
  if (method.empty() || p == e || !is_sp(*p) || !sip_shaped) {
    const bool known = !method.empty() && classify_method(method) != Method::OTHER;
    if (method.empty() || p == e || !is_sp(*p)) {
      return (known || sip_shaped) ? ParseStatus::bad_start_line : ParseStatus::not_sip;
    }
    return known ? ParseStatus::bad_start_line : ParseStatus::not_sip;
  }
  if (!is_sip20(vs, vn)) return is_sip_version(vs, vn) ? ParseStatus::bad_version : ParseStatus::bad_start_line;
  const char* us = p;
  while (us < vs && is_sp(*us)) ++us;
  const char* ue = vs;
  while (ue > us && is_sp(ue[-1])) --ue;
  if (ue == us) return ParseStatus::bad_start_line;
  m.is_request = true;
  m.method_token = method;
  m.method = classify_method(method);
  m.request_uri = {us, static_cast<size_t>(ue - us)};
  return ParseStatus::ok;
}

// A stream prefix without a complete start line: could it still become one?
inline bool plausible_start_prefix(const char* b, size_t n) {
  static constexpr char kSip[] = "sip/2.0 ";
  const size_t k = n < 8 ? n : 8;
  bool sip = true;
  for (size_t i = 0; i < k; ++i) sip = sip && lower(b[i]) == kSip[i];
  if (sip) return true;
  size_t i = 0;
  while (i < n && is_token(b[i])) ++i;
  return i > 0 && (i == n || b[i] == ' ');
}

// The line structure of buf[0, len), 64 bytes at a time: one Ops::newline_mask() call per block
// gives the block's '\n' bytes, and shifted by one, the starts of its lines. Lines the parser
// passes over cost a bit scan each; no byte of theirs but the first is read.
template <class Ops>
class LineCursor {
 public:
  LineCursor(const char* buf, size_t len) : buf_(buf), len_(len) {
    nl_ = Ops::newline_mask(buf, len, 0);
    all_starts_ = (nl_ << 1) & valid();
    starts_ = 0;  // the start line's end (line_end) sets the first starts
  }

  // The start of the next line whose first byte's class (LetterTable) is in `wanted`, in
  // increasing order, below len; len once there is none. The lines before it are passed over.
  size_t next_wanted(uint8_t wanted) {
    for (;;) {
      uint64_t st = starts_;
      const size_t base = base_;
      while (st != 0) {
        const size_t s = base + static_cast<size_t>(__builtin_ctzll(st));
        st &= st - 1;
        if (kLetters.bit[static_cast<unsigned char>(buf_[s])] & wanted) {
          starts_ = st;
          return s;
        }
      }
      if (!advance()) return len_;
    }
  }

  // The '\n' that ends the line starting at `from` (the start of the last line next_wanted()
  // returned, or 0 before any), or len if there is none. With `folds`, a '\n' followed by SP or HT
  // does not end it: the next line continues it (RFC 3261 7.3.1). next_wanted() then goes on
  // with the lines after it.
  size_t line_end(size_t from, bool folds) {
    uint64_t m = nl_ & (~uint64_t{0} << (from - base_));
    for (;;) {
      while (m == 0) {
        if (!advance()) return len_;
        m = nl_;
      }
      const size_t q = base_ + static_cast<size_t>(__builtin_ctzll(m));
      m &= m - 1;
      if (folds && q + 1 < len_ && is_sp(buf_[q + 1])) continue;
      starts_ = all_starts_ & (~uint64_t{0} << (q - base_) << 1);
      return q;
    }
  }

 private:
  // Bits of the block at base_ that lie below len.
  uint64_t valid() const { return len_ - base_ >= 64 ? ~uint64_t{0} : (uint64_t{1} << (len_ - base_)) - 1; }
  // Moves to the next block; false (with no newlines and no starts left) past the end.
  bool advance() {
    const uint64_t carry = nl_ >> 63;  // a '\n' in the last byte starts a line in this block
    base_ += 64;
    if (base_ >= len_) {
      nl_ = 0;
      starts_ = all_starts_ = 0;
      return false;
    }
    nl_ = Ops::newline_mask(buf_, len_, base_);
    all_starts_ = ((nl_ << 1) | carry) & valid();
    starts_ = all_starts_;
    return true;
  }

  const char* buf_;
  size_t len_;
  size_t base_ = 0;
  uint64_t nl_;          // the '\n' bytes of the block at base_
  uint64_t all_starts_;  // the line starts of that block
  uint64_t starts_;      // those next_wanted() has not passed yet
};

struct HeaderState {
  uint8_t seen = 0;             // bit (1 << Header) once a header of that kind was applied
  bool bad_cl = false;
  bool conflicting_cl = false;  // a later Content-Length disagrees with the first
};
constexpr uint8_t bit_of(Header h) { return static_cast<uint8_t>(1u << static_cast<unsigned>(h)); }

// Applies the header whose value is [v, ve): ve is the '\n' that ends it (after any continuation
// lines) or the end of the buffer. The value parsers that stop at a line break by themselves
// (Call-ID, Via: their ve is just `end`) are bounded by `end`, so their SIMD scans run at full
// width. Only the first occurrence of each header counts (the top Via; RFC 4475 multi01's first
// CSeq); later ones never get here, except Content-Length on a stream, which is compared with the
// first so that ambiguous framing is refused. The buffer is [buf, end).
template <class Ops>
void apply_header(Header h, const char* v, const char* ve, const char* buf, const char* end, SipMessage& m, HeaderState& st) {
  using P = Parser<Ops>;
  const bool first = (st.seen & bit_of(h)) == 0;
  st.seen = static_cast<uint8_t>(st.seen | bit_of(h));
  switch (h) {
    case Header::call_id: {
      v = P::skip_ws(v, end);
      m.call_id = {v, static_cast<size_t>(P::span_utf8(v, end, kWordSet) - v)};
      break;
    }
    case Header::cseq: parse_cseq<Ops>(v, ve, buf, end, m); break;
    case Header::via: m.via_branch = P::find_param(v, end, kBranchName); break;
    case Header::content_length:
      if (first) {
        if (!parse_content_length<Ops>(v, ve, buf, end, &m.content_length)) st.bad_cl = true;
      } else {
        int64_t again = -1;
        if (!parse_content_length<Ops>(v, ve, buf, end, &again) || again != m.content_length) st.conflicting_cl = true;
      }
      break;
    case Header::from: m.from = {v, static_cast<size_t>(ve - v)}; break;
    case Header::to: m.to = {v, static_cast<size_t>(ve - v)}; break;
    case Header::none: break;
  }
}

// The letters whose lines need no reading any more, given the headers applied so far (`seen`,
// bits 1 << Header). A stream keeps reading Content-Length lines (to refuse conflicting ones); a
// datagram needs only the first.
constexpr uint8_t letters_done(uint8_t seen, Framing framing) {
  const bool call_id = seen & bit_of(Header::call_id);
  const bool cl = (seen & bit_of(Header::content_length)) && framing == Framing::datagram;
  const bool cseq = seen & bit_of(Header::cseq);
  uint8_t d = 0;
  if (call_id) d |= kLetterI;
  if (cl) d |= kLetterL;
  if (call_id && cl && cseq) d |= kLetterC;
  if (seen & bit_of(Header::via)) d |= kLetterV;
  if (seen & bit_of(Header::from)) d |= kLetterF;
  if (seen & bit_of(Header::to)) d |= kLetterT;
  return d;
}
// The line classes (LetterTable bits) still wanted after the headers `seen` (7 bits: Header::none
// is never applied), per framing: kEnd and the letters not done.
struct WantedTable {
  uint8_t w[2][128] = {};
  constexpr WantedTable() {
    for (unsigned s = 0; s < 128; ++s) {
      w[0][s] = static_cast<uint8_t>((kAllLetters & ~letters_done(static_cast<uint8_t>(s), Framing::datagram)) | kEnd);
      w[1][s] = static_cast<uint8_t>((kAllLetters & ~letters_done(static_cast<uint8_t>(s), Framing::stream)) | kEnd);
    }
  }
};
constexpr WantedTable kWanted;

// What parse_impl() starts each message from. Copied, not assigned: for `m = SipMessage{}` GCC
// emits rep stos, whose start-up was 5% of the parser's time in a replay profile (AMD EPYC);
// the copy is a dozen vector stores.
constexpr SipMessage kEmptyMessage{};

template <class Ops>
ParseStatus parse_impl(const char* buf, size_t len, Framing framing, SipMessage& m) {
  std::memcpy(static_cast<void*>(&m), &kEmptyMessage, sizeof m);
  if (len == 0 || !is_token(buf[0])) return ParseStatus::not_sip;
  const char* const end = buf + len;
  LineCursor<Ops> lines(buf, len);

  // Start line.
  const size_t nl = lines.line_end(0, false);
  if (nl == len && framing == Framing::stream) {
    return plausible_start_prefix(buf, len) ? ParseStatus::incomplete : ParseStatus::not_sip;
  }
  const char* sl_end = buf + nl;
  if (sl_end > buf && sl_end[-1] == '\r') --sl_end;
  const ParseStatus st = parse_start_line<Ops>(buf, sl_end, m);
  if (st != ParseStatus::ok) return st;
  if (nl == len) return ParseStatus::truncated_headers;  // the start line itself is unterminated

  // Header section. A line is read only if its first byte may start a header still wanted
  // (kLetters bits in `wanted`) or the empty line (kEnd); every other line costs a bit scan and
  // one table lookup. A header's value runs to the first line end not followed by SP or HT
  // (RFC 3261 7.3.1 folding): its continuation lines start with SP or HT, so they are never
  // wanted.
  HeaderState hs;
  const uint8_t* const wanted_after = kWanted.w[framing == Framing::stream];
  uint8_t wanted = kAllLetters | kEnd;
  size_t body = len;  // offset of the body; len when a datagram's end closes the header section
  bool terminated = false;
  for (;;) {
    const size_t s = lines.next_wanted(wanted);
    if (s == len) break;
    const char c = buf[s];
    if (kLetters.bit[static_cast<unsigned char>(c)] == kEnd) {
      if (c == '\n' || (s + 1 < len && buf[s + 1] == '\n')) {
        body = s + (c == '\n' ? 1 : 2);
        terminated = true;
        break;
      }
      continue;  // a lone CR: a line like any other
    }
    const char* v = nullptr;
    const Header h = identify_header(buf + s, end, &v);
    if (h == Header::none || ((hs.seen & bit_of(h)) != 0 && (h != Header::content_length || framing != Framing::stream))) {
      continue;
    }
    // The Call-ID and Via parsers stop at a line break by themselves; the others are given the
    // value's end. Continuation lines start with SP or HT, so next_wanted() passes over them.
    const size_t ve = (h == Header::call_id || h == Header::via) ? len : lines.line_end(s, true);
    apply_header<Ops>(h, v, buf + ve, buf, end, m, hs);
    wanted = wanted_after[hs.seen & 127];
  }
  if (!terminated) {
    // No empty line. A stream may still deliver it; a datagram's end closes the header section
    // only right after a line end (RFC 4475 baddn), otherwise the datagram was cut.
    if (framing == Framing::stream) return ParseStatus::incomplete;
    if (buf[len - 1] != '\n') return ParseStatus::truncated_headers;
  }

  if (!m.is_request) {
    if (!m.has_cseq) {
      // A response is labelled by its CSeq method: without a usable CSeq it cannot be counted.
      return (hs.seen & bit_of(Header::cseq)) ? ParseStatus::bad_cseq : ParseStatus::missing_cseq;
    }
    m.method = m.cseq_method;
    m.method_token = m.cseq_method_token;
  }
  // On a stream, disagreeing lengths leave no way to find the next message (RFC 4475 mcl01).
  if (hs.bad_cl || (hs.conflicting_cl && framing == Framing::stream)) return ParseStatus::bad_content_length;
  m.header_length = static_cast<uint32_t>(body);
  m.head = {buf, body};
  if (m.content_length >= 0) {
    const uint64_t need = static_cast<uint64_t>(body) + static_cast<uint64_t>(m.content_length);
    m.message_length = static_cast<uint32_t>(need);  // < 2^32: Content-Length is below 2^31
    if (need > len) return framing == Framing::stream ? ParseStatus::incomplete : ParseStatus::truncated_body;
  } else {
    if (framing == Framing::stream) return ParseStatus::missing_content_length;
    m.message_length = static_cast<uint32_t>(len);
  }
  return ParseStatus::ok;
}

}  // namespace
}  // namespace sipex

// Defines the exported entry points of one kernel (sip_scan.hpp) from its Ops type; used once,
// at namespace sipex scope, in each exporter/sip_scan_<isa>.cpp.
#define SIPEX_KERNEL_ENTRY_POINTS(isa, Ops)                                                                  \
  uint64_t newline_mask_##isa(const char* buf, size_t len, size_t base) { return Ops::newline_mask(buf, len, base); } \
  const char* span_##isa(const char* p, const char* end, const CharSet& set) { return Ops::span(p, end, set); }   \
  ParseStatus parse_sip_##isa(const char* buf, size_t len, Framing framing, SipMessage& out) {                   \
    return parse_impl<Ops>(buf, len, framing, out);                                                            \
  }
