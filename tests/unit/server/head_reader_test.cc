// Reading a request head as it arrives (proxy/server/head_reader.h): the limits hold while it is
// incomplete, and a complete head is found and parsed without being consumed.
#include "proxy/server/head_reader.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>

using namespace sekisho;
using namespace sekisho::server;

namespace {
struct Input {
  evbuffer* b = evbuffer_new();
  ~Input() { evbuffer_free(b); }
  void add(std::string_view s) { evbuffer_add(b, s.data(), s.size()); }
};
}  // namespace

TEST(HeadReader, IncompleteHeadWaitsAndTheScanResumesWhereItStopped) {
  config::Limits limits;
  Input in;
  size_t scanned = 0;
  in.add("GET http://a.example/ HTTP/1.1\r\nHost: a.exa");
  EXPECT_EQ(scanRequestHead(in.b, scanned, limits).kind, HeadScan::Kind::NeedMore);
  EXPECT_GT(scanned, 0u);
  in.add("mple\r\n\r\nnext request bytes");
  HeadScan s = scanRequestHead(in.b, scanned, limits);
  ASSERT_EQ(s.kind, HeadScan::Kind::Complete);
  EXPECT_EQ(s.headBytes, std::string_view("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n").size());
  auto head = parseScannedHead(in.b, s.headBytes, limits);
  ASSERT_TRUE(head) << head.error().detail;
  EXPECT_EQ(head->host, "a.example");
  EXPECT_EQ(evbuffer_get_length(in.b), s.headBytes + 18) << "nothing is consumed";
}

TEST(HeadReader, ALongRequestLineIs414BeforeTheHeadEnds) {
  config::Limits limits;
  limits.maxRequestLine = 64;
  Input in;
  size_t scanned = 0;
  in.add("GET http://a.example/" + std::string(100, 'x'));
  HeadScan s = scanRequestHead(in.b, scanned, limits);
  EXPECT_EQ(s.kind, HeadScan::Kind::TooLarge);
  EXPECT_EQ(s.status, 414);
  EXPECT_EQ(s.reason, Reason::UriTooLong);
  EXPECT_EQ(s.detail, "the request line is longer than 64 bytes");
}

TEST(HeadReader, AHeadPastItsLimitIs431WithoutReadingFurther) {
  config::Limits limits;
  limits.maxHeadBytes = 128;
  Input in;
  size_t scanned = 0;
  in.add("GET / HTTP/1.1\r\n");
  for (int i = 0; i < 20; ++i) in.add("X-Filler: 0123456789\r\n");
  HeadScan s = scanRequestHead(in.b, scanned, limits);
  EXPECT_EQ(s.kind, HeadScan::Kind::TooLarge);
  EXPECT_EQ(s.status, 431);
  EXPECT_EQ(s.detail, "the request head is larger than 128 bytes");
}

TEST(HeadReader, ParseErrorsMapToTheirReasons) {
  config::Limits limits;
  Input in;
  size_t scanned = 0;
  in.add("POST http://a.example/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
  HeadScan s = scanRequestHead(in.b, scanned, limits);
  ASSERT_EQ(s.kind, HeadScan::Kind::Complete);
  auto head = parseScannedHead(in.b, s.headBytes, limits);
  ASSERT_FALSE(head);
  EXPECT_EQ(reasonForParse(head.error().kind), Reason::AmbiguousFraming);
}
