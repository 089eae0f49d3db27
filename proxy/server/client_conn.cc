#include "proxy/server/client_conn.h"

#include <event2/bufferevent_ssl.h>
#include <sys/socket.h>

#include "proxy/base/log.h"
#include "proxy/http1/parser.h"
#include "proxy/server/head_reader.h"
#include "proxy/server/worker.h"

namespace sekisho::server {

using http::BodyKind;
using std::chrono::milliseconds;

namespace {
constexpr milliseconds kDrainTimeout{5000};  // flushing a final response
constexpr milliseconds kLingerTimeout{2000};  // reading and discarding after our final response
constexpr size_t kLingerMaxBytes = 1 << 20;
// An idle TLS client connection is trimmed (TlsIdleReads, bev_io.h) after this long.
constexpr milliseconds kIdleTrimAfter{1000};

}  // namespace

// One request on this connection: its record and upstream (exchange.h), and the phases that
// carry it, each with its own state.
struct ClientConn::Exchange : ExchangeRecord, UpstreamLeg {
  Exchange(RelayLink& r, TunnelLink& t, UpstreamLink& u) : upstream(u, *this), relay(r), tunnel(t) {}
  http::RequestHead req;
  int64_t maxForwards = -1;     // TRACE/OPTIONS: the Max-Forwards received (sent on less one)
  Upstream upstream;            // resolve, admit and judge the addresses, pool or connect (upstream.h)
  Relay relay;                  // the HTTP exchange once an upstream is ready (relay.h)
  Tunnel tunnel;                // or the bytes of a tunnel or a WebSocket (tunnel.h)
};

ClientConn::ClientConn(Worker& worker, uint64_t id, evutil_socket_t fd, const net::SocketAddr& peer, bool allowed)
    : w_(worker), id_(id), peer_(peer), allowed_(allowed), judge_(worker, id) {
  setNoDelay(fd);
  client_.reset(bufferevent_socket_new(w_.base(), fd, BEV_OPT_CLOSE_ON_FREE));
  timer_.reset(evtimer_new(w_.base(), &ClientConn::timerCb, this));
}

ClientConn::ClientConn(Worker& worker, uint64_t id, BevPtr bev, const h2::InnerTarget& target)
    : w_(worker), id_(id), peer_(target.peer), allowed_(true), judge_(worker, id) {
  client_ = std::move(bev);
  timer_.reset(evtimer_new(w_.base(), &ClientConn::timerCb, this));
  inner_ = true;
  BumpedOrigin b;
  b.host = target.host;
  b.port = target.port;
  b.dest = target.dest;
  b.poolKey = target.poolKey;
  b.clientHandshakeDone = true;
  bump_ = std::make_unique<Bump>(static_cast<BumpLink&>(*this), std::move(b));
  windowBudget_ = target.windowBudget;
}

ClientConn::~ClientConn() {
  h2_.reset();  // before client_: the session writes into it
  if (countedIn_) countedIn_->remove(peer_);
}

void ClientConn::start() {
  bufferevent_setcb(client_.get(), &clientReadCb, &clientWriteCb, &clientEventCb, this);
  // Read no further ahead than one buffer: a pipelining or flooding client waits in the kernel.
  tuneBev(client_.get(), bufLimit());
  bufferevent_enable(client_.get(), EV_READ);
  // EV_WRITE only while output waits (kick). A new socket bufferevent starts with it on, which
  // would send every write through an EPOLLOUT round; a pair end (HTTP/2 stream) keeps it.
  if (!inner_) bufferevent_disable(client_.get(), EV_WRITE);
  touch();
  enterReadHead();
}

// ---------------------------------------------------------------- trampolines
void ClientConn::clientReadCb(bufferevent*, void* arg) { static_cast<ClientConn*>(arg)->onClientReadable(); }
void ClientConn::clientWriteCb(bufferevent*, void* arg) {
  auto* c = static_cast<ClientConn*>(arg);
  c->onClientDrained();
  c->pokeUpstream();
}
bool ClientConn::streamingResponse() const {
  return state_ == ConnState::Relay && ex_ && ex_->up && ex_->relay.streaming();
}
void ClientConn::pokeUpstream() {
  if (state_ != ConnState::Closed && ex_ && ex_->up) pokeTlsPending(ex_->up.get());
}
void ClientConn::clientEventCb(bufferevent*, short what, void* arg) { static_cast<ClientConn*>(arg)->onClientEvent(what); }
void ClientConn::upReadCb(bufferevent*, void* arg) {
  auto* c = static_cast<ClientConn*>(arg);
  c->onUpstreamReadable();
  // A body streaming to the client takes the records already read ahead in this same callback.
  while (c->streamingResponse() && takeBufferedRecord(c->ex_->up.get())) c->onUpstreamReadable();
  c->pokeUpstream();
}
void ClientConn::upWriteCb(bufferevent*, void* arg) { static_cast<ClientConn*>(arg)->onUpstreamDrained(); }
void ClientConn::upEventCb(bufferevent*, short what, void* arg) { static_cast<ClientConn*>(arg)->onUpstreamEvent(what); }
void ClientConn::timerCb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<ClientConn*>(arg);
  c->onTimer();
  c->pokeUpstream();
}

