#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sipex/aggregate.hpp"
#include "sipex/metrics.hpp"

namespace sipex {
namespace {

IpAddr ip(const char* text) {
  Cidr c;
  EXPECT_TRUE(parse_cidr(text, c)) << text;
  return c.net;
}

TEST(SeriesTableTest, counts_and_caps) {
  SeriesTable t(3);
  const uint64_t a = series_key(1, Direction::unknown, Method::INVITE, 0);
  const uint64_t b = series_key(1, Direction::unknown, Method::INVITE, 503);
  const uint64_t c = series_key(2, Direction::inbound, Method::BYE, 200);
  const uint64_t d = series_key(kPeerOther, Direction::unknown, Method::INVITE, 0);
  EXPECT_TRUE(t.add(a));
  EXPECT_TRUE(t.add(a, 4));
  EXPECT_TRUE(t.add(b));
  EXPECT_TRUE(t.add(c));
  EXPECT_FALSE(t.add(d));  // fourth series: over the cap, nothing counted
  EXPECT_TRUE(t.add(c));   // existing series still count
  std::map<uint64_t, uint64_t> seen;
  t.for_each([&](uint64_t k, uint64_t n) { seen[k] = n; });
  EXPECT_EQ(seen, (std::map<uint64_t, uint64_t>{{a, 5}, {b, 1}, {c, 2}}));
}

TEST(SeriesTableTest, key_round_trips_and_is_never_zero) {
  const uint64_t k = series_key(kPeerOther, Direction::unknown, Method::INVITE, 0);
  EXPECT_NE(k, 0u);
  const SeriesFields f = series_fields(series_key(65535, Direction::outbound, Method::OTHER, 699));
  EXPECT_EQ(f.peer, 65535);
  EXPECT_EQ(f.direction, Direction::outbound);
  EXPECT_EQ(f.method, Method::OTHER);
  EXPECT_EQ(f.code, 699);
}

TEST(SeriesTableTest, concurrent_reader_sees_monotonic_counts) {
  SeriesTable t(1000);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      uint64_t total = 0;
      t.for_each([&](uint64_t, uint64_t n) { total += n; });
      ASSERT_GE(total, last);
      last = total;
    }
  });
  for (int i = 0; i < 200000; ++i) t.add(series_key(static_cast<PeerId>(i % 500), Direction::unknown, Method::ACK, 0));
  done = true;
  reader.join();
  uint64_t total = 0;
  t.for_each([&](uint64_t, uint64_t n) { total += n; });
  EXPECT_EQ(total, 200000u);
}

TEST(SeriesTableTest, for_each_visits_series_in_order_of_creation) {
  // A table sized for a million series holding three: for_each walks the dense list only.
  SeriesTable t(1000000);
  const uint64_t keys[] = {series_key(9, Direction::inbound, Method::BYE, 200),
                           series_key(1, Direction::unknown, Method::INVITE, 0),
                           series_key(5, Direction::outbound, Method::ACK, 0)};
  for (uint64_t k : keys) EXPECT_TRUE(t.add(k, 2));
  EXPECT_TRUE(t.add(keys[1]));
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  t.for_each([&](uint64_t k, uint64_t n) { seen.emplace_back(k, n); });
  EXPECT_EQ(seen, (std::vector<std::pair<uint64_t, uint64_t>>{{keys[0], 2}, {keys[1], 3}, {keys[2], 2}}));
  EXPECT_EQ(t.size(), 3u);
}

TEST(SeriesTableTest, many_series_grow_the_index_and_keep_every_count) {
  // 300k series: the writer's index doubles from 1024 slots to 1M, rebuilt each time.
  SeriesTable t(400000);
  for (uint64_t k = 1; k <= 300000; ++k) ASSERT_TRUE(t.add(k << 1 | uint64_t{1} << 63, k));
  for (uint64_t k = 1; k <= 300000; k += 7) ASSERT_TRUE(t.add(k << 1 | uint64_t{1} << 63, 1));
  uint64_t n = 0, bad = 0;
  t.for_each([&](uint64_t key, uint64_t count) {
    const uint64_t k = (key & ~(uint64_t{1} << 63)) >> 1;
    bad += count != k + ((k - 1) % 7 == 0 ? 1 : 0);
    ++n;
  });
  EXPECT_EQ(n, 300000u);
  EXPECT_EQ(bad, 0u);
}

