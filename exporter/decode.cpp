#include "sipex/decode.hpp"
#include "sipex/hash.hpp"

#include <arpa/inet.h>

namespace sipex {
namespace {

constexpr std::string_view kSkipNames[kSkipCount] = {
    "none", "ip_fragment", "truncated", "malformed", "unsupported_link_type", "not_ip", "other_ip_protocol",
    "not_sip", "unsupported_tunnel",
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

// A decoding position: the bytes left and how many tunnels led here. Every step below takes the
// bytes of one layer and calls the step for the next one.
struct Cursor {
  Decoded& out;
  unsigned depth;
};

Skip ethernet(const uint8_t* p, uint32_t len, Cursor c);
Skip ip(const uint8_t* p, uint32_t len, Cursor c);

Skip tunnel_into_ethernet(const uint8_t* p, uint32_t len, Cursor c) {
  if (c.depth + 1 > kMaxEncapsulation) return Skip::malformed;
  ++c.out.encapsulations;
  return ethernet(p, len, {c.out, c.depth + 1});
}
Skip tunnel_into_ip(const uint8_t* p, uint32_t len, Cursor c) {
  if (c.depth + 1 > kMaxEncapsulation) return Skip::malformed;
  ++c.out.encapsulations;
  return ip(p, len, {c.out, c.depth + 1});
}

// PPP (after PPPoE, or inside enhanced GRE): optional address/control 0xFF03, then a 1- or
// 2-byte protocol (RFC 1661 protocol-field compression: an odd first byte is the whole field).
Skip ppp(const uint8_t* p, uint32_t len, Cursor c) {
  if (len >= 2 && p[0] == 0xFF && p[1] == 0x03) {
    p += 2;
    len -= 2;
  }
  if (len < 1) return Skip::truncated;
  uint16_t proto;
  if (p[0] & 1) {
    proto = p[0];
    p += 1;
    len -= 1;
  } else {
    if (len < 2) return Skip::truncated;
    proto = be16(p);
    p += 2;
    len -= 2;
  }
  if (proto == 0x0021 || proto == 0x0057) return ip(p, len, c);  // IPv4, IPv6
  return Skip::not_ip;                                            // LCP, IPCP, ...
}

// MPLS: labels until the bottom-of-stack bit, then IPv4/IPv6 by version nibble, or an Ethernet
// pseudowire behind a zero control word (RFC 4385).
Skip mpls(const uint8_t* p, uint32_t len, Cursor c) {
  for (int labels = 0;; ++labels) {
    if (labels >= 16) return Skip::malformed;
    if (len < 4) return Skip::truncated;
    const bool bottom = p[2] & 0x01;
    p += 4;
    len -= 4;
    if (bottom) break;
  }
  if (len < 1) return Skip::truncated;
  switch (p[0] >> 4) {
    case 4: case 6: return ip(p, len, c);
    case 0:
      if (len < 4) return Skip::truncated;
      return tunnel_into_ethernet(p + 4, len - 4, c);
    default: return Skip::not_ip;
  }
}

Skip by_ethertype(uint16_t type, const uint8_t* p, uint32_t len, Cursor c) {
  switch (type) {
    case 0x0800:
    case 0x86DD: return ip(p, len, c);
    case 0x8847:
    case 0x8848: return mpls(p, len, c);
    case 0x8864:  // PPPoE session: version/type, code, session id, length, then PPP
      if (len < 6) return Skip::truncated;
      return ppp(p + 6, len - 6 < be16(p + 4) ? len - 6 : be16(p + 4), c);
    default: return Skip::not_ip;
  }
}

// Ethernet from the destination MAC, through any number of 802.1Q / 802.1ad / QinQ tags.
Skip ethernet(const uint8_t* p, uint32_t len, Cursor c) {
  if (len < 14) return Skip::truncated;
  p += 12;
  len -= 12;
  for (int tags = 0;; ++tags) {
    if (tags >= 8) return Skip::malformed;
    if (len < 2) return Skip::truncated;
    const uint16_t type = be16(p);
    if (type == 0x8100 || type == 0x88A8 || type == 0x9100) {
      if (len < 6) return Skip::truncated;
      p += 4;
      len -= 4;
      continue;
    }
    if (type < 0x0600) return Skip::not_ip;  // 802.3 length field: LLC, STP, ...
    return by_ethertype(type, p + 2, len - 2, c);
  }
}

// GRE (RFC 2784/2890) and PPTP's enhanced GRE (RFC 2637), including ERSPAN types I-III.
Skip gre(const uint8_t* p, uint32_t len, Cursor c) {
  if (len < 4) return Skip::truncated;
  const uint16_t flags = be16(p);
  const uint16_t proto = be16(p + 2);
  const unsigned version = flags & 0x7;
  const bool csum = flags & 0x8000, routing = flags & 0x4000, key = flags & 0x2000, seq = flags & 0x1000;
  if (routing || version > 1) return Skip::unsupported_tunnel;
  uint32_t hl = 4;
  if (version == 0) {
    hl += (csum ? 4 : 0) + (key ? 4 : 0) + (seq ? 4 : 0);
  } else {  // enhanced GRE: key (payload length + call id) mandatory, then sequence, then ack
    hl += 4 + (seq ? 4 : 0) + ((flags & 0x0080) ? 4 : 0);
  }
  if (len < hl) return Skip::truncated;
  p += hl;
  len -= hl;
  switch (proto) {
    case 0x0800:
    case 0x86DD: return tunnel_into_ip(p, len, c);
    case 0x6558: return tunnel_into_ethernet(p, len, c);  // transparent Ethernet bridging
    case 0x880B: {                                         // PPP
      if (c.depth + 1 > kMaxEncapsulation) return Skip::malformed;
      ++c.out.encapsulations;
      return ppp(p, len, {c.out, c.depth + 1});
    }
    case 0x8847:
    case 0x8848: {
      if (c.depth + 1 > kMaxEncapsulation) return Skip::malformed;
      ++c.out.encapsulations;
      return mpls(p, len, {c.out, c.depth + 1});
    }
    case 0x88BE:  // ERSPAN type II (8-byte header) or type I (no header, no GRE sequence)
      if (!seq) return tunnel_into_ethernet(p, len, c);
      if (len < 8) return Skip::truncated;
      return tunnel_into_ethernet(p + 8, len - 8, c);
    case 0x22EB: {  // ERSPAN type III: 12-byte header, 8 more when the O (optional) bit is set
      if (len < 12) return Skip::truncated;
      const uint32_t h = (p[11] & 0x01) ? 20 : 12;
      if (len < h) return Skip::truncated;
      return tunnel_into_ethernet(p + h, len - h, c);
    }
    default: return Skip::unsupported_tunnel;
  }
}

// UDP, unwrapping VXLAN (RFC 7348) and GTP-U (3GPP TS 29.281) when the payload looks like them.
Skip udp(const uint8_t* p, uint32_t len, Cursor c) {
  if (len < 8) return Skip::truncated;
  uint32_t ulen = be16(p + 4);
  if (ulen == 0) ulen = len;  // jumbogram or offloaded length: trust the capture
  if (ulen < 8) return Skip::malformed;
  if (ulen > len) return Skip::truncated;
  const uint16_t sport = be16(p), dport = be16(p + 2);
  const uint8_t* pl = p + 8;
  const uint32_t pn = ulen - 8;
  if ((dport == kVxlanPort || dport == kVxlanLinuxPort) && pn >= 8 + 14 && (pl[0] & 0x08) && (pl[0] & 0xF7) == 0) {
    return tunnel_into_ethernet(pl + 8, pn - 8, c);
  }
  if ((dport == kGtpUserPort || sport == kGtpUserPort) && pn >= 8 && (pl[0] >> 5) == 1 && (pl[0] & 0x10) &&
      pl[1] == 0xFF) {
    uint32_t h = 8;
    if (pl[0] & 0x07) {  // E, S or PN: the optional 4-byte field, then extension headers if E
      h = 12;
      if (pn < h) return Skip::truncated;
      uint8_t next = (pl[0] & 0x04) ? pl[11] : 0;
      while (next != 0) {
        if (pn < h + 1) return Skip::truncated;
        const uint32_t ext = 4u * pl[h];
        if (ext == 0 || pn < h + ext) return Skip::malformed;
        next = pl[h + ext - 1];
        h += ext;
      }
    }
    if (pn <= h) return Skip::truncated;
    return tunnel_into_ip(pl + h, pn - h, c);
  }
  c.out.sport = sport;
  c.out.dport = dport;
  c.out.payload = pl;
  c.out.payload_len = pn;
  return Skip::none;
}

Skip tcp(const uint8_t* p, uint32_t len, Cursor c) {
  if (len < 20) return Skip::truncated;
  const uint32_t off = (p[12] >> 4) * 4u;
  if (off < 20) return Skip::malformed;
  if (off > len) return Skip::truncated;
  c.out.sport = be16(p);
  c.out.dport = be16(p + 2);
  c.out.tcp_seq = be32(p + 4);
  c.out.tcp_flags = p[13];
  c.out.payload = p + off;
  c.out.payload_len = len - off;
  return Skip::none;
}

Skip sctp(const uint8_t* p, uint32_t len, Cursor c) {
  if (len < 12) return Skip::truncated;
  c.out.sport = be16(p);
  c.out.dport = be16(p + 2);
  c.out.payload = p + 12;
  c.out.payload_len = len - 12;
  return Skip::none;
}

// The transport (or tunnel) inside an IP packet whose addresses are already in c.out.
Skip transport(uint8_t version, uint8_t proto, const uint8_t* p, uint32_t len, Cursor c) {
  if (version == 6) {
    // Extension headers that may follow the fragment header (or start a reassembled payload).
    for (int i = 0; i < 16; ++i) {
      switch (proto) {
        case 0: case 43: case 60: case 135: case 139: case 140: {
          if (len < 2) return Skip::truncated;
          const uint32_t hl = (static_cast<uint32_t>(p[1]) + 1) * 8;
          if (len < hl) return Skip::truncated;
          proto = p[0];
          p += hl;
          len -= hl;
          continue;
        }
        case 51: {
          if (len < 2) return Skip::truncated;
          const uint32_t hl = (static_cast<uint32_t>(p[1]) + 2) * 4;
          if (len < hl) return Skip::truncated;
          proto = p[0];
          p += hl;
          len -= hl;
          continue;
        }
        default: break;
      }
      break;
    }
  }
  c.out.ip_protocol = proto;
  switch (proto) {
    case 17: return udp(p, len, c);
    case 6: return tcp(p, len, c);
    case 132: return sctp(p, len, c);
    case 4:
    case 41: return tunnel_into_ip(p, len, c);  // IPv4 / IPv6 inside IP
    case 47: {
      if (c.depth + 1 > kMaxEncapsulation) return Skip::malformed;
      return gre(p, len, c);
    }
    case 115: return Skip::unsupported_tunnel;  // L2TPv3
    default: return Skip::other_ip_protocol;
  }
}

Skip ipv4(const uint8_t* p, uint32_t len, Cursor c) {
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
  Decoded& d = c.out;
  std::memset(&d.src, 0, sizeof d.src);
  std::memset(&d.dst, 0, sizeof d.dst);
  std::memcpy(d.src.bytes, p + 12, 4);
  std::memcpy(d.dst.bytes, p + 16, 4);
  d.src.family = d.dst.family = 4;
  d.ip_id = be16(p + 4);
  const uint16_t frag = be16(p + 6);
  if ((frag & 0x3FFF) != 0) {  // MF set or offset != 0
    d.fragment = {d.src, d.dst, be16(p + 4), 4, p[9], (frag & 0x2000) != 0, (frag & 0x1FFFu) * 8,
                  p + ihl, total - ihl};
    return Skip::ip_fragment;
  }
  return transport(4, p[9], p + ihl, total - ihl, c);
}

Skip ipv6(const uint8_t* p, uint32_t len, Cursor c) {
  if (len < 40) return Skip::truncated;
  if ((p[0] >> 4) != 6) return Skip::malformed;
  uint32_t plen = be16(p + 4);
  if (plen == 0) plen = len - 40;  // jumbogram (hop-by-hop option) or offload
  if (40 + plen > len) return Skip::truncated;
  Decoded& d = c.out;
  std::memcpy(d.src.bytes, p + 8, 16);
  std::memcpy(d.dst.bytes, p + 24, 16);
  d.src.family = d.dst.family = 6;
  d.ip_id = 0;
  const uint32_t end = 40 + plen;
  uint8_t next = p[6];
  uint32_t off = 40;
  // The unfragmentable part: extension headers up to a fragment header.
  for (int i = 0; i < 16; ++i) {
    switch (next) {
      case 0: case 43: case 60: case 135: case 139: case 140: {
        if (off + 2 > end) return Skip::truncated;
        const uint32_t hl = (static_cast<uint32_t>(p[off + 1]) + 1) * 8;
        next = p[off];
        off += hl;
        if (off > end) return Skip::truncated;
        continue;
      }
      case 51: {
        if (off + 2 > end) return Skip::truncated;
        const uint32_t hl = (static_cast<uint32_t>(p[off + 1]) + 2) * 4;
        next = p[off];
        off += hl;
        if (off > end) return Skip::truncated;
        continue;
      }
      case 44: {
        if (off + 8 > end) return Skip::truncated;
        const uint16_t fo = be16(p + off + 2);
        const uint8_t inner = p[off];
        if ((fo & 0xFFF9) == 0) {  // an atomic fragment (offset 0, M clear) is whole (RFC 6946)
          next = inner;
          off += 8;
          continue;
        }
        d.fragment = {d.src, d.dst, be32(p + off + 4), 6, inner, (fo & 1) != 0, static_cast<uint32_t>(fo & 0xFFF8),
                      p + off + 8, end - off - 8};
        return Skip::ip_fragment;
      }
      case 59: return Skip::other_ip_protocol;  // no next header
      default: break;
    }
    break;
  }
  return transport(6, next, p + off, end - off, c);
}

Skip ip(const uint8_t* p, uint32_t len, Cursor c) {
  if (len < 1) return Skip::truncated;
  switch (p[0] >> 4) {
    case 4: return ipv4(p, len, c);
    case 6: return ipv6(p, len, c);
    default: return Skip::not_ip;
  }
}

// Where the outermost network header starts, for the flow hash; nullptr if there is none.
const uint8_t* outer_network(int linktype, const uint8_t* f, uint32_t caplen, uint32_t* len) {
  const uint8_t* p = f;
  uint32_t n = caplen;
  uint16_t type = 0;
  switch (linktype) {
    case kLinkEthernet:
      if (n < 14) return nullptr;
      p += 12;
      n -= 12;
      break;
    case kLinkLinuxSll:
      if (n < 16) return nullptr;
      p += 14;
      n -= 14;
      break;
    case kLinkLinuxSll2:
      if (n < 20) return nullptr;
      type = be16(f);
      p += 20;
      n -= 20;
      if (type == 0x8100 || type == 0x88A8) {  // the payload starts with the tag's TCI
        if (n < 4) return nullptr;
        p += 2;
        n -= 2;
        type = 0;
        break;
      }
      *len = n;
      return (type == 0x0800 || type == 0x86DD) ? p : nullptr;
    case kLinkNull:
    case kLinkLoop:
      if (n < 4) return nullptr;
      *len = n - 4;
      return f + 4;
    case kLinkRaw: case kLinkRawAlt: case kLinkIpv4: case kLinkIpv6:
      *len = n;
      return f;
    default: return nullptr;
  }
  for (int tags = 0; tags < 8; ++tags) {  // p is at an ethertype
    if (n < 2) return nullptr;
    type = be16(p);
    if (type == 0x8100 || type == 0x88A8 || type == 0x9100) {
      p += 4;
      n = n >= 4 ? n - 4 : 0;
      continue;
    }
    *len = n - 2;
    return (type == 0x0800 || type == 0x86DD) ? p + 2 : nullptr;
  }
  return nullptr;
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

Skip decode_frame(int linktype, const uint8_t* f, uint32_t caplen, Decoded& out) {
  out.encapsulations = 0;
  const Cursor c{out, 0};
  switch (linktype) {
    case kLinkEthernet: return ethernet(f, caplen, c);
    case kLinkLinuxSll:
      if (caplen < 16) return Skip::truncated;
      // The protocol field sits where an ethertype would; reuse the tag walk from there.
      return ethernet(f + 2, caplen - 2, c);
    case kLinkLinuxSll2: {
      if (caplen < 20) return Skip::truncated;
      const uint16_t type = be16(f);
      if (type == 0x8100 || type == 0x88A8) {  // the payload starts with the tag's TCI
        if (caplen < 24) return Skip::truncated;
        return by_ethertype(be16(f + 22), f + 24, caplen - 24, c);
      }
      return by_ethertype(type, f + 20, caplen - 20, c);
    }
    case kLinkNull:
    case kLinkLoop: {
      if (caplen < 4) return Skip::truncated;
      // DLT_NULL's family is in the writer's byte order; accept either.
      uint32_t fam = linktype == kLinkLoop ? be32(f) : le32(f);
      if (fam > 0xFFFF) fam = be32(f);
      if (fam == 2 || fam == 24 || fam == 28 || fam == 30 || fam == 10) return ip(f + 4, caplen - 4, c);
      return Skip::not_ip;
    }
    case kLinkRaw: case kLinkRawAlt: case kLinkIpv4: case kLinkIpv6:
      return ip(f, caplen, c);
    default:
      return Skip::unsupported_link_type;
  }
}

Skip decode_transport(uint8_t version, uint8_t protocol, const IpAddr& src, const IpAddr& dst, const uint8_t* data,
                      uint32_t len, unsigned encapsulations, Decoded& out) {
  out.src = src;
  out.dst = dst;
  out.ip_id = 0;
  out.encapsulations = static_cast<uint8_t>(encapsulations);
  return transport(version, protocol, data, len, {out, encapsulations});
}

uint32_t outer_flow_hash(int linktype, const uint8_t* frame, uint32_t caplen) {
  uint32_t n = 0;
  const uint8_t* p = outer_network(linktype, frame, caplen, &n);
  if (p == nullptr || n < 1) return 0;
  uint32_t a, b;
  if ((p[0] >> 4) == 4) {
    if (n < 20) return 0;
    a = hash_bytes(p + 12, 4);
    b = hash_bytes(p + 16, 4);
  } else if ((p[0] >> 4) == 6) {
    if (n < 40) return 0;
    a = hash_bytes(p + 8, 16);
    b = hash_bytes(p + 24, 16);
  } else {
    return 0;
  }
  return mix32(a + b);  // addition commutes: both directions hash alike
}

}  // namespace sipex
