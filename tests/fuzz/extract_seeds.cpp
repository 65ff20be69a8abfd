// Seed corpora for the fuzz targets, from captures (pcap or pcapng, read with libpcap) and from
// the generated-record formats of fuzz_reassembly.cpp. Shares no code with the exporter.
//
//   extract_seeds OUT_DIR CAPTURE...
//
// writes
//   OUT_DIR/fuzz_decode/NAME-N        [link selector][frame] for the first packets of each capture
//   OUT_DIR/fuzz_reassembly/NAME-wN   fuzz_reassembly inputs: runs of consecutive packets of a
//                                     capture as raw-frame records, timed like the capture
//   OUT_DIR/fuzz_reassembly/gen-*     generated records: TCP streams in order, split, reordered
//                                     and retransmitted; IP fragments; SCTP chunks
//   OUT_DIR/fuzz_sip_parse/NAME-N     what follows the first SIP start line found in a packet
// Capture files that cannot be read are reported and skipped.
#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

constexpr size_t kDecodePerCapture = 120;    // packets per capture for the decoder
constexpr size_t kParsePerCapture = 60;      // SIP payloads per capture for the parser
constexpr size_t kWindowPackets = 48;        // packets per reassembly seed
constexpr size_t kWindowBytes = 24 * 1024;   // bytes per reassembly seed
constexpr size_t kWindowsPerCapture = 12;

void write(const fs::path& p, const Bytes& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) {
    std::fprintf(stderr, "extract_seeds: cannot write %s\n", p.c_str());
    std::exit(1);
  }
}

void put16(Bytes& b, size_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

// The step code (fuzz_reassembly.cpp's step_ns) closest to a gap of `ns` (>= 0).
unsigned step_code(int64_t ns) {
  const int64_t ms = ns / 1'000'000;
  if (ms <= 0) return 0;
  if (ms <= 1600) {
    unsigned c = 1;
    while (c < 40 && int64_t{c} * c < ms) ++c;
    return c;
  }
  if (ms <= 20'000) return 40 + static_cast<unsigned>((ms + 999) / 1000);
  return 61;
}

// Offset of the first SIP start line in the frame (a method or "SIP/2.0 " after a non-text
// byte or at a line start), or npos.
size_t sip_start(const uint8_t* p, size_t n) {
  static const char* const kStarts[] = {"SIP/2.0 ", "INVITE ", "ACK ",    "BYE ",   "CANCEL ", "REGISTER ",
                                        "OPTIONS ", "PRACK ", "SUBSCRIBE ", "NOTIFY ", "UPDATE ", "MESSAGE ",
                                        "REFER ",   "PUBLISH ", "INFO "};
  const std::string_view v(reinterpret_cast<const char*>(p), n);
  size_t best = std::string_view::npos;
  for (const char* s : kStarts) {
    const size_t i = v.find(s);
    if (i < best) best = i;
  }
  return best;
}

void from_capture(const fs::path& file, const fs::path& out) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* pc = pcap_open_offline(file.c_str(), err);
  if (pc == nullptr) {
    std::fprintf(stderr, "extract_seeds: %s: %s (skipped)\n", file.c_str(), err);
    return;
  }
  const int sel = sipex::fuzz::link_selector(pcap_datalink(pc));
  std::string name = file.filename().string();
  if (name.size() > 60) name = name.substr(0, 60);
  if (sel < 0) {
    std::fprintf(stderr, "extract_seeds: %s: link type %d has no selector (skipped)\n", file.c_str(),
                 pcap_datalink(pc));
    pcap_close(pc);
    return;
  }
  size_t n = 0, parse_n = 0, windows = 0, in_window = 0;
  Bytes window;
  int64_t last_ts = -1;
  auto flush = [&] {
    if (in_window > 0 && windows < kWindowsPerCapture) {
      write(out / "fuzz_reassembly" / (name + "-w" + std::to_string(windows)), window);
      ++windows;
    }
    window.clear();
    in_window = 0;
  };
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(pc, &h, &data) == 1) {
    const int64_t ts = int64_t{h->ts.tv_sec} * 1'000'000'000 + int64_t{h->ts.tv_usec} * 1000;
    if (n < kDecodePerCapture) {
      Bytes b;
      b.push_back(static_cast<uint8_t>(sel));
      b.insert(b.end(), data, data + h->caplen);
      write(out / "fuzz_decode" / (name + "-" + std::to_string(n)), b);
    }
    const size_t at = sip_start(data, h->caplen);
    if (at != std::string_view::npos && parse_n < kParsePerCapture) {
      write(out / "fuzz_sip_parse" / (name + "-" + std::to_string(parse_n)), Bytes(data + at, data + h->caplen));
      ++parse_n;
    }
    if (windows < kWindowsPerCapture && h->caplen <= 0xFFFF) {
      if (in_window == 0) window.push_back(0);  // options: scalar kernel, no filter, no home networks
      const unsigned code = last_ts < 0 || ts < last_ts ? 0 : step_code(ts - last_ts);
      window.push_back(static_cast<uint8_t>(code << 2 | 0));  // kind 0: raw frame
      window.push_back(static_cast<uint8_t>(sel));
      put16(window, h->caplen);
      window.insert(window.end(), data, data + h->caplen);
      ++in_window;
      if (in_window == kWindowPackets || window.size() >= kWindowBytes) flush();
    }
    last_ts = ts;
    ++n;
  }
  flush();
  pcap_close(pc);
}

