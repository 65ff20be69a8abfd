// Kernel differential tests: every SIMD kernel must agree with the scalar twin, bit for bit on
// the newline scan and field for field on whole parses of mutated messages.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels.hpp"
#include "message_corpus.hpp"
#include "sipex/sip_parse.hpp"
#include "sipex/sip_scan.hpp"

namespace sipex {
namespace {

// splitmix64: deterministic across standard libraries.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
};

class ScanTest : public testing::TestWithParam<const ScanKernel*> {};

// The mask newline_mask() must return, from the bytes themselves.
uint64_t newlines_by_hand(const std::string& s, size_t base) {
  uint64_t m = 0;
  for (size_t i = 0; i < 64 && base + i < s.size(); ++i) m |= uint64_t{s[base + i] == '\n'} << i;
  return m;
}

TEST_P(ScanTest, newline_mask_at_every_length_and_base) {
  // Every buffer length up to three vectors, every base: the short-buffer path, the full-width
  // path and the shifted tail all meet their contract, and nothing past the end is read.
  Rng rng{42};
  for (size_t len = 1; len <= 200; ++len) {
    std::string s(len, 'x');
    for (char& c : s) c = rng.below(4) == 0 ? '\n' : static_cast<char>(rng.below(256));
    test::GuardedBuffer buf(s);
    for (size_t base = 0; base < len; ++base) {
      ASSERT_EQ(GetParam()->newline_mask(buf.data(), len, base), newlines_by_hand(s, base))
          << "len " << len << " base " << base;
    }
  }
}

TEST_P(ScanTest, newline_mask_sees_a_newline_at_every_bit) {
  // A single '\n' at each of the 64 positions of a window, and every other byte value around it
  // (0x0A must be the only byte that sets a bit, signed bytes included).
  for (int c = 0; c < 256; ++c) {
    if (c == '\n') continue;
    for (size_t at = 0; at < 64; ++at) {
      for (size_t len : {size_t{64}, size_t{100}, size_t{130}}) {
        std::string s(len, static_cast<char>(c));
        s[at] = '\n';
        test::GuardedBuffer buf(s);
        ASSERT_EQ(GetParam()->newline_mask(buf.data(), len, 0), uint64_t{1} << at) << "byte " << c << " at " << at;
        const size_t tail = len - 1 - (at % 32);  // a base whose window is a shifted tail
        ASSERT_EQ(GetParam()->newline_mask(buf.data(), len, tail), newlines_by_hand(s, tail)) << c << " " << at;
      }
    }
  }
}

constexpr bool sample_set_a(unsigned char c) { return (c >= 'a' && c <= 'z') || c == '-' || c == '.'; }
constexpr bool sample_set_b(unsigned char c) { return c != ';' && c != '\r' && c != '\n' && c != '"'; }
constexpr bool sample_set_c(unsigned char c) { return c > 0x20 && c < 0x7F; }
constexpr bool sample_set_d(unsigned char c) { return c == 0x00 || c == 0x7F || c == '0'; }
constexpr CharSet kSampleSets[] = {make_char_set(sample_set_a), make_char_set(sample_set_b),
                                   make_char_set(sample_set_c), make_char_set(sample_set_d)};

TEST_P(ScanTest, spans_like_scalar_over_every_byte_and_alignment) {
  // Each byte value at each position of a run of members, for every sample set: the kernel must
  // stop exactly where the scalar twin does, and read nothing past the end.
  for (const CharSet& set : kSampleSets) {
    unsigned char fill = 0;
    while (fill < 128 && !set.member[fill]) ++fill;
    for (int c = 0; c < 256; ++c) {
      for (size_t at : {0u, 1u, 7u, 15u, 16u, 17u, 31u, 32u, 33u, 47u, 63u, 64u, 70u}) {
        std::string s(71, static_cast<char>(fill));
        if (at < s.size()) s[at] = static_cast<char>(c);
        test::GuardedBuffer buf(s);
        const char* want = span_scalar(buf.data(), buf.data() + buf.size(), set);
        const char* got = GetParam()->span(buf.data(), buf.data() + buf.size(), set);
        ASSERT_EQ(got - buf.data(), want - buf.data()) << "byte " << c << " at " << at;
      }
    }
  }
  Rng rng{99};
  for (int round = 0; round < 20000; ++round) {
    const CharSet& set = kSampleSets[rng.below(4)];
    std::string s(rng.below(120), 'x');
    for (char& c : s) c = static_cast<char>(rng.below(3) ? 'a' + rng.below(26) : rng.below(256));
    test::GuardedBuffer buf(s);
    const size_t from = rng.below(s.size() + 1);
    ASSERT_EQ(GetParam()->span(buf.data() + from, buf.data() + buf.size(), set),
              span_scalar(buf.data() + from, buf.data() + buf.size(), set));
  }
}

std::vector<std::string> seed_messages() {
  std::vector<std::string> out = {
      "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
      "To: <sip:b@h>\r\nCall-ID: abc@h\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\n"
      "v=0\r\no=-\r\n",
      "SIP/2.0 503 Service Unavailable\r\nv: SIP/2.0/UDP h;branch=z9hG4bK2\r\nf: <sip:a@h>;tag=2\r\nt: <sip:b@h>;tag=3\r\n"
      "i: x@y\r\ncseq: 0009\r\n  INVITE\r\nl: 0\r\n\r\n",
      "REGISTER sip:h SIP/2.0\nCall-ID: lf\nCSeq: 1 REGISTER\nContent-Length: 4\n\nbody",
      // The spellings the fast paths take, and the ones they must leave to the general steps:
      // quoted display names with specials and escapes, folds inside From/To and Via, a comma
      // before the tag, ;tag inside the URI, white space around ';' and '=', upper-case names,
      // parameters before branch, request lines with extra white space or a lower-case version.
      "INVITE  sip:x@h   SIP/2.0  \r\nVia: SIP/2.0/UDP h:5060;rport;received=192.0.2.1;BRANCH=z9hG4bKa;x\r\n"
      "From: \"A;b<c>,d\" <sip:a@h;tag=uri>;x=1;TAG=ft\r\nTo: \"q\\\"x\" <sip:b@h>; tag = tt\r\n"
      "Call-ID: c1\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n",
      "OPTIONS sip:x@h sip/2.0\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bKfold\r\nFrom: <sip:a@h>\r\n\t;tag=folded\r\n"
      "To: a@h, <sip:b@h>;tag=second\r\nCall-ID: c2\r\nCSeq: 3 OPTIONS\r\nl: 0\r\n\r\n",
      "SIP/2.0 200 OK\r\nv: SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK\"q\"\r\nf: sip:a@h;tag=plain\r\n"
      "t: \"unterminated <sip:b@h>;tag=x\r\ni: c3\r\nCSeq: 4 BYE\r\nContent-Length: 0\r\n\r\n",
      "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKlong\r\nFrom: \"" + std::string(70, 'n') +
          "\" <sip:a@h>;tag=long\r\nTo: <sip:b@h;lr>;tag=t\rx\r\nCall-ID: c4\r\nCSeq: 5 INVITE\r\n\r\n",
  };
  const std::string dir = std::string(SIPEX_SHARED_DIR) + "/torture";
  std::error_code ec;
  for (const char* rfc : {"rfc4475", "rfc5118"}) {
    for (const auto& e : std::filesystem::directory_iterator(dir + "/" + rfc, ec)) {
      std::ifstream in(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      out.push_back(ss.str());
    }
  }
  return out;
}

std::string describe(ParseStatus st, const SipMessage& m) {
  std::ostringstream o;
  o << parse_status_reason(st) << static_cast<int>(st);
  if (st != ParseStatus::ok) return o.str();
  o << '|' << m.is_request << '|' << method_name(m.method) << '|' << m.method_token << '|' << m.request_uri << '|'
    << m.status_code << '|' << m.reason << '|' << m.has_cseq << m.cseq_number_valid << m.cseq_number << '|'
    << method_name(m.cseq_method) << '|' << m.call_id << '|' << m.via_branch << '|' << m.from << '|' << m.to << '|'
    << header_tag(m.from) << '|' << header_tag(m.to) << '|' << m.content_length << '|' << m.header_length << '|' << m.message_length;
  return o.str();
}

std::string mutate(const std::string& s, Rng& rng) {
  std::string m = s;
  const size_t edits = 1 + rng.below(6);
  static const char kInteresting[] = {'\r', '\n', ' ', '\t', ':', ';', '<', '>', '"', ',', '=', '0', '9', '\0', '\x80'};
  for (size_t e = 0; e < edits && !m.empty(); ++e) {
    const size_t pos = rng.below(m.size());
    switch (rng.below(5)) {
      case 0: m[pos] = kInteresting[rng.below(sizeof kInteresting)]; break;
      case 1: m[pos] = static_cast<char>(rng.below(256)); break;
      case 2: m.insert(pos, 1, kInteresting[rng.below(sizeof kInteresting)]); break;
      case 3: m.erase(pos, 1 + rng.below(8)); break;
      default: m.resize(pos); break;
    }
  }
  return m;
}

TEST_P(ScanTest, parses_mutated_messages_like_the_reference) {
  // parse_sip_reference() runs the general algorithm alone; every kernel, scalar included, takes
  // fast paths for the usual spellings and must give the same answer on every input.
  auto seeds = seed_messages();
  for (const std::string& m : sipex::bench::message_corpus(64)) seeds.push_back(m);
  Rng rng{7};
  for (const std::string& seed : seeds) {
    for (int i = 0; i < 400; ++i) {
      const std::string in = i == 0 ? seed : mutate(seed, rng);
      test::GuardedBuffer buf(in);
      for (Framing f : {Framing::datagram, Framing::stream}) {
        SipMessage a, b;
        const ParseStatus sa = parse_sip_reference(buf.data(), buf.size(), f, a);
        const ParseStatus sb = parse_sip(buf.data(), buf.size(), f, b, *GetParam());
        ASSERT_EQ(describe(sa, a), describe(sb, b)) << "input: " << testing::PrintToString(in);
        if (sa == ParseStatus::ok) ASSERT_LE(a.message_length, in.size());
      }
    }
  }
}

TEST_P(ScanTest, every_line_parses_alike_at_every_offset_in_its_block) {
  // The line cursor is shared by the reference and every kernel, so the test above cannot see a
  // fault in it. Here its oracle is the message itself: padding the start line moves every later
  // line, fold and the empty line through all 64 offsets of a newline-mask block (a '\n' in a
  // block's last byte, an empty line split across two blocks, a fold at a block edge), and
  // nothing but the padded field and the offsets may change.
  const std::vector<std::string> seeds = {
      "INVITE sip:bob@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:a@h>;tag=1\r\n"
      "To: <sip:b@h>\r\nContact: <sip:a@h>\r\nCall-ID: abc@h\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
      "Content-Length: 10\r\n\r\nv=0\r\no=-\r\n",
      "SIP/2.0 503 Service Unavailable\r\nv: SIP/2.0/UDP h;branch=z9hG4bK2\r\nv: SIP/2.0/UDP g;branch=z9hG4bK3\r\n"
      "f: <sip:a@h>;tag=2\r\nt: <sip:b@h>\r\n ;tag=3\r\ni: x@y\r\ncseq: 0009\r\n  INVITE\r\nl: 0\r\n\r\n",
      "REGISTER sip:h SIP/2.0\nVia: SIP/2.0/UDP h\n\t;branch=z9hG4bKlf\nCall-ID: lf\nCSeq: 1 REGISTER\nContent-Length: 4\n\nbody",
      "OPTIONS sip:h SIP/2.0\r\nCall-ID: nolen\r\nCSeq: 7 OPTIONS\r\nX-A: 1\r\nX-B: 2\r\n",
  };
  for (const std::string& seed : seeds) {
    const bool response = seed.rfind("SIP/", 0) == 0;
    const size_t at = response ? seed.find(" Service") + 1 : seed.find(" SIP/2.0");  // the reason / the URI
    for (Framing f : {Framing::datagram, Framing::stream}) {
      SipMessage base;
      const ParseStatus sb = parse_sip(seed.data(), seed.size(), f, base, *GetParam());
      for (size_t pad = 1; pad <= 130; ++pad) {
        std::string in = seed;
        in.insert(at, pad, 'x');
        test::GuardedBuffer buf(in);
        SipMessage m;
        const ParseStatus sm = parse_sip(buf.data(), buf.size(), f, m, *GetParam());
        ASSERT_EQ(sm, sb) << "pad " << pad << ": " << testing::PrintToString(in);
        if (sm != ParseStatus::ok && sm != ParseStatus::incomplete) continue;
        EXPECT_EQ(m.call_id, base.call_id) << pad;
        EXPECT_EQ(m.via_branch, base.via_branch) << pad;
        EXPECT_EQ(m.from, base.from) << pad;
        EXPECT_EQ(m.to, base.to) << pad;
        EXPECT_EQ(header_tag(m.to), header_tag(base.to)) << pad;
        EXPECT_EQ(m.has_cseq, base.has_cseq) << pad;
        EXPECT_EQ(m.cseq_number, base.cseq_number) << pad;
        EXPECT_EQ(m.method, base.method) << pad;
        EXPECT_EQ(m.content_length, base.content_length) << pad;
        if (base.header_length != 0) EXPECT_EQ(m.header_length, base.header_length + pad) << pad;
        if (base.message_length != 0) EXPECT_EQ(m.message_length, base.message_length + pad) << pad;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, ScanTest, testing::ValuesIn(test::supported_kernels()), test::kernel_param_name);

TEST(KernelSelection, every_kernel_name_resolves_and_unknown_names_do_not) {
  size_t n = 0;
  const ScanKernel* ks = scan_kernels(&n);
  ASSERT_GE(n, 3u);
  EXPECT_STREQ(ks[0].name, "scalar");
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(find_kernel(ks[i].name), ks[i].supported() ? &ks[i] : nullptr);
  }
  EXPECT_EQ(find_kernel("neon"), nullptr);
  EXPECT_TRUE(active_kernel().supported());
}

}  // namespace
}  // namespace sipex
