// TLS interception end to end: the real proxy between a TLS client that trusts only the proxy's
// CA and TLS test origins serving the test PKI (tests/pki), every origin certificate verified
// against pki/root.crt through tls.upstream_ca_file. Good origins are decrypted on a leaf copied
// from them; every kind of bad certificate gets the certificate-error page over TLS and the
// origin never sees a request; hosts that cannot be decrypted are tunnelled and remembered.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <atomic>
#include <thread>

#include "version.h"
#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

bool hasSan(const TlsClient& t, const std::string& san) {
  auto sans = t.peerSans();
  return std::find(sans.begin(), sans.end(), san) != sans.end();
}

std::string serialOf(x509_st* cert) {
  if (!cert) return "";
  const ASN1_INTEGER* s = X509_get0_serialNumber(cert);
  return std::string(reinterpret_cast<const char*>(s->data), size_t(s->length));
}

// A masked client frame (RFC 6455 §5.2), payload under 126 bytes.
std::string clientFrame(uint8_t b0, std::string_view payload) {
  const char mask[4] = {0x21, 0x43, 0x65, 0x07};
  std::string f{static_cast<char>(b0), static_cast<char>(0x80 | payload.size())};
  f.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return f;
}

class TlsIntercept : public ProxyTest {
 protected:
  // The PKI is made on first use so a test can pass an AIA URL first.
  void pki(const std::string& aiaUrl = "") {
    pki_ = env_.makePki(aiaUrl);
    ASSERT_FALSE(pki_.empty()) << env_.lastError();
    root_ = pki_ + "/root.crt";
  }
  Origin* tlsOrigin(const TlsOriginOptions& o) {
    if (pki_.empty()) pki();
    Origin* origin = env_.startTlsOrigin(o);
    EXPECT_NE(origin, nullptr) << env_.lastError();
    return origin;
  }
  Origin* tlsOrigin(const std::string& cert) {
    TlsOriginOptions o;
    o.cert = cert;
    return tlsOrigin(o);
  }
  void startIntercepting(const std::string& extra = "", const std::string& tlsExtra = "",
                         const std::vector<std::string>& env = {}) {
    if (pki_.empty()) pki();
    ProxyConfig cfg = env_.proxyConfig();
    cfg.connectPorts = {"\"1025-65535\""};
    if (!workers_.empty()) cfg.workers = workers_;
    cfg.adminPort = adminPort_;
    for (const char* n : {"good", "expired", "notyet", "wronghost", "selfsigned", "untrusted", "nointer", "rsa1024",
                          "sha1", "clientauth", "old", "other", "cnonly", "clientonly", "leafca",
                          "constrained", "expiredinter", "sha1inter", "critext", "partialwild", "revoked"})
      cfg.resolve.push_back({std::string(n) + ".pki.test", "127.0.0.1"});
    cfg.timeouts.push_back({"connect", "2s"});
    for (const auto& extra : timeouts_) {  // replacing the harness's own where it has one
      auto it = std::find_if(cfg.timeouts.begin(), cfg.timeouts.end(),
                             [&extra](const auto& t) { return t.first == extra.first; });
      if (it != cfg.timeouts.end())
        it->second = extra.second;
      else
        cfg.timeouts.push_back(extra);
    }
    cfg.extra = "tls: {upstream_ca_file: \"" + root_ + "\"" + tlsExtra + "}\n" + extra;
    cfg.env = env;
    ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  }
  std::unique_ptr<TlsClient> via(const std::string& host, uint16_t port, const TlsOptions& o = {}) {
    return TlsClient::viaProxy(proxy().port(), host, port, proxyCa(), o);
  }
  std::string proxyCa() const { return env_.path("ca.crt"); }
  // CONNECT good.pki.test:PORT on `c`, asserting the 200; the client's TLS is the test's to send.
  void connectPlain(Client& c, uint16_t port) {
    ASSERT_TRUE(c.connected());
    ReadOptions connectRead;
    connectRead.method = "CONNECT";
    Response head = c.roundTrip("CONNECT good.pki.test:" + std::to_string(port) +
                                    " HTTP/1.1\r\nHost: good.pki.test\r\n\r\n",
                                connectRead);
    ASSERT_EQ(head.status, 200) << head.summary();
  }
  // A listening socket on 127.0.0.1 that the test answers itself (or never): -1 on failure.
  static int listenLoopback(uint16_t& port) {
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 16) != 0 ||
        ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      if (l >= 0) ::close(l);
      return -1;
    }
    port = ntohs(a.sin_port);
    return l;
  }
  static std::string get(const std::string& host, uint16_t port, const std::string& path) {
    return "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) + "\r\n\r\n";
  }
  void expectDownloadCutShort(const std::string& how);
  // A new client of good.pki.test at `port` shakes hands with the proxy and gets a 200: the
  // worker goes on serving after whatever the test did.
  void expectServed(uint16_t port) {
    auto t = via("good.pki.test", port);
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    EXPECT_EQ(t->roundTrip(get("good.pki.test", port, "/size/5")).status, 200);
  }
  std::string pki_, root_;
  std::string workers_;  // empty: the harness default
  HeaderList timeouts_;  // more timeouts for the proxy, e.g. {{"client_idle", "1s"}}
  uint16_t adminPort_ = 0;  // 0: admin listener off
};

TEST_F(TlsIntercept, GoodOriginIsDecryptedOnALeafCopiedFromIt) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto direct = TlsClient::direct(origin->port(), "good.pki.test", root_);
  ASSERT_TRUE(direct->handshakeOk()) << direct->error();

  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error() << " / " << t->verifyError();
  EXPECT_EQ(t->proxyStatus(), 200);
  EXPECT_EQ(t->verifyResult(), 0) << t->verifyError();
  EXPECT_NE(t->peerIssuer().find("Sekisho Enterprise Root CA"), std::string::npos) << t->peerIssuer();
  EXPECT_TRUE(hasSan(*t, "DNS:good.pki.test"));
  EXPECT_TRUE(hasSan(*t, "DNS:localhost")) << "every origin SAN is copied";
  EXPECT_TRUE(hasSan(*t, "IP:127.0.0.1"));
  EXPECT_EQ(t->peerKeyType(), "EC");
  EXPECT_EQ(t->peerKeyBits(), 256);
  EXPECT_EQ(t->peerSignatureAlgorithm(), "ecdsa-with-SHA256");
  EXPECT_LE(t->peerNotAfter(), direct->peerNotAfter()) << "the leaf outlives the origin's certificate";
  EXPECT_NE(serialOf(t->peerCert()), serialOf(direct->peerCert()));

  Response r = t->roundTrip(get("good.pki.test", origin->port(), "/size/100000"));
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 100000u);
  // A second request on the same client connection, then what the origin saw.
  Response tls = t->roundTrip(get("good.pki.test", origin->port(), "/tls"));
  ASSERT_EQ(tls.status, 200) << tls.summary();
  EXPECT_NE(tls.body.find("\"sni\":\"good.pki.test\""), std::string::npos) << tls.body;
  EXPECT_NE(tls.body.find("TLSv1.3"), std::string::npos) << tls.body;
  std::string port = std::to_string(origin->port());
  EXPECT_TRUE(proxy().waitLogLineWith("NONE_NONE/200", "CONNECT good.pki.test:" + port));
  EXPECT_TRUE(proxy().waitLogLineWith("TCP_MISS/200", "GET https://good.pki.test:" + port + "/size/100000"));
}

// Python's http.client (urllib, requests, pip) opens its tunnel with "CONNECT host:port
// HTTP/1.0" and no Host. The CONNECT's version and Connection govern only the CONNECT exchange
// (RFC 9110 §9.3.6: after the 2xx the connection is a tunnel): what runs inside keeps alive by
// its own rules, whether intercepted, blocked inside TLS or spliced.
TEST_F(TlsIntercept, Http10ConnectGovernsOnlyTheConnectExchange) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_TRUE(writeFileAtomic(env_.path("block.txt"), "other.pki.test\n"));
  ASSERT_NO_FATAL_FAILURE(startIntercepting(
      "reputation:\n  lists: [{file: block.txt, format: domains, category: malware}]\n", ", no_intercept: [localhost]"));
  std::string port = std::to_string(origin->port());
  const char* heads[] = {"CONNECT {} HTTP/1.0\r\n\r\n", "CONNECT {} HTTP/1.0\r\nProxy-Connection: close\r\n\r\n",
                         "CONNECT {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                         "CONNECT {} HTTP/1.0\r\nMax-Forwards: 0\r\nVia: 1.0 elsewhere\r\n\r\n"};
  for (const char* head : heads) {
    SCOPED_TRACE(std::string("intercepted after ") + head);
    TlsOptions o;
    o.connectHead = head;
    auto t = via("good.pki.test", origin->port(), o);
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    EXPECT_NE(t->peerIssuer().find("Sekisho Enterprise Root CA"), std::string::npos) << t->peerIssuer();
    for (int i = 0; i < 3; ++i) {  // keep-alive inside: three requests on the one connection
      Response r = t->roundTrip(get("good.pki.test", origin->port(), "/size/1000"));
      ASSERT_TRUE(r.complete) << "request " << i << ": " << r.summary();
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body.size(), 1000u);
      EXPECT_NE(r.header("connection").value_or(""), "close") << r.summary();
    }
    // Nothing of the CONNECT's own fields (Via, Max-Forwards) reaches the origin with the request.
    Response echo = t->roundTrip(get("good.pki.test", origin->port(), "/echo"));
    ASSERT_EQ(echo.status, 200) << echo.summary();
    EXPECT_NE(echo.body.find("Via: 1.1 sekisho-test"), std::string::npos) << echo.body;
    EXPECT_EQ(echo.body.find("elsewhere"), std::string::npos) << echo.body;
    EXPECT_EQ(echo.body.find("Max-Forwards"), std::string::npos) << echo.body;
    // An HTTP/1.0 request inside still ends the connection after its answer: its own rules.
    Response last = t->roundTrip("GET /size/10 HTTP/1.0\r\nHost: good.pki.test:" + port + "\r\n\r\n");
    EXPECT_EQ(last.status, 200) << last.summary();
    EXPECT_TRUE(t->client().waitClosed(Millis(3000)));
  }
  // A blocked host is answered inside TLS with the block page, whatever the CONNECT's version.
  for (const char* head : heads) {
    SCOPED_TRACE(std::string("blocked after ") + head);
    TlsOptions o;
    o.connectHead = head;
    auto t = via("other.pki.test", origin->port(), o);
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    Response r = t->roundTrip(get("other.pki.test", origin->port(), "/size/1000"));
    ASSERT_TRUE(r.complete) << r.summary();
    EXPECT_EQ(r.status, 403);
    EXPECT_NE(r.body.find("other.pki.test"), std::string::npos);
  }
  // A tunnel (no_intercept) carries the origin's own certificate and keeps alive as the origin does.
  for (const char* head : heads) {
    SCOPED_TRACE(std::string("tunnel after ") + head);
    TlsOptions o;
    o.connectHead = head;
    auto t = TlsClient::viaProxy(proxy().port(), "localhost", origin->port(), root_, o);
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    EXPECT_EQ(t->peerIssuer().find("Sekisho Enterprise Root CA"), std::string::npos) << t->peerIssuer();
    for (int i = 0; i < 2; ++i) EXPECT_EQ(t->roundTrip(get("localhost", origin->port(), "/size/10")).status, 200);
  }
  EXPECT_TRUE(proxy().waitLogLineWith("GET https://good.pki.test:" + port + "/size/1000", "TCP_MISS/200"));
  EXPECT_TRUE(proxy().waitLogLineWith("CONNECT localhost:" + port, "TCP_TUNNEL/200"));
}

