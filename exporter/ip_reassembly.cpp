#include "sipex/ip_reassembly.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>

namespace sipex {
namespace {

constexpr std::string_view kEvictionNames[kFragmentEvictionCount] = {"timeout", "table_full", "memory",
                                                                      "overlap", "too_large", "invalid"};

constexpr uint32_t kMaxPayload = 65535;
// Fragment offsets count in 8-byte units, every fragment but the last is a whole number of units,
// and nothing may lie past the last: so coverage tracked per unit is exact, two accepted
// fragments overlap iff they share a unit.
constexpr uint32_t kUnit = 8;
// Storage granule: 64 units, so a chunk's coverage is one 64-bit word.
constexpr uint32_t kChunk = 512;
constexpr uint32_t kUnitsPerChunk = kChunk / kUnit;
constexpr uint32_t kRegions = (kMaxPayload + 1) / kChunk;  // chunk-sized slices of a datagram
constexpr uint32_t kNil = UINT32_MAX;

// Bits [lo, hi) of a word, 0 <= lo < hi <= 64.
inline uint64_t bit_range(uint32_t lo, uint32_t hi) {
  return (hi - lo == 64 ? ~uint64_t{0} : (uint64_t{1} << (hi - lo)) - 1) << lo;
}

}  // namespace

std::string_view fragment_eviction_name(FragmentEviction e) { return kEvictionNames[static_cast<size_t>(e)]; }

struct IpReassembler::Impl {
  // version, src, dst, id, protocol, packed so that equality is five word compares.
  struct Key {
    uint64_t w[5];
    bool operator==(const Key&) const = default;
  };

  // A datagram in progress, or a dropped one whose later fragments are discarded (`dead`).
  // Payload byte p lives in chunk[p / kChunk] at p % kChunk; chunk[r] is valid iff bit r of `mapped`.
  struct Entry {
    Key key;
    int64_t stamp_ns;      // first fragment; for a dead entry, when it was dropped
    uint32_t prev, next;   // in live_ or dead_ (age order); `next` also links the free list
    uint32_t hash;
    uint32_t held;         // payload bytes held; fragments are disjoint, so also the bytes covered
    uint32_t end;          // payload length, once the last fragment is seen
    uint32_t max_end;      // highest end of the fragments held
    uint32_t fragments;    // fragments held
    bool has_last;
    bool dead;
    uint64_t mapped[kRegions / 64];
    uint32_t chunk[kRegions];
  };

  struct Slot {
    uint32_t hash;
    uint32_t entry;  // kNil: empty
  };

  // Per 8-byte unit of a chunk: `covered` = held; `starts` = a held fragment begins here.
  struct ChunkBits {
    uint64_t covered, starts;
  };

  struct AgeList {
    uint32_t head = kNil, tail = kNil;
  };

  Impl(const IpReassemblyLimits& limits, IpReassemblyStats& stats)
      : stats_(stats),
        timeout_ns_(limits.timeout_ns),
        entry_count_(std::max<uint32_t>(1, limits.max_datagrams)),
        entries_(std::make_unique_for_overwrite<Entry[]>(entry_count_)),  // untouched until used
        slot_mask_(static_cast<uint32_t>(std::bit_ceil(uint64_t{entry_count_} * 2) - 1)),
        slots_(std::make_unique<Slot[]>(uint64_t{slot_mask_} + 1)),
        chunk_count_(limits.max_bytes / kChunk),
        arena_(std::make_unique_for_overwrite<uint8_t[]>(uint64_t{chunk_count_} * kChunk)),  // untouched until used
        bits_(std::make_unique_for_overwrite<ChunkBits[]>(chunk_count_)),  // cleared as a chunk is taken
        free_chunks_(std::make_unique<uint32_t[]>(chunk_count_)),
        free_chunk_count_(chunk_count_),
        out_(std::make_unique_for_overwrite<uint8_t[]>(kMaxPayload + 1)) {
    // A per-instance seed keeps crafted keys from piling into one probe chain.
    std::random_device rd;
    seed_ = (uint64_t{rd()} << 32) | rd();
    for (uint32_t i = 0; i <= slot_mask_; ++i) slots_[i].entry = kNil;
    for (uint32_t c = 0; c < chunk_count_; ++c) free_chunks_[c] = c;
  }

