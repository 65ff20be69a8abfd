#include "sipex/transactions.hpp"
#include "sipex/hash.hpp"
#include "sipex/resident.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

namespace sipex {
namespace {

constexpr std::string_view kOutcomeNames[kCallOutcomeCount] = {"answered", "busy",      "no_answer",
                                                               "rejected", "cancelled", "failed"};
constexpr uint32_t kNone = 0xFFFFFFFF;

// Trick: the words are folded in by a multiply and a shift each (fingerprint()'s step below), with
// one full mix64 at the end, and the bytes after the last whole word are read as the last 8 bytes
// (overlapping that word) or, for a view shorter than 8, as two overlapping 4-byte or three 1-byte
// loads: no copy whose length depends on the view, which was a call into libc on every message.
// Every byte is read, and the length is mixed in.
uint64_t hash_bytes(std::string_view s, uint64_t h) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  const char* p = s.data();
  const size_t n = s.size();
  h ^= uint64_t{n} << 56;
  uint64_t w;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * kMul;
      h ^= h >> 29;
    }
    std::memcpy(&w, p + n - 8, 8);
  } else if (n >= 4) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    w = uint64_t{lo} | uint64_t{hi} << 32;
  } else if (n > 0) {  // an empty view may have a null data()
    const auto b = [p](size_t i) { return uint64_t{static_cast<unsigned char>(p[i])}; };
    w = b(0) | b(n / 2) << 8 | b(n - 1) << 16;
  } else {
    w = 0;
  }
  return mix64(h ^ w);
}

bool has_magic_cookie(std::string_view branch) { return branch.size() > 7 && branch.starts_with("z9hG4bK"); }

// The identity of the transaction a message belongs to, for transaction method `method`: never 0.
uint64_t transaction_key(const SipMessage& m, Method method) {
  uint64_t h;
  if (has_magic_cookie(m.via_branch)) {
    h = hash_bytes(m.via_branch, 0x5bd1e995);
  } else {  // RFC 2543 fallback
    h = hash_bytes(m.call_id, 0x2543);
    h = hash_bytes(header_tag(m.from), h);
    h = mix64(h ^ m.cseq_number);
  }
  h = mix64(h ^ (uint64_t{static_cast<uint8_t>(method)} + 1) * 0x9E3779B97F4A7C15ull);
  return h == 0 ? 1 : h;
}

// A 32-bit fingerprint of a message's start line and headers. Trick: four independent lanes of
// eight bytes each, so the multiplies of consecutive words overlap; one chain over an INVITE
// response's ~600 header bytes waited on the multiplier for every word (~150 ns a response).
uint32_t fingerprint(std::string_view bytes) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h[4] = {0x51ed27ull ^ bytes.size(), 0x2545F4914F6CDD1Dull, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull};
  auto step = [&](uint64_t& lane, size_t at) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + at, 8);
    lane = (lane ^ w) * kMul;
    lane ^= lane >> 29;
  };
  size_t i = 0;
  for (; i + 32 <= bytes.size(); i += 32) {
    for (size_t l = 0; l < 4; ++l) step(h[l], i + 8 * l);
  }
  for (size_t l = 0; i + 8 <= bytes.size(); i += 8, ++l) step(h[l], i);
  uint64_t w = 0;
  if (bytes.size() > i) std::memcpy(&w, bytes.data() + i, bytes.size() - i);
  return static_cast<uint32_t>(mix64(h[0] ^ std::rotl(h[1], 16) ^ std::rotl(h[2], 32) ^ std::rotl(h[3], 48) ^ w) >> 32);
}

uint64_t dialog_key(std::string_view call_id) {
  const uint64_t h = hash_bytes(call_id, 0xd1a1);
  return h == 0 ? 1 : h;
}

