// libFuzzer target for the chunked decoder. Input layout:
//   byte 0        bits 0-2: number of split points (0-7); bit 3: small limits
//   bytes 1..n    one byte per split point: the distance from the previous split
//   the rest      the chunked body
// The body is decoded once whole and once arriving in pieces at the split points; both runs
// must produce the same events and the same verdict, since a decoder whose answer depends on
// how TCP segmented the bytes is a smuggling vector.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http1/chunked.h"

using namespace sekisho;

namespace {

#define CHECK(cond)                \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

struct Outcome {
  std::string transcript;
  bool failed = false;
  ErrKind kind = ErrKind::Internal;
};

Outcome decode(std::string_view in, const std::vector<size_t>& splits, http1::ChunkedLimits limits) {
  Outcome out;
  http1::ChunkedDecoder d(limits);
  size_t avail = 0, pos = 0, nextSplit = 0;
  auto arrive = [&] {
    if (avail == in.size()) return false;
    avail = nextSplit < splits.size() ? std::min(splits[nextSplit++], in.size()) : in.size();
    return true;
  };
  arrive();
  std::string chunk;
  for (;;) {
    if (d.dataRemaining() > 0) {
      uint64_t n = std::min<uint64_t>(d.dataRemaining(), avail - pos);
      chunk.append(in.substr(pos, n));
      d.consumeData(n);
      pos += n;
      if (d.dataRemaining() > 0) {
        if (!arrive()) break;
        continue;
      }
      out.transcript += "D" + std::to_string(chunk.size()) + ":" + chunk;
      chunk.clear();
    }
    std::string_view window = in.substr(pos, avail - pos);
    auto step = d.next(window);
    if (!step) {
      CHECK(!step.error().detail.empty());
      CHECK(step.error().kind == ErrKind::BadRequest || step.error().kind == ErrKind::AmbiguousFraming);
      out.failed = true;
      out.kind = step.error().kind;
      return out;
    }
    CHECK(step->consumed <= window.size());
    switch (step->event) {
      case http1::ChunkEvent::NeedMore:
        CHECK(step->consumed == 0);
        if (!arrive()) {
          out.transcript += "|more";
          return out;
        }
        continue;
      case http1::ChunkEvent::ChunkStart:
        CHECK(step->size > 0 && step->size < (1ULL << 63) && d.dataRemaining() == step->size);
        out.transcript += "|S" + std::to_string(step->size);
        break;
      case http1::ChunkEvent::ChunkEnd:
        CHECK(step->consumed == 2);
        out.transcript += "|E";
        break;
      case http1::ChunkEvent::LastChunk:
        out.transcript += "|L";
        break;
      case http1::ChunkEvent::Trailer:
        CHECK(!step->name.empty());
        CHECK(step->name.data() >= window.data() &&
              step->value.data() + step->value.size() <= window.data() + window.size());
        for (char c : step->value) {
          auto u = static_cast<unsigned char>(c);
          CHECK(u == '\t' || (u >= 0x20 && u != 0x7f));
        }
        out.transcript.append("|T").append(step->name).append("=").append(step->value);
        break;
      case http1::ChunkEvent::Done:
        CHECK(d.done());
        out.transcript += "|Z" + std::to_string(in.size() - pos - step->consumed);
        return out;
    }
    CHECK(step->consumed > 0);
    pos += step->consumed;
  }
  out.transcript += "|more";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t nSplits = data[0] & 7;
  http1::ChunkedLimits limits;
  if (data[0] & 8) {
    limits.maxChunkLine = 16;
    limits.maxTrailerBytes = 48;
    limits.maxTrailers = 3;
  }
  if (size < 1 + nSplits) return 0;
  std::vector<size_t> splits;
  size_t at = 0;
  for (size_t i = 0; i < nSplits; ++i) {
    at += data[1 + i];
    splits.push_back(at);
  }
  std::string_view body(reinterpret_cast<const char*>(data + 1 + nSplits), size - 1 - nSplits);
  Outcome whole = decode(body, {}, limits);
  Outcome pieces = decode(body, splits, limits);
  CHECK(whole.transcript == pieces.transcript);
  CHECK(whole.failed == pieces.failed && whole.kind == pieces.kind);
  // Byte by byte for short bodies: the hardest split of all.
  if (body.size() <= 64) {
    std::vector<size_t> every;
    for (size_t i = 1; i <= body.size(); ++i) every.push_back(i);
    Outcome bytes = decode(body, every, limits);
    CHECK(whole.transcript == bytes.transcript && whole.failed == bytes.failed && whole.kind == bytes.kind);
  }
  return 0;
}
