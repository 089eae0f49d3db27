// The optional on-disk copy of the leaf cache (tls.leaf_cache_dir), so a restart starts warm.
//
// Offers: open() checks (or creates, 0700) a directory only this user can enter and starts one
// background writer thread; attachTo() makes every leaf the CertCache mints and caches go to
// that thread through a bounded queue (full -> dropped and counted; the minting thread never
// touches the disk); loadInto() reads the directory into a CertCache at start-up, before the
// workers run; stop() (or the destructor) writes what is queued and joins the thread.
//
// One file per leaf, "<hex SHA-256 of CertCache::flatKey(key)>.pem", mode 0600, written to a
// temp file in the same directory and renamed into place:
//   # sekisho leaf cache v1
//   # ca: <LeafKey::caId>
//   # key: <LeafKey::key, hex>
//   -----BEGIN CERTIFICATE----- ... -----BEGIN PRIVATE KEY----- ...
// A load deletes every file it does not use: expired or inside the cache's expiry margin, not
// parseable (garbage, truncated, renamed), a private key that does not match the certificate,
// or a leaf the current CA did not issue (other CA id, or the signature does not verify with
// the CA's public key), and those past the entry bound (newest files by mtime are kept).
// The directory never holds more than maxEntries leaves: past it, the writer deletes the file
// written longest ago (files loaded at start-up count, oldest mtime first). Files are not
// fsync'd: after a crash a leaf may be missing or truncated, and a truncated one is dropped.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "ca/ca_store.h"
#include "ca/cert_cache.h"
#include "proxy/base/result.h"

namespace sekisho::ca {

struct LeafDiskCacheOptions {
  std::string dir;                                         // created 0700 when missing (not its parents)
  size_t maxEntries = CertCache::kDefaultMaxEntries;       // files kept on disk (and loaded)
  size_t queueLimit = 1024;                                // writes waiting; past it they are dropped
};

// What a load did, for the one start-up log line.
struct LeafDiskLoadStats {
  size_t loaded = 0;
  size_t expired = 0;      // ended, or ends within the cache's expiry margin
  size_t corrupt = 0;      // unreadable, not the format, truncated PEM, name not matching the key
  size_t keyMismatch = 0;  // private key does not belong to the certificate
  size_t otherCa = 0;      // written for another CA id, or not signed by the current CA
  size_t overBound = 0;    // valid but past maxEntries (the oldest go)
  size_t staleTemp = 0;    // temp files left by an interrupted write
  size_t dropped() const { return expired + corrupt + keyMismatch + otherCa + overBound + staleTemp; }
  std::string summary() const;  // "loaded 3, dropped 2 (expired 1, corrupt 1, ...)"
};

struct LeafDiskStats {
  uint64_t written = 0;
  uint64_t dropped = 0;      // queue full (or already stopped)
  uint64_t writeErrors = 0;
  uint64_t evicted = 0;      // files deleted to keep the directory within maxEntries
};

class LeafDiskCache : public std::enable_shared_from_this<LeafDiskCache> {
 public:
  // Refuses (ErrKind::Config) a path that is not a directory, a directory owned by another user
  // or with any group/other permission bit; ErrKind::Io when it cannot be created or used.
  static Result<std::shared_ptr<LeafDiskCache>> open(const LeafDiskCacheOptions& opts);
  ~LeafDiskCache();
  LeafDiskCache(const LeafDiskCache&) = delete;
  LeafDiskCache& operator=(const LeafDiskCache&) = delete;

  // Start-up: fills `cache` with the leaves on disk that `ca` issued (expiry judged by the
  // cache's clock and margin) and deletes the rest. Call before attachTo() and before the cache
  // is shared.
  LeafDiskLoadStats loadInto(CertCache& cache, const Ca& ca);

  // From now on every leaf `cache` mints and caches is queued for writing. The cache keeps this
  // object alive.
  void attachTo(CertCache& cache);

  // Queues one leaf; never blocks on I/O. False when dropped (queue full, or stopped).
  bool enqueue(const LeafKey& key, std::shared_ptr<const MintedLeaf> leaf);
  // Waits until everything queued so far is on disk (tests, and stop()).
  void flush();
  // Writes what is queued, then joins the writer; later enqueues are dropped. Idempotent.
  void stop();

  LeafDiskStats stats() const;
  const std::string& dir() const noexcept { return opts_.dir; }
  size_t filesKnown() const;  // leaf files the bound currently counts

  static std::string fileName(const LeafKey& key);  // "<64 hex>.pem"

 private:
  struct Job {
    LeafKey key;
    std::shared_ptr<const MintedLeaf> leaf;
  };
  LeafDiskCache(LeafDiskCacheOptions opts, int dirFd);
  void run();
  void write(const Job& job);
  void remember(const std::string& name);  // writer: count the file against the bound

  const LeafDiskCacheOptions opts_;
  const int dirFd_;

  mutable std::mutex mu_;  // guards the queue and flags; never held during I/O
  std::condition_variable wake_, idle_;
  std::deque<Job> queue_;
  bool busy_ = false, stopping_ = false;
  LeafDiskStats stats_;

  mutable std::mutex indexMu_;  // the files on disk, oldest first (loader, then writer)
  std::list<std::string> order_;
  std::unordered_map<std::string, std::list<std::string>::iterator> index_;
  uint64_t tempSeq_ = 0;

  std::thread writer_;
};

}  // namespace sekisho::ca
