// Plain HTTP proxying, CONNECT, access control, pages about the proxy itself, loops and the access
// log: the real `sekisho` in front of the test origin.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

using testorigin::matchesPattern;
using testorigin::patternString;

// What the origin received, taken apart from an /echo response body.
struct Upstream {
  std::string head;  // request line + fields + empty line, as received
  std::string requestLine;
  HeaderList fields;
  std::string body;  // body bytes as received (chunked framing included)
};

Upstream splitEcho(const std::string& echoBody) {
  Upstream u;
  size_t end = findHeadEnd(echoBody);
  u.head = echoBody.substr(0, end);
  u.body = echoBody.substr(end);
  u.requestLine = u.head.substr(0, u.head.find('\n'));
  if (!u.requestLine.empty() && u.requestLine.back() == '\r') u.requestLine.pop_back();
  u.fields = parseHeaderFields(u.head);
  return u;
}

// "1.1 sekisho-test (sekisho/...)" somewhere in `via` (std::regex is avoided: GCC 12 warns inside it
// under the sanitizer build).
bool hasOurViaEntry(std::string_view via) {
  constexpr std::string_view kEntry = "1.1 sekisho-test (sekisho";
  size_t at = via.find(kEntry);
  return at != std::string_view::npos && via.find(')', at + kEntry.size()) != std::string_view::npos;
}

bool isDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

size_t countFields(const HeaderList& fields, std::string_view name) {
  size_t n = 0;
  for (const auto& [k, v] : fields) {
    if (k.size() == name.size() && containsNoCase(k, name)) ++n;
  }
  return n;
}

class ProxyHttp : public ProxyTest {
 protected:
  Response echoVia(std::string_view request) {
    Response r = viaProxy(request);
    EXPECT_TRUE(r.complete) << r.summary();
    EXPECT_EQ(r.status, 200) << r.summary();
    return r;
  }

  int connectStatus(uint16_t port, Response* out = nullptr) {
    Client c(proxy().port());
    std::string target = "127.0.0.1:" + std::to_string(port);
    ReadOptions o;
    o.method = "CONNECT";
    Response r = c.roundTrip("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n", o);
    if (out) *out = r;
    return r.status;
  }

  void expectPacPage(std::string_view path) {
    std::string self = proxy().authority();
    Response r = viaProxy("GET " + std::string(path) + " HTTP/1.1\r\nHost: " + self + "\r\n\r\n");
    ASSERT_TRUE(r.complete) << r.summary();
    EXPECT_EQ(r.status, 200) << r.summary();
    auto ct = r.header("Content-Type");
    ASSERT_TRUE(ct) << r.summary();
    EXPECT_TRUE(containsNoCase(*ct, "application/x-ns-proxy-autoconfig")) << *ct;
    EXPECT_NE(r.body.find("FindProxyForURL"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("PROXY " + self), std::string::npos) << r.body;
  }
};

TEST_F(ProxyHttp, ForwardsAbsoluteFormGetWithBodyIntact) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Response r = viaProxy(getRequest(origin().url("/size/100000")));
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.bodyBytes, 100000u);
  EXPECT_TRUE(matchesPattern(r.body, 0)) << "body differs from what the origin sent";
}

TEST_F(ProxyHttp, RewritesHostFromAbsoluteUri) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  // RFC 9112 §3.2.2: the authority of an absolute-form target replaces any Host field.
  Response r =
      echoVia("GET " + origin().url("/echo") + " HTTP/1.1\r\nHost: conflicting.example:8080\r\n\r\n");
  Upstream u = splitEcho(r.body);
  EXPECT_EQ(countFields(u.fields, "Host"), 1u) << u.head;
  EXPECT_EQ(findHeader(u.fields, "Host").value_or("<none>"), origin().authority()) << u.head;
}

TEST_F(ProxyHttp, SendsOriginFormRequestLineUpstream) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Response r = echoVia(getRequest(origin().url("/echo?a=1&b=%20x")));
  Upstream u = splitEcho(r.body);
  EXPECT_EQ(u.requestLine, "GET /echo?a=1&b=%20x HTTP/1.1") << u.head;
}

