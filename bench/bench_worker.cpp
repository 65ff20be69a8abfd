// One worker's per-packet cost: decode Ethernet/IPv4/UDP, parse, attribute the peer, count.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>

#include "message_corpus.hpp"
#include "sipex/worker.hpp"

namespace {

void BM_Worker_Process(benchmark::State& state) {
  const auto fs = sipex::bench::udp_frames(sipex::bench::message_corpus(4096));
  sipex::Config cfg;
  sipex::PeerRegistry peers(cfg);
  sipex::BatchPool pool(1, 1);
  sipex::BatchQueue queue(1);
  sipex::Worker w(queue, pool, peers, cfg);
  size_t bytes = 0;
  for (const auto& f : fs) bytes += f.size();
  for (auto _ : state) {
    for (const auto& f : fs) w.process(1, f.data(), static_cast<uint32_t>(f.size()));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * fs.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["ns_per_msg"] = benchmark::Counter(static_cast<double>(state.iterations() * fs.size()),
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Worker_Process);

}  // namespace
