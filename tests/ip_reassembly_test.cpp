#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "sipex/ip_reassembly.hpp"

namespace sipex {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

IpAddr addr(uint8_t version, uint8_t host) {
  IpAddr a{};
  a.family = version;
  if (version == 4) {
    const uint8_t v4[4] = {192, 0, 2, host};
    std::copy(v4, v4 + 4, a.bytes);
  } else {
    const uint8_t v6[4] = {0x20, 0x01, 0x0d, 0xb8};
    std::copy(v6, v6 + 4, a.bytes);
    a.bytes[15] = host;
  }
  return a;
}

// A random number in [0, n).
uint32_t below(std::mt19937& rng, uint32_t n) { return static_cast<uint32_t>(rng() % n); }

std::vector<uint8_t> payload(uint32_t len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> p(len);
  for (uint8_t& b : p) b = static_cast<uint8_t>(rng());
  return p;
}

// The fragment of `data` at [offset, offset + len) between 192.0.2.1 and 192.0.2.2 (or
// 2001:db8::1 and 2001:db8::2), UDP; `more` unless it reaches the end of `data`.
IpFragment frag(const std::vector<uint8_t>& data, uint32_t offset, uint32_t len, uint32_t id = 1,
                uint8_t version = 4) {
  IpFragment f{};
  f.src = addr(version, 1);
  f.dst = addr(version, 2);
  f.id = id;
  f.version = version;
  f.protocol = 17;
  f.more = offset + len < data.size();
  f.offset = offset;
  f.data = data.data() + offset;
  f.data_len = len;
  return f;
}

// `data` cut into fragments of `step` bytes (the last one shorter).
std::vector<IpFragment> split(const std::vector<uint8_t>& data, uint32_t step, uint32_t id = 1, uint8_t version = 4) {
  std::vector<IpFragment> out;
  const auto size = static_cast<uint32_t>(data.size());
  for (uint32_t off = 0; off < size; off += step) out.push_back(frag(data, off, std::min(step, size - off), id, version));
  return out;
}

std::vector<uint8_t> bytes(IpReassembler::Datagram d) { return {d.data, d.data + d.len}; }

// Adds `frags` in order and returns the datagram the last one completes; none before it may.
std::vector<uint8_t> feed(IpReassembler& r, const std::vector<IpFragment>& frags, int64_t now_ns = 0) {
  for (size_t i = 0; i + 1 < frags.size(); ++i) {
    EXPECT_FALSE(r.add(frags[i], now_ns)) << "fragment " << i << " completed early";
  }
  const IpReassembler::Datagram d = r.add(frags.back(), now_ns);
  EXPECT_TRUE(d);
  return bytes(d);
}

uint64_t evicted(const IpReassembler& r, FragmentEviction e) {
  return r.stats().evicted[static_cast<size_t>(e)].get();
}

uint64_t evicted_total(const IpReassembler& r) {
  uint64_t n = 0;
  for (const Counter& c : r.stats().evicted) n += c.get();
  return n;
}

void expect_idle(const IpReassembler& r) {
  EXPECT_EQ(r.stats().datagrams.load(), 0u);
  EXPECT_EQ(r.stats().bytes.load(), 0u);
}

TEST(IpReassemblyTest, in_order) {
  IpReassembler r;
  const auto data = payload(4000, 1);
  EXPECT_EQ(feed(r, split(data, 1480)), data);
  EXPECT_EQ(r.stats().fragments.get(), 3u);
  EXPECT_EQ(r.stats().completed.get(), 1u);
  EXPECT_EQ(evicted_total(r), 0u);
  expect_idle(r);
}

TEST(IpReassemblyTest, reverse_order) {
  IpReassembler r;
  const auto data = payload(9000, 2);
  auto frags = split(data, 1232);
  std::reverse(frags.begin(), frags.end());
  EXPECT_EQ(feed(r, frags), data);
  EXPECT_EQ(r.stats().completed.get(), 1u);
  expect_idle(r);
}

TEST(IpReassemblyTest, random_permutations_of_random_sizes) {
  IpReassembler r;
  std::mt19937 rng(3);
  for (uint32_t round = 0; round < 300; ++round) {
    // A few rounds of the smallest fragments the protocol allows, the rest mixed sizes.
    const uint32_t len = round < 3 ? 65535 : 1 + below(rng, 65535);
    const auto data = payload(len, round);
    std::vector<IpFragment> frags;
    for (uint32_t off = 0; off < len;) {
      const uint32_t step = round < 3 ? 8 : 8 * (1 + below(rng, 256));
      frags.push_back(frag(data, off, std::min(step, len - off), round, round % 2 ? 6 : 4));
      off += step;
    }
    std::shuffle(frags.begin(), frags.end(), rng);
    ASSERT_EQ(feed(r, frags), data) << "round " << round;
  }
  EXPECT_EQ(r.stats().completed.get(), 300u);
  EXPECT_EQ(evicted_total(r), 0u);
  EXPECT_EQ(r.stats().duplicates.get(), 0u);
  expect_idle(r);
}

TEST(IpReassemblyTest, ipv4_and_ipv6_with_same_id_do_not_mix) {
  IpReassembler r;
  const auto d4 = payload(3000, 4), d6 = payload(3000, 6);
  auto f4 = split(d4, 1480, 77, 4), f6 = split(d6, 1480, 77, 6);
  // Same address bytes too: only the version tells the two datagrams apart.
  for (IpFragment& f : f6) {
    f.src = f4[0].src;
    f.dst = f4[0].dst;
    f.src.family = f.dst.family = 6;
  }
  EXPECT_FALSE(r.add(f4[0], 0));
  EXPECT_FALSE(r.add(f6[0], 0));
  EXPECT_FALSE(r.add(f6[1], 0));
  EXPECT_FALSE(r.add(f4[1], 0));
  EXPECT_EQ(bytes(r.add(f4[2], 0)), d4);
  EXPECT_EQ(bytes(r.add(f6[2], 0)), d6);
  EXPECT_EQ(evicted_total(r), 0u);
  expect_idle(r);
}

TEST(IpReassemblyTest, addresses_and_protocol_are_part_of_the_key) {
  IpReassembler r;
  const auto a = payload(2000, 10), b = payload(2000, 11), c = payload(2000, 12);
  auto fa = split(a, 1000), fb = split(b, 1000), fc = split(c, 1000);
  for (IpFragment& f : fb) f.protocol = 6;
  for (IpFragment& f : fc) f.dst = addr(4, 3);
  EXPECT_FALSE(r.add(fa[0], 0));
  EXPECT_FALSE(r.add(fb[0], 0));
  EXPECT_FALSE(r.add(fc[0], 0));
  EXPECT_EQ(bytes(r.add(fc[1], 0)), c);
  EXPECT_EQ(bytes(r.add(fb[1], 0)), b);
  EXPECT_EQ(bytes(r.add(fa[1], 0)), a);
  expect_idle(r);
}

TEST(IpReassemblyTest, exact_duplicate_is_ignored) {
  IpReassembler r;
  const auto data = payload(4000, 13);
  const auto f = split(data, 1480);
  EXPECT_FALSE(r.add(f[1], 0));
  EXPECT_FALSE(r.add(f[1], 0));
  EXPECT_FALSE(r.add(f[2], 0));
  EXPECT_FALSE(r.add(f[2], 0));
  EXPECT_EQ(bytes(r.add(f[0], 0)), data);
  EXPECT_EQ(r.stats().duplicates.get(), 2u);
  EXPECT_EQ(evicted_total(r), 0u);
  expect_idle(r);
}

TEST(IpReassemblyTest, partial_overlap_evicts_and_drops_the_rest) {
  IpReassemblyLimits limits;
  limits.timeout_ns = 10 * kSecond;
  IpReassembler r(limits);
  const auto data = payload(48, 14);
  EXPECT_FALSE(r.add(frag(data, 0, 16), 0));
  EXPECT_FALSE(r.add(frag(data, 8, 16), 0));  // overlaps [8, 16)
  EXPECT_EQ(evicted(r, FragmentEviction::overlap), 1u);
  EXPECT_EQ(r.stats().evicted_fragments.get(), 2u);
  expect_idle(r);
  // The rest of that datagram is dropped, even fragments that would complete it.
  EXPECT_FALSE(r.add(frag(data, 16, 32), kSecond));
  EXPECT_FALSE(r.add(frag(data, 0, 16), kSecond));
  EXPECT_EQ(r.stats().evicted_fragments.get(), 4u);
  EXPECT_EQ(evicted_total(r), 1u);
  expect_idle(r);
  // After the timeout the key is free again.
  EXPECT_EQ(feed(r, split(data, 16), 11 * kSecond), data);
}

TEST(IpReassemblyTest, containing_or_contained_fragments_are_overlaps) {
  IpReassembler r;
  const auto data = payload(64, 15);
  // A fragment inside a held one (Linux would ignore it; RFC 5722 says drop).
  EXPECT_FALSE(r.add(frag(data, 0, 32, 1), 0));
  EXPECT_FALSE(r.add(frag(data, 8, 16, 1), 0));
  // A fragment spanning two held ones, same bytes.
  EXPECT_FALSE(r.add(frag(data, 0, 16, 2), 0));
  EXPECT_FALSE(r.add(frag(data, 16, 16, 2), 0));
  EXPECT_FALSE(r.add(frag(data, 0, 32, 2), 0));
  // A prefix of a held fragment, same bytes.
  EXPECT_FALSE(r.add(frag(data, 0, 32, 3), 0));
  EXPECT_FALSE(r.add(frag(data, 0, 16, 3), 0));
  // The last fragment overlapping the tail of a held one.
  EXPECT_FALSE(r.add(frag(data, 0, 40, 4), 0));
  EXPECT_FALSE(r.add(frag(data, 32, 32, 4), 0));
  EXPECT_EQ(evicted(r, FragmentEviction::overlap), 4u);
  EXPECT_EQ(r.stats().duplicates.get(), 0u);
  expect_idle(r);
}

TEST(IpReassemblyTest, same_range_different_bytes_evicts) {
  IpReassembler r;
  const auto data = payload(3000, 16);
  auto other = data;
  other[100] ^= 1;
  EXPECT_FALSE(r.add(frag(data, 0, 1480), 0));
  EXPECT_FALSE(r.add(frag(other, 0, 1480), 0));
  EXPECT_EQ(evicted(r, FragmentEviction::overlap), 1u);
  EXPECT_EQ(r.stats().duplicates.get(), 0u);
  EXPECT_FALSE(r.add(frag(data, 1480, 1520), 0));
  EXPECT_EQ(r.stats().completed.get(), 0u);
  expect_idle(r);
}

TEST(IpReassemblyTest, misshapen_fragments_are_invalid) {
  IpReassembler r;
  const auto data = payload(100, 17);
  // A middle fragment whose length is not a multiple of 8.
  EXPECT_FALSE(r.add(frag(data, 0, 16, 1), 0));
  EXPECT_FALSE(r.add(frag(data, 16, 12, 1), 0));
  EXPECT_EQ(evicted(r, FragmentEviction::invalid), 1u);
  EXPECT_EQ(r.stats().evicted_fragments.get(), 2u);
  // An offset that is not a multiple of 8.
  EXPECT_FALSE(r.add(frag(data, 4, 16, 2), 0));
  // An empty fragment.
  EXPECT_FALSE(r.add(frag(data, 16, 0, 3), 0));
  EXPECT_EQ(evicted(r, FragmentEviction::invalid), 3u);
  EXPECT_EQ(evicted_total(r), 3u);
  expect_idle(r);
}

TEST(IpReassemblyTest, inconsistent_ends_are_invalid) {
  IpReassembler r;
  const auto data = payload(100, 18);
  // Two last fragments with different ends.
  EXPECT_FALSE(r.add(frag(data, 40, 60, 1), 0));
  IpFragment shorter = frag(data, 40, 48, 1);
  shorter.more = false;
  EXPECT_FALSE(r.add(shorter, 0));
  // Data past the known end: [96, 104) with more fragments, the end being 100.
  EXPECT_FALSE(r.add(frag(data, 80, 20, 2), 0));
  IpFragment past = frag(data, 0, 8, 2);
  past.offset = 96;
  EXPECT_FALSE(r.add(past, 0));
  // A last fragment ending before data already held.
  EXPECT_FALSE(r.add(frag(data, 64, 16, 3), 0));
  IpFragment early_end = frag(data, 8, 32, 3);
  early_end.more = false;
  EXPECT_FALSE(r.add(early_end, 0));
  EXPECT_EQ(evicted(r, FragmentEviction::invalid), 3u);
  EXPECT_EQ(evicted_total(r), 3u);
  EXPECT_EQ(r.stats().evicted_fragments.get(), 6u);
  expect_idle(r);
}

TEST(IpReassemblyTest, end_beyond_65535_is_too_large) {
  IpReassembler r;
  const auto big = payload(65536, 19);
  EXPECT_FALSE(r.add(frag(big, 0, 32768), 0));
  EXPECT_FALSE(r.add(frag(big, 32768, 32768), 0));
  EXPECT_EQ(evicted(r, FragmentEviction::too_large), 1u);
  EXPECT_EQ(r.stats().evicted_fragments.get(), 2u);
  expect_idle(r);
  // 65535 bytes is the largest datagram, and it completes.
  const auto max = payload(65535, 20);
  EXPECT_EQ(feed(r, split(max, 32768, 2)), max);
  EXPECT_EQ(evicted_total(r), 1u);
}

TEST(IpReassemblyTest, whole_datagram_in_one_fragment_is_returned_at_once) {
  IpReassembler r;
  const auto data = payload(3000, 21);
  const auto f = split(data, 1480, 5, 6);
  EXPECT_FALSE(r.add(f[0], 0));
  // An atomic fragment with the same id is its own datagram (RFC 6946).
  const auto atomic = payload(300, 22);
  EXPECT_EQ(bytes(r.add(frag(atomic, 0, 300, 5, 6), 0)), atomic);
  EXPECT_FALSE(r.add(f[1], 0));
  EXPECT_EQ(bytes(r.add(f[2], 0)), data);
  EXPECT_EQ(r.stats().completed.get(), 2u);
  expect_idle(r);
}

TEST(IpReassemblyTest, timeout_uses_packet_time) {
  IpReassemblyLimits limits;
  limits.timeout_ns = 10 * kSecond;
  IpReassembler r(limits);
  const int64_t t0 = 1'700'000'000 * kSecond;
  const auto data = payload(3000, 23);
  const auto f = split(data, 1480);
  EXPECT_FALSE(r.add(f[0], t0));
  EXPECT_FALSE(r.add(f[1], t0 + kSecond));
  r.expire(t0 + 10 * kSecond);  // exactly the timeout: still in time
  EXPECT_EQ(r.stats().datagrams.load(), 1u);
  // Any fragment carries the clock forward.
  const auto other = payload(100, 24);
  EXPECT_FALSE(r.add(frag(other, 0, 48, 9), t0 + 10 * kSecond + 1));
  EXPECT_EQ(evicted(r, FragmentEviction::timeout), 1u);
  EXPECT_EQ(r.stats().evicted_fragments.get(), 2u);
  EXPECT_EQ(r.stats().datagrams.load(), 1u);  // the other one
  // The straggler starts a new datagram that cannot complete.
  EXPECT_FALSE(r.add(f[2], t0 + 11 * kSecond));
  EXPECT_EQ(r.stats().datagrams.load(), 2u);
  r.expire(t0 + 30 * kSecond);
  EXPECT_EQ(evicted(r, FragmentEviction::timeout), 3u);
  EXPECT_EQ(r.stats().completed.get(), 0u);
  expect_idle(r);
}

TEST(IpReassemblyTest, table_full_evicts_the_oldest) {
  IpReassemblyLimits limits;
  limits.max_datagrams = 4;
  IpReassembler r(limits);
  std::vector<std::vector<uint8_t>> data;
  for (uint32_t id = 0; id < 5; ++id) data.push_back(payload(2000, 100 + id));
  for (uint32_t id = 0; id < 5; ++id) {
    EXPECT_FALSE(r.add(frag(data[id], 0, 1000, id), id));
    EXPECT_LE(r.stats().datagrams.load(), 4u);
  }
  EXPECT_EQ(evicted(r, FragmentEviction::table_full), 1u);
  EXPECT_EQ(r.stats().evicted_fragments.get(), 1u);
  for (uint32_t id = 1; id < 5; ++id) EXPECT_EQ(bytes(r.add(frag(data[id], 1000, 1000, id), 10)), data[id]);
  EXPECT_FALSE(r.add(frag(data[0], 1000, 1000, 0), 10));  // its first half is gone
  EXPECT_EQ(r.stats().datagrams.load(), 1u);
}

TEST(IpReassemblyTest, table_full_recycles_dropped_datagrams_first) {
  IpReassemblyLimits limits;
  limits.max_datagrams = 2;
  IpReassembler r(limits);
  const auto data = payload(2000, 25);
  EXPECT_FALSE(r.add(frag(data, 0, 1000, 1), 0));
  EXPECT_FALSE(r.add(frag(data, 8, 1000, 1), 0));  // overlap: id 1 is dropped, its key remembered
  EXPECT_FALSE(r.add(frag(data, 0, 1000, 2), 1));
  EXPECT_FALSE(r.add(frag(data, 0, 1000, 3), 2));  // takes the place of the dropped one
  EXPECT_EQ(evicted(r, FragmentEviction::table_full), 0u);
  EXPECT_FALSE(r.add(frag(data, 0, 1000, 4), 3));
  EXPECT_EQ(evicted(r, FragmentEviction::table_full), 1u);  // id 2
  EXPECT_EQ(bytes(r.add(frag(data, 1000, 1000, 3), 4)), data);
  EXPECT_EQ(bytes(r.add(frag(data, 1000, 1000, 4), 4)), data);
  expect_idle(r);
}

TEST(IpReassemblyTest, memory_evicts_the_oldest_until_there_is_room) {
  IpReassemblyLimits limits;
  limits.max_bytes = 4096;
  IpReassembler r(limits);
  const auto a = payload(3072, 26), b = payload(3072, 27), c = payload(3072, 28);
  EXPECT_FALSE(r.add(frag(a, 0, 1024, 1), 0));
  EXPECT_FALSE(r.add(frag(a, 1024, 1024, 1), 1));
  EXPECT_FALSE(r.add(frag(b, 0, 1024, 2), 2));
  EXPECT_FALSE(r.add(frag(b, 1024, 1024, 2), 3));
  EXPECT_EQ(r.stats().bytes.load(), 4096u);
  EXPECT_FALSE(r.add(frag(c, 0, 1024, 3), 4));  // a goes
  EXPECT_EQ(evicted(r, FragmentEviction::memory), 1u);
  EXPECT_EQ(r.stats().evicted_fragments.get(), 2u);
  EXPECT_EQ(r.stats().datagrams.load(), 2u);
  EXPECT_EQ(bytes(r.add(frag(b, 2048, 1024, 2), 5)), b);
  EXPECT_EQ(r.stats().bytes.load(), 1024u);

  // Small datagrams (one 512-byte chunk each): as many of the oldest go as needed.
  IpReassembler s(limits);
  const auto tiny = payload(16, 29);
  for (uint32_t id = 0; id < 8; ++id) EXPECT_FALSE(s.add(frag(tiny, 0, 8, id), id));
  EXPECT_EQ(s.stats().datagrams.load(), 8u);
  EXPECT_FALSE(s.add(frag(c, 0, 2048, 100), 10));
  EXPECT_EQ(evicted(s, FragmentEviction::memory), 4u);
  EXPECT_EQ(s.stats().datagrams.load(), 5u);
  EXPECT_EQ(bytes(s.add(frag(tiny, 8, 8, 4), 11)), tiny);  // the newer ones are still there
  EXPECT_FALSE(s.add(frag(tiny, 8, 8, 3), 11));           // the older ones are not
  EXPECT_EQ(s.stats().completed.get(), 1u);
}

TEST(IpReassemblyTest, datagram_larger_than_memory_is_evicted) {
  IpReassemblyLimits limits;
  limits.max_bytes = 2048;
  IpReassembler r(limits);
  const auto data = payload(3072, 30);
  const auto f = split(data, 1024);
  EXPECT_FALSE(r.add(f[0], 0));
  EXPECT_FALSE(r.add(f[1], 0));
  EXPECT_FALSE(r.add(f[2], 0));
  EXPECT_EQ(evicted(r, FragmentEviction::memory), 1u);
  EXPECT_EQ(r.stats().evicted_fragments.get(), 3u);
  expect_idle(r);
  // Smaller datagrams still fit afterwards.
  const auto small = payload(2048, 31);
  EXPECT_EQ(feed(r, split(small, 1024, 2)), small);
}

// The rules written plainly (fragments in a list, every check a scan), to compare against.
class ReferenceModel {
 public:
  struct Result {
    std::vector<uint8_t> datagram;  // when completed
    bool completed = false, duplicate = false;
    int eviction = -1;               // FragmentEviction, or -1
    uint64_t evicted_fragments = 0;
  };