// A fixed table of entries E (which have `key`, `prev`, `next`, `list`) found by 64-bit key through
// an open-addressing index, each on one of N lists kept in insertion order. Slots come from zeroed
// pages and are constructed on first use. The index is probed at random, read before written:
// it is a lazy ResidentArray (huge pages where the kernel allows, see resident.hpp).
template <class E, int N>
class KeyedPool {
 public:
  explicit KeyedPool(uint32_t max) : max_(max) {
    std::fill(head_, head_ + N, kNone);
    std::fill(tail_, tail_ + N, kNone);
    const uint32_t cap = std::bit_ceil(std::max<uint32_t>(16, 2 * max));
    entries_.reset(static_cast<E*>(std::calloc(max, sizeof(E))));
    index_ = ResidentArray<uint32_t>(cap, Touch::lazy);
    if (!entries_) throw std::bad_alloc();
    mask_ = cap - 1;
  }

  E* find(uint64_t key) const {
    for (uint32_t i = home(key);; i = (i + 1) & mask_) {
      const uint32_t v = index_[i];
      if (v == 0) return nullptr;
      if (entries_[v - 1].key == key) return &entries_[v - 1];
    }
  }
  // Cache hints for find(key): the index slot it starts at, then (once that slot is likely in
  // cache) the entry it leads to. No effect on any result.
  void prefetch_slot(uint64_t key) const { __builtin_prefetch(&index_[home(key)]); }
  void prefetch_entry(uint64_t key) const {
    const uint32_t v = index_[home(key)];
    if (v != 0) __builtin_prefetch(&entries_[v - 1], 1);
  }
  bool full() const { return free_ == kNone && fresh_ == max_; }
  uint32_t size() const { return size_; }
  E* head(int list) const { return head_[list] == kNone ? nullptr : &entries_[head_[list]]; }

  // A new entry for `key` at the tail of `list`. Preconditions: !full(), find(key) == nullptr.
  E* insert(uint64_t key, int list) {
    uint32_t slot;
    if (free_ != kNone) {
      slot = free_;
      free_ = entries_[slot].next;
    } else {
      slot = fresh_++;
    }
    E* e = new (&entries_[slot]) E{};
    e->key = key;
    uint32_t i = home(key);
    while (index_[i] != 0) i = (i + 1) & mask_;
    index_[i] = slot + 1;
    link(slot, list);
    ++size_;
    return e;
  }

  void move(E* e, int list) {
    const auto slot = static_cast<uint32_t>(e - entries_.get());
    unlink(slot);
    link(slot, list);
  }

  void remove(E* e) {
    const auto slot = static_cast<uint32_t>(e - entries_.get());
    unlink(slot);
    // Backward-shift deletion keeps linear probing correct without tombstones.
    uint32_t i = home(e->key);
    while (index_[i] != slot + 1) i = (i + 1) & mask_;
    for (uint32_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      const uint32_t v = index_[j];
      if (v == 0) break;
      const uint32_t h = home(entries_[v - 1].key);
      if (((j - h) & mask_) >= ((j - i) & mask_)) {
        index_[i] = v;
        i = j;
      }
    }
    index_[i] = 0;
    e->key = 0;
    e->next = free_;
    free_ = slot;
    --size_;
  }

 private:
  uint32_t home(uint64_t key) const { return static_cast<uint32_t>(mix64(key)) & mask_; }
  void link(uint32_t slot, int list) {
    E& e = entries_[slot];
    e.list = static_cast<uint8_t>(list);
    e.next = kNone;
    e.prev = tail_[list];
    if (tail_[list] != kNone) entries_[tail_[list]].next = slot; else head_[list] = slot;
    tail_[list] = slot;
  }
  void unlink(uint32_t slot) {
    E& e = entries_[slot];
    const int list = e.list;
    if (e.prev != kNone) entries_[e.prev].next = e.next; else head_[list] = e.next;
    if (e.next != kNone) entries_[e.next].prev = e.prev; else tail_[list] = e.prev;
  }

  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<E[], FreeDeleter> entries_;
  ResidentArray<uint32_t> index_;
  uint32_t mask_;
  uint32_t max_;
  uint32_t fresh_ = 0;
  uint32_t free_ = kNone;
  uint32_t size_ = 0;
  uint32_t head_[N], tail_[N];
};

// Lists of transactions, each in deadline order because every entry on a list got the same
// timeout when it was appended.
enum : int { kCalling = 0, kProceeding = 1, kCompleted = 2 };

