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

  // When processed batches go back to the pool. per_batch: each at once, so a live capture
  // thread, which never waits for the pool, has every free batch to fill. per_dequeue: together,
  // after the up to kDequeueBulk batches taken from the queue at once are all processed, for a
  // reader that sleeps in BatchPool::take_wait() while the pool is empty (files): it is then woken
  // once a group instead of once a batch (each wake is a futex call and, on a VM, an
  // inter-processor interrupt; per batch they were 12% of the mixed replay's perf samples).
  enum class GiveBack : uint8_t { per_batch, per_dequeue };
  static constexpr size_t kDequeueBulk = 16;
  // Processes batches until `producers_done` is set and the queue is empty. Runs on its own thread.
  // A nullptr in the queue is no batch: it only wakes the worker to look at `producers_done`.
  void run(const std::atomic<bool>& producers_done, GiveBack give_back = GiveBack::per_batch);
  // Processes one packet captured at ts_ns: everything it leads to is counted on return (public
  // for tests and benchmarks).
  void process(uint16_t linktype, const uint8_t* frame, uint32_t caplen, int64_t ts_ns = 0);
  // Processes a batch's packets in order, as process() would one by one, with the same counts on
  // return; in between, the UDP messages' table lookups overlap (see stage()). The hot path.
  void process_batch(const Batch& b);

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
  // process() up to the counting of a parsed UDP message, which waits in window_ (its views
  // point into the packet, so the window is flushed before the packet's batch is given back).
  // Staging a message prefetches its series and transaction index slots, and the entries of the
  // message staged kEntryLag before it: by the time flush() counts them, most lookups hit the
  // cache instead of waiting for memory one after another.
  void stage(uint16_t linktype, const uint8_t* frame, uint32_t caplen, int64_t ts_ns);
  // Counts the staged messages in order. Called when the window is full, at the end of a batch,
  // and before anything that counts by another way (TCP, SCTP, expiry), so the order of
  // messages seen by the transaction tracker is the capture order.
  void flush();

  struct Staged {
    SipMessage m;
    IpAddr src, dst;
    int64_t ts_ns;
    PeerResolver::Attribution at;
    uint64_t series_key;
    uint64_t txn_hint;
  };
  static constexpr size_t kWindow = 32;
  static constexpr size_t kEntryLag = 8;

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
  bool batching_ = false;  // inside process_batch(): stage() prefetches
  size_t staged_ = 0;
  Staged window_[kWindow];
};

}  // namespace sipex
