#include "proxy/server/worker.h"
#include "proxy/server/admit.h"

#include <event2/thread.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>

#include "proxy/base/log.h"
#include "version.h"
#include "proxy/server/client_conn.h"

namespace sekisho::server {

namespace {
std::shared_ptr<const HostsMap> overridesOf(const config::Config& cfg) {
  auto m = std::make_shared<HostsMap>();
  for (const auto& [host, addr] : cfg.resolve) (*m)[host].push_back(addr);
  return m;
}
}  // namespace

reputation::PolicyConfig policyOf(const config::Config& cfg) {
  const auto& rep = cfg.reputation;
  reputation::PolicyConfig p;
  p.sensitivity = rep.sensitivity == config::Sensitivity::Low    ? reputation::Sensitivity::Low
                  : rep.sensitivity == config::Sensitivity::High ? reputation::Sensitivity::High
                                                                 : reputation::Sensitivity::Medium;
  for (const auto& [category, action] : rep.categoryActions) {
    reputation::Action a;
    if (reputation::parseAction(action, a)) p.categoryActions.emplace(category, a);
  }
  return p;
}

Worker::Worker(unsigned id, config::ConfigPtr cfg, std::shared_ptr<accesslog::AccessLog> log,
               std::shared_ptr<const SharedFacts> facts)
    : id_(id),
      cfg_(std::move(cfg)),
      log_(std::move(log)),
      facts_(std::move(facts)),
      reputation_(facts_->reputation),
      rng_(std::random_device{}()) {
  event_config* ec = event_config_new();
  event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  base_.reset(event_base_new_with_config(ec));
  event_config_free(ec);
  resolver_ = std::make_unique<Resolver>(base_.get(), facts_->hosts);
  flush_ = std::make_unique<DirectFlush>(base_.get());
  reapEv_.reset(event_new(base_.get(), -1, 0, &Worker::onReap, this));
  postEv_.reset(event_new(base_.get(), -1, 0, &Worker::onPosted, this));
  deadlineEv_.reset(evtimer_new(base_.get(), &Worker::onDeadline, this));
  resumeAcceptEv_.reset(evtimer_new(base_.get(), &Worker::onResumeAccept, this));
  applyConfig();
}

Worker::~Worker() {
  closeAll();
  flush_.reset();  // releases what it still holds, before the event base goes
  redis_.reset();  // before the event base goes
  resolver_.reset();
}

// Frees every connection, pooled upstream and listener. Called on the loop thread when the loop
// has ended, and again (finding nothing) from the destructor.
void Worker::closeAll() {
  idle_.clear();
  for (auto& [id, c] : conns_) delete c;
  conns_.clear();
  for (auto* c : reap_) delete c;
  reap_.clear();
  pool_.clear();
  h2origins_.clear();
  listeners_.clear();
}

void Worker::applyConfig() {
  resolver_->setOverrides(overridesOf(*cfg_));
  pool_.setLimits(cfg_->limits.maxIdleUpstream, cfg_->limits.maxIdleUpstreamPerHost, cfg_->timeouts.upstreamIdle);
  pool_.setSizeGauge(&metrics_.upstreamIdle);
  const auto& rep = cfg_->reputation;
  policy_ = policyOf(*cfg_);
  // The Redis store, made (again) when the URL or its settings change. Lookups in flight on the
  // old one are dropped; their connections fall back to on_error by their own timers.
  std::string want = reputation::isRedisUrl(rep.store)
                         ? rep.store + "|" + std::to_string(rep.deadline.count()) + "|" + std::to_string(rep.cacheEntries) +
                               "|" + std::to_string(rep.cacheTtl.count())
                         : "";
  if (want == redisUrl_) return;
  redisUrl_ = want;
  redis_.reset();
  if (want.empty()) {
    std::lock_guard lk(redisStateMu_);
    redisState_.clear();
    return;
  }
  auto opts = reputation::parseRedisUrl(rep.store);
  if (!opts) {
    SLOG_ERROR("worker %u: reputation.store: %s", id_, opts.error().detail.c_str());
    return;
  }
  opts->deadline = rep.deadline;
  opts->cacheEntries = rep.cacheEntries;
  opts->cacheTtl = rep.cacheTtl;
  redis_ = reputation::RedisStore::create(base_.get(), *opts);
  if (!redis_) {
    SLOG_ERROR("worker %u: cannot create the Redis store client", id_);
    return;
  }
  {
    std::lock_guard lk(redisStateMu_);
    redisState_ = redis_->stateText();
  }
  unsigned id = id_;
  redis_->setStateListener([this, id](reputation::RedisStore::State st, const std::string& text) {
    {
      std::lock_guard lk(redisStateMu_);
      redisState_ = text;
    }
    if (st == reputation::RedisStore::State::Down)
      SLOG_WARN("worker %u: reputation store %s", id, text.c_str());
    else if (st == reputation::RedisStore::State::Up)
      SLOG_INFO("worker %u: reputation store %s", id, text.c_str());
  });
}

std::string Worker::redisState() const {
  std::lock_guard lk(redisStateMu_);
  return redisState_;
}

Result<std::vector<net::SocketAddr>> Worker::bind(const std::vector<net::SocketAddr>& addrs) {
  std::vector<net::SocketAddr> bound;
  for (const auto& a : addrs) {
    // SO_REUSEPORT would let us share a port another process already listens on (another
    // sekisho, say), silently splitting its traffic. The first worker probes without it.
    if (id_ == 0 && a.port() != 0) {
      int probe = socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (a.family() == AF_INET6) setsockopt(probe, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      int r = ::bind(probe, a.sa(), a.len);
      int e = errno;
      ::close(probe);
      if (r != 0)
        return fail(ErrKind::Io, Side::Internal, "cannot listen on " + a.toString() + ": " + strerror(e) +
                                                     (e == EADDRINUSE ? " (is another proxy running?)" : ""));
    }
    evutil_socket_t fd = socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(ErrKind::Io, Side::Internal, std::string("socket: ") + strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Each worker has its own socket on the port; the kernel spreads connections across them.
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (a.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, a.sa(), a.len) != 0) {
      int e = errno;
      ::close(fd);
      return fail(ErrKind::Io, Side::Internal, "cannot listen on " + a.toString() + ": " + strerror(e));
    }
    evconnlistener* l = evconnlistener_new(base_.get(), &Worker::onAccept, this,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 4096, fd);
    if (!l) {
      ::close(fd);
      return fail(ErrKind::Io, Side::Internal, "cannot listen on " + a.toString() + ": " + strerror(errno));
    }
    evconnlistener_set_error_cb(l, &Worker::onAcceptError);
    listeners_.emplace_back(l);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    bound.push_back(net::SocketAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len).value_or(a));
  }
  return bound;
}

void Worker::start() {
  thread_ = std::thread([this] {
    DirectFlush::bind(flush_.get());
    event_base_dispatch(base_.get());
    closeAll();  // whatever the shutdown deadline left open, closed on this thread
    DirectFlush::bind(nullptr);
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(postMu_);
    posted_.push_back(std::move(fn));
  }
  event_active(postEv_.get(), EV_READ, 0);  // thread-safe: locking is on (evthread_use_pthreads)
}

void Worker::onPosted(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard<std::mutex> lock(w->postMu_);
    fns.swap(w->posted_);
  }
  for (auto& fn : fns) fn();
}

void Worker::postConfig(config::ConfigPtr cfg, std::shared_ptr<accesslog::AccessLog> log,
                        std::shared_ptr<const reputation::EmbeddedStore> store) {
  post([this, cfg = std::move(cfg), log = std::move(log), store = std::move(store)]() mutable {
    cfg_ = std::move(cfg);
    log_ = std::move(log);
    reputation_ = std::move(store);
    applyConfig();
  });
}

void Worker::postShutdown(std::chrono::milliseconds deadline) {
  post([this, deadline] { beginShutdown(deadline); });
}

void Worker::beginShutdown(std::chrono::milliseconds deadline) {
  if (draining_) return;
  draining_ = true;
  listeners_.clear();  // stop accepting: new connections are refused by the kernel
  pool_.clear();
  timeval tv{time_t(deadline.count() / 1000), suseconds_t((deadline.count() % 1000) * 1000)};
  evtimer_add(deadlineEv_.get(), &tv);
  std::vector<ClientConn*> all;
  all.reserve(conns_.size());
  for (auto& [id, c] : conns_) all.push_back(c);
  for (auto* c : all) c->onShutdown();
  maybeFinishShutdown();
}

void Worker::maybeFinishShutdown() {
  if (draining_ && conns_.empty() && reap_.empty()) event_base_loopexit(base_.get(), nullptr);
}

void Worker::onDeadline(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  SLOG_WARN("worker %u: shutdown deadline reached with %zu connections still open; closing them", w->id_,
            w->conns_.size());
  event_base_loopexit(w->base_.get(), nullptr);
}

void Worker::onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int len, void* arg) {
  static_cast<Worker*>(arg)->accept(fd, sa, len);
}

