// Transaction matching, retransmissions, timeouts, latencies and call outcomes (RFC 3261 17).
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "sipex/transactions.hpp"

namespace sipex {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

IpAddr v4(uint8_t last) {
  IpAddr a{};
  a.family = 4;
  a.bytes[0] = 192;
  a.bytes[1] = 0;
  a.bytes[2] = 2;
  a.bytes[3] = last;
  return a;
}

struct Call {
  std::string call_id = "call-1@example.com";
  std::string branch = "z9hG4bKbranch1";
  std::string from_tag = "ftag";
  std::string to_tag;  // empty: an initial INVITE
  int cseq = 1;

  std::string request(const std::string& method, const std::string& branch_override = "") const {
    return method + " sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=" +
           (branch_override.empty() ? branch : branch_override) + "\r\nFrom: <sip:a@x>;tag=" + from_tag +
           "\r\nTo: <sip:b@y>" + (to_tag.empty() ? "" : ";tag=" + to_tag) + "\r\nCall-ID: " + call_id +
           "\r\nCSeq: " + std::to_string(cseq) + " " + (method == "ACK" ? "ACK" : method) + "\r\nContent-Length: 0\r\n\r\n";
  }
  std::string response(int code, const std::string& method, const std::string& totag = "t1",
                       const std::string& extra = "") const {
    return "SIP/2.0 " + std::to_string(code) + " X\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=" + branch +
           "\r\nFrom: <sip:a@x>;tag=" + from_tag + "\r\nTo: <sip:b@y>;tag=" + totag + "\r\nCall-ID: " + call_id +
           "\r\nCSeq: " + std::to_string(cseq) + " " + method + "\r\n" + extra + "Content-Length: 0\r\n\r\n";
  }
};

class TxnTest : public testing::Test {
 protected:
  Config cfg;
  std::unique_ptr<PeerRegistry> reg;
  std::unique_ptr<PeerResolver> peers;
  std::unique_ptr<Shard> shard;
  std::unique_ptr<TransactionTracker> t;

  void SetUp() override { make(); }
  void make() {
    reg = std::make_unique<PeerRegistry>(cfg);
    peers = std::make_unique<PeerResolver>(*reg, cfg);
    shard = std::make_unique<Shard>(cfg.max_series, cfg.max_histograms);
    t = std::make_unique<TransactionTracker>(cfg.transactions, *shard, *peers);
  }
  // Sends text from `from` to `to` at time `at`.
  void send(const std::string& text, uint8_t from, uint8_t to, int64_t at) {
    SipMessage m;
    ASSERT_EQ(static_cast<int>(parse_sip(text.data(), text.size(), Framing::datagram, m)), 0) << text;
    const auto a = peers->attribute(v4(from), v4(to));
    shard->count(m, a);
    t->message(m, a, v4(from), v4(to), at);
  }
  // The caller is .1, the callee .2.
  void up(const std::string& text, int64_t at) { send(text, 1, 2, at); }
  void down(const std::string& text, int64_t at) { send(text, 2, 1, at); }

