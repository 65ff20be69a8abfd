// Counter updates in a worker's shard: the series table (a hit, as in the steady state) and a
// latency histogram observation; and a message's attribution to peer and direction
// (PeerResolver) as the worker asks for it, with more or fewer active addresses than the
// resolver's cache holds.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "sipex/aggregate.hpp"
#include "sipex/config.hpp"

namespace {

void BM_Counter_Increment(benchmark::State& state) {
  sipex::SeriesTable t(100000);
  std::vector<uint64_t> keys;
  for (uint16_t p = 1; p <= 200; ++p) {
    for (const uint16_t code : {uint16_t{0}, uint16_t{100}, uint16_t{180}, uint16_t{200}, uint16_t{486}, uint16_t{503}}) {
      keys.push_back(sipex::series_key(p, sipex::Direction::inbound, sipex::Method::INVITE, code));
    }
  }
  for (uint64_t k : keys) t.add(k);
  size_t i = 0;
  for (auto _ : state) {
    t.add(keys[i]);
    i = i + 1 == keys.size() ? 0 : i + 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Counter_Increment);

void BM_Histogram_Observe(benchmark::State& state) {
  sipex::HistogramTable t(20000);
  const uint64_t key = sipex::HistogramTable::key(sipex::HistogramFamily::response_latency, 7,
                                                  sipex::Direction::outbound, sipex::Method::INVITE,
                                                  sipex::LatencyStage::ringing);
  double v = 0.0005;
  for (auto _ : state) {
    t.observe(key, v);
    v = v > 30 ? 0.0005 : v * 1.7;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Histogram_Observe);

// Args: named networks in the peer map (/24s), distinct source addresses sending to one home
// address. Each message is attributed as Worker::stage() does: attribute_if_registered(), and
// attribute() when that says an address needs an id. With the default max_peers (1000) the
// resolver's cache holds 2048 non-home addresses; beyond that, addresses are classified again
// when they come back.
void BM_Attribute(benchmark::State& state) {
  const auto named = static_cast<int>(state.range(0)), addresses = static_cast<int>(state.range(1));
  std::string yaml = "home_networks: [203.0.113.0/24, 10.20.0.0/16, 2001:db8:ffff::/48]\npeers:\n";
  for (int i = 0; i < named; ++i) {
    yaml += "  p" + std::to_string(i) + ": [100." + std::to_string(64 + i / 256) + "." + std::to_string(i % 256) + ".0/24]\n";
  }
  const sipex::Config cfg = sipex::parse_config(yaml, "bench.yaml");
  sipex::PeerRegistry registry(cfg);
  sipex::PeerResolver resolver(registry, cfg);
  auto addr = [](const std::string& text) {
    sipex::Cidr c;
    sipex::parse_cidr(text, c);
    return c.net;
  };
  std::vector<sipex::IpAddr> sources;
  for (int i = 0; i < addresses; ++i) {
    sources.push_back(addr("198." + std::to_string(18 + (i >> 16 & 1)) + "." + std::to_string(i >> 8 & 255) + "." +
                           std::to_string(i & 255)));
  }
  const sipex::IpAddr home = addr("203.0.113.9");
  size_t i = 0;
  for (auto _ : state) {
    const sipex::IpAddr& src = sources[i];
    sipex::PeerResolver::Attribution a;
    if (!resolver.attribute_if_registered(src, home, &a)) a = resolver.attribute(src, home);
    benchmark::DoNotOptimize(a);
    i += 7919;  // a prime stride: every address, none twice in a row
    if (i >= sources.size()) i %= sources.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ns_per_msg"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Attribute)->Args({10, 300})->Args({200, 300})->Args({200, 5000})->Args({200, 50000});

}  // namespace
