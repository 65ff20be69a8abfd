#include "sipex/metrics.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <iostream>
#include <map>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include <prometheus/text_serializer.h>

#ifndef SIPEX_VERSION
#define SIPEX_VERSION "unknown"
#endif
#ifndef SIPEX_REVISION
#define SIPEX_REVISION "unknown"
#endif

namespace sipex {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_sample(MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace

std::string code_class(uint16_t code) { return std::string(1, static_cast<char>('0' + code / 100)) + "xx"; }

namespace {

// Label text that never changes, made once: codes 100..699 and their classes.
struct CodeText {
  std::string code[600];
  std::string cls[6];
  CodeText() {
    for (int c = 100; c < 700; ++c) code[c - 100] = std::to_string(c);
    for (int k = 1; k <= 6; ++k) cls[k - 1] = std::string(1, static_cast<char>('0' + k)) + "xx";
  }
};
const CodeText& code_text() {
  static const CodeText t;
  return t;
}

// Ranks of the enumerations' names in text order, so rows can be sorted by number.
template <size_t N, class F>
std::array<uint8_t, N> name_ranks(F name) {
  std::array<uint8_t, N> order{}, rank{};
  for (uint8_t i = 0; i < N; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint8_t x, uint8_t y) { return name(x) < name(y); });
  for (uint8_t i = 0; i < N; ++i) rank[order[i]] = i;
  return rank;
}

}  // namespace

std::vector<MetricFamily> SipCollector::Collect() const {
  // Merge the shards (the same key may be in several): sorting (key, count) pairs and adding
  // neighbours costs far less than a node-based map at 100k series.
  std::vector<std::pair<uint64_t, uint64_t>> series;
  for (const Worker* w : src_.workers) {
    series.reserve(series.size() + w->shard().series.size());
    w->shard().series.for_each([&](uint64_t k, uint64_t c) { series.emplace_back(k, c); });
  }
  std::sort(series.begin(), series.end());
  size_t n = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    if (n > 0 && series[n - 1].first == series[i].first) {
      series[n - 1].second += series[i].second;
    } else {
      series[n++] = series[i];
    }
  }
  series.resize(n);

