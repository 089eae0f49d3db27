// Operating the process: reload (SIGHUP), graceful stop (SIGTERM), log rotation (SIGUSR1) and the
// command-line subcommands.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

size_t lineCount(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

class ProxySignals : public ProxyTest {
 protected:
  int connectStatus(uint16_t port) {
    Client c(proxy().port());
    std::string target = "127.0.0.1:" + std::to_string(port);
    ReadOptions o;
    o.method = "CONNECT";
    return c.roundTrip("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n", o).status;
  }

  // Sends GET /delay/1500 on `c` and waits until the origin holds it, so it is truly in flight.
  void startSlowRequest(Client& c) {
    ASSERT_TRUE(c.connected());
    long before = origin().requestCount();
    ASSERT_TRUE(c.send(getRequest(origin().url("/delay/1500"))));
    ASSERT_TRUE(waitUntil([&] { return origin().requestCount() > before; }, Millis(3000)))
        << "the request never reached the origin";
  }

  void expectSlowResponse(Client& c) {
    ReadOptions o;
    o.timeout = Millis(5000);
    Response r = c.read(o);
    EXPECT_TRUE(r.complete) << r.summary();
    EXPECT_EQ(r.status, 200) << r.summary();
    EXPECT_EQ(r.body, "delayed 1500 ms\n");
  }
};

TEST_F(ProxySignals, SighupAppliesChangedConfigWithoutDroppingInFlightRequest) {
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  Origin* second = env_.startOrigin();
  ASSERT_NE(second, nullptr) << env_.lastError();
  ProxyConfig cfg = env_.proxyConfig();
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  ASSERT_EQ(connectStatus(second->port()), 403) << "port not yet in connect_ports";

  Client inflight(proxy().port());
  ASSERT_NO_FATAL_FAILURE(startSlowRequest(inflight));
  cfg.connectPorts.push_back(std::to_string(second->port()));
  ASSERT_TRUE(writeFileAtomic(proxy().configPath(), env_.renderConfig(cfg, proxy().port())));
  ASSERT_TRUE(proxy().child().signal(SIGHUP));
  EXPECT_TRUE(waitUntil([&] { return connectStatus(second->port()) == 200; }, Millis(3000), Millis(50)))
      << "the new connect_ports did not take effect";
  expectSlowResponse(inflight);
}

TEST_F(ProxySignals, SighupWithInvalidConfigKeepsRunningOnOldOne) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  std::string good = env_.renderConfig(env_.proxyConfig(), proxy().port());
  const size_t badLine = lineCount(good) + 1;
  ASSERT_TRUE(writeFileAtomic(proxy().configPath(), good + "no_such_key: 1\n"));
  ASSERT_TRUE(proxy().child().signal(SIGHUP));
  std::string where = "sekisho.yaml:" + std::to_string(badLine) + ":";
  EXPECT_TRUE(
      waitUntil([&] { return proxy().child().stderrText().find(where) != std::string::npos; }, Millis(3000)))
      << "stderr does not name " << where << ":\n"
      << proxy().child().stderrText();
  ASSERT_TRUE(proxy().child().running()) << describeStatus(proxy().child().waitStatus());
  expectStillServing();
  EXPECT_EQ(connectStatus(origin().port()), 200) << "the old config is no longer in force";
}

TEST_F(ProxySignals, SigtermFinishesInFlightRequestRefusesNewOnesAndExitsZero) {
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  ProxyConfig cfg = env_.proxyConfig();
  cfg.timeouts.emplace_back("shutdown", "5s");
  ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
  Client inflight(proxy().port());
  ASSERT_NO_FATAL_FAILURE(startSlowRequest(inflight));
  auto t0 = Clock::now();
  ASSERT_TRUE(proxy().child().signal(SIGTERM));
  EXPECT_TRUE(waitUntil(
      [&] {
        int fd = connectTo(proxy().port(), Millis(200));
        if (fd >= 0) {
          ::close(fd);
          return false;
        }
        return errno == ECONNREFUSED;
      },
      Millis(1000), Millis(10)))
      << "new connections still accepted 1 s after SIGTERM";
  expectSlowResponse(inflight);
  std::optional<int> status =
      proxy().child().waitExit(std::chrono::duration_cast<Millis>(Millis(5000 + 1000) - (Clock::now() - t0)));
  ASSERT_TRUE(status) << "still running " << std::chrono::duration_cast<Millis>(Clock::now() - t0).count()
                      << " ms after SIGTERM (shutdown is 5 s)";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describeStatus(status);
}

