// Aggregation: per-worker counter shards and peer attribution (DESIGN sections 2 and 5).
//
// Thread model: each worker owns one Shard and one PeerResolver and is the only writer of both.
// The scrape reads shards concurrently through relaxed atomic loads (counters only grow).
// PeerRegistry is shared by all workers; it takes a mutex only when a worker meets an address it
// has not cached, which happens at most max_peers times per worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sipex/config.hpp"
#include "sipex/decode.hpp"
#include "sipex/packet.hpp"
#include "sipex/resident.hpp"
#include "sipex/sip_parse.hpp"

namespace sipex {

enum class Direction : uint8_t { unknown, inbound, outbound };
inline constexpr size_t kDirectionCount = 3;
std::string_view direction_name(Direction d);

using PeerId = uint16_t;
inline constexpr PeerId kPeerOther = 0;  // the label value "other": beyond the cap

// Longest-prefix match over a fixed set of networks with a value each: one hash probe per
// distinct prefix length of the address's family, longest first. A carrier's peer map may hold
// hundreds of networks but has a handful of lengths; scanning the networks one by one cost about
// a microsecond for each address the resolver's cache does not hold (PeerResolver), which with
// more active addresses than the cache holds was every message. Immutable once built: any thread.
class NetworkTable {
 public:
  NetworkTable() = default;
  // `nets` in priority order: of two identical networks the first keeps its value.
  explicit NetworkTable(const std::vector<std::pair<Cidr, int>>& nets);
  // The value of the longest network containing `a`, or -1.
  int find(const IpAddr& a) const;

 private:
  struct Length {
    uint8_t prefix;
    uint64_t mask[2];  // the address words (bytes 0-7, 8-15) ANDed with these: the network
  };
  struct Slot {
    uint64_t net[2];
    uint8_t family, prefix;
    bool used;
    int32_t value;
  };
  // The slot holding that network, or the empty slot where it would go.
  uint32_t probe(const uint64_t net[2], uint8_t family, uint8_t prefix) const;

  std::vector<Length> lengths_[2];  // IPv4, IPv6: the prefix lengths present, longest first
  std::vector<Slot> slots_;         // open addressing, at most half full
  uint32_t mask_ = 0;
};

// What decides a message's peer and direction: the home networks and the peer map's networks
// with their peer ids. Immutable once published (index() builds the lookups before); a reload
// publishes a new one.
struct PeerMap {
  struct NamedNet {
    Cidr net;
    PeerId id;
  };
  std::vector<Cidr> home;
  std::vector<NamedNet> named;  // sorted by prefix length, longest first
  void index();
  bool is_home(const IpAddr& a) const { return home_table.find(a) >= 0; }
  // The id of the peer-map entry with the longest prefix containing `a`, or -1.
  int named_peer(const IpAddr& a) const { return named_table.find(a); }

