// TCP stream reassembly and SIP framing: segment order, gaps, keep-alives, TLS, WebSocket, bounds.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sipex/tcp_reassembly.hpp"

namespace sipex {
namespace {

struct Sink : MessageSink {
  std::vector<std::string> seen;  // "INVITE", "200 INVITE", ...
  std::vector<ParseStatus> errors;
  void message(const SipMessage& m, const IpAddr&, const IpAddr&, int64_t) override {
    seen.push_back(m.is_request ? std::string(method_name(m.method))
                                : std::to_string(m.status_code) + " " + std::string(method_name(m.method)));
  }
  void parse_error(ParseStatus s) override { errors.push_back(s); }
};

IpAddr v4(uint8_t last) {
  IpAddr a{};
  a.family = 4;
  a.bytes[0] = 10;
  a.bytes[3] = last;
  return a;
}

std::string invite(int n, const std::string& body = "v=0\r\n") {
  return "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK" + std::to_string(n) +
         "\r\nCall-ID: c" + std::to_string(n) + "\r\nCSeq: " + std::to_string(n) +
         " INVITE\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}
std::string ok200(int n) {
  return "SIP/2.0 200 OK\r\nCall-ID: c" + std::to_string(n) + "\r\nCSeq: " + std::to_string(n) +
         " INVITE\r\nContent-Length: 0\r\n\r\n";
}

// One direction of a connection: hands segments to the reassembler with running sequence numbers.
class Conn {
 public:
  Conn(TcpReassembler& r, uint8_t a = 1, uint8_t b = 2, uint16_t sport = 40000, uint16_t dport = 5060,
       uint32_t isn = 1000)
      : r_(r), src_(v4(a)), dst_(v4(b)), sport_(sport), dport_(dport), seq_(isn) {}
  void syn() { send_at(seq_++, "", kTcpSyn); }
  void send(const std::string& data, uint8_t flags = kTcpAck) {
    send_at(seq_, data, flags);
    seq_ += static_cast<uint32_t>(data.size());
  }
  void send_at(uint32_t seq, const std::string& data, uint8_t flags = kTcpAck) {
    Decoded d;
    d.src = src_;
    d.dst = dst_;
    d.sport = sport_;
    d.dport = dport_;
    d.ip_protocol = 6;
    d.tcp_seq = seq;
    d.tcp_flags = flags;
    d.payload = reinterpret_cast<const uint8_t*>(data.data());
    d.payload_len = static_cast<uint32_t>(data.size());
    r_.segment(d, now_ += 1000);
  }
  uint32_t seq() const { return seq_; }
  void skip(uint32_t n) { seq_ += n; }
  Conn reverse() const { return Conn(r_, dst_.bytes[3], src_.bytes[3], dport_, sport_, 9000); }

 private:
  TcpReassembler& r_;
  IpAddr src_, dst_;
  uint16_t sport_, dport_;
  uint32_t seq_;
  int64_t now_ = 0;
};

uint64_t bytes(const TcpReassembler& r, StreamBytes b) { return r.stats().bytes[static_cast<size_t>(b)].get(); }
uint64_t evicted(const TcpReassembler& r, StreamEviction e) { return r.stats().evicted[static_cast<size_t>(e)].get(); }
uint64_t segs(const TcpReassembler& r, SegmentResult s) { return r.stats().segments[static_cast<size_t>(s)].get(); }

class TcpTest : public testing::Test {
 protected:
  Sink sink;
  TcpLimits lim;
  std::unique_ptr<TcpReassembler> r;
  void SetUp() override { make(); }
  void make() { r = std::make_unique<TcpReassembler>(lim, sink, active_kernel()); }
};

TEST_F(TcpTest, several_messages_in_one_segment_and_keepalives) {
  Conn c(*r);
  c.syn();
  c.send(invite(1) + "\r\n\r\n" + ok200(1) + invite(2));
  c.send("\r\n\r\n");
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE", "200 INVITE", "INVITE"}));
  EXPECT_EQ(r->stats().buffered.load(), 0u) << "whole messages are parsed in place";
  EXPECT_EQ(bytes(*r, StreamBytes::not_sip), 0u);
}

TEST_F(TcpTest, a_message_split_at_every_byte_offset) {
  const std::string m = invite(7, std::string(300, 'x'));
  for (size_t cut = 1; cut < m.size(); ++cut) {
    Conn c(*r, 1, 2, static_cast<uint16_t>(10000 + cut));
    c.syn();
    c.send(m.substr(0, cut));
    c.send(m.substr(cut) + ok200(7));
  }
  ASSERT_EQ(sink.seen.size(), 2 * (m.size() - 1));
  for (size_t i = 0; i < sink.seen.size(); i += 2) {
    ASSERT_EQ(sink.seen[i], "INVITE");
    ASSERT_EQ(sink.seen[i + 1], "200 INVITE");
  }
  EXPECT_TRUE(sink.errors.empty());
}

TEST_F(TcpTest, one_message_over_many_segments) {
  const std::string m = invite(3, std::string(5000, 'b'));
  Conn c(*r);
  c.syn();
  for (size_t i = 0; i < m.size(); i += 7) c.send(m.substr(i, 7));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE"}));
}

TEST_F(TcpTest, retransmissions_count_once) {
  Conn c(*r);
  c.syn();
  const uint32_t at = c.seq();
  const std::string m = invite(1) + ok200(1);
  c.send(m);
  c.send_at(at, m);                  // exact retransmission
  c.send_at(at + 10, m.substr(10));  // partial
  c.send(invite(2));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE", "200 INVITE", "INVITE"}));
  EXPECT_EQ(segs(*r, SegmentResult::retransmission), 2u);
}

TEST_F(TcpTest, partly_new_segment_delivers_only_the_new_bytes) {
  Conn c(*r);
  c.syn();
  const uint32_t at = c.seq();
  const std::string a = invite(1), b = invite(2);
  c.send(a.substr(0, 50));
  c.send_at(at + 20, (a + b).substr(20));  // overlaps 30 bytes already delivered
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE", "INVITE"}));
}

TEST_F(TcpTest, out_of_order_segments_are_put_back_in_order) {
  Conn c(*r);
  c.syn();
  const uint32_t at = c.seq();
  const std::string m = invite(1) + ok200(1) + invite(2);
  const size_t a = 40, b = 120;
  c.send_at(at + static_cast<uint32_t>(b), m.substr(b));
  c.send_at(at + static_cast<uint32_t>(a), m.substr(a, b - a));
  EXPECT_TRUE(sink.seen.empty());
  c.send_at(at, m.substr(0, a));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE", "200 INVITE", "INVITE"}));
  EXPECT_EQ(segs(*r, SegmentResult::out_of_order), 2u);
  EXPECT_EQ(r->stats().buffered.load(), 0u);
}

TEST_F(TcpTest, a_gap_is_counted_and_framing_resumes_at_the_next_start_line) {
  lim.max_held_segments = 2;
  make();
  Conn c(*r);
  c.syn();
  c.send(invite(1));
  const std::string lost = invite(2);
  const std::string tail = ok200(2);
  c.skip(static_cast<uint32_t>(lost.size() - 30));  // the capture missed most of invite(2)
  c.send(lost.substr(lost.size() - 30) + tail);    // ...its last 30 bytes arrive, then a 200
  c.send(invite(3));
  c.send(invite(4));  // the third held segment: the gap is declared
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE", "200 INVITE", "INVITE", "INVITE"}));
  EXPECT_EQ(bytes(*r, StreamBytes::lost), lost.size() - 30);
  EXPECT_EQ(bytes(*r, StreamBytes::not_sip), 30u);
  EXPECT_EQ(evicted(*r, StreamEviction::gap), 1u);
}

TEST_F(TcpTest, picked_up_mid_message_resynchronises) {
  Conn c(*r);
  const std::string m = invite(1);
  c.send(m.substr(25) + ok200(1) + invite(2));  // no SYN: the capture started mid-message
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"200 INVITE", "INVITE"}));
  EXPECT_EQ(bytes(*r, StreamBytes::not_sip), m.size() - 25);
}