  Datagram add(const IpFragment& f, int64_t now_ns) {
    stats_.fragments.bump();
    expire(now_ns);
    if (f.offset == 0 && !f.more) {  // a whole datagram in one fragment (RFC 6946 atomic fragment)
      stats_.completed.bump();
      return {f.data, f.data_len};
    }
    const Key key = make_key(f);
    const uint32_t h = hash(key);
    uint32_t i = find(key, h);
    if (i != kNil && entries_[i].dead) {
      stats_.evicted_fragments.bump();
      return {};
    }
    if (i == kNil) i = create(key, h, now_ns);
    Entry& e = entries_[i];

    const uint64_t end = uint64_t{f.offset} + f.data_len;
    if (end > kMaxPayload) {
      drop(i, FragmentEviction::too_large, now_ns);
      return {};
    }
    const uint32_t a = f.offset, b = static_cast<uint32_t>(end);
    const bool bad_shape = f.data_len == 0 || a % kUnit != 0 || (f.more && f.data_len % kUnit != 0);
    const bool bad_end = f.more ? (e.has_last && b > e.end) : (e.has_last ? b != e.end : e.max_end > b);
    if (bad_shape || bad_end) {
      drop(i, FragmentEviction::invalid, now_ns);
      return {};
    }

    // Units [ua, ub) of the fragment, in regions [r0, r1].
    const uint32_t ua = a / kUnit, ub = (b + kUnit - 1) / kUnit;
    const uint32_t r0 = a / kChunk, r1 = (b - 1) / kChunk;
    uint32_t missing = 0;
    bool any_held = false, same_units = true;
    for (uint32_t r = r0; r <= r1; ++r) {
      if (!is_mapped(e, r)) {
        ++missing;
        same_units = false;
        continue;
      }
      const uint32_t base = r * kUnitsPerChunk;
      const uint32_t lo = std::max(ua, base) - base, hi = std::min(ub, base + kUnitsPerChunk) - base;
      const uint64_t mask = bit_range(lo, hi);
      const ChunkBits& c = bits_[e.chunk[r]];
      const uint64_t starts_expected = r == r0 ? uint64_t{1} << lo : 0;
      any_held |= (c.covered & mask) != 0;
      same_units &= (c.covered & mask) == mask && (c.starts & mask) == starts_expected;
    }
    if (any_held) {
      // Only a held fragment with exactly these units and bytes is a duplicate.
      if (!same_units || !fragment_ends_before(e, ub) || !same_bytes(e, f)) {
        drop(i, FragmentEviction::overlap, now_ns);
        return {};
      }
      stats_.duplicates.bump();
    } else {
      if (!make_room(i, missing)) return {};
      store(e, f, r0, r1, ua, ub);
    }
    if (!f.more) {
      e.has_last = true;
      e.end = b;
    }
    if (e.has_last && e.held == e.end) return complete(i);
    return {};
  }

  void expire(int64_t now_ns) {
    while (live_.head != kNil && now_ns - entries_[live_.head].stamp_ns > timeout_ns_) {
      evict(live_.head, FragmentEviction::timeout, 0);
    }
    while (dead_.head != kNil && now_ns - entries_[dead_.head].stamp_ns > timeout_ns_) remove(dead_.head);
  }

  void publish() {
    stats_.datagrams.store(live_count_, std::memory_order_relaxed);
    stats_.bytes.store((chunk_count_ - free_chunk_count_) * kChunk, std::memory_order_relaxed);
  }

 private:
  static Key make_key(const IpFragment& f) {
    Key k;
    std::memcpy(&k.w[0], f.src.bytes, 16);
    std::memcpy(&k.w[2], f.dst.bytes, 16);
    k.w[4] = uint64_t{f.id} | uint64_t{f.version} << 32 | uint64_t{f.protocol} << 40;
    return k;
  }

  uint32_t hash(const Key& k) const {
    uint64_t h = seed_;
    for (const uint64_t w : k.w) {
      h = (h ^ w) * 0x9E3779B97F4A7C15ull;
      h ^= h >> 29;
    }
    return static_cast<uint32_t>(h >> 32);
  }

  uint32_t find(const Key& k, uint32_t h) const {
    for (uint32_t s = h & slot_mask_;; s = (s + 1) & slot_mask_) {
      const Slot& slot = slots_[s];
      if (slot.entry == kNil) return kNil;
      if (slot.hash == h && entries_[slot.entry].key == k) return slot.entry;
    }
  }

  void hash_insert(uint32_t i, uint32_t h) {
    uint32_t s = h & slot_mask_;
    while (slots_[s].entry != kNil) s = (s + 1) & slot_mask_;
    slots_[s] = {h, i};
  }

