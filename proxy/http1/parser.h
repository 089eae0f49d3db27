// HTTP/1.1 head parsing: pure functions over bytes we already hold, no I/O, no allocation beyond
// the returned head. Strict: anything an origin or another intermediary could read differently
// is refused (RFC 9112 §2.2, §3, §5, §6.3, §11).
#pragma once
#include <cstddef>
#include <string_view>

#include "proxy/base/result.h"
#include "proxy/http/message.h"

namespace sekisho::http1 {

struct Limits {
  size_t maxRequestLine = 8192;  // over -> ErrKind::UriTooLong (414)
  size_t maxHeadBytes = 65536;   // whole head incl. request line -> ErrKind::HeadTooLarge (431)
  size_t maxHeaders = 100;       // header field count -> ErrKind::HeadTooLarge (431)
};

// Scans `data` for the end of a head: the empty line after the header fields. A line end is CRLF
// or a bare LF. Returns the offset just past the empty line, or 0 when the head is incomplete.
// `scanFrom` lets a caller resume a scan over a growing buffer (pass the previous data.size()).
size_t findHeadEnd(std::string_view data, size_t scanFrom = 0);

// `head` is exactly the bytes up to and including the empty line (findHeadEnd's result).
// Leading empty lines before the request line are tolerated (RFC 9112 §2.2), at most 4.
Result<http::RequestHead> parseRequestHead(std::string_view head, const Limits& limits);

// Parses an origin's response head. `requestMethod` decides bodies (HEAD, CONNECT 2xx).
Result<http::ResponseHead> parseResponseHead(std::string_view head, const Limits& limits,
                                             std::string_view requestMethod);

// Maps a parse error to the status the client should get (400, 413, 414, 431, 501, 502).
int statusFor(ErrKind kind);

}  // namespace sekisho::http1
