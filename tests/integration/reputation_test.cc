// Reputation verdicts on the request path: the embedded store loaded from reputation.lists,
// checked before any upstream contact, with the block page and its reference id.
#include <signal.h>

#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

class ProxyReputation : public ProxyTest {
 protected:
  void startWithLists(uint16_t adminPort = 0) {
    ASSERT_NO_FATAL_FAILURE(startOrigin());
    ASSERT_TRUE(writeFileAtomic(env_.path("c2.txt"), "# test C&C list\r\nbad.example\r\nnot a host\r\n"));
    ASSERT_TRUE(writeFileAtomic(env_.path("drop.txt"), "; Spamhaus DROP style\n127.66.0.0/16 ; SBL1\n"));
    ProxyConfig cfg = env_.proxyConfig();
    // Every name resolves to loopback (dropped.test into the listed 127.66.0.0/16), so even a
    // failing test sends nothing off this machine.
    cfg.resolve = {{"evil.test", "127.0.0.1"}, {"sub.bad.example", "127.0.0.1"}, {"fine.test", "127.0.0.1"},
                   {"dropped.test", "127.66.1.2"}};
    cfg.extra =
        "reputation:\n"
        "  lists:\n"
        "    - {file: c2.txt, format: domains, category: c2}\n"
        "    - {file: drop.txt, format: cidr, category: malware}\n";
    cfg.adminPort = adminPort;
    ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  }
};

TEST_F(ProxyReputation, BlocksListedDomainAndItsSubdomainsBeforeContactingTheOrigin) {
  ASSERT_NO_FATAL_FAILURE(startWithLists());
  long before = origin().requestCount();
  std::string port = std::to_string(origin().port());
  Response r = viaProxy("GET http://sub.bad.example:" + port + "/x HTTP/1.1\r\nHost: sub.bad.example\r\n\r\n");
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("c2"), std::string::npos);
  EXPECT_NE(r.body.find("domain:bad.example"), std::string::npos) << "the page names the rule";
  auto ref = r.header("X-Sekisho-Ref");
  ASSERT_TRUE(ref);
  EXPECT_NE(r.body.find(*ref), std::string::npos);
  EXPECT_TRUE(proxy().waitLogLineWith("reason=reputation_block", *ref));
  EXPECT_EQ(origin().requestCount(), before) << "a blocked request reached the origin";
  // Unlisted names pass.
  Response ok = viaProxy("GET http://fine.test:" + port + "/size/10 HTTP/1.1\r\nHost: fine.test\r\n\r\n");
  EXPECT_EQ(ok.status, 200) << ok.summary();
}

// The admin's /lookup answers what the request path would decide, with the rule that decided,
// for a URL or a bare host name; what it cannot check is a 400 with the reason, never a verdict.
TEST_F(ProxyReputation, AdminLookupExplainsTheVerdict) {
  uint16_t admin = pickFreePort();
  ASSERT_NO_FATAL_FAILURE(startWithLists(admin));
  auto ask = [&](const std::string& target) {
    Client c(admin);
    return c.roundTrip("GET /lookup?url=" + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  };
  Response blocked = ask("http%3A%2F%2Fsub.bad.example%2Fpath%3Fq%3D1");
  ASSERT_EQ(blocked.status, 200) << blocked.summary();
  EXPECT_NE(blocked.body.find("target: http://sub.bad.example/path?q=1"), std::string::npos) << blocked.body;
  EXPECT_NE(blocked.body.find("verdict: block"), std::string::npos) << blocked.body;
  EXPECT_NE(blocked.body.find("domain:bad.example"), std::string::npos) << "the rule is named: " << blocked.body;
  Response host = ask("SUB.Bad.Example");
  ASSERT_EQ(host.status, 200) << host.summary();
  EXPECT_NE(host.body.find("target: sub.bad.example"), std::string::npos) << host.body;
  EXPECT_NE(host.body.find("verdict: block"), std::string::npos) << host.body;
  Response fine = ask("fine.test");
  ASSERT_EQ(fine.status, 200) << fine.summary();
  EXPECT_EQ(fine.body.find("verdict: block"), std::string::npos) << fine.body;
  EXPECT_NE(fine.body.find("verdict: "), std::string::npos) << fine.body;
  Response bad = ask("http%3A%2F%2Fexa%20mple.test%2F");
  EXPECT_EQ(bad.status, 400) << bad.summary();
  EXPECT_EQ(bad.body.find("verdict"), std::string::npos) << bad.body;
  Response none = ask("");
  EXPECT_EQ(none.status, 400) << none.summary();
  EXPECT_NE(none.body.find("usage"), std::string::npos) << none.body;
}

TEST_F(ProxyReputation, BlocksConnectToListedHostWithoutContactingIt) {
  ASSERT_NO_FATAL_FAILURE(startWithLists());
  // A blocked CONNECT is answered 200 so that a TLS client can be shown the block page (see
  // ShowsTheBlockPageOverHttps...); a client that does not speak TLS inside is simply closed.
  long before = origin().requestCount();
  Client c(proxy().port());
  Response r = c.roundTrip("CONNECT bad.example:443 HTTP/1.1\r\nHost: bad.example:443\r\n\r\n");
  EXPECT_EQ(r.status, 200) << r.summary();
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: bad.example\r\n\r\n"));
  EXPECT_TRUE(c.waitClosed(Millis(5000)));
  EXPECT_TRUE(proxy().waitLogLineWith("CONNECT bad.example:443", "reason=reputation_block"));
  EXPECT_EQ(origin().requestCount(), before);
}

TEST_F(ProxyReputation, BlocksAddressesInListedNetworksAfterResolving) {
  ASSERT_NO_FATAL_FAILURE(startWithLists());
  Response r = viaProxy("GET http://dropped.test/ HTTP/1.1\r\nHost: dropped.test\r\n\r\n");
  ASSERT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("127.66.0.0/16"), std::string::npos) << r.body.substr(0, 400);
}