TEST_F(TlsIntercept, EveryBadCertificateGetsThePageAndTheOriginNoRequest) {
  struct Case {
    const char* cert;
    const char* code;
  };
  const Case cases[] = {{"expired", "expired"},       {"notyet", "not_yet_valid"},   {"wronghost", "wrong_host"},
                        {"selfsigned", "self_signed"}, {"untrusted", "untrusted_root"}, {"nointer", "missing_intermediate"},
                        {"rsa1024", "weak_key"},       {"sha1", "weak_signature"},    {"cnonly", "wrong_host"},
                        {"clientonly", "invalid"},     {"leafca", "invalid"},         {"constrained", "invalid"},
                        {"expiredinter", "expired"},   {"sha1inter", "weak_signature"}, {"critext", "invalid"},
                        {"partialwild", "wrong_host"}};
  std::vector<Origin*> origins;
  for (const Case& c : cases) {
    origins.push_back(tlsOrigin(c.cert));
    ASSERT_NE(origins.back(), nullptr) << c.cert;
  }
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(cases[i].cert);
    std::string host = std::string(cases[i].cert) + ".pki.test";
    auto t = via(host, origins[i]->port());
    // The client trusts the page's TLS (a leaf minted for the name it asked for)...
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    EXPECT_EQ(t->verifyResult(), 0) << t->verifyError();
    // ...and reads which check failed, in words, with a reference id.
    Response r = t->roundTrip(get(host, origins[i]->port(), "/secret"));
    ASSERT_TRUE(r.complete) << r.summary();
    EXPECT_EQ(r.status, 502);
    EXPECT_NE(r.body.find(std::string("[") + cases[i].code + "]"), std::string::npos) << r.body.substr(0, 3000);
    EXPECT_TRUE(r.header("X-Sekisho-Ref"));
    EXPECT_TRUE(proxy().waitLogLineWith("GET https://" + host, "reason=upstream_cert_invalid"));
    EXPECT_EQ(origins[i]->requestCount(), 0) << "a request reached an origin whose certificate failed";
  }
}

TEST_F(TlsIntercept, StapledRevocationFailsTheOriginAndOtherStaplesChangeNothing) {
  std::string garbage = env_.path("garbage.ocsp");
  {
    std::ofstream out(garbage, std::ios::binary);
    static const char kGarbage[] = "\x30\x82\xff\xff not an OCSP response";  // a DER length it does not have
    out.write(kGarbage, sizeof kGarbage - 1);
  }
  ASSERT_NO_FATAL_FAILURE(pki());
  struct Case {
    const char* cert;
    std::string staple;
    const char* tlsMax;
    int status;
  };
  // TLS 1.3 carries the staple in the Certificate message, TLS 1.2 in CertificateStatus.
  const Case cases[] = {
      {"revoked", pki_ + "/revoked.ocsp", "1.3", 502},  // signed by the issuer: believed
      {"revoked", pki_ + "/revoked.ocsp", "1.2", 502},
      {"revoked", pki_ + "/forged.ocsp", "1.3", 200},   // signed by a key nobody trusts: ignored
      {"good", pki_ + "/good.ocsp", "1.3", 200},        // "good": nothing to object to
      {"good", pki_ + "/revoked.ocsp", "1.3", 200},     // about another certificate: ignored
      {"good", garbage, "1.2", 200},                    // not DER at all: ignored
  };
  std::vector<Origin*> origins;
  for (const Case& c : cases) {
    TlsOriginOptions o;
    o.cert = c.cert;
    o.tlsMax = c.tlsMax;
    o.extraArgs = {"--ocsp", c.staple};
    origins.push_back(tlsOrigin(o));
    ASSERT_NE(origins.back(), nullptr);
  }
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(std::string(cases[i].cert) + " stapling " + cases[i].staple + " over TLS " + cases[i].tlsMax);
    std::string host = std::string(cases[i].cert) + ".pki.test";
    auto t = via(host, origins[i]->port());
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    Response r = t->roundTrip(get(host, origins[i]->port(), "/size/10"));
    ASSERT_TRUE(r.complete) << r.summary();
    EXPECT_EQ(r.status, cases[i].status) << r.body.substr(0, 2000);
    if (cases[i].status == 502) {
      EXPECT_NE(r.body.find("[revoked]"), std::string::npos) << r.body.substr(0, 3000);
      EXPECT_NE(r.body.find("revoked by its issuer"), std::string::npos);
      EXPECT_TRUE(proxy().waitLogLineWith("GET https://" + host, "reason=upstream_cert_invalid"));
      EXPECT_EQ(origins[i]->requestCount(), 0) << "a request reached a revoked origin";
    } else {
      EXPECT_EQ(r.body.size(), 10u);
      EXPECT_EQ(origins[i]->requestCount(), 1);
    }
  }
}

TEST_F(TlsIntercept, RetryAfterAPooledConnectionDiedGoesOutOverTlsAgain) {
  // A pooled origin connection that the origin closed just as it was reused is retried once on
  // a new connection: that one must get its own TLS handshake, never carry the request in clear.
  workers_ = "1";
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  {
    auto t = via("good.pki.test", origin->port());
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    ASSERT_EQ(t->roundTrip(get("good.pki.test", origin->port(), "/drop-next")).status, 200);
  }  // its origin connection waits in the pool; the origin will drop the next request on it
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  Response r = t->roundTrip(get("good.pki.test", origin->port(), "/size/1000"));
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 2000);
  EXPECT_EQ(r.bodyBytes, 1000u);
  EXPECT_EQ(origin->stats().tlsFailures, 0) << "a request reached the TLS origin in clear";
  EXPECT_EQ(origin->requestCount(), 2) << "/drop-next and the retry (the dropped try is not recorded)";
}

TEST_F(TlsIntercept, MissingIntermediateIsFetchedFromAia) {
  // The AIA server first: the PKI's intermediate URL points at it.
  Origin* aia = env_.startOrigin({"--static-dir", env_.path("pki")});
  ASSERT_NE(aia, nullptr) << env_.lastError();
  ASSERT_NO_FATAL_FAILURE(pki(aia->url("/static/inter.der")));
  Origin* origin = tlsOrigin("nointer");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("nointer.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  Response r = t->roundTrip(get("nointer.pki.test", origin->port(), "/size/10"));
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 2000);
  EXPECT_GE(aia->requestCount(), 1);
  // Cached: a second visit needs no fetch.
  long fetches = aia->requestCount();
  auto again = via("nointer.pki.test", origin->port());
  ASSERT_TRUE(again->handshakeOk()) << again->error();
  EXPECT_EQ(again->roundTrip(get("nointer.pki.test", origin->port(), "/size/10")).status, 200);
  EXPECT_EQ(aia->requestCount(), fetches);
}

TEST_F(TlsIntercept, OriginOfferingOnlyTls10IsRefusedInPlainWords) {
  TlsOriginOptions o;
  o.cert = "good";
  o.tlsMin = "1.0";
  o.tlsMax = "1.0";
  Origin* origin = tlsOrigin(o);
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  Response r = t->roundTrip(get("good.pki.test", origin->port(), "/"));
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("outdated TLS"), std::string::npos) << r.body.substr(0, 3000);
  EXPECT_TRUE(proxy().waitLogLineWith("GET https://good.pki.test", "reason=upstream_tls_failed"));
}

TEST_F(TlsIntercept, ClientVersionIsCappedAtTheOrigins) {
  TlsOriginOptions o;
  o.cert = "good";
  o.tlsMax = "1.2";
  Origin* origin = tlsOrigin(o);
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  EXPECT_EQ(t->version(), "TLSv1.2") << "a TLS 1.2 origin is not presented as TLS 1.3";
  EXPECT_EQ(t->roundTrip(get("good.pki.test", origin->port(), "/size/5")).status, 200);
}

TEST_F(TlsIntercept, OriginAskingForAClientCertificateIsTunnelledAndRemembered) {
  TlsOriginOptions o;
  o.cert = "good";
  o.requireClientCert = true;
  Origin* origin = tlsOrigin(o);
  ASSERT_NE(origin, nullptr);
  adminPort_ = pickFreePort();
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  TlsOptions withCert;
  withCert.certFile = pki_ + "/client.crt";
  withCert.keyFile = pki_ + "/client.key";
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    // Trusting the origin's root, not the proxy's CA: the client talks to the origin itself.
    auto t = TlsClient::viaProxy(proxy().port(), "good.pki.test", origin->port(), root_, withCert);
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    EXPECT_NE(t->peerIssuer().find("Sekisho Test Intermediate"), std::string::npos) << t->peerIssuer();
    Response r = t->roundTrip(get("good.pki.test", origin->port(), "/tls"));
    ASSERT_EQ(r.status, 200) << r.summary();
    EXPECT_NE(r.body.find("client"), std::string::npos) << r.body;
  }
  std::string err = proxy().child().stderrText();
  size_t first = err.find("asks for a client certificate");
  EXPECT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find("asks for a client certificate", first + 1), std::string::npos) << "remembered: asked once";
  EXPECT_TRUE(proxy().waitLogLineWith("TCP_TUNNEL/200", "CONNECT good.pki.test"));
  // The admin sees the host listed, with its kind, the time it is remembered until (in the
  // future) and the connections tunnelled because of it.
  Client admin(adminPort_);
  Response list = admin.roundTrip("GET /tls/remembered HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(list.status, 200) << list.summary();
  std::istringstream lines(list.body);
  std::string line, host, kind;
  long long since = 0, until = 0;
  unsigned long long hits = 0;
  bool found = false;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    ASSERT_TRUE(f >> host >> kind >> since >> until >> hits) << line;
    if (host.find("good.pki.test") == std::string::npos) continue;
    found = true;
    EXPECT_EQ(kind, "client_cert") << line;
    EXPECT_GT(until, static_cast<long long>(time(nullptr))) << line;
    EXPECT_LE(since, static_cast<long long>(time(nullptr))) << line;
    EXPECT_GE(hits, 1u) << line;
  }
  EXPECT_TRUE(found) << list.body;
}

TEST_F(TlsIntercept, IpHostGetsALeafWithTheIpSan) {
  Origin* origin = tlsOrigin("ip");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("127.0.0.1", origin->port());  // no SNI: verified by IP
  ASSERT_TRUE(t->handshakeOk()) << t->error() << " / " << t->verifyError();
  EXPECT_TRUE(hasSan(*t, "IP:127.0.0.1"));
  Response r = t->roundTrip(get("127.0.0.1", origin->port(), "/size/7"));
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 2000);
}

TEST_F(TlsIntercept, ConcurrentFirstVisitsGetOneLeaf) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  constexpr int kClients = 12;
  std::vector<std::string> serials(kClients);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kClients; ++i)
    threads.emplace_back([&, i] {
      auto t = TlsClient::viaProxy(proxy().port(), "good.pki.test", origin->port(), proxyCa());
      if (!t->handshakeOk()) return;
      serials[size_t(i)] = serialOf(t->peerCert());
      if (t->roundTrip(get("good.pki.test", origin->port(), "/size/3")).status == 200) ++ok;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kClients);
  for (const auto& s : serials) EXPECT_EQ(s, serials[0]) << "one mint for concurrent first visits";
}