enum : uint8_t {
  kHasRequest = 1,      // the request was seen (latencies and timeouts need it)
  kRinging = 2,         // a 180 or 183 was seen
  kAcked = 4,           // the ACK of a non-2xx final response was seen
  kInitialInvite = 8,   // an INVITE outside a dialog (no To tag): a call attempt
  kAckOnly = 16,        // an entry for an ACK to a 2xx, kept only to recognise its retransmissions
};

}  // namespace

std::string_view call_outcome_name(CallOutcome o) { return kOutcomeNames[static_cast<size_t>(o)]; }

std::optional<CallOutcome> call_outcome(uint16_t code) {
  if (code >= 200 && code < 300) return CallOutcome::answered;
  if (code < 200 || (code >= 300 && code < 400) || code == 401 || code == 407) return std::nullopt;
  switch (code) {
    case 486: case 600: return CallOutcome::busy;
    case 408: case 480: return CallOutcome::no_answer;
    case 487: return CallOutcome::cancelled;
    case 403: case 404: case 410: case 484: case 485: case 603: case 604: case 606: case 607: case 608:
      return CallOutcome::rejected;
    default: return CallOutcome::failed;
  }
}

struct TransactionTracker::Impl {
  struct Txn {
    uint64_t key;
    int64_t t_req;      // the first request, or the first response if the request was not seen
    int64_t deadline;
    uint64_t prov;      // provisional codes seen: bit (code - 100) % 64
    uint32_t prev, next;
    uint32_t last_prov; // fingerprint of the last provisional response
    uint32_t last_final;// fingerprint of the first final response
    PeerId peer;        // the request's attribution
    uint16_t final_code;
    uint8_t dir, method, list, flags;
  };
  static_assert(sizeof(Txn) <= 64, "a transaction entry must stay within a cache line");

  struct Dialog {
    uint64_t key;
    int64_t t_answer;
    uint32_t prev, next;
    PeerId peer;
    uint8_t dir, list;
  };

  TransactionLimits lim;
  Shard& shard;
  PeerResolver& peers;
  TransactionStats& stats;
  KeyedPool<Txn, 3> txns;
  KeyedPool<Dialog, 1> dialogs;

  Impl(const TransactionLimits& l, Shard& s, PeerResolver& p, TransactionStats& st)
      : lim(l), shard(s), peers(p), stats(st), txns(l.max_transactions), dialogs(l.max_dialogs) {}

  void count(Family f, PeerId peer, uint8_t dir, Method m, uint16_t code = 0) {
    shard.add(series_key(peer, static_cast<Direction>(dir), m, code, f));
  }
  void latency(const Txn& t, LatencyStage stage, int64_t now) {
    shard.observe(HistogramTable::key(HistogramFamily::response_latency, t.peer, static_cast<Direction>(t.dir),
                                      static_cast<Method>(t.method), stage),
                  static_cast<double>(now - t.t_req) / 1e9);
  }
  void call(const Txn& t, CallOutcome o) {
    count(Family::calls, t.peer, t.dir, Method::INVITE, static_cast<uint16_t>(o));
  }

  // Room for one more transaction: the longest-completed goes first, then the oldest pending.
  void make_room() {
    if (!txns.full()) return;
    Txn* victim = txns.head(kCompleted);
    if (victim == nullptr) victim = txns.head(kCalling);
    if (victim == nullptr) victim = txns.head(kProceeding);
    stats.evicted.bump();
    txns.remove(victim);
  }

  Txn* create(uint64_t key, PeerResolver::Attribution at, int64_t now, Method method, int list, int64_t deadline) {
    make_room();
    Txn* t = txns.insert(key, list);
    t->t_req = now;
    t->deadline = deadline;
    t->peer = at.peer;
    t->dir = static_cast<uint8_t>(at.direction);
    t->method = static_cast<uint8_t>(method);
    return t;
  }

