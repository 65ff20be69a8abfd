#include "sipex/aggregate.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>

namespace sipex {
namespace {

constexpr std::string_view kDirections[kDirectionCount] = {"unknown", "inbound", "outbound"};

}  // namespace

std::string_view direction_name(Direction d) { return kDirections[static_cast<size_t>(d)]; }

std::string_view path_name(Path p) {
  static constexpr std::string_view kPaths[kPathCount] = {"udp", "tcp", "sctp", "ip_fragment"};
  return kPaths[static_cast<size_t>(p)];
}

// ---- PeerRegistry ----

// ---- NetworkTable ----

namespace {

// The words (as address_words() reads them) with the first `prefix` bits of the address set.
void prefix_mask(unsigned prefix, uint64_t m[2]) {
  uint8_t bytes[16];
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned bits = prefix > 8 * i ? std::min(8u, prefix - 8 * i) : 0;
    bytes[i] = static_cast<uint8_t>(0xFF00 >> bits);
  }
  std::memcpy(m, bytes, 16);
}

}  // namespace

NetworkTable::NetworkTable(const std::vector<std::pair<Cidr, int>>& nets) {
  for (const std::pair<Cidr, int>& n : nets) {
    std::vector<Length>& lengths = lengths_[n.first.net.family == 6];
    const uint8_t prefix = n.first.prefix;
    if (std::none_of(lengths.begin(), lengths.end(), [prefix](const Length& l) { return l.prefix == prefix; })) {
      lengths.push_back({prefix, {0, 0}});
      prefix_mask(prefix, lengths.back().mask);
    }
  }
  for (std::vector<Length>& lengths : lengths_) {
    std::sort(lengths.begin(), lengths.end(), [](const Length& a, const Length& b) { return a.prefix > b.prefix; });
  }
  slots_.resize(std::bit_ceil(std::max<size_t>(16, 2 * nets.size())));
  mask_ = static_cast<uint32_t>(slots_.size() - 1);
  for (const auto& [c, value] : nets) {
    uint64_t net[2], m[2];
    address_words(c.net, net);
    prefix_mask(c.prefix, m);
    net[0] &= m[0];
    net[1] &= m[1];
    Slot& s = slots_[probe(net, c.net.family, c.prefix)];
    if (!s.used) s = Slot{{net[0], net[1]}, c.net.family, c.prefix, true, value};  // else an identical one came first
  }
}

uint32_t NetworkTable::probe(const uint64_t net[2], uint8_t family, uint8_t prefix) const {
  for (uint32_t i = address_words_hash(net[0], net[1], uint64_t{prefix} << 8 | family) & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (!s.used || (s.net[0] == net[0] && s.net[1] == net[1] && s.family == family && s.prefix == prefix)) return i;
  }
}

int NetworkTable::find(const IpAddr& a) const {
  if (slots_.empty()) return -1;
  uint64_t w[2];
  address_words(a, w);
  for (const Length& l : lengths_[a.family == 6]) {
    const uint64_t net[2] = {w[0] & l.mask[0], w[1] & l.mask[1]};
    const Slot& s = slots_[probe(net, a.family, l.prefix)];
    if (s.used) return s.value;
  }
  return -1;
}

void PeerMap::index() {
  std::vector<std::pair<Cidr, int>> nets;
  for (const Cidr& c : home) nets.emplace_back(c, 1);
  home_table = NetworkTable(nets);
  nets.clear();
  for (const NamedNet& n : named) nets.emplace_back(n.net, n.id);
  named_table = NetworkTable(nets);
}

PeerRegistry::PeerRegistry(const Config& cfg) : max_peers_(cfg.max_peers) {
  names_.reset(new std::string[size_t{max_peers_} + 1]);
  {
    std::lock_guard<std::mutex> lock(mu_);
    add_name("other");
  }
  const uint32_t cap = std::bit_ceil(std::max<uint32_t>(64, 2 * (max_peers_ + 1)));
  slots_.reset(new Slot[cap]);
  mask_ = cap - 1;
  apply(cfg);
}

std::vector<std::string> PeerRegistry::apply(const Config& cfg) {
  auto map = std::make_shared<PeerMap>();
  map->home = cfg.home_networks;
  std::vector<std::string> left_out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const PeerDef& p : cfg.peers) {
    auto it = named_ids_.find(p.name);
    if (it == named_ids_.end()) {
      if (!room()) {
        left_out.push_back(p.name);
        continue;
      }
      it = named_ids_.emplace(p.name, add_name(p.name)).first;
    }
    for (const Cidr& c : p.networks) map->named.push_back({c, it->second});
  }
  std::stable_sort(map->named.begin(), map->named.end(),
                   [](const PeerMap::NamedNet& a, const PeerMap::NamedNet& b) { return a.net.prefix > b.net.prefix; });
  map->index();
  map_ = std::move(map);
  if (!room()) full_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return left_out;
}