  // Rows are ordered by label text (peer, direction, method, then the rest) so the output does
  // not depend on which worker saw a peer first: rank every name once, then sort by number.
  const auto names = src_.peers->names();
  const std::vector<std::string> peer_names(names.begin(), names.end());
  std::vector<uint32_t> peer_rank(peer_names.size());
  {
    std::vector<uint32_t> order(peer_names.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) { return peer_names[x] < peer_names[y]; });
    for (uint32_t r = 0; r < order.size(); ++r) peer_rank[order[r]] = r;
  }
  static const auto kDirRank = name_ranks<kDirectionCount>([](uint8_t d) { return direction_name(static_cast<Direction>(d)); });
  static const auto kMethodRank = name_ranks<kMethodCount>([](uint8_t m) { return method_name(static_cast<Method>(m)); });
  static const auto kOutcomeRank =
      name_ranks<kCallOutcomeCount>([](uint8_t o) { return call_outcome_name(static_cast<CallOutcome>(o)); });
  // The exposition family of a key: requests, responses, retransmissions (both kinds), transactions,
  // timeouts, calls.
  auto family_of = [](const SeriesFields& f) -> uint64_t {
    switch (f.family) {
      case Family::messages: return f.code == 0 ? 0 : 1;
      case Family::request_retransmissions:
      case Family::response_retransmissions: return 2;
      case Family::transactions: return 3;
      case Family::timeouts: return 4;
      case Family::calls: return 5;
    }
    return 5;
  };
  std::vector<std::pair<uint64_t, uint32_t>> order(series.size());
  for (uint32_t i = 0; i < series.size(); ++i) {
    const SeriesFields f = series_fields(series[i].first);
    uint64_t last = f.code;  // three-digit codes sort as their text
    if (f.family == Family::calls) last = kOutcomeRank[f.code];
    if (f.family == Family::response_retransmissions) last = 1;  // kind "response" after "request"
    const uint64_t pr = f.peer < peer_rank.size() ? peer_rank[f.peer] : 0;
    order[i] = {family_of(f) << 60 | pr << 24 | uint64_t{kDirRank[static_cast<size_t>(f.direction)]} << 20 |
                    uint64_t{kMethodRank[static_cast<size_t>(f.method)]} << 12 | last,
                i};
  }
  std::sort(order.begin(), order.end());

  static const struct {
    const char* name;
    const char* help;
  } kFamilies[6] = {
      {"sip_requests_total", "SIP request messages seen, by request-line method, peer and direction."},
      {"sip_responses_total", "SIP response messages seen, by status code, class, CSeq method, peer and direction."},
      {"sip_retransmissions_total",
       "Retransmitted SIP messages (a request, or a response with the same code, seen again in its transaction), by kind, method, peer and direction."},
      {"sip_transactions_total",
       "SIP transactions by their first final response: method, code, class, and the request's peer and direction."},
      {"sip_transaction_timeouts_total",
       "SIP requests that saw no final response before Timer B/F (or Timer C after a provisional), by method and the request's peer and direction."},
      {"sip_calls_total",
       "Call attempts (INVITEs outside a dialog) by outcome: answered, busy, no_answer, rejected, cancelled, failed; by the INVITE's peer and direction."},
  };
  std::vector<MetricFamily> out;
  for (const auto& fam : kFamilies) out.push_back(family(fam.name, fam.help, MetricType::Counter));
  const CodeText& text = code_text();
  static const std::string kKinds[2] = {"request", "response"};
  for (const auto& [sort, idx] : order) {
    const auto [key, count] = series[idx];
    const SeriesFields f = series_fields(key);
    MetricFamily& fam = out[sort >> 60];
    ClientMetric m;
    m.counter.value = static_cast<double>(count);
    const std::string& peer = f.peer < peer_names.size() ? peer_names[f.peer] : peer_names[0];
    const std::string dir(direction_name(f.direction));
    const std::string method(method_name(f.method));
    const bool code_ok = f.code >= 100 && f.code < 700;
    switch (sort >> 60) {
      case 0: m.label = {{"method", method}, {"peer", peer}, {"direction", dir}}; break;
      case 1:
      case 3:
        if (!code_ok) continue;
        if (sort >> 60 == 1) {
          m.label = {{"code", text.code[f.code - 100]}, {"class", text.cls[f.code / 100 - 1]}, {"method", method},
                     {"peer", peer}, {"direction", dir}};
        } else {
          m.label = {{"method", method}, {"code", text.code[f.code - 100]}, {"class", text.cls[f.code / 100 - 1]},
                     {"peer", peer}, {"direction", dir}};
        }
        break;
      case 2:
        m.label = {{"kind", kKinds[f.family == Family::response_retransmissions]}, {"method", method}, {"peer", peer},
                   {"direction", dir}};
        break;
      case 4: m.label = {{"method", method}, {"peer", peer}, {"direction", dir}}; break;
      default:
        m.label = {{"outcome", std::string(call_outcome_name(static_cast<CallOutcome>(f.code)))}, {"peer", peer},
                   {"direction", dir}};
        break;
    }
    fam.metric.push_back(std::move(m));
  }
  collect_histograms(out, peer_names);
  {
    MetricFamily f = family("sip_exporter_build_info",
                            "A constant 1, labelled with the version and source revision of this build.",
                            MetricType::Gauge);
    add_sample(f, {{"version", SIPEX_VERSION}, {"revision", SIPEX_REVISION}}, 1);
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("sip_exporter_scan_kernel_info",
                            "A constant 1, labelled with the SIMD kernel the SIP parser uses.", MetricType::Gauge);
    add_sample(f, {{"kernel", src_.kernel}}, 1);
    out.push_back(std::move(f));
  }

  // Per-source counters: several capture threads may share a source name (fanout); sum them.
  struct SourceSum {
    uint64_t packets = 0, kernel = 0, interface = 0, pool = 0, queue = 0;
  };
  std::map<std::string, SourceSum> sources;
  for (const SourceStats* s : src_.sources) {
    SourceSum& t = sources[s->name];
    t.packets += s->packets.get();
    t.kernel += s->dropped_kernel.get();
    t.interface += s->dropped_interface.get();
    t.pool += s->dropped_pool.get();
    t.queue += s->dropped_queue.get();
  }
  {
    MetricFamily f = family("sip_exporter_packets_total",
                            "Packets handed to the process by the kernel or read from a file, by source.",
                            MetricType::Counter);
    for (const auto& [name, t] : sources) add_sample(f, {{"source", name}}, static_cast<double>(t.packets));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("sip_exporter_dropped_packets_total",
                            "Packets lost before parsing, by source and by the stage that lost them.",
                            MetricType::Counter);
    for (const auto& [name, t] : sources) {
      add_sample(f, {{"source", name}, {"stage", "interface"}}, static_cast<double>(t.interface));
      add_sample(f, {{"source", name}, {"stage", "kernel"}}, static_cast<double>(t.kernel));
      add_sample(f, {{"source", name}, {"stage", "pool"}}, static_cast<double>(t.pool));
      add_sample(f, {{"source", name}, {"stage", "queue"}}, static_cast<double>(t.queue));
    }
    out.push_back(std::move(f));
  }

  uint64_t decoded[kPathCount] = {};
  for (const Worker* w : src_.workers) {
    for (size_t i = 0; i < kPathCount; ++i) decoded[i] += w->shard().decoded[i].get();
  }
  {
    MetricFamily f = family("sip_exporter_decoded_packets_total",
                            "Packets decoded down to a transport, by path: udp, tcp, sctp, or ip_fragment (handed to reassembly).",
                            MetricType::Counter);
    for (size_t i = 0; i < kPathCount; ++i) {
      add_sample(f, {{"path", std::string(path_name(static_cast<Path>(i)))}}, static_cast<double>(decoded[i]));
    }
    out.push_back(std::move(f));
  }
  uint64_t parse_errors[kParseStatusCount] = {};
  uint64_t skipped[kSkipCount] = {};
  uint64_t peer_overflow = 0, series_overflow = 0;
  for (const Worker* w : src_.workers) {
    const Shard& s = w->shard();
    for (size_t i = 0; i < kParseStatusCount; ++i) parse_errors[i] += s.parse_errors[i].get();
    for (size_t i = 0; i < kSkipCount; ++i) skipped[i] += s.skipped[i].get();
    peer_overflow += s.peer_overflow.get();
    series_overflow += s.series_overflow.get();
  }
  {
    MetricFamily f = family("sip_exporter_parse_errors_total",
                            "Payloads that started like SIP but were malformed, by reason; none of them is counted as a message.",
                            MetricType::Counter);
    std::vector<std::pair<std::string_view, uint64_t>> rows;
    for (size_t i = 0; i < kParseStatusCount; ++i) {
      const auto st = static_cast<ParseStatus>(i);
      if (is_parse_error(st)) rows.emplace_back(parse_status_reason(st), parse_errors[i]);
    }
    std::sort(rows.begin(), rows.end());
    for (const auto& [r, v] : rows) add_sample(f, {{"reason", std::string(r)}}, static_cast<double>(v));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("sip_exporter_skipped_packets_total",
                            "Packets that reached a worker but yielded no SIP message, by reason (a datagram reassembled from fragments is counted under sip_exporter_decoded_packets_total{path=\"ip_fragment\"} instead, except not_sip).",
                            MetricType::Counter);
    std::vector<std::pair<std::string_view, uint64_t>> rows;
    for (size_t i = 0; i < kSkipCount; ++i) {
      const auto r = static_cast<Skip>(i);
      if (r != Skip::none && r != Skip::ip_fragment) rows.emplace_back(skip_reason(r), skipped[i]);
    }
    std::sort(rows.begin(), rows.end());
    for (const auto& [r, v] : rows) add_sample(f, {{"reason", std::string(r)}}, static_cast<double>(v));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("sip_exporter_peer_overflow_total",
                            "Messages labelled peer=\"other\" because the number of distinct peers reached limits.max_peers.",
                            MetricType::Counter);
    add_sample(f, {}, static_cast<double>(peer_overflow));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("sip_exporter_series_overflow_total",
                            "Counts left out of the SIP counter families (requests, responses, retransmissions, transactions, timeouts, calls) because a worker reached limits.max_series.",
                            MetricType::Counter);
    add_sample(f, {}, static_cast<double>(series_overflow));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("sip_exporter_peers",
                            "Peer label values allocated: \"other\", the peer map's names and the addresses seen, at most limits.max_peers besides \"other\".", MetricType::Gauge);
    add_sample(f, {}, static_cast<double>(peer_names.size()));
    out.push_back(std::move(f));
  }
  collect_reassembly(out);
  return out;
}

