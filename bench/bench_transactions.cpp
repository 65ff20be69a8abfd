// Transaction matching: the tracker's cost per message on whole calls (INVITE, 100, 180, 200,
// ACK, BYE, 200) with a new Call-ID and branch each, and the memory one transaction costs.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "sipex/transactions.hpp"

namespace {

struct Msg {
  std::string text;
  sipex::SipMessage m;
  bool from_caller;
};

std::vector<Msg> calls(int n) {
  std::vector<Msg> out;
  for (int i = 0; i < n; ++i) {
    const std::string id = "call" + std::to_string(i) + "@bench.example.net";
    const std::string br = "z9hG4bK" + std::to_string(i * 7919);
    auto req = [&](const std::string& method, const std::string& branch, int cseq, bool totag) {
      return method + " sip:+4930123@198.51.100.7 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=" + branch +
             "\r\nFrom: <sip:a@x>;tag=f" + std::to_string(i) + "\r\nTo: <sip:b@y>" + (totag ? ";tag=t" : "") +
             "\r\nCall-ID: " + id + "\r\nCSeq: " + std::to_string(cseq) + " " + method + "\r\nContent-Length: 0\r\n\r\n";
    };
    auto resp = [&](int code, const std::string& method, const std::string& branch, int cseq) {
      return "SIP/2.0 " + std::to_string(code) + " X\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=" + branch +
             "\r\nFrom: <sip:a@x>;tag=f" + std::to_string(i) + "\r\nTo: <sip:b@y>;tag=t\r\nCall-ID: " + id +
             "\r\nCSeq: " + std::to_string(cseq) + " " + method + "\r\nContent-Length: 0\r\n\r\n";
    };
    out.push_back({req("INVITE", br, 1, false), {}, true});
    out.push_back({resp(100, "INVITE", br, 1), {}, false});
    out.push_back({resp(180, "INVITE", br, 1), {}, false});
    out.push_back({resp(200, "INVITE", br, 1), {}, false});
    out.push_back({req("ACK", br + "a", 1, true), {}, true});
    out.push_back({req("BYE", br + "b", 2, true), {}, true});
    out.push_back({resp(200, "BYE", br + "b", 2), {}, false});
  }
  for (Msg& m : out) sipex::parse_sip(m.text.data(), m.text.size(), sipex::Framing::datagram, m.m);
  return out;
}

void BM_Transaction_Match(benchmark::State& state) {
  const auto msgs = calls(20000);  // 140,000 messages, 80,000 transactions
  sipex::Config cfg;
  sipex::PeerRegistry reg(cfg);
  sipex::PeerResolver peers(reg, cfg);
  sipex::IpAddr caller{}, callee{};
  caller.family = callee.family = 4;
  caller.bytes[3] = 1;
  callee.bytes[3] = 2;
  const auto up = peers.attribute(caller, callee), down = peers.attribute(callee, caller);
  int64_t now = 0;
  for (auto _ : state) {
    state.PauseTiming();
    sipex::Shard shard(cfg.max_series, cfg.max_histograms);
    sipex::TransactionTracker t(cfg.transactions, shard, peers);
    state.ResumeTiming();
    for (const Msg& m : msgs) {
      now += 100'000;
      if (m.from_caller) {
        t.message(m.m, up, caller, callee, now);
      } else {
        t.message(m.m, down, callee, caller, now);
      }
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * msgs.size()));
  state.counters["ns_per_msg"] = benchmark::Counter(static_cast<double>(state.iterations() * msgs.size()),
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_transaction"] = static_cast<double>(sipex::TransactionTracker::bytes_per_transaction());
}
BENCHMARK(BM_Transaction_Match)->Unit(benchmark::kMillisecond);

}  // namespace
