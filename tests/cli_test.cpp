#include <gtest/gtest.h>

#include "sipex/cli.hpp"

namespace sipex {
namespace {

CliAction parse(std::vector<const char*> args, Options& o, std::string& msg) {
  args.insert(args.begin(), "sip_exporter");
  return parse_cli(static_cast<int>(args.size()), args.data(), o, msg);
}

TEST(CliTest, repeatable_flags_and_defaults) {
  Options o;
  std::string msg;
  ASSERT_EQ(parse({"--capture.interface=eth0", "--capture.interface", "eth1", "--capture.threads=4",
                   "--sip.ports=5060,5080", "--workers=3", "--web.listen-address=127.0.0.1:0"},
                  o, msg),
            CliAction::run)
      << msg;
  EXPECT_EQ(o.capture.interfaces, (std::vector<std::string>{"eth0", "eth1"}));
  EXPECT_EQ(o.capture.threads_per_interface, 4u);
  EXPECT_EQ(o.capture.sip_ports, (std::vector<uint16_t>{5060, 5080}));
  EXPECT_EQ(o.workers, 3u);
  EXPECT_TRUE(o.listen_set);
  EXPECT_EQ(o.telemetry_path, "/metrics");
  EXPECT_FALSE(o.capture.bpf_filter_set);
  EXPECT_GE(o.pool_batches, 64u);
}

TEST(CliTest, files) {
  Options o;
  std::string msg;
  ASSERT_EQ(parse({"--capture.file=a.pcap", "--capture.file=b.pcapng", "--metrics.out=-", "--capture.bpf-filter="}, o, msg),
            CliAction::run);
  EXPECT_EQ(o.capture.files.size(), 2u);
  EXPECT_EQ(o.metrics_out, "-");
  EXPECT_TRUE(o.capture.bpf_filter_set);
  EXPECT_FALSE(o.listen_set);
  EXPECT_GE(o.workers, 1u);
}

TEST(CliTest, usage_errors) {
  for (std::vector<const char*> bad : std::vector<std::vector<const char*>>{
           {"--capture.file=a", "--bogus"},
           {},
           {"--capture.file=a", "--capture.interface=lo"},
           {"--capture.file=a", "--workers=0"},
           {"--capture.file=a", "--workers=x"},
           {"--capture.file=a", "--sip.ports=5060,70000"},
           {"--capture.file=a", "--sip.ports=abc"},
           {"--capture.file=a", "--capture.snaplen=10"},
           {"--capture.file=a", "--web.telemetry-path=metrics"},
           {"--capture.file=a", "stray"},
       }) {
    Options o;
    std::string msg;
    EXPECT_EQ(parse(bad, o, msg), CliAction::usage_error) << (bad.empty() ? "(none)" : bad.back());
    EXPECT_FALSE(msg.empty());
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(CliTest, help_and_version) {
  Options o;
  std::string msg;
  EXPECT_EQ(parse({"--help"}, o, msg), CliAction::exit_ok);
  EXPECT_NE(msg.find("--capture.interface"), std::string::npos);
  EXPECT_EQ(parse({"--version"}, o, msg), CliAction::exit_ok);
  EXPECT_NE(msg.find("sip_exporter"), std::string::npos);
}

}  // namespace
}  // namespace sipex
