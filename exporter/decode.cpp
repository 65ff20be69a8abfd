#include "sipex/decode.hpp"

#include <arpa/inet.h>

namespace sipex {
namespace {

constexpr std::string_view kSkipNames[kSkipCount] = {
    "none", "truncated", "malformed", "unsupported_link_type", "not_ip", "other_ip_protocol",
    "not_sip", "tcp_unsupported", "sctp_unsupported", "ip_fragment_unsupported", "tunnel_unsupported",
};

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
inline uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[3]) | static_cast<uint32_t>(p[2]) << 8 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[0]) << 24;
}

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86DD;

// Result of walking the link layer: where the network header starts.
struct Network {
  const uint8_t* p;
  uint32_t len;
  uint8_t version;  // 4 or 6
};

Skip ethertype_to_network(uint16_t type, const uint8_t* p, uint32_t len, Network& n) {
  if (type == kEtherIpv4) { n = {p, len, 4}; return Skip::none; }
  if (type == kEtherIpv6) { n = {p, len, 6}; return Skip::none; }
  switch (type) {
    case 0x8864:  // PPPoE session
    case 0x8847:  // MPLS unicast
    case 0x8848:  // MPLS multicast
    case 0x88BE:  // ERSPAN type II (bare)
    case 0x22EB:  // ERSPAN type III (bare)
      return Skip::tunnel_unsupported;
    default: return Skip::not_ip;
  }
}

// Ethernet payload after any number of 802.1Q / 802.1ad / QinQ tags, starting at the ethertype.
Skip after_ethertype(const uint8_t* p, uint32_t len, Network& n) {
  for (int tags = 0; tags < 8; ++tags) {
    if (len < 2) return Skip::truncated;
    const uint16_t type = be16(p);
    if (type == 0x8100 || type == 0x88A8 || type == 0x9100) {
      if (len < 6) return Skip::truncated;
      p += 4;
      len -= 4;
      continue;
    }
    if (type < 0x0600) return Skip::not_ip;  // 802.3 length field: LLC, STP, ...
    return ethertype_to_network(type, p + 2, len - 2, n);
  }
  return Skip::malformed;
}

Skip by_version(const uint8_t* p, uint32_t len, Network& n) {
  if (len < 1) return Skip::truncated;
  const uint8_t v = p[0] >> 4;
  if (v != 4 && v != 6) return Skip::not_ip;
  n = {p, len, v};
  return Skip::none;
}

Skip find_network(int linktype, const uint8_t* f, uint32_t caplen, Network& n) {
  switch (linktype) {
    case kLinkEthernet:
      if (caplen < 14) return Skip::truncated;
      return after_ethertype(f + 12, caplen - 12, n);
    case kLinkLinuxSll:
      if (caplen < 16) return Skip::truncated;
      return after_ethertype(f + 14, caplen - 14, n);
    case kLinkLinuxSll2:
      if (caplen < 20) return Skip::truncated;
      if (be16(f) == 0x8100 || be16(f) == 0x88A8) {
        // The payload starts with the tag's TCI; the inner type follows it.
        if (caplen < 24) return Skip::truncated;
        return after_ethertype(f + 22, caplen - 22, n);
      }
      return ethertype_to_network(be16(f), f + 20, caplen - 20, n);
    case kLinkNull:
    case kLinkLoop: {
      if (caplen < 4) return Skip::truncated;
      // DLT_NULL's family is in the writer's byte order; accept either.
      uint32_t fam = linktype == kLinkLoop ? be32(f) : le32(f);
      if (fam > 0xFFFF) fam = be32(f);
      if (fam == 2) { n = {f + 4, caplen - 4, 4}; return Skip::none; }
      if (fam == 24 || fam == 28 || fam == 30 || fam == 10) { n = {f + 4, caplen - 4, 6}; return Skip::none; }
      return Skip::not_ip;
    }
    case kLinkRaw:
    case kLinkRawAlt:
    case kLinkIpv4:
    case kLinkIpv6:
      return by_version(f, caplen, n);
    default:
      return Skip::unsupported_link_type;
  }
}

Skip transport(uint8_t proto, const uint8_t* p, uint32_t len, Decoded& d) {
  d.ip_protocol = proto;
  switch (proto) {
    case 17: {
      if (len < 8) return Skip::truncated;
      uint32_t ulen = be16(p + 4);
      if (ulen == 0) ulen = len;  // jumbogram or offloaded checksum/length: trust the capture
      if (ulen < 8) return Skip::malformed;
      if (ulen > len) return Skip::truncated;
      d.sport = be16(p);
      d.dport = be16(p + 2);
      d.payload = p + 8;
      d.payload_len = ulen - 8;
      return Skip::none;
    }
    case 6: return Skip::tcp_unsupported;
    case 132: return Skip::sctp_unsupported;
    case 4: case 41: case 47: case 115: return Skip::tunnel_unsupported;  // IPIP, 6in4, GRE, L2TP
    default: return Skip::other_ip_protocol;
  }
}