  NetworkTable home_table, named_table;  // index()'s lookups over `home` and `named`
};

// The hash the address tables (PeerRegistry, PeerResolver) index by its low bits. A multiply
// carries bits only upwards: its low bits ignored the last bytes of an address, and the addresses
// of an IPv6 /64 numbered ::1, ::2, ... shared one slot and probed in one long run. The byte swap
// brings the product's top bits, which every address bit reaches, to the bottom (Fibonacci
// hashing's choice of bits, at the cost of one instruction). Pure.
// The hash of an address as its two 8-byte words (bytes 0-7, 8-15) and a small tag.
inline uint32_t address_words_hash(uint64_t x, uint64_t y, uint64_t tag) {
  return static_cast<uint32_t>(__builtin_bswap64((x ^ (y * 0x9E3779B97F4A7C15ull) ^ tag) * 0xBF58476D1CE4E5B9ull));
}
// The words address_words_hash() takes.
inline void address_words(const IpAddr& a, uint64_t w[2]) {
  std::memcpy(&w[0], a.bytes, 8);
  std::memcpy(&w[1], a.bytes + 8, 8);
}
inline uint32_t address_hash(const IpAddr& a) {
  uint64_t w[2];
  address_words(a, w);
  return address_words_hash(w[0], w[1], a.family);
}

// Peer label values: id 0 is "other", then the peer map's names in file order, then addresses in
// order of first sight, until max_peers values exist. Ids are never reassigned, so counters keep
// their labels across a reload. Thread-safe: address lookups and names() are lock-free;
// registering a new address and applying a config take a mutex.
class PeerRegistry {
 public:
  explicit PeerRegistry(const Config& cfg);
  // Publishes `cfg`'s home networks and peer map; names already known keep their ids, new ones
  // get new ids while the cap allows. Returns the names left without an id (their addresses
  // count as "other").
  std::vector<std::string> apply(const Config& cfg);
  // The current map and its generation (which apply() increments).
  std::shared_ptr<const PeerMap> map() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // The id of address `a`: its existing id, else a new one while fewer than max_peers values
  // exist, else kPeerOther. Lock-free when `a` is known or the cap is reached.
  PeerId intern(const IpAddr& a);
  // The id of address `a` if it has one (not the peer map's: those are by network), else -1.
  // Lock-free.
  int lookup(const IpAddr& a) const { return find(a, nullptr); }
  bool full() const { return full_.load(std::memory_order_acquire); }
  // Label values indexed by id, every id handed out so far. A name never changes once its id
  // exists, so the view stays valid (and correct for those ids) as long as the registry; ids
  // handed out later are outside it. An id seen in a key the worker published (with release)
  // before this call (with acquire) is inside it.
  std::span<const std::string> names() const {
    return {names_.get(), count_.load(std::memory_order_acquire)};
  }

 private:
  // Open addressing, at most half full. A slot is published by storing id+1 with release after
  // its address is written; slots are never reused, so readers need no lock.
  struct Slot {
    std::atomic<uint32_t> id_plus1{0};
    IpAddr addr{};
  };
  int find(const IpAddr& a, uint32_t* free_slot) const;
  bool room() const { return count_.load(std::memory_order_relaxed) - 1 < max_peers_; }
  // Appends a name under mu_; returns its id.
  PeerId add_name(std::string name);

  uint32_t max_peers_;
  std::unique_ptr<Slot[]> slots_;
  uint32_t mask_;
  mutable std::mutex mu_;        // serialises registration and guards named_ids_, map_
  // max_peers + 1 names; [0, count_) are written (under mu_) before count_ is raised (release).
  std::unique_ptr<std::string[]> names_;
  std::atomic<size_t> count_{0};
  std::unordered_map<std::string, PeerId> named_ids_;  // peer-map names ever applied
  std::shared_ptr<const PeerMap> map_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> full_{false};
};

// Per-worker attribution of a message to (peer, direction). Caches each address's home/peer
// status in a fixed open-addressing table, so the steady state is one or two probes per message;
// a reload (a new PeerRegistry generation) empties the cache, and so does filling half of it
// (more distinct addresses than it holds then cost a classification each time they come back,
// never more). Not thread-safe: one per worker.
class PeerResolver {
 public:
  PeerResolver(PeerRegistry& reg, const Config& cfg);
  struct Attribution {
    PeerId peer;
    Direction direction;
  };
  Attribution attribute(const IpAddr& src, const IpAddr& dst);
  // attribute(), unless that would give an address its peer id (PeerRegistry::intern): then
  // false, and nothing is registered. A caller that defers messages uses it to keep the order in
  // which addresses get ids (which decides who is left over once limits.max_peers is reached).
  bool attribute_if_registered(const IpAddr& src, const IpAddr& dst, Attribution* out);

 private:
  struct Entry {
    IpAddr addr;
    PeerId peer;
    uint8_t used;      // slot in use
    uint8_t home;      // inside home_networks
    uint8_t resolved;  // `peer` is valid
  };
  Entry& entry(const IpAddr& a);
  PeerId peer_of(Entry& e);
  // peer_of() without registering: false if the address would need an id first.
  bool known_peer_of(Entry& e, PeerId* out);
  template <bool kMayRegister>
  bool attribute_impl(const IpAddr& src, const IpAddr& dst, Attribution* out);

  // Picks up a newly applied map: the cache of answers is emptied.
  void refresh();
  void clear();

