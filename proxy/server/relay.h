// Relay: one HTTP exchange streaming between the client and an origin connection that is ready
// (plain, verified TLS, or a channel to an HTTP/2 origin connection): the request head through
// its filters (filter.h), the request body, the response head through its filters, the response
// body, with backpressure both ways, and what the exchange leaves for the next (is the origin
// connection reusable, must the client connection close).
//
// It owns its state (the response head, both body pumps, the paused sides, the filter chains)
// and asks its connection for everything else through RelayLink; it never reads another
// phase's state. Entered by start() once the upstream phase has a connection (ConnState::Relay);
// it ends with exactly one of RelayLink::relayDone, respondError (no response byte sent yet),
// abortExchange (some were), or upgraded (a WebSocket: the tunnel takes over).
#pragma once
#include <event2/bufferevent.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/base/handles.h"
#include "proxy/http/message.h"
#include "proxy/server/bev_io.h"
#include "proxy/server/body_pump.h"
#include "proxy/server/filter.h"
#include "proxy/server/forward_headers.h"
#include "proxy/server/metrics.h"

namespace sekisho::server {

class Worker;

// What the relay asks of the connection it runs on (ClientConn).
// upstreamBev() is never null while the relay runs.
class RelayLink : public StreamLink {
 public:
  virtual bool upstreamIsH2Channel() const = 0;
  virtual void armTimer(std::chrono::milliseconds ms) = 0;
  virtual bool closing() const = 0;         // no request will follow on the client connection
  virtual void closeAfter(bool linger) = 0; // none may: the answer ends it (linger: unread bytes)
  // The log record of the exchange: the status and content type the client got, head bytes.
  virtual void noteResponse(int status, std::string_view contentType, uint64_t headBytes) = 0;
  virtual void respondError(int status, Reason reason, std::string_view detail) = 0;
  virtual void abortExchange(Reason reason, std::string_view detail) = 0;
  virtual void relayDone(bool upstreamReusable) = 0;  // response complete, request read whole or not
  virtual void upgraded() = 0;                         // 101 sent: bytes both ways from here

 protected:
  ~RelayLink() = default;
};

class Relay {
 public:
  explicit Relay(RelayLink& link) : link_(link) {}
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Sends the request head (origin-form, our Host, through the request filters) and starts the
  // body. `maxForwards`: a TRACE/OPTIONS Max-Forwards to pass on less one, or -1. Called again
  // for a retry on a new upstream: the head is written anew, the filters are built once.
  void start(const http::RequestHead& req, int64_t maxForwards);

  void onClientReadable();    // request body bytes
  void onClientDrained();     // the client took response bytes: resume the origin
  void onUpstreamReadable();  // response head or body bytes
  void onUpstreamDrained();   // the origin took request bytes: resume the client
  void onUpstreamEof();       // a close-delimited body ends here; anything else is cut short
  // The connection's timer, `idleForMs` after the last activity: the origin has timeouts.firstByte
  // for its response head and timeouts.idle between later bytes (the 504, or the cut), else the
  // timer is armed for what is left.
  void onTimer(uint64_t idleForMs);
  // A body streaming to the client that has room: the origin's read-ahead records can be taken now.
  bool streaming() const { return haveResp_ && !respDone_ && upPaused_ == Paused::No; }

  bool haveResponse() const { return haveResp_; }
  bool requestDone() const { return reqDone_; }
  bool responseDone() const { return respDone_; }
  bool responseKeepAlive() const { return resp_.keepAlive; }
  uint64_t requestBodyBytes() const { return reqPump_.bodyBytes(); }
  uint64_t bytesToClient() const { return filterBody_ ? bodyOut_ : respPump_.moved(); }  // framing included
  const std::string& upgrade() const { return upgrade_; }
  const http::ResponseHead& response() const { return resp_; }
  // The upstream was replaced (a retry): its pause state no longer applies.
  void upstreamGone() { upPaused_ = Paused::No; }
  // A filter of this exchange's response, after the built-in ones (call before the response
  // head arrives). One that seesBody() gets the decoded body (filter.h); the relay frames what
  // it lets through, holds the head while a filter says Hold, and stops reading the origin while
  // the filters hold their bound. False when the chain is full.
  bool addResponseFilter(ResponseFilter* f);

 private:
  void pumpRequestBody();
  void readResponse();
  void sendResponseHead();
  void pumpResponseBody(bool upstreamEnded);
  void pumpFilteredBody(bool upstreamEnded);
  void responseDone();
  void pauseOriginAtMark(evbuffer* out);
  void onFilterWake();
  void upgradeResponse();

  RelayLink& link_;
  const http::RequestHead* req_ = nullptr;
  http::ResponseHead resp_;
  bool haveResp_ = false;  // a final (non-1xx) response head was parsed
  bool reqDone_ = false;   // the request body has been fully forwarded (or there is none)
  bool respDone_ = false;
  size_t upScanned_ = 0;   // bytes of the response head already searched for its end
  BodyPump reqPump_, respPump_;
  Paused clientPaused_ = Paused::No;  // client reads paused: the origin's output is full
  Paused upPaused_ = Paused::No;      // origin reads paused: the client's output is full
  std::string upgrade_;               // a WebSocket upgrade asked for ("websocket"), passed upstream
  ForwardRequestHeaders fwdRequest_;
  ForwardResponseHeaders fwdResponse_;
  FilterList<RequestFilter> requestFilters_;
  FilterList<ResponseFilter> responseFilters_;
  FilterList<ResponseFilter> extraFilters_;  // added by the connection before the head (addResponseFilter)
  // A body some filter sees: decoded into staging_, through BodyChain, framed into the client's
  // output by the relay (outChunked_). The head waits in heldHead_ while a filter holds it.
  bool filterBody_ = false;
  bool outChunked_ = false;
  bool headHeld_ = false;
  bool bodyEnded_ = false;  // the origin's body is complete (staging_ holds its last bytes)
  bool inChain_ = false;    // pumpFilteredBody is running: a wake from inside it changes nothing
  std::string heldHead_;
  int heldStatus_ = 0;
  std::string heldContentType_;
  EvBufferPtr staging_;
  uint64_t bodyOut_ = 0;    // bytes framed to the client when filtered
};

}  // namespace sekisho::server
