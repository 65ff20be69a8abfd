#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sipex/sctp.hpp"
#include "sipex/sip_parse.hpp"

namespace sipex {
namespace {

struct Collect final : MessageSink {
  std::vector<std::string> call_ids;
  int errors = 0;
  void message(const SipMessage& m, const IpAddr&, const IpAddr&, int64_t) override { call_ids.emplace_back(m.call_id); }
  void parse_error(ParseStatus) override { ++errors; }
};

constexpr uint8_t kB = 0x02, kE = 0x01;
constexpr int64_t kSecond = 1'000'000'000;

std::string message(const std::string& call_id) {
  return "OPTIONS sip:a@example.net SIP/2.0\r\nVia: SIP/2.0/SCTP h;branch=z9hG4bK" + call_id + "\r\nCall-ID: " + call_id +
         "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
}

// A DATA chunk (RFC 4960 3.3.1) of stream 1 with sequence number `ssn`.
std::vector<uint8_t> data_chunk(uint8_t flags, uint32_t tsn, uint16_t ssn, const std::string& bytes) {
  const auto len = static_cast<uint16_t>(16 + bytes.size());
  const uint8_t header[16] = {0, flags, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len),
                              static_cast<uint8_t>(tsn >> 24), static_cast<uint8_t>(tsn >> 16), static_cast<uint8_t>(tsn >> 8),
                              static_cast<uint8_t>(tsn), 0, 1, static_cast<uint8_t>(ssn >> 8), static_cast<uint8_t>(ssn), 0, 0, 0, 0};
  std::vector<uint8_t> c((len + 3u) & ~3u, 0);  // padded to 4 bytes
  std::copy(header, header + 16, c.begin());
  std::copy(bytes.begin(), bytes.end(), c.begin() + 16);
  return c;
}

class SctpTest : public ::testing::Test {
 protected:
  void send(const std::vector<uint8_t>& chunks, int64_t now) {
    Decoded d{};
    d.src.family = d.dst.family = 4;
    d.src.bytes[0] = 192, d.dst.bytes[0] = 198;
    d.sport = d.dport = 5060;
    d.ip_protocol = 132;
    d.payload = chunks.data();
    d.payload_len = static_cast<uint32_t>(chunks.size());
    r.packet(d, now);
  }
  // Message `id` as `parts` DATA chunks of SSN `ssn`, TSNs from `tsn`: B first, E last.
  static std::vector<std::vector<uint8_t>> split(const std::string& id, uint16_t ssn, uint32_t tsn, int parts) {
    const std::string m = message(id);
    const size_t step = m.size() / parts + 1;
    std::vector<std::vector<uint8_t>> out;
    for (int i = 0; i < parts; ++i) {
      const auto flags = static_cast<uint8_t>((i == 0 ? kB : 0) | (i == parts - 1 ? kE : 0));
      out.push_back(data_chunk(flags, tsn + i, ssn, m.substr(i * step, step)));
    }
    return out;
  }
  uint64_t evicted(ChunkEviction e) const { return r.stats().evicted[static_cast<size_t>(e)].get(); }
  uint32_t in_progress() const { return r.stats().in_progress.load(); }

  SctpLimits limits{.max_messages = 2, .max_message_bytes = 4096, .timeout_ns = 30 * kSecond};
  Collect sink;
  SctpReassembler r{limits, sink, active_kernel()};
};

TEST_F(SctpTest, whole_chunks_are_messages_and_fragments_are_reassembled) {
  send(data_chunk(kB | kE, 7, 0, message("whole")), 0);
  EXPECT_EQ(in_progress(), 0u);
  const auto f = split("three", 1, 8, 3);
  send(f[0], 1);
  send(f[1], 2);
  EXPECT_EQ(in_progress(), 1u);
  EXPECT_EQ(sink.call_ids, std::vector<std::string>{"whole"});
  send(f[2], 3);
  EXPECT_EQ(in_progress(), 0u);
  EXPECT_EQ(sink.call_ids, (std::vector<std::string>{"whole", "three"}));
  EXPECT_EQ(sink.errors, 0);
}

TEST_F(SctpTest, a_missing_fragment_gives_the_message_up_and_frees_its_slot) {
  const auto f = split("gap", 1, 100, 3);
  send(f[0], 1);
  send(f[2], 2);
  EXPECT_EQ(evicted(ChunkEviction::gap), 1u);
  EXPECT_EQ(in_progress(), 0u);
  for (const auto& c : split("next", 2, 200, 2)) send(c, 3);
  EXPECT_EQ(sink.call_ids, std::vector<std::string>{"next"});
  EXPECT_EQ(in_progress(), 0u);
}

TEST_F(SctpTest, expiry_gives_up_only_messages_past_the_timeout) {
  send(split("old", 1, 100, 2)[0], 0);
  send(split("young", 2, 200, 2)[0], 20 * kSecond);
  r.expire(29 * kSecond);
  EXPECT_EQ(in_progress(), 2u);
  r.expire(31 * kSecond);
  EXPECT_EQ(evicted(ChunkEviction::timeout), 1u);
  EXPECT_EQ(in_progress(), 1u);
  r.expire(51 * kSecond);
  EXPECT_EQ(evicted(ChunkEviction::timeout), 2u);
  EXPECT_EQ(in_progress(), 0u);
  r.expire(90 * kSecond);  // nothing left: nothing to give up
  EXPECT_EQ(evicted(ChunkEviction::timeout), 2u);
  EXPECT_TRUE(sink.call_ids.empty());
}

TEST_F(SctpTest, a_full_table_gives_up_the_oldest_and_too_large_messages_are_given_up) {
  const auto a = split("a", 1, 100, 2), b = split("b", 2, 200, 2), c = split("c", 3, 300, 2);
  send(a[0], 1);
  send(b[0], 2);
  send(c[0], 3);  // the table holds 2: "a" goes
  EXPECT_EQ(evicted(ChunkEviction::table_full), 1u);
  EXPECT_EQ(in_progress(), 2u);
  send(b[1], 4);
  send(c[1], 5);
  send(a[1], 6);  // its beginning is gone
  EXPECT_EQ(sink.call_ids, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(in_progress(), 0u);

  send(data_chunk(kB, 400, 4, std::string(4000, 'x')), 7);
  EXPECT_EQ(in_progress(), 1u);
  send(data_chunk(kE, 401, 4, std::string(200, 'x')), 8);
  EXPECT_EQ(evicted(ChunkEviction::too_large), 1u);
  EXPECT_EQ(in_progress(), 0u);
}

}  // namespace
}  // namespace sipex
