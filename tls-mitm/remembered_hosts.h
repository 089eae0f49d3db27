// Hosts that must be tunnelled rather than decrypted, learned at run time and remembered for a
// configurable time: origins that ask for a client certificate, and hosts whose clients rejected
// our minted certificate (pinned apps). Shared by every worker (one mutex, bounded, oldest
// entries dropped first); the admin listener lists them.
#pragma once
#include <cstdint>
#include <ctime>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sekisho::mitm {

enum class RememberKind : uint8_t { ClientCert, Pinned };
std::string_view rememberKindName(RememberKind k);  // "client_cert", "pinned"

struct RememberedHost {
  std::string host;  // "name:port"
  RememberKind kind = RememberKind::ClientCert;
  time_t since = 0, until = 0;
  uint64_t hits = 0;  // connections tunnelled because of this entry
};

class RememberedHosts {
 public:
  explicit RememberedHosts(time_t ttlSeconds = 3600, size_t maxEntries = 10000) : ttl_(ttlSeconds), max_(maxEntries) {}
  // Returns true when the host is new (or had expired): the caller logs it once.
  bool remember(const std::string& hostPort, RememberKind kind, time_t now);
  // Whether `hostPort` is remembered as `kind` at `now` (expired entries are dropped); counts a hit.
  bool check(const std::string& hostPort, RememberKind kind, time_t now);
  std::vector<RememberedHost> list(time_t now);
  void setTtl(time_t ttl) {
    std::lock_guard lk(mu_);
    ttl_ = ttl;
  }

 private:
  struct Entry {
    RememberedHost info[2];
    bool has[2] = {false, false};
    std::list<std::string>::iterator lru;
  };
  time_t ttl_;
  size_t max_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  std::list<std::string> lru_;  // front = most recently remembered
};

}  // namespace sekisho::mitm