  // `hint`: TransactionTracker::hint(m), or 0 (then the key is computed here).
  void request(const SipMessage& m, PeerResolver::Attribution at, int64_t now, uint64_t hint) {
    if (m.method == Method::ACK) {
      ack(m, at, now, hint);
      return;
    }
    const uint64_t key = hint != 0 ? hint : transaction_key(m, m.method);
    if (Txn* t = txns.find(key)) {
      if (t->flags & kHasRequest) {
        count(Family::request_retransmissions, at.peer, static_cast<uint8_t>(at.direction), m.method);
      } else {  // the response came first (capture order); the request completes the entry
        t->flags |= kHasRequest;
      }
      return;
    }
    Txn* t = create(key, at, now, m.method, kCalling, now + lim.timer_b_ns);
    t->flags = kHasRequest;
    if (m.method == Method::INVITE && header_tag(m.to).empty()) t->flags |= kInitialInvite;
    if (m.method == Method::BYE) {
      if (Dialog* d = dialogs.find(dialog_key(m.call_id))) {
        shard.observe(HistogramTable::key(HistogramFamily::call_duration, d->peer, static_cast<Direction>(d->dir),
                                          Method::INVITE, LatencyStage::final),
                      static_cast<double>(now - d->t_answer) / 1e9);
        dialogs.remove(d);
      }
    }
  }

  // An ACK belongs to its INVITE's transaction when that ended with a non-2xx response; an ACK to
  // a 2xx is a transaction of its own, which has no response.
  void ack(const SipMessage& m, PeerResolver::Attribution at, int64_t now, uint64_t hint) {
    if (Txn* t = txns.find(hint != 0 ? hint : transaction_key(m, Method::INVITE)); t != nullptr && t->final_code >= 300) {
      if (t->flags & kAcked) {
        count(Family::request_retransmissions, at.peer, static_cast<uint8_t>(at.direction), Method::ACK);
      }
      t->flags |= kAcked;
      return;
    }
    const uint64_t key = transaction_key(m, Method::ACK);
    if (txns.find(key) != nullptr) {
      count(Family::request_retransmissions, at.peer, static_cast<uint8_t>(at.direction), Method::ACK);
      return;
    }
    Txn* t = create(key, at, now, Method::ACK, kCompleted, now + lim.linger_ns);
    t->flags = kHasRequest | kAckOnly;
  }

  // A response is a retransmission when it repeats an earlier one (RFC 3261 17.2: retransmissions
  // are copies). For INVITE responses other than 100 the same code is not enough: a reliable
  // provisional (RFC 3262) may be followed by another with the same code and a new RSeq, and a
  // forked INVITE may draw several 2xx with different To tags; so they are compared by a
  // fingerprint of their start line and headers. Other responses cannot differ that way (100 is
  // hop-by-hop and unreliable; a proxy forwards one final for a non-INVITE), so the code decides.
  void response(const SipMessage& m, std::string_view bytes, PeerResolver::Attribution at, const IpAddr& src,
                const IpAddr& dst, int64_t now, uint64_t hint) {
    // hint() keys a CSeq method of ACK as INVITE (for requests): a response to "ACK" is keyed here.
    const uint64_t key = hint != 0 && m.method != Method::ACK ? hint : transaction_key(m, m.method);
    const uint16_t code = m.status_code;
    const uint32_t print = (m.method == Method::INVITE && code != 100) ? fingerprint(bytes) : 0;
    Txn* t = txns.find(key);
    if (t == nullptr) {
      // The request was not seen: the transaction belongs to the response's receiver.
      const PeerResolver::Attribution req = peers.attribute(dst, src);
      t = create(key, req, now, m.method, kCalling, now + lim.timer_b_ns);
    }
    if (code < 200) {
      const uint64_t bit = uint64_t{1} << ((code - 100) % 64);
      if ((t->prov & bit) && print == t->last_prov) {
        count(Family::response_retransmissions, at.peer, static_cast<uint8_t>(at.direction), m.method);
        return;
      }
      const bool first = t->prov == 0;
      t->prov |= bit;
      t->last_prov = print;
      if (t->method != static_cast<uint8_t>(Method::INVITE) || t->final_code != 0) return;
      if (t->flags & kHasRequest) {
        if (first) latency(*t, LatencyStage::first_response, now);
        if ((code == 180 || code == 183) && !(t->flags & kRinging)) latency(*t, LatencyStage::ringing, now);
      }
      if (code == 180 || code == 183) t->flags |= kRinging;
      if (t->list == kCalling) {  // Proceeding: no more Timer B; wait up to Timer C for the final
        t->deadline = now + lim.timer_c_ns;
        txns.move(t, kProceeding);
      }
      return;
    }
    if (t->final_code != 0) {
      // The same final again is a retransmission (a 2xx until its ACK, a non-2xx until Timer
      // D/J); a different one (a forked 2xx after a 487, say) is a response, not a new transaction.
      if (code == t->final_code && print == t->last_final) {
        count(Family::response_retransmissions, at.peer, static_cast<uint8_t>(at.direction), m.method);
      }
      return;
    }
    t->final_code = code;
    t->last_final = print;
    count(Family::transactions, t->peer, t->dir, static_cast<Method>(t->method), code);
    if (t->flags & kHasRequest) latency(*t, LatencyStage::final, now);
    if (t->flags & kInitialInvite) {
      if (const auto o = call_outcome(code)) call(*t, *o);
      if (code < 300) answered(m.call_id, *t, now);
    }
    t->deadline = now + lim.linger_ns;
    txns.move(t, kCompleted);
  }

