// tls.leaf_cache_dir end to end: the real proxy writes the leaf it minted for an intercepted TLS
// origin (tests/pki) to disk, and after a restart serves that same leaf (same serial) without
// minting; the file is 0600 in a 0700 directory, and a directory others can reach stops start-up.
#include <openssl/x509.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

namespace fs = std::filesystem;

std::string serialOf(x509_st* cert) {
  if (!cert) return "";
  const ASN1_INTEGER* s = X509_get0_serialNumber(cert);
  return std::string(reinterpret_cast<const char*>(s->data), size_t(s->length));
}

unsigned modeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return unsigned(st.st_mode & 07777);
}

std::vector<std::string> pemFiles(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".pem") out.push_back(e.path().string());
  return out;
}

class LeafCache : public ProxyTest {
 protected:
  void SetUp() override {
    pki_ = env_.makePki();
    ASSERT_FALSE(pki_.empty()) << env_.lastError();
    origin_ = env_.startTlsOrigin();
    ASSERT_NE(origin_, nullptr) << env_.lastError();
  }
  ProxyConfig config(const std::string& leafDir) const {
    ProxyConfig cfg = env_.proxyConfig();
    cfg.connectPorts = {"\"1025-65535\""};
    cfg.resolve.push_back({"good.pki.test", "127.0.0.1"});
    cfg.timeouts.push_back({"connect", "2s"});
    cfg.extra = "tls: {upstream_ca_file: \"" + pki_ + "/root.crt\", leaf_cache_dir: \"" + leafDir + "\"}\n";
    return cfg;
  }
  // One intercepted GET through the current proxy; returns the leaf's serial ("" on failure).
  std::string fetchSerial() {
    auto t = TlsClient::viaProxy(proxy().port(), "good.pki.test", origin_->port(), env_.path("ca.crt"));
    EXPECT_TRUE(t->handshakeOk()) << t->error() << " / " << t->verifyError();
    if (!t->handshakeOk()) return "";
    Response r = t->roundTrip("GET /size/10 HTTP/1.1\r\nHost: good.pki.test:" + std::to_string(origin_->port()) +
                              "\r\n\r\n");
    EXPECT_EQ(r.status, 200) << r.summary();
    return serialOf(t->peerCert());
  }
  void stopProxy() {
    ASSERT_TRUE(proxy().child().signal(SIGTERM));
    auto st = proxy().child().waitExit(Millis(15000));
    ASSERT_TRUE(st) << "proxy did not stop after SIGTERM";
    EXPECT_EQ(describeStatus(st), "exit 0");
  }
  std::string pki_;
};

TEST_F(LeafCache, RestartServesTheSameLeafFromDisk) {
  // Relative: resolved against the config file's directory (the test dir).
  ASSERT_NO_FATAL_FAILURE(startProxy(config("leaves")));
  std::string leaves = env_.path("leaves");
  std::string first = fetchSerial();
  ASSERT_FALSE(first.empty());
  // Written by the background writer: poll rather than assume.
  EXPECT_TRUE(waitUntil([&] { return pemFiles(leaves).size() == 1; }, Millis(5000)))
      << pemFiles(leaves).size() << " files in " << leaves;
  EXPECT_EQ(modeOf(leaves), 0700u);
  auto files = pemFiles(leaves);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(modeOf(files[0]), 0600u);
  EXPECT_EQ(fetchSerial(), first);  // the in-memory cache, as before
  ASSERT_NO_FATAL_FAILURE(stopProxy());

  ASSERT_NO_FATAL_FAILURE(startProxy(config("leaves")));
  EXPECT_NE(proxy().child().stderrText().find("loaded 1, dropped 0"), std::string::npos)
      << proxy().child().stderrText();
  EXPECT_EQ(fetchSerial(), first) << "the restarted proxy minted a new leaf instead of loading it";
  EXPECT_EQ(pemFiles(leaves).size(), 1u);
  EXPECT_EQ(modeOf(pemFiles(leaves).at(0)), 0600u);
  ASSERT_NO_FATAL_FAILURE(stopProxy());
}

TEST_F(LeafCache, DirectoryOthersCanReachStopsStartUp) {
  std::string leaves = env_.path("open-leaves");
  ASSERT_EQ(::mkdir(leaves.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(leaves.c_str(), 0777), 0);
  Proxy* p = env_.startProxy(config(leaves));
  EXPECT_EQ(p, nullptr);
  EXPECT_NE(env_.lastError().find("sekisho exited during start-up (exit 1)"), std::string::npos) << env_.lastError();
  EXPECT_NE(env_.lastError().find("tls.leaf_cache_dir: " + leaves + ": leaf cache directory is accessible by group or "
                                  "others (mode 0777)"),
            std::string::npos)
      << env_.lastError();
}

}  // namespace
}  // namespace sekisho::it