// ---- generated records (the formats of fuzz_reassembly.cpp) --------------------------------

// A TCP segment record: connection, direction, mode 0 (stream text), flags, offset, length.
void tcp_rec(Bytes& b, unsigned conn, unsigned dir, uint8_t flags, size_t off, size_t len, unsigned step = 1) {
  b.push_back(static_cast<uint8_t>(step << 2 | 1));
  b.push_back(static_cast<uint8_t>(conn | dir << 2));
  b.push_back(flags);
  put16(b, off);
  put16(b, len);
}

void generated(const fs::path& out) {
  const fs::path dir = out / "fuzz_reassembly";
  constexpr uint8_t kAck = 0x10, kPsh = 0x08, kSyn = 0x02, kFin = 0x01;
  // Each connection's two directions in order, in segments of several sizes, with the handshake.
  for (unsigned conn = 0; conn < 4; ++conn) {
    for (size_t seg : {size_t{536}, size_t{97}, size_t{1460}}) {
      Bytes b = {static_cast<uint8_t>(conn == 3 ? 2 : 0)};
      tcp_rec(b, conn, 0, kSyn, 0, 0);
      tcp_rec(b, conn, 1, kSyn | kAck, 0, 0);
      for (size_t off = 0; off < 4000; off += seg) {
        tcp_rec(b, conn, 0, kAck | kPsh, off, seg);
        tcp_rec(b, conn, 1, kAck | kPsh, off, seg);
      }
      tcp_rec(b, conn, 0, kFin | kAck, 4000, 0);
      write(dir / ("gen-tcp-c" + std::to_string(conn) + "-s" + std::to_string(seg)), b);
    }
  }
  // Out of order, retransmitted, overlapping, and a gap.
  {
    Bytes b = {1};
    tcp_rec(b, 0, 0, kAck, 300, 300);
    tcp_rec(b, 0, 0, kAck, 0, 300);
    tcp_rec(b, 0, 0, kAck, 0, 300, 20);
    tcp_rec(b, 0, 0, kAck, 150, 400);
    tcp_rec(b, 0, 0, kAck, 1200, 200);
    tcp_rec(b, 0, 0, kAck, 600, 100, 50);
    tcp_rec(b, 0, 1, kAck, 0, 1000);
    write(dir / "gen-tcp-reorder", b);
  }
  // IP fragments of messages 0, 3 and 11, in order, reversed, duplicated; IPv4 and IPv6.
  for (unsigned v6 = 0; v6 < 2; ++v6) {
    Bytes b = {static_cast<uint8_t>(v6 ? 8 : 0)};
    for (const uint8_t msg : {uint8_t{0}, uint8_t{3}, uint8_t{11}}) {
      const uint8_t id = static_cast<uint8_t>(msg & 7);
      const uint8_t sel = static_cast<uint8_t>(v6 << 1 | id << 2);
      for (uint8_t k = 0; k < 4; ++k) {  // fragments of 184 bytes; an index past the end is the last
        const uint8_t o = msg == 3 ? static_cast<uint8_t>(3 - k) : k;
        for (int rep = 0; rep < (k == 1 ? 2 : 1); ++rep) {
          b.push_back(static_cast<uint8_t>(1 << 2 | 2));
          b.push_back(sel);
          b.push_back(msg);
          b.push_back(o);
          b.push_back(22);  // (22 + 1) * 8 = 184 bytes
          b.push_back(0);
        }
      }
    }
    write(dir / ("gen-frag-v" + std::string(v6 ? "6" : "4")), b);
  }
  // SCTP: whole messages, and message 0 in three fragments (B, middle, E), DATA and I-DATA.
  for (unsigned idata = 0; idata < 2; ++idata) {
    Bytes b = {0};
    auto chunk = [&](uint8_t flags, uint8_t tsn, uint8_t msg, uint8_t off8, uint8_t len8) {
      b.push_back(flags);
      b.push_back(tsn);
      b.push_back(1);  // stream
      b.push_back(5);  // SSN / MID
      b.push_back(msg);
      b.push_back(off8);
      b.push_back(len8);
    };
    for (const uint8_t msg : {uint8_t{1}, uint8_t{7}}) {
      b.push_back(static_cast<uint8_t>(1 << 2 | 3));
      b.push_back(static_cast<uint8_t>(idata << 2));
      chunk(3, 0, msg, 0, 255);
    }
    b.push_back(static_cast<uint8_t>(1 << 2 | 3));
    b.push_back(static_cast<uint8_t>(idata << 2 | 1 << 3));  // two chunks
    chunk(2, 10, 0, 0, 20);
    chunk(0, 11, 0, 20, 20);
    b.push_back(static_cast<uint8_t>(1 << 2 | 3));
    b.push_back(static_cast<uint8_t>(idata << 2));
    chunk(1, 12, 0, 40, 255);
    write(dir / ("gen-sctp-" + std::string(idata ? "idata" : "data")), b);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: extract_seeds OUT_DIR [CAPTURE...]\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* t : {"fuzz_decode", "fuzz_reassembly", "fuzz_sip_parse"}) fs::create_directories(out / t);
  for (int i = 2; i < argc; ++i) from_capture(argv[i], out);
  generated(out);
  return 0;
}
