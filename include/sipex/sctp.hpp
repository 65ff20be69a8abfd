// SIP over SCTP (RFC 4168): every SCTP user message is one SIP message. DATA and I-DATA chunks
// carrying a whole message (B and E flags) are parsed in place; a message fragmented over several
// chunks is reassembled in a small bounded table. One instance per worker; not thread-safe;
// stats() may be read from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "sipex/decode.hpp"
#include "sipex/message_sink.hpp"
#include "sipex/packet.hpp"
#include "sipex/sip_scan.hpp"

namespace sipex {

struct SctpLimits {
  uint32_t max_messages = 256;            // fragmented messages in progress at once
  uint32_t max_message_bytes = 65536;     // a longer message is given up
  int64_t timeout_ns = 30'000'000'000;    // a fragmented message not completed this long is given up
};

// Why a fragmented message was given up: labels of
// sip_exporter_reassembly_evictions_total{kind="sctp"}.
enum class ChunkEviction : uint8_t { timeout, table_full, too_large, gap };
inline constexpr size_t kChunkEvictionCount = 4;
std::string_view chunk_eviction_name(ChunkEviction e);

struct SctpStats {
  Counter packets;       // SCTP packets seen
  Counter data_chunks;   // DATA and I-DATA chunks
  Counter messages;      // user messages complete (whole chunks and reassembled ones)
  Counter evicted[kChunkEvictionCount];
  std::atomic<uint32_t> in_progress{0};
};

class SctpReassembler {
 public:
  SctpReassembler(const SctpLimits& limits, MessageSink& sink, const ScanKernel& scan);
  ~SctpReassembler();
  SctpReassembler(const SctpReassembler&) = delete;
  SctpReassembler& operator=(const SctpReassembler&) = delete;

  // One SCTP packet (d.ip_protocol == 132; d.payload holds the chunks after the common header).
  void packet(const Decoded& d, int64_t now_ns);
  // Gives up fragmented messages older than the timeout at now_ns.
  void expire(int64_t now_ns);

  const SctpStats& stats() const { return stats_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  SctpStats stats_;
};

}  // namespace sipex