  // Linear probing with backward-shift deletion: no tombstones, so probe chains never grow stale.
  void hash_erase(uint32_t i) {
    uint32_t s = entries_[i].hash & slot_mask_;
    while (slots_[s].entry != i) s = (s + 1) & slot_mask_;
    for (uint32_t t = (s + 1) & slot_mask_; slots_[t].entry != kNil; t = (t + 1) & slot_mask_) {
      // The entry at t may fill the hole at s unless its home slot lies cyclically in (s, t].
      const uint32_t home = slots_[t].hash & slot_mask_;
      if (((t - home) & slot_mask_) >= ((t - s) & slot_mask_)) {
        slots_[s] = slots_[t];
        s = t;
      }
    }
    slots_[s].entry = kNil;
  }

  void push_back(AgeList& list, uint32_t i) {
    Entry& e = entries_[i];
    e.prev = list.tail;
    e.next = kNil;
    if (list.tail != kNil) {
      entries_[list.tail].next = i;
    } else {
      list.head = i;
    }
    list.tail = i;
  }

  void unlink(AgeList& list, uint32_t i) {
    const Entry& e = entries_[i];
    (e.prev != kNil ? entries_[e.prev].next : list.head) = e.next;
    (e.next != kNil ? entries_[e.next].prev : list.tail) = e.prev;
  }

  uint32_t create(const Key& key, uint32_t h, int64_t now_ns) {
    if (free_entry_ == kNil && fresh_entry_ == entry_count_) {
      if (dead_.head != kNil) {
        remove(dead_.head);  // dropped datagrams go first: they hold nothing
      } else {
        evict(live_.head, FragmentEviction::table_full, 0);
      }
    }
    const uint32_t i = free_entry_ != kNil ? free_entry_ : fresh_entry_++;
    Entry& e = entries_[i];
    if (i == free_entry_) free_entry_ = e.next;
    e.key = key;
    e.stamp_ns = now_ns;
    e.hash = h;
    e.held = e.end = e.max_end = e.fragments = 0;
    e.has_last = e.dead = false;
    std::fill(std::begin(e.mapped), std::end(e.mapped), 0);
    hash_insert(i, h);
    push_back(live_, i);
    ++live_count_;
    return i;
  }

  // Forgets entry i (live or dead) without counting anything.
  void remove(uint32_t i) {
    Entry& e = entries_[i];
    release_chunks(e);
    if (e.dead) {
      unlink(dead_, i);
    } else {
      unlink(live_, i);
      --live_count_;
    }
    hash_erase(i);
    e.next = free_entry_;
    free_entry_ = i;
  }

  // Gives up live entry i; `extra` fragments (the one being added) are thrown away with it.
  void evict(uint32_t i, FragmentEviction why, uint32_t extra) {
    stats_.evicted[static_cast<size_t>(why)].bump();
    stats_.evicted_fragments.bump(entries_[i].fragments + extra);
    remove(i);
  }

  // Gives up live entry i because of the fragment being added, and keeps its key as a dead entry
  // so that the rest of the datagram is discarded too.
  void drop(uint32_t i, FragmentEviction why, int64_t now_ns) {
    Entry& e = entries_[i];
    stats_.evicted[static_cast<size_t>(why)].bump();
    stats_.evicted_fragments.bump(e.fragments + 1);
    release_chunks(e);
    unlink(live_, i);
    --live_count_;
    e.dead = true;
    e.stamp_ns = now_ns;
    push_back(dead_, i);
  }

  void release_chunks(Entry& e) {
    for (uint32_t w = 0; w < kRegions / 64; ++w) {
      for (uint64_t m = e.mapped[w]; m != 0; m &= m - 1) {
        free_chunks_[free_chunk_count_++] = e.chunk[w * 64 + static_cast<uint32_t>(std::countr_zero(m))];
      }
      e.mapped[w] = 0;
    }
  }

  static bool is_mapped(const Entry& e, uint32_t r) { return (e.mapped[r / 64] >> (r % 64) & 1) != 0; }

  uint8_t* chunk_data(uint32_t c) { return arena_.get() + uint64_t{c} * kChunk; }

  // Whether the held fragment covering the unit before `u` ends there: unit u is free or starts another.
  bool fragment_ends_before(const Entry& e, uint32_t u) const {
    const uint32_t r = u / kUnitsPerChunk;
    if (r >= kRegions || !is_mapped(e, r)) return true;
    const ChunkBits& c = bits_[e.chunk[r]];
    const uint64_t bit = uint64_t{1} << (u % kUnitsPerChunk);
    return (c.covered & bit) == 0 || (c.starts & bit) != 0;
  }