// ---------------------------------------------------------------- helpers
uint64_t ClientConn::nowMs() const {
  timeval tv;
  event_base_gettimeofday_cached(w_.base(), &tv);
  return uint64_t(tv.tv_sec) * 1000 + uint64_t(tv.tv_usec) / 1000;
}

void ClientConn::touch() { lastActivityMs_ = nowMs(); }

void ClientConn::armTimer(milliseconds ms) {
  timeval tv{time_t(ms.count() / 1000), suseconds_t((ms.count() % 1000) * 1000)};
  timerDueMs_ = nowMs() + uint64_t(ms.count());
  evtimer_add(timer_.get(), &tv);
}

void ClientConn::setState(ConnState s) {
  state_ = s;
  // An HTTP/2 connection stays listed: whether it has streams is looked at when it is picked.
  if (s != ConnState::ReadHead && s != ConnState::H2 && idleListed_) w_.unmarkIdle(this);
}

// Picked by Worker::reclaimIdle: closed if it is still idle. An HTTP/2 connection without streams
// gets a GOAWAY first (NO_ERROR: the browser opens a new connection for its next request).
bool ClientConn::reclaimIfIdle() {
  if (state_ == ConnState::ReadHead && !headStarted_ && !ex_) {
    close();
    return true;
  }
  return state_ == ConnState::H2 && h2_ && h2_->reclaim();
}

size_t ClientConn::bufLimit() const {
  return inner_ ? streamBufferBytes(*w_.config()) : w_.config()->limits.bufferBytes;
}

void ClientConn::freeUpstream() {
  if (!ex_) return;
  ex_->upstream.release();
  ex_->relay.upstreamGone();
}

std::unique_ptr<ClientConn::Exchange> ClientConn::newExchange() {
  auto e = std::make_unique<Exchange>(static_cast<RelayLink&>(*this), static_cast<TunnelLink&>(*this),
                                      static_cast<UpstreamLink&>(*this));
  e->startMs = nowMs();
  e->startEpoch = double(e->startMs) / 1000.0;
  return e;
}

void ClientConn::close() {
  if (state_ == ConnState::Closed) return;
  judge_.cancel();
  h2_.reset();  // its streams tell their inner connections
  // An inner connection's pair partner learns of the end only through an explicit EOF.
  if (inner_ && client_) bufferevent_flush(client_.get(), EV_WRITE, BEV_FINISHED);
  if (ex_ && !ex_->logged) logExchange();
  setState(ConnState::Closed);
  if (ex_) ex_->tunnel.stop();  // its splice's events watch the sockets freed below
  evtimer_del(timer_.get());
  freeUpstream();
  bufferevent_setcb(client_.get(), nullptr, nullptr, nullptr, nullptr);
  bufferevent_disable(client_.get(), EV_READ | EV_WRITE);
  w_.release(this);
}

void ClientConn::onShutdown() {
  closeAfter_ = true;
  if (state_ == ConnState::ReadHead && !headStarted_) close();
  // HTTP/2: no new streams (GOAWAY), the ones begun finish, then the connection ends.
  if (state_ == ConnState::H2 && h2_) h2_->shutdown();
}

// ---------------------------------------------------------------- reading requests
void ClientConn::enterReadHead() {
  setState(ConnState::ReadHead);
  ex_.reset();
  headStarted_ = false;
  headScanned_ = 0;
  if (w_.draining()) closeAfter_ = true;
  if (closeAfter_) {
    enterDrain();
    return;
  }
  const auto& t = w_.config()->timeouts;
  milliseconds wait = firstRequest_ ? t.requestHeader : t.clientIdle;
  readHeadDueMs_ = nowMs() + uint64_t(wait.count());
  // A TLS client wakes the timer early once, to trim its buffers if it is still idle then.
  armTimer(bumped() && !inner_ && !idleReads_.small() ? std::min(wait, kIdleTrimAfter) : wait);
  bufferevent_enable(client_.get(), EV_READ);
  if (evbuffer_get_length(bufferevent_get_input(client_.get())) > 0) return readHead();
  if (!inner_ && !idleListed_) w_.markIdle(this);  // may be closed to let a new client in
}