TEST_F(TlsIntercept, WebSocketEchoesThroughInterception) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  std::string up = "GET /ws HTTP/1.1\r\nHost: good.pki.test:" + std::to_string(origin->port()) +
                   "\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  ASSERT_TRUE(t->send(up));
  std::string got;
  while (got.find("\r\n\r\n") == std::string::npos) {
    std::string piece = t->client().readSome(Millis(3000));
    if (piece.empty()) break;
    got += piece;
  }
  ASSERT_EQ(got.rfind("HTTP/1.1 101", 0), 0u) << got;
  EXPECT_NE(got.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos) << got;
  got.erase(0, got.find("\r\n\r\n") + 4);
  ASSERT_TRUE(t->send(clientFrame(0x81, "hello through the proxy")));
  while (got.size() < 2 + 23) {
    std::string piece = t->client().readSome(Millis(3000));
    if (piece.empty()) break;
    got += piece;
  }
  ASSERT_GE(got.size(), 25u);
  EXPECT_EQ(uint8_t(got[0]), 0x81);
  EXPECT_EQ(got.substr(2, 23), "hello through the proxy");
}

TEST_F(TlsIntercept, RequestForAnotherHostOnTheConnectionIsMisdirected) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  Response r = t->roundTrip(get("other.pki.test", origin->port(), "/size/5"));
  EXPECT_EQ(r.status, 421) << r.summary();
  EXPECT_EQ(origin->requestCount(), 0);
}

TEST_F(TlsIntercept, UrlRuleBlocksInsideTheDecryptedConnection) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  std::string port = std::to_string(origin->port());
  ASSERT_TRUE(writeFileAtomic(env_.path("urlhaus.csv"),
                              "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\r\n"
                              "\"1\",\"2026-11-01 00:00:00\",\"https://good.pki.test:" + port +
                                  "/payload.exe\",\"online\",\"\",\"malware_download\",\"exe\","
                                  "\"https://urlhaus.abuse.ch/url/1/\",\"anon\"\r\n"));
  ASSERT_NO_FATAL_FAILURE(
      startIntercepting("reputation:\n  lists: [{file: urlhaus.csv, format: urlhaus, category: malware}]\n"));
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  EXPECT_EQ(t->roundTrip(get("good.pki.test", origin->port(), "/size/5")).status, 200);
  Response r = t->roundTrip(get("good.pki.test", origin->port(), "/payload.exe"));
  EXPECT_EQ(r.status, 403) << r.summary();
  EXPECT_NE(r.body.find("malware"), std::string::npos);
  EXPECT_TRUE(proxy().waitLogLineWith("GET https://good.pki.test:" + port + "/payload.exe", "reason=reputation_block"));
  EXPECT_EQ(origin->requestCount(), 1) << "only the allowed request reached the origin";
}

TEST_F(TlsIntercept, ClientRejectingTheLeafIsTunnelledNextTime) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  // A "pinned" client: it trusts only the origin's own root, so it rejects our leaf...
  auto first = TlsClient::viaProxy(proxy().port(), "good.pki.test", origin->port(), root_);
  EXPECT_FALSE(first->handshakeOk());
  first.reset();
  // ...and from then on this client gets the origin's own certificate for that host.
  EXPECT_TRUE(waitUntil(
      [&] {
        auto t = TlsClient::viaProxy(proxy().port(), "good.pki.test", origin->port(), root_);
        return t->handshakeOk() && t->roundTrip(get("good.pki.test", origin->port(), "/size/4")).status == 200;
      },
      Millis(3000), Millis(100)));
  EXPECT_NE(proxy().child().stderrText().find("rejected the certificate minted for good.pki.test"), std::string::npos);
}

TEST_F(TlsIntercept, GarbageHelloIsRefusedAndTheWorkerServesOthers) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  Client c(proxy().port());
  ASSERT_NO_FATAL_FAILURE(connectPlain(c, origin->port()));
  // A complete handshake record holding a 4-byte "ClientHello": malformed, not merely large.
  ASSERT_TRUE(c.send(std::string("\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03zz", 13)));
  EXPECT_TRUE(c.waitClosed(Millis(5000)));
  EXPECT_TRUE(proxy().waitLogLineWith("CONNECT good.pki.test", "reason=bad_request"));
  ASSERT_NO_FATAL_FAILURE(expectServed(origin->port()));
}

TEST_F(TlsIntercept, SlowHelloIsClosedNotTunnelled) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  long handshakes = origin->stats().tlsHandshakes;
  Client c(proxy().port());
  ASSERT_NO_FATAL_FAILURE(connectPlain(c, origin->port()));
  // The first bytes of a hello, then silence past the request-header deadline (2 s here).
  ASSERT_TRUE(c.send(std::string("\x16\x03\x01\x02\x00\x01", 6)));
  EXPECT_TRUE(c.waitClosed(Millis(6000)));
  EXPECT_TRUE(proxy().waitLogLineWith("CONNECT good.pki.test", "reason=request_timeout"));
  EXPECT_EQ(origin->stats().tlsHandshakes, handshakes + 1) << "a TLS session reached the origin (only /stats should)";
}

TEST_F(TlsIntercept, ClientStoppingMidHandshakeIsClosed) {
  // A real ClientHello, the proxy's whole server flight read, then silence (no Finished): the
  // connection is closed by the request-header deadline (2 s here) and the worker serves others.
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  Client c(proxy().port());
  ASSERT_NO_FATAL_FAILURE(connectPlain(c, origin->port()));
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_NE(ctx, nullptr);
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_tlsext_host_name(ssl, "good.pki.test");
  EXPECT_EQ(SSL_connect(ssl), -1);  // wants the server's flight
  std::string hello(size_t(BIO_pending(out)), '\0');
  ASSERT_EQ(BIO_read(out, hello.data(), int(hello.size())), int(hello.size()));
  ASSERT_GT(hello.size(), 100u);
  ASSERT_TRUE(c.send(hello));
  std::string flight = c.readSome(Millis(5000));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ASSERT_FALSE(flight.empty()) << "no ServerHello";
  EXPECT_EQ(flight[0], '\x16') << "the answer is a TLS handshake record";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.waitClosed(Millis(8000)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
  ASSERT_NO_FATAL_FAILURE(expectServed(origin->port()));
}

TEST_F(TlsIntercept, SlowRequestHeadInsideTlsGetsATimeout) {
  // Slowloris inside an intercepted connection: the head trickles in a byte every 300 ms and is
  // answered 408 by the request-header deadline (2 s here), never forwarded.
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(t->send("GET /size/5 HTTP/1.1\r\nHost: good.pki.test\r\n"));
  std::string answer;
  for (int i = 0; i < 30 && t->client().isOpen(); ++i) {
    if (!t->send("X")) break;
    answer += t->client().readSome(Millis(300));
    if (!answer.empty()) break;
  }
  answer += t->client().readUntilClose(Millis(5000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
  EXPECT_EQ(answer.rfind("HTTP/1.1 408", 0), 0u) << answer.substr(0, 200);
  EXPECT_FALSE(t->client().isOpen());
  EXPECT_TRUE(proxy().waitLogLineWith("reason=request_timeout"));
}

TEST_F(TlsIntercept, OriginThatNeverHandshakesGetsATimeoutPage) {
  Origin* good = tlsOrigin("good");
  ASSERT_NE(good, nullptr);
  // Accepts TCP (the kernel's backlog) and never answers.
  uint16_t port = 0;
  int l = listenLoopback(port);
  ASSERT_GE(l, 0);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  TlsOptions o;
  o.timeout = Millis(8000);
  auto t = via("good.pki.test", port, o);
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  ReadOptions slow;
  slow.timeout = Millis(8000);
  Response r = t->roundTrip(get("good.pki.test", port, "/"), slow);
  EXPECT_EQ(r.status, 504) << r.summary();
  ::close(l);
  ASSERT_NO_FATAL_FAILURE(expectServed(good->port()));
}

TEST_F(TlsIntercept, OriginResettingTheHandshakeGetsAPageInWords) {
  Origin* good = tlsOrigin("good");
  ASSERT_NE(good, nullptr);
  // Accepts, reads the ClientHello, then resets the connection (SO_LINGER 0).
  uint16_t port = 0;
  int l = listenLoopback(port);
  ASSERT_GE(l, 0);
  std::atomic<int> resets{0};
  std::thread resetter([&] {
    for (int i = 0; i < 2; ++i) {
      int c = ::accept(l, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      (void)::recv(c, buf, sizeof buf, 0);
      linger lg{1, 0};
      ::setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      ::close(c);
      ++resets;
    }
  });
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("good.pki.test", port);
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  Response r = t->roundTrip(get("good.pki.test", port, "/"));
  EXPECT_EQ(r.status, 502) << r.summary();
  EXPECT_NE(r.body.find("TLS"), std::string::npos) << r.body.substr(0, 2000);
  EXPECT_TRUE(proxy().waitLogLineWith("GET https://good.pki.test:" + std::to_string(port), "reason=upstream_tls_failed"));
  ::shutdown(l, SHUT_RDWR);
  ::close(l);
  resetter.join();
  EXPECT_GE(resets.load(), 1);
  ASSERT_NO_FATAL_FAILURE(expectServed(good->port()));
}

TEST_F(TlsIntercept, LargeDownloadStreamsWithFlatMemory) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting("", "", boundedQuarantineEnv()));
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
#ifdef SEKISHO_SANITIZE
  const uint64_t size = 128ull * kMiB;
#else
  const uint64_t size = 1024ull * kMiB;
#endif
  long before = proxy().rssKiB();
  long peak = before;
  uint64_t got = 0, seen = 0;
  ReadOptions ro;
  ro.storeBody = false;
  ro.timeout = Millis(20000);
  ro.onBody = [&](std::string_view piece) {
    got += piece.size();
    if (got - seen > 32 * kMiB) {
      seen = got;
      peak = std::max(peak, proxy().rssKiB());
    }
  };
  Response r = t->roundTrip(get("good.pki.test", origin->port(), "/size/" + std::to_string(size)), ro);
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(got, size);
  EXPECT_LT(peak - before, 16 * 1024 * kRssSlack) << "RSS grew by " << (peak - before) << " KiB";
}

TEST_F(TlsIntercept, ClientThatNeverReadsCostsBoundedMemory) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting("", "", boundedQuarantineEnv()));
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  long before = proxy().rssKiB();
  ASSERT_TRUE(t->send(get("good.pki.test", origin->port(), "/size/" + std::to_string(512 * kMiB))));
  long peak = before;
  for (int i = 0; i < 15; ++i) {
    std::this_thread::sleep_for(Millis(200));
    peak = std::max(peak, proxy().rssKiB());
  }
  // The records wait in the kernel and in one buffer per direction, not in the proxy's heap.
  EXPECT_LT(peak - before, 8 * 1024 * kRssSlack) << "RSS grew by " << (peak - before) << " KiB";
  ASSERT_NO_FATAL_FAILURE(expectServed(origin->port()));
}

