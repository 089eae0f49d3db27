#include "proxy/server/head_reader.h"

#include <algorithm>

#include "proxy/http1/parser.h"

namespace sekisho::server {

HeadScan scanRequestHead(evbuffer* in, size_t& scanned, const config::Limits& limits) {
  HeadScan s;
  size_t len = evbuffer_get_length(in);
  size_t limit = limits.maxHeadBytes;
  size_t n = std::min(len, limit);
  auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, ssize_t(n)));
  std::string_view data(p, n);
  size_t end = http1::findHeadEnd(data, scanned);
  if (end != 0) {
    s.kind = HeadScan::Kind::Complete;
    s.headBytes = end;
    return s;
  }
  scanned = n;
  size_t lineEnd = data.find('\n');
  bool lineTooLong = lineEnd == std::string_view::npos ? n > limits.maxRequestLine : lineEnd > limits.maxRequestLine;
  if (lineTooLong) {
    s.kind = HeadScan::Kind::TooLarge;
    s.status = 414;
    s.reason = Reason::UriTooLong;
    s.detail = "the request line is longer than " + std::to_string(limits.maxRequestLine) + " bytes";
  } else if (len >= limit) {
    s.kind = HeadScan::Kind::TooLarge;
    s.status = 431;
    s.reason = Reason::HeadersTooLarge;
    s.detail = "the request head is larger than " + std::to_string(limit) + " bytes";
  }
  return s;
}

Result<http::RequestHead> parseScannedHead(evbuffer* in, size_t headBytes, const config::Limits& limits) {
  auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, ssize_t(headBytes)));
  http1::Limits lim{limits.maxRequestLine, limits.maxHeadBytes, limits.maxHeaders};
  return http1::parseRequestHead(std::string_view(p, headBytes), lim);
}

Reason reasonForParse(ErrKind k) {
  switch (k) {
    case ErrKind::AmbiguousFraming: return Reason::AmbiguousFraming;
    case ErrKind::UriTooLong: return Reason::UriTooLong;
    case ErrKind::HeadTooLarge: return Reason::HeadersTooLarge;
    case ErrKind::BodyTooLarge: return Reason::BodyTooLarge;
    case ErrKind::NotImplemented: return Reason::NotImplemented;
    default: return Reason::BadRequest;
  }
}

}  // namespace sekisho::server
