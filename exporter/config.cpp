#include "sipex/config.hpp"

#include <arpa/inet.h>

#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace sipex {
namespace {

[[noreturn]] void fail(const std::string& name, const YAML::Mark& mark, const std::string& msg) {
  std::ostringstream o;
  o << name;
  if (mark.line >= 0) o << ":" << (mark.line + 1);
  o << ": " << msg;
  throw ConfigError(o.str());
}

std::vector<Cidr> cidr_list(const YAML::Node& node, const std::string& name, const std::string& what) {
  if (!node.IsSequence()) fail(name, node.Mark(), what + " must be a list of CIDRs");
  std::vector<Cidr> out;
  for (const YAML::Node& item : node) {
    Cidr c;
    if (!item.IsScalar() || !parse_cidr(item.Scalar(), c)) {
      fail(name, item.Mark(), "bad CIDR in " + what + ": '" + (item.IsScalar() ? item.Scalar() : std::string("?")) + "'");
    }
    out.push_back(c);
  }
  return out;
}

uint32_t positive(const YAML::Node& node, const std::string& name, const std::string& key, uint32_t max) {
  uint64_t v = 0;
  try {
    v = node.as<uint64_t>();
  } catch (const YAML::Exception&) {
    fail(name, node.Mark(), key + " must be a positive integer");
  }
  if (v == 0 || v > max) fail(name, node.Mark(), key + " must be between 1 and " + std::to_string(max));
  return static_cast<uint32_t>(v);
}

}  // namespace

bool Cidr::contains(const IpAddr& a) const {
  if (a.family != net.family) return false;
  const unsigned full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.bytes, net.bytes, full) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (a.bytes[full] & mask) == net.bytes[full];
}

bool parse_cidr(std::string_view text, Cidr& out) {
  const size_t slash = text.find('/');
  const std::string addr(text.substr(0, slash));
  out = Cidr{};
  unsigned max_prefix;
  if (inet_pton(AF_INET, addr.c_str(), out.net.bytes) == 1) {
    out.net.family = 4;
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), out.net.bytes) == 1) {
    out.net.family = 6;
    max_prefix = 128;
  } else {
    return false;
  }
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return false;
    prefix = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return false;
      prefix = prefix * 10 + static_cast<unsigned>(c - '0');
    }
    if (prefix > max_prefix) return false;
  }
  out.prefix = static_cast<uint8_t>(prefix);
  // Host bits must be zero.
  for (unsigned bit = prefix; bit < max_prefix; ++bit) {
    if (out.net.bytes[bit / 8] & (0x80 >> (bit % 8))) return false;
  }
  return true;
}

Config parse_config(const std::string& text, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(name, e.mark, e.msg);
  }
  Config cfg;
  if (root.IsNull()) return cfg;
  if (!root.IsMap()) fail(name, root.Mark(), "the top level must be a mapping");
  std::set<std::string> names;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "home_networks") {
      cfg.home_networks = cidr_list(v, name, "home_networks");
    } else if (key == "peers") {
      if (!v.IsMap()) fail(name, v.Mark(), "peers must map a peer name to a list of CIDRs");
      for (const auto& p : v) {
        PeerDef def;
        def.name = p.first.as<std::string>();
        if (def.name.empty() || def.name == "other") {
          fail(name, p.first.Mark(), "peer name '" + def.name + "' is reserved or empty");
        }
        if (!names.insert(def.name).second) fail(name, p.first.Mark(), "duplicate peer name '" + def.name + "'");
        def.networks = cidr_list(p.second, name, "peer '" + def.name + "'");
        cfg.peers.push_back(std::move(def));
      }
    } else if (key == "limits") {
      if (!v.IsMap()) fail(name, v.Mark(), "limits must be a mapping");
      for (const auto& l : v) {
        const std::string lk = l.first.as<std::string>();
        const YAML::Node& lv = l.second;
        if (lk == "max_peers") {
          cfg.max_peers = positive(lv, name, lk, 60000);
        } else if (lk == "max_series") {
          cfg.max_series = positive(lv, name, lk, 10000000);
        } else if (lk == "duplicate_window_ms") {
          uint64_t ms = 0;
          try {
            ms = lv.as<uint64_t>();
          } catch (const YAML::Exception&) {
            fail(name, lv.Mark(), lk + " must be a whole number of milliseconds");
          }
          if (ms > 1000) fail(name, lv.Mark(), lk + " must be at most 1000");
          cfg.duplicate_window_ns = static_cast<int64_t>(ms) * 1'000'000;
        } else if (lk == "max_histograms") {
          cfg.max_histograms = positive(lv, name, lk, 10000000);
        } else if (lk == "transactions") {
          cfg.transactions.max_transactions = positive(lv, name, lk, 64u << 20);
        } else if (lk == "transaction_timeout_seconds") {
          cfg.transactions.timer_b_ns = int64_t{positive(lv, name, lk, 3600)} * 1'000'000'000;
        } else if (lk == "invite_proceeding_timeout_seconds") {
          cfg.transactions.timer_c_ns = int64_t{positive(lv, name, lk, 86400)} * 1'000'000'000;
        } else if (lk == "dialogs") {
          cfg.transactions.max_dialogs = positive(lv, name, lk, 64u << 20);
        } else if (lk == "dialog_timeout_seconds") {
          cfg.transactions.dialog_timeout_ns = int64_t{positive(lv, name, lk, 7 * 86400)} * 1'000'000'000;
        } else if (lk == "tcp_streams") {
          cfg.tcp.max_streams = positive(lv, name, lk, 16u << 20);
          if (cfg.tcp.max_streams < 2) fail(name, lv.Mark(), "tcp_streams must be at least 2");
        } else if (lk == "tcp_buffer_bytes") {
          cfg.tcp.max_bytes = positive(lv, name, lk, 0x7fffffffu);
        } else if (lk == "tcp_message_bytes") {
          cfg.tcp.max_message_bytes = positive(lv, name, lk, 1u << 20);
        } else if (lk == "tcp_idle_timeout_seconds") {
          cfg.tcp.idle_timeout_ns = int64_t{positive(lv, name, lk, 86400)} * 1'000'000'000;
        } else if (lk == "fragment_datagrams") {
          cfg.fragments.max_datagrams = positive(lv, name, lk, 16u << 20);
        } else if (lk == "fragment_buffer_bytes") {
          cfg.fragments.max_bytes = positive(lv, name, lk, 0x7fffffffu);
        } else if (lk == "fragment_timeout_seconds") {
          cfg.fragments.timeout_ns = int64_t{positive(lv, name, lk, 3600)} * 1'000'000'000;
        } else if (lk == "sctp_messages") {
          cfg.sctp.max_messages = positive(lv, name, lk, 1u << 16);
        } else {
          fail(name, l.first.Mark(), "unknown key 'limits." + lk + "'");
        }
      }
    } else {
      fail(name, kv.first.Mark(), "unknown key '" + key + "'");
    }
  }
  if (cfg.peers.size() > cfg.max_peers) {
    fail(name, YAML::Mark::null_mark(), "the peer map names more peers than limits.max_peers allows");
  }
  return cfg;
}

Config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace sipex
