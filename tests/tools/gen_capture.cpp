// gen_capture: writes a synthetic SIP capture, the counts sip_exporter must report for it (the
// truth file), and the configuration those counts assume.
//
// It is an independent oracle: it shares no code with the exporter and links only libpcap. Every
// count in the truth file is decided here, from the datagrams as written, by the counting rules of
// DESIGN.md section 5.
//
// Output is a pure function of the arguments: randomness comes from splitmix64 seeded by --seed,
// timestamps derive from the seed, and nothing reads the clock, so the same arguments give
// byte-identical files on every run and every little-endian host (pcap_dump writes its headers in
// the host's byte order).
//
// usage: gen_capture --out PATH --truth PATH --config PATH [--seed N] [--messages N]
//                    [--linktype en10mb|sll|sll2|raw|null] [--profile full|sample] [--no-home]
//   --messages   SIP datagrams to write, well-formed and malformed (default: 4000, sample 300)
//   --no-home    write a config without home_networks (every peer is the sender, direction unknown)
// Exit status: 0 written, 1 I/O error, 2 bad arguments.

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using Bytes = std::vector<uint8_t>;

// splitmix64 (Steele, Lea and Flood, 2014): the same stream for the same seed on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // In [0, n), n > 0. The modulo bias is irrelevant for test data.
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }
  uint32_t range(uint32_t lo, uint32_t hi) { return lo + below(hi - lo + 1); }  // [lo, hi]
  bool pct(uint32_t p) { return below(100) < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[below(static_cast<uint32_t>(v.size()))]; }

 private:
  uint64_t s_;
};

// ---------------------------------------------------------------------------------------------
// Addresses, the configuration and attribution (DESIGN sections 5 and 6)

struct Addr {
  int family = 4;  // 4 or 6
  std::array<uint8_t, 16> b{};
  std::string text;  // inet_ntop form: the label of an address without a peer-map name
};

Addr make_addr(const std::string& text) {
  Addr a;
  if (inet_pton(AF_INET, text.c_str(), a.b.data()) == 1) {
    a.family = 4;
  } else if (inet_pton(AF_INET6, text.c_str(), a.b.data()) == 1) {
    a.family = 6;
  } else {
    throw std::logic_error("bad address literal " + text);
  }
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.b.data(), buf, sizeof buf);
  a.text = buf;
  return a;
}

bool same_addr(const Addr& x, const Addr& y) { return x.family == y.family && x.b == y.b; }

struct Cidr {
  std::string text;
  Addr net;
  int prefix;
  bool contains(const Addr& a) const {
    if (a.family != net.family) return false;
    for (int bit = 0; bit < prefix; ++bit) {
      const uint8_t m = static_cast<uint8_t>(0x80 >> (bit % 8));
      if ((a.b[bit / 8] & m) != (net.b[bit / 8] & m)) return false;
    }
    return true;
  }
};

Cidr make_cidr(const std::string& text) {
  const size_t slash = text.find('/');
  return {text, make_addr(text.substr(0, slash)), std::stoi(text.substr(slash + 1))};
}

struct NamedPeer {
  std::string name;
  std::vector<Cidr> nets;
};

// The configuration the truth assumes; it is also written out as YAML.
struct Network {
  std::vector<Cidr> home;
  std::vector<NamedPeer> peers;

  bool is_home(const Addr& a) const {
    for (const Cidr& c : home) {
      if (c.contains(a)) return true;
    }
    return false;
  }
  // The peer label of an address: the name of the longest matching peer-map prefix, else the text.
  std::string label(const Addr& a) const {
    int best = -1;
    std::string name = a.text;
    for (const NamedPeer& p : peers) {
      for (const Cidr& c : p.nets) {
        if (c.contains(a) && c.prefix > best) {
          best = c.prefix;
          name = p.name;
        }
      }
    }
    return name;
  }
  // (peer, direction) of a message from src to dst.
  std::pair<std::string, std::string> attribute(const Addr& src, const Addr& dst) const {
    if (!home.empty()) {
      const bool sh = is_home(src), dh = is_home(dst);
      if (sh && !dh) return {label(dst), "outbound"};
      if (!sh && dh) return {label(src), "inbound"};
    }
    return {label(src), "unknown"};
  }
};

Network make_network(bool with_home) {
  Network n;
  if (with_home) {
    for (const char* c : {"203.0.113.0/24", "10.20.0.0/16", "2001:db8:ffff::/48"}) n.home.push_back(make_cidr(c));
  }
  // carrier-a-core lies inside carrier-a: the longer prefix must win.
  n.peers.push_back({"carrier-a", {make_cidr("198.51.100.0/24")}});
  n.peers.push_back({"carrier-a-core", {make_cidr("198.51.100.0/28")}});
  n.peers.push_back({"carrier-b", {make_cidr("192.0.2.10/32"), make_cidr("2001:db8:b::/48")}});
  return n;
}

std::string config_yaml(const Network& n, uint64_t seed) {
  std::string y = "# Written by gen_capture --seed " + std::to_string(seed) +
                  ": the configuration its truth file assumes.\n";
  auto list = [](const std::vector<Cidr>& cs) {
    std::string s = "[";
    for (size_t i = 0; i < cs.size(); ++i) s += (i ? ", " : "") + cs[i].text;
    return s + "]";
  };
  if (!n.home.empty()) y += "home_networks: " + list(n.home) + "\n";
  y += "peers:\n";
  for (const NamedPeer& p : n.peers) y += "  " + p.name + ": " + list(p.nets) + "\n";
  return y;
}