std::shared_ptr<const PeerMap> PeerRegistry::map() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_;
}

int PeerRegistry::find(const IpAddr& a, uint32_t* free_slot) const {
  for (uint32_t i = address_hash(a) & mask_;; i = (i + 1) & mask_) {
    const uint32_t v = slots_[i].id_plus1.load(std::memory_order_acquire);
    if (v == 0) {
      if (free_slot != nullptr) *free_slot = i;
      return -1;
    }
    if (slots_[i].addr == a) return static_cast<int>(v - 1);
  }
}

PeerId PeerRegistry::intern(const IpAddr& a) {
  if (const int id = find(a, nullptr); id >= 0) return static_cast<PeerId>(id);
  if (full()) return kPeerOther;
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t slot = 0;
  if (const int id = find(a, &slot); id >= 0) return static_cast<PeerId>(id);  // registered meanwhile
  if (!room()) {
    full_.store(true, std::memory_order_release);
    return kPeerOther;
  }
  const PeerId id = add_name(a.to_string());
  slots_[slot].addr = a;
  slots_[slot].id_plus1.store(uint32_t{id} + 1, std::memory_order_release);
  if (!room()) full_.store(true, std::memory_order_release);
  return id;
}

PeerId PeerRegistry::add_name(std::string name) {
  const size_t id = count_.load(std::memory_order_relaxed);
  names_[id] = std::move(name);
  count_.store(id + 1, std::memory_order_release);
  return static_cast<PeerId>(id);
}

// ---- PeerResolver ----

PeerResolver::PeerResolver(PeerRegistry& reg, const Config& cfg)
    : reg_(reg), map_(reg.map()), generation_(reg.generation()) {
  // Room for every registered peer and as many home addresses at most half full: below that many
  // addresses the cache is never emptied.
  const uint32_t cap = std::bit_ceil(std::max<uint32_t>(1024, 4 * (cfg.max_peers + 1)));
  table_.reset(new Entry[cap]());
  mask_ = cap - 1;
}

void PeerResolver::refresh() {
  generation_ = reg_.generation();
  map_ = reg_.map();
  clear();
}

void PeerResolver::clear() {
  std::fill(table_.get(), table_.get() + mask_ + 1, Entry{});
  size_ = 0;
}

PeerResolver::Entry& PeerResolver::entry(const IpAddr& a) {
  uint32_t i = address_hash(a) & mask_;
  for (;;) {
    Entry& e = table_[i];
    if (!e.used) break;
    if (e.addr == a) return e;
    i = (i + 1) & mask_;
  }
  // Miss: classify the address once. The cache is kept at most half full, so probes stay short;
  // once that many addresses came since it was last emptied, it is emptied and fills again with
  // the ones that come next. Nothing is lost with an entry: ids are never reassigned, and an
  // address is "other" for good once the registry is full, so an address classified again gets
  // the same answer (from the registry's lock-free lookup, never its mutex, once it has an id).
  if (size_ >= (mask_ + 1) / 2) {
    clear();
    i = address_hash(a) & mask_;
  }
  ++size_;
  Entry& e = table_[i];
  e.addr = a;
  e.used = 1;
  e.resolved = 0;
  e.home = map_->is_home(a);
  return e;
}

PeerId PeerResolver::peer_of(Entry& e) {
  if (e.resolved) return e.peer;
  const int named = map_->named_peer(e.addr);
  // Final either way: ids are never reassigned, and once the cap is reached an unknown address
  // stays unknown.
  e.peer = named >= 0 ? static_cast<PeerId>(named) : reg_.intern(e.addr);
  e.resolved = 1;
  return e.peer;
}

bool PeerResolver::known_peer_of(Entry& e, PeerId* out) {
  if (!e.resolved) {
    int id = map_->named_peer(e.addr);
    if (id < 0) id = reg_.lookup(e.addr);  // an address of its own, registered before
    if (id < 0) {
      if (!reg_.full()) return false;  // peer_of() would register it
      id = kPeerOther;                 // what peer_of() would answer, for good
    }
    e.peer = static_cast<PeerId>(id);
    e.resolved = 1;
  }
  *out = e.peer;
  return true;
}

