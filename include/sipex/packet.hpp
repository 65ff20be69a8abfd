// Packet batches and the pool they come from: the unit that travels from capture to worker.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <concurrentqueue/blockingconcurrentqueue.h>
#include <concurrentqueue/concurrentqueue.h>

namespace sipex {

// Capacity of one batch. A queue operation costs about as much as parsing a message, so packets
// move in batches (DESIGN section 2). kBatchBytes bounds the bytes copied into one batch; the
// largest snap length accepted is kMaxSnaplen, so any single packet fits an empty batch.
inline constexpr uint32_t kBatchPackets = 256;
inline constexpr uint32_t kBatchBytes = 256 * 1024;
inline constexpr uint32_t kMaxSnaplen = 262144;

// One captured packet inside a batch. `offset` indexes Batch::data.
struct PacketRef {
  uint32_t offset;
  uint32_t caplen;   // bytes present
  uint32_t wirelen;  // bytes on the wire
  uint16_t linktype; // DLT_* of the source
  uint16_t source;   // index of the capture source (interface or file)
  int64_t ts_ns;     // capture time, ns since the epoch
};

// A fixed-size batch. Not thread-safe: owned by exactly one thread at a time, handed over through
// the queues (the queue's release/acquire makes the contents visible to the receiver).
struct Batch {
  uint32_t count = 0;
  uint32_t used = 0;
  int64_t opened_ns = 0;  // when the first packet went in (capture clock), for time-based flushes
  PacketRef pkts[kBatchPackets];
  alignas(64) uint8_t data[kBatchBytes];

  bool fits(uint32_t caplen) const { return count < kBatchPackets && kBatchBytes - used >= caplen; }
  // Precondition: fits(caplen).
  void append(const uint8_t* bytes, uint32_t caplen, uint32_t wirelen, uint16_t linktype,
              uint16_t source, int64_t ts_ns);
  const uint8_t* bytes(const PacketRef& p) const { return data + p.offset; }
  void clear() { count = used = 0; opened_ns = 0; }
};

// A fixed set of batches allocated once. Thread-safe: any thread may take or give back.
// try_take() never allocates and returns nullptr when every batch is in use; take_wait() sleeps
// on the pool's semaphore until a batch comes back or the timeout passes (for readers that must
// not lose packets, and must not burn a core a worker could use while they wait).
class BatchPool {
 public:
  // `producers` is the number of threads that may call give_back() (each with its own token).
  BatchPool(size_t batches, size_t producers);
  BatchPool(const BatchPool&) = delete;
  BatchPool& operator=(const BatchPool&) = delete;

  Batch* try_take(moodycamel::ConsumerToken& tok);
  Batch* take_wait(moodycamel::ConsumerToken& tok, int64_t timeout_us);
  void give_back(Batch* b, moodycamel::ProducerToken& tok);
  // Gives back n batches at once: one signal of the pool's semaphore, so a reader waiting on
  // take_wait() is woken once for all of them.
  void give_back(Batch* const* b, size_t n, moodycamel::ProducerToken& tok);
  size_t size() const { return size_; }
  moodycamel::BlockingConcurrentQueue<Batch*>& queue() { return free_; }

 private:
  size_t size_;
  std::unique_ptr<Batch[]> storage_;
  moodycamel::BlockingConcurrentQueue<Batch*> free_;
};

// Queue of full batches from capture threads to one worker. Bounded: try_enqueue never allocates.
// Blocking, so an idle worker sleeps on its semaphore instead of polling; an enqueue costs one
// more atomic per batch.
using BatchQueue = moodycamel::BlockingConcurrentQueue<Batch*>;

// Single-writer counter read by other threads (the scrape). Increments are a plain load and store:
// only the owning thread may call bump(); any thread may call get().
class Counter {
 public:
  void bump(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace sipex
