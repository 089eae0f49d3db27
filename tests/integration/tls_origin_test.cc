// The TLS fixtures on their own (no interception): the test PKI served by TLS test origins and
// checked with the harness's TlsClient, so a failing interception test can trust that the origin
// presented what it was told to. One test goes through a tunnelling proxy to cover viaProxy().
#include <openssl/x509_vfy.h>

#include <algorithm>

#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

constexpr std::string_view kUpgrade =
    "GET /ws HTTP/1.1\r\nHost: good.pki.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// A masked client frame (RFC 6455 §5.2), payload under 126 bytes.
std::string clientFrame(uint8_t b0, std::string_view payload) {
  const char mask[4] = {0x12, 0x34, 0x56, 0x78};
  std::string f{static_cast<char>(b0), static_cast<char>(0x80 | payload.size())};
  f.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return f;
}

// Reads until `n` bytes arrived (or 3 s without progress).
std::string readN(Client& c, size_t n) {
  std::string out;
  while (out.size() < n) {
    std::string piece = c.readSome(Millis(3000));
    if (piece.empty()) break;
    out += piece;
  }
  return out;
}

bool hasSan(const TlsClient& t, const std::string& san) {
  auto sans = t.peerSans();
  return std::find(sans.begin(), sans.end(), san) != sans.end();
}

class TlsOrigin : public ProxyTest {
 protected:
  void SetUp() override {
    pki_ = env_.makePki();
    ASSERT_FALSE(pki_.empty()) << env_.lastError();
    root_ = pki_ + "/root.crt";
  }
  Origin* start(const TlsOriginOptions& o) {
    Origin* origin = env_.startTlsOrigin(o);
    EXPECT_NE(origin, nullptr) << env_.lastError();
    return origin;
  }
  std::string pki_, root_;
};

TEST_F(TlsOrigin, GoodOriginVerifiesAgainstTheTestRoot) {
  TlsOriginOptions o;
  o.alpn = "h2,http/1.1";
  Origin* origin = start(o);
  ASSERT_NE(origin, nullptr);
  TlsOptions to;
  to.alpn = {"http/1.1"};
  auto t = TlsClient::direct(origin->port(), "good.pki.test", root_, to);
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  EXPECT_EQ(t->verifyResult(), X509_V_OK) << t->verifyError();
  EXPECT_EQ(t->version(), "TLSv1.3");
  EXPECT_EQ(t->alpn(), "http/1.1");
  EXPECT_EQ(t->peerChainLength(), 2) << "leaf and intermediate";
  EXPECT_TRUE(hasSan(*t, "DNS:good.pki.test"));
  EXPECT_TRUE(hasSan(*t, "IP:127.0.0.1"));
  EXPECT_NE(t->peerSubject().find("CN=good.pki.test"), std::string::npos) << t->peerSubject();
  EXPECT_NE(t->peerIssuer().find("CN=Sekisho Test Intermediate"), std::string::npos) << t->peerIssuer();
  EXPECT_EQ(t->peerSignatureAlgorithm(), "ecdsa-with-SHA256");
  EXPECT_EQ(t->peerKeyType(), "EC");
  EXPECT_EQ(t->peerKeyBits(), 256);
  long long now = static_cast<long long>(std::time(nullptr));
  EXPECT_GT(t->peerNotAfter(), now + 29 * 86400);
  EXPECT_LT(t->peerNotAfter(), now + 31 * 86400);

  Response r = t->roundTrip("GET /tls HTTP/1.1\r\nHost: good.pki.test\r\n\r\n");
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"sni\":\"good.pki.test\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"version\":\"TLSv1.3\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"alpn\":\"http/1.1\""), std::string::npos) << r.body;
  // Keep-alive over TLS: a second request on the same session, a body this time.
  r = t->roundTrip("GET /size/100000 HTTP/1.1\r\nHost: good.pki.test\r\n\r\n");
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.body, testorigin::patternString(100000));
}

