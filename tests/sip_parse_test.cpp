// The parser's case table, run once per supported scan kernel, every input placed against an
// inaccessible page (an over-read crashes the test).
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "kernels.hpp"
#include "sipex/sip_parse.hpp"

namespace sipex {
namespace {

struct Case {
  const char* name;
  std::string input;
  ParseStatus status;
  Framing framing = Framing::datagram;
  std::optional<bool> is_request{};
  std::optional<Method> method{};
  std::optional<std::string> method_token{};
  std::optional<int> code{};
  std::optional<std::string> reason{};
  std::optional<std::string> uri{};
  std::optional<std::string> call_id{};
  std::optional<int64_t> cseq_number{};  // -1: present but invalid (overflow)
  std::optional<Method> cseq_method{};
  std::optional<std::string> branch{};
  std::optional<std::string> from_tag{};
  std::optional<std::string> to_tag{};
  std::optional<int64_t> content_length{};
  std::optional<size_t> message_length{};  // bytes the message occupies
};

const std::string kSdp =
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

std::string invite_with_sdp() {
  return "INVITE sip:bob@example.com SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
         "Max-Forwards: 70\r\n"
         "To: Bob <sip:bob@example.com>\r\n"
         "From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
         "Call-ID: a84b4c76e66710@pc33.example.com\r\n"
         "CSeq: 314159 INVITE\r\n"
         "Contact: <sip:alice@192.0.2.1>\r\n"
         "Content-Type: application/sdp\r\n"
         "Content-Length: " + std::to_string(kSdp.size()) + "\r\n\r\n" + kSdp;
}

std::string long_request() {
  std::string s = "OPTIONS sip:x@example.com SIP/2.0\r\n";
  for (int i = 0; i < 70; ++i) s += "Via: SIP/2.0/UDP host" + std::to_string(i) + ";branch=z9hG4bK" + std::to_string(i) + "\r\n";
  s += "Call-ID: late-call-id\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n";
  return s;
}

const Case kCases[] = {
    {.name = "invite_with_sdp", .input = invite_with_sdp(), .status = ParseStatus::ok, .is_request = true,
     .method = Method::INVITE, .method_token = "INVITE", .uri = "sip:bob@example.com",
     .call_id = "a84b4c76e66710@pc33.example.com", .cseq_number = 314159, .cseq_method = Method::INVITE,
     .branch = "z9hG4bK776asdhds", .from_tag = "1928301774", .to_tag = "",
     .content_length = static_cast<int64_t>(kSdp.size()), .message_length = invite_with_sdp().size()},
    {.name = "response_200", .input = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n"
                                      "From: <sip:a@h>;tag=f1\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\n"
                                      "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
     .status = ParseStatus::ok, .is_request = false, .method = Method::BYE, .method_token = "BYE", .code = 200,
     .reason = "OK", .call_id = "c1", .cseq_number = 2, .branch = "z9hG4bKa", .from_tag = "f1", .to_tag = "t1",
     .content_length = 0},
    {.name = "compact_forms", .input = "SIP/2.0 486 Busy Here\r\nv: SIP/2.0/UDP h;branch=z9hG4bKc\r\n"
                                       "f: <sip:a@h>;tag=ff\r\nt: <sip:b@h>;tag=tt\r\ni: compact-id\r\n"
                                       "CSeq: 5 INVITE\r\nl: 0\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::INVITE, .code = 486, .call_id = "compact-id",
     .branch = "z9hG4bKc", .from_tag = "ff", .to_tag = "tt", .content_length = 0},
    {.name = "upper_compact_forms", .input = "SIP/2.0 180 Ringing\r\nV: SIP/2.0/UDP h;branch=z9hG4bKu\r\n"
                                             "F: <sip:a@h>;tag=UF\r\nT: <sip:b@h>\r\nI: UPPER\r\ncseq: 5 INVITE\r\nL: 0\r\n\r\n",
     .status = ParseStatus::ok, .code = 180, .call_id = "UPPER", .branch = "z9hG4bKu", .from_tag = "UF", .to_tag = ""},
    {.name = "mixed_case_names", .input = "SIP/2.0 503 Service Unavailable\r\nvIa: SIP/2.0/UDP h;BRANCH=z9hG4bKm\r\n"
                                          "cAlL-iD: mixed\r\nCSEQ: 77 OPTIONS\r\nCONTENT-LENGTH: 0\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::OPTIONS, .code = 503, .call_id = "mixed", .cseq_number = 77,
     .branch = "z9hG4bKm", .content_length = 0},
    {.name = "lws_before_colon", .input = "BYE sip:b@h SIP/2.0\r\nCall-ID   :   spaced-id  \r\nCSeq\t:\t3 BYE\r\n"
                                          "Content-Length   : 0\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::BYE, .call_id = "spaced-id", .cseq_number = 3,
     .cseq_method = Method::BYE, .content_length = 0},
    {.name = "folded_cseq_method_on_continuation", .input = "SIP/2.0 200 OK\r\ncseq: 0009\r\n  INVITE\r\nCall-ID: f\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::INVITE, .code = 200, .cseq_number = 9},
    {.name = "folded_via_branch", .input = "ACK sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\t;branch=z9hG4bKfold\r\nCSeq: 1 ACK\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::ACK, .branch = "z9hG4bKfold"},
    {.name = "bare_lf_line_ends", .input = "REGISTER sip:h SIP/2.0\nCall-ID: lf\nCSeq: 1 REGISTER\nContent-Length: 4\n\nbody",
     .status = ParseStatus::ok, .method = Method::REGISTER, .call_id = "lf", .content_length = 4, .message_length = 75},
    {.name = "datagram_without_empty_line", .input = "OPTIONS sip:h SIP/2.0\r\nCall-ID: noend\r\nl: 0\r\n",
     .status = ParseStatus::ok, .method = Method::OPTIONS, .call_id = "noend", .content_length = 0},
    // A datagram cut inside a line was truncated (tshark calls such a frame malformed and does not
    // count it either: seladb sip_reqs.pcap frame 4 ends in "Content-Lengt").
    {.name = "datagram_cut_inside_header_line", .input = "BYE sip:h SIP/2.0\r\nCall-ID: x\r\nContent-Lengt",
     .status = ParseStatus::truncated_headers},
    {.name = "datagram_cut_after_header_value", .input = "OPTIONS sip:h SIP/2.0\r\nCall-ID: lastline",
     .status = ParseStatus::truncated_headers},
    {.name = "datagram_cut_inside_start_line", .input = "OPTIONS sip:h SIP/2.0", .status = ParseStatus::truncated_headers},
    {.name = "start_line_only_datagram", .input = "OPTIONS sip:h SIP/2.0\r\n", .status = ParseStatus::ok,
     .method = Method::OPTIONS, .uri = "sip:h"},
    {.name = "trailing_bytes_after_body_discarded", .input = "MESSAGE sip:h SIP/2.0\r\nContent-Length: 2\r\n\r\nhiJUNKJUNK",
     .status = ParseStatus::ok, .method = Method::MESSAGE, .content_length = 2, .message_length = 46},  // 8 bytes dropped
    {.name = "no_content_length_body_is_rest", .input = "INFO sip:h SIP/2.0\r\nCSeq: 1 INFO\r\n\r\nabc",
     .status = ParseStatus::ok, .method = Method::INFO, .content_length = -1, .message_length = 39},  // all of it
    {.name = "body_shorter_than_content_length", .input = "INVITE sip:h SIP/2.0\r\nContent-Length: 9999\r\n\r\nshort",
     .status = ParseStatus::truncated_body},
    {.name = "status_code_overlarge", .input = "SIP/2.0 4294967301 Big\r\nCSeq: 1 INVITE\r\n\r\n",
     .status = ParseStatus::bad_status_code},
    {.name = "status_code_two_digits", .input = "SIP/2.0 20 OK\r\nCSeq: 1 INVITE\r\n\r\n", .status = ParseStatus::bad_status_code},
    {.name = "status_code_700", .input = "SIP/2.0 700 X\r\nCSeq: 1 INVITE\r\n\r\n", .status = ParseStatus::bad_status_code},
    {.name = "status_code_099", .input = "SIP/2.0 099 X\r\nCSeq: 1 INVITE\r\n\r\n", .status = ParseStatus::bad_status_code},
    {.name = "status_code_letters", .input = "SIP/2.0 2x0 X\r\nCSeq: 1 INVITE\r\n\r\n", .status = ParseStatus::bad_status_code},
    {.name = "status_without_reason", .input = "SIP/2.0 100 \r\nCSeq: 1 INVITE\r\n\r\n", .status = ParseStatus::ok,
     .code = 100, .reason = ""},
    {.name = "status_without_space_or_reason", .input = "SIP/2.0 100\r\nCSeq: 1 INVITE\r\n\r\n", .status = ParseStatus::ok,
     .code = 100, .reason = ""},
    {.name = "status_code_699", .input = "SIP/2.0 699 Whatever\r\nCSeq: 1 X-FOO\r\n\r\n", .status = ParseStatus::ok,
     .method = Method::OTHER, .method_token = "X-FOO", .code = 699},
    // RFC 3261 7.1: the version string is case-insensitive (senders must use upper case).
    {.name = "lower_case_version_response", .input = "sip/2.0 200 OK\r\nCSeq: 1 BYE\r\n\r\n", .status = ParseStatus::ok,
     .method = Method::BYE, .code = 200},
    {.name = "lower_case_version_request", .input = "OPTIONS sip:a@b Sip/2.0\r\n\r\n", .status = ParseStatus::ok,
     .method = Method::OPTIONS},
    {.name = "stream_lower_case_response_prefix", .input = "sip/2", .status = ParseStatus::incomplete,
     .framing = Framing::stream},
    {.name = "response_version_3", .input = "SIP/3.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n", .status = ParseStatus::bad_version},
    {.name = "request_version_7", .input = "OPTIONS sip:h SIP/7.0\r\nCSeq: 1 OPTIONS\r\n\r\n", .status = ParseStatus::bad_version},
    {.name = "request_version_garbage", .input = "OPTIONS sip:h SIP/2.0x\r\n\r\n", .status = ParseStatus::bad_start_line},
    {.name = "response_prefix_garbage", .input = "SIP/junk\r\n\r\n", .status = ParseStatus::bad_start_line},
    {.name = "known_method_without_version", .input = "INVITE sip:alan@jasomi.com\r\nCSeq: 1 INVITE\r\n\r\n",
     .status = ParseStatus::bad_start_line},
    {.name = "known_method_without_uri", .input = "INVITE SIP/2.0\r\n\r\n", .status = ParseStatus::bad_start_line},
    {.name = "rtp_is_not_sip", .input = std::string("\x80\x08\x12\x34\x00\x00\x00\xa0\x11\x22\x33\x44", 12),
     .status = ParseStatus::not_sip},
    {.name = "http_request_is_not_sip", .input = "GET / HTTP/1.1\r\nHost: x\r\n\r\n", .status = ParseStatus::not_sip},
    {.name = "http_response_is_not_sip", .input = "HTTP/1.1 200 OK\r\n\r\n", .status = ParseStatus::not_sip},
    {.name = "keepalive_crlf_is_not_sip", .input = "\r\n\r\n", .status = ParseStatus::not_sip},
    {.name = "empty_is_not_sip", .input = "", .status = ParseStatus::not_sip},
    {.name = "response_without_cseq", .input = "SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n", .status = ParseStatus::missing_cseq},
    {.name = "response_with_bad_cseq", .input = "SIP/2.0 200 OK\r\nCSeq: INVITE\r\n\r\n", .status = ParseStatus::bad_cseq},
    {.name = "response_cseq_without_method", .input = "SIP/2.0 200 OK\r\nCSeq: 12\r\n\r\n", .status = ParseStatus::bad_cseq},
    {.name = "request_without_cseq_counts", .input = "INVITE sip:h SIP/2.0\r\nCall-ID: x\r\n\r\n", .status = ParseStatus::ok,
     .method = Method::INVITE},
    {.name = "negative_content_length", .input = "INVITE sip:h SIP/2.0\r\nContent-Length: -999\r\n\r\n",
     .status = ParseStatus::bad_content_length},
    {.name = "content_length_with_letters", .input = "INVITE sip:h SIP/2.0\r\nContent-Length: 12abc\r\n\r\n",
     .status = ParseStatus::bad_content_length},
    {.name = "content_length_overlarge", .input = "INVITE sip:h SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n",
     .status = ParseStatus::bad_content_length},
    {.name = "content_length_leading_zeros", .input = "OPTIONS sip:h SIP/2.0\r\nContent-Length: 000000000002\r\n\r\nab",
     .status = ParseStatus::ok, .content_length = 2},
    {.name = "content_length_2_31", .input = "INVITE sip:h SIP/2.0\r\nContent-Length: 2147483648\r\n\r\n",
     .status = ParseStatus::bad_content_length},
    {.name = "content_length_empty", .input = "INVITE sip:h SIP/2.0\r\nContent-Length: \r\n\r\n",
     .status = ParseStatus::bad_content_length},
    {.name = "first_content_length_wins", .input = "OPTIONS sip:h SIP/2.0\r\nContent-Length: 1\r\nl: 5\r\n\r\nabcde",
     .status = ParseStatus::ok, .content_length = 1},
    {.name = "cseq_number_overflow_keeps_method", .input = "SIP/2.0 503 X\r\nCSeq: 9292394834772304023312 OPTIONS\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::OPTIONS, .code = 503, .cseq_number = -1},
    {.name = "cseq_number_2_31_invalid", .input = "SIP/2.0 200 X\r\nCSeq: 2147483648 BYE\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::BYE, .cseq_number = -1},
    {.name = "cseq_number_max_valid", .input = "SIP/2.0 200 X\r\nCSeq: 2147483647 BYE\r\n\r\n",
     .status = ParseStatus::ok, .cseq_number = 2147483647},
    {.name = "first_cseq_wins", .input = "SIP/2.0 200 X\r\nCSeq: 5 INVITE\r\nCSeq: 59 BYE\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::INVITE, .cseq_number = 5},
    {.name = "unknown_method_is_other", .input = "NEWMETHOD sip:h SIP/2.0\r\nCSeq: 8 INVITE\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::OTHER, .method_token = "NEWMETHOD", .cseq_method = Method::INVITE},
    {.name = "methods_are_case_sensitive", .input = "invite sip:h SIP/2.0\r\n\r\n", .status = ParseStatus::ok,
     .method = Method::OTHER, .method_token = "invite"},
    {.name = "exotic_token_method", .input = "!interesting-Method0123456789_*+`.%indeed'~ sip:h SIP/2.0\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::OTHER},
    {.name = "request_method_not_cseq_method", .input = "OPTIONS sip:h SIP/2.0\r\nCSeq: 8 INVITE\r\n\r\n",
     .status = ParseStatus::ok, .method = Method::OPTIONS, .cseq_method = Method::INVITE},
    {.name = "extra_spaces_in_request_line", .input = "INVITE  sip:h  SIP/2.0\r\n\r\n", .status = ParseStatus::ok,
     .method = Method::INVITE, .uri = "sip:h"},
    {.name = "trailing_spaces_after_version", .input = "OPTIONS sip:h SIP/2.0  \r\n\r\n", .status = ParseStatus::ok,
     .method = Method::OPTIONS, .uri = "sip:h"},
    {.name = "lws_inside_request_uri", .input = "INVITE sip:user@h; lr=on SIP/2.0\r\n\r\n", .status = ParseStatus::ok,
     .method = Method::INVITE, .uri = "sip:user@h; lr=on"},
    {.name = "from_tag_addr_spec_form", .input = "BYE sip:h SIP/2.0\r\nFrom: sip:a@h;tag=addrspec\r\n\r\n",
     .status = ParseStatus::ok, .from_tag = "addrspec"},
    {.name = "from_tag_not_inside_uri", .input = "BYE sip:h SIP/2.0\r\nFrom: <sip:a@h;tag=inuri>;tag=outside\r\n\r\n",
     .status = ParseStatus::ok, .from_tag = "outside"},
    {.name = "from_tag_not_inside_quoted_name",
     .input = "BYE sip:h SIP/2.0\r\nFrom: \"x;tag=quoted \\\" <y>\" <sip:a@h>;tag=real\r\n\r\n",
     .status = ParseStatus::ok, .from_tag = "real"},
    // An unterminated quoted display name ends with its line (RFC 3261 25.1: no bare CR/LF in
    // qdtext): the tag is not taken from a later header or the body (a fuzzer finding).
    {.name = "to_tag_not_from_body_after_unterminated_quote",
     .input = "INVITE sip:b@x SIP/2.0\r\nTo: \"Bob <sip:b@x>\r\nFrom: <sip:a@x>;tag=1\r\nContent-Length: 10\r\n\r\n"
              "x\" ;tag=no",
     .status = ParseStatus::ok, .from_tag = "1", .to_tag = ""},
    {.name = "quoted_name_folded_across_lines",
     .input = "BYE sip:h SIP/2.0\r\nTo: \"a;tag=in\r\n b\" <sip:b@h>;tag=folded\r\n\r\n",
     .status = ParseStatus::ok, .to_tag = "folded"},
    {.name = "from_tag_spaces_around_equal", .input = "BYE sip:h SIP/2.0\r\nf: <sip:a@h> ; TAG = spaced\r\n\r\n",
     .status = ParseStatus::ok, .from_tag = "spaced"},
    {.name = "to_without_tag", .input = "INVITE sip:h SIP/2.0\r\nTo: <sip:b@h>;other=1\r\n\r\n", .status = ParseStatus::ok,
     .to_tag = ""},
    {.name = "top_via_first_value_only", .input = "INVITE sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a;rport, SIP/2.0/UDP b;branch=z9hG4bKsecond\r\n"
                                                 "Via: SIP/2.0/UDP c;branch=z9hG4bKthird\r\n\r\n",
     .status = ParseStatus::ok, .branch = ""},
    {.name = "top_via_header_wins", .input = "INVITE sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKtop\r\n"
                                            "Via: SIP/2.0/UDP c;branch=z9hG4bKlower\r\n\r\n",
     .status = ParseStatus::ok, .branch = "z9hG4bKtop"},
    {.name = "branch_not_confused_with_prefix", .input = "INVITE sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a;xbranch=no;branch=yes\r\n\r\n",
     .status = ParseStatus::ok, .branch = "yes"},
    {.name = "headers_needing_several_kernel_calls", .input = long_request(), .status = ParseStatus::ok,
     .method = Method::OPTIONS, .call_id = "late-call-id", .cseq_number = 7, .branch = "z9hG4bK0", .content_length = 0},
    {.name = "header_like_names_are_not_headers", .input = "INVITE sip:h SIP/2.0\r\nCall-Info: <x>\r\nContent-Type: a/b\r\n"
                                                          "Via-X: nope\r\nToken: t\r\nCall-ID: real\r\n\r\n",
     .status = ParseStatus::ok, .call_id = "real", .branch = ""},
    // Stream framing (TCP): the header section must end and Content-Length must frame the body.
    {.name = "stream_complete", .input = "BYE sip:h SIP/2.0\r\nCSeq: 1 BYE\r\nContent-Length: 3\r\n\r\nabcNEXT",
     .status = ParseStatus::ok, .framing = Framing::stream, .method = Method::BYE, .message_length = 56},  // not NEXT
    {.name = "stream_headers_incomplete", .input = "BYE sip:h SIP/2.0\r\nCSeq: 1 BYE\r\n", .status = ParseStatus::incomplete,
     .framing = Framing::stream},
    {.name = "stream_body_incomplete", .input = "BYE sip:h SIP/2.0\r\nContent-Length: 10\r\n\r\nabc",
     .status = ParseStatus::incomplete, .framing = Framing::stream},
    {.name = "stream_start_line_incomplete", .input = "INVI", .status = ParseStatus::incomplete, .framing = Framing::stream},
    {.name = "stream_response_prefix_incomplete", .input = "SIP/2.", .status = ParseStatus::incomplete,
     .framing = Framing::stream},
    {.name = "stream_without_content_length", .input = "BYE sip:h SIP/2.0\r\nCSeq: 1 BYE\r\n\r\n",
     .status = ParseStatus::missing_content_length, .framing = Framing::stream},
    {.name = "stream_binary_is_not_sip", .input = std::string("\x16\x03\x01\x02\x00", 5), .status = ParseStatus::not_sip,
     .framing = Framing::stream},
    // Header names compare letters case-insensitively and nothing else exactly: "Call\rID" and
    // "Content\rLength" are other headers (OR-ing 0x20 into a CR would make it a '-').
    {.name = "names_match_their_non_letters_exactly",
     .input = "BYE sip:h SIP/2.0\r\nCall\rID: wrong\r\nContent\rLength: 99\r\n"
              "Call-ID: right\r\nCSeq: 1 BYE\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKright\r\nContent-Length: 0\r\n\r\n",
     .status = ParseStatus::ok, .call_id = "right", .branch = "z9hG4bKright", .content_length = 0},
};

class ParseTest : public testing::TestWithParam<const ScanKernel*> {};

void check(const Case& c, const ScanKernel& scan) {
  SCOPED_TRACE(c.name);
  test::GuardedBuffer buf(c.input);
  SipMessage m;
  const ParseStatus st = parse_sip(buf.data(), buf.size(), c.framing, m, scan);
  ASSERT_EQ(static_cast<int>(st), static_cast<int>(c.status)) << parse_status_reason(st);
  if (st != ParseStatus::ok) return;
  if (c.is_request) EXPECT_EQ(m.is_request, *c.is_request);
  if (c.method) EXPECT_EQ(method_name(m.method), method_name(*c.method));
  if (c.method_token) EXPECT_EQ(m.method_token, *c.method_token);
  if (c.code) EXPECT_EQ(m.status_code, *c.code);
  if (c.reason) EXPECT_EQ(m.reason, *c.reason);
  if (c.uri) EXPECT_EQ(m.request_uri, *c.uri);
  if (c.call_id) EXPECT_EQ(m.call_id, *c.call_id);
  if (c.cseq_number) {
    EXPECT_TRUE(m.has_cseq);
    if (*c.cseq_number < 0) {
      EXPECT_FALSE(m.cseq_number_valid);
    } else {
      EXPECT_TRUE(m.cseq_number_valid);
      EXPECT_EQ(m.cseq_number, static_cast<uint32_t>(*c.cseq_number));
    }
  }
  if (c.cseq_method) EXPECT_EQ(method_name(m.cseq_method), method_name(*c.cseq_method));
  if (c.branch) EXPECT_EQ(m.via_branch, *c.branch);
  if (c.from_tag) EXPECT_EQ(header_tag(m.from), *c.from_tag);
  if (c.to_tag) EXPECT_EQ(header_tag(m.to), *c.to_tag);
  if (c.content_length) EXPECT_EQ(m.content_length, *c.content_length);
  if (c.message_length) {
    EXPECT_EQ(m.message_length, *c.message_length);
  } else {
    EXPECT_LE(m.message_length, c.input.size());
  }
}

TEST_P(ParseTest, case_table) {
  for (const Case& c : kCases) check(c, *GetParam());
}

// Every proper prefix of a well-formed message is `incomplete` on a stream, and never crashes or
// over-reads as a datagram (picohttpparser's test discipline).
TEST_P(ParseTest, every_prefix_is_incomplete_on_a_stream) {
  const std::string msg = invite_with_sdp();
  for (size_t n = 1; n < msg.size(); ++n) {
    test::GuardedBuffer buf(std::string_view(msg).substr(0, n));
    SipMessage m;
    ASSERT_EQ(static_cast<int>(parse_sip(buf.data(), n, Framing::stream, m, *GetParam())),
              static_cast<int>(ParseStatus::incomplete))
        << "prefix length " << n;
    (void)parse_sip(buf.data(), n, Framing::datagram, m, *GetParam());
  }
  test::GuardedBuffer whole(msg);
  SipMessage m;
  ASSERT_EQ(static_cast<int>(parse_sip(whole.data(), msg.size(), Framing::stream, m, *GetParam())),
            static_cast<int>(ParseStatus::ok));
  EXPECT_EQ(m.message_length, msg.size());
}

// Two messages in one stream buffer: the first is framed by its Content-Length.
TEST_P(ParseTest, stream_frames_back_to_back_messages) {
  const std::string one = invite_with_sdp();
  const std::string two = "SIP/2.0 100 Trying\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n";
  const std::string both = one + two;
  SipMessage m;
  ASSERT_EQ(static_cast<int>(parse_sip(both.data(), both.size(), Framing::stream, m, *GetParam())),
            static_cast<int>(ParseStatus::ok));
  ASSERT_EQ(m.message_length, one.size());
  ASSERT_EQ(static_cast<int>(parse_sip(both.data() + one.size(), two.size(), Framing::stream, m,
                                       *GetParam())),
            static_cast<int>(ParseStatus::ok));
  EXPECT_EQ(m.status_code, 100);
  EXPECT_EQ(m.message_length, two.size());
}

INSTANTIATE_TEST_SUITE_P(Kernels, ParseTest, testing::ValuesIn(test::supported_kernels()), test::kernel_param_name);

TEST(MethodTest, the_fourteen_methods_round_trip) {
  for (size_t i = 0; i + 1 < kMethodCount; ++i) {
    const auto m = static_cast<Method>(i);
    EXPECT_EQ(classify_method(method_name(m)), m) << method_name(m);
  }
  EXPECT_EQ(classify_method("OTHER"), Method::OTHER);
  EXPECT_EQ(classify_method("INVITEX"), Method::OTHER);
  EXPECT_EQ(classify_method("Invite"), Method::OTHER);
  EXPECT_EQ(classify_method(""), Method::OTHER);
}

}  // namespace
}  // namespace sipex
