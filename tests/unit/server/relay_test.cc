// The relay with body filters (relay.h, filter.h): a real Worker on the built-in defaults and
// socket-less bufferevents whose buffers the test fills and reads, so every step is explicit.
#include "proxy/server/relay.h"

#include <gtest/gtest.h>

#include "proxy/http1/parser.h"
#include "proxy/server/worker.h"

using namespace sekisho;
using namespace sekisho::server;

namespace {

struct Link final : RelayLink {
  explicit Link(Worker& w) : w(w) {
    client = bufferevent_socket_new(w.base(), -1, 0);
    up = bufferevent_socket_new(w.base(), -1, 0);
    bufferevent_enable(up, EV_READ);
    // A bufferevent keeps the front of its output (and the back of its input) to itself; the
    // test stands in for the sockets, so it reads and writes those ends directly.
    evbuffer_unfreeze(bufferevent_get_output(client), 1);
    evbuffer_unfreeze(bufferevent_get_output(up), 1);
    evbuffer_unfreeze(bufferevent_get_input(up), 0);
  }
  ~Link() {
    bufferevent_free(client);
    bufferevent_free(up);
  }
  Worker& worker() override { return w; }
  bufferevent* clientBev() override { return client; }
  bufferevent* upstreamBev() override { return over ? nullptr : up; }
  size_t bufferLimit() const override { return 64 * 1024; }
  void touch() override {}
  bool upstreamIsH2Channel() const override { return false; }
  void armTimer(std::chrono::milliseconds) override {}
  bool closing() const override { return closingFlag; }
  void closeAfter(bool) override { closingFlag = true; }
  void noteResponse(int s, std::string_view, uint64_t) override { status = s; }
  void respondError(int s, Reason, std::string_view d) override {
    errorStatus = s;
    detail = d;
    over = true;
  }
  void abortExchange(Reason, std::string_view d) override {
    aborted = true;
    detail = d;
    over = true;
  }
  void relayDone(bool) override { done = true; }
  void upgraded() override {}

  std::string toClient() {
    evbuffer* out = bufferevent_get_output(client);
    std::string s(evbuffer_get_length(out), '\0');
    evbuffer_remove(out, s.data(), s.size());
    return s;
  }
  void fromOrigin(std::string_view bytes) { evbuffer_add(bufferevent_get_input(up), bytes.data(), bytes.size()); }
  bool originPaused() const { return !(bufferevent_get_enabled(up) & EV_READ); }

  Worker& w;
  bufferevent* client;
  bufferevent* up;
  bool over = false, closingFlag = false, aborted = false, done = false;
  int status = 0, errorStatus = 0;
  std::string detail;
};

// Holds the head and keeps the body until it has `decideAt` bytes (or its bound is full and the
// test decides), then lets everything through, or replaces the response when it saw "EICAR".
class Scanner final : public ResponseFilter {
 public:
  Scanner(size_t bound, size_t decideAt, bool hold) : bound_(bound), decideAt_(decideAt), hold_(hold) {}
  HeadAction begin(const http::RequestHead&, const http::ResponseHead&) override {
    HeadAction a;
    if (hold_) a.status = HeadStatus::Hold;
    return a;
  }
  bool seesBody() const override { return true; }
  size_t bound() const override { return bound_; }
  size_t kept() const override { return evbuffer_get_length(held_); }
  void release(evbuffer* out) override { evbuffer_add_buffer(out, held_); }
  DataAction onData(evbuffer* piece, bool end) override {
    ++calls;
    if (decided_) return {};
    size_t room = bound_ - evbuffer_get_length(held_);
    evbuffer_remove_buffer(piece, held_, std::min(room, evbuffer_get_length(piece)));
    if (evbuffer_search(held_, "EICAR", 5, nullptr).pos >= 0) {
      DataAction a;
      a.status = DataStatus::Replace;
      a.answer = {403, Reason::ReputationBlock, "malware in the download"};
      return a;
    }
    if (evbuffer_get_length(held_) >= decideAt_ || end || verdict_) {
      decided_ = true;
      return {};
    }
    DataAction a;
    a.status = DataStatus::Keep;
    return a;
  }
  void decideLater() {  // a verdict from elsewhere: the relay is woken and offers the body again
    verdict_ = true;
    wake();
  }
  ~Scanner() override { evbuffer_free(held_); }
  int calls = 0;