void ClientConn::onClientReadable() noexcept {
  touch();
  idleReads_.onData(client_.get());
  if (state_ == ConnState::ReadHead && bumped() && !inner_ && !headStarted_ && clientAlpnIsH2()) return startH2();
  switch (state_) {
    case ConnState::H2:
      idleReads_.afterHead(ownTls());  // the session drains what it has read (see readHead)
      h2_->onReadable();
      break;
    case ConnState::ReadHead: readHead(); break;
    case ConnState::Relay:
      if (ex_) ex_->relay.onClientReadable();
      break;
    case ConnState::Tunnel: ex_->tunnel.onClientReadable(); break;
    case ConnState::TlsBlockHello: bump_->onDenyHello(); break;
    case ConnState::BumpHello: bump_->onHello(false); break;
    case ConnState::Drain: {
      // Lingering close: discard what the client still sends, within bounds.
      evbuffer* in = bufferevent_get_input(client_.get());
      size_t n = evbuffer_get_length(in);
      evbuffer_drain(in, n);
      if (n > kLingerMaxBytes) close();
      break;
    }
    default: break;  // reads are paused in the other states
  }
}

void ClientConn::readHead() {
  const auto& cfg = *w_.config();
  evbuffer* in = bufferevent_get_input(client_.get());
  if (evbuffer_get_length(in) == 0) return;
  if (!headStarted_) {
    headStarted_ = true;
    if (idleListed_) w_.unmarkIdle(this);
    if (!firstRequest_) armTimer(cfg.timeouts.requestHeader);  // slowloris: the whole head within this
  }
  HeadScan scan = scanRequestHead(in, headScanned_, cfg.limits);
  if (scan.kind == HeadScan::Kind::NeedMore) return;
  firstRequest_ = false;
  if (scan.kind == HeadScan::Kind::TooLarge) {
    ex_ = newExchange();
    return respondError(scan.status, scan.reason, scan.detail);
  }
  auto parsed = parseScannedHead(in, scan.headBytes, cfg.limits);
  idleReads_.afterHead(ownTls());  // the drain below frees the head's chain; what it reserves next is small
  evbuffer_drain(in, scan.headBytes);
  w_.metrics().bytesFromClients.fetch_add(scan.headBytes, std::memory_order_relaxed);
  if (!parsed) {
    ex_ = newExchange();
    ex_->squidCode = "NONE_NONE";
    return respondError(http1::statusFor(parsed.error().kind), reasonForParse(parsed.error().kind), parsed.error().detail);
  }
  handleRequest(std::move(*parsed));
}

const net::SocketAddr& ClientConn::localAddr() const {
  if (local_.len == 0) local_ = localAddress(bufferevent_getfd(client_.get()));
  return local_;
}

void ClientConn::handleRequest(http::RequestHead head) {
  const auto& cfg = *w_.config();
  ex_ = newExchange();
  ex_->req = std::move(head);
  auto& req = ex_->req;
  w_.metrics().requests.fetch_add(1, std::memory_order_relaxed);
  // Client reads stay enabled (no epoll change per request): until the upstream is ready, the
  // read callback leaves bytes in the input, which the read watermark bounds.
  if (!req.keepAlive || w_.draining()) closeAfter_ = true;
  if (auto deny = allowed_ && bump_ ? bump_->denyInside() : std::nullopt) {  // every request inside gets the page
    if (deny->status == 403) ex_->squidCode = "TCP_DENIED";
    return respondError(deny->status, deny->reason, deny->detail);
  }
  AdmitFacts f;
  f.req = &req;
  f.clientAllowed = allowed_;
  f.clientIp = peerIp();
  const BumpedOrigin* origin = bumped();
  BumpedFor bumpedFor;
  if (origin) {
    ex_->mode = inner_ ? "h2" : "bump";
    bumpedFor = {origin->host, origin->port};
    f.bumped = &bumpedFor;
  }
  f.self = w_.selfFacts();
  if (!origin && req.form == http::TargetForm::Absolute)  // getsockname only when the port is one we listen on
    for (const auto& l : w_.facts().listeners)
      if (l.port() == req.port) {
        f.self.local = localAddr();
        break;
      }
  f.connectPorts = &cfg.connectPorts;
  f.httpPorts = &cfg.httpPorts;
  AdmitDecision d = admitRequest(f);
  switch (d.action) {
    case AdmitAction::Refuse:
      if (d.denied) ex_->squidCode = "TCP_DENIED";
      return respondError(d.status, d.reason, d.detail);
    case AdmitAction::OwnPage: return serveSelf();
    case AdmitAction::AnswerTrace:
    case AdmitAction::AnswerOptions: return answerMaxForwards(d.action);
    case AdmitAction::Forward: break;
  }
  ex_->maxForwards = d.maxForwards;
  if (d.rewriteToBumped) {
    req.host = origin->host;
    req.port = origin->port;
    req.scheme = "https";
    return checkReputation(nullptr, [this] {
      ex_->addrs = {bumped()->dest};
      ex_->addrIndex = 0;
      ex_->upstream.connect();
    });
  }
  // Refused: the origin is never contacted. Allowed (now, or when the store answers): resolve.
  checkReputation(nullptr, [this] { ex_->upstream.resolve(); });
}

// TRACE or OPTIONS with Max-Forwards: 0 (admit.h): this proxy answers as the final recipient.
void ClientConn::answerMaxForwards(AdmitAction what) {
  ex_->squidCode = "NONE_NONE";
  respondLocal(what == AdmitAction::AnswerOptions ? optionsAnswer() : traceEcho(ex_->req));
}

