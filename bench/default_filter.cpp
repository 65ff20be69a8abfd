// Prints the kernel filter sip_exporter builds from --sip.ports (default_bpf_filter(), the same
// function the exporter calls), so that bench/live_benchmark.sh computes its file-mode reference
// through exactly the filter the live capture runs, instead of a copy that can fall behind.
//
//   default_filter PORT[,PORT...]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sipex/capture.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT[,PORT...]\n", argv[0]);
    return 2;
  }
  std::vector<uint16_t> ports;
  const std::string list = argv[1];
  for (size_t i = 0; i <= list.size();) {
    const size_t j = list.find(',', i) == std::string::npos ? list.size() : list.find(',', i);
    const unsigned long p = std::strtoul(list.substr(i, j - i).c_str(), nullptr, 10);
    if (p == 0 || p > 65535) {
      std::fprintf(stderr, "default_filter: bad port in '%s'\n", argv[1]);
      return 2;
    }
    ports.push_back(static_cast<uint16_t>(p));
    i = j + 1;
  }
  std::printf("%s\n", sipex::default_bpf_filter(ports).c_str());
  return 0;
}