// Endpoints by family (index 0: IPv4, 1: IPv6). Home addresses lie in the home networks whether
// or not the config lists them; `named` lie in peer-map prefixes; `unnamed` in none of them (some
// just outside one) and number more than 200.
struct Pools {
  std::vector<Addr> home[2], named[2], unnamed[2];
};

Pools make_pools() {
  Pools p;
  auto add = [](std::vector<Addr>* pool, const std::string& text) {
    const Addr a = make_addr(text);
    pool[a.family == 4 ? 0 : 1].push_back(a);
  };
  auto d = [](int v) { return std::to_string(v); };
  auto x = [](int v) {
    char b[16];
    std::snprintf(b, sizeof b, "%x", v);
    return std::string(b);
  };
  for (int i = 10; i < 34; ++i) add(p.home, "203.0.113." + d(i));
  for (int i = 0; i < 8; ++i) add(p.home, "10.20." + d(i / 2) + "." + d(5 + 72 * (i % 2)));
  for (int i = 0; i < 10; ++i) add(p.home, "2001:db8:ffff:" + x(i % 3) + ":0:0:0:" + x(0x10 + i));
  for (int i = 1; i <= 6; ++i) add(p.named, "198.51.100." + d(i));
  for (int i = 40; i <= 45; ++i) add(p.named, "198.51.100." + d(i));
  for (const char* t : {"192.0.2.10", "2001:db8:b::1", "2001:db8:b::2", "2001:db8:b:0:1::3", "2001:db8:b:1::5"}) {
    add(p.named, t);
  }
  for (const char* t : {"192.0.2.11", "198.51.101.1", "2001:db8:c::1", "::ffff:100.65.0.1"}) add(p.unnamed, t);
  for (int i = 0; i < 150; ++i) add(p.unnamed, "100.64." + d(i / 100) + "." + d(i % 100 + 1));
  for (int i = 0; i < 30; ++i) add(p.unnamed, "172.16." + d(i) + ".9");
  for (int i = 0; i < 40; ++i) add(p.unnamed, "2001:db8:1000:" + x(i) + ":0:0:0:" + x(i + 1));
  for (int i = 0; i < 20; ++i) add(p.unnamed, "2001:db8:2:0:" + x(i) + "::1:0");
  return p;
}

// ---------------------------------------------------------------------------------------------
// The truth file

// What the exporter must make of one UDP payload.
struct Outcome {
  enum Kind { request, response, parse_error, skipped } kind;
  std::string method;  // request/response: one of the 14 methods or OTHER
  int code = 0;        // response
  std::string reason;  // parse_error/skipped
};

struct Truth {
  uint64_t packets = 0;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> requests;  // method, peer, direction
  std::map<std::tuple<int, std::string, std::string, std::string>, uint64_t> responses;  // code, method, peer, dir
  std::map<std::string, uint64_t> parse_errors, skipped;

  void add(const Outcome& o, const std::pair<std::string, std::string>& at) {
    switch (o.kind) {
      case Outcome::request: ++requests[{o.method, at.first, at.second}]; break;
      case Outcome::response: ++responses[{o.code, o.method, at.first, at.second}]; break;
      case Outcome::parse_error: ++parse_errors[o.reason]; break;
      case Outcome::skipped: ++skipped[o.reason]; break;
    }
  }
};

