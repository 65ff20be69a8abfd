// libFuzzer target: the frame decoder (links, IP, tunnels, transports) and, for IP fragments, the
// reassembler and the transport decoder that resumes after it.
//
// Input: [link-type selector][frame]. The selector byte picks a link type from
// fuzz_common.hpp's kLinkSelector (every supported one, and one unsupported); the rest is one
// captured frame, decoded from an exact-size heap copy and from copies that end right before and
// start right after an inaccessible page. Checked:
//   - decode_frame gives the same result on every copy (it reads only the frame);
//   - a decoded packet's payload lies inside the frame, its addresses are one family, its
//     protocol is UDP, TCP or SCTP, at most kMaxEncapsulation tunnels were unwrapped;
//   - an IP fragment's data lies inside the frame, its offset is a multiple of 8, and it is fed
//     to an IpReassembler (small limits) twice (the second time an exact duplicate); whatever it
//     completes is decoded again with decode_transport, and the fragment's data is also decoded
//     with decode_transport as though it were a whole payload (exact-size copy);
//   - outer_flow_hash is the same on every copy and, for frames whose outer IP header sits at a
//     fixed offset, the same with source and destination swapped.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_common.hpp"
#include "sipex/decode.hpp"
#include "sipex/ip_reassembly.hpp"

using namespace sipex;
using sipex::fuzz::GuardedArea;
using sipex::fuzz::HeapCopy;

