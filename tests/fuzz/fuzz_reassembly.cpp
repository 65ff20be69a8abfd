// libFuzzer target: the whole per-packet path of one Worker (decode, IP reassembly, TCP streams,
// SCTP, SIP parsing, transactions, mirror-duplicate filter), fed a sequence of packets.
//
// The Worker is built per input with small limits (4 TCP streams, 16 KiB of TCP buffers, 3 IP
// datagrams in 4 KiB, 2 SCTP messages, 8 transactions, 2 dialogs, short timers), so every
// eviction path runs. Input:
//   [options] then records until the input ends, each [op] + fields:
//   options: bits 0-1 the scan kernel (among the supported ones), bit 2 mirror-duplicate filter,
//            bit 3 home networks and a peer map.
//   op:      bits 0-1 the record kind, bits 2-7 the time step before it (kSteps: 0, ms .. 60 s, and
//            two steps backwards, as merged captures have).
//   kind 0   raw frame:    [link selector][u16 length][bytes]: any frame, any link type.
//   kind 1   TCP segment:  [conn/dir/mode][flags][u16 stream offset](u32 raw seq)[u16 length]
//            (bytes): one of 4 connections (the last over IPv6) in either direction; the payload is
//            a slice of that direction's stream text (SIP over TCP, WebSocket, TLS, junk then SIP)
//            at the given offset, so retransmissions, overlaps, gaps, reordering and sequence
//            wrap come from choosing offsets; or bytes from the input; or nothing.
//   kind 2   IP fragment:  [flow/v6/id][message][index][length/8][flags]: fragment `index` (of
//            that length) of a UDP datagram carrying SIP message `message`; flags make the More
//            flag wrong, the length odd, or the offset run past the end; the same id with
//            another message overlaps.
//   kind 3   SCTP packet:  [flow/v6/I-DATA/2 chunks] and per chunk [flags][tsn][stream][ssn/mid]
//            [message][offset/8][length/8]: DATA or I-DATA chunks carrying slices of a message.
// After every packet the stats must stay within the limits and every packet must be counted
// once (decoded by path, or skipped by reason); at the end, time jumps a day ahead and every
// piece of reassembly and transaction state must be gone.
#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "sipex/aggregate.hpp"
#include "sipex/config.hpp"
#include "sipex/decode.hpp"
#include "sipex/packet.hpp"
#include "sipex/worker.hpp"

using namespace sipex;
using sipex::fuzz::HeapCopy;
using sipex::fuzz::Reader;

