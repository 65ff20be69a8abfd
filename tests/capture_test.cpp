// The default kernel filter, run by libpcap's own compiler and interpreter over built frames: what
// the decoder can turn into SIP must pass it, and plain traffic on other ports must not.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include "frames.hpp"
#include "sipex/capture.hpp"

namespace sipex {
namespace {

using namespace sipex::test;

const std::string kSip = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n";

class DefaultFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pcap_ = pcap_open_dead(DLT_EN10MB, 65535);
    ASSERT_NE(pcap_, nullptr);
    const std::string f = default_bpf_filter({5060, 5080});
    ASSERT_EQ(pcap_compile(pcap_, &prog_, f.c_str(), 1, PCAP_NETMASK_UNKNOWN), 0) << pcap_geterr(pcap_);
    EXPECT_LT(prog_.bf_len, 4096u) << "the kernel refuses longer programs (BPF_MAXINSNS)";
  }
  void TearDown() override {
    pcap_freecode(&prog_);
    pcap_close(pcap_);
  }
  bool passes(const Bytes& frame) {
    pcap_pkthdr h{};
    h.caplen = h.len = static_cast<bpf_u_int32>(frame.size());
    return pcap_offline_filter(&prog_, &h, frame.data()) != 0;
  }
  // The frame bare, under one VLAN tag and under two (802.1ad outside 802.1Q).
  void expect_passes(uint16_t type, const Bytes& packet, bool want) {
    for (const auto& tags : std::vector<std::vector<uint16_t>>{{}, {0x8100}, {0x88A8, 0x8100}}) {
      EXPECT_EQ(passes(ethernet(type, packet, tags)), want) << tags.size() << " VLAN tag(s)";
    }
  }

  pcap_t* pcap_ = nullptr;
  bpf_program prog_{};
};

Bytes v4(uint8_t proto, const Bytes& l4) { return ipv4("192.0.2.1", "198.51.100.2", proto, l4); }
Bytes v6(uint8_t proto, const Bytes& l4, const std::vector<std::pair<uint8_t, unsigned>>& ext = {}) {
  return ipv6("2001:db8::1", "2001:db8::2", proto, l4, ext);
}

TEST_F(DefaultFilterTest, sip_ports_over_every_transport_pass) {
  for (uint8_t proto : {17, 6, 132}) {  // the port fields sit at the same offsets in all three
    expect_passes(0x0800, v4(proto, udp(40000, 5060, kSip)), true);
    expect_passes(0x0800, v4(proto, udp(5080, 40000, kSip)), true);
    expect_passes(0x86DD, v6(proto, udp(40000, 5060, kSip)), true);
  }
}

TEST_F(DefaultFilterTest, other_ports_are_rejected) {
  expect_passes(0x0800, v4(17, udp(16384, 16386, "rtp")), false);
  expect_passes(0x86DD, v6(17, udp(16384, 16386, "rtp")), false);
  expect_passes(0x86DD, v6(17, udp(16384, 16386, "rtp"), {{0, 8}}), false);
  expect_passes(0x86DD, v6(6, udp(443, 40000, "tls"), {{60, 16}}), false);
  expect_passes(0x0806, Bytes(28, 0), false);  // ARP
}

TEST_F(DefaultFilterTest, fragments_pass) {
  expect_passes(0x0800, ipv4("192.0.2.1", "198.51.100.2", 17, Bytes(64, 'x'), 0x0010), true);  // offset 128
  expect_passes(0x86DD, v6(17, Bytes(64, 'x'), {{44, 8}}), true);
}

TEST_F(DefaultFilterTest, ipv6_extension_headers_before_the_ports) {
  // One hop-by-hop, routing or destination options header of any length: the ports are read.
  for (uint8_t type : {0, 43, 60}) {
    for (unsigned len : {8u, 16u, 24u}) {
      expect_passes(0x86DD, v6(17, udp(40000, 5060, kSip), {{type, len}}), true);
      expect_passes(0x86DD, v6(6, udp(5080, 40000, kSip), {{type, len}}), true);
    }
  }
  // Longer chains pass without a port check (the decoder decides).
  expect_passes(0x86DD, v6(17, udp(40000, 5060, kSip), {{0, 8}, {60, 16}}), true);
  expect_passes(0x86DD, v6(17, udp(40000, 5060, kSip), {{0, 8}, {44, 8}}), true);
}

TEST_F(DefaultFilterTest, tunnels_the_decoder_opens_pass) {
  const Bytes inner = ipv4("10.1.1.1", "10.2.2.2", 17, udp(5060, 5060, kSip));
  Bytes gre = {0, 0, 0x08, 0x00};
  append(gre, inner);
  expect_passes(0x0800, v4(47, gre), true);
  expect_passes(0x86DD, v6(47, gre), true);
  expect_passes(0x0800, v4(4, inner), true);
  expect_passes(0x86DD, v6(4, inner), true);
  const Bytes inner6 = ipv6("2001:db8:1::1", "2001:db8:2::2", 17, udp(5060, 5060, kSip));
  expect_passes(0x0800, v4(41, inner6), true);
  expect_passes(0x86DD, v6(41, inner6), true);
  Bytes vx = {0x08, 0, 0, 0, 0, 0, 42, 0};
  append(vx, ethernet(0x0800, inner));
  const std::string vxs(vx.begin(), vx.end());
  expect_passes(0x0800, v4(17, udp(40000, 4789, vxs)), true);
  expect_passes(0x0800, v4(17, udp(40000, 8472, vxs)), true);
  Bytes mpls = {0, 1, 0x01, 64};
  append(mpls, inner);
  expect_passes(0x8847, mpls, true);
  Bytes pppoe = {0x11, 0x00, 0x12, 0x34};
  put16(pppoe, static_cast<uint16_t>(2 + inner.size()));
  put16(pppoe, 0x0021);
  append(pppoe, inner);
  expect_passes(0x8864, pppoe, true);
}

TEST_F(DefaultFilterTest, gtp_u_is_left_out) {
  // On a mobile core GTP-U is every subscriber's traffic; a filter of one's own can add it.
  const Bytes inner = ipv4("10.1.1.1", "10.2.2.2", 17, udp(5060, 5060, kSip));
  Bytes gtp = {0x30, 0xFF};
  put16(gtp, static_cast<uint16_t>(inner.size()));
  append(gtp, Bytes{0, 0, 0, 1});
  append(gtp, inner);
  expect_passes(0x0800, v4(17, udp(2152, 2152, std::string(gtp.begin(), gtp.end()))), false);
}

TEST(DefaultFilterSizeTest, many_ports_still_fit_the_kernel) {
  std::vector<uint16_t> ports;
  for (uint16_t p = 5060; p < 5092; ++p) ports.push_back(p);
  pcap_t* p = pcap_open_dead(DLT_EN10MB, 65535);
  bpf_program prog{};
  ASSERT_EQ(pcap_compile(p, &prog, default_bpf_filter(ports).c_str(), 1, PCAP_NETMASK_UNKNOWN), 0) << pcap_geterr(p);
  EXPECT_LT(prog.bf_len, 4096u);
  pcap_freecode(&prog);
  pcap_close(p);
}

}  // namespace
}  // namespace sipex
