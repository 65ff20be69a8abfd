// The YAML configuration file (DESIGN section 6): home networks, the peer map and limits.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sipex/decode.hpp"
#include "sipex/ip_reassembly.hpp"
#include "sipex/sctp.hpp"
#include "sipex/tcp_reassembly.hpp"

namespace sipex {

struct Cidr {
  IpAddr net{};     // host bits cleared
  uint8_t prefix = 0;
  bool contains(const IpAddr& a) const;
};
// Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a /32 or /128). Host bits set below
// the prefix are an error (a typo more often than intent). Returns false on any error.
bool parse_cidr(std::string_view text, Cidr& out);

struct PeerDef {
  std::string name;
  std::vector<Cidr> networks;
};

// Bounds and timers of the transaction tracker (transactions.hpp), per worker. Kept here because
// the tracker's header depends on the aggregation stage, which depends on this one.
struct TransactionLimits {
  uint32_t max_transactions = 262144;          // transactions remembered at once
  int64_t timer_b_ns = 32'000'000'000;         // 64*T1: no response at all (Timer B), or no final for a non-INVITE (Timer F)
  int64_t timer_c_ns = 180'000'000'000;        // an INVITE that had a provisional response but no final (Timer C)
  int64_t linger_ns = 32'000'000'000;          // a completed transaction is kept this long to recognise retransmissions
  uint32_t max_dialogs = 65536;                // answered calls awaiting their BYE
  int64_t dialog_timeout_ns = 14'400'000'000'000;  // an answered call without BYE is forgotten after 4 h
};

struct Config {
  std::vector<Cidr> home_networks;
  std::vector<PeerDef> peers;      // in file order; the longest matching prefix wins
  uint32_t max_peers = 1000;       // distinct peer label values, named ones included
  uint32_t max_series = 100000;    // counter series (every sip_* counter family) per worker
  uint32_t max_histograms = 20000; // histogram series (latency, call duration) per worker
  TransactionLimits transactions;  // per worker
  int64_t duplicate_window_ns = 0; // mirror-duplicate suppression window; 0 = off
  TcpLimits tcp;                   // per worker
  IpReassemblyLimits fragments;    // per worker
  SctpLimits sctp;                 // per worker
};

// Errors carry "FILE:LINE: message" so a start-up failure names the offending line.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads and validates the file. Throws ConfigError on unreadable files, YAML syntax errors,
// unknown keys, bad CIDRs, duplicate or reserved peer names, and limits out of range.
Config load_config(const std::string& path);
// Same, from text; `name` stands in for the file name in messages.
Config parse_config(const std::string& text, const std::string& name);

}  // namespace sipex
