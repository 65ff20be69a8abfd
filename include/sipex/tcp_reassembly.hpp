// TCP stream reassembly and SIP framing, one instance per worker (flows are worker-affine).
// Each direction of a connection is a stream: segments are put in sequence order (retransmitted
// bytes dropped, out-of-order segments held), then SIP messages are framed by Content-Length
// (RFC 3261 18.3): several per segment, or one across many. Keep-alive CRLFs are skipped. A gap
// (bytes never seen) is counted and the stream resynchronises on the next start line. Streams
// that carry TLS are recognised and counted; streams upgraded to WebSocket (RFC 7118) are
// unframed and each WebSocket message is one SIP message.
//
// Bounds: at most `max_streams` streams and `max_bytes` buffered bytes per worker; a message is at
// most `max_message_bytes`. The common case, whole messages in order, copies nothing. Not
// thread-safe: the owning worker is the only caller; stats() may be read from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "sipex/decode.hpp"
#include "sipex/message_sink.hpp"
#include "sipex/packet.hpp"
#include "sipex/sip_scan.hpp"

namespace sipex {

struct TcpLimits {
  uint32_t max_streams = 65536;            // directional streams tracked at once
  uint32_t max_bytes = 64u << 20;          // bytes buffered: partial messages and held segments
  uint32_t max_message_bytes = 65536;      // a longer message cannot be framed: skipped, counted
  uint32_t max_held_segments = 32;         // out-of-order segments held per stream before a gap is declared
  int64_t idle_timeout_ns = 600'000'000'000;  // a stream silent this long is forgotten
};

// Segments by what reassembly did with them: labels of sip_exporter_tcp_segments_total.
enum class SegmentResult : uint8_t { data, retransmission, out_of_order, control };
inline constexpr size_t kSegmentResultCount = 4;
std::string_view segment_result_name(SegmentResult r);

// Stream bytes by what they turned out to be: labels of sip_exporter_stream_bytes_total.
enum class StreamBytes : uint8_t {
  sip,      // framed SIP messages (and keep-alive CRLFs)
  not_sip,  // skipped while looking for a start line: other protocols, junk after a gap
  tls,      // encrypted: the exporter is blind to them
  lost,     // never seen: sequence gaps, and partial messages given up
};
inline constexpr size_t kStreamBytesCount = 4;
std::string_view stream_bytes_name(StreamBytes b);

// Why a stream's pending data was given up: labels of
// sip_exporter_reassembly_evictions_total{kind="tcp"}.
enum class StreamEviction : uint8_t {
  timeout,     // idle longer than idle_timeout_ns
  table_full,  // max_streams reached: the least recently active stream is dropped
  memory,      // max_bytes reached: the least recently active streams lose their buffers
  too_large,   // a message longer than max_message_bytes
  gap,         // held segments exceeded max_held_segments: the missing bytes are declared lost
  closed,      // FIN or RST with a partial message pending
};
inline constexpr size_t kStreamEvictionCount = 6;
std::string_view stream_eviction_name(StreamEviction e);

struct TcpStats {
  Counter segments[kSegmentResultCount];
  Counter bytes[kStreamBytesCount];
  Counter evicted[kStreamEvictionCount];
  Counter tls_streams;        // streams recognised as TLS
  Counter websocket_streams;  // streams upgraded to WebSocket
  std::atomic<uint32_t> streams{0};    // tracked now
  std::atomic<uint32_t> buffered{0};   // bytes held now
};

class TcpReassembler {
 public:
  TcpReassembler(const TcpLimits& limits, MessageSink& sink, const ScanKernel& scan);
  ~TcpReassembler();
  TcpReassembler(const TcpReassembler&) = delete;
  TcpReassembler& operator=(const TcpReassembler&) = delete;

  // One TCP segment (d.ip_protocol == 6) captured at now_ns. Messages it completes go to the sink
  // before this returns.
  void segment(const Decoded& d, int64_t now_ns);
  // Forgets streams idle past the timeout at now_ns (packet time). Cheap when none expired.
  void expire(int64_t now_ns);

  const TcpStats& stats() const { return stats_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  TcpStats stats_;
};

}  // namespace sipex
