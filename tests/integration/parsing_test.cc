// Strict parsing at the proxy: every request an origin or another intermediary could frame
// differently is refused before anything reaches the origin (RFC 9112 §2.2, §5, §6.1, §6.3,
// §11.2), and the proxy goes on serving other connections.
#include <initializer_list>

#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

class ProxyParsing : public ProxyTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(startBoth()); }

  // A request to the origin's /echo with `fields` (each ending in CRLF) and `body`.
  std::string post(std::string_view fields, std::string_view body = "") {
    return "POST " + origin().url("/echo") + " HTTP/1.1\r\nHost: " + origin().authority() + "\r\n" +
           std::string(fields) + "\r\n" + std::string(body);
  }

  // Sends `raw` on a fresh connection and expects one of `statuses`, nothing at the origin and
  // the proxy still serving a normal request on a new connection.
  void expectRefused(std::string_view raw, std::initializer_list<int> statuses) {
    Response r = viaProxy(raw);
    bool expected = false;
    for (int s : statuses) expected = expected || r.status == s;
    std::string want;
    for (int s : statuses) want += (want.empty() ? "" : " or ") + std::to_string(s);
    EXPECT_TRUE(expected) << "expected " << want << ", got " << r.summary();
    EXPECT_EQ(origin().requestCount(), 0) << "reached the origin:\n" << origin().requests();
    expectStillServing();
  }
};

TEST_F(ProxyParsing, RejectsContentLengthWithTransferEncoding) {
  expectRefused(post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), {400});
}

TEST_F(ProxyParsing, RejectsTwoDifferentContentLengths) {
  expectRefused(post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), {400});
}

// 413 is accepted beside 400: a length no body could have is also "content too large".
TEST_F(ProxyParsing, RejectsContentLengthOfTwoToThe63) {
  expectRefused(post("Content-Length: 9223372036854775808\r\n", "x"), {400, 413});
}

TEST_F(ProxyParsing, RejectsContentLengthOfTwoToThe64) {
  expectRefused(post("Content-Length: 18446744073709551616\r\n", "x"), {400, 413});
}

// RFC 9112 §6.1 allows 501 for a transfer coding the server does not understand.
TEST_F(ProxyParsing, RejectsChunkedFollowedByIdentity) {
  expectRefused(post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"), {400, 501});
}

TEST_F(ProxyParsing, RejectsUnknownTransferCoding) {
  expectRefused(post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"), {400, 501});
}

TEST_F(ProxyParsing, RejectsWhitespaceBeforeHeaderColon) {
  expectRefused(post("Transfer-Encoding : chunked\r\n", "0\r\n\r\n"), {400});
}

TEST_F(ProxyParsing, RejectsObsFold) {
  expectRefused(post("X-Folded: first\r\n second\r\nContent-Length: 0\r\n"), {400});
}

TEST_F(ProxyParsing, RejectsBareCrInHeaderValue) {
  expectRefused(post("X-Bad: a\rb\r\nContent-Length: 0\r\n"), {400});
}

TEST_F(ProxyParsing, RejectsNulInHeader) {
  std::string fields = "X-Bad: a";
  fields.push_back('\0');
  fields += "b\r\nContent-Length: 0\r\n";
  expectRefused(post(fields), {400});
}

TEST_F(ProxyParsing, RejectsBadChunkSize) {
  // The head is valid, so it may already be upstream when the size line turns out bad: the
  // client must get an error (or a close) instead of a success, and the proxy keep serving.
  for (const char* size : {"zz", "-1", "10000000000000000"}) {
    SCOPED_TRACE(std::string("chunk size ") + size);
    std::string raw = "POST " + origin().url("/upload") + " HTTP/1.1\r\nHost: " + origin().authority() +
                      "\r\nTransfer-Encoding: chunked\r\n\r\n" + size + "\r\nhello\r\n0\r\n\r\n";
    Response r = viaProxy(raw);
    EXPECT_TRUE(r.status >= 400 || (r.status == 0 && r.closed)) << r.summary();
    if (r.status == 0) std::cerr << "note: chunk size " << size << " answered by a close\n";
    expectStillServing();
  }
}

TEST_F(ProxyParsing, RejectsRequestLineOver8KiB) {
  std::string url = origin().url("/size/10?pad=" + std::string(9000, 'a'));
  expectRefused(getRequest(url), {414});
}

TEST_F(ProxyParsing, RejectsTwoHundredHeaderFields) {
  std::string fields;
  for (int i = 0; i < 200; ++i) fields += "X-Field-" + std::to_string(i) + ": v\r\n";
  expectRefused(getRequest(origin().url("/size/10"), fields), {431});
}

TEST_F(ProxyParsing, RejectsOriginFormRequestWithoutHost) {
  // RFC 9112 §3.2: a 1.1 request without Host gets 400.
  expectRefused("GET /healthz HTTP/1.1\r\n\r\n", {400});
}

}  // namespace
}  // namespace sekisho::it
