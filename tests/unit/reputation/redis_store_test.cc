// The Redis store against a real redis-server started by the test: the same matches as the
// embedded store, atomic replace under concurrent readers, fleet-wide invalidation, Redis going
// down and coming back, malformed replies, the deadline, and lifetime rules of the async reader.
#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "reputation/embedded_store.h"
#include "reputation/redis_import.h"
#include "reputation/redis_store.h"

using namespace sekisho;
using namespace sekisho::reputation;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kRedisServer = "/usr/bin/redis-server";

uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A throwaway redis-server: no persistence, loopback only, killed in the destructor.
class RedisServer {
 public:
  explicit RedisServer(std::string dir) : dir_(std::move(dir)), port_(freePort()) {}
  ~RedisServer() { stop(); }

  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string port = std::to_string(port_);
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execl(kRedisServer, kRedisServer, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", dir_.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (auto until = Clock::now() + 5s; Clock::now() < until; std::this_thread::sleep_for(20ms)) {
      redisContext* c = redisConnect("127.0.0.1", port_);
      bool ok = false;
      if (c && !c->err) {
        auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
      }
      if (c) redisFree(c);
      if (ok) return true;
    }
    return false;
  }
  void stop(int sig = SIGKILL) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  uint16_t port() const { return port_; }
  RedisOptions options() const {
    RedisOptions o;
    o.port = port_;
    return o;
  }
  // A raw command on a fresh connection, for setting up malformed data.
  std::string raw(std::vector<std::string> args) {
    redisContext* c = redisConnect("127.0.0.1", port_);
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, int(argv.size()), argv.data(), lens.data()));
    std::string out = r ? (r->str ? std::string(r->str, r->len) : std::to_string(r->integer)) : "no reply";
    if (r) freeReplyObject(r);
    redisFree(c);
    return out;
  }

 private:
  std::string dir_;
  uint16_t port_;
  pid_t pid_ = -1;
};

std::string tempDir(const std::string& tag) {
  auto d = std::filesystem::temp_directory_path() /
           ("rep-redis-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(Clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(d);
  return d.string();
}

std::string writeFile(const std::string& dir, const std::string& name, const std::string& text) {
  std::string p = dir + "/" + name;
  std::ofstream(p) << text;
  return p;
}

FeedOptions feedOpts(const std::string& source, const std::string& category, Action action = Action::Block) {
  FeedOptions o;
  o.source = source;
  o.category = category;
  o.action = action;
  o.now = 1700000000;
  return o;
}

// One event loop pumped by the test thread; a 5 ms tick keeps event_base_loop(ONCE) returning.
class Loop {
 public:
  Loop() : base_(event_base_new()) {
    tick_ = event_new(base_, -1, EV_PERSIST, [](evutil_socket_t, short, void*) {}, nullptr);
    timeval tv{0, 5000};
    event_add(tick_, &tv);
  }
  ~Loop() {
    event_free(tick_);
    event_base_free(base_);
  }
  event_base* base() const { return base_; }
  template <class Pred>
  bool runUntil(Pred pred, std::chrono::milliseconds limit) {
    auto until = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() > until) return false;
      event_base_loop(base_, EVLOOP_ONCE);
    }
    return true;
  }
  void poll() { event_base_loop(base_, EVLOOP_NONBLOCK); }  // what a busy worker loop does between requests
  void runFor(std::chrono::milliseconds d) {
    runUntil([] { return false; }, d);
  }

 private:
  event_base* base_;
  event* tick_;
};

struct Answered {
  bool done = false;
  StoreAnswer answer;
  bool sync = false;
};

uint64_t nextTicket = 1;

// A lookup through the async reader, waiting on the loop for the answer.
Answered lookupOn(Loop& loop, RedisStore& store, const LookupKeys& keys, std::chrono::milliseconds limit = 2s) {
  auto out = std::make_shared<Answered>();
  auto now = store.lookup(keys, nextTicket++, [out](StoreAnswer a) {
    out->answer = std::move(a);
    out->done = true;
  });
  if (now) {
    out->answer = std::move(*now);
    out->done = out->sync = true;
    return *out;
  }
  EXPECT_FALSE(out->done) << "callback ran inside lookup()";
  loop.runUntil([&] { return out->done; }, limit);
  return *out;
}

