// The exposition: collect() merges worker state into a Snapshot, render_text() writes it. The
// oracle is prometheus-cpp itself: the same expose() walk turned into prometheus::MetricFamily
// values and serialised by its TextSerializer must give the same bytes as render_text().
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "frames.hpp"
#include "sipex/metrics.hpp"
#include "sipex/worker.hpp"

namespace sipex {
namespace {

using namespace test;

// Builds prometheus-cpp's model of the exposition from expose()'s calls.
class FamilySink final : public ExpositionSink {
 public:
  std::vector<prometheus::MetricFamily> families;

  void family(std::string_view name, std::string_view help, MetricKind kind) override {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = kind == MetricKind::counter ? prometheus::MetricType::Counter
             : kind == MetricKind::gauge ? prometheus::MetricType::Gauge
                                         : prometheus::MetricType::Histogram;
    families.push_back(std::move(f));
  }
  void sample(std::span<const Label> labels, uint64_t value) override {
    prometheus::ClientMetric m = metric(labels);
    if (families.back().type == prometheus::MetricType::Counter) {
      m.counter.value = static_cast<double>(value);
    } else {
      m.gauge.value = static_cast<double>(value);
    }
    families.back().metric.push_back(std::move(m));
  }
  void histogram(std::span<const Label> labels, std::span<const double> upper, const uint64_t* cumulative,
                 double sum) override {
    prometheus::ClientMetric m = metric(labels);
    for (size_t b = 0; b < upper.size(); ++b) m.histogram.bucket.push_back({cumulative[b], upper[b]});
    m.histogram.bucket.push_back({cumulative[upper.size()], std::numeric_limits<double>::infinity()});
    m.histogram.sample_count = cumulative[upper.size()];
    m.histogram.sample_sum = sum;
    families.back().metric.push_back(std::move(m));
  }