  Result add(const IpFragment& f) {
    Result res;
    const std::vector<uint8_t> data(f.data, f.data + f.data_len);
    if (f.offset == 0 && !f.more) {
      res.completed = true;
      res.datagram = data;
      return res;
    }
    Datagram& d = datagrams_[f.id];
    if (d.dead) {
      res.evicted_fragments = 1;
      return res;
    }
    const uint64_t end = uint64_t{f.offset} + f.data_len;
    uint64_t max_end = 0, held = 0;
    for (const Held& h : d.held) {
      max_end = std::max<uint64_t>(max_end, h.offset + h.bytes.size());
      held += h.bytes.size();
    }
    if (end > 65535) return drop(d, FragmentEviction::too_large);
    if (f.data_len == 0 || f.offset % 8 != 0 || (f.more && f.data_len % 8 != 0)) {
      return drop(d, FragmentEviction::invalid);
    }
    if (f.more ? (d.has_last && end > d.end) : (d.has_last ? end != d.end : max_end > end)) {
      return drop(d, FragmentEviction::invalid);
    }
    for (const Held& h : d.held) {
      if (h.offset < end && f.offset < h.offset + h.bytes.size()) {
        if (h.offset != f.offset || h.bytes != data) return drop(d, FragmentEviction::overlap);
        res.duplicate = true;
      }
    }
    if (!res.duplicate) {
      d.held.push_back({f.offset, data});
      held += data.size();
    }
    if (!f.more) {
      d.has_last = true;
      d.end = static_cast<uint32_t>(end);
    }
    if (d.has_last && held == d.end) {
      res.completed = true;
      res.datagram.resize(d.end);
      for (const Held& h : d.held) std::copy(h.bytes.begin(), h.bytes.end(), res.datagram.begin() + h.offset);
      datagrams_.erase(f.id);
    }
    return res;
  }

