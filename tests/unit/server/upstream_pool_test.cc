#include "proxy/server/upstream_pool.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <vector>

using sekisho::BevPtr;
using sekisho::server::UpstreamPool;
using namespace std::chrono_literals;

namespace {

// Parked connections are socket bufferevents whose other end the test holds; the pool's buffer
// releaser is replaced by one that records which connections gave their buffers back.
class UpstreamPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = event_base_new();
    ASSERT_NE(base_, nullptr);
    pool_.setLimits(8, 4, 30s);
    pool_.setBufferReleaser([this](bufferevent* b) { released_.push_back(b); });
  }
  void TearDown() override {
    pool_.clear();
    for (int fd : peers_) ::close(fd);
    event_base_free(base_);
  }
  // A fresh connection; its raw pointer identifies it in released_.
  BevPtr conn(int* peer = nullptr) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    peers_.push_back(sv[1]);
    if (peer) *peer = sv[1];
    return BevPtr(bufferevent_socket_new(base_, sv[0], BEV_OPT_CLOSE_ON_FREE));
  }
  bool wasReleased(bufferevent* b) const {
    for (auto* r : released_)
      if (r == b) return true;
    return false;
  }

  event_base* base_ = nullptr;
  UpstreamPool pool_;
  std::vector<bufferevent*> released_;
  std::vector<int> peers_;
  UpstreamPool::Clock::time_point t0_ = UpstreamPool::Clock::now();
};

TEST_F(UpstreamPoolTest, ConnectionsParkedPastTheThresholdGiveTheirBuffersBack) {
  BevPtr a = conn(), b = conn(), c = conn();
  bufferevent *pa = a.get(), *pb = b.get(), *pc = c.get();
  pool_.put("a", std::move(a), t0_);
  pool_.put("b", std::move(b), t0_ + 60ms);
  EXPECT_TRUE(released_.empty());
  pool_.put("c", std::move(c), t0_ + 120ms);  // a has waited 120 ms
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0], pa);
  BevPtr got = pool_.take("c", t0_ + 170ms);  // b has waited 110 ms, c only 50
  EXPECT_EQ(got.get(), pc);
  EXPECT_EQ(released_.size(), 2u);
  EXPECT_TRUE(wasReleased(pb));
  EXPECT_FALSE(wasReleased(pc));
  // Each connection gives its buffers back once, however long it then waits.
  pool_.put("c", std::move(got), t0_ + 171ms);
  pool_.take("zzz", t0_ + 10s);
  EXPECT_EQ(released_.size(), 3u);
  pool_.take("zzz", t0_ + 20s);
  EXPECT_EQ(released_.size(), 3u);
  EXPECT_EQ(pool_.size(), 3u);
}

TEST_F(UpstreamPoolTest, AKeepAliveConnectionTakenBackSoonKeepsItsBuffers) {
  BevPtr a = conn();
  bufferevent* pa = a.get();
  auto t = t0_;
  for (int i = 0; i < 200; ++i) {
    pool_.put("a", std::move(a), t);
    t += 30ms;
    a = pool_.take("a", t);
    ASSERT_EQ(a.get(), pa);
    t += 50ms;  // the next request; 200 rounds add up to far more than the threshold
  }
  EXPECT_TRUE(released_.empty());
}

TEST_F(UpstreamPoolTest, ReleasedConnectionsCanBeTakenClosedOrEvicted) {
  int peerA = -1;
  BevPtr a = conn(&peerA), b = conn(), c = conn();
  bufferevent *pa = a.get(), *pb = b.get();
  pool_.put("x", std::move(a), t0_);
  pool_.put("x", std::move(b), t0_ + 10ms);
  pool_.put("y", std::move(c), t0_ + 20ms);
  // All three are stale at +1 s; taking "x" hands out the most recent one, b.
  BevPtr got = pool_.take("x", t0_ + 1s);
  EXPECT_EQ(got.get(), pb);
  EXPECT_EQ(released_.size(), 3u);
  // The origin closes a, the oldest released one: the pool drops it.
  ::close(peerA);
  peers_.erase(std::find(peers_.begin(), peers_.end(), peerA));
  event_base_loop(base_, EVLOOP_NONBLOCK);
  event_base_loop(base_, EVLOOP_NONBLOCK);
  EXPECT_EQ(pool_.size(), 1u);
  EXPECT_EQ(pool_.take("x", t0_ + 2s), nullptr);
  // New ones behind the released ones: only stale ones are released, each once.
  released_.clear();
  pool_.put("x", std::move(got), t0_ + 2s);
  for (int i = 0; i < 8; ++i) pool_.put("z" + std::to_string(i), conn(), t0_ + 2s + std::chrono::milliseconds(i));
  EXPECT_EQ(pool_.size(), 8u);  // the limit evicted the oldest (y, then x)
  EXPECT_TRUE(released_.empty());
  pool_.take("none", t0_ + 3s);
  EXPECT_EQ(released_.size(), 8u);
  std::set<bufferevent*> unique(released_.begin(), released_.end());
  EXPECT_EQ(unique.size(), 8u);
  EXPECT_FALSE(wasReleased(pa));
}

