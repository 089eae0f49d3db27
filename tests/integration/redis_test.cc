// The Redis reputation store end to end: a real redis-server started by the test on a free port,
// real `sekisho` processes sharing it, feeds imported with the real `sekisho feed import`. A feed
// reaches every running proxy through pub/sub; Redis killed mid-traffic is on_error's to decide
// (open lets traffic through, closed refuses with a page); Redis back on the same port is used
// again without a restart.
#include <signal.h>

#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

constexpr const char* kRedis = "/usr/bin/redis-server";

class ProxyRedis : public ProxyTest {
 protected:
  void SetUp() override {
    if (access(kRedis, X_OK) != 0) GTEST_SKIP() << "redis-server is not installed";
    redisPort_ = pickFreePort();
  }
  void startRedis() {
    redis_ = env_.spawn("redis", {kRedis, "--port", std::to_string(redisPort_), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", env_.dir()});
    ASSERT_NE(redis_, nullptr) << env_.lastError();
    ASSERT_TRUE(waitUntil(
        [&] {
          Client c(redisPort_, Millis(200));
          if (!c.connected() || !c.send("PING\r\n")) return false;
          return c.readSome(Millis(300)).rfind("+PONG", 0) == 0;
        },
        Millis(5000)))
        << "redis-server did not answer PING";
  }
  std::string storeUrl() const { return "redis://127.0.0.1:" + std::to_string(redisPort_) + "/0"; }
  Proxy* startRedisProxy(const std::string& onError, const std::string& log, uint16_t adminPort = 0) {
    ProxyConfig cfg = env_.proxyConfig();
    cfg.adminPort = adminPort;
    cfg.resolve = {{"fine.test", "127.0.0.1"}, {"bad.test", "127.0.0.1"}, {"other.test", "127.0.0.1"}};
    cfg.accessLog = env_.path(log);
    cfg.extra = "reputation: {store: \"" + storeUrl() + "\", on_error: " + onError + ", deadline: 300ms}\n";
    Proxy* p = env_.startProxy(cfg);
    EXPECT_NE(p, nullptr) << env_.lastError();
    return p;
  }
  RunResult importFeed(const Proxy& p, const std::string& names, const std::string& source = "it-feed") {
    EXPECT_TRUE(writeFileAtomic(env_.path(source + ".txt"), names));
    return runToCompletion("import",
                           {sekishoBin(), "--config", p.configPath(), "feed", "import", "--format", "domains",
                            "--category", "c2", "--source", source, env_.path(source + ".txt")},
                           env_.dir(), Millis(20000));
  }
  int statusVia(Proxy& p, const std::string& host) {
    Client c(p.port());
    Response r = c.roundTrip("GET http://" + host + ":" + std::to_string(origin().port()) +
                             "/size/10 HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    return r.complete ? r.status : -1;
  }

  uint16_t redisPort_ = 0;
  Child* redis_ = nullptr;
};

TEST_F(ProxyRedis, AnImportedFeedChangesTheAnswerOnEveryProxyWithinASecond) {
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  ASSERT_NO_FATAL_FAILURE(startRedis());
  Proxy* a = startRedisProxy("closed", "a.log");
  ASSERT_NE(a, nullptr);
  Proxy* b = startRedisProxy("closed", "b.log");
  ASSERT_NE(b, nullptr);
  // Both answer from Redis and cache "nothing known" for fine.test.
  ASSERT_EQ(statusVia(*a, "fine.test"), 200);
  ASSERT_EQ(statusVia(*b, "fine.test"), 200);
  RunResult r = importFeed(*a, "# C&C\nfine.test\nbad.test\n");
  ASSERT_TRUE(r.exitedWith(0)) << describeStatus(r.status) << r.out << r.err;
  auto t0 = Clock::now();
  EXPECT_TRUE(waitUntil([&] { return statusVia(*a, "fine.test") == 403 && statusVia(*b, "fine.test") == 403; },
                        Millis(5000), Millis(25)));
  auto took = std::chrono::duration_cast<Millis>(Clock::now() - t0);
#ifdef SEKISHO_SANITIZE
  EXPECT_LT(took.count(), 2000) << "cached answers outlived the invalidation";
#else
  EXPECT_LT(took.count(), 1000) << "cached answers outlived the invalidation";
#endif
  EXPECT_EQ(statusVia(*b, "bad.test"), 403);
  EXPECT_EQ(statusVia(*b, "other.test"), 200);
  EXPECT_TRUE(b->waitLogLineWith("GET http://fine.test", "reason=reputation_block"));
  // Replacing the source (fine.test taken out) is live everywhere too.
  r = importFeed(*a, "bad.test\n");
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_TRUE(waitUntil([&] { return statusVia(*a, "fine.test") == 200 && statusVia(*b, "fine.test") == 200; },
                        Millis(5000), Millis(25)));
  EXPECT_EQ(statusVia(*a, "bad.test"), 403);
}

TEST_F(ProxyRedis, RedisDownIsOnErrorsToDecideAndItsReturnIsUsedAgain) {
  ASSERT_NO_FATAL_FAILURE(startOrigin());
  ASSERT_NO_FATAL_FAILURE(startRedis());
  uint16_t admin = pickFreePort();
  Proxy* open = startRedisProxy("open", "open.log", admin);
  ASSERT_NE(open, nullptr);
  Proxy* closed = startRedisProxy("closed", "closed.log");
  ASSERT_NE(closed, nullptr);
  RunResult r = importFeed(*open, "bad.test\n");
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  ASSERT_TRUE(waitUntil([&] { return statusVia(*closed, "bad.test") == 403; }, Millis(3000)));

  ASSERT_TRUE(redis_->signal(SIGKILL));
  redis_->waitExit(Millis(3000));
  // Names never asked before (no cached answer): open lets them through, closed refuses with a page.
  EXPECT_EQ(statusVia(*open, "other.test"), 200);
  {  // ... and says so in /metrics, since no refusal counts it
    Client a(admin);
    Response m = a.roundTrip("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(m.status, 200) << m.summary();
    auto at = m.body.find("\nsekisho_reputation_errors_total ");
    ASSERT_NE(at, std::string::npos) << m.body;
    EXPECT_GE(std::stol(m.body.substr(at + 33)), 1) << m.body.substr(at, 40);
  }
  Client c(closed->port());
  Response refused = c.roundTrip("GET http://other.test:" + std::to_string(origin().port()) +
                                 "/size/10 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  EXPECT_EQ(refused.status, 503) << refused.summary();
  EXPECT_NE(refused.body.find("could not be checked"), std::string::npos);
  EXPECT_TRUE(closed->waitLogLineWith("GET http://other.test", "reason=reputation_unavailable"));
  EXPECT_NE(closed->child().stderrText().find("reputation store"), std::string::npos) << "the outage is logged";
  EXPECT_TRUE(open->child().running());
  EXPECT_TRUE(closed->child().running());

  // Redis returns, empty (no persistence here): the proxies reconnect on their own, and a new
  // import blocks again.
  ASSERT_NO_FATAL_FAILURE(startRedis());
  r = importFeed(*open, "other.test\n");
  ASSERT_TRUE(r.exitedWith(0)) << r.err;
  EXPECT_TRUE(waitUntil([&] { return statusVia(*closed, "other.test") == 403 && statusVia(*open, "other.test") == 403; },
                        Millis(10000), Millis(100)))
      << "the proxies did not come back to Redis";
  EXPECT_EQ(statusVia(*closed, "fine.test"), 200);
}

}  // namespace
}  // namespace sekisho::it