TEST_F(ProxySignals, Sigusr1ReopensRenamedAccessLog) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  const std::string log = proxy().accessLogPath();
  const std::string rotated = log + ".1";
  ASSERT_EQ(viaProxy(getRequest(origin().url("/size/11"))).status, 200);
  ASSERT_TRUE(proxy().waitLogLineWith("/size/11"));
  ASSERT_EQ(std::rename(log.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(proxy().child().signal(SIGUSR1));
  // Reopening is asynchronous: keep making requests until one lands in the new file.
  int n = 0;
  bool reopened = waitUntil(
      [&] {
        viaProxy(getRequest(origin().url("/size/" + std::to_string(100 + n++))));
        return readFile(log).find("/size/1") != std::string::npos;
      },
      Millis(3000), Millis(50));
  EXPECT_TRUE(reopened) << "no new " << log << " after SIGUSR1";
  EXPECT_NE(readFile(rotated).find("/size/11 "), std::string::npos) << "the old line left the rotated file";
  EXPECT_EQ(readFile(log).find("/size/11 "), std::string::npos) << "the old line was written again";
}

TEST_F(ProxySignals, CheckConfigAcceptsValidFile) {
  std::string file = env_.path("good.yaml");
  ASSERT_TRUE(writeFileAtomic(file, env_.renderConfig(env_.proxyConfig(), pickFreePort())));
  RunResult r =
      runToCompletion("check-good", {sekishoBin(), "check-config", file}, env_.dir(), Millis(10000));
  EXPECT_TRUE(r.exitedWith(0)) << describeStatus(r.status) << "\nstdout:\n"
                               << r.out << "\nstderr:\n"
                               << r.err;
}

TEST_F(ProxySignals, CheckConfigRejectsInvalidFileNamingTheLine) {
  std::string file = env_.path("bad.yaml");
  std::string text = env_.renderConfig(env_.proxyConfig(), pickFreePort());
  const size_t badLine = lineCount(text) + 1;
  ASSERT_TRUE(writeFileAtomic(file, text + "no_such_key: 1\n"));
  RunResult r = runToCompletion("check-bad", {sekishoBin(), "check-config", file}, env_.dir(), Millis(10000));
  ASSERT_TRUE(r.status) << "check-config did not finish";
  EXPECT_TRUE(WIFEXITED(*r.status) && WEXITSTATUS(*r.status) != 0) << describeStatus(r.status);
  std::string where = file + ":" + std::to_string(badLine) + ":";  // FILE as given, then LINE
  EXPECT_NE(r.err.find(where), std::string::npos) << "stderr does not name " << where << ":\n" << r.err;
}

TEST_F(ProxySignals, VersionFlagPrintsVersion) {
  RunResult r = runToCompletion("version", {sekishoBin(), "--version"}, env_.dir(), Millis(10000));
  EXPECT_TRUE(r.exitedWith(0)) << describeStatus(r.status) << "\n" << r.err;
  // Some "N.N.N" in the output.
  std::string text = r.out + r.err;
  bool found = false;
  for (size_t i = 0; i < text.size() && !found; ++i) {
    unsigned major = 0, minor = 0, patch = 0;
    found = text[i] >= '0' && text[i] <= '9' &&
            std::sscanf(text.c_str() + i, "%u.%u.%u", &major, &minor, &patch) == 3;
  }
  EXPECT_TRUE(found) << r.out << r.err;
}

TEST_F(ProxySignals, SecondInstanceOnTheSamePortRefusesToStart) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  // SO_REUSEPORT would let a second process share the port and take half the connections.
  std::string file = env_.path("second.yaml");
  ASSERT_TRUE(writeFileAtomic(file, env_.renderConfig(env_.proxyConfig(), proxy().port())));
  RunResult r = runToCompletion("second", {sekishoBin(), "--config", file}, env_.dir(), Millis(10000));
  ASSERT_TRUE(r.status) << "the second instance kept running";
  EXPECT_TRUE(WIFEXITED(*r.status) && WEXITSTATUS(*r.status) != 0) << describeStatus(r.status);
  EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << r.err;
  expectStillServing();
}

TEST_F(ProxySignals, CreatesTheCaOnFirstStartAndServesItsPages) {
  ASSERT_NO_FATAL_FAILURE(startBoth());
  struct stat st;
  ASSERT_EQ(stat(env_.path("ca.key").c_str(), &st), 0) << "no CA key next to the config";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string host = "Host: " + proxy().authority() + "\r\n\r\n";
  Response pem = viaProxy("GET /ca.crt HTTP/1.1\r\n" + host);
  ASSERT_EQ(pem.status, 200) << pem.summary();
  EXPECT_EQ(pem.body.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  EXPECT_EQ(pem.body, readFile(env_.path("ca.crt")));
  Response der = viaProxy("GET /ca.der HTTP/1.1\r\n" + host);
  ASSERT_EQ(der.status, 200) << der.summary();
  ASSERT_FALSE(der.body.empty());
  EXPECT_EQ(uint8_t(der.body[0]), 0x30);  // a DER SEQUENCE
  Response page = viaProxy("GET /ca HTTP/1.1\r\nAccept-Language: ja\r\n" + host);
  ASSERT_EQ(page.status, 200) << page.summary();
  EXPECT_NE(page.body.find("lang=\"ja\""), std::string::npos);
  EXPECT_NE(page.body.find("/ca.der"), std::string::npos);
}

TEST_F(ProxySignals, RefusesToStartWithACaKeyOthersCanRead) {
  ASSERT_NO_FATAL_FAILURE(startBoth());  // creates the CA
  ASSERT_TRUE(proxy().child().signal(SIGTERM));
  ASSERT_TRUE(proxy().child().waitExit(Millis(10000)));
  ASSERT_EQ(chmod(env_.path("ca.key").c_str(), 0644), 0);
  std::string file = env_.path("again.yaml");
  ASSERT_TRUE(writeFileAtomic(file, env_.renderConfig(env_.proxyConfig(), pickFreePort())));
  RunResult r = runToCompletion("again", {sekishoBin(), "--config", file}, env_.dir(), Millis(10000));
  ASSERT_TRUE(r.status) << "the proxy started with a readable CA key";
  EXPECT_TRUE(WIFEXITED(*r.status) && WEXITSTATUS(*r.status) != 0) << describeStatus(r.status);
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sekisho::it