TEST_F(ProxyHttp, AddsViaToRequestAndResponse) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  // RFC 9110 §7.6.3: each intermediary appends its own entry to Via.
  Response r = echoVia(getRequest(origin().url("/echo"), "Via: 1.1 upstream-cache\r\n"));
  Upstream u = splitEcho(r.body);
  std::string upstreamVia;
  for (const auto& [k, v] : u.fields) {
    if (containsNoCase(k, "via") && k.size() == 3) upstreamVia += v + ", ";
  }
  EXPECT_TRUE(hasOurViaEntry(upstreamVia)) << u.head;
  EXPECT_NE(upstreamVia.find("upstream-cache"), std::string::npos) << "the client's Via entry was lost:\n"
                                                                   << u.head;
  auto via = r.header("Via");
  ASSERT_TRUE(via) << r.summary();
  EXPECT_TRUE(hasOurViaEntry(*via)) << *via;
}

// RFC 9110 §7.6.2: TRACE and OPTIONS with Max-Forwards 0 are answered by the proxy itself (the
// origin sees nothing, and a TRACE echo leaves out credentials); above 0 they go on with one less.
TEST_F(ProxyHttp, AnswersMaxForwardsZeroItselfAndCountsItDownOtherwise) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Response r = viaProxy(getRequest(origin().url("/echo"), "Max-Forwards: 0\r\nCookie: session=secret\r\nX-Seen: yes\r\n", "TRACE"));
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type").value_or(""), "message/http");
  EXPECT_EQ(r.body.rfind("TRACE " + origin().url("/echo") + " HTTP/1.1\r\n", 0), 0u) << r.body;
  EXPECT_NE(r.body.find("X-Seen: yes\r\n"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("secret"), std::string::npos) << "credentials are not echoed\n" << r.body;
  r = viaProxy(getRequest(origin().url("/echo"), "Max-Forwards: 0\r\n", "OPTIONS"));
  EXPECT_EQ(r.status, 200) << r.summary();
  EXPECT_TRUE(r.header("Allow").has_value());
  EXPECT_EQ(origin().requestCount(), 0) << origin().requests();

  r = echoVia(getRequest(origin().url("/echo"), "Max-Forwards: 3\r\n", "OPTIONS"));
  Upstream u = splitEcho(r.body);
  EXPECT_EQ(u.requestLine, "OPTIONS /echo HTTP/1.1");
  EXPECT_EQ(findHeader(u.fields, "Max-Forwards").value_or(""), "2") << u.head;
  // Other methods leave the field alone.
  r = echoVia(getRequest(origin().url("/echo"), "Max-Forwards: 0\r\n"));
  EXPECT_EQ(findHeader(splitEcho(r.body).fields, "Max-Forwards").value_or(""), "0");

  for (const char* bad : {"Max-Forwards: -1\r\n", "Max-Forwards: 1, 2\r\n", "Max-Forwards: 1\r\nMax-Forwards: 1\r\n"}) {
    r = viaProxy(getRequest(origin().url("/echo"), bad, "TRACE"));
    EXPECT_EQ(r.status, 400) << bad << r.summary();
  }
  r = viaProxy("TRACE " + origin().url("/echo") + " HTTP/1.1\r\nHost: " + origin().authority() + "\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(r.status, 400) << "TRACE with content: " << r.summary();
  EXPECT_EQ(origin().requestCount(), 2) << "only the OPTIONS and the GET went on\n" << origin().requests();
}

// This machine's first IPv4 address that is not loopback ("" when it has none).
std::string nonLoopbackIpv4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* i = list; i && found.empty(); i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP)) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    found = buf;
  }
  freeifaddrs(list);
  return found;
}

// One request from `ip` (bound as the source) to the proxy at ip:port; the status line.
std::string statusLineFrom(const std::string& ip, uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    a.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size())) {
      char buf[4096];
      ssize_t n;
      while (got.find("\r\n") == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, size_t(n));
    }
  }
  ::close(fd);
  return got.substr(0, got.find("\r\n"));
}

