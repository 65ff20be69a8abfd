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
//                    [--linktype en10mb|sll|sll2|raw|null] [--profile full|sample|transports]
//                    [--only CONSTRUCT] [--no-home]
//   --messages   SIP datagrams to write, well-formed and malformed (default: 4000, sample 300)
//   --profile    full: UDP on every link type; sample: the small demo capture; transports: SIP over
//                TCP, IP fragments, tunnels, SCTP and WebSocket on Ethernet (fixed quantities; see
//                "The transports profile" below)
//   --only       transports: write only this construct (its frames and its share of the truth)
//   --no-home    write a config without home_networks (every peer is the sender, direction unknown)
// Exit status: 0 written, 1 I/O error, 2 bad arguments.

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <algorithm>
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

// `by_construct` (transports profile only): SIP messages per construct, in the profile's order.
std::string truth_json(const Truth& t, const std::vector<std::pair<std::string, uint64_t>>* by_construct = nullptr) {
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
  reasons("skipped", t.skipped, by_construct == nullptr ? "\n}\n" : ",\n");
  if (by_construct != nullptr) {
    j += "  \"by_construct\": {";
    const char* s = "\n    ";
    for (const auto& [name, n] : *by_construct) {
      j += s + json_str(name) + ": " + std::to_string(n);
      s = ",\n    ";
    }
    j += "\n  }\n}\n";
  }
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
  // A header line written as given: never folded, never respelled.
  void header_line(const std::string& line) { lines_.push_back(line + eol_); }
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
  std::string transport = "UDP";  // the Via transport token
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
  t.header(kVia, "SIP/2.0/" + d.transport + " " + hostport(d.a.addr, d.a.port) + branch + ";rport");
  if (r.pct(10)) {
    t.header(kVia, "SIP/2.0/" + d.transport + " " + hostport(d.a.addr, d.a.port) + ";branch=z9hG4bK" + d.branch + "x");
  }
  if (!response) t.header({"Max-Forwards"}, "70");
  t.header(kFrom, "\"Caller\" <sip:caller@" + host(d.a.addr) + ">;tag=" + d.from_tag);
  t.header(kTo, "<sip:callee@" + host(d.b.addr) + ">" + (response ? ";tag=" + d.to_tag : std::string()));
  t.header(kCallId, d.call_id);
  t.header(kCSeq, std::to_string(d.cseq) + " " + d.method);
  if (r.pct(30)) t.header({"Subject"}, "call about the quarterly report");
  if (r.pct(30)) t.header({"User-Agent", "user-agent"}, "gen_capture 1.0");
}

// What carries a message, which decides how its Content-Length may be written.
enum class Carrier {
  datagram,  // UDP (the full profile): Content-Length may be missing; bytes may follow the body
  message,   // SCTP, WebSocket: Content-Length always, in any form; nothing follows the body
  tcp,       // TCP: as message, but Content-Length spelled in full with the colon right after the
             // name and the value on the same line: the one form tshark 4.0 frames TCP by (with
             // any other it takes the message to end where the segment ends)
  tcp_odd,   // TCP: as message, but Content-Length compact (l), with LWS before the colon, or with
             // its value folded onto a continuation line (all valid, RFC 3261 sections 7.3.1, 25.1)
};

// The Content-Length header of a message with an `n`-byte body; `lead` goes before the number.
// (`n` is kept for the reader: every carrier writes the header the same way whatever the body.)
void content_length(SipText& t, Rng& r, Carrier k, size_t n, const std::string& lead) {
  const std::string v = lead + std::to_string(n);
  if (k == Carrier::tcp) {
    static const std::vector<std::string> kFull = {"Content-Length: ", "Content-Length: ", "content-length: ",
                                                   "CONTENT-LENGTH: ", "Content-Length:"};
    t.header_line(r.pick(kFull) + v);
  } else if (k == Carrier::tcp_odd) {
    const std::vector<std::string> odd = {"l: ", "l:", "Content-Length : ", "content-length\t: ",
                                          "Content-Length:" + t.eol() + " ", "l:" + t.eol() + "\t"};
    t.header_line(r.pick(odd) + v);
  } else {
    t.header(kContentLength, v);
  }
}

std::string request_text(Rng& r, const Transaction& d, Carrier k = Carrier::datagram) {
  const bool stream = k != Carrier::datagram;
  SipText t(r, false);
  t.start(d.method + " sip:callee@" + hostport(d.b.addr, d.b.port) + " SIP/2.0");
  common_headers(t, r, d, false);
  t.header({"Contact", "m"}, "<sip:caller@" + hostport(d.a.addr, d.a.port) + ">");
  const auto [body, type] = body_for(r, d.method, d.a, t.eol(), false);
  if (!type.empty()) t.header(kContentType, type);
  // Without a body, Content-Length may be absent: on UDP the body then runs to the datagram's end.
  if (stream || !body.empty() || r.pct(85)) {
    content_length(t, r, k, body.size(), r.pct(5) ? "  " : "");
    return t.finish(body, stream ? std::string() : trailer(r));
  }
  return t.finish(body, "");
}

std::string response_text(Rng& r, const Transaction& d, int code, Carrier k = Carrier::datagram) {
  const bool stream = k != Carrier::datagram;
  SipText t(r, false);
  // The reason phrase may be empty (RFC 3261 section 25.1: Reason-Phrase = *(...)).
  t.start("SIP/2.0 " + std::to_string(code) + " " + (r.pct(3) ? std::string() : reason_phrase(code)));
  common_headers(t, r, d, true);
  const auto [body, type] = body_for(r, d.method, d.b, t.eol(), true);
  if (!type.empty()) t.header(kContentType, type);
  content_length(t, r, k, body.size(), "");
  return t.finish(body, stream ? std::string() : trailer(r));
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
    frame(f);
  }

 public:
  // Writes one complete frame, 1 to 4000 microseconds after the previous one.
  void frame(const Bytes& f) {
    usec_ += r_.range(1, 4000);
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(usec_ / 1000000);
    h.ts.tv_usec = static_cast<suseconds_t>(usec_ % 1000000);
    h.caplen = h.len = static_cast<uint32_t>(f.size());
    pcap_dump(reinterpret_cast<u_char*>(dump_), &h, f.data());
    ++frames_;
  }

 private:

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
  bool transports = false;
  std::string only;  // transports: write only this construct
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
    Endpoint src{r_.pick(pools_.unnamed[fam]), sip_port()};
    Endpoint dst{r_.pick(pools_.home[fam]), 5060};
    send({std::move(src), std::move(dst), "\r\n\r\n", false}, {Outcome::skipped, "", 0, "not_sip"});
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

// ---------------------------------------------------------------------------------------------
// The transports profile
//
// `--profile transports` writes an Ethernet capture in which SIP messages of the same kinds as the
// full profile's travel over every transport a SPAN port carries. It is made of constructs (listed
// in kConstructs); each construct is a set of streams (one TCP connection, one SCTP association,
// one WebSocket connection, the fragments of one datagram, the datagrams of one UDP transaction).
// Streams are interleaved at random, at most 8 open at a time, each keeping its own order, so many
// flows are in progress at once; no two streams share a TCP/SCTP 4-tuple or an IP fragment ID.
// Each construct draws from its own random stream (seeded by --seed and its position in
// kConstructs): `--only NAME` writes exactly the frames NAME contributes to the whole capture
// (interleaved alone) and a truth equal to its share of the whole.
//
// Counting (DESIGN.md section 5, unchanged): every SIP message is counted exactly once, by its
// start line and CSeq method, with peer and direction taken from the innermost IP addresses.
// Tunnel endpoints (172.31.0.0/16 and 2001:db8:7000::/48) lie outside the home networks and the
// peer map and are never peers. A retransmitted or duplicated TCP segment is not a message. UDP
// messages are the full profile's (Content-Length sometimes missing, bytes after the body); on TCP,
// SCTP and WebSocket, Content-Length is always present and nothing follows the body (Carrier). No
// message is malformed: parse_errors must stay empty. "skipped" is left empty in the truth: how
// handshakes, ACKs, keep-alives and duplicates are filed is the exporter's own business. The key
// "by_construct" gives the SIP messages each construct carries. TCP frames carry consistent
// sequence numbers, ACK fields that acknowledge what was delivered in order (so holes yield
// duplicate ACKs), MSS/SACK/window-scale/timestamp options, and correct checksums; SCTP packets
// carry correct CRC32c checksums.
//
// What each construct holds, and what the exporter must make of it:
// udp_plain               UDP transactions on plain Ethernet (some VLAN and QinQ tags): a control
//                         group. Every datagram is one message.
// tcp_split_every_offset  One INVITE of L bytes sent on L-1 connections of its own: connection k
//                         carries bytes [0,k) and [k,L) in two segments, then a 200 in one segment.
//                         Then one connection on which the server sends one response L2 times back
//                         to back in segments of L2+1 bytes, so that copy j is cut at its offset j
//                         and each segment holds the tail of one message and the head of the next.
//                         Every copy is one message.
// tcp_multi_per_segment   Pipelined transactions: 2-6 requests in one segment, their responses in
//                         one segment or two cut anywhere. Each message counts once.
// tcp_content_length_forms  As tcp_multi_per_segment, mostly with bodies, the requests sometimes cut
//                         anywhere too, and Content-Length written compact ("l"), with LWS before
//                         the colon, or folded onto a continuation line (valid: RFC 3261 sections
//                         7.3.1, 7.3.3, 25.1), so only a full header parser finds where each
//                         message ends. Each message counts once.
// tcp_one_across_many     Messages of 2-9 KB (text bodies, or multipart bodies whose binary part
//                         holds NULs, CRLFs and blank lines) cut into 3-14 segments, some of one
//                         byte. Framing must follow Content-Length, not blank lines in bodies.
// tcp_retransmission      SYN and SYN-ACK sent twice; data segments repeated at once or later
//                         (after later data), byte for byte or rebuilt with a new IP ID and ACK; a
//                         repeated segment holding two messages; a repeated FIN. A retransmitted
//                         segment is not a message: each message counts once.
// tcp_out_of_order        A message's 2-4 segments sent in a shuffled order (duplicate ACKs
//                         between); the segments of two pipelined requests swapped. Each message
//                         counts once, when it is complete.
// tcp_keepalive           RFC 5626 CRLF keep-alives: "\r\n\r\n" pings and "\r\n" pongs in segments
//                         of their own, pings split over two segments, and "\r\n\r\n" after a
//                         message in its segment. They are not messages.
// tcp_keepalive_prefix    As tcp_keepalive, and also "\r\n\r\n" or "\r\n" before a message in the
//                         same segment, which RFC 3261 section 7.5 says to ignore: the message
//                         after it counts once.
// tcp_close_and_reuse     FIN on the segment with the last message; half-close (client FIN, then
//                         the server still answers); RST from either side (with or without ACK);
//                         the first part of a request followed by RST (that request is never
//                         complete: not counted); then, often, a new connection on the same four
//                         addresses and ports with new initial sequence numbers.
// tcp_seq_wrap            Initial sequence numbers just below 2^32: messages span the wrap.
// ipv4_frag_in_order      UDP datagrams (some over 1500 bytes, split at 1480; others split into
// ipv4_frag_reverse       pieces of 64 bytes and up) in IPv4 fragments: in order, in reverse order,
// ipv4_frag_shuffled      and shuffled with the first fragment never first on the wire (at least 3
//                         fragments). Each reassembled datagram is one message.
// ipv6_frag_in_order      The same with IPv6 Fragment headers, some after a Hop-by-Hop header.
// ipv6_frag_reverse
// ipv6_frag_shuffled
// gre                     GRE (RFC 2784/2890: plain, key, checksum, sequence) carrying IPv4 or IPv6
//                         directly (0x0800, 0x86DD), over outer IPv4 or IPv6; UDP and TCP inside.
// gre_eth                 GRE 0x6558 carrying Ethernet frames (some VLAN-tagged); UDP and TCP.
// pptp_gre                Enhanced GRE (version 1, 0x880B, key and sequence, sometimes ack) with PPP
//                         (with or without FF 03 address/control), protocol 0x0021 or 0x0057; UDP.
// erspan2                 ERSPAN type II (GRE 0x88BE, sequence bit, 8-byte header): mirror sessions
//                         from one sensor to one collector carrying both directions; UDP.
// erspan3                 ERSPAN type III (GRE 0x22EB, sequence bit, 12-byte header), likewise; UDP.
// vxlan                   VXLAN (UDP 4789, 8-byte header, I flag) with inner Ethernet; UDP.
// ipip_4in4               IPv4 in IPv4 (protocol 4); UDP and TCP inside.
// ipip_6in4               IPv6 in IPv4 (protocol 41); UDP and TCP inside.
// ipip_4in6               IPv4 in IPv6 (next header 4); UDP and TCP inside.
// mpls                    MPLS (0x8847) stacks of 1-3 labels, then IPv4 or IPv6; UDP.
// pppoe                   PPPoE session (0x8864), PPP protocol 0x0021 or 0x0057; UDP.
// gtpu                    GTP-U G-PDUs (UDP 2152, type 0xFF) with no optional fields, with a
//                         sequence number, or with a PDU Session Container extension header
//                         (E flag); inner IPv4 or IPv6, over outer IPv4 or IPv6; UDP.
// sctp                    SCTP associations (RFC 4168) with INIT, INIT ACK, COOKIE ECHO (sometimes
//                         with the first request bundled behind it), COOKIE ACK; DATA chunks
//                         bundled 1-4 a packet (some after a SACK, some unordered); messages
//                         fragmented over 2 DATA chunks (B then E) or 3 (B, middle, E) in packets
//                         of their own; HEARTBEATs; a SHUTDOWN exchange. Each complete user message
//                         is one SIP message; control chunks are none.
// websocket               RFC 7118 over TCP port 80, 8080 or 8088: an HTTP GET with Upgrade:
//                         websocket and Sec-WebSocket-Protocol: sip, a 101 answer, then text or
//                         binary frames, masked from the client and unmasked from the server, all
//                         SIP messages over 125 bytes (16-bit extended length); per connection a
//                         message fragmented over 3 frames (FIN=0, continuation, continuation
//                         FIN=1) with a ping between fragments, answered by a pong; frames several
//                         to a TCP segment and frames split across segments; close frames at the
//                         end. Each WebSocket message is one SIP message.