TEST_F(TcpTest, start_line_split_during_resync) {
  Conn c(*r);
  const std::string m = "junk junk\r\n" + invite(1);
  c.send(m.substr(0, 20));
  c.send(m.substr(20));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE"}));
}

TEST_F(TcpTest, malformed_message_is_an_error_then_framing_continues) {
  Conn c(*r);
  c.syn();
  c.send("BYE sip:x SIP/2.0\r\nCSeq: 1 BYE\r\n\r\n" + invite(5));  // no Content-Length on a stream
  EXPECT_EQ(sink.errors, (std::vector<ParseStatus>{ParseStatus::missing_content_length}));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE"}));
}

TEST_F(TcpTest, fin_with_a_partial_message_is_counted) {
  Conn c(*r);
  c.syn();
  const std::string m = invite(1);
  c.send(m.substr(0, 60));
  c.send("", kTcpFin | kTcpAck);
  EXPECT_EQ(evicted(*r, StreamEviction::closed), 1u);
  EXPECT_EQ(bytes(*r, StreamBytes::lost), 60u);
  EXPECT_EQ(r->stats().streams.load(), 0u);
  EXPECT_EQ(r->stats().buffered.load(), 0u);
}

TEST_F(TcpTest, reset_ends_both_directions_and_a_new_syn_starts_afresh) {
  Conn c(*r);
  Conn s = c.reverse();
  c.syn();
  s.syn();
  c.send(invite(1).substr(0, 70));  // a request cut short...
  s.send("", kTcpRst | kTcpAck);   // ...by the server's reset
  EXPECT_EQ(r->stats().streams.load(), 0u);
  EXPECT_EQ(bytes(*r, StreamBytes::lost), 70u);
  Conn again(*r, 1, 2, 40000, 5060, 777777);  // same addresses and ports, a new connection
  again.syn();
  again.send(invite(2));
  // Without a reset seen: a SYN with a new sequence number still starts a new stream.
  again.send(invite(3).substr(0, 40));
  Conn third(*r, 1, 2, 40000, 5060, 999999);
  third.syn();
  third.send(invite(4));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE", "INVITE"}));
  EXPECT_TRUE(sink.errors.empty());
}