// A client on another machine must not reach what listens on the proxy host's loopback, however
// the address is written, nor the link-local network (169.254.169.254 is the cloud metadata
// service); a client on the proxy host itself still may reach loopback.
TEST_F(ProxyHttp, RemoteClientCannotReachTheProxyHostsLoopbackOrLinkLocal) {
  std::string ip = nonLoopbackIpv4();
  if (ip.empty()) GTEST_SKIP() << "no non-loopback IPv4 address on this machine";
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  ProxyConfig cfg = env_.proxyConfig();
  cfg.listenAll = true;
  cfg.allowClients.push_back(ip + "/32");
  cfg.connectPorts = {"\"1-65535\""};
  cfg.httpPorts = {"\"1-65535\""};
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  std::string port = std::to_string(origin().port());
  const std::vector<std::string> targets{"127.0.0.1:" + port, "[::ffff:127.0.0.1]:" + port, "[::1]:" + port,
                                         "0.0.0.0:" + port, "169.254.169.254:80", "[fe80::1]:80"};
  for (const std::string& target : targets) {
    EXPECT_EQ(statusLineFrom(ip, proxy().port(), "GET http://" + target + "/echo HTTP/1.1\r\nHost: " + target + "\r\n\r\n"),
              "HTTP/1.1 403 Forbidden") << target;
    EXPECT_EQ(statusLineFrom(ip, proxy().port(), "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"),
              "HTTP/1.1 403 Forbidden") << "CONNECT " << target;
  }
  EXPECT_TRUE(proxy().waitLogLineWith("169.254.169.254", "destination_not_allowed"));
  EXPECT_EQ(origin().requestCount(), 0) << origin().requests();
  Response local = viaProxy(getRequest(origin().url("/echo")));
  EXPECT_EQ(local.status, 200) << "a client on the proxy host itself: " << local.summary();
}

TEST_F(ProxyHttp, RemovesHopByHopHeadersUpstream) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  // RFC 9110 §7.6.1: Connection and the fields it names are for this hop only, as are the
  // classic hop-by-hop fields; end-to-end fields pass untouched.
  Response r = echoVia(getRequest(origin().url("/echo"),
                                  "Connection: keep-alive, X-Drop-Me\r\n"
                                  "X-Drop-Me: secret\r\n"
                                  "Keep-Alive: timeout=5\r\n"
                                  "Proxy-Connection: keep-alive\r\n"
                                  "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
                                  "TE: trailers\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Trailer: X-Checksum\r\n"
                                  "X-End-To-End: kept\r\n"
                                  "Accept-Language: ja, en;q=0.5\r\n"
                                  "Cookie: a=b\r\n"));
  Upstream u = splitEcho(r.body);
  for (const char* name :
       {"X-Drop-Me", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Upgrade", "Trailer"}) {
    EXPECT_EQ(countFields(u.fields, name), 0u) << name << " reached the origin:\n" << u.head;
  }
  if (auto conn = findHeader(u.fields, "Connection")) {
    EXPECT_FALSE(containsNoCase(*conn, "x-drop-me")) << u.head;
  }
  EXPECT_EQ(findHeader(u.fields, "X-End-To-End").value_or("<none>"), "kept") << u.head;
  EXPECT_EQ(findHeader(u.fields, "Accept-Language").value_or("<none>"), "ja, en;q=0.5") << u.head;
  EXPECT_EQ(findHeader(u.fields, "Cookie").value_or("<none>"), "a=b") << u.head;
}

TEST_F(ProxyHttp, RemovesHopByHopHeadersFromResponse) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  // The same rule on the way back: the origin's connection options stay on the origin's hop.
  Response r = viaProxy(getRequest(
      origin().url("/size/10?h=Connection:%20X-Origin-Hop&h=X-Origin-Hop:%201&h=Keep-Alive:%20timeout%3D5"
                   "&h=Upgrade:%20h2c&h=X-Kept:%20yes")));
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  for (const char* name : {"X-Origin-Hop", "Keep-Alive", "Upgrade"}) {
    EXPECT_EQ(r.headerCount(name), 0u) << name << " reached the client:\n" << r.rawHead;
  }
  EXPECT_FALSE(containsNoCase(r.header("Connection").value_or(""), "x-origin-hop")) << r.rawHead;
  EXPECT_EQ(r.header("X-Kept").value_or("<none>"), "yes") << r.rawHead;
  EXPECT_EQ(r.body, patternString(10));
}

