// SIP message parser in the picohttpparser spirit: keeps no state between calls, never allocates,
// returns views into the caller's buffer and a status saying exactly what happened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sipex/sip_scan.hpp"

namespace sipex {

// The 14 methods of RFCs 3261, 3262, 3265, 3311, 3428, 3515, 3903 and 6086 (case-sensitive), and
// OTHER for any other token (DESIGN section 5).
enum class Method : uint8_t {
  INVITE, ACK, BYE, CANCEL, REGISTER, OPTIONS, PRACK, SUBSCRIBE, NOTIFY, UPDATE, MESSAGE, REFER,
  PUBLISH, INFO, OTHER,
};
inline constexpr size_t kMethodCount = 15;
std::string_view method_name(Method m);
// Exact, case-sensitive match against the 14 names; anything else is OTHER.
Method classify_method(std::string_view token);

// Outcome of parse_sip(). Values after `incomplete` are malformed SIP: they are counted under
// sip_exporter_parse_errors_total with the reason parse_status_reason() names.
enum class ParseStatus : uint8_t {
  ok,
  not_sip,             // the payload does not start with a SIP start line (RTP, HTTP, junk)
  incomplete,          // stream framing only: more bytes are needed
  bad_start_line,      // starts like SIP (a known method or "SIP/") but the start line is malformed
  bad_version,         // a start line whose protocol is SIP/x.y other than SIP/2.0
  bad_status_code,     // status code not exactly three digits in 100..699
  missing_cseq,        // a response without a CSeq header: its method is unknown
  bad_cseq,            // a response whose CSeq has no valid method token
  bad_content_length,  // Content-Length not a decimal number, or absurdly large
  missing_content_length,  // stream framing only: no Content-Length, so the message cannot be framed
  truncated_body,      // datagram framing: fewer body bytes than Content-Length (RFC 3261 18.3)
  truncated_headers,   // datagram framing: the datagram ends inside a line (every line ends in
                       // CRLF, RFC 3261 7), so the message was cut
};
inline constexpr size_t kParseStatusCount = 12;
// The label value for a malformed status ("bad_start_line", ...); "" for ok/not_sip/incomplete.
std::string_view parse_status_reason(ParseStatus s);
inline bool is_parse_error(ParseStatus s) { return s > ParseStatus::incomplete; }

// How the message boundary is found.
//  datagram: the buffer is one UDP datagram (or SCTP chunk): its end closes the header section if
//            no empty line does, provided it falls right after a line end (RFC 4475 baddn); a
//            datagram ending inside a line is truncated_headers; a missing Content-Length means
//            the body runs to the end; bytes after Content-Length are discarded (RFC 3261 18.3);
//            a short body is truncated_body.
//  stream:   the buffer is the front of a TCP stream: the header section must end with an empty
//            line and Content-Length is required; otherwise incomplete / missing_content_length.
enum class Framing : uint8_t { datagram, stream };

// Views into the parsed buffer; valid as long as that buffer. Empty views mean "absent".
struct SipMessage {
  bool is_request = false;
  Method method = Method::OTHER;      // request: request-line method; response: CSeq method
  std::string_view method_token;      // as on the wire (request line, or CSeq for a response)
  std::string_view request_uri;       // requests only
  uint16_t status_code = 0;           // responses only: 100..699
  std::string_view reason;            // responses only; may be empty
  bool has_cseq = false;
  bool cseq_number_valid = false;     // false when absent or > 2^31-1 (RFC 3261 8.1.1.5)
  uint32_t cseq_number = 0;
  Method cseq_method = Method::OTHER;
  std::string_view cseq_method_token;
  std::string_view call_id;
  std::string_view via_branch;        // branch parameter of the first value of the top Via
  // The From and To header values as on the wire: from after the colon to the line end, with any
  // continuation lines (first occurrence). Their tags are read on demand, by header_tag(): most
  // messages never need them (transactions are keyed by the Via branch).
  std::string_view from;
  std::string_view to;
  int64_t content_length = -1;        // -1 when absent
  std::string_view head;              // the start line and header section (up to the body)
  uint32_t header_length = 0;         // offset of the body
  uint32_t message_length = 0;        // bytes this message occupies in the buffer
};

// Parses the message at the front of buf[0, len). On ok, `out` is filled and out.message_length
// bytes belong to it. On incomplete with out.header_length != 0 (stream framing), the header
// section is complete, `out` is filled, and out.message_length is the length the message will
// have once its body arrives. On any other status, `out` is unspecified. Reads no byte outside
// buf[0, len); len must be below 2^32. `kernel` is the instruction set's build of the parser
// (sip_scan.hpp; default: active_kernel()); every kernel gives the same answer.
inline ParseStatus parse_sip(const char* buf, size_t len, Framing framing, SipMessage& out, const ScanKernel& kernel) {
  return kernel.parse(buf, len, framing, out);
}
inline ParseStatus parse_sip(const char* buf, size_t len, Framing framing, SipMessage& out) {
  return parse_sip(buf, len, framing, out, active_kernel());
}

// The tag parameter of a From or To header value (SipMessage::from / to): the first ';' outside a
// quoted display name and outside <...> starts the header parameters, whose names compare
// case-insensitively, with white space allowed around ';' and '=' (RFC 3261 20.10, 25.1). "" when
// there is none. A view into `value`. Pure: any thread.
std::string_view header_tag(std::string_view value);

}  // namespace sipex
