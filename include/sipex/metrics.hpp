// Exposition (DESIGN section 2): at scrape time SipCollector merges the workers' shards into a
// Snapshot, the one collection step, which also puts every sample in output order; expose()
// walks a Snapshot family by family, sample by sample, into an ExpositionSink; render_text()
// is the sink that writes the Prometheus text format (0.0.4) into one string, byte for byte what
// prometheus-cpp 1.0.1's TextSerializer writes for the same families. Label strings exist only
// here, and only as views while a sample is written.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sipex/aggregate.hpp"
#include "sipex/capture.hpp"
#include "sipex/worker.hpp"

namespace sipex {

// What the scrape reads. The pointed-to objects must outlive the collector and every Snapshot it
// returns; they are only read.
struct MetricSources {
  std::vector<const Worker*> workers;
  std::vector<const SourceStats*> sources;
  const PeerRegistry* peers = nullptr;
  std::string kernel;  // active SIMD kernel name
};

// The merged state of every source at one instant. Plain numbers but for the label text it views
// (peer names in the PeerRegistry, source names in the SourceStats): valid while those live. The
// kernel name is a copy, so a Snapshot may outlive the collector that made it.
struct Snapshot {
  // One series of the SIP counter families (requests, responses, retransmissions, transactions,
  // timeouts, calls), summed over workers. `order` is the output position: family, then the
  // label texts peer, direction, method, then code / kind / outcome, as ranks.
  struct Series {
    uint64_t order;
    uint64_t key;  // series_key()
    uint64_t count;
  };
  // One histogram series, summed over workers; `order` as for Series (peer, direction, method,
  // stage).
  struct Histogram {
    uint64_t order;
    uint64_t key;  // HistogramTable::key()
    uint64_t sum_ns;
    uint64_t counts[kMaxBuckets + 1];  // per bucket, not cumulative; [kMaxBuckets] is +Inf
  };
  struct Source {
    std::string_view name;
    uint64_t packets, kernel, interface, pool, queue;
  };
  std::vector<Series> series;        // sorted by order, one entry per key
  std::vector<Histogram> histograms; // sorted by order, one entry per key
  std::span<const std::string> peers;  // label values by PeerId; every id in a key is inside
  std::string kernel;
  std::vector<Source> sources;       // sorted by name; capture threads sharing a name summed

  uint64_t decoded[kPathCount] = {};
  uint64_t skipped[kSkipCount] = {};
  uint64_t parse_errors[kParseStatusCount] = {};
  uint64_t peer_overflow = 0, series_overflow = 0, histogram_overflow = 0, duplicates = 0;

  uint64_t segments[kSegmentResultCount] = {}, stream_bytes[kStreamBytesCount] = {};
  uint64_t tcp_evicted[kStreamEvictionCount] = {}, ip_evicted[kFragmentEvictionCount] = {},
           sctp_evicted[kChunkEvictionCount] = {};
  uint64_t tls_streams = 0, websocket_streams = 0, ip_reassembled = 0, ip_duplicates = 0, ip_dropped = 0,
           sctp_chunks = 0;
  uint64_t tcp_streams = 0, tcp_buffered = 0, ip_datagrams = 0, ip_buffered = 0, sctp_in_progress = 0;
  uint64_t transactions_active = 0, transactions_evicted = 0, dialogs_active = 0, dialogs_full = 0,
           dialogs_expired = 0;
};

// Sorts `rows` by their `order` member (a uint64_t), stably: rows of one order keep their
// relative order. LSD radix sort, one counting pass over the bytes of `order` in which the rows
// differ (a collect's orders differ in at most six): O(n) a byte against std::sort's O(n log n)
// comparisons, which were half of collecting 180,000 series. Allocates one scratch array of n rows.
template <class Row>
void sort_by_order(std::vector<Row>& rows) {
  const size_t n = rows.size();
  if (n < 2) return;
  std::array<std::array<uint32_t, 256>, 8> counts{};
  for (const Row& r : rows) {
    for (unsigned b = 0; b < 8; ++b) ++counts[b][r.order >> 8 * b & 0xFF];
  }
  std::vector<Row> scratch(n);
  Row* src = rows.data();
  Row* dst = scratch.data();
  for (unsigned b = 0; b < 8; ++b) {
    std::array<uint32_t, 256>& c = counts[b];
    if (c[rows.front().order >> 8 * b & 0xFF] == n) continue;  // every row has this byte
    uint32_t at = 0;
    for (uint32_t& k : c) at += std::exchange(k, at);
    for (size_t i = 0; i < n; ++i) dst[c[src[i].order >> 8 * b & 0xFF]++] = src[i];
    std::swap(src, dst);
  }
  if (src != rows.data()) rows.swap(scratch);
}

// Merges the sources' counters. Thread-safe: collect() may run on any thread, concurrently with
// the workers (it reads their shards with atomic loads and takes no lock they take) and with
// itself. Costs O(series + peers), allocates only the Snapshot.
class SipCollector {
 public:
  explicit SipCollector(MetricSources src) : src_(std::move(src)) {}
  Snapshot collect() const;

 private:
  MetricSources src_;
};

// One label of a sample; the views are valid during the call they are passed in.
struct Label {
  std::string_view name;
  std::string_view value;
};
enum class MetricKind : uint8_t { counter, gauge, histogram };

// Receives expose()'s output: each family, then its samples, in output order.
class ExpositionSink {
 public:
  virtual ~ExpositionSink() = default;
  virtual void family(std::string_view name, std::string_view help, MetricKind kind) = 0;
  // A sample of a counter or gauge family (every value this exporter has is a count).
  virtual void sample(std::span<const Label> labels, uint64_t value) = 0;
  // A sample of a histogram family: `cumulative` has one count per `upper` bound and then the
  // +Inf bucket's, which is the sample count.
  virtual void histogram(std::span<const Label> labels, std::span<const double> upper, const uint64_t* cumulative,
                         double sum) = 0;
};

// Writes every family of `s` to `out`: the SIP families, then the exporter's own.
void expose(const Snapshot& s, ExpositionSink& out);

// The Prometheus text format of `s`, as /metrics serves it.
std::string render_text(const Snapshot& s);

// Appends `v` as a label value is written inside the quotes: \ " and newline escaped.
void append_label_value(std::string& out, std::string_view v);

// Writes render_text(c.collect()) to `path` ("-" = stdout). Throws std::runtime_error.
void write_metrics(const SipCollector& c, const std::string& path);

// "1xx".."6xx" for a code in 100..699.
std::string code_class(uint16_t code);

}  // namespace sipex
