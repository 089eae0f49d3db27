// The filter seam (proxy/server/filter.h) and the header rewriting on it (forward_headers.h):
// heads through a chain, and bodies through BodyChain with its bounds.
#include "proxy/server/filter.h"

#include <gtest/gtest.h>

#include <string>

#include "proxy/http1/parser.h"
#include "tests/unit/server/request_head.h"
#include "proxy/server/forward_headers.h"

using namespace sekisho;
using namespace sekisho::server;

namespace {

std::string drain(evbuffer* b) {
  std::string s(evbuffer_get_length(b), '\0');
  evbuffer_remove(b, s.data(), s.size());
  return s;
}

struct Buf {
  evbuffer* b = evbuffer_new();
  ~Buf() { evbuffer_free(b); }
  void add(std::string_view s) { evbuffer_add(b, s.data(), s.size()); }
};

using sekisho::testing::request;

http::ResponseHead response(std::string_view head, std::string_view method = "GET") {
  auto r = http1::parseResponseHead(head, http1::Limits{}, method);
  EXPECT_TRUE(r) << r.error().detail;
  return std::move(*r);
}

std::string forwardRequest(const http::RequestHead& req, int64_t maxForwards = -1, std::string* upgrade = nullptr) {
  ForwardRequestHeaders fwd;
  fwd.setVia("gw.example (sekisho/test)");
  fwd.setMaxForwards(maxForwards);
  FilterList<RequestFilter> chain;
  EXPECT_TRUE(chain.add(&fwd));
  EXPECT_EQ(fwd.begin(req).status, HeadStatus::Continue);
  std::string out;
  HeadWriter w(out);
  writeFields(chain, req.headers, w);
  if (upgrade) *upgrade = std::string(fwd.upgrade());
  return out;
}

}  // namespace

TEST(ForwardRequestHeaders, DropsHopByHopAndConnectionNamedFieldsAndAddsVia) {
  auto req = request("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, X-Secret\r\n"
                     "Keep-Alive: 5\r\nProxy-Authorization: Basic x\r\nX-Secret: s\r\nTE: trailers\r\n"
                     "Accept: */*\r\nProxy-Connection: keep-alive\r\n\r\n");
  EXPECT_EQ(forwardRequest(req), "Accept: */*\r\nVia: 1.1 gw.example (sekisho/test)\r\n");
}

TEST(ForwardRequestHeaders, ViaCarriesTheReceivedVersionAndHostAndLengthAreLeftToTheRelay) {
  auto req = request("POST http://a.example/ HTTP/1.0\r\nHost: a.example\r\nContent-Length: 3\r\nVia: 1.1 other\r\n\r\n");
  EXPECT_EQ(forwardRequest(req), "Via: 1.1 other\r\nVia: 1.0 gw.example (sekisho/test)\r\n");
}

TEST(ForwardRequestHeaders, MaxForwardsGoesOnLessOne) {
  auto req = request("TRACE http://a.example/ HTTP/1.1\r\nHost: a.example\r\nMax-Forwards: 3\r\n\r\n");
  EXPECT_EQ(forwardRequest(req, 3), "Max-Forwards: 2\r\nVia: 1.1 gw.example (sekisho/test)\r\n");
}