struct Query {
  NormalUrl url;
  std::vector<net::SocketAddr> ips;
  LookupKeys keys() const {
    LookupKeys k;
    k.url = &url;
    k.ips = ips;
    return k;
  }
};
Query query(const std::string& u, std::vector<std::string> ips = {}) {
  Query q;
  q.url = *normalizeUrl(u);
  for (auto& i : ips) q.ips.push_back(*net::parseIp(i));
  return q;
}

std::vector<std::string> describe(std::vector<Match> m) {
  std::vector<std::string> out;
  for (auto& x : m)
    out.push_back(x.source + " " + x.ruleId() + " " + x.category + " " + std::to_string(x.score) + " " +
                  std::string(actionName(x.action)) + " " + std::to_string(x.added) + " " +
                  std::to_string(x.expires) + " " + x.reference);
  std::sort(out.begin(), out.end());
  return out;
}

StoreAnswer waitUp(Loop& loop, RedisStore& store) {
  EXPECT_TRUE(loop.runUntil([&] { return store.state() == RedisStore::State::Up; }, 5s)) << store.stateText();
  // and the invalidation channel, so the cache is on
  loop.runUntil([&] { return store.stateText() == "up"; }, 2s);
  return {};
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kRedisServer, X_OK) != 0) GTEST_SKIP() << kRedisServer << " is not installed";
    dir_ = tempDir("t");
    server_ = std::make_unique<RedisServer>(dir_);
    ASSERT_TRUE(server_->start()) << "redis-server did not answer PING";
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::unique_ptr<RedisServer> server_;
};

}  // namespace

TEST(RedisUrl, Parses) {
  auto o = parseRedisUrl("redis://10.0.0.5:6380/3");
  ASSERT_TRUE(o) << o.error().detail;
  EXPECT_EQ(o->host, "10.0.0.5");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->db, 3);
  o = parseRedisUrl("redis://:s3cret@cache.internal");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->host, "cache.internal");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->db, 0);
  o = parseRedisUrl("redis://[::1]:7000/");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 7000);
}

TEST(RedisUrl, RefusesBadInput) {
  for (const char* bad : {"http://h:1/0", "redis://", "redis://:6379", "redis://h:0", "redis://h:65536",
                          "redis://h:x", "redis://h:", "redis://h/65536", "redis://h/x", "redis://user:pw@h",
                          "redis://:@h", "redis://[::1", "redis://[::1]x", "redis://h h", "rediss://h"}) {
    auto o = parseRedisUrl(bad);
    EXPECT_FALSE(o) << bad;
    if (!o) {
      EXPECT_NE(o.error().detail.find("redis URL"), std::string::npos) << o.error().detail;
    }
  }
}

TEST(RedisSchema, EntryRoundTripAndGarbage) {
  Match m;
  ASSERT_TRUE(redis::decodeEntry(redis::encodeEntry("c2", 150, Action::Allow, -5, 1LL << 40, "a\tb\nc"), m));
  EXPECT_EQ(m.category, "c2");
  EXPECT_EQ(m.score, 100);
  EXPECT_EQ(m.action, Action::Allow);
  EXPECT_EQ(m.added, 0);
  EXPECT_EQ(m.expires, int64_t(UINT32_MAX));
  EXPECT_EQ(m.reference, "a b c");
  for (const char* bad : {"", "1", "2\tc2\t1\tblock\t0\t0\t", "1\tC2!\t1\tblock\t0\t0\t", "1\tc2\t101\tblock\t0\t0\t",
                          "1\tc2\t1\tdeny\t0\t0\t", "1\tc2\t1\tblock\t-1\t0\t", "1\tc2\t1\tblock\t0\t0\tx\ty"})
    EXPECT_FALSE(redis::decodeEntry(bad, m)) << bad;
}

