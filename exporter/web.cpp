#include "sipex/web.hpp"

#include <crypt.h>

#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "sipex/config.hpp"

namespace sipex {
namespace {

[[noreturn]] void fail(const std::string& file, const YAML::Mark& mark, const std::string& msg) {
  std::ostringstream o;
  o << file;
  if (mark.line >= 0) o << ":" << (mark.line + 1);
  o << ": " << msg;
  throw WebConfigError(o.str());
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

WebConfig load_web_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw WebConfigError(path + ": cannot open: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(ss.str());
  } catch (const YAML::Exception& e) {
    fail(path, e.mark, e.msg);
  }
  WebConfig cfg;
  if (root.IsNull()) return cfg;
  if (!root.IsMap()) fail(path, root.Mark(), "the top level must be a mapping");
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (key == "basic_auth_users") {
      if (!kv.second.IsMap()) fail(path, kv.second.Mark(), "basic_auth_users must map user names to bcrypt hashes");
      for (const auto& u : kv.second) {
        const std::string hash = u.second.IsScalar() ? u.second.Scalar() : "";
        if (!(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) || hash.size() != 60) {
          fail(path, u.second.Mark(), "the hash of user '" + u.first.as<std::string>() + "' is not a bcrypt hash");
        }
        cfg.users[u.first.as<std::string>()] = hash;
      }
    } else if (key == "tls_server_config") {
      fail(path, kv.first.Mark(), "tls_server_config is not supported: serve TLS with the front in deploy/tls/");
    } else {
      fail(path, kv.first.Mark(), "unknown key '" + key + "'");
    }
  }
  return cfg;
}

std::string access_control_list(const std::string& allow_from) {
  std::string acl = "-0.0.0.0/0";
  for (size_t start = 0;;) {
    const size_t comma = allow_from.find(',', start);
    const std::string item = allow_from.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    Cidr c;
    if (item.empty() || !parse_cidr(item, c)) throw WebConfigError("--web.allow-from: '" + item + "' is not a network");
    // civetweb 1.15's access_control_list understands IPv4 networks only.
    if (c.net.family == 6) throw WebConfigError("--web.allow-from: '" + item + "': only IPv4 networks are supported");
    acl += ",+" + c.net.to_string() + "/" + std::to_string(c.prefix);
    if (comma == std::string::npos) return acl;
    start = comma + 1;
  }
}

bool bcrypt_matches(const std::string& password, const std::string& hash) {
  crypt_data data{};
  const char* out = crypt_r(password.c_str(), hash.c_str(), &data);
  return out != nullptr && out[0] != '*' && constant_time_equal(out, hash);
}

WebEndpoint::WebEndpoint(const std::string& address, const std::string& path, const WebConfig& cfg,
                         const std::string& allow_from, std::shared_ptr<prometheus::Collectable> collectable)
    : users_(cfg.users) {
  // node_exporter style ":9573" means every address; civetweb wants a bare port for that.
  const std::string port = (!address.empty() && address[0] == ':') ? address.substr(1) : address;
  if (port.find('[') != std::string::npos) {
    throw std::runtime_error("--web.listen-address " + address + ": Debian's civetweb has no IPv6 support; listen on IPv4");
  }
  // A name that is not configured is checked against a hash of the same cost as the configured
  // ones, so a 401 takes as long either way and does not tell which user names exist.
  for (const auto& [name, hash] : users_) {  // "$2b$NN$": the highest cost NN configured
    if (dummy_.empty() || hash.compare(4, 2, dummy_, 4, 2) > 0) {
      dummy_ = hash.substr(0, 7) + "0000000000000000000000000000000000000000000000000000u";
    }
  }
  std::vector<std::string> options = {"listening_ports", port, "num_threads", "2"};
  if (!allow_from.empty()) {
    options.push_back("access_control_list");
    options.push_back(access_control_list(allow_from));
  }
  exposer_ = std::make_unique<prometheus::Exposer>(options);
  exposer_->RegisterCollectable(collectable, path);
  if (!users_.empty()) {
    exposer_->RegisterAuth([this](const std::string& u, const std::string& p) { return authenticate(u, p); },
                           "sip_exporter", path);
  }
}

bool WebEndpoint::authenticate(const std::string& user, const std::string& password) {
  const auto it = users_.find(user);
  if (it == users_.end()) {
    bcrypt_matches(password, dummy_);
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto v = verified_.find(user);
    if (v != verified_.end() && constant_time_equal(v->second, password)) return true;
  }
  if (!bcrypt_matches(password, it->second)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  verified_[user] = password;
  return true;
}

}  // namespace sipex
