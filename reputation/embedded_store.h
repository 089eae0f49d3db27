// The embedded verdict store: in-process indexes, one per source, behind one shared snapshot.
// Readers take the snapshot pointer and never see half a feed: an import builds a whole new
// index, then swaps the pointer. Persisted under <dataDir>/reputation/ so a restart keeps feeds.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/result.h"
#include "proxy/net/address.h"
#include "reputation/feeds.h"
#include "reputation/normalize.h"
#include "reputation/verdict.h"

namespace sekisho::reputation {

class SourceIndex;  // one source's immutable index (embedded_store.cc)

// What a lookup asks about. `url` may be null (a CONNECT before TLS: host only).
struct LookupKeys {
  const NormalUrl* url = nullptr;
  const NormalHost* host = nullptr;  // defaults to url->host
  std::vector<net::SocketAddr> ips;  // resolved addresses of the host, if known
};

struct SourceInfo {
  std::string name;
  size_t entries = 0;
  int64_t updated = 0;  // unix seconds of the last replace or delta
};

class EmbeddedStore {
 public:
  // A store with nothing loaded and no persistence (tests, benchmarks).
  EmbeddedStore();
  ~EmbeddedStore();
  EmbeddedStore(const EmbeddedStore&) = delete;
  EmbeddedStore& operator=(const EmbeddedStore&) = delete;

  // Loads every source persisted under <dataDir>/reputation/ (creating the directory). Later
  // replace/delta calls are written back there (temp file + fsync + rename).
  static Result<std::unique_ptr<EmbeddedStore>> open(const std::string& dataDir);

  // Parses a feed file (or squidGuard directory) straight into a new index and, when it yields
  // entries, installs it as opts.source's whole set. The result carries the counts and line
  // errors but no entries (they went into the index), so an import never holds both.
  Result<FeedResult> importFeed(Format format, const std::string& path, FeedOptions opts);
  // Replaces `feed.source`'s whole set atomically.
  Result<void> replaceSource(const FeedResult& feed);
  // Adds `adds` (same defaults as a feed) and removes `removes` (kind + key) from one source.
  Result<void> applyDelta(const FeedResult& adds, const std::vector<FeedEntry>& removes);
  Result<void> removeSource(const std::string& source);

  // Every rule from every source that matches, expired ones included (policy drops them).
  // Thread-safe; a reader holds a mutex only to copy the snapshot pointer; allocates only on a hit.
  std::vector<Match> lookup(const LookupKeys& keys) const;

  std::vector<SourceInfo> sources() const;
  size_t size() const;
  size_t sourceSize(const std::string& source) const;  // 0 when absent

 private:
  struct Snapshot;
  std::shared_ptr<const Snapshot> snapshot() const;
  Result<void> install(const std::string& source, std::shared_ptr<const SourceIndex> index);
  Result<void> persist(const SourceIndex& index) const;

  std::string dir_;     // empty: in memory only
  std::mutex writeMu_;  // serialises writers; readers never take it
  // Guards only the copy of snap_ (a reference-count increment). libstdc++ 12's
  // atomic<shared_ptr> is lock-based too, and ThreadSanitizer cannot see its lock.
  mutable std::mutex snapMu_;
  std::shared_ptr<const Snapshot> snap_;
};

}  // namespace sekisho::reputation
