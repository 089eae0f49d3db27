#include "proxy/server/body_pump.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>

#include <string>

using namespace sekisho;
using server::BodyPump;
using server::PumpStatus;

namespace {

struct Buf {
  evbuffer* b = evbuffer_new();
  ~Buf() { evbuffer_free(b); }
  void add(std::string_view s) { evbuffer_add(b, s.data(), s.size()); }
  std::string str() const {
    std::string out(evbuffer_get_length(b), '\0');
    evbuffer_copyout(b, out.data(), out.size());
    return out;
  }
  size_t size() const { return evbuffer_get_length(b); }
};

// Feeds `input` in pieces of `step` bytes; returns (status, output).
std::pair<PumpStatus, std::string> pumpInPieces(BodyPump& p, std::string_view input, size_t step, bool endAfter) {
  Buf src, dst;
  PumpStatus st = PumpStatus::NeedMore;
  for (size_t off = 0; off < input.size(); off += step) {
    src.add(input.substr(off, step));
    st = p.run(src.b, dst.b, false);
    if (st != PumpStatus::NeedMore) break;
  }
  if (st == PumpStatus::NeedMore && endAfter) st = p.run(src.b, dst.b, true);
  return {st, dst.str()};
}

}  // namespace

TEST(BodyPump, ContentLengthStopsAtTheLengthAndLeavesTheNextRequest) {
  BodyPump p;
  p.reset(http::BodyKind::ContentLength, 5, false);
  Buf src, dst;
  src.add("helloGET / HTTP/1.1\r\n");
  EXPECT_EQ(p.run(src.b, dst.b, false), PumpStatus::Done);
  EXPECT_EQ(dst.str(), "hello");
  EXPECT_EQ(src.str(), "GET / HTTP/1.1\r\n");
  EXPECT_EQ(p.bodyBytes(), 5u);
}

TEST(BodyPump, ContentLengthCutShortIsAnError) {
  BodyPump p;
  p.reset(http::BodyKind::ContentLength, 10, false);
  auto [st, out] = pumpInPieces(p, "abc", 1, true);
  EXPECT_EQ(st, PumpStatus::Error);
  EXPECT_NE(p.error().find("7 bytes short"), std::string::npos);
  EXPECT_FALSE(p.framingError());
}

TEST(BodyPump, ChunkedIsReserialisedWithCrlfAtEverySplit) {
  const std::string in = "5;ext=1\r\nhello\r\n000a\r\n0123456789\r\n0\r\nX-T: v\r\n\r\n";
  const std::string want = "5\r\nhello\r\na\r\n0123456789\r\n0\r\nX-T: v\r\n\r\n";
  for (size_t step = 1; step <= in.size(); ++step) {
    BodyPump p;
    p.reset(http::BodyKind::Chunked, 0, true);
    auto [st, out] = pumpInPieces(p, in, step, false);
    ASSERT_EQ(st, PumpStatus::Done) << "step " << step;
    EXPECT_EQ(out, want) << "step " << step;
    EXPECT_EQ(p.bodyBytes(), 15u);
  }
}

TEST(BodyPump, ChunkedToRawDropsFraming) {
  BodyPump p;
  p.reset(http::BodyKind::Chunked, 0, false);
  auto [st, out] = pumpInPieces(p, "3\r\nabc\r\n0\r\n\r\n", 4, false);
  EXPECT_EQ(st, PumpStatus::Done);
  EXPECT_EQ(out, "abc");
}

TEST(BodyPump, HopByHopTrailersAreDropped) {
  BodyPump p;
  p.reset(http::BodyKind::Chunked, 0, true);
  auto [st, out] = pumpInPieces(p, "0\r\nConnection: close\r\nX-Ok: 1\r\n\r\n", 100, false);
  EXPECT_EQ(st, PumpStatus::Done);
  EXPECT_EQ(out, "0\r\nX-Ok: 1\r\n\r\n");
}

TEST(BodyPump, BadChunkSizeIsAFramingError) {
  for (const char* bad : {"zz\r\n", "-1\r\n", "12345678901234567\r\n", "5\nhello\r\n", "3\r\nabcX\r\n"}) {
    BodyPump p;
    p.reset(http::BodyKind::Chunked, 0, true);
    auto [st, out] = pumpInPieces(p, bad, 100, false);
    EXPECT_EQ(st, PumpStatus::Error) << bad;
    EXPECT_TRUE(p.framingError()) << bad;
  }
}

TEST(BodyPump, TruncatedChunkedBodyIsAnError) {
  BodyPump p;
  p.reset(http::BodyKind::Chunked, 0, true);
  auto [st, out] = pumpInPieces(p, "5\r\nhel", 100, true);
  EXPECT_EQ(st, PumpStatus::Error);
  EXPECT_FALSE(p.framingError());
}