TEST_F(ProxyHttp, SendsCrlfUpstreamWhenClientUsesBareLf) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Response r = echoVia("GET " + origin().url("/echo") + " HTTP/1.1\nHost: " + origin().authority() +
                       "\nX-Bare: lf\n\n");
  Upstream u = splitEcho(r.body);
  ASSERT_FALSE(u.head.empty()) << r.body;
  for (size_t i = 0; i < u.head.size(); ++i) {
    if (u.head[i] == '\n') {
      ASSERT_TRUE(i > 0 && u.head[i - 1] == '\r') << "bare LF at offset " << i << " upstream:\n" << u.head;
    }
  }
  EXPECT_EQ(findHeader(u.fields, "X-Bare").value_or("<none>"), "lf") << u.head;
}

TEST_F(ProxyHttp, ReusesOneUpstreamConnectionForKeepAliveRequests) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Client c(proxy().port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    Response r = c.roundTrip(getRequest(origin().url("/size/" + std::to_string(100 + i))));
    ASSERT_TRUE(r.complete) << "request " << i << ": " << r.summary();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, patternString(100 + i));
  }
  Origin::Stats s = origin().stats();
  EXPECT_EQ(s.requests, 3);
  EXPECT_EQ(s.connections, 1) << "upstream connection not reused";
}

// A pooled origin connection that the origin closes as it is reused (its keep-alive timeout
// crossing our request) is retried once for an idempotent request, never for a POST: the origin
// may have acted on it before closing (RFC 9112 §9.3.1). A POST takes only a connection parked
// moments ago, otherwise a new one.
TEST_F(ProxyHttp, RetriesOnlyIdempotentRequestsAfterAPooledConnectionDied) {
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  ProxyConfig cfg = env_.proxyConfig();
  cfg.workers = "1";  // one pool for every client connection below
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  auto countOf = [&](std::string_view needle) {  // tries the origin read, dropped ones included
    std::string all = origin().child().stderrText();
    size_t n = 0;
    for (size_t at = all.find(needle); at != std::string::npos; at = all.find(needle, at + 1)) ++n;
    return n;
  };
  auto arm = [&] {  // leaves one pooled connection on which the origin drops the next request
    Response r = viaProxy(getRequest(origin().url("/drop-next")));
    ASSERT_EQ(r.status, 200) << r.summary();
  };
  // POST on the connection parked just now: dropped, answered 502, sent once.
  ASSERT_NO_FATAL_FAILURE(arm());
  Response r = viaProxy("POST " + origin().url("/echo?post1") + " HTTP/1.1\r\nHost: " + origin().authority() +
                        "\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(r.status, 502) << r.summary();
  EXPECT_NE(r.body.find("not retried"), std::string::npos) << r.body.substr(0, 3000);
  EXPECT_EQ(countOf("POST /echo?post1 -> "), 1u) << "a POST went to the origin twice";
  EXPECT_TRUE(proxy().waitLogLineWith("/echo?post1", "/502"));
  // DELETE is idempotent: dropped, then retried on a new connection.
  ASSERT_NO_FATAL_FAILURE(arm());
  r = viaProxy("DELETE " + origin().url("/echo?del1") + " HTTP/1.1\r\nHost: " + origin().authority() + "\r\n\r\n");
  EXPECT_EQ(r.status, 200) << r.summary();
  EXPECT_EQ(countOf("DELETE /echo?del1 -> "), 2u) << "the dropped try and the retry";
  // A POST after the pooled connection has waited past 2 s goes on a new connection instead.
  ASSERT_NO_FATAL_FAILURE(arm());
  long connectionsBefore = origin().stats().connections;
  std::this_thread::sleep_for(Millis(2300));
  r = viaProxy("POST " + origin().url("/echo?post2") + " HTTP/1.1\r\nHost: " + origin().authority() +
               "\r\nContent-Length: 4\r\n\r\nbody");
  EXPECT_EQ(r.status, 200) << r.summary();
  EXPECT_EQ(countOf("POST /echo?post2 -> "), 1u);
  EXPECT_EQ(origin().stats().connections, connectionsBefore + 1) << "the POST did not get a new connection";
  // The idle one is still parked and a GET may have it: dropped there, retried, served.
  r = viaProxy(getRequest(origin().url("/size/7")));
  EXPECT_EQ(r.status, 200) << r.summary();
  EXPECT_EQ(r.body, patternString(7));
}

TEST_F(ProxyHttp, RelaysChunkedResponseWithTrailer) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Client c(proxy().port());
  Response r = c.roundTrip(getRequest(origin().url("/size/100000?chunked=1")));
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.chunked) << "expected a chunked body: " << r.summary();
  EXPECT_EQ(r.bodyBytes, 100000u);
  EXPECT_TRUE(matchesPattern(r.body, 0));
  if (r.rawTrailers.find("X-Pattern-Trailer") == std::string::npos) {
    RecordProperty("trailer", "not relayed");
    std::cerr << "note: the trailer was not relayed (allowed)\n";
  }
  // The framing ended where it should: the connection carries another exchange.
  Response again = c.roundTrip(getRequest(origin().url("/size/10")));
  EXPECT_TRUE(again.complete) << again.summary();
  EXPECT_EQ(again.body, patternString(10));
}

