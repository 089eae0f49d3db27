#include "proxy/http1/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sekisho::http1 {
namespace {

using namespace std::string_literals;
using http::BodyKind;
using http::TargetForm;
using ::testing::AssertionFailure;
using ::testing::AssertionResult;
using ::testing::AssertionSuccess;

const char* kindName(ErrKind k) {
  switch (k) {
    case ErrKind::BadRequest:
      return "BadRequest";
    case ErrKind::AmbiguousFraming:
      return "AmbiguousFraming";
    case ErrKind::UriTooLong:
      return "UriTooLong";
    case ErrKind::HeadTooLarge:
      return "HeadTooLarge";
    case ErrKind::NotImplemented:
      return "NotImplemented";
    case ErrKind::BadResponse:
      return "BadResponse";
    default:
      return "other";
  }
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r')
      out += "\\r";
    else if (c == '\n')
      out += "\\n";
    else if (c < 0x20 || c >= 0x7f)
      out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
    else
      out += char(c);
  }
  return out;
}

Result<http::RequestHead> req(std::string_view head, const Limits& limits = {}) {
  return parseRequestHead(head, limits);
}

// A request head with the given request line and extra field lines (Host: a is added first).
std::string withHost(std::string_view requestLine, std::string_view fields = "") {
  return std::string(requestLine) + "\r\nHost: a\r\n" + std::string(fields) + "\r\n";
}

AssertionResult rejectsRequest(std::string_view head, ErrKind kind, const Limits& limits = {}) {
  auto r = parseRequestHead(head, limits);
  if (r) return AssertionFailure() << "accepted " << printable(head);
  if (r.error().kind != kind)
    return AssertionFailure() << printable(head) << ": got " << kindName(r.error().kind) << " ("
                              << r.error().detail << "), want " << kindName(kind);
  if (r.error().side != Side::Downstream) return AssertionFailure() << "side is not Downstream";
  if (r.error().detail.empty()) return AssertionFailure() << "empty detail";
  return AssertionSuccess();
}

AssertionResult rejectsResponse(std::string_view head, std::string_view method = "GET") {
  auto r = parseResponseHead(head, Limits{}, method);
  if (r) return AssertionFailure() << "accepted " << printable(head);
  if (r.error().kind != ErrKind::BadResponse)
    return AssertionFailure() << printable(head) << ": got " << kindName(r.error().kind) << " ("
                              << r.error().detail << ")";
  if (r.error().side != Side::Upstream) return AssertionFailure() << "side is not Upstream";
  if (r.error().detail.empty()) return AssertionFailure() << "empty detail";
  return AssertionSuccess();
}

// ---- findHeadEnd ----