std::string json_str(std::string_view s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

std::string truth_json(const Truth& t) {
  std::string j = "{\n  \"packets\": " + std::to_string(t.packets) + ",\n  \"requests\": [";
  const char* sep = "\n    ";
  for (const auto& [k, n] : t.requests) {
    const auto& [method, peer, dir] = k;
    j += sep;
    j += "{\"method\": " + json_str(method) + ", \"peer\": " + json_str(peer) + ", \"direction\": " + json_str(dir) +
         ", \"count\": " + std::to_string(n) + "}";
    sep = ",\n    ";
  }
  j += "\n  ],\n  \"responses\": [";
  sep = "\n    ";
  for (const auto& [k, n] : t.responses) {
    const auto& [code, method, peer, dir] = k;
    j += sep;
    j += "{\"code\": \"" + std::to_string(code) + "\", \"class\": \"" + std::to_string(code / 100) +
         "xx\", \"method\": " + json_str(method) + ", \"peer\": " + json_str(peer) + ", \"direction\": " +
         json_str(dir) + ", \"count\": " + std::to_string(n) + "}";
    sep = ",\n    ";
  }
  j += "\n  ],\n";
  auto reasons = [&](const char* key, const std::map<std::string, uint64_t>& m, const char* tail) {
    j += std::string("  \"") + key + "\": {";
    const char* s = "";
    for (const auto& [r, n] : m) {
      j += s + json_str(r) + ": " + std::to_string(n);
      s = ", ";
    }
    j += std::string("}") + tail;
  };
  reasons("parse_errors", t.parse_errors, ",\n");
  reasons("skipped", t.skipped, "\n}\n");
  return j;
}

// ---------------------------------------------------------------------------------------------
// SIP text

const std::vector<std::string> kMethods = {"INVITE", "ACK",  "BYE",    "CANCEL", "REGISTER",
                                           "OPTIONS", "PRACK", "SUBSCRIBE", "NOTIFY", "UPDATE",
                                           "MESSAGE", "REFER", "PUBLISH", "INFO"};
// Tokens that are OTHER: methods are case-sensitive, so "invite" and "Bye" are not INVITE and BYE.
const std::vector<std::string> kOtherMethods = {"NEWMETHOD", "X-FOO", "invite", "Bye", "PING"};

std::string method_label(const std::string& token) {
  for (const std::string& m : kMethods) {
    if (m == token) return m;
  }
  return "OTHER";
}

const std::vector<int> kProvisional = {100, 180, 181, 182, 183, 199, 150};
const std::vector<int> kFinal = {200, 202, 204, 300, 301, 302, 380, 400, 401, 403, 404, 405, 407, 408,
                                 410, 415, 420, 480, 481, 483, 486, 487, 488, 491, 500, 501, 502, 503,
                                 504, 513, 580, 600, 603, 604, 606, 607, 608, 299, 399, 499, 555, 699};

std::string reason_phrase(int code) {
  static const std::map<int, std::string> k = {
      {100, "Trying"}, {180, "Ringing"}, {181, "Call Is Being Forwarded"}, {182, "Queued"},
      {183, "Session Progress"}, {199, "Early Transaction Terminated"}, {200, "OK"}, {202, "Accepted"},
      {204, "No Notification"}, {300, "Multiple Choices"}, {301, "Moved Permanently"},
      {302, "Moved Temporarily"}, {380, "Alternative Service"}, {400, "Bad Request"},
      {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"}, {405, "Method Not Allowed"},
      {407, "Proxy Authentication Required"}, {408, "Request Timeout"}, {410, "Gone"},
      {415, "Unsupported Media Type"}, {420, "Bad Extension"}, {480, "Temporarily Unavailable"},
      {481, "Call/Transaction Does Not Exist"}, {483, "Too Many Hops"}, {486, "Busy Here"},
      {487, "Request Terminated"}, {488, "Not Acceptable Here"}, {491, "Request Pending"},
      {500, "Server Internal Error"}, {501, "Not Implemented"}, {502, "Bad Gateway"},
      {503, "Service Unavailable"}, {504, "Server Time-out"}, {513, "Message Too Large"},
      {580, "Precondition Failure"}, {600, "Busy Everywhere"}, {603, "Decline"},
      {604, "Does Not Exist Anywhere"}, {606, "Not Acceptable"}, {607, "Unwanted"}, {608, "Rejected"}};
  const auto it = k.find(code);
  return it == k.end() ? "Unregistered Extension" : it->second;
}

std::string hex(Rng& r, int digits) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < digits; ++i) s += d[r.below(16)];
  return s;
}

std::string host(const Addr& a) { return a.family == 4 ? a.text : "[" + a.text + "]"; }
std::string hostport(const Addr& a, uint16_t port) { return host(a) + ":" + std::to_string(port); }

// Header spellings: the long form (several times, so it stays the most common), case variants and
// the compact form where RFC 3261 section 7.3.3 defines one.
const std::vector<std::string> kVia = {"Via", "Via", "Via", "v", "via", "VIA"};
const std::vector<std::string> kFrom = {"From", "From", "f", "from"};
const std::vector<std::string> kTo = {"To", "To", "t", "TO"};
const std::vector<std::string> kCallId = {"Call-ID", "Call-ID", "Call-ID", "i", "call-id", "CALL-ID", "Call-Id"};
const std::vector<std::string> kCSeq = {"CSeq", "CSeq", "CSeq", "cseq", "CSEQ", "Cseq"};
const std::vector<std::string> kContentLength = {"Content-Length", "Content-Length", "l", "content-length",
                                                 "CONTENT-LENGTH"};
const std::vector<std::string> kContentType = {"Content-Type", "c", "content-type"};

// Writes the lines of one message in a per-message style: line end CRLF or (rarely) bare LF,
// header names spelled variously, LWS before some colons, some values folded onto a
// continuation line (RFC 3261 section 7.3.1).
class SipText {
 public:
  SipText(Rng& r, bool plain) : r_(r), plain_(plain), eol_(!plain && r.pct(4) ? "\n" : "\r\n") {}

  void start(const std::string& line) { head_ = line + eol_; }
  // Adds "name: value". Some values are folded: at their first space, or before the value
  // when it has none (LWS may hold a line break wherever it may appear, RFC 3261 section 25.1).
  void header(const std::vector<std::string>& names, const std::string& value) {
    std::string v = value;
    if (!plain_ && r_.pct(8)) {
      static const std::vector<std::string> kIndent = {" ", "  ", "\t", "   "};
      const size_t sp = v.find(' ');
      v = sp == std::string::npos ? eol_ + r_.pick(kIndent) + v
                                  : v.substr(0, sp) + eol_ + r_.pick(kIndent) + v.substr(sp + 1);
    }
    static const std::vector<std::string> kColon = {": ", ": ", ": ", ": ", ": ", ": ", ": ", " : ", "\t: ", ":"};
    const std::string& name = plain_ ? names.front() : r_.pick(names);
    lines_.push_back(name + (plain_ ? std::string(": ") : r_.pick(kColon)) + v + eol_);
  }
  const std::string& eol() const { return eol_; }
  // The datagram: start line, headers (sometimes the last one, usually Content-Length, first:
  // RFC 3261 section 7.3.1 leaves the order free), the empty line, the body and `trailer`.
  std::string finish(const std::string& body, const std::string& trailer) {
    if (!plain_ && r_.pct(8) && lines_.size() > 1) {
      lines_.insert(lines_.begin(), lines_.back());
      lines_.pop_back();
    }
    std::string s = head_;
    for (const std::string& l : lines_) s += l;
    return s + eol_ + body + trailer;
  }

