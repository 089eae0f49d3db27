#include "ca/cert_cache.h"

namespace sekisho::ca {

CertCache::CertCache(size_t maxEntries, time_t expiryMargin, Clock clock)
    : maxEntries_(maxEntries ? maxEntries : 1), margin_(expiryMargin), clock_(clock) {}

std::string CertCache::flatKey(const LeafKey& key) {
  std::string k = std::to_string(key.caId.size());
  k.reserve(k.size() + 1 + key.caId.size() + key.key.size());
  k += ':';
  k += key.caId;
  k += key.key;
  return k;
}

std::shared_ptr<const MintedLeaf> CertCache::lookupLocked(const std::string& k, time_t now) {
  auto it = map_.find(k);
  if (it == map_.end()) return nullptr;
  if (it->second.notAfter - margin_ <= now) {
    lru_.erase(it->second.lru);
    map_.erase(it);
    ++stats_.expired;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.leaf;
}

void CertCache::insertLocked(const std::string& k, std::shared_ptr<const MintedLeaf> leaf, time_t notAfter) {
  auto it = map_.find(k);
  if (it != map_.end()) {
    it->second.leaf = std::move(leaf);
    it->second.notAfter = notAfter;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  while (map_.size() >= maxEntries_ && !lru_.empty()) {
    map_.erase(lru_.back());
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.push_front(k);
  map_.emplace(k, Entry{std::move(leaf), notAfter, lru_.begin()});
}

std::shared_ptr<const MintedLeaf> CertCache::get(const LeafKey& key) {
  std::string k = flatKey(key);
  std::lock_guard<std::mutex> lock(mu_);
  auto leaf = lookupLocked(k, now());
  if (leaf) ++stats_.hits;
  return leaf;
}

bool CertCache::insert(const LeafKey& key, std::shared_ptr<const MintedLeaf> leaf) {
  if (!leaf || !leaf->cert) return false;
  auto notAfter = asn1TimeToEpoch(X509_get0_notAfter(leaf->cert.get()));
  if (!notAfter) return false;
  std::string k = flatKey(key);
  std::lock_guard<std::mutex> lock(mu_);
  if (*notAfter - margin_ <= now()) return false;
  insertLocked(k, std::move(leaf), *notAfter);
  return true;
}

Result<std::shared_ptr<const MintedLeaf>> CertCache::getOrMint(const LeafKey& key, const MintFn& mint) {
  std::string k = flatKey(key);
  std::shared_ptr<Pending> pending;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto leaf = lookupLocked(k, now())) {
      ++stats_.hits;
      return leaf;
    }
    if (auto it = pending_.find(k); it != pending_.end()) {
      std::shared_ptr<Pending> p = it->second;  // keep it alive after the minter erases it
      ++stats_.waits;
      minted_.wait(lock, [&] { return p->done; });
      if (p->result) ++stats_.hits;
      return p->result;
    }
    ++stats_.misses;
    pending = std::make_shared<Pending>();
    pending_.emplace(k, pending);
  }

  // Outside the lock: other keys are served while this one is minted.
  Result<MintedLeaf> minted = mint();
  Result<std::shared_ptr<const MintedLeaf>> result = std::shared_ptr<const MintedLeaf>();
  time_t notAfter = 0;
  if (minted) {
    auto leaf = std::make_shared<const MintedLeaf>(std::move(*minted));
    if (auto t = asn1TimeToEpoch(X509_get0_notAfter(leaf->cert.get()))) notAfter = *t;
    result = std::move(leaf);
  } else {
    result = tl::unexpected(minted.error());
  }

  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (result) {
      ++stats_.mints;
      if (notAfter - margin_ > now()) {
        insertLocked(k, *result, notAfter);
        cached = true;
      }
    } else {
      ++stats_.mintErrors;
    }
    pending->result = result;
    pending->done = true;
    pending_.erase(k);
  }
  minted_.notify_all();
  if (cached && onMinted_) onMinted_(key, *result, notAfter);
  return result;
}

size_t CertCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

CertCacheStats CertCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CertCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  map_.clear();
  lru_.clear();
}

}  // namespace sekisho::ca