TEST(Http1HeadEnd, FindsEveryTerminatorVariant) {
  EXPECT_EQ(findHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY"), 27u);
  EXPECT_EQ(findHeadEnd("GET / HTTP/1.1\nHost: a\n\nBODY"), 24u);
  EXPECT_EQ(findHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n\nBODY"), 26u);
  EXPECT_EQ(findHeadEnd("GET / HTTP/1.1\nHost: a\n\r\nBODY"), 25u);
}

TEST(Http1HeadEnd, ReturnsZeroWhileIncomplete) {
  EXPECT_EQ(findHeadEnd(""), 0u);
  EXPECT_EQ(findHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n"), 0u);
  EXPECT_EQ(findHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n\r"), 0u);
  EXPECT_EQ(findHeadEnd("GET / HTTP/1.1\r\nHost: a\r\r\n"), 0u);
  EXPECT_EQ(findHeadEnd("\r"), 0u);
  EXPECT_EQ(findHeadEnd("\r\n"), 0u);
}

TEST(Http1HeadEnd, SkipsLeadingEmptyLines) {
  std::string s = "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(findHeadEnd(s), s.size());
  // More than four leading empty lines end the "head" early; the parser then refuses it.
  std::string many = "\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  size_t end = findHeadEnd(many);
  ASSERT_NE(end, 0u);
  EXPECT_TRUE(rejectsRequest(std::string_view(many).substr(0, end), ErrKind::BadRequest));
}

TEST(Http1HeadEnd, ResumesAtEverySplitPoint) {
  const std::vector<std::string> heads = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1\r\nHost: a\r\n\n",
      "GET / HTTP/1.1\nHost: a\n\r\n",     "\r\nGET / HTTP/1.1\r\n\r\n",  "\n\nGET / HTTP/1.0\n\n"};
  for (const auto& h : heads) {
    std::string data = h + "tail";
    size_t want = findHeadEnd(data);
    ASSERT_EQ(want, h.size()) << printable(h);
    for (size_t a = 0; a <= data.size(); ++a) {
      for (size_t b = a; b <= data.size(); ++b) {
        size_t got = findHeadEnd(std::string_view(data).substr(0, a));
        if (got == 0) got = findHeadEnd(std::string_view(data).substr(0, b), a);
        if (got == 0) got = findHeadEnd(data, b);
        ASSERT_EQ(got, want) << printable(h) << " split " << a << "," << b;
      }
    }
  }
}

// ---- Requests: good forms ----

TEST(Http1Request, ParsesOriginFormAndTakesHostFromHeader) {
  auto r = req("GET /index.html?q=1 HTTP/1.1\r\nHost: WWW.Example.COM:8080\r\nUser-Agent: t\r\n\r\n");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->target, "/index.html?q=1");
  EXPECT_EQ(r->form, TargetForm::Origin);
  EXPECT_EQ(r->versionMinor, 1);
  EXPECT_EQ(r->host, "www.example.com");
  EXPECT_EQ(r->port, 8080);
  EXPECT_EQ(r->path, "/index.html?q=1");
  EXPECT_EQ(r->scheme, "");
  ASSERT_EQ(r->headers.items.size(), 2u);
  EXPECT_EQ(r->headers.items[0].name, "Host");
  EXPECT_EQ(r->headers.items[1].value, "t");
  EXPECT_EQ(r->body, BodyKind::None);
  EXPECT_TRUE(r->keepAlive);
  EXPECT_FALSE(r->expectContinue);
}

TEST(Http1Request, OriginFormDefaultsToPort80) {
  auto r = req("GET / HTTP/1.1\r\nHost: proxy.local\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->port, 80);
  auto r10 = req("GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r10);
  EXPECT_EQ(r10->host, "");
  EXPECT_EQ(r10->port, 80);
}

TEST(Http1Request, ParsesAbsoluteForm) {
  auto r = req("GET http://Example.COM/a/b?c=d HTTP/1.1\r\nHost: other.example\r\n\r\n");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->form, TargetForm::Absolute);
  EXPECT_EQ(r->scheme, "http");
  EXPECT_EQ(r->host, "example.com");  // the target wins over Host (RFC 9112 §3.2.2)
  EXPECT_EQ(r->port, 80);
  EXPECT_EQ(r->path, "/a/b?c=d");
  EXPECT_EQ(r->target, "http://Example.COM/a/b?c=d");
}

TEST(Http1Request, AbsoluteFormSchemeIsCaseInsensitiveAndSetsDefaultPort) {
  auto r = req(withHost("GET HTTPS://a.example/x HTTP/1.1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->scheme, "https");
  EXPECT_EQ(r->port, 443);
  auto r2 = req(withHost("GET hTtP://a.example:8443/x HTTP/1.1"));
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->scheme, "http");
  EXPECT_EQ(r2->port, 8443);
}

TEST(Http1Request, AbsoluteFormWithEmptyPathUsesSlash) {
  auto r = req(withHost("GET http://a.example HTTP/1.1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path, "/");
  auto q = req(withHost("GET http://a.example?x=1&y HTTP/1.1"));
  ASSERT_TRUE(q);
  EXPECT_EQ(q->path, "/?x=1&y");
  EXPECT_EQ(q->target, "http://a.example?x=1&y");
  EXPECT_EQ(q->method, "GET");
  EXPECT_EQ(q->host, "a.example");
  auto e = req(withHost("GET http://a.example:/p HTTP/1.1"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 80);  // RFC 3986 §3.2.3: empty port means the default
}

TEST(Http1Request, AcceptsAtSignInPathAndQuery) {
  auto r = req(withHost("GET http://a.example/u@x?m=a@b HTTP/1.1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->host, "a.example");
}

TEST(Http1Request, ParsesIpLiterals) {
  auto r = req(withHost("GET http://[2001:DB8::1]:8080/ HTTP/1.1"));
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->host, "2001:db8::1");
  EXPECT_EQ(r->port, 8080);
  auto m = req(withHost("GET http://[::ffff:10.1.2.3]/ HTTP/1.1"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->host, "::ffff:10.1.2.3");
  auto v4 = req(withHost("GET http://192.0.2.10:81/ HTTP/1.1"));
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "192.0.2.10");
  EXPECT_EQ(v4->port, 81);
  auto h = req("GET / HTTP/1.1\r\nHost: [::1]:3128\r\n\r\n");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->host, "::1");
  EXPECT_EQ(h->port, 3128);
}

TEST(Http1Request, AcceptsRegNameCharacters) {
  auto r = req(withHost("GET http://a-b_c~d.e.example./ HTTP/1.1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->host, "a-b_c~d.e.example.");
  EXPECT_TRUE(req(withHost("GET http://1password.example/ HTTP/1.1")));
  EXPECT_TRUE(req(withHost("GET http://123.example/ HTTP/1.1")));
}

TEST(Http1Request, ParsesConnectAuthorityForm) {
  auto r = req("CONNECT Example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->form, TargetForm::Authority);
  EXPECT_EQ(r->host, "example.com");
  EXPECT_EQ(r->port, 443);
  EXPECT_EQ(r->body, BodyKind::None);
  auto v6 = req("CONNECT [2001:db8::2]:8443 HTTP/1.1\r\nHost: [2001:db8::2]:8443\r\n\r\n");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "2001:db8::2");
  EXPECT_EQ(v6->port, 8443);
}

TEST(Http1Request, ParsesAsteriskFormOnlyForOptions) {
  auto r = req("OPTIONS * HTTP/1.1\r\nHost: a:81\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->form, TargetForm::Asterisk);
  EXPECT_EQ(r->path, "*");
  EXPECT_EQ(r->port, 81);
  EXPECT_TRUE(rejectsRequest(withHost("GET * HTTP/1.1"), ErrKind::BadRequest));
}

TEST(Http1Request, AcceptsBareLfLineEndsAndLeadingEmptyLines) {
  auto r = req("\r\n\n\r\n\nGET / HTTP/1.1\nHost: a\nX: 1\n\n");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->headers.items.size(), 2u);
  EXPECT_TRUE(rejectsRequest("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", ErrKind::BadRequest));
}

TEST(Http1Request, TrimsValuesAndKeepsObsText) {
  auto r = req("GET / HTTP/1.1\r\nHost: a\r\nX-A: \t a \tb \t\r\nX-B:\r\nX-C: caf\xc3\xa9\r\n\r\n");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->headers.items[1].value, "a \tb");
  EXPECT_EQ(r->headers.items[2].value, "");
  EXPECT_EQ(r->headers.items[3].value, "caf\xc3\xa9");
  EXPECT_EQ(r->headers.find("x-c")->value, "caf\xc3\xa9");
}

TEST(Http1Request, ViewsPointIntoItsOwnCopy) {
  std::string raw =
      "POST http://a.example?q HTTP/1.1\r\nHost: a.example\r\nX-Long: " + std::string(100, 'v') +
      "\r\nContent-Length: 3\r\n\r\n";
  auto r = req(raw);
  ASSERT_TRUE(r);
  http::RequestHead moved = std::move(*r);
  std::fill(raw.begin(), raw.end(), 'Z');
  EXPECT_EQ(moved.method, "POST");
  EXPECT_EQ(moved.path, "/?q");
  EXPECT_EQ(moved.headers.find("X-Long")->value, std::string(100, 'v'));
  EXPECT_EQ(moved.storage.view().substr(0, 4), "POST");
  EXPECT_EQ(moved.storage.size, raw.size());
}

// ---- Requests: request line ----

TEST(Http1Request, RejectsMalformedRequestLines) {
  EXPECT_TRUE(rejectsRequest(withHost("GET  / HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET /  HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost(" GET / HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1 "), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET\t/ HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET /\tHTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GE(T / HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET /"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET /a\x7f HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET /a\x01 HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET /a\0b HTTP/1.1"s), ErrKind::BadRequest));
}

TEST(Http1Request, RejectsBadVersions) {
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/2.0"), ErrKind::NotImplemented));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.2"), ErrKind::NotImplemented));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/0.9"), ErrKind::NotImplemented));
  EXPECT_TRUE(rejectsRequest(withHost("GET / http/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1x"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/11"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.10"), ErrKind::BadRequest));
}

TEST(Http1Request, RejectsOverlongRequestLineWithUriTooLong) {
  Limits l;
  l.maxRequestLine = 64;
  std::string line = "GET /" + std::string(64 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(line.size(), 64u);
  EXPECT_TRUE(req(withHost(line), l));
  std::string longer = "GET /" + std::string(64 - 13, 'a') + " HTTP/1.1";
  EXPECT_TRUE(rejectsRequest(withHost(longer), ErrKind::UriTooLong, l));
  // Also when the line never ends.
  EXPECT_TRUE(rejectsRequest("GET /" + std::string(100, 'a'), ErrKind::UriTooLong, l));
  EXPECT_TRUE(rejectsRequest(withHost("GET /" + std::string(9000, 'a') + " HTTP/1.1"), ErrKind::UriTooLong));
}

// ---- Requests: targets ----

TEST(Http1Request, RejectsUnsupportedSchemesAsNotImplemented) {
  EXPECT_TRUE(rejectsRequest(withHost("GET ftp://a.example/ HTTP/1.1"), ErrKind::NotImplemented));
  EXPECT_TRUE(rejectsRequest(withHost("GET ws://a.example/ HTTP/1.1"), ErrKind::NotImplemented));
  EXPECT_TRUE(rejectsRequest(withHost("GET httpx://a.example/ HTTP/1.1"), ErrKind::NotImplemented));
}

TEST(Http1Request, RejectsUnrecognisedTargetForms) {
  EXPECT_TRUE(rejectsRequest(withHost("GET a.example:80 HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET http:/a.example/ HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET ://a.example/ HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET 1http://a.example/ HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET index.html HTTP/1.1"), ErrKind::BadRequest));
}

TEST(Http1Request, RejectsUserinfo) {
  EXPECT_TRUE(rejectsRequest(withHost("GET http://user@a.example/ HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET http://user:pw@a.example/ HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET http://a.example@evil.example/ HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET http://@a.example/ HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(
      rejectsRequest("CONNECT u@a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\nHost: u@a.example\r\n\r\n", ErrKind::BadRequest));
}

TEST(Http1Request, RejectsFragments) {
  EXPECT_TRUE(rejectsRequest(withHost("GET http://a.example/#frag HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET http://a.example#frag HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET /a?b#c HTTP/1.1"), ErrKind::BadRequest));
}

TEST(Http1Request, RejectsBadPorts) {
  for (const char* port : {"0", "65536", "99999", "-1", "8o", "80:80", "+80", " 80", "4294967377"}) {
    EXPECT_TRUE(rejectsRequest(withHost(std::string("GET http://a.example:") + port + "/ HTTP/1.1"),
                               ErrKind::BadRequest))
        << port;
  }
  auto max = req(withHost("GET http://a.example:65535/ HTTP/1.1"));
  ASSERT_TRUE(max);
  EXPECT_EQ(max->port, 65535);
  auto zeros = req(withHost("GET http://a.example:0080/ HTTP/1.1"));
  ASSERT_TRUE(zeros);
  EXPECT_EQ(zeros->port, 80);
}

TEST(Http1Request, RejectsBadHosts) {
  for (const char* target :
       {"http:///p", "http://:80/", "http://a%2eb/", "http://a b/", "http://a!b/", "http://a,b/",
        "http://[::1/", "http://[zz::1]/", "http://[fe80::1%25eth0]/", "http://[::1]x/", "http://[::1]:/",
        "http://[]/", "http://[v1.fe]/", "http://::1/", "http://[1.2.3.4]/", "http://[::1]]/"}) {
    std::string t = target;
    if (t == "http://a b/") continue;  // a space splits the request line; covered elsewhere
    if (t == "http://[::1]:/") {
      // An empty port after an IPv6 literal means the default.
      EXPECT_TRUE(req(withHost("GET " + t + " HTTP/1.1")));
      continue;
    }
    EXPECT_TRUE(rejectsRequest(withHost("GET " + t + " HTTP/1.1"), ErrKind::BadRequest)) << t;
  }
  EXPECT_TRUE(
      rejectsRequest(withHost("GET http://" + std::string(256, 'a') + "/ HTTP/1.1"), ErrKind::BadRequest));
  EXPECT_TRUE(req(withHost("GET http://" + std::string(255, 'a') + "/ HTTP/1.1")));
}

TEST(Http1Request, RejectsNumericHostsThatAreNotDottedQuads) {
  // Resolvers read these as IPv4 addresses, so an access check on the text would be bypassed.
  for (const char* host : {"127.1", "0x7f.0.0.1", "0177.0.0.1", "2130706433", "1.2.3.256", "1.2.3.4.5",
                           "1.2.3.4.", "a.123", "a.0x", "01.2.3.4", "0x7f000001", "1.2.3.0X1"}) {
    EXPECT_TRUE(
        rejectsRequest(withHost(std::string("GET http://") + host + "/ HTTP/1.1"), ErrKind::BadRequest))
        << host;
  }
  EXPECT_TRUE(req(withHost("GET http://0.0.0.0/ HTTP/1.1")));
  EXPECT_TRUE(req(withHost("GET http://255.255.255.255/ HTTP/1.1")));
  EXPECT_TRUE(req(withHost("GET http://a.0xg/ HTTP/1.1")));
}

TEST(Http1Request, RejectsConnectWithoutAuthorityForm) {
  for (const char* target : {"a.example", "a.example:", "a.example:0", "a.example:65536", "a.example:https",
                             "/", "http://a.example:443/", "*", "[::1]", ":443", "a.example:443/"}) {
    EXPECT_TRUE(rejectsRequest(std::string("CONNECT ") + target + " HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
                               ErrKind::BadRequest))
        << target;
  }
}

// ---- Requests: field syntax ----

TEST(Http1Request, RejectsObsFold) {
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X-A: a\r\n b\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X-A: a\r\n\tb\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\n Host: a\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\n\tHost: a\n\n", ErrKind::BadRequest));
}

TEST(Http1Request, RejectsWhitespaceBeforeColon) {
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X-A : a\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\nHost : a\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(
      rejectsRequest(withHost("POST / HTTP/1.1", "Transfer-Encoding : chunked\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length\t: 5\r\n"), ErrKind::BadRequest));
}

TEST(Http1Request, RejectsBadFieldNames) {
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X\tY: a\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X Y: a\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", ": a\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X-A\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X(A): a\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X\xc3\xa9: a\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X\0A: a\r\n"s), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X\x7f: a\r\n"), ErrKind::BadRequest));
}

TEST(Http1Request, RejectsBareCrAnywhere) {
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X\rA: a\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X-A: a\rb\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X-A: a\r\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "X-A: a\rX-B: b\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", "\r\r\n"), ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", ErrKind::BadRequest));
}

TEST(Http1Request, RejectsNulDelAndOtherControlsInValues) {
  for (int c = 0; c < 0x20; ++c) {
    if (c == '\t' || c == '\n') continue;
    std::string field = std::string("X-A: a") + char(c) + "b\r\n";
    EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1", field), ErrKind::BadRequest)) << c;
  }
  EXPECT_TRUE(rejectsRequest(withHost("GET / HTTP/1.1",
                                      "X-A: a\x7f"
                                      "b\r\n"),
                             ErrKind::BadRequest));
  for (int c = 0x80; c < 0x100; ++c) {
    std::string field = std::string("X-A: a") + char(c) + "b\r\n";
    ASSERT_TRUE(req(withHost("GET / HTTP/1.1", field))) << c;
  }
}

TEST(Http1Request, RejectsUnterminatedHeadAndTrailingBytes) {
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\nHost: a\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\nHost: a", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\nX", ErrKind::BadRequest));
}

TEST(Http1Request, RejectsTooManyHeadersAndOversizedHeads) {
  Limits l;
  l.maxHeaders = 3;
  EXPECT_TRUE(req(withHost("GET / HTTP/1.1", "A: 1\r\nB: 2\r\n"), l));
  EXPECT_TRUE(
      rejectsRequest(withHost("GET / HTTP/1.1", "A: 1\r\nB: 2\r\nC: 3\r\n"), ErrKind::HeadTooLarge, l));
  std::string big = withHost("GET / HTTP/1.1", "X-Big: " + std::string(70000, 'x') + "\r\n");
  EXPECT_TRUE(rejectsRequest(big, ErrKind::HeadTooLarge));
  Limits small;
  small.maxHeadBytes = 40;
  std::string h = "GET / HTTP/1.1\r\nHost: a\r\nX: 01234567\r\n\r\n";
  ASSERT_EQ(h.size(), 40u);
  EXPECT_TRUE(req(h, small));
  EXPECT_TRUE(
      rejectsRequest("GET / HTTP/1.1\r\nHost: a\r\nX: 012345678\r\n\r\n", ErrKind::HeadTooLarge, small));
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 100; ++i) many += "X: y\r\n";
  EXPECT_TRUE(rejectsRequest(many + "\r\n", ErrKind::HeadTooLarge));
}

// ---- Requests: Host ----

TEST(Http1Request, RejectsMissingHostInHttp11) {
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET http://a.example/ HTTP/1.1\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("CONNECT a.example:443 HTTP/1.1\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(req("GET http://a.example/ HTTP/1.0\r\n\r\n"));
}

TEST(Http1Request, RejectsTwoHosts) {
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(rejectsRequest("GET http://a/ HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", ErrKind::BadRequest));
}

TEST(Http1Request, RejectsInvalidHostValues) {
  for (const char* host : {"", "a b", "a:0", "a:x", "a:65536", "[::1", "a/b", "a?b", "a,b", "a:80:81",
                           "127.1", "a%41", "u:p@a"}) {
    EXPECT_TRUE(
        rejectsRequest(std::string("GET / HTTP/1.1\r\nHost: ") + host + "\r\n\r\n", ErrKind::BadRequest))
        << host;
  }
  // Even when the absolute-form target supplies the authority.
  EXPECT_TRUE(rejectsRequest("GET http://a.example/ HTTP/1.1\r\nHost: a b\r\n\r\n", ErrKind::BadRequest));
  EXPECT_TRUE(req("GET / HTTP/1.1\r\nHost: a.example:\r\n\r\n"));
}

// ---- Requests: framing ----

TEST(Http1Request, ParsesContentLength) {
  auto r = req(withHost("POST / HTTP/1.1", "Content-Length: 5\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, BodyKind::ContentLength);
  EXPECT_EQ(r->contentLength, 5u);
  auto z = req(withHost("POST / HTTP/1.1", "Content-Length: 007\r\n"));
  ASSERT_TRUE(z);
  EXPECT_EQ(z->contentLength, 7u);
  auto max = req(withHost("POST / HTTP/1.1", "Content-Length: 9223372036854775807\r\n"));
  ASSERT_TRUE(max);
  EXPECT_EQ(max->contentLength, 9223372036854775807u);
}

TEST(Http1Request, MergesIdenticalContentLengths) {
  auto a = req(withHost("POST / HTTP/1.1", "Content-Length: 5\r\nContent-Length: 5\r\n"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->contentLength, 5u);
  auto b = req(withHost("POST / HTTP/1.1", "Content-Length: 5, 5,5\r\n"));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->contentLength, 5u);
  auto c = req(withHost("POST / HTTP/1.1", "Content-Length: 5\r\ncontent-length: 005\r\n"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->contentLength, 5u);
}

TEST(Http1Request, RejectsDifferingContentLengths) {
  EXPECT_TRUE(rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length: 5\r\nContent-Length: 6\r\n"),
                             ErrKind::AmbiguousFraming));
  EXPECT_TRUE(
      rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length: 5,6\r\n"), ErrKind::AmbiguousFraming));
  EXPECT_TRUE(
      rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length:  5,6\r\n"), ErrKind::AmbiguousFraming));
  EXPECT_TRUE(rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length: 0\r\nContent-Length: 10\r\n"),
                             ErrKind::AmbiguousFraming));
}

TEST(Http1Request, RejectsContentLengthOverflow) {
  EXPECT_TRUE(rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length: 9223372036854775808\r\n"),
                             ErrKind::AmbiguousFraming));  // 2^63
  EXPECT_TRUE(rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length: 18446744073709551616\r\n"),
                             ErrKind::AmbiguousFraming));  // 2^64, wraps to 0 in a naive parser
  EXPECT_TRUE(rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length: 18446744073709551621\r\n"),
                             ErrKind::AmbiguousFraming));  // 2^64 + 5
  EXPECT_TRUE(rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length: 99999999999999999999999999\r\n"),
                             ErrKind::AmbiguousFraming));
}

TEST(Http1Request, RejectsMalformedContentLength) {
  for (const char* v : {"+5", "-5", "5 5", "0x5", "5.0", "5a", "", ",", " , ", "1e3", "\xd9\xa5"}) {
    EXPECT_TRUE(rejectsRequest(withHost("POST / HTTP/1.1", std::string("Content-Length: ") + v + "\r\n"),
                               ErrKind::BadRequest))
        << v;
  }
}

TEST(Http1Request, ParsesChunkedTransferEncoding) {
  for (const char* v : {"chunked", "Chunked", "CHUNKED", "  chunked  ", "chunked,", ", chunked"}) {
    auto r = req(withHost("POST / HTTP/1.1", std::string("Transfer-Encoding: ") + v + "\r\n"));
    ASSERT_TRUE(r) << v << ": " << r.error().detail;
    EXPECT_EQ(r->body, BodyKind::Chunked);
  }
}

TEST(Http1Request, RejectsTransferEncodingWithContentLength) {
  EXPECT_TRUE(
      rejectsRequest(withHost("POST / HTTP/1.1", "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"),
                     ErrKind::AmbiguousFraming));
  EXPECT_TRUE(
      rejectsRequest(withHost("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
                     ErrKind::AmbiguousFraming));
  EXPECT_TRUE(
      rejectsRequest(withHost("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"),
                     ErrKind::AmbiguousFraming));
  EXPECT_TRUE(rejectsRequest(withHost("POST / HTTP/1.1", "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n"),
                             ErrKind::AmbiguousFraming));
}

TEST(Http1Request, RejectsTransferEncodingOtherThanChunked) {
  for (const char* v : {"xchunked", "chunkedx", "chunked, identity", "identity", "chunked, chunked",
                        "gzip, chunked", "chunked;q=1", "", " ", ",", "\"chunked\"", "chunked\x0b"}) {
    std::string fields = std::string("Transfer-Encoding: ") + v + "\r\n";
    auto r = parseRequestHead(withHost("POST / HTTP/1.1", fields), Limits{});
    ASSERT_FALSE(r) << v;
    EXPECT_EQ(r.error().kind, ErrKind::BadRequest) << v;
  }
  EXPECT_TRUE(rejectsRequest(
      withHost("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
      ErrKind::BadRequest));
  EXPECT_TRUE(
      rejectsRequest(withHost("POST / HTTP/1.1", "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
                     ErrKind::BadRequest));
  // A recipient that keeps only the last line would see no Transfer-Encoding at all.
  EXPECT_TRUE(
      rejectsRequest(withHost("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n"),
                     ErrKind::BadRequest));
  EXPECT_TRUE(
      rejectsRequest(withHost("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: ,\r\n"),
                     ErrKind::BadRequest));
}

TEST(Http1Request, RejectsTransferEncodingInHttp10) {
  EXPECT_TRUE(rejectsRequest("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ErrKind::BadRequest));
}

TEST(Http1Request, DecidesKeepAlive) {
  auto ka = [](std::string_view head) {
    auto r = parseRequestHead(head, Limits{});
    EXPECT_TRUE(r) << printable(head);
    return r && r->keepAlive;
  };
  EXPECT_TRUE(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: close\r\n\r\n"));
  EXPECT_TRUE(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  EXPECT_TRUE(ka("GET / HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\nProxy-Connection: close\r\n\r\n"));
}

TEST(Http1Request, DetectsExpectContinue) {
  auto r = req(withHost("POST / HTTP/1.1", "Expect: 100-Continue\r\nContent-Length: 1\r\n"));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->expectContinue);
  auto o = req(withHost("POST / HTTP/1.1", "Expect: 100-continue-x\r\nContent-Length: 1\r\n"));
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->expectContinue);
}

TEST(Http1Request, ParsesTypicalBrowserHead) {
  std::string h =
      "GET http://www.example.co.jp/news/index.html?id=42 HTTP/1.1\r\n"
      "Host: www.example.co.jp\r\n"
      "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36\r\n"
      "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
      "Accept-Language: ja,en-US;q=0.9,en;q=0.8\r\n"
      "Accept-Encoding: gzip, deflate\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "Upgrade-Insecure-Requests: 1\r\n"
      "Cookie: session=abcdef0123456789\r\n\r\n";
  auto r = req(h);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->headers.items.size(), 8u);
  EXPECT_EQ(r->host, "www.example.co.jp");
  EXPECT_EQ(r->path, "/news/index.html?id=42");
  EXPECT_TRUE(r->keepAlive);
  EXPECT_EQ(r->headers.find("accept-language")->value, "ja,en-US;q=0.9,en;q=0.8");
}

// ---- Responses ----

TEST(Http1Response, ParsesStatusLineAndContentLength) {
  auto r = parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n", Limits{}, "GET");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->versionMinor, 1);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->reason, "OK");
  EXPECT_EQ(r->body, BodyKind::ContentLength);
  EXPECT_EQ(r->contentLength, 5u);
  EXPECT_TRUE(r->keepAlive);
  EXPECT_EQ(r->headers.items.size(), 2u);
}

TEST(Http1Response, AcceptsEmptyOrMissingReasonAndObsText) {
  auto a = parseResponseHead("HTTP/1.1 204 \r\n\r\n", Limits{}, "GET");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, "");
  auto b = parseResponseHead("HTTP/1.1 204\r\n\r\n", Limits{}, "GET");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, 204);
  auto c = parseResponseHead("HTTP/1.0 200 \xe6\x88\x90\xe5\x8a\x9f\tok\r\n\r\n", Limits{}, "GET");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->reason, "\xe6\x88\x90\xe5\x8a\x9f\tok");
  EXPECT_TRUE(parseResponseHead("HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n", Limits{}, "GET"));
  EXPECT_TRUE(parseResponseHead("HTTP/1.1 200 OK\nContent-Length: 0\n\n", Limits{}, "GET"));
}

TEST(Http1Response, RejectsBadStatusLines) {
  for (const char* line :
       {"HTTP/1.1 99 X", "HTTP/1.1 099 X", "HTTP/1.1 000", "HTTP/1.1 2000 X", "HTTP/1.1 20 X",
        "HTTP/1.1 abc X", "HTTP/2 200 OK", "HTTP/2.0 200 OK", "HTTP/1.2 200 OK", "HTTP/1.1  200 OK",
        "HTTP/1.1 200\tOK", "http/1.1 200 OK", "HTTP/1.1 200 O\x01K", "HTTP/1.1 200 O\x7fK",
        "HTTP/1.1 200 OK\r", "ICY 200 OK", "", "HTTP/1.1"}) {
    EXPECT_TRUE(rejectsResponse(std::string(line) + "\r\nContent-Length: 0\r\n\r\n")) << line;
  }
}

TEST(Http1Response, RejectsBadFieldsAsBadResponse) {
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n"s));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"));
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 101; ++i) many += "X: y\r\n";
  EXPECT_TRUE(rejectsResponse(many + "\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'x') + "\r\n\r\n"));
}

TEST(Http1Response, RejectsBadContentLengthAsBadResponse) {
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nContent-Length: 5,6\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n"));
  auto same =
      parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", Limits{}, "GET");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->contentLength, 5u);
}

TEST(Http1Response, HasNoBodyFor1xx204304AndHead) {
  for (const char* head : {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                           "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
                           "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    auto r = parseResponseHead(head, Limits{}, "GET");
    ASSERT_TRUE(r) << head;
    EXPECT_EQ(r->body, BodyKind::None) << head;
    EXPECT_TRUE(r->keepAlive) << head;
  }
  auto h = parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", Limits{}, "HEAD");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->body, BodyKind::None);
  auto hc = parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, "HEAD");
  ASSERT_TRUE(hc);
  EXPECT_EQ(hc->body, BodyKind::None);
}

TEST(Http1Response, HasNoBodyFor2xxToConnect) {
  auto r = parseResponseHead("HTTP/1.1 200 Connection established\r\n\r\n", Limits{}, "CONNECT");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, BodyKind::None);
  auto denied = parseResponseHead("HTTP/1.1 407 Auth\r\nContent-Length: 4\r\n\r\n", Limits{}, "CONNECT");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->body, BodyKind::ContentLength);
}

TEST(Http1Response, UsesChunkedWhenItIsTheFinalCoding) {
  auto r = parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", Limits{}, "GET");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, BodyKind::Chunked);
  EXPECT_TRUE(r->keepAlive);
  auto two = parseResponseHead(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, "GET");
  ASSERT_TRUE(two);
  EXPECT_EQ(two->body, BodyKind::Chunked);
}

TEST(Http1Response, IgnoresContentLengthBesideChunkedAndClosesAfter) {
  auto r = parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n",
                             Limits{}, "GET");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, BodyKind::Chunked);
  EXPECT_FALSE(r->keepAlive);
}

