#include "sipex/metrics.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
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

std::vector<MetricFamily> SipCollector::Collect() const {
  // Merge the shards: series keys are the same in every shard.
  std::map<uint64_t, uint64_t> merged;
  for (const Worker* w : src_.workers) {
    w->shard().series.for_each([&](uint64_t k, uint64_t c) { merged[k] += c; });
  }
  const std::vector<std::string> peer_names = src_.peers->names();
  auto peer_name = [&](PeerId id) -> const std::string& {
    static const std::string unknown = "other";
    return id < peer_names.size() ? peer_names[id] : unknown;
  };

  // Sort by label text so the output does not depend on which worker saw a peer first.
  using ReqKey = std::tuple<std::string, std::string_view, std::string_view>;  // peer, direction, method
  using RespKey = std::tuple<std::string, std::string_view, std::string_view, uint16_t>;
  std::map<ReqKey, uint64_t> req;
  std::map<RespKey, uint64_t> resp;
  for (const auto& [k, c] : merged) {
    const SeriesFields f = series_fields(k);
    if (f.code == 0) {
      req[{peer_name(f.peer), direction_name(f.direction), method_name(f.method)}] += c;
    } else {
      resp[{peer_name(f.peer), direction_name(f.direction), method_name(f.method), f.code}] += c;
    }
  }

  std::vector<MetricFamily> out;
  {
    MetricFamily f = family("sip_requests_total",
                            "SIP request messages seen, by request-line method, peer and direction.",
                            MetricType::Counter);
    for (const auto& [k, c] : req) {
      add_sample(f, {{"method", std::string(std::get<2>(k))}, {"peer", std::get<0>(k)},
                     {"direction", std::string(std::get<1>(k))}},
                 static_cast<double>(c));
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("sip_responses_total",
                            "SIP response messages seen, by status code, class, CSeq method, peer and direction.",
                            MetricType::Counter);
    for (const auto& [k, c] : resp) {
      const uint16_t code = std::get<3>(k);
      add_sample(f, {{"code", std::to_string(code)}, {"class", code_class(code)},
                     {"method", std::string(std::get<2>(k))}, {"peer", std::get<0>(k)},
                     {"direction", std::string(std::get<1>(k))}},
                 static_cast<double>(c));
    }
    out.push_back(std::move(f));
  }
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
                            "Packets that reached a worker but yielded no SIP message, by reason.",
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
                            "Messages left out of sip_requests_total and sip_responses_total because a worker reached limits.max_series.",
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
