// One worker's per-packet cost: decode Ethernet/IPv4/UDP, parse, attribute the peer, count.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>

#include "message_corpus.hpp"
#include "sipex/worker.hpp"

namespace {

std::vector<std::vector<uint8_t>> frames() {
  std::vector<std::vector<uint8_t>> out;
  uint32_t i = 0;
  for (const std::string& m : sipex::bench::message_corpus(4096)) {
    std::vector<uint8_t> f = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00};
    const uint16_t total = static_cast<uint16_t>(28 + m.size());
    const uint8_t ip[20] = {0x45, 0, static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total), 0, 0, 0x40, 0, 64, 17,
                            0, 0, 198, 51, static_cast<uint8_t>(100 + i % 4), static_cast<uint8_t>(i % 200), 203, 0, 113, 9};
    f.insert(f.end(), ip, ip + 20);
    const uint16_t ulen = static_cast<uint16_t>(8 + m.size());
    const uint8_t udp[8] = {0x13, 0xc4, 0x13, 0xc4, static_cast<uint8_t>(ulen >> 8), static_cast<uint8_t>(ulen), 0, 0};
    f.insert(f.end(), udp, udp + 8);
    f.insert(f.end(), m.begin(), m.end());
    out.push_back(std::move(f));
    ++i;
  }
  return out;
}

void BM_Worker_Process(benchmark::State& state) {
  const auto fs = frames();
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
