#include "proxy/server/client_counts.h"

#include <netinet/in.h>

namespace sekisho::server {

std::string ClientCounts::keyOf(const net::SocketAddr& peer) {
  if (peer.family() == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in*>(&peer.ss)->sin_addr;
    return std::string(reinterpret_cast<const char*>(&a), sizeof a);
  }
  if (peer.family() == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6*>(&peer.ss)->sin6_addr;
    // An IPv4-mapped address is that IPv4 client (a dual-stack listener sees it so).
    if (IN6_IS_ADDR_V4MAPPED(&a)) return std::string(reinterpret_cast<const char*>(&a) + 12, 4);
    return std::string(reinterpret_cast<const char*>(&a), sizeof a);
  }
  return std::string();
}

bool ClientCounts::tryAdd(const net::SocketAddr& peer, size_t limit) {
  std::string k = keyOf(peer);
  std::lock_guard lock(mu_);
  size_t& n = counts_[k];
  if (limit && n >= limit) {
    if (n == 0) counts_.erase(k);
    return false;
  }
  ++n;
  return true;
}

void ClientCounts::remove(const net::SocketAddr& peer) {
  std::string k = keyOf(peer);
  std::lock_guard lock(mu_);
  auto it = counts_.find(k);
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

size_t ClientCounts::count(const net::SocketAddr& peer) const {
  std::string k = keyOf(peer);
  std::lock_guard lock(mu_);
  auto it = counts_.find(k);
  return it == counts_.end() ? 0 : it->second;
}

size_t ClientCounts::clients() const {
  std::lock_guard lock(mu_);
  return counts_.size();
}

}  // namespace sekisho::server
