#include "proxy/server/resolver.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "proxy/base/log.h"
#include "proxy/base/strings.h"

namespace sekisho::server {

namespace {
constexpr size_t kMaxCacheEntries = 20000;
constexpr int kMinTtl = 5, kMaxTtl = 3600, kNegativeTtl = 5;
}  // namespace

HostsMap loadHostsFile(const std::string& path) {
  HostsMap out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string ip, name;
    if (!(words >> ip)) continue;
    auto addr = net::parseIp(ip);
    if (!addr) continue;
    while (words >> name) {
      auto& v = out[toLower(name)];
      if (std::find(v.begin(), v.end(), *addr) == v.end()) v.push_back(*addr);
    }
  }
  return out;
}

struct Resolver::Pending {
  Resolver* self;
  std::string host;
  std::shared_ptr<bool> alive;
};

Resolver::Resolver(event_base* base, std::shared_ptr<const HostsMap> hosts) : base_(base), hosts_(std::move(hosts)) {
  dns_ = evdns_base_new(base_, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
  if (!dns_) {
    // No usable resolv.conf: keep a resolver with no servers, so lookups fail fast and clearly.
    dns_ = evdns_base_new(base_, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    SLOG_WARN("dns: no name servers configured (resolv.conf unreadable); only overrides and /etc/hosts resolve");
  }
  evdns_base_set_option(dns_, "timeout:", "2");
  evdns_base_set_option(dns_, "attempts:", "2");
  evdns_base_set_option(dns_, "randomize-case:", "1");
}

Resolver::~Resolver() {
  *alive_ = false;
  // Fail outstanding requests (their callbacks see alive == false and return).
  if (dns_) evdns_base_free(dns_, 1);
}

void Resolver::resolve(const std::string& host, Callback cb) {
  ++lookups_;
  if (auto lit = net::parseIp(host)) {
    cb(std::vector<net::SocketAddr>{*lit});
    return;
  }
  if (overrides_) {
    if (auto it = overrides_->find(host); it != overrides_->end()) {
      cb(it->second);
      return;
    }
  }
  if (hosts_) {
    if (auto it = hosts_->find(host); it != hosts_->end()) {
      cb(it->second);
      return;
    }
  }
  auto now = std::chrono::steady_clock::now();
  if (auto it = cache_.find(host); it != cache_.end()) {
    if (it->second.expires > now) {
      ++hits_;
      cb(it->second.answer);
      return;
    }
    cache_.erase(it);
  }
  auto& waiters = waiting_[host];
  waiters.push_back(std::move(cb));
  if (waiters.size() > 1) return;  // a query for this name is already in flight
  auto* p = new Pending{this, host, alive_};
  if (!evdns_base_resolve_ipv4(dns_, host.c_str(), DNS_QUERY_NO_SEARCH, &Resolver::onDnsV4, p)) {
    delete p;
    finish(host, fail(ErrKind::Dns, Side::Upstream, "could not start a DNS query for " + host), kNegativeTtl);
  }
}

static std::vector<net::SocketAddr> collect(char type, int count, void* addresses) {
  std::vector<net::SocketAddr> out;
  for (int i = 0; i < count && i < 16; ++i) {
    net::SocketAddr a;
    if (type == DNS_IPv4_A) {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
      s4->sin_family = AF_INET;
      memcpy(&s4->sin_addr, static_cast<char*>(addresses) + 4 * i, 4);
      a.len = sizeof(sockaddr_in);
    } else if (type == DNS_IPv6_AAAA) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
      s6->sin6_family = AF_INET6;
      memcpy(&s6->sin6_addr, static_cast<char*>(addresses) + 16 * i, 16);
      a.len = sizeof(sockaddr_in6);
    } else {
      continue;
    }
    out.push_back(a);
  }
  return out;
}

void Resolver::onDnsV4(int result, char type, int count, int ttl, void* addresses, void* arg) {
  auto* p = static_cast<Pending*>(arg);
  if (!*p->alive) {
    delete p;
    return;
  }
  Resolver* self = p->self;
  if (result == DNS_ERR_NONE && count > 0) {
    auto addrs = collect(type, count, addresses);
    std::string host = std::move(p->host);
    delete p;
    self->finish(host, std::move(addrs), ttl);
    return;
  }
  if (result == DNS_ERR_SHUTDOWN || result == DNS_ERR_CANCEL) {
    delete p;
    return;
  }
  // No A record: try AAAA before giving up (IPv6-only origins).
  if (!evdns_base_resolve_ipv6(self->dns_, p->host.c_str(), DNS_QUERY_NO_SEARCH, &Resolver::onDnsV6, p)) {
    std::string host = std::move(p->host);
    delete p;
    self->finish(host, fail(ErrKind::Dns, Side::Upstream, "could not start a DNS query for " + host), kNegativeTtl);
  }
}

void Resolver::onDnsV6(int result, char type, int count, int ttl, void* addresses, void* arg) {
  auto* p = static_cast<Pending*>(arg);
  if (!*p->alive || result == DNS_ERR_SHUTDOWN || result == DNS_ERR_CANCEL) {
    delete p;
    return;
  }
  Resolver* self = p->self;
  std::string host = std::move(p->host);
  delete p;
  if (result == DNS_ERR_NONE && count > 0) {
    self->finish(host, collect(type, count, addresses), ttl);
    return;
  }
  std::string why = result == DNS_ERR_TIMEOUT ? "DNS lookup of " + host + " timed out"
                    : result == DNS_ERR_NOTEXIST || result == DNS_ERR_NONE
                        ? host + " does not exist in DNS"
                        : "DNS lookup of " + host + " failed: " + evdns_err_to_string(result);
  Error e{ErrKind::Dns, Side::Upstream, why, result == DNS_ERR_TIMEOUT};
  self->finish(host, tl::unexpected<Error>(std::move(e)), kNegativeTtl);
}

void Resolver::finish(const std::string& host, Result<std::vector<net::SocketAddr>> answer, int ttl) {
  if (cache_.size() >= kMaxCacheEntries) {
    auto now = std::chrono::steady_clock::now();
    std::erase_if(cache_, [&](const auto& kv) { return kv.second.expires <= now; });
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  }
  int clamped = answer ? std::clamp(ttl, kMinTtl, kMaxTtl) : kNegativeTtl;
  cache_[host] = Entry{answer, std::chrono::steady_clock::now() + std::chrono::seconds(clamped)};
  auto node = waiting_.extract(host);
  if (node.empty()) return;
  for (auto& cb : node.mapped()) cb(answer);
}

}  // namespace sekisho::server