// A flow from an address and port to the same address and port is its own reverse: a reset must
// close it once (closing it twice hung the table; a fuzzer finding).
TEST_F(TcpTest, reset_of_a_flow_to_itself) {
  Conn c(*r, 3, 3, 5060, 5060);
  c.syn();
  c.send(invite(1).substr(0, 50));
  c.send("", kTcpRst | kTcpAck);
  EXPECT_EQ(r->stats().streams.load(), 0u);
  EXPECT_EQ(bytes(*r, StreamBytes::lost), 50u);
  Conn d(*r, 1, 2);
  d.syn();
  d.send(invite(2));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE"}));
}

TEST_F(TcpTest, tls_is_recognised_once_per_connection) {
  Conn c(*r, 1, 2, 40000, 5061);
  Conn s = c.reverse();
  c.syn();
  s.syn();
  c.send(std::string("\x16\x03\x01\x00\x05hello", 10));
  s.send(std::string("\x16\x03\x03\x00\x05world", 10));
  c.send(std::string("\x17\x03\x03\x00\x03" "abc", 8));
  EXPECT_EQ(r->stats().tls_streams.get(), 1u);
  EXPECT_EQ(bytes(*r, StreamBytes::tls), 28u);
  EXPECT_TRUE(sink.seen.empty());
}

TEST_F(TcpTest, http_on_a_sip_port_is_not_sip) {
  Conn c(*r);
  c.syn();
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(sink.seen.empty());
  EXPECT_TRUE(sink.errors.empty());
  EXPECT_EQ(bytes(*r, StreamBytes::not_sip), 27u);
}

std::string ws_frame(const std::string& payload, uint8_t opcode, bool fin, bool masked) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | opcode);
  const char m = masked ? static_cast<char>(0x80) : 0;
  if (payload.size() < 126) {
    f += static_cast<char>(m | static_cast<char>(payload.size()));
  } else {
    f += static_cast<char>(m | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xFF);
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) f.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i) f += masked ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i];
  return f;
}