TEST(ForwardRequestHeaders, WebSocketUpgradeIsPassedOnOnlyWhenAskedForProperly) {
  std::string up;
  auto ws = request("GET http://a.example/ws HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    "Sec-WebSocket-Key: k\r\n\r\n");
  EXPECT_EQ(forwardRequest(ws, -1, &up),
            "Sec-WebSocket-Key: k\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nVia: 1.1 gw.example (sekisho/test)\r\n");
  EXPECT_EQ(up, "websocket");
  auto noConn = request("GET http://a.example/ws HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(forwardRequest(noConn, -1, &up), "Via: 1.1 gw.example (sekisho/test)\r\n");
  EXPECT_EQ(up, "");
  auto h2c = request("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
  EXPECT_EQ(forwardRequest(h2c, -1, &up), "Via: 1.1 gw.example (sekisho/test)\r\n");
  EXPECT_EQ(up, "");
}

TEST(ForwardResponseHeaders, DropsHopByHopReframedLengthAndDuplicateLength) {
  auto req = request("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
  auto run = [&](std::string_view head) {
    auto resp = response(head);
    ForwardResponseHeaders fwd;
    fwd.setVia("gw.example (sekisho/test)");
    FilterList<ResponseFilter> chain;
    chain.add(&fwd);
    EXPECT_EQ(fwd.begin(req, resp).status, HeadStatus::Continue);
    std::string out;
    HeadWriter w(out);
    writeFields(chain, resp.headers, w);
    return out;
  };
  EXPECT_EQ(run("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nETag: \"e\"\r\n\r\n"),
            "Content-Length: 5\r\nETag: \"e\"\r\nVia: 1.1 gw.example (sekisho/test)\r\n");
  EXPECT_EQ(run("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\nUpgrade: h2c\r\n\r\n"),
            "Via: 1.1 gw.example (sekisho/test)\r\n");
  EXPECT_EQ(run("HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nServer: s\r\n\r\n"),  // close-delimited
            "Server: s\r\nVia: 1.0 gw.example (sekisho/test)\r\n");
  EXPECT_EQ(run("HTTP/1.1 200 OK\r\nServer: s\r\n\r\n"), "Server: s\r\nVia: 1.1 gw.example (sekisho/test)\r\n");
}

namespace {
// Replaces a field's value and adds one of its own: a chain keeps the order of its filters.
class Rename final : public RequestFilter {
 public:
  bool keep(const http::Header& f, HeadWriter& out) override {
    if (!iequals(f.name, "user-agent")) return true;
    out.add("User-Agent", "corp");
    return false;
  }
  void end(HeadWriter& out) override { out.add("X-Filtered", "1"); }
};

// Keeps body bytes up to its bound, then lets everything go (a scanner that needs a prefix).
class KeepPrefix final : public ResponseFilter {
 public:
  explicit KeepPrefix(size_t bound, size_t decideAt) : bound_(bound), decideAt_(decideAt) {}
  DataAction onData(evbuffer* piece, bool end) override {
    if (decided_) return {};
    size_t room = bound_ - evbuffer_get_length(held_.b);
    evbuffer_remove_buffer(piece, held_.b, std::min(room + overrun_, evbuffer_get_length(piece)));
    if (evbuffer_get_length(held_.b) >= decideAt_ || end) {
      decided_ = true;
      return {};
    }
    DataAction a;
    a.status = DataStatus::Keep;
    return a;
  }
  size_t bound() const override { return bound_; }
  size_t kept() const override { return evbuffer_get_length(held_.b); }
  void release(evbuffer* out) override { evbuffer_add_buffer(out, held_.b); }
  size_t overrun_ = 0;  // a broken filter: keeps this much beyond its bound

 private:
  Buf held_;
  size_t bound_, decideAt_;
  bool decided_ = false;
};

// Replaces the response once it sees a marker in the body (an antivirus verdict, say).
class ReplaceOnMarker final : public ResponseFilter {
 public:
  DataAction onData(evbuffer* piece, bool) override {
    if (evbuffer_search(piece, "EICAR", 5, nullptr).pos < 0) return {};
    DataAction a;
    a.status = DataStatus::Replace;
    a.answer = {403, Reason::ReputationBlock, "malware in the body"};
    return a;
  }
};

// Holds the response head until its verdict (the sandbox's hold mode).
class HoldHead final : public ResponseFilter {
 public:
  HeadAction begin(const http::RequestHead&, const http::ResponseHead&) override {
    HeadAction a;
    a.status = HeadStatus::Hold;
    return a;
  }
};
}  // namespace

TEST(FilterChain, FiltersRunInOrderAndTheFirstThatDropsAFieldWins) {
  auto req = request("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\nUser-Agent: x\r\nConnection: close\r\n\r\n");
  ForwardRequestHeaders fwd;
  fwd.setVia("gw");
  Rename rename;
  FilterList<RequestFilter> chain;
  chain.add(&fwd);
  chain.add(&rename);
  for (RequestFilter* f : chain) f->begin(req);
  std::string out;
  HeadWriter w(out);
  writeFields(chain, req.headers, w);
  EXPECT_EQ(out, "User-Agent: corp\r\nVia: 1.1 gw\r\nX-Filtered: 1\r\n");
}

TEST(FilterChain, AListHoldsAtMostItsInlineCapacity) {
  Rename r;
  FilterList<RequestFilter> chain;
  for (size_t i = 0; i < FilterList<RequestFilter>::kMaxFilters; ++i) EXPECT_TRUE(chain.add(&r));
  EXPECT_FALSE(chain.add(&r));
  EXPECT_EQ(chain.size(), FilterList<RequestFilter>::kMaxFilters);
}

TEST(FilterChain, AHoldingFilterSaysHoldAtTheHead) {
  HoldHead hold;
  auto req = request("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
  auto resp = response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");
  EXPECT_EQ(hold.begin(req, resp).status, HeadStatus::Hold);
}

TEST(BodyChain, AFilterThatKeepsHoldsUpToItsBoundThenReleasesInOrder) {
  KeepPrefix keep(/*bound=*/10, /*decideAt=*/8);
  FilterList<ResponseFilter> filters;
  filters.add(&keep);
  BodyChain chain(filters);
  Buf piece;
  piece.add("abcd");
  EXPECT_EQ(chain.run(piece.b, false).status, DataStatus::Keep);  // kept, nothing goes on yet
  EXPECT_EQ(evbuffer_get_length(piece.b), 0u);
  EXPECT_EQ(chain.kept(), 4u);
  EXPECT_FALSE(chain.full());
  piece.add("efghij");  // reaches its decision at 8: released, in order, with the rest
  EXPECT_EQ(chain.run(piece.b, false).status, DataStatus::Continue);
  EXPECT_EQ(drain(piece.b), "abcdefghij");
  EXPECT_EQ(chain.kept(), 0u);
  piece.add("klm");  // decided: streams through
  EXPECT_EQ(chain.run(piece.b, true).status, DataStatus::Continue);
  EXPECT_EQ(drain(piece.b), "klm");
}

TEST(BodyChain, AtItsBoundTheChainIsFullSoTheConnectionStopsReading) {
  KeepPrefix keep(/*bound=*/6, /*decideAt=*/100);
  FilterList<ResponseFilter> filters;
  filters.add(&keep);
  BodyChain chain(filters);
  Buf piece;
  piece.add("0123456789");
  EXPECT_EQ(chain.run(piece.b, false).status, DataStatus::Keep);
  EXPECT_EQ(chain.kept(), 6u);
  EXPECT_TRUE(chain.full()) << "the relay pauses the origin here";
  EXPECT_EQ(drain(piece.b), "6789") << "what the filter could not take waits with the caller, unsent";
}

TEST(BodyChain, AFilterKeepingBeyondItsBoundIsRefusedNotBuffered) {
  KeepPrefix keep(/*bound=*/4, /*decideAt=*/100);
  keep.overrun_ = 3;
  FilterList<ResponseFilter> filters;
  filters.add(&keep);
  BodyChain chain(filters);
  Buf piece;
  piece.add("0123456789");
  DataAction a = chain.run(piece.b, false);
  EXPECT_EQ(a.status, DataStatus::Replace);
  EXPECT_EQ(a.answer.status, 502);
  EXPECT_EQ(a.answer.detail, "a response filter kept 7 bytes, more than its bound of 4");
}

TEST(BodyChain, KeepingTheEndWithoutDecidingIsRefused) {
  class Undecided final : public ResponseFilter {
    DataAction onData(evbuffer*, bool) override {
      DataAction a;
      a.status = DataStatus::Keep;
      return a;
    }
  } undecided;
  FilterList<ResponseFilter> filters;
  filters.add(&undecided);
  BodyChain chain(filters);
  Buf piece;
  EXPECT_EQ(chain.run(piece.b, true).status, DataStatus::Replace);
}

TEST(BodyChain, AFilterReplacesTheResponseAndLaterFiltersSeeNothing) {
  ReplaceOnMarker av;
  KeepPrefix after(/*bound=*/100, /*decideAt=*/1);
  FilterList<ResponseFilter> filters;
  filters.add(&av);
  filters.add(&after);
  BodyChain chain(filters);
  Buf piece;
  piece.add("clean bytes ");
  EXPECT_EQ(chain.run(piece.b, false).status, DataStatus::Continue);
  EXPECT_EQ(drain(piece.b), "clean bytes ");
  piece.add("X5O!P%@AP EICAR-STANDARD");
  DataAction a = chain.run(piece.b, false);
  EXPECT_EQ(a.status, DataStatus::Replace);
  EXPECT_EQ(a.answer.status, 403);
  EXPECT_EQ(a.answer.detail, "malware in the body");
  EXPECT_EQ(after.kept(), 0u);
}