 private:
  Rng& r_;
  bool plain_;
  std::string eol_;
  std::string head_;
  std::vector<std::string> lines_;
};

struct Endpoint {
  Addr addr;
  uint16_t port;
};

// One SIP transaction: the request and its responses carry these values.
struct Transaction {
  Endpoint a, b;  // a sends the request
  std::string method;  // request-line token; also the CSeq method
  uint32_t cseq;
  std::string call_id, from_tag, to_tag, branch;
};

std::string sdp(Rng& r, const Endpoint& e, const std::string& eol) {
  const std::string ip = e.addr.family == 4 ? "IP4 " : "IP6 ";
  const std::string sess = std::to_string(r.range(1000, 999999));
  return "v=0" + eol + "o=- " + sess + " " + sess + " IN " + ip + e.addr.text + eol + "s=-" + eol + "c=IN " + ip +
         e.addr.text + eol + "t=0 0" + eol + "m=audio " + std::to_string(2 * r.range(5000, 15000)) +
         " RTP/AVP 0 8 101" + eol + "a=rtpmap:0 PCMU/8000" + eol + "a=rtpmap:8 PCMA/8000" + eol +
         "a=rtpmap:101 telephone-event/8000" + eol + "a=sendrecv" + eol;
}

// A body and its Content-Type for a message of `method`, or {"", ""} for none.
std::pair<std::string, std::string> body_for(Rng& r, const std::string& method, const Endpoint& sender,
                                             const std::string& eol, bool response) {
  if ((method == "INVITE" || method == "UPDATE" || method == "PRACK" || method == "ACK") &&
      r.pct(response ? 40 : 70)) {
    return {sdp(r, sender, eol), "application/sdp"};
  }
  if (method == "MESSAGE" && !response) {
    // Header-like lines in a body are body bytes, not headers. Some bodies need a jumbo frame.
    std::string text = "Hello " + std::to_string(r.below(1000)) + eol + "CSeq: 1 BYE" + eol +
                       "Content-Length: 999" + eol;
    if (r.pct(10)) {
      for (uint32_t n = r.range(40, 120); n > 0; --n) text += "a line of a long instant message" + eol;
    }
    return {text, "text/plain"};
  }
  if (method == "INFO" && !response) return {"Signal=" + std::to_string(r.below(10)) + eol + "Duration=160" + eol,
                                             "application/dtmf-relay"};
  if (method == "NOTIFY" && !response) return {"SIP/2.0 200 OK" + eol, "message/sipfrag"};
  return {"", ""};
}

// Bytes after the body that Content-Length excludes (RFC 3261 section 18.3: discarded).
std::string trailer(Rng& r) {
  if (!r.pct(5)) return "";
  switch (r.below(3)) {
    case 0: return "\r\n\r\n";
    case 1: return std::string(r.range(1, 16), '\0');
    default: {
      std::string s;
      for (uint32_t i = r.range(1, 32); i > 0; --i) s += static_cast<char>(r.range(0x80, 0xff));
      return s;
    }
  }
}

void common_headers(SipText& t, Rng& r, const Transaction& d, bool response) {
  const std::string branch = ";branch=z9hG4bK" + d.branch;
  t.header(kVia, "SIP/2.0/UDP " + hostport(d.a.addr, d.a.port) + branch + ";rport");
  if (r.pct(10)) t.header(kVia, "SIP/2.0/UDP " + hostport(d.a.addr, d.a.port) + ";branch=z9hG4bK" + d.branch + "x");
  if (!response) t.header({"Max-Forwards"}, "70");
  t.header(kFrom, "\"Caller\" <sip:caller@" + host(d.a.addr) + ">;tag=" + d.from_tag);
  t.header(kTo, "<sip:callee@" + host(d.b.addr) + ">" + (response ? ";tag=" + d.to_tag : std::string()));
  t.header(kCallId, d.call_id);
  t.header(kCSeq, std::to_string(d.cseq) + " " + d.method);
  if (r.pct(30)) t.header({"Subject"}, "call about the quarterly report");
  if (r.pct(30)) t.header({"User-Agent", "user-agent"}, "gen_capture 1.0");
}

std::string request_text(Rng& r, const Transaction& d) {
  SipText t(r, false);
  t.start(d.method + " sip:callee@" + hostport(d.b.addr, d.b.port) + " SIP/2.0");
  common_headers(t, r, d, false);
  t.header({"Contact", "m"}, "<sip:caller@" + hostport(d.a.addr, d.a.port) + ">");
  const auto [body, type] = body_for(r, d.method, d.a, t.eol(), false);
  if (!type.empty()) t.header(kContentType, type);
  // Without a body, Content-Length may be absent: on UDP the body then runs to the datagram's end.
  if (!body.empty() || r.pct(85)) {
    t.header(kContentLength, std::string(r.pct(5) ? "  " : "") + std::to_string(body.size()));
    return t.finish(body, trailer(r));
  }
  return t.finish(body, "");
}

std::string response_text(Rng& r, const Transaction& d, int code) {
  SipText t(r, false);
  // The reason phrase may be empty (RFC 3261 section 25.1: Reason-Phrase = *(...)).
  t.start("SIP/2.0 " + std::to_string(code) + " " + (r.pct(3) ? std::string() : reason_phrase(code)));
  common_headers(t, r, d, true);
  const auto [body, type] = body_for(r, d.method, d.b, t.eol(), true);
  if (!type.empty()) t.header(kContentType, type);
  t.header(kContentLength, std::to_string(body.size()));
  return t.finish(body, trailer(r));
}

