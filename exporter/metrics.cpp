#include "sipex/metrics.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "sipex/build_info.hpp"

namespace sipex {

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

constexpr std::string_view kStages[] = {"first_response", "ringing", "final"};  // by LatencyStage
constexpr std::string_view kKinds[] = {"request", "response"};

const auto& dir_rank() {
  static const auto r = name_ranks<kDirectionCount>([](uint8_t d) { return direction_name(static_cast<Direction>(d)); });
  return r;
}
const auto& method_rank() {
  static const auto r = name_ranks<kMethodCount>([](uint8_t m) { return method_name(static_cast<Method>(m)); });
  return r;
}
const auto& outcome_rank() {
  static const auto r =
      name_ranks<kCallOutcomeCount>([](uint8_t o) { return call_outcome_name(static_cast<CallOutcome>(o)); });
  return r;
}
const auto& stage_rank() {
  static const auto r = name_ranks<std::size(kStages)>([](uint8_t s) { return kStages[s]; });
  return r;
}

// The exposition family of a series key (its position among the six SIP counter families):
// requests, responses, retransmissions (both kinds), transactions, timeouts, calls.
uint64_t family_of(const SeriesFields& f) {
  switch (f.family) {
    case Family::messages: return f.code == 0 ? 0 : 1;
    case Family::request_retransmissions:
    case Family::response_retransmissions: return 2;
    case Family::transactions: return 3;
    case Family::timeouts: return 4;
    case Family::calls: return 5;
  }
  return 5;
}

// The output position of a row: family, then the ranks of its label texts (peer, direction,
// method, then the family's last label). Injective over keys whose peer ids have names.
uint64_t order_of(uint64_t family, uint64_t peer_rank, Direction d, Method m, uint64_t last) {
  return family << 60 | peer_rank << 24 | uint64_t{dir_rank()[static_cast<size_t>(d)]} << 20 |
         uint64_t{method_rank()[static_cast<size_t>(m)]} << 12 | last;
}

}  // namespace

