// One downstream connection and the exchange in flight on it.
//
// States (each line says what is true in it):
//   ReadHead  waiting for or reading a request head; no exchange upstream; timer = client idle
//             (between requests) or request-header deadline (from the first byte)
//   Judge     a reputation lookup in flight in Redis (before Resolve, before Connect, or before
//             an intercepted request goes up); client reads ignored; timer = deadline backstop
//   Resolve   name lookup in flight; client reads paused; timer = connect deadline
//   Connect   upstream TCP connect in flight; client reads paused; timer = connect deadline
//   Relay     request head sent; request body and response stream with watermarks; timer =
//             first-byte deadline until the response head, then idle
//   Tunnel    CONNECT answered 200; opaque bytes both ways; timer = tunnel idle
//   TlsBlockHello  a blocked CONNECT was answered 200; waiting for the ClientHello to mint a leaf
//             for; then TLS with the client and every request inside gets the block page
//   BumpHello an allowed CONNECT was answered 200 (origin TCP connected); waiting for the
//             ClientHello (peeked, never consumed) to decide tunnel | intercept | block;
//             timer = request-header deadline
//   BumpUpstream  TLS handshake with the origin in flight (SNI from the hello), then chain
//             verification, possibly waiting for an AIA fetch; client reads paused; timer = connect
//             deadline. Success mints a leaf and takes the client's TLS (-> ReadHead, bumped);
//             failure shows the certificate-error page over TLS.
//   H2        an intercepted client speaks HTTP/2 (ALPN h2): h2_ owns the protocol; every stream is a
//             request on an inner ClientConn (a bufferevent pair, in bump mode); timer = client idle
//   Drain     a final response is queued; no more requests; output flushed, write side shut,
//             then the input is discarded briefly before close (so the client reads our answer)
//   Closed    callbacks detached; waiting in the worker's deferred-delete queue
// HTTP: ReadHead -> Resolve -> Connect -> Relay -> ReadHead. CONNECT: ReadHead -> Resolve ->
// Connect -> Tunnel, or with interception -> BumpHello -> (Tunnel | BumpUpstream -> ReadHead).
// Inside an intercepted connection (bump_ set) a request goes ReadHead -> Relay on a pooled,
// verified TLS upstream, or ReadHead -> Connect -> BumpUpstream -> Relay when none is idle. A refusal or failure goes to Drain; a pooled upstream skips Connect.
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
#include "proxy/net/address.h"
#include "proxy/server/admit.h"
#include "proxy/server/bev_io.h"
#include "proxy/server/body_pump.h"
#include "proxy/server/h2/h2_session.h"
#include "proxy/server/judge.h"
#include "proxy/server/metrics.h"
#include "proxy/server/origin_handshake.h"
#include "proxy/server/relay.h"
#include "proxy/server/tunnel.h"
#include "proxy/server/splice_tunnel.h"
#include "reputation/embedded_store.h"
#include "reputation/policy.h"
#include "reputation/redis_store.h"

namespace sekisho::server {

class Worker;

enum class ConnState : uint8_t {
  ReadHead, Judge, Resolve, Connect, Relay, Tunnel, TlsBlockHello, BumpHello, BumpUpstream, H2, Drain, Closed
};


class ClientConn final : private RelayLink, private TunnelLink {
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
  friend class Worker;  // the idle list (Worker::markIdle), closing an idle connection, findJudge
  struct Exchange;

  // libevent trampolines
  static void clientReadCb(bufferevent*, void* arg);
  static void clientWriteCb(bufferevent*, void* arg);
  static void clientEventCb(bufferevent*, short what, void* arg);
  static void upReadCb(bufferevent*, void* arg);
  void pokeUpstream();  // see pokeTlsPending in client_conn.cc
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
  static void upWriteCb(bufferevent*, void* arg);
  static void upEventCb(bufferevent*, short what, void* arg);
  static void timerCb(evutil_socket_t, short, void* arg);

  void onClientReadable() noexcept;
  void onClientDrained() noexcept;
  void onClientEvent(short what) noexcept;
  void onUpstreamReadable() noexcept;
  void onUpstreamDrained() noexcept;
  void onUpstreamEvent(short what) noexcept;
  void onTimer() noexcept;

