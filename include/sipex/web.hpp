// The HTTP endpoint: prometheus-cpp's Exposer serving the collector, optionally protected by
// basic authentication (a --web.config.file in the Prometheus exporter-toolkit format, bcrypt
// hashes checked with libcrypt) and an address allow-list (civetweb's access_control_list).
// TLS is not served in-process: Debian 12's civetweb cannot load OpenSSL 3 (NOTES), so
// deploy/tls/ ships a TLS front for the loopback listener instead.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

namespace sipex {

struct WebConfig {
  std::map<std::string, std::string> users;  // basic_auth_users: name -> bcrypt hash
};

class WebConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads an exporter-toolkit web configuration. Accepts basic_auth_users (bcrypt hashes, "$2a$",
// "$2b$" or "$2y$"); rejects tls_server_config (see above), unknown keys and other hash kinds,
// with "FILE:LINE: message".
WebConfig load_web_config(const std::string& path);

// Turns "192.0.2.0/24,198.51.100.7" into civetweb's access_control_list ("-0.0.0.0/0,+..."):
// every IPv4 client is refused but the listed networks. civetweb 1.15 matches IPv4 only, so an
// IPv6 entry is an error (and a listener restricted this way should be an IPv4 one). Throws
// WebConfigError on a bad entry.
std::string access_control_list(const std::string& allow_from);

// Whether `password` matches the bcrypt `hash` (crypt(3)); constant-time on the result.
bool bcrypt_matches(const std::string& password, const std::string& hash);

// Serves `collectable` at `path` on `address` (node_exporter style ":9573" or "host:port").
// Construction binds the port; throws std::runtime_error with a one-line message on failure.
// Thread-safe afterwards: civetweb's threads call the collector and the authentication check.
class WebEndpoint {
 public:
  WebEndpoint(const std::string& address, const std::string& path, const WebConfig& cfg,
              const std::string& allow_from, std::shared_ptr<prometheus::Collectable> collectable);
  std::vector<int> ports() const { return exposer_->GetListeningPorts(); }

 private:
  bool authenticate(const std::string& user, const std::string& password);

  std::map<std::string, std::string> users_;
  std::string dummy_;  // a hash with the configured users' cost, for unknown names
  std::mutex mu_;
  // The last password that matched each user's hash: bcrypt costs tens of milliseconds a check,
  // and Prometheus sends the same credentials every scrape.
  std::map<std::string, std::string> verified_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace sipex
