// RFC 4475 and RFC 5118 torture messages (read byte-exact from ../shared/torture) as named parser
// cases, each with the outcome a passive counter must reach (../shared/torture/README.md; the
// policy choices marked there with a dagger are pinned here). Every case runs on every kernel,
// against an inaccessible page.
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "kernels.hpp"
#include "sipex/sip_parse.hpp"

namespace sipex {
namespace {

struct Torture {
  const char* rfc;   // "rfc4475" or "rfc5118"
  const char* file;  // without ".dat"
  ParseStatus status;
  const char* method = nullptr;       // label value: one of the 14 or "OTHER"
  int code = 0;                       // responses
  const char* call_id = nullptr;
  int64_t cseq = 0;                   // 0: not checked; -1: present but out of range
  // Stream (TCP) framing outcome, where the torture notes name one.
  std::optional<ParseStatus> stream{};
};

// GoogleTest prints parameters in test names and failures: name the file, not the bytes.
void PrintTo(const Torture& t, std::ostream* os) { *os << t.rfc << '/' << t.file; }

constexpr auto ok = ParseStatus::ok;

const Torture kTorture[] = {
    // RFC 4475 3.1.1: valid messages.
    {"rfc4475", "wsinv", ok, "INVITE", 0, "wsinv.ndaksdj@192.0.2.1", 9, ok},
    {"rfc4475", "intmeth", ok, "OTHER", 0, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{", 139122385},
    {"rfc4475", "esc01", ok, "INVITE", 0, "esc01.239409asdfakjkn23onasd0-3234", 234234},
    {"rfc4475", "escnull", ok, "REGISTER", 0, "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd", 14398234},
    {"rfc4475", "esc02", ok, "OTHER", 0, "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf", 29344},
    {"rfc4475", "lwsdisp", ok, "OPTIONS", 0, "lwsdisp.1234abcd@funky.example.com", 60},
    {"rfc4475", "longreq", ok, "INVITE", 0,
     "longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallylongcallid",
     3882340, ok},
    // One REGISTER; the 450 bytes after its empty body are not a second message (RFC 3261 18.3).
    {"rfc4475", "dblreq", ok, "REGISTER", 0, "dblreq.0ha0isndaksdj99sdfafnl3lk233412", 8},
    {"rfc4475", "semiuri", ok, "OPTIONS", 0, "semiuri.0ha0isndaksdj", 8},
    {"rfc4475", "transports", ok, "OPTIONS", 0, "transports.kijh4akdnaqjkwendsasfdj", 60},
    {"rfc4475", "mpart01", ok, "MESSAGE", 0, "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..", 1, ok},
    {"rfc4475", "unreason", ok, "INVITE", 200, "unreason.1234ksdfak3j2erwedfsASdf", 35},
    {"rfc4475", "noreason", ok, "INVITE", 100, "noreason.asndj203insdf99223ndf", 35},
    // RFC 4475 3.1.2: invalid messages.
    {"rfc4475", "badinv01", ok, "INVITE", 0, "badinv01.0ha0isndaksdjasdf3234nas", 8},
    // Body shorter than Content-Length: a parse error as a datagram; on TCP, wait for more bytes.
    {"rfc4475", "clerr", ParseStatus::truncated_body, nullptr, 0, nullptr, 0, ParseStatus::incomplete},
    {"rfc4475", "ncl", ParseStatus::bad_content_length, nullptr, 0, nullptr, 0, ParseStatus::bad_content_length},
    // Dagger: counted under its request-line method; the CSeq number 2^65 is marked invalid, not wrapped.
    {"rfc4475", "scalar02", ok, "REGISTER", 0, "scalar02.23o0pd9vanlq3wnrlnewofjas9ui32", -1},
    // Dagger: counted as 503/OPTIONS; the CSeq number overflows 64 bits and is marked invalid.
    {"rfc4475", "scalarlg", ok, "OPTIONS", 503, "scalarlg.noase0of0234hn2qofoaf0232aewf2394r", -1},
    {"rfc4475", "quotbal", ok, "INVITE", 0, "quotbal.aksdj", 8},
    {"rfc4475", "ltgtruri", ok, "INVITE", 0, "ltgtruri.1@192.0.2.5", 1},   // dagger: brackets not validated
    {"rfc4475", "lwsruri", ok, "INVITE", 0, "lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423", 2130706432},  // dagger
    {"rfc4475", "lwsstart", ok, "INVITE", 0, "lwsstart.dfknq234oi243099adsdfnawe3@example.com", 1893884},  // dagger
    {"rfc4475", "trws", ok, "OPTIONS", 0, "trws.oicu34958239neffasdhr2345r", 238923},  // dagger
    {"rfc4475", "escruri", ok, "INVITE", 0, "escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5", 149209342},
    {"rfc4475", "baddate", ok, "INVITE", 0, "baddate.239423mnsadf3j23lj42--sedfnm234", 1392934},
    {"rfc4475", "regbadct", ok, "REGISTER", 0, "regbadct.k345asrl3fdbv@10.0.0.1", 1},
    {"rfc4475", "badaspec", ok, "OPTIONS", 0, "badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3", 3923239},
    // Dagger: no empty line after the last header; the datagram's end closes the header section.
    {"rfc4475", "baddn", ok, "OPTIONS", 0, "baddn.31415@c.example.com", 3923239, ParseStatus::incomplete},
    {"rfc4475", "badvers", ParseStatus::bad_version},  // dagger: SIP/7.0 is not SIP 2.0
    {"rfc4475", "mismatch01", ok, "OPTIONS", 0, "mismatch01.dj0234sxdfl3", 8},
    {"rfc4475", "mismatch02", ok, "OTHER", 0, "mismatch02.dj0234sxdfl3", 8},
    {"rfc4475", "bigcode", ParseStatus::bad_status_code},
    // RFC 4475 3.2-3.4: semantics the counter does not judge, and RFC 2543 syntax.
    {"rfc4475", "badbranch", ok, "OPTIONS", 0, "badbranch.sadonfo23i420jv0as0derf3j3n", 8},
    {"rfc4475", "insuf", ok, "INVITE", 0, "", 193942},
    {"rfc4475", "unkscm", ok, "OPTIONS", 0, "unkscm.nasdfasser0q239nwsdfasdkl34", 3923423},
    {"rfc4475", "novelsc", ok, "OPTIONS", 0, "novelsc.asdfasser0q239nwsdfasdkl34", 3923423},
    {"rfc4475", "unksm2", ok, "REGISTER", 0, "unksm2.daksdj@hyphenated-host.example.com", 234902},
    {"rfc4475", "bext01", ok, "OPTIONS", 0, "bext01.0ha0isndaksdj", 8},
    {"rfc4475", "invut", ok, "INVITE", 0, "invut.0ha0isndaksdjadsfij34n23d", 235448},
    {"rfc4475", "regaut01", ok, "REGISTER", 0, "regaut01.0ha0isndaksdj", 9338},
    {"rfc4475", "multi01", ok, "INVITE", 0, "multi01.98asdh@192.0.2.1", 5},  // the first CSeq wins
    // Dagger: as one datagram either length fits and the tail is discarded; on TCP it cannot be framed.
    {"rfc4475", "mcl01", ok, "OPTIONS", 0, "mcl01.fhn2323orihawfdoa3o4r52o3irsdf", 15932, ParseStatus::bad_content_length},
    {"rfc4475", "bcast", ok, "INVITE", 200, "bcast.0384840201234ksdfak3j2erwedfsASdf", 35},
    {"rfc4475", "zeromf", ok, "OPTIONS", 0, "zeromf.jfasdlfnm2o2l43r5u0asdfas", 39234321},
    {"rfc4475", "cparam01", ok, "REGISTER", 0, "cparam01.70710@saturn.example.com", 2},
    {"rfc4475", "cparam02", ok, "REGISTER", 0, "cparam02.70710@saturn.example.com", 3},
    {"rfc4475", "regescrt", ok, "REGISTER", 0, "regescrt.k345asrl3fdbv@192.0.2.1", 14398234},
    {"rfc4475", "sdp01", ok, "INVITE", 0, "sdp01.ndaksdj9342dasdd", 8},
    // No Content-Length: the body is the rest of the datagram; a stream cannot frame it.
    {"rfc4475", "inv2543", ok, "INVITE", 0, "inv2543.1717@ift.client.example.com", 56, ParseStatus::missing_content_length},
    {"rfc4475", "test", ParseStatus::bad_start_line},  // no SIP-Version on the first line
    // RFC 5118, after the LF -> CRLF conversion the torture notes describe.
    {"rfc5118", "ipv6-good", ok, "REGISTER", 0, "SSG9559905523997077@hlau_4100", 98176},
    {"rfc5118", "ipv6-bad", ok, "REGISTER", 0, "SSG9559905523997077@hlau_4100", 98176},  // dagger: URI not validated
    {"rfc5118", "port-ambiguous", ok, "REGISTER", 0, "SSG9559905523997077@hlau_4100", 98176},
    {"rfc5118", "port-unambiguous", ok, "REGISTER", 0, "SSG9559905523997077@hlau_4100", 98176},
    {"rfc5118", "via-received-param-with-delim", ok, "BYE", 0, "SSG9559905523997077@hlau_4100", 321},
    {"rfc5118", "via-received-param-no-delim", ok, "OPTIONS", 0, "SSG95523997077@hlau_4100", 921},
    // As archived, Content-Length 268 exceeds the body (251 bytes after conversion): the clerr rule.
    {"rfc5118", "ipv6-in-sdp", ParseStatus::truncated_body},
    {"rfc5118", "mult-ip-in-header", ok, "BYE", 0, "997077@lau_4100", 89187},
    {"rfc5118", "mult-ip-in-sdp", ok, "INVITE", 0, "SSG9559905523997077@hlau_4100", 8912},
    {"rfc5118", "ipv4-mapped-ipv6", ok, "INVITE", 0, "SSG9559905523997077@hlau_4100", 612},
    {"rfc5118", "ipv6-bug-abnf-3-colons", ok, "OPTIONS", 0, "G9559905523997077@hlau_4100", 689},
    {"rfc5118", "ipv6-correct-abnf-2-colons", ok, "OPTIONS", 0, "G9559905523997077@hlau_4100", 689},
};

// The message as wire bytes, or nullopt if ../shared is absent (a failure when CI is set).
std::optional<std::string> load(const Torture& t) {
  const std::string path = std::string(SIPEX_SHARED_DIR) + "/torture/" + t.rfc + "/" + t.file + ".dat";
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string b = ss.str();
  if (std::string_view(t.rfc) == "rfc5118") {
    // RFC 5118's archive uses bare LF; the wire form is CRLF, and the two 4.10 files need the
    // empty line that ends a header section.
    std::string w;
    for (char c : b) {
      if (c == '\n') w += '\r';
      w += c;
    }
    if (std::string_view(t.file).starts_with("ipv6-") && std::string_view(t.file).find("abnf") != std::string_view::npos) {
      w += "\r\n";
    }
    b = w;
  }
  return b;
}

class TortureTest : public testing::TestWithParam<Torture> {};

TEST_P(TortureTest, outcome_on_every_kernel) {
  const Torture& t = GetParam();
  const auto bytes = load(t);
  if (!bytes) {
    if (std::getenv("CI") != nullptr) FAIL() << "../shared/torture is missing and CI is set";
    GTEST_SKIP() << "../shared/torture is missing";
  }
  for (const ScanKernel* k : test::supported_kernels()) {
    SCOPED_TRACE(k->name);
    test::GuardedBuffer buf(*bytes);
    SipMessage m;
    const ParseStatus st = parse_sip(buf.data(), buf.size(), Framing::datagram, m, *k);
    ASSERT_EQ(static_cast<int>(st), static_cast<int>(t.status)) << parse_status_reason(st);
    if (st == ParseStatus::ok) {
      EXPECT_EQ(method_name(m.method), t.method);
      EXPECT_EQ(m.is_request, t.code == 0);
      if (t.code != 0) EXPECT_EQ(m.status_code, t.code);
      EXPECT_EQ(m.call_id, t.call_id);
      if (t.cseq > 0) {
        EXPECT_TRUE(m.cseq_number_valid);
        EXPECT_EQ(m.cseq_number, static_cast<uint64_t>(t.cseq));
      } else if (t.cseq < 0) {
        EXPECT_TRUE(m.has_cseq);
        EXPECT_FALSE(m.cseq_number_valid);
      }
      EXPECT_LE(m.message_length, bytes->size());
    }
    if (t.stream) {
      const ParseStatus ss = parse_sip(buf.data(), buf.size(), Framing::stream, m, *k);
      EXPECT_EQ(static_cast<int>(ss), static_cast<int>(*t.stream)) << "stream: " << parse_status_reason(ss);
      if (ss == ParseStatus::ok) EXPECT_EQ(m.message_length, bytes->size());
    }
  }
}

// RFC 5118 4.6 with the Content-Length corrected to its body is an ordinary INVITE.
TEST(TortureFixups, ipv6_in_sdp_with_corrected_length_is_one_invite) {
  const auto bytes = load({"rfc5118", "ipv6-in-sdp", ok});
  if (!bytes) {
    if (std::getenv("CI") != nullptr) FAIL() << "../shared/torture is missing and CI is set";
    GTEST_SKIP() << "../shared/torture is missing";
  }
  const size_t body = bytes->find("\r\n\r\n") + 4;
  std::string fixed = *bytes;
  const size_t cl = fixed.find("Content-Length: 268");
  ASSERT_NE(cl, std::string::npos);
  fixed.replace(cl, 19, "Content-Length: " + std::to_string(bytes->size() - body));
  SipMessage m;
  ASSERT_EQ(static_cast<int>(parse_sip(fixed.data(), fixed.size(), Framing::datagram, m)), static_cast<int>(ok));
  EXPECT_EQ(m.method, Method::INVITE);
}

std::string torture_name(const testing::TestParamInfo<Torture>& info) {
  std::string n = std::string(info.param.rfc) + "_" + info.param.file;
  for (char& c : n) {
    if (c == '-') c = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Rfc, TortureTest, testing::ValuesIn(kTorture), torture_name);

}  // namespace
}  // namespace sipex
