// The HTTP endpoint: civetweb serving render_text() of the collector, gzip'd when the client
// accepts it, optionally protected by basic authentication (a --web.config.file in the
// Prometheus exporter-toolkit format, bcrypt hashes checked with libcrypt) and an address
// allow-list (civetweb's access_control_list). civetweb is used directly, not through
// prometheus-cpp's Exposer, because the Exposer always serialises with its own TextSerializer.
// TLS is not served in-process: Debian 12's civetweb cannot load OpenSSL 3 (NOTES), so
// deploy/tls/ ships a TLS front for the loopback listener instead.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sipex/metrics.hpp"

struct mg_context;
struct mg_connection;

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

// Whether an Accept-Encoding header value accepts gzip: a "gzip" (or "x-gzip") coding whose q is
// not 0. Null (no header) does not.
bool accepts_gzip(const char* accept_encoding);

// `text` as one gzip member (RFC 1952), compressed at zlib's fastest level. Throws
// std::runtime_error if zlib fails.
std::string gzip_compress(std::string_view text);

// The user name and password of an "Authorization: Basic ..." header value; false if it is
// missing, another scheme, bad base64 or has no ':'.
bool parse_basic_auth(const char* authorization, std::string& user, std::string& password);

// Serves render_text(collector.collect()) at `path` (and below it) on `address` (node_exporter
// style ":9573" or "host:port") for GET requests, with civetweb's threads (two). Construction
// binds the port; throws std::runtime_error with a one-line message on failure. Thread-safe
// afterwards; the destructor stops the server and waits for its threads.
class WebEndpoint {
 public:
  WebEndpoint(const std::string& address, const std::string& path, const WebConfig& cfg,
              const std::string& allow_from, std::shared_ptr<const SipCollector> collector);
  ~WebEndpoint();
  WebEndpoint(const WebEndpoint&) = delete;
  WebEndpoint& operator=(const WebEndpoint&) = delete;
  std::vector<int> ports() const;

 private:
  static int handle(mg_connection* conn, void* self);
  bool authenticate(const std::string& user, const std::string& password);

  std::map<std::string, std::string> users_;
  std::string dummy_;  // a hash with the configured users' cost, for unknown names
  std::mutex mu_;
  // The last password that matched each user's hash: bcrypt costs tens of milliseconds a check,
  // and Prometheus sends the same credentials every scrape.
  std::map<std::string, std::string> verified_;
  std::shared_ptr<const SipCollector> collector_;
  mg_context* ctx_ = nullptr;
};

}  // namespace sipex