TEST(BodyPump, CloseDelimitedBecomesChunkedAndEndsAtEof) {
  BodyPump p;
  p.reset(http::BodyKind::CloseDelimited, 0, true);
  Buf src, dst;
  src.add("abc");
  EXPECT_EQ(p.run(src.b, dst.b, false), PumpStatus::NeedMore);
  src.add("de");
  EXPECT_EQ(p.run(src.b, dst.b, true), PumpStatus::Done);
  EXPECT_EQ(dst.str(), "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
}

TEST(BodyPump, LargeContentLengthBodyMovesWithoutHoldingIt) {
  BodyPump p;
  const uint64_t total = 64ull << 20;
  p.reset(http::BodyKind::ContentLength, total, false);
  Buf src, dst;
  std::string block(1 << 16, 'x');
  uint64_t sent = 0;
  PumpStatus st = PumpStatus::NeedMore;
  while (sent < total) {
    src.add(block);
    sent += block.size();
    st = p.run(src.b, dst.b, false);
    ASSERT_LE(dst.size(), block.size());  // the caller drains dst; the pump never accumulates
    evbuffer_drain(dst.b, dst.size());
  }
  EXPECT_EQ(st, PumpStatus::Done);
  EXPECT_EQ(p.bodyBytes(), total);
}

TEST(BodyPump, SmallWholeBodyJoinsTheHeadAndLeavesWhatFollows) {
  BodyPump p;
  p.reset(http::BodyKind::ContentLength, 5, false);
  Buf src;
  src.add("helloHTTP/1.1 200 OK\r\n");
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  EXPECT_EQ(p.takeWholeSmall(src.b, head, 1024), 5u);
  EXPECT_EQ(head, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(src.str(), "HTTP/1.1 200 OK\r\n");  // the next response stays where it was
  EXPECT_TRUE(p.done());
  EXPECT_EQ(p.bodyBytes(), 5u);
  EXPECT_EQ(p.moved(), 5u);
  Buf dst;
  EXPECT_EQ(p.run(src.b, dst.b, false), PumpStatus::Done);
  EXPECT_EQ(dst.size(), 0u);
}

TEST(BodyPump, OnlyWholeSmallRawBodiesJoinTheHead) {
  std::string head = "H";
  {
    BodyPump p;  // not all there yet: the pump carries on as usual
    p.reset(http::BodyKind::ContentLength, 10, false);
    Buf src;
    src.add("abc");
    EXPECT_EQ(p.takeWholeSmall(src.b, head, 1024), 0u);
    EXPECT_EQ(src.size(), 3u);
    Buf dst;
    src.add("defghij");
    EXPECT_EQ(p.run(src.b, dst.b, false), PumpStatus::Done);
    EXPECT_EQ(dst.str(), "abcdefghij");
  }
  {
    BodyPump p;  // larger than the limit
    p.reset(http::BodyKind::ContentLength, 2000, false);
    Buf src;
    src.add(std::string(2000, 'x'));
    EXPECT_EQ(p.takeWholeSmall(src.b, head, 1024), 0u);
    EXPECT_FALSE(p.done());
  }
  {
    BodyPump p;  // chunked input has framing to parse
    p.reset(http::BodyKind::Chunked, 0, true);
    Buf src;
    src.add("3\r\nabc\r\n0\r\n\r\n");
    EXPECT_EQ(p.takeWholeSmall(src.b, head, 1024), 0u);
  }
  {
    BodyPump p;  // close-delimited has no known end
    p.reset(http::BodyKind::CloseDelimited, 0, false);
    Buf src;
    src.add("abc");
    EXPECT_EQ(p.takeWholeSmall(src.b, head, 1024), 0u);
  }
  EXPECT_EQ(head, "H");
}

// HTTP/2 DATA pieces written into an HTTP/1.1 message: raw, or one chunk each, which the
// chunked pump then reads back whole.
TEST(BodyPump, AppendedBodyPiecesAreRawOrOneChunkEach) {
  Buf raw, chunked;
  server::appendBodyPiece(raw.b, "hello", 5, false);
  server::appendBodyPiece(raw.b, " world", 6, false);
  EXPECT_EQ(raw.str(), "hello world");
  std::string big(0x1234, 'x');
  server::appendBodyPiece(chunked.b, "hello", 5, true);
  server::appendBodyPiece(chunked.b, big.data(), big.size(), true);
  EXPECT_EQ(chunked.str(), "5\r\nhello\r\n1234\r\n" + big + "\r\n");
  chunked.add("0\r\n\r\n");
  BodyPump p;
  p.reset(http::BodyKind::Chunked, 0, false);
  auto [st, out] = pumpInPieces(p, chunked.str(), 7, false);
  EXPECT_EQ(st, PumpStatus::Done);
  EXPECT_TRUE(out == "hello" + big);
}
