// One worker: an event loop on its own thread with its listeners (SO_REUSEPORT), resolver,
// upstream pool, metrics and client connections. Everything a worker owns is touched only on its
// thread; other threads talk to it through post().
#pragma once
#include <event2/event.h>
#include <event2/listener.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ca/ca.h"
#include "reputation/embedded_store.h"
#include "reputation/policy.h"
#include "reputation/redis_store.h"
#include "proxy/base/handles.h"
#include "proxy/server/client_counts.h"
#include "proxy/config/config.h"
#include "proxy/log/access_log.h"
#include "proxy/server/admit.h"
#include "proxy/server/conn_state.h"
#include "proxy/server/metrics.h"
#include "proxy/server/resolver.h"
#include "proxy/server/direct_flush.h"
#include "proxy/server/h2/h2_session.h"
#include "proxy/server/h2/h2_origin.h"
#include "proxy/server/upstream_pool.h"
#include "tls-mitm/origin_tls.h"
#include "tls-mitm/remembered_hosts.h"

namespace sekisho::server {

class ClientConn;
class Judge;
class Upstream;
class Bump;

using SslCtxPtrShared = std::shared_ptr<SSL_CTX>;

// The buffer high-water mark of each hop of one HTTP/2 stream (the stream's body, its inner
// connection, its channel to an h2 origin): an eighth of limits.buffer_bytes, at least 16 KiB.
// A client may hold 100 streams open and read none of them; at the full per-connection mark that
// was ~860 KiB per stream, 86 MB for one connection.
inline size_t streamBufferBytes(const config::Config& cfg) {
  return std::max<size_t>(16 * 1024, cfg.limits.bufferBytes / 8);
}

// The reputation policy a configuration asks for (sensitivity, per-category actions).
reputation::PolicyConfig policyOf(const config::Config& cfg);

// Facts every worker reads and nobody changes after start-up.
struct SharedFacts {
  std::vector<net::SocketAddr> listeners;    // bound proxy listeners
  std::vector<net::SocketAddr> localAddrs;   // this host's interface addresses
  std::optional<net::SocketAddr> admin;      // admin listener, if any
  std::shared_ptr<const HostsMap> hosts;     // /etc/hosts
  std::shared_ptr<const ca::Ca> ca;          // the enterprise CA (null when tls.intercept is off)
  std::shared_ptr<const reputation::EmbeddedStore> reputation;  // the store at start-up
  std::shared_ptr<ca::CertCache> leafCache;  // minted leaves, shared by all workers
  SslCtxPtrShared clientTls;                 // client-facing TLS (intercepted sites, HTTPS pages)
  std::shared_ptr<mitm::OriginTls> originTls;        // towards origins (null when interception is off)
  std::shared_ptr<mitm::RememberedHosts> remembered;  // hosts tunnelled after interception failed
  std::shared_ptr<ClientCounts> clientCounts;         // open connections per client address
};

class Worker {
 public:
  Worker(unsigned id, config::ConfigPtr cfg, std::shared_ptr<accesslog::AccessLog> log,
         std::shared_ptr<const SharedFacts> facts);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds this worker's own SO_REUSEPORT socket on every listen address (main thread, before
  // start). Returns the bound addresses (a port 0 in `addrs` becomes the port the kernel chose).
  Result<std::vector<net::SocketAddr>> bind(const std::vector<net::SocketAddr>& addrs);
  void setFacts(std::shared_ptr<const SharedFacts> facts) { facts_ = std::move(facts); }
  void start();
  void join();

  // Thread-safe: runs fn on the worker's loop thread.
  void post(std::function<void()> fn);
  void postConfig(config::ConfigPtr cfg, std::shared_ptr<accesslog::AccessLog> log,
                  std::shared_ptr<const reputation::EmbeddedStore> store);
  // Stop accepting, close idle connections, let in-flight exchanges finish; the loop ends when
  // the last connection is gone or the deadline passes.
  void postShutdown(std::chrono::milliseconds deadline);