 private:
  static prometheus::ClientMetric metric(std::span<const Label> labels) {
    prometheus::ClientMetric m;
    for (const Label& l : labels) m.label.push_back({std::string(l.name), std::string(l.value)});
    return m;
  }
};

std::string oracle(const Snapshot& s) {
  FamilySink sink;
  expose(s, sink);
  std::ostringstream o;
  prometheus::TextSerializer().Serialize(o, sink.families);
  return o.str();
}

// ---- worker state ----------------------------------------------------------------------------

std::string request(const std::string& method, const std::string& branch, const std::string& call, int cseq,
                    const std::string& to_tag = "") {
  return method + " sip:b@example.net SIP/2.0\r\nVia: SIP/2.0/UDP h.example.net;branch=z9hG4bK" + branch +
         "\r\nFrom: <sip:a@example.net>;tag=f" + call + "\r\nTo: <sip:b@example.net>" +
         (to_tag.empty() ? "" : ";tag=" + to_tag) + "\r\nCall-ID: " + call + "\r\nCSeq: " + std::to_string(cseq) +
         " " + method + "\r\nContent-Length: 0\r\n\r\n";
}

std::string response(int code, const std::string& method, const std::string& branch, const std::string& call,
                     int cseq, const std::string& to_tag = "t1") {
  return "SIP/2.0 " + std::to_string(code) + " Reason\r\nVia: SIP/2.0/UDP h.example.net;branch=z9hG4bK" + branch +
         "\r\nFrom: <sip:a@example.net>;tag=f" + call + "\r\nTo: <sip:b@example.net>;tag=" + to_tag +
         "\r\nCall-ID: " + call + "\r\nCSeq: " + std::to_string(cseq) + " " + method + "\r\nContent-Length: 0\r\n\r\n";
}

Bytes tcp(uint16_t sport, uint16_t dport, uint32_t seq, const std::string& payload) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  for (int i = 3; i >= 0; --i) b.push_back(static_cast<uint8_t>(seq >> (8 * i)));
  for (int i = 0; i < 4; ++i) b.push_back(0);  // ack
  b.push_back(0x50);                           // data offset 5 words
  b.push_back(0x18);                           // PSH ACK
  put16(b, 65535);
  put16(b, 0);
  put16(b, 0);
  append(b, payload);
  return b;
}

// Three workers sharing a peer registry whose names need escaping, fed calls, registrations,
// retransmissions, timeouts, non-SIP, malformed SIP, IP fragments and TCP; two of them see the
// same keys, so the merge matters. Four sources, two of which share a name.
class WorkerState {
 public:
  // `batch`: 0 hands each packet to Worker::process(); n > 0 collects up to n packets of one
  // worker into a Batch for Worker::process_batch(), as the pipeline does.
  explicit WorkerState(bool swap_workers = false, uint32_t batch = 0) : batch_packets_(batch) {
    if (batch_packets_ > 0) batch_ = std::make_unique<Batch>();
    cfg_ = parse_config(
        "home_networks: [203.0.113.0/24]\n"
        "peers:\n"
        "  'carrier \"a\"': [198.51.100.0/28]\n"
        "  'back\\slash': [198.51.100.16/28]\n"
        "  \"new\\nline\": [198.51.100.32/28]\n"
        "  zeta: [198.51.100.48/28]\n"
        "limits: {max_peers: 9}\n",
        "metrics_test.yaml");
    reg_ = std::make_unique<PeerRegistry>(cfg_);
    for (int i = 0; i < 3; ++i) workers_.push_back(std::make_unique<Worker>(queue_, pool_, *reg_, cfg_));
    const char* peers[] = {"198.51.100.1", "198.51.100.17", "198.51.100.33", "198.51.100.49", "192.0.2.7",
                           "192.0.2.30",   "10.1.2.3",      "192.0.2.200",   "192.0.2.9",     "172.16.5.5",
                           "192.0.2.77",   "2001:db8::5"};
    int64_t t = 1'000'000'000;
    for (size_t p = 0; p < std::size(peers); ++p) {
      const size_t w = (swap_workers ? std::size(peers) - p : p) % 2;  // worker 2 gets the shared flows
      traffic(*workers_[w], peers[p], "p" + std::to_string(p), t);
    }
    // The same flows in two workers: equal keys in both shards.
    for (int w : {0, 2}) traffic(*workers_[static_cast<size_t>(w)], "192.0.2.7", "shared", t);
    // Something after every timer: unanswered requests time out, calls left open stay open.
    for (auto& w : workers_) send(*w, ipv4("192.0.2.250", "203.0.113.1", 17, udp(9, 9, "not sip at all")), t + 200'000'000'000);
    flush_batch();

    const char* names[] = {"eth0", "eth0", "/tmp/a \"quoted\" b\\c.pcap", "line\nbreak.pcap"};
    for (size_t i = 0; i < std::size(names); ++i) {
      auto& s = sources_.emplace_back(std::make_unique<SourceStats>(names[i]));
      s->packets.bump(1000 * (i + 1));
      s->dropped_kernel.bump(i);
      s->dropped_interface.bump(2 * i);
      s->dropped_pool.bump(3 * i);
      s->dropped_queue.bump(i == 1 ? 7 : 0);
    }
  }

  MetricSources sources() const {
    MetricSources m;
    for (const auto& w : workers_) m.workers.push_back(w.get());
    for (const auto& s : sources_) m.sources.push_back(s.get());
    m.peers = reg_.get();
    m.kernel = "test\"kernel";
    return m;
  }

 private:
  void send(Worker& w, const Bytes& ip, int64_t ts) {
    const Bytes f = ethernet(ip[0] >> 4 == 6 ? 0x86DD : 0x0800, ip);
    const auto len = static_cast<uint32_t>(f.size());
    if (batch_packets_ == 0) {
      w.process(1, f.data(), len, ts);
      return;
    }
    if (batch_worker_ != &w || batch_->count == batch_packets_ || !batch_->fits(len)) flush_batch();
    batch_worker_ = &w;
    batch_->append(f.data(), len, len, 1, 0, ts);
  }
  void flush_batch() {
    if (batch_worker_ != nullptr) batch_worker_->process_batch(*batch_);
    if (batch_) batch_->clear();
    batch_worker_ = nullptr;
  }
  void sip(Worker& w, const std::string& from, const std::string& to, const std::string& text, int64_t& t) {
    t += 7'000'000 + static_cast<int64_t>(text.size()) * 1000;  // ms apart, varied
    const bool v6 = from.find(':') != std::string::npos || to.find(':') != std::string::npos;
    send(w, v6 ? ipv6(from.c_str(), to.c_str(), 17, udp(5060, 5060, text))
               : ipv4(from.c_str(), to.c_str(), 17, udp(5060, 5060, text)),
         t);
  }

  void traffic(Worker& w, const std::string& peer, const std::string& id, int64_t& t) {
    const bool v6 = peer.find(':') != std::string::npos;
    const std::string home = v6 ? "2001:db8::1" : "203.0.113.10";
    // An answered call, then its BYE.
    sip(w, peer, home, request("INVITE", id + "i1", id + "c1", 1), t);
    sip(w, home, peer, response(100, "INVITE", id + "i1", id + "c1", 1, ""), t);
    sip(w, home, peer, response(180, "INVITE", id + "i1", id + "c1", 1), t);
    sip(w, home, peer, response(200, "INVITE", id + "i1", id + "c1", 1), t);
    sip(w, peer, home, request("ACK", id + "a1", id + "c1", 1, "t1"), t);
    t += 42'000'000'000;
    sip(w, peer, home, request("BYE", id + "b1", id + "c1", 2, "t1"), t);
    sip(w, home, peer, response(200, "BYE", id + "b1", id + "c1", 2), t);
    // Busy, with the request and the final response retransmitted.
    sip(w, peer, home, request("INVITE", id + "i2", id + "c2", 1), t);
    sip(w, peer, home, request("INVITE", id + "i2", id + "c2", 1), t);
    sip(w, home, peer, response(486, "INVITE", id + "i2", id + "c2", 1), t);
    sip(w, home, peer, response(486, "INVITE", id + "i2", id + "c2", 1), t);
    sip(w, peer, home, request("ACK", id + "i2", id + "c2", 1, "t1"), t);
    // Outbound: rejected by the peer, and one that rings and is cancelled.
    sip(w, home, peer, request("INVITE", id + "o1", id + "c3", 1), t);
    sip(w, peer, home, response(603, "INVITE", id + "o1", id + "c3", 1), t);
    sip(w, home, peer, request("INVITE", id + "o2", id + "c4", 1), t);
    sip(w, peer, home, response(183, "INVITE", id + "o2", id + "c4", 1), t);
    sip(w, peer, home, response(487, "INVITE", id + "o2", id + "c4", 1), t);
    // Registration with a challenge; an OPTIONS and an INVITE nobody answers; an unknown method.
    sip(w, peer, home, request("REGISTER", id + "r1", id + "c5", 1), t);
    sip(w, home, peer, response(401, "REGISTER", id + "r1", id + "c5", 1), t);
    sip(w, peer, home, request("REGISTER", id + "r2", id + "c5", 2), t);
    sip(w, home, peer, response(200, "REGISTER", id + "r2", id + "c5", 2), t);
    sip(w, peer, home, request("OPTIONS", id + "q1", id + "c6", 1), t);
    sip(w, peer, home, request("INVITE", id + "i3", id + "c7", 1), t);
    sip(w, home, peer, response(180, "INVITE", id + "i3", id + "c7", 1), t);
    sip(w, peer, home, request("FROBNICATE", id + "x1", id + "c8", 1), t);
    sip(w, home, peer, response(699, "FROBNICATE", id + "x1", id + "c8", 1), t);
    // Sent again after its transaction timed out: a new transaction, not a retransmission, even
    // when both copies arrive in one batch (the timer runs between them).
    sip(w, peer, home, request("INFO", id + "n1", id + "c12", 1), t);
    t += 40'000'000'000;
    sip(w, peer, home, request("INFO", id + "n1", id + "c12", 1), t);
    // Between two outside addresses (neither home): the sender is the peer, direction unknown.
    if (!v6) sip(w, peer, "192.0.2.254", request("MESSAGE", id + "m1", id + "c9", 1), t);
    // Not SIP; SIP with a bad status code.
    send(w, ipv4("192.0.2.250", "203.0.113.1", 17, udp(5060, 5060, "hello")), t);
    send(w, ipv4("192.0.2.250", "203.0.113.1", 17, udp(5060, 5060, "SIP/2.0 99 Nope\r\n\r\n")), t);
    if (v6) return;
    // An INVITE in two IPv4 fragments, the first one twice (a duplicate), the second one again
    // after the datagram is complete (the start of one that times out).
    const Bytes l4 = udp(5060, 5060, request("INVITE", id + "f1", id + "c10", 1));
    const Bytes first(l4.begin(), l4.begin() + 48), second(l4.begin() + 48, l4.end());
    send(w, ipv4(peer.c_str(), home.c_str(), 17, first, 0x2000), t += 1000);
    send(w, ipv4(peer.c_str(), home.c_str(), 17, first, 0x2000), t += 1000);
    send(w, ipv4(peer.c_str(), home.c_str(), 17, second, 6), t += 1000);
    send(w, ipv4(peer.c_str(), home.c_str(), 17, second, 6), t += 1000);
    // A request over TCP, in two segments.
    const std::string m = request("SUBSCRIBE", id + "s1", id + "c11", 1);
    send(w, ipv4(peer.c_str(), home.c_str(), 6, tcp(40000, 5060, 1000, m.substr(0, 30))), t += 1000);
    send(w, ipv4(peer.c_str(), home.c_str(), 6, tcp(40000, 5060, 1030, m.substr(30))), t += 1000);
  }

  uint32_t batch_packets_;
  std::unique_ptr<Batch> batch_;
  Worker* batch_worker_ = nullptr;
  Config cfg_;
  std::unique_ptr<PeerRegistry> reg_;
  BatchPool pool_{1, 1};
  BatchQueue queue_{1};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<SourceStats>> sources_;
};

TEST(MetricsTest, text_equals_prometheus_cpp_for_varied_worker_state) {
  const WorkerState state;
  const SipCollector collector(state.sources());
  const Snapshot snap = collector.collect();
  const std::string text = render_text(snap);
  EXPECT_EQ(text, oracle(snap));

  // The state is as varied as intended (each of these is a line the oracle also wrote).
  for (const char* line : {
           "sip_requests_total{method=\"INVITE\",peer=\"carrier \\\"a\\\"\",direction=\"inbound\"} 5\n",
           "sip_requests_total{method=\"INVITE\",peer=\"back\\\\slash\",direction=\"inbound\"} 5\n",
           "sip_requests_total{method=\"INVITE\",peer=\"new\\nline\",direction=\"inbound\"} 5\n",
           // 192.0.2.7 is seen by worker 0 and, as "shared", by workers 0 and 2: summed.
           "sip_requests_total{method=\"INVITE\",peer=\"192.0.2.7\",direction=\"inbound\"} 15\n",
           "sip_responses_total{code=\"699\",class=\"6xx\",method=\"OTHER\",peer=\"zeta\",direction=\"outbound\"} 1\n",
           "sip_retransmissions_total{kind=\"response\",method=\"INVITE\",peer=\"zeta\",direction=\"outbound\"} 1\n",
           "sip_transaction_timeouts_total{method=\"OPTIONS\",peer=\"zeta\",direction=\"inbound\"} 1\n",
           "sip_calls_total{outcome=\"busy\",peer=\"zeta\",direction=\"inbound\"} 1\n",
           "sip_transaction_timeouts_total{method=\"INFO\",peer=\"zeta\",direction=\"inbound\"} 2\n",
           "sip_call_duration_seconds_bucket{peer=\"zeta\",direction=\"inbound\",le=\"60\"} 1\n",
           "sip_exporter_packets_total{source=\"/tmp/a \\\"quoted\\\" b\\\\c.pcap\"} 3000\n",
           "sip_exporter_packets_total{source=\"eth0\"} 3000\n",
           "sip_exporter_packets_total{source=\"line\\nbreak.pcap\"} 4000\n",
           "sip_exporter_scan_kernel_info{kernel=\"test\\\"kernel\"} 1\n",
           // 11 IPv4 peers and the shared flows twice.
           "sip_exporter_ip_datagrams_reassembled_total 13\n",
           "sip_exporter_ip_fragments_duplicate_total 13\n",
           "sip_exporter_reassembly_evictions_total{kind=\"ip\",reason=\"timeout\"} 13\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
  EXPECT_NE(text.find("peer=\"other\""), std::string::npos) << "the cap of 9 peers is reached";
  EXPECT_NE(text.find("sip_response_latency_seconds_count{method=\"INVITE\",stage=\"ringing\""), std::string::npos);
  EXPECT_NE(text.find("sip_exporter_stream_bytes_total{result=\"sip\"} "), std::string::npos);
}

TEST(MetricsTest, batches_count_exactly_what_their_packets_count_one_by_one) {
  // process_batch() holds parsed UDP messages back to overlap their lookups; the transaction
  // tracker must still see every message in capture order, around TCP, fragments and timers.
  const std::string one_by_one = render_text(SipCollector(WorkerState(false, 0).sources()).collect());
  for (const uint32_t n : {1u, 2u, 7u, 16u, 17u, 64u, 256u}) {
    EXPECT_EQ(render_text(SipCollector(WorkerState(false, n).sources()).collect()), one_by_one) << n << " per batch";
  }
}

// Two edge cases of batching, each fed to one worker one packet at a time and to another in one
// batch: the rendered text must be the same.
std::string render_one_worker(const std::string& yaml, const std::vector<std::pair<Bytes, int64_t>>& packets,
                              bool batched) {
  const Config cfg = parse_config(yaml, "batch_test.yaml");
  PeerRegistry reg(cfg);
  BatchPool pool(1, 1);
  BatchQueue queue(1);
  Worker w(queue, pool, reg, cfg);
  auto batch = std::make_unique<Batch>();
  for (const auto& [ip, ts] : packets) {
    const Bytes f = ethernet(0x0800, ip);
    const auto len = static_cast<uint32_t>(f.size());
    if (batched) {
      batch->append(f.data(), len, len, 1, 0, ts);
    } else {
      w.process(1, f.data(), len, ts);
    }
  }
  if (batched) w.process_batch(*batch);
  MetricSources m;
  m.workers.push_back(&w);
  m.peers = &reg;
  return render_text(SipCollector(m).collect());
}

TEST(MetricsTest, batches_keep_reassembled_datagrams_and_peer_ids_as_one_by_one) {
  // A request and its response, each in two IP fragments: the reassembler keeps one datagram
  // at a time, so the request must not wait in the window while the response is put together.
  std::vector<std::pair<Bytes, int64_t>> frags;
  int64_t t = 1'000'000'000;
  for (const auto& [from, to, text] :
       {std::tuple{"192.0.2.1", "203.0.113.1", request("INVITE", "fr", "cf", 1)},
        std::tuple{"203.0.113.1", "192.0.2.1", response(200, "INVITE", "fr", "cf", 1)}}) {
    const Bytes l4 = udp(5060, 5060, text);
    frags.emplace_back(ipv4(from, to, 17, Bytes(l4.begin(), l4.begin() + 48), 0x2000), t += 1000);
    frags.emplace_back(ipv4(from, to, 17, Bytes(l4.begin() + 48, l4.end()), 6), t += 1000);
  }
  frags.emplace_back(ipv4("192.0.2.9", "203.0.113.1", 17, udp(9, 9, "later")), t + 400'000'000'000);
  const std::string home = "home_networks: [203.0.113.0/24]\n";
  const std::string frag_text = render_one_worker(home, frags, false);
  EXPECT_NE(frag_text.find("sip_calls_total{outcome=\"answered\",peer=\"192.0.2.1\",direction=\"inbound\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(render_one_worker(home, frags, true), frag_text);

  // Peer ids go in order of first sight, which decides who is "other" once max_peers is
  // reached: an unmatched response between two outside addresses registers its requester (the
  // destination) when the transaction tracker sees it, before the next message's sender.
  const std::vector<std::pair<Bytes, int64_t>> order = {
      {ipv4("192.0.2.1", "192.0.2.2", 17, udp(5060, 5060, response(200, "OPTIONS", "o1", "c1", 1))), 1000},
      {ipv4("192.0.2.3", "192.0.2.4", 17, udp(5060, 5060, request("OPTIONS", "o2", "c2", 1))), 2000},
  };
  const std::string cap = "limits: {max_peers: 2}\n";
  const std::string order_text = render_one_worker(cap, order, false);
  EXPECT_NE(order_text.find("sip_requests_total{method=\"OPTIONS\",peer=\"other\",direction=\"unknown\"} 1\n"),
            std::string::npos)
      << order_text;
  EXPECT_EQ(render_one_worker(cap, order, true), order_text);

  // The window hands the transaction tracker the key it prefetched: an ACK's is its INVITE's,
  // which must not be used for a response whose CSeq says ACK (that is no response to the INVITE).
  const std::vector<std::pair<Bytes, int64_t>> ack = {
      {ipv4("192.0.2.1", "203.0.113.1", 17, udp(5060, 5060, request("INVITE", "k1", "ck", 1))), 1'000'000'000},
      {ipv4("203.0.113.1", "192.0.2.1", 17, udp(5060, 5060, response(200, "ACK", "k1", "ck", 1))), 1'001'000'000},
      {ipv4("192.0.2.9", "203.0.113.1", 17, udp(9, 9, "later")), 400'000'000'000},
  };
  const std::string ack_text = render_one_worker(home, ack, false);
  EXPECT_NE(ack_text.find("sip_transaction_timeouts_total{method=\"INVITE\",peer=\"192.0.2.1\",direction=\"inbound\"} 1\n"),
            std::string::npos)
      << ack_text;
  EXPECT_EQ(render_one_worker(home, ack, true), ack_text);
}

TEST(MetricsTest, written_metrics_equal_the_served_text_across_stream_chunks) {
  // write_metrics() streams the text in pieces of 256 KiB; 10000 peers' lines make several.
  const Config cfg = parse_config("limits: {max_peers: 12000}\n", "write_test.yaml");
  PeerRegistry reg(cfg);
  BatchPool pool(1, 1);
  BatchQueue queue(1);
  Worker w(queue, pool, reg, cfg);
  for (int i = 0; i < 10000; ++i) {
    const std::string src = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    const Bytes f = ethernet(0x0800, ipv4(src.c_str(), "192.0.2.1", 17,
                                          udp(5060, 5060, request("OPTIONS", "w" + std::to_string(i), "c", 1))));
    w.process(1, f.data(), static_cast<uint32_t>(f.size()), 1000 + i);
  }
  MetricSources m;
  m.workers.push_back(&w);
  m.peers = &reg;
  const SipCollector collector(m);
  const std::string served = render_text(collector.collect());
  ASSERT_GT(served.size(), size_t{2} << 18);
  const std::string path = testing::TempDir() + "/sipex_write_metrics.prom";
  write_metrics(collector, path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream written;
  written << in.rdbuf();
  EXPECT_EQ(written.str(), served);
  std::remove(path.c_str());
}

TEST(MetricsTest, output_does_not_depend_on_which_worker_saw_a_peer_first) {
  const WorkerState a(false), b(true);
  const std::string ta = render_text(SipCollector(a.sources()).collect());
  const std::string tb = render_text(SipCollector(b.sources()).collect());
  // The peer ids differ (registration order), the text must not... except where the cap cuts
  // in: which addresses got ids before the cap depends on order. Compare the named peers' lines.
  auto named = [](const std::string& t) {
    std::string out;
    std::istringstream in(t);
    for (std::string line; std::getline(in, line);) {
      if (line.find("peer=\"zeta\"") != std::string::npos || line.find("peer=\"carrier") != std::string::npos ||
          line.find("peer=\"back") != std::string::npos || line.find("peer=\"new") != std::string::npos) {
        out += line + "\n";
      }
    }
    return out;
  };
  EXPECT_FALSE(named(ta).empty());
  EXPECT_EQ(named(ta), named(tb));
}

// A Snapshot made by hand: the number and label edges the worker state cannot reach cheaply.
TEST(MetricsTest, text_equals_prometheus_cpp_at_number_and_label_edges) {
  const std::vector<std::string> peers = {"other", "", "a\"b", "c\\d", "e\nf", "\\\"\n\\", "ü-日本", "trailing\\"};
  Snapshot s;
  s.peers = peers;
  s.kernel = "";
  const uint64_t counts[] = {0,
                             1,
                             (uint64_t{1} << 53) - 1,
                             uint64_t{1} << 53,
                             (uint64_t{1} << 53) + 1,
                             9'999'999'999'999'999ull,
                             10'000'000'000'000'000ull,
                             123'456'789'012'345'678ull,
                             std::numeric_limits<uint64_t>::max()};
  uint64_t order = 0;
  for (size_t i = 0; i < std::size(counts); ++i) {
    const auto peer = static_cast<PeerId>(i % peers.size());
    s.series.push_back({order++, series_key(peer, Direction::inbound, Method::INVITE, 0), counts[i]});
  }
  s.series.push_back({uint64_t{1} << 60, series_key(2, Direction::outbound, Method::BYE, 100), 5});
  s.series.push_back({uint64_t{5} << 60, series_key(3, Direction::unknown, Method::INVITE, 4), 6});
  const double sums_ns[] = {0, 1, 999, 8'318'000, 1e12, 123'456'789'123'456'789.0, 1.8e19};
  for (size_t i = 0; i < std::size(sums_ns); ++i) {
    Snapshot::Histogram h{};
    h.order = i + (i >= 4 ? uint64_t{1} << 60 : 0);
    h.key = HistogramTable::key(i >= 4 ? HistogramFamily::call_duration : HistogramFamily::response_latency,
                                static_cast<PeerId>(i), Direction::outbound, Method::REGISTER, LatencyStage::final);
    h.sum_ns = static_cast<uint64_t>(sums_ns[i]);
    for (size_t b = 0; b <= kMaxBuckets; ++b) h.counts[b] = (b * 7 + i) % 5;
    h.counts[kMaxBuckets] = i == 6 ? (uint64_t{1} << 62) : 3;
    s.histograms.push_back(h);
  }
  s.sources = {{"", 1, 2, 3, 4, 5}, {"x\"y\\z\nw", 0, 0, 0, 0, uint64_t{1} << 60}};
  for (size_t i = 0; i < kPathCount; ++i) s.decoded[i] = std::numeric_limits<uint64_t>::max() - i;
  s.tcp_buffered = 1ull << 40;
  const std::string text = render_text(s);
  EXPECT_EQ(text, oracle(s));
  EXPECT_NE(text.find("} 9007199254740992\n"), std::string::npos);  // 2^53 + 1 as its double
  EXPECT_NE(text.find("} 1e+16\n"), std::string::npos);
  EXPECT_NE(text.find("} 1.844674407370955e+19\n"), std::string::npos);
}

// The radix sort against std::stable_sort: orders laid out as collect() makes them (family in the
// top bits, a peer rank, small fields below), many repeated, and sizes around every boundary.
TEST(MetricsTest, sort_by_order_is_a_stable_sort) {
  std::mt19937_64 rng(7);
  for (const size_t n : {0, 1, 2, 3, 255, 256, 257, 5000, 100000}) {
    for (const uint64_t spread : {uint64_t{1}, uint64_t{64}, uint64_t{1} << 20}) {
      std::vector<Snapshot::Series> rows(n);
      for (size_t i = 0; i < n; ++i) {
        const uint64_t r = rng() % spread;
        rows[i] = {(r % 6) << 60 | (r >> 3) << 24 | (r & 0xFFF), i, r};
      }
      std::vector<Snapshot::Series> want = rows;
      std::stable_sort(want.begin(), want.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
      sort_by_order(rows);
      ASSERT_EQ(rows.size(), want.size());
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(std::tie(rows[i].order, rows[i].key), std::tie(want[i].order, want[i].key))
            << "n " << n << ", spread " << spread << ", row " << i;
      }
    }
  }
}

TEST(MetricsTest, empty_state_renders_every_family_header) {
  Config cfg;
  PeerRegistry reg(cfg);
  MetricSources src;
  src.peers = &reg;
  src.kernel = "scalar";
  const Snapshot s = SipCollector(src).collect();
  const std::string text = render_text(s);
  EXPECT_EQ(text, oracle(s));
  EXPECT_NE(text.find("# TYPE sip_requests_total counter\n# HELP sip_responses_total"), std::string::npos);
  EXPECT_NE(text.find("sip_exporter_peers 1\n"), std::string::npos);
}

TEST(MetricsTest, label_values_are_escaped) {
  const struct {
    std::string_view in, out;
  } cases[] = {
      {"", ""},
      {"plain-value_1.2", "plain-value_1.2"},
      {"a\"b", "a\\\"b"},
      {"c\\d", "c\\\\d"},
      {"e\nf", "e\\nf"},
      {"\\n", "\\\\n"},  // a backslash and an n, not a newline
      {"\r\t", "\r\t"},  // only \ " and newline are escaped
      {"\"\"\\\n", "\\\"\\\"\\\\\\n"},
      {"ü", "ü"},
  };
  for (const auto& c : cases) {
    std::string out = "x";
    append_label_value(out, c.in);
    EXPECT_EQ(out, "x" + std::string(c.out)) << c.in;
    // The renderer writes label values the same way.
    const std::vector<std::string> peers = {std::string(c.in)};
    Snapshot s;
    s.peers = peers;
    s.series.push_back({0, series_key(0, Direction::unknown, Method::ACK, 0), 1});
    const std::string line = "sip_requests_total{method=\"ACK\",peer=\"" + std::string(c.out) + "\",direction=\"unknown\"} 1\n";
    EXPECT_NE(render_text(s).find(line), std::string::npos) << c.in;
  }
}

}  // namespace
}  // namespace sipex