TEST_F(TlsIntercept, ClientClosingMidBodyEndsTheExchangeAndNothingElse) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  std::string port = std::to_string(origin->port());
  {
    auto t = via("good.pki.test", origin->port());
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    ASSERT_TRUE(t->send(get("good.pki.test", origin->port(), "/size/" + std::to_string(256 * kMiB))));
    std::string some;
    while (some.size() < 2 * kMiB) {
      std::string piece = t->client().readSome(Millis(3000));
      ASSERT_FALSE(piece.empty()) << "the download did not start";
      some += piece;
    }
  }  // closed mid-body
  EXPECT_TRUE(proxy().waitLogLineWith("TCP_MISS_ABORTED", "GET https://good.pki.test:" + port + "/size/"));
  ASSERT_NO_FATAL_FAILURE(expectServed(origin->port()));
}

TEST_F(TlsIntercept, OriginDyingMidBodyIsNotPassedOffAsComplete) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  Origin* spare = tlsOrigin("good");
  ASSERT_NE(spare, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  ASSERT_TRUE(t->send(get("good.pki.test", origin->port(), "/size/" + std::to_string(512 * kMiB))));
  std::string some;
  while (some.size() < 2 * kMiB) {
    std::string piece = t->client().readSome(Millis(3000));
    ASSERT_FALSE(piece.empty()) << "the download did not start";
    some += piece;
  }
  ASSERT_TRUE(origin->child().signal(SIGKILL));
  // The client sees its connection end before the promised length: never a short "complete" body.
  std::string rest = t->client().readUntilClose(Millis(10000));
  EXPECT_LT(some.size() + rest.size(), size_t(512 * kMiB));
  EXPECT_FALSE(t->client().isOpen());
  ASSERT_NO_FATAL_FAILURE(expectServed(spare->port()));
}

// A verified origin that takes the request and then never answers gets a 504 page inside the
// decrypted connection once first_byte passes (2 s here); one that resets the connection instead
// gets a 502. Both are logged with their reason; each page says Connection: close, the proxy
// closes that client connection, and the client's next connection is served.
TEST_F(TlsIntercept, OriginHangingOrResettingAfterTheRequestGetsAPage) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  const std::string host = "good.pki.test", port = std::to_string(origin->port());
  struct Case {
    const char* path;
    int status;
    const char* reason;
  };
  for (const Case& c : {Case{"/hang", 504, "reason=upstream_timeout"}, Case{"/reset", 502, "reason=upstream_reset"}}) {
    auto t = via(host, origin->port());
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    const auto start = std::chrono::steady_clock::now();
    Response r = t->roundTrip(get(host, origin->port(), c.path));
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(r.complete) << c.path << ": " << r.summary();
    EXPECT_EQ(r.status, c.status) << r.summary();
    EXPECT_EQ(r.header("Connection").value_or(""), "close") << c.path;
    EXPECT_NE(r.body.find("ref"), std::string::npos) << "the page carries its reference id";
    if (c.status == 504) {
      EXPECT_GE(took, std::chrono::milliseconds(1900)) << "first_byte is 2 s";
    }
    EXPECT_LT(took, std::chrono::seconds(6)) << c.path;
    EXPECT_TRUE(t->client().waitClosed(Millis(3000))) << c.path << ": the connection was announced closed";
    EXPECT_TRUE(proxy().waitLogLineWith("GET https://" + host + ":" + port + c.path, c.reason));
  }
  auto next = via(host, origin->port());
  ASSERT_TRUE(next->handshakeOk()) << next->error();
  Response r = next->roundTrip(get(host, origin->port(), "/size/70000"));
  EXPECT_EQ(r.status, 200) << r.summary();
  EXPECT_TRUE(r.body == testorigin::patternString(70000)) << "the next body arrives intact";
}

// The origin promises 4 MiB and breaks off after 300,000 bytes in the way `how` names (a query of
// test_origin's /size/): the client's connection ends within 5 s, short of the promised length
// (never a "complete" short body), the access log says TCP_MISS_ABORTED, and the worker serves
// the next request.
void TlsIntercept::expectDownloadCutShort(const std::string& how) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(t->send(get("good.pki.test", origin->port(), "/size/" + std::to_string(4 * kMiB) + "?" + how)));
  std::string all = t->client().readUntilClose(Millis(10000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(t->client().isOpen());
  size_t headEnd = all.find("\r\n\r\n");
  ASSERT_NE(headEnd, std::string::npos) << all.substr(0, 200);
  EXPECT_NE(all.find("Content-Length: " + std::to_string(4 * kMiB)), std::string::npos);
  EXPECT_LE(all.size() - headEnd - 4, 300000u);
  EXPECT_TRUE(proxy().waitLogLineWith("TCP_MISS_ABORTED", "?" + how));
  ASSERT_NO_FATAL_FAILURE(expectServed(origin->port()));
}

TEST_F(TlsIntercept, OriginEndingTlsMidBodyEndsTheDownloadAtOnce) {
  // 300,000 bytes, then close_notify and FIN in one go: the records OpenSSL read ahead before the
  // close_notify reach the client, then its connection ends.
  expectDownloadCutShort("short=300000");
}

TEST_F(TlsIntercept, OriginRecordThatDoesNotDecryptEndsTheDownloadAtOnce) {
  // 300,000 good bytes, then a record that fails its integrity check, right behind records
  // OpenSSL has read ahead.
  expectDownloadCutShort("corrupt=300000");
}

// CPU time (user + system) the process has used, in clock ticks; -1 when unreadable.
static long cpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t p = stat.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream fields(stat.substr(p + 2));
  std::string f;
  long utime = -1, stime = -1;
  for (int i = 3; fields >> f; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stol(f);
    if (i == 15) {
      stime = std::stol(f);
      break;
    }
  }
  return utime < 0 || stime < 0 ? -1 : utime + stime;
}

// Verified upstream connections waiting in the pool cost nothing while nobody asks: the socket
// moves from the plain to the TLS bufferevent without leaving a stale registration that epoll
// would report as writable for ever (which once kept an idle worker at 100 % of a core).
TEST_F(TlsIntercept, IdleProxyWithPooledUpstreamsUsesNoCpu) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  // Many connections at once, so descriptor numbers are reused while the loop still has changes
  // queued for them: that is when a stale registration used to survive.
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i)
    threads.emplace_back([&] {
      for (int round = 0; round < 4; ++round) {
        auto t = via("good.pki.test", origin->port());
        if (!t->handshakeOk()) continue;
        for (int r = 0; r < 3; ++r)
          if (t->roundTrip(get("good.pki.test", origin->port(), "/size/100")).status == 200) ++ok;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 32 * 4 * 3);
  std::this_thread::sleep_for(Millis(300));  // the clients' closes are handled
  long before = cpuTicks(proxy().pid());
  std::this_thread::sleep_for(Millis(2000));
  long after = cpuTicks(proxy().pid());
  ASSERT_GE(before, 0);
  long hz = sysconf(_SC_CLK_TCK);
  EXPECT_LT(after - before, hz / 10) << "an idle proxy used " << (after - before) * 1000 / hz << " ms of CPU in 2 s";
  // The pooled upstreams still work.
  ASSERT_NO_FATAL_FAILURE(expectServed(origin->port()));
}

// A pooled origin connection that waited long enough to give its record buffers back is taken
// again for the next client and carries multi-megabyte bodies intact (OpenSSL allocates the
// buffers again, read-ahead included): no new TCP connection, no new handshake at the origin.
TEST_F(TlsIntercept, PooledUpstreamThatGaveItsBuffersBackServesTheNextClient) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  workers_ = "1";  // pools are per worker: every client meets the same one
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  const std::string host = "good.pki.test";
  {
    auto first = via(host, origin->port());
    ASSERT_TRUE(first->handshakeOk()) << first->error();
    ASSERT_EQ(first->roundTrip(get(host, origin->port(), "/size/100")).status, 200);
  }
  auto before = origin->stats();
  const size_t sizes[] = {3 * kMiB + 17, 100, 1 * kMiB};
  for (size_t size : sizes) {
    std::this_thread::sleep_for(Millis(300));  // past the pool's 100 ms: buffers given back
    auto next = via(host, origin->port());
    ASSERT_TRUE(next->handshakeOk()) << next->error();
    Response r = next->roundTrip(get(host, origin->port(), "/size/" + std::to_string(size)));
    ASSERT_TRUE(r.complete) << r.summary();
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.body == testorigin::patternString(size)) << "the body of " << size << " bytes arrives intact";
    // A second request at once on the same client connection, on the same pooled upstream.
    Response again = next->roundTrip(get(host, origin->port(), "/size/70000"));
    EXPECT_EQ(again.status, 200);
    EXPECT_TRUE(again.body == testorigin::patternString(70000));
  }
  auto after = origin->stats();
  EXPECT_EQ(after.connections, before.connections) << "every request went on the pooled connection";
  EXPECT_EQ(after.tlsHandshakes, before.tlsHandshakes + 1) << "only the second /stats shook hands";
}

// /metrics on the admin listener is Prometheus text (every sample under a HELP and a TYPE, names
// and values well formed, counters named *_total) and counts what the clients did: a decrypted
// connection with two requests on one verified origin connection, now idle in the pool, and an
// origin whose certificate is refused.
TEST_F(TlsIntercept, MetricsArePrometheusTextAndCountInterceptedTraffic) {
  Origin* good = tlsOrigin("good");
  Origin* expired = tlsOrigin("expired");
  ASSERT_NE(good, nullptr);
  ASSERT_NE(expired, nullptr);
  adminPort_ = pickFreePort();
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  {
    auto t = via("good.pki.test", good->port());
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    EXPECT_EQ(t->roundTrip(get("good.pki.test", good->port(), "/size/1000")).status, 200);
    EXPECT_EQ(t->roundTrip(get("good.pki.test", good->port(), "/size/2000")).status, 200);
  }
  {
    auto bad = via("expired.pki.test", expired->port());
    ASSERT_TRUE(bad->handshakeOk()) << bad->error();
    EXPECT_EQ(bad->roundTrip(get("expired.pki.test", expired->port(), "/")).status, 502);
  }
  std::map<std::string, double> v;
  std::string text;
  for (int attempt = 0; attempt < 50; ++attempt) {  // the clients' closes reach the proxy
    Client admin(adminPort_);
    ASSERT_TRUE(admin.connected());
    Response r = admin.roundTrip("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(r.status, 200) << r.summary();
    EXPECT_NE(r.header("Content-Type").value_or("").find("text/plain"), std::string::npos);
    text = r.body;
    v.clear();
    std::map<std::string, std::string> types;
    std::set<std::string> helped;
    std::istringstream lines(text);
    std::string line;
    const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"\\]*"(,[a-z_]+="[^"\\]*")*\})? (-?[0-9]+(\.[0-9]+)?)$)");
    const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
    const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$)");
    while (std::getline(lines, line)) {
      std::smatch m;
      if (std::regex_match(line, m, help)) {
        helped.insert(m[1]);
      } else if (std::regex_match(line, m, type)) {
        EXPECT_TRUE(helped.count(m[1])) << "TYPE before HELP: " << line;
        EXPECT_FALSE(types.count(m[1])) << "a family typed twice: " << line;
        types[m[1]] = m[2];
        bool total = std::string(m[1]).size() > 6 && std::string(m[1]).substr(std::string(m[1]).size() - 6) == "_total";
        EXPECT_EQ(total, m[2] == "counter") << "counters and only counters end in _total: " << line;
      } else if (std::regex_match(line, m, sample)) {
        EXPECT_TRUE(types.count(m[1])) << "a sample without HELP/TYPE: " << line;
        v[std::string(m[1]) + std::string(m[2])] += std::stod(m[4]);
      } else {
        ADD_FAILURE() << "not Prometheus text: [" << line << "]";
      }
    }
    if (v["sekisho_upstream_idle_connections"] >= 1 && v["sekisho_connections_active"] == 0) break;
    std::this_thread::sleep_for(Millis(100));
  }
  EXPECT_EQ(v["sekisho_tls_intercepted_total"], 1) << "decrypted towards a verified origin" << text;
  EXPECT_EQ(v["sekisho_tls_origin_cert_refused_total"], 1) << text;
  // The CONNECT and the request inside it, each logged with the reason.
  EXPECT_EQ(v["sekisho_refusals_total{reason=\"upstream_cert_invalid\"}"], 2) << text;
  EXPECT_GE(v["sekisho_requests_total"], 5) << text;  // two CONNECTs and three requests inside
  EXPECT_GE(v["sekisho_responses_total{class=\"2xx\"}"], 4) << text;
  EXPECT_GE(v["sekisho_responses_total{class=\"5xx\"}"], 1) << text;
  EXPECT_EQ(v["sekisho_tls_upstream_handshakes_total"], 2) << text;  // good, then expired (refused)
  EXPECT_EQ(v["sekisho_tls_leaf_mints_total"], 2) << text;
  EXPECT_GE(v["sekisho_upstream_reuses_total"], 1) << text;  // the second request at least
  EXPECT_EQ(v["sekisho_upstream_idle_connections"], 1) << "the verified connection to good waits" << text;
  EXPECT_EQ(v["sekisho_connections_active"], 0) << text;
  EXPECT_EQ(v["sekisho_build_info{version=\"" SEKISHO_VERSION "\"}"], 1) << text;
}

