// Upstream: the origin connection of one exchange. Resolve the name, admit each address
// (admit.h: not this proxy, not its loopback or link-local networks for remote clients, not its
// admin listener), have the addresses judged, then reuse a pooled connection (plain, verified
// TLS, or a stream on an HTTP/2 origin connection) or connect, trying up to three addresses, and
// making room when out of descriptors. For a request inside an intercepted connection a new
// connection is verified TLS before it is used (startTls, origin_handshake.h): a certificate
// that fails is the page, an origin that asks for a client certificate is remembered (the next
// CONNECT to it is tunnelled), and one that chose h2 becomes the worker's HTTP/2 connection to it.
//
// After a reused connection dies unanswered, only what may be sent twice is sent again (RFC 9112
// §9.3.1): idempotent methods, or a request the origin provably never saw (retryAfterDeath).
//
// It works on the exchange's UpstreamLeg (exchange.h) and asks the connection through
// UpstreamLink; callbacks of the origin bufferevent are the connection's (attach), which hands
// their events back here while it is in Resolve, Connect or BumpUpstream.
#pragma once
#include <event2/bufferevent.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/base/result.h"
#include "proxy/http/message.h"
#include "proxy/server/bump.h"
#include "proxy/server/conn_state.h"
#include "proxy/server/exchange.h"
#include "proxy/server/origin_handshake.h"

namespace sekisho::server {

class Worker;

class UpstreamLink {
 public:
  virtual Worker& worker() = 0;
  virtual uint64_t connId() const = 0;
  virtual const http::RequestHead& request() = 0;
  virtual const BumpedOrigin* bumped() const = 0;        // inside an intercepted connection
  virtual bool isH2Stream() const = 0;                   // an HTTP/2 client's stream
  virtual const std::shared_ptr<uint64_t>& h2WindowBudget() const = 0;
  virtual bool peerIsLoopback() const = 0;
  virtual size_t bufferLimit() const = 0;                // high-water mark per direction
  virtual void attach(bufferevent* up) = 0;              // the connection's callbacks on `up`
  virtual void enterState(ConnState s, std::chrono::milliseconds deadline) = 0;
  virtual void respondError(int status, Reason reason, std::string_view detail) = 0;
  virtual ExchangeRecord& record() = 0;
  // The addresses' reputation (judge.h); `next` runs when they may be connected to.
  virtual void judgeAddresses(const std::vector<net::SocketAddr>& addrs, std::function<void()> next) = 0;
  // An intercepted CONNECT that may be answered before its connection exists (its hello not read
  // yet), and answering it when its origin has a verified connection idle here.
  virtual bool mayAnswerConnectEarly() = 0;
  virtual void answerConnectEarly() = 0;
  virtual void upstreamReady() = 0;                      // `up` is connected (or reused): go on

 protected:
  ~UpstreamLink() = default;
};

class Upstream {
 public:
  Upstream(UpstreamLink& link, UpstreamLeg& leg) : link_(link), leg_(leg) {}
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  void resolve();  // the request's host, then admitAddress and the judge, then connect()
  void onResolved(Result<std::vector<net::SocketAddr>> answer);
  void connect();  // pooled or new, to leg.addrs[leg.addrIndex]
  void onConnectFailed(short what);  // Connect: the next address, or the page
  void onTimeout();                  // Resolve or Connect: the connect deadline passed (504)
  void useH2Channel(BevPtr ch, bool reused);
  // A new connection inside an intercepted one: TLS with the origin, verified (BumpUpstream),
  // then upstreamReady() with leg.upTls set.
  void startTls();
  void onTlsEvent(short what);  // BumpUpstream: an event on the handshaking connection
  void onTlsTimeout();          // BumpUpstream: the connect deadline passed
  // A reused connection died before any response: true when the request went out again (the
  // caller's relay starts over); false with `why` for the page.
  bool retryAfterDeath(bool eof, uint64_t requestBodyBytes, std::string* why);
  void release();  // the exchange no longer needs the origin connection
  static void onConnectRetry(evutil_socket_t, short, void* arg);

 private:
  void onTls(OriginHandshake::Outcome o);

  UpstreamLink& link_;
  UpstreamLeg& leg_;
  OriginHandshake handshake_;
};

}  // namespace sekisho::server