TEST_F(ProxyHttp, RelaysChunkedRequestBodyReserialised) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  std::string request = "POST " + origin().url("/echo") + " HTTP/1.1\r\nHost: " + origin().authority() +
                        "\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5;ext=1\r\nhello\r\n"
                        "1\r\n \r\n"
                        "D\r\nchunked world\r\n"
                        "0\r\nX-Client-Trailer: 1\r\n\r\n";
  Response r = echoVia(request);
  Upstream u = splitEcho(r.body);
  const bool chunked = findHeader(u.fields, "Transfer-Encoding").has_value();
  const bool length = findHeader(u.fields, "Content-Length").has_value();
  EXPECT_FALSE(chunked && length) << "both framings upstream:\n" << u.head;
  if (chunked) {
    auto decoded = decodeChunked(u.body);
    ASSERT_TRUE(decoded) << "invalid chunked body upstream: " << u.body;
    EXPECT_EQ(*decoded, "hello chunked world");
  } else {
    ASSERT_TRUE(length) << "no framing upstream:\n" << u.head;
    EXPECT_EQ(u.body, "hello chunked world");
  }
}

TEST_F(ProxyHttp, RelaysCloseDelimitedResponse) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Response r = viaProxy(getRequest(origin().url("/size/300000?close=1")));
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.bodyBytes, 300000u);
  EXPECT_TRUE(matchesPattern(r.body, 0));
}

TEST_F(ProxyHttp, HandlesExpect100ContinueUpload) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  constexpr size_t kBody = 200000;
  Client c(proxy().port());
  ASSERT_TRUE(c.send("POST " + origin().url("/upload") + " HTTP/1.1\r\nHost: " + origin().authority() +
                     "\r\nContent-Length: " + std::to_string(kBody) + "\r\nExpect: 100-continue\r\n\r\n"));
  ReadOptions interim;
  interim.skipInterim = false;
  interim.timeout = Millis(3000);
  Response first = c.read(interim);
  EXPECT_EQ(first.status, 100) << "no 100 Continue before the body: " << first.summary();
  ASSERT_TRUE(first.status == 100 || (first.status == 0 && !first.closed)) << first.summary();
  ASSERT_TRUE(c.send(patternString(kBody)));
  Response r = c.read();
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::to_string(kBody));
  EXPECT_EQ(r.header("X-Body-Pattern").value_or("<none>"), "ok");
}

TEST_F(ProxyHttp, HeadResponseHasNoBodyAndConnectionStaysUsable) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Client c(proxy().port());
  ReadOptions head;
  head.method = "HEAD";
  Response r = c.roundTrip(getRequest(origin().url("/size/5000"), "", "HEAD"), head);
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Length").value_or("<none>"), "5000");
  // Had the proxy sent body bytes after the HEAD response, they would be read as the next head.
  Response next = c.roundTrip(getRequest(origin().url("/size/10")));
  ASSERT_TRUE(next.complete) << next.summary();
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, patternString(10));
}

TEST_F(ProxyHttp, NoContentResponseHasNoBodyAndConnectionStaysUsable) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Client c(proxy().port());
  Response r = c.roundTrip(getRequest(origin().url("/status/204")));
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 204);
  EXPECT_FALSE(r.header("Transfer-Encoding")) << r.summary();
  Response next = c.roundTrip(getRequest(origin().url("/size/10")));
  ASSERT_TRUE(next.complete) << next.summary();
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, patternString(10));
}