namespace {

using Bytes = std::vector<uint8_t>;

// ---- what the generated packets carry -------------------------------------------------------

std::string sdp() {
  return "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
}
std::string with_body(std::string head, const std::string& body) {
  return head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}
std::string hdrs(const char* branch, const char* cseq, const char* to_tag = "") {
  return std::string("Via: SIP/2.0/TCP 10.0.0.1:40000;branch=z9hG4bK") + branch +
         "\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>" + to_tag +
         "\r\nCall-ID: c1@10.0.0.1\r\nCSeq: " + cseq + "\r\n";
}

// Whole SIP messages: the requests and responses of a call, a registration, and odd ones.
std::vector<std::string> make_messages() {
  std::vector<std::string> m;
  m.push_back(with_body("INVITE sip:bob@example.com SIP/2.0\r\n" + hdrs("inv1", "1 INVITE") +
                            "Content-Type: application/sdp\r\n", sdp()));
  m.push_back(with_body("SIP/2.0 100 Trying\r\n" + hdrs("inv1", "1 INVITE"), ""));
  m.push_back(with_body("SIP/2.0 180 Ringing\r\n" + hdrs("inv1", "1 INVITE", ";tag=b2"), ""));
  m.push_back(with_body("SIP/2.0 200 OK\r\n" + hdrs("inv1", "1 INVITE", ";tag=b2") + "Content-Type: application/sdp\r\n",
                        sdp()));
  m.push_back(with_body("ACK sip:bob@example.com SIP/2.0\r\n" + hdrs("ack1", "1 ACK", ";tag=b2"), ""));
  m.push_back(with_body("BYE sip:bob@example.com SIP/2.0\r\n" + hdrs("bye1", "2 BYE", ";tag=b2"), ""));
  m.push_back(with_body("SIP/2.0 200 OK\r\n" + hdrs("bye1", "2 BYE", ";tag=b2"), ""));
  m.push_back(with_body("REGISTER sip:example.com SIP/2.0\r\n" + hdrs("reg1", "7 REGISTER"), ""));
  m.push_back(with_body("SIP/2.0 401 Unauthorized\r\n" + hdrs("reg1", "7 REGISTER", ";tag=r9") +
                            "WWW-Authenticate: Digest realm=\"x\", nonce=\"y\"\r\n", ""));
  m.push_back(with_body("SIP/2.0 486 Busy Here\r\n" + hdrs("inv1", "1 INVITE", ";tag=b3"), ""));
  // Compact headers, folded line, RFC 2543 (no cookie), no Content-Length (a datagram may omit it).
  m.push_back("OPTIONS sip:x@example.com SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1;branch=old1\r\nf: <sip:a@x>;tag=9\r\n"
              "t: <sip:b@y>\r\ni: opt-1\r\nCSeq: 3\r\n  OPTIONS\r\n\r\n");
  m.push_back(with_body("MESSAGE sip:bob@example.com SIP/2.0\r\n" + hdrs("msg1", "4 MESSAGE") +
                            "Content-Type: text/plain\r\n", std::string(300, 'x')));
  m.push_back(with_body("SIP/2.0 200 OK\r\n" + hdrs("msg1", "4 MESSAGE", ";tag=m1"), ""));
  return m;
}

// A WebSocket frame (RFC 6455): text, FIN, masked when `mask` (client to server).
std::string ws_frame(const std::string& payload, bool mask) {
  std::string f;
  f += static_cast<char>(0x81);
  const size_t n = payload.size();
  const char m = mask ? static_cast<char>(0x80) : 0;
  if (n < 126) {
    f += static_cast<char>(m | static_cast<char>(n));
  } else {
    f += static_cast<char>(m | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xFF);
  }
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  if (mask) f.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ (mask ? key[i & 3] : 0));
  return f;
}

struct Texts {
  std::vector<std::string> messages;
  std::string stream[4][2];  // [connection][0: client to server, 1: server to client]
};

Texts make_texts() {
  Texts t;
  t.messages = make_messages();
  const auto& m = t.messages;
  // 0: SIP over TCP, with keep-alives, and a message without Content-Length (cannot be framed).
  t.stream[0][0] = m[0] + "\r\n\r\n" + m[4] + m[5] + m[7] + m[11] + "\r\n" + m[10] + m[0];
  t.stream[0][1] = m[1] + m[2] + m[3] + m[6] + m[8] + m[12] + m[9];
  // 1: WebSocket (RFC 7118): the upgrade, then SIP in frames, masked from the client.
  t.stream[1][0] = "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" +
                   ws_frame(m[0], true) + ws_frame(m[4], true) + ws_frame(m[11], true) + ws_frame(m[5], true);
  t.stream[1][1] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n" +
                   ws_frame(m[1], false) + ws_frame(m[3], false) + ws_frame(m[12], false) + ws_frame(m[6], false);
  // 2: TLS records.
  std::string hello = "\x16\x03\x01\x00\x40";
  hello += std::string(0x40, '\x01');
  std::string app = "\x17\x03\x03\x01\x00";
  app += std::string(0x100, '\xAB');
  t.stream[2][0] = hello + app + app;
  t.stream[2][1] = "\x16\x03\x03\x00\x40" + std::string(0x40, '\x02') + app;
  // 3 (IPv6): junk before the first start line, a message too long to frame, then SIP.
  t.stream[3][0] = "junk\r\nmore junk SIP/2.0 nope\r\n" + m[7] + with_body("INFO sip:x SIP/2.0\r\n" + hdrs("big", "9 INFO"),
                                                                         std::string(5000, 'b')) + m[0] + m[5];
  t.stream[3][1] = m[8] + m[1] + m[3] + m[6];
  return t;
}

