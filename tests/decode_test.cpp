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

TEST(DecodeTest, fragments_are_counted_not_decoded_yet) {
  Decoded d;
  EXPECT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 17, udp(1, 2, kSip), 0x2000), d), Skip::ip_fragment_unsupported);
  EXPECT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 17, udp(1, 2, kSip), 0x0010), d), Skip::ip_fragment_unsupported);
  // Don't-fragment alone is a whole datagram.
  EXPECT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 17, udp(1, 2, kSip), 0x4000), d), Skip::none);
  // An IPv6 fragment header with M set.
  Bytes ip = ipv6("2001:db8::1", "2001:db8::2", 17, udp(1, 2, kSip), {{44, 8}});
  ip[40 + 3] = 1;
  EXPECT_EQ(run(kLinkRaw, ip, d), Skip::ip_fragment_unsupported);
}

TEST(DecodeTest, other_protocols_have_named_reasons) {
  Decoded d;
  EXPECT_EQ(run(kLinkEthernet, ethernet(0x0806, Bytes(28, 0)), d), Skip::not_ip);
  EXPECT_EQ(run(kLinkEthernet, ethernet(0x0026, Bytes(40, 0)), d), Skip::not_ip);  // 802.3 length
  EXPECT_EQ(run(kLinkEthernet, ethernet(0x8864, Bytes(40, 0)), d), Skip::tunnel_unsupported);
  EXPECT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 1, Bytes(8, 0)), d), Skip::other_ip_protocol);
  EXPECT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 6, Bytes(20, 0)), d), Skip::tcp_unsupported);
  EXPECT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 132, Bytes(12, 0)), d), Skip::sctp_unsupported);
  EXPECT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 47, Bytes(4, 0)), d), Skip::tunnel_unsupported);
  EXPECT_EQ(run(kLinkRaw, ipv4("192.0.2.1", "192.0.2.2", 4, Bytes(20, 0)), d), Skip::tunnel_unsupported);
  EXPECT_EQ(run(147, Bytes(40, 0), d), Skip::unsupported_link_type);
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