TEST_F(RedisStoreTest, SameMatchesAsEmbeddedStore) {
  std::string domains = writeFile(dir_, "domains.txt",
                                  "evil.example\nsub.bad.example\nbad.example\n203.0.113.7\n2001:db8::1\n"
                                  "deep.a.b.example.co.uk\nb.example.co.uk\n");
  std::string cidr = writeFile(dir_, "drop.txt",
                               "198.51.100.0/24 ; SBL1\n10.0.0.0/8 ; SBL2\n10.1.0.0/16 ; SBL3\n"
                               "2001:db8:ff00::/40 ; SBL4\n");
  std::string urlhaus = writeFile(
      dir_, "urlhaus.csv",
      "# id,dateadded,url,url_status,threat,tags,urlhaus_link,reporter\n"
      "\"1\",\"2019-01-01 00:00:00\",\"http://evil.example/x.exe?id=1\",\"online\",\"malware_download\",\"a\","
      "\"https://urlhaus.abuse.ch/url/1/\",\"r\"\n");
  std::filesystem::create_directories(dir_ + "/sg");
  writeFile(dir_ + "/sg", "urls", "prefix.example/dl/\nprefix.example/dl\nprefix.example/dl/a/b.exe\n");
  std::string allow = writeFile(dir_, "allow.txt", "good.bad.example\nbad.example\n");

  EmbeddedStore embedded;
  RedisOptions ro = server_->options();
  struct Import {
    Format f;
    std::string path;
    FeedOptions o;
  };
  std::vector<Import> imports = {{Format::Domains, domains, feedOpts("lists", "malware")},
                                 {Format::Cidr, cidr, feedOpts("drop", "c2")},
                                 {Format::Urlhaus, urlhaus, feedOpts("urlhaus", "malware")},
                                 {Format::Squidguard, dir_ + "/sg", feedOpts("ut1", "phishing")},
                                 {Format::Domains, allow, feedOpts("admin-allow", "allowed", Action::Allow)}};
  for (auto& im : imports) {
    ASSERT_TRUE(embedded.importFeed(im.f, im.path, im.o));
    auto r = importFeedToRedis(ro, im.f, im.path, im.o);
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->distinct, embedded.sourceSize(im.o.source)) << im.o.source;
  }

  Loop loop;
  auto store = RedisStore::create(loop.base(), ro);
  waitUp(loop, *store);
  std::vector<Query> queries = {
      query("http://evil.example/x.exe?id=1"), query("http://www.evil.example/"), query("https://sub.bad.example/q"),
      query("http://good.bad.example/"),       query("http://203.0.113.7/"),      query("http://[2001:db8::1]/"),
      query("http://x.deep.a.b.example.co.uk/"), query("http://a.b.example.co.uk/"),
      query("http://clean.example/", {"198.51.100.77", "10.1.2.3", "2001:db8:ff12::9"}),
      query("http://prefix.example/dl/a/b.exe"), query("http://prefix.example/other"), query("http://example.co.uk/"),
      query("http://nothing.example/")};
  size_t hits = 0;
  for (auto& q : queries) {
    auto expected = describe(embedded.lookup(q.keys()));
    hits += expected.size();
    auto a = lookupOn(loop, *store, q.keys());
    ASSERT_TRUE(a.done) << q.url.url;
    ASSERT_TRUE(a.answer.ok) << a.answer.error;
    EXPECT_EQ(describe(a.answer.matches), expected) << q.url.url;
    // The second time from the cache, synchronously, with the same answer.
    auto b = lookupOn(loop, *store, q.keys());
    EXPECT_TRUE(b.sync) << q.url.url;
    EXPECT_EQ(describe(b.answer.matches), expected) << q.url.url;
    auto s = lookupRedisSync(ro, q.keys());
    ASSERT_TRUE(s) << s.error().detail;
    EXPECT_EQ(describe(*s), expected) << q.url.url;
  }
  EXPECT_GE(hits, 15u);  // the comparison is not vacuous
  EXPECT_EQ(store->stats().lookups, 2 * queries.size());
  EXPECT_EQ(store->stats().cacheHits, queries.size());
  auto sources = redisSources(ro);
  ASSERT_TRUE(sources);
  EXPECT_EQ(sources->size(), 5u);
}

