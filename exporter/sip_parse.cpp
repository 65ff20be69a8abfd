#include "sipex/sip_parse.hpp"

#include <cstring>

namespace sipex {
namespace {

constexpr std::string_view kMethodNames[kMethodCount] = {
    "INVITE", "ACK",   "BYE",   "CANCEL",  "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE",
    "NOTIFY", "UPDATE", "MESSAGE", "REFER", "PUBLISH", "INFO",    "OTHER",
};

constexpr std::string_view kReasons[kParseStatusCount] = {
    "", "", "", "bad_start_line", "bad_version", "bad_status_code", "missing_cseq", "bad_cseq",
    "bad_content_length", "missing_content_length", "truncated_body", "truncated_headers",
};

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
inline bool is_lws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
inline bool is_sp(char c) { return c == ' ' || c == '\t'; }
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool iequals(const char* p, size_t n, std::string_view lit) {
  if (n != lit.size()) return false;
  for (size_t i = 0; i < n; ++i) {
    if (lower(p[i]) != lit[i]) return false;
  }
  return true;
}

const char* skip_lws(const char* p, const char* e) {
  while (p < e && is_lws(*p)) ++p;
  return p;
}
const char* skip_token(const char* p, const char* e) {
  while (p < e && is_token(*p)) ++p;
  return p;
}

enum class Header : uint8_t { none, call_id, cseq, via, content_length, from, to };

// Identifies the header whose line starts at p (the buffer ends at ce) and sets *value to the
// first byte after the colon. Only the headers the counters need are recognised; the first
// character decides cheaply whether the name is worth reading.
// Whether the header name at p is `lit` (lower case letters and '-'), case-insensitively,
// followed by SP, HT or ':'; on success *after is the first byte after the name. Compares eight
// bytes at a time: OR-ing 0x20 into every byte lowers letters and leaves '-' alone, so each word
// is one compare.
bool name_is(const char* p, const char* end, std::string_view lit, const char** after) {
  const size_t n = lit.size();
  if (static_cast<size_t>(end - p) <= n) return false;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t a, b;
    std::memcpy(&a, p + i, 8);
    std::memcpy(&b, lit.data() + i, 8);
    if ((a | 0x2020202020202020ull) != b) return false;
  }
  for (; i < n; ++i) {
    if ((p[i] | 0x20) != lit[i]) return false;
  }
  const char t = p[n];
  if (t != ':' && !is_sp(t)) return false;
  *after = p + n;
  return true;
}

// Identifies the header whose line starts at p (the buffer ends at `end`) and sets *value to the
// first byte after the colon. Only the headers the counters need are recognised, each tried by
// its full and compact name; any other name costs a switch or a word compare.
Header identify_header(const char* p, const char* end, const char** value) {
  const char* ne = nullptr;
  Header h;
  switch (*p | 0x20) {
    case 'c':
      if (name_is(p, end, "call-id", &ne)) {
        h = Header::call_id;
      } else if (name_is(p, end, "cseq", &ne)) {
        h = Header::cseq;
      } else if (name_is(p, end, "content-length", &ne)) {
        h = Header::content_length;
      } else {
        return Header::none;
      }
      break;
    case 'i': h = Header::call_id; break;
    case 'l': h = Header::content_length; break;
    case 'v': h = Header::via; if (name_is(p, end, "via", &ne)) break; ne = nullptr; break;
    case 'f': h = Header::from; if (name_is(p, end, "from", &ne)) break; ne = nullptr; break;
    case 't': h = Header::to; if (name_is(p, end, "to", &ne)) break; ne = nullptr; break;
    default: return Header::none;
  }
  if (ne == nullptr) {  // the compact form: the single letter
    if (h == Header::cseq || end - p < 2 || (p[1] != ':' && !is_sp(p[1]))) return Header::none;
    ne = p + 1;
  }
  while (ne < end && is_sp(*ne)) ++ne;
  if (ne == end || *ne != ':') return Header::none;
  *value = ne + 1;
  return h;
}

// Character sets for the SIMD span kernel (sip_scan.hpp): the bytes a scan may run over.
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
constexpr CharSet kTokenSet = make_char_set(token_char);
constexpr CharSet kParamValueSet = make_char_set(param_value_char);
constexpr CharSet kWordSet = make_char_set(word_char);
constexpr CharSet kParamScanSet = make_char_set(param_scan_char);
constexpr CharSet kAddrScanSet = make_char_set(addr_scan_char);
constexpr CharSet kUriSet = make_char_set(uri_char);

// Runs over bytes of `set`, and over bytes >= 0x80 (UTF-8), which CharSet cannot hold but every
// set here admits.
inline const char* span_utf8(const ScanKernel& k, const char* p, const char* e, const CharSet& set) {
  p = k.span(p, e, set);
  while (p < e && static_cast<unsigned char>(*p) >= 0x80) p = k.span(p + 1, e, set);
  return p;
}

// If p is at a line break followed by SP or HT (a folded header line, RFC 3261 7.3.1), the
// position after the break; otherwise nullptr: the header ends at p.
inline const char* unfold(const char* p, const char* e) {
  const char* q = p + ((*p == '\r' && p + 1 < e && p[1] == '\n') ? 2 : 1);
  return (q < e && is_sp(*q)) ? q : nullptr;
}

// Skips white space within a header value, folded line breaks included.
const char* skip_ws(const char* p, const char* e) {
  for (;;) {
    while (p < e && is_sp(*p)) ++p;
    if (p == e || (*p != '\r' && *p != '\n')) return p;
    const char* q = unfold(p, e);
    if (q == nullptr) return p;
    p = q;
  }
}

// p at the opening '"'. Returns the position after the closing quote; for a quote left open, the
// line break that ends the header value (or e), so a value never reaches into the next header or
// the body. RFC 3261 25.1: qdtext may hold folded LWS, a quoted-pair never escapes CR or LF.
const char* skip_quoted(const char* p, const char* e) {
  ++p;
  while (p < e) {
    const char c = *p;
    if (c == '"') return p + 1;
    if (c == '\r' || c == '\n') {
      const char* q = unfold(p, e);
      if (q == nullptr) return p;
      p = q;
    } else {
      p += (c == '\\' && p + 1 < e && p[1] != '\r' && p[1] != '\n') ? 2 : 1;
    }
  }
  return p;
}

// Finds parameter `name` (lower case) among the ";name=value" parameters from p to the end of the
// header value (its line, folds included) or its first ',' (the next value). Names are
// case-insensitive; white space may surround ';' and '=' (RFC 3261 25.1 SEMI and EQUAL).
std::string_view find_param(const ScanKernel& k, const char* p, const char* e, std::string_view name) {
  for (;;) {
    p = span_utf8(k, p, e, kParamScanSet);
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
    p = skip_ws(p + 1, e);
    const char* ns = p;
    p = k.span(p, e, kTokenSet);
    const bool match = iequals(ns, static_cast<size_t>(p - ns), name);
    p = skip_ws(p, e);
    if (p == e || *p != '=') {
      if (match) return {};
      continue;
    }
    p = skip_ws(p + 1, e);
    const char* vs = p;
    p = (p < e && *p == '"') ? skip_quoted(p, e) : k.span(p, e, kParamValueSet);
    if (match) return {vs, static_cast<size_t>(p - vs)};
  }
}

// The tag parameter of a From/To value: the first ';' outside a quoted display name and outside
// <...> starts the header parameters (RFC 3261 20.10).
std::string_view from_to_tag(const ScanKernel& k, const char* p, const char* e) {
  for (;;) {
    p = span_utf8(k, p, e, kAddrScanSet);
    if (p == e || *p == ',') return {};
    switch (*p) {
      case '"': p = skip_quoted(p, e); break;
      case '<':
        p = span_utf8(k, p + 1, e, kUriSet);
        if (p == e || *p != '>') return {};
        ++p;
        break;
      case ';': return find_param(k, p, e, "tag");
      default:
        p = unfold(p, e);
        if (p == nullptr) return {};
    }
  }
}

// Parses "1*DIGIT LWS Method". The number is bounded: more than 2^31-1 marks it invalid instead
// of wrapping (RFC 3261 8.1.1.5; RFC 4475 scalar02/scalarlg).
void parse_cseq(const char* p, const char* e, SipMessage& m) {
  p = skip_lws(p, e);
  const char* ds = p;
  uint64_t v = 0;
  bool overflow = false;
  while (p < e && is_digit(*p)) {
    if (!overflow) {
      v = v * 10 + static_cast<uint64_t>(*p - '0');
      if (v > 0x7fffffffu) overflow = true;
    }
    ++p;
  }
  if (p == ds) return;
  const char* ws = p;
  p = skip_lws(p, e);
  if (p == ws) return;
  const char* ms = p;
  p = skip_token(p, e);
  if (p == ms) return;
  if (skip_lws(p, e) != e) return;
  m.has_cseq = true;
  m.cseq_number_valid = !overflow;
  m.cseq_number = overflow ? 0 : static_cast<uint32_t>(v);
  m.cseq_method_token = {ms, static_cast<size_t>(p - ms)};
  m.cseq_method = classify_method(m.cseq_method_token);
}

// Returns false if the value is not a decimal number below 2^31 (leading zeros allowed:
// RFC 3261 25.1 1*DIGIT).
bool parse_content_length(const char* p, const char* e, int64_t* out) {
  p = skip_lws(p, e);
  const char* ds = p;
  int64_t v = 0;
  while (p < e && is_digit(*p)) {
    v = v * 10 + (*p - '0');
    if (v > 0x7fffffff) return false;  // no SIP message is that large
    ++p;
  }
  if (p == ds || skip_lws(p, e) != e) return false;
  *out = v;
  return true;
}

// The end of the header value starting at v: the '\n' ending its line, following continuation
// lines (RFC 3261 7.3.1 folding); `end` if the buffer ends first. The value parsers treat CR and LF
// inside it as white space.
const char* value_end(const char* v, const char* end) {
  for (const char* p = v;;) {
    const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (nl == nullptr) return end;
    if (nl + 1 == end || !is_sp(nl[1])) return nl;
    p = nl + 1;
  }
}

struct HeaderState {
  uint8_t seen = 0;             // bit (1 << Header) once a header of that kind was applied
  bool bad_cl = false;
  bool conflicting_cl = false;  // a later Content-Length disagrees with the first
};

// Applies the header whose value starts at v. Only the first occurrence of each header counts
// (the top Via; RFC 4475 multi01's first CSeq); later ones cost a flag test, except Content-Length,
// which is compared with the first so that a stream can refuse ambiguous framing.
void apply_header(const ScanKernel& k, Header h, const char* v, const char* end, SipMessage& m, HeaderState& st) {
  const auto bit = static_cast<uint8_t>(1u << static_cast<unsigned>(h));
  const bool first = (st.seen & bit) == 0;
  if (!first && h != Header::content_length) return;
  st.seen |= bit;
  switch (h) {
    case Header::call_id: {
      v = skip_ws(v, end);
      m.call_id = {v, static_cast<size_t>(span_utf8(k, v, end, kWordSet) - v)};
      break;
    }
    case Header::cseq: parse_cseq(v, value_end(v, end), m); break;
    case Header::via: m.via_branch = find_param(k, v, end, "branch"); break;
    case Header::content_length: {
      const char* ve = value_end(v, end);
      if (first) {
        if (!parse_content_length(v, ve, &m.content_length)) st.bad_cl = true;
      } else {
        int64_t again = -1;
        if (!parse_content_length(v, ve, &again) || again != m.content_length) st.conflicting_cl = true;
      }
      break;
    }
    case Header::from: m.from_tag = from_to_tag(k, v, end); break;
    case Header::to: m.to_tag = from_to_tag(k, v, end); break;
    case Header::none: break;
  }
}

// "SIP/" prefix, case-insensitively: RFC 3261 7.1 makes the version string case-insensitive.
bool sip_prefix(const char* p, size_t n) {
  return n >= 4 && lower(p[0]) == 's' && lower(p[1]) == 'i' && lower(p[2]) == 'p' && p[3] == '/';
}
bool is_sip20(const char* p, size_t n) { return n == 7 && sip_prefix(p, n) && std::memcmp(p + 4, "2.0", 3) == 0; }
// "SIP/" 1*DIGIT "." 1*DIGIT: a SIP version, not necessarily 2.0.
bool is_sip_version(const char* p, size_t n) {
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
ParseStatus parse_start_line(const char* b, const char* e, SipMessage& m) {
  const size_t n = static_cast<size_t>(e - b);
  if (sip_prefix(b, n)) {
    const char* sp = static_cast<const char*>(std::memchr(b, ' ', n));
    if (sp == nullptr || !is_sip20(b, static_cast<size_t>(sp - b))) {
      const size_t vn = sp ? static_cast<size_t>(sp - b) : n;
      return is_sip_version(b, vn) ? ParseStatus::bad_version : ParseStatus::bad_start_line;
    }
    const char* p = sp;
    while (p < e && *p == ' ') ++p;
    // Exactly three digits, then SP or the end of the line (RFC 4475 bigcode, noreason).
    if (e - p < 3 || !is_digit(p[0]) || !is_digit(p[1]) || !is_digit(p[2]) ||
        (e - p > 3 && p[3] != ' ')) {
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
  const char* p = skip_token(b, e);
  const std::string_view method(b, static_cast<size_t>(p - b));
  const bool known = !method.empty() && classify_method(method) != Method::OTHER;
  while (e > p && is_sp(e[-1])) --e;
  const char* vs = e;
  while (vs > p && !is_sp(vs[-1])) --vs;
  const size_t vn = static_cast<size_t>(e - vs);
  const bool sip_shaped = sip_prefix(vs, vn);
  if (method.empty() || p == e || !is_sp(*p)) {
    return (known || sip_shaped) ? ParseStatus::bad_start_line : ParseStatus::not_sip;
  }
  if (!sip_shaped) return known ? ParseStatus::bad_start_line : ParseStatus::not_sip;
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
bool plausible_start_prefix(const char* b, size_t n) {
  static constexpr char kSip[] = "sip/2.0 ";
  const size_t k = n < 8 ? n : 8;
  bool sip = true;
  for (size_t i = 0; i < k; ++i) sip = sip && lower(b[i]) == kSip[i];
  if (sip) return true;
  const char* e = b + n;
  const char* p = skip_token(b, e);
  return p > b && (p == e || *p == ' ');
}

constexpr size_t kChunk = 16;  // candidate lines fetched per kernel call

}  // namespace

std::string_view method_name(Method m) { return kMethodNames[static_cast<size_t>(m)]; }

Method classify_method(std::string_view t) {
  // Dispatch on length, then one comparison: the common methods cost a switch and a memcmp.
  switch (t.size()) {
    case 3:
      if (t == "ACK") return Method::ACK;
      if (t == "BYE") return Method::BYE;
      break;
    case 4: if (t == "INFO") return Method::INFO; break;
    case 5:
      if (t == "PRACK") return Method::PRACK;
      if (t == "REFER") return Method::REFER;
      break;
    case 6:
      if (t == "INVITE") return Method::INVITE;
      if (t == "CANCEL") return Method::CANCEL;
      if (t == "NOTIFY") return Method::NOTIFY;
      if (t == "UPDATE") return Method::UPDATE;
      break;
    case 7:
      if (t == "OPTIONS") return Method::OPTIONS;
      if (t == "MESSAGE") return Method::MESSAGE;
      if (t == "PUBLISH") return Method::PUBLISH;
      break;
    case 8: if (t == "REGISTER") return Method::REGISTER; break;
    case 9: if (t == "SUBSCRIBE") return Method::SUBSCRIBE; break;
    default: break;
  }
  return Method::OTHER;
}

std::string_view parse_status_reason(ParseStatus s) { return kReasons[static_cast<size_t>(s)]; }

ParseStatus parse_sip(const char* buf, size_t len, Framing framing, SipMessage& m, const ScanKernel& k) {
  m = SipMessage{};
  if (len == 0 || !is_token(buf[0])) return ParseStatus::not_sip;
  const char* const end = buf + len;

  // Start line.
  const char* le = static_cast<const char*>(std::memchr(buf, '\n', len));
  if (le == nullptr && framing == Framing::stream) {
    return plausible_start_prefix(buf, len) ? ParseStatus::incomplete : ParseStatus::not_sip;
  }
  const char* sl_end = le != nullptr ? le : end;
  if (sl_end > buf && sl_end[-1] == '\r') --sl_end;
  const ParseStatus st = parse_start_line(buf, sl_end, m);
  if (st != ParseStatus::ok) return st;
  if (le == nullptr) return ParseStatus::truncated_headers;  // the start line itself is unterminated

  // Header section. The kernel yields only the line ends followed by a line worth reading (see
  // is_candidate_start) or by an empty line; everything else is skipped without being looked at.
  // A continuation line (SP/HT) is never a candidate: a header's value runs over them.
  HeaderState hs;
  size_t body = len;  // offset of the body; len when a datagram's end closes the header section
  bool terminated = false;
  uint32_t cand[kChunk];
  size_t from = static_cast<size_t>(le - buf);
  for (;;) {
    const size_t n = k.find_candidates(buf, len, from, cand, kChunk);
    for (size_t i = 0; i < n; ++i) {
      const char* ls = buf + cand[i] + 1;
      if (*ls == '\n' || (*ls == '\r' && ls + 1 < end && ls[1] == '\n')) {
        body = static_cast<size_t>(ls + (*ls == '\n' ? 1 : 2) - buf);
        terminated = true;
        break;
      }
      const char* v = nullptr;
      const Header h = identify_header(ls, end, &v);
      if (h != Header::none) apply_header(k, h, v, end, m, hs);
    }
    if (terminated) break;
    // The kernel stops early at max candidates or at a CR/LF that was not an empty line.
    if (n == 0 || (n < kChunk && buf[cand[n - 1] + 1] != '\r' && buf[cand[n - 1] + 1] != '\n')) break;
    from = cand[n - 1] + 1;
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
      return (hs.seen & (1u << static_cast<unsigned>(Header::cseq))) ? ParseStatus::bad_cseq : ParseStatus::missing_cseq;
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

}  // namespace sipex