TEST(SeriesTableTest, an_index_that_cannot_grow_fills_up_and_refuses_new_series) {
  // The doubling past 262,144 series needs 4 MiB more address space than the child is allowed:
  // the index stays at 512k slots, takes series until one slot short of full, then refuses new
  // ones (the caller counts them as overflow) while existing ones still count. No exception.
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "an address-space limit cannot be set under AddressSanitizer (its shadow memory)";
#endif
  EXPECT_EXIT(
      {
        SeriesTable t(1000000);  // its entries are reserved now, before the limit
        for (uint64_t k = 1; k <= 200000; ++k) t.add(k | uint64_t{1} << 63);  // index at 512k slots
        rlimit lim{};
        getrlimit(RLIMIT_AS, &lim);
        std::ifstream status("/proc/self/statm");
        size_t pages = 0;
        status >> pages;
        lim.rlim_cur = pages * static_cast<size_t>(sysconf(_SC_PAGESIZE)) + (2u << 20);
        setrlimit(RLIMIT_AS, &lim);
        uint64_t added = 200000;
        for (uint64_t k = 200001; k <= 1000000 && t.add(k | uint64_t{1} << 63); ++k) ++added;
        const bool old_ones_count = t.add(uint64_t{5} | uint64_t{1} << 63);
        std::exit(added == 524287 && t.size() == 524287 && old_ones_count ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

TEST(HistogramTableTest, observes_caps_and_lists_in_order_of_creation) {
  HistogramTable t(2);
  const uint64_t a = HistogramTable::key(HistogramFamily::response_latency, 3, Direction::inbound, Method::INVITE,
                                         LatencyStage::ringing);
  const uint64_t b = HistogramTable::key(HistogramFamily::call_duration, 1, Direction::unknown, Method::INVITE,
                                         LatencyStage::final);
  const uint64_t c = HistogramTable::key(HistogramFamily::response_latency, 4, Direction::inbound, Method::BYE,
                                         LatencyStage::final);
  EXPECT_TRUE(t.observe(a, 0.003));
  EXPECT_TRUE(t.observe(b, 20000.5));  // above the last bound: +Inf
  EXPECT_TRUE(t.observe(a, 0.001));   // on a bound: that bucket
  EXPECT_FALSE(t.observe(c, 1));      // a third histogram: over the cap
  std::vector<uint64_t> order;
  t.for_each([&](uint64_t k, const uint64_t* counts, uint64_t sum_ns) {
    order.push_back(k);
    if (k == a) {
      EXPECT_EQ(counts[0], 1u);
      EXPECT_EQ(counts[2], 1u);
      EXPECT_EQ(sum_ns, 4'000'000u);
    } else {
      EXPECT_EQ(counts[kMaxBuckets], 1u);
      EXPECT_EQ(sum_ns, 20'000'500'000'000u);
    }
  });
  EXPECT_EQ(order, (std::vector<uint64_t>{a, b}));
  EXPECT_EQ(t.size(), 2u);
}

TEST(PeerTest, sender_is_peer_without_home_networks) {
  Config cfg;
  PeerRegistry reg(cfg);
  PeerResolver r(reg, cfg);
  const auto at = r.attribute(ip("192.0.2.1"), ip("198.51.100.1"));
  EXPECT_EQ(at.direction, Direction::unknown);
  EXPECT_EQ(reg.names()[at.peer], "192.0.2.1");
  EXPECT_EQ(r.attribute(ip("2001:db8::5"), ip("192.0.2.1")).direction, Direction::unknown);
  EXPECT_EQ(reg.names().back(), "2001:db8::5");
}

TEST(PeerTest, home_networks_give_direction_and_peer_map_gives_names) {
  const Config cfg = parse_config(R"(home_networks: [203.0.113.0/24]
peers:
  carrier-a: [198.51.100.0/24]
  carrier-a-core: [198.51.100.128/25]
)",
                                  "t.yaml");
  PeerRegistry reg(cfg);
  PeerResolver r(reg, cfg);
  auto names = [&](PeerId id) { return reg.names()[id]; };
  auto in = r.attribute(ip("198.51.100.7"), ip("203.0.113.5"));
  EXPECT_EQ(in.direction, Direction::inbound);
  EXPECT_EQ(names(in.peer), "carrier-a");
  auto out = r.attribute(ip("203.0.113.5"), ip("198.51.100.200"));
  EXPECT_EQ(out.direction, Direction::outbound);
  EXPECT_EQ(names(out.peer), "carrier-a-core");  // the longest prefix wins
  auto both_home = r.attribute(ip("203.0.113.5"), ip("203.0.113.6"));
  EXPECT_EQ(both_home.direction, Direction::unknown);
  EXPECT_EQ(names(both_home.peer), "203.0.113.5");  // the sender
  auto neither = r.attribute(ip("192.0.2.9"), ip("198.51.100.7"));
  EXPECT_EQ(neither.direction, Direction::unknown);
  EXPECT_EQ(names(neither.peer), "192.0.2.9");
}

TEST(PeerTest, cap_maps_new_peers_to_other) {
  const Config cfg = parse_config("limits: {max_peers: 3}\npeers:\n  named: [10.0.0.0/8]\n", "t.yaml");
  PeerRegistry reg(cfg);
  PeerResolver r1(reg, cfg), r2(reg, cfg);
  EXPECT_EQ(reg.names()[r1.attribute(ip("10.1.1.1"), ip("1.1.1.1")).peer], "named");
  EXPECT_NE(r1.attribute(ip("192.0.2.1"), ip("1.1.1.1")).peer, kPeerOther);
  EXPECT_NE(r2.attribute(ip("192.0.2.2"), ip("1.1.1.1")).peer, kPeerOther);
  EXPECT_EQ(r1.attribute(ip("192.0.2.3"), ip("1.1.1.1")).peer, kPeerOther);  // fourth value: over the cap
  EXPECT_EQ(r2.attribute(ip("192.0.2.1"), ip("1.1.1.1")).peer, r1.attribute(ip("192.0.2.1"), ip("1.1.1.1")).peer);
  EXPECT_EQ(reg.names()[r2.attribute(ip("10.9.9.9"), ip("1.1.1.1")).peer], "named");  // named peers still resolve
  EXPECT_TRUE(reg.full());
  EXPECT_EQ(reg.names().size(), 4u);  // other + 3
}

TEST(PeerTest, flood_of_addresses_keeps_the_cache_bounded_and_correct) {
  const Config cfg = parse_config("limits: {max_peers: 10}\nhome_networks: [10.0.0.0/8]\n", "t.yaml");
  PeerRegistry reg(cfg);
  PeerResolver r(reg, cfg);
  int other = 0;
  for (uint32_t i = 0; i < 200000; ++i) {
    const std::string a = "172." + std::to_string(16 + (i >> 16 & 15)) + "." + std::to_string(i >> 8 & 255) + "." +
                          std::to_string(i & 255);
    const std::string h = "10.0." + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255);
    const auto at = r.attribute(ip(a.c_str()), ip(h.c_str()));
    EXPECT_EQ(at.direction, Direction::inbound);
    other += at.peer == kPeerOther;
  }
  EXPECT_EQ(other, 200000 - 10);
  EXPECT_EQ(reg.names().size(), 11u);
}

// More addresses than the resolver's cache holds: it is emptied and refilled, and answers stay
// what they were. An address with an id, or any address once the registry is full, is attributed
// without registering (attribute_if_registered() says yes), so the worker has no reason to stop
// and count its staged messages first.
TEST(PeerTest, a_cache_emptied_by_many_addresses_keeps_every_answer) {
  const Config cfg = parse_config("limits: {max_peers: 3}\nhome_networks: [10.0.0.0/8]\npeers:\n  core: [192.0.2.0/24]\n", "t.yaml");
  PeerRegistry reg(cfg);
  PeerResolver r(reg, cfg);
  const IpAddr home = ip("10.1.1.1"), first = ip("198.51.100.1"), core = ip("192.0.2.77");
  PeerResolver::Attribution at{};
  EXPECT_FALSE(r.attribute_if_registered(first, home, &at));  // it needs an id first
  const PeerId first_id = r.attribute(first, home).peer;
  EXPECT_EQ(reg.names()[first_id], "198.51.100.1");
  EXPECT_EQ(r.attribute(ip("198.51.100.2"), home).peer, first_id + 1);
  EXPECT_EQ(r.attribute(ip("198.51.100.3"), home).peer, kPeerOther);  // "other", "core" and two: full
  for (int i = 0; i < 5000; ++i) {  // the cache (1024 slots) is emptied several times
    const std::string a = "172.16." + std::to_string(i >> 8) + "." + std::to_string(i & 255);
    ASSERT_TRUE(r.attribute_if_registered(ip(a.c_str()), home, &at)) << a;
    EXPECT_EQ(at.peer, kPeerOther);
    EXPECT_EQ(at.direction, Direction::inbound);
  }
  ASSERT_TRUE(r.attribute_if_registered(first, home, &at));
  EXPECT_EQ(at.peer, first_id);
  ASSERT_TRUE(r.attribute_if_registered(core, home, &at));
  EXPECT_EQ(reg.names()[at.peer], "core");
  ASSERT_TRUE(r.attribute_if_registered(home, first, &at));
  EXPECT_EQ(at.peer, first_id);
  EXPECT_EQ(at.direction, Direction::outbound);
  EXPECT_EQ(reg.names().size(), 4u);
}

// The address tables take the hash's low bits: the addresses of one network, which differ only in
// their last bytes, must spread over them at least as random values would (256 values in 4096
// slots: about 248 distinct). The old multiply-only hash put an IPv6 /64 numbered ::1, ::2, ... in
// 1 slot.
TEST(PeerTest, address_hash_spreads_one_network_over_the_low_bits) {
  auto distinct_slots = [](const char* format) {
    std::set<uint32_t> slots;
    for (int i = 0; i < 256; ++i) {
      char text[64];
      std::snprintf(text, sizeof text, format, i);
      slots.insert(address_hash(ip(text)) & 4095);
    }
    return slots.size();
  };
  EXPECT_GE(distinct_slots("2001:db8:ffff:1::%x"), 235u);
  EXPECT_GE(distinct_slots("2001:db8:ffff:1::%x:0"), 235u);
  EXPECT_GE(distinct_slots("2001:db8:%x::1"), 235u);
  EXPECT_GE(distinct_slots("198.51.%d.7"), 235u);
  EXPECT_GE(distinct_slots("198.51.100.%d"), 235u);
}

// NetworkTable against the definition it replaces: the first of the longest networks containing
// the address, by a linear scan. Random networks of every prefix length (0 included, duplicates
// with other values, IPv4 and IPv6 sharing bytes), and addresses inside and around them.
TEST(PeerTest, network_table_is_the_longest_prefix_match) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::pair<Cidr, int>> nets;
    std::vector<IpAddr> bases;
    for (int i = 0; i < 60; ++i) {
      IpAddr a{};
      a.family = rng() % 3 == 0 ? 6 : 4;
      const unsigned bytes = a.family == 4 ? 4 : 16;
      for (unsigned b = 0; b < bytes; ++b) a.bytes[b] = static_cast<uint8_t>(rng() % 3 == 0 ? rng() : b);
      bases.push_back(a);
      Cidr c;
      c.prefix = static_cast<uint8_t>(rng() % (8 * bytes + 1));
      c.net = a;
      for (unsigned bit = c.prefix; bit < 8 * bytes; ++bit) c.net.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
      nets.emplace_back(c, i);
      if (rng() % 5 == 0) nets.emplace_back(c, 1000 + i);  // identical: the first keeps its value
    }
    std::vector<std::pair<Cidr, int>> by_length = nets;  // PeerMap::named's order
    std::stable_sort(by_length.begin(), by_length.end(), [](const auto& x, const auto& y) { return x.first.prefix > y.first.prefix; });
    const NetworkTable table(nets);
    for (int k = 0; k < 3000; ++k) {
      IpAddr a = bases[rng() % bases.size()];
      const unsigned bytes = a.family == 4 ? 4 : 16;
      for (int flips = static_cast<int>(rng() % 3); flips > 0; --flips) a.bytes[rng() % bytes] ^= static_cast<uint8_t>(1u << (rng() % 8));
      int want = -1;
      for (const auto& [c, v] : by_length) {
        if (c.contains(a)) {
          want = v;
          break;
        }
      }
      ASSERT_EQ(table.find(a), want) << a.to_string();
    }
  }
  EXPECT_EQ(NetworkTable().find(ip("192.0.2.1")), -1);
}

