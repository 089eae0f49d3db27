// A resumable decoder for the chunked transfer coding (RFC 9112 §7.1). It parses only the framing
// (chunk-size lines, the CRLF after data, trailers); the caller moves chunk data itself (zero
// copy, e.g. evbuffer_remove_buffer) and re-serialises the framing with CRLF, so what goes
// upstream is never the client's bytes.
#pragma once
#include <cstdint>
#include <string_view>

#include "proxy/base/result.h"

namespace sekisho::http1 {

struct ChunkedLimits {
  size_t maxChunkLine = 4096;      // chunk-size line incl. extensions
  size_t maxTrailerBytes = 16384;  // all trailer fields together
  size_t maxTrailers = 32;
};

enum class ChunkEvent : uint8_t {
  NeedMore,    // the framing in `data` is incomplete; call again with more bytes
  ChunkStart,  // a chunk of `size` (> 0) data bytes follows; then dataRemaining() == size
  ChunkEnd,    // the CRLF after a chunk's data was read
  LastChunk,   // "0" chunk-size line read; trailers (if any) follow
  Trailer,     // one trailer field: `name`, `value` (views into the data passed in)
  Done,        // the empty line after the trailers: the body is complete
};

struct ChunkStep {
  ChunkEvent event = ChunkEvent::NeedMore;
  size_t consumed = 0;  // bytes of `data` consumed by this step
  uint64_t size = 0;    // ChunkStart: the chunk's size
  std::string_view name, value;
};

class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(ChunkedLimits limits = {}) : limits_(limits) {}

  // Data bytes of the current chunk still to be moved by the caller. While > 0, next() must not
  // be called; call consumeData() as bytes are moved.
  uint64_t dataRemaining() const { return dataRemaining_; }
  void consumeData(uint64_t n) { dataRemaining_ -= n; }
  bool done() const { return state_ == State::Done; }

  // Parses the next framing element at the start of `data`. Errors (ErrKind::BadRequest, or
  // AmbiguousFraming for sizes that overflow 2^63) name what was wrong.
  Result<ChunkStep> next(std::string_view data);

 private:
  enum class State : uint8_t { Size, DataEnd, Trailers, Done };
  ChunkedLimits limits_;
  State state_ = State::Size;
  uint64_t dataRemaining_ = 0;
  size_t trailerBytes_ = 0;
  size_t trailerCount_ = 0;
};

}  // namespace sekisho::http1
