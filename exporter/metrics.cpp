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
  for (const Shard* s : src_.shards) {
    s->series.for_each([&](uint64_t k, uint64_t c) { merged[k] += c; });
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

  uint64_t parse_errors[kParseStatusCount] = {};
  uint64_t skipped[kSkipCount] = {};
  uint64_t peer_overflow = 0, series_overflow = 0;
  for (const Shard* s : src_.shards) {
    for (size_t i = 0; i < kParseStatusCount; ++i) parse_errors[i] += s->parse_errors[i].get();
    for (size_t i = 0; i < kSkipCount; ++i) skipped[i] += s->skipped[i].get();
    peer_overflow += s->peer_overflow.get();
    series_overflow += s->series_overflow.get();
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
    for (size_t i = 1; i < kSkipCount; ++i) rows.emplace_back(skip_reason(static_cast<Skip>(i)), skipped[i]);
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
  return out;
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
