// Moves one message body from a source evbuffer to a destination evbuffer without buffering it
// whole: Content-Length bodies are moved as they come (zero copy where libevent can), chunked
// bodies have their framing parsed and re-serialised with CRLF, close-delimited bodies run until
// the source ends. The output framing is chosen by the caller (chunked or raw).
#pragma once
#include <event2/buffer.h>

#include <cstdint>
#include <string>

#include "proxy/http/message.h"
#include "proxy/http1/chunked.h"

namespace sekisho::server {

enum class PumpStatus : uint8_t { NeedMore, Done, Error };

// Appends one piece of a body that arrived in frames (HTTP/2 DATA) to an HTTP/1.1 message: as it
// is, or as one chunk (size line, the bytes, CRLF).
void appendBodyPiece(evbuffer* dst, const void* data, size_t len, bool chunked);

class BodyPump {
 public:
  BodyPump() = default;
  // `outChunked`: write the body chunked (re-serialised framing); otherwise raw data only.
  void reset(http::BodyKind in, uint64_t contentLength, bool outChunked);
  // Moves what `src` holds. `srcEnded` means no more bytes will come (EOF). Returns Done when the
  // body is complete, NeedMore while it is not, Error (see error()) on bad framing or truncation.
  PumpStatus run(evbuffer* src, evbuffer* dst, bool srcEnded);
  // A raw Content-Length body of at most `max` bytes that `src` already holds whole is copied
  // onto `dst` (the message head being built) and the body is done: head and body then leave in
  // one write, one TLS record to an intercepted client instead of two. Returns the bytes taken,
  // 0 (and nothing touched) for any other body.
  size_t takeWholeSmall(evbuffer* src, std::string& dst, size_t max);
  bool done() const { return done_; }
  uint64_t moved() const { return moved_; }  // bytes appended to dst, framing included
  uint64_t bodyBytes() const { return bodyBytes_; }
  const std::string& error() const { return error_; }
  bool framingError() const { return framingError_; }

 private:
  PumpStatus fail(std::string why, bool framing);
  void emitChunkHeader(evbuffer* dst, uint64_t size);
  http::BodyKind in_ = http::BodyKind::None;
  bool outChunked_ = false;
  bool done_ = true;
  bool framingError_ = false;
  uint64_t remaining_ = 0;
  uint64_t moved_ = 0, bodyBytes_ = 0;
  http1::ChunkedDecoder decoder_;
  std::string error_;
};

}  // namespace sekisho::server
