// Where the stream and chunk stages deliver the SIP messages they frame. Implemented by the
// worker, which attributes and counts them; a message seen in one packet never goes through here.
#pragma once

#include "sipex/decode.hpp"
#include "sipex/sip_parse.hpp"

namespace sipex {

class MessageSink {
 public:
  // One complete message sent from src to dst, completed by a packet captured at ts_ns. `m` views
  // bytes valid only during the call.
  virtual void message(const SipMessage& m, const IpAddr& src, const IpAddr& dst, int64_t ts_ns) = 0;
  // A framed payload that started like SIP but is malformed.
  virtual void parse_error(ParseStatus s) = 0;

 protected:
  ~MessageSink() = default;
};

}  // namespace sipex
