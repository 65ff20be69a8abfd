#include "sipex/tcp_reassembly.hpp"
#include "sipex/resident.hpp"

#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

#include "sipex/sip_parse.hpp"

namespace sipex {
namespace {

constexpr std::string_view kSegmentNames[kSegmentResultCount] = {"data", "retransmission", "out_of_order", "control"};
constexpr std::string_view kBytesNames[kStreamBytesCount] = {"sip", "not_sip", "tls", "lost"};
constexpr std::string_view kEvictionNames[kStreamEvictionCount] = {"timeout", "table_full", "memory",
                                                                    "too_large", "gap", "closed"};

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Case-insensitive search of `needle` (lower case) in [p, p+n).
bool icontains(const char* p, size_t n, std::string_view needle) {
  if (needle.size() > n) return false;
  for (size_t i = 0; i + needle.size() <= n; ++i) {
    size_t k = 0;
    while (k < needle.size() && lower(p[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return true;
  }
  return false;
}

// Offset of the first "\r\n\r\n" in [p, p+n), or npos.
size_t header_end(const char* p, size_t n) {
  const std::string_view v(p, n);
  const size_t i = v.find("\r\n\r\n");
  return i == std::string_view::npos ? i : i + 4;
}

bool is_token(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-.!%*_+`'~").find(c) != std::string_view::npos;
}

// Where the next SIP start line begins in [p, p+n): a line starting "SIP/2.0 " (status line), or a
// line "TOKEN SP ... SP SIP/2.0" ending in CRLF or LF (request line). Returns npos if none starts
// in the buffer; then *keep is how many trailing bytes may still begin one (a start line can
// straddle segments).
size_t find_start_line(const char* p, size_t n, size_t* keep) {
  const std::string_view v(p, n);
  for (size_t i = v.find("SIP/2.0"); i != std::string_view::npos; i = v.find("SIP/2.0", i + 1)) {
    const size_t ls = (i == 0) ? 0 : v.rfind('\n', i - 1) + 1;  // npos + 1 == 0
    if (ls == i) {
      if (i + 7 < n && v[i + 7] == ' ') return i;
      continue;
    }
    const bool line_end = (i + 7 < n && v[i + 7] == '\n') || (i + 8 < n && v[i + 7] == '\r' && v[i + 8] == '\n');
    if (!line_end || !is_token(v[ls])) continue;
    size_t m = ls;
    while (m < i && is_token(v[m])) ++m;
    if (m < i && v[m] == ' ' && i - m >= 3) return ls;
  }
  // Keep the last partial line, at most one start line long.
  const size_t last_nl = v.rfind('\n');
  const size_t tail = last_nl == std::string_view::npos ? n : n - last_nl - 1;
  *keep = tail < 1024 ? tail : 0;
  return std::string_view::npos;
}

bool looks_like_tls(const uint8_t* p, uint32_t n) {
  return n >= 3 && p[0] >= 0x14 && p[0] <= 0x17 && p[1] == 0x03 && p[2] <= 0x04;
}

}  // namespace

std::string_view segment_result_name(SegmentResult r) { return kSegmentNames[static_cast<size_t>(r)]; }
std::string_view stream_bytes_name(StreamBytes b) { return kBytesNames[static_cast<size_t>(b)]; }
std::string_view stream_eviction_name(StreamEviction e) { return kEvictionNames[static_cast<size_t>(e)]; }

struct TcpReassembler::Impl {
  // ---- buffers: power-of-two size classes, recycled through intrusive free lists ----
  static constexpr uint32_t kMinClass = 9;   // 512 bytes
  static constexpr uint32_t kMaxClass = 18;  // 256 KiB
  struct Buf {
    uint8_t* p = nullptr;
    uint32_t len = 0;
    uint32_t cap = 0;
  };
  // A held out-of-order segment: header at the front of its own buffer.
  struct Held {
    uint32_t seq;
    uint32_t len;
    Held* next;
    uint32_t cap;
    uint8_t* data() { return reinterpret_cast<uint8_t*>(this + 1); }
  };

  enum class Mode : uint8_t { unknown, sip, tls, http, websocket, ignore };

  struct Key {
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    uint8_t family;
    bool operator==(const Key& o) const { return std::memcmp(this, &o, sizeof(Key)) == 0; }
  };

  struct Stream {
    Key key;
    bool used = false;
    bool seq_known = false;
    bool resync = false;       // look for a start line before framing
    bool expect_101 = false;   // the reverse stream asked for a WebSocket upgrade
    Mode mode = Mode::unknown;
    uint32_t next_seq = 0;
    uint32_t skip = 0;         // body bytes of an already counted message still to pass
    Buf buf;                   // in-order bytes not yet framed
    Buf ws;                    // WebSocket: the message being assembled, unmasked
    Held* held = nullptr;      // out-of-order segments by ascending seq
    uint32_t nheld = 0;
    int64_t last = 0;
    uint32_t prev = kNone, next = kNone;  // activity order, most recent first
    IpAddr src, dst;
  };
  static constexpr uint32_t kNone = 0xFFFFFFFF;

  TcpLimits lim;
  MessageSink& sink;
  const ScanKernel& scan;
  TcpStats& stats;
  // Stream slots come from zeroed pages (calloc), constructed on first use: a large table costs
  // memory only as far as it has been used.
  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<Stream[], FreeDeleter> streams;
  ResidentArray<uint32_t> index;  // open addressing: slot + 1, 0 = empty; probed before written, so Touch::lazy
  uint32_t index_mask;
  uint32_t free_head = kNone;         // released stream slots, chained through `next`
  uint32_t fresh = 0;                 // slots [fresh, max_streams) were never used
  uint32_t lru_head = kNone, lru_tail = kNone;
  uint32_t live = 0;
  uint8_t* free_bufs[kMaxClass + 1] = {};  // recycled buffers, chained through their first bytes
  uint64_t allocated = 0;                  // bytes of every buffer, in use or recycled
  int64_t now_ = 0;                        // capture time of the segment being processed
  uint64_t in_use = 0;

  Impl(const TcpLimits& l, MessageSink& s, const ScanKernel& f, TcpStats& st)
      : lim(l), sink(s), scan(f), stats(st) {
    const uint32_t cap = std::bit_ceil(2 * l.max_streams);
    streams.reset(static_cast<Stream*>(std::calloc(l.max_streams, sizeof(Stream))));
    index = ResidentArray<uint32_t>(cap, Touch::lazy);
    if (!streams) throw std::bad_alloc();
    index_mask = cap - 1;
  }

  ~Impl() {
    for (uint32_t i = 0; i < fresh; ++i) {
      if (streams[i].used) release_buffers(streams[i]);
    }
    for (uint8_t*& head : free_bufs) {
      while (head != nullptr) {
        uint8_t* n = *reinterpret_cast<uint8_t**>(head);
        ::operator delete(head);
        head = n;
      }
    }
  }

  // ---- memory ----

  static uint32_t class_of(uint32_t n) {
    const uint32_t c = static_cast<uint32_t>(std::bit_width(std::max<uint32_t>(n, 1u << kMinClass) - 1));
    return c;
  }

  void publish_gauges() {
    stats.buffered.store(static_cast<uint32_t>(in_use), std::memory_order_relaxed);
    stats.streams.store(live, std::memory_order_relaxed);
  }

  // Frees recycled buffers until `need` more bytes fit the budget. False if they cannot.
  bool make_room(uint64_t need) {
    for (uint32_t c = kMaxClass; allocated + need > lim.max_bytes && c >= kMinClass; --c) {
      while (free_bufs[c] != nullptr && allocated + need > lim.max_bytes) {
        uint8_t* b = free_bufs[c];
        free_bufs[c] = *reinterpret_cast<uint8_t**>(b);
        ::operator delete(b);
        allocated -= uint64_t{1} << c;
      }
    }
    return allocated + need <= lim.max_bytes;
  }

  // A buffer of at least n bytes (nullptr if over budget even after evicting other streams'
  // buffers; `keep` is never evicted).
  uint8_t* take(uint32_t n, uint32_t* cap, const Stream* keep) {
    const uint32_t c = class_of(n);
    if (c > kMaxClass) return nullptr;
    const uint32_t size = 1u << c;
    uint8_t* b = free_bufs[c];
    if (b != nullptr) {
      free_bufs[c] = *reinterpret_cast<uint8_t**>(b);
    } else {
      while (!make_room(size)) {
        if (!evict_lru_buffers(keep)) return nullptr;
      }
      b = static_cast<uint8_t*>(::operator new(size, std::nothrow));
      if (b == nullptr) return nullptr;
      allocated += size;
    }
    in_use += size;
    *cap = size;
    return b;
  }

  void give(uint8_t* b, uint32_t cap) {
    const uint32_t c = class_of(cap);
    *reinterpret_cast<uint8_t**>(b) = free_bufs[c];
    free_bufs[c] = b;
    in_use -= cap;
  }

  // Grows `b` to hold `need` bytes, keeping its contents.
  bool reserve(Buf& b, uint32_t need, const Stream* keep) {
    if (need <= b.cap) return true;
    uint32_t cap = 0;
    uint8_t* n = take(need, &cap, keep);
    if (n == nullptr) return false;
    if (b.len > 0) std::memcpy(n, b.p, b.len);
    if (b.p != nullptr) give(b.p, b.cap);
    b.p = n;
    b.cap = cap;
    return true;
  }

  void drop(Buf& b) {
    if (b.p != nullptr) give(b.p, b.cap);
    b = Buf{};
  }

  // Bytes a stream holds that are not framed yet.
  static uint64_t pending(const Stream& s) {
    uint64_t n = s.buf.len + s.ws.len;
    for (const Held* h = s.held; h != nullptr; h = h->next) n += h->len;
    return n;
  }

  // Frees a stream's buffers; returns the bytes of data they held.
  uint64_t release_buffers(Stream& s) {
    uint64_t bytes = s.buf.len + s.ws.len;
    drop(s.buf);
    drop(s.ws);
    for (Held* h = s.held; h != nullptr;) {
      Held* n = h->next;
      bytes += h->len;
      give(reinterpret_cast<uint8_t*>(h), h->cap);
      h = n;
    }
    s.held = nullptr;
    s.nheld = 0;
    return bytes;
  }

  // Gives up the buffers of the least recently active stream holding any. False if none does.
  bool evict_lru_buffers(const Stream* keep) {
    for (uint32_t i = lru_tail; i != kNone; i = streams[i].prev) {
      Stream& s = streams[i];
      if (&s == keep || (s.buf.p == nullptr && s.ws.p == nullptr && s.held == nullptr)) continue;
      stats.bytes[static_cast<size_t>(StreamBytes::lost)].bump(release_buffers(s));
      stats.evicted[static_cast<size_t>(StreamEviction::memory)].bump();
      s.resync = true;
      s.seq_known = false;
      return true;
    }
    return false;
  }

  // ---- stream table ----

  static uint32_t hash(const Key& k) {
    uint64_t h = 0xcbf29ce484222325ull;
    const auto* p = reinterpret_cast<const uint8_t*>(&k);
    for (size_t i = 0; i < sizeof(Key); i += 8) {
      uint64_t w = 0;
      std::memcpy(&w, p + i, std::min<size_t>(8, sizeof(Key) - i));
      h = (h ^ w) * 0x100000001b3ull;
      h ^= h >> 29;
    }
    return static_cast<uint32_t>(h);
  }

  static Key make_key(const IpAddr& src, const IpAddr& dst, uint16_t sport, uint16_t dport) {
    Key k;
    std::memset(&k, 0, sizeof k);
    std::memcpy(k.src, src.bytes, 16);
    std::memcpy(k.dst, dst.bytes, 16);
    k.sport = sport;
    k.dport = dport;
    k.family = src.family;
    return k;
  }

  uint32_t find(const Key& k) const {
    for (uint32_t i = hash(k) & index_mask;; i = (i + 1) & index_mask) {
      const uint32_t v = index[i];
      if (v == 0) return kNone;
      if (streams[v - 1].key == k) return v - 1;
    }
  }

  void lru_unlink(uint32_t i) {
    Stream& s = streams[i];
    if (s.prev != kNone) streams[s.prev].next = s.next; else lru_head = s.next;
    if (s.next != kNone) streams[s.next].prev = s.prev; else lru_tail = s.prev;
    s.prev = s.next = kNone;
  }
  void lru_push_front(uint32_t i) {
    Stream& s = streams[i];
    s.prev = kNone;
    s.next = lru_head;
    if (lru_head != kNone) streams[lru_head].prev = i;
    lru_head = i;
    if (lru_tail == kNone) lru_tail = i;
  }

  void remove(uint32_t slot) {
    Stream& s = streams[slot];
    release_buffers(s);
    // Backward-shift deletion keeps linear probing correct without tombstones.
    uint32_t i = hash(s.key) & index_mask;
    while (index[i] != slot + 1) i = (i + 1) & index_mask;
    for (uint32_t j = (i + 1) & index_mask;; j = (j + 1) & index_mask) {
      const uint32_t v = index[j];
      if (v == 0) break;
      const uint32_t home = hash(streams[v - 1].key) & index_mask;
      // Move v back to i if its home position is not cyclically within (i, j].
      if (((j - home) & index_mask) >= ((j - i) & index_mask)) {
        index[i] = v;
        i = j;
      }
    }
    index[i] = 0;
    lru_unlink(slot);
    s = Stream{};
    s.next = free_head;
    free_head = slot;
    --live;
  }

  // The stream of this key, created if absent (evicting the least recently active when full).
  uint32_t get(const Key& k, const IpAddr& src, const IpAddr& dst, int64_t now) {
    uint32_t slot = find(k);
    if (slot != kNone) {
      lru_unlink(slot);
      lru_push_front(slot);
      streams[slot].last = now;
      return slot;
    }
    if (free_head == kNone && fresh == lim.max_streams) {
      stats.bytes[static_cast<size_t>(StreamBytes::lost)].bump(pending(streams[lru_tail]));
      stats.evicted[static_cast<size_t>(StreamEviction::table_full)].bump();
      remove(lru_tail);
    }
    if (free_head != kNone) {
      slot = free_head;
      free_head = streams[slot].next;
    } else {
      slot = fresh++;
    }
    Stream& s = *new (&streams[slot]) Stream{};
    s.used = true;
    s.key = k;
    s.src = src;
    s.dst = dst;
    s.last = now;
    uint32_t i = hash(k) & index_mask;
    while (index[i] != 0) i = (i + 1) & index_mask;
    index[i] = slot + 1;
    lru_push_front(slot);
    ++live;
    return slot;
  }

  // ---- framing ----

  void count_bytes(StreamBytes b, uint64_t n) { stats.bytes[static_cast<size_t>(b)].bump(n); }

  // Frames SIP messages from p[0, n) for stream s; returns the bytes consumed (the rest is an
  // incomplete message or a possible start line to keep).
  size_t frame_sip(Stream& s, const char* p, size_t n) {
    size_t pos = 0;
    if (s.skip > 0) {  // the rest of a body too long to hold
      const size_t k = std::min<size_t>(s.skip, n);
      count_bytes(StreamBytes::sip, k);
      s.skip -= static_cast<uint32_t>(k);
      pos = k;
    }
    while (pos < n) {
      if (s.resync) {
        size_t keep = 0;
        const size_t at = find_start_line(p + pos, n - pos, &keep);
        if (at == std::string_view::npos) {
          count_bytes(StreamBytes::not_sip, n - pos - keep);
          return n - keep;
        }
        count_bytes(StreamBytes::not_sip, at);
        pos += at;
        s.resync = false;
      }
      const size_t ka = pos;
      while (pos < n && (p[pos] == '\r' || p[pos] == '\n')) ++pos;  // keep-alives (RFC 5626 4.4.1)
      count_bytes(StreamBytes::sip, pos - ka);
      if (pos == n) break;
      SipMessage m;
      const ParseStatus st = parse_sip(p + pos, n - pos, Framing::stream, m, scan);
      if (st == ParseStatus::ok) {
        sink.message(m, s.src, s.dst, now_);
        count_bytes(StreamBytes::sip, m.message_length);
        pos += m.message_length;
        continue;
      }
      if (st == ParseStatus::incomplete) {
        if (m.header_length != 0 && m.message_length > lim.max_message_bytes) {
          // Headers complete, body too long to hold: count the message now and let the body
          // stream past without buffering it.
          sink.message(m, s.src, s.dst, now_);
          count_bytes(StreamBytes::sip, n - pos);
          s.skip = m.message_length - static_cast<uint32_t>(n - pos);
          return n;
        }
        if (n - pos <= lim.max_message_bytes) return pos;
        stats.evicted[static_cast<size_t>(StreamEviction::too_large)].bump();  // a header section that long
      } else if (st != ParseStatus::not_sip) {
        sink.parse_error(st);
      }
      // Skip this start line and look for the next one.
      const auto* nl = static_cast<const char*>(std::memchr(p + pos, '\n', n - pos));
      const size_t skip = nl != nullptr ? static_cast<size_t>(nl - (p + pos)) + 1 : n - pos;
      count_bytes(StreamBytes::not_sip, skip);
      pos += skip;
      s.resync = true;
    }
    return pos;
  }

  void deliver_ws_message(Stream& s, const uint8_t* p, uint32_t n) {
    SipMessage m;
    const ParseStatus st = parse_sip(reinterpret_cast<const char*>(p), n, Framing::datagram, m, scan);
    if (st == ParseStatus::ok) {
      sink.message(m, s.src, s.dst, now_);
      count_bytes(StreamBytes::sip, n);
    } else if (st == ParseStatus::not_sip) {
      count_bytes(StreamBytes::not_sip, n);
    } else {
      sink.parse_error(st);
      count_bytes(StreamBytes::not_sip, n);
    }
  }

  // Unframes WebSocket frames (RFC 6455 5.2) from p[0, n); returns the bytes consumed.
  size_t frame_ws(Stream& s, const uint8_t* p, size_t n) {
    size_t pos = 0;
    while (n - pos >= 2) {
      const uint8_t b0 = p[pos], b1 = p[pos + 1];
      const bool fin = b0 & 0x80, masked = b1 & 0x80;
      const unsigned op = b0 & 0x0F;
      uint64_t len = b1 & 0x7F;
      size_t h = 2;
      if (len == 126) {
        if (n - pos < 4) break;
        len = be16(p + pos + 2);
        h = 4;
      } else if (len == 127) {
        if (n - pos < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = len << 8 | p[pos + 2 + i];
        h = 10;
      }
      const uint8_t* key = p + pos + h;
      if (masked) h += 4;
      if (len > lim.max_message_bytes) {
        stats.evicted[static_cast<size_t>(StreamEviction::too_large)].bump();
        count_bytes(StreamBytes::not_sip, n - pos);
        drop(s.ws);
        s.mode = Mode::ignore;  // frame boundaries are lost with it
        return n;
      }
      if (n - pos < h + len) break;
      const uint8_t* pl = p + pos + h;
      const auto plen = static_cast<uint32_t>(len);
      if (op >= 8) {  // control frames (close, ping, pong) carry no SIP
        count_bytes(StreamBytes::not_sip, h + plen);
      } else if (op == 1 || op == 2 || (op == 0 && s.ws.p != nullptr)) {
        if (op != 0) s.ws.len = 0;  // a new message abandons an unfinished one
        if (fin && !masked && s.ws.len == 0) {
          deliver_ws_message(s, pl, plen);  // zero copy: one unmasked frame
        } else {
          if (!reserve(s.ws, s.ws.len + plen, &s)) {
            count_bytes(StreamBytes::lost, s.ws.len + plen);
            drop(s.ws);
          } else {
            uint8_t* d = s.ws.p + s.ws.len;
            for (uint32_t i = 0; i < plen; ++i) d[i] = masked ? pl[i] ^ key[i & 3] : pl[i];
            s.ws.len += plen;
            if (fin) {
              deliver_ws_message(s, s.ws.p, s.ws.len);
              drop(s.ws);
            }
          }
        }
        count_bytes(StreamBytes::sip, h);
      } else {
        count_bytes(StreamBytes::not_sip, h + plen);  // a continuation without a start
      }
      pos += h + plen;
    }
    return pos;
  }

  // Decides what a stream carries from its first bytes. Returns bytes consumed by an HTTP
  // upgrade exchange, or 0; npos if more bytes are needed to decide.
  size_t classify(Stream& s, const uint8_t* p, size_t n) {
    const char* c = reinterpret_cast<const char*>(p);
    if (looks_like_tls(p, static_cast<uint32_t>(n))) {
      s.mode = Mode::tls;
      const uint32_t r = find(make_key(s.dst, s.src, s.key.dport, s.key.sport));
      if (r == kNone || streams[r].mode != Mode::tls) stats.tls_streams.bump();  // one per connection
      return 0;
    }
    const bool get = n >= 4 && std::memcmp(c, "GET ", 4) == 0;
    const bool http101 = s.expect_101 && n >= 12 && std::memcmp(c, "HTTP/1.1 101", 12) == 0;
    if (get || http101) {
      const size_t end = header_end(c, n);
      if (end == std::string_view::npos) return n > lim.max_message_bytes ? 0 : std::string_view::npos;
      if (http101 || (icontains(c, end, "upgrade: websocket") || icontains(c, end, "upgrade:websocket"))) {
        s.mode = Mode::websocket;
        if (get) {
          stats.websocket_streams.bump();
          const Key rk = make_key(s.dst, s.src, s.key.dport, s.key.sport);
          streams[get_reverse(rk, s)].expect_101 = true;
        }
        count_bytes(StreamBytes::not_sip, end);
        return end;
      }
    }
    s.mode = Mode::sip;
    s.resync = true;  // mid-stream pickup or another protocol: frame from the first start line
    return 0;
  }

  uint32_t get_reverse(const Key& rk, const Stream& s) {
    const Stream copy = s;  // get() may move the LRU order but never `s`'s slot
    return get(rk, copy.dst, copy.src, copy.last);
  }

  // Feeds in-order bytes to the stream's framer.
  void deliver(Stream& s, const uint8_t* p, uint32_t n) {
    if (s.mode == Mode::tls) {
      count_bytes(StreamBytes::tls, n);
      return;
    }
    if (s.mode == Mode::ignore) {
      count_bytes(StreamBytes::not_sip, n);
      return;
    }
    const uint8_t* data = p;
    size_t len = n;
    if (s.buf.len > 0) {
      if (!reserve(s.buf, s.buf.len + n, &s)) {
        lose_buffer(s, StreamEviction::memory);
        s.buf.len = 0;
      } else {
        std::memcpy(s.buf.p + s.buf.len, p, n);
        s.buf.len += n;
        data = s.buf.p;
        len = s.buf.len;
      }
    }
    size_t used = 0;
    if (s.mode == Mode::unknown || s.mode == Mode::http) {
      const size_t c = classify(s, data, len);
      if (c == std::string_view::npos) {
        s.mode = Mode::http;
        keep_rest(s, data, len, 0);
        return;
      }
      used = c;
      if (s.mode == Mode::tls) {
        count_bytes(StreamBytes::tls, len);
        drop(s.buf);
        return;
      }
    }
    if (s.mode == Mode::websocket) {
      used += frame_ws(s, data + used, len - used);
    } else {
      used += frame_sip(s, reinterpret_cast<const char*>(data) + used, len - used);
    }
    keep_rest(s, data, len, used);
  }

  // Keeps data[used, len) as the stream's pending bytes.
  void keep_rest(Stream& s, const uint8_t* data, size_t len, size_t used) {
    const auto rest = static_cast<uint32_t>(len - used);
    if (rest == 0) {
      drop(s.buf);
      return;
    }
    if (data == s.buf.p) {
      if (used > 0) std::memmove(s.buf.p, s.buf.p + used, rest);
      s.buf.len = rest;
      return;
    }
    if (!reserve(s.buf, rest, &s)) {
      count_bytes(StreamBytes::lost, rest);
      stats.evicted[static_cast<size_t>(StreamEviction::memory)].bump();
      s.resync = true;
      return;
    }
    std::memcpy(s.buf.p, data + used, rest);
    s.buf.len = rest;
  }

  void lose_buffer(Stream& s, StreamEviction why) {
    count_bytes(StreamBytes::lost, s.buf.len + s.ws.len);
    stats.evicted[static_cast<size_t>(why)].bump();
    drop(s.buf);
    drop(s.ws);
    s.resync = true;
  }

  // Holds an out-of-order segment. False if it cannot be held (too many, no memory).
  bool hold(Stream& s, uint32_t seq, const uint8_t* p, uint32_t n) {
    if (s.nheld >= lim.max_held_segments) return false;
    Held** at = &s.held;
    while (*at != nullptr && static_cast<int32_t>((*at)->seq - seq) < 0) at = &(*at)->next;
    if (*at != nullptr && (*at)->seq == seq && (*at)->len >= n) return true;  // already held
    uint32_t cap = 0;
    uint8_t* b = take(static_cast<uint32_t>(sizeof(Held)) + n, &cap, &s);
    if (b == nullptr) return false;
    Held* h = new (b) Held{seq, n, *at, cap};
    std::memcpy(h->data(), p, n);
    *at = h;
    ++s.nheld;
    return true;
  }

  // Delivers held segments that now continue the stream.
  void drain_held(Stream& s) {
    while (s.held != nullptr) {
      Held* h = s.held;
      const auto d = static_cast<int32_t>(h->seq - s.next_seq);
      if (d > 0) break;
      s.held = h->next;
      --s.nheld;
      const uint32_t skip = static_cast<uint32_t>(-d);
      if (skip < h->len) {
        deliver(s, h->data() + skip, h->len - skip);
        s.next_seq += h->len - skip;
      }
      give(reinterpret_cast<uint8_t*>(h), h->cap);
    }
  }

  // The bytes before the first held segment will never come: count them, resynchronise there.
  void declare_gap(Stream& s) {
    const Held* h = s.held;
    count_bytes(StreamBytes::lost, static_cast<uint32_t>(h->seq - s.next_seq));
    stats.evicted[static_cast<size_t>(StreamEviction::gap)].bump();
    if (s.buf.len + s.ws.len > 0) count_bytes(StreamBytes::lost, s.buf.len + s.ws.len);
    drop(s.buf);
    drop(s.ws);
    if (s.mode == Mode::websocket) s.mode = Mode::ignore;  // frame boundaries are lost
    s.resync = true;
    s.skip = 0;
    s.next_seq = h->seq;
    drain_held(s);
  }

  void close(uint32_t slot) {
    if (const uint64_t n = pending(streams[slot]); n > 0) {
      count_bytes(StreamBytes::lost, n);
      stats.evicted[static_cast<size_t>(StreamEviction::closed)].bump();
    }
    remove(slot);
  }

  void segment(const Decoded& d, int64_t now) {
    now_ = now;
    const Key k = make_key(d.src, d.dst, d.sport, d.dport);
    const uint8_t flags = d.tcp_flags;
    uint32_t n = d.payload_len;
    if (n == 0 && !(flags & (kTcpSyn | kTcpFin | kTcpRst))) {  // a bare ACK touches no state
      stats.segments[static_cast<size_t>(SegmentResult::control)].bump();
      return;
    }
    const uint32_t slot = get(k, d.src, d.dst, now);
    Stream& s = streams[slot];
    uint32_t seq = d.tcp_seq;
    const uint8_t* p = d.payload;
    if (flags & kTcpSyn) {
      if (s.seq_known && seq + 1 != s.next_seq) {
        // A new connection on the same addresses and ports: the old one's leftovers end here.
        if (const uint64_t left = pending(s); left > 0) {
          count_bytes(StreamBytes::lost, left);
          stats.evicted[static_cast<size_t>(StreamEviction::closed)].bump();
        }
        release_buffers(s);
        s.skip = 0;
        s.mode = Mode::unknown;
      }
      s.seq_known = true;
      s.next_seq = seq + 1;
      s.resync = false;
      ++seq;
    } else if (!s.seq_known) {
      s.seq_known = true;  // picked up mid-connection (or after losing the buffers): start here
      s.next_seq = seq;
      s.resync = true;
    }
    SegmentResult result = SegmentResult::control;
    if (n > 0) {
      // Serial-number comparison; next_seq - seq is -diff in unsigned arithmetic, which
      // also holds for diff = -2^31 where negating the int32_t would overflow.
      const auto diff = static_cast<int32_t>(seq - s.next_seq);
      if (diff < 0 && (s.next_seq - seq) >= n) {
        result = SegmentResult::retransmission;
      } else if (diff > 0) {
        result = SegmentResult::out_of_order;
        if (!hold(s, seq, p, n)) {
          if (s.held == nullptr) {
            // Nothing held to wait for: the missing bytes are lost; continue from this segment.
            count_bytes(StreamBytes::lost, static_cast<uint32_t>(diff));
            stats.evicted[static_cast<size_t>(StreamEviction::gap)].bump();
            if (s.buf.len + s.ws.len > 0) lose_buffer(s, StreamEviction::gap);
            if (s.mode == Mode::websocket) s.mode = Mode::ignore;
            s.resync = true;
            s.skip = 0;
            s.next_seq = seq;
            deliver(s, p, n);
            s.next_seq += n;
          } else {
            declare_gap(s);
            if (!hold(s, seq, p, n)) count_bytes(StreamBytes::lost, n);
            drain_held(s);
          }
        }
      } else {
        result = SegmentResult::data;
        const uint32_t skip = diff < 0 ? (s.next_seq - seq) : 0;  // partly retransmitted
        deliver(s, p + skip, n - skip);
        s.next_seq += n - skip;
        drain_held(s);
      }
    }
    stats.segments[static_cast<size_t>(result)].bump();
    if (flags & kTcpRst) {
      // A reset ends both directions at once; a FIN (below) only its own.
      const uint32_t r = find(make_key(s.dst, s.src, s.key.dport, s.key.sport));
      if (r != kNone && r != slot) close(r);  // r == slot: a flow from an address:port to itself
      close(slot);
    } else if (flags & kTcpFin) {
      close(slot);
    }
    publish_gauges();
  }

  void expire(int64_t now) {
    while (lru_tail != kNone && now - streams[lru_tail].last > lim.idle_timeout_ns) {
      count_bytes(StreamBytes::lost, pending(streams[lru_tail]));
      stats.evicted[static_cast<size_t>(StreamEviction::timeout)].bump();
      remove(lru_tail);
    }
    publish_gauges();
  }
};

TcpReassembler::TcpReassembler(const TcpLimits& limits, MessageSink& sink, const ScanKernel& scan)
    : impl_(new Impl(limits, sink, scan, stats_)) {}

TcpReassembler::~TcpReassembler() = default;

void TcpReassembler::segment(const Decoded& d, int64_t now_ns) { impl_->segment(d, now_ns); }

void TcpReassembler::expire(int64_t now_ns) { impl_->expire(now_ns); }

}  // namespace sipex
