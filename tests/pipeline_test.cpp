// The hand-off from capture to workers: batches, pool and queue bounds, drop accounting, draining.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "frames.hpp"
#include "sipex/capture.hpp"
#include "sipex/worker.hpp"

namespace sipex {
namespace {

using namespace test;

const Bytes kFrame = ethernet(0x0800, ipv4("192.0.2.1", "198.51.100.2", 17, udp(5060, 5060, "OPTIONS sip:h SIP/2.0\r\n\r\n")));

void push(Dispatcher& d, size_t n) {
  for (size_t i = 0; i < n; ++i) d.push(1, 0, kFrame.data(), static_cast<uint32_t>(kFrame.size()), static_cast<uint32_t>(kFrame.size()), 0);
}

size_t drain(BatchQueue& q, BatchPool& pool) {
  moodycamel::ProducerToken tok(pool.queue());
  size_t packets = 0;
  Batch* b = nullptr;
  while (q.try_dequeue(b)) {
    packets += b->count;
    pool.give_back(b, tok);
  }
  return packets;
}

TEST(DispatcherTest, live_mode_drops_and_counts_when_the_pool_is_empty) {
  BatchPool pool(4, 2);
  BatchQueue q(64, 1, 0);
  SourceStats stats("lo");
  std::atomic<bool> stop{false};
  Dispatcher d(pool, {&q}, {&stats}, /*lossless=*/false, stop);
  const size_t n = 10 * kBatchPackets;  // 10 batches' worth into a pool of 4, nobody consuming
  push(d, n);
  d.flush();
  const size_t delivered = drain(q, pool);
  EXPECT_EQ(delivered, 4 * kBatchPackets);
  EXPECT_EQ(stats.dropped_pool.get(), n - delivered);
  EXPECT_EQ(stats.dropped_queue.get(), 0u);
}

TEST(DispatcherTest, live_mode_drops_and_counts_when_the_queue_is_full) {
  BatchPool pool(200, 2);
  BatchQueue q(1, 1, 0);  // moodycamel rounds this up to one block; far fewer slots than batches
  SourceStats stats("lo");
  std::atomic<bool> stop{false};
  Dispatcher d(pool, {&q}, {&stats}, false, stop);
  const size_t n = 150 * kBatchPackets;
  push(d, n);
  d.flush();
  const size_t delivered = drain(q, pool);
  EXPECT_GT(stats.dropped_queue.get(), 0u);
  EXPECT_EQ(delivered + stats.dropped_queue.get() + stats.dropped_pool.get(), n);
  EXPECT_EQ(pool.queue().size_approx(), pool.size()) << "every batch is back in the pool";
}

TEST(DispatcherTest, lossless_mode_waits_for_the_worker_instead_of_dropping) {
  BatchPool pool(2, 2);
  BatchQueue q(64, 1, 0);
  SourceStats stats("file");
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  std::atomic<size_t> received{0};
  std::thread consumer([&] {
    moodycamel::ProducerToken tok(pool.queue());
    Batch* b = nullptr;
    while (!done.load() || q.size_approx() > 0) {
      if (q.try_dequeue(b)) {
        received += b->count;
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // a slow worker
        pool.give_back(b, tok);
      }
    }
  });
  Dispatcher d(pool, {&q}, {&stats}, /*lossless=*/true, stop);
  const size_t n = 20 * kBatchPackets + 7;
  push(d, n);
  d.flush();
  done = true;
  consumer.join();
  EXPECT_EQ(received.load(), n);
  EXPECT_EQ(stats.dropped_pool.get() + stats.dropped_queue.get(), 0u);
}

TEST(DispatcherTest, flows_stick_to_one_worker_in_both_directions) {
  BatchPool pool(16, 4);
  BatchQueue q0(16, 1, 0), q1(16, 1, 0), q2(16, 1, 0);
  SourceStats stats("x");
  std::atomic<bool> stop{false};
  Dispatcher d(pool, {&q0, &q1, &q2}, {&stats}, false, stop);
  const Bytes ab = ethernet(0x0800, ipv4("192.0.2.1", "198.51.100.2", 17, udp(1, 2, "a")));
  const Bytes ba = ethernet(0x0800, ipv4("198.51.100.2", "192.0.2.1", 17, udp(2, 1, "b")));
  for (int i = 0; i < 10; ++i) {
    d.push(1, 0, ab.data(), static_cast<uint32_t>(ab.size()), static_cast<uint32_t>(ab.size()), 0);
    d.push(1, 0, ba.data(), static_cast<uint32_t>(ba.size()), static_cast<uint32_t>(ba.size()), 0);
  }
  d.flush();
  EXPECT_EQ((drain(q0, pool) == 20) + (drain(q1, pool) == 20) + (drain(q2, pool) == 20), 1);
}

class WorkerRunTest : public ::testing::TestWithParam<Worker::GiveBack> {};

// Five times the pool's batches go through it, so the reader waits on the pool again and again
// and every batch comes back, in either give-back mode, emptied for its next use.
TEST_P(WorkerRunTest, run_drains_the_queue_then_returns_and_gives_batches_back) {
  Config cfg;
  PeerRegistry peers(cfg);
  BatchPool pool(8, 2);
  BatchQueue q(8, 1, 0);
  Worker w(q, pool, peers, cfg);
  std::atomic<bool> producers_done{false};
  std::thread t([&] { w.run(producers_done, GetParam()); });
  SourceStats stats("x");
  std::atomic<bool> stop{false};
  {
    Dispatcher d(pool, {&q}, {&stats}, true, stop);
    push(d, 5 * 8 * kBatchPackets + 1);
    d.flush();
  }
  q.enqueue(nullptr);  // a wake-up, as Pipeline::stop() sends: skipped, not processed
  producers_done.store(true, std::memory_order_release);
  t.join();
  uint64_t total = 0;
  w.shard().series.for_each([&](uint64_t k, uint64_t c) {
    if (series_fields(k).family == Family::messages) total += c;
  });
  EXPECT_EQ(total, 5 * 8 * kBatchPackets + 1);
  EXPECT_EQ(stats.dropped_pool.get() + stats.dropped_queue.get(), 0u);
  EXPECT_EQ(pool.queue().size_approx(), pool.size());
}

INSTANTIATE_TEST_SUITE_P(GiveBack, WorkerRunTest,
                         ::testing::Values(Worker::GiveBack::per_batch, Worker::GiveBack::per_dequeue),
                         [](const auto& info) {
                           return info.param == Worker::GiveBack::per_batch ? std::string("per_batch")
                                                                            : std::string("per_dequeue");
                         });

}  // namespace
}  // namespace sipex
