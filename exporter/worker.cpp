#include "sipex/worker.hpp"

#include <algorithm>

#include "sipex/decode.hpp"
#include "sipex/sip_parse.hpp"

namespace sipex {

namespace {
constexpr int64_t kExpiryPeriodNs = 1'000'000'000;  // reassembly timeouts are checked once a second of packet time
constexpr int64_t kIdleWakeUs = 10'000;              // an idle worker wakes 100 times a second
}

Worker::Worker(BatchQueue& in, BatchPool& pool, PeerRegistry& peers, const Config& cfg, const ScanKernel& scan)
    : in_(in),
      pool_(pool),
      resolver_(peers, cfg),
      scan_(scan),
      shard_(cfg.max_series, cfg.max_histograms),
      ip_(cfg.fragments),
      tcp_(cfg.tcp, *this, scan),
      sctp_(cfg.sctp, *this, scan),
      txn_(cfg.transactions, shard_, resolver_),
      dedup_(cfg.duplicate_window_ns) {}

void Worker::message(const SipMessage& m, const IpAddr& src, const IpAddr& dst, int64_t ts_ns) {
  const PeerResolver::Attribution at = resolver_.attribute(src, dst);
  shard_.count(m, at);
  txn_.message(m, at, src, dst, ts_ns);
}

void Worker::parse_error(ParseStatus s) { shard_.parse_errors[static_cast<size_t>(s)].bump(); }

void Worker::expire(int64_t ts_ns) {
  ip_.expire(ts_ns);
  tcp_.expire(ts_ns);
  sctp_.expire(ts_ns);
  txn_.expire(ts_ns);
  next_expiry_ = ts_ns + kExpiryPeriodNs;
}

void Worker::process(uint16_t linktype, const uint8_t* frame, uint32_t caplen, int64_t ts_ns) {
  stage(linktype, frame, caplen, ts_ns);
  flush();
}

void Worker::process_batch(const Batch& b) {
  batching_ = true;
  for (uint32_t j = 0; j < b.count; ++j) {
    const PacketRef& p = b.pkts[j];
    stage(p.linktype, b.bytes(p), p.caplen, p.ts_ns);
  }
  flush();
  batching_ = false;
}

void Worker::flush() {
  if (batching_) {
    // The last few staged had no later message to fetch their entries.
    for (size_t i = staged_ > kEntryLag ? staged_ - kEntryLag : 0; i < staged_; ++i) {
      shard_.series.prefetch(window_[i].series_key, 1);
      txn_.prefetch(window_[i].txn_hint, 1);
    }
  }
  for (size_t i = 0; i < staged_; ++i) {
    Staged& q = window_[i];
    shard_.count(q.series_key, q.at);
    txn_.message(q.m, q.at, q.src, q.dst, q.ts_ns, batching_ ? q.txn_hint : 0);
  }
  staged_ = 0;
}

void Worker::stage(uint16_t linktype, const uint8_t* frame, uint32_t caplen, int64_t ts_ns) {
  if (ts_ns >= next_expiry_) {
    flush();
    expire(ts_ns);
  }
  Decoded d;
  Skip s = decode_frame(linktype, frame, caplen, d);
  // A completed datagram is decoded again from its transport, which may hold a tunnel with
  // fragments of its own; kMaxEncapsulation bounds the rounds.
  if (s == Skip::ip_fragment) shard_.decoded[static_cast<size_t>(Path::ip_fragment)].bump();
  const bool from_wire = s != Skip::ip_fragment;  // a reassembled datagram is not a packet
  for (unsigned round = 0; s == Skip::ip_fragment; ++round) {
    if (round > kMaxEncapsulation) {
      s = Skip::malformed;
      break;
    }
    const IpReassembler::Datagram dg = ip_.add(d.fragment, ts_ns);
    if (!dg) return;  // held for later fragments, or dropped: the reassembler counts it
    const IpFragment f = d.fragment;
    s = decode_transport(f.version, f.protocol, f.src, f.dst, dg.data, dg.len, d.encapsulations, d);
  }
  if (s != Skip::none) {
    // Its fragments were counted under path ip_fragment already: one count per wire packet.
    if (from_wire) shard_.skipped[static_cast<size_t>(s)].bump();
    return;
  }
  const Path path = d.ip_protocol == 6 ? Path::tcp : d.ip_protocol == 132 ? Path::sctp : Path::udp;
  if (from_wire) shard_.decoded[static_cast<size_t>(path)].bump();
  // TCP needs no filter: a copied segment is a retransmission to stream reassembly.
  if (path != Path::tcp && dedup_.enabled() && dedup_.duplicate(d, ts_ns)) {
    shard_.duplicates.bump();
    return;
  }
  if (path == Path::tcp) {
    flush();
    tcp_.segment(d, ts_ns);
    return;
  }
  if (path == Path::sctp) {
    flush();
    sctp_.packet(d, ts_ns);
    return;
  }
  Staged* q = &window_[staged_];
  const ParseStatus st =
      parse_sip(reinterpret_cast<const char*>(d.payload), d.payload_len, Framing::datagram, q->m, scan_);
  if (st == ParseStatus::ok) {
    q->src = d.src;
    q->dst = d.dst;
    q->ts_ns = ts_ns;
    // A message that gives an address its peer id waits until the staged ones are counted: the
    // transaction tracker may register addresses for them (an unmatched response's requester),
    // and ids go in order of first sight.
    if (!resolver_.attribute_if_registered(d.src, d.dst, &q->at)) {
      flush();  // counts window_[0, staged_): *q lies beyond
      if (q != &window_[0]) {
        window_[0] = *q;
        q = &window_[0];
      }
      q->at = resolver_.attribute(d.src, d.dst);
    }
    q->series_key = Shard::message_key(q->m, q->at);
    if (batching_) {  // process() alone counts right away: hints would only cost
      q->txn_hint = TransactionTracker::hint(q->m);
      shard_.series.prefetch(q->series_key, 0);
      txn_.prefetch(q->txn_hint, 0);
      if (staged_ >= kEntryLag) {
        const Staged& back = window_[staged_ - kEntryLag];
        shard_.series.prefetch(back.series_key, 1);
        txn_.prefetch(back.txn_hint, 1);
      }
    }
    // A reassembled datagram lives in the reassembler's buffer until its next datagram: it is
    // counted now.
    if (++staged_ == kWindow || !from_wire) flush();
  } else if (st == ParseStatus::not_sip) {
    shard_.skipped[static_cast<size_t>(Skip::not_sip)].bump();
  } else {
    shard_.parse_errors[static_cast<size_t>(st)].bump();
  }
}

void Worker::run(const std::atomic<bool>& producers_done, GiveBack give_back) {
  const size_t group = give_back == GiveBack::per_dequeue ? kDequeueBulk : 1;
  moodycamel::ConsumerToken ctok(in_);
  moodycamel::ProducerToken ptok(pool_.queue());
  Batch* batches[kDequeueBulk];
  for (;;) {
    heartbeat_.bump();
    // Read the flag before trying the queue: if it was set, everything was enqueued before it.
    const bool done = producers_done.load(std::memory_order_acquire);
    size_t n = in_.try_dequeue_bulk(ctok, batches, kDequeueBulk);
    if (n == 0) {
      if (done && in_.size_approx() == 0) return;
      // Idle: sleep until a batch arrives, or the nullptr Pipeline::stop() sends at the end of
      // input. The timeout keeps the heartbeat going for the watchdog, and bounds how late the end
      // of input is noticed when nothing wakes the worker.
      n = in_.wait_dequeue_bulk_timed(ctok, batches, kDequeueBulk, kIdleWakeUs);
    }
    n = static_cast<size_t>(std::remove(batches, batches + n, nullptr) - batches);  // wake-ups, not batches
    if (n == 0) continue;
    for (size_t i = 0; i < n; i += group) {
      const size_t m = std::min(group, n - i);
      for (size_t j = 0; j < m; ++j) process_batch(*batches[i + j]);
      pool_.give_back(batches + i, m, ptok);
    }
  }
}

}  // namespace sipex
