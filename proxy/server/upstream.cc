#include "proxy/server/upstream.h"

#include <event2/event.h>

#include <cerrno>
#include <cstring>

#include "proxy/server/admit.h"
#include "proxy/server/aia_fetch.h"
#include "proxy/server/bev_io.h"
#include "proxy/server/worker.h"

namespace sekisho::server {

namespace {
// A request that will not be retried reuses only an origin connection parked less than this long
// ago: shorter than any common keep-alive timeout (Apache and Node.js 5 s, nginx 75 s).
constexpr std::chrono::milliseconds kUnsafeReuseWithin{2000};

struct ConnRef {  // a connection named for a later callback: it may be gone by then
  Worker* w;
  uint64_t id;
};
}  // namespace

void Upstream::resolve() {
  Worker& w = link_.worker();
  link_.enterState(ConnState::Resolve, w.config()->timeouts.connect);
  Worker* wp = &w;
  uint64_t id = link_.connId();
  w.resolver().resolve(link_.request().host, [wp, id](Result<std::vector<net::SocketAddr>> answer) {
    if (Upstream* u = wp->findUpstream(id, ConnState::Resolve)) u->onResolved(std::move(answer));
  });
}

void Upstream::onResolved(Result<std::vector<net::SocketAddr>> answer) {
  const http::RequestHead& req = link_.request();
  if (!answer) return link_.respondError(answer.error().retryable ? 504 : 502, Reason::DnsFailed, answer.error().detail);
  if (answer->empty()) return link_.respondError(502, Reason::DnsFailed, req.host + " has no address");
  leg_.addrs = std::move(*answer);
  AddressFacts af;
  af.host = req.host;
  af.peerLoopback = link_.peerIsLoopback();
  af.self = link_.worker().selfFacts();
  for (auto& a : leg_.addrs) {
    a.setPort(req.port);
    if (auto refused = admitAddress(a, af)) {
      if (refused->denied) link_.record().squidCode = "TCP_DENIED";
      return link_.respondError(refused->status, refused->reason, refused->detail);
    }
  }
  leg_.addrIndex = 0;
  // Address and CIDR rules, now that we know them.
  link_.judgeAddresses(leg_.addrs, [this] { connect(); });
}

void Upstream::connect() {
  Worker& w = link_.worker();
  const http::RequestHead& req = link_.request();
  leg_.dest = leg_.addrs[leg_.addrIndex];
  bool isConnect = req.method == "CONNECT";
  // An intercepted CONNECT whose origin already has a verified, idle TLS connection here: answer
  // now and decide on the hello; most likely that connection serves it (no origin handshake).
  if (isConnect && link_.mayAnswerConnectEarly()) {
    std::string key = UpstreamPool::tlsKey(leg_.dest, req.host);
    if (w.pool().has(key) || w.h2Origins().has(key)) return link_.answerConnectEarly();
  }
  // A request that is not idempotent is never retried (retryAfterDeath): it goes only on a
  // connection the origin cannot have timed out yet (one parked moments ago, or an h2 one the
  // origin has just been heard on, after a PING if need be).
  bool unsafe = !http::isIdempotent(req.method);
  const BumpedOrigin* origin = link_.bumped();
  // An HTTP/2 client's request goes as a stream on an HTTP/2 origin connection when there is one.
  if (!isConnect && !leg_.retried && origin && link_.isH2Stream() && w.config()->tls.http2) {
    if (h2::H2Origin* o = w.h2Origins().find(origin->poolKey))
      if (BevPtr ch = o->open(unsafe, link_.h2WindowBudget())) return useH2Channel(std::move(ch), true);
  }
  if (!isConnect && !leg_.retried) {
    UpstreamPool& pool = w.pool();
    BevPtr pooled = !unsafe  ? (origin ? pool.take(origin->poolKey) : pool.take(leg_.dest))
                    : origin ? pool.takeFresh(origin->poolKey, kUnsafeReuseWithin)
                             : pool.takeFresh(leg_.dest, kUnsafeReuseWithin);
    if (pooled) {
      leg_.up = std::move(pooled);
      leg_.upReused = true;
      leg_.upTls = origin != nullptr;
      w.metrics().upstreamReuses.fetch_add(1, std::memory_order_relaxed);
      link_.attach(leg_.up.get());
      return link_.upstreamReady();
    }
  }
  link_.enterState(ConnState::Connect, w.config()->timeouts.connect);
  leg_.upReused = false;
  leg_.up.reset(bufferevent_socket_new(w.base(), -1, BEV_OPT_CLOSE_ON_FREE));
  link_.attach(leg_.up.get());
  w.metrics().upstreamConnects.fetch_add(1, std::memory_order_relaxed);
  if (bufferevent_socket_connect(leg_.up.get(), leg_.dest.sa(), int(leg_.dest.len)) != 0) {
    int err = errno;
    release();
    // Out of descriptors: idle pooled origin connections, else the client connections idle
    // longest, make room (a client's socket closes on the loop's next turn), and the connection is
    // tried once more right after.
    if ((err == EMFILE || err == ENFILE) && !leg_.fdRetried &&
        w.freeDescriptors("out of file descriptors for an origin connection")) {
      leg_.fdRetried = true;
      timeval tv{0, 2000};
      event_base_once(w.base(), -1, EV_TIMEOUT, &Upstream::onConnectRetry, new ConnRef{&w, link_.connId()}, &tv);
      return;
    }
    link_.respondError(502, Reason::ConnectFailed,
                       "could not start a connection to " + leg_.dest.toString() + ": " + strerror(err));
  }
}

void Upstream::onConnectRetry(evutil_socket_t, short, void* arg) {
  std::unique_ptr<ConnRef> ref(static_cast<ConnRef*>(arg));
  Upstream* u = ref->w->findUpstream(ref->id, ConnState::Connect);
  if (u && !u->leg_.up) u->connect();
}

void Upstream::onConnectFailed(short what) {
  int err = EVUTIL_SOCKET_ERROR();
  std::string why = "connection to " + leg_.dest.toString() + " failed: " +
                    ((what & BEV_EVENT_ERROR) && err ? strerror(err) : "closed");
  release();
  if (++leg_.addrIndex < leg_.addrs.size() && leg_.addrIndex < 3) return connect();
  link_.respondError(502, Reason::ConnectFailed, why);
}

void Upstream::onTimeout() {
  link_.respondError(504, Reason::ConnectTimeout,
                     "no connection to " + link_.request().host + " within " +
                         std::to_string(link_.worker().config()->timeouts.connect.count() / 1000) + " s");
}

// `ch` is a channel to an HTTP/2 origin connection: it takes HTTP/1.1 like any upstream.
// `reused`: the origin connection existed before (a refused stream is then retried on a new one).
void Upstream::useH2Channel(BevPtr ch, bool reused) {
  leg_.up = std::move(ch);
  leg_.upReused = reused;
  leg_.upTls = true;
  leg_.upH2 = true;
  if (reused) link_.worker().metrics().upstreamReuses.fetch_add(1, std::memory_order_relaxed);
  link_.attach(leg_.up.get());
  link_.upstreamReady();
}

// TLS towards the origin for a request inside an intercepted connection, for the name the
// connection was verified for. h2 is offered only to an HTTP/2 client's stream: an HTTP/1.1
// client's requests go on HTTP/1.1 end to end, with no translation.
void Upstream::startTls() {
  Worker& w = link_.worker();
  bool offerH2 = w.config()->tls.http2 && link_.isH2Stream();
  if (!handshake_.begin(w, leg_, link_.bumped()->host, offerH2, link_.bufferLimit()))
    return link_.respondError(502, Reason::UpstreamTlsFailed, "could not start TLS");
  link_.attach(leg_.up.get());
  link_.enterState(ConnState::BumpUpstream, w.config()->timeouts.connect);
}

void Upstream::onTlsEvent(short what) { onTls(handshake_.onEvent(link_.worker(), leg_, what)); }

void Upstream::onTlsTimeout() {
  link_.respondError(504, Reason::UpstreamTimeout, "the site did not complete the TLS handshake in time");
}

void Upstream::onTls(OriginHandshake::Outcome o) {
  Worker& w = link_.worker();
  using Kind = OriginHandshake::Outcome::Kind;
  switch (o.kind) {
    case Kind::ClientCertRequested:
      // Only the client has one: this request gets the page; the next CONNECT is tunnelled.
      OriginHandshake::rememberClientCert(w, handshake_.name() + ":" + std::to_string(link_.bumped()->port),
                                          time(nullptr));
      release();
      return link_.respondError(502, Reason::UpstreamTlsFailed,
                                "the site asks for a client certificate; open it again and it will be passed through unopened");
    case Kind::FetchIssuer: {
      Worker* wp = &w;
      uint64_t id = link_.connId();
      fetchAiaIssuer(w, o.aiaUrl, link_.peerIsLoopback(), [wp, id](const std::string&) {
        Upstream* u = wp->findUpstream(id, ConnState::BumpUpstream);
        if (u && u->leg_.up) u->onTls(u->handshake_.verify(*wp, u->leg_.up.get(), u->leg_.dest));
      });
      return;  // the connection waits; the connect deadline still runs
    }
    case Kind::Failed:
      release();
      return link_.respondError(o.status, o.reason, o.what);
    case Kind::Verified: break;
  }
  SSL* ssl = bufferevent_openssl_get_ssl(leg_.up.get());
  if (h2::alpnIsH2(ssl)) {  // a new connection for an HTTP/2 client's request, and the origin chose h2
    bufferevent_setcb(leg_.up.get(), nullptr, nullptr, nullptr, nullptr);
    h2::H2Origin* h = w.h2Origins().add(UpstreamPool::tlsKey(leg_.dest, handshake_.name()), std::move(leg_.up));
    BevPtr ch = h ? h->open(false, link_.h2WindowBudget()) : nullptr;
    if (!ch) return link_.respondError(502, Reason::UpstreamTlsFailed, "the HTTP/2 connection to the origin could not start");
    return useH2Channel(std::move(ch), false);
  }
  leg_.upTls = true;
  link_.upstreamReady();
}

// A reused connection that the origin had already closed: retry once on a fresh one when nothing
// of the request body has been consumed and the request may be sent twice (RFC 9112 §9.3.1: an
// idempotent method; the origin may have acted on anything else before it closed), or when the
// origin cannot have seen it (an h2 stream it refused, h2_origin.h).
bool Upstream::retryAfterDeath(bool eof, uint64_t requestBodyBytes, std::string* why) {
  Worker& w = link_.worker();
  const http::RequestHead& req = link_.request();
  int err = EVUTIL_SOCKET_ERROR();
  bool bodySent = requestBodyBytes > 0;
  bool mayRepeat = http::isIdempotent(req.method) || (leg_.upH2 && w.h2Origins().unprocessed(leg_.up.get()));
  if (leg_.upReused && !leg_.retried && !bodySent && mayRepeat &&
      evbuffer_get_length(bufferevent_get_input(leg_.up.get())) == 0) {
    leg_.retried = true;
    w.metrics().upstreamRetries.fetch_add(1, std::memory_order_relaxed);
    release();
    connect();
    return true;
  }
  *why = eof ? "the origin closed the connection without answering"
             : std::string("the origin reset the connection: ") + (err ? strerror(err) : "error");
  if (leg_.upReused && !leg_.retried && !bodySent && !mayRepeat)
    why->append(" (not retried: the origin may have acted on the ").append(req.method).append(")");
  return false;
}

void Upstream::release() {
  if (!leg_.up) return;
  bufferevent_setcb(leg_.up.get(), nullptr, nullptr, nullptr, nullptr);
  // A channel's H2Origin learns that the exchange is over only through an explicit EOF.
  if (leg_.upH2) {
    bufferevent_flush(leg_.up.get(), EV_WRITE, BEV_FINISHED);
    link_.worker().h2Origins().forget(leg_.up.get());
  }
  leg_.upH2 = false;
  // The next upstream earns TLS anew: a retry on a fresh TCP connection must not pass for an
  // established TLS one and send the request in clear.
  leg_.upTls = false;
  leg_.up.reset();
}

}  // namespace sekisho::server
