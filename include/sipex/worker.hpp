// A worker: takes batches from its queue and, for every packet, decodes it, reassembles what
// needs reassembly (IP fragments, TCP streams, fragmented SCTP messages), parses SIP and counts
// into its shard; then returns the batches to the pool. The only writer of everything it owns.
#pragma once

#include <atomic>

#include "sipex/aggregate.hpp"
#include "sipex/dedup.hpp"
#include "sipex/ip_reassembly.hpp"
#include "sipex/message_sink.hpp"
#include "sipex/packet.hpp"
#include "sipex/sctp.hpp"
#include "sipex/sip_scan.hpp"
#include "sipex/tcp_reassembly.hpp"
#include "sipex/transactions.hpp"

namespace sipex {

class Worker final : private MessageSink {
 public:
  Worker(BatchQueue& in, BatchPool& pool, PeerRegistry& peers, const Config& cfg,
         const ScanKernel& scan = active_kernel());

  // Processes batches until `producers_done` is set and the queue is empty. Runs on its own thread.
  void run(const std::atomic<bool>& producers_done);
  // Processes one packet captured at ts_ns (public for tests and benchmarks; the hot path).
  void process(uint16_t linktype, const uint8_t* frame, uint32_t caplen, int64_t ts_ns = 0);

  const Shard& shard() const { return shard_; }
  // Advances while run() loops, busy or idle: a stuck worker stops it.
  uint64_t heartbeat() const { return heartbeat_.get(); }
  const IpReassemblyStats& ip_stats() const { return ip_.stats(); }
  const TcpStats& tcp_stats() const { return tcp_.stats(); }
  const SctpStats& sctp_stats() const { return sctp_.stats(); }
  const TransactionStats& transaction_stats() const { return txn_.stats(); }

 private:
  void message(const SipMessage& m, const IpAddr& src, const IpAddr& dst, int64_t ts_ns) override;
  void parse_error(ParseStatus s) override;
  void expire(int64_t ts_ns);

  BatchQueue& in_;
  BatchPool& pool_;
  PeerResolver resolver_;
  const ScanKernel& scan_;
  Shard shard_;
  IpReassembler ip_;
  TcpReassembler tcp_;
  SctpReassembler sctp_;
  TransactionTracker txn_;
  DuplicateFilter dedup_;
  int64_t next_expiry_ = 0;
  Counter heartbeat_;
};

}  // namespace sipex