  // Precondition: every region the fragment touches is mapped.
  bool same_bytes(const Entry& e, const IpFragment& f) {
    const uint32_t b = f.offset + f.data_len;
    for (uint32_t p = f.offset; p < b;) {
      const uint32_t n = std::min(b, (p / kChunk + 1) * kChunk) - p;
      if (std::memcmp(chunk_data(e.chunk[p / kChunk]) + p % kChunk, f.data + (p - f.offset), n) != 0) return false;
      p += n;
    }
    return true;
  }

  // Frees `need` chunks for entry i by evicting the oldest other datagrams; when that is not
  // enough, entry i itself is evicted and false returned.
  bool make_room(uint32_t i, uint32_t need) {
    while (free_chunk_count_ < need) {
      const uint32_t victim = live_.head != i ? live_.head : entries_[i].next;
      if (victim == kNil) {
        evict(i, FragmentEviction::memory, 1);
        return false;
      }
      evict(victim, FragmentEviction::memory, 0);
    }
    return true;
  }

  // Precondition: the fragment's units are free and make_room() succeeded.
  void store(Entry& e, const IpFragment& f, uint32_t r0, uint32_t r1, uint32_t ua, uint32_t ub) {
    for (uint32_t r = r0; r <= r1; ++r) {
      if (!is_mapped(e, r)) {
        const uint32_t c = free_chunks_[--free_chunk_count_];
        e.chunk[r] = c;
        e.mapped[r / 64] |= uint64_t{1} << (r % 64);
        bits_[c] = {};
      }
      const uint32_t base = r * kUnitsPerChunk;
      bits_[e.chunk[r]].covered |= bit_range(std::max(ua, base) - base, std::min(ub, base + kUnitsPerChunk) - base);
      const uint32_t p = std::max(f.offset, r * kChunk);
      const uint32_t n = std::min(f.offset + f.data_len, (r + 1) * kChunk) - p;
      std::memcpy(chunk_data(e.chunk[r]) + p % kChunk, f.data + (p - f.offset), n);
    }
    bits_[e.chunk[r0]].starts |= uint64_t{1} << (ua % kUnitsPerChunk);
    e.held += f.data_len;
    e.max_end = std::max(e.max_end, f.offset + f.data_len);
    ++e.fragments;
  }

  // Precondition: [0, end) is covered.
  Datagram complete(uint32_t i) {
    const Entry& e = entries_[i];
    const uint32_t len = e.end;
    for (uint32_t p = 0; p < len; p += kChunk) {
      std::memcpy(out_.get() + p, chunk_data(e.chunk[p / kChunk]), std::min(kChunk, len - p));
    }
    stats_.completed.bump();
    remove(i);
    return {out_.get(), len};
  }

  IpReassemblyStats& stats_;
  const int64_t timeout_ns_;
  uint64_t seed_ = 0;

  const uint32_t entry_count_;
  std::unique_ptr<Entry[]> entries_;
  // Entries are taken from the free list, else the next never-used one: the array's pages stay
  // untouched (and out of the resident set) until that many datagrams were in progress at once.
  uint32_t free_entry_ = kNil;
  uint32_t fresh_entry_ = 0;
  AgeList live_, dead_;  // oldest first
  uint32_t live_count_ = 0;

  const uint32_t slot_mask_;  // open-addressing index, at most half full
  std::unique_ptr<Slot[]> slots_;

  const uint32_t chunk_count_;
  std::unique_ptr<uint8_t[]> arena_;
  std::unique_ptr<ChunkBits[]> bits_;
  std::unique_ptr<uint32_t[]> free_chunks_;  // stack of free chunk indices
  uint32_t free_chunk_count_;

  std::unique_ptr<uint8_t[]> out_;  // the last completed datagram
};

// impl_ is built in the body: it keeps a reference to stats_, which is declared after it.
IpReassembler::IpReassembler(const IpReassemblyLimits& limits) { impl_ = std::make_unique<Impl>(limits, stats_); }

IpReassembler::~IpReassembler() = default;

IpReassembler::Datagram IpReassembler::add(const IpFragment& f, int64_t now_ns) {
  const Datagram d = impl_->add(f, now_ns);
  impl_->publish();
  return d;
}

void IpReassembler::expire(int64_t now_ns) {
  impl_->expire(now_ns);
  impl_->publish();
}

}  // namespace sipex