// Malformed datagrams, each with the one parse-error reason the contract assigns to it.
struct Malformed {
  std::string payload;
  std::string reason;
  bool short_body;  // Content-Length exceeds the body by 2: a kept FCS must not complete it
};

Malformed malformed(Rng& r, int kind, const Transaction& d) {
  SipText t(r, true);
  std::string body, reason;
  int extra = 0;
  switch (kind) {
    case 0: t.start("SIP/2.0 4294967301 Funny"); reason = "bad_status_code"; break;
    case 1: t.start("SIP/2.0 700 Beyond Six"); reason = "bad_status_code"; break;
    case 2: t.start(d.method + " sip:callee@" + host(d.b.addr) + " SIP/3.0"); reason = "bad_version"; break;
    case 3: t.start("SIP/3.0 200 OK"); reason = "bad_version"; break;
    case 4: t.start("SIP/2.0 200 OK"); reason = "missing_cseq"; break;
    default:
      t.start("MESSAGE sip:callee@" + host(d.b.addr) + " SIP/2.0");
      body = "this body is shorter than its Content-Length\r\n";
      extra = kind == 5 ? 2 : 40;
      reason = "truncated_body";
      break;
  }
  t.header(kVia, "SIP/2.0/UDP " + hostport(d.a.addr, d.a.port) + ";branch=z9hG4bK" + d.branch);
  t.header(kFrom, "<sip:caller@" + host(d.a.addr) + ">;tag=" + d.from_tag);
  t.header(kTo, "<sip:callee@" + host(d.b.addr) + ">");
  t.header(kCallId, d.call_id);
  if (kind != 4) t.header(kCSeq, std::to_string(d.cseq) + (kind == 5 || kind == 6 ? " MESSAGE" : " INVITE"));
  t.header(kContentLength, std::to_string(body.size() + static_cast<size_t>(extra)));
  return {t.finish(body, ""), reason, kind == 5};
}
constexpr int kMalformedKinds = 7;

// ---------------------------------------------------------------------------------------------
// Frames

