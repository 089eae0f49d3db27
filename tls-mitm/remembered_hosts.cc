#include "tls-mitm/remembered_hosts.h"

namespace sekisho::mitm {

std::string_view rememberKindName(RememberKind k) {
  return k == RememberKind::ClientCert ? "client_cert" : "pinned";
}

bool RememberedHosts::remember(const std::string& hostPort, RememberKind kind, time_t now) {
  std::lock_guard lk(mu_);
  auto it = map_.find(hostPort);
  if (it == map_.end()) {
    while (map_.size() >= max_ && !lru_.empty()) {
      map_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(hostPort);
    it = map_.emplace(hostPort, Entry{}).first;
    it->second.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  size_t k = size_t(kind);
  RememberedHost& h = it->second.info[k];
  bool fresh = !it->second.has[k] || h.until <= now;
  if (fresh) {
    h = RememberedHost{hostPort, kind, now, 0, 0};
    it->second.has[k] = true;
  }
  h.until = now + ttl_;
  return fresh;
}

bool RememberedHosts::check(const std::string& hostPort, RememberKind kind, time_t now) {
  std::lock_guard lk(mu_);
  auto it = map_.find(hostPort);
  if (it == map_.end()) return false;
  size_t k = size_t(kind);
  if (!it->second.has[k]) return false;
  if (it->second.info[k].until <= now) {
    it->second.has[k] = false;
    if (!it->second.has[0] && !it->second.has[1]) {
      lru_.erase(it->second.lru);
      map_.erase(it);
    }
    return false;
  }
  ++it->second.info[k].hits;
  return true;
}

std::vector<RememberedHost> RememberedHosts::list(time_t now) {
  std::lock_guard lk(mu_);
  std::vector<RememberedHost> out;
  for (const auto& name : lru_) {
    const Entry& e = map_.at(name);
    for (int k = 0; k < 2; ++k)
      if (e.has[k] && e.info[k].until > now) out.push_back(e.info[k]);
  }
  return out;
}

}  // namespace sekisho::mitm
