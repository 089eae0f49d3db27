// Open client connections per client address, across every worker of the process: what
// limits.max_connections_per_client is checked against (Squid's maxconn). One host that opens
// connections without end (a runaway script, malware) is refused past its share, while the other
// clients keep theirs. A mutex guards the map: it is taken once when a connection is accepted and
// once when it ends, never per request.
#pragma once
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

#include "proxy/net/address.h"

namespace sekisho::server {

class ClientCounts {
 public:
  // Counts one more connection from `peer` unless it already has `limit` (0: no limit). False:
  // refused, nothing counted.
  bool tryAdd(const net::SocketAddr& peer, size_t limit);
  void remove(const net::SocketAddr& peer);  // after a successful tryAdd
  size_t count(const net::SocketAddr& peer) const;
  size_t clients() const;  // addresses with at least one connection

 private:
  static std::string keyOf(const net::SocketAddr& peer);  // the address without the port
  mutable std::mutex mu_;
  std::unordered_map<std::string, size_t> counts_;
};

}  // namespace sekisho::server