  void readHead();
  void handleRequest(http::RequestHead head);
  void onResolved(Result<std::vector<net::SocketAddr>> answer);
  void connectUpstream();
  void checkReputation(const std::vector<net::SocketAddr>* addrs, std::function<void()> next);
  void startResolve();
  void onUpstreamConnected();
  void useH2Channel(BevPtr ch, bool reused);
  void startTunnel();
  void serveSelf();
  // `extraHeaders`: whole lines, each ending in CRLF.
  void respondLocal(int status, std::string_view contentType, std::string_view body, bool keepAlive,
                    std::string_view extraHeaders = {});
  void answerMaxForwards(AdmitAction what);
  bool interceptPossible() const;
  void onBumpHello(bool timedOut);
  void enterTunnelAfterHello(std::string_view why);
  void startOriginTls();
  void onOriginTls(OriginHandshake::Outcome o);
  void finishBump(SSL* upSsl);
  void bumpFailed(int status, Reason reason, const std::string& detail);
  void originNeedsClientCert();
  bool wrapClientTls(SSL* ssl);
  bool clientAlpnIsH2() const;
  void startH2();
  void endH2();
  void trimIdleBuffers();
  void smallReadsUntilData();
  size_t bufLimit() const;  // buffer high-water mark per direction (smaller for HTTP/2 streams)
  static void onH2Resume(evutil_socket_t, short, void* arg);
  struct ConnRef {  // a connection named for a later callback: it may be gone by then
    Worker* w;
    uint64_t id;
  };
  static void onConnectRetry(evutil_socket_t, short, void* arg);
  bool clientIsTls() const;
  void startTlsBlock(const std::string& reason);
  void onTlsBlockHello();
  bool tlsRecordsQueued() const;
  std::string shownUrl() const;
  void enterReadHead();
  void beginInsideTunnel();  // a CONNECT's connection, TLS set up, starts reading the requests inside
  void enterDrain();
  void close();
  bool reclaimIfIdle();  // Worker::reclaimIdle
  void logExchange();
  void setState(ConnState s);
  const net::SocketAddr& localAddr() const;
  void freeUpstream();
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
  bool tlsBlock_ = false;        // the client side is TLS on a minted leaf; requests get the block page
  std::string tlsBlockReason_, tlsBlockHost_;
  uint16_t tlsBlockPort_ = 443;
  uint16_t tlsDenyStatus_ = 403;                    // what the page over TLS says (block, cert error)
  Reason tlsDenyReason_ = Reason::ReputationBlock;
  // An intercepted CONNECT, for the rest of the client connection.
  struct Bump {
    std::string host;        // the name (or IP) requests must address: SNI, else the CONNECT host
    uint16_t port = 443;
    net::SocketAddr dest;    // the origin address the CONNECT resolved to
    std::string poolKey;     // UpstreamPool::tlsKey(dest, SNI): verified connections to reuse
    bool clientHandshakeDone = false;
  };
  std::unique_ptr<Bump> bump_;
  std::unique_ptr<h2::H2Session> h2_;
  bool inner_ = false;  // an HTTP/2 stream's connection (no socket of its own)
  Judge judge_;  // this connection's reputation lookups (judge.h)
  std::string bumpName_;        // the name a CONNECT's ClientHello decided to mint for (and verify)
  bool fallbackTunnel_ = false; // reconnecting in plain TCP to tunnel the client's own hello
  bool helloOffersH2_ = false;  // the intercepted client's ClientHello offered h2 (ALPN)
  // A CONNECT answered before its origin connection exists (a verified one was idle in the pool
  // for the host): what to do once the hello decided and a new connection is needed after all.
  enum class AfterConnect : uint8_t { Hello, Bump, Tunnel };
  AfterConnect afterConnect_ = AfterConnect::Hello;
  std::string tunnelWhy_;
  bool lingering_ = false;       // Drain: our answer is out and the write side is shut
  uint16_t drainPolls_ = 0;  // Drain over TLS: how often the timer looked for records still queued
  size_t headScanned_ = 0;
  uint64_t lastActivityMs_ = 0;
  uint64_t timerDueMs_ = 0;
  uint64_t readHeadDueMs_ = 0;  // when waiting for a request head ends (the timer may wake earlier)
  bool idleTrimmed_ = false;    // the client TLS filter reads kTlsIdleRead at most until data comes
};

}  // namespace sekisho::server
