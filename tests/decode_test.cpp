#include <gtest/gtest.h>

#include "frames.hpp"
#include "sipex/decode.hpp"

namespace sipex {
namespace {

using namespace test;

const std::string kSip = "OPTIONS sip:h SIP/2.0\r\n\r\n";

Skip run(int linktype, const Bytes& f, Decoded& d) { return decode_frame(linktype, f.data(), static_cast<uint32_t>(f.size()), d); }

void expect_sip_v4(int linktype, const Bytes& frame) {
  Decoded d;
  ASSERT_EQ(skip_reason(run(linktype, frame, d)), "none");
  EXPECT_EQ(d.src.to_string(), "192.0.2.1");
  EXPECT_EQ(d.dst.to_string(), "198.51.100.2");
  EXPECT_EQ(d.sport, 5060);
  EXPECT_EQ(d.dport, 5080);
  EXPECT_EQ(d.ip_protocol, 17);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.payload), d.payload_len), kSip);
}

Bytes v4_sip() { return ipv4("192.0.2.1", "198.51.100.2", 17, udp(5060, 5080, kSip)); }

TEST(DecodeTest, ethernet_ipv4_udp) { expect_sip_v4(kLinkEthernet, ethernet(0x0800, v4_sip())); }
TEST(DecodeTest, vlan_8021q) { expect_sip_v4(kLinkEthernet, ethernet(0x0800, v4_sip(), {0x8100})); }
TEST(DecodeTest, qinq) { expect_sip_v4(kLinkEthernet, ethernet(0x0800, v4_sip(), {0x88A8, 0x8100})); }
TEST(DecodeTest, triple_tag_legacy_9100) { expect_sip_v4(kLinkEthernet, ethernet(0x0800, v4_sip(), {0x9100, 0x8100, 0x8100})); }
TEST(DecodeTest, linux_sll) { expect_sip_v4(kLinkLinuxSll, sll(0x0800, v4_sip())); }
TEST(DecodeTest, linux_sll_with_vlan) {
  Bytes tagged = {0x00, 0x64, 0x08, 0x00};  // TCI, then the inner type
  append(tagged, v4_sip());
  expect_sip_v4(kLinkLinuxSll, sll(0x8100, tagged));
}
TEST(DecodeTest, linux_sll2) { expect_sip_v4(kLinkLinuxSll2, sll2(0x0800, v4_sip())); }
TEST(DecodeTest, linux_sll2_with_vlan) {
  Bytes tagged = {0x00, 0x64, 0x08, 0x00};
  append(tagged, v4_sip());
  expect_sip_v4(kLinkLinuxSll2, sll2(0x8100, tagged));
}
TEST(DecodeTest, raw_ip) {
  expect_sip_v4(kLinkRaw, v4_sip());
  expect_sip_v4(kLinkRawAlt, v4_sip());
  expect_sip_v4(kLinkIpv4, v4_sip());
}
TEST(DecodeTest, bsd_null_either_byte_order) {
  expect_sip_v4(kLinkNull, null_link(2, false, v4_sip()));
  expect_sip_v4(kLinkNull, null_link(2, true, v4_sip()));
  expect_sip_v4(kLinkLoop, null_link(2, true, v4_sip()));
}
TEST(DecodeTest, ipv4_options_are_skipped) {
  expect_sip_v4(kLinkEthernet, ethernet(0x0800, ipv4("192.0.2.1", "198.51.100.2", 17, udp(5060, 5080, kSip), 0, 3)));
}
TEST(DecodeTest, ethernet_padding_is_not_payload) {
  // A tiny datagram padded to 60 bytes: the UDP length, not the frame, ends the payload.
  const Bytes f = ethernet(0x0800, ipv4("192.0.2.1", "198.51.100.2", 17, udp(1, 2, "ab")));
  ASSERT_EQ(f.size(), 60u);
  Decoded d;
  ASSERT_EQ(run(kLinkEthernet, f, d), Skip::none);
  EXPECT_EQ(d.payload_len, 2u);
}

TEST(DecodeTest, ipv6_with_extension_headers) {
  const Bytes ip = ipv6("2001:db8::1", "2001:db8::2", 17, udp(5060, 5060, kSip), {{0, 8}, {60, 16}, {44, 8}, {43, 24}});
  for (const Bytes& f : {ethernet(0x86DD, ip), sll(0x86DD, ip), null_link(30, false, ip), null_link(24, false, ip)}) {
    Decoded d;
    const int lt = f.size() == ip.size() + 14 ? kLinkEthernet : (f.size() == ip.size() + 16 ? kLinkLinuxSll : kLinkNull);
    ASSERT_EQ(skip_reason(run(lt, f, d)), "none");
    EXPECT_EQ(d.src.to_string(), "2001:db8::1");
    EXPECT_EQ(d.dst.to_string(), "2001:db8::2");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.payload), d.payload_len), kSip);
  }
  Decoded d;
  ASSERT_EQ(run(kLinkRaw, ip, d), Skip::none);
}

