// A worker: takes batches from its queue, decodes, parses and counts every packet into its shard,
// and returns the batches to the pool. The only writer of its Shard and PeerResolver.
#pragma once

#include <atomic>

#include "sipex/aggregate.hpp"
#include "sipex/packet.hpp"
#include "sipex/sip_scan.hpp"

namespace sipex {

class Worker {
 public:
  Worker(BatchQueue& in, BatchPool& pool, PeerRegistry& peers, const Config& cfg,
         FindCandidatesFn scan = active_kernel().find_candidates);

  // Processes batches until `producers_done` is set and the queue is empty. Runs on its own thread.
  void run(const std::atomic<bool>& producers_done);
  // Processes one packet (public for tests and benchmarks; the hot path).
  void process(uint16_t linktype, const uint8_t* frame, uint32_t caplen);

  const Shard& shard() const { return shard_; }

 private:
  BatchQueue& in_;
  BatchPool& pool_;
  PeerResolver resolver_;
  FindCandidatesFn scan_;
  Shard shard_;
};

}  // namespace sipex
