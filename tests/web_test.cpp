#include <unistd.h>

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

}  // namespace
}  // namespace sipex
