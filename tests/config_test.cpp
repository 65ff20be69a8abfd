#include <gtest/gtest.h>

#include "sipex/config.hpp"

namespace sipex {
namespace {

IpAddr addr(const char* text) {
  Cidr c;
  EXPECT_TRUE(parse_cidr(text, c)) << text;
  return c.net;
}

TEST(CidrTest, parses_and_matches) {
  Cidr c;
  ASSERT_TRUE(parse_cidr("198.51.100.0/28", c));
  EXPECT_TRUE(c.contains(addr("198.51.100.15")));
  EXPECT_FALSE(c.contains(addr("198.51.100.16")));
  EXPECT_FALSE(c.contains(addr("2001:db8::1")));
  ASSERT_TRUE(parse_cidr("2001:db8:b::/48", c));
  EXPECT_TRUE(c.contains(addr("2001:db8:b:ffff::1")));
  EXPECT_FALSE(c.contains(addr("2001:db8:c::1")));
  ASSERT_TRUE(parse_cidr("192.0.2.10", c));
  EXPECT_EQ(c.prefix, 32);
  ASSERT_TRUE(parse_cidr("0.0.0.0/0", c));
  EXPECT_TRUE(c.contains(addr("203.0.113.7")));
}

TEST(CidrTest, rejects_bad_text) {
  Cidr c;
  for (const char* bad : {"", "198.51.100.0/33", "2001:db8::/129", "198.51.100.1/24", "1.2.3/24", "x/8",
                          "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1"}) {
    EXPECT_FALSE(parse_cidr(bad, c)) << bad;
  }
}

TEST(ConfigTest, design_example_parses) {
  const Config cfg = parse_config(R"(home_networks: [203.0.113.0/24, 2001:db8:ffff::/48]
peers:
  carrier-a: [198.51.100.0/28]
  carrier-b: [192.0.2.10/32, 2001:db8:b::/48]
limits: { max_peers: 1000 }
)",
                                  "x.yaml");
  ASSERT_EQ(cfg.home_networks.size(), 2u);
  ASSERT_EQ(cfg.peers.size(), 2u);
  EXPECT_EQ(cfg.peers[0].name, "carrier-a");
  EXPECT_EQ(cfg.peers[1].networks.size(), 2u);
  EXPECT_EQ(cfg.max_peers, 1000u);
}

TEST(ConfigTest, reassembly_limits) {
  const Config cfg = parse_config(R"(limits:
  tcp_streams: 1000
  tcp_buffer_bytes: 1048576
  tcp_message_bytes: 8192
  tcp_idle_timeout_seconds: 60
  fragment_datagrams: 100
  fragment_buffer_bytes: 65536
  fragment_timeout_seconds: 5
  sctp_messages: 16
)",
                                  "x.yaml");
  EXPECT_EQ(cfg.tcp.max_streams, 1000u);
  EXPECT_EQ(cfg.tcp.max_bytes, 1048576u);
  EXPECT_EQ(cfg.tcp.max_message_bytes, 8192u);
  EXPECT_EQ(cfg.tcp.idle_timeout_ns, 60'000'000'000);
  EXPECT_EQ(cfg.fragments.max_datagrams, 100u);
  EXPECT_EQ(cfg.fragments.max_bytes, 65536u);
  EXPECT_EQ(cfg.fragments.timeout_ns, 5'000'000'000);
  EXPECT_EQ(cfg.sctp.max_messages, 16u);
}

TEST(ConfigTest, empty_file_is_defaults) {
  const Config cfg = parse_config("", "x.yaml");
  EXPECT_TRUE(cfg.home_networks.empty());
  EXPECT_EQ(cfg.max_peers, 1000u);
  EXPECT_EQ(cfg.max_series, 100000u);
}

void expect_error(const std::string& yaml, const std::string& fragment) {
  try {
    parse_config(yaml, "site.yaml");
    ADD_FAILURE() << "no error for: " << yaml;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ConfigTest, errors_name_file_and_line) {
  expect_error("home_networks: [10.0.0.0/8]\nhome_network: []\n", "site.yaml:2: unknown key 'home_network'");
  expect_error("peers:\n  a: [10.0.0.0/8]\n  b: [10.0.0.300/32]\n", "site.yaml:3: bad CIDR");
  expect_error("home_networks:\n  - 10.0.0.1/8\n", "site.yaml:2: bad CIDR");
  expect_error("limits: {max_peers: 0}\n", "site.yaml:1: max_peers must be between");
  expect_error("limits:\n  max_peerz: 5\n", "site.yaml:2: unknown key 'limits.max_peerz'");
  expect_error("peers:\n  other: [10.0.0.0/8]\n", "reserved");
  expect_error("peers:\n  a: [10.0.0.0/8]\n  a: [11.0.0.0/8]\n", "");  // duplicate keys: yaml or our check
  expect_error("home_networks: [10.0.0.0/8\n", "site.yaml:");
  expect_error("limits:\n  tcp_streams: 1\n", "site.yaml:2: tcp_streams must be at least 2");
  expect_error("limits:\n  fragment_timeout_seconds: -3\n", "site.yaml:2:");
  expect_error("- a\n- b\n", "top level must be a mapping");
  expect_error("peers:\n  a: 10.0.0.0/8\n", "list of CIDRs");
  expect_error("limits: {max_peers: 2}\npeers:\n  a: [10.0.0.0/8]\n  b: [11.0.0.0/8]\n  c: [12.0.0.0/8]\n", "max_peers");
}

TEST(ConfigTest, missing_file) {
  EXPECT_THROW(load_config("/nonexistent/sipex.yaml"), ConfigError);
}

}  // namespace
}  // namespace sipex