TEST(DecodeTest, fragments_are_described_for_the_reassembler) {
  Decoded d;
  ASSERT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 17, udp(1, 2, kSip), 0x2000), d), Skip::ip_fragment);
  EXPECT_EQ(d.fragment.version, 4);
  EXPECT_EQ(d.fragment.protocol, 17);
  EXPECT_TRUE(d.fragment.more);
  EXPECT_EQ(d.fragment.offset, 0u);
  EXPECT_EQ(d.fragment.id, 0x1234u);
  EXPECT_EQ(d.fragment.data_len, 8 + kSip.size());
  EXPECT_EQ(d.fragment.src.to_string(), "192.0.2.1");
  ASSERT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 17, udp(1, 2, kSip), 0x0010), d), Skip::ip_fragment);
  EXPECT_FALSE(d.fragment.more);
  EXPECT_EQ(d.fragment.offset, 128u);
  // Don't-fragment alone is a whole datagram.
  EXPECT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 17, udp(1, 2, kSip), 0x4000), d), Skip::none);
  // An IPv6 fragment header with M set, after a hop-by-hop header.
  Bytes ip = ipv6("2001:db8::1", "2001:db8::2", 17, udp(1, 2, kSip), {{0, 8}, {44, 8}});
  ip[40 + 8 + 3] = 1;
  ASSERT_EQ(run(kLinkRaw, ip, d), Skip::ip_fragment);
  EXPECT_EQ(d.fragment.version, 6);
  EXPECT_EQ(d.fragment.protocol, 17);
  EXPECT_TRUE(d.fragment.more);
  EXPECT_EQ(d.fragment.data_len, 8 + kSip.size());
}

TEST(DecodeTest, decode_transport_resumes_after_reassembly) {
  const Bytes l4 = udp(5060, 5080, kSip);
  Decoded d;
  IpAddr a{}, b{};
  a.family = b.family = 4;
  a.bytes[0] = 10;
  b.bytes[0] = 11;
  ASSERT_EQ(decode_transport(4, 17, a, b, l4.data(), static_cast<uint32_t>(l4.size()), 0, d), Skip::none);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.payload), d.payload_len), kSip);
  EXPECT_EQ(d.src.to_string(), "10.0.0.0");
  // IPv6: extension headers may start the reassembled payload.
  Bytes ext = {17, 0, 1, 4, 0, 0, 0, 0};  // destination options, 8 bytes, next = UDP
  append(ext, l4);
  ASSERT_EQ(decode_transport(6, 60, a, b, ext.data(), static_cast<uint32_t>(ext.size()), 0, d), Skip::none);
  EXPECT_EQ(d.dport, 5080);
}

TEST(DecodeTest, tcp_and_sctp_headers) {
  Bytes tcph = {0x13, 0xc4, 0x13, 0xc5, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x60, 0x18, 0xff, 0xff, 0, 0, 0, 0,
                2, 4, 5, 0xb4};  // data offset 6 (an MSS option), PSH|ACK, seq 4096
  append(tcph, kSip);
  Decoded d;
  const Bytes frame = ipv4("192.0.2.1", "192.0.2.2", 6, tcph);  // d views it: keep it alive
  ASSERT_EQ(run(kLinkRaw, frame, d), Skip::none);
  EXPECT_EQ(d.ip_protocol, 6);
  EXPECT_EQ(d.tcp_seq, 4096u);
  EXPECT_EQ(d.tcp_flags, 0x18);
  EXPECT_EQ(d.sport, 5060);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.payload), d.payload_len), kSip);
  Bytes sctph = {0x13, 0xc4, 0x13, 0xc4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 3, 0, 4};
  ASSERT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 132, sctph), d), Skip::none);
  EXPECT_EQ(d.ip_protocol, 132);
  EXPECT_EQ(d.payload_len, 4u);
}

// Each tunnel wraps the same inner IPv4/UDP/SIP packet; decoding must reach it and report the
// inner addresses.
Bytes inner() { return ipv4("10.1.1.1", "10.2.2.2", 17, udp(5060, 5060, kSip)); }
Bytes inner_eth() { return ethernet(0x0800, inner()); }

