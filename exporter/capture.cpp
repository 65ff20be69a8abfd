#include "sipex/capture.hpp"

#include <linux/if_packet.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdio_ext.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <stdexcept>
#include <thread>

#include "sipex/decode.hpp"

namespace sipex {

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string default_bpf_filter(const std::vector<uint16_t>& ports) {
  std::string sip, behind_ext;
  for (uint16_t p : ports) {
    const std::string n = std::to_string(p);
    if (!sip.empty()) sip += " or ", behind_ext += " or ";
    sip += "port " + n;
    // The ports of a transport header behind one IPv6 extension header (hop-by-hop, routing or
    // destination options), whose length byte is ip6[41] in 8-octet units beyond the first 8.
    behind_ext += "ip6[48 + ip6[41] * 8 : 2] == " + n + " or ip6[50 + ip6[41] * 8 : 2] == " + n;
  }
  std::string b = sip.empty() ? std::string() : sip + " or ";
  // Non-first IPv4 fragments and IPv6 fragments carry no ports (NOTES: libpcap on Linux).
  b += "(ip[6:2] & 0x1fff != 0) or (ip6[6] == 44)";
  // libpcap's `port` sees only a transport header right after the fixed IPv6 header.
  b += " or ((ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 60) and (ip6[40] == 0 or ip6[40] == 43 or ip6[40] == 44 or"
       " ip6[40] == 60";
  if (!behind_ext.empty()) b += " or ((ip6[40] == 6 or ip6[40] == 17 or ip6[40] == 132) and (" + behind_ext + "))";
  b += "))";
  // The tunnels the decoder opens (GRE and ERSPAN, IP-in-IP, VXLAN, MPLS, PPPoE) pass whole: the
  // kernel cannot see inside them. GTP-U is left out: on a mobile core it is all user-plane data.
  b += " or ip proto 47 or ip6 proto 47 or ip proto 4 or ip proto 41 or ip6 proto 4 or ip6 proto 41"
       " or udp port 4789 or udp port 8472 or ether proto 0x8847 or ether proto 0x8848 or ether proto 0x8864";
  return "(" + b + ") or (vlan and ((" + b + ") or (vlan and (" + b + "))))";
}

// ---- Dispatcher ----

Dispatcher::Dispatcher(BatchPool& pool, std::vector<BatchQueue*> queues, std::vector<SourceStats*> sources,
                       bool lossless, const std::atomic<bool>& stop)
    : pool_(pool),
      queues_(std::move(queues)),
      sources_(std::move(sources)),
      lossless_(lossless),
      stop_(stop),
      open_(queues_.size(), nullptr),
      pool_tok_(pool.queue()),
      pool_ptok_(pool.queue()) {
  for (BatchQueue* q : queues_) queue_toks_.push_back(std::make_unique<moodycamel::ProducerToken>(*q));
}

Dispatcher::~Dispatcher() {
  // Batches still open go back to the pool unsent only if flush() was not called; callers flush.
  for (Batch*& b : open_) {
    if (b != nullptr) pool_.give_back(b, pool_ptok_);
  }
}

Batch* Dispatcher::acquire() {
  if (Batch* b = pool_.try_take(pool_tok_)) return b;
  // Lossless (files): sleep until a worker gives a batch back, waking now and then for stop_.
  while (lossless_ && !stop_.load(std::memory_order_relaxed)) {
    if (Batch* b = pool_.take_wait(pool_tok_, 10'000)) return b;
  }
  return nullptr;
}

void Dispatcher::hand_over(size_t w) {
  Batch* b = open_[w];
  open_[w] = nullptr;
  for (unsigned spins = 0;; ++spins) {
    if (queues_[w]->try_enqueue(*queue_toks_[w], b)) return;
    if (!lossless_ || stop_.load(std::memory_order_relaxed)) break;
    if (spins < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  for (uint32_t i = 0; i < b->count; ++i) sources_[b->pkts[i].source]->dropped_queue.bump();
  pool_.give_back(b, pool_ptok_);
}

void Dispatcher::push(uint16_t linktype, uint16_t source, const uint8_t* data, uint32_t caplen,
                      uint32_t wirelen, int64_t ts_ns) {
  const size_t w = queues_.size() == 1 ? 0 : outer_flow_hash(linktype, data, caplen) % queues_.size();
  if (open_[w] != nullptr && !open_[w]->fits(caplen)) hand_over(w);
  if (open_[w] == nullptr) {
    open_[w] = acquire();
    if (open_[w] == nullptr) {
      sources_[source]->dropped_pool.bump();
      return;
    }
    open_[w]->opened_ns = monotonic_ns();
  }
  open_[w]->append(data, caplen, wirelen, linktype, source, ts_ns);
}

void Dispatcher::flush(int64_t older_than_ns) {
  for (size_t w = 0; w < open_.size(); ++w) {
    Batch* b = open_[w];
    if (b == nullptr || b->count == 0) continue;
    if (older_than_ns == 0 || b->opened_ns < older_than_ns) hand_over(w);
  }
}

// ---- PcapSource ----

PcapSource::PcapSource(pcap_t* p, std::string name, bool live, int timeout_ms)
    : p_(p), name_(std::move(name)), live_(live), linktype_(pcap_datalink(p)), timeout_ms_(timeout_ms) {}

PcapSource::~PcapSource() { pcap_close(p_); }

namespace {

void apply_filter(pcap_t* p, const std::string& expr, const std::string& what) {
  bpf_program prog;
  if (pcap_compile(p, &prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    throw std::runtime_error(what + ": bad BPF filter '" + expr + "': " + pcap_geterr(p));
  }
  const int rc = pcap_setfilter(p, &prog);
  pcap_freecode(&prog);
  if (rc != 0) throw std::runtime_error(what + ": cannot set BPF filter: " + pcap_geterr(p));
}

struct LoopCtx {
  Dispatcher* d;
  SourceStats* stats;
  uint16_t linktype;
  uint16_t source;
};

void on_packet(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  auto* c = reinterpret_cast<LoopCtx*>(user);
  c->stats->packets.bump();
  const int64_t ts = static_cast<int64_t>(h->ts.tv_sec) * 1000000000 + h->ts.tv_usec;  // nano precision
  const uint32_t caplen = h->caplen > kMaxSnaplen ? kMaxSnaplen : h->caplen;
  c->d->push(c->linktype, c->source, bytes, caplen, h->len, ts);
}

}  // namespace

std::unique_ptr<PcapSource> PcapSource::open_live(const std::string& ifname, const CaptureOptions& o,
                                                  int fanout_group) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(ifname.c_str(), err);
  if (p == nullptr) throw std::runtime_error(ifname + ": " + err);
  std::unique_ptr<PcapSource> src(new PcapSource(p, ifname, true, o.timeout_ms));
  pcap_set_snaplen(p, static_cast<int>(o.snaplen));
  pcap_set_promisc(p, 1);
  pcap_set_timeout(p, o.timeout_ms);
  // Immediate mode would silently switch TPACKET_V3 off (NOTES): leave it off, rely on the timeout.
  pcap_set_immediate_mode(p, 0);
  pcap_set_buffer_size(p, static_cast<int>(o.buffer_size > 0x7fffffff ? 0x7fffffff : o.buffer_size));
  pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
  const int rc = pcap_activate(p);
  if (rc < 0) {
    throw std::runtime_error(ifname + ": cannot capture: " + pcap_statustostr(rc) + " (" + pcap_geterr(p) + ")");
  }
  src->linktype_ = pcap_datalink(p);
  if (!link_type_supported(src->linktype_)) {
    throw std::runtime_error(ifname + ": unsupported link type " + std::to_string(src->linktype_));
  }
  const std::string filter = o.bpf_filter_set ? o.bpf_filter : default_bpf_filter(o.sip_ports);
  if (!filter.empty()) apply_filter(p, filter, ifname);
  if (fanout_group >= 0) {
    // libpcap has no API for PACKET_FANOUT: set it on its socket (NOTES).
    const int val = (fanout_group & 0xFFFF) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
    if (setsockopt(pcap_fileno(p), SOL_PACKET, PACKET_FANOUT, &val, sizeof val) != 0) {
      throw std::runtime_error(ifname + ": PACKET_FANOUT: " + std::strerror(errno));
    }
  }
  return src;
}

std::unique_ptr<PcapSource> PcapSource::open_file(const std::string& path, const CaptureOptions& o) {
  char err[PCAP_ERRBUF_SIZE] = {};
  // libpcap reads a savefile with two fread() calls per packet. Given its own FILE it would use
  // stdio's default 4 KiB buffer, one read() per few packets, each fread taking the stream's
  // lock. This stream has a 64 KiB buffer, is read by one thread only (no locking), and is read
  // ahead by the kernel. Measured on a 144 MB replay (reader thread's CPU samples, 2 workers):
  // 4 KiB ~360, 32-64 KiB ~250, 256 KiB ~450, 1 MiB ~600: a buffer larger than the L2 cache
  // makes the kernel's copy into it and the copy out of it both miss.
  constexpr size_t kReadBuffer = 64 << 10;
  auto buffer = std::make_unique_for_overwrite<char[]>(kReadBuffer);  // glibc ignores the size without one
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error(path + ": " + std::strerror(errno));
  if (f != stdin) {  // stdin keeps its own buffer: it may outlive this source
    std::setvbuf(f, buffer.get(), _IOFBF, kReadBuffer);
    __fsetlocking(f, FSETLOCKING_BYCALLER);
    (void)posix_fadvise(fileno(f), 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    if (f != stdin) std::fclose(f);  // libpcap closes it only once it owns it
    const std::string e(err);  // libpcap names the file in some messages but not in others
    throw std::runtime_error(e.starts_with(path) ? e : path + ": " + e);
  }
  std::unique_ptr<PcapSource> src(new PcapSource(p, path, false, o.timeout_ms));
  src->read_buffer_ = std::move(buffer);  // outlives the stream: pcap_close() runs first
  if (!link_type_supported(src->linktype_)) {
    throw std::runtime_error(path + ": unsupported link type " + std::to_string(src->linktype_) + " (" +
                             (pcap_datalink_val_to_name(src->linktype_) ? pcap_datalink_val_to_name(src->linktype_) : "?") + ")");
  }
  if (o.bpf_filter_set && !o.bpf_filter.empty()) apply_filter(p, o.bpf_filter, path);
  return src;
}

void PcapSource::break_loop() { pcap_breakloop(p_); }

void PcapSource::poll_stats(SourceStats& stats) {
  pcap_stat s{};
  if (pcap_stats(p_, &s) != 0) return;
  // 32-bit counters that wrap: accumulate deltas modulo 2^32 (NOTES).
  stats.dropped_kernel.bump(static_cast<uint32_t>(s.ps_drop - last_drop_));
  stats.dropped_interface.bump(static_cast<uint32_t>(s.ps_ifdrop - last_ifdrop_));
  last_drop_ = s.ps_drop;
  last_ifdrop_ = s.ps_ifdrop;
}

std::string PcapSource::run(Dispatcher& d, uint16_t source_index, SourceStats& stats, const std::atomic<bool>& stop) {
  LoopCtx ctx{&d, &stats, static_cast<uint16_t>(linktype_), source_index};
  int64_t next_stats = monotonic_ns();
  constexpr int64_t kStaleNs = 100'000'000;  // hand over a live batch at most 100 ms after it opened
  // Live: with TPACKET_V3 a blocking pcap_dispatch waits until the kernel retires a block, which it
  // never does while no packet arrives; a half-full batch would then never reach its worker. So
  // the handle is non-blocking and the thread wakes at least every timeout_ms to flush and to
  // notice `stop`.
  int fd = -1;
  if (live_) {
    char err[PCAP_ERRBUF_SIZE] = {};
    if (pcap_setnonblock(p_, 1, err) != 0) return name_ + ": " + err;
    fd = pcap_get_selectable_fd(p_);
  }
  while (!stop.load(std::memory_order_relaxed)) {
    if (fd >= 0) {
      pollfd pfd{fd, POLLIN, 0};
      (void)poll(&pfd, 1, timeout_ms_);  // readiness or timeout: either way, dispatch and flush
    }
    const int n = pcap_dispatch(p_, live_ ? -1 : 4096, on_packet, reinterpret_cast<u_char*>(&ctx));
    if (n == PCAP_ERROR) {
      std::string e = name_ + ": " + pcap_geterr(p_);
      d.flush();
      if (live_) poll_stats(stats);
      return e;
    }
    if (n == PCAP_ERROR_BREAK) break;
    if (!live_) {
      if (n == 0) break;  // end of file
      continue;
    }
    const int64_t now = monotonic_ns();
    d.flush(now - kStaleNs);
    if (now >= next_stats) {
      poll_stats(stats);
      next_stats = now + 1'000'000'000;
    }
  }
  if (live_) poll_stats(stats);
  d.flush();
  return {};
}

}  // namespace sipex
