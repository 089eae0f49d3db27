#include "proxy/server/upstream_pool.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

namespace sekisho::server {

namespace {
std::string keyOf(const net::SocketAddr& a) {
  std::string k(reinterpret_cast<const char*>(&a.ss), a.len);
  return k;
}
}  // namespace

UpstreamPool::~UpstreamPool() { clear(); }

void UpstreamPool::clear() {
  byKey_.clear();
  lru_.clear();  // frees the bufferevents (and closes their sockets)
  lean_ = lru_.end();
  publishSize();
}

BevPtr UpstreamPool::take(const net::SocketAddr& addr) { return take(keyOf(addr)); }
void UpstreamPool::put(const net::SocketAddr& addr, BevPtr bev) { put(keyOf(addr), std::move(bev)); }

std::string UpstreamPool::tlsKey(const net::SocketAddr& addr, std::string_view sni) {
  std::string k = "tls|";
  k += keyOf(addr);
  k += '|';
  k += sni;
  return k;
}

BevPtr UpstreamPool::takeFresh(const net::SocketAddr& addr, std::chrono::milliseconds maxAge) {
  return takeFresh(keyOf(addr), maxAge);
}

BevPtr UpstreamPool::takeFresh(const std::string& key, std::chrono::milliseconds maxAge, Clock::time_point now) {
  auto it = byKey_.find(key);
  if (it == byKey_.end() || it->second.empty() || now - it->second.front()->parkedAt >= maxAge) return nullptr;
  return take(key, now);
}

BevPtr UpstreamPool::take(const std::string& key, Clock::time_point now) {
  releaseStale(now);
  auto it = byKey_.find(key);
  if (it == byKey_.end() || it->second.empty()) return nullptr;
  auto li = it->second.front();
  it->second.pop_front();
  if (it->second.empty()) byKey_.erase(it);
  BevPtr bev = std::move(li->bev);
  if (li == lean_) lean_ = std::next(li);
  lru_.erase(li);
  publishSize();
  bufferevent_setcb(bev.get(), nullptr, nullptr, nullptr, nullptr);
  bufferevent_set_timeouts(bev.get(), nullptr, nullptr);
  ++reuses_;
  return bev;
}

void UpstreamPool::put(const std::string& key, BevPtr bev, Clock::time_point now) {
  if (maxTotal_ == 0 || maxPerKey_ == 0) return;  // bev freed
  releaseStale(now);
  auto& keyList = byKey_[key];
  if (keyList.size() >= maxPerKey_) drop(keyList.back());
  if (lru_.size() >= maxTotal_) drop(std::prev(lru_.end()));
  lru_.push_front(Idle{key, std::move(bev), this, now, {}});
  auto li = lru_.begin();
  li->self = li;
  byKey_[key].push_front(li);
  publishSize();
  bufferevent* b = li->bev.get();
  // The arg is the list node; std::list iterators stay valid until that node is erased.
  bufferevent_setcb(b, &UpstreamPool::onIdleRead, nullptr, &UpstreamPool::onIdleEvent, &*li);
  timeval tv{time_t(idle_.count() / 1000), suseconds_t((idle_.count() % 1000) * 1000)};
  bufferevent_set_timeouts(b, &tv, nullptr);
  bufferevent_enable(b, EV_READ);
}

void UpstreamPool::drop(List::iterator it) {
  auto k = byKey_.find(it->key);
  if (k != byKey_.end()) {
    k->second.remove(it);
    if (k->second.empty()) byKey_.erase(k);
  }
  if (it == lean_) lean_ = std::next(it);
  lru_.erase(it);
  publishSize();
}

size_t UpstreamPool::dropOldest(size_t n) {
  size_t dropped = 0;
  for (; dropped < n && !lru_.empty(); ++dropped) drop(std::prev(lru_.end()));
  return dropped;
}

void UpstreamPool::releaseStale(Clock::time_point now) {
  while (lean_ != lru_.begin()) {
    auto older = std::prev(lean_);
    if (now - older->parkedAt < kKeepBuffersFor) break;
    if (release_) {
      release_(older->bev.get());
    } else if (SSL* ssl = bufferevent_openssl_get_ssl(older->bev.get())) {
      SSL_free_buffers(ssl);
    }
    lean_ = older;
  }
}

// Anything from an idle origin (data, EOF, error, idle timeout) ends the connection: an origin
// may not send an unsolicited response (RFC 9112 §9.3.2 leaves such a connection unusable).
void UpstreamPool::onIdleRead(bufferevent* bev, void* arg) { onIdleEvent(bev, BEV_EVENT_EOF, arg); }

void UpstreamPool::onIdleEvent(bufferevent*, short, void* arg) {
  auto* idle = static_cast<Idle*>(arg);
  idle->pool->drop(idle->self);
}

}  // namespace sekisho::server