void expect_inner(const Bytes& frame, unsigned encapsulations) {
  Decoded d;
  ASSERT_EQ(skip_reason(run(kLinkEthernet, frame, d)), "none");
  EXPECT_EQ(d.src.to_string(), "10.1.1.1");
  EXPECT_EQ(d.dst.to_string(), "10.2.2.2");
  EXPECT_EQ(d.encapsulations, encapsulations);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.payload), d.payload_len), kSip);
}

Bytes gre(uint16_t flags, uint16_t proto, const Bytes& extra, const Bytes& payload) {
  Bytes b;
  put16(b, flags);
  put16(b, proto);
  append(b, extra);
  append(b, payload);
  return b;
}

Bytes outer4(uint8_t proto, const Bytes& payload) { return ethernet(0x0800, ipv4("192.0.2.1", "192.0.2.2", proto, payload)); }

TEST(TunnelTest, gre_ip_and_transparent_ethernet) {
  expect_inner(outer4(47, gre(0, 0x0800, {}, inner())), 1);
  expect_inner(outer4(47, gre(0x2000, 0x6558, {0, 0, 0, 7}, inner_eth())), 1);
  expect_inner(outer4(47, gre(0xB000, 0x0800, Bytes(12, 0), inner())), 1);  // checksum, key, sequence
  Decoded d;
  EXPECT_EQ(run(kLinkEthernet, outer4(47, gre(0x4000, 0x0800, {}, inner())), d), Skip::unsupported_tunnel);
}

TEST(TunnelTest, pptp_enhanced_gre_with_ppp) {
  Bytes ppp = {0xFF, 0x03, 0x00, 0x21};
  append(ppp, inner());
  expect_inner(outer4(47, gre(0x3081, 0x880B, Bytes(12, 0), ppp)), 1);  // version 1: key, sequence, ack
  Bytes compressed = {0x21};  // address/control and protocol field compressed
  append(compressed, inner());
  expect_inner(outer4(47, gre(0x2001, 0x880B, Bytes(4, 0), compressed)), 1);
}

TEST(TunnelTest, erspan_types) {
  Bytes t2(8, 0);
  append(t2, inner_eth());
  expect_inner(outer4(47, gre(0x1000, 0x88BE, {0, 0, 0, 1}, t2)), 1);
  expect_inner(outer4(47, gre(0x0000, 0x88BE, {}, inner_eth())), 1);  // type I: no header
  Bytes t3(12, 0);
  append(t3, inner_eth());
  expect_inner(outer4(47, gre(0x1000, 0x22EB, {0, 0, 0, 1}, t3)), 1);
  Bytes t3o(20, 0);
  t3o[11] = 0x01;  // O bit: an 8-byte platform subheader follows
  append(t3o, inner_eth());
  expect_inner(outer4(47, gre(0x1000, 0x22EB, {0, 0, 0, 1}, t3o)), 1);
}

std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

TEST(TunnelTest, vxlan_and_gtpu) {
  Bytes vx = {0x08, 0, 0, 0, 0, 0, 42, 0};
  append(vx, inner_eth());
  expect_inner(outer4(17, udp(40000, 4789, str(vx))), 1);
  Bytes gtp = {0x30, 0xFF};
  put16(gtp, static_cast<uint16_t>(inner().size()));
  append(gtp, Bytes{0, 0, 0, 1});
  append(gtp, inner());
  expect_inner(outer4(17, udp(2152, 2152, str(gtp))), 1);
  // GTP-U with the sequence flag and one extension header (PDU session container).
  Bytes gtpx = {0x34, 0xFF, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0x85, 1, 0x10, 0x01, 0};
  append(gtpx, inner());
  expect_inner(outer4(17, udp(2152, 2152, str(gtpx))), 1);
  // A plain SIP datagram to port 4789 is not VXLAN.
  Decoded d;
  ASSERT_EQ(run(kLinkEthernet, outer4(17, udp(5060, 4789, kSip)), d), Skip::none);
  EXPECT_EQ(d.encapsulations, 0);
}

TEST(TunnelTest, ip_in_ip_every_combination) {
  expect_inner(outer4(4, inner()), 1);
  expect_inner(ethernet(0x86DD, ipv6("2001:db8::1", "2001:db8::2", 4, inner())), 1);
  const Bytes in6 = ipv6("2001:db8:1::1", "2001:db8:2::2", 17, udp(5060, 5060, kSip));
  for (const Bytes& f : {outer4(41, in6), ethernet(0x86DD, ipv6("2001:db8::1", "2001:db8::2", 41, in6))}) {
    Decoded d;
    ASSERT_EQ(run(kLinkEthernet, f, d), Skip::none);
    EXPECT_EQ(d.src.to_string(), "2001:db8:1::1");
    EXPECT_EQ(d.encapsulations, 1);
  }
}