void SipCollector::collect_histograms(std::vector<MetricFamily>& out, const std::vector<std::string>& peer_names) const {
  struct Merged {
    uint64_t counts[kMaxBuckets + 1] = {};
    uint64_t sum_ns = 0;
  };
  std::map<uint64_t, Merged> merged;
  for (const Worker* w : src_.workers) {
    w->shard().histograms.for_each([&](uint64_t k, const uint64_t* counts, uint64_t sum_ns) {
      Merged& m = merged[k];
      for (size_t b = 0; b <= kMaxBuckets; ++b) m.counts[b] += counts[b];
      m.sum_ns += sum_ns;
    });
  }
  std::map<std::vector<std::string>, ClientMetric> latency, duration;
  for (const auto& [k, m] : merged) {
    const auto fam = static_cast<HistogramFamily>(k >> 40 & 3);
    const auto peer_id = static_cast<PeerId>(k >> 16 & 0xFFFF);
    const std::string peer = peer_id < peer_names.size() ? peer_names[peer_id] : "other";
    const std::string dir(direction_name(static_cast<Direction>(k >> 14 & 3)));
    const std::string method(method_name(static_cast<Method>(k >> 10 & 15)));
    static constexpr std::string_view kStages[] = {"first_response", "ringing", "final"};
    const std::string stage(kStages[k & 3]);
    ClientMetric c;
    size_t n = 0;
    const double* bounds = HistogramTable::buckets(fam, &n);
    uint64_t cumulative = 0;
    for (size_t b = 0; b < n; ++b) {
      cumulative += m.counts[b];
      c.histogram.bucket.push_back({cumulative, bounds[b]});
    }
    cumulative += m.counts[kMaxBuckets];
    c.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    c.histogram.sample_count = cumulative;
    c.histogram.sample_sum = static_cast<double>(m.sum_ns) * 1e-9;
    if (fam == HistogramFamily::response_latency) {
      c.label = {{"method", method}, {"stage", stage}, {"peer", peer}, {"direction", dir}};
      latency[{peer, dir, method, stage}] = std::move(c);
    } else {
      c.label = {{"peer", peer}, {"direction", dir}};
      duration[{peer, dir}] = std::move(c);
    }
  }
  MetricFamily lat = family("sip_response_latency_seconds",
                            "Time from a request's first transmission to its first provisional response (stage=first_response, "
                            "INVITE), first 180/183 (stage=ringing, INVITE: post-dial delay) and first final response "
                            "(stage=final), by method and the request's peer and direction.",
                            MetricType::Histogram);
  for (auto& [key, c] : latency) lat.metric.push_back(std::move(c));
  out.push_back(std::move(lat));
  MetricFamily dur = family("sip_call_duration_seconds",
                            "Answered calls from the 2xx to the INVITE until the BYE, by the INVITE's peer and direction.",
                            MetricType::Histogram);
  for (auto& [key, c] : duration) dur.metric.push_back(std::move(c));
  out.push_back(std::move(dur));
}

