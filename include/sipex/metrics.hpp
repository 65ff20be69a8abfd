// Exposition: a prometheus-cpp Collectable that merges the workers' shards at scrape time
// (DESIGN section 2: Family::Add is never called per packet), and the --metrics.out writer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "sipex/aggregate.hpp"
#include "sipex/capture.hpp"
#include "sipex/worker.hpp"

namespace sipex {

// What the scrape reads. The pointed-to objects must outlive the collector; they are only read.
struct MetricSources {
  std::vector<const Worker*> workers;
  std::vector<const SourceStats*> sources;
  const PeerRegistry* peers = nullptr;
  std::string kernel;  // active SIMD kernel name
};

// Thread-safe: Collect() may run on any thread, concurrently with the workers and with itself.
// Samples are sorted by their label values, so equal counts render as identical text.
class SipCollector : public prometheus::Collectable {
 public:
  explicit SipCollector(MetricSources src) : src_(std::move(src)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  void collect_reassembly(std::vector<prometheus::MetricFamily>& out) const;
  void collect_histograms(std::vector<prometheus::MetricFamily>& out, const std::vector<std::string>& peer_names) const;
  MetricSources src_;
};

// The Prometheus text format of `families`, as /metrics serves it.
std::string render_text(const std::vector<prometheus::MetricFamily>& families);

// Writes render_text(c.Collect()) to `path` ("-" = stdout). Throws std::runtime_error.
void write_metrics(const prometheus::Collectable& c, const std::string& path);

// "1xx".."6xx" for a code in 100..699.
std::string code_class(uint16_t code);

}  // namespace sipex
