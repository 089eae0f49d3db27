// Reading a request head from the client's input without consuming it until it is whole: the
// request-line and head limits (414, 431) are enforced while it arrives, so a client cannot make
// the proxy hold more than limits.max_head_bytes of it, and what parses is handed on. Pure over
// the bytes: no socket, no clock.
#pragma once
#include <event2/buffer.h>

#include <cstddef>
#include <string>

#include "proxy/base/result.h"
#include "proxy/config/config.h"
#include "proxy/http/message.h"
#include "proxy/server/metrics.h"

namespace sekisho::server {

struct HeadScan {
  enum class Kind : uint8_t { NeedMore, TooLarge, Complete };
  Kind kind = Kind::NeedMore;
  int status = 0;                 // TooLarge: 414 or 431
  Reason reason = Reason::None;
  std::string detail;
  size_t headBytes = 0;           // Complete: the bytes of the head (the caller drains them)
};

// Looks at what `in` holds; `scanned` carries how far the search for the head's end got (reset
// it to 0 for each new head).
HeadScan scanRequestHead(evbuffer* in, size_t& scanned, const config::Limits& limits);
// Parses the `headBytes` a Complete scan found at the front of `in` (not drained).
Result<http::RequestHead> parseScannedHead(evbuffer* in, size_t headBytes, const config::Limits& limits);
// The reason a parse error is refused with (the status is http1::statusFor).
Reason reasonForParse(ErrKind k);

}  // namespace sekisho::server