TEST(Http1Response, ReadsUntilCloseWhenChunkedIsNotFinal) {
  for (const char* te : {"gzip", "chunked, gzip", "identity"}) {
    auto r = parseResponseHead(std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: ") + te + "\r\n\r\n",
                               Limits{}, "GET");
    ASSERT_TRUE(r) << te;
    EXPECT_EQ(r->body, BodyKind::CloseDelimited) << te;
    EXPECT_FALSE(r->keepAlive) << te;
  }
}

TEST(Http1Response, RejectsBrokenTransferEncoding) {
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_TRUE(rejectsResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n"));
}

TEST(Http1Response, ReadsUntilCloseWithoutFraming) {
  auto r = parseResponseHead("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", Limits{}, "GET");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, BodyKind::CloseDelimited);
  EXPECT_FALSE(r->keepAlive);
}

TEST(Http1Response, DecidesKeepAliveFromVersionAndConnection) {
  auto ka = [](std::string_view head) {
    auto r = parseResponseHead(head, Limits{}, "GET");
    EXPECT_TRUE(r) << printable(head);
    return r && r->keepAlive;
  };
  EXPECT_TRUE(ka("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_FALSE(ka("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_FALSE(ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_TRUE(ka("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"));
  // Proxy-Connection is a request-side habit of browsers; origins' copies are ignored.
  EXPECT_TRUE(ka("HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 0\r\n\r\n"));
}

TEST(Http1ErrorStatus, MapsKindsToStatuses) {
  EXPECT_EQ(statusFor(ErrKind::BadRequest), 400);
  EXPECT_EQ(statusFor(ErrKind::AmbiguousFraming), 400);
  EXPECT_EQ(statusFor(ErrKind::UriTooLong), 414);
  EXPECT_EQ(statusFor(ErrKind::HeadTooLarge), 431);
  EXPECT_EQ(statusFor(ErrKind::BodyTooLarge), 413);
  EXPECT_EQ(statusFor(ErrKind::NotImplemented), 501);
  EXPECT_EQ(statusFor(ErrKind::BadResponse), 502);
  EXPECT_EQ(statusFor(ErrKind::Timeout), 504);
  EXPECT_EQ(statusFor(ErrKind::Forbidden), 403);
  EXPECT_EQ(statusFor(ErrKind::Internal), 500);
  EXPECT_EQ(statusFor(ErrKind::Io), 500);
}

}  // namespace
}  // namespace sekisho::http1