  PeerRegistry& reg_;
  std::shared_ptr<const PeerMap> map_;
  uint64_t generation_;
  std::unique_ptr<Entry[]> table_;
  uint32_t mask_;
  uint32_t size_ = 0;  // entries used since the table was last emptied
};

// The counter families kept in a worker's SeriesTable. `code` in the key means what the family
// says: the status code, a call outcome, or 0.
enum class Family : uint8_t {
  messages,                  // sip_requests_total (code 0), sip_responses_total (code)
  request_retransmissions,   // sip_retransmissions_total{kind="request"}
  response_retransmissions,  // sip_retransmissions_total{kind="response"}
  transactions,              // sip_transactions_total (code: the first final response)
  timeouts,                  // sip_transaction_timeouts_total
  calls,                     // sip_calls_total (code: CallOutcome)
};

// Key of one counter series.
// Bits: 63 occupied marker | 42..40 family | 31..16 peer | 15..14 direction | 13..10 method |
// 9..0 code.
inline uint64_t series_key(PeerId peer, Direction dir, Method m, uint16_t code, Family f = Family::messages) {
  return (uint64_t{1} << 63) | uint64_t{static_cast<uint8_t>(f)} << 40 | uint64_t{peer} << 16 |
         uint64_t{static_cast<uint8_t>(dir)} << 14 | uint64_t{static_cast<uint8_t>(m)} << 10 | code;
}
struct SeriesFields {
  PeerId peer;
  Direction direction;
  Method method;
  uint16_t code;
  Family family;
};
inline SeriesFields series_fields(uint64_t key) {
  return {static_cast<PeerId>(key >> 16 & 0xFFFF), static_cast<Direction>(key >> 14 & 3),
          static_cast<Method>(key >> 10 & 15), static_cast<uint16_t>(key & 1023),
          static_cast<Family>(key >> 40 & 7)};
}

// The writer's map from a 64-bit key to the position of its entry in an append-only array:
// open addressing over entry + 1 (0 = empty), at most half full, doubled and rebuilt from the
// entries as they grow, so it is as large as what was counted, not as the configured cap (a
// table sized for the cap spread a few thousand series over tens of megabytes, one cache miss
// each). Writer-private: readers walk the entries, never the index. Its memory is resident from
// the start (resident.hpp). Doubling allocates and rehashes on the writer's thread: about
// log2(cap / 1024) times in a worker's life, the last ones costing milliseconds near a cap of
// millions of series.
class KeyIndex {
 public:
  static constexpr uint32_t kNone = ~uint32_t{0};
  KeyIndex() : slots_(kInitial), mask_(kInitial - 1) {}
  // The entry whose key (key_of(entry)) is `key`, or kNone with *hole set for insert().
  template <class KeyOf>
  uint32_t find(uint64_t key, const KeyOf& key_of, uint32_t* hole) const {
    for (uint32_t i = home(key, mask_);; i = (i + 1) & mask_) {
      const uint32_t v = slots_[i];
      if (v == 0) {
        *hole = i;
        return kNone;
      }
      if (key_of(v - 1) == key) return v - 1;
    }
  }
  // Cache hint for find(key): the slot its probe starts at.
  void prefetch(uint64_t key) const { __builtin_prefetch(&slots_[home(key, mask_)]); }
  // Whether an entry can be added when `count` exist: always, unless doubling once failed (no
  // memory) and the index is one slot short of full (a probe ends only at an empty slot).
  bool room(uint32_t count) const { return uint64_t{count} + 1 < uint64_t{mask_} + 1; }
  // Records `entry` at `hole` (from find() since the last change); `count` entries exist now,
  // entry included. Doubles the index past half full; if that allocation fails, the index stays
  // as it is and fills up (room() then says when to refuse): it never throws.
  template <class KeyOf>
  void insert(uint32_t hole, uint32_t entry, uint32_t count, const KeyOf& key_of) {
    slots_[hole] = entry + 1;
    if (!stuck_ && uint64_t{count} * 2 > uint64_t{mask_} + 1) grow(count, key_of);
  }