Snapshot SipCollector::collect() const {
  Snapshot s;
  // The tables first, the peer names after: a key is published (release) after its peer id
  // was registered, so every id read here has a name in the view taken below.
  size_t rows = 0, hists = 0;
  for (const Worker* w : src_.workers) {
    rows += w->shard().series.size();
    hists += w->shard().histograms.size();
  }
  s.series.reserve(rows + rows / 16 + 64);  // the tables may grow meanwhile
  s.histograms.reserve(hists + hists / 16 + 16);
  for (const Worker* w : src_.workers) {
    w->shard().series.for_each([&](uint64_t k, uint64_t c) { s.series.push_back({0, k, c}); });
    w->shard().histograms.for_each([&](uint64_t k, const uint64_t* counts, uint64_t sum_ns) {
      Snapshot::Histogram& h = s.histograms.emplace_back();
      h.key = k;
      h.sum_ns = sum_ns;
      std::memcpy(h.counts, counts, sizeof h.counts);
    });
  }
  s.peers = src_.peers->names();
  s.kernel = src_.kernel;

  // Rows are ordered by label text, so the output does not depend on which worker saw a peer
  // first: rank every peer name once, then sort by number.
  std::vector<uint32_t> peer_rank(s.peers.size());
  {
    std::vector<uint32_t> order(s.peers.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) { return s.peers[x] < s.peers[y]; });
    for (uint32_t r = 0; r < order.size(); ++r) peer_rank[order[r]] = r;
  }
  auto rank_of = [&](PeerId p) -> uint64_t { return peer_rank[p < peer_rank.size() ? p : kPeerOther]; };

  for (Snapshot::Series& r : s.series) {
    const SeriesFields f = series_fields(r.key);
    uint64_t last = f.code;  // three-digit codes sort as their text
    if (f.family == Family::calls) last = f.code < kCallOutcomeCount ? outcome_rank()[f.code] : f.code;
    if (f.family == Family::response_retransmissions) last = 1;  // kind "response" after "request"
    r.order = order_of(family_of(f), rank_of(f.peer), f.direction, f.method, last);
  }
  // One sort puts the rows in output order and brings each key's shards together.
  sort_by_order(s.series);
  size_t n = 0;
  for (size_t i = 0; i < s.series.size(); ++i) {
    if (n > 0 && s.series[n - 1].order == s.series[i].order) {
      s.series[n - 1].count += s.series[i].count;
    } else {
      s.series[n++] = s.series[i];
    }
  }
  s.series.resize(n);

  // Histograms: the same, through an index (a row is 152 bytes).
  {
    struct Row {
      uint64_t order;
      uint32_t index;
    };
    std::vector<Row> order(s.histograms.size());
    for (uint32_t i = 0; i < order.size(); ++i) {
      const uint64_t k = s.histograms[i].key;
      const uint64_t fam = k >> 40 & 3;
      order[i] = {order_of(fam, rank_of(static_cast<PeerId>(k >> 16 & 0xFFFF)), static_cast<Direction>(k >> 14 & 3),
                           static_cast<Method>(k >> 10 & 15), stage_rank()[std::min<size_t>(k & 3, 2)]),
                  i};
    }
    sort_by_order(order);
    std::vector<Snapshot::Histogram> merged;
    merged.reserve(order.size());
    for (const auto& [o, i] : order) {
      const Snapshot::Histogram& h = s.histograms[i];
      if (!merged.empty() && merged.back().order == o) {
        Snapshot::Histogram& m = merged.back();
        for (size_t b = 0; b <= kMaxBuckets; ++b) m.counts[b] += h.counts[b];
        m.sum_ns += h.sum_ns;
      } else {
        merged.push_back(h);
        merged.back().order = o;
      }
    }
    s.histograms = std::move(merged);
  }

  // Per-source counters: several capture threads may share a source name (fanout); sum them.
  for (const SourceStats* src : src_.sources) {
    s.sources.push_back({src->name, src->packets.get(), src->dropped_kernel.get(), src->dropped_interface.get(),
                         src->dropped_pool.get(), src->dropped_queue.get()});
  }
  std::stable_sort(s.sources.begin(), s.sources.end(),
                   [](const Snapshot::Source& a, const Snapshot::Source& b) { return a.name < b.name; });
  n = 0;
  for (size_t i = 0; i < s.sources.size(); ++i) {
    Snapshot::Source& t = s.sources[i];
    if (n > 0 && s.sources[n - 1].name == t.name) {
      Snapshot::Source& m = s.sources[n - 1];
      m.packets += t.packets;
      m.kernel += t.kernel;
      m.interface += t.interface;
      m.pool += t.pool;
      m.queue += t.queue;
    } else {
      s.sources[n++] = t;
    }
  }
  s.sources.resize(n);

  for (const Worker* w : src_.workers) {
    const Shard& sh = w->shard();
    for (size_t i = 0; i < kPathCount; ++i) s.decoded[i] += sh.decoded[i].get();
    for (size_t i = 0; i < kParseStatusCount; ++i) s.parse_errors[i] += sh.parse_errors[i].get();
    for (size_t i = 0; i < kSkipCount; ++i) s.skipped[i] += sh.skipped[i].get();
    s.peer_overflow += sh.peer_overflow.get();
    s.series_overflow += sh.series_overflow.get();
    s.histogram_overflow += sh.histogram_overflow.get();
    s.duplicates += sh.duplicates.get();

    const TcpStats& t = w->tcp_stats();
    for (size_t i = 0; i < kSegmentResultCount; ++i) s.segments[i] += t.segments[i].get();
    for (size_t i = 0; i < kStreamBytesCount; ++i) s.stream_bytes[i] += t.bytes[i].get();
    for (size_t i = 0; i < kStreamEvictionCount; ++i) s.tcp_evicted[i] += t.evicted[i].get();
    s.tls_streams += t.tls_streams.get();
    s.websocket_streams += t.websocket_streams.get();
    s.tcp_streams += t.streams.load(std::memory_order_relaxed);
    s.tcp_buffered += t.buffered.load(std::memory_order_relaxed);
    const IpReassemblyStats& ip = w->ip_stats();
    for (size_t i = 0; i < kFragmentEvictionCount; ++i) s.ip_evicted[i] += ip.evicted[i].get();
    s.ip_reassembled += ip.completed.get();
    s.ip_duplicates += ip.duplicates.get();
    s.ip_dropped += ip.evicted_fragments.get();
    s.ip_datagrams += ip.datagrams.load(std::memory_order_relaxed);
    s.ip_buffered += ip.bytes.load(std::memory_order_relaxed);
    const SctpStats& sc = w->sctp_stats();
    for (size_t i = 0; i < kChunkEvictionCount; ++i) s.sctp_evicted[i] += sc.evicted[i].get();
    s.sctp_chunks += sc.data_chunks.get();
    s.sctp_in_progress += sc.in_progress.load(std::memory_order_relaxed);

    const TransactionStats& tx = w->transaction_stats();
    s.transactions_active += tx.active.load(std::memory_order_relaxed);
    s.transactions_evicted += tx.evicted.get();
    s.dialogs_active += tx.dialogs.load(std::memory_order_relaxed);
    s.dialogs_full += tx.dialogs_evicted_full.get();
    s.dialogs_expired += tx.dialogs_expired.get();
  }
  return s;
}