class RedisReplaceTest : public RedisStoreTest, public ::testing::WithParamInterface<bool> {};
INSTANTIATE_TEST_SUITE_P(Cache, RedisReplaceTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "CacheOn" : "CacheOff"; });

TEST_P(RedisReplaceTest, ReplaceIsAtomicForConcurrentReaders) {
  const bool cacheOn = GetParam();
  // Two versions of one source; every lookup of x.a<i>.flip.example hits two keys of it.
  auto version = [&](const std::string& name) {
    std::string text;
    for (int i = 0; i < 5000; ++i)
      text += "a" + std::to_string(i) + ".flip.example\nx.a" + std::to_string(i) + ".flip.example\n";
    return writeFile(dir_, name, text);
  };
  std::string path = version("flip.txt");
  RedisOptions ro = server_->options();
  ASSERT_TRUE(importFeedToRedis(ro, Format::Domains, path, feedOpts("flip", "alpha")));

  std::atomic<bool> stop{false};
  std::atomic<int> mixed{0}, failed{0}, alpha{0}, beta{0};
  std::atomic<uint64_t> cacheHits{0};
  std::string firstBad;
  std::thread reader([&] {
    Loop loop;
    RedisOptions o = ro;
    o.cacheEntries = cacheOn ? 100000 : 0;  // off: every lookup goes to Redis
    o.deadline = 2000ms;
    auto store = RedisStore::create(loop.base(), o);
    loop.runUntil([&] { return store->state() == RedisStore::State::Up; }, 5s);
    for (int n = 0; !stop; ++n) {
      // With the cache on, a small working set: most answers come from the cache.
      auto q = query("http://x.a" + std::to_string(n % (cacheOn ? 50 : 5000)) + ".flip.example/");
      loop.poll();
      auto a = lookupOn(loop, *store, q.keys(), 3s);
      if (!a.done || !a.answer.ok) {
        ++failed;
        continue;
      }
      auto& m = a.answer.matches;
      if (m.size() == 2 && m[0].category == m[1].category) {
        (m[0].category == "alpha" ? alpha : beta)++;
      } else {
        if (!mixed++) firstBad = describe(m).empty() ? "no match" : describe(m)[0];
      }
    }
    cacheHits = store->stats().cacheHits;
  });
  for (int round = 0; round < 4; ++round) {
    auto r = importFeedToRedis(ro, Format::Domains, path, feedOpts("flip", round % 2 ? "alpha" : "beta"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->distinct, 10000u);
  }
  std::this_thread::sleep_for(100ms);
  stop = true;
  reader.join();
  EXPECT_EQ(mixed.load(), 0) << firstBad;
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(alpha.load(), 0);
  EXPECT_GT(beta.load(), 0);  // the reader really saw both versions
  if (cacheOn) {
    EXPECT_GT(cacheHits.load(), 0u);
  } else {
    EXPECT_EQ(cacheHits.load(), 0u);
  }
  // Old generations are gone from Redis: one field per rule key.
  EXPECT_EQ(server_->raw({"HLEN", "sekisho:r:domain:a1.flip.example"}), "1");
}

TEST_F(RedisStoreTest, InvalidationReachesAnotherWorkerWithinOneSecond) {
  RedisOptions ro = server_->options();
  ro.db = 3;  // SELECTed on both paths; pub/sub is not per database
  std::string v1 = writeFile(dir_, "v1.txt", "inv.example\n");
  ASSERT_TRUE(importFeedToRedis(ro, Format::Domains, v1, feedOpts("inv", "alpha")));
  Loop loop1, loop2;
  auto s1 = RedisStore::create(loop1.base(), ro);
  auto s2 = RedisStore::create(loop2.base(), ro);
  waitUp(loop1, *s1);
  waitUp(loop2, *s2);
  auto q = query("http://www.inv.example/");
  for (RedisStore* s : {s1.get(), s2.get()}) {
    Loop& l = s == s1.get() ? loop1 : loop2;
    auto a = lookupOn(l, *s, q.keys());
    ASSERT_TRUE(a.answer.ok);
    ASSERT_EQ(a.answer.matches.size(), 1u);
    EXPECT_EQ(a.answer.matches[0].category, "alpha");
    EXPECT_TRUE(lookupOn(l, *s, q.keys()).sync);  // cached
  }
  ASSERT_TRUE(importFeedToRedis(ro, Format::Domains, v1, feedOpts("inv", "beta")));
  auto t0 = Clock::now();
  bool seen = false;
  while (!seen && Clock::now() - t0 < 1s) {
    loop2.runFor(5ms);
    auto a = lookupOn(loop2, *s2, q.keys());
    seen = a.answer.ok && a.answer.matches.size() == 1 && a.answer.matches[0].category == "beta";
  }
  EXPECT_TRUE(seen) << "worker 2 still answers the old entry after 1 s";
  EXPECT_GE(s2->stats().invalidations, 1u);
  // A removed source disappears too.
  ASSERT_TRUE(removeSourceFromRedis(ro, "inv"));
  EXPECT_TRUE(loop1.runUntil([&] { return lookupOn(loop1, *s1, q.keys()).answer.matches.empty(); }, 1s));
}

TEST_F(RedisStoreTest, DeltaAddsToTheLiveSet) {
  RedisOptions ro = server_->options();
  ASSERT_TRUE(importFeedToRedis(ro, Format::Domains, writeFile(dir_, "a.txt", "one.example\n"), feedOpts("d", "malware")));
  auto r = importFeedToRedis(ro, Format::Domains, writeFile(dir_, "b.txt", "two.example\none.example\n"),
                             feedOpts("d", "c2"), /*replace=*/false);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->distinct, 2u);
  auto one = lookupRedisSync(ro, query("http://one.example/").keys());
  auto two = lookupRedisSync(ro, query("http://two.example/").keys());
  ASSERT_TRUE(one && two);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].category, "malware");  // the existing entry wins, as in the embedded store
  ASSERT_EQ(two->size(), 1u);
  EXPECT_EQ((*two)[0].category, "c2");
  auto bad = importFeedToRedis(ro, Format::Domains, dir_ + "/missing.txt", feedOpts("d", "c2"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(lookupRedisSync(ro, query("http://one.example/").keys())->size(), 1u);  // untouched
}

TEST_F(RedisStoreTest, RedisDownFailsFastAndReconnects) {
  RedisOptions ro = server_->options();
  ASSERT_TRUE(importFeedToRedis(ro, Format::Domains, writeFile(dir_, "a.txt", "down.example\n"), feedOpts("s", "malware")));
  Loop loop;
  ro.deadline = 300ms;
  auto store = RedisStore::create(loop.base(), ro);
  std::vector<std::string> states;
  store->setStateListener([&](RedisStore::State, const std::string& text) { states.push_back(text); });
  waitUp(loop, *store);
  ASSERT_TRUE(lookupOn(loop, *store, query("http://down.example/").keys()).answer.ok);
  // Killed with lookups in flight: each is answered ok=false at once, none waits for its deadline.
  int answered = 0, failedFast = 0;
  for (uint64_t t = 100; t < 120; ++t)
    store->lookup(query("http://f" + std::to_string(t) + ".example/").keys(), t, [&](StoreAnswer a) {
      ++answered;
      failedFast += !a.ok;
    });
  server_->stop();
  auto killedAt = Clock::now();
  ASSERT_TRUE(loop.runUntil([&] { return answered == 20; }, 1s));
  EXPECT_LT(Clock::now() - killedAt, 250ms);
  EXPECT_EQ(failedFast, 20);  // none had reached Redis before the kill
  ASSERT_TRUE(loop.runUntil([&] { return store->state() == RedisStore::State::Down; }, 1s)) << store->stateText();
  EXPECT_EQ(store->stateText().rfind("down: ", 0), 0u) << store->stateText();
  EXPECT_NE(store->stateText().find("retry in"), std::string::npos);
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    auto a = lookupOn(loop, *store, query("http://n" + std::to_string(i) + ".example/").keys());
    ASSERT_TRUE(a.done);
    EXPECT_FALSE(a.sync);
    EXPECT_FALSE(a.answer.ok);
    EXPECT_LT(Clock::now() - t0, 100ms) << "down lookups must not wait for the deadline";
    EXPECT_NE(a.answer.error.find("redis down"), std::string::npos) << a.answer.error;
  }
  // Restarted on the same port: back up after the backoff, and lookups work again.
  ASSERT_TRUE(server_->start());
  ASSERT_TRUE(importFeedToRedis(ro, Format::Domains, writeFile(dir_, "b.txt", "down.example\n"), feedOpts("s", "c2")));
  ASSERT_TRUE(loop.runUntil([&] { return store->state() == RedisStore::State::Up; }, 8s)) << store->stateText();
  auto a = lookupOn(loop, *store, query("http://down.example/").keys());
  ASSERT_TRUE(a.answer.ok) << a.answer.error;
  ASSERT_EQ(a.answer.matches.size(), 1u);
  EXPECT_EQ(a.answer.matches[0].category, "c2");
  // The listener saw up, down (with the reason), then up again.
  ASSERT_GE(states.size(), 3u);
  EXPECT_EQ(states.front().rfind("up", 0), 0u) << states.front();
  EXPECT_EQ(states.back().rfind("up", 0), 0u) << states.back();
  EXPECT_TRUE(std::any_of(states.begin(), states.end(), [](const std::string& s) { return s.rfind("down: ", 0) == 0; }));
}