using Streams = std::deque<std::vector<Bytes>>;

const std::vector<std::string> kConstructs = {
    "udp_plain",           "tcp_split_every_offset", "tcp_multi_per_segment", "tcp_content_length_forms",
    "tcp_one_across_many", "tcp_retransmission",     "tcp_out_of_order",      "tcp_keepalive",
    "tcp_keepalive_prefix", "tcp_close_and_reuse",   "tcp_seq_wrap",          "ipv4_frag_in_order",
    "ipv4_frag_reverse",   "ipv4_frag_shuffled",     "ipv6_frag_in_order",    "ipv6_frag_reverse",
    "ipv6_frag_shuffled",  "gre",                    "gre_eth",               "pptp_gre",
    "erspan2",             "erspan3",                "vxlan",                 "ipip_4in4",
    "ipip_6in4",           "ipip_4in6",              "mpls",                  "pppoe",
    "gtpu",                "sctp",                   "websocket"};

void append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }
void append(Bytes& b, std::string_view s) { b.insert(b.end(), s.begin(), s.end()); }

uint32_t crc32c(const Bytes& b) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t x : b) {
    c ^= x;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}

// SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept only.
std::array<uint8_t, 20> sha1(const std::string& msg) {
  uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  std::string m = msg;
  m += static_cast<char>(0x80);
  while (m.size() % 64 != 56) m += '\0';
  const uint64_t bits = static_cast<uint64_t>(msg.size()) * 8;
  for (int i = 7; i >= 0; --i) m += static_cast<char>(bits >> (8 * i));
  auto rol = [](uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
  for (size_t off = 0; off < m.size(); off += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      w[i] = 0;
      for (int k = 0; k < 4; ++k) w[i] = w[i] << 8 | static_cast<uint8_t>(m[off + 4 * i + k]);
    }
    for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999u;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1u;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDCu;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6u;
      }
      const uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rol(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  std::array<uint8_t, 20> out{};
  for (int i = 0; i < 20; ++i) out[i] = static_cast<uint8_t>(h[i / 4] >> (24 - 8 * (i % 4)));
  return out;
}

std::string base64(const uint8_t* p, size_t n) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string s;
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = static_cast<uint32_t>(p[i]) << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    s += k[v >> 18 & 63];
    s += k[v >> 12 & 63];
    s += i + 1 < n ? k[v >> 6 & 63] : '=';
    s += i + 2 < n ? k[v & 63] : '=';
  }
  return s;
}

// ---- Layers 2 to 4

using Mac = std::array<uint8_t, 6>;

Mac random_mac(Rng& r) {
  return {0x02, static_cast<uint8_t>(r.below(256)), static_cast<uint8_t>(r.below(256)),
          static_cast<uint8_t>(r.below(256)), static_cast<uint8_t>(r.below(256)), static_cast<uint8_t>(r.below(256))};
}

// VLAN tags as TPID << 16 | TCI: mostly none, some 802.1Q, a few QinQ.
std::vector<uint32_t> random_tags(Rng& r) {
  const uint32_t k = r.below(100);
  if (k < 70) return {};
  if (k < 92) return {0x81000000u | r.range(1, 4094)};
  return {0x88A80000u | r.range(1, 4094), 0x81000000u | r.range(1, 4094)};
}

// An Ethernet frame; `pad` pads it to the 60-byte minimum (the layers inside say where they end).
Bytes ether(const Mac& dst, const Mac& src, const std::vector<uint32_t>& tags, uint16_t type, const Bytes& payload,
            bool pad) {
  Bytes f(dst.begin(), dst.end());
  f.insert(f.end(), src.begin(), src.end());
  for (uint32_t t : tags) put32(f, t);
  put16(f, type);
  append(f, payload);
  if (pad && f.size() < 60) f.resize(60, 0);
  return f;
}

uint32_t pseudo_sum(const Addr& s, const Addr& d, uint8_t proto, size_t len) {
  const size_t n = s.family == 4 ? 4 : 16;
  uint32_t acc = sum16(s.b.data(), n, 0);
  acc = sum16(d.b.data(), n, acc);
  return acc + proto + static_cast<uint32_t>(len & 0xFFFF) + static_cast<uint32_t>(len >> 16);
}

uint16_t l4_checksum(const Addr& s, const Addr& d, uint8_t proto, const Bytes& seg) {
  return fold_sum(sum16(seg.data(), seg.size(), pseudo_sum(s, d, proto, seg.size())));
}

Bytes udp_dgram(const Addr& s, const Addr& d, uint16_t sport, uint16_t dport, const Bytes& payload,
                bool checksum = true) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, static_cast<uint32_t>(8 + payload.size()));
  put16(u, 0);
  append(u, payload);
  if (checksum) {
    const uint16_t ck = l4_checksum(s, d, 17, u);
    set16(u, 6, ck == 0 ? 0xFFFF : ck);
  }
  return u;
}

// `frag`: the flags and fragment offset field (0x4000: DF).
Bytes ipv4_packet(const Addr& s, const Addr& d, uint8_t proto, const Bytes& payload, uint16_t id, uint16_t frag) {
  Bytes ip;
  ip.push_back(0x45);
  ip.push_back(0);
  put16(ip, static_cast<uint32_t>(20 + payload.size()));
  put16(ip, id);
  put16(ip, frag);
  ip.push_back(64);
  ip.push_back(proto);
  put16(ip, 0);
  ip.insert(ip.end(), s.b.begin(), s.b.begin() + 4);
  ip.insert(ip.end(), d.b.begin(), d.b.begin() + 4);
  set16(ip, 10, fold_sum(sum16(ip.data(), ip.size(), 0)));
  append(ip, payload);
  return ip;
}

// `payload` starts with the header `nh` names (extension headers included).
Bytes ipv6_packet(const Addr& s, const Addr& d, uint8_t nh, const Bytes& payload) {
  Bytes ip;
  put32(ip, 0x60000000u);
  put16(ip, static_cast<uint32_t>(payload.size()));
  ip.push_back(nh);
  ip.push_back(64);
  ip.insert(ip.end(), s.b.begin(), s.b.end());
  ip.insert(ip.end(), d.b.begin(), d.b.end());
  append(ip, payload);
  return ip;
}

// ---- Tunnels

enum class Tun { none, gre, gre_eth, pptp, erspan2, erspan3, vxlan, ipip, mpls, pppoe, gtpu };

class Ctx;

// How an inner IP packet reaches the wire between the two sides of a conversation (side 0 and 1).
struct Path {
  Tun kind = Tun::none;
  Mac mac[2];
  std::vector<uint32_t> tags;  // outer VLAN tags
  Addr out[2];                 // outer IP endpoints of IP tunnels; ERSPAN: sensor, collector
  Mac imac[2];                 // inner Ethernet (gre_eth, erspan, vxlan)
  std::vector<uint32_t> itags;
  bool pad_inner = false;
  bool g_csum = false, g_key = false, g_seq = false;
  uint32_t g_keyval = 0;
  uint32_t seqno[2] = {0, 0};
  uint16_t call_id[2] = {0, 0};
  bool ppp_acf = true, pptp_ack = false;
  uint16_t session = 0, span_vlan = 0;
  uint32_t vni = 0;
  uint16_t vx_port[2] = {0, 0};
  bool vx_checksum = false;
  std::vector<uint32_t> labels[2];
  uint32_t teid[2] = {0, 0};
  int gtp_opt = 0;  // 0: no optional fields, 1: sequence number, 2: PDU Session Container
  uint32_t erspan_ts = 0;

  Bytes frame(Ctx& c, const Bytes& ip, int fam, bool from0);
};

// One construct's generation state: its random stream, counters that keep its flows apart from
// every other construct's, and its share of the truth.
class Ctx {
 public:
  Ctx(std::string name, size_t index, uint64_t seed, const Network& net, const Pools& pools, Truth& truth,
      Streams& streams)
      : r((seed + 1) * 0x9E3779B97F4A7C15ull ^ (index + 1) * 0xD1B54A32D192ED03ull), name_(std::move(name)),
        index_(index), net_(net), pools_(pools), truth_(truth), streams_(streams),
        frag4_(static_cast<uint16_t>(index * 2048)), frag6_(static_cast<uint32_t>((index + 1) << 24)),
        ipid_(static_cast<uint16_t>(r.next())) {}

