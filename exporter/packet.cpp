#include "sipex/packet.hpp"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace sipex {

void Batch::append(const uint8_t* bytes, uint32_t caplen, uint32_t wirelen, uint16_t linktype,
                   uint16_t source, int64_t ts_ns) {
  PacketRef& p = pkts[count++];
  p.offset = used;
  p.caplen = caplen;
  p.wirelen = wirelen;
  p.linktype = linktype;
  p.source = source;
  p.ts_ns = ts_ns;
  std::memcpy(data + used, bytes, caplen);
  used += caplen;
}

// moodycamel sizes its block pool so that `producers` explicit producers can together hold
// `batches` items without allocating (see its constructor's documentation).
BatchPool::BatchPool(size_t batches, size_t producers)
    : size_(batches), storage_(new Batch[batches]), free_(batches, producers + 1, 0) {
  moodycamel::ProducerToken tok(free_);
  for (size_t i = 0; i < batches; ++i) {
    if (!free_.try_enqueue(tok, &storage_[i])) throw std::runtime_error("batch pool: queue too small");
  }
}

Batch* BatchPool::try_take(moodycamel::ConsumerToken& tok) {
  Batch* b = nullptr;
  return free_.try_dequeue(tok, b) ? b : nullptr;
}

Batch* BatchPool::take_wait(moodycamel::ConsumerToken& tok, int64_t timeout_us) {
  Batch* b = nullptr;
  return free_.wait_dequeue_timed(tok, b, timeout_us) ? b : nullptr;
}

void BatchPool::give_back(Batch* b, moodycamel::ProducerToken& tok) { give_back(&b, 1, tok); }

void BatchPool::give_back(Batch* const* b, size_t n, moodycamel::ProducerToken& tok) {
  // A token of this pool's queue is never empty; saying so also keeps GCC 12 from warning
  // (-Wstringop-overflow) about an atomic load through the null producer of an empty one.
  if (!tok.valid()) std::abort();
  for (size_t i = 0; i < n; ++i) b[i]->clear();
  // Cannot fail: the pool never holds more than `size_` items and was sized for that per producer.
  if (!free_.try_enqueue_bulk(tok, b, n)) free_.enqueue_bulk(tok, b, n);
}

}  // namespace sipex
