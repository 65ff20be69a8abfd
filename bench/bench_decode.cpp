// Decoding a frame down to its transport: plain Ethernet/IPv4/UDP, 802.1Q, IPv6 with an
// extension header, and a GRE tunnel.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "sipex/decode.hpp"

namespace {

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

Bytes udp(const Bytes& payload) {
  Bytes b;
  put16(b, 5060);
  put16(b, 5060);
  put16(b, static_cast<uint16_t>(8 + payload.size()));
  put16(b, 0);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes ipv4(uint8_t proto, const Bytes& l4) {
  Bytes b = {0x45, 0};
  put16(b, static_cast<uint16_t>(20 + l4.size()));
  b.insert(b.end(), {0, 1, 0x40, 0, 64, proto, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2});
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

Bytes ipv6_dest_opts(const Bytes& l4) {
  Bytes b = {0x60, 0, 0, 0};
  put16(b, static_cast<uint16_t>(8 + l4.size()));
  b.push_back(60);
  b.push_back(64);
  for (int i = 0; i < 32; ++i) b.push_back(static_cast<uint8_t>(i));
  b.insert(b.end(), {17, 0, 1, 4, 0, 0, 0, 0});
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

Bytes ether(uint16_t type, const Bytes& payload, bool vlan) {
  Bytes b;
  b.reserve(18 + payload.size());  // one allocation (and no GCC 12 -Warray-bounds false positive)
  b.assign(12, 0xAA);
  if (vlan) b.insert(b.end(), {0x81, 0x00, 0x00, 0x64});
  put16(b, type);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

std::vector<Bytes> frames() {
  const Bytes sip(600, 'x');
  Bytes gre = {0, 0, 0x08, 0x00};
  const Bytes inner = ipv4(17, udp(sip));
  gre.insert(gre.end(), inner.begin(), inner.end());
  return {ether(0x0800, ipv4(17, udp(sip)), false), ether(0x0800, ipv4(17, udp(sip)), true),
          ether(0x86DD, ipv6_dest_opts(udp(sip)), false), ether(0x0800, ipv4(47, gre), false)};
}

void BM_Decode(benchmark::State& state) {
  const auto fs = frames();
  const Bytes& f = fs[static_cast<size_t>(state.range(0))];
  sipex::Decoded d;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sipex::decode_frame(sipex::kLinkEthernet, f.data(), static_cast<uint32_t>(f.size()), d));
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.size()));
}
BENCHMARK(BM_Decode)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->ArgName("frame");  // ipv4, vlan, ipv6+ext, gre

void BM_OuterFlowHash(benchmark::State& state) {
  const auto fs = frames();
  for (auto _ : state) {
    for (const Bytes& f : fs) {
      benchmark::DoNotOptimize(sipex::outer_flow_hash(sipex::kLinkEthernet, f.data(), static_cast<uint32_t>(f.size())));
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * fs.size()));
}
BENCHMARK(BM_OuterFlowHash);

}  // namespace
