#include "sipex/sctp.hpp"

#include <cstring>
#include <vector>

#include "sipex/sip_parse.hpp"

namespace sipex {
namespace {

constexpr std::string_view kEvictionNames[kChunkEvictionCount] = {"timeout", "table_full", "too_large", "gap"};

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}

constexpr uint8_t kData = 0, kIData = 64;
constexpr uint8_t kFlagE = 0x01, kFlagB = 0x02, kFlagU = 0x04;

}  // namespace

std::string_view chunk_eviction_name(ChunkEviction e) { return kEvictionNames[static_cast<size_t>(e)]; }

struct SctpReassembler::Impl {
  // A message being reassembled. Identity: the association's addresses and ports, the stream,
  // and the message's sequence number (SSN for DATA, MID for I-DATA) and ordering.
  struct Partial {
    bool used = false;
    IpAddr src{}, dst{};
    uint16_t sport = 0, dport = 0, stream = 0;
    uint32_t id = 0;
    uint8_t kind = 0;       // chunk type, and U flag in bit 7
    uint32_t next_tsn = 0;  // TSN the next fragment must have
    int64_t first = 0;
    std::vector<uint8_t> bytes;  // reserved to max_message_bytes once, reused
  };

  SctpLimits lim;
  MessageSink& sink;
  const ScanKernel& scan;
  SctpStats& stats;
  std::vector<Partial> table;
  uint32_t in_use = 0;  // entries of `table` with `used` set: most links have none, and then
                        // nothing scans the table

  Impl(const SctpLimits& l, MessageSink& s, const ScanKernel& f, SctpStats& st)
      : lim(l), sink(s), scan(f), stats(st), table(l.max_messages) {}

  void deliver(const uint8_t* p, uint32_t n, const Decoded& d, int64_t now) {
    stats.messages.bump();
    SipMessage m;
    const ParseStatus st = parse_sip(reinterpret_cast<const char*>(p), n, Framing::datagram, m, scan);
    if (st == ParseStatus::ok) {
      sink.message(m, d.src, d.dst, now);
    } else if (st != ParseStatus::not_sip) {
      sink.parse_error(st);
    }
  }

  Partial* find(const Decoded& d, uint16_t stream, uint32_t id, uint8_t kind) {
    if (in_use == 0) return nullptr;
    for (Partial& p : table) {
      if (p.used && p.stream == stream && p.id == id && p.kind == kind && p.sport == d.sport && p.dport == d.dport &&
          p.src == d.src && p.dst == d.dst) {
        return &p;
      }
    }
    return nullptr;
  }

  void give_up(Partial& p, ChunkEviction why) {
    stats.evicted[static_cast<size_t>(why)].bump();
    release(p);
  }

  void release(Partial& p) {
    --in_use;
    p.used = false;
    p.bytes.clear();
  }

  void publish() { stats.in_progress.store(in_use, std::memory_order_relaxed); }

  void fragment(const Decoded& d, uint8_t type, uint8_t flags, uint32_t tsn, uint16_t stream, uint32_t id,
                const uint8_t* data, uint32_t n, int64_t now) {
    const auto kind = static_cast<uint8_t>(type | ((flags & kFlagU) ? 0x80 : 0));
    Partial* p = find(d, stream, id, kind);
    if (flags & kFlagB) {
      if (p != nullptr) give_up(*p, ChunkEviction::gap);  // restarted: the old one cannot finish
      p = nullptr;
      for (Partial& q : table) {
        if (!q.used) { p = &q; break; }
      }
      if (p == nullptr) {  // full: give up the oldest
        Partial* oldest = &table[0];
        for (Partial& q : table) {
          if (q.first < oldest->first) oldest = &q;
        }
        give_up(*oldest, ChunkEviction::table_full);
        p = oldest;
      }
      p->used = true;
      ++in_use;
      p->src = d.src;
      p->dst = d.dst;
      p->sport = d.sport;
      p->dport = d.dport;
      p->stream = stream;
      p->id = id;
      p->kind = kind;
      p->first = now;
      p->bytes.clear();
      p->bytes.reserve(lim.max_message_bytes);
    } else if (p == nullptr || tsn != p->next_tsn) {
      if (p != nullptr) give_up(*p, ChunkEviction::gap);  // a fragment is missing
      return;
    }
    if (p->bytes.size() + n > lim.max_message_bytes) {
      give_up(*p, ChunkEviction::too_large);
      return;
    }
    p->bytes.insert(p->bytes.end(), data, data + n);
    p->next_tsn = tsn + 1;
    if (flags & kFlagE) {
      deliver(p->bytes.data(), static_cast<uint32_t>(p->bytes.size()), d, now);
      release(*p);
    }
  }

  void packet(const Decoded& d, int64_t now) {
    stats.packets.bump();
    const uint8_t* p = d.payload;
    uint32_t left = d.payload_len;
    while (left >= 4) {
      const uint8_t type = p[0], flags = p[1];
      const uint16_t len = be16(p + 2);
      if (len < 4 || len > left) break;  // malformed or truncated: the rest cannot be trusted
      const uint32_t hl = type == kData ? 16 : type == kIData ? 20 : 0;
      if (hl != 0 && len >= hl) {
        stats.data_chunks.bump();
        const uint32_t tsn = be32(p + 4);
        const uint16_t stream = be16(p + 8);
        const uint32_t id = type == kData ? be16(p + 10) : be32(p + 12);
        const uint8_t* data = p + hl;
        const uint32_t n = len - hl;
        if ((flags & (kFlagB | kFlagE)) == (kFlagB | kFlagE)) {
          deliver(data, n, d, now);
        } else {
          fragment(d, type, flags, tsn, stream, id, data, n, now);
        }
      }
      const uint32_t padded = (static_cast<uint32_t>(len) + 3) & ~3u;
      if (padded >= left) break;
      p += padded;
      left -= padded;
    }
    publish();
  }

  void expire(int64_t now) {
    if (in_use == 0) return;
    for (Partial& p : table) {
      if (p.used && now - p.first > lim.timeout_ns) give_up(p, ChunkEviction::timeout);
    }
    publish();
  }
};

SctpReassembler::SctpReassembler(const SctpLimits& limits, MessageSink& sink, const ScanKernel& scan)
    : impl_(new Impl(limits, sink, scan, stats_)) {}

SctpReassembler::~SctpReassembler() = default;

void SctpReassembler::packet(const Decoded& d, int64_t now_ns) { impl_->packet(d, now_ns); }

void SctpReassembler::expire(int64_t now_ns) { impl_->expire(now_ns); }

}  // namespace sipex