  // Forgets everything, as expiry does; returns the datagrams and fragments given up.
  std::pair<uint64_t, uint64_t> expire_all() {
    uint64_t datagrams = 0, fragments = 0;
    for (const auto& [id, d] : datagrams_) {
      if (d.dead) continue;
      ++datagrams;
      fragments += d.held.size();
    }
    datagrams_.clear();
    return {datagrams, fragments};
  }

 private:
  struct Held {
    uint32_t offset;
    std::vector<uint8_t> bytes;
  };
  struct Datagram {
    std::vector<Held> held;
    bool has_last = false, dead = false;
    uint32_t end = 0;
  };

  static Result drop(Datagram& d, FragmentEviction why) {
    Result res;
    res.eviction = static_cast<int>(why);
    res.evicted_fragments = d.held.size() + 1;
    d = Datagram{};
    d.dead = true;
    return res;
  }

  std::map<uint32_t, Datagram> datagrams_;
};

TEST(IpReassemblyTest, random_fragments_match_a_reference_model) {
  IpReassemblyLimits limits;
  limits.timeout_ns = kSecond;
  IpReassembler r(limits);
  ReferenceModel model;
  std::mt19937 rng(36);
  // Fragments mostly agree on the bytes at each offset; a few carry different bytes.
  const auto truth = payload(1200, 37), other = payload(1200, 38);
  using Plan = std::vector<std::pair<uint32_t, uint32_t>>;  // offset, length
  const auto new_plan = [&rng] {
    Plan p;
    const auto end = 129 + below(rng, 400);  // two pieces at least
    for (uint32_t off = 0; off < end;) {
      const uint32_t len = std::min(end - off, 8 * (1 + below(rng, 16)));
      p.emplace_back(off, len);
      off += len;
    }
    return p;
  };
  const auto plan_end = [](const Plan& p) { return p.back().first + p.back().second; };
  std::vector<Plan> plans(4);
  for (auto& p : plans) p = new_plan();
  int64_t now = 0;
  uint64_t completed = 0, reassembled = 0, duplicates = 0, evicted_fragments = 0;
  uint64_t evictions[kFragmentEvictionCount] = {};
  for (uint32_t i = 0; i < 200'000; ++i) {
    if (i % 64 == 63) {
      now += 2 * kSecond;
      r.expire(now);
      const auto [datagrams, fragments] = model.expire_all();
      evictions[static_cast<size_t>(FragmentEviction::timeout)] += datagrams;
      evicted_fragments += fragments;
      for (auto& p : plans) p = new_plan();
    }
    // Mostly pieces of a planned datagram per id (in any order, some repeated); the rest random:
    // far, unaligned, oddly sized, near 65535, with wrong flags or different bytes.
    const auto id = below(rng, 4);
    IpFragment f;
    if (below(rng, 4) != 0) {
      const auto [offset, len] = plans[id][below(rng, static_cast<uint32_t>(plans[id].size()))];
      f = frag(truth, offset, len, id);
      f.more = offset + len < plan_end(plans[id]);
    } else {
      const auto roll = below(rng, 100);
      uint32_t offset = 8 * below(rng, 130);
      const uint32_t len = roll < 70 ? 8 * (1 + below(rng, 8)) : 1 + below(rng, 70);
      if (roll < 5) offset = 65520 + 8 * (roll % 2);
      if (roll == 5) offset += 4;
      f = frag(roll < 50 ? other : truth, std::min(offset, 1136u), len, id);
      f.offset = offset;
      f.more = below(rng, 3) != 0;
    }
    const ReferenceModel::Result want = model.add(f);
    const IpReassembler::Datagram got = r.add(f, now);
    ASSERT_EQ(bool(got), want.completed) << "fragment " << i;
    if (got) {
      ASSERT_EQ(bytes(got), want.datagram) << "fragment " << i;
    }
    completed += want.completed;
    if (want.completed && (f.offset != 0 || f.more)) {
      ++reassembled;
      plans[id] = new_plan();
    }
    duplicates += want.duplicate;
    if (want.eviction >= 0) ++evictions[want.eviction];
    evicted_fragments += want.evicted_fragments;
    ASSERT_EQ(r.stats().completed.get(), completed) << "fragment " << i;
    ASSERT_EQ(r.stats().duplicates.get(), duplicates) << "fragment " << i;
    ASSERT_EQ(r.stats().evicted_fragments.get(), evicted_fragments) << "fragment " << i;
    for (size_t e = 0; e < kFragmentEvictionCount; ++e) {
      ASSERT_EQ(r.stats().evicted[e].get(), evictions[e]) << "fragment " << i << " reason " << e;
    }
  }
  // Every outcome the model knows happened often.
  EXPECT_GT(reassembled, 1000u);
  EXPECT_GT(duplicates, 1000u);
  for (const FragmentEviction e : {FragmentEviction::timeout, FragmentEviction::overlap, FragmentEviction::too_large,
                                   FragmentEviction::invalid}) {
    EXPECT_GT(evictions[static_cast<size_t>(e)], 100u) << fragment_eviction_name(e);
  }
}

TEST(IpReassemblyTest, orphan_flood_stays_bounded) {
  IpReassemblyLimits limits;
  limits.max_datagrams = 1024;
  limits.max_bytes = 1u << 20;
  IpReassembler r(limits);
  const auto junk = payload(1480, 32);
  std::vector<std::vector<uint8_t>> legit;
  for (uint32_t n = 0; n < 16; ++n) legit.push_back(payload(3000, 1000 + n));
  std::mt19937 rng(33);
  constexpr uint32_t kOrphans = 1'000'000;
  uint32_t legit_fragments = 0, legit_completed = 0;
  int64_t now = 0;
  for (uint32_t i = 0; i < kOrphans; ++i, now += 1000) {
    // A legitimate datagram every 1000 orphans, its three fragments 50 orphans apart, last first.
    const uint32_t n = i / 1000;
    const auto& data = legit[n % legit.size()];
    const uint32_t phase = i % 1000;
    if (phase == 0 || phase == 50 || phase == 100) {
      const uint32_t offset = phase == 0 ? 2960 : phase == 50 ? 0 : 1480;
      const IpReassembler::Datagram d = r.add(frag(data, offset, std::min(1480u, 3000 - offset), n), now);
      ++legit_fragments;
      if (phase == 100) {
        ASSERT_TRUE(d) << "datagram " << n;
        ASSERT_TRUE(std::equal(data.begin(), data.end(), d.data, d.data + d.len)) << "datagram " << n;
        ++legit_completed;
      } else {
        ASSERT_FALSE(d);
      }
    }
    // An orphan: a first fragment from another host, distinct pseudo-random id, random size.
    IpFragment f = frag(junk, 0, 8 * (1 + below(rng, 185)), i * 0x9E3779B1u);
    f.more = true;
    f.src = addr(4, 99);
    ASSERT_FALSE(r.add(f, now));
    ASSERT_LE(r.stats().datagrams.load(), limits.max_datagrams);
    ASSERT_LE(r.stats().bytes.load(), limits.max_bytes);
  }
  EXPECT_EQ(legit_completed, 1000u);
  EXPECT_GT(evicted(r, FragmentEviction::table_full), 0u);
  EXPECT_GT(evicted(r, FragmentEviction::memory), 0u);
  const uint64_t in_progress = r.stats().datagrams.load();
  EXPECT_EQ(evicted(r, FragmentEviction::table_full) + evicted(r, FragmentEviction::memory) + in_progress, kOrphans);
  r.expire(now + limits.timeout_ns + 1);
  EXPECT_EQ(evicted(r, FragmentEviction::timeout), in_progress);
  EXPECT_EQ(evicted_total(r), kOrphans);
  // Every fragment is accounted for: completed, or thrown away.
  EXPECT_EQ(r.stats().fragments.get(), uint64_t{kOrphans} + legit_fragments);
  EXPECT_EQ(r.stats().evicted_fragments.get(), kOrphans);
  EXPECT_EQ(r.stats().duplicates.get(), 0u);
  expect_idle(r);
}

TEST(IpReassemblyTest, gauges_follow_what_is_held) {
  IpReassemblyLimits limits;
  limits.timeout_ns = kSecond;
  IpReassembler r(limits);
  const auto a = payload(3000, 34), b = payload(3000, 35);
  EXPECT_FALSE(r.add(frag(a, 0, 1480, 1), 0));
  EXPECT_EQ(r.stats().datagrams.load(), 1u);
  const uint32_t one = r.stats().bytes.load();
  EXPECT_GE(one, 1480u);
  EXPECT_FALSE(r.add(frag(b, 0, 1480, 2), 0));
  EXPECT_EQ(r.stats().datagrams.load(), 2u);
  EXPECT_EQ(r.stats().bytes.load(), 2 * one);
  EXPECT_FALSE(r.add(frag(a, 1480, 1480, 1), 0));
  EXPECT_GT(r.stats().bytes.load(), 2 * one);
  EXPECT_EQ(bytes(r.add(frag(a, 2960, 40, 1), 0)), a);
  EXPECT_EQ(r.stats().datagrams.load(), 1u);
  EXPECT_EQ(r.stats().bytes.load(), one);
  r.expire(2 * kSecond);
  expect_idle(r);
}

TEST(IpReassemblyTest, eviction_names) {
  EXPECT_EQ(fragment_eviction_name(FragmentEviction::timeout), "timeout");
  EXPECT_EQ(fragment_eviction_name(FragmentEviction::table_full), "table_full");
  EXPECT_EQ(fragment_eviction_name(FragmentEviction::memory), "memory");
  EXPECT_EQ(fragment_eviction_name(FragmentEviction::overlap), "overlap");
  EXPECT_EQ(fragment_eviction_name(FragmentEviction::too_large), "too_large");
  EXPECT_EQ(fragment_eviction_name(FragmentEviction::invalid), "invalid");
}

}  // namespace
}  // namespace sipex