void expose(const Snapshot& s, ExpositionSink& out) {
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
  const CodeText& text = code_text();
  auto peer_name = [&](PeerId p) -> std::string_view { return s.peers[p < s.peers.size() ? p : kPeerOther]; };
  size_t row = 0;
  for (uint64_t fam = 0; fam < 6; ++fam) {
    out.family(kFamilies[fam].name, kFamilies[fam].help, MetricKind::counter);
    for (; row < s.series.size() && s.series[row].order >> 60 == fam; ++row) {
      const SeriesFields f = series_fields(s.series[row].key);
      const std::string_view peer = peer_name(f.peer), dir = direction_name(f.direction),
                             method = method_name(f.method);
      const bool code_ok = f.code >= 100 && f.code < 700;
      Label l[5];
      size_t n = 0;
      switch (fam) {
        case 0:
        case 4: l[n++] = {"method", method}; break;
        case 1:
          if (!code_ok) continue;
          l[n++] = {"code", text.code[f.code - 100]};
          l[n++] = {"class", text.cls[f.code / 100 - 1]};
          l[n++] = {"method", method};
          break;
        case 2:
          l[n++] = {"kind", kKinds[f.family == Family::response_retransmissions]};
          l[n++] = {"method", method};
          break;
        case 3:
          if (!code_ok) continue;
          l[n++] = {"method", method};
          l[n++] = {"code", text.code[f.code - 100]};
          l[n++] = {"class", text.cls[f.code / 100 - 1]};
          break;
        default:
          if (f.code >= kCallOutcomeCount) continue;
          l[n++] = {"outcome", call_outcome_name(static_cast<CallOutcome>(f.code))};
          break;
      }
      l[n++] = {"peer", peer};
      l[n++] = {"direction", dir};
      out.sample({l, n}, s.series[row].count);
    }
  }

  static const struct {
    const char* name;
    const char* help;
  } kHistograms[2] = {
      {"sip_response_latency_seconds",
       "Time from a request's first transmission to its first provisional response (stage=first_response, "
       "INVITE), first 180/183 (stage=ringing, INVITE: post-dial delay) and first final response "
       "(stage=final), by method and the request's peer and direction."},
      {"sip_call_duration_seconds", "Answered calls from the 2xx to the INVITE until the BYE, by the INVITE's peer and direction."},
  };
  row = 0;
  for (uint64_t fam = 0; fam < 2; ++fam) {
    out.family(kHistograms[fam].name, kHistograms[fam].help, MetricKind::histogram);
    size_t nb = 0;
    const double* bounds = HistogramTable::buckets(static_cast<HistogramFamily>(fam), &nb);
    for (; row < s.histograms.size() && s.histograms[row].order >> 60 == fam; ++row) {
      const Snapshot::Histogram& h = s.histograms[row];
      const uint64_t k = h.key;
      uint64_t cumulative[kMaxBuckets + 1];
      uint64_t c = 0;
      for (size_t b = 0; b < nb; ++b) cumulative[b] = c += h.counts[b];
      cumulative[nb] = c + h.counts[kMaxBuckets];
      Label l[4];
      size_t n = 0;
      if (fam == 0) {
        l[n++] = {"method", method_name(static_cast<Method>(k >> 10 & 15))};
        l[n++] = {"stage", kStages[std::min<size_t>(k & 3, 2)]};
      }
      l[n++] = {"peer", peer_name(static_cast<PeerId>(k >> 16 & 0xFFFF))};
      l[n++] = {"direction", direction_name(static_cast<Direction>(k >> 14 & 3))};
      out.histogram({l, n}, {bounds, nb}, cumulative, static_cast<double>(h.sum_ns) * 1e-9);
    }
  }

  auto single = [&](const char* name, const char* help, MetricKind kind, uint64_t v) {
    out.family(name, help, kind);
    out.sample({}, v);
  };
  auto one = [&](std::string_view name, std::string_view value, uint64_t v) {
    const Label l[1] = {{name, value}};
    out.sample(l, v);
  };
  out.family("sip_exporter_build_info", "A constant 1, labelled with the version and source revision of this build.",
             MetricKind::gauge);
  {
    const Label l[2] = {{"version", kVersion}, {"revision", kRevision}};
    out.sample(l, 1);
  }
  out.family("sip_exporter_scan_kernel_info", "A constant 1, labelled with the SIMD kernel the SIP parser uses.",
             MetricKind::gauge);
  one("kernel", s.kernel, 1);

  out.family("sip_exporter_packets_total", "Packets handed to the process by the kernel or read from a file, by source.",
             MetricKind::counter);
  for (const Snapshot::Source& src : s.sources) one("source", src.name, src.packets);
  out.family("sip_exporter_dropped_packets_total", "Packets lost before parsing, by source and by the stage that lost them.",
             MetricKind::counter);
  for (const Snapshot::Source& src : s.sources) {
    const std::pair<std::string_view, uint64_t> stages[] = {
        {"interface", src.interface}, {"kernel", src.kernel}, {"pool", src.pool}, {"queue", src.queue}};
    for (const auto& [stage, v] : stages) {
      const Label l[2] = {{"source", src.name}, {"stage", stage}};
      out.sample(l, v);
    }
  }
  out.family("sip_exporter_decoded_packets_total",
             "Packets decoded down to a transport, by path: udp, tcp, sctp, or ip_fragment (handed to reassembly).",
             MetricKind::counter);
  for (size_t i = 0; i < kPathCount; ++i) one("path", path_name(static_cast<Path>(i)), s.decoded[i]);
  {
    out.family("sip_exporter_parse_errors_total",
               "Payloads that started like SIP but were malformed, by reason; none of them is counted as a message.",
               MetricKind::counter);
    std::vector<std::pair<std::string_view, uint64_t>> rows;
    for (size_t i = 0; i < kParseStatusCount; ++i) {
      const auto st = static_cast<ParseStatus>(i);
      if (is_parse_error(st)) rows.emplace_back(parse_status_reason(st), s.parse_errors[i]);
    }
    std::sort(rows.begin(), rows.end());
    for (const auto& [r, v] : rows) one("reason", r, v);
  }
  {
    out.family("sip_exporter_skipped_packets_total",
               "Packets that reached a worker but yielded no SIP message, by reason (a datagram reassembled from fragments is counted under sip_exporter_decoded_packets_total{path=\"ip_fragment\"} instead, except not_sip).",
               MetricKind::counter);
    std::vector<std::pair<std::string_view, uint64_t>> rows;
    for (size_t i = 0; i < kSkipCount; ++i) {
      const auto r = static_cast<Skip>(i);
      if (r != Skip::none && r != Skip::ip_fragment) rows.emplace_back(skip_reason(r), s.skipped[i]);
    }
    std::sort(rows.begin(), rows.end());
    for (const auto& [r, v] : rows) one("reason", r, v);
  }
  single("sip_exporter_peer_overflow_total",
         "Messages labelled peer=\"other\" because the number of distinct peers reached limits.max_peers.",
         MetricKind::counter, s.peer_overflow);
  single("sip_exporter_series_overflow_total",
         "Counts left out of the SIP counter families (requests, responses, retransmissions, transactions, timeouts, calls) because a worker reached limits.max_series.",
         MetricKind::counter, s.series_overflow);
  single("sip_exporter_peers",
         "Peer label values allocated: \"other\", the peer map's names and the addresses seen, at most limits.max_peers besides \"other\".",
         MetricKind::gauge, s.peers.size());

  out.family("sip_exporter_tcp_segments_total",
             "TCP segments by what stream reassembly did with them: data (in order), retransmission (nothing new), "
             "out_of_order (held), control (no payload).",
             MetricKind::counter);
  for (size_t i = 0; i < kSegmentResultCount; ++i) {
    one("result", segment_result_name(static_cast<SegmentResult>(i)), s.segments[i]);
  }
  out.family("sip_exporter_stream_bytes_total",
             "TCP stream bytes by what they turned out to be: sip, not_sip (skipped while resynchronising), tls "
             "(encrypted, unreadable), lost (never seen, or given up).",
             MetricKind::counter);
  for (size_t i = 0; i < kStreamBytesCount; ++i) {
    one("result", stream_bytes_name(static_cast<StreamBytes>(i)), s.stream_bytes[i]);
  }
  out.family("sip_exporter_reassembly_evictions_total",
             "Reassembly state given up before it produced a message, by kind (ip, tcp, sctp) and reason.",
             MetricKind::counter);
  auto eviction = [&](std::string_view kind, std::string_view reason, uint64_t v) {
    const Label l[2] = {{"kind", kind}, {"reason", reason}};
    out.sample(l, v);
  };
  for (size_t i = 0; i < kFragmentEvictionCount; ++i) {
    eviction("ip", fragment_eviction_name(static_cast<FragmentEviction>(i)), s.ip_evicted[i]);
  }
  for (size_t i = 0; i < kChunkEvictionCount; ++i) {
    eviction("sctp", chunk_eviction_name(static_cast<ChunkEviction>(i)), s.sctp_evicted[i]);
  }
  for (size_t i = 0; i < kStreamEvictionCount; ++i) {
    eviction("tcp", stream_eviction_name(static_cast<StreamEviction>(i)), s.tcp_evicted[i]);
  }
  out.family("sip_exporter_reassembly_entries",
             "Reassembly state held now: IP datagrams in progress, TCP streams, fragmented SCTP messages.",
             MetricKind::gauge);
  one("kind", "ip", s.ip_datagrams);
  one("kind", "sctp", s.sctp_in_progress);
  one("kind", "tcp", s.tcp_streams);
  out.family("sip_exporter_reassembly_buffered_bytes", "Bytes held by reassembly now: IP fragment payloads, TCP buffers.",
             MetricKind::gauge);
  one("kind", "ip", s.ip_buffered);
  one("kind", "tcp", s.tcp_buffered);
  const MetricKind counter = MetricKind::counter, gauge = MetricKind::gauge;
  single("sip_exporter_tls_connections_total",
         "TCP connections recognised as TLS: their SIP, if any, is encrypted and not counted.", counter, s.tls_streams);
  single("sip_exporter_websocket_connections_total", "TCP connections upgraded to WebSocket (RFC 7118).", counter,
         s.websocket_streams);
  single("sip_exporter_ip_fragments_duplicate_total", "IP fragments that repeated one already held, ignored.", counter,
         s.ip_duplicates);
  single("sip_exporter_ip_fragments_dropped_total",
         "IP fragments thrown away with a datagram that could not be reassembled.", counter, s.ip_dropped);
  single("sip_exporter_ip_datagrams_reassembled_total", "IP datagrams completed from fragments.", counter,
         s.ip_reassembled);
  single("sip_exporter_sctp_data_chunks_total", "SCTP DATA and I-DATA chunks seen.", counter, s.sctp_chunks);
  single("sip_exporter_transactions_active", "SIP transactions remembered now (pending, or completed and lingering).",
         gauge, s.transactions_active);
  single("sip_exporter_transactions_evicted_total",
         "SIP transactions forgotten early because the table (limits.transactions) was full.", counter,
         s.transactions_evicted);
  single("sip_exporter_dialogs_active", "Answered calls awaiting their BYE now.", gauge, s.dialogs_active);
  out.family("sip_exporter_dialogs_evicted_total",
             "Answered calls forgotten before their BYE: table_full (limits.dialogs) or timeout "
             "(limits.dialog_timeout_seconds).",
             counter);
  one("reason", "table_full", s.dialogs_full);
  one("reason", "timeout", s.dialogs_expired);
  single("sip_exporter_duplicate_packets_total",
         "Datagrams suppressed as mirror duplicates (an identical packet seen again within limits.duplicate_window_ms).",
         counter, s.duplicates);
  single("sip_exporter_observation_overflow_total",
         "Observations left out of the latency and duration histograms because a worker reached limits.max_histograms.",
         counter, s.histogram_overflow);
}