namespace {

constexpr size_t kMaxFrame = 1 << 18;

struct Result {
  Skip skip;
  Decoded d;
};

FUZZ_NO_COVERAGE bool inside(const uint8_t* p, uint32_t n, const uint8_t* base, size_t len) {
  return p >= base && n <= len && p - base <= static_cast<ptrdiff_t>(len - n);
}

FUZZ_NO_COVERAGE bool same_result(const Result& a, const uint8_t* abase, const Result& b, const uint8_t* bbase) {
  if (a.skip != b.skip) return false;
  if (a.skip == Skip::none) {
    return a.d.src == b.d.src && a.d.dst == b.d.dst && a.d.sport == b.d.sport && a.d.dport == b.d.dport &&
           a.d.ip_protocol == b.d.ip_protocol && a.d.encapsulations == b.d.encapsulations &&
           a.d.payload - abase == b.d.payload - bbase && a.d.payload_len == b.d.payload_len &&
           (a.d.ip_protocol != 6 || (a.d.tcp_flags == b.d.tcp_flags && a.d.tcp_seq == b.d.tcp_seq));
  }
  if (a.skip == Skip::ip_fragment) {
    const IpFragment& x = a.d.fragment;
    const IpFragment& y = b.d.fragment;
    return x.src == y.src && x.dst == y.dst && x.id == y.id && x.version == y.version && x.protocol == y.protocol &&
           x.more == y.more && x.offset == y.offset && x.data - abase == y.data - bbase && x.data_len == y.data_len;
  }
  return true;
}

FUZZ_NO_COVERAGE void check_decoded(const Decoded& d, const uint8_t* base, size_t len) {
  FUZZ_CHECK(inside(d.payload, d.payload_len, base, len));
  FUZZ_CHECK(d.src.family == 4 || d.src.family == 6);
  FUZZ_CHECK(d.dst.family == d.src.family);
  FUZZ_CHECK(d.ip_protocol == 17 || d.ip_protocol == 6 || d.ip_protocol == 132);
  FUZZ_CHECK(d.encapsulations <= kMaxEncapsulation);
}

FUZZ_NO_COVERAGE void check_transport(Skip s, const Decoded& d, const uint8_t* base, size_t len) {
  FUZZ_CHECK(static_cast<size_t>(s) < kSkipCount && s != Skip::not_sip && s != Skip::unsupported_link_type);
  if (s == Skip::none) check_decoded(d, base, len);
  if (s == Skip::ip_fragment) FUZZ_CHECK(inside(d.fragment.data, d.fragment.data_len, base, len));
}

// Offset of the outer IP header for the link types and framings where it is fixed; -1 otherwise.
FUZZ_NO_COVERAGE int fixed_ip_offset(uint16_t lt, const uint8_t* f, size_t n) {
  auto be16 = [&](size_t at) { return at + 2 <= n ? (f[at] << 8 | f[at + 1]) : -1; };
  switch (lt) {
    case kLinkEthernet: { const int t = be16(12); return (t == 0x0800 || t == 0x86DD) ? 14 : -1; }
    case kLinkLinuxSll: { const int t = be16(14); return (t == 0x0800 || t == 0x86DD) ? 16 : -1; }
    case kLinkLinuxSll2: { const int t = be16(0); return (t == 0x0800 || t == 0x86DD) ? 20 : -1; }
    case kLinkNull: case kLinkLoop: return 4;
    case kLinkRaw: case kLinkRawAlt: case kLinkIpv4: case kLinkIpv6: return 0;
    default: return -1;
  }
}

FUZZ_NO_COVERAGE void check_hash_symmetry(uint16_t lt, const uint8_t* f, size_t n, uint32_t h) {
  const int off = fixed_ip_offset(lt, f, n);
  if (off < 0 || static_cast<size_t>(off) >= n) return;
  const unsigned v = f[off] >> 4;
  size_t a, alen;
  if (v == 4 && n >= static_cast<size_t>(off) + 20) {
    a = static_cast<size_t>(off) + 12;
    alen = 4;
  } else if (v == 6 && n >= static_cast<size_t>(off) + 40) {
    a = static_cast<size_t>(off) + 8;
    alen = 16;
  } else {
    return;
  }
  std::vector<uint8_t> swapped(f, f + n);
  std::memcpy(swapped.data() + a, f + a + alen, alen);
  std::memcpy(swapped.data() + a + alen, f + a, alen);
  const HeapCopy sw(swapped.data(), n);
  FUZZ_CHECK(outer_flow_hash(lt, sw.data(), static_cast<uint32_t>(n)) == h);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static GuardedArea back_area(kMaxFrame), front_area(kMaxFrame);
  if (size < 1 || size - 1 > kMaxFrame) return 0;
  const uint16_t lt = fuzz::link_type(data[0]);
  const size_t n = size - 1;
  const uint32_t caplen = static_cast<uint32_t>(n);

  const HeapCopy heap(data + 1, n);
  const uint8_t* copies[] = {heap.data(), back_area.place_back(data + 1, n), front_area.place_front(data + 1, n)};

  Result res[3];
  uint32_t hashes[3];
  for (int i = 0; i < 3; ++i) {
    res[i].skip = decode_frame(lt, copies[i], caplen, res[i].d);
    hashes[i] = outer_flow_hash(lt, copies[i], caplen);
  }
  for (int i = 1; i < 3; ++i) {
    FUZZ_CHECK(same_result(res[0], copies[0], res[i], copies[i]));
    FUZZ_CHECK(hashes[i] == hashes[0]);
  }
  if (!link_type_supported(lt)) FUZZ_CHECK(res[0].skip == Skip::unsupported_link_type && hashes[0] == 0);
  check_hash_symmetry(lt, heap.data(), n, hashes[0]);

  const Skip s = res[0].skip;
  const Decoded& d = res[0].d;
  FUZZ_CHECK(static_cast<size_t>(s) < kSkipCount && s != Skip::not_sip);
  if (s == Skip::none) check_decoded(d, heap.data(), n);
  if (s != Skip::ip_fragment) return 0;

  const IpFragment f = d.fragment;
  FUZZ_CHECK(inside(f.data, f.data_len, heap.data(), n));
  FUZZ_CHECK(f.version == 4 || f.version == 6);
  FUZZ_CHECK(f.src.family == f.version && f.dst.family == f.version);
  FUZZ_CHECK(f.offset % 8 == 0);
  FUZZ_CHECK(d.encapsulations <= kMaxEncapsulation);

  // The fragment's data decoded as a whole transport payload, from an exact-size copy.
  {
    const HeapCopy payload(f.data, f.data_len);
    Decoded t;
    const Skip ts = decode_transport(f.version, f.protocol, f.src, f.dst, payload.data(), f.data_len,
                                     d.encapsulations, t);
    check_transport(ts, t, payload.data(), payload.size());
  }

  // Reassembly: small limits, one instance per input (deterministic).
  IpReassemblyLimits lim;
  lim.max_datagrams = 4;
  lim.max_bytes = 8192;
  IpReassembler ra(lim);
  for (int round = 0; round < 2; ++round) {
    const IpReassembler::Datagram dg = ra.add(f, 1'000'000'000);
    const IpReassemblyStats& st = ra.stats();
    FUZZ_CHECK(st.datagrams.load() <= lim.max_datagrams && st.bytes.load() <= lim.max_bytes);
    if (!dg) continue;
    FUZZ_CHECK(dg.len <= 65535);
    const HeapCopy whole(dg.data, dg.len);
    Decoded t;
    const Skip ts = decode_transport(f.version, f.protocol, f.src, f.dst, whole.data(), dg.len, d.encapsulations, t);
    check_transport(ts, t, whole.data(), whole.size());
  }
  ra.expire(1'000'000'000 + lim.timeout_ns + 1);
  FUZZ_CHECK(ra.stats().datagrams.load() == 0);
  return 0;
}