TEST(PeerTest, reload_publishes_a_new_map_and_keeps_ids) {
  Config cfg = parse_config("peers:\n  alpha: [10.0.0.0/8]\n", "t.yaml");
  PeerRegistry reg(cfg);
  PeerResolver r(reg, cfg);
  const PeerId alpha = r.attribute(ip("10.1.1.1"), ip("192.0.2.1")).peer;
  const PeerId addr = r.attribute(ip("172.16.0.1"), ip("192.0.2.1")).peer;
  EXPECT_EQ(reg.names()[alpha], "alpha");
  EXPECT_EQ(reg.names()[addr], "172.16.0.1");
  // The reloaded file renames 10/8, names 172.16/12, and adds home networks.
  cfg = parse_config("home_networks: [192.0.2.0/24]\npeers:\n  beta: [10.0.0.0/8]\n  alpha: [172.16.0.0/12]\n", "t.yaml");
  EXPECT_TRUE(reg.apply(cfg).empty());
  const auto a = r.attribute(ip("10.1.1.1"), ip("192.0.2.1"));
  EXPECT_EQ(reg.names()[a.peer], "beta");
  EXPECT_EQ(a.direction, Direction::inbound);
  EXPECT_EQ(r.attribute(ip("172.16.0.1"), ip("192.0.2.1")).peer, alpha) << "a known name keeps its id";
  EXPECT_EQ(reg.names()[addr], "172.16.0.1") << "existing series keep their labels";
}

