#include <gtest/gtest.h>

#include "frames.hpp"
#include "sipex/dedup.hpp"
#include "sipex/worker.hpp"

namespace sipex {
namespace {

using namespace test;

constexpr int64_t kMs = 1'000'000;

Decoded decoded(const Bytes& ip) {
  Decoded d;
  EXPECT_EQ(decode_frame(kLinkRaw, ip.data(), static_cast<uint32_t>(ip.size()), d), Skip::none);
  return d;
}

Bytes with_id(Bytes ip, uint16_t id) {
  ip[4] = static_cast<uint8_t>(id >> 8);
  ip[5] = static_cast<uint8_t>(id);
  return ip;
}

const std::string kSip = "INVITE sip:b@h SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

TEST(DuplicateFilterTest, a_copy_within_the_window_is_a_duplicate) {
  DuplicateFilter f(5 * kMs);
  const Bytes ip = ipv4("192.0.2.1", "192.0.2.2", 17, udp(5060, 5060, kSip));
  EXPECT_FALSE(f.duplicate(decoded(ip), 0));
  EXPECT_TRUE(f.duplicate(decoded(ip), 10'000));        // 10 us later: the mirrored copy
  EXPECT_FALSE(f.duplicate(decoded(ip), 600 * kMs));    // a retransmission half a second later
}

TEST(DuplicateFilterTest, a_new_ip_id_or_other_bytes_are_not_duplicates) {
  DuplicateFilter f(5 * kMs);
  const Bytes ip = ipv4("192.0.2.1", "192.0.2.2", 17, udp(5060, 5060, kSip));
  EXPECT_FALSE(f.duplicate(decoded(ip), 0));
  EXPECT_FALSE(f.duplicate(decoded(with_id(ip, 0x4242)), 1000));
  std::string other = kSip;
  other[other.size() - 5] = '1';
  EXPECT_FALSE(f.duplicate(decoded(ipv4("192.0.2.1", "192.0.2.2", 17, udp(5060, 5060, other))), 2000));
  EXPECT_FALSE(f.duplicate(decoded(ipv4("192.0.2.1", "192.0.2.3", 17, udp(5060, 5060, kSip))), 3000));
}

TEST(DuplicateFilterTest, worker_counts_a_mirrored_datagram_once_when_enabled) {
  for (const int64_t window : {int64_t{0}, 5 * kMs}) {
    Config cfg;
    cfg.duplicate_window_ns = window;
    PeerRegistry peers(cfg);
    BatchPool pool(1, 1);
    BatchQueue q(1);
    Worker w(q, pool, peers, cfg);
    const Bytes frame = ethernet(0x0800, ipv4("192.0.2.1", "192.0.2.2", 17, udp(5060, 5060, kSip)));
    w.process(1, frame.data(), static_cast<uint32_t>(frame.size()), 1000);
    w.process(1, frame.data(), static_cast<uint32_t>(frame.size()), 1500);
    uint64_t requests = 0;
    w.shard().series.for_each([&](uint64_t k, uint64_t c) {
      if (series_fields(k).family == Family::messages) requests += c;
    });
    EXPECT_EQ(requests, window == 0 ? 2u : 1u);
    EXPECT_EQ(w.shard().duplicates.get(), window == 0 ? 0u : 1u);
  }
}

}  // namespace
}  // namespace sipex