  const std::string& name() const { return name_; }
  Rng r;
  uint64_t messages = 0;

  std::vector<Bytes>& stream() {
    streams_.emplace_back();
    return streams_.back();
  }
  // A client port no other flow uses: 1000 per construct from 30000.
  uint16_t port() {
    if (ports_ >= 1000) throw std::logic_error(name_ + ": out of client ports");
    return static_cast<uint16_t>(30000 + index_ * 1000 + ports_++);
  }
  uint16_t ipid() { return ipid_++; }
  uint16_t frag_id4() {
    if (frag4_ == static_cast<uint16_t>(index_ * 2048 + 2047)) throw std::logic_error(name_ + ": out of IP IDs");
    return frag4_++;
  }
  uint32_t frag_id6() { return frag6_++; }

  void count(const Outcome& o, const Addr& src, const Addr& dst) {
    truth_.add(o, net_.attribute(src, dst));
    ++messages;
  }

  const Addr& home(int fam) { return r.pick(pools_.home[fam == 6]); }
  const Addr& outside(int fam) {
    const int i = fam == 6;
    if (r.pct(15)) return r.pick(pools_.named[i]);
    const std::vector<Addr>& u = pools_.unnamed[i];
    size_t& next = next_unnamed_[i];
    return next < u.size() ? u[next++] : r.pick(u);
  }
  // The two ends of a conversation, the initiator first, in the full profile's proportions.
  std::pair<Addr, Addr> ends(int fam) {
    const uint32_t scenario = r.below(100);
    const int i = fam == 6;
    if (scenario < 45) return {outside(fam), home(fam)};
    if (scenario < 75) {
      const Addr h = home(fam);
      return {h, outside(fam)};
    }
    if (scenario < 87) {
      const Addr h = home(fam);
      return {h, other_than(h, pools_.home[i])};
    }
    const Addr o = outside(fam);
    return {o, other_than(o, pools_.unnamed[i])};
  }
  // A tunnel endpoint: never home, never named.
  Addr transit(int fam) {
    const std::string t = fam == 4 ? "172.31." + std::to_string(r.below(256)) + "." + std::to_string(r.range(1, 254))
                                   : "2001:db8:7000::" + std::to_string(r.range(1, 9999));
    return make_addr(t);
  }
  int family() { return r.pct(30) ? 6 : 4; }

 private:
  const Addr& other_than(const Addr& a, const std::vector<Addr>& pool) {
    for (;;) {
      const Addr& b = r.pick(pool);
      if (!same_addr(a, b)) return b;
    }
  }

  std::string name_;
  size_t index_;
  const Network& net_;
  const Pools& pools_;
  Truth& truth_;
  Streams& streams_;
  uint16_t frag4_;
  uint32_t frag6_;
  uint16_t ipid_;
  uint32_t ports_ = 0;
  size_t next_unnamed_[2] = {0, 0};
};

// An inner IP packet (IPv4 never fragmented here).
Bytes ip_of(Ctx& c, const Addr& s, const Addr& d, uint8_t proto, const Bytes& l4, bool df) {
  if (s.family == 4) return ipv4_packet(s, d, proto, l4, c.ipid(), df ? 0x4000 : 0);
  return ipv6_packet(s, d, proto, l4);
}

Bytes Path::frame(Ctx& c, const Bytes& ip, int fam, bool from0) {
  const int s = from0 ? 0 : 1, d = 1 - s;
  const uint16_t et = fam == 4 ? 0x0800 : 0x86DD;
  auto outer_ip = [&](int from, int to, uint8_t proto, const Bytes& pl) {
    const bool v4 = out[from].family == 4;
    const Bytes p = v4 ? ipv4_packet(out[from], out[to], proto, pl, c.ipid(), 0x4000) : ipv6_packet(out[from], out[to], proto, pl);
    return ether(mac[to], mac[from], tags, v4 ? 0x0800 : 0x86DD, p, true);
  };
  auto inner_eth = [&]() { return ether(imac[d], imac[s], itags, et, ip, pad_inner); };
  switch (kind) {
    case Tun::none: return ether(mac[d], mac[s], tags, et, ip, true);
    case Tun::ipip: return outer_ip(s, d, fam == 4 ? 4 : 41, ip);
    case Tun::gre:
    case Tun::gre_eth: {
      Bytes g;
      put16(g, (g_csum ? 0x8000u : 0u) | (g_key ? 0x2000u : 0u) | (g_seq ? 0x1000u : 0u));
      put16(g, kind == Tun::gre ? et : 0x6558);
      if (g_csum) put32(g, 0);
      if (g_key) put32(g, g_keyval);
      if (g_seq) put32(g, seqno[s]++);
      append(g, kind == Tun::gre ? ip : inner_eth());
      if (g_csum) set16(g, 4, fold_sum(sum16(g.data(), g.size(), 0)));
      return outer_ip(s, d, 47, g);
    }
    case Tun::pptp: {
      Bytes ppp;
      if (ppp_acf) ppp = {0xFF, 0x03};
      put16(ppp, fam == 4 ? 0x0021 : 0x0057);
      append(ppp, ip);
      const bool ack = pptp_ack && seqno[d] > 0;
      Bytes g = {0x30, static_cast<uint8_t>(ack ? 0x81 : 0x01)};  // K and S; version 1 (A: ack present)
      put16(g, 0x880B);
      put16(g, static_cast<uint32_t>(ppp.size()));
      put16(g, call_id[d]);
      put32(g, seqno[s]++);
      if (ack) put32(g, seqno[d] - 1);
      append(g, ppp);
      return outer_ip(s, d, 47, g);
    }
    case Tun::erspan2:
    case Tun::erspan3: {
      // A mirror session: every mirrored frame goes from the sensor (out[0]) to the collector.
      Bytes g;
      put16(g, 0x1000);
      put16(g, kind == Tun::erspan2 ? 0x88BE : 0x22EB);
      put32(g, seqno[0]++);
      if (kind == Tun::erspan2) {
        put16(g, 0x1000u | span_vlan);          // version 1, VLAN
        put16(g, (3u << 11) | session);         // COS 0, En 3 (frames kept their tags), T 0, session
        put32(g, 0x00000000u | (seqno[0] & 0xFFFFF));  // reserved, index
      } else {
        put16(g, 0x2000u | span_vlan);          // version 2, VLAN
        put16(g, (3u << 11) | session);         // COS 0, BSO 3?, T 0, session
        erspan_ts += c.r.range(100, 5000);
        put32(g, erspan_ts);                    // timestamp
        put16(g, 0);                            // security group tag
        put16(g, (0u << 15) | (0u << 10) | (5u << 4) | (static_cast<uint32_t>(from0) << 3) | (1u << 1));  // P 0, FT 0 (Ethernet), HW ID, D, Gra 1, O 0
      }
      append(g, inner_eth());
      return outer_ip(0, 1, 47, g);
    }
    case Tun::vxlan: {
      Bytes v = {0x08, 0, 0, 0};
      put32(v, vni << 8);
      append(v, inner_eth());
      return outer_ip(s, d, 17, udp_dgram(out[s], out[d], vx_port[s], 4789, v, vx_checksum));
    }
    case Tun::gtpu: {
      const size_t extra = gtp_opt == 0 ? 0 : gtp_opt == 1 ? 4 : 8;
      Bytes g = {static_cast<uint8_t>(0x30 | (gtp_opt == 1 ? 0x02 : 0) | (gtp_opt == 2 ? 0x04 : 0)), 0xFF};
      put16(g, static_cast<uint32_t>(ip.size() + extra));
      put32(g, teid[d]);
      if (gtp_opt == 1) {
        put16(g, seqno[s]++);
        g.push_back(0);  // N-PDU number
        g.push_back(0);  // no extension header
      } else if (gtp_opt == 2) {
        put16(g, 0);
        g.push_back(0);
        g.push_back(0x85);  // next: PDU Session Container (TS 38.415)
        g.push_back(1);     // length in 4-byte units
        g.push_back(from0 ? 0x10 : 0x00);  // PDU type: UL PDU SESSION INFORMATION (1) or DL (0)
        g.push_back(9);                   // QFI
        g.push_back(0);                   // no further extension header
      }
      append(g, ip);
      return outer_ip(s, d, 17, udp_dgram(out[s], out[d], 2152, 2152, g));
    }
    case Tun::mpls: {
      Bytes m;
      for (size_t i = 0; i < labels[s].size(); ++i) {
        put32(m, labels[s][i] << 12 | (i + 1 == labels[s].size() ? 0x100u : 0u) | 64u);
      }
      append(m, ip);
      return ether(mac[d], mac[s], tags, 0x8847, m, true);
    }
    case Tun::pppoe: {
      Bytes p = {0x11, 0x00};
      put16(p, session);
      put16(p, static_cast<uint32_t>(ip.size() + 2));
      put16(p, fam == 4 ? 0x0021 : 0x0057);
      append(p, ip);
      return ether(mac[d], mac[s], tags, 0x8864, p, true);
    }
  }
  throw std::logic_error("unknown tunnel");
}

// A path of `kind`; `outer` is the outer IP family of IP tunnels.
Path make_path(Ctx& c, Tun kind, int outer = 4) {
  Path p;
  p.kind = kind;
  p.mac[0] = random_mac(c.r);
  p.mac[1] = random_mac(c.r);
  p.tags = random_tags(c.r);
  p.out[0] = c.transit(outer);
  p.out[1] = c.transit(outer);
  p.imac[0] = random_mac(c.r);
  p.imac[1] = random_mac(c.r);
  if (c.r.pct(30)) p.itags = {0x81000000u | c.r.range(1, 4094)};
  p.pad_inner = kind == Tun::erspan2 || kind == Tun::erspan3 || c.r.pct(50);
  const uint32_t g = c.r.below(6);  // GRE options: none, key, checksum, sequence, key+sequence, all
  p.g_key = g == 1 || g == 4 || g == 5;
  p.g_csum = g == 2 || g == 5;
  p.g_seq = g == 3 || g == 4 || g == 5;
  p.g_keyval = static_cast<uint32_t>(c.r.next());
  p.seqno[0] = c.r.below(1000);
  p.seqno[1] = c.r.below(1000);
  p.call_id[0] = static_cast<uint16_t>(c.r.range(1, 65535));
  p.call_id[1] = static_cast<uint16_t>(c.r.range(1, 65535));
  p.ppp_acf = c.r.pct(70);
  p.pptp_ack = c.r.pct(50);
  p.session = static_cast<uint16_t>(c.r.range(1, 1023));
  p.span_vlan = static_cast<uint16_t>(c.r.below(4095));
  p.vni = c.r.range(1, 0xFFFFFF);
  p.vx_port[0] = static_cast<uint16_t>(c.r.range(49152, 65535));
  p.vx_port[1] = static_cast<uint16_t>(c.r.range(49152, 65535));
  p.vx_checksum = c.r.pct(30);
  for (auto& l : p.labels) {
    for (uint32_t n = c.r.range(1, 3); n > 0; --n) l.push_back(c.r.range(16, 0xFFFFF));
  }
  p.teid[0] = static_cast<uint32_t>(c.r.next());
  p.teid[1] = static_cast<uint32_t>(c.r.next());
  p.gtp_opt = static_cast<int>(c.r.below(3));
  p.erspan_ts = static_cast<uint32_t>(c.r.next());
  return p;
}