const Texts& texts() {
  static const Texts t = make_texts();
  return t;
}

// ---- frames -----------------------------------------------------------------------------------

struct Host {
  uint8_t v4[4];
  uint8_t v6[16];
};
Host host(const char* a4, const char* a6) {
  Host h{};
  inet_pton(AF_INET, a4, h.v4);
  inet_pton(AF_INET6, a6, h.v6);
  return h;
}
const Host kHosts[4] = {host("10.0.0.1", "2001:db8::1"), host("192.0.2.1", "2001:db8:1::1"),
                        host("10.0.0.2", "2001:db8::2"), host("198.51.100.7", "2001:db8:2::7")};

FUZZ_NO_COVERAGE void put16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
FUZZ_NO_COVERAGE void put32(Bytes& b, uint32_t v) {
  put16(b, v >> 16);
  put16(b, v & 0xFFFF);
}

// Ethernet + IPv4 or IPv6 around `l4`. frag: IPv4 flags/offset word, or for IPv6 a fragment
// header (offset in bytes, more flag, id) when `v6_frag`.
FUZZ_NO_COVERAGE Bytes ip_frame(bool v6, const Host& src, const Host& dst, uint8_t proto, const Bytes& l4, uint16_t v4_id = 0,
               uint16_t v4_frag = 0, bool v6_frag = false, uint32_t v6_offset = 0, bool v6_more = false,
               uint32_t v6_id = 0) {
  Bytes b = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
  put16(b, v6 ? 0x86DD : 0x0800);
  if (!v6) {
    b.push_back(0x45);
    b.push_back(0);
    put16(b, static_cast<uint32_t>(20 + l4.size()));
    put16(b, v4_id);
    put16(b, v4_frag);
    b.push_back(64);
    b.push_back(proto);
    put16(b, 0);
    b.insert(b.end(), src.v4, src.v4 + 4);
    b.insert(b.end(), dst.v4, dst.v4 + 4);
  } else {
    put32(b, 0x60000000);
    put16(b, static_cast<uint32_t>(l4.size() + (v6_frag ? 8 : 0)));
    b.push_back(v6_frag ? 44 : proto);
    b.push_back(64);
    b.insert(b.end(), src.v6, src.v6 + 16);
    b.insert(b.end(), dst.v6, dst.v6 + 16);
    if (v6_frag) {
      b.push_back(proto);
      b.push_back(0);
      put16(b, (v6_offset & 0xFFF8) | (v6_more ? 1 : 0));
      put32(b, v6_id);
    }
  }
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

// Bytes [off, off + len) of `text` repeated endlessly (so any stream offset has content).
FUZZ_NO_COVERAGE void slice(Bytes& out, const std::string& text, size_t off, size_t len) {
  if (text.empty()) return;
  out.reserve(out.size() + len);
  for (size_t at = off % text.size(); len > 0; at = 0) {
    const size_t n = std::min(len, text.size() - at);
    out.insert(out.end(), text.begin() + static_cast<ptrdiff_t>(at), text.begin() + static_cast<ptrdiff_t>(at + n));
    len -= n;
  }
}

// Stream offsets 0.. start at these sequence numbers (one near the wrap).
constexpr uint32_t kIsn[4][2] = {{1000, 5000000}, {0xFFFFFF00u, 77}, {0x7FFFFFF0u, 0x80000010u}, {123456, 0xFFFFFFF0u}};
const uint16_t kClientPort[4] = {40000, 40001, 40002, 40003};
const uint16_t kServerPort[4] = {5060, 5060, 5061, 5060};

FUZZ_NO_COVERAGE Bytes tcp_segment(Reader& r) {
  const uint8_t sel = r.u8();
  const unsigned conn = sel & 3, dir = sel >> 2 & 1, mode = sel >> 3 & 3;
  const bool raw_seq = sel >> 5 & 1;
  const uint8_t flags = r.u8();
  const uint16_t off = r.u16();
  uint32_t seq = kIsn[conn][dir] + off;
  if (flags & kTcpSyn) seq -= 1;  // SYN takes the sequence number before the first byte
  if (raw_seq) seq = r.u32();
  const size_t len = r.u16() % 1600;
  Bytes tcp;
  const uint16_t client = kClientPort[conn], server = kServerPort[conn];
  put16(tcp, dir == 0 ? client : server);
  put16(tcp, dir == 0 ? server : client);
  put32(tcp, seq);
  put32(tcp, 1);  // ack
  tcp.push_back(0x50);
  tcp.push_back(flags);
  put16(tcp, 65535);
  put32(tcp, 0);  // checksum, urgent pointer
  if (mode == 0 || mode == 3) {
    slice(tcp, texts().stream[conn][dir], off, len);
    if (mode == 3 && len > 0) tcp[20 + (off % len)] ^= 0x20;  // same range, one byte different
  } else if (mode == 1) {
    size_t got = 0;
    const uint8_t* p = r.bytes(len, &got);
    tcp.insert(tcp.end(), p, p + got);
  }
  const bool v6 = conn == 3;
  const Host& a = kHosts[conn & 1 ? 2 : 0];
  const Host& b = kHosts[conn & 1 ? 3 : 1];
  return ip_frame(v6, dir == 0 ? a : b, dir == 0 ? b : a, 6, tcp);
}

FUZZ_NO_COVERAGE Bytes udp_datagram(const std::string& payload, uint16_t sport, uint16_t dport) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, static_cast<uint32_t>(8 + payload.size()));
  put16(u, 0);
  u.insert(u.end(), payload.begin(), payload.end());
  return u;
}