 private:
  static constexpr uint32_t kInitial = 1024;
  static uint32_t home(uint64_t key, uint32_t mask) {
    return static_cast<uint32_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
  }
  template <class KeyOf>
  void grow(uint32_t count, const KeyOf& key_of) {
    const uint32_t cap = (mask_ + 1) * 2;
    ResidentArray<uint32_t> bigger;
    try {
      bigger = ResidentArray<uint32_t>(cap);
    } catch (const std::bad_alloc&) {
      stuck_ = true;
      return;
    }
    for (uint32_t e = 0; e < count; ++e) {
      uint32_t i = home(key_of(e), cap - 1);
      while (bigger[i] != 0) i = (i + 1) & (cap - 1);
      bigger[i] = e + 1;
    }
    slots_ = std::move(bigger);
    mask_ = cap - 1;
  }
  ResidentArray<uint32_t> slots_;
  uint32_t mask_;
  bool stuck_ = false;  // a doubling failed: no more attempts
};

// A map from series key to count with a fixed cap on the number of series. One writer (the
// worker), any number of concurrent readers.
//
// Series live in an append-only array in order of creation; the writer finds them through a
// KeyIndex and publishes each new one by raising size_ with release, so readers walk [0, size)
// with acquire, never probe, and cost O(series). The array is reserved for the cap but its
// pages are touched only as series are created (the first touch of each is the writer's store).
// Allocates only when the index doubles.
class SeriesTable {
 public:
  explicit SeriesTable(uint32_t max_series);
  // Adds n to the key's count, creating the series if fewer than max_series exist.
  // Returns false (nothing counted) when the series would exceed the cap. Writer only.
  bool add(uint64_t key, uint64_t n = 1);
  // Calls f(key, count) for every series published so far, in order of creation. Any thread.
  template <class F>
  void for_each(F&& f) const {
    const uint32_t n = size_.load(std::memory_order_acquire);
    for (uint32_t j = 0; j < n; ++j) {
      Entry& s = entries_[j];
      f(std::atomic_ref<uint64_t>(s.key).load(std::memory_order_relaxed),
        std::atomic_ref<uint64_t>(s.count).load(std::memory_order_relaxed));
    }
  }
  uint32_t size() const { return size_.load(std::memory_order_relaxed); }
  // Cache hints for an add(key) to come: stage 0 fetches the key's index slot; stage 1, once
  // that is likely in cache, the series entry it finds (if the series exists). No effect on any
  // result. Writer only.
  void prefetch(uint64_t key, int stage) const {
    if (stage == 0) {
      index_.prefetch(key);
      return;
    }
    uint32_t hole = 0;
    const uint32_t e = index_.find(key, KeyOf{this}, &hole);
    if (e != KeyIndex::kNone) __builtin_prefetch(&entries_[e], 1);
  }

 private:
  // The key of entry e, for the index (writer side).
  struct KeyOf {
    const SeriesTable* t;
    uint64_t operator()(uint32_t e) const {
      return std::atomic_ref<uint64_t>(t->entries_[e].key).load(std::memory_order_relaxed);
    }
  };
  // Plain words, accessed only through std::atomic_ref (readers and writer alike; the writer's
  // relaxed loads are plain moves).
  struct Entry {
    alignas(8) uint64_t key;
    alignas(8) uint64_t count;
  };
  ResidentArray<Entry> entries_;  // max_ entries, Touch::lazy: untouched until used
  KeyIndex index_;
  uint32_t max_;
  std::atomic<uint32_t> size_{0};
};

enum class Path : uint8_t { udp, tcp, sctp, ip_fragment };
inline constexpr size_t kPathCount = 4;
std::string_view path_name(Path p);

// Histogram families and their bucket upper bounds (seconds).
enum class HistogramFamily : uint8_t {
  response_latency,  // sip_response_latency_seconds; `stage` in the key
  call_duration,     // sip_call_duration_seconds
};
enum class LatencyStage : uint8_t { first_response, ringing, final };
inline constexpr size_t kMaxBuckets = 16;
// 1 ms to 32.768 s by powers of two: resolves a fast 100 Trying and a long post-dial delay alike.
inline constexpr double kLatencyBuckets[] = {0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128,
                                             0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384, 32.768};
inline constexpr double kDurationBuckets[] = {1, 5, 10, 30, 60, 120, 180, 300, 600, 1200, 1800, 3600, 7200, 14400};

// A map from histogram key to bucket counts with a cap on the number of histograms, one writer,
// any readers (the same discipline and append-only entries as SeriesTable). Key bits: 63 occupied | 41..40 family | 31..16 peer |
// 15..14 direction | 13..10 method | 1..0 stage.
class HistogramTable {
 public:
  static uint64_t key(HistogramFamily f, PeerId peer, Direction dir, Method m, LatencyStage stage) {
    return (uint64_t{1} << 63) | uint64_t{static_cast<uint8_t>(f)} << 40 | uint64_t{peer} << 16 |
           uint64_t{static_cast<uint8_t>(dir)} << 14 | uint64_t{static_cast<uint8_t>(m)} << 10 |
           static_cast<uint8_t>(stage);
  }
  static const double* buckets(HistogramFamily f, size_t* n);

