// Parser throughput per scan kernel over a varied corpus of 4096 messages.
#include <benchmark/benchmark.h>

#include "message_corpus.hpp"
#include "sipex/sip_parse.hpp"

namespace {

const std::vector<std::string>& corpus() {
  static const auto c = sipex::bench::message_corpus(4096);
  return c;
}

void BM_Parse(benchmark::State& state, const sipex::ScanKernel* k) {
  if (!k->supported()) {
    state.SkipWithError("kernel not supported on this CPU");
    return;
  }
  const auto& msgs = corpus();
  size_t bytes = 0;
  for (const auto& m : msgs) bytes += m.size();
  sipex::SipMessage out;
  for (auto _ : state) {
    for (const auto& m : msgs) {
      const auto st = sipex::parse_sip(m.data(), m.size(), sipex::Framing::datagram, out, *k);
      benchmark::DoNotOptimize(st);
      benchmark::DoNotOptimize(out);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * msgs.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["ns_per_msg"] = benchmark::Counter(static_cast<double>(state.iterations() * msgs.size()),
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

int register_all() {
  size_t n = 0;
  const sipex::ScanKernel* ks = sipex::scan_kernels(&n);
  for (size_t i = 0; i < n; ++i) {
    benchmark::RegisterBenchmark((std::string("BM_Parse/") + ks[i].name).c_str(), BM_Parse, &ks[i]);
  }
  return 0;
}
const int registered = register_all();

}  // namespace
