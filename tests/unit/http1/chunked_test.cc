#include "proxy/http1/chunked.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sekisho::http1 {
namespace {

using namespace std::string_literals;

// What a caller does: feed framing to next(), move data itself. The input arrives in pieces
// ending at `splits` (increasing offsets); the transcript names every event in order, so a
// split input must give exactly the transcript of the whole input.
struct Outcome {
  std::string transcript;
  bool ok = true;
  ErrKind kind = ErrKind::Internal;
  std::string detail;
};

Outcome decode(std::string_view input, const std::vector<size_t>& splits = {}, ChunkedLimits limits = {}) {
  Outcome out;
  ChunkedDecoder d(limits);
  size_t avail = 0, pos = 0, nextSplit = 0;
  auto arrive = [&] {
    if (avail == input.size()) return false;
    avail = nextSplit < splits.size() ? std::min(splits[nextSplit++], input.size()) : input.size();
    return true;
  };
  arrive();
  std::string data;  // the current chunk's data, joined across pieces
  while (true) {
    if (d.dataRemaining() > 0) {
      uint64_t n = std::min<uint64_t>(d.dataRemaining(), avail - pos);
      data.append(input.substr(pos, n));
      d.consumeData(n);
      pos += n;
      if (d.dataRemaining() > 0) {
        if (!arrive()) break;
        continue;
      }
      out.transcript += "D" + data + "|";
      data.clear();
    }
    auto step = d.next(input.substr(pos, avail - pos));
    if (!step) {
      out.ok = false;
      out.kind = step.error().kind;
      out.detail = step.error().detail;
      return out;
    }
    if (step->event == ChunkEvent::NeedMore) {
      EXPECT_EQ(step->consumed, 0u);
      if (!arrive()) break;
      continue;
    }
    pos += step->consumed;
    switch (step->event) {
      case ChunkEvent::ChunkStart:
        out.transcript += "S" + std::to_string(step->size) + " ";
        break;
      case ChunkEvent::ChunkEnd:
        out.transcript += "E ";
        break;
      case ChunkEvent::LastChunk:
        out.transcript += "L ";
        break;
      case ChunkEvent::Trailer:
        out.transcript += "T[" + std::string(step->name) + "=" + std::string(step->value) + "] ";
        break;
      case ChunkEvent::Done:
        out.transcript += "Z";
        break;
      default:
        break;
    }
    if (step->event == ChunkEvent::Done) {
      out.transcript += "+" + std::to_string(input.size() - pos);  // bytes left after the body
      return out;
    }
  }
  out.transcript += "…";  // ran out of input before Done
  return out;
}

::testing::AssertionResult rejects(std::string_view body, ErrKind kind, ChunkedLimits limits = {}) {
  Outcome o = decode(body, {}, limits);
  if (o.ok) return ::testing::AssertionFailure() << "accepted: " << o.transcript;
  if (o.kind != kind) return ::testing::AssertionFailure() << "wrong kind: " << o.detail;
  if (o.detail.empty()) return ::testing::AssertionFailure() << "empty detail";
  // The same verdict however the bytes arrive.
  for (size_t i = 1; i < body.size(); ++i) {
    Outcome s = decode(body, {i}, limits);
    if (s.ok || s.kind != kind) return ::testing::AssertionFailure() << "split at " << i << " differs";
  }
  return ::testing::AssertionSuccess();
}

TEST(Http1Chunked, DecodesABodyWithTrailers) {
  Outcome o = decode("5\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 42 \r\nY:\r\n\r\nNEXT");
  ASSERT_TRUE(o.ok) << o.detail;
  EXPECT_EQ(o.transcript, "S5 Dhello|E S26 Dabcdefghijklmnopqrstuvwxyz|E L T[X-Sum=42] T[Y=] Z+4");
}

TEST(Http1Chunked, DecodesEmptyBody) {
  Outcome o = decode("0\r\n\r\n");
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.transcript, "L Z+0");
}

TEST(Http1Chunked, AcceptsLeadingZerosAndBothHexCases) {
  EXPECT_EQ(decode("000a\r\n0123456789\r\n0000\r\n\r\n").transcript, "S10 D0123456789|E L Z+0");
  EXPECT_EQ(decode("A\r\n0123456789\r\n0\r\n\r\n").transcript, "S10 D0123456789|E L Z+0");
  EXPECT_EQ(decode("0000000000000000000001\r\nx\r\n0\r\n\r\n").transcript, "S1 Dx|E L Z+0");
}