// The reputation verdict for this request (judge.h): URL, host and parent domains before any
// lookup, the addresses after it. Refuses with a page (a blocked CONNECT with the page over TLS),
// or calls `next`, now or when the store answers; meanwhile the connection is in Judge.
void ClientConn::checkReputation(const std::vector<net::SocketAddr>* addrs, std::function<void()> next) {
  if (!judge_.enabled()) return next();
  const auto& req = ex_->req;
  bool isConnect = req.method == "CONNECT";
  std::string shown;  // inside TLS the URL is made from the connection's origin; else it is the target
  if (!addrs && !isConnect && bumped()) shown = shownUrl();
  Judge::Query q;
  if (!addrs && !isConnect) q.url = bumped() ? std::string_view(shown) : req.target;
  q.host = req.host;
  q.addrs = addrs;
  q.client = peerIp();
  q.now = int64_t(nowMs() / 1000);
  bool beforeAddrs = addrs == nullptr;
  bool now = judge_.judgeRequest(q, [this, next = std::move(next), isConnect, beforeAddrs](Judge::Ruling r) {
    switch (r.outcome) {
      case Judge::Outcome::Allow: return next();
      case Judge::Outcome::Unavailable:
        ex_->squidCode = "TCP_DENIED";
        return respondError(503, Reason::ReputationUnavailable, r.detail);
      case Judge::Outcome::Unchecked:
        ex_->squidCode = "TCP_DENIED";
        return respondError(403, Reason::ReputationBlock, r.detail);
      case Judge::Outcome::Block:
        ex_->squidCode = "TCP_DENIED";
        if (isConnect && beforeAddrs && w_.facts().ca && w_.facts().clientTls)
          return bumpPhase().block(r.detail);  // the browser shows our page instead of a connection error
        return respondError(403, Reason::ReputationBlock, r.detail);
    }
  });
  if (!now) {
    setState(ConnState::Judge);
    armTimer(w_.config()->reputation.deadline + milliseconds(1000));  // the store answers by its deadline
  }
}

// The URL as the user knows it (exchange.h).
std::string ClientConn::shownUrl() const {
  std::optional<BumpedFor> origin = bump_ ? bump_->shownOrigin() : std::nullopt;
  return server::shownUrl(ex_->req, origin ? std::string_view(origin->host) : std::string_view(), origin ? origin->port : 443);
}

// TLS records our filter has produced that the socket has not taken yet.
bool ClientConn::tlsRecordsQueued() const { return server::tlsRecordsQueued(client_.get()); }

// After a CONNECT's 2xx the connection is a tunnel (RFC 9110 §9.3.6): the CONNECT's own version
// and Connection / Proxy-Connection fields ended with that exchange, and the HTTP inside (bumped,
// or blocked over TLS) keeps alive or closes by its own requests' rules. Python's http.client
// sends "CONNECT host:port HTTP/1.0", which must not close the decrypted connection after the
// handshake. Called by the bump once the client's TLS is set up (bump.h).
void ClientConn::beginInsideTunnel() {
  firstRequest_ = true;
  closeAfter_ = w_.draining();
  ex_.reset();
  enterReadHead();
}

// ---------------------------------------------------------------- UpstreamLink (upstream.h)
void ClientConn::attach(bufferevent* up) { bufferevent_setcb(up, &upReadCb, &upWriteCb, &upEventCb, this); }

void ClientConn::judgeAddresses(const std::vector<net::SocketAddr>& addrs, std::function<void()> next) {
  checkReputation(&addrs, std::move(next));
}

Upstream* ClientConn::upstreamIn(ConnState s) {
  if (state_ != s || !ex_ || (s == ConnState::BumpUpstream && bumpIn(s))) return nullptr;  // the CONNECT's is the bump's
  return &ex_->upstream;
}
Bump* ClientConn::bumpIn(ConnState s) { return state_ == s && ex_ && ex_->req.method == "CONNECT" ? bump_.get() : nullptr; }

void ClientConn::connectOrigin() { ex_->upstream.connect(); }

bool ClientConn::mayAnswerConnectEarly() { return Bump::possible(w_) && bumpPhase().waitingForHello(); }

void ClientConn::onUpstreamConnected() {
  // Inside an intercepted connection a new TCP connection first gets its TLS handshake and
  // verification (BumpUpstream), then comes back here with upTls set.
  if (bumped() && !ex_->upTls) return ex_->upstream.startTls();
  evutil_socket_t fd = bufferevent_getfd(ex_->up.get());
  if (!ex_->upReused && fd >= 0) setNoDelay(fd);
  tuneBev(ex_->up.get(), bufLimit());
  bufferevent_enable(ex_->up.get(), EV_READ);
  bufferevent_disable(ex_->up.get(), EV_WRITE);  // a pooled one may still have it on
  if (ex_->req.method == "CONNECT")
    startTunnel();
  else
    startRelay();
}