 private:
  evbuffer* held_ = evbuffer_new();
  size_t bound_, decideAt_;
  bool hold_, decided_ = false, verdict_ = false;
};

class RelayBodies : public ::testing::Test {
 protected:
  RelayBodies() : worker_(0, config::defaults(), nullptr, std::make_shared<SharedFacts>()), link_(worker_) {}
  void start(Relay& relay) {
    auto r = http1::parseRequestHead("GET http://a.example/f.exe HTTP/1.1\r\nHost: a.example\r\n\r\n", http1::Limits{});
    ASSERT_TRUE(r);
    req_ = std::move(*r);
    relay.start(req_, -1);
    std::string head(evbuffer_get_length(bufferevent_get_output(link_.up)), '\0');
    evbuffer_remove(bufferevent_get_output(link_.up), head.data(), head.size());
    ASSERT_EQ(head.rfind("GET /f.exe HTTP/1.1\r\nHost: a.example\r\n", 0), 0u) << "[" << head << "]";
  }
  Worker worker_;
  Link link_;
  http::RequestHead req_;
};

}  // namespace

TEST_F(RelayBodies, AHeldHeadGoesOutWithTheBodyOnceTheFilterDecides) {
  Relay relay(link_);
  Scanner scan(/*bound=*/64, /*decideAt=*/8, /*hold=*/true);
  ASSERT_TRUE(relay.addResponseFilter(&scan));
  ASSERT_NO_FATAL_FAILURE(start(relay));
  link_.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123");
  relay.onUpstreamReadable();
  EXPECT_EQ(link_.toClient(), "") << "nothing goes out while the filter holds the head";
  EXPECT_EQ(link_.status, 0);
  link_.fromOrigin("456789");
  relay.onUpstreamReadable();
  std::string out = link_.toClient();
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", 0), 0u) << out;
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "0123456789");
  EXPECT_EQ(link_.status, 200);
  EXPECT_TRUE(link_.done);
  EXPECT_EQ(relay.bytesToClient(), 10u);
}

TEST_F(RelayBodies, AFilterReplacesAHeldResponseWithThePage) {
  Relay relay(link_);
  Scanner scan(64, 1000, true);
  relay.addResponseFilter(&scan);
  ASSERT_NO_FATAL_FAILURE(start(relay));
  link_.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nX5O!P%@AP EICAR-TEST");
  relay.onUpstreamReadable();
  EXPECT_EQ(link_.errorStatus, 403);
  EXPECT_EQ(link_.detail, "malware in the download");
  EXPECT_EQ(link_.toClient(), "") << "not a byte of the response reached the client";
}

TEST_F(RelayBodies, AReplaceAfterTheHeadWentOutCutsTheResponseShort) {
  Relay relay(link_);
  Scanner scan(64, 1000, false);
  relay.addResponseFilter(&scan);
  ASSERT_NO_FATAL_FAILURE(start(relay));
  link_.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nclean");
  relay.onUpstreamReadable();
  EXPECT_NE(link_.toClient().find("200 OK"), std::string::npos) << "the head is not held";
  link_.fromOrigin(" EICAR-TEST 1234");
  relay.onUpstreamReadable();
  EXPECT_TRUE(link_.aborted);
  EXPECT_FALSE(link_.done);
}

TEST_F(RelayBodies, AChunkedBodyIsDecodedForTheFilterAndChunkedAgainForTheClient) {
  Relay relay(link_);
  Scanner scan(64, 4, false);
  relay.addResponseFilter(&scan);
  ASSERT_NO_FATAL_FAILURE(start(relay));
  link_.fromOrigin("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");
  relay.onUpstreamReadable();
  std::string out = link_.toClient();
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "6\r\nabcdef\r\n0\r\n\r\n");
  EXPECT_TRUE(link_.done);
}

TEST_F(RelayBodies, AtItsBoundTheOriginIsPausedUntilTheFilterWakesTheRelay) {
  Relay relay(link_);
  Scanner scan(/*bound=*/4, /*decideAt=*/1000, /*hold=*/true);
  relay.addResponseFilter(&scan);
  ASSERT_NO_FATAL_FAILURE(start(relay));
  link_.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456");
  relay.onUpstreamReadable();
  EXPECT_TRUE(link_.originPaused()) << "the filter holds its whole bound: no more is read";
  EXPECT_EQ(link_.toClient(), "");
  scan.decideLater();  // its verdict came: the relay is woken, the head and the body go out
  EXPECT_FALSE(link_.originPaused());
  std::string out = link_.toClient();
  ASSERT_NE(out.find("\r\n\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "0123456") << "what it held first, then the rest, in order";
  EXPECT_FALSE(link_.done);
  link_.fromOrigin("789");
  relay.onUpstreamReadable();
  EXPECT_EQ(link_.toClient(), "789");
  EXPECT_TRUE(link_.done);
}

TEST_F(RelayBodies, WithoutABodyFilterTheBodyStreamsAsBefore) {
  Relay relay(link_);
  ASSERT_NO_FATAL_FAILURE(start(relay));
  link_.fromOrigin("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  relay.onUpstreamReadable();
  std::string out = link_.toClient();
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "hello");
  EXPECT_TRUE(link_.done);
}
