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

}  // namespace

int main(int argc, char** argv) {
  const bool worker = argc > 1 && std::strcmp(argv[1], "worker") == 0;
  const auto msgs = sipex::bench::message_corpus(4096);
  const auto fs = sipex::bench::udp_frames(msgs);
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
