#include "sipex/worker.hpp"

#include <chrono>
#include <thread>

#include "sipex/decode.hpp"
#include "sipex/sip_parse.hpp"

namespace sipex {

Worker::Worker(BatchQueue& in, BatchPool& pool, PeerRegistry& peers, const Config& cfg, FindCandidatesFn scan)
    : in_(in), pool_(pool), resolver_(peers, cfg), scan_(scan), shard_(cfg.max_series) {}

void Worker::process(uint16_t linktype, const uint8_t* frame, uint32_t caplen) {
  Decoded d;
  const Skip s = decode_frame(linktype, frame, caplen, d);
  if (s != Skip::none) {
    shard_.skipped[static_cast<size_t>(s)].bump();
    return;
  }
  SipMessage m;
  const ParseStatus st =
      parse_sip(reinterpret_cast<const char*>(d.payload), d.payload_len, Framing::datagram, m, scan_);
  if (st == ParseStatus::ok) {
    shard_.count(m, resolver_.attribute(d.src, d.dst));
  } else if (st == ParseStatus::not_sip) {
    shard_.skipped[static_cast<size_t>(Skip::not_sip)].bump();
  } else {
    shard_.parse_errors[static_cast<size_t>(st)].bump();
  }
}

void Worker::run(const std::atomic<bool>& producers_done) {
  moodycamel::ConsumerToken ctok(in_);
  moodycamel::ProducerToken ptok(pool_.queue());
  Batch* batches[16];
  unsigned idle = 0;
  for (;;) {
    // Read the flag before trying the queue: if it was set, everything was enqueued before it.
    const bool done = producers_done.load(std::memory_order_acquire);
    const size_t n = in_.try_dequeue_bulk(ctok, batches, 16);
    if (n == 0) {
      if (done && in_.size_approx() == 0) return;
      // Idle: spin briefly, then sleep; counting needs throughput, not microsecond latency.
      if (++idle < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
      continue;
    }
    idle = 0;
    for (size_t i = 0; i < n; ++i) {
      Batch* b = batches[i];
      for (uint32_t j = 0; j < b->count; ++j) {
        const PacketRef& p = b->pkts[j];
        process(p.linktype, b->bytes(p), p.caplen);
      }
      pool_.give_back(b, ptok);
    }
  }
}

}  // namespace sipex
