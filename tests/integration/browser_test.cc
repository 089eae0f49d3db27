// The pages the proxy writes itself, as a real browser shows them: headless Chromium (Debian's
// chromium package) configured to use the proxy, with loopback forced through it.
#include <sys/stat.h>
#include <unistd.h>


#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

const char* chromiumPath() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    struct stat st;
    if (stat(p, &st) == 0) return p;
  }
  return nullptr;
}

// The first "XXXXX-XXXXX" reference id (Crockford base32) in `text`, or "".
std::string findRefId(const std::string& text) {
  auto ok = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); };
  for (size_t i = 0; i + 11 <= text.size(); ++i) {
    bool match = text[i + 5] == '-';
    for (size_t k = 0; k < 11 && match; ++k) match = k == 5 || ok(text[i + k]);
    if (match) return text.substr(i, 11);
  }
  return "";
}

class ProxyBrowser : public ProxyTest {
 protected:
  // Loads `url` through the proxy and returns the DOM Chromium rendered.
  RunResult load(const std::string& url, const std::string& lang) {
    std::string profile = env_.path("chromium-" + std::to_string(++runs_));
    // HOME holds the NSS database where trustCa() puts the proxy's CA (Chromium on Linux reads it).
    return runToCompletion("chromium", {"/usr/bin/env", "HOME=" + env_.dir(), chromiumPath(), "--headless", "--no-sandbox", "--disable-gpu",
                                        "--no-first-run", "--disable-background-networking",
                                        "--disable-component-update", "--disable-sync", "--disable-quic",
                                        "--user-data-dir=" + profile, "--lang=" + lang, "--accept-lang=" + lang,
                                        "--proxy-server=http://" + proxy().authority(),
                                        "--proxy-bypass-list=<-loopback>", "--dump-dom", url},
                           env_.dir(), Millis(60000));
  }
  // Trusts the proxy's CA the way an admin would on a Linux desktop (libnss3-tools' certutil).
  bool trustCa() {
    std::string db = "sql:" + env_.dir() + "/.pki/nssdb";
    mkdir((env_.dir() + "/.pki").c_str(), 0700);
    mkdir((env_.dir() + "/.pki/nssdb").c_str(), 0700);
    RunResult init = runToCompletion("certutil-init", {"/usr/bin/certutil", "-d", db, "-N", "--empty-password"},
                                     env_.dir(), Millis(20000));
    RunResult add = runToCompletion("certutil-add", {"/usr/bin/certutil", "-d", db, "-A", "-t", "C,,", "-n",
                                                     "sekisho-test", "-i", env_.path("ca.crt")},
                                    env_.dir(), Millis(20000));
    return init.exitedWith(0) && add.exitedWith(0);
  }
  int runs_ = 0;
};

TEST_F(ProxyBrowser, ShowsTheRefusalPageWithItsReferenceId) {
  if (!chromiumPath()) GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh --test installs it)";
  ASSERT_NO_FATAL_FAILURE(startBoth());
  RunResult r = load("http://127.0.0.1:81/mail?<b>x</b>", "en-US");
  ASSERT_TRUE(r.status) << "chromium did not finish";
  // Port 81 is outside the test http_ports (and, unlike 25, not on the browser's own unsafe-port
  // list). The page is what the user sees instead of a browser error: status, plain words, reference id.
  EXPECT_NE(r.out.find("403"), std::string::npos) << r.out.substr(0, 2000) << r.err.substr(0, 2000);
  std::string ref = findRefId(r.out);
  ASSERT_FALSE(ref.empty()) << r.out.substr(0, 2000);
  // The same reference id is in the access log, so an admin can find it from a screenshot.
  auto line = proxy().waitLogLineWith(ref, "reason=port_not_allowed");
  EXPECT_TRUE(line) << "no access-log line with ref " << ref;
  // The URL is shown as text, never as markup.
  EXPECT_EQ(r.out.find("<b>x</b>"), std::string::npos);
}

TEST_F(ProxyBrowser, SpeaksJapaneseToAJapaneseBrowser) {
  if (!chromiumPath()) GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh --test installs it)";
  ASSERT_NO_FATAL_FAILURE(startBoth());
  RunResult r = load("http://127.0.0.1:81/", "ja");
  ASSERT_TRUE(r.status) << "chromium did not finish";
  EXPECT_NE(r.out.find("lang=\"ja\""), std::string::npos) << r.out.substr(0, 2000) << r.err.substr(0, 2000);
}

TEST_F(ProxyBrowser, ShowsTheBlockPageForAnHttpsSiteInsteadOfAConnectionError) {
  if (!chromiumPath() || access("/usr/bin/certutil", X_OK) != 0)
    GTEST_SKIP() << "chromium or certutil missing (scripts/install-deps.sh --test installs them)";
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  ASSERT_TRUE(writeFileAtomic(env_.path("c2.txt"), "bad.example\n"));
  ProxyConfig cfg = env_.proxyConfig();
  cfg.extra = "reputation:\n  lists: [{file: c2.txt, format: domains, category: c2}]\n";
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  ASSERT_TRUE(trustCa());
  RunResult r = load("https://www.bad.example/invoice.exe", "en-US");
  ASSERT_TRUE(r.status) << "chromium did not finish";
  EXPECT_NE(r.out.find("blocked for your protection"), std::string::npos) << r.out.substr(0, 1500) << r.err.substr(0, 1500);
  EXPECT_NE(r.out.find("domain:bad.example"), std::string::npos);
  std::string ref = findRefId(r.out);
  ASSERT_FALSE(ref.empty());
  EXPECT_TRUE(proxy().waitLogLineWith(ref, "reason=reputation_block"));
}

// Chromium on an intercepted site whose origin speaks HTTP/2: h2 from the browser to the proxy and
// from the proxy to the origin (the origin's /echo shows the request it received as h2 fields).
TEST_F(ProxyBrowser, LoadsAnInterceptedSiteOverHttp2OnBothSides) {
  if (!chromiumPath() || access("/usr/bin/certutil", X_OK) != 0)
    GTEST_SKIP() << "chromium or certutil missing (scripts/install-deps.sh --test installs them)";
  std::string pki = env_.makePki("");
  ASSERT_FALSE(pki.empty()) << env_.lastError();
  TlsOriginOptions o;
  o.alpn = "h2,http/1.1";
  Origin* origin = env_.startTlsOrigin(o);
  ASSERT_NE(origin, nullptr) << env_.lastError();
  ProxyConfig cfg = env_.proxyConfig();
  cfg.connectPorts = {"\"1025-65535\""};
  cfg.resolve.push_back({"good.pki.test", "127.0.0.1"});
  cfg.extra = "tls: {upstream_ca_file: \"" + pki + "/root.crt\"}\n";
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  ASSERT_TRUE(trustCa());
  std::string url = "https://good.pki.test:" + std::to_string(origin->port()) + "/echo?from=chromium&h=Content-Type:%20text/plain";
  RunResult r = load(url, "en-US");
  ASSERT_TRUE(r.status) << "chromium did not finish";
  EXPECT_NE(r.out.find(":path: /echo?from=chromium&amp;h="), std::string::npos) << r.out.substr(0, 1500) << r.err.substr(0, 1500);
  EXPECT_NE(r.out.find(":scheme: https"), std::string::npos);
  EXPECT_NE(r.out.find("via: 1.1 sekisho-test"), std::string::npos);
  EXPECT_GE(origin->stats().h2Connections, 1);
  EXPECT_TRUE(proxy().waitLogLineWith("GET " + url, "TCP_MISS/200"));
}

}  // namespace
}  // namespace sekisho::it