  // Counter values of a family, by "METHOD CODE" (code 0 omitted) summed over peers.
  std::map<std::string, uint64_t> family(Family f) const {
    std::map<std::string, uint64_t> out;
    shard->series.for_each([&](uint64_t k, uint64_t c) {
      const SeriesFields s = series_fields(k);
      if (s.family != f) return;
      std::string key = f == Family::calls ? std::string(call_outcome_name(static_cast<CallOutcome>(s.code)))
                                           : std::string(method_name(s.method));
      if (f != Family::calls && s.code != 0) key += " " + std::to_string(s.code);
      out[key] += c;
    });
    return out;
  }
  // Observations per (stage) of the latency histogram, as bucket index of each observation.
  std::map<std::string, std::vector<int>> latencies() const {
    std::map<std::string, std::vector<int>> out;
    shard->histograms.for_each([&](uint64_t k, const uint64_t* counts, uint64_t) {
      static const char* kStages[] = {"first_response", "ringing", "final"};
      const std::string name = (k >> 40 & 3) == 0 ? std::string(kStages[k & 3]) + " " +
                                                        std::string(method_name(static_cast<Method>(k >> 10 & 15)))
                                                  : "duration";
      for (size_t b = 0; b <= kMaxBuckets; ++b) {
        for (uint64_t i = 0; i < counts[b]; ++i) out[name].push_back(static_cast<int>(b));
      }
    });
    return out;
  }
  // The bucket index that holds `seconds` in the latency buckets.
  static int bucket(double seconds) {
    int i = 0;
    while (i < static_cast<int>(std::size(kLatencyBuckets)) && seconds > kLatencyBuckets[i]) ++i;
    return i == static_cast<int>(std::size(kLatencyBuckets)) ? static_cast<int>(kMaxBuckets) : i;
  }
};

TEST_F(TxnTest, answered_call_with_latencies_and_duration) {
  Call c;
  up(c.request("INVITE"), 0);
  down(c.response(100, "INVITE"), 5 * kMs);
  down(c.response(180, "INVITE"), 1500 * kMs);  // post-dial delay 1.5 s
  down(c.response(200, "INVITE"), 6 * kS);
  up(c.request("ACK", "z9hG4bKack"), 6 * kS + kMs);
  Call bye = c;
  bye.branch = "z9hG4bKbye";
  bye.cseq = 2;
  bye.to_tag = "t1";
  up(bye.request("BYE"), 66 * kS);
  down(bye.response(200, "BYE"), 66 * kS + 20 * kMs);
  EXPECT_EQ(family(Family::transactions), (std::map<std::string, uint64_t>{{"INVITE 200", 1}, {"BYE 200", 1}}));
  EXPECT_EQ(family(Family::calls), (std::map<std::string, uint64_t>{{"answered", 1}}));
  EXPECT_TRUE(family(Family::request_retransmissions).empty());
  EXPECT_TRUE(family(Family::response_retransmissions).empty());
  const auto lat = latencies();
  EXPECT_EQ(lat.at("first_response INVITE"), std::vector<int>{bucket(0.005)});
  EXPECT_EQ(lat.at("ringing INVITE"), std::vector<int>{bucket(1.5)});
  EXPECT_EQ(lat.at("final INVITE"), std::vector<int>{bucket(6.0)});
  EXPECT_EQ(lat.at("final BYE"), std::vector<int>{bucket(0.020)});
  ASSERT_EQ(lat.at("duration").size(), 1u);  // 60 s from the 200 to the BYE
  EXPECT_EQ(kDurationBuckets[lat.at("duration")[0]], 60);
  EXPECT_EQ(t->stats().dialogs.load(), 0u);
}

TEST_F(TxnTest, retransmitted_503_counts_one_transaction) {
  Call c;
  up(c.request("INVITE"), 0);
  up(c.request("INVITE"), 500 * kMs);   // Timer A
  up(c.request("INVITE"), 1500 * kMs);
  down(c.response(503, "INVITE"), 1600 * kMs);
  up(c.request("ACK"), 1601 * kMs);
  down(c.response(503, "INVITE"), 2100 * kMs);  // the ACK was lost: Timer G
  up(c.request("ACK"), 2101 * kMs);
  down(c.response(503, "INVITE"), 3100 * kMs);
  EXPECT_EQ(family(Family::transactions), (std::map<std::string, uint64_t>{{"INVITE 503", 1}}));
  EXPECT_EQ(family(Family::request_retransmissions), (std::map<std::string, uint64_t>{{"INVITE", 2}, {"ACK", 1}}));
  EXPECT_EQ(family(Family::response_retransmissions), (std::map<std::string, uint64_t>{{"INVITE", 2}}));
  EXPECT_EQ(family(Family::calls), (std::map<std::string, uint64_t>{{"failed", 1}}));
  EXPECT_EQ(latencies().at("final INVITE"), std::vector<int>{bucket(1.6)});  // from the first transmission
}

TEST_F(TxnTest, unanswered_invite_times_out_after_timer_b) {
  Call c;
  up(c.request("INVITE"), 0);
  up(c.request("INVITE"), 500 * kMs);
  t->expire(31 * kS);
  EXPECT_TRUE(family(Family::timeouts).empty());
  t->expire(33 * kS);
  EXPECT_EQ(family(Family::timeouts), (std::map<std::string, uint64_t>{{"INVITE", 1}}));
  EXPECT_EQ(family(Family::calls), (std::map<std::string, uint64_t>{{"failed", 1}}));
  EXPECT_TRUE(family(Family::transactions).empty());
  EXPECT_EQ(t->stats().active.load(), 0u);
}

TEST_F(TxnTest, ringing_invite_waits_for_timer_c_then_counts_no_answer) {
  Call c;
  up(c.request("INVITE"), 0);
  down(c.response(180, "INVITE"), kS);
  t->expire(60 * kS);  // far past Timer B: a ringing phone is not a timeout
  EXPECT_TRUE(family(Family::timeouts).empty());
  t->expire(182 * kS);
  EXPECT_EQ(family(Family::timeouts), (std::map<std::string, uint64_t>{{"INVITE", 1}}));
  EXPECT_EQ(family(Family::calls), (std::map<std::string, uint64_t>{{"no_answer", 1}}));
}

TEST_F(TxnTest, non_invite_times_out_after_timer_f_even_with_a_provisional) {
  Call c;
  up(c.request("OPTIONS"), 0);
  down(c.response(100, "OPTIONS"), kMs);
  t->expire(33 * kS);
  EXPECT_EQ(family(Family::timeouts), (std::map<std::string, uint64_t>{{"OPTIONS", 1}}));
  EXPECT_TRUE(family(Family::calls).empty());
}

TEST_F(TxnTest, cancelled_call) {
  Call c;
  up(c.request("INVITE"), 0);
  down(c.response(180, "INVITE"), kS);
  up(c.request("CANCEL"), 10 * kS);
  up(c.request("CANCEL"), 10 * kS + 500 * kMs);  // retransmitted (Timer E)
  down(c.response(200, "CANCEL"), 10 * kS + 600 * kMs);
  down(c.response(487, "INVITE"), 10 * kS + 610 * kMs);
  up(c.request("ACK"), 10 * kS + 620 * kMs);
  EXPECT_EQ(family(Family::transactions), (std::map<std::string, uint64_t>{{"INVITE 487", 1}, {"CANCEL 200", 1}}));
  EXPECT_EQ(family(Family::request_retransmissions), (std::map<std::string, uint64_t>{{"CANCEL", 1}}));
  EXPECT_EQ(family(Family::calls), (std::map<std::string, uint64_t>{{"cancelled", 1}}));
}

TEST_F(TxnTest, outcomes_of_final_responses) {
  const std::map<int, std::string> cases = {{486, "busy"},      {600, "busy"},     {480, "no_answer"},
                                            {408, "no_answer"}, {404, "rejected"}, {603, "rejected"},
                                            {500, "failed"},    {488, "failed"},   {302, ""},
                                            {401, ""},          {407, ""},         {200, "answered"}};
  int n = 0;
  std::map<std::string, uint64_t> want;
  for (const auto& [code, outcome] : cases) {
    Call c;
    c.call_id = "outcome-" + std::to_string(code);
    c.branch = "z9hG4bK" + std::to_string(code);
    up(c.request("INVITE"), n * kS);
    down(c.response(code, "INVITE"), n * kS + kMs);
    if (!outcome.empty()) ++want[outcome];
    ++n;
  }
  EXPECT_EQ(family(Family::calls), want);
}

TEST_F(TxnTest, reinvite_is_a_transaction_not_a_call) {
  Call c;
  c.to_tag = "t1";
  up(c.request("INVITE"), 0);
  down(c.response(200, "INVITE"), kMs);
  EXPECT_EQ(family(Family::transactions), (std::map<std::string, uint64_t>{{"INVITE 200", 1}}));
  EXPECT_TRUE(family(Family::calls).empty());
}

TEST_F(TxnTest, rfc2543_fallback_without_magic_cookie) {
  Call c;
  c.branch = "oldstyle1";
  up(c.request("REGISTER"), 0);
  up(c.request("REGISTER"), 500 * kMs);
  down(c.response(200, "REGISTER"), 600 * kMs);
  Call next = c;
  next.cseq = 2;  // a new CSeq is a new transaction even with the same branch text
  up(next.request("REGISTER"), kS);
  down(next.response(401, "REGISTER"), kS + kMs);
  EXPECT_EQ(family(Family::transactions), (std::map<std::string, uint64_t>{{"REGISTER 200", 1}, {"REGISTER 401", 1}}));
  EXPECT_EQ(family(Family::request_retransmissions), (std::map<std::string, uint64_t>{{"REGISTER", 1}}));
}

TEST_F(TxnTest, reliable_provisionals_and_forked_answers_are_not_retransmissions) {
  Call c;
  up(c.request("INVITE"), 0);
  down(c.response(183, "INVITE", "t1", "RSeq: 1\r\n"), kMs);
  down(c.response(183, "INVITE", "t1", "RSeq: 2\r\n"), 2 * kMs);  // a new reliable provisional
  down(c.response(183, "INVITE", "t1", "RSeq: 2\r\n"), 502 * kMs);  // its retransmission
  down(c.response(200, "INVITE", "t1"), kS);
  down(c.response(200, "INVITE", "t2"), kS + kMs);  // another fork answers too
  down(c.response(200, "INVITE", "t1"), kS + 500 * kMs);  // the first 2xx again: retransmitted
  EXPECT_EQ(family(Family::response_retransmissions), (std::map<std::string, uint64_t>{{"INVITE", 2}}));
  EXPECT_EQ(family(Family::transactions), (std::map<std::string, uint64_t>{{"INVITE 200", 1}}));
  EXPECT_EQ(family(Family::calls), (std::map<std::string, uint64_t>{{"answered", 1}}));
}

TEST_F(TxnTest, response_without_its_request_belongs_to_the_receiver) {
  Call c;
  down(c.response(200, "OPTIONS"), kMs);  // the capture missed the request sent by .1
  std::string peer;
  shard->series.for_each([&](uint64_t k, uint64_t) {
    const SeriesFields s = series_fields(k);
    if (s.family == Family::transactions) peer = reg->names()[s.peer];
  });
  EXPECT_EQ(peer, "192.0.2.1");
  EXPECT_EQ(family(Family::transactions), (std::map<std::string, uint64_t>{{"OPTIONS 200", 1}}));
  EXPECT_TRUE(latencies().empty());
  t->expire(100 * kS);
  EXPECT_TRUE(family(Family::timeouts).empty());
}

TEST_F(TxnTest, flood_of_unique_transactions_stays_at_the_bound) {
  cfg.transactions.max_transactions = 1000;
  make();
  for (int i = 0; i < 100000; ++i) {
    Call c;
    c.call_id = "flood-" + std::to_string(i);
    c.branch = "z9hG4bKflood" + std::to_string(i);
    up(c.request("INVITE"), i * kMs);
    ASSERT_LE(t->stats().active.load(), 1000u);
  }
  EXPECT_EQ(t->stats().evicted.get(), 99000u);
  // A real transaction in the middle of the flood still completes.
  Call real;
  up(real.request("INVITE"), 100 * kS);
  down(real.response(200, "INVITE"), 100 * kS + kMs);
  EXPECT_EQ(family(Family::transactions), (std::map<std::string, uint64_t>{{"INVITE 200", 1}}));
}

TEST_F(TxnTest, unanswered_dialogs_expire) {
  cfg.transactions.dialog_timeout_ns = 10 * kS;
  make();
  Call c;
  up(c.request("INVITE"), 0);
  down(c.response(200, "INVITE"), kMs);
  EXPECT_EQ(t->stats().dialogs.load(), 1u);
  t->expire(11 * kS);
  EXPECT_EQ(t->stats().dialogs.load(), 0u);
  EXPECT_EQ(t->stats().dialogs_expired.get(), 1u);
}

TEST(CallOutcomeTest, names_and_exclusions) {
  EXPECT_EQ(call_outcome_name(CallOutcome::no_answer), "no_answer");
  EXPECT_FALSE(call_outcome(183).has_value());
  EXPECT_FALSE(call_outcome(301).has_value());
  EXPECT_EQ(call_outcome(299), CallOutcome::answered);
  EXPECT_EQ(call_outcome(699), CallOutcome::failed);
}

}  // namespace
}  // namespace sipex