void put16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, v >> 16);
  put16(b, v & 0xFFFF);
}
void set16(Bytes& b, size_t at, uint32_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}
uint16_t fold_sum(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

uint32_t crc32(const Bytes& b) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t x : b) {
    c ^= x;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

enum class Link { en10mb, sll, sll2, raw, null };

struct Datagram {
  Endpoint src, dst;
  std::string payload;
  bool fcs = false;  // en10mb: keep a 4-byte frame check sequence after the IP packet
};

class Writer {
 public:
  Writer(const std::string& path, Link link, uint64_t seed, Rng& r)
      : link_(link), r_(r), ip_id_(static_cast<uint16_t>(seed)),
        usec_((1700000000ull + seed % 31536000ull) * 1000000ull) {
    int dlt = DLT_EN10MB;
    switch (link) {
      case Link::en10mb: dlt = DLT_EN10MB; break;
      case Link::sll: dlt = DLT_LINUX_SLL; break;
      case Link::sll2: dlt = DLT_LINUX_SLL2; break;
      case Link::raw: dlt = DLT_RAW; break;
      case Link::null: dlt = DLT_NULL; break;
    }
    pcap_ = pcap_open_dead(dlt, 65535);
    if (pcap_ == nullptr) throw std::runtime_error("pcap_open_dead failed");
    dump_ = pcap_dump_open(pcap_, path.c_str());
    if (dump_ == nullptr) throw std::runtime_error(pcap_geterr(pcap_));  // names the file
  }
  ~Writer() {
    if (dump_ != nullptr) pcap_dump_close(dump_);
    pcap_close(pcap_);
  }
  // Flushes and closes the file; throws if any write failed.
  void close(const std::string& path) {
    const bool ok = pcap_dump_flush(dump_) == 0 && std::ferror(pcap_dump_file(dump_)) == 0;
    pcap_dump_close(dump_);
    dump_ = nullptr;
    if (!ok) throw std::runtime_error(path + ": write failed");
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  uint64_t frames() const { return frames_; }
  bool has_l2() const { return link_ == Link::en10mb || link_ == Link::sll || link_ == Link::sll2; }

  void udp(const Datagram& d) {
    Bytes u;
    put16(u, d.src.port);
    put16(u, d.dst.port);
    put16(u, static_cast<uint32_t>(8 + d.payload.size()));
    put16(u, 0);
    u.insert(u.end(), d.payload.begin(), d.payload.end());
    const Bytes ip = d.src.addr.family == 4 ? ipv4(d, u) : ipv6(d, u);
    link(d.src.addr.family == 4 ? 0x0800 : 0x86DD, ip, d.fcs);
  }

  // An ARP request (who-has) from a home host; only on links with a link-layer header.
  void arp(const Addr& sender, const Addr& target) {
    Bytes a;
    put16(a, 1);       // Ethernet
    put16(a, 0x0800);  // IPv4
    a.push_back(6);
    a.push_back(4);
    put16(a, 1);  // request
    const Bytes mac = mac_of(sender);
    a.insert(a.end(), mac.begin(), mac.end());
    a.insert(a.end(), sender.b.begin(), sender.b.begin() + 4);
    for (int i = 0; i < 6; ++i) a.push_back(0);
    a.insert(a.end(), target.b.begin(), target.b.begin() + 4);
    link(0x0806, a, false);
  }

 private:
  static Bytes mac_of(const Addr& a) {
    const size_t o = a.family == 4 ? 0 : 12;
    return {0x02, 0x00, a.b[o], a.b[o + 1], a.b[o + 2], a.b[o + 3]};
  }

  Bytes ipv4(const Datagram& d, Bytes& u) {
    const bool router_alert = r_.pct(5);  // an IPv4 option: the header is 24 bytes
    const size_t ihl = router_alert ? 24 : 20;
    Bytes ip;
    ip.push_back(static_cast<uint8_t>(0x40 | ihl / 4));
    ip.push_back(r_.pct(50) ? 0x68 : 0xB8);
    put16(ip, static_cast<uint32_t>(ihl + u.size()));
    put16(ip, ip_id_++);
    put16(ip, r_.pct(70) ? 0x4000 : 0);  // DF or nothing: never a fragment
    ip.push_back(64);
    ip.push_back(17);
    put16(ip, 0);
    ip.insert(ip.end(), d.src.addr.b.begin(), d.src.addr.b.begin() + 4);
    ip.insert(ip.end(), d.dst.addr.b.begin(), d.dst.addr.b.begin() + 4);
    if (router_alert) put32(ip, 0x94040000);
    set16(ip, 10, fold_sum(sum16(ip.data(), ip.size(), 0)));
    uint32_t acc = sum16(ip.data() + 12, 8, 17 + static_cast<uint32_t>(u.size()));
    uint16_t ck = fold_sum(sum16(u.data(), u.size(), acc));
    set16(u, 6, ck == 0 ? 0xFFFF : ck);
    ip.insert(ip.end(), u.begin(), u.end());
    return ip;
  }

  Bytes ipv6(const Datagram& d, Bytes& u) {
    // Some packets carry a Destination Options or Hop-by-Hop header (8 bytes of PadN) before UDP.
    const uint32_t ext = r_.below(10);
    const uint8_t first = ext == 0 ? 60 : ext == 1 ? 0 : 17;
    Bytes ip;
    put32(ip, 0x60000000u | r_.below(1u << 20));
    put16(ip, static_cast<uint32_t>(u.size() + (first == 17 ? 0 : 8)));
    ip.push_back(first);
    ip.push_back(64);
    ip.insert(ip.end(), d.src.addr.b.begin(), d.src.addr.b.end());
    ip.insert(ip.end(), d.dst.addr.b.begin(), d.dst.addr.b.end());
    uint32_t acc = sum16(ip.data() + 8, 32, 17 + static_cast<uint32_t>(u.size()));
    uint16_t ck = fold_sum(sum16(u.data(), u.size(), acc));
    set16(u, 6, ck == 0 ? 0xFFFF : ck);
    if (first != 17) ip.insert(ip.end(), {17, 0, 1, 4, 0, 0, 0, 0});
    ip.insert(ip.end(), u.begin(), u.end());
    return ip;
  }

  void link(uint16_t ethertype, const Bytes& net, bool fcs) {
    Bytes f;
    switch (link_) {
      case Link::en10mb: {
        f = {0x02, 0x00, 0x5E, static_cast<uint8_t>(r_.below(256)), 0x00, 0x01,
             0x02, 0x00, 0x5E, static_cast<uint8_t>(r_.below(256)), 0x00, 0x02};
        const uint32_t tags = r_.below(100);
        if (tags >= 80) {  // QinQ: a service tag (802.1ad, or the older 0x9100), then an 802.1Q tag
          put16(f, tags >= 97 ? 0x9100 : 0x88A8);
          put16(f, r_.range(1, 4094));
          put16(f, 0x8100);
          put16(f, r_.range(1, 4094));
        } else if (tags >= 55) {
          put16(f, 0x8100);
          put16(f, r_.range(1, 4094));
        }
        put16(f, ethertype);
        f.insert(f.end(), net.begin(), net.end());
        if (f.size() < 60) f.resize(60, 0);  // minimum frame: the IP and UDP lengths end the packet
        if (fcs) {
          const uint32_t c = crc32(f);
          for (int i = 0; i < 4; ++i) f.push_back(static_cast<uint8_t>(c >> (8 * i)));
        }
        break;
      }
      case Link::sll:
      case Link::sll2: {
        // libpcap puts a VLAN tag that the NIC stripped back in front of the payload: the
        // protocol field says 0x8100 and the payload starts with the TCI and the inner type.
        const bool tagged = r_.pct(20);
        const uint16_t protocol = tagged ? 0x8100 : ethertype;
        const uint8_t pkttype = r_.pct(50) ? 0 : 4;  // to us / outgoing
        const std::array<uint8_t, 8> addr = {0x02, 0x00, 0x5E, 0x00, 0x00, static_cast<uint8_t>(r_.below(256)), 0, 0};
        if (link_ == Link::sll) {
          put16(f, pkttype);
          put16(f, 1);  // ARPHRD_ETHER
          put16(f, 6);
          f.insert(f.end(), addr.begin(), addr.end());
          put16(f, protocol);
        } else {
          put16(f, protocol);
          put16(f, 0);
          put32(f, r_.range(1, 8));  // interface index
          put16(f, 1);               // ARPHRD_ETHER
          f.push_back(pkttype);
          f.push_back(6);
          f.insert(f.end(), addr.begin(), addr.end());
        }
        if (tagged) {
          put16(f, r_.range(1, 4094));
          put16(f, ethertype);
        }
        f.insert(f.end(), net.begin(), net.end());
        break;
      }
      case Link::raw: f = net; break;
      case Link::null: {
        // The address family in the writer's byte order (little-endian here). IPv6's value differs
        // between BSDs: 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS).
        static constexpr uint8_t kInet6[] = {24, 28, 30};
        f = {ethertype == 0x0800 ? uint8_t{2} : kInet6[r_.below(3)], 0, 0, 0};
        f.insert(f.end(), net.begin(), net.end());
        break;
      }
    }
    usec_ += r_.range(1, 4000);
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(usec_ / 1000000);
    h.ts.tv_usec = static_cast<suseconds_t>(usec_ % 1000000);
    h.caplen = h.len = static_cast<uint32_t>(f.size());
    pcap_dump(reinterpret_cast<u_char*>(dump_), &h, f.data());
    ++frames_;
  }

  Link link_;
  Rng& r_;
  uint16_t ip_id_;
  uint64_t usec_;
  pcap_t* pcap_ = nullptr;
  pcap_dumper_t* dump_ = nullptr;
  uint64_t frames_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The capture

struct Options {
  std::string out, truth, config;
  uint64_t seed = 1;
  uint64_t messages = 0;  // 0: the profile's default
  Link link = Link::en10mb;
  bool sample = false;
  bool home = true;
};

// One RTP stream (RFC 3550) between a home and an outside endpoint on even ports 10000..30000.
struct RtpFlow {
  Endpoint from, to;
  uint16_t seq;
  uint32_t ts, ssrc;
};

class Generator {
 public:
  Generator(const Options& o, Rng& r, Writer& w, const Network& net, Truth& t)
      : o_(o), r_(r), w_(w), net_(net), t_(t), pools_(make_pools()) {
    for (int i = 0; i < 24; ++i) {
      const int fam = r_.pct(25) ? 1 : 0;
      flows_.push_back({{r_.pick(pools_.home[fam]), rtp_port()}, {r_.pick(pools_.unnamed[fam]), rtp_port()},
                        static_cast<uint16_t>(r_.next()), static_cast<uint32_t>(r_.next()),
                        static_cast<uint32_t>(r_.next())});
    }
  }

  void run(uint64_t messages) {
    const uint64_t bad_total = kMalformedKinds * (1 + messages / 1000);
    uint64_t bad_left = bad_total;
    if (w_.has_l2()) arp();
    for (uint64_t slot = 0; slot < messages; ++slot) {
      // Malformed datagrams are spread evenly at random over the slots.
      if (r_.below(static_cast<uint32_t>(messages - slot)) < bad_left) {
        const Transaction d = make_transaction();
        const Malformed m = malformed(r_, static_cast<int>((bad_total - bad_left) % kMalformedKinds), d);
        --bad_left;
        send({d.a, d.b, m.payload, m.short_body}, {Outcome::parse_error, "", 0, m.reason});
      } else {
        if (pending_.empty()) queue_transaction();
        const auto [dg, outcome] = pending_.front();
        pending_.pop_front();
        send(dg, outcome);
        // A retransmission: the same datagram again in the next slot, counted again (DESIGN 5).
        if (r_.pct(2)) pending_.emplace_front(dg, outcome);
      }
      for (uint32_t k = o_.sample ? 1 : r_.range(1, 3); k > 0; --k) rtp();
      if (w_.has_l2() && r_.pct(1)) arp();
      if (r_.pct(1)) keepalive();
    }
  }

 private:
  static constexpr uint16_t kSipPorts[] = {5060, 5060, 5060, 5060, 5060, 5080, 15060, 25060, 5090};

  uint16_t sip_port() { return kSipPorts[r_.below(std::size(kSipPorts))]; }
  uint16_t rtp_port() { return static_cast<uint16_t>(2 * r_.range(5000, 15000)); }

  // An outside address; the unnamed ones are taken in turn first so that every one appears.
  const Addr& outside(int fam) {
    if (r_.pct(15)) return r_.pick(pools_.named[fam]);
    const std::vector<Addr>& u = pools_.unnamed[fam];
    size_t& next = next_unnamed_[fam];
    return next < u.size() ? u[next++] : r_.pick(u);
  }

  const Addr& other_than(const Addr& a, const std::vector<Addr>& pool) {
    for (;;) {
      const Addr& b = r_.pick(pool);
      if (!same_addr(a, b)) return b;
    }
  }

  Transaction make_transaction() {
    const int fam = r_.pct(30) ? 1 : 0;
    const uint32_t scenario = r_.below(100);
    Addr a, b;
    if (scenario < 45) {
      a = outside(fam);
      b = r_.pick(pools_.home[fam]);
    } else if (scenario < 75) {
      a = r_.pick(pools_.home[fam]);
      b = outside(fam);
    } else if (scenario < 87) {
      a = r_.pick(pools_.home[fam]);
      b = other_than(a, pools_.home[fam]);
    } else {
      a = outside(fam);
      b = other_than(a, pools_.unnamed[fam]);
    }
    Transaction d;
    d.a = {a, sip_port()};
    d.b = {b, sip_port()};
    const uint32_t m = r_.below(100);
    if (m < 8) {
      d.method = r_.pick(kOtherMethods);
    } else if (m < 30) {
      d.method = "INVITE";
    } else {
      d.method = r_.pick(kMethods);
    }
    d.cseq = r_.pct(3) ? 2147483647u : r_.range(1, 99999);  // 2^31-1 is the largest valid CSeq
    d.call_id = hex(r_, 16) + "@" + host(a);
    d.from_tag = hex(r_, 8);
    d.to_tag = hex(r_, 8);
    d.branch = hex(r_, 12);
    return d;
  }

  void queue_transaction() {
    const Transaction d = make_transaction();
    const std::string label = method_label(d.method);
    pending_.push_back({{d.a, d.b, request_text(r_, d), r_.pct(3)}, {Outcome::request, label, 0, ""}});
    std::vector<int> codes;
    if (d.method == "ACK") {
      if (r_.pct(10)) codes.push_back(r_.pick(kFinal));  // a stray response: its CSeq method is ACK
    } else {
      if (r_.pct(d.method == "INVITE" ? 70 : 10)) codes.push_back(100);
      if (d.method == "INVITE" && r_.pct(60)) codes.push_back(r_.pick(kProvisional));
      if (r_.pct(92)) codes.push_back(r_.pct(30) ? 200 : r_.pick(kFinal));
    }
    for (int code : codes) {
      pending_.push_back({{d.b, d.a, response_text(r_, d, code), r_.pct(3)}, {Outcome::response, label, code, ""}});
    }
  }

  void send(const Datagram& dg, const Outcome& o) {
    w_.udp(dg);
    t_.add(o, net_.attribute(dg.src.addr, dg.dst.addr));
  }

  void rtp() {
    RtpFlow& f = flows_[r_.below(static_cast<uint32_t>(flows_.size()))];
    const bool reverse = r_.pct(50);
    std::string p;
    // Mostly 20 ms of G.711; some comfort-noise-sized payloads make frames below the Ethernet minimum.
    const uint32_t n = o_.sample ? r_.range(1, 40) : (r_.pct(10) ? r_.range(1, 5) : 160);
    p += static_cast<char>(0x80);
    p += static_cast<char>(r_.pct(2) ? 0x80 : 0x00);  // PCMU, marker bit sometimes
    p += static_cast<char>(f.seq >> 8);
    p += static_cast<char>(f.seq & 0xFF);
    for (int s = 24; s >= 0; s -= 8) p += static_cast<char>(f.ts >> s);
    for (int s = 24; s >= 0; s -= 8) p += static_cast<char>(f.ssrc >> s);
    for (uint32_t i = 0; i < n; ++i) p += static_cast<char>(r_.below(256));
    ++f.seq;
    f.ts += 160;
    send({reverse ? f.to : f.from, reverse ? f.from : f.to, p, false}, {Outcome::skipped, "", 0, "not_sip"});
  }

  // The double-CRLF keep-alive many user agents send to their registrar: not a SIP message.
  void keepalive() {
    const int fam = r_.pct(30) ? 1 : 0;
    send({{r_.pick(pools_.unnamed[fam]), sip_port()}, {r_.pick(pools_.home[fam]), 5060}, "\r\n\r\n", false},
         {Outcome::skipped, "", 0, "not_sip"});
  }

  void arp() {
    const Addr& s = r_.pick(pools_.home[0]);
    w_.arp(s, other_than(s, pools_.home[0]));
    t_.add({Outcome::skipped, "", 0, "not_ip"}, {});
  }

  const Options& o_;
  Rng& r_;
  Writer& w_;
  const Network& net_;
  Truth& t_;
  Pools pools_;
  std::vector<RtpFlow> flows_;
  size_t next_unnamed_[2] = {0, 0};
  std::deque<std::pair<Datagram, Outcome>> pending_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) throw std::runtime_error(path + ": cannot write");
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "gen_capture: %s\nusage: gen_capture --out PATH --truth PATH --config PATH [--seed N] "
               "[--messages N] [--linktype en10mb|sll|sll2|raw|null] [--profile full|sample] [--no-home]\n",
               why.c_str());
  std::exit(2);
}

uint64_t number(const std::string& flag, const std::string& v) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 19) {
    usage(flag + " needs a decimal number, got '" + v + "'");
  }
  return std::stoull(v);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-home") {
      o.home = false;
      continue;
    }
    if (i + 1 >= argc) usage("missing value for " + a);
    const std::string v = argv[++i];
    if (a == "--out") {
      o.out = v;
    } else if (a == "--truth") {
      o.truth = v;
    } else if (a == "--config") {
      o.config = v;
    } else if (a == "--seed") {
      o.seed = number(a, v);
    } else if (a == "--messages") {
      o.messages = number(a, v);
      if (o.messages == 0 || o.messages > 10000000) usage("--messages must be between 1 and 10000000");
    } else if (a == "--linktype") {
      static const std::map<std::string, Link> k = {
          {"en10mb", Link::en10mb}, {"sll", Link::sll}, {"sll2", Link::sll2}, {"raw", Link::raw}, {"null", Link::null}};
      const auto it = k.find(v);
      if (it == k.end()) usage("unknown link type '" + v + "'");
      o.link = it->second;
    } else if (a == "--profile") {
      if (v != "full" && v != "sample") usage("unknown profile '" + v + "'");
      o.sample = v == "sample";
    } else {
      usage("unknown argument '" + a + "'");
    }
  }
  if (o.out.empty() || o.truth.empty() || o.config.empty()) usage("--out, --truth and --config are required");
  if (o.messages == 0) o.messages = o.sample ? 300 : 4000;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_args(argc, argv);
  try {
    Rng rng(o.seed);
    const Network net = make_network(o.home);
    Truth truth;
    {
      Writer w(o.out, o.link, o.seed, rng);
      Generator g(o, rng, w, net, truth);
      g.run(o.messages);
      w.close(o.out);
      truth.packets = w.frames();
    }
    write_file(o.truth, truth_json(truth));
    write_file(o.config, config_yaml(net, o.seed));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gen_capture: %s\n", e.what());
    return 1;
  }
  return 0;
}