TEST(TunnelTest, mpls_pppoe_and_nesting) {
  Bytes labels = {0, 1, 0x00, 64, 0, 2, 0x01, 64};  // two labels, the second bottom of stack
  append(labels, inner());
  expect_inner(ethernet(0x8847, labels), 0);
  Bytes pw = {0, 1, 0x01, 64, 0, 0, 0, 0};  // one label, a zero control word, then Ethernet
  append(pw, inner_eth());
  expect_inner(ethernet(0x8847, pw), 1);
  Bytes pppoe = {0x11, 0x00, 0x12, 0x34};
  put16(pppoe, static_cast<uint16_t>(2 + inner().size()));
  put16(pppoe, 0x0021);
  append(pppoe, inner());
  expect_inner(ethernet(0x8864, pppoe, {0x8100}), 0);
  // GRE inside VXLAN inside IPv6: two tunnels.
  Bytes vx = {0x08, 0, 0, 0, 0, 0, 1, 0};
  append(vx, outer4(47, gre(0, 0x0800, {}, inner())));
  expect_inner(ethernet(0x86DD, ipv6("2001:db8::1", "2001:db8::2", 17, udp(1, 4789, str(vx)))), 2);
}

TEST(TunnelTest, nesting_is_bounded) {
  Bytes f = inner();
  for (unsigned i = 0; i <= kMaxEncapsulation; ++i) f = ipv4("192.0.2.1", "192.0.2.2", 4, f);
  Decoded d;
  EXPECT_EQ(run(kLinkRaw, f, d), Skip::malformed);
}

TEST(DecodeTest, every_truncation_is_reported_never_overread) {
  const Bytes f = ethernet(0x86DD, ipv6("2001:db8::1", "2001:db8::2", 17, udp(5060, 5060, kSip), {{0, 8}}), {0x8100});
  for (size_t n = 0; n < f.size(); ++n) {
    const Bytes cut(f.begin(), f.begin() + static_cast<long>(n));  // exact-size heap copy for ASan
    Decoded d;
    const Skip s = run(kLinkEthernet, cut, d);
    EXPECT_NE(s, Skip::none) << n;
    (void)outer_flow_hash(kLinkEthernet, cut.data(), static_cast<uint32_t>(cut.size()));
  }
}

TEST(DecodeTest, malformed_lengths) {
  Decoded d;
  Bytes ip = v4_sip();
  ip[0] = 0x44;  // IHL 4 < 5
  EXPECT_EQ(run(kLinkRaw, ip, d), Skip::malformed);
  ip = v4_sip();
  ip[3] = 200;  // total length beyond the capture
  EXPECT_EQ(run(kLinkRaw, ip, d), Skip::truncated);
  ip = v4_sip();
  ip[20 + 5] = 4;  // UDP length 4 < 8
  ip[20 + 4] = 0;
  EXPECT_EQ(run(kLinkRaw, ip, d), Skip::malformed);
}

TEST(FlowHashTest, symmetric_and_spreads) {
  const Bytes ab = ethernet(0x0800, ipv4("192.0.2.1", "198.51.100.2", 17, udp(1, 2, "x")));
  const Bytes ba = ethernet(0x0800, ipv4("198.51.100.2", "192.0.2.1", 17, udp(2, 1, "y")), {0x8100});
  EXPECT_EQ(outer_flow_hash(kLinkEthernet, ab.data(), static_cast<uint32_t>(ab.size())),
            outer_flow_hash(kLinkEthernet, ba.data(), static_cast<uint32_t>(ba.size())));
  const Bytes v6a = ipv6("2001:db8::1", "2001:db8::2", 17, udp(1, 2, "x"));
  const Bytes v6b = ipv6("2001:db8::2", "2001:db8::1", 17, udp(2, 1, "x"));
  EXPECT_EQ(outer_flow_hash(kLinkRaw, v6a.data(), static_cast<uint32_t>(v6a.size())),
            outer_flow_hash(kLinkRaw, v6b.data(), static_cast<uint32_t>(v6b.size())));
  // 256 distinct pairs over 4 workers: every worker gets some.
  int buckets[4] = {};
  for (int i = 0; i < 256; ++i) {
    const std::string src = "10.0." + std::to_string(i) + ".1";
    const Bytes f = ipv4(src.c_str(), "10.255.0.1", 17, udp(1, 2, "x"));
    ++buckets[outer_flow_hash(kLinkRaw, f.data(), static_cast<uint32_t>(f.size())) % 4];
  }
  for (int b : buckets) EXPECT_GT(b, 32);
}

}  // namespace
}  // namespace sipex