TEST(Http1Chunked, AcceptsTheLargestSize) {
  ChunkedDecoder d;
  auto s = d.next("7fffffffffffffff\r\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->event, ChunkEvent::ChunkStart);
  EXPECT_EQ(s->size, 0x7fffffffffffffffu);
  EXPECT_EQ(d.dataRemaining(), 0x7fffffffffffffffu);
}

TEST(Http1Chunked, RejectsSizesFrom2To63AsAmbiguous) {
  EXPECT_TRUE(rejects("8000000000000000\r\n", ErrKind::AmbiguousFraming));
  EXPECT_TRUE(rejects("ffffffffffffffff\r\n", ErrKind::AmbiguousFraming));
  EXPECT_TRUE(rejects("10000000000000005\r\nhello\r\n0\r\n\r\n", ErrKind::AmbiguousFraming));
  EXPECT_TRUE(rejects("fffffffffffffffffffffffffffff\r\n", ErrKind::AmbiguousFraming));
}

TEST(Http1Chunked, AcceptsExtensions) {
  for (const char* line :
       {"5;a", "5;a=b", "5 ;a=b", "5; a = b", "5\t;\ta\t=\tb", "5;a=\"q d\"", R"(5;a="x\"y\\")",
        "5;a=b;c;d=\"\"", "5;a=\"caf\xc3\xa9\"", "5;!#$%&'*+-.^_`|~=x"}) {
    Outcome o = decode(std::string(line) + "\r\nhello\r\n0\r\n\r\n");
    ASSERT_TRUE(o.ok) << line << ": " << o.detail;
    EXPECT_EQ(o.transcript, "S5 Dhello|E L Z+0") << line;
  }
  EXPECT_EQ(decode("0;last=1\r\n\r\n").transcript, "L Z+0");
}

TEST(Http1Chunked, RejectsMalformedExtensions) {
  for (const char* line :
       {"5;", "5; ", "5;=b", "5;a=", "5;a= ", "5;a=\"open", "5;a=b c", "5;a=b,c", "5;a b", "5;a=\"x\\",
        "5;a=\"\x01\"", "5;a=\"\x7f\"", "5;a=b;", "5 ", "5\t", "5;a ", "5,a"}) {
    EXPECT_TRUE(rejects(std::string(line) + "\r\nhello\r\n0\r\n\r\n", ErrKind::BadRequest)) << line;
  }
}

TEST(Http1Chunked, RejectsGarbageSizes) {
  for (const char* body :
       {"\r\n", "g\r\n", " 5\r\n", "+5\r\n", "-5\r\n", "0x5\r\n", ";a\r\n", "\xef\xbc\x95\r\n"}) {
    EXPECT_TRUE(rejects(body, ErrKind::BadRequest)) << body;
  }
  EXPECT_TRUE(rejects("5\0\r\nhello\r\n"s, ErrKind::BadRequest));
}

