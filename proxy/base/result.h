// Result<T>: the return type of everything that can fail. tl::expected today, so a later move
// to std::expected is a rename. No exceptions cross a C callback or run on the data path.
#pragma once
#include <cstdint>
#include <string>
#include <tl/expected.hpp>

namespace sekisho {

enum class ErrKind : uint8_t {
  BadRequest,        // malformed syntax from the client -> 400
  AmbiguousFraming,  // request smuggling vectors (CL+TE, duplicate CL, ...) -> 400
  UriTooLong,        // request line over the limit -> 414
  HeadTooLarge,      // head bytes or header count over the limit -> 431
  BodyTooLarge,      // -> 413
  NotImplemented,    // a request form we do not serve -> 501
  BadResponse,       // malformed response from an origin -> 502
  Forbidden,         // policy said no -> 403
  Dns,               // name did not resolve -> 502/504
  Connect,           // upstream TCP connect failed -> 502
  Timeout,           // -> 504 / 408
  Io,                // read/write/open failed
  Tls,
  Config,            // a configuration value is wrong
  Internal,
};

enum class Side : uint8_t { Downstream, Upstream, Internal, Config };

struct Error {
  ErrKind kind = ErrKind::Internal;
  Side side = Side::Internal;
  std::string detail;
  bool retryable = false;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(ErrKind kind, Side side, std::string detail) {
  return tl::unexpected<Error>(Error{kind, side, std::move(detail), false});
}

}  // namespace sekisho
