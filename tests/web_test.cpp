#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "sipex/web.hpp"

namespace sipex {
namespace {

// bcrypt("secret") at cost 4, made with Python's crypt.crypt (libcrypt), so the check below is
// against an independent implementation's output.
constexpr const char* kSecretHash = "$2b$04$EirQs0oI1Rz26AqEvj6ty.LMAHu4KAdD1mwXmlXIPTwbMHIhty9a2";

std::string write(const std::string& text) {
  char path[] = "/tmp/sipex-web-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

TEST(WebConfigTest, bcrypt_users) {
  const std::string p = write(std::string("basic_auth_users:\n  prom: '") + kSecretHash + "'\n");
  const WebConfig cfg = load_web_config(p);
  std::remove(p.c_str());
  ASSERT_EQ(cfg.users.size(), 1u);
  EXPECT_TRUE(bcrypt_matches("secret", cfg.users.at("prom")));
  EXPECT_FALSE(bcrypt_matches("Secret", cfg.users.at("prom")));
  EXPECT_FALSE(bcrypt_matches("", cfg.users.at("prom")));
}

TEST(WebConfigTest, errors_name_the_line) {
  const struct {
    const char* text;
    const char* fragment;
  } cases[] = {
      {"basic_auth_users:\n  prom: plaintext\n", ":2: the hash of user 'prom' is not a bcrypt hash"},
      {"tls_server_config:\n  cert_file: x\n", ":1: tls_server_config is not supported"},
      {"basic_auth_user:\n  prom: x\n", ":1: unknown key 'basic_auth_user'"},
  };
  for (const auto& c : cases) {
    const std::string p = write(c.text);
    try {
      load_web_config(p);
      ADD_FAILURE() << c.text;
    } catch (const WebConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(c.fragment), std::string::npos) << e.what();
    }
    std::remove(p.c_str());
  }
  EXPECT_THROW(load_web_config("/nonexistent/web.yml"), WebConfigError);
}

TEST(WebConfigTest, allow_list_becomes_a_civetweb_acl) {
  EXPECT_EQ(access_control_list("192.0.2.0/24,198.51.100.7"), "-0.0.0.0/0,+192.0.2.0/24,+198.51.100.7/32");
  EXPECT_THROW(access_control_list("192.0.2.0/33"), WebConfigError);
  EXPECT_THROW(access_control_list("2001:db8::/32"), WebConfigError);
  EXPECT_THROW(access_control_list("10.0.0.0/8,"), WebConfigError);
}

TEST(WebTest, accept_encoding_gzip) {
  EXPECT_FALSE(accepts_gzip(nullptr));
  EXPECT_FALSE(accepts_gzip(""));
  EXPECT_TRUE(accepts_gzip("gzip"));
  EXPECT_TRUE(accepts_gzip("GZIP"));
  EXPECT_TRUE(accepts_gzip("x-gzip"));
  EXPECT_TRUE(accepts_gzip("identity, gzip"));
  EXPECT_TRUE(accepts_gzip("deflate;q=1, gzip;q=0.5"));
  EXPECT_TRUE(accepts_gzip("gzip ; q=1.0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0.000, deflate"));
  EXPECT_FALSE(accepts_gzip("deflate, br"));
  EXPECT_FALSE(accepts_gzip("gzipx"));
}

TEST(WebTest, basic_auth_header) {
  std::string u, p;
  EXPECT_TRUE(parse_basic_auth("Basic cHJvbTpzZWNyZXQ=", u, p));  // prom:secret
  EXPECT_EQ(u, "prom");
  EXPECT_EQ(p, "secret");
  EXPECT_TRUE(parse_basic_auth("basic dTpwOnE=", u, p));  // u:p:q: the password may hold ':'
  EXPECT_EQ(u, "u");
  EXPECT_EQ(p, "p:q");
  EXPECT_TRUE(parse_basic_auth("Basic Og==", u, p));  // ":"
  EXPECT_EQ(u, "");
  EXPECT_EQ(p, "");
  EXPECT_FALSE(parse_basic_auth(nullptr, u, p));
  EXPECT_FALSE(parse_basic_auth("Bearer cHJvbTpzZWNyZXQ=", u, p));
  EXPECT_FALSE(parse_basic_auth("Basic cHJvbXNlY3JldA==", u, p));  // no ':'
  EXPECT_FALSE(parse_basic_auth("Basic cHJv!bTpz", u, p));
  EXPECT_FALSE(parse_basic_auth("Basic cHJvb", u, p));  // a lone sixth character
}

std::string gunzip(const std::string& z) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(z.data()));
  zs.avail_in = static_cast<uInt>(z.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

TEST(WebTest, gzip_round_trips) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "sip_requests_total{method=\"INVITE\",peer=\"p" + std::to_string(i) + "\"} 1\n";
  const std::string z = gzip_compress(text);
  EXPECT_LT(z.size(), text.size() / 5);
  EXPECT_EQ(static_cast<unsigned char>(z[0]), 0x1f);  // a gzip member, not a bare deflate stream
  EXPECT_EQ(static_cast<unsigned char>(z[1]), 0x8b);
  EXPECT_EQ(gunzip(z), text);
  EXPECT_EQ(gunzip(gzip_compress("")), "");
}

// One HTTP/1.0 exchange with the endpoint: the whole answer (headers and body).
std::string http(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

struct Served {
  std::string head, body;
};
Served split(const std::string& answer) {
  const size_t end = answer.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos) << answer;
  if (end == std::string::npos) return {answer, ""};
  return {answer.substr(0, end + 2), answer.substr(end + 4)};
}

TEST(WebTest, serves_the_text_plain_gzipd_and_behind_basic_auth) {
  Config cfg;
  PeerRegistry reg(cfg);
  MetricSources src;
  src.peers = &reg;
  src.kernel = "scalar";
  auto collector = std::make_shared<SipCollector>(src);
  const std::string want = render_text(collector->collect());

  WebConfig web;
  web.users["prom"] = kSecretHash;
  WebEndpoint ep("127.0.0.1:0", "/custom", web, "127.0.0.0/8", collector);
  ASSERT_EQ(ep.ports().size(), 1u);
  const int port = ep.ports()[0];
  ASSERT_GT(port, 0);
  const std::string auth = "Authorization: Basic cHJvbTpzZWNyZXQ=\r\n";  // prom:secret

  Served plain = split(http(port, "GET /custom HTTP/1.0\r\n" + auth + "\r\n"));
  EXPECT_EQ(plain.head, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: " +
                            std::to_string(want.size()) + "\r\n");
  EXPECT_EQ(plain.body, want);

  Served z = split(http(port, "GET /custom HTTP/1.0\r\n" + auth + "Accept-Encoding: gzip\r\n\r\n"));
  EXPECT_NE(z.head.find("\r\nContent-Encoding: gzip\r\n"), std::string::npos) << z.head;
  EXPECT_NE(z.head.find("\r\nContent-Length: " + std::to_string(z.body.size()) + "\r\n"), std::string::npos) << z.head;
  EXPECT_EQ(gunzip(z.body), want);

  const std::string unauthorized =
      "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"sip_exporter\"\r\nConnection: close\r\n"
      "Content-Length: 0\r\n\r\n";
  EXPECT_EQ(http(port, "GET /custom HTTP/1.0\r\n\r\n"), unauthorized);
  EXPECT_EQ(http(port, "GET /custom HTTP/1.0\r\nAuthorization: Basic cHJvbTpTZWNyZXQ=\r\n\r\n"), unauthorized);
  EXPECT_EQ(http(port, "GET /custom HTTP/1.0\r\nAuthorization: Basic bm9ib2R5OnNlY3JldA==\r\n\r\n"), unauthorized);
  // Other paths and methods are civetweb's 404, as they were with prometheus-cpp's Exposer.
  EXPECT_EQ(http(port, "GET /metrics HTTP/1.0\r\n" + auth + "\r\n").rfind("HTTP/1.0 404 Not Found\r\n", 0), 0u);
  EXPECT_EQ(http(port, "POST /custom HTTP/1.0\r\n" + auth + "\r\n").rfind("HTTP/1.0 404 Not Found\r\n", 0), 0u);
  // The right password again: served from the cache of verified passwords, same answer.
  EXPECT_EQ(split(http(port, "GET /custom HTTP/1.0\r\n" + auth + "\r\n")).body, want);
}

TEST(WebTest, listen_errors_are_one_line) {
  Config cfg;
  PeerRegistry reg(cfg);
  MetricSources src;
  src.peers = &reg;
  auto collector = std::make_shared<SipCollector>(src);
  WebEndpoint first("127.0.0.1:0", "/metrics", {}, "", collector);
  const std::string busy = "127.0.0.1:" + std::to_string(first.ports().at(0));
  try {
    WebEndpoint second(busy, "/metrics", {}, "", collector);
    ADD_FAILURE() << "bound a port in use";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("--web.listen-address " + busy + ": cannot serve", 0), 0u) << what;
    EXPECT_NE(what.find("in use"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  EXPECT_THROW(WebEndpoint("[::1]:0", "/metrics", {}, "", collector), std::runtime_error);
  EXPECT_THROW(WebEndpoint("127.0.0.1:0", "/metrics", {}, "2001:db8::/32", collector), WebConfigError);
}

}  // namespace
}  // namespace sipex
