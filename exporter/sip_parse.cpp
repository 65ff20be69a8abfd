// The parser's vocabulary: method and parse-error names. The parser itself is
// exporter/sip_parse_impl.hpp, compiled once per kernel (sip_scan_<isa>.cpp).
#include "sipex/sip_parse.hpp"

namespace sipex {
namespace {

constexpr std::string_view kMethodNames[kMethodCount] = {
    "INVITE", "ACK",   "BYE",   "CANCEL",  "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE",
    "NOTIFY", "UPDATE", "MESSAGE", "REFER", "PUBLISH", "INFO",    "OTHER",
};

constexpr std::string_view kReasons[kParseStatusCount] = {
    "", "", "", "bad_start_line", "bad_version", "bad_status_code", "missing_cseq", "bad_cseq",
    "bad_content_length", "missing_content_length", "truncated_body", "truncated_headers",
};

}  // namespace

std::string_view method_name(Method m) { return kMethodNames[static_cast<size_t>(m)]; }

Method classify_method(std::string_view t) {
  // Dispatch on length, then one comparison: the common methods cost a switch and a memcmp.
  switch (t.size()) {
    case 3:
      if (t == "ACK") return Method::ACK;
      if (t == "BYE") return Method::BYE;
      break;
    case 4: if (t == "INFO") return Method::INFO; break;
    case 5:
      if (t == "PRACK") return Method::PRACK;
      if (t == "REFER") return Method::REFER;
      break;
    case 6:
      if (t == "INVITE") return Method::INVITE;
      if (t == "CANCEL") return Method::CANCEL;
      if (t == "NOTIFY") return Method::NOTIFY;
      if (t == "UPDATE") return Method::UPDATE;
      break;
    case 7:
      if (t == "OPTIONS") return Method::OPTIONS;
      if (t == "MESSAGE") return Method::MESSAGE;
      if (t == "PUBLISH") return Method::PUBLISH;
      break;
    case 8: if (t == "REGISTER") return Method::REGISTER; break;
    case 9: if (t == "SUBSCRIBE") return Method::SUBSCRIBE; break;
    default: break;
  }
  return Method::OTHER;
}

std::string_view parse_status_reason(ParseStatus s) { return kReasons[static_cast<size_t>(s)]; }

}  // namespace sipex