namespace {

// The text format as prometheus-cpp 1.0.1's TextSerializer writes it: "# HELP" (unless the help
// is empty; the help text is not escaped) and "# TYPE" lines, then one line per sample; label
// values escaped (\ " newline); values as printf("%.16g"), histogram counts as integers, a
// histogram as _count, _sum, then _bucket{...,le="bound"} lines ending with le="+Inf".
//
// Trick: each line (a histogram: its lines) is written through a raw pointer into a scratch
// buffer sized ahead by an upper bound of its length, so the pieces cost no capacity checks, and
// then appended to the output in one piece. The output is only reserved, never zero-filled.
class TextWriter final : public ExpositionSink {
 public:
  // Collects the whole text (finish()), or with a `stream`, writes it there in pieces of about
  // kStreamChunk bytes (drain()): a final exposition of millions of lines then needs neither
  // the memory nor the page faults of one string that large.
  explicit TextWriter(size_t expected, std::FILE* stream = nullptr) : scratch_(4096, '\0'), stream_(stream) {
    out_.reserve(stream_ == nullptr ? expected : kStreamChunk + scratch_.size());
  }

  std::string finish() && { return std::move(out_); }
  // Writes what is left to the stream. False if any write failed.
  bool drain() {
    if (!out_.empty() && std::fwrite(out_.data(), 1, out_.size(), stream_) != out_.size()) failed_ = true;
    out_.clear();
    return !failed_;
  }