TEST_F(ProxyHttp, NotModifiedResponseHasNoBodyAndConnectionStaysUsable) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Client c(proxy().port());
  Response r = c.roundTrip(getRequest(origin().url("/status/304"), "If-None-Match: \"x\"\r\n"));
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 304);
  EXPECT_FALSE(r.header("Transfer-Encoding")) << r.summary();
  Response next = c.roundTrip(getRequest(origin().url("/size/10")));
  ASSERT_TRUE(next.complete) << next.summary();
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, patternString(10));
}

TEST_F(ProxyHttp, TunnelsConnectToAllowedPort) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  std::string target = origin().authority();
  {
    Client c(proxy().port());
    ReadOptions connect;
    connect.method = "CONNECT";
    Response r = c.roundTrip("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n", connect);
    ASSERT_TRUE(r.complete) << r.summary();
    EXPECT_EQ(r.rawHead.substr(0, 12), "HTTP/1.1 200") << r.rawHead;
    // Plain HTTP through the tunnel: bytes flow both ways, unmodified.
    Response inner = c.roundTrip("GET /size/5000 HTTP/1.1\r\nHost: " + target + "\r\n\r\n");
    ASSERT_TRUE(inner.complete) << inner.summary();
    EXPECT_EQ(inner.status, 200);
    EXPECT_EQ(inner.body, patternString(5000));
    EXPECT_FALSE(inner.header("Via")) << "the tunnel rewrote the bytes: " << inner.rawHead;
    Response echo = c.roundTrip("POST /echo HTTP/1.1\r\nHost: " + target +
                                "\r\nContent-Length: 19\r\n\r\nping through tunnel");
    ASSERT_TRUE(echo.complete) << echo.summary();
    EXPECT_NE(echo.body.find("\r\n\r\nping through tunnel"), std::string::npos) << echo.body;
  }
  auto line = proxy().waitLogLineWith("TCP_TUNNEL/200", target);
  EXPECT_TRUE(line) << "no TCP_TUNNEL/200 line for " << target;
}

TEST_F(ProxyHttp, RefusesConnectToPortNotInConnectPorts) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  uint16_t other = pickFreePort();
  ASSERT_NE(other, origin().port());
  Response r;
  EXPECT_EQ(connectStatus(other, &r), 403) << r.summary();
  EXPECT_TRUE(containsNoCase(r.header("Content-Type").value_or(""), "text/html")) << r.summary();
  EXPECT_TRUE(containsNoCase(r.body, "<html")) << r.body;
  auto line = proxy().waitLogLineWith("TCP_DENIED/403", "reason=connect_port_not_allowed");
  ASSERT_TRUE(line) << "no TCP_DENIED/403 ... reason=connect_port_not_allowed line";
  // In the sekisho format a refusal is the 10 Squid fields, then reason=, ref= and mode=.
  std::vector<std::string> f = splitFields(*line);
  ASSERT_EQ(f.size(), 13u) << *line;
  EXPECT_EQ(f[5], "CONNECT") << *line;
  EXPECT_EQ(f[6], "127.0.0.1:" + std::to_string(other)) << *line;
  EXPECT_EQ(f[10], "reason=connect_port_not_allowed") << *line;
  EXPECT_EQ(f[11].rfind("ref=", 0), 0u) << *line;
  EXPECT_GT(f[11].size(), 5u) << "the page's reference id: " << *line;
}

TEST_F(ProxyHttp, RefusesPlainHttpToPortOutsideHttpPorts) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Response r = viaProxy(getRequest("http://127.0.0.1:25/"));
  EXPECT_EQ(r.status, 403) << r.summary();
  auto line = proxy().waitLogLineWith("TCP_DENIED/403", "reason=port_not_allowed");
  EXPECT_TRUE(line) << "no TCP_DENIED/403 ... reason=port_not_allowed line";
}

TEST_F(ProxyHttp, RefusesClientOutsideAllowClientsWithoutContactingOrigin) {
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  ProxyConfig cfg = env_.proxyConfig();
  cfg.allowClients = {"10.0.0.0/8"};
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg, /*expectHealthy=*/false));
  Response r = viaProxy(getRequest(origin().url("/size/10")));
  EXPECT_EQ(r.status, 403) << r.summary();
  auto line = proxy().waitLogLineWith("reason=client_not_allowed");
  EXPECT_TRUE(line) << "no reason=client_not_allowed line";
  Origin::Stats s = origin().stats();
  EXPECT_EQ(s.requests, 0) << origin().requests();
  EXPECT_EQ(s.connections, 0);
}