TEST(Http1Chunked, RejectsBareLfAndBareCrInFraming) {
  EXPECT_TRUE(rejects("5\nhello\r\n0\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejects("5\r\nhello\n0\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejects("5\r\nhello\r\n0\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejects("5\r\nhello\r\n0\r\n\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejects("5\r\nhello\r\n0\r\nX: y\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejects("5\r\r\nhello\r\n0\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejects("5\rX\r\nhello\r\n0\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejects("\n", ErrKind::BadRequest));
}

TEST(Http1Chunked, RejectsMissingCrlfAfterData) {
  EXPECT_TRUE(rejects("5\r\nhelloX\r\n0\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejects("5\r\nhello0\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejects("5\r\nhello\rX", ErrKind::BadRequest));
  // A short chunk: "hell" plus "o\r" as data leaves "\n0" where the CRLF belongs.
  EXPECT_TRUE(rejects("6\r\nhello\r\n0\r\n\r\n", ErrKind::BadRequest));
}

TEST(Http1Chunked, BoundsTheChunkSizeLine) {
  ChunkedLimits l;
  l.maxChunkLine = 16;
  std::string fits = "5;abcdefghijklmn";  // 16 bytes
  ASSERT_EQ(fits.size(), 16u);
  EXPECT_TRUE(decode(fits + "\r\nhello\r\n0\r\n\r\n", {}, l).ok);
  EXPECT_TRUE(rejects("5;abcdefghijklmno\r\nhello\r\n0\r\n\r\n", ErrKind::BadRequest, l));
  // An endless line is refused once it passes the bound, not buffered forever.
  ChunkedDecoder d(l);
  auto partial = d.next("5;abcdefghijklmno");
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->event, ChunkEvent::NeedMore);
  EXPECT_FALSE(d.next("5;abcdefghijklmnop"));
}

TEST(Http1Chunked, ParsesTrailerFieldsLikeHeaders) {
  EXPECT_EQ(decode("0\r\nA: 1\r\nB-c:\t two words \t\r\nD:\xc3\xa9\r\n\r\n").transcript,
            "L T[A=1] T[B-c=two words] T[D=\xc3\xa9] Z+0");
}

TEST(Http1Chunked, RejectsBadTrailerFields) {
  for (const char* trailer : {" X: y", "\tX: y", "X : y", "X\t: y", ": y", "X", "X y: z", "X: a\rb", "X\r: y",
                              "X: a\x01", "X: a\x7f", "X(: y"}) {
    EXPECT_TRUE(rejects(std::string("0\r\nA: 1\r\n") + trailer + "\r\n\r\n", ErrKind::BadRequest)) << trailer;
  }
  EXPECT_TRUE(rejects("0\r\nX: a\0b\r\n\r\n"s, ErrKind::BadRequest));
}

TEST(Http1Chunked, BoundsTrailers) {
  ChunkedLimits l;
  l.maxTrailers = 2;
  l.maxTrailerBytes = 32;
  EXPECT_TRUE(decode("0\r\nA: 1\r\nB: 2\r\n\r\n", {}, l).ok);
  EXPECT_TRUE(rejects("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ErrKind::BadRequest, l));
  std::string exact = "X: " + std::string(27, 'v') + "\r\n";  // 32 bytes
  ASSERT_EQ(exact.size(), 32u);
  EXPECT_TRUE(decode("0\r\n" + exact + "\r\n", {}, l).ok);
  EXPECT_TRUE(rejects("0\r\nX: " + std::string(28, 'v') + "\r\n\r\n", ErrKind::BadRequest, l));
  EXPECT_TRUE(rejects("0\r\nX: " + std::string(100, 'v'), ErrKind::BadRequest, l));
}

TEST(Http1Chunked, ReturnsNeedMoreWithNothingConsumed) {
  for (const char* partial : {"", "5", "5\r", "5;a=\"x", "1a"}) {
    ChunkedDecoder d;
    auto s = d.next(partial);
    ASSERT_TRUE(s) << partial;
    EXPECT_EQ(s->event, ChunkEvent::NeedMore);
    EXPECT_EQ(s->consumed, 0u);
  }
  ChunkedDecoder d;
  ASSERT_EQ(d.next("1\r\n")->event, ChunkEvent::ChunkStart);
  d.consumeData(1);
  EXPECT_EQ(d.next("")->event, ChunkEvent::NeedMore);
  EXPECT_EQ(d.next("\r")->event, ChunkEvent::NeedMore);
  EXPECT_EQ(d.next("\r\n")->event, ChunkEvent::ChunkEnd);
  ASSERT_EQ(d.next("0\r\n")->event, ChunkEvent::LastChunk);
  EXPECT_EQ(d.next("X: 1")->event, ChunkEvent::NeedMore);
  EXPECT_EQ(d.next("X: 1\r")->event, ChunkEvent::NeedMore);
  EXPECT_EQ(d.next("X: 1\r\n")->event, ChunkEvent::Trailer);
  EXPECT_EQ(d.next("\r")->event, ChunkEvent::NeedMore);
  EXPECT_FALSE(d.done());
  EXPECT_EQ(d.next("\r\n")->event, ChunkEvent::Done);
  EXPECT_TRUE(d.done());
  auto again = d.next("more");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->event, ChunkEvent::Done);
  EXPECT_EQ(again->consumed, 0u);
}

TEST(Http1Chunked, RefusesFramingWhileDataIsPending) {
  ChunkedDecoder d;
  ASSERT_EQ(d.next("5\r\n")->event, ChunkEvent::ChunkStart);
  auto s = d.next("hello\r\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrKind::Internal);
}

TEST(Http1Chunked, GivesTheSameResultSplitAtEveryByteOffset) {
  const std::string body =
      "5;name=\"v a l\"\r\nhello\r\n00C \t; x\r\n hello world\r\n1\r\n\r\r\n0; end=1\r\nChecksum: abc\r\n"
      "X-Y:  z \r\n\r\nREST";
  Outcome whole = decode(body);
  ASSERT_TRUE(whole.ok) << whole.detail;
  EXPECT_EQ(whole.transcript, "S5 Dhello|E S12 D hello world|E S1 D\r|E L T[Checksum=abc] T[X-Y=z] Z+4");
  for (size_t i = 0; i <= body.size(); ++i) {
    for (size_t j = i; j <= body.size(); j += 7) {
      Outcome o = decode(body, {i, j});
      ASSERT_TRUE(o.ok) << "split " << i << "," << j << ": " << o.detail;
      ASSERT_EQ(o.transcript, whole.transcript) << "split " << i << "," << j;
    }
  }
  // And one byte at a time.
  std::vector<size_t> every;
  for (size_t i = 1; i <= body.size(); ++i) every.push_back(i);
  Outcome bytewise = decode(body, every);
  ASSERT_TRUE(bytewise.ok);
  EXPECT_EQ(bytewise.transcript, whole.transcript);
}

}  // namespace
}  // namespace sekisho::http1