TEST_F(ProxyReputation, RefusesToStartWhenAListYieldsNothing) {
  ASSERT_TRUE(writeFileAtomic(env_.path("empty.txt"), "# nothing here\n"));
  ProxyConfig cfg = env_.proxyConfig();
  cfg.extra = "reputation:\n  lists: [{file: empty.txt, format: domains, category: c2}]\n";
  std::string file = env_.path("empty.yaml");
  ASSERT_TRUE(writeFileAtomic(file, env_.renderConfig(cfg, pickFreePort())));
  RunResult r = runToCompletion("empty", {sekishoBin(), "--config", file}, env_.dir(), Millis(10000));
  ASSERT_TRUE(r.status) << "started with an empty list";
  EXPECT_TRUE(WIFEXITED(*r.status) && WEXITSTATUS(*r.status) != 0) << describeStatus(r.status);
  EXPECT_NE(r.err.find("empty.txt"), std::string::npos) << r.err;
}

TEST_F(ProxyReputation, ClosesTunnelWhoseTlsServerNameIsBlocked) {
  ASSERT_NO_FATAL_FAILURE(startWithLists());
  // CONNECT names an allowed address; the ClientHello inside asks for a listed name. The
  // client gets the block page on a leaf minted for that name (which this s_client, trusting
  // no CA, refuses); the origin never sees a byte of it.
  std::string port = std::to_string(origin().port());
  long before = origin().requestCount();
  RunResult r = runToCompletion("s_client",
                                {"/usr/bin/openssl", "s_client", "-proxy", proxy().authority(), "-connect",
                                 "127.0.0.1:" + port, "-servername", "www.bad.example", "-brief",
                                 "-verify_return_error"},
                                env_.dir(), Millis(15000));
  ASSERT_TRUE(r.status) << "openssl s_client did not finish";
  EXPECT_FALSE(r.exitedWith(0)) << r.out << r.err;
  auto line = proxy().waitLogLineWith("CONNECT 127.0.0.1:" + port, "reason=reputation_block");
  EXPECT_TRUE(line) << "no refusal in the access log";
  EXPECT_EQ(origin().requestCount(), before) << "bytes of the blocked hello reached the origin";
}

TEST_F(ProxyReputation, ReloadMakesAChangedListLiveWithoutRestart) {
  ASSERT_NO_FATAL_FAILURE(startWithLists());
  std::string port = std::to_string(origin().port());
  std::string req = "GET http://fine.test:" + port + "/size/10 HTTP/1.1\r\nHost: fine.test\r\n\r\n";
  ASSERT_EQ(viaProxy(req).status, 200);
  ASSERT_TRUE(writeFileAtomic(env_.path("c2.txt"), "bad.example\nfine.test\n"));
  pid_t pid = proxy().pid();
  ASSERT_TRUE(proxy().child().signal(SIGHUP));
  EXPECT_TRUE(waitUntil([&] { return viaProxy(req).status == 403; }, Millis(5000)))
      << "fine.test still allowed after the reload";
  EXPECT_EQ(proxy().pid(), pid);
  EXPECT_TRUE(proxy().child().running());
}

TEST_F(ProxyReputation, ShowsTheBlockPageOverHttpsOnALeafTheClientTrusts) {
  ASSERT_NO_FATAL_FAILURE(startWithLists());
  // curl trusts only the proxy's CA (created next to the config): the page arrives over verified
  // TLS instead of a connection error, and no origin is contacted.
  RunResult r = runToCompletion("curl",
                                {"/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", env_.path("ca.crt"), "-x",
                                 "http://" + proxy().authority(), "-w", "\n%{http_code} %{ssl_verify_result}",
                                 "https://www.bad.example/login?next=<b>"},
                                env_.dir(), Millis(15000));
  ASSERT_TRUE(r.exitedWith(0)) << describeStatus(r.status) << r.err;
  EXPECT_NE(r.out.find("\n403 0"), std::string::npos) << r.out.substr(r.out.size() > 200 ? r.out.size() - 200 : 0);
  EXPECT_NE(r.out.find("https://www.bad.example/login?next=&lt;b&gt;"), std::string::npos) << "URL shown, escaped";
  EXPECT_EQ(r.out.find("<b>"), std::string::npos);
  EXPECT_TRUE(proxy().waitLogLineWith("CONNECT www.bad.example:443", "reason=reputation_block"));
  EXPECT_TRUE(proxy().waitLogLineWith("GET https://www.bad.example/login", "reason=reputation_block"));
}

}  // namespace
}  // namespace sekisho::it
