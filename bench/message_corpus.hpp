// A deterministic, varied set of SIP messages for benchmarks: requests and responses, long and
// compact header names, 1-10 Via headers, SDP bodies or none, CSeq and Call-ID placed early or
// late. Same seed, same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sipex::bench {

inline std::vector<std::string> message_corpus(size_t n, uint64_t seed = 1) {
  uint64_t s = seed;
  auto next = [&s] {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  static const char* kMethods[] = {"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "UPDATE", "NOTIFY"};
  static const int kCodes[] = {100, 180, 183, 200, 200, 200, 401, 407, 486, 487, 503, 408, 603};
  static const char* kSdp =
      "v=0\r\no=- 3712 3712 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
      "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
      "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const bool compact = next() % 4 == 0;
    const bool late = next() % 2 == 0;
    const bool response = next() % 2 == 0;
    const char* method = kMethods[next() % 9];
    const std::string id = std::to_string(next() % 1000000000) + "@host" + std::to_string(next() % 100) + ".example.net";
    const std::string cseq = std::string(compact ? "CSeq" : "CSeq") + ": " + std::to_string(1 + next() % 100000) + " " + method + "\r\n";
    const std::string callid = std::string(compact ? "i" : "Call-ID") + ": " + id + "\r\n";
    std::string m = response ? "SIP/2.0 " + std::to_string(kCodes[next() % 13]) + " Reason Phrase\r\n"
                             : std::string(method) + " sip:+4930" + std::to_string(next() % 10000000) + "@198.51.100.7:5060 SIP/2.0\r\n";
    if (!late) m += callid + cseq;
    const size_t vias = 1 + next() % 10;
    for (size_t v = 0; v < vias; ++v) {
      m += std::string(compact ? "v" : "Via") + ": SIP/2.0/UDP 10.0." + std::to_string(v) + "." + std::to_string(next() % 250) +
           ":5060;branch=z9hG4bK" + std::to_string(next()) + ";rport\r\n";
    }
    m += std::string(compact ? "f" : "From") + ": \"Caller\" <sip:+4930123@198.51.100.1>;tag=" + std::to_string(next()) + "\r\n";
    m += std::string(compact ? "t" : "To") + ": <sip:+4940123@203.0.113.9>" + (response ? ";tag=" + std::to_string(next()) : "") + "\r\n";
    m += "Max-Forwards: 70\r\nUser-Agent: Carrier-SBC/4.2\r\nAllow: INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE\r\n";
    m += std::string(compact ? "m" : "Contact") + ": <sip:gw@198.51.100.1:5060;transport=udp>\r\n";
    if (late) m += callid + cseq;
    const bool body = next() % 3 == 0;
    if (body) {
      m += std::string(compact ? "c" : "Content-Type") + ": application/sdp\r\n";
      m += std::string(compact ? "l" : "Content-Length") + ": " + std::to_string(std::string(kSdp).size()) + "\r\n\r\n" + kSdp;
    } else {
      m += std::string(compact ? "l" : "Content-Length") + ": 0\r\n\r\n";
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Each message as an Ethernet/IPv4/UDP frame from one of 200 sources spread over 198.51.100-103.0/24 (four
// peers' worth of addresses) to 203.0.113.9, port 5060 both ends, checksums zero.
inline std::vector<std::vector<uint8_t>> udp_frames(const std::vector<std::string>& msgs) {
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

}  // namespace sipex::bench
