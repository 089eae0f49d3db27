// Per-worker pool of idle keep-alive upstream connections, keyed by origin address. An idle
// connection that the origin closes, or that sends anything, or that stays idle past the
// timeout, is freed. Bounded per origin and in total (oldest evicted first). A TLS connection
// that has waited longer than kKeepBuffersFor gives its record buffers back (~85 KiB on the origin
// side, which reads ahead into 64 KiB); one taken again sooner keeps them, so a keep-alive client
// does not free and allocate them per request.
#pragma once
#include <event2/bufferevent.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proxy/base/handles.h"
#include "proxy/net/address.h"

namespace sekisho::server {

class UpstreamPool {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kKeepBuffersFor{100};

  UpstreamPool() = default;
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  void setLimits(size_t maxTotal, size_t maxPerKey, std::chrono::milliseconds idle) {
    maxTotal_ = maxTotal;
    maxPerKey_ = maxPerKey;
    idle_ = idle;
  }
  // Takes the most recently used idle connection to `addr`, or nullptr.
  BevPtr take(const net::SocketAddr& addr);
  // Parks a connection whose last exchange ended cleanly with nothing unread.
  void put(const net::SocketAddr& addr, BevPtr bev);
  // The same for any key: verified TLS connections are pooled under tlsKey(address, SNI), apart
  // from plain ones, so a request only ever reuses a connection made for the same origin name.
  BevPtr take(const std::string& key, Clock::time_point now = Clock::now());
  // Only a connection parked less than `maxAge` ago (the most recent one), else nullptr: for a
  // request that must not be retried, the origin is unlikely to have timed that one out yet.
  BevPtr takeFresh(const std::string& key, std::chrono::milliseconds maxAge, Clock::time_point now = Clock::now());
  BevPtr takeFresh(const net::SocketAddr& addr, std::chrono::milliseconds maxAge);
  void put(const std::string& key, BevPtr bev, Clock::time_point now = Clock::now());
  // What giving back a parked connection's buffers means; by default SSL_free_buffers on a TLS
  // bufferevent (OpenSSL frees nothing while a record is half read or half written, and
  // allocates the buffers again on the next read or write). Tests count the calls.
  void setBufferReleaser(std::function<void(bufferevent*)> release) { release_ = std::move(release); }
  // Kept equal to size() (for /metrics, read by another thread).
  void setSizeGauge(std::atomic<uint64_t>* gauge) { gauge_ = gauge; }
  static std::string tlsKey(const net::SocketAddr& addr, std::string_view sni);
  bool has(const std::string& key) const { return byKey_.count(key) != 0; }
  // Frees up to n connections, oldest first (their sockets close now); how many it freed.
  size_t dropOldest(size_t n);
  void clear();
  size_t size() const { return lru_.size(); }
  uint64_t reuses() const { return reuses_; }

 private:
  struct Idle;
  using List = std::list<Idle>;
  struct Idle {
    std::string key;
    BevPtr bev;
    UpstreamPool* pool;
    Clock::time_point parkedAt;
    List::iterator self;  // this node, for the bufferevent callbacks
  };
  static void onIdleRead(bufferevent* bev, void* arg);
  static void onIdleEvent(bufferevent* bev, short what, void* arg);
  void drop(List::iterator it);
  // Gives back the buffers of every connection parked before now - kKeepBuffersFor.
  void releaseStale(Clock::time_point now);
  void publishSize() {
    if (gauge_) gauge_->store(lru_.size(), std::memory_order_relaxed);
  }

  List lru_;  // front = most recently parked
  // The connections from lean_ to the back have given their buffers back. Parking adds at the
  // front and entries only age, so the released ones are always a suffix of lru_.
  List::iterator lean_ = lru_.end();
  std::function<void(bufferevent*)> release_;
  std::atomic<uint64_t>* gauge_ = nullptr;
  std::unordered_map<std::string, std::list<List::iterator>> byKey_;
  size_t maxTotal_ = 256, maxPerKey_ = 16;
  std::chrono::milliseconds idle_{30'000};
  uint64_t reuses_ = 0;
};

}  // namespace sekisho::server