// ---- SIP messages

struct Msg {
  bool from_a;  // sent by the transaction's `a` (the request's sender)
  std::string text;
  Outcome o;
};

Transaction make_tx(Ctx& c, const Endpoint& a, const Endpoint& b, const std::string& transport,
                    const std::string& method = "") {
  Transaction d;
  d.a = a;
  d.b = b;
  const uint32_t m = c.r.below(100);
  d.method = !method.empty() ? method : m < 8 ? c.r.pick(kOtherMethods) : m < 30 ? "INVITE" : c.r.pick(kMethods);
  d.cseq = c.r.pct(3) ? 2147483647u : c.r.range(1, 99999);
  d.call_id = hex(c.r, 16) + "@" + host(a.addr);
  d.from_tag = hex(c.r, 8);
  d.to_tag = hex(c.r, 8);
  d.branch = hex(c.r, 12);
  d.transport = transport;
  return d;
}

// The request and responses of one transaction, as in the full profile.
std::vector<Msg> tx_msgs(Rng& r, const Transaction& d, Carrier k) {
  const std::string label = method_label(d.method);
  std::vector<Msg> v{{true, request_text(r, d, k), {Outcome::request, label, 0, ""}}};
  std::vector<int> codes;
  if (d.method == "ACK") {
    if (r.pct(10)) codes.push_back(r.pick(kFinal));
  } else {
    if (r.pct(d.method == "INVITE" ? 70 : 10)) codes.push_back(100);
    if (d.method == "INVITE" && r.pct(60)) codes.push_back(r.pick(kProvisional));
    if (r.pct(92)) codes.push_back(r.pct(30) ? 200 : r.pick(kFinal));
  }
  for (int code : codes) v.push_back({false, response_text(r, d, code, k), {Outcome::response, label, code, ""}});
  return v;
}

