// The capture-to-worker hand-off: packets copied into pooled batches by a Dispatcher and taken
// off the worker's queue in bulk, on two threads as in the exporter.
#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>
#include <vector>

#include "sipex/capture.hpp"

namespace {

void BM_Handoff(benchmark::State& state) {
  const std::vector<uint8_t> frame(static_cast<size_t>(state.range(0)), 0x42);
  constexpr size_t kPerIteration = 100000;
  for (auto _ : state) {
    sipex::BatchPool pool(64, 2);
    sipex::BatchQueue queue(64, 1, 0);
    sipex::SourceStats stats("bench");
    std::atomic<bool> stop{false};
    std::atomic<bool> done{false};
    std::thread consumer([&] {
      moodycamel::ConsumerToken ctok(queue);
      moodycamel::ProducerToken ptok(pool.queue());
      sipex::Batch* batches[16];
      uint64_t seen = 0;
      for (;;) {
        const bool finished = done.load(std::memory_order_acquire);
        const size_t n = queue.try_dequeue_bulk(ctok, batches, 16);
        for (size_t i = 0; i < n; ++i) {
          seen += batches[i]->count;
          pool.give_back(batches[i], ptok);
        }
        if (n == 0 && finished && queue.size_approx() == 0) break;
      }
      benchmark::DoNotOptimize(seen);
    });
    {
      sipex::Dispatcher d(pool, {&queue}, {&stats}, /*lossless=*/true, stop);
      for (size_t i = 0; i < kPerIteration; ++i) {
        d.push(1, 0, frame.data(), static_cast<uint32_t>(frame.size()), static_cast<uint32_t>(frame.size()), 0);
      }
      d.flush();
    }
    done.store(true, std::memory_order_release);
    consumer.join();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPerIteration));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kPerIteration * frame.size()));
  state.counters["ns_per_packet"] = benchmark::Counter(static_cast<double>(state.iterations() * kPerIteration),
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Handoff)->Arg(200)->Arg(900)->ArgName("bytes")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