void Worker::onAcceptError(evconnlistener* lev, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  int err = EVUTIL_SOCKET_ERROR();
  // Linux takes a descriptor before it looks for a pending connection: with every descriptor in
  // use, the accept that would have found the queue empty fails with EMFILE too. Nothing waits,
  // so nothing is done (the listener is readable again only when a client comes).
  pollfd p{evconnlistener_get_fd(lev), POLLIN, 0};
  if ((err == EMFILE || err == ENFILE) && poll(&p, 1, 0) == 0) return;
  // Out of descriptors (EMFILE/ENFILE) or memory: the listening socket stays readable, so
  // accepting again at once would spin. Pause accepting briefly; connections wait in the
  // backlog. One log line per pause, not one per attempt. Out of descriptors, the connections
  // idle longest make room first (their sockets close when the reap frees them, on the loop's
  // next turn), and accepting resumes right after that.
  size_t reclaimed = (err == EMFILE || err == ENFILE) ? w->freeDescriptors("out of file descriptors") : 0;
  if (!reclaimed)
    SLOG_WARN("worker %u: accept failed: %s; pausing accepts for 100 ms (%zu connections open)", w->id_, strerror(err),
              w->conns_.size());
  for (auto& l : w->listeners_) evconnlistener_disable(l.get());
  timeval tv{0, reclaimed ? 1000 : 100 * 1000};
  evtimer_add(w->resumeAcceptEv_.get(), &tv);
}

