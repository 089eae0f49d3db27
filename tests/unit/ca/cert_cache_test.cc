#include "ca/cert_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "ca_test_util.h"

using namespace sekisho;
using namespace sekisho::ca;
using namespace sekisho::ca::test;

namespace {

class CertCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ca_ = newCa(*dir_);
  }
  static void TearDownTestSuite() {
    ca_.reset();
    delete dir_;
  }
  static CertCache::MintFn minter(const std::string& host, time_t cap = 0, std::atomic<int>* calls = nullptr) {
    return [host, cap, calls]() -> Result<MintedLeaf> {
      if (calls) ++*calls;
      return mintLeaf(*ca_, LeafRequest{host, {host}, {}, cap});
    };
  }
  static LeafKey key(const std::string& k) { return LeafKey{ca_->id(), k}; }
  static TempDir* dir_;
  static std::shared_ptr<const Ca> ca_;
};
TempDir* CertCacheTest::dir_ = nullptr;
std::shared_ptr<const Ca> CertCacheTest::ca_;

TEST_F(CertCacheTest, SecondGetIsAHit) {
  CertCache cache(10);
  std::atomic<int> calls{0};
  auto a = cache.getOrMint(key("a.example"), minter("a.example", 0, &calls));
  ASSERT_TRUE(a) << a.error().detail;
  auto b = cache.getOrMint(key("a.example"), minter("a.example", 0, &calls));
  ASSERT_TRUE(b);
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(calls.load(), 1);
  CertCacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.mints, 1u);
  EXPECT_EQ(cache.get(key("a.example")).get(), a->get());
  EXPECT_EQ(cache.get(key("b.example")), nullptr);
}

TEST_F(CertCacheTest, KeyedByCaIdToo) {
  CertCache cache(10);
  std::atomic<int> calls{0};
  ASSERT_TRUE(cache.getOrMint(LeafKey{"ca1", "a.example"}, minter("a.example", 0, &calls)));
  ASSERT_TRUE(cache.getOrMint(LeafKey{"ca2", "a.example"}, minter("a.example", 0, &calls)));
  // "ca1|x" + "y" must not collide with "ca1" + "x|y".
  ASSERT_TRUE(cache.getOrMint(LeafKey{"ca1", "x|y"}, minter("a.example", 0, &calls)));
  ASSERT_TRUE(cache.getOrMint(LeafKey{"ca1|x", "y"}, minter("a.example", 0, &calls)));
  EXPECT_EQ(calls.load(), 4);
  EXPECT_EQ(cache.size(), 4u);
}

TEST_F(CertCacheTest, LruBoundEvictsLeastRecentlyUsed) {
  CertCache cache(3);
  for (const char* h : {"a.example", "b.example", "c.example"}) ASSERT_TRUE(cache.getOrMint(key(h), minter(h)));
  ASSERT_TRUE(cache.get(key("a.example")));  // a is now the most recent; b the least
  ASSERT_TRUE(cache.getOrMint(key("d.example"), minter("d.example")));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ(cache.get(key("b.example")), nullptr);
  EXPECT_NE(cache.get(key("a.example")), nullptr);
  EXPECT_NE(cache.get(key("c.example")), nullptr);
  EXPECT_NE(cache.get(key("d.example")), nullptr);
  for (int i = 0; i < 20; ++i) {
    std::string h = "h" + std::to_string(i) + ".example";
    ASSERT_TRUE(cache.getOrMint(key(h), minter(h)));
    EXPECT_LE(cache.size(), 3u);
  }
  EXPECT_EQ(cache.stats().evictions, 21u);
}

std::atomic<time_t> gFakeNow{0};
time_t fakeNow() { return gFakeNow.load(); }

