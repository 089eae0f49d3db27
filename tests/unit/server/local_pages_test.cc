// Local responses (proxy/server/local_pages.h): our own pages, the Max-Forwards answers and the
// error page's head, as the bytes the connection writes.
#include "proxy/server/local_pages.h"

#include <gtest/gtest.h>

#include "proxy/http1/parser.h"
#include "tests/unit/server/request_head.h"

using namespace sekisho;
using namespace sekisho::server;

namespace {
using sekisho::testing::request;

OwnPageFacts facts(const config::Config& cfg) {
  OwnPageFacts f;
  f.cfg = &cfg;
  f.proxyAddress = [] { return std::string("192.0.2.1:3128"); };
  return f;
}
}  // namespace

TEST(OwnPages, PacFileNamesTheAddressTheClientReachedUs) {
  auto cfg = config::defaults();
  for (const char* path : {"/proxy.pac", "/wpad.dat", "/proxy.pac?x=1"}) {
    auto page = ownPage(request(std::string("GET ") + path + " HTTP/1.1\r\nHost: p\r\n\r\n"), facts(*cfg));
    ASSERT_TRUE(page) << path;
    EXPECT_EQ(page->status, 200);
    EXPECT_EQ(page->contentType, "application/x-ns-proxy-autoconfig");
    EXPECT_NE(page->body.find("PROXY 192.0.2.1:3128"), std::string::npos) << page->body;
  }
}

TEST(OwnPages, HealthzAnswersAndUnknownPathsAndOtherMethodsHaveNoPage) {
  auto cfg = config::defaults();
  auto ok = ownPage(request("HEAD /healthz HTTP/1.1\r\nHost: p\r\n\r\n"), facts(*cfg));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->body, "ok\n");
  EXPECT_FALSE(ownPage(request("GET /nothing HTTP/1.1\r\nHost: p\r\n\r\n"), facts(*cfg)));
  EXPECT_FALSE(ownPage(request("POST /healthz HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n"), facts(*cfg)));
  // Without a CA there are no /ca pages (the caller answers 404).
  EXPECT_FALSE(ownPage(request("GET /ca.crt HTTP/1.1\r\nHost: p\r\n\r\n"), facts(*cfg)));
  EXPECT_EQ(ownPagePath(request("GET http://p:3128/ca?lang=ja HTTP/1.1\r\nHost: p:3128\r\n\r\n")), "/ca");
}

TEST(LocalPages, TraceEchoesTheRequestWithoutCredentials) {
  auto page = traceEcho(request("TRACE http://a.example/x HTTP/1.1\r\nHost: a.example\r\nCookie: s=1\r\n"
                                "Authorization: Basic x\r\nProxy-Authorization: Basic y\r\nMax-Forwards: 0\r\n\r\n"));
  EXPECT_EQ(page.contentType, "message/http");
  EXPECT_EQ(page.body, "TRACE http://a.example/x HTTP/1.1\r\nHost: a.example\r\nMax-Forwards: 0\r\n\r\n");
}

TEST(LocalPages, HeadsCarryLengthNoStoreAndCloseWhenAsked) {
  LocalPage p = optionsAnswer();
  EXPECT_EQ(localResponseHead(p, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\nCache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\nAllow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT\r\n\r\n");
  EXPECT_NE(localResponseHead(p, true).find("\r\nConnection: close\r\n\r\n"), std::string::npos);
}

TEST(LocalPages, ErrorResponseCarriesTheReferenceAndEscapesTheUrl) {
  ErrorFacts f;
  f.status = 403;
  f.reason = "reputation_block";
  f.url = "http://evil.example/<script>";
  f.detail = "c2 (source feed, rule domain:evil.example)";
  f.client = "10.0.0.7";
  f.refId = "ABCDE-FGHJK";
  f.proxyName = "gw";
  f.acceptLanguage = "ja";
  ErrorResponse r = errorResponse(f);
  EXPECT_EQ(r.head.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << r.head;
  EXPECT_NE(r.head.find("X-Sekisho-Ref: ABCDE-FGHJK\r\n"), std::string::npos);
  EXPECT_NE(r.head.find("Content-Security-Policy: default-src 'none'"), std::string::npos);
  EXPECT_NE(r.head.find("Content-Length: " + std::to_string(r.body.size()) + "\r\n"), std::string::npos);
  EXPECT_NE(r.head.find("Connection: close\r\n\r\n"), std::string::npos);
  EXPECT_EQ(r.body.find("<script>"), std::string::npos) << "the URL is escaped";
  EXPECT_NE(r.body.find("ABCDE-FGHJK"), std::string::npos);
}