TEST(PeerTest, reload_beyond_the_cap_leaves_names_out) {
  Config cfg = parse_config("limits: {max_peers: 2}\npeers:\n  a: [10.0.0.0/8]\n", "t.yaml");
  PeerRegistry reg(cfg);
  // Limits are not reloaded: the registry keeps the cap of 2 it started with.
  cfg = parse_config("limits: {max_peers: 3}\npeers:\n  a: [10.0.0.0/8]\n  b: [11.0.0.0/8]\n  c: [12.0.0.0/8]\n", "t.yaml");
  EXPECT_EQ(reg.apply(cfg), (std::vector<std::string>{"c"}));
  PeerResolver r(reg, cfg);
  EXPECT_EQ(r.attribute(ip("12.0.0.1"), ip("1.1.1.1")).peer, kPeerOther);
}

TEST(PeerTest, names_are_readable_while_peers_register) {
  Config cfg;
  cfg.max_peers = 3000;
  PeerRegistry reg(cfg);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    size_t last = 0;
    while (!done.load()) {
      const auto names = reg.names();
      ASSERT_GE(names.size(), last);
      ASSERT_EQ(names[0], "other");
      for (size_t i = last == 0 ? 1 : last; i < names.size(); ++i) ASSERT_FALSE(names[i].empty()) << i;
      last = names.size();
    }
  });
  for (uint32_t i = 0; i < 4000; ++i) {
    IpAddr a = ip("10.0.0.0");
    a.bytes[2] = static_cast<uint8_t>(i >> 8);
    a.bytes[3] = static_cast<uint8_t>(i);
    reg.intern(a);
  }
  done = true;
  reader.join();
  EXPECT_EQ(reg.names().size(), 3001u);
  EXPECT_TRUE(reg.full());
}

TEST(ShardTest, counts_message_under_its_labels) {
  Shard s(100, 10);
  SipMessage req;
  req.is_request = true;
  req.method = Method::INVITE;
  SipMessage resp;
  resp.is_request = false;
  resp.status_code = 503;
  resp.method = Method::INVITE;
  s.count(req, {5, Direction::inbound});
  s.count(resp, {5, Direction::outbound});
  s.count(resp, {kPeerOther, Direction::outbound});
  std::map<uint64_t, uint64_t> seen;
  s.series.for_each([&](uint64_t k, uint64_t n) { seen[k] = n; });
  EXPECT_EQ(seen[series_key(5, Direction::inbound, Method::INVITE, 0)], 1u);
  EXPECT_EQ(seen[series_key(5, Direction::outbound, Method::INVITE, 503)], 1u);
  EXPECT_EQ(s.peer_overflow.get(), 1u);
  EXPECT_EQ(code_class(503), "5xx");
  EXPECT_EQ(code_class(100), "1xx");
  EXPECT_EQ(code_class(699), "6xx");
}

}  // namespace
}  // namespace sipex