TEST_F(UpstreamPoolTest, TheSizeGaugeFollowsEveryChange) {
  std::atomic<uint64_t> gauge{99};
  pool_.setSizeGauge(&gauge);
  int peer = -1;
  pool_.put("a", conn(&peer), t0_);
  pool_.put("b", conn(), t0_);
  pool_.put("b", conn(), t0_);
  EXPECT_EQ(gauge.load(), 3u);
  BevPtr b = pool_.take("b", t0_);
  EXPECT_EQ(gauge.load(), 2u);
  ::close(peer);  // the origin closes a
  peers_.erase(std::find(peers_.begin(), peers_.end(), peer));
  event_base_loop(base_, EVLOOP_NONBLOCK);
  event_base_loop(base_, EVLOOP_NONBLOCK);
  EXPECT_EQ(gauge.load(), 1u);
  pool_.setLimits(1, 1, 30s);
  pool_.put("c", std::move(b), t0_);  // evicts the other b
  EXPECT_EQ(gauge.load(), 1u);
  pool_.clear();
  EXPECT_EQ(gauge.load(), 0u);
  pool_.setSizeGauge(nullptr);
}

// A request that will not be retried takes only a connection parked moments ago: the most
// recent one, and none when even that one has waited longer than asked.
TEST_F(UpstreamPoolTest, TakeFreshTakesOnlyARecentlyParkedConnection) {
  BevPtr older = conn(), newer = conn();
  bufferevent* newerRaw = newer.get();
  pool_.put("k", std::move(older), t0_);
  pool_.put("k", std::move(newer), t0_ + 1500ms);
  EXPECT_EQ(pool_.takeFresh("k", 2s, t0_ + 3600ms), nullptr) << "the newest waited 2.1 s";
  EXPECT_EQ(pool_.size(), 2u) << "a refused takeFresh leaves the pool as it was";
  EXPECT_EQ(pool_.takeFresh("other", 2s, t0_ + 1600ms), nullptr);
  BevPtr got = pool_.takeFresh("k", 2s, t0_ + 3000ms);
  EXPECT_EQ(got.get(), newerRaw) << "the one parked 1.5 s ago";
  EXPECT_EQ(pool_.takeFresh("k", 2s, t0_ + 3000ms), nullptr) << "the other one waited 3 s";
  EXPECT_NE(pool_.take("k", t0_ + 3000ms), nullptr) << "a retryable request takes it all the same";
}

// Out of descriptors the worker frees pooled connections first: oldest first, across origins.
TEST_F(UpstreamPoolTest, DropOldestFreesTheLongestParkedAcrossOrigins) {
  BevPtr a = conn(), b = conn(), c = conn();
  bufferevent* cRaw = c.get();
  pool_.put("x", std::move(a), t0_);
  pool_.put("y", std::move(b), t0_ + 1s);
  pool_.put("x", std::move(c), t0_ + 2s);
  EXPECT_EQ(pool_.dropOldest(2), 2u);
  EXPECT_EQ(pool_.size(), 1u);
  EXPECT_EQ(pool_.take("y", t0_ + 3s), nullptr) << "y's only one was among the two oldest";
  EXPECT_EQ(pool_.take("x", t0_ + 3s).get(), cRaw) << "the newest one stays";
  EXPECT_EQ(pool_.dropOldest(5), 0u) << "nothing left";
}

// Without a releaser the pool frees TLS buffers through OpenSSL and leaves plain connections be.
TEST(UpstreamPoolDefault, PlainConnectionsParkPastTheThresholdUntouched) {
  event_base* base = event_base_new();
  {
    UpstreamPool pool;
    pool.setLimits(4, 4, 30s);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    auto t0 = UpstreamPool::Clock::now();
    pool.put("p", BevPtr(bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE)), t0);
    EXPECT_EQ(pool.take("q", t0 + 1s), nullptr);
    EXPECT_NE(pool.take("p", t0 + 2s), nullptr);
    ::close(sv[1]);
  }
  event_base_free(base);
}

}  // namespace
