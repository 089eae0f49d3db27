// Bump: the TLS interception of a CONNECT, from the ClientHello to the requests inside.
//
//   hello      the 200 is out; the ClientHello is peeked (never consumed) and decides, with the
//              SNI's reputation, no_intercept and what was remembered (tls-mitm/bump_decision.h):
//              tunnel | intercept | block. A tunnel gets the original bytes untouched.
//   origin     intercept: the origin's TLS is verified (origin_handshake.h, in
//              ConnState::BumpUpstream), or an idle verified connection is reused. An origin
//              that asks for a client certificate is remembered and the client's own TLS is
//              tunnelled to it on a new connection.
//   mint       a leaf copied from the verified origin certificate (cached), never stronger in
//              protocol than the origin, h2 offered when configured; the client's TLS is taken
//              on it and the connection reads requests inside (ClientConn::beginInsideTunnel).
//   deny       a blocked host, or an origin that failed verification or the handshake: the
//              client still gets TLS, on a leaf minted for the name it asked for, and every
//              request inside gets the page that says why (denyInside()): the browser shows it
//              instead of a connection error, and no origin is contacted.
//
// One Bump per client connection that CONNECTs with interception possible; it owns the hello
// state of the CONNECT, the origin the connection was opened for once bumped (origin()), and
// the deny state. It asks the connection for the rest through BumpLink.
#pragma once
#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/base/handles.h"
#include "proxy/http/message.h"
#include "proxy/net/address.h"
#include "proxy/server/admit.h"
#include "proxy/server/conn_state.h"
#include "proxy/server/exchange.h"
#include "proxy/server/filter.h"
#include "proxy/server/metrics.h"
#include "proxy/server/origin_handshake.h"
#include "reputation/policy.h"

namespace sekisho::server {

class Worker;

// The origin an intercepted connection was opened and verified for: every request inside must
// address it (admit.h), and its verified connections are pooled under poolKey.
struct BumpedOrigin {
  std::string host;        // the name (or IP) requests must address: SNI, else the CONNECT host
  uint16_t port = 443;
  net::SocketAddr dest;    // the origin address the CONNECT resolved to
  std::string poolKey;     // UpstreamPool::tlsKey(dest, SNI): verified connections to reuse
  bool clientHandshakeDone = false;
};

// What the bump asks of the connection it runs on (ClientConn).
class BumpLink {
 public:
  virtual Worker& worker() = 0;
  virtual bufferevent* clientBev() = 0;
  virtual const std::string& clientIp() = 0;
  virtual int64_t nowSeconds() = 0;
  virtual const http::RequestHead& request() = 0;  // the CONNECT
  virtual ExchangeRecord& record() = 0;
  virtual UpstreamLeg& upstream() = 0;
  virtual void dropUpstream() = 0;                   // the origin connection is not needed
  virtual void connectOrigin() = 0;                  // a new connection to upstream().dest's list
  virtual void attach(bufferevent* up) = 0;          // the connection's callbacks on `up`
  virtual uint64_t connId() const = 0;
  virtual bool peerIsLoopback() const = 0;
  virtual void enterState(ConnState s, std::chrono::milliseconds deadline) = 0;
  virtual bool wrapClientTls(SSL* ssl) = 0;          // takes `ssl`; false: the connection is lost
  virtual void beginInsideTunnel() = 0;              // TLS is up: read the requests inside
  virtual void tunnelAfterHello(std::string_view why) = 0;
  virtual void logExchange() = 0;
  virtual void close() = 0;
  // The reputation of the name the hello asks for: false while the store has not answered
  // (`resume` runs when it has); `out` is the decision, nullopt when nothing matched.
  virtual bool judgeHelloSni(const std::string& name, std::function<void()> resume,
                             std::optional<reputation::Decision>* out) = 0;

 protected:
  ~BumpLink() = default;
};

class Bump {
 public:
  explicit Bump(BumpLink& link) : link_(link) {}
  // An HTTP/2 stream's connection: bumped from the start, for `origin`.
  Bump(BumpLink& link, BumpedOrigin origin) : link_(link), origin_(std::move(origin)) {}
  Bump(const Bump&) = delete;
  Bump& operator=(const Bump&) = delete;

  // Interception is configured and possible (CA, TLS contexts, tls.intercept).
  static bool possible(const Worker& w);

  // The CONNECT's origin TCP connection is up (or one was idle for it): the step that waits for
  // it runs now, the hello first of all.
  void onOriginConnected();
  // True until the hello decided something that needs the connection (answering a CONNECT
  // before its connection exists is only right before the hello was read).
  bool waitingForHello() const { return after_ == After::Hello && !fallbackTunnel_; }
  void onHello(bool timedOut);   // BumpHello: client bytes came, or the deadline passed
  void onOriginServesFirst();    // BumpHello: the origin spoke first (SSH, SMTP): a plain tunnel
  void onOriginTlsEvent(short what);  // BumpUpstream: an event on the handshaking connection
  void onOriginTlsTimeout();          // BumpUpstream: the connect deadline passed
  // The origin is verified (a new handshake, a pooled connection or an h2 connection): mint,
  // take the client's TLS, and read requests inside.
  void onOriginVerified(SSL* upSsl);
  void onOriginWantsClientCert();  // only the client can answer: a new connection, tunnelled
  // Interception failed (certificate, handshake, timeout): the page over TLS says `detail`.
  void fail(int status, Reason reason, const std::string& detail);
  // A blocked CONNECT (reputation before connecting): answer 200 and show the page over TLS.
  void block(const std::string& reason);
  void onDenyHello();            // TlsBlockHello: the hello to mint the deny leaf for
  // The client refused the leaf we minted (an app that pins its server's key, a device without
  // the CA): remembered for this client and host, so the next connection is tunnelled.
  void onClientRejectedLeaf(bufferevent* client);

  const BumpedOrigin* origin() const { return origin_ ? &*origin_ : nullptr; }
  BumpedOrigin* origin() { return origin_ ? &*origin_ : nullptr; }
  // Inside a denied connection every request gets this answer; nullopt when not denied.
  std::optional<LocalAnswer> denyInside() const;
  // The origin a request inside names, for the URL shown on pages and in the log.
  std::optional<BumpedFor> shownOrigin() const;
  const std::string& helloName() const { return name_; }  // the name the hello decided to mint for
  bool helloOffersH2() const { return offersH2_; }

 private:
  void startHello();
  void startOriginTls();
  void onOriginTls(OriginHandshake::Outcome o);
  enum class After : uint8_t { Hello, Bump, Tunnel };  // what to do once a new connection is up

  BumpLink& link_;
  OriginHandshake handshake_;    // the CONNECT's TLS with the origin (origin_handshake.h)
  After after_ = After::Hello;
  bool fallbackTunnel_ = false;  // reconnecting in plain TCP to tunnel the client's own hello
  bool offersH2_ = false;        // the client's ClientHello offered h2 (ALPN)
  std::string name_;             // the name the hello decided to mint for (and verify)
  std::string tunnelWhy_;
  std::optional<BumpedOrigin> origin_;
  struct Deny {
    uint16_t status = 403;
    Reason reason = Reason::ReputationBlock;
    std::string detail, host;
    uint16_t port = 443;
  };
  std::optional<Deny> deny_;     // set once the deny leaf is up
  Deny pendingDeny_;             // what the page will say, until then
};

}  // namespace sekisho::server
