// Builders of link/IP/UDP frames for tests. Checksums are left zero (nothing here verifies them).
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sipex::test {

using Bytes = std::vector<uint8_t>;

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline void append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }
inline void append(Bytes& b, const std::string& x) { b.insert(b.end(), x.begin(), x.end()); }

inline Bytes udp(uint16_t sport, uint16_t dport, const std::string& payload) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, static_cast<uint16_t>(8 + payload.size()));
  put16(b, 0);
  append(b, payload);
  return b;
}

inline Bytes ipv4(const char* src, const char* dst, uint8_t proto, const Bytes& l4, uint16_t frag = 0,
                  unsigned option_words = 0) {
  Bytes b;
  const unsigned ihl = 5 + option_words;
  b.push_back(static_cast<uint8_t>(0x40 | ihl));
  b.push_back(0);
  put16(b, static_cast<uint16_t>(ihl * 4 + l4.size()));
  put16(b, 0x1234);
  put16(b, frag);
  b.push_back(64);
  b.push_back(proto);
  put16(b, 0);
  uint8_t a[4];
  inet_pton(AF_INET, src, a);
  b.insert(b.end(), a, a + 4);
  inet_pton(AF_INET, dst, a);
  b.insert(b.end(), a, a + 4);
  for (unsigned i = 0; i < option_words * 4; ++i) b.push_back(1);  // NOP options
  append(b, l4);
  return b;
}

// `ext` is a list of (header type, body length in bytes incl. the 2-byte next/len prefix).
inline Bytes ipv6(const char* src, const char* dst, uint8_t proto, const Bytes& l4,
                  const std::vector<std::pair<uint8_t, unsigned>>& ext = {}) {
  Bytes exts;
  uint8_t first = ext.empty() ? proto : ext[0].first;
  for (size_t i = 0; i < ext.size(); ++i) {
    const uint8_t next = i + 1 < ext.size() ? ext[i + 1].first : proto;
    const unsigned len = ext[i].second;
    exts.push_back(next);
    if (ext[i].first == 44) {  // fragment header: 8 bytes, offset 0, M clear (atomic)
      exts.push_back(0);
      for (int k = 0; k < 6; ++k) exts.push_back(0);
    } else {
      exts.push_back(static_cast<uint8_t>(len / 8 - 1));
      for (unsigned k = 2; k < len; ++k) exts.push_back(k == 2 ? 1 : 0);
    }
  }
  Bytes b = {0x60, 0, 0, 0};
  put16(b, static_cast<uint16_t>(exts.size() + l4.size()));
  b.push_back(first);
  b.push_back(64);
  uint8_t a[16];
  inet_pton(AF_INET6, src, a);
  b.insert(b.end(), a, a + 16);
  inet_pton(AF_INET6, dst, a);
  b.insert(b.end(), a, a + 16);
  append(b, exts);
  append(b, l4);
  return b;
}

inline Bytes ethernet(uint16_t type, const Bytes& payload, const std::vector<uint16_t>& tags = {}) {
  Bytes b = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  for (uint16_t tpid : tags) {
    put16(b, tpid);
    put16(b, 100);
  }
  put16(b, type);
  append(b, payload);
  while (b.size() < 60) b.push_back(0);  // minimum frame: padding after short packets
  return b;
}

inline Bytes sll(uint16_t proto, const Bytes& payload) {
  Bytes b;
  put16(b, 0);       // packet type
  put16(b, 1);       // ARPHRD_ETHER
  put16(b, 6);       // address length
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(i));
  put16(b, proto);
  append(b, payload);
  return b;
}

inline Bytes sll2(uint16_t proto, const Bytes& payload) {
  Bytes b;
  put16(b, proto);
  put16(b, 0);                       // reserved
  b.insert(b.end(), {0, 0, 0, 1});   // interface index
  put16(b, 1);                       // ARPHRD_ETHER
  b.push_back(0);                    // packet type
  b.push_back(6);                    // address length
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(i));
  append(b, payload);
  return b;
}

inline Bytes null_link(uint32_t family, bool big_endian, const Bytes& payload) {
  Bytes b;
  for (int i = 0; i < 4; ++i) {
    const int shift = big_endian ? 24 - 8 * i : 8 * i;
    b.push_back(static_cast<uint8_t>(family >> shift));
  }
  append(b, payload);
  return b;
}

}  // namespace sipex::test
