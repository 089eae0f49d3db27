#include "proxy/server/body_pump.h"

#include <algorithm>
#include <cstdio>

namespace sekisho::server {

void BodyPump::reset(http::BodyKind in, uint64_t contentLength, bool outChunked) {
  in_ = in;
  outChunked_ = outChunked;
  remaining_ = contentLength;
  moved_ = bodyBytes_ = 0;
  error_.clear();
  framingError_ = false;
  decoder_ = http1::ChunkedDecoder{};
  done_ = in == http::BodyKind::None || (in == http::BodyKind::ContentLength && contentLength == 0);
}

PumpStatus BodyPump::fail(std::string why, bool framing) {
  error_ = std::move(why);
  framingError_ = framing;
  return PumpStatus::Error;
}

void appendBodyPiece(evbuffer* dst, const void* data, size_t len, bool chunked) {
  if (chunked) {
    char line[24];
    int n = snprintf(line, sizeof line, "%zx\r\n", len);
    evbuffer_add(dst, line, size_t(n));
  }
  evbuffer_add(dst, data, len);
  if (chunked) evbuffer_add(dst, "\r\n", 2);
}

void BodyPump::emitChunkHeader(evbuffer* dst, uint64_t size) {
  char line[24];
  int n = snprintf(line, sizeof line, "%llx\r\n", static_cast<unsigned long long>(size));
  evbuffer_add(dst, line, size_t(n));
  moved_ += size_t(n);
}

size_t BodyPump::takeWholeSmall(evbuffer* src, std::string& dst, size_t max) {
  if (done_ || in_ != http::BodyKind::ContentLength || outChunked_ || remaining_ > max) return 0;
  if (evbuffer_get_length(src) < remaining_) return 0;
  size_t n = size_t(remaining_);
  size_t at = dst.size();
  dst.resize(at + n);
  if (evbuffer_remove(src, dst.data() + at, n) != ev_ssize_t(n)) {
    dst.resize(at);  // cannot happen with the length checked above; nothing is lost if it did
    return 0;
  }
  remaining_ = 0;
  moved_ += n;
  bodyBytes_ += n;
  done_ = true;
  return n;
}

PumpStatus BodyPump::run(evbuffer* src, evbuffer* dst, bool srcEnded) {
  if (done_) return PumpStatus::Done;
  switch (in_) {
    case http::BodyKind::None:
      done_ = true;
      return PumpStatus::Done;

    case http::BodyKind::ContentLength: {
      size_t n = size_t(std::min<uint64_t>(remaining_, evbuffer_get_length(src)));
      if (n) {
        evbuffer_remove_buffer(src, dst, n);
        remaining_ -= n;
        moved_ += n;
        bodyBytes_ += n;
      }
      if (remaining_ == 0) {
        done_ = true;
        return PumpStatus::Done;
      }
      if (srcEnded) return fail("the body ended " + std::to_string(remaining_) + " bytes short of its Content-Length", false);
      return PumpStatus::NeedMore;
    }

    case http::BodyKind::CloseDelimited: {
      size_t n = evbuffer_get_length(src);
      if (n) {
        if (outChunked_) emitChunkHeader(dst, n);
        evbuffer_remove_buffer(src, dst, n);
        if (outChunked_) {
          evbuffer_add(dst, "\r\n", 2);
          moved_ += 2;
        }
        moved_ += n;
        bodyBytes_ += n;
      }
      if (!srcEnded) return PumpStatus::NeedMore;
      if (outChunked_) {
        evbuffer_add(dst, "0\r\n\r\n", 5);
        moved_ += 5;
      }
      done_ = true;
      return PumpStatus::Done;
    }

    case http::BodyKind::Chunked:
      break;
  }

  // Chunked input.
  for (;;) {
    if (uint64_t want = decoder_.dataRemaining()) {
      size_t n = size_t(std::min<uint64_t>(want, evbuffer_get_length(src)));
      if (n == 0) break;
      evbuffer_remove_buffer(src, dst, n);
      decoder_.consumeData(n);
      moved_ += n;
      bodyBytes_ += n;
      continue;
    }
    size_t avail = evbuffer_get_length(src);
    if (avail == 0) break;
    // Framing is short; pull up a little and grow only when an element needs more.
    size_t pull = std::min<size_t>(avail, 64);
    http1::ChunkStep step;
    for (;;) {
      auto* p = reinterpret_cast<const char*>(evbuffer_pullup(src, ssize_t(pull)));
      auto r = decoder_.next(std::string_view(p, pull));
      if (!r) return fail(r.error().detail, true);
      step = *r;
      if (step.event != http1::ChunkEvent::NeedMore || pull == avail) break;
      pull = std::min(avail, pull * 4);
    }
    if (step.event == http1::ChunkEvent::NeedMore) break;
    switch (step.event) {
      case http1::ChunkEvent::ChunkStart:
        if (outChunked_) emitChunkHeader(dst, step.size);
        break;
      case http1::ChunkEvent::ChunkEnd:
        if (outChunked_) {
          evbuffer_add(dst, "\r\n", 2);
          moved_ += 2;
        }
        break;
      case http1::ChunkEvent::LastChunk:
        if (outChunked_) {
          evbuffer_add(dst, "0\r\n", 3);
          moved_ += 3;
        }
        break;
      case http1::ChunkEvent::Trailer:
        // Trailer fields pass end to end, re-serialised; hop-by-hop names never do.
        if (outChunked_ && !http::isHopByHop(step.name)) {
          evbuffer_add(dst, step.name.data(), step.name.size());
          evbuffer_add(dst, ": ", 2);
          evbuffer_add(dst, step.value.data(), step.value.size());
          evbuffer_add(dst, "\r\n", 2);
          moved_ += step.name.size() + step.value.size() + 4;
        }
        break;
      case http1::ChunkEvent::Done:
        if (outChunked_) {
          evbuffer_add(dst, "\r\n", 2);
          moved_ += 2;
        }
        evbuffer_drain(src, step.consumed);
        done_ = true;
        return PumpStatus::Done;
      case http1::ChunkEvent::NeedMore:
        break;
    }
    evbuffer_drain(src, step.consumed);
  }
  if (srcEnded) return fail("the chunked body was cut short", false);
  return PumpStatus::NeedMore;
}

}  // namespace sekisho::server
