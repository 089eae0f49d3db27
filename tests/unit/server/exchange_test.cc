// The URL shown on pages and in the access log (proxy/server/exchange.h), for each form of
// request target and inside an intercepted connection.
#include "proxy/server/exchange.h"

#include <gtest/gtest.h>

#include "proxy/http1/parser.h"
#include "tests/unit/server/request_head.h"

using namespace sekisho;
using namespace sekisho::server;

using sekisho::testing::request;

TEST(ShownUrl, EachTargetFormAsTheUserKnowsIt) {
  struct Row {
    const char* head;
    const char* insideHost;
    uint16_t insidePort;
    const char* want;
  } rows[] = {
      {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "", 443, "example.com:443"},
      {"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n", "", 443, "[2001:db8::1]:8443"},
      {"GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "", 443, "http://example.com/a?b=1"},
      {"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", 443, "https://example.com/a?b=1"},
      {"GET / HTTP/1.1\r\nHost: example.com:8443\r\n\r\n", "example.com", 8443, "https://example.com:8443/"},
      {"GET /x HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n", "2001:db8::1", 443, "https://[2001:db8::1]/x"},
      // An absolute-form target inside an intercepted connection is shown as sent.
      {"GET https://example.com/y HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", 443, "https://example.com/y"},
  };
  for (const auto& r : rows) {
    auto req = request(r.head);
    EXPECT_EQ(shownUrl(req, r.insideHost, r.insidePort), r.want) << r.head;
  }
}