void Worker::onResumeAccept(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  if (w->draining_) return;
  for (auto& l : w->listeners_) evconnlistener_enable(l.get());
}

void Worker::markIdle(ClientConn* conn) {
  conn->idleIt_ = idle_.insert(idle_.end(), conn);
  conn->idleListed_ = true;
}

void Worker::unmarkIdle(ClientConn* conn) {
  idle_.erase(conn->idleIt_);
  conn->idleListed_ = false;
}

size_t Worker::reclaimIdle(size_t n, const char* why) {
  size_t closed = 0;
  while (closed < n && !idle_.empty()) {
    ClientConn* c = idle_.front();
    unmarkIdle(c);
    if (c->reclaimIfIdle()) ++closed;  // else busy again (an HTTP/2 one with a stream): skipped
  }
  if (!closed) return 0;
  metrics_.idleReclaimed.fetch_add(closed, std::memory_order_relaxed);
  if (logDue(lastReclaimLogMs_))
    SLOG_WARN("worker %u: %s: closed the %zu connections idle longest to let new clients in (%zu open)", id_, why,
              closed, conns_.size());
  return closed;
}

// One line a second at most per kind, whatever the pressure.
bool Worker::logDue(uint64_t& lastMs) {
  timeval tv;
  event_base_gettimeofday_cached(base_.get(), &tv);
  uint64_t ms = uint64_t(tv.tv_sec) * 1000 + uint64_t(tv.tv_usec) / 1000;
  if (ms - lastMs < 1000) return false;
  lastMs = ms;
  return true;
}

size_t Worker::freeDescriptors(const char* why) {
  if (size_t dropped = pool_.dropOldest(kReclaimBatch)) {
    if (logDue(lastReclaimLogMs_))
      SLOG_WARN("worker %u: %s: closed %zu idle pooled origin connections", id_, why, dropped);
    return dropped;
  }
  return reclaimIdle(kReclaimBatch, why);
}

