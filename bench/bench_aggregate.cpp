// Counter updates in a worker's shard: the series table (a hit, as in the steady state) and a
// latency histogram observation.
#include <benchmark/benchmark.h>

#include <vector>

#include "sipex/aggregate.hpp"

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

}  // namespace