// ---------------------------------------------------------------- HTTP relay (relay.h)
void ClientConn::startRelay() {
  setState(ConnState::Relay);
  ex_->relay.start(ex_->req, ex_->maxForwards);
}

bufferevent* ClientConn::upstreamBev() { return ex_ ? ex_->up.get() : nullptr; }
bool ClientConn::upstreamIsH2Channel() const { return ex_ && ex_->upH2; }

void ClientConn::closeAfter(bool linger) {
  closeAfter_ = true;
  if (linger) linger_ = true;
}

void ClientConn::noteResponse(int status, std::string_view contentType, uint64_t headBytes) {
  ex_->status = status;
  if (!contentType.empty()) ex_->contentType.assign(contentType);
  ex_->headBytesToClient = headBytes;
  ex_->respHeadSent = true;
}

void ClientConn::onUpstreamDrained() noexcept {
  touch();
  if (ex_ && ex_->up) quietIfEmpty(ex_->up.get());
  if (state_ == ConnState::Relay) {
    ex_->relay.onUpstreamDrained();
  } else if (state_ == ConnState::Tunnel) {
    ex_->tunnel.onUpstreamDrained();
  }
}

void ClientConn::onUpstreamReadable() noexcept {
  touch();
  if (state_ == ConnState::BumpHello) return bump_->onOriginServesFirst();
  if (state_ == ConnState::Relay)
    ex_->relay.onUpstreamReadable();
  else if (state_ == ConnState::Tunnel)
    ex_->tunnel.onUpstreamReadable();
}

void ClientConn::onClientDrained() noexcept {
  touch();
  evbuffer* out = bufferevent_get_output(client_.get());
  if (state_ != ConnState::Closed) quietIfEmpty(client_.get());
  switch (state_) {
    case ConnState::Relay:
      if (ex_) ex_->relay.onClientDrained();
      break;
    case ConnState::Tunnel:
      if (ex_) ex_->tunnel.onClientDrained();
      break;
    case ConnState::H2:
      h2_->onDrained();
      break;
    case ConnState::Drain:
      if (evbuffer_get_length(out) == 0) {
        if (tlsRecordsQueued()) return armTimer(milliseconds(20));  // onTimer looks again
        if (!linger_) return close();  // the request was read whole: nothing can turn into a reset
        // Our answer is out: shut the write side and read briefly so the client's unread request
        // bytes do not turn into a reset that destroys the answer before it is read.
        lingering_ = true;
        shutdown(bufferevent_getfd(client_.get()), SHUT_WR);
        bufferevent_enable(client_.get(), EV_READ);
        armTimer(kLingerTimeout);
      }
      break;
    default: break;
  }
}

// The relay's response is complete: the origin connection goes back to the pool when the
// exchange left it clean (a channel carries one request: freeing it ends the h2 stream).
void ClientConn::relayDone(bool upstreamReusable) {
  logExchange();
  if (upstreamReusable && ex_->up && !ex_->upH2) {
    bufferevent_setcb(ex_->up.get(), nullptr, nullptr, nullptr, nullptr);
    if (bumped() && ex_->upTls)
      w_.pool().put(bumped()->poolKey, std::move(ex_->up));
    else
      w_.pool().put(ex_->dest, std::move(ex_->up));
  } else {
    freeUpstream();
  }
  if (!ex_->relay.requestDone()) closeAfter_ = linger_ = true;
  enterReadHead();
}

void ClientConn::abortExchange(Reason reason, std::string_view detail) {
  if (ex_) {
    if (ex_->reason == Reason::None) ex_->reason = reason;
    ex_->detail.assign(detail);
    ex_->squidCode = "TCP_MISS_ABORTED";
  }
  SLOG_DEBUG("conn %llu: aborted: %.*s", (unsigned long long)id_, int(detail.size()), detail.data());
  close();
}

// BumpUpstream: the TLS handshake with the origin is the CONNECT's (bump.h) or, inside an
// intercepted connection, a request's new upstream (upstream.h).
void ClientConn::onOriginTlsEvent(short what) {
  if (Bump* b = bumpIn(state_)) return b->onOriginTlsEvent(what);
  ex_->upstream.onTlsEvent(what);
}

