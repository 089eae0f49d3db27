// One downstream connection and the exchange in flight on it: the socket, the state enum with
// its invariants (conn_state.h), the timers, and handing over from one phase of the request path
// to the next (docs/REQUEST_PATH.md). What each phase decides lives in the phase:
//   admit.h            refusals that need no I/O          judge.h   every reputation lookup
//   relay.h            one HTTP exchange, both bodies      tunnel.h  opaque bytes, splice(2)
//   bump.h             TLS interception of a CONNECT       origin_handshake.h  origin TLS, verified
//   h2/                HTTP/2 on either side (h2_front.h: an HTTP/2 client connection)
//   filter.h           the seam for heads and bodies        exchange.h  data more than one phase writes
#pragma once
#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/base/handles.h"
#include "proxy/http/message.h"
#include "proxy/server/client_counts.h"
#include "proxy/server/conn_state.h"
#include "proxy/net/address.h"
#include "proxy/server/admit.h"
#include "proxy/server/bev_io.h"
#include "proxy/server/body_pump.h"
#include "proxy/server/bump.h"
#include "proxy/server/h2/h2_front.h"
#include "proxy/server/judge.h"
#include "proxy/server/local_pages.h"
#include "proxy/server/metrics.h"
#include "proxy/server/origin_handshake.h"
#include "proxy/server/relay.h"
#include "proxy/server/tunnel.h"
#include "proxy/server/upstream.h"
#include "proxy/server/splice_tunnel.h"
#include "reputation/embedded_store.h"
#include "reputation/policy.h"
#include "reputation/redis_store.h"