void Worker::accept(evutil_socket_t fd, sockaddr* sa, int len) {
  auto peer = net::SocketAddr::fromSockaddr(sa, socklen_t(len));
  if (peer && !draining_ && conns_.size() >= cfg_->limits.maxConnections)
    reclaimIdle(kReclaimBatch, "at limits.max_connections");
  if (!peer || draining_ || conns_.size() >= cfg_->limits.maxConnections) {
    metrics_.refusedAtAccept.fetch_add(1, std::memory_order_relaxed);
    evutil_closesocket(fd);
    return;
  }
  // limits.max_connections_per_client: one address does not take everyone's share.
  std::shared_ptr<ClientCounts> counts = facts_ ? facts_->clientCounts : nullptr;
  if (counts && !counts->tryAdd(*peer, cfg_->limits.maxConnectionsPerClient)) {
    metrics_.refusedAtAccept.fetch_add(1, std::memory_order_relaxed);
    evutil_closesocket(fd);
    if (logDue(lastPerClientLogMs_))
      SLOG_WARN("worker %u: client %s has %zu connections open (limits.max_connections_per_client); refusing more",
                id_, peer->ipString().c_str(), counts->count(*peer));
    return;
  }
  bool allowed = cfg_->allowClients.contains(*peer);
  uint64_t id = nextConnId_++;
  auto* c = new ClientConn(*this, id, fd, *peer, allowed);
  c->countedIn_ = std::move(counts);
  conns_.emplace(id, c);
  metrics_.accepted.fetch_add(1, std::memory_order_relaxed);
  metrics_.active.fetch_add(1, std::memory_order_relaxed);
  c->start();
}

bool Worker::adoptInner(BevPtr bev, const h2::InnerTarget& target) {
  if (draining_ || conns_.size() >= cfg_->limits.maxConnections) return false;
  uint64_t id = nextConnId_++;
  auto* c = new ClientConn(*this, id, std::move(bev), target);
  conns_.emplace(id, c);
  metrics_.active.fetch_add(1, std::memory_order_relaxed);
  metrics_.h2Streams.fetch_add(1, std::memory_order_relaxed);
  c->start();
  return true;
}

ClientConn* Worker::findConn(uint64_t connId) const {
  auto it = conns_.find(connId);
  return it == conns_.end() ? nullptr : it->second;
}

std::string_view Worker::viaBy() {
  if (viaFor_ != cfg_.get()) {
    viaBy_ = cfg_->visibleHostname + " (sekisho/" SEKISHO_VERSION ")";
    viaFor_ = cfg_.get();
  }
  return viaBy_;
}

Upstream* Worker::findUpstream(uint64_t connId, ConnState state) const {
  ClientConn* c = findConn(connId);
  return c ? c->upstreamIn(state) : nullptr;
}

Bump* Worker::findBump(uint64_t connId, ConnState state) const {
  ClientConn* c = findConn(connId);
  return c ? c->bumpIn(state) : nullptr;
}

Judge* Worker::findJudge(uint64_t connId) const {
  ClientConn* c = findConn(connId);
  return c ? &c->judge_ : nullptr;
}

void Worker::release(ClientConn* conn) {
  conns_.erase(conn->id());
  reap_.push_back(conn);
  metrics_.active.fetch_sub(1, std::memory_order_relaxed);
  event_active(reapEv_.get(), EV_READ, 0);
}

void Worker::onReap(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  std::vector<ClientConn*> dead;
  dead.swap(w->reap_);
  for (auto* c : dead) delete c;
  w->maybeFinishShutdown();
}

std::string Worker::newRefId() {
  // Crockford base32 without I, L, O, U: easy to read out over the phone.
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  uint64_t v = rng_();
  std::string out;
  out.reserve(11);
  for (int i = 0; i < 10; ++i) {
    if (i == 5) out.push_back('-');
    out.push_back(kAlphabet[v & 31]);
    v >>= 5;
  }
  return out;
}

SelfFacts Worker::selfFacts() const {
  SelfFacts f;
  f.listeners = &facts_->listeners;
  f.localAddrs = &facts_->localAddrs;
  f.admin = &facts_->admin;
  f.visibleHostname = cfg_->visibleHostname;
  return f;
}

bool Worker::isSelf(const net::SocketAddr& dest) const { return isSelfAddress(dest, selfFacts()); }
bool Worker::isAdmin(const net::SocketAddr& dest) const { return isAdminAddress(dest, selfFacts()); }

}  // namespace sekisho::server