// A message of about `target` bytes: a text body, or a multipart body whose binary part holds NULs,
// CRLFs and blank lines (as SIP-I bodies carrying ISUP do). `code` 0 makes the request.
std::string big_text(Rng& r, const Transaction& d, int code, size_t target, Carrier k) {
  SipText t(r, false);
  if (code == 0) {
    t.start(d.method + " sip:callee@" + hostport(d.b.addr, d.b.port) + " SIP/2.0");
  } else {
    t.start("SIP/2.0 " + std::to_string(code) + " " + reason_phrase(code));
  }
  common_headers(t, r, d, code != 0);
  if (code == 0) t.header({"Contact", "m"}, "<sip:caller@" + hostport(d.a.addr, d.a.port) + ">");
  std::string body, type;
  if (r.pct(40)) {
    const std::string boundary = "boundary-" + hex(r, 10);
    body = "--" + boundary + "\r\nContent-Type: application/sdp\r\n\r\n" + sdp(r, code == 0 ? d.a : d.b, "\r\n") +
           "\r\n--" + boundary + "\r\nContent-Type: application/octet-stream\r\nContent-Disposition: signal;handling=optional\r\n\r\n";
    while (body.size() + 64 < target) {
      switch (r.below(4)) {
        case 0: body += "\r\n\r\n"; break;
        case 1: body += std::string(r.range(1, 8), '\0'); break;
        default:
          for (uint32_t i = r.range(1, 48); i > 0; --i) body += static_cast<char>(r.below(256));
      }
    }
    body += "\r\n--" + boundary + "--\r\n";
    type = "multipart/mixed;boundary=" + boundary;
  } else {
    for (uint32_t n = 1; body.size() < target; ++n) body += "line " + std::to_string(n) + " of a long message body" + t.eol();
    type = "text/plain";
  }
  t.header(kContentType, type);
  content_length(t, r, k, body.size(), "");
  return t.finish(body, "");
}

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Sends each message of a UDP transaction through `p` (side 0 of the path is the transaction's a).
void udp_transaction(Ctx& c, Path& p, const Transaction& d, std::vector<Bytes>& out) {
  for (const Msg& m : tx_msgs(c.r, d, Carrier::datagram)) {
    const Endpoint& s = m.from_a ? d.a : d.b;
    const Endpoint& t = m.from_a ? d.b : d.a;
    const Bytes u = udp_dgram(s.addr, t.addr, s.port, t.port, bytes_of(m.text));
    out.push_back(p.frame(c, ip_of(c, s.addr, t.addr, 17, u, c.r.pct(50)), s.addr.family, m.from_a));
    c.count(m.o, s.addr, t.addr);
  }
}

// ---- TCP

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

// One segment to send: built into a frame only when pushed, so that its ACK field is what its
// sender has by then received in order.
struct Seg {
  int side;
  uint32_t seq;
  uint8_t flags;
  std::string data;
};

// One TCP connection between side 0 (the client) and side 1 (the server). seg()/segments() take
// sequence space in order; push() builds the frame with correct sequence and acknowledgement
// numbers (the ACK field acknowledges what the sender has received in order so far, so a segment
// pushed after a hole yields duplicate ACKs) and appends it to the stream; callers choose the order.
class TcpConn {
 public:
  TcpConn(Ctx& c, Path& p, const Endpoint& client, const Endpoint& server, std::vector<Bytes>& out)
      : c_(c), p_(p), out_(out) {
    ep[0] = client;
    ep[1] = server;
    nxt[0] = static_cast<uint32_t>(c.r.next());
    nxt[1] = static_cast<uint32_t>(c.r.next());
    ts_ = c.r.pct(60);
    tsval_[0] = static_cast<uint32_t>(c.r.next());
    tsval_[1] = static_cast<uint32_t>(c.r.next());
    win_[0] = static_cast<uint16_t>(c.r.range(1024, 65535));
    win_[1] = static_cast<uint16_t>(c.r.range(1024, 65535));
    mss = static_cast<uint16_t>((client.addr.family == 4 ? 1460 : 1440) - (p.kind == Tun::none ? 0 : 100));
  }

  Endpoint ep[2];
  uint32_t nxt[2];  // the next sequence number each side sends (set before open() to choose the ISN)
  uint16_t mss;

  // The next segment of `side`, taking its sequence space (SYN and FIN count one).
  Seg seg(int side, uint8_t flags, std::string_view data) {
    Seg s{side, nxt[side], flags, std::string(data)};
    nxt[side] += static_cast<uint32_t>(data.size()) + ((flags & (kSyn | kFin)) ? 1 : 0);
    return s;
  }
  // Segments carrying `data` from `side`, cut at the ascending offsets `cuts`; PSH and
  // `last_flags` (kFin: it also closes that side) on the last one.
  std::vector<Seg> segments(int side, std::string_view data, const std::vector<size_t>& cuts, uint8_t last_flags = 0) {
    std::vector<Seg> v;
    size_t from = 0;
    for (size_t i = 0; i <= cuts.size(); ++i) {
      const size_t to = i < cuts.size() ? cuts[i] : data.size();
      const bool last = i == cuts.size();
      v.push_back(seg(side, static_cast<uint8_t>(kAck | (last ? kPsh | last_flags : 0)), data.substr(from, to - from)));
      from = to;
    }
    return v;
  }
  // Builds `s` now (a new IP ID, the current ACK and timestamp), appends it and returns the frame.
  Bytes push(const Seg& s) {
    const Bytes f = build(s);
    out_.push_back(f);
    deliver(s);
    return f;
  }
  // A byte-exact copy of a frame pushed before.
  void push_copy(const Bytes& f) { out_.push_back(f); }

  // Cuts that keep every segment within the MSS.
  std::vector<size_t> mss_cuts(size_t n) const {
    std::vector<size_t> v;
    for (size_t at = mss; at < n; at += mss) v.push_back(at);
    return v;
  }
  void send(int side, std::string_view data, uint8_t last_flags = 0) {
    for (const Seg& s : segments(side, data, mss_cuts(data.size()), last_flags)) push(s);
  }
  void ack(int side) { push(Seg{side, nxt[side], kAck, {}}); }
  // The three-way handshake; `dup_syn`/`dup_synack` repeat a frame byte for byte.
  void open(bool dup_syn = false, bool dup_synack = false) {
    const Bytes syn = push(seg(0, kSyn, {}));
    if (dup_syn) push_copy(syn);
    const Bytes synack = push(seg(1, kSyn | kAck, {}));
    if (dup_synack) push_copy(synack);
    ack(0);
  }
  // FIN from `first`, FIN from the other side, the last ACK.
  void fin(int first) {
    push(seg(first, kFin | kAck, {}));
    push(seg(1 - first, kFin | kAck, {}));
    ack(first);
  }
  void rst(int side, bool with_ack = true) { push(Seg{side, nxt[side], static_cast<uint8_t>(with_ack ? kRst | kAck : kRst), {}}); }
  void close() {
    if (c_.r.pct(85)) {
      fin(c_.r.pct(60) ? 0 : 1);
    } else {
      rst(c_.r.pct(50) ? 0 : 1);
    }
  }

 private:
  Bytes build(const Seg& g) {
    const int side = g.side;
    const Endpoint& s = ep[side];
    const Endpoint& d = ep[1 - side];
    Bytes o;
    if (g.flags & kSyn) {
      put16(o, 0x0204);
      put16(o, mss);
      if (ts_) {
        o.insert(o.end(), {4, 2, 8, 10});
        put32(o, tsval_[side]);
        put32(o, (g.flags & kAck) ? tsval_[1 - side] : 0);
        o.insert(o.end(), {1, 3, 3, 7});
      } else {
        o.insert(o.end(), {1, 3, 3, 7, 1, 1, 4, 2});
      }
    } else if (ts_ && !(g.flags & kRst)) {
      o.insert(o.end(), {1, 1, 8, 10});
      put32(o, tsval_[side]);
      put32(o, tsval_[1 - side]);
    }
    tsval_[side] += c_.r.range(0, 3);
    Bytes t;
    put16(t, s.port);
    put16(t, d.port);
    put32(t, g.seq);
    put32(t, (g.flags & kAck) ? rcv_[1 - side] : 0);
    t.push_back(static_cast<uint8_t>((20 + o.size()) / 4 << 4));
    t.push_back(g.flags);
    put16(t, win_[side]);
    put16(t, 0);
    put16(t, 0);
    append(t, o);
    append(t, g.data);
    set16(t, 16, l4_checksum(s.addr, d.addr, 6, t));
    return p_.frame(c_, ip_of(c_, s.addr, d.addr, 6, t, true), s.addr.family, side == 0);
  }
  // Notes what the peer of `g.side` has now received in order.
  void deliver(const Seg& g) {
    const uint32_t len = static_cast<uint32_t>(g.data.size()) + ((g.flags & (kSyn | kFin)) ? 1 : 0);
    if (len == 0) return;
    uint32_t& r = rcv_[g.side];
    if (g.flags & kSyn) r = g.seq;
    held_[g.side].push_back({g.seq, g.seq + len});
    for (bool moved = true; moved;) {
      moved = false;
      for (auto it = held_[g.side].begin(); it != held_[g.side].end(); ++it) {
        if (static_cast<int32_t>(it->first - r) <= 0) {
          if (static_cast<int32_t>(it->second - r) > 0) r = it->second;
          held_[g.side].erase(it);
          moved = true;
          break;
        }
      }
    }
  }

  Ctx& c_;
  Path& p_;
  std::vector<Bytes>& out_;
  bool ts_;
  uint32_t tsval_[2];
  uint16_t win_[2];
  uint32_t rcv_[2] = {0, 0};  // per side: the next byte its peer expects from it
  std::vector<std::pair<uint32_t, uint32_t>> held_[2];  // per side: delivered ranges beyond a hole
};

// Random ascending cuts splitting n bytes into `pieces` non-empty parts (no part over `max`).
std::vector<size_t> random_cuts(Rng& r, size_t n, size_t pieces, size_t max) {
  for (;;) {
    pieces = std::min(pieces, n);
    std::vector<size_t> v;
    while (v.size() + 1 < pieces) {
      const size_t at = 1 + r.below(static_cast<uint32_t>(n - 1));
      if (std::find(v.begin(), v.end(), at) == v.end()) v.push_back(at);
    }
    std::sort(v.begin(), v.end());
    size_t prev = 0;
    bool ok = true;
    for (size_t i = 0; i <= v.size(); ++i) {
      const size_t at = i < v.size() ? v[i] : n;
      ok = ok && at - prev <= max;
      prev = at;
    }
    if (ok) return v;
    ++pieces;  // too few pieces for the MSS: add one
  }
}

// A client and a server for a TCP connection on `p`: the server listens on 5060.
TcpConn open_tcp(Ctx& c, Path& p, std::vector<Bytes>& out, int fam) {
  const auto [a, b] = c.ends(fam);
  return TcpConn(c, p, {a, c.port()}, {b, 5060}, out);
}

// `n` transactions on an open connection, mostly started by the client, each message sent whole
// (cut at the MSS), the receiver ACKing now and then.
void tcp_talk(Ctx& c, TcpConn& t, int n, Carrier k = Carrier::tcp, const std::vector<std::string>& methods = {}) {
  for (int i = 0; i < n; ++i) {
    const int a_side = c.r.pct(15) ? 1 : 0;
    const Transaction d = make_tx(c, t.ep[a_side], t.ep[1 - a_side], "TCP", methods.empty() ? "" : c.r.pick(methods));
    for (const Msg& m : tx_msgs(c.r, d, k)) {
      const int side = m.from_a ? a_side : 1 - a_side;
      t.send(side, m.text);
      c.count(m.o, t.ep[side].addr, t.ep[1 - side].addr);
      if (c.r.pct(50)) t.ack(1 - side);
    }
  }
}

// ---- The constructs

void c_udp_plain(Ctx& c) {
  for (int i = 0; i < 40; ++i) {
    const int fam = c.family();
    Path p = make_path(c, Tun::none);
    const auto [a, b] = c.ends(fam);
    udp_transaction(c, p, make_tx(c, {a, c.r.pct(70) ? uint16_t{5060} : c.port()}, {b, 5060}, "UDP"), c.stream());
  }
}

void c_tcp_split_every_offset(Ctx& c) {
  // One INVITE, each of its L-1 cuts on a connection of its own.
  const int fam = c.family();
  const Addr client = c.outside(fam), server = c.home(fam);
  std::string req, resp;
  Transaction d;
  do {
    d = make_tx(c, {client, 5060}, {server, 5060}, "TCP", "INVITE");
    req = request_text(c.r, d, Carrier::tcp);
  } while (req.size() < 300 || req.size() > 990);
  resp = response_text(c.r, d, 200, Carrier::tcp);
  for (size_t k = 1; k < req.size(); ++k) {
    Path p = make_path(c, Tun::none);
    TcpConn t(c, p, {client, c.port()}, {server, 5060}, c.stream());
    t.open();
    for (const Seg& g : t.segments(0, req, {k})) t.push(g);
    c.count({Outcome::request, "INVITE", 0, ""}, client, server);
    t.ack(1);
    t.send(1, resp);
    c.count({Outcome::response, "INVITE", 200, ""}, server, client);
    t.close();
  }
  // One response, L2 copies back to back, copy j cut at its offset j.
  const int fam2 = fam == 4 ? 6 : 4;
  const Addr cl2 = c.outside(fam2), sv2 = c.home(fam2);
  Path p = make_path(c, Tun::none);
  TcpConn t(c, p, {cl2, c.port()}, {sv2, 5060}, c.stream());
  t.open();
  const Transaction d2 = make_tx(c, t.ep[0], t.ep[1], "TCP", "INVITE");
  const std::string r2 = request_text(c.r, d2, Carrier::tcp);
  t.send(0, r2);
  c.count({Outcome::request, "INVITE", 0, ""}, cl2, sv2);
  std::string s2;
  int code = 0;
  do {
    code = c.r.pct(50) ? 183 : 200;
    s2 = response_text(c.r, d2, code, Carrier::tcp);
  } while (s2.size() < 200 || s2.size() + 1 > t.mss);
  const size_t l2 = s2.size();
  std::string all;
  for (size_t j = 0; j < l2; ++j) all += s2;
  std::vector<size_t> cuts;
  for (size_t j = 1; j < l2; ++j) cuts.push_back(j * l2 + j);
  const std::vector<Seg> segs = t.segments(1, all, cuts);
  for (size_t j = 0; j < segs.size(); ++j) {
    t.push(segs[j]);
    if (j % 2 == 1) t.ack(0);
  }
  for (size_t j = 0; j < l2; ++j) c.count({Outcome::response, "INVITE", code, ""}, sv2, cl2);
  t.close();
}

void c_tcp_multi_per_segment(Ctx& c, Carrier k = Carrier::tcp, const std::vector<std::string>& methods = {}) {
  for (int i = 0; i < 25; ++i) {
    Path p = make_path(c, Tun::none);
    TcpConn t = open_tcp(c, p, c.stream(), c.family());
    t.open();
    for (uint32_t round = c.r.range(2, 4); round > 0; --round) {
      const int a_side = c.r.pct(20) ? 1 : 0;
      std::string asks, answers;
      for (uint32_t n = c.r.range(2, 6); n > 0; --n) {
        const Transaction d = make_tx(c, t.ep[a_side], t.ep[1 - a_side], "TCP", methods.empty() ? "" : c.r.pick(methods));
        for (const Msg& m : tx_msgs(c.r, d, k)) {
          (m.from_a ? asks : answers) += m.text;
          const int side = m.from_a ? a_side : 1 - a_side;
          c.count(m.o, t.ep[side].addr, t.ep[1 - side].addr);
        }
      }
      // All the requests in one segment (cut at the MSS only if they must be; with odd
      // Content-Length forms, also cut anywhere).
      if (k == Carrier::tcp_odd && c.r.pct(50)) {
        for (const Seg& g : t.segments(a_side, asks, random_cuts(c.r, asks.size(), c.r.range(2, 4), t.mss))) t.push(g);
      } else {
        t.send(a_side, asks);
      }
      t.ack(1 - a_side);
      // The responses in one or two segments, the second cut anywhere.
      if (!answers.empty()) {
        std::vector<size_t> cuts = t.mss_cuts(answers.size());
        if (cuts.empty() && c.r.pct(60)) cuts.push_back(1 + c.r.below(static_cast<uint32_t>(answers.size() - 1)));
        for (const Seg& g : t.segments(1 - a_side, answers, cuts)) t.push(g);
        t.ack(a_side);
      }
    }
    t.close();
  }
}

void c_tcp_one_across_many(Ctx& c) {
  for (int i = 0; i < 20; ++i) {
    Path p = make_path(c, Tun::none);
    TcpConn t = open_tcp(c, p, c.stream(), c.family());
    t.open();
    for (uint32_t n = c.r.range(1, 3); n > 0; --n) {
      static const std::vector<std::string> kBig = {"INVITE", "MESSAGE", "NOTIFY", "PUBLISH", "INFO", "UPDATE"};
      const Transaction d = make_tx(c, t.ep[0], t.ep[1], "TCP", c.r.pick(kBig));
      const bool big_answer = c.r.pct(30);
      const std::string req = big_text(c.r, d, 0, c.r.range(2000, 9000), Carrier::tcp);
      const std::string resp = big_answer ? big_text(c.r, d, 200, c.r.range(2000, 6000), Carrier::tcp) : response_text(c.r, d, 200, Carrier::tcp);
      for (auto [side, text] : {std::pair<int, const std::string*>{0, &req}, {1, &resp}}) {
        // 3 to 14 pieces, at most one MSS each, with a 1-byte piece now and then.
        std::vector<size_t> cuts = random_cuts(c.r, text->size(), c.r.range(3, 14), t.mss);
        if (c.r.pct(40) && cuts.size() >= 2 && cuts[0] + 1 < cuts[1]) cuts.insert(cuts.begin() + 1, cuts[0] + 1);
        if (text->size() < 1000 && !big_answer) cuts = {};  // an ordinary response: whole
        const std::vector<Seg> segs = t.segments(side, *text, cuts);
        for (size_t j = 0; j < segs.size(); ++j) {
          t.push(segs[j]);
          if (j % 3 == 2) t.ack(1 - side);
        }
        const Outcome o = side == 0 ? Outcome{Outcome::request, method_label(d.method), 0, ""}
                                    : Outcome{Outcome::response, method_label(d.method), 200, ""};
        c.count(o, t.ep[side].addr, t.ep[1 - side].addr);
        t.ack(1 - side);
      }
    }
    t.close();
  }
}

void c_tcp_retransmission(Ctx& c) {
  for (int i = 0; i < 25; ++i) {
    Path p = make_path(c, Tun::none);
    TcpConn t = open_tcp(c, p, c.stream(), c.family());
    t.open(c.r.pct(30), c.r.pct(20));
    std::vector<Bytes> late;  // repeated later, after newer data
    for (uint32_t n = c.r.range(3, 6); n > 0; --n) {
      const int a_side = c.r.pct(15) ? 1 : 0;
      const Transaction d = make_tx(c, t.ep[a_side], t.ep[1 - a_side], "TCP");
      const std::vector<Msg> msgs = tx_msgs(c.r, d, Carrier::tcp);
      for (size_t k = 0; k < msgs.size(); ++k) {
        const Msg& m = msgs[k];
        const int side = m.from_a ? a_side : 1 - a_side;
        std::string data = m.text;
        // Sometimes two messages of one side share a segment, and that segment is repeated.
        const bool pair = k + 1 < msgs.size() && msgs[k + 1].from_a == m.from_a && c.r.pct(40);
        if (pair) data += msgs[k + 1].text;
        std::vector<size_t> cuts = t.mss_cuts(data.size());
        if (cuts.empty() && c.r.pct(50)) cuts = random_cuts(c.r, data.size(), c.r.range(2, 3), t.mss);
        for (const Seg& g : t.segments(side, data, cuts)) {
          const Bytes f = t.push(g);
          const uint32_t e = c.r.below(100);
          if (e < 30) {
            t.push_copy(f);  // a byte-exact duplicate at once
          } else if (e < 45) {
            late.push_back(f);  // a byte-exact duplicate after later data
          } else if (e < 55) {
            t.push(g);  // a real retransmission: the same bytes, a new IP ID, ACK and timestamp
          }
        }
        c.count(m.o, t.ep[side].addr, t.ep[1 - side].addr);
        if (pair) {
          ++k;
          c.count(msgs[k].o, t.ep[side].addr, t.ep[1 - side].addr);
        }
        if (c.r.pct(50)) t.ack(1 - side);
        if (!late.empty() && c.r.pct(50)) {
          for (const Bytes& f : late) t.push_copy(f);
          late.clear();
        }
      }
    }
    for (const Bytes& f : late) t.push_copy(f);
    if (c.r.pct(30)) {
      t.push_copy(t.push(t.seg(0, kFin | kAck, {})));  // the FIN repeated
      t.push(t.seg(1, kFin | kAck, {}));
      t.ack(0);
    } else {
      t.close();
    }
  }
}

// A non-identity permutation of n >= 2 items.
std::vector<size_t> shuffled(Rng& r, size_t n, bool first_not_first) {
  std::vector<size_t> v(n);
  for (;;) {
    for (size_t i = 0; i < n; ++i) v[i] = i;
    for (size_t i = n - 1; i > 0; --i) std::swap(v[i], v[r.below(static_cast<uint32_t>(i + 1))]);
    bool identity = true;
    for (size_t i = 0; i < n; ++i) identity = identity && v[i] == i;
    if (!identity && (!first_not_first || v[0] != 0)) return v;
  }
}

void c_tcp_out_of_order(Ctx& c) {
  for (int i = 0; i < 25; ++i) {
    Path p = make_path(c, Tun::none);
    TcpConn t = open_tcp(c, p, c.stream(), c.family());
    t.open();
    for (uint32_t n = c.r.range(2, 5); n > 0; --n) {
      const int a_side = c.r.pct(15) ? 1 : 0;
      if (c.r.pct(35)) {
        // Two pipelined requests in one segment each, the second sent first; then the responses.
        std::string texts[2];
        std::vector<Msg> answers;
        for (std::string& text : texts) {
          const Transaction d = make_tx(c, t.ep[a_side], t.ep[1 - a_side], "TCP");
          for (const Msg& m : tx_msgs(c.r, d, Carrier::tcp)) {
            if (m.from_a) {
              text = m.text;
              c.count(m.o, t.ep[a_side].addr, t.ep[1 - a_side].addr);
            } else {
              answers.push_back(m);
            }
          }
        }
        if (texts[0].size() + texts[1].size() > t.mss) {
          t.send(a_side, texts[0]);
          t.send(a_side, texts[1]);
        } else {
          const std::vector<Seg> segs = t.segments(a_side, texts[0] + texts[1], {texts[0].size()});
          t.push(segs[1]);
          t.push(segs[0]);
        }
        for (const Msg& m : answers) {
          t.send(1 - a_side, m.text);
          c.count(m.o, t.ep[1 - a_side].addr, t.ep[a_side].addr);
        }
        continue;
      }
      const Transaction d = make_tx(c, t.ep[a_side], t.ep[1 - a_side], "TCP");
      for (const Msg& m : tx_msgs(c.r, d, Carrier::tcp)) {
        const int side = m.from_a ? a_side : 1 - a_side;
        if (c.r.pct(70)) {
          // 2 to 4 segments in a shuffled order.
          const std::vector<size_t> cuts = random_cuts(c.r, m.text.size(), c.r.range(2, 4), t.mss);
          const std::vector<Seg> segs = t.segments(side, m.text, cuts);
          for (size_t j : shuffled(c.r, segs.size(), false)) {
            t.push(segs[j]);
            if (c.r.pct(30)) t.ack(1 - side);  // a duplicate ACK while there is a hole
          }
        } else {
          t.send(side, m.text);
        }
        c.count(m.o, t.ep[side].addr, t.ep[1 - side].addr);
        if (c.r.pct(50)) t.ack(1 - side);
      }
    }
    t.close();
  }
}

// `prefix`: keep-alives also share a segment with the message after them.
void c_tcp_keepalive(Ctx& c, bool prefix) {
  for (int i = 0; i < 20; ++i) {
    Path p = make_path(c, Tun::none);
    TcpConn t = open_tcp(c, p, c.stream(), c.family());
    t.open();
    for (uint32_t n = c.r.range(3, 6); n > 0; --n) {
      // A ping and its pong between transactions, in their own segments.
      const int pinger = c.r.pct(75) ? 0 : 1;
      if (c.r.pct(30)) {
        for (const Seg& g : t.segments(pinger, "\r\n\r\n", {2})) t.push(g);  // split over two segments
      } else {
        t.send(pinger, "\r\n\r\n");
      }
      t.send(1 - pinger, "\r\n");
      const int a_side = c.r.pct(15) ? 1 : 0;
      const Transaction d = make_tx(c, t.ep[a_side], t.ep[1 - a_side], "TCP");
      for (const Msg& m : tx_msgs(c.r, d, Carrier::tcp)) {
        const int side = m.from_a ? a_side : 1 - a_side;
        const uint32_t k = c.r.below(100);
        // A keep-alive after (or, with `prefix`, before) the message in the same segment.
        std::string data = m.text;
        if (k < 25) {
          data += "\r\n\r\n";
        } else if (prefix && k < 75) {
          data = (k < 60 ? "\r\n\r\n" : "\r\n") + data;
        }
        t.send(side, data);
        c.count(m.o, t.ep[side].addr, t.ep[1 - side].addr);
        if (c.r.pct(50)) t.ack(1 - side);
      }
    }
    t.close();
  }
}

// Pipelined messages, mostly with bodies, whose Content-Length is compact, has LWS before the colon
// or is folded: several to a segment and cut anywhere, so only Content-Length tells where each ends.
void c_tcp_content_length_forms(Ctx& c) {
  static const std::vector<std::string> kWithBodies = {"INVITE", "INVITE", "MESSAGE", "INFO", "NOTIFY", "UPDATE",
                                                       "PRACK", "OPTIONS", "BYE"};
  c_tcp_multi_per_segment(c, Carrier::tcp_odd, kWithBodies);
}

void c_tcp_close_and_reuse(Ctx& c) {
  for (int i = 0; i < 25; ++i) {
    std::vector<Bytes>& out = c.stream();
    Path p = make_path(c, Tun::none);
    const int fam = c.family();
    const auto [a, b] = c.ends(fam);
    const Endpoint client{a, c.port()}, server{b, 5060};
    const int variants = 1 + (c.r.pct(60) ? 1 : 0);
    for (int conn = 0; conn < variants; ++conn) {
      TcpConn t(c, p, client, server, out);  // the same four addresses and ports, new ISNs
      t.open();
      tcp_talk(c, t, static_cast<int>(c.r.range(1, 3)));
      const uint32_t v = c.r.below(5);
      const Transaction d = make_tx(c, t.ep[0], t.ep[1], "TCP");
      const std::vector<Msg> msgs = tx_msgs(c.r, d, Carrier::tcp);
      switch (v) {
        case 0: {  // the request, then the last response with FIN in one segment
          t.send(0, msgs[0].text);
          c.count(msgs[0].o, a, b);
          for (size_t k = 1; k < msgs.size(); ++k) {
            t.send(1, msgs[k].text, k + 1 == msgs.size() ? kFin : 0);
            c.count(msgs[k].o, b, a);
          }
          if (msgs.size() == 1) t.push(t.seg(1, kFin | kAck, {}));
          t.push(t.seg(0, kFin | kAck, {}));
          t.ack(1);
          break;
        }
        case 1: {  // half-close: the client's FIN right after its request; the server still answers
          t.send(0, msgs[0].text, kFin);
          c.count(msgs[0].o, a, b);
          t.ack(1);
          for (size_t k = 1; k < msgs.size(); ++k) {
            t.send(1, msgs[k].text);
            c.count(msgs[k].o, b, a);
            t.ack(0);
          }
          t.push(t.seg(1, kFin | kAck, {}));
          t.ack(0);
          break;
        }
        case 2:  // the exchange, then RST from either side, with or without ACK
        case 3: {
          for (const Msg& m : msgs) {
            const int side = m.from_a ? 0 : 1;
            t.send(side, m.text);
            c.count(m.o, t.ep[side].addr, t.ep[1 - side].addr);
          }
          t.rst(v == 2 ? 1 : 0, c.r.pct(70));
          break;
        }
        default: {  // half a request, then RST: that request never completes and is not counted
          const size_t half = 1 + c.r.below(static_cast<uint32_t>(msgs[0].text.size() - 2));
          t.push(t.segments(0, std::string_view(msgs[0].text).substr(0, half), {})[0]);
          t.rst(c.r.pct(50) ? 0 : 1);
          break;
        }
      }
    }
  }
}

void c_tcp_seq_wrap(Ctx& c) {
  for (int i = 0; i < 12; ++i) {
    Path p = make_path(c, Tun::none);
    TcpConn t = open_tcp(c, p, c.stream(), c.family());
    for (uint32_t& n : t.nxt) {
      if (c.r.pct(75)) n = 0xFFFFFFFFu - c.r.below(1500);
    }
    t.open();
    for (uint32_t n = c.r.range(2, 4); n > 0; --n) {
      const Transaction d = make_tx(c, t.ep[0], t.ep[1], "TCP");
      for (const Msg& m : tx_msgs(c.r, d, Carrier::tcp)) {
        const int side = m.from_a ? 0 : 1;
        for (const Seg& g : t.segments(side, m.text, random_cuts(c.r, m.text.size(), c.r.range(1, 4), t.mss))) t.push(g);
        c.count(m.o, t.ep[side].addr, t.ep[1 - side].addr);
        t.ack(1 - side);
      }
    }
    t.close();
  }
}

// One UDP datagram in IP fragments, in `order`: 0 as sent, 1 reversed, 2 shuffled with the first
// fragment not first (and at least 3 fragments). Pieces of 1480 (IPv4) or 1440 (IPv6) bytes when
// the datagram is large enough, else of 64 bytes or more; always a multiple of 8 but the last.
void fragments(Ctx& c, Path& p, const Endpoint& s, const Endpoint& d, const std::string& text, int order) {
  const Bytes u = udp_dgram(s.addr, d.addr, s.port, d.port, bytes_of(text));
  const bool v4 = s.addr.family == 4;
  const size_t mtu_piece = v4 ? 1480 : 1440;
  const size_t min_pieces = order == 2 ? 3 : 2;
  size_t size = u.size() > mtu_piece * (min_pieces - 1) + 8 && c.r.pct(60) ? mtu_piece : 0;
  if (size == 0) {
    const size_t max8 = (u.size() - 1) / (8 * min_pieces) * 8;  // at least min_pieces pieces
    size = 8 * c.r.range(8, static_cast<uint32_t>(std::max<size_t>(max8 / 8, 8)));
  }
  std::vector<Bytes> frags;
  const uint16_t id4 = v4 ? c.frag_id4() : 0;
  const uint32_t id6 = v4 ? 0 : c.frag_id6();
  const bool hbh = !v4 && c.r.pct(30);
  for (size_t off = 0; off < u.size(); off += size) {
    const size_t n = std::min(size, u.size() - off);
    const bool more = off + n < u.size();
    const Bytes piece(u.begin() + static_cast<std::ptrdiff_t>(off), u.begin() + static_cast<std::ptrdiff_t>(off + n));
    Bytes ip;
    if (v4) {
      ip = ipv4_packet(s.addr, d.addr, 17, piece, id4, static_cast<uint16_t>((more ? 0x2000 : 0) | off / 8));
    } else {
      Bytes ext;
      if (hbh) ext = {44, 0, 1, 4, 0, 0, 0, 0};  // Hop-by-Hop: PadN
      ext.push_back(17);
      ext.push_back(0);
      put16(ext, static_cast<uint32_t>(off | (more ? 1 : 0)));
      put32(ext, id6);
      append(ext, piece);
      ip = ipv6_packet(s.addr, d.addr, hbh ? 0 : 44, ext);
    }
    frags.push_back(p.frame(c, ip, s.addr.family, true));
  }
  if (frags.size() < min_pieces) throw std::logic_error("too few fragments");
  std::vector<Bytes>& out = c.stream();
  if (order == 0) {
    out = frags;
  } else if (order == 1) {
    out.assign(frags.rbegin(), frags.rend());
  } else {
    for (size_t j : shuffled(c.r, frags.size(), true)) out.push_back(frags[j]);
  }
}

void frag_construct(Ctx& c, int fam, int order) {
  for (int i = 0; i < 25; ++i) {
    const auto [a, b] = c.ends(fam);
    Transaction d = make_tx(c, {a, c.r.pct(70) ? uint16_t{5060} : c.port()}, {b, 5060}, "UDP");
    std::vector<Msg> msgs = tx_msgs(c.r, d, Carrier::datagram);
    if (c.r.pct(30)) msgs[0].text = big_text(c.r, d, 0, c.r.range(1600, 5000), Carrier::datagram);  // needs the MTU split
    for (const Msg& m : msgs) {
      Path p = make_path(c, Tun::none);
      const Endpoint& s = m.from_a ? d.a : d.b;
      const Endpoint& t = m.from_a ? d.b : d.a;
      fragments(c, p, s, t, m.text, order);
      c.count(m.o, s.addr, t.addr);
    }
  }
}

// `n_udp` UDP transactions and `n_tcp` TCP connections through three tunnels of one kind; an
// `outer_fam` or `inner_fam` of 0 picks the family per tunnel or per conversation.
void tunnel_construct(Ctx& c, Tun kind, int outer_fam, int inner_fam, int n_udp, int n_tcp) {
  std::vector<Path> paths;
  for (int i = 0; i < 3; ++i) {
    const int of = outer_fam != 0 ? outer_fam : c.r.pct(25) ? 6 : 4;
    paths.push_back(make_path(c, kind, of));
  }
  auto fam = [&]() { return inner_fam != 0 ? inner_fam : c.family(); };
  for (int i = 0; i < n_udp; ++i) {
    Path& p = paths[c.r.below(static_cast<uint32_t>(paths.size()))];
    const auto [a, b] = c.ends(fam());
    udp_transaction(c, p, make_tx(c, {a, c.r.pct(70) ? uint16_t{5060} : c.port()}, {b, 5060}, "UDP"), c.stream());
  }
  for (int i = 0; i < n_tcp; ++i) {
    Path& p = paths[c.r.below(static_cast<uint32_t>(paths.size()))];
    TcpConn t = open_tcp(c, p, c.stream(), fam());
    t.open();
    tcp_talk(c, t, static_cast<int>(c.r.range(2, 4)));
    t.close();
  }
}

// ---- SCTP (RFC 4960) carrying SIP (RFC 4168)

class SctpAssoc {
 public:
  SctpAssoc(Ctx& c, Path& p, const Endpoint& a, const Endpoint& b, std::vector<Bytes>& out) : c_(c), p_(p), out_(out) {
    ep[0] = a;
    ep[1] = b;
    for (int s = 0; s < 2; ++s) {
      tag_[s] = static_cast<uint32_t>(c.r.next()) | 1;
      tsn_[s] = static_cast<uint32_t>(c.r.next());
    }
  }
  Endpoint ep[2];

  static Bytes chunk(uint8_t type, uint8_t flags, const Bytes& value) {
    Bytes ch = {type, flags};
    put16(ch, static_cast<uint32_t>(4 + value.size()));
    append(ch, value);
    while (ch.size() % 4) ch.push_back(0);
    return ch;
  }
  Bytes packet(int side, const std::vector<Bytes>& chunks, bool init = false) {
    Bytes s;
    put16(s, ep[side].port);
    put16(s, ep[1 - side].port);
    put32(s, init ? 0 : tag_[1 - side]);
    put32(s, 0);
    for (const Bytes& ch : chunks) append(s, ch);
    const uint32_t crc = crc32c(s);
    for (int i = 0; i < 4; ++i) s[8 + i] = static_cast<uint8_t>(crc >> (8 * i));
    return p_.frame(c_, ip_of(c_, ep[side].addr, ep[1 - side].addr, 132, s, true), ep[side].addr.family, side == 0);
  }
  void send(int side, const std::vector<Bytes>& chunks) { out_.push_back(packet(side, chunks)); }

  Bytes data(int side, uint8_t flags, uint16_t stream, uint16_t ssn, std::string_view piece) {
    Bytes v;
    put32(v, tsn_[side]++);
    put16(v, stream);
    put16(v, ssn);
    put32(v, 0);  // payload protocol identifier: unspecified (none is registered for SIP)
    append(v, piece);
    return chunk(0, flags, v);
  }
  Bytes sack(int side) {
    Bytes v;
    put32(v, tsn_[1 - side] - 1);
    put32(v, 65536);
    put32(v, 0);  // no gap blocks, no duplicate TSNs
    return chunk(3, 0, v);
  }
  // INIT and INIT ACK; then cookie() sends COOKIE ECHO (with `bundled` DATA behind it) and COOKIE ACK.
  void init() {
    auto init = [&](int side, uint8_t type, bool cookie) {
      Bytes v;
      put32(v, tag_[side]);
      put32(v, 106496);
      put16(v, 10);
      put16(v, 10);
      put32(v, tsn_[side]);
      if (cookie) {
        put16(v, 7);
        put16(v, 4 + 32);
        for (int i = 0; i < 32; ++i) v.push_back(static_cast<uint8_t>(cookie_[i] = static_cast<uint8_t>(c_.r.below(256))));
      }
      return chunk(type, 0, v);
    };
    out_.push_back(packet(0, {init(0, 1, false)}, true));
    send(1, {init(1, 2, true)});
  }
  void cookie(const std::vector<Bytes>& bundled) {
    std::vector<Bytes> echo = {chunk(10, 0, Bytes(cookie_, cookie_ + 32))};
    echo.insert(echo.end(), bundled.begin(), bundled.end());
    send(0, echo);
    send(1, {chunk(11, 0, {})});
  }
  void heartbeat(int side) {
    Bytes info = {0, 1, 0, 12};
    put32(info, static_cast<uint32_t>(c_.r.next()));
    put32(info, static_cast<uint32_t>(c_.r.next()));
    send(side, {chunk(4, 0, info)});
    send(1 - side, {chunk(5, 0, info)});
  }
  void shutdown(int side) {
    Bytes v;
    put32(v, tsn_[1 - side] - 1);
    send(side, {chunk(7, 0, v)});
    send(1 - side, {chunk(8, 0, {})});
    send(side, {chunk(14, 0, {})});
  }
  uint16_t next_ssn(int side, uint16_t stream) { return ssn_[side][stream]++; }

 private:
  Ctx& c_;
  Path& p_;
  std::vector<Bytes>& out_;
  uint32_t tag_[2], tsn_[2];
  uint16_t ssn_[2][10] = {};
  uint8_t cookie_[32] = {};
};

void c_sctp(Ctx& c) {
  for (int i = 0; i < 12; ++i) {
    Path p = make_path(c, Tun::none);
    const int fam = c.family();
    const auto [a, b] = c.ends(fam);
    SctpAssoc s(c, p, {a, c.r.pct(50) ? c.port() : uint16_t{5060}}, {b, 5060}, c.stream());
    // The messages of the association's transactions, in the order they are sent.
    struct Item {
      int side;
      std::string text;
      Outcome o;
    };
    std::vector<Item> items;
    for (uint32_t n = c.r.range(4, 9); n > 0; --n) {
      const int a_side = c.r.pct(20) ? 1 : 0;
      const Transaction d = make_tx(c, s.ep[a_side], s.ep[1 - a_side], "SCTP");
      for (const Msg& m : tx_msgs(c.r, d, Carrier::message)) items.push_back({m.from_a ? a_side : 1 - a_side, m.text, m.o});
    }
    std::vector<Bytes> pending[2];
    bool sack_due[2] = {false, false};
    auto flush = [&](int side) {
      if (pending[side].empty()) return;
      std::vector<Bytes> chunks;
      if (sack_due[side] && c.r.pct(50)) chunks.push_back(s.sack(side));
      sack_due[side] = false;
      chunks.insert(chunks.end(), pending[side].begin(), pending[side].end());
      pending[side].clear();
      s.send(side, chunks);
      sack_due[1 - side] = true;
    };
    s.init();
    size_t k = 0;
    if (items[0].side == 0 && c.r.pct(40)) {
      // The first request bundled behind the COOKIE ECHO.
      const uint16_t stream = static_cast<uint16_t>(c.r.below(10));
      s.cookie({s.data(0, 0x03, stream, s.next_ssn(0, stream), items[0].text)});
      c.count(items[0].o, s.ep[0].addr, s.ep[1].addr);
      sack_due[1] = true;
      k = 1;
    } else {
      s.cookie({});
    }
    for (; k < items.size(); ++k) {
      const Item& it = items[k];
      const uint16_t stream = static_cast<uint16_t>(c.r.below(10));
      flush(1 - it.side);  // what the other side wrote before goes first
      if (c.r.pct(65)) {
        // One chunk, bundled with what the same side writes next (at most 4 to a packet).
        const bool unordered = c.r.pct(15);
        pending[it.side].push_back(s.data(it.side, unordered ? 0x07 : 0x03, stream,
                                          unordered ? 0 : s.next_ssn(it.side, stream), it.text));
        const bool more = k + 1 < items.size() && items[k + 1].side == it.side && pending[it.side].size() < 4;
        if (!more || c.r.pct(30)) flush(it.side);
      } else {
        // Fragmented: B, (middle,) E, each in a packet of its own.
        flush(it.side);
        const uint16_t ssn = s.next_ssn(it.side, stream);
        const size_t parts = c.r.pct(70) ? 2 : 3;
        const std::vector<size_t> cuts = random_cuts(c.r, it.text.size(), parts, it.text.size());
        size_t from = 0;
        for (size_t j = 0; j < parts; ++j) {
          const size_t to = j < cuts.size() ? cuts[j] : it.text.size();
          const uint8_t fl = static_cast<uint8_t>((j == 0 ? 0x02 : 0) | (j + 1 == parts ? 0x01 : 0));
          s.send(it.side, {s.data(it.side, fl, stream, ssn, std::string_view(it.text).substr(from, to - from))});
          from = to;
        }
        sack_due[1 - it.side] = true;
      }
      c.count(it.o, s.ep[it.side].addr, s.ep[1 - it.side].addr);
      if (c.r.pct(10)) {
        flush(0);
        flush(1);
        s.heartbeat(c.r.pct(50) ? 0 : 1);
      }
    }
    flush(0);
    flush(1);
    s.send(1, {s.sack(1)});
    s.shutdown(c.r.pct(70) ? 0 : 1);
  }
}

// ---- WebSocket (RFC 6455) carrying SIP (RFC 7118)

Bytes ws_frame(Rng& r, bool fin, uint8_t opcode, std::string_view payload, bool masked) {
  Bytes f = {static_cast<uint8_t>((fin ? 0x80 : 0) | opcode)};
  const uint8_t m = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<uint8_t>(m | payload.size()));
  } else if (payload.size() < 65536) {
    f.push_back(m | 126);
    put16(f, static_cast<uint32_t>(payload.size()));
  } else {
    f.push_back(m | 127);
    put32(f, 0);
    put32(f, static_cast<uint32_t>(payload.size()));
  }
  uint8_t key[4] = {0, 0, 0, 0};
  if (masked) {
    for (uint8_t& k : key) k = static_cast<uint8_t>(r.below(256));
    f.insert(f.end(), key, key + 4);
  }
  for (size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<uint8_t>(payload[i] ^ key[i % 4]));
  return f;
}