FUZZ_NO_COVERAGE Bytes ip_fragment(Reader& r) {
  const uint8_t sel = r.u8();
  const unsigned flow = sel & 1, v6 = sel >> 1 & 1, id = sel >> 2 & 7, proto_odd = sel >> 5 & 1;
  const auto& msgs = texts().messages;
  const std::string& msg = msgs[r.u8() % msgs.size()];
  const uint32_t index = r.u8();
  const uint32_t len = (uint32_t{r.u8()} + 1) * 8;
  const uint8_t fl = r.u8();
  const Bytes dg = udp_datagram(msg, 5060, 5060);
  const uint32_t size = static_cast<uint32_t>(dg.size());
  uint32_t off = index * len;
  if (off >= size && !(fl & 4)) off = (size - 1) / len * len;  // past the end: the last fragment
  Bytes data;
  if (off < size) data.assign(dg.begin() + off, dg.begin() + std::min(size, off + len));
  bool more = off + len < dg.size();
  if (fl & 1) more = !more;              // a wrong More flag
  if (fl & 2) data.resize(data.size() / 2);  // a length not a multiple of 8
  const uint8_t proto = proto_odd ? static_cast<uint8_t>(fl | 1) : 17;
  const Host& a = kHosts[flow ? 2 : 0];
  const Host& b = kHosts[flow ? 3 : 1];
  if (!v6) {
    const uint16_t frag = static_cast<uint16_t>((more ? 0x2000 : 0) | ((off / 8) & 0x1FFF));
    return ip_frame(false, a, b, proto, data, static_cast<uint16_t>(0x100 + id), frag);
  }
  return ip_frame(true, a, b, proto, data, 0, 0, true, off, more, 0x1000 + id);
}

