// Scraping: the exposition of a worker's shard with 10k and 100k series (collect, collect and
// render the text, or that gzip'd as /metrics serves Prometheus), while the worker keeps
// processing packets on another thread.
//
// Worker stalls: the worker thread times every packet. Each scrape iteration is followed by an
// equally long baseline period (timer paused) in which the main thread spins on local work
// instead of scraping: same CPU pressure, no shard access. Packets over 1 ms, the longest
// packet and the worker's involuntary context switches are reported for both periods; if the
// scrape stalled the worker, the scrape figures would exceed the baseline's, while preemption by
// the scheduler (other processes on a 2-core machine) shows up in both, with context switches.
#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "sipex/metrics.hpp"
#include "sipex/web.hpp"
#include "sipex/worker.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<uint8_t> response_frame(uint32_t peer, int code, const char* method) {
  const std::string sip = "SIP/2.0 " + std::to_string(code) + " X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK" +
                          std::to_string(peer) + "x" + std::to_string(code) + method + "\r\nCall-ID: c" +
                          std::to_string(peer) + "\r\nCSeq: 1 " + method + "\r\nContent-Length: 0\r\n\r\n";
  std::vector<uint8_t> f;
  f.reserve(42 + sip.size());  // one allocation (and no GCC 12 -Warray-bounds false positive)
  f = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00};
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

long involuntary_switches() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_nivcsw;
}

// Per-period figures of the worker thread; written by it only, read after it is joined.
struct Period {
  uint64_t packets = 0, over_1ms = 0;
  int64_t max_ns = 0;
  long preempted = 0;  // involuntary context switches
};

enum Phase : int { kScrape = 0, kBaseline = 1 };

void BM_Scrape(benchmark::State& state) {
  const auto wanted = static_cast<uint32_t>(state.range(0));
  const int output = static_cast<int>(state.range(1));  // 0 collect, 1 text, 2 gzip'd text
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
  std::atomic<int> phase{kScrape};
  Period periods[2];
  std::thread worker([&] {
    const auto f = response_frame(1, 200, "INVITE");
    int last = phase.load(std::memory_order_relaxed);
    long switches = involuntary_switches();
    while (!done.load(std::memory_order_relaxed)) {
      const int p = phase.load(std::memory_order_relaxed);
      if (p != last) {  // a period ended: its context switches
        const long now = involuntary_switches();
        periods[last].preempted += now - switches;
        switches = now;
        last = p;
      }
      const auto t0 = Clock::now();
      w.process(1, f.data(), static_cast<uint32_t>(f.size()));
      const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
      Period& per = periods[p];
      ++per.packets;
      if (ns > 1'000'000) ++per.over_1ms;
      if (ns > per.max_ns) per.max_ns = ns;
    }
    periods[last].preempted += involuntary_switches() - switches;
  });

  size_t series = 0, bytes = 0, wire = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    const sipex::Snapshot snap = collector.collect();
    series = snap.series.size() + snap.histograms.size();
    if (output >= 1) {
      const std::string text = sipex::render_text(snap);
      bytes = wire = text.size();
      benchmark::DoNotOptimize(text.data());
      if (output == 2) {
        const std::string z = sipex::gzip_compress(text);
        wire = z.size();
        benchmark::DoNotOptimize(z.data());
      }
    }
    benchmark::DoNotOptimize(snap.series.data());
    const auto spent = Clock::now() - t0;
    state.PauseTiming();
    phase.store(kBaseline, std::memory_order_relaxed);
    uint64_t x = 0;
    for (const auto until = Clock::now() + spent; Clock::now() < until;) {
      for (int i = 0; i < 1000; ++i) benchmark::DoNotOptimize(x += static_cast<uint64_t>(i));
    }
    phase.store(kScrape, std::memory_order_relaxed);
    state.ResumeTiming();
  }
  done = true;
  worker.join();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * series));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["series"] = static_cast<double>(series);
  state.counters["text_bytes"] = static_cast<double>(bytes);
  state.counters["wire_bytes"] = static_cast<double>(wire);
  const char* names[2] = {"scrape", "base"};
  for (int p : {kScrape, kBaseline}) {
    const std::string n = names[p];
    state.counters[n + "_pkts"] = static_cast<double>(periods[p].packets);
    state.counters[n + "_over1ms"] = static_cast<double>(periods[p].over_1ms);
    state.counters[n + "_max_us"] = static_cast<double>(periods[p].max_ns) / 1000.0;
    state.counters[n + "_preempt"] = static_cast<double>(periods[p].preempted);
  }
}
// output=0: collect() alone; 1: plus the text (what --metrics.out writes); 2: plus gzip, which is
// what a Prometheus scrape of /metrics costs (it always sends Accept-Encoding: gzip). bytes/s
// counts the text in both; wire_bytes is what the client receives.
BENCHMARK(BM_Scrape)->ArgsProduct({{10000, 100000}, {0, 1, 2}})->ArgNames({"series", "output"})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
