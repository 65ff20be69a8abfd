// Transactions and calls (RFC 3261 section 17), one tracker per worker: a request and its
// responses meet in one worker because flows are worker-affine. From every message the tracker
// derives retransmissions, transactions by first final response, timeouts, response latencies
// (first 1xx, 180/183 = post-dial delay, final), call outcomes and answered-call durations, and
// counts them into the worker's shard.
//
// Matching: the top Via branch with the RFC 3261 magic cookie plus the CSeq method (an ACK
// belongs to its INVITE), else the RFC 2543 fallback of Call-ID, CSeq number and method and From
// tag. Identities are 64-bit hashes. Times are packet timestamps, so replays are deterministic.
//
// Bounds: `max_transactions` entries of 56 bytes and `max_dialogs` of 32 bytes per worker, in
// zeroed pages used only as far as filled. Not thread-safe; stats() may be read from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "sipex/aggregate.hpp"
#include "sipex/packet.hpp"
#include "sipex/sip_parse.hpp"

namespace sipex {

// TransactionLimits is defined in config.hpp, with the other limits the configuration sets.


// How an initial INVITE ended (its first final response, a CANCEL, or nothing). Labels of
// sip_calls_total{outcome}, in the order of RFC 6076 / ITU-T E.411 usage.
enum class CallOutcome : uint8_t { answered, busy, no_answer, rejected, cancelled, failed };
inline constexpr size_t kCallOutcomeCount = 6;
std::string_view call_outcome_name(CallOutcome o);
// The outcome a final response gives an initial INVITE: 2xx answered; 486, 600 busy; 408, 480
// no_answer; 487 cancelled; 403, 404, 410, 484, 485, 603, 604, 606, 607, 608 rejected (the called
// party or number); other 4xx-6xx failed. 3xx, 401 and 407 end no call (it continues elsewhere,
// or with credentials): nullopt.
std::optional<CallOutcome> call_outcome(uint16_t code);

struct TransactionStats {
  Counter evicted;                   // transactions dropped because the table was full
  Counter dialogs_evicted_full;      // answered calls dropped because the dialog table was full
  Counter dialogs_expired;           // answered calls without BYE after dialog_timeout
  std::atomic<uint32_t> active{0};   // transactions remembered now
  std::atomic<uint32_t> dialogs{0};  // answered calls awaiting BYE now
};

class TransactionTracker {
 public:
  TransactionTracker(const TransactionLimits& limits, Shard& shard, PeerResolver& peers);
  ~TransactionTracker();
  TransactionTracker(const TransactionTracker&) = delete;
  TransactionTracker& operator=(const TransactionTracker&) = delete;

  // One message from src to dst at ts_ns, already counted as a message under `at`. A response
  // is a retransmission only if its start line and headers (m.head) repeat an earlier one's.
  // `hint` is hint(m) if the caller has it (it spares hashing the key again), else 0.
  void message(const SipMessage& m, PeerResolver::Attribution at, const IpAddr& src, const IpAddr& dst,
               int64_t ts_ns, uint64_t hint = 0);
  // Ends what has timed out by ts_ns: unanswered requests are counted as timeouts.
  void expire(int64_t ts_ns);
  // Cache hints for a message(m, ...) to come, so that a worker can overlap the lookups of
  // several messages: hint(m) once (0: no hint), then prefetch(hint, 0) for the index slot and,
  // some time later, prefetch(hint, 1) for the transaction it leads to. No effect on any result;
  // the owning thread only.
  static uint64_t hint(const SipMessage& m);
  void prefetch(uint64_t hint, int stage) const;

  const TransactionStats& stats() const { return stats_; }
  // Memory one remembered transaction costs: its entry plus its share of the hash index.
  static size_t bytes_per_transaction();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  TransactionStats stats_;
};

}  // namespace sipex