// A second upstream connection to an origin resumes the TLS session the first one got (an
// abbreviated handshake, no certificate sent), and is verified all the same.
TEST_F(TlsIntercept, UpstreamSessionIsResumedByTheNextConnection) {
  TlsOriginOptions withTickets;
  withTickets.extraArgs = {"--tickets"};
  Origin* origin = tlsOrigin(withTickets);
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto a = via("good.pki.test", origin->port());
  ASSERT_TRUE(a->handshakeOk()) << a->error();
  Response first = a->roundTrip(get("good.pki.test", origin->port(), "/tls"));
  ASSERT_EQ(first.status, 200) << first.summary();
  EXPECT_NE(first.body.find("\"resumed\":false"), std::string::npos) << first.body;
  // Keep a's upstream busy with a long download so that b needs a connection of its own.
  ASSERT_TRUE(a->send(get("good.pki.test", origin->port(), "/size/" + std::to_string(256 * kMiB))));
  std::string some;
  while (some.size() < 2 * kMiB) {
    std::string piece = a->client().readSome(Millis(3000));
    ASSERT_FALSE(piece.empty()) << "the download did not start";
    some += piece;
  }
  auto b = via("good.pki.test", origin->port());
  ASSERT_TRUE(b->handshakeOk()) << b->error();
  Response second = b->roundTrip(get("good.pki.test", origin->port(), "/tls"));
  ASSERT_EQ(second.status, 200) << second.summary();
  EXPECT_NE(second.body.find("\"resumed\":true"), std::string::npos) << second.body;
  EXPECT_NE(second.body.find("\"sni\":\"good.pki.test\""), std::string::npos) << second.body;
  EXPECT_EQ(b->verifyResult(), 0) << "the client still gets the leaf minted from the verified origin";
}

// The origin side reads ahead (several TLS records per read()); records left inside OpenSSL when
// the socket goes quiet must still be delivered: responses of every size, back to back on one
// connection, none waiting for more bytes from the origin.
TEST_F(TlsIntercept, ResponsesOfEverySizeArriveWhole) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  const auto start = std::chrono::steady_clock::now();
  for (size_t size : {size_t(1), size_t(100), size_t(16383), size_t(16384), size_t(16385), size_t(40000),
                      size_t(65535), size_t(65536), size_t(70000), size_t(131072), size_t(300001), size_t(1)}) {
    for (int rep = 0; rep < 3; ++rep) {
      Response r = t->roundTrip(get("good.pki.test", origin->port(), "/size/" + std::to_string(size)));
      ASSERT_TRUE(r.complete) << size << ": " << r.summary();
      ASSERT_EQ(r.status, 200);
      ASSERT_EQ(r.body.size(), size);
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10)) << "a response waited";
}

// An idle intercepted connection (after one request) costs the proxy at most 40 KiB. A TLS
// bufferevent once kept an empty 256 KiB read reservation per connection (its single-read size)
// that stayed after the request was read: 48 KiB resident per idle connection instead of 33.
TEST_F(TlsIntercept, IdleInterceptedConnectionsStaySmall) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "RSS under AddressSanitizer says nothing about the release build";
#endif
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  {  // warm up: the leaf, the pooled upstream, the allocator's first arenas
    auto t = via("good.pki.test", origin->port());
    ASSERT_TRUE(t->handshakeOk()) << t->error();
    ASSERT_EQ(t->roundTrip(get("good.pki.test", origin->port(), "/size/1024")).status, 200);
  }
  const long before = proxy().rssKiB();
  constexpr int kConns = 300;
  std::vector<std::unique_ptr<TlsClient>> idle;
  for (int i = 0; i < kConns; ++i) {
    idle.push_back(via("good.pki.test", origin->port()));
    ASSERT_TRUE(idle.back()->handshakeOk()) << i << ": " << idle.back()->error();
    ASSERT_EQ(idle.back()->roundTrip(get("good.pki.test", origin->port(), "/size/1024")).status, 200) << i;
  }
  std::this_thread::sleep_for(Millis(1500));  // idle connections are trimmed after 1 s
  const long after = proxy().rssKiB();
  const double perConn = double(after - before) / kConns;
  EXPECT_LE(perConn, 40.0) << "RSS " << before << " -> " << after << " KiB for " << kConns << " idle connections";
  std::cout << "[ idle ] " << perConn << " KiB per idle intercepted connection\n";
  // Still whole connections: each answers its next request.
  for (int i = 0; i < kConns; i += 37)
    EXPECT_EQ(idle[i]->roundTrip(get("good.pki.test", origin->port(), "/size/20000")).bodyBytes, 20000u) << i;
}

// HTTP/2 to the client (curl --http2), translated to the HTTP/1.1 request path.
class TlsInterceptH2 : public TlsIntercept {
 protected:
  RunResult curl(std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/curl", "-sS", "--max-time", "20", "--http2", "--cacert", proxyCa(),
                                  "-x", "http://" + proxy().authority()};
    argv.insert(argv.end(), args.begin(), args.end());
    return runToCompletion("curl", argv, env_.dir(), Millis(30000));
  }
  // A test origin that chooses h2 when offered (the proxy offers it for HTTP/2 clients), and the
  // proxy in front of it; base_ is its https:// URL prefix.
  Origin* startH2Origin(const std::vector<std::string>& env = {}) {
    TlsOriginOptions o;
    o.alpn = "h2,http/1.1";
    Origin* origin = tlsOrigin(o);
    if (!origin) return nullptr;
    startIntercepting("", "", env);
    base_ = "https://good.pki.test:" + std::to_string(origin->port());
    return HasFatalFailure() ? nullptr : origin;
  }
  std::string base_;

  // Hand-written HTTP/2 for what clients like curl never send: an HPACK literal header field
  // without indexing (names and values under 128 bytes), a frame, and the frames in `in`.
  static std::string literal(std::string_view name, std::string_view value) {
    std::string f{'\0', char(name.size())};
    f.append(name).push_back(char(value.size()));
    f.append(value);
    return f;
  }
  static std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
    std::string f{char(payload.size() >> 16), char(payload.size() >> 8), char(payload.size()), char(type), char(flags),
                  char(stream >> 24), char(stream >> 16), char(stream >> 8), char(stream)};
    return f.append(payload);
  }
  // An HTTP/2 connection through the proxy to good.pki.test at `origin` on which stream 1 asks
  // for GET `path` (no response read); null (with a test failure) when h2 was not agreed.
  std::unique_ptr<TlsClient> h2Get(Origin* origin, const std::string& path) {
    TlsOptions o;
    o.alpn = {"h2"};
    auto t = via("good.pki.test", origin->port(), o);
    EXPECT_TRUE(t->handshakeOk()) << t->error();
    EXPECT_EQ(t->alpn(), "h2");
    if (!t->handshakeOk() || t->alpn() != "h2") return nullptr;
    const std::string authority = "good.pki.test:" + std::to_string(origin->port());
    t->send(preface() + frame(1, 0x5, 1,
                               literal(":method", "GET") + literal(":scheme", "https") + literal(":authority", authority) +
                                   literal(":path", path)));
    return t;
  }
  static std::string preface() { return std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + frame(4, 0, 0, ""); }
  struct Frame {
    uint8_t type, flags;
    uint32_t stream;
    std::string payload;
  };
  static std::vector<Frame> frames(const std::string& in) {
    std::vector<Frame> out;
    for (size_t at = 0; at + 9 <= in.size();) {
      size_t len = (uint8_t(in[at]) << 16) | (uint8_t(in[at + 1]) << 8) | uint8_t(in[at + 2]);
      if (at + 9 + len > in.size()) break;
      uint32_t stream = (uint32_t(uint8_t(in[at + 5]) & 0x7f) << 24) | (uint32_t(uint8_t(in[at + 6])) << 16) |
                        (uint32_t(uint8_t(in[at + 7])) << 8) | uint32_t(uint8_t(in[at + 8]));
      out.push_back({uint8_t(in[at + 3]), uint8_t(in[at + 4]), stream, in.substr(at + 9, len)});
      at += 9 + len;
    }
    return out;
  }
  static uint32_t be32(std::string_view p, size_t at) {
    return (uint32_t(uint8_t(p[at])) << 24) | (uint32_t(uint8_t(p[at + 1])) << 16) | (uint32_t(uint8_t(p[at + 2])) << 8) |
           uint32_t(uint8_t(p[at + 3]));
  }
  // The GOAWAY in `in` as {last stream id, error code}, or nullopt.
  static std::optional<std::pair<uint32_t, uint32_t>> goaway(const std::string& in) {
    for (const Frame& f : frames(in))
      if (f.type == 7 && f.payload.size() >= 8) return std::make_pair(be32(f.payload, 0) & 0x7fffffff, be32(f.payload, 4));
    return std::nullopt;
  }
};

