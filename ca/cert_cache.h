// The leaf-certificate cache shared by every worker thread: bounded LRU by entry count, keyed by
// (CA identity, caller's key), expiry checked on every read, one mint per key however many
// connections arrive for it at once.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "ca/leaf_minter.h"
#include "proxy/base/result.h"

namespace sekisho::ca {

struct LeafKey {
  std::string caId;  // Ca::id(): a new CA never gets a leaf signed by the old one
  std::string key;   // e.g. the origin certificate's SHA-256, or the sorted names + key type
};

struct CertCacheStats {
  uint64_t hits = 0;       // served from the cache (including callers that waited for a mint)
  uint64_t misses = 0;     // not present (or expiring): this caller minted
  uint64_t mints = 0;      // successful mints
  uint64_t mintErrors = 0;
  uint64_t evictions = 0;  // dropped for the size bound
  uint64_t expired = 0;    // dropped because the leaf expires within the margin
  uint64_t waits = 0;      // callers that waited for another thread's mint of the same key
};

class CertCache {
 public:
  static constexpr size_t kDefaultMaxEntries = 10000;
  static constexpr time_t kDefaultExpiryMargin = 3600;  // never hand out a leaf within 1 h of its end

  using Clock = time_t (*)();  // wall clock in seconds; tests pass a fake one

  explicit CertCache(size_t maxEntries = kDefaultMaxEntries, time_t expiryMargin = kDefaultExpiryMargin,
                     Clock clock = nullptr);
  CertCache(const CertCache&) = delete;
  CertCache& operator=(const CertCache&) = delete;

  using MintFn = std::function<Result<MintedLeaf>()>;

  // Returns the cached leaf for `key`, or calls `mint` (outside the lock) and caches its result.
  // When another thread is already minting the same key, waits for it instead of minting again:
  // a mint is one P-256 keygen + one CA signature, measured at ~0.2 ms on OpenSSL 3.0 (most of
  // it the generic public-key encoder; an RSA 3072 CA adds ~2-3 ms of signing), so the wait is
  // short, and a burst of first visits to one host costs one mint.
  // A failed mint is returned to the caller and to everyone waiting for it, and is not cached;
  // neither is a leaf that already ends within the expiry margin (it is returned once).
  // Thread-safe; `mint` must not call back into this cache.
  Result<std::shared_ptr<const MintedLeaf>> getOrMint(const LeafKey& key, const MintFn& mint);

  // Lookup only (expiry checked); nullptr when absent.
  std::shared_ptr<const MintedLeaf> get(const LeafKey& key);

  // Puts an already-minted leaf in the cache (the on-disk cache loading at start-up): counted
  // neither as a mint nor a miss, and the onMinted hook is not called. False (and not cached)
  // when the leaf has no readable notAfter or ends within the expiry margin.
  bool insert(const LeafKey& key, std::shared_ptr<const MintedLeaf> leaf);

  // Called after each successful mint that was cached (so never for a leaf inside the margin),
  // on the minting thread and outside the lock: it must be quick and must not call back into
  // this cache. Set it before the cache is shared between threads.
  using MintedHook = std::function<void(const LeafKey&, const std::shared_ptr<const MintedLeaf>&, time_t notAfter)>;
  void setOnMinted(MintedHook hook) { onMinted_ = std::move(hook); }

  size_t maxEntries() const noexcept { return maxEntries_; }
  time_t expiryMargin() const noexcept { return margin_; }
  time_t now() const { return clock_ ? clock_() : time(nullptr); }

  // The one string a LeafKey is stored under: length-prefixed so no (caId, key) pair can spell
  // another one.
  static std::string flatKey(const LeafKey& key);

  size_t size() const;
  CertCacheStats stats() const;
  void clear();

 private:
  struct Entry {
    std::shared_ptr<const MintedLeaf> leaf;
    time_t notAfter = 0;
    std::list<std::string>::iterator lru;
  };
  struct Pending {
    bool done = false;
    Result<std::shared_ptr<const MintedLeaf>> result = std::shared_ptr<const MintedLeaf>();
  };

  // Both run with mu_ held.
  std::shared_ptr<const MintedLeaf> lookupLocked(const std::string& k, time_t now);
  void insertLocked(const std::string& k, std::shared_ptr<const MintedLeaf> leaf, time_t notAfter);

  const size_t maxEntries_;
  const time_t margin_;
  const Clock clock_;
  mutable std::mutex mu_;                 // guards everything below; never held while minting
  std::condition_variable minted_;        // signalled when a Pending completes
  std::unordered_map<std::string, Entry> map_;
  std::list<std::string> lru_;            // front = most recently used
  std::unordered_map<std::string, std::shared_ptr<Pending>> pending_;  // keys being minted now
  CertCacheStats stats_;
  MintedHook onMinted_;
};

}  // namespace sekisho::ca