  void family(std::string_view name, std::string_view help, MetricKind kind) override {
    name_ = name;
    begin(2 * name.size() + help.size() + 32);
    if (!help.empty()) {
      put("# HELP ");
      put(name);
      put(' ');
      put(help);
      put('\n');
    }
    put("# TYPE ");
    put(name);
    put(kind == MetricKind::counter ? std::string_view(" counter\n")
        : kind == MetricKind::gauge ? std::string_view(" gauge\n")
                                    : std::string_view(" histogram\n"));
    end();
  }

  void sample(std::span<const Label> labels, uint64_t value) override {
    begin(name_.size() + labels_bound(labels) + kNumberBound + 4);
    put(name_);
    if (!labels.empty()) {
      put('{');
      put_labels(labels);
      put('}');
    }
    put(' ');
    put_value(value);
    put('\n');
    end();
  }

  void histogram(std::span<const Label> labels, std::span<const double> upper, const uint64_t* cumulative,
                 double sum) override {
    // The labels are formatted once and copied into every line.
    lbl_.clear();
    for (const Label& l : labels) {
      if (!lbl_.empty()) lbl_ += ',';
      lbl_ += l.name;
      lbl_ += "=\"";
      append_label_value(lbl_, l.value);
      lbl_ += '"';
    }
    const size_t line = name_.size() + lbl_.size() + 2 * kNumberBound + 24;
    begin(line * (upper.size() + 3));
    const uint64_t count = cumulative[upper.size()];
    head("_count", false);
    put_uint(count);
    put('\n');
    head("_sum", false);
    put_double(sum);
    put('\n');
    if (!std::equal(upper.begin(), upper.end(), bounds_of_.begin(), bounds_of_.end())) {  // once a family
      bounds_of_.assign(upper.begin(), upper.end());
      bounds_.clear();
      for (const double u : upper) {
        char buf[kNumberBound];
        bounds_.emplace_back(buf, std::to_chars(buf, buf + kNumberBound, u, std::chars_format::general, 16).ptr);
      }
    }
    for (size_t b = 0; b <= upper.size(); ++b) {
      head("_bucket", true);
      put(b < upper.size() ? std::string_view(bounds_[b]) : std::string_view("+Inf"));
      put("\"} ");
      put_uint(cumulative[b]);
      put('\n');
    }
    end();
  }