namespace sekisho::server {

class Worker;



class ClientConn final : private RelayLink, private TunnelLink, private BumpLink, private UpstreamLink,
                         private h2::H2FrontLink {
 public:
  ClientConn(Worker& worker, uint64_t id, evutil_socket_t fd, const net::SocketAddr& peer, bool allowed);
  // An inner connection of an HTTP/2 session: `bev` is its end of a bufferevent pair, and every
  // request on it addresses `target` (the intercepted origin), as inside a bumped HTTP/1.1 connection.
  ClientConn(Worker& worker, uint64_t id, BevPtr bev, const h2::InnerTarget& target);
  ~ClientConn();
  ClientConn(const ClientConn&) = delete;
  ClientConn& operator=(const ClientConn&) = delete;

  void start();
  // Shutdown: an idle connection closes now; a busy one closes after its current exchange.
  void onShutdown();
  uint64_t id() const { return id_; }
  ConnState state() const { return state_; }

 private:
  friend class Worker;  // the idle list (Worker::markIdle), closing an idle connection, findJudge/findUpstream
  struct Exchange;

  // libevent trampolines
  static void clientReadCb(bufferevent*, void* arg);
  static void clientWriteCb(bufferevent*, void* arg);
  static void clientEventCb(bufferevent*, short what, void* arg);
  static void upReadCb(bufferevent*, void* arg);
  void pokeUpstream();  // see pokeTlsPending in bev_io.h
  bool streamingResponse() const;  // a response body is being relayed and the client has room
  void startRelay();
  // RelayLink (relay.h): what the relay asks of this connection.
  Worker& worker() override { return w_; }
  bufferevent* clientBev() override { return client_.get(); }
  bufferevent* upstreamBev() override;
  bool upstreamIsH2Channel() const override;
  size_t bufferLimit() const override { return bufLimit(); }
  void armTimer(std::chrono::milliseconds ms) override;
  void touch() override;
  bool closing() const override { return closeAfter_; }
  void closeAfter(bool linger) override;
  void noteResponse(int status, std::string_view contentType, uint64_t headBytes) override;
  void respondError(int status, Reason reason, std::string_view detail) override;
  void abortExchange(Reason reason, std::string_view detail) override;
  void relayDone(bool upstreamReusable) override;
  void upgraded() override;
  // TunnelLink (tunnel.h).
  void tunnelOver() override { close(); }
  SniVerdict judgeTunnelSni(const std::string& sni, std::function<void()> resume) override;
  // BumpLink (bump.h).
  const std::string& clientIp() override { return peerIp(); }
  int64_t nowSeconds() override { return int64_t(nowMs() / 1000); }
  const http::RequestHead& request() override;
  ExchangeRecord& record() override;
  UpstreamLeg& upstream() override;
  void dropUpstream() override { freeUpstream(); }
  void connectOrigin() override;
  void enterState(ConnState s, std::chrono::milliseconds deadline) override;
  bool wrapClientTls(SSL* ssl) override;
  // After a CONNECT's 2xx: the TLS inside is up, requests are read by their own rules.
  void beginInsideTunnel() override;
  void tunnelAfterHello(std::string_view why) override;
  void logExchange() override;
  void close() override;
  bool judgeHelloSni(const std::string& name, std::function<void()> resume,
                     std::optional<reputation::Decision>* out) override;
  Bump& bumpPhase();                   // made on first use
  // UpstreamLink (upstream.h).
  const BumpedOrigin* bumped() const override;  // the origin this connection was intercepted for, or null
  uint64_t connId() const override { return id_; }
  bool isH2Stream() const override { return inner_; }
  const std::shared_ptr<uint64_t>& h2WindowBudget() const override { return windowBudget_; }
  bool peerIsLoopback() const override { return peer_.isLoopback(); }
  void attach(bufferevent* up) override;
  void judgeAddresses(const std::vector<net::SocketAddr>& addrs, std::function<void()> next) override;
  bool mayAnswerConnectEarly() override;
  void answerConnectEarly() override { startTunnel(); }
  void upstreamReady() override { onUpstreamConnected(); }
  static void upWriteCb(bufferevent*, void* arg);
  static void upEventCb(bufferevent*, short what, void* arg);
  static void timerCb(evutil_socket_t, short, void* arg);

  void onClientReadable() noexcept;
  void onClientDrained() noexcept;
  void onClientEvent(short what) noexcept;
  void onUpstreamReadable() noexcept;
  void onUpstreamDrained() noexcept;
  void onUpstreamEvent(short what) noexcept;
  void onOriginTlsEvent(short what);
  void onTimer() noexcept;

  void readHead();
  void handleRequest(http::RequestHead head);
  void checkReputation(const std::vector<net::SocketAddr>* addrs, std::function<void()> next);
  void onUpstreamConnected();
  void startTunnel();
  void enterTunnel(const std::string& connectHost);  // Tunnel state, its deadline, and tunnel.start
  void serveSelf();
  void writeAnswer(std::string_view head, std::string_view body);
  void respondLocal(const LocalPage& page);  // keeps the connection unless closeAfter_
  void answerMaxForwards(AdmitAction what);
  bool clientAlpnIsH2() const;
  void startH2();
  // H2FrontLink (h2/h2_front.h).
  void idleSinceNow() override;
  void h2Over() override;
  bufferevent* ownTls() const { return inner_ ? nullptr : client_.get(); }  // TlsIdleReads
  size_t bufLimit() const;  // buffer high-water mark per direction (smaller for HTTP/2 streams)
  bool clientIsTls() const;
  bool tlsRecordsQueued() const;
  std::string shownUrl() const;
  void enterReadHead();
  void enterDrain();
  bool reclaimIfIdle();  // Worker::reclaimIdle
  void setState(ConnState s);
  const net::SocketAddr& localAddr() const;
  void freeUpstream();
  std::unique_ptr<Exchange> newExchange();
  Upstream* upstreamIn(ConnState s);  // the exchange's upstream phase while in `s` (Worker::findUpstream)
  Bump* bumpIn(ConnState s);          // the bump while its CONNECT is in `s` (Worker::findBump)
  uint64_t nowMs() const;

  Worker& w_;
  uint64_t id_;
  net::SocketAddr peer_;
  mutable net::SocketAddr local_;  // our end of the connection; read on first use (localAddr)
  BevPtr client_;
  EventPtr timer_;
  std::unique_ptr<Exchange> ex_;
  ConnState state_ = ConnState::ReadHead;
  bool allowed_;
  bool headStarted_ = false;   // a byte of the current request head has arrived
  std::shared_ptr<uint64_t> windowBudget_;  // an HTTP/2 stream's: its session's (h2::InnerTarget)
  std::shared_ptr<ClientCounts> countedIn_;  // this connection is counted there (Worker::accept)
  std::string peerIp_;         // peer_ as text, made once (peerIp())
  const std::string& peerIp() {
    if (peerIp_.empty()) peerIp_ = peer_.ipString();
    return peerIp_;
  }
  bool idleListed_ = false;    // in the worker's list of idle connections (Worker::markIdle)
  std::list<ClientConn*>::iterator idleIt_;
  bool firstRequest_ = true;
  bool closeAfter_ = false;    // no further requests on this connection
  bool linger_ = false;        // Drain reads and discards before closing (client bytes may be unread)
  std::unique_ptr<Bump> bump_;  // the TLS interception of a CONNECT, once one began (bump.h)
  std::unique_ptr<h2::H2Front> h2_;  // the client chose HTTP/2 (h2/h2_front.h)
  bool inner_ = false;  // an HTTP/2 stream's connection (no socket of its own)
  Judge judge_;  // this connection's reputation lookups (judge.h)
  bool lingering_ = false;       // Drain: our answer is out and the write side is shut
  uint16_t drainPolls_ = 0;  // Drain over TLS: how often the timer looked for records still queued
  size_t headScanned_ = 0;
  uint64_t lastActivityMs_ = 0;
  uint64_t timerDueMs_ = 0;
  uint64_t readHeadDueMs_ = 0;  // when waiting for a request head ends (the timer may wake earlier)
  TlsIdleReads idleReads_;      // the client TLS filter's reads between requests (bev_io.h)
};

}  // namespace sekisho::server