void ClientConn::onUpstreamEvent(short what) noexcept {
  if (!ex_) return;
  if (what & BEV_EVENT_CONNECTED) {
    if (state_ == ConnState::Connect) onUpstreamConnected();
    else if (state_ == ConnState::BumpUpstream) onOriginTlsEvent(what);
    return;
  }
  if (state_ == ConnState::BumpUpstream) return onOriginTlsEvent(what);
  if (state_ == ConnState::BumpHello) {
    // The origin closed while we waited for the client's hello: nothing to tunnel or bump.
    return respondError(502, Reason::UpstreamReset, "the origin closed the connection before TLS started");
  }
  int err = EVUTIL_SOCKET_ERROR();
  if (state_ == ConnState::Connect) return ex_->upstream.onConnectFailed(what);
  if (state_ == ConnState::Tunnel) {
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) return ex_->tunnel.onEof(false);
    return close();
  }
  if (state_ != ConnState::Relay) return;
  bool eof = (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR);
  if (!ex_->relay.haveResponse()) {
    std::string why;
    if (ex_->upstream.retryAfterDeath(eof, ex_->relay.requestBodyBytes(), &why)) return;
    return respondError(502, Reason::UpstreamReset, why);
  }
  if (eof) return ex_->relay.onUpstreamEof();
  abortExchange(Reason::UpstreamReset, std::string("the origin reset the connection mid-response: ") + (err ? strerror(err) : "error"));
}

