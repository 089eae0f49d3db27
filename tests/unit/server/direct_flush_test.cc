#include "proxy/server/direct_flush.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

using sekisho::server::DirectFlush;

namespace {

// A loop with a flusher bound to this thread and a connected socket pair: `bev` on one end, the
// test reads the other (`peer`) directly.
class DirectFlushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = event_base_new();
    ASSERT_NE(base_, nullptr);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    peer_ = sv[1];
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(peer_, F_SETFL, O_NONBLOCK);
    bev_ = bufferevent_socket_new(base_, sv[0], BEV_OPT_CLOSE_ON_FREE);
    ASSERT_NE(bev_, nullptr);
    flush_ = new DirectFlush(base_);
    DirectFlush::bind(flush_);
  }
  void TearDown() override {
    if (bev_) bufferevent_free(bev_);
    delete flush_;
    DirectFlush::bind(nullptr);
    if (peer_ >= 0) ::close(peer_);
    event_base_free(base_);
  }
  void turn() { event_base_loop(base_, EVLOOP_NONBLOCK); }
  std::string drainPeer() {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(peer_, buf, sizeof buf)) > 0) got.append(buf, size_t(n));
    return got;
  }
  bool writing() const { return bufferevent_get_enabled(bev_) & EV_WRITE; }
  void add(const std::string& s) { evbuffer_add(bufferevent_get_output(bev_), s.data(), s.size()); }

  event_base* base_ = nullptr;
  bufferevent* bev_ = nullptr;
  DirectFlush* flush_ = nullptr;
  int peer_ = -1;
};

TEST_F(DirectFlushTest, BytesLeaveInTheSameLoopPassWithoutTheWriteEvent) {
  DirectFlush::quiet(bev_);
  EXPECT_FALSE(writing()) << "a new socket bufferevent starts with EV_WRITE on; quiet() turns it off";
  add("hello, ");
  add("world");
  turn();
  EXPECT_EQ(drainPeer(), "hello, world");
  EXPECT_FALSE(writing());
  EXPECT_EQ(flush_->directWrites(), 1u) << "two additions in one pass leave in one write";
  EXPECT_EQ(flush_->deferredWrites(), 0u);
}

TEST_F(DirectFlushTest, WhatTheSocketRefusesWaitsForTheWriteEventThenQuietAgain) {
  DirectFlush::quiet(bev_);
  std::string big(8 * 1024 * 1024, 'x');  // far more than a socket pair buffers
  add(big);
  turn();
  EXPECT_TRUE(writing()) << "the rest waits for EPOLLOUT";
  EXPECT_EQ(flush_->deferredWrites(), 1u);
  std::string got;
  for (int i = 0; i < 10000 && got.size() < big.size(); ++i) {
    got += drainPeer();
    turn();
  }
  got += drainPeer();
  EXPECT_EQ(got.size(), big.size());
  EXPECT_EQ(got, big);
  EXPECT_FALSE(writing()) << "drained: the write event is off again";
  add("more");
  turn();
  EXPECT_EQ(drainPeer(), "more");
}

TEST_F(DirectFlushTest, AFreedBufferEventStillSendsWhatItWasGivenThenCloses) {
  DirectFlush::quiet(bev_);
  add("last words");
  bufferevent_free(bev_);  // the owner is done with it before the loop turns
  bev_ = nullptr;
  turn();
  EXPECT_EQ(drainPeer(), "last words");
  char c;
  EXPECT_EQ(::read(peer_, &c, 1), 0) << "the socket is closed once the flusher lets go";
}

TEST_F(DirectFlushTest, WithoutAFlusherTheBufferEventKeepsLibeventsWay) {
  DirectFlush::bind(nullptr);
  DirectFlush::quiet(bev_);
  EXPECT_TRUE(writing());
  add("plain");
  turn();
  turn();
  EXPECT_EQ(drainPeer(), "plain");
  EXPECT_EQ(flush_->directWrites(), 0u);
}

TEST(DirectFlushWriteOut, WritesAFrozenSocketOutput) {
  event_base* base = event_base_new();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  // Made with its descriptor, a socket bufferevent's output stays frozen at the front outside
  // libevent's own write callback: a plain evbuffer_write fails there without a system call.
  bufferevent* bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
  evbuffer* out = bufferevent_get_output(bev);
  evbuffer_add(out, "abc", 3);
  EXPECT_LT(evbuffer_write(out, sv[0]), 0);
  EXPECT_EQ(DirectFlush::writeOut(out, sv[0]), 3);
  char buf[8] = {};
  EXPECT_EQ(::read(sv[1], buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
  evbuffer_add(out, "d", 1);
  EXPECT_LT(evbuffer_write(out, sv[0]), 0) << "frozen again afterwards, as libevent expects";
  bufferevent_free(bev);
  ::close(sv[1]);
  event_base_free(base);
}

}  // namespace
