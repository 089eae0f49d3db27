// Chunked transfer coding framing (RFC 9112 §7.1). Every framing line must end in CRLF: a bare
// LF or a missing CRLF after chunk data is exactly where two parsers disagree about where a
// body ends (the chunked smuggling variants), so both are refused rather than tolerated.
#include "proxy/http1/chunked.h"

#include <cstring>

#include "proxy/base/strings.h"

namespace sekisho::http1 {
namespace {

constexpr uint64_t kMaxChunkSize = (uint64_t{1} << 63) - 1;

inline bool isDigit(char c) { return c >= '0' && c <= '9'; }

inline int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// tchar (RFC 9110 §5.6.2).
inline bool isTchar(char ch) {
  auto c = static_cast<unsigned char>(ch);
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(ch)) return true;
  return std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr && c != 0;
}

// field-vchar / obs-text / SP / HTAB (RFC 9110 §5.5).
inline bool isFieldChar(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

inline bool isWs(char c) { return c == ' ' || c == '\t'; }

tl::unexpected<Error> bad(const char* detail) { return fail(ErrKind::BadRequest, Side::Downstream, detail); }

// The LF that ends a line within the first `window` bytes of `data`, or npos.
inline size_t findLf(std::string_view data, size_t window) {
  size_t n = data.size() < window ? data.size() : window;
  if (n == 0) return std::string_view::npos;
  const void* lf = std::memchr(data.data(), '\n', n);
  return lf ? size_t(static_cast<const char*>(lf) - data.data()) : std::string_view::npos;
}

// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) (RFC 9112 §7.1.1);
// chunk-ext-val = token / quoted-string. `s` is what follows the chunk-size digits.
const char* checkExtensions(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  auto skipWs = [&] {
    while (i < n && isWs(s[i])) ++i;
  };
  while (i < n) {
    skipWs();
    if (i == n) return "whitespace at the end of a chunk-size line";
    if (s[i] != ';') {
      if (s[i] == '\r') return "bare CR in a chunk-size line";
      return "invalid character in a chunk-size line";
    }
    ++i;
    skipWs();
    size_t nameStart = i;
    while (i < n && isTchar(s[i])) ++i;
    if (i == nameStart) return "invalid chunk extension name";
    size_t afterName = i;
    skipWs();
    if (i < n && s[i] == '=') {
      ++i;
      skipWs();
      if (i < n && s[i] == '"') {
        // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4)
        ++i;
        bool closed = false;
        while (i < n) {
          char c = s[i];
          if (c == '"') {
            closed = true;
            ++i;
            break;
          }
          if (c == '\\') {
            if (i + 1 >= n || !isFieldChar(s[i + 1])) return "invalid quoted-pair in a chunk extension";
            i += 2;
            continue;
          }
          if (!isFieldChar(c)) return "control character in a chunk extension";
          ++i;
        }
        if (!closed) return "unterminated quoted string in a chunk extension";
      } else {
        size_t valStart = i;
        while (i < n && isTchar(s[i])) ++i;
        if (i == valStart) return "invalid chunk extension value";
      }
    } else {
      i = afterName;  // the whitespace belongs to the next BWS ";" or is trailing garbage
    }
  }
  return nullptr;
}

}  // namespace

Result<ChunkStep> ChunkedDecoder::next(std::string_view data) {
  if (dataRemaining_ > 0)
    return fail(ErrKind::Internal, Side::Internal, "chunked decoder called with chunk data still pending");
  ChunkStep step;
  switch (state_) {
    case State::Size: {
      // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF (RFC 9112 §7.1)
      size_t window = limits_.maxChunkLine + 2;
      size_t lf = findLf(data, window);
      if (lf == std::string_view::npos) {
        if (data.size() >= window) return bad("chunk-size line is too long");
        return step;  // NeedMore
      }
      if (lf == 0 || data[lf - 1] != '\r') return bad("chunk-size line does not end in CRLF");
      std::string_view line = data.substr(0, lf - 1);
      size_t i = 0;
      uint64_t size = 0;
      for (; i < line.size(); ++i) {
        int d = hexValue(line[i]);
        if (d < 0) break;
        // A size we cannot hold is one another parser would truncate differently.
        if (size > (kMaxChunkSize - uint64_t(d)) / 16)
          return fail(ErrKind::AmbiguousFraming, Side::Downstream, "chunk size is too large");
        size = size * 16 + uint64_t(d);
      }
      if (i == 0) return bad(line.empty() ? "empty chunk-size line" : "invalid chunk size");
      if (const char* why = checkExtensions(line.substr(i))) return bad(why);
      step.consumed = lf + 1;
      if (size == 0) {
        state_ = State::Trailers;
        step.event = ChunkEvent::LastChunk;
      } else {
        state_ = State::DataEnd;
        dataRemaining_ = size;
        step.event = ChunkEvent::ChunkStart;
        step.size = size;
      }
      return step;
    }
    case State::DataEnd: {
      if (data.empty()) return step;
      if (data[0] != '\r') return bad("chunk data is not followed by CRLF");
      if (data.size() < 2) return step;
      if (data[1] != '\n') return bad("chunk data is not followed by CRLF");
      state_ = State::Size;
      step.event = ChunkEvent::ChunkEnd;
      step.consumed = 2;
      return step;
    }
    case State::Trailers: {
      // trailer-section = *( field-line CRLF ), then CRLF (RFC 9112 §7.1.2). The final empty
      // line is always allowed beyond the byte budget.
      size_t window = limits_.maxTrailerBytes - trailerBytes_ + 2;
      size_t lf = findLf(data, window);
      if (lf == std::string_view::npos) {
        if (data.size() >= window) return bad("trailer section is too large");
        return step;
      }
      if (lf == 0 || data[lf - 1] != '\r') return bad("trailer line does not end in CRLF");
      std::string_view line = data.substr(0, lf - 1);
      step.consumed = lf + 1;
      if (line.empty()) {
        state_ = State::Done;
        step.event = ChunkEvent::Done;
        return step;
      }
      if (trailerBytes_ + step.consumed > limits_.maxTrailerBytes) return bad("trailer section is too large");
      if (trailerCount_ >= limits_.maxTrailers) return bad("too many trailer fields");
      // Same rules as header fields (RFC 9112 §5): no obs-fold, no whitespace before the colon.
      if (isWs(line[0])) return bad("obsolete line folding in the trailer section");
      size_t i = 0;
      while (i < line.size() && isTchar(line[i])) ++i;
      if (i == line.size() || line[i] != ':') {
        if (i < line.size() && isWs(line[i])) return bad("whitespace between a trailer name and the colon");
        if (i < line.size() && line[i] == '\r') return bad("bare CR in a trailer field");
        return bad("invalid trailer field name");
      }
      if (i == 0) return bad("empty trailer field name");
      std::string_view value = line.substr(i + 1);
      for (char c : value) {
        if (!isFieldChar(c))
          return bad(c == '\r' ? "bare CR in a trailer field" : "control character in a trailer field");
      }
      trailerBytes_ += step.consumed;
      ++trailerCount_;
      step.event = ChunkEvent::Trailer;
      step.name = line.substr(0, i);
      step.value = trimOws(value);
      return step;
    }
    case State::Done:
      step.event = ChunkEvent::Done;
      return step;
  }
  return fail(ErrKind::Internal, Side::Internal, "chunked decoder in an unknown state");
}

}  // namespace sekisho::http1