void SipCollector::collect_reassembly(std::vector<MetricFamily>& out) const {
  uint64_t segments[kSegmentResultCount] = {}, bytes[kStreamBytesCount] = {};
  uint64_t tcp_ev[kStreamEvictionCount] = {}, ip_ev[kFragmentEvictionCount] = {}, sctp_ev[kChunkEvictionCount] = {};
  uint64_t tls = 0, ws = 0, reassembled = 0, duplicates = 0, frag_dropped = 0, chunks = 0;
  uint64_t tcp_entries = 0, tcp_bytes = 0, ip_entries = 0, ip_bytes = 0, sctp_entries = 0;
  for (const Worker* w : src_.workers) {
    const TcpStats& t = w->tcp_stats();
    for (size_t i = 0; i < kSegmentResultCount; ++i) segments[i] += t.segments[i].get();
    for (size_t i = 0; i < kStreamBytesCount; ++i) bytes[i] += t.bytes[i].get();
    for (size_t i = 0; i < kStreamEvictionCount; ++i) tcp_ev[i] += t.evicted[i].get();
    tls += t.tls_streams.get();
    ws += t.websocket_streams.get();
    tcp_entries += t.streams.load(std::memory_order_relaxed);
    tcp_bytes += t.buffered.load(std::memory_order_relaxed);
    const IpReassemblyStats& ip = w->ip_stats();
    for (size_t i = 0; i < kFragmentEvictionCount; ++i) ip_ev[i] += ip.evicted[i].get();
    reassembled += ip.completed.get();
    duplicates += ip.duplicates.get();
    frag_dropped += ip.evicted_fragments.get();
    ip_entries += ip.datagrams.load(std::memory_order_relaxed);
    ip_bytes += ip.bytes.load(std::memory_order_relaxed);
    const SctpStats& sc = w->sctp_stats();
    for (size_t i = 0; i < kChunkEvictionCount; ++i) sctp_ev[i] += sc.evicted[i].get();
    chunks += sc.data_chunks.get();
    sctp_entries += sc.in_progress.load(std::memory_order_relaxed);
  }
  auto labelled = [&](const char* name, const char* help, const char* label, auto names, const uint64_t* v,
                      size_t n) {
    MetricFamily f = family(name, help, MetricType::Counter);
    for (size_t i = 0; i < n; ++i) add_sample(f, {{label, std::string(names(i))}}, static_cast<double>(v[i]));
    out.push_back(std::move(f));
  };
  labelled("sip_exporter_tcp_segments_total",
           "TCP segments by what stream reassembly did with them: data (in order), retransmission (nothing new), "
           "out_of_order (held), control (no payload).",
           "result", [](size_t i) { return segment_result_name(static_cast<SegmentResult>(i)); }, segments,
           kSegmentResultCount);
  labelled("sip_exporter_stream_bytes_total",
           "TCP stream bytes by what they turned out to be: sip, not_sip (skipped while resynchronising), tls "
           "(encrypted, unreadable), lost (never seen, or given up).",
           "result", [](size_t i) { return stream_bytes_name(static_cast<StreamBytes>(i)); }, bytes, kStreamBytesCount);
  {
    MetricFamily f = family("sip_exporter_reassembly_evictions_total",
                            "Reassembly state given up before it produced a message, by kind (ip, tcp, sctp) and reason.",
                            MetricType::Counter);
    for (size_t i = 0; i < kFragmentEvictionCount; ++i) {
      add_sample(f, {{"kind", "ip"}, {"reason", std::string(fragment_eviction_name(static_cast<FragmentEviction>(i)))}},
                 static_cast<double>(ip_ev[i]));
    }
    for (size_t i = 0; i < kChunkEvictionCount; ++i) {
      add_sample(f, {{"kind", "sctp"}, {"reason", std::string(chunk_eviction_name(static_cast<ChunkEviction>(i)))}},
                 static_cast<double>(sctp_ev[i]));
    }
    for (size_t i = 0; i < kStreamEvictionCount; ++i) {
      add_sample(f, {{"kind", "tcp"}, {"reason", std::string(stream_eviction_name(static_cast<StreamEviction>(i)))}},
                 static_cast<double>(tcp_ev[i]));
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("sip_exporter_reassembly_entries",
                            "Reassembly state held now: IP datagrams in progress, TCP streams, fragmented SCTP messages.",
                            MetricType::Gauge);
    add_sample(f, {{"kind", "ip"}}, static_cast<double>(ip_entries));
    add_sample(f, {{"kind", "sctp"}}, static_cast<double>(sctp_entries));
    add_sample(f, {{"kind", "tcp"}}, static_cast<double>(tcp_entries));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("sip_exporter_reassembly_buffered_bytes",
                            "Bytes held by reassembly now: IP fragment payloads, TCP buffers.", MetricType::Gauge);
    add_sample(f, {{"kind", "ip"}}, static_cast<double>(ip_bytes));
    add_sample(f, {{"kind", "tcp"}}, static_cast<double>(tcp_bytes));
    out.push_back(std::move(f));
  }
  auto single = [&](const char* name, const char* help, uint64_t v) {
    MetricFamily f = family(name, help, MetricType::Counter);
    add_sample(f, {}, static_cast<double>(v));
    out.push_back(std::move(f));
  };
  single("sip_exporter_tls_connections_total",
         "TCP connections recognised as TLS: their SIP, if any, is encrypted and not counted.", tls);
  single("sip_exporter_websocket_connections_total", "TCP connections upgraded to WebSocket (RFC 7118).", ws);
  single("sip_exporter_ip_fragments_duplicate_total", "IP fragments that repeated one already held, ignored.", duplicates);
  single("sip_exporter_ip_fragments_dropped_total",
         "IP fragments thrown away with a datagram that could not be reassembled.", frag_dropped);
  single("sip_exporter_ip_datagrams_reassembled_total", "IP datagrams completed from fragments.", reassembled);
  single("sip_exporter_sctp_data_chunks_total", "SCTP DATA and I-DATA chunks seen.", chunks);

  uint64_t txn_active = 0, txn_evicted = 0, dialogs = 0, dialogs_full = 0, dialogs_expired = 0, hist_overflow = 0,
           mirrored = 0;
  for (const Worker* w : src_.workers) {
    const TransactionStats& t = w->transaction_stats();
    txn_active += t.active.load(std::memory_order_relaxed);
    txn_evicted += t.evicted.get();
    dialogs += t.dialogs.load(std::memory_order_relaxed);
    dialogs_full += t.dialogs_evicted_full.get();
    dialogs_expired += t.dialogs_expired.get();
    hist_overflow += w->shard().histogram_overflow.get();
    mirrored += w->shard().duplicates.get();
  }
  auto gauge = [&](const char* name, const char* help, uint64_t v) {
    MetricFamily f = family(name, help, MetricType::Gauge);
    add_sample(f, {}, static_cast<double>(v));
    out.push_back(std::move(f));
  };
  gauge("sip_exporter_transactions_active", "SIP transactions remembered now (pending, or completed and lingering).",
        txn_active);
  single("sip_exporter_transactions_evicted_total",
         "SIP transactions forgotten early because the table (limits.transactions) was full.", txn_evicted);
  gauge("sip_exporter_dialogs_active", "Answered calls awaiting their BYE now.", dialogs);
  {
    MetricFamily f = family("sip_exporter_dialogs_evicted_total",
                            "Answered calls forgotten before their BYE: table_full (limits.dialogs) or timeout "
                            "(limits.dialog_timeout_seconds).",
                            MetricType::Counter);
    add_sample(f, {{"reason", "table_full"}}, static_cast<double>(dialogs_full));
    add_sample(f, {{"reason", "timeout"}}, static_cast<double>(dialogs_expired));
    out.push_back(std::move(f));
  }
  single("sip_exporter_duplicate_packets_total",
         "Datagrams suppressed as mirror duplicates (an identical packet seen again within limits.duplicate_window_ms).",
         mirrored);
  single("sip_exporter_observation_overflow_total",
         "Observations left out of the latency and duration histograms because a worker reached limits.max_histograms.",
         hist_overflow);
}

std::string render_text(const std::vector<MetricFamily>& families) {
  std::ostringstream o;
  prometheus::TextSerializer().Serialize(o, families);
  return o.str();
}

void write_metrics(const prometheus::Collectable& c, const std::string& path) {
  const std::string text = render_text(c.Collect());
  if (path == "-") {
    std::cout << text << std::flush;
    if (!std::cout) throw std::runtime_error("cannot write metrics to stdout");
    return;
  }
  std::ofstream f(path, std::ios::trunc);
  if (!f) throw std::runtime_error(path + ": cannot open for writing: " + std::strerror(errno));
  f << text;
  f.close();
  if (!f) throw std::runtime_error(path + ": write failed");
}

}  // namespace sipex