template <bool kMayRegister>
bool PeerResolver::attribute_impl(const IpAddr& src, const IpAddr& dst, Attribution* out) {
  // One load a message (plain on x86); a reload changes the generation.
  if (reg_.generation() != generation_) refresh();
  auto peer = [this](Entry& e, PeerId* p) {
    if constexpr (kMayRegister) {
      *p = peer_of(e);
      return true;
    } else {
      return known_peer_of(e, p);
    }
  };
  if (map_->home.empty()) {
    out->direction = Direction::unknown;
    return peer(entry(src), &out->peer);
  }
  Entry& s = entry(src);
  const bool src_home = s.home;
  PeerId src_peer = 0;
  if (!src_home && !peer(s, &src_peer)) return false;  // before entry(dst) may empty the cache
  Entry& d = entry(dst);
  if (src_home && !d.home) {
    out->direction = Direction::outbound;
    return peer(d, &out->peer);
  }
  if (!src_home && d.home) {
    *out = {src_peer, Direction::inbound};
    return true;
  }
  if (src_home) {
    out->direction = Direction::unknown;
    return peer(entry(src), &out->peer);
  }
  *out = {src_peer, Direction::unknown};
  return true;
}

PeerResolver::Attribution PeerResolver::attribute(const IpAddr& src, const IpAddr& dst) {
  Attribution a{};
  attribute_impl<true>(src, dst, &a);
  return a;
}

bool PeerResolver::attribute_if_registered(const IpAddr& src, const IpAddr& dst, Attribution* out) {
  return attribute_impl<false>(src, dst, out);
}

// ---- HistogramTable ----

const double* HistogramTable::buckets(HistogramFamily f, size_t* n) {
  if (f == HistogramFamily::response_latency) {
    *n = std::size(kLatencyBuckets);
    return kLatencyBuckets;
  }
  *n = std::size(kDurationBuckets);
  return kDurationBuckets;
}

HistogramTable::HistogramTable(uint32_t max_series)
    : entries_(std::max<uint32_t>(max_series, 1), Touch::lazy), max_(max_series) {}

bool HistogramTable::observe(uint64_t key, double seconds) {
  const auto key_of = [this](uint32_t e) {
    return std::atomic_ref<uint64_t>(entries_[e].key).load(std::memory_order_relaxed);
  };
  uint32_t hole = 0;
  uint32_t e = index_.find(key, key_of, &hole);
  if (e == KeyIndex::kNone) {
    const uint32_t size = size_.load(std::memory_order_relaxed);
    if (size >= max_ || !index_.room(size)) return false;
    std::atomic_ref<uint64_t>(entries_[size].key).store(key, std::memory_order_relaxed);
    size_.store(size + 1, std::memory_order_release);  // publishes the key
    index_.insert(hole, size, size + 1, key_of);
    e = size;
  }
  Entry& s = entries_[e];
  size_t n = 0;
  const double* b = buckets(static_cast<HistogramFamily>(key >> 40 & 3), &n);
  size_t at = 0;
  while (at < n && seconds > b[at]) ++at;  // the first bucket whose bound holds it; n = +Inf
  auto bump = [](uint64_t& w, uint64_t d) {
    std::atomic_ref<uint64_t> r(w);
    r.store(r.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  };
  bump(s.buckets[at == n ? kMaxBuckets : at], 1);
  bump(s.sum_ns, static_cast<uint64_t>(seconds > 0 ? seconds * 1e9 : 0));
  return true;
}

// ---- SeriesTable ----

SeriesTable::SeriesTable(uint32_t max_series)
    : entries_(std::max<uint32_t>(max_series, 1), Touch::lazy), max_(max_series) {}

bool SeriesTable::add(uint64_t key, uint64_t n) {
  const KeyOf key_of{this};
  uint32_t hole = 0;
  const uint32_t e = index_.find(key, key_of, &hole);
  if (e != KeyIndex::kNone) {
    std::atomic_ref<uint64_t> c(entries_[e].count);
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return true;
  }
  const uint32_t size = size_.load(std::memory_order_relaxed);
  if (size >= max_ || !index_.room(size)) return false;
  Entry& s = entries_[size];
  std::atomic_ref<uint64_t>(s.count).store(n, std::memory_order_relaxed);
  std::atomic_ref<uint64_t>(s.key).store(key, std::memory_order_relaxed);
  size_.store(size + 1, std::memory_order_release);  // publishes the key and its count
  index_.insert(hole, size, size + 1, key_of);
  return true;
}

}  // namespace sipex