TEST_F(RedisStoreTest, MalformedRepliesAreRefusedWithTheKeyNamed) {
  RedisOptions ro = server_->options();
  ASSERT_TRUE(importFeedToRedis(ro, Format::Domains, writeFile(dir_, "a.txt", "fine.example\n"), feedOpts("s", "malware")));
  server_->raw({"SET", "sekisho:r:domain:string.example", "x"});
  server_->raw({"HSET", "sekisho:r:domain:garbage.example", "s@1", "not an entry"});
  server_->raw({"HSET", "sekisho:r:domain:field.example", "no-generation", "1\tc2\t1\tblock\t0\t0\t"});
  server_->raw({"RPUSH", "sekisho:r:domain:list.example", "a"});
  Loop loop;
  auto store = RedisStore::create(loop.base(), ro);
  waitUp(loop, *store);
  for (const char* host : {"string.example", "garbage.example", "field.example", "list.example"}) {
    auto a = lookupOn(loop, *store, query(std::string("http://www.") + host + "/").keys());
    ASSERT_TRUE(a.done) << host;
    EXPECT_FALSE(a.answer.ok) << host;
    EXPECT_NE(a.answer.error.find(std::string("sekisho:r:domain:") + host), std::string::npos) << a.answer.error;
    auto s = lookupRedisSync(ro, query(std::string("http://") + host + "/").keys());
    EXPECT_FALSE(s) << host;
  }
  EXPECT_GE(store->stats().errors, 4u);
  // Good keys still work on the same connection.
  auto good = lookupOn(loop, *store, query("http://fine.example/").keys());
  ASSERT_TRUE(good.answer.ok) << good.answer.error;
  EXPECT_EQ(good.answer.matches.size(), 1u);
  // The generations hash and the CIDR length sets are checked too.
  server_->raw({"SADD", "sekisho:cidrlen:4", "33"});
  auto c = lookupOn(loop, *store, query("http://other.example/").keys());
  EXPECT_FALSE(c.answer.ok);
  EXPECT_NE(c.answer.error.find("sekisho:cidrlen:4"), std::string::npos) << c.answer.error;
  server_->raw({"DEL", "sekisho:cidrlen:4"});
  server_->raw({"DEL", "sekisho:gens"});
  server_->raw({"SET", "sekisho:gens", "x"});
  auto g = lookupOn(loop, *store, query("http://other2.example/").keys());
  EXPECT_FALSE(g.answer.ok);
  EXPECT_NE(g.answer.error.find("sekisho:gens"), std::string::npos) << g.answer.error;
  EXPECT_EQ(store->state(), RedisStore::State::Up);
}