TEST_F(TlsOrigin, WrongNameFailsTheHostnameCheck) {
  Origin* origin = start({});
  ASSERT_NE(origin, nullptr);
  auto t = TlsClient::direct(origin->port(), "other.pki.test", root_);
  EXPECT_FALSE(t->handshakeOk());
  EXPECT_EQ(t->verifyResult(), X509_V_ERR_HOSTNAME_MISMATCH) << t->error();
  // Not verifying lets the same handshake through, and the result is still recorded.
  TlsOptions lax;
  lax.verify = false;
  auto u = TlsClient::direct(origin->port(), "other.pki.test", root_, lax);
  EXPECT_TRUE(u->handshakeOk()) << u->error();
  EXPECT_EQ(u->verifyResult(), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(TlsOrigin, NoInterOriginFailsVerification) {
  TlsOriginOptions o;
  o.cert = "nointer";
  Origin* origin = start(o);
  ASSERT_NE(origin, nullptr);
  auto t = TlsClient::direct(origin->port(), "nointer.pki.test", root_);
  EXPECT_FALSE(t->handshakeOk());
  EXPECT_EQ(t->verifyResult(), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY) << t->error();
  EXPECT_EQ(t->peerChainLength(), 1) << "the leaf alone";
  // The origin saw the client's alert as a failed handshake, and kept serving.
  EXPECT_TRUE(waitUntil([&] { return origin->stats().tlsFailures == 1; }, Millis(3000)))
      << origin->ask("/stats").body;
  // Each stats() is a completed handshake of its own.
  long handshakes = origin->stats().tlsHandshakes;
  EXPECT_GE(handshakes, 2);
  EXPECT_EQ(origin->stats().tlsHandshakes, handshakes + 1);
}

TEST_F(TlsOrigin, Tls10OriginSpeaksTls10ToALegacyClientOnly) {
  TlsOriginOptions o;
  o.tlsMin = "1.0";
  o.tlsMax = "1.0";
  Origin* origin = start(o);
  ASSERT_NE(origin, nullptr);
  auto modern = TlsClient::direct(origin->port(), "good.pki.test", root_);
  EXPECT_FALSE(modern->handshakeOk());
  TlsOptions legacy;
  legacy.legacy = true;
  legacy.minVersion = "1.0";
  auto t = TlsClient::direct(origin->port(), "good.pki.test", root_, legacy);
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  EXPECT_EQ(t->version(), "TLSv1");
  Response r = t->roundTrip("GET /tls HTTP/1.1\r\nHost: good.pki.test\r\n\r\n");
  EXPECT_NE(r.body.find("\"version\":\"TLSv1\""), std::string::npos) << r.summary() << r.body;
}

TEST_F(TlsOrigin, WeakCertificatesAreServedAsGenerated) {
  TlsOriginOptions o;
  o.cert = "rsa1024";
  Origin* rsa = start(o);
  o.cert = "sha1";
  Origin* sha1 = start(o);
  ASSERT_TRUE(rsa && sha1);
  TlsOptions lax;  // level 0: the client's own security level must not refuse them either
  lax.verify = false;
  lax.legacy = true;
  auto a = TlsClient::direct(rsa->port(), "rsa1024.pki.test", root_, lax);
  ASSERT_TRUE(a->handshakeOk()) << a->error();
  EXPECT_EQ(a->peerKeyType(), "RSA");
  EXPECT_EQ(a->peerKeyBits(), 1024);
  auto b = TlsClient::direct(sha1->port(), "sha1.pki.test", root_, lax);
  ASSERT_TRUE(b->handshakeOk()) << b->error();
  EXPECT_EQ(b->peerSignatureAlgorithm(), "ecdsa-with-SHA1");
}

TEST_F(TlsOrigin, IpOnlyCertificateWithoutSni) {
  TlsOriginOptions o;
  o.cert = "ip";
  Origin* origin = start(o);
  ASSERT_NE(origin, nullptr);
  auto t = TlsClient::direct(origin->port(), "127.0.0.1", root_);
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  EXPECT_EQ(t->peerSans(), std::vector<std::string>{"IP:127.0.0.1"});
  Response r = t->roundTrip("GET /tls HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_NE(r.body.find("\"sni\":\"\""), std::string::npos) << r.summary() << r.body;
}

TEST_F(TlsOrigin, ClientCertificateIsRequiredWhenAsked) {
  TlsOriginOptions o;
  o.cert = "clientauth";
  o.requireClientCert = true;
  Origin* origin = start(o);  // its readiness probe presented client.crt
  ASSERT_NE(origin, nullptr);
  // TLS 1.2, so the refusal lands in the handshake (in 1.3 it would come after the client's
  // Finished, with the first read).
  TlsOptions without;
  without.maxVersion = "1.2";
  auto t = TlsClient::direct(origin->port(), "clientauth.pki.test", root_, without);
  EXPECT_FALSE(t->handshakeOk());
  TlsOptions with;
  with.certFile = pki_ + "/client.crt";
  with.keyFile = pki_ + "/client.key";
  auto u = TlsClient::direct(origin->port(), "clientauth.pki.test", root_, with);
  ASSERT_TRUE(u->handshakeOk()) << u->error();
  Response r = u->roundTrip("GET /tls HTTP/1.1\r\nHost: clientauth.pki.test\r\n\r\n");
  EXPECT_NE(r.body.find("CN=client.pki.test"), std::string::npos) << r.summary() << r.body;
}

TEST_F(TlsOrigin, WebSocketEchoOverTls) {
  Origin* origin = start({});
  ASSERT_NE(origin, nullptr);
  auto t = TlsClient::direct(origin->port(), "good.pki.test", root_);
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  Response r = t->roundTrip(kUpgrade);
  ASSERT_TRUE(r.complete) << r.summary();
  ASSERT_EQ(r.status, 101) << r.summary();
  EXPECT_EQ(r.header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");  // RFC 6455 §1.3
  Client& c = t->client();
  ASSERT_TRUE(c.send(clientFrame(0x81, "hello")));
  EXPECT_EQ(readN(c, 7), std::string("\x81\x05hello", 7));
  ASSERT_TRUE(c.send(clientFrame(0x82, std::string("\x00\x01\xff", 3))));
  EXPECT_EQ(readN(c, 5), std::string("\x82\x03\x00\x01\xff", 5));
  ASSERT_TRUE(c.send(clientFrame(0x89, "p")));
  EXPECT_EQ(readN(c, 3), std::string("\x8a\x01p", 3));
  ASSERT_TRUE(c.send(clientFrame(0x88, std::string("\x03\xe8", 2))));  // close 1000
  EXPECT_EQ(readN(c, 4), std::string("\x88\x02\x03\xe8", 4));
  EXPECT_TRUE(c.waitClosed(Millis(3000)));
}

TEST_F(TlsOrigin, WebSocketRefusesABadUpgradeAndUnmaskedFrames) {
  Origin* origin = env_.startOrigin();
  ASSERT_NE(origin, nullptr) << env_.lastError();
  Client bad(origin->port());
  Response r = bad.roundTrip(
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_EQ(r.status, 400) << r.summary();
  Client c(origin->port());
  r = c.roundTrip(kUpgrade);
  ASSERT_EQ(r.status, 101) << r.summary();
  ASSERT_TRUE(c.send(std::string("\x81\x02hi", 4)));           // no mask bit
  EXPECT_EQ(readN(c, 4), std::string("\x88\x02\x03\xea", 4));  // close 1002
  EXPECT_TRUE(c.waitClosed(Millis(3000)));
}

TEST_F(TlsOrigin, StaticDirServesTheIntermediateForAia) {
  // The AIA server is started first, on a PKI dir that does not exist yet: the origin reads the
  // files per request, and only then is its URL known.
  TestEnv env;
  Origin* aia = env.startOrigin({"--static-dir", env.path("pki")});
  ASSERT_NE(aia, nullptr) << env.lastError();
  std::string pki = env.makePki(aia->url("/static/inter.der"));
  ASSERT_FALSE(pki.empty()) << env.lastError();
  Response r = aia->ask("/static/inter.der");
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/pkix-cert");
  EXPECT_EQ(r.body, readFile(pki + "/inter.der"));
  EXPECT_NE(readFile(pki + "/inter.crt").size(), 0u);
  EXPECT_EQ(aia->ask("/static/../pki/root.key").status, 404);
  EXPECT_EQ(aia->ask("/static/missing.der").status, 404);
}

TEST_F(TlsOrigin, ViaATunnellingProxy) {
  Origin* origin = start({});
  ASSERT_NE(origin, nullptr);
  ProxyConfig cfg = env_.proxyConfig();
  cfg.resolve = {{"good.pki.test", "127.0.0.1"}};
  cfg.extra = "tls: {intercept: false}\n";  // a plain tunnel: the client sees the origin's chain
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  auto t = TlsClient::viaProxy(proxy().port(), "good.pki.test", origin->port(), root_);
  EXPECT_EQ(t->proxyStatus(), 200) << t->error();
  ASSERT_TRUE(t->handshakeOk()) << t->error();
  EXPECT_EQ(t->peerChainLength(), 2);
  Response r = t->roundTrip("GET /tls HTTP/1.1\r\nHost: good.pki.test\r\n\r\n");
  EXPECT_NE(r.body.find("\"sni\":\"good.pki.test\""), std::string::npos) << r.summary() << r.body;
  // A port the proxy does not allow: the tunnel is refused and no handshake is tried.
  auto refused = TlsClient::viaProxy(proxy().port(), "good.pki.test", 9, root_);
  EXPECT_FALSE(refused->tunnelOk());
  EXPECT_EQ(refused->proxyStatus(), 403) << refused->error();
  EXPECT_FALSE(refused->handshakeOk());
}

}  // namespace
}  // namespace sekisho::it
