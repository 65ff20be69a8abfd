// Instructions per message on the UDP fast path, counted by callgrind: the parser alone (active
// kernel), a worker's whole per-packet path (decode Ethernet/IPv4/UDP, parse, attribute, count)
// one packet at a time (worker) and in batches of kBatchPackets as the pipeline hands them over
// (batch). Only the measured loops are instrumented (callgrind client requests), so the figures
// do not include set-up. Run: valgrind --tool=callgrind --collect-atstart=no PROG
// [parse|worker|batch] and divide the total by the message count the program prints.
//
// The parse and worker modes use only APIs that have existed since the first release, so
// bench/compare_udp_path.sh can build it against an older revision and compare them; batch
// needs Worker::process_batch(), so only builds that define SIPEX_PROCESS_BATCH (this tree's
// CMake does) have it.
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "message_corpus.hpp"
#include "sipex/sip_parse.hpp"
#include "sipex/worker.hpp"

namespace {

}  // namespace

int main(int argc, char** argv) {
  const bool batch = argc > 1 && std::strcmp(argv[1], "batch") == 0;
  const bool worker = batch || (argc > 1 && std::strcmp(argv[1], "worker") == 0);
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
#ifdef SIPEX_PROCESS_BATCH
  // The batches are filled before collection starts: copying packets in is the reader's work.
  std::vector<std::unique_ptr<sipex::Batch>> batches;
  for (const auto& f : fs) {
    const auto len = static_cast<uint32_t>(f.size());
    if (batches.empty() || !batches.back()->fits(len)) batches.push_back(std::make_unique<sipex::Batch>());
    batches.back()->append(f.data(), len, len, 1, 0, 0);
  }
#else
  if (batch) {
    std::fprintf(stderr, "batch mode needs Worker::process_batch (SIPEX_PROCESS_BATCH)\n");
    return 2;
  }
#endif
  CALLGRIND_TOGGLE_COLLECT;
  if (batch) {
#ifdef SIPEX_PROCESS_BATCH
    for (const auto& b : batches) w.process_batch(*b);
#endif
  } else if (worker) {
    for (const auto& f : fs) w.process(1, f.data(), static_cast<uint32_t>(f.size()));
  } else {
    for (const auto& s : msgs) ok += sipex::parse_sip(s.data(), s.size(), sipex::Framing::datagram, m) == sipex::ParseStatus::ok;
  }
  CALLGRIND_TOGGLE_COLLECT;
  std::printf("%s messages=%zu ok=%zu\n", argc > 1 ? argv[1] : "parse", msgs.size(), worker ? msgs.size() : ok);
  return 0;
}
