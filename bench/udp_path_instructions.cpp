// Instructions per message on the UDP fast path, counted by callgrind: the parser alone (active
// kernel) and a worker's whole per-packet path (decode Ethernet/IPv4/UDP, parse, attribute,
// count). Only the measured loops are instrumented (callgrind client requests), so the figures
// do not include set-up. Run: valgrind --tool=callgrind --collect-atstart=no PROG [parse|worker]
// and divide the total by the message count the program prints.
//
// It uses only APIs that have existed since the first release, so bench/compare_udp_path.sh can
// build it against an older revision and compare.
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "message_corpus.hpp"
#include "sipex/sip_parse.hpp"
#include "sipex/worker.hpp"

namespace {

std::vector<std::vector<uint8_t>> frames(const std::vector<std::string>& msgs) {
  std::vector<std::vector<uint8_t>> out;
  uint32_t i = 0;
  for (const std::string& m : msgs) {
    std::vector<uint8_t> f = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00};
    const auto total = static_cast<uint16_t>(28 + m.size());
    const uint8_t ip[20] = {0x45, 0, static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total), 0, 0, 0x40, 0, 64, 17,
                            0, 0, 198, 51, static_cast<uint8_t>(100 + i % 4), static_cast<uint8_t>(i % 200), 203, 0, 113, 9};
    f.insert(f.end(), ip, ip + 20);
    const auto ulen = static_cast<uint16_t>(8 + m.size());
    const uint8_t udp[8] = {0x13, 0xc4, 0x13, 0xc4, static_cast<uint8_t>(ulen >> 8), static_cast<uint8_t>(ulen), 0, 0};
    f.insert(f.end(), udp, udp + 8);
    f.insert(f.end(), m.begin(), m.end());
    out.push_back(std::move(f));
    ++i;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const bool worker = argc > 1 && std::strcmp(argv[1], "worker") == 0;
  const auto msgs = sipex::bench::message_corpus(4096);
  const auto fs = frames(msgs);
  sipex::Config cfg;
  sipex::PeerRegistry peers(cfg);
  sipex::BatchPool pool(1, 1);
  sipex::BatchQueue queue(1);
  sipex::Worker w(queue, pool, peers, cfg);
  // One warm-up pass: first sight of each peer and series is not the steady state.
  for (const auto& f : fs) w.process(1, f.data(), static_cast<uint32_t>(f.size()));
  size_t ok = 0;
  sipex::SipMessage m;
  CALLGRIND_TOGGLE_COLLECT;
  if (worker) {
    for (const auto& f : fs) w.process(1, f.data(), static_cast<uint32_t>(f.size()));
  } else {
    for (const auto& s : msgs) ok += sipex::parse_sip(s.data(), s.size(), sipex::Framing::datagram, m) == sipex::ParseStatus::ok;
  }
  CALLGRIND_TOGGLE_COLLECT;
  std::printf("%s messages=%zu ok=%zu\n", worker ? "worker" : "parse", msgs.size(), worker ? msgs.size() : ok);
  return 0;
}