TEST_F(CertCacheTest, ExpiryIsCheckedOnEveryGet) {
  gFakeNow = time(nullptr);
  CertCache cache(10, 3600, fakeNow);
  std::atomic<int> calls{0};
  // The origin certificate ends in 3 hours.
  time_t cap = gFakeNow.load() + 3 * 3600;
  auto first = cache.getOrMint(key("o.example"), minter("o.example", cap, &calls));
  ASSERT_TRUE(first) << first.error().detail;
  gFakeNow += 3600;  // 2 h left: still served
  EXPECT_EQ(cache.get(key("o.example")).get(), first->get());
  gFakeNow += 3600 + 1;  // under 1 h left: dropped on read
  EXPECT_EQ(cache.get(key("o.example")), nullptr);
  EXPECT_EQ(cache.stats().expired, 1u);
  EXPECT_EQ(cache.size(), 0u);
  auto second = cache.getOrMint(key("o.example"), minter("o.example", 0, &calls));
  ASSERT_TRUE(second);
  EXPECT_NE(first->get(), second->get());
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(CertCacheTest, LeafAlreadyInsideTheMarginIsReturnedButNotCached) {
  CertCache cache(10, 3600);
  std::atomic<int> calls{0};
  time_t cap = time(nullptr) + 1800;  // the origin certificate ends in 30 minutes
  auto first = cache.getOrMint(key("short.example"), minter("short.example", cap, &calls));
  ASSERT_TRUE(first) << first.error().detail;
  EXPECT_EQ(cache.size(), 0u);
  auto second = cache.getOrMint(key("short.example"), minter("short.example", cap, &calls));
  ASSERT_TRUE(second);
  EXPECT_NE(first->get(), second->get());
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(CertCacheTest, EightConcurrentFirstVisitsMintOnce) {
  CertCache cache(10);
  std::atomic<int> calls{0};
  std::atomic<int> ready{0};
  constexpr int kThreads = 8;
  auto slowMint = [&]() -> Result<MintedLeaf> {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // keep the mint in flight
    return mintLeaf(*ca_, LeafRequest{"busy.example", {"busy.example"}, {}, 0});
  };
  std::vector<const MintedLeaf*> got(kThreads, nullptr);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      auto r = cache.getOrMint(key("busy.example"), slowMint);
      if (r) got[size_t(i)] = r->get();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_NE(got[size_t(i)], nullptr) << i;
    EXPECT_EQ(got[size_t(i)], got[0]);
  }
  CertCacheStats s = cache.stats();
  EXPECT_EQ(s.mints, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, uint64_t(kThreads - 1));
}

TEST_F(CertCacheTest, OtherKeysAreServedWhileOneMints) {
  CertCache cache(10);
  ASSERT_TRUE(cache.getOrMint(key("warm.example"), minter("warm.example")));
  std::atomic<bool> minting{false}, release{false};
  std::thread slow([&] {
    auto r = cache.getOrMint(key("slow.example"), [&]() -> Result<MintedLeaf> {
      minting = true;
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return mintLeaf(*ca_, LeafRequest{"slow.example", {"slow.example"}, {}, 0});
    });
    EXPECT_TRUE(r);
  });
  while (!minting.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The lock is not held during the mint: a hit and a different mint both complete.
  EXPECT_NE(cache.get(key("warm.example")), nullptr);
  EXPECT_TRUE(cache.getOrMint(key("other.example"), minter("other.example")));
  release = true;
  slow.join();
  EXPECT_EQ(cache.size(), 3u);
}

TEST_F(CertCacheTest, FailedMintIsReportedAndNotCached) {
  CertCache cache(10);
  std::atomic<int> calls{0};
  auto failing = [&]() -> Result<MintedLeaf> {
    ++calls;
    return mintLeaf(*ca_, LeafRequest{"a.com,DNS:evil.com", {}, {}, 0});
  };
  auto r = cache.getOrMint(key("bad"), failing);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("not a valid DNS name"), std::string::npos);
  EXPECT_FALSE(cache.getOrMint(key("bad"), failing));
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.stats().mintErrors, 2u);
}

TEST_F(CertCacheTest, ClearEmptiesTheCache) {
  CertCache cache(10);
  ASSERT_TRUE(cache.getOrMint(key("a.example"), minter("a.example")));
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.get(key("a.example")), nullptr);
}

}  // namespace