TEST_F(ProxyHttp, ServesPacFile) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  expectPacPage("/proxy.pac");
}

TEST_F(ProxyHttp, ServesWpadDat) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  expectPacPage("/wpad.dat");
}

TEST_F(ProxyHttp, AnswersHealthz) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Response r = viaProxy("GET /healthz HTTP/1.1\r\nHost: " + proxy().authority() + "\r\n\r\n");
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
}

TEST_F(ProxyHttp, AnswersUnknownOwnPathWith404) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Response r = viaProxy("GET /no-such-page HTTP/1.1\r\nHost: " + proxy().authority() + "\r\n\r\n");
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 404);
}

TEST_F(ProxyHttp, RefusesRequestLoopingBackToItsOwnListener) {
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  ProxyConfig cfg = env_.proxyConfig();
  cfg.resolve = {{"loop.test", "127.0.0.1"}};
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  std::string url = "http://loop.test:" + std::to_string(proxy().port()) + "/x";
  auto t0 = Clock::now();
  Response r = viaProxy(getRequest(url));
  EXPECT_EQ(r.status, 508) << r.summary();
  EXPECT_LT(Clock::now() - t0, Millis(3000));
  auto line = proxy().waitLogLineWith("reason=loop_detected");
  EXPECT_TRUE(line) << "no reason=loop_detected line";
  // At most one hop through itself (caught by Via on the way back in), never a chain.
  size_t hops = 0;
  for (const auto& l : proxy().logLines()) {
    if (l.find("loop.test") != std::string::npos) ++hops;
  }
  EXPECT_LE(hops, 2u) << "the proxy connected to itself repeatedly";
}

TEST_F(ProxyHttp, RefusesRequestCarryingItsOwnVia) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  Response r = viaProxy(getRequest(origin().url("/size/10"), "Via: 1.1 sekisho-test (sekisho/0.1.0)\r\n"));
  EXPECT_EQ(r.status, 508) << r.summary();
  EXPECT_EQ(origin().requestCount(), 0) << origin().requests();
}

TEST_F(ProxyHttp, LogsOneSquidLinePerRequest) {
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  ProxyConfig cfg = env_.proxyConfig();
  cfg.logFormat = "squid";
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  std::string url10 = origin().url("/size/10");
  std::string url20 = origin().url("/size/20");
  ASSERT_EQ(viaProxy(getRequest(url10)).status, 200);
  ASSERT_EQ(viaProxy(getRequest(url20)).status, 200);
  ASSERT_TRUE(proxy().waitLogLineWith(url20)) << "no line for " << url20;
  std::vector<std::string> lines;
  for (const auto& l : proxy().logLines()) {
    if (l.find("/size/") != std::string::npos) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 2u);
  // 1764090000.123    125 127.0.0.1 TCP_MISS/200 1234 GET http://... - HIER_DIRECT/127.0.0.1 text/plain
  std::vector<std::string> f = splitFields(lines[0]);
  ASSERT_EQ(f.size(), 10u) << lines[0];
  EXPECT_TRUE(f[0].size() == 14 && f[0][10] == '.' && isDigits(f[0].substr(0, 10)) &&
              isDigits(f[0].substr(11)))
      << lines[0];
  EXPECT_TRUE(isDigits(f[1])) << lines[0];
  EXPECT_EQ(f[2], "127.0.0.1");
  EXPECT_EQ(f[3], "TCP_MISS/200");
  EXPECT_TRUE(isDigits(f[4])) << lines[0];
  EXPECT_GT(std::stoul(f[4]), 10u) << "bytes to the client include the head";
  EXPECT_EQ(f[5], "GET");
  EXPECT_EQ(f[6], url10);
  EXPECT_EQ(f[7], "-");
  EXPECT_EQ(f[8], "HIER_DIRECT/127.0.0.1");
  EXPECT_EQ(f[9], "text/plain");
  EXPECT_EQ(lines[0].find("reason="), std::string::npos);
  EXPECT_EQ(splitFields(lines[1]).size(), 10u) << lines[1];
}

}  // namespace
}  // namespace sekisho::it