TEST_F(TcpTest, websocket_after_an_upgrade) {
  Conn c(*r, 1, 2, 40000, 8080);
  Conn s = c.reverse();
  c.syn();
  s.syn();
  c.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\n\r\n");
  s.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  const std::string m1 = invite(1, std::string(200, 's'));  // > 125 bytes: a 16-bit length
  c.send(ws_frame(m1, 1, true, true));
  s.send(ws_frame(ok200(1), 1, true, false));
  // One message over three frames, a ping in between, the whole split across segments.
  const std::string m2 = invite(2);
  const std::string frames = ws_frame(m2.substr(0, 30), 1, false, true) + ws_frame("", 9, true, true) +
                             ws_frame(m2.substr(30, 40), 0, false, true) + ws_frame(m2.substr(70), 0, true, true);
  c.send(frames.substr(0, 13));
  c.send(frames.substr(13));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE", "200 INVITE", "INVITE"}));
  EXPECT_EQ(r->stats().websocket_streams.get(), 1u);
}

TEST_F(TcpTest, body_larger_than_the_limit_streams_past_unbuffered) {
  lim.max_message_bytes = 1000;
  make();
  Conn c(*r);
  c.syn();
  const std::string big = invite(1, std::string(30000, 'z'));
  for (size_t i = 0; i < big.size(); i += 500) {
    c.send(big.substr(i, 500));
    ASSERT_LE(r->stats().buffered.load(), 2048u);
  }
  c.send(invite(2));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE", "INVITE"}));
  EXPECT_EQ(evicted(*r, StreamEviction::too_large), 0u);
  EXPECT_EQ(bytes(*r, StreamBytes::not_sip), 0u);
}

TEST_F(TcpTest, header_section_larger_than_the_limit_is_skipped) {
  lim.max_message_bytes = 1000;
  make();
  Conn c(*r);
  c.syn();
  std::string big = "OPTIONS sip:x SIP/2.0\r\n";
  for (int i = 0; i < 100; ++i) big += "X-Padding: " + std::string(30, 'p') + "\r\n";
  big += "Content-Length: 0\r\n\r\n";
  for (size_t i = 0; i < big.size(); i += 500) c.send(big.substr(i, 500));
  c.send(invite(2));
  EXPECT_EQ(evicted(*r, StreamEviction::too_large), 1u);
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"INVITE"}));
}

TEST_F(TcpTest, idle_streams_expire) {
  lim.idle_timeout_ns = 5'000'000;
  make();
  Conn c(*r);
  c.syn();
  c.send(invite(1).substr(0, 10));
  EXPECT_EQ(r->stats().streams.load(), 1u);
  r->expire(1'000'000'000);
  EXPECT_EQ(r->stats().streams.load(), 0u);
  EXPECT_EQ(evicted(*r, StreamEviction::timeout), 1u);
  EXPECT_EQ(bytes(*r, StreamBytes::lost), 10u);
}

TEST_F(TcpTest, flood_of_half_open_streams_stays_bounded_and_real_traffic_still_counts) {
  lim.max_streams = 1000;
  lim.max_bytes = 1u << 20;
  make();
  Conn real(*r, 200, 201, 5060, 5060);
  real.syn();
  const std::string partial = invite(9).substr(0, 100);
  int sent = 0;
  for (uint32_t i = 0; i < 200000; ++i) {
    Conn junk(*r, static_cast<uint8_t>(i % 250), static_cast<uint8_t>(i / 250 % 250), static_cast<uint16_t>(i), 5060);
    junk.send(partial);  // a half-open stream holding a partial message
    if (i % 100 == 0) {
      real.send(invite(static_cast<int>(i)));
      ++sent;
    }
    ASSERT_LE(r->stats().streams.load(), lim.max_streams);
    ASSERT_LE(r->stats().buffered.load(), lim.max_bytes);
  }
  EXPECT_EQ(sink.seen.size(), static_cast<size_t>(sent)) << "the busy stream stays recent and is never evicted";
  EXPECT_GE(evicted(*r, StreamEviction::table_full), 200000u - lim.max_streams);
}

}  // namespace
}  // namespace sipex