  // ---- loop-thread API for connections ----
  event_base* base() const { return base_.get(); }
  const config::ConfigPtr& config() const { return cfg_; }
  // How our Via entries name this proxy: "<visible hostname> (sekisho/<version>)", made again
  // only when the configuration changed.
  std::string_view viaBy();
  accesslog::AccessLog* accessLog() const { return log_.get(); }
  // The reputation store in force (replaced whole on reload; a request keeps the one it began with).
  const reputation::EmbeddedStore* reputation() const { return reputation_.get(); }
  // The Redis store of this worker (reputation.store: redis://...), or null.
  reputation::RedisStore* redis() const { return redis_.get(); }
  // Sensitivity and per-category actions, built once per configuration.
  const reputation::PolicyConfig& policy() const { return policy_; }
  uint64_t newTicket() { return ++nextTicket_; }
  // "up", "down: ..." for /healthz (any thread).
  std::string redisState() const;
  Resolver& resolver() { return *resolver_; }
  UpstreamPool& pool() { return pool_; }
  h2::H2Origins& h2Origins() { return h2origins_; }
  Metrics& metrics() { return metrics_; }
  const DirectFlush* directFlush() const { return flush_.get(); }
  const SharedFacts& facts() const { return *facts_; }
  bool draining() const { return draining_; }
  unsigned id() const { return id_; }
  ClientConn* findConn(uint64_t connId) const;
  Judge* findJudge(uint64_t connId) const;
  // That connection's upstream phase, when the connection is still in `state` (a late resolver
  // answer or connect retry finds nothing otherwise).
  Upstream* findUpstream(uint64_t connId, ConnState state) const;
  Bump* findBump(uint64_t connId, ConnState state) const;  // the same, for a CONNECT's bump
  // Out of descriptors: the idle pooled origin connections go first (a new handshake later is
  // all they cost), then the client connections idle longest. How many sockets it closed.
  size_t freeDescriptors(const char* why);  // that connection's, for a late store answer (judge.h)
  // Starts an inner connection for one HTTP/2 stream on `bev` (its end of a pair); false when
  // the worker is at its connection limit or shutting down.
  bool adoptInner(BevPtr bev, const h2::InnerTarget& target);
  // Deferred delete: the connection is freed on the loop's next turn, never inside its callback.
  void release(ClientConn* conn);
  // Client connections waiting for a request with nothing of it read (new or keep-alive idle),
  // oldest first. At the connection limit, or out of descriptors, the oldest of them are closed
  // to let a new client in (as nginx reuses idle keep-alive connections): thousands of silent
  // connections then delay no one who has a request to send. A connection with part of a head,
  // a request under way, a tunnel or an HTTP/2 session is never taken.
  void markIdle(ClientConn* conn);
  void unmarkIdle(ClientConn* conn);
  static constexpr size_t kReclaimBatch = 32;
  std::string newRefId();
  // The destination is this proxy's own listener (a forwarding loop).
  // Where this proxy listens (admit.h), for requests and addresses that name it.
  SelfFacts selfFacts() const;
  bool isSelf(const net::SocketAddr& dest) const;
  bool isAdmin(const net::SocketAddr& dest) const;

 private:
  static void onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int len, void* arg);
  static void onAcceptError(evconnlistener*, void* arg);
  static void onPosted(evutil_socket_t, short, void* arg);
  static void onReap(evutil_socket_t, short, void* arg);
  static void onDeadline(evutil_socket_t, short, void* arg);
  static void onResumeAccept(evutil_socket_t, short, void* arg);
  void accept(evutil_socket_t fd, sockaddr* sa, int len);
  size_t reclaimIdle(size_t n, const char* why);  // closes up to n of idle_, oldest first
  bool logDue(uint64_t& lastMs);  // true at most once a second for one `lastMs`
  void beginShutdown(std::chrono::milliseconds deadline);
  void maybeFinishShutdown();
  void applyConfig();
  void closeAll();

  unsigned id_;
  EventBasePtr base_;
  config::ConfigPtr cfg_;
  std::shared_ptr<accesslog::AccessLog> log_;
  std::shared_ptr<const SharedFacts> facts_;
  std::shared_ptr<const reputation::EmbeddedStore> reputation_;
  std::unique_ptr<reputation::RedisStore> redis_;
  std::string redisUrl_;  // what redis_ was made for
  reputation::PolicyConfig policy_;
  uint64_t nextTicket_ = 0;
  mutable std::mutex redisStateMu_;
  std::string redisState_;
  std::unique_ptr<Resolver> resolver_;
  Metrics metrics_;    // before pool_, which writes its gauge until destroyed
  UpstreamPool pool_;
  h2::H2Origins h2origins_{*this};  // HTTP/2 origin connections (after metrics_: writes its gauge)
  std::unique_ptr<DirectFlush> flush_;  // direct TLS writes on this loop (direct_flush.h)
  std::vector<ListenerPtr> listeners_;
  std::unordered_map<uint64_t, ClientConn*> conns_;
  std::string viaBy_;
  const config::Config* viaFor_ = nullptr;  // the configuration viaBy_ was made from
  std::vector<ClientConn*> reap_;
  std::list<ClientConn*> idle_;  // markIdle; front = idle longest
  uint64_t lastReclaimLogMs_ = 0;
  uint64_t lastPerClientLogMs_ = 0;
  EventPtr reapEv_, postEv_, deadlineEv_, resumeAcceptEv_;
  std::mutex postMu_;
  std::vector<std::function<void()>> posted_;
  std::thread thread_;
  uint64_t nextConnId_ = 1;
  bool draining_ = false;
  std::mt19937_64 rng_;
  friend class ClientConn;
};

}  // namespace sekisho::server
