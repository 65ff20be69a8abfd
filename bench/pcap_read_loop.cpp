// pcap_read_loop: the floor of any libpcap-based file reader. It opens each pcap/pcapng file the
// way sip_exporter does (nanosecond timestamps), reads every packet with pcap_dispatch, and
// touches each one minimally (sums caplen and the packet's last byte, so the compiler cannot drop
// the read), then prints the packet count and the seconds spent. bench/replay_benchmark.sh
// compares sip_exporter's time on a file against this one's.
//
// usage: pcap_read_loop FILE...
//          prints: packets=N bytes=B checksum=C seconds=S
//        pcap_read_loop --strip-rtp OUT IN
//          writes IN to OUT (pcap, same link type and precision) without its RTP/RTCP packets:
//          UDP datagrams whose payload's first byte has version bits 10 (RFC 3550), found under
//          Ethernet with up to two VLAN tags (802.1Q, 802.1ad, 0x9100), IPv4, and IPv6 with Hop-by-Hop
//          or Destination Options headers. A SIP message starts with a letter and a keep-alive with
//          CR, so every SIP datagram (well-formed or not) is kept. Used to derive a SIP-only capture
//          from gen_capture's full profile (en10mb), which always interleaves RTP.
// Exit status: 0 done, 1 a file that cannot be read or written, 2 bad arguments.

#include <pcap/pcap.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

struct Sums {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t checksum = 0;
};

void on_packet(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  auto* s = reinterpret_cast<Sums*>(user);
  ++s->packets;
  s->bytes += h->caplen;
  if (h->caplen > 0) s->checksum += bytes[h->caplen - 1];
}

int read_files(int n, char** files) {
  Sums s;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* p = pcap_open_offline_with_tstamp_precision(files[i], PCAP_TSTAMP_PRECISION_NANO, err);
    if (p == nullptr) {
      std::fprintf(stderr, "pcap_read_loop: %s: %s\n", files[i], err);
      return 1;
    }
    const int rc = pcap_dispatch(p, -1, on_packet, reinterpret_cast<u_char*>(&s));
    if (rc == PCAP_ERROR) {
      std::fprintf(stderr, "pcap_read_loop: %s: %s\n", files[i], pcap_geterr(p));
      pcap_close(p);
      return 1;
    }
    pcap_close(p);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("packets=%llu bytes=%llu checksum=%llu seconds=%.6f\n", static_cast<unsigned long long>(s.packets),
              static_cast<unsigned long long>(s.bytes), static_cast<unsigned long long>(s.checksum), secs);
  return 0;
}

uint16_t be16(const u_char* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// True when the Ethernet frame is a UDP datagram whose payload looks like RTP/RTCP version 2.
bool is_rtp(const u_char* f, uint32_t len) {
  uint32_t off = 12;
  if (len < off + 2) return false;
  uint16_t type = be16(f + off);
  for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88A8 || type == 0x9100); ++tags) {
    off += 4;
    if (len < off + 2) return false;
    type = be16(f + off);
  }
  off += 2;
  uint32_t udp;
  if (type == 0x0800) {
    if (len < off + 20 || (f[off] >> 4) != 4 || f[off + 9] != 17) return false;
    if ((be16(f + off + 6) & 0x1FFF) != 0) return false;  // a non-first fragment
    udp = off + (f[off] & 0x0F) * 4u;
  } else if (type == 0x86DD) {
    if (len < off + 40) return false;
    uint8_t nh = f[off + 6];
    udp = off + 40;
    while (nh == 0 || nh == 60) {  // Hop-by-Hop, Destination Options
      if (len < udp + 8) return false;
      nh = f[udp];
      udp += 8u * (f[udp + 1] + 1u);
    }
    if (nh != 17) return false;
  } else {
    return false;
  }
  return len > udp + 8 && (f[udp + 8] & 0xC0) == 0x80;
}

int strip_rtp(const char* out, const char* in) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline_with_tstamp_precision(in, PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    std::fprintf(stderr, "pcap_read_loop: %s: %s\n", in, err);
    return 1;
  }
  if (pcap_datalink(p) != DLT_EN10MB) {
    std::fprintf(stderr, "pcap_read_loop: %s: --strip-rtp needs an Ethernet capture\n", in);
    pcap_close(p);
    return 1;
  }
  pcap_dumper_t* d = pcap_dump_open(p, out);
  if (d == nullptr) {
    std::fprintf(stderr, "pcap_read_loop: %s: %s\n", out, pcap_geterr(p));
    pcap_close(p);
    return 1;
  }
  uint64_t kept = 0, dropped = 0;
  pcap_pkthdr* h;
  const u_char* data;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
    if (is_rtp(data, h->caplen)) {
      ++dropped;
    } else {
      pcap_dump(reinterpret_cast<u_char*>(d), h, data);
      ++kept;
    }
  }
  const bool ok = rc == PCAP_ERROR_BREAK && pcap_dump_flush(d) == 0;
  if (!ok) std::fprintf(stderr, "pcap_read_loop: %s\n", rc == PCAP_ERROR ? pcap_geterr(p) : "cannot write output");
  pcap_dump_close(d);
  pcap_close(p);
  std::printf("kept=%llu dropped_rtp=%llu\n", static_cast<unsigned long long>(kept), static_cast<unsigned long long>(dropped));
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--strip-rtp") == 0) return strip_rtp(argv[2], argv[3]);
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: pcap_read_loop FILE...\n       pcap_read_loop --strip-rtp OUT IN\n");
    return 2;
  }
  return read_files(argc - 1, argv + 1);
}