Skip decode_ipv4(const uint8_t* p, uint32_t len, Decoded& d) {
  if (len < 20) return Skip::truncated;
  if ((p[0] >> 4) != 4) return Skip::malformed;
  const uint32_t ihl = (p[0] & 0x0Fu) * 4;
  if (ihl < 20) return Skip::malformed;
  if (len < ihl) return Skip::truncated;
  uint32_t total = be16(p + 2);
  if (total == 0) total = len;  // TSO on the capturing host leaves 0 here
  if (total < ihl) return Skip::malformed;
  if (total > len) return Skip::truncated;
  // Ethernet pads short frames: the IP total length, not the capture length, ends the packet.
  const uint16_t frag = be16(p + 6);
  if ((frag & 0x3FFF) != 0) return Skip::ip_fragment_unsupported;  // MF set or offset != 0
  std::memset(&d.src, 0, sizeof d.src);
  std::memset(&d.dst, 0, sizeof d.dst);
  std::memcpy(d.src.bytes, p + 12, 4);
  std::memcpy(d.dst.bytes, p + 16, 4);
  d.src.family = d.dst.family = 4;
  return transport(p[9], p + ihl, total - ihl, d);
}

Skip decode_ipv6(const uint8_t* p, uint32_t len, Decoded& d) {
  if (len < 40) return Skip::truncated;
  if ((p[0] >> 4) != 6) return Skip::malformed;
  uint32_t plen = be16(p + 4);
  if (plen == 0) plen = len - 40;  // jumbogram (hop-by-hop option) or offload
  if (40 + plen > len) return Skip::truncated;
  const uint32_t end = 40 + plen;
  uint8_t next = p[6];
  uint32_t off = 40;
  for (int i = 0; i < 16; ++i) {
    switch (next) {
      case 0: case 43: case 60: case 135: case 139: case 140: {  // hop-by-hop, routing, dest, mobility, HIP, shim6
        if (off + 2 > end) return Skip::truncated;
        const uint32_t hl = (static_cast<uint32_t>(p[off + 1]) + 1) * 8;
        next = p[off];
        off += hl;
        if (off > end) return Skip::truncated;
        continue;
      }
      case 51: {  // AH: length in 4-byte units minus 2
        if (off + 2 > end) return Skip::truncated;
        const uint32_t hl = (static_cast<uint32_t>(p[off + 1]) + 2) * 4;
        next = p[off];
        off += hl;
        if (off > end) return Skip::truncated;
        continue;
      }
      case 44: {  // fragment header: only an atomic fragment (offset 0, M clear, RFC 6946) is whole
        if (off + 8 > end) return Skip::truncated;
        const uint16_t fo = be16(p + off + 2);
        if ((fo & 0xFFF9) != 0) return Skip::ip_fragment_unsupported;
        next = p[off];
        off += 8;
        continue;
      }
      case 59: return Skip::other_ip_protocol;  // no next header
      default: break;
    }
    break;
  }
  std::memcpy(d.src.bytes, p + 8, 16);
  std::memcpy(d.dst.bytes, p + 24, 16);
  d.src.family = d.dst.family = 6;
  return transport(next, p + off, end - off, d);
}

inline uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

uint32_t hash_bytes(const uint8_t* p, uint32_t n) {
  uint32_t h = 0x9E3779B9u;
  for (uint32_t i = 0; i + 4 <= n; i += 4) h = mix32(h ^ le32(p + i));
  return h;
}

}  // namespace

std::string_view skip_reason(Skip s) { return kSkipNames[static_cast<size_t>(s)]; }

bool link_type_supported(int linktype) {
  switch (linktype) {
    case kLinkNull: case kLinkEthernet: case kLinkRaw: case kLinkRawAlt: case kLinkLoop:
    case kLinkLinuxSll: case kLinkIpv4: case kLinkIpv6: case kLinkLinuxSll2:
      return true;
    default: return false;
  }
}

std::string IpAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes, buf, sizeof buf) == nullptr) return "invalid";
  return buf;
}

Skip decode_frame(int linktype, const uint8_t* frame, uint32_t caplen, Decoded& out) {
  Network n;
  const Skip s = find_network(linktype, frame, caplen, n);
  if (s != Skip::none) return s;
  return n.version == 4 ? decode_ipv4(n.p, n.len, out) : decode_ipv6(n.p, n.len, out);
}

uint32_t outer_flow_hash(int linktype, const uint8_t* frame, uint32_t caplen) {
  Network n;
  if (find_network(linktype, frame, caplen, n) != Skip::none) return 0;
  uint32_t a, b;
  if (n.version == 4) {
    if (n.len < 20) return 0;
    a = hash_bytes(n.p + 12, 4);
    b = hash_bytes(n.p + 16, 4);
  } else {
    if (n.len < 40) return 0;
    a = hash_bytes(n.p + 8, 16);
    b = hash_bytes(n.p + 24, 16);
  }
  return mix32(a + b);  // addition commutes: both directions hash alike
}

}  // namespace sipex