std::string str_of(const Bytes& b) { return std::string(b.begin(), b.end()); }

void c_websocket(Ctx& c) {
  static const uint16_t kPorts[] = {80, 8080, 8088};
  for (int i = 0; i < 12; ++i) {
    Path p = make_path(c, Tun::none);
    const int fam = c.family();
    const auto [a, b] = c.ends(fam);
    TcpConn t(c, p, {a, c.port()}, {b, kPorts[c.r.below(3)]}, c.stream());
    t.open();
    uint8_t nonce[16];
    for (uint8_t& x : nonce) x = static_cast<uint8_t>(c.r.below(256));
    const std::string key = base64(nonce, 16);
    const std::array<uint8_t, 20> digest = sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    t.send(0, "GET / HTTP/1.1\r\nHost: " + host(b) + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: " + key + "\r\nOrigin: http://www.example.com\r\nSec-WebSocket-Protocol: sip\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n");
    t.send(1, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Accept: " + base64(digest.data(), digest.size()) + "\r\nSec-WebSocket-Protocol: sip\r\n\r\n");
    // The byte stream each side writes next, flushed into segments now and then.
    std::string queued[2];
    auto flush = [&](int side) {
      if (queued[side].empty()) return;
      std::vector<size_t> cuts = t.mss_cuts(queued[side].size());
      if (cuts.empty() && queued[side].size() > 2 && c.r.pct(25)) {
        cuts = random_cuts(c.r, queued[side].size(), 2, t.mss);  // a frame split across segments
      }
      for (const Seg& g : t.segments(side, queued[side], cuts)) t.push(g);
      queued[side].clear();
      t.ack(1 - side);
    };
    bool fragmented[2] = {false, false};
    for (uint32_t n = c.r.range(4, 8); n > 0; --n) {
      const int a_side = c.r.pct(20) ? 1 : 0;
      const Transaction d = make_tx(c, t.ep[a_side], t.ep[1 - a_side], "WS");
      const std::vector<Msg> msgs = tx_msgs(c.r, d, Carrier::message);
      for (size_t k = 0; k < msgs.size(); ++k) {
        const Msg& m = msgs[k];
        const int side = m.from_a ? a_side : 1 - a_side;
        const bool masked = side == 0;
        const uint8_t opcode = c.r.pct(20) ? 2 : 1;
        if (!fragmented[side] && (n == 1 || c.r.pct(30))) {
          // Three frames, a ping between two of them, the pong from the other side.
          fragmented[side] = true;
          const std::vector<size_t> cuts = random_cuts(c.r, m.text.size(), 3, m.text.size());
          const std::string_view v(m.text);
          const size_t ping_after = c.r.below(2);
          const std::string ping = "ping " + hex(c.r, 8);
          for (size_t j = 0; j < 3; ++j) {
            const size_t from = j == 0 ? 0 : cuts[j - 1], to = j < 2 ? cuts[j] : v.size();
            queued[side] += str_of(ws_frame(c.r, j == 2, j == 0 ? opcode : 0, v.substr(from, to - from), masked));
            if (j == ping_after) {
              queued[side] += str_of(ws_frame(c.r, true, 9, ping, masked));
              if (c.r.pct(50)) flush(side);
            }
          }
          flush(side);
          queued[1 - side] += str_of(ws_frame(c.r, true, 10, ping, !masked));
          flush(1 - side);
        } else {
          queued[side] += str_of(ws_frame(c.r, true, opcode, m.text, masked));
          // Several frames to a segment when the same side writes again next.
          const bool again = k + 1 < msgs.size() && msgs[k + 1].from_a == m.from_a;
          if (!again || c.r.pct(40)) flush(side);
        }
        c.count(m.o, t.ep[side].addr, t.ep[1 - side].addr);
      }
      flush(0);
      flush(1);
    }
    const int closer = c.r.pct(60) ? 0 : 1;
    queued[closer] += str_of(ws_frame(c.r, true, 8, std::string("\x03\xe8", 2), closer == 0));
    flush(closer);
    queued[1 - closer] += str_of(ws_frame(c.r, true, 8, std::string("\x03\xe8", 2), closer != 0));
    flush(1 - closer);
    t.fin(1);
  }
}

void run_construct(Ctx& c) {
  const std::string& n = c.name();
  if (n == "udp_plain") return c_udp_plain(c);
  if (n == "tcp_split_every_offset") return c_tcp_split_every_offset(c);
  if (n == "tcp_multi_per_segment") return c_tcp_multi_per_segment(c);
  if (n == "tcp_one_across_many") return c_tcp_one_across_many(c);
  if (n == "tcp_retransmission") return c_tcp_retransmission(c);
  if (n == "tcp_out_of_order") return c_tcp_out_of_order(c);
  if (n == "tcp_keepalive") return c_tcp_keepalive(c, false);
  if (n == "tcp_keepalive_prefix") return c_tcp_keepalive(c, true);
  if (n == "tcp_content_length_forms") return c_tcp_content_length_forms(c);
  if (n == "tcp_close_and_reuse") return c_tcp_close_and_reuse(c);
  if (n == "tcp_seq_wrap") return c_tcp_seq_wrap(c);
  if (n == "ipv4_frag_in_order") return frag_construct(c, 4, 0);
  if (n == "ipv4_frag_reverse") return frag_construct(c, 4, 1);
  if (n == "ipv4_frag_shuffled") return frag_construct(c, 4, 2);
  if (n == "ipv6_frag_in_order") return frag_construct(c, 6, 0);
  if (n == "ipv6_frag_reverse") return frag_construct(c, 6, 1);
  if (n == "ipv6_frag_shuffled") return frag_construct(c, 6, 2);
  if (n == "gre") return tunnel_construct(c, Tun::gre, 0, 0, 30, 8);
  if (n == "gre_eth") return tunnel_construct(c, Tun::gre_eth, 4, 0, 30, 8);
  if (n == "pptp_gre") return tunnel_construct(c, Tun::pptp, 4, 0, 30, 0);
  if (n == "erspan2") return tunnel_construct(c, Tun::erspan2, 4, 0, 30, 0);
  if (n == "erspan3") return tunnel_construct(c, Tun::erspan3, 4, 0, 30, 0);
  if (n == "vxlan") return tunnel_construct(c, Tun::vxlan, 4, 0, 30, 0);
  if (n == "ipip_4in4") return tunnel_construct(c, Tun::ipip, 4, 4, 25, 6);
  if (n == "ipip_6in4") return tunnel_construct(c, Tun::ipip, 4, 6, 25, 6);
  if (n == "ipip_4in6") return tunnel_construct(c, Tun::ipip, 6, 4, 25, 6);
  if (n == "mpls") return tunnel_construct(c, Tun::mpls, 4, 0, 30, 0);
  if (n == "pppoe") return tunnel_construct(c, Tun::pppoe, 4, 0, 30, 0);
  if (n == "gtpu") return tunnel_construct(c, Tun::gtpu, 0, 0, 30, 0);
  if (n == "sctp") return c_sctp(c);
  if (n == "websocket") return c_websocket(c);
  throw std::logic_error("no generator for construct " + n);
}

// Interleaves the streams: in a shuffled order, at most `window` open at once, the next frame taken
// from a random open stream.
void interleave(Streams& streams, Rng& r, Writer& w, size_t window = 8) {
  std::vector<size_t> order(streams.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[r.below(static_cast<uint32_t>(i))]);
  std::vector<std::pair<size_t, size_t>> open;  // stream, next frame
  size_t next = 0;
  while (next < order.size() || !open.empty()) {
    while (open.size() < window && next < order.size()) {
      if (!streams[order[next]].empty()) open.push_back({order[next], 0});
      ++next;
    }
    if (open.empty()) break;
    const size_t k = r.below(static_cast<uint32_t>(open.size()));
    auto& [s, i] = open[k];
    w.frame(streams[s][i]);
    if (++i == streams[s].size()) {
      streams[s].clear();
      streams[s].shrink_to_fit();
      open.erase(open.begin() + static_cast<std::ptrdiff_t>(k));
    }
  }
}

// The whole transports profile (or the one construct `only`): frames to `w`, counts to `truth`.
std::vector<std::pair<std::string, uint64_t>> run_transports(uint64_t seed, const std::string& only,
                                                             const Network& net, Truth& truth, Rng& rng, Writer& w) {
  const Pools pools = make_pools();
  Streams streams;
  std::vector<std::pair<std::string, uint64_t>> by;
  for (size_t i = 0; i < kConstructs.size(); ++i) {
    if (!only.empty() && only != kConstructs[i]) continue;
    Ctx c(kConstructs[i], i, seed, net, pools, truth, streams);
    run_construct(c);
    by.push_back({kConstructs[i], c.messages});
  }
  interleave(streams, rng, w);
  return by;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) throw std::runtime_error(path + ": cannot write");
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "gen_capture: %s\nusage: gen_capture --out PATH --truth PATH --config PATH [--seed N] "
               "[--messages N] [--linktype en10mb|sll|sll2|raw|null] [--profile full|sample|transports] "
               "[--only CONSTRUCT] [--no-home]\n",
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
      if (v != "full" && v != "sample" && v != "transports") usage("unknown profile '" + v + "'");
      o.sample = v == "sample";
      o.transports = v == "transports";
    } else if (a == "--only") {
      if (std::find(kConstructs.begin(), kConstructs.end(), v) == kConstructs.end()) {
        std::string all;
        for (const std::string& c : kConstructs) all += " " + c;
        usage("unknown construct '" + v + "'; constructs:" + all);
      }
      o.only = v;
    } else {
      usage("unknown argument '" + a + "'");
    }
  }
  if (o.out.empty() || o.truth.empty() || o.config.empty()) usage("--out, --truth and --config are required");
  if (o.transports && (o.messages != 0 || o.link != Link::en10mb)) {
    usage("--profile transports has fixed quantities and writes en10mb: no --messages or --linktype");
  }
  if (!o.only.empty() && !o.transports) usage("--only needs --profile transports");
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
    if (o.transports) {
      Writer w(o.out, o.link, o.seed, rng);
      const auto by_construct = run_transports(o.seed, o.only, net, truth, rng, w);
      w.close(o.out);
      truth.packets = w.frames();
      write_file(o.truth, truth_json(truth, &by_construct));
    } else {
      Writer w(o.out, o.link, o.seed, rng);
      Generator g(o, rng, w, net, truth);
      g.run(o.messages);
      w.close(o.out);
      truth.packets = w.frames();
      write_file(o.truth, truth_json(truth));
    }
    write_file(o.config, config_yaml(net, o.seed));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gen_capture: %s\n", e.what());
    return 1;
  }
  return 0;
}
