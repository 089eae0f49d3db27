// OriginHandshake: TLS towards an origin and the verification of what it presents (chain, name,
// validity, strength; a missing intermediate fetched from its AIA URL), for an intercepted
// CONNECT before its leaf is minted and for a request inside an intercepted connection that
// needs a new origin connection. Never weaker than a browser: anything but a verified chain for
// the name is a failure with a page that says why.
//
// It owns the name being verified and the AIA hops taken, and answers each event with an
// Outcome; the phase that started it acts on it (the bump for a CONNECT, bump.h; the upstream for
// a request inside, upstream.h; ConnState::BumpUpstream while it runs): Verified (the SSL is
// ready), ClientCertRequested (only the client can answer: tunnel it), FetchIssuer (fetch
// `aiaUrl`, aia_fetch.h, then verify() again), Failed (status, reason and the words for the page).
#pragma once
#include <event2/bufferevent.h>

#include <cstdint>
#include <ctime>
#include <string>

#include "proxy/base/handles.h"
#include "proxy/net/address.h"
#include "proxy/server/exchange.h"
#include "proxy/server/metrics.h"

namespace sekisho::server {

class Worker;

class OriginHandshake {
 public:
  struct Outcome {
    enum class Kind : uint8_t { Verified, ClientCertRequested, FetchIssuer, Failed };
    Kind kind = Kind::Failed;
    int status = 502;
    Reason reason = Reason::UpstreamTlsFailed;
    std::string what;    // Failed: for the page, in plain words (certificates: what [code] detail)
    std::string aiaUrl;  // FetchIssuer
  };

  // The socket of the connected `tcp` moves, without being closed or duplicated, to a new
  // OpenSSL bufferevent that starts the handshake for `name` (SNI unless it is an IP); h2 is
  // offered when `offerH2`. Null when TLS could not start (the socket is closed then).
  BevPtr start(Worker& w, BevPtr tcp, const std::string& name, const net::SocketAddr& dest, bool offerH2);
  Outcome onConnected(Worker& w, bufferevent* tls, const net::SocketAddr& dest);  // BEV_EVENT_CONNECTED
  Outcome onFailed(bufferevent* tls, short what, const net::SocketAddr& dest);    // an error or EOF event
  Outcome verify(Worker& w, bufferevent* tls, const net::SocketAddr& dest);      // again after an AIA fetch
  const std::string& name() const { return name_; }

  // start() on leg.up (a connected TCP connection), which becomes the TLS bufferevent, tuned for
  // `bufferBytes` with reads and writes on; the caller sets its callbacks. False when TLS could
  // not start (leg.up is gone then).
  bool begin(Worker& w, UpstreamLeg& leg, const std::string& name, bool offerH2, size_t bufferBytes);
  // An event on leg.up while the handshake runs: BEV_EVENT_CONNECTED, or an error or EOF.
  Outcome onEvent(Worker& w, UpstreamLeg& leg, short what);
  // ClientCertRequested: later connections to `hostPort` are tunnelled at once, for a while.
  static void rememberClientCert(Worker& w, const std::string& hostPort, time_t now);

 private:
  std::string name_;
  uint8_t aiaFetches_ = 0;
};

}  // namespace sekisho::server