  void answered(std::string_view call_id, const Txn& t, int64_t now) {
    const uint64_t key = dialog_key(call_id);
    if (dialogs.find(key) != nullptr) return;  // a second 2xx of a forked INVITE: the call is answered once
    if (dialogs.full()) {
      stats.dialogs_evicted_full.bump();
      dialogs.remove(dialogs.head(0));
    }
    Dialog* d = dialogs.insert(key, 0);
    d->t_answer = now;
    d->peer = t.peer;
    d->dir = t.dir;
  }

  // A request that saw no final response: a timeout, and for an initial INVITE a failed call, or
  // one not answered if it rang.
  void timed_out(const Txn& t) {
    if (!(t.flags & kHasRequest) || (t.flags & kAckOnly)) return;
    count(Family::timeouts, t.peer, t.dir, static_cast<Method>(t.method));
    if (t.flags & kInitialInvite) call(t, (t.flags & kRinging) ? CallOutcome::no_answer : CallOutcome::failed);
  }

  void expire(int64_t now) {
    for (int list : {kCalling, kProceeding}) {
      for (Txn* t = txns.head(list); t != nullptr && t->deadline <= now; t = txns.head(list)) {
        timed_out(*t);
        txns.remove(t);
      }
    }
    for (Txn* t = txns.head(kCompleted); t != nullptr && t->deadline <= now; t = txns.head(kCompleted)) txns.remove(t);
    for (Dialog* d = dialogs.head(0); d != nullptr && now - d->t_answer > lim.dialog_timeout_ns; d = dialogs.head(0)) {
      stats.dialogs_expired.bump();
      dialogs.remove(d);
    }
    publish();
  }

  void publish() {
    stats.active.store(txns.size(), std::memory_order_relaxed);
    stats.dialogs.store(dialogs.size(), std::memory_order_relaxed);
  }
};

TransactionTracker::TransactionTracker(const TransactionLimits& limits, Shard& shard, PeerResolver& peers)
    : impl_(new Impl(limits, shard, peers, stats_)) {}

TransactionTracker::~TransactionTracker() = default;

void TransactionTracker::message(const SipMessage& m, PeerResolver::Attribution at, const IpAddr& src,
                                 const IpAddr& dst, int64_t ts_ns, uint64_t hint) {
  if (m.is_request) {
    impl_->request(m, at, ts_ns, hint);
  } else {
    impl_->response(m, m.head, at, src, dst, ts_ns, hint);
  }
  impl_->publish();
}

void TransactionTracker::expire(int64_t ts_ns) { impl_->expire(ts_ns); }

uint64_t TransactionTracker::hint(const SipMessage& m) {
  if (!has_magic_cookie(m.via_branch)) return 0;  // RFC 2543 keys need the From tag: not worth a guess
  return transaction_key(m, m.method == Method::ACK ? Method::INVITE : m.method);
}

void TransactionTracker::prefetch(uint64_t hint, int stage) const {
  if (hint == 0) return;
  if (stage == 0) {
    impl_->txns.prefetch_slot(hint);
  } else {
    impl_->txns.prefetch_entry(hint);
  }
}

size_t TransactionTracker::bytes_per_transaction() { return sizeof(Impl::Txn) + 2 * sizeof(uint32_t); }

}  // namespace sipex
