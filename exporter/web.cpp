#include "sipex/web.hpp"

#include <crypt.h>
#include <strings.h>

#include <civetweb.h>
#include <zlib.h>

#include <cstring>
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

bool accepts_gzip(const char* accept_encoding) {
  if (accept_encoding == nullptr) return false;
  // Codings are comma-separated, each "name[;q=value]"; q=0 (0, 0.0, 0.00 ...) refuses.
  for (std::string_view rest(accept_encoding); !rest.empty();) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    auto trim = [](std::string_view v) {
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return v;
    };
    const size_t semi = item.find(';');
    const std::string_view coding = trim(item.substr(0, semi));
    if (!(coding.size() == 4 && strncasecmp(coding.data(), "gzip", 4) == 0) &&
        !(coding.size() == 6 && strncasecmp(coding.data(), "x-gzip", 6) == 0)) {
      continue;
    }
    if (semi == std::string_view::npos) return true;
    std::string_view q = trim(item.substr(semi + 1));
    if (q.size() < 2 || (q[0] != 'q' && q[0] != 'Q') || q[1] != '=') return true;
    q.remove_prefix(2);
    return q.find_first_not_of("0.") != std::string_view::npos || q.empty();
  }
  return false;
}

std::string gzip_compress(std::string_view text) {
  z_stream zs{};
  // 16 + MAX_WBITS: a gzip header and trailer around the deflate stream.
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("gzip: deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(text.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);  // one call: the output has deflateBound's room
  const size_t n = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: deflate failed");
  out.resize(n);
  return out;
}

bool parse_basic_auth(const char* authorization, std::string& user, std::string& password) {
  if (authorization == nullptr || strncasecmp(authorization, "Basic ", 6) != 0) return false;
  std::string_view b64(authorization + 6);
  while (!b64.empty() && b64.front() == ' ') b64.remove_prefix(1);
  while (!b64.empty() && (b64.back() == ' ' || b64.back() == '=')) b64.remove_suffix(1);
  std::string decoded;
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : b64) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else {
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      decoded += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (bits >= 6) return false;  // a lone sixth character cannot end a quantum
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  user = decoded.substr(0, colon);
  password = decoded.substr(colon + 1);
  return true;
}

namespace {

// civetweb reports why mg_start failed through log_message on the calling thread; later
// messages (a client's bad request, say) are dropped, as the Exposer dropped them.
thread_local std::string* start_errors = nullptr;

int log_message(const mg_connection*, const char* message) {
  if (start_errors != nullptr) {
    if (!start_errors->empty()) *start_errors += "; ";
    *start_errors += message;
  }
  return 1;
}

}  // namespace

WebEndpoint::WebEndpoint(const std::string& address, const std::string& path, const WebConfig& cfg,
                         const std::string& allow_from, std::shared_ptr<const SipCollector> collector)
    : users_(cfg.users), collector_(std::move(collector)) {
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
  std::vector<const char*> argv;
  for (const std::string& o : options) argv.push_back(o.c_str());
  argv.push_back(nullptr);

  static const unsigned features = mg_init_library(0);  // once per process, before any mg_start
  (void)features;
  mg_callbacks callbacks{};
  callbacks.log_message = log_message;
  std::string errors;
  start_errors = &errors;
  ctx_ = mg_start(&callbacks, this, argv.data());
  start_errors = nullptr;
  if (ctx_ == nullptr) {
    throw std::runtime_error("--web.listen-address " + address + ": cannot serve" +
                             (errors.empty() ? std::string() : ": " + errors));
  }
  mg_set_request_handler(ctx_, path.c_str(), &WebEndpoint::handle, this);
}

WebEndpoint::~WebEndpoint() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

std::vector<int> WebEndpoint::ports() const {
  mg_server_port p[8];
  const int n = mg_get_server_ports(ctx_, 8, p);
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(p[i].port);
  return out;
}

// Runs on a civetweb thread. Returns the HTTP status for civetweb's log, or 0 to let civetweb
// answer (404) a method other than GET, as the Exposer did.
int WebEndpoint::handle(mg_connection* conn, void* self_ptr) {
  auto* self = static_cast<WebEndpoint*>(self_ptr);
  const mg_request_info* req = mg_get_request_info(conn);
  if (req == nullptr || req->request_method == nullptr || std::strcmp(req->request_method, "GET") != 0) return 0;
  if (!self->users_.empty()) {
    std::string user, password;
    if (!parse_basic_auth(mg_get_header(conn, "Authorization"), user, password) ||
        !self->authenticate(user, password)) {
      mg_printf(conn,
                "HTTP/1.1 401 Unauthorized\r\n"
                "WWW-Authenticate: Basic realm=\"sip_exporter\"\r\n"
                "Connection: close\r\n"
                "Content-Length: 0\r\n\r\n");
      return 401;
    }
  }
  std::string body;
  try {
    body = render_text(self->collector_->collect());
    if (accepts_gzip(mg_get_header(conn, "Accept-Encoding"))) {
      body = gzip_compress(body);
      mg_printf(conn,
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                "Content-Encoding: gzip\r\n"
                "Content-Length: %zu\r\n\r\n",
                body.size());
    } else {
      mg_printf(conn,
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                "Content-Length: %zu\r\n\r\n",
                body.size());
    }
  } catch (const std::exception&) {  // out of memory, or zlib: no partial exposition
    mg_printf(conn, "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return 500;
  }
  mg_write(conn, body.data(), body.size());
  return 200;
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