 private:
  static constexpr size_t kNumberBound = 32;  // "%.16g" of a double, or a uint64
  static constexpr size_t kStreamChunk = 256 << 10;  // fits in L2 with the rest of the render

  static size_t labels_bound(std::span<const Label> labels) {
    size_t n = 2;
    for (const Label& l : labels) n += l.name.size() + 2 * l.value.size() + 4;
    return n;
  }
  // Starts a piece of at most n bytes; end() appends it to the output.
  void begin(size_t n) {
    if (scratch_.size() < n) scratch_.resize(std::max(scratch_.size() * 2, n));
    p_ = scratch_.data();
  }
  void end() {
    out_.append(scratch_.data(), static_cast<size_t>(p_ - scratch_.data()));
    if (stream_ != nullptr && out_.size() >= kStreamChunk) drain();
  }
  void put(char c) { *p_++ = c; }
  void put(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  // name_ suffix, then the labels' opening: " " if there are none (and no le), else "{...".
  void head(std::string_view suffix, bool le) {
    put(name_);
    put(suffix);
    if (lbl_.empty() && !le) {
      put(' ');
      return;
    }
    put('{');
    put(lbl_);
    if (le) {
      if (!lbl_.empty()) put(',');
      put("le=\"");
    } else {
      put("} ");
    }
  }
  void put_labels(std::span<const Label> labels) {
    bool first = true;
    for (const Label& l : labels) {
      if (!first) put(',');
      first = false;
      put(l.name);
      put("=\"");
      for (const char c : l.value) {
        if (c == '\\' || c == '"') {
          *p_++ = '\\';
          *p_++ = c;
        } else if (c == '\n') {
          *p_++ = '\\';
          *p_++ = 'n';
        } else {
          *p_++ = c;
        }
      }
      put('"');
    }
  }
  void put_uint(uint64_t v) { p_ = std::to_chars(p_, p_ + kNumberBound, v).ptr; }
  // A count as prometheus-cpp prints a counter or gauge: the double it converts to, "%.16g".
  // Below 2^53 that is the integer's own digits (at most 16 of them).
  void put_value(uint64_t v) {
    if (v < (uint64_t{1} << 53)) {
      put_uint(v);
    } else {
      put_double(static_cast<double>(v));
    }
  }
  void put_double(double v) {
    if (std::isnan(v)) {
      put("Nan");
    } else if (std::isinf(v)) {
      put(v < 0 ? "-Inf" : "+Inf");
    } else {
      p_ = std::to_chars(p_, p_ + kNumberBound, v, std::chars_format::general, 16).ptr;
    }
  }

  std::string out_;
  std::string scratch_;
  std::FILE* stream_;
  bool failed_ = false;
  char* p_ = nullptr;
  std::string_view name_;
  std::string lbl_;
  // The bucket bounds last written and their text: the bounds are finite constants of a family,
  // so each is formatted once per render, not once per line.
  std::vector<double> bounds_of_;
  std::vector<std::string> bounds_;
};

}  // namespace

void append_label_value(std::string& out, std::string_view v) {
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

std::string render_text(const Snapshot& s) {
  // About 120 bytes a series line (20 lines a histogram) plus 16 kB of the rest: one allocation
  // in the common case.
  TextWriter w(s.series.size() * 128 + s.histograms.size() * 20 * 140 + 16384);
  expose(s, w);
  return std::move(w).finish();
}

void write_metrics(const SipCollector& c, const std::string& path) {
  const Snapshot snap = c.collect();
  std::FILE* f = path == "-" ? stdout : std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error(path + ": cannot open for writing: " + std::strerror(errno));
  TextWriter w(0, f);
  expose(snap, w);
  bool ok = w.drain();
  ok = std::fflush(f) == 0 && ok;
  if (f != stdout) ok = std::fclose(f) == 0 && ok;
  if (!ok) throw std::runtime_error(path == "-" ? std::string("cannot write metrics to stdout") : path + ": write failed");
}

}  // namespace sipex