FUZZ_NO_COVERAGE Bytes sctp_packet(Reader& r) {
  const uint8_t sel = r.u8();
  const unsigned flow = sel & 1, v6 = sel >> 1 & 1, idata = sel >> 2 & 1, chunks = 1 + (sel >> 3 & 1);
  Bytes s;
  put16(s, 5060);
  put16(s, 5060);
  put32(s, 0xC0FFEE);  // verification tag
  put32(s, 0);         // checksum (not verified)
  const auto& msgs = texts().messages;
  for (unsigned c = 0; c < chunks; ++c) {
    const uint8_t flags = r.u8() & 7;
    const uint32_t tsn = 100 + r.u8();
    const uint16_t stream = r.u8() & 3;
    const uint32_t ssn = r.u8();
    const std::string& msg = msgs[r.u8() % msgs.size()];
    const uint32_t off = uint32_t{r.u8()} * 8;
    const uint32_t len = uint32_t{r.u8()} * 8;
    Bytes data;
    if (off < msg.size()) data.assign(msg.begin() + off, msg.begin() + std::min<size_t>(msg.size(), off + len));
    const uint32_t hl = idata ? 20 : 16;
    s.push_back(idata ? 64 : 0);
    s.push_back(flags);
    put16(s, static_cast<uint32_t>(hl + data.size()));
    put32(s, tsn);
    put16(s, stream);
    if (idata) {
      put16(s, 0);
      put32(s, ssn);                                  // MID
      put32(s, (flags & 2) ? 0 : off / 8);            // PPID or FSN
    } else {
      put16(s, ssn);
      put32(s, 0);  // PPID
    }
    s.insert(s.end(), data.begin(), data.end());
    while (s.size() % 4) s.push_back(0);
  }
  const Host& a = kHosts[flow ? 2 : 0];
  const Host& b = kHosts[flow ? 3 : 1];
  return ip_frame(v6, a, b, 132, s);
}

// ---- the worker and its checks ----------------------------------------------------------------

Config make_config(bool dedup, bool home) {
  Config c;
  c.max_peers = 4;
  c.max_series = 32;
  c.max_histograms = 16;
  c.duplicate_window_ns = dedup ? 5'000'000 : 0;
  c.transactions.max_transactions = 8;
  c.transactions.timer_b_ns = 4'000'000'000;
  c.transactions.timer_c_ns = 10'000'000'000;
  c.transactions.linger_ns = 4'000'000'000;
  c.transactions.max_dialogs = 2;
  c.transactions.dialog_timeout_ns = 30'000'000'000;
  c.tcp.max_streams = 4;
  c.tcp.max_bytes = 16384;
  c.tcp.max_message_bytes = 2048;
  c.tcp.max_held_segments = 4;
  c.tcp.idle_timeout_ns = 10'000'000'000;
  c.fragments.max_datagrams = 3;
  c.fragments.max_bytes = 4096;
  c.fragments.timeout_ns = 5'000'000'000;
  c.sctp.max_messages = 2;
  c.sctp.max_message_bytes = 2048;
  c.sctp.timeout_ns = 5'000'000'000;
  if (home) {
    Cidr n;
    if (!parse_cidr("10.0.0.0/8", n)) std::abort();
    c.home_networks.push_back(n);
    if (!parse_cidr("2001:db8::/48", n)) std::abort();
    c.home_networks.push_back(n);
    PeerDef p;
    p.name = "carrier";
    if (!parse_cidr("192.0.2.0/24", n)) std::abort();
    p.networks.push_back(n);
    c.peers.push_back(p);
  }
  return c;
}

std::vector<const ScanKernel*> supported_kernels() {
  size_t n = 0;
  const ScanKernel* ks = scan_kernels(&n);
  std::vector<const ScanKernel*> out;
  for (size_t i = 0; i < n; ++i) {
    if (ks[i].supported()) out.push_back(&ks[i]);
  }
  return out;
}

// Time steps: 0; squares of 1..40 ms (up to 1.6 s); 1..20 s; 60 s; and backwards 1 s and 100 ms.
FUZZ_NO_COVERAGE int64_t step_ns(unsigned code) {
  constexpr int64_t ms = 1'000'000;
  if (code == 0) return 0;
  if (code <= 40) return int64_t{code} * code * ms;
  if (code <= 60) return int64_t{code - 40} * 1000 * ms;
  if (code == 61) return 60'000 * ms;
  if (code == 62) return -1000 * ms;
  return -100 * ms;
}