TEST_F(RedisStoreTest, SlowRedisAnswersTimeoutWithinTheDeadline) {
  RedisOptions ro = server_->options();
  ro.deadline = 100ms;
  Loop loop;
  auto store = RedisStore::create(loop.base(), ro);
  waitUp(loop, *store);
  ASSERT_EQ(server_->raw({"CLIENT", "PAUSE", "700", "ALL"}), "OK");
  auto t0 = Clock::now();
  auto a = lookupOn(loop, *store, query("http://slow.example/").keys());
  auto took = Clock::now() - t0;
  ASSERT_TRUE(a.done);
  EXPECT_FALSE(a.answer.ok);
  EXPECT_NE(a.answer.error.find("timeout"), std::string::npos) << a.answer.error;
  EXPECT_GE(took, 90ms);
  EXPECT_LT(took, 400ms);
  EXPECT_EQ(store->stats().timeouts, 1u);
  // The late reply is ignored; afterwards lookups succeed again.
  loop.runFor(800ms);
  auto b = lookupOn(loop, *store, query("http://slow2.example/").keys());
  EXPECT_TRUE(b.answer.ok) << b.answer.error;
}

TEST_F(RedisStoreTest, CancelAndDestroyWithLookupsInFlight) {
  RedisOptions ro = server_->options();
  Loop loop;
  auto store = RedisStore::create(loop.base(), ro);
  waitUp(loop, *store);
  int called = 0;
  auto q = query("http://cancel.example/");
  ASSERT_FALSE(store->lookup(q.keys(), 1, [&](StoreAnswer) { ++called; }));
  store->cancel(1);
  ASSERT_FALSE(store->lookup(query("http://c2.example/").keys(), 2, [&](StoreAnswer) { ++called; }));
  loop.runFor(100ms);
  EXPECT_EQ(called, 1);
  EXPECT_EQ(store->pendingLookups(), 0u);
  // Destroyed from inside its own callback while other lookups are in flight.
  for (uint64_t t = 10; t < 20; ++t)
    store->lookup(query("http://d" + std::to_string(t) + ".example/").keys(), t, [&](StoreAnswer) {
      ++called;
      store.reset();
    });
  loop.runFor(200ms);
  EXPECT_EQ(called, 2);
  EXPECT_EQ(store, nullptr);
  // Destroyed with lookups in flight: no callback, no crash when the replies would have come.
  store = RedisStore::create(loop.base(), ro);
  waitUp(loop, *store);
  for (uint64_t t = 30; t < 40; ++t)
    store->lookup(query("http://e" + std::to_string(t) + ".example/").keys(), t, [&](StoreAnswer) { ++called; });
  store.reset();
  loop.runFor(100ms);
  EXPECT_EQ(called, 2);
}

TEST_F(RedisStoreTest, LookupsWhileConnectingWaitForTheConnection) {
  RedisOptions ro = server_->options();
  ro.deadline = 1000ms;
  Loop loop;
  auto store = RedisStore::create(loop.base(), ro);
  EXPECT_EQ(store->state(), RedisStore::State::Connecting);
  auto a = lookupOn(loop, *store, query("http://early.example/").keys());
  EXPECT_TRUE(a.answer.ok) << a.answer.error;
  // Nothing listening: Down quickly, with the reason.
  RedisOptions none;
  none.port = freePort();
  auto dead = RedisStore::create(loop.base(), none);
  ASSERT_TRUE(loop.runUntil([&] { return dead->state() == RedisStore::State::Down; }, 1s));
  EXPECT_NE(dead->stateText().find("refused"), std::string::npos) << dead->stateText();
}
