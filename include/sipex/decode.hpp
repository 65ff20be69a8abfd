// Link, network, tunnel and transport decoding: from a captured frame to the innermost transport
// payload. Pure functions over the caller's bytes; no allocation, no state, thread-safe.
// Stateful steps (IP reassembly, TCP streams, SCTP) live in the worker's reassembly stages: when
// decoding meets an IP fragment it stops and describes it, and decoding resumes on the reassembled
// datagram with decode_transport().
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sipex {

// Link types (pcap LINKTYPE_/DLT_ values as libpcap reports them on Linux).
enum LinkType : uint16_t {
  kLinkNull = 0,        // BSD loopback: 4-byte address family in host byte order of the writer
  kLinkEthernet = 1,
  kLinkRaw = 12,        // DLT_RAW on Linux (LINKTYPE_RAW 101 is mapped to it by libpcap)
  kLinkRawAlt = 101,    // LINKTYPE_RAW, in case a caller passes the file value
  kLinkLoop = 108,      // OpenBSD loopback: address family in network byte order
  kLinkLinuxSll = 113,
  kLinkIpv4 = 228,
  kLinkIpv6 = 229,
  kLinkLinuxSll2 = 276,
};
bool link_type_supported(int linktype);

// Well-known UDP ports of the UDP tunnels decoded (a payload must also look like the tunnel).
inline constexpr uint16_t kVxlanPort = 4789;
inline constexpr uint16_t kVxlanLinuxPort = 8472;
inline constexpr uint16_t kGtpUserPort = 2152;
// Tunnels unwrapped at most this deep; deeper nesting is `malformed`.
inline constexpr unsigned kMaxEncapsulation = 8;

// An IPv4 or IPv6 address. IPv4 addresses are stored in the first 4 bytes, the rest zero, so
// that equality and hashing are byte comparisons.
struct IpAddr {
  uint8_t bytes[16];
  uint8_t family;  // 4 or 6
  bool operator==(const IpAddr& o) const { return family == o.family && std::memcmp(bytes, o.bytes, 16) == 0; }
  std::string to_string() const;  // inet_ntop form: "192.0.2.1", "2001:db8::1"
};

// Why a frame yields no transport payload to count. `none` means decoded. The set is closed:
// every value but none and ip_fragment is a label of sip_exporter_skipped_packets_total.
enum class Skip : uint8_t {
  none,
  ip_fragment,           // not an error: `Decoded::fragment` describes it for the reassembler
  truncated,             // the capture ends inside a header (snap length, corrupt file)
  malformed,             // a header with impossible lengths or version, or nesting too deep
  unsupported_link_type,
  not_ip,                // ARP, LLDP, ... : nothing SIP can travel in
  other_ip_protocol,     // ICMP, OSPF, ESP, ... : an IP protocol that cannot carry readable SIP
  not_sip,               // a UDP payload that is not SIP (set by the worker, not here)
  unsupported_tunnel,    // a tunnel type not decoded (e.g. L2TP, GRE with routing)
};
inline constexpr size_t kSkipCount = 9;
std::string_view skip_reason(Skip s);

// One IP fragment, as decode_frame() found it. Views point into the frame.
struct IpFragment {
  IpAddr src, dst;
  uint32_t id;           // IPv4 identification or IPv6 fragment identification
  uint8_t version;       // 4 or 6
  uint8_t protocol;      // IPv4 protocol / the next header of the IPv6 fragment header
  bool more;             // more fragments follow
  uint32_t offset;       // of `data` within the reassembled payload, bytes
  const uint8_t* data;   // the fragment's share of the payload
  uint32_t data_len;
};

inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpAck = 0x10;

// The transport-level view of one packet: the innermost IP header and its transport. Left
// uninitialised on purpose (it is built per packet): decoding sets the fields its result makes
// valid, and nothing else may be read.
struct Decoded {
  IpAddr src, dst;
  uint16_t sport, dport;
  uint8_t ip_protocol;       // 17 UDP, 6 TCP, 132 SCTP
  uint8_t tcp_flags;         // TCP only
  uint32_t tcp_seq;          // TCP only
  uint8_t encapsulations;    // tunnels unwrapped on the way
  uint16_t ip_id;            // IPv4 identification of the innermost header; 0 for IPv6
  const uint8_t* payload;    // UDP payload, TCP payload, or SCTP chunks (after the common header)
  uint32_t payload_len;
  IpFragment fragment;       // valid when decoding returned Skip::ip_fragment
};

// Decodes link (Ethernet with 802.1Q/QinQ, Linux cooked v1/v2, raw IP, BSD NULL/loop), IP (IPv4
// options, IPv6 extension headers), tunnels (GRE with or without inner Ethernet, PPTP's enhanced
// GRE with PPP, ERSPAN I/II/III, VXLAN, IP-in-IP 4in4/6in4/4in6/6in6, MPLS label stacks, PPPoE
// session, GTP-U) and the transport header (UDP, TCP, SCTP). Returns Skip::none with `out`
// filled, Skip::ip_fragment with out.fragment filled, or the reason. Reads only frame[0, caplen).
Skip decode_frame(int linktype, const uint8_t* frame, uint32_t caplen, Decoded& out);

// Resumes decoding after IP reassembly: `data` is a whole IP payload whose header said
// `protocol` (for IPv6: the next header after the fragment header, so extension headers may
// follow). `encapsulations` is how many tunnels led here. Same results as decode_frame().
Skip decode_transport(uint8_t version, uint8_t protocol, const IpAddr& src, const IpAddr& dst,
                      const uint8_t* data, uint32_t len, unsigned encapsulations, Decoded& out);

// Symmetric hash of the outermost IP address pair: hash(a,b) == hash(b,a), so both directions of
// a conversation, every fragment of a datagram and every flow inside a tunnel go to the same
// worker. Frames without an IP header hash to 0. Reads only frame[0, caplen).
uint32_t outer_flow_hash(int linktype, const uint8_t* frame, uint32_t caplen);

}  // namespace sipex