FUZZ_NO_COVERAGE uint64_t sum(const Counter* c, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; ++i) s += c[i].get();
  return s;
}

FUZZ_NO_COVERAGE void check_bounds(const Worker& w, const Config& c) {
  FUZZ_CHECK(w.ip_stats().datagrams.load() <= c.fragments.max_datagrams);
  FUZZ_CHECK(w.ip_stats().bytes.load() <= c.fragments.max_bytes);
  FUZZ_CHECK(w.tcp_stats().streams.load() <= c.tcp.max_streams);
  FUZZ_CHECK(w.tcp_stats().buffered.load() <= c.tcp.max_bytes);
  FUZZ_CHECK(w.sctp_stats().in_progress.load() <= c.sctp.max_messages);
  FUZZ_CHECK(w.transaction_stats().active.load() <= c.transactions.max_transactions);
  FUZZ_CHECK(w.transaction_stats().dialogs.load() <= c.transactions.max_dialogs);
  FUZZ_CHECK(w.shard().series.size() <= c.max_series);
}

// Every packet given to process() is counted once: decoded by path (udp, tcp, sctp, or an IP
// fragment handed to reassembly) or skipped by reason, not_sip aside (a decoded UDP payload).
FUZZ_NO_COVERAGE void check_accounting(const Worker& w, uint64_t packets) {
  const Shard& s = w.shard();
  const uint64_t decoded = sum(s.decoded, kPathCount);
  const uint64_t skipped = sum(s.skipped, kSkipCount) - s.skipped[static_cast<size_t>(Skip::not_sip)].get();
  if (decoded + skipped != packets) {
    std::fprintf(stderr, "accounting: %llu packets, %llu decoded + %llu skipped\n",
                 static_cast<unsigned long long>(packets), static_cast<unsigned long long>(decoded),
                 static_cast<unsigned long long>(skipped));
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<const ScanKernel*> kernels = supported_kernels();
  static BatchQueue queue(4);
  static BatchPool pool(1, 1);
  if (size < 1) return 0;
  Reader r(data, size);
  const uint8_t opt = r.u8();
  const ScanKernel& kernel = *kernels[(opt & 3) % kernels.size()];
  const Config cfg = make_config(opt & 4, opt & 8);
  PeerRegistry peers(cfg);
  Worker w(queue, pool, peers, cfg, kernel);

  int64_t ts = 1'700'000'000'000'000'000;
  uint64_t packets = 0;
  while (!r.empty()) {
    const uint8_t op = r.u8();
    ts += step_ns(op >> 2);
    uint16_t lt = kLinkEthernet;
    Bytes frame;
    switch (op & 3) {
      case 0: {
        lt = fuzz::link_type(r.u8());
        size_t got = 0;
        const uint8_t* p = r.bytes(r.u16(), &got);
        frame.assign(p, p + got);
        break;
      }
      case 1: frame = tcp_segment(r); break;
      case 2: frame = ip_fragment(r); break;
      default: frame = sctp_packet(r); break;
    }
    const HeapCopy copy(frame.data(), frame.size());
    w.process(lt, copy.data(), static_cast<uint32_t>(copy.size()), ts);
    ++packets;
    check_bounds(w, cfg);
    check_accounting(w, packets);
  }

  // A day later (an empty frame carries the time): every timer has fired.
  ts += 86'400'000'000'000;
  static const uint8_t kNothing = 0;
  w.process(kLinkEthernet, &kNothing, 0, ts);
  ++packets;
  check_bounds(w, cfg);
  check_accounting(w, packets);
  FUZZ_CHECK(w.ip_stats().datagrams.load() == 0 && w.ip_stats().bytes.load() == 0);
  FUZZ_CHECK(w.tcp_stats().streams.load() == 0 && w.tcp_stats().buffered.load() == 0);
  FUZZ_CHECK(w.sctp_stats().in_progress.load() == 0);
  FUZZ_CHECK(w.transaction_stats().active.load() == 0 && w.transaction_stats().dialogs.load() == 0);
  return 0;
}