void ClientConn::onClientEvent(short what) noexcept {
  if (what & BEV_EVENT_CONNECTED) {  // a TLS handshake with the client finished
    if (BumpedOrigin* o = bump_ ? bump_->origin() : nullptr) o->clientHandshakeDone = true;
    if (bumped() && !inner_ && state_ == ConnState::ReadHead && !headStarted_ && clientAlpnIsH2()) startH2();
    return;
  }
  if (bumped() && !bumped()->clientHandshakeDone) {
    bump_->onClientRejectedLeaf(client_.get());
    return close();
  }
  if (state_ == ConnState::Tunnel && ex_ && (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) return ex_->tunnel.onEof(true);
  if (state_ == ConnState::ReadHead && !headStarted_) return close();  // a keep-alive client went away
  // The client went away mid-exchange (or reset): nothing more to send anyone.
  if (ex_ && state_ == ConnState::Relay) ex_->squidCode = "TCP_MISS_ABORTED";
  close();
}

// The relay passed the origin's 101 on (a WebSocket): from here bytes go both ways as a tunnel
// (over TLS on either side when intercepted); the connection ends with the WebSocket.
void ClientConn::upgraded() { enterTunnel(""); }

void ClientConn::enterTunnel(const std::string& connectHost) {
  setState(ConnState::Tunnel);
  armTimer(w_.config()->timeouts.tunnelIdle);
  touch();
  ex_->tunnel.start(connectHost);
}

// ---------------------------------------------------------------- CONNECT tunnel
void ClientConn::startTunnel() {
  if (Bump::possible(w_)) return bumpPhase().onOriginConnected();  // the hello decides (bump.h)
  w_.metrics().tunnels.fetch_add(1, std::memory_order_relaxed);
  answerConnect(client_.get(), *ex_);
  ex_->squidCode = "TCP_TUNNEL";
  // The hello's SNI is judged before a byte goes up (tunnel.h).
  enterTunnel(w_.reputation() ? ex_->req.host : std::string());
}

// A tunnel's ClientHello asks for another name than the CONNECT host (tunnel.h): the judge
// decides; a block closes the tunnel before a byte of the client's reaches the origin (the 200
// is already out, so there is no page to show without decrypting) and the log says why.
TunnelLink::SniVerdict ClientConn::judgeTunnelSni(const std::string& sni, std::function<void()> resume) {
  if (!judge_.judgeSni(sni, peerIp(), int64_t(nowMs() / 1000), std::move(resume))) return SniVerdict::Wait;
  const auto& d = judge_.sniDecision();
  if (!d || d->outcome != reputation::Decision::Outcome::Block) return SniVerdict::Pass;
  ex_->reason = Reason::ReputationBlock;
  ex_->refId = w_.newRefId();
  ex_->squidCode = "TCP_DENIED";
  w_.metrics().byReason[size_t(Reason::ReputationBlock)].fetch_add(1, std::memory_order_relaxed);
  SLOG_INFO("tunnel to %s:%u closed: its TLS SNI %s is blocked: %s (ref %s)", ex_->req.host.c_str(),
            unsigned(ex_->req.port), sni.c_str(), d->reason.c_str(), ex_->refId.c_str());
  close();
  return SniVerdict::Refused;
}

// ---------------------------------------------------------------- TLS interception
bool ClientConn::clientIsTls() const { return bufferevent_openssl_get_ssl(client_.get()) != nullptr; }

// A CONNECT that stays opaque after its ClientHello was read: the tunnel starts with the bytes
// already buffered (the 200 is out).
void ClientConn::tunnelAfterHello(std::string_view why) {
  w_.metrics().tunnels.fetch_add(1, std::memory_order_relaxed);
  w_.metrics().bumpTunnelled.fetch_add(1, std::memory_order_relaxed);
  ex_->squidCode = "TCP_TUNNEL";
  ex_->detail.assign(why);
  SLOG_DEBUG("conn %llu: CONNECT %s:%u tunnelled: %.*s", (unsigned long long)id_, ex_->req.host.c_str(),
             unsigned(ex_->req.port), int(why.size()), why.data());
  enterTunnel("");  // the hello was read and decided on already
}

bool ClientConn::clientAlpnIsH2() const { return alpnChoseH2(client_.get()); }

// The client chose HTTP/2: from here the session speaks for the connection (h2/h2_front.h).
void ClientConn::startH2() {
  const BumpedOrigin& o = *bumped();
  h2_ = std::make_unique<h2::H2Front>(w_, static_cast<h2::H2FrontLink&>(*this), client_.get(),
                                      h2::InnerTarget{o.host, o.port, o.dest, o.poolKey, peer_, std::make_shared<uint64_t>(0)});
  setState(ConnState::H2);
  if (!h2_->start()) close();
}

void ClientConn::idleSinceNow() {
  if (idleListed_) w_.unmarkIdle(this);  // to the back: idle since now
  w_.markIdle(this);
}

// The HTTP/2 session is over: the client broke the protocol, or a GOAWAY ended it. Its streams
// end now; the GOAWAY nghttp2 wrote leaves before the connection closes, and the close lingers so
// that frames the client is still sending do not turn into a reset that destroys it unread.
void ClientConn::h2Over() {
  h2_.reset();
  linger_ = true;
  enterDrain();
}

// The client side becomes TLS on `ssl` (bev_io.h); the ClientHello still buffered goes with it.
bool ClientConn::wrapClientTls(SSL* ssl) {
  size_t bufferBytes = w_.config()->limits.bufferBytes;
  bufferevent* tls = wrapServerTls(w_.base(), client_.release(), ssl, bufferBytes);
  if (!tls) {
    client_.reset(bufferevent_socket_new(w_.base(), -1, 0));  // keeps close() simple
    return false;
  }
  client_.reset(tls);
  bufferevent_setcb(tls, &clientReadCb, &clientWriteCb, &clientEventCb, this);
  tuneBev(tls, bufferBytes);
  bufferevent_enable(tls, EV_READ | EV_WRITE);
  return true;
}

// ---------------------------------------------------------------- BumpLink (bump.h)
Bump& ClientConn::bumpPhase() {
  if (!bump_) bump_ = std::make_unique<Bump>(static_cast<BumpLink&>(*this));
  return *bump_;
}

const BumpedOrigin* ClientConn::bumped() const { return bump_ ? bump_->origin() : nullptr; }
const http::RequestHead& ClientConn::request() { return ex_->req; }
ExchangeRecord& ClientConn::record() { return *ex_; }
UpstreamLeg& ClientConn::upstream() { return *ex_; }

void ClientConn::enterState(ConnState s, milliseconds deadline) {
  setState(s);
  armTimer(deadline);
}

bool ClientConn::judgeHelloSni(const std::string& name, std::function<void()> resume,
                               std::optional<reputation::Decision>* out) {
  if (!judge_.judgeSni(name, peerIp(), int64_t(nowMs() / 1000), std::move(resume))) return false;
  *out = judge_.sniDecision();
  return true;
}

// ---------------------------------------------------------------- local responses
void ClientConn::serveSelf() {
  auto& req = ex_->req;
  w_.metrics().selfPages.fetch_add(1, std::memory_order_relaxed);
  ex_->squidCode = "NONE_NONE";
  if (req.body != BodyKind::None) closeAfter_ = linger_ = true;  // we do not read bodies sent to our pages
  OwnPageFacts f;
  f.cfg = w_.config().get();
  f.ca = w_.facts().ca.get();
  f.proxyAddress = [this] { return localAddr().toString(); };
  if (auto page = ownPage(req, f)) return respondLocal(*page);
  respondError(404, Reason::NotFound, "this proxy has no page at " + std::string(ownPagePath(req)));
}

// Our own answer to the client (no body for HEAD), recorded as the exchange's response.
void ClientConn::writeAnswer(std::string_view head, std::string_view body) {
  bool withBody = ex_->req.method != "HEAD";
  evbuffer* out = bufferevent_get_output(client_.get());
  addStr(out, head);
  if (withBody) addStr(out, body);
  kick(client_.get());
  ex_->respHeadSent = true;
  ex_->headBytesToClient = head.size() + (withBody ? body.size() : 0);
}

void ClientConn::respondLocal(const LocalPage& page) {
  writeAnswer(localResponseHead(page, closeAfter_), page.body);
  ex_->status = page.status;
  std::string_view ct = page.contentType;
  if (!ct.empty()) ex_->contentType.assign(ct.substr(0, ct.find(';')));
  logExchange();
  freeUpstream();
  enterReadHead();
}

void ClientConn::respondError(int status, Reason reason, std::string_view detail) {
  if (!ex_) ex_ = newExchange();
  if (ex_->respHeadSent) return abortExchange(reason, detail);
  freeUpstream();
  ex_->reason = reason;
  ex_->detail.assign(detail);
  ex_->refId = w_.newRefId();
  ex_->status = status;
  if (status == 403 && std::string_view(ex_->squidCode) == "TCP_MISS") ex_->squidCode = "TCP_DENIED";
  w_.metrics().byReason[size_t(reason)].fetch_add(1, std::memory_order_relaxed);
  const http::Header* al = ex_->req.headers.find("accept-language");
  std::string url = shownUrl();
  ErrorFacts f;
  f.status = status;
  f.reason = reasonName(reason);
  f.url = url;
  f.detail = detail;
  f.client = peerIp();
  f.refId = ex_->refId;
  f.proxyName = w_.config()->visibleHostname;
  f.epoch = ex_->startEpoch;
  f.acceptLanguage = al ? al->value : std::string_view();
  ErrorResponse page = errorResponse(f);
  writeAnswer(page.head, page.body);
  logExchange();
  closeAfter_ = true;
  linger_ = true;
  if (reason == Reason::ClientNotAllowed || reason == Reason::LoopDetected || reason >= Reason::BadRequest)
    SLOG_DEBUG("refused %s: %s %s (%.*s) ref=%s", peerIp().c_str(), reasonName(reason), url.c_str(), int(detail.size()),
               detail.data(), ex_->refId.c_str());
  enterDrain();
}

void ClientConn::enterDrain() {
  setState(ConnState::Drain);
  if (evbuffer_get_length(bufferevent_get_input(client_.get())) > 0) linger_ = true;  // pipelined bytes
  freeUpstream();
  bufferevent_disable(client_.get(), EV_READ);
  armTimer(kDrainTimeout);
  if (evbuffer_get_length(bufferevent_get_output(client_.get())) == 0) onClientDrained();
}

void ClientConn::onTimer() noexcept {
  uint64_t now = nowMs();
  const auto& t = w_.config()->timeouts;
  auto rearmIdle = [&](milliseconds limit) {
    uint64_t idleFor = now - lastActivityMs_;
    if (idleFor >= uint64_t(limit.count())) return false;
    armTimer(milliseconds(uint64_t(limit.count()) - idleFor));
    return true;
  };
  switch (state_) {
    case ConnState::ReadHead:
      if (now < readHeadDueMs_) {  // the early wake-up of enterReadHead
        if (!headStarted_) idleReads_.trim(ownTls());  // may read what just came, and move on
        if (state_ != ConnState::ReadHead) return;
        return armTimer(milliseconds(readHeadDueMs_ - now));
      }
      if (headStarted_) {
        if (!ex_) {
          ex_ = newExchange();
          ex_->squidCode = "NONE_NONE";
        }
        return respondError(408, Reason::RequestTimeout, "the request head did not arrive within " + std::to_string(t.requestHeader.count() / 1000) + " s");
      }
      return close();
    case ConnState::Resolve:
    case ConnState::Connect: return ex_->upstream.onTimeout();
    case ConnState::Relay: return ex_->relay.onTimer(now - lastActivityMs_);
    case ConnState::Tunnel:
      if (rearmIdle(t.tunnelIdle)) return;
      return close();
    case ConnState::H2:
      if (h2_->busy()) return;
      idleReads_.trim(ownTls());  // may read what just came, and move on
      if (state_ == ConnState::H2) h2_->idle(now - lastActivityMs_);
      return;
    case ConnState::BumpHello:
      if (judge_.sniPending()) return close();  // the store never answered
      return bump_->onHello(true);
    case ConnState::Judge: {
      // A backstop: the store answers every lookup by its deadline.
      if (!judge_.expire()) return close();
      return;
    }
    case ConnState::BumpUpstream:
      if (Bump* b = bumpIn(state_)) return b->onOriginTlsTimeout();
      return ex_->upstream.onTlsTimeout();
    case ConnState::Drain:
      // Over TLS, our answer may still sit below the filter as records: give them time to leave.
      if (clientIsTls() && drainPolls_++ < 250 && evbuffer_get_length(bufferevent_get_output(client_.get())) == 0 &&
          !(linger_ && lingering_))
        return onClientDrained();
      return close();
    case ConnState::TlsBlockHello:
    case ConnState::Closed:
      return close();
  }
}

// ---------------------------------------------------------------- access log
void ClientConn::logExchange() {
  if (!ex_ || ex_->logged) return;
  ex_->logged = true;
  auto& m = w_.metrics();
  int cls = ex_->status / 100;
  m.byStatusClass[size_t(cls >= 1 && cls <= 5 ? cls : 0)].fetch_add(1, std::memory_order_relaxed);
  uint64_t toClient = ex_->headBytesToClient + ex_->relay.bytesToClient() + ex_->tunnel.bytesToClient();
  m.bytesToClients.fetch_add(toClient, std::memory_order_relaxed);
  accesslog::AccessLog* log = w_.accessLog();
  if (!log || !log->enabled()) return;
  uint64_t fromClient = ex_->relay.requestBodyBytes() + ex_->req.storage.size;
  log->submit(accessRecord(*ex_, *ex_, ex_->req, peerIp(), shownUrl(), nowMs(), toClient, fromClient));
}

}  // namespace sekisho::server
