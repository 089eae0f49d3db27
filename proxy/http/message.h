// The HTTP message model shared by HTTP/1 and (later) HTTP/2: request and response heads whose
// fields are views into one owned copy of the head bytes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/strings.h"

namespace sekisho::http {

struct Header {
  std::string_view name;   // as received (case preserved); compare with iequals()
  std::string_view value;  // leading/trailing OWS removed
};

// How the message body is delimited (RFC 9112 §6).
enum class BodyKind : uint8_t {
  None,            // no body at all
  ContentLength,   // exactly contentLength bytes
  Chunked,         // chunked transfer coding (the final coding)
  CloseDelimited,  // responses only: until the origin closes
};

enum class TargetForm : uint8_t { Origin, Absolute, Authority, Asterisk };

// Owns the raw head bytes. Views in derived structs point into `bytes`, which never moves
// (unique_ptr<char[]>), so a head can be moved freely.
struct HeadStorage {
  std::unique_ptr<char[]> bytes;
  size_t size = 0;
  std::string_view view() const { return {bytes.get(), size}; }
};

struct HeaderList {
  std::vector<Header> items;
  // First header with this name, or nullptr.
  const Header* find(std::string_view name) const {
    for (const auto& h : items)
      if (iequals(h.name, name)) return &h;
    return nullptr;
  }
  size_t count(std::string_view name) const {
    size_t n = 0;
    for (const auto& h : items) n += iequals(h.name, name);
    return n;
  }
};

struct RequestHead {
  HeadStorage storage;
  std::string_view method;   // token, case-sensitive (RFC 9110 §9.1)
  std::string_view target;   // request-target exactly as sent
  TargetForm form = TargetForm::Origin;
  uint8_t versionMinor = 1;  // HTTP/1.<minor>; only 1.0 and 1.1 are accepted
  // From an absolute-form or authority-form target (lower-cased host, no brackets for IPv6):
  std::string_view scheme;   // "http", "https" (absolute form only)
  std::string host;          // lower-cased; IPv6 without brackets
  uint16_t port = 0;         // explicit or the scheme's default
  std::string_view path;     // path + query for origin-form upstream ("/" when empty)
  HeaderList headers;
  BodyKind body = BodyKind::None;
  uint64_t contentLength = 0;   // valid when body == ContentLength
  bool keepAlive = true;        // after Connection / Proxy-Connection / version rules
  bool expectContinue = false;  // Expect: 100-continue
};

struct ResponseHead {
  HeadStorage storage;
  uint8_t versionMinor = 1;
  uint16_t status = 0;
  std::string_view reason;
  HeaderList headers;
  BodyKind body = BodyKind::None;
  uint64_t contentLength = 0;
  bool keepAlive = true;  // the origin lets us reuse the connection after this response
};

// Headers that are hop-by-hop in every message (RFC 9110 §7.6.1) plus the Proxy-* family;
// the names listed in Connection are hop-by-hop too and are checked separately.
bool isHopByHop(std::string_view name);

// RFC 9110 §9.2.2: a request with one of these methods may be sent again with the same effect
// (GET, HEAD, OPTIONS, TRACE, PUT, DELETE; method names are case-sensitive). A proxy retries
// nothing else on its own (RFC 9112 §9.3.1): the origin may have acted on the first copy.
bool isIdempotent(std::string_view method);

}  // namespace sekisho::http