TEST_F(TlsInterceptH2, CurlGetsHttp2EndToEnd) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  std::string base = "https://good.pki.test:" + std::to_string(origin->port());
  RunResult r = curl({"-o", env_.path("body"), "-w", "%{http_code} %{http_version} %{size_download}", base + "/size/300000"});
  ASSERT_TRUE(r.exitedWith(0)) << describeStatus(r.status) << r.err;
  EXPECT_EQ(r.out, "200 2 300000");
  EXPECT_EQ(readFile(env_.path("body")), testorigin::patternString(300000)) << "the body arrives intact";
  EXPECT_TRUE(proxy().waitLogLineWith("GET " + base + "/size/300000", "TCP_MISS/200"));
  // A request body (no content-length: chunked towards the origin) and the origin's answer.
  ASSERT_TRUE(writeFileAtomic(env_.path("up"), testorigin::patternString(200000)));
  r = curl({"-w", " %{http_code} %{http_version}", "-H", "Content-Length:", "--data-binary",
            "@" + env_.path("up"), base + "/upload"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "200000 200 2");
  // A HEAD has no body; a 204 neither.
  r = curl({"-I", "-w", "%{http_code}", "-o", "/dev/null", base + "/size/10"});
  EXPECT_EQ(r.out, "200");
  r = curl({"-w", "%{http_code} %{size_download}", "-o", "/dev/null", base + "/status/204"});
  EXPECT_EQ(r.out, "204 0");
}

TEST_F(TlsInterceptH2, ManyStreamsShareOneConnection) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  std::string base = "https://good.pki.test:" + std::to_string(origin->port());
  std::vector<std::string> args{"--parallel", "--parallel-max", "40", "-w", "%{http_code} %{http_version} %{size_download}\n"};
  constexpr int kStreams = 40;
  for (int i = 1; i <= kStreams; ++i) {
    args.push_back("-o");
    args.push_back("/dev/null");
    args.push_back(base + "/size/" + std::to_string(1000 * i));
  }
  RunResult r = curl(args);
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  auto lines = splitLines(r.out);
  ASSERT_EQ(lines.size(), size_t(kStreams)) << r.out;
  for (const auto& l : lines) EXPECT_EQ(l.rfind("200 2 ", 0), 0u) << l;
  size_t connects = 0, gets = 0;
  for (const auto& l : proxy().logLines()) {
    connects += l.find("CONNECT good.pki.test") != std::string::npos;
    gets += l.find("GET " + base + "/size/") != std::string::npos;
  }
  EXPECT_EQ(connects, 1u) << "every stream on one intercepted connection";
  EXPECT_TRUE(waitUntil([&] {
    gets = 0;
    for (const auto& l : proxy().logLines()) gets += l.find("GET " + base + "/size/") != std::string::npos;
    return gets == size_t(kStreams);
  }, Millis(3000)));
}