  explicit HistogramTable(uint32_t max_series);
  // Records one observation of `seconds`. False (nothing recorded) when the key is new and
  // max_series histograms exist. Writer only.
  bool observe(uint64_t key, double seconds);
  // Calls f(key, counts per bucket (not cumulative; index kMaxBuckets is +Inf), sum in ns) for
  // every histogram published so far, in order of creation. Any thread; O(histograms).
  template <class F>
  void for_each(F&& f) const {
    const uint32_t n = size_.load(std::memory_order_acquire);
    for (uint32_t j = 0; j < n; ++j) {
      const Entry& s = entries_[j];
      const uint64_t k = std::atomic_ref<const uint64_t>(s.key).load(std::memory_order_relaxed);
      uint64_t counts[kMaxBuckets + 1];
      for (size_t b = 0; b <= kMaxBuckets; ++b) {
        counts[b] = std::atomic_ref<const uint64_t>(s.buckets[b]).load(std::memory_order_relaxed);
      }
      f(k, counts, std::atomic_ref<const uint64_t>(s.sum_ns).load(std::memory_order_relaxed));
    }
  }
  uint32_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    uint64_t key;
    uint64_t sum_ns;
    uint64_t buckets[kMaxBuckets + 1];
  };
  ResidentArray<Entry> entries_;  // as in SeriesTable
  KeyIndex index_;
  uint32_t max_;
  std::atomic<uint32_t> size_{0};
};

// Everything one worker counts. Cache-line aligned so shards never share a line.
struct alignas(64) Shard {
  Shard(uint32_t max_series, uint32_t max_histograms) : series(max_series), histograms(max_histograms) {}
  SeriesTable series;
  HistogramTable histograms;
  // Packets that decoded down to a transport, by the path they took: udp, tcp, sctp, or an IP
  // fragment handed to reassembly. Together with `skipped` (minus not_sip, which is a decoded UDP
  // payload) every packet a worker received is counted once.
  Counter decoded[kPathCount];
  Counter skipped[kSkipCount];            // by Skip
  Counter parse_errors[kParseStatusCount];  // by ParseStatus (errors only)
  Counter peer_overflow;                  // messages labelled peer="other" because of the cap
  Counter series_overflow;                // increments of any counter family lost: the series cap was reached

  Counter histogram_overflow;             // observations not recorded: the histogram cap was reached
  Counter duplicates;                     // mirror duplicates suppressed (DuplicateFilter)

  // The series a message is counted under (count()).
  static uint64_t message_key(const SipMessage& m, PeerResolver::Attribution at) {
    return series_key(at.peer, at.direction, m.method, m.is_request ? 0 : m.status_code);
  }
  void count(const SipMessage& m, PeerResolver::Attribution at) { count(message_key(m, at), at); }
  // count() with the key already computed (message_key()).
  void count(uint64_t key, PeerResolver::Attribution at) {
    add(key);
    if (at.peer == kPeerOther) peer_overflow.bump();
  }
  void add(uint64_t key) {
    if (!series.add(key)) series_overflow.bump();
  }
  void observe(uint64_t key, double seconds) {
    if (!histograms.observe(key, seconds)) histogram_overflow.bump();
  }
};

}  // namespace sipex
