// Per-worker asynchronous name resolution on the worker's event loop: static `resolve` overrides,
// IP literals, /etc/hosts, then DNS through evdns. Answers are cached honouring the record TTL
// (clamped), failures are cached briefly, and concurrent lookups of one name share one query.
#pragma once
#include <event2/dns.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/base/result.h"
#include "proxy/net/address.h"

namespace sekisho::server {

using HostsMap = std::unordered_map<std::string, std::vector<net::SocketAddr>>;
// Parses an /etc/hosts-style file (missing file -> empty map).
HostsMap loadHostsFile(const std::string& path);

class Resolver {
 public:
  using Callback = std::function<void(Result<std::vector<net::SocketAddr>>)>;

  Resolver(event_base* base, std::shared_ptr<const HostsMap> hosts);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  void setOverrides(std::shared_ptr<const HostsMap> overrides) { overrides_ = std::move(overrides); }
  // Calls `cb` exactly once, possibly before returning (cache hit, literal, override). `host` is
  // lower-case. Addresses carry port 0.
  void resolve(const std::string& host, Callback cb);

  uint64_t lookups() const { return lookups_; }
  uint64_t cacheHits() const { return hits_; }

 private:
  struct Entry {
    Result<std::vector<net::SocketAddr>> answer;
    std::chrono::steady_clock::time_point expires;
  };
  struct Pending;
  static void onDnsV4(int result, char type, int count, int ttl, void* addresses, void* arg);
  static void onDnsV6(int result, char type, int count, int ttl, void* addresses, void* arg);
  void finish(const std::string& host, Result<std::vector<net::SocketAddr>> answer, int ttl);

  event_base* base_;
  evdns_base* dns_ = nullptr;
  std::shared_ptr<const HostsMap> hosts_;
  std::shared_ptr<const HostsMap> overrides_;
  std::unordered_map<std::string, Entry> cache_;
  std::unordered_map<std::string, std::vector<Callback>> waiting_;
  uint64_t lookups_ = 0, hits_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sekisho::server
