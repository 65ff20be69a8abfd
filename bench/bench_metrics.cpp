// Scraping: building the exposition from workers' shards with 10k and 100k series, while a
// worker keeps processing packets on another thread. Reports the scrape time per series and
// the longest single packet the worker took meanwhile (the scrape takes no lock a worker needs).
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "sipex/metrics.hpp"
#include "sipex/worker.hpp"

namespace {

std::vector<uint8_t> response_frame(uint32_t peer, int code, const char* method) {
  const std::string sip = "SIP/2.0 " + std::to_string(code) + " X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK" +
                          std::to_string(peer) + "x" + std::to_string(code) + method + "\r\nCall-ID: c" +
                          std::to_string(peer) + "\r\nCSeq: 1 " + method + "\r\nContent-Length: 0\r\n\r\n";
  std::vector<uint8_t> f = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00};
  const auto total = static_cast<uint16_t>(28 + sip.size());
  const uint8_t ip[20] = {0x45, 0, static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total), 0, 0, 0x40, 0, 64, 17,
                          0, 0, 10, static_cast<uint8_t>(peer >> 16), static_cast<uint8_t>(peer >> 8),
                          static_cast<uint8_t>(peer), 192, 0, 2, 1};
  f.insert(f.end(), ip, ip + 20);
  const auto ulen = static_cast<uint16_t>(8 + sip.size());
  const uint8_t udp[8] = {0x13, 0xc4, 0x13, 0xc4, static_cast<uint8_t>(ulen >> 8), static_cast<uint8_t>(ulen), 0, 0};
  f.insert(f.end(), udp, udp + 8);
  f.insert(f.end(), sip.begin(), sip.end());
  return f;
}

void BM_Scrape(benchmark::State& state) {
  const auto wanted = static_cast<uint32_t>(state.range(0));
  sipex::Config cfg;
  cfg.max_peers = 60000;
  cfg.max_series = 1u << 20;
  sipex::PeerRegistry peers(cfg);
  sipex::BatchPool pool(1, 1);
  sipex::BatchQueue queue(1);
  sipex::Worker w(queue, pool, peers, cfg);
  // Distinct responses from distinct peers until the shard holds the wanted number of series.
  static const char* kMethods[] = {"INVITE", "BYE", "REGISTER", "OPTIONS"};
  static const int kCodes[] = {100, 180, 183, 200, 401, 403, 404, 407, 408, 480, 486, 487, 500, 503, 603};
  for (uint32_t peer = 1; w.shard().series.size() < wanted; ++peer) {
    for (const char* m : kMethods) {
      for (int code : kCodes) {
        const auto f = response_frame(peer, code, m);
        w.process(1, f.data(), static_cast<uint32_t>(f.size()));
      }
    }
  }
  sipex::MetricSources src;
  src.workers = {&w};
  src.peers = &peers;
  src.kernel = "bench";
  sipex::SipCollector collector(src);

  // The worker keeps going meanwhile; it is the only writer of its shard.
  std::atomic<bool> done{false};
  std::atomic<int64_t> max_ns{0};
  std::thread worker([&] {
    const auto f = response_frame(1, 200, "INVITE");
    while (!done.load(std::memory_order_relaxed)) {
      const auto t0 = std::chrono::steady_clock::now();
      w.process(1, f.data(), static_cast<uint32_t>(f.size()));
      const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
      if (ns > max_ns.load(std::memory_order_relaxed)) max_ns.store(ns, std::memory_order_relaxed);
    }
  });
  const bool render = state.range(1) != 0;
  size_t series = 0, bytes = 0;
  for (auto _ : state) {
    const auto families = collector.Collect();
    series = 0;
    for (const auto& fam : families) series += fam.metric.size();
    if (render) {
      const std::string text = sipex::render_text(families);
      bytes = text.size();
      benchmark::DoNotOptimize(text.data());
    }
    benchmark::DoNotOptimize(families.data());
  }
  done = true;
  worker.join();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * series));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["series"] = static_cast<double>(series);
  state.counters["worker_max_packet_us"] = static_cast<double>(max_ns.load()) / 1000.0;
}
// render=0: building the families (our part); render=1: plus prometheus-cpp's text serializer,
// which is what a scrape of /metrics costs.
BENCHMARK(BM_Scrape)->ArgsProduct({{10000, 100000}, {0, 1}})->ArgNames({"series", "render"})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
