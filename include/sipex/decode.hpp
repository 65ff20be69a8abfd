// Link, network and transport decoding: from a captured frame to a transport payload.
// Pure functions over the caller's bytes; no allocation, no state, thread-safe.
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

// An IPv4 or IPv6 address. IPv4 addresses are stored in the first 4 bytes, the rest zero, so
// that equality and hashing are byte comparisons.
struct IpAddr {
  uint8_t bytes[16];
  uint8_t family;  // 4 or 6
  bool operator==(const IpAddr& o) const { return family == o.family && std::memcmp(bytes, o.bytes, 16) == 0; }
  std::string to_string() const;  // inet_ntop form: "192.0.2.1", "2001:db8::1"
};

// Why a frame yields no transport payload. `none` means decoded. The set is closed: every value
// is a label of sip_exporter_skipped_packets_total (decode_skip_reason()).
enum class Skip : uint8_t {
  none,
  truncated,             // the capture ends inside a header (snap length, corrupt file)
  malformed,             // a header with impossible lengths or version
  unsupported_link_type,
  not_ip,                // ARP, LLDP, ... : nothing SIP can travel in
  other_ip_protocol,     // ICMP, OSPF, ... : an IP protocol that cannot carry SIP
  not_sip,               // a transport payload that is not SIP (set by the worker, not here)
  // Carrying SIP possibly, but not decoded yet (TCP reassembly, IP reassembly and tunnels arrive
  // in a later version; until then such packets are counted here, never silently lost).
  tcp_unsupported,
  sctp_unsupported,
  ip_fragment_unsupported,
  tunnel_unsupported,
};
inline constexpr size_t kSkipCount = 11;
std::string_view skip_reason(Skip s);

// The transport-level view of one packet. Views point into the frame.
struct Decoded {
  IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  uint8_t ip_protocol = 0;   // 17 = UDP, 6 = TCP, 132 = SCTP
  const uint8_t* payload = nullptr;
  uint32_t payload_len = 0;
};

// Decodes link, IP (IPv4 options, IPv6 extension headers) and UDP. Returns Skip::none with `out`
// filled on success; otherwise the reason and `out` unspecified. Reads only frame[0, caplen).
Skip decode_frame(int linktype, const uint8_t* frame, uint32_t caplen, Decoded& out);

// Symmetric hash of the outermost IP address pair: hash(a,b) == hash(b,a), so both directions of
// a conversation, and every fragment of a datagram, go to the same worker. Frames without an IP
// header hash to 0. Reads only frame[0, caplen).
uint32_t outer_flow_hash(int linktype, const uint8_t* frame, uint32_t caplen);

}  // namespace sipex