TEST_F(TlsInterceptH2, BlockedUrlInsideHttp2GetsThePage) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  std::string port = std::to_string(origin->port());
  ASSERT_TRUE(writeFileAtomic(env_.path("urlhaus.csv"),
                              "\"1\",\"2026-11-01 00:00:00\",\"https://good.pki.test:" + port +
                                  "/payload.exe\",\"online\",\"\",\"malware_download\",\"exe\","
                                  "\"https://urlhaus.abuse.ch/url/1/\",\"anon\"\r\n"));
  ASSERT_NO_FATAL_FAILURE(
      startIntercepting("reputation:\n  lists: [{file: urlhaus.csv, format: urlhaus, category: malware}]\n"));
  RunResult r = curl({"-w", "\n%{http_code} %{http_version}", "https://good.pki.test:" + port + "/payload.exe"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_NE(r.out.find("\n403 2"), std::string::npos) << r.out.substr(r.out.size() > 300 ? r.out.size() - 300 : 0);
  EXPECT_NE(r.out.find("malware"), std::string::npos);
  EXPECT_EQ(origin->requestCount(), 0);
}

// An origin that speaks HTTP/2 gets the streams of an HTTP/2 client as streams on one connection
// of its own (not one connection per concurrent stream), every body whole.
TEST_F(TlsInterceptH2, H2OriginGetsEveryStreamOnOneConnection) {
  Origin* origin = startH2Origin();
  ASSERT_NE(origin, nullptr);
  const std::string& base = base_;
  std::vector<std::string> args{"--parallel", "--parallel-max", "50", "-w", "%{http_code} %{http_version}\n"};
  std::vector<std::pair<std::string, size_t>> wanted;  // file, size
  for (int i = 0; i < 30; ++i) wanted.emplace_back(env_.path("b" + std::to_string(i)), 100000 + 7919 * size_t(i));
  for (int i = 30; i < 33; ++i) wanted.emplace_back(env_.path("b" + std::to_string(i)), 3 * kMiB + size_t(i));
  for (size_t i = 0; i < wanted.size(); ++i) {
    args.insert(args.end(), {"-o", wanted[i].first,
                             base + "/size/" + std::to_string(wanted[i].second) + (i % 2 ? "?chunked=1" : "")});
  }
  RunResult r = curl(args);
  ASSERT_TRUE(r.exitedWith(0)) << describeStatus(r.status) << r.err;
  for (const auto& l : splitLines(r.out)) EXPECT_EQ(l, "200 2");
  for (const auto& [file, size] : wanted)
    EXPECT_TRUE(readFile(file) == testorigin::patternString(size)) << file << ": " << size << " bytes expected";
  Origin::Stats st = origin->stats();
  EXPECT_EQ(st.h2Connections, 1) << "one h2 connection from the proxy";
  EXPECT_EQ(st.h2Streams, long(wanted.size()));
  EXPECT_TRUE(waitUntil([&] {
    size_t gets = 0;
    for (const auto& l : proxy().logLines()) gets += l.find("TCP_MISS/200") != std::string::npos && l.find("GET " + base + "/size/") != std::string::npos;
    return gets == wanted.size();
  }, Millis(3000))) << "each stream logged as its own request";
}

// An HTTP/1.1 client is never translated: the proxy offers the origin only http/1.1 for it.
TEST_F(TlsInterceptH2, Http1ClientStaysHttp1ToAnH2Origin) {
  Origin* origin = startH2Origin();
  ASSERT_NE(origin, nullptr);
  auto t = via("good.pki.test", origin->port());
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  Response r = t->roundTrip(get("good.pki.test", origin->port(), "/tls"));
  ASSERT_EQ(r.status, 200) << r.summary();
  EXPECT_NE(r.body.find("\"alpn\":\"http/1.1\""), std::string::npos) << r.body;
  EXPECT_EQ(origin->stats().h2Connections, 0);
}

// What HTTP/2 from the origin must become on the way back: a request body, a chunked body with
// its trailer, HEAD, 204 and 304 without bodies, request headers passed on and hop-by-hop ones not.
TEST_F(TlsInterceptH2, H2OriginAnswersBecomeTheSameResponses) {
  workers_ = "1";  // every curl run on the worker that holds the h2 origin connection
  Origin* origin = startH2Origin();
  ASSERT_NE(origin, nullptr);
  const std::string& base = base_;
  ASSERT_TRUE(writeFileAtomic(env_.path("up"), testorigin::patternString(3 * kMiB)));
  RunResult r = curl({"-w", " %{http_code} %{http_version}", "-H", "Content-Length:", "--data-binary",
                      "@" + env_.path("up"), base + "/upload"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, std::to_string(3 * kMiB) + " 200 2");
  r = curl({"-D", env_.path("h"), "-o", env_.path("c"), base + "/size/100000?chunked=1&h=X-Extra:%20one"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_TRUE(readFile(env_.path("c")) == testorigin::patternString(100000));
  EXPECT_NE(readFile(env_.path("h")).find("x-extra: one"), std::string::npos) << readFile(env_.path("h"));
  r = curl({"-H", "X-Test: yes", "-H", "Content-Length:", "--data-binary", "hello", base + "/echo"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_NE(r.out.find(":authority: good.pki.test:" + std::to_string(origin->port()) + "\r\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(":method: POST\r\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("x-test: yes\r\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("via: 1.1 sekisho-test"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("transfer-encoding"), std::string::npos) << "HTTP/1.1 framing stays out of h2\n" << r.out;
  EXPECT_EQ(r.out.find("connection"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\r\n\r\nhello"), std::string::npos) << r.out;
  r = curl({"-I", "-w", "%{http_code}", "-o", env_.path("head"), base + "/size/10"});
  EXPECT_EQ(r.out, "200");
  std::string head = readFile(env_.path("head"));
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  EXPECT_NE(head.find("content-length: 10\r\n"), std::string::npos) << head;
  r = curl({"-w", "%{http_code} %{size_download}", "-o", "/dev/null", base + "/status/204"});
  EXPECT_EQ(r.out, "204 0");
  r = curl({"-w", "%{http_code} %{size_download}", "-o", "/dev/null", base + "/status/304"});
  EXPECT_EQ(r.out, "304 0");
  r = curl({"-w", "%{http_code} %{size_download}", "-o", "/dev/null", base + "/status/404"});
  EXPECT_EQ(r.out, "404 0");
  EXPECT_EQ(origin->stats().h2Connections, 1);
}

// A stream the origin resets ends that response only, never passed off as complete; a reset
// before any answer is a 502 page, a stream never answered a 504; after GOAWAY the next request
// gets a new connection.
TEST_F(TlsInterceptH2, H2OriginResetsHangsAndGoawayEndOnlyWhatTheyMust) {
  workers_ = "1";  // every curl run on the worker that holds the h2 origin connection
  Origin* origin = startH2Origin();
  ASSERT_NE(origin, nullptr);
  const std::string& base = base_;
  std::vector<std::string> args{"--parallel", "-w", "%{url} %{http_code} %{size_download}\n"};
  args.insert(args.end(), {"-o", env_.path("cut"), base + "/size/1000000?reset_after=30000"});
  for (int i = 0; i < 4; ++i) args.insert(args.end(), {"-o", env_.path("ok" + std::to_string(i)), base + "/size/200000"});
  RunResult r = curl(args);
  EXPECT_FALSE(r.exitedWith(0)) << "curl must see the cut stream fail\n" << r.out;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(readFile(env_.path("ok" + std::to_string(i))) == testorigin::patternString(200000)) << i;
  EXPECT_LT(readFile(env_.path("cut")).size(), 1000000u);
  EXPECT_TRUE(proxy().waitLogLineWith("/size/1000000?reset_after=30000", "TCP_MISS_ABORTED"));
  // (Before the reset below: a stream reset before its answer is retried once on a new
  // connection, and the GOAWAY check needs the worker to have only the one.)
  long before = origin->stats().h2Connections;
  r = curl({"-w", " %{http_code}", base + "/goaway"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "bye 200");
  r = curl({"-w", " %{http_code}", base + "/size/5"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, testorigin::patternString(5) + " 200");
  EXPECT_EQ(origin->stats().h2Connections, before + 1) << "a new connection after GOAWAY";
  // Reset before any answer: retried once on a new connection, reset again there: a 502 page.
  r = curl({"-w", "%{http_code}", "-o", env_.path("page"), base + "/reset"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "502");
  EXPECT_TRUE(proxy().waitLogLineWith("GET " + base + "/reset", "/502"));
  auto tries = [&](std::string_view what) {  // streams the origin logged for `what`
    std::string all = origin->child().stderrText();
    size_t n = 0;
    for (size_t at = all.find(what); at != std::string::npos; at = all.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(tries(" GET /reset -> RST_STREAM"), 2u) << "a GET reset before any answer is retried once";
  // A POST is not sent twice: the origin may have acted on it before the reset (RFC 9113 §8.7).
  r = curl({"-X", "POST", "-w", "%{http_code}", "-o", env_.path("page"), base + "/reset?post"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "502");
  EXPECT_NE(readFile(env_.path("page")).find("not retried"), std::string::npos);
  EXPECT_EQ(tries(" POST /reset?post -> RST_STREAM"), 1u);
  // A POST the origin refused (REFUSED_STREAM: not processed) is sent again, and served.
  r = curl({"-X", "POST", "-w", " %{http_code}", base + "/refuse-first"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "accepted 200");
  EXPECT_EQ(tries(" POST /refuse-first -> REFUSED_STREAM"), 1u);
  EXPECT_EQ(tries(" POST /refuse-first -> 200"), 1u);
  // A stream the origin never answers gets its own 504 at the first-byte deadline; a stream
  // beside it on the same origin connection is served meanwhile.
  auto started = std::chrono::steady_clock::now();
  r = curl({"--parallel", "-w", "%{url} %{http_code}\n", "-o", "/dev/null", base + "/hang", "-o", env_.path("beside"),
            base + "/size/70000"});
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_NE(r.out.find(base + "/hang 504"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find(base + "/size/70000 200"), std::string::npos) << r.out;
  EXPECT_TRUE(readFile(env_.path("beside")) == testorigin::patternString(70000));
  EXPECT_LT(took, Millis(6000)) << "first_byte is 2 s in these tests";
  EXPECT_TRUE(proxy().waitLogLineWith("GET " + base + "/hang", "/504"));
}

// Flow control is the bound: a client reading slowly holds the origin back through the proxy
// (the origin gets window only as the client takes bytes), and a fast 512 MiB download through
// the h2 origin connection keeps the proxy's memory flat.
TEST_F(TlsInterceptH2, ClientThatStopsReadingDoesNotStallOthersOnTheSharedOriginConnection) {
  // Every HTTP/2 client of a worker shares its h2 connection to an origin. One that opens many
  // downloads and reads none of them must hold back only its own streams: neither the origin
  // connection's window nor the proxy's memory is its to fill.
  workers_ = "1";
  Origin* origin = startH2Origin(boundedQuarantineEnv());
  ASSERT_NE(origin, nullptr);
  ASSERT_TRUE(curl({"-o", "/dev/null", base_ + "/size/5"}).exitedWith(0));  // the h2 origin connection
  const long before = proxy().rssKiB();
  TlsOptions o;
  o.alpn = {"h2"};
  auto stalled = via("good.pki.test", origin->port(), o);
  ASSERT_TRUE(stalled->handshakeOk()) << stalled->error();
  ASSERT_EQ(stalled->alpn(), "h2");
  const std::string authority = "good.pki.test:" + std::to_string(origin->port());
  std::string out = preface();
  constexpr int kStreams = 60;
  for (int i = 0; i < kStreams; ++i)
    out += frame(1, 0x5, uint32_t(2 * i + 1),
                 literal(":method", "GET") + literal(":scheme", "https") + literal(":authority", authority) +
                     literal(":path", "/size/" + std::to_string(8 << 20)));
  ASSERT_TRUE(stalled->send(out));
  // Its streams are under way (and stuck behind its unread socket) before the next client comes.
  std::this_thread::sleep_for(Millis(1500));
  RunResult r = curl({"-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--max-time", "10", base_ + "/size/3000000"});
  EXPECT_TRUE(r.exitedWith(0)) << describeStatus(r.status) << r.err;
  EXPECT_EQ(r.out, "200 3000000") << "another client's download starved behind the stalled one";
  const long grown = proxy().rssKiB() - before;
  std::cout << "[ stalled ] " << grown << " KiB held for " << kStreams << " unread 8 MiB downloads\n";
#if !defined(__SANITIZE_ADDRESS__)  // (AddressSanitizer's redzones and quarantine inflate RSS)
  // ~210 KiB per stream: 64 KiB windows beyond the client's 4 MiB budget of bigger ones, and the
  // hops' buffers (~290 KiB with 256 KiB windows for every stream; ~860 KiB at 1 MiB windows and
  // full per-connection buffers).
  EXPECT_LT(grown, 16 * 1024) << "KiB held for " << kStreams << " unread downloads";
#endif
}

TEST_F(TlsInterceptH2, StreamWindowGrowsForAClientThatKeepsUp) {
  // A window per round trip is a stream's speed limit towards a distant origin: a client that
  // takes everything at once earns a bigger one (up to 2 MiB), one that stops reading does not.
  workers_ = "1";
  Origin* origin = startH2Origin();
  ASSERT_NE(origin, nullptr);
  RunResult r = curl({"-o", "/dev/null", "-w", "%{http_code} %{size_download}", base_ + "/size/" + std::to_string(64 << 20)});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "200 " + std::to_string(64 << 20));
  Origin::Stats st = origin->stats();
  EXPECT_GT(st.h2MaxStreamWindow, 256 * 1024) << "the window never grew past its start";
  EXPECT_LE(st.h2MaxStreamWindow, 2 * 1024 * 1024) << "past the 2 MiB cap";
  std::cout << "[ window ] " << st.h2MaxStreamWindow << " bytes at most\n";
}

TEST_F(TlsInterceptH2, SilentlyDroppedOriginConnectionIsFoundOutAndItsRequestRetried) {
  // A firewall that forgets an idle connection drops its packets without a word: the proxy must
  // not keep sending every user's requests into it until each one times out.
  workers_ = "1";
  timeouts_ = {{"first_byte", "20s"}};
  Origin* origin = startH2Origin();
  ASSERT_NE(origin, nullptr);
  RunResult r = curl({"-o", "/dev/null", "-w", "%{http_code}", base_ + "/mute"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  ASSERT_EQ(r.out, "200");  // the worker's h2 connection to the origin is silent from now on
  std::this_thread::sleep_for(Millis(2500));  // silent for longer than kPingAfterSilenceMs
  auto t0 = Clock::now();
  r = curl({"-o", "/dev/null", "-w", "%{http_code} %{size_download}", base_ + "/size/100000"});
  auto took = Clock::now() - t0;
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "200 100000");
  EXPECT_LT(took, Millis(8000)) << "the request waited for its own timeout instead of the PING's";
  EXPECT_TRUE(waitUntil(
      [&] { return proxy().child().stderrText().find("after a PING; closing the connection") != std::string::npos; },
      Millis(2000), Millis(50)));
}

// A POST is never sent twice, so it does not go blindly on an h2 origin connection that has been
// silent for a while: it waits for the answer to a PING. The origin answers: the same connection
// serves it. The origin is gone silent: the POST was never sent, and goes on a new connection.
TEST_F(TlsInterceptH2, PostOnASilentOriginConnectionWaitsForAPingAnswer) {
  workers_ = "1";
  timeouts_ = {{"first_byte", "20s"}};
  Origin* origin = startH2Origin();
  ASSERT_NE(origin, nullptr);
  ASSERT_TRUE(curl({"-o", "/dev/null", base_ + "/size/5"}).exitedWith(0));
  long connections = origin->stats().h2Connections;
  std::this_thread::sleep_for(Millis(2300));  // silent for longer than kUnsafeAfterSilenceMs
  RunResult r = curl({"-X", "POST", "--data-binary", "abc", "-w", " %{http_code}", base_ + "/upload?first"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "3 200");
  EXPECT_EQ(origin->stats().h2Connections, connections) << "the POST did not wait for the PING on the same connection";
  // Now the connection goes silent for good (not even PING answers).
  r = curl({"-o", "/dev/null", "-w", "%{http_code}", base_ + "/mute"});
  ASSERT_EQ(r.out, "200");
  std::this_thread::sleep_for(Millis(2300));
  auto t0 = Clock::now();
  long ticks0 = cpuTicks(proxy().child().pid());
  r = curl({"-X", "POST", "--data-binary", "abcd", "-w", " %{http_code}", base_ + "/upload?second"});
  long ticks = cpuTicks(proxy().child().pid()) - ticks0;
  auto took = Clock::now() - t0;
  EXPECT_LT(ticks * 1000 / sysconf(_SC_CLK_TCK), 300 * kRssSlack) << "the proxy spun while the POST waited";
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "4 200") << "held, never sent, so retried on a new connection";
  EXPECT_GE(took, Millis(2500)) << "it waited for the PING's deadline";
  EXPECT_LT(took, Millis(8000));
  EXPECT_EQ(origin->stats().h2Connections, connections + 1);
  std::string log = origin->child().stderrText();
  size_t seen = 0;
  for (size_t at = log.find("POST /upload?second"); at != std::string::npos; at = log.find("POST /upload?second", at + 1))
    ++seen;
  EXPECT_EQ(seen, 1u) << "the origin must see the POST once\n" << log;
}

TEST_F(TlsInterceptH2, H2OriginIsHeldBackByASlowClientAndMemoryStaysFlat) {
  workers_ = "1";  // every curl run on the worker that holds the h2 origin connection
  Origin* origin = startH2Origin(boundedQuarantineEnv());
  ASSERT_NE(origin, nullptr);
  const std::string& base = base_;
  ASSERT_TRUE(curl({"-o", "/dev/null", base + "/size/5"}).exitedWith(0));
  long before = proxy().rssKiB();
  std::atomic<long> peak{before};
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) {
      long now = proxy().rssKiB();
      if (now > peak) peak = now;
      std::this_thread::sleep_for(Millis(100));
    }
  });
  RunResult slow = curl({"--limit-rate", "1M", "--max-time", "3", "-o", "/dev/null", "-w", "%{size_download}",
                         base + "/size/" + std::to_string(512 * kMiB)});
#ifdef SEKISHO_SANITIZE
  const uint64_t size = 128ull * kMiB;
#else
  const uint64_t size = 512ull * kMiB;
#endif
  RunResult fast = curl({"-o", "/dev/null", "-w", "%{http_code} %{size_download}", base + "/size/" + std::to_string(size)});
  done = true;
  sampler.join();
  EXPECT_TRUE(slow.exitedWith(28)) << "the slow download is cut by its own deadline: " << describeStatus(slow.status) << slow.err;
  EXPECT_LT(std::stoull(slow.out.empty() ? "0" : slow.out), 16 * kMiB);
  ASSERT_TRUE(fast.exitedWith(0)) << fast.err;
  EXPECT_EQ(fast.out, "200 " + std::to_string(size));
  EXPECT_LT(peak - before, 16 * 1024 * kRssSlack) << "RSS grew by " << (peak - before) << " KiB";
  EXPECT_EQ(origin->stats().h2Connections, 1);
}

// An HTTP/2 request whose Host names another host than its :authority is malformed (RFC 9113
// §8.3.1): refused with 400 before anything reaches the origin. Frames written by hand (HPACK
// literals without Huffman), since no HTTP/2 client sends such a request on purpose.
TEST_F(TlsInterceptH2, HostDifferentFromAuthorityIsRefused) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  const std::string authority = "good.pki.test:" + std::to_string(origin->port());
  // The :status of the response on stream `stream` (HPACK static index: 0x88 = 200, 0x8c = 400),
  // or -1 when none came.
  auto statusOf = [&](const std::string& host) -> int {
    TlsOptions o;
    o.alpn = {"h2"};
    auto t = via("good.pki.test", origin->port(), o);
    if (!t->handshakeOk() || t->alpn() != "h2") return -2;
    std::string block = literal(":method", "GET") + literal(":scheme", "https") + literal(":authority", authority) +
                        literal(":path", "/echo") + literal("host", host);
    t->send(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + frame(4, 0, 0, "") + frame(1, 0x5, 1, block));
    std::string in;
    for (int i = 0; i < 50; ++i) {
      in += t->client().readSome(Millis(100));
      for (size_t at = 0; at + 9 <= in.size();) {
        size_t len = (uint8_t(in[at]) << 16) | (uint8_t(in[at + 1]) << 8) | uint8_t(in[at + 2]);
        if (at + 9 + len > in.size()) break;
        uint8_t type = uint8_t(in[at + 3]);
        uint32_t stream = uint32_t(uint8_t(in[at + 8])) | (uint32_t(uint8_t(in[at + 7])) << 8);
        if (stream == 1 && type == 1 && len > 0) return uint8_t(in[at + 9]) == 0x88 ? 200 : uint8_t(in[at + 9]) == 0x8c ? 400 : 0;
        if (stream == 1 && type == 3) return -3;  // RST_STREAM
        at += 9 + len;
      }
    }
    return -1;
  };
  EXPECT_EQ(statusOf("evil.example"), 400);
  EXPECT_EQ(origin->requestCount(), 0);
  EXPECT_TRUE(proxy().waitLogLineWith("TCP_DENIED/400 ", "GET https://" + authority + "/echo - HIER_NONE/- text/plain reason=bad_request"))
      << "the refusal is logged like any other";
  EXPECT_EQ(statusOf(authority), 200) << "the same host in both is an ordinary request";
  EXPECT_EQ(origin->requestCount(), 1);
}

TEST_F(TlsInterceptH2, RapidResetAndContinuationFloodsEndTheConnectionAndSpareTheWorker) {
  // CVE-2023-44487: a client that opens streams and cancels them at once is never held back by
  // the concurrent-stream limit. The connection must end (GOAWAY) long before the flood does,
  // without a request per stream reaching the origin, and the worker must go on serving.
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  workers_ = "1";
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  const std::string authority = "good.pki.test:" + std::to_string(origin->port());
  TlsOptions o;
  o.alpn = {"h2"};
  auto t = via("good.pki.test", origin->port(), o);
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  ASSERT_EQ(t->alpn(), "h2");
  const std::string block =
      literal(":method", "GET") + literal(":scheme", "https") + literal(":authority", authority) + literal(":path", "/delay/200");
  const std::string cancel("\0\0\0\x08", 4);
  constexpr int kStreams = 5000;
  std::string flood = preface();
  for (int i = 0; i < kStreams; ++i) {
    uint32_t id = uint32_t(2 * i + 1);
    flood += frame(1, 0x5, id, block) + frame(3, 0, id, cancel);
  }
  // Sent in pieces while reading: the proxy may end the connection before it has all of it.
  std::string in;
  for (size_t at = 0; at < flood.size() && !goaway(in);) {
    size_t n = std::min<size_t>(64 * 1024, flood.size() - at);
    if (!t->send(std::string_view(flood).substr(at, n), Millis(2000))) break;
    at += n;
    in += t->client().readSome(Millis(5));
  }
  in += t->client().readUntilClose(Millis(3000));
  auto g = goaway(in);
  ASSERT_TRUE(g) << "the flood of cancelled streams was not ended";
  EXPECT_NE(g->second, 0u) << "an error, not NO_ERROR (nghttp2 says INTERNAL_ERROR)";
  // Far fewer requests than streams reached the origin, and the worker serves the next client.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_LT(origin->requestCount(), kStreams / 2);

  // CVE-2024-27316 and kin: one header block spread over endless CONTINUATION frames.
  auto c = via("good.pki.test", origin->port(), o);
  ASSERT_TRUE(c->handshakeOk()) << c->error();
  std::string endless = preface() + frame(1, 0x1, 1, block);
  for (int i = 0; i < 2000; ++i) endless += frame(9, 0, 1, literal("x-filler-" + std::to_string(i % 10), "y"));
  c->send(endless, Millis(2000));
  in = c->client().readUntilClose(Millis(3000));
  g = goaway(in);
  ASSERT_TRUE(g) << "endless CONTINUATION frames were not refused with a GOAWAY";
  EXPECT_EQ(g->second, 0xbu) << "ENHANCE_YOUR_CALM";
  EXPECT_FALSE(c->client().isOpen());

  long before = origin->requestCount();
  auto next = via("good.pki.test", origin->port());
  ASSERT_TRUE(next->handshakeOk()) << next->error();
  EXPECT_EQ(next->roundTrip(get("good.pki.test", origin->port(), "/size/10")).status, 200);
  EXPECT_EQ(origin->requestCount(), before + 1);
}

TEST_F(TlsInterceptH2, IdleConnectionGetsAGoawayBeforeItCloses) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  timeouts_ = {{"client_idle", "1s"}};
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = h2Get(origin, "/size/10");
  ASSERT_TRUE(t);
  auto t0 = Clock::now();
  std::string in = t->client().readUntilClose(Millis(5000));
  auto waited = Clock::now() - t0;
  auto g = goaway(in);
  ASSERT_TRUE(g) << "closed without a GOAWAY";
  EXPECT_EQ(g->first, 1u) << "the last stream it took";
  EXPECT_EQ(g->second, 0u) << "NO_ERROR";
  EXPECT_GE(waited, Millis(900));
  EXPECT_LT(waited, Millis(4000));
  bool answered = false;
  for (const Frame& f : frames(in)) answered |= f.type == 0 && f.stream == 1 && (f.flags & 1) && f.payload.size() == 10;
  EXPECT_TRUE(answered) << "stream 1 was served before the connection went idle";
}

// At the connection limit an HTTP/2 connection without streams is one of the idle ones closed
// to let a new client in: with a GOAWAY first (NO_ERROR), as at its idle timeout.
TEST_F(TlsInterceptH2, AtTheConnectionLimitAnIdleHttp2ConnectionGetsAGoaway) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  workers_ = "1";
  timeouts_ = {{"client_idle", "60s"}, {"request_header", "60s"}};
  ASSERT_NO_FATAL_FAILURE(startIntercepting("limits: {max_connections: 8}\n"));
  auto t = h2Get(origin, "/size/10");
  ASSERT_TRUE(t);
  std::string in;
  auto streamDone = [&] {
    for (const Frame& f : frames(in))
      if (f.stream == 1 && (f.type == 0 || f.type == 1) && (f.flags & 1)) return true;
    return false;
  };
  ASSERT_TRUE(waitUntil([&] { in += t->client().readSome(Millis(100)); return streamDone(); }, Millis(5000)));
  std::vector<Client> silent;
  for (int i = 0; i < 7; ++i) silent.emplace_back(proxy().port());
  std::this_thread::sleep_for(Millis(200));  // 8 connections: the limit
  const std::string self = proxy().authority();
  Response r = viaProxy("GET /healthz HTTP/1.1\r\nHost: " + self + "\r\n\r\n");
  EXPECT_EQ(r.status, 200) << r.summary();
  in += t->client().readUntilClose(Millis(3000));
  auto g = goaway(in);
  ASSERT_TRUE(g) << "closed without a GOAWAY";
  EXPECT_EQ(g->first, 1u);
  EXPECT_EQ(g->second, 0u) << "NO_ERROR";
  for (auto& c : silent) EXPECT_TRUE(c.waitClosed(Millis(2000))) << "idle since after the HTTP/2 connection";
}

TEST_F(TlsInterceptH2, SigtermLetsBegunStreamsFinishBehindAGoaway) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  timeouts_ = {{"shutdown", "10s"}};
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto t = h2Get(origin, "/delay/1000");
  ASSERT_TRUE(t);
  ASSERT_TRUE(waitUntil([&] { return origin->requestCount() == 1; }, Millis(3000), Millis(10)));
  auto t0 = Clock::now();
  ASSERT_TRUE(proxy().child().signal(SIGTERM));
  std::string in = t->client().readUntilClose(Millis(8000));
  auto g = goaway(in);
  ASSERT_TRUE(g) << "no GOAWAY at shutdown";
  EXPECT_EQ(g->first, 1u) << "stream 1 was begun and is served";
  EXPECT_EQ(g->second, 0u) << "NO_ERROR";
  bool status200 = false, ended = false;
  for (const Frame& f : frames(in)) {
    status200 |= f.type == 1 && f.stream == 1 && !f.payload.empty() && uint8_t(f.payload[0]) == 0x88;
    ended |= f.stream == 1 && (f.type == 0 || f.type == 1) && (f.flags & 1);
  }
  EXPECT_TRUE(status200 && ended) << "the stream in flight was cut";
  t->client().close();
  std::optional<int> status = proxy().child().waitExit(Millis(8000));
  ASSERT_TRUE(status) << "still running 8 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describeStatus(status);
  EXPECT_LT(Clock::now() - t0, Millis(6000)) << "the shutdown waited for its deadline, not for the stream";
}

TEST_F(TlsInterceptH2, IdleHttp2ConnectionsStaySmall) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "RSS under AddressSanitizer says nothing about the release build";
#endif
  // Browsers speak HTTP/2 and keep their connections open: an idle one must cost no more than an
  // idle HTTP/1.1 one is allowed to (nghttp2's 16 KiB frame buffer and the TLS read chain are
  // given back after a second of idleness).
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting());
  auto served = [&](TlsClient& t, uint32_t stream, size_t bytes) {
    std::string in;
    for (int i = 0; i < 100; ++i) {
      in += t.client().readSome(Millis(50));
      size_t got = 0;
      for (const Frame& f : frames(in)) {
        if (f.type == 0 && f.stream == stream) got += f.payload.size();
        if (f.stream == stream && (f.type == 0 || f.type == 1) && (f.flags & 1)) return got == bytes;
      }
    }
    return false;
  };
  {
    auto warm = h2Get(origin, "/size/1024");
    ASSERT_TRUE(warm && served(*warm, 1, 1024));
  }
  const long before = proxy().rssKiB();
  constexpr int kConns = 300;
  std::vector<std::unique_ptr<TlsClient>> idle;
  for (int i = 0; i < kConns; ++i) {
    idle.push_back(h2Get(origin, "/size/1024"));
    ASSERT_TRUE(idle.back() && served(*idle.back(), 1, 1024)) << i;
  }
  std::this_thread::sleep_for(Millis(1500));
  const long after = proxy().rssKiB();
  const double perConn = double(after - before) / kConns;
  EXPECT_LE(perConn, 40.0) << "RSS " << before << " -> " << after << " KiB for " << kConns << " idle connections";
  std::cout << "[ idle ] " << perConn << " KiB per idle intercepted HTTP/2 connection\n";
  // The pages given back come back for the next stream on the same connections.
  const std::string authority = "good.pki.test:" + std::to_string(origin->port());
  for (int i = 0; i < kConns; i += 37) {
    idle[i]->send(frame(1, 0x5, 3,
                        literal(":method", "GET") + literal(":scheme", "https") + literal(":authority", authority) +
                            literal(":path", "/size/40000")));
    EXPECT_TRUE(served(*idle[i], 3, 40000)) << i;
  }
}

TEST_F(TlsInterceptH2, Http2CanBeTurnedOff) {
  Origin* origin = tlsOrigin("good");
  ASSERT_NE(origin, nullptr);
  ASSERT_NO_FATAL_FAILURE(startIntercepting("", ", http2: false"));
  RunResult r = curl({"-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                      "https://good.pki.test:" + std::to_string(origin->port()) + "/size/10"});
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_EQ(r.out, "200 1.1");
}

}  // namespace
}  // namespace sekisho::it
