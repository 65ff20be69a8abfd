// Capture: libpcap sources (live interfaces through TPACKET_V3 rings, or pcap/pcapng files) and
// the dispatcher that copies packets into per-worker batches.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sipex/packet.hpp"

typedef struct pcap pcap_t;

namespace sipex {

struct CaptureOptions {
  std::vector<std::string> interfaces;
  std::vector<std::string> files;
  unsigned threads_per_interface = 1;
  std::string bpf_filter;          // empty: default_bpf_filter(sip_ports) live, none for files
  bool bpf_filter_set = false;     // --capture.bpf-filter given (applies to files too)
  std::vector<uint16_t> sip_ports{5060, 5061};
  uint64_t buffer_size = 64ull << 20;
  uint32_t snaplen = 65535;
  int timeout_ms = 50;             // TPACKET_V3 block timeout: bounds how stale a batch gets
};

// The default kernel filter: SIP ports over UDP, TCP and SCTP (also behind one IPv6 extension
// header; longer IPv6 header chains pass), IPv4 non-first fragments and IPv6 fragment headers
// (which carry no ports), and the tunnels the decoder opens except GTP-U, each also under one or
// two VLAN tags.
std::string default_bpf_filter(const std::vector<uint16_t>& ports);

// Counters of one capture source (an interface, or a file). Written by its capture thread (and by
// workers never); read by the scrape. Several threads capturing one interface with fanout each
// have their own SourceStats with the same name; the scrape sums them.
struct SourceStats {
  explicit SourceStats(std::string n) : name(std::move(n)) {}
  std::string name;           // the `source` label
  Counter packets;            // handed to the process
  Counter dropped_kernel;     // ring full (pcap_stats ps_drop)
  Counter dropped_interface;  // dropped by the NIC/driver (pcap_stats ps_ifdrop)
  Counter dropped_pool;       // no free batch
  Counter dropped_queue;      // the worker's queue was full
};

// Copies packets into one open batch per worker, choosing the worker by the symmetric outer-IP
// hash, and hands batches over when full or stale. Owned and used by one capture thread.
// Lossless mode (files) waits for a free batch or queue slot; otherwise (live) it drops and counts,
// never blocking the capture thread.
class Dispatcher {
 public:
  Dispatcher(BatchPool& pool, std::vector<BatchQueue*> queues, std::vector<SourceStats*> sources,
             bool lossless, const std::atomic<bool>& stop);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // `source` indexes the vector given at construction.
  void push(uint16_t linktype, uint16_t source, const uint8_t* data, uint32_t caplen, uint32_t wirelen,
            int64_t ts_ns);
  // Hands over every batch opened before `older_than_ns` (monotonic clock); 0 = all non-empty.
  void flush(int64_t older_than_ns = 0);

 private:
  Batch* acquire();
  void hand_over(size_t worker);

  BatchPool& pool_;
  std::vector<BatchQueue*> queues_;
  std::vector<SourceStats*> sources_;
  bool lossless_;
  const std::atomic<bool>& stop_;
  std::vector<Batch*> open_;
  moodycamel::ConsumerToken pool_tok_;
  moodycamel::ProducerToken pool_ptok_;  // returns batches dropped on a full queue
  std::vector<std::unique_ptr<moodycamel::ProducerToken>> queue_toks_;
};

int64_t monotonic_ns();

// One pcap handle. Not thread-safe except break_loop(), which any thread may call.
class PcapSource {
 public:
  // Opens a live interface (promiscuous, TPACKET_V3, buffer and snap length from `o`, kernel
  // filter) and joins fanout group `fanout_group` if it is >= 0. Throws std::runtime_error with a
  // one-line message.
  static std::unique_ptr<PcapSource> open_live(const std::string& ifname, const CaptureOptions& o,
                                               int fanout_group);
  // Opens a pcap or pcapng file with nanosecond timestamps. Throws std::runtime_error.
  static std::unique_ptr<PcapSource> open_file(const std::string& path, const CaptureOptions& o);
  ~PcapSource();

  // Reads until the end of the file, or until `stop` for a live source, pushing every packet to
  // `d` as source `source_index`. Returns "" or a one-line error (a file that breaks mid-way: the
  // packets before the break were delivered and counted).
  std::string run(Dispatcher& d, uint16_t source_index, SourceStats& stats, const std::atomic<bool>& stop);
  void break_loop();
  bool live() const { return live_; }
  const std::string& name() const { return name_; }
  int linktype() const { return linktype_; }

 private:
  PcapSource(pcap_t* p, std::string name, bool live, int timeout_ms);
  void poll_stats(SourceStats& stats);

  pcap_t* p_;
  std::string name_;
  bool live_;
  int linktype_;
  int timeout_ms_;
  uint32_t last_drop_ = 0, last_ifdrop_ = 0;
  std::unique_ptr<char[]> read_buffer_;  // a file's stdio buffer; freed after pcap_close (member order)
};

}  // namespace sipex
