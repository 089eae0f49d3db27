#include "ca/leaf_disk_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "proxy/base/fd_io.h"
#include "proxy/base/log.h"
#include "proxy/base/strings.h"

namespace sekisho::ca {
namespace {

constexpr const char* kMagic = "# sekisho leaf cache v1";
constexpr size_t kMaxFileBytes = 1 << 20;  // a leaf with 1000 SANs is well under this
constexpr const char* kTempPrefix = ".tmp-";

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool fromHex(std::string_view hex, std::string& out) {
  if (hex.size() % 2) return false;
  out.clear();
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = hexValue(hex[i]), lo = hexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out += char((hi << 4) | lo);
  }
  return true;
}

bool isLeafFileName(std::string_view name) {
  if (name.size() != 64 + 4 || !name.ends_with(".pem")) return false;
  return std::all_of(name.begin(), name.begin() + 64, [](char c) { return hexValue(c) >= 0; });
}

std::string modeText(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", unsigned(m & 07777));
  return buf;
}

bool appendPem(std::string& out, const MintedLeaf& leaf) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), leaf.cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(bio.get(), leaf.key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return false;
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  out.append(p, size_t(n));
  return true;
}

enum class Verdict { Ok, Corrupt, KeyMismatch, OtherCa, Expired };

struct Parsed {
  LeafKey key;
  std::shared_ptr<const MintedLeaf> leaf;
};

Result<std::string> readSmallFile(int dirFd, const std::string& name) {
  int fd = ::openat(dirFd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail(ErrKind::Io, Side::Internal, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || size_t(st.st_size) > kMaxFileBytes) {
    ::close(fd);
    return fail(ErrKind::Io, Side::Internal, "not a regular file of at most 1 MiB");
  }
  std::string data(size_t(st.st_size), '\0');
  size_t off = 0;
  while (off < data.size()) {
    ssize_t r = ::read(fd, data.data() + off, data.size() - off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    off += size_t(r);
  }
  ::close(fd);
  data.resize(off);
  return data;
}

// Reads "<prefix><value>\n" at `pos`; false when the line is not that.
bool headerLine(std::string_view text, size_t& pos, std::string_view prefix, std::string_view& value) {
  size_t nl = text.find('\n', pos);
  if (nl == std::string_view::npos) return false;
  std::string_view line = text.substr(pos, nl - pos);
  if (!line.starts_with(prefix)) return false;
  value = line.substr(prefix.size());
  pos = nl + 1;
  return true;
}

Verdict parseLeafFile(const std::string& name, const std::string& data, const Ca& ca, time_t now, time_t margin,
                      Parsed& out) {
  std::string_view text = data;
  size_t pos = 0;
  std::string_view magic, caId, keyHex;
  if (!headerLine(text, pos, "", magic) || magic != kMagic || !headerLine(text, pos, "# ca: ", caId) ||
      !headerLine(text, pos, "# key: ", keyHex))
    return Verdict::Corrupt;
  out.key.caId = std::string(caId);
  if (!fromHex(keyHex, out.key.key)) return Verdict::Corrupt;
  // A file renamed (or copied) under another key's name would serve the wrong host.
  if (LeafDiskCache::fileName(out.key) != name) return Verdict::Corrupt;

  BioPtr bio(BIO_new_mem_buf(data.data() + pos, int(data.size() - pos)));
  if (!bio) return Verdict::Corrupt;
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  EvpPkeyPtr key(cert ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!cert || !key) return Verdict::Corrupt;

  if (out.key.caId != ca.id()) return Verdict::OtherCa;
  auto notAfter = asn1TimeToEpoch(X509_get0_notAfter(cert.get()));
  if (!notAfter) {
    ERR_clear_error();
    return Verdict::Corrupt;
  }
  if (*notAfter - margin <= now) return Verdict::Expired;
  // The id in the header is only a claim: the signature decides who issued the leaf.
  EVP_PKEY* caKey = X509_get0_pubkey(ca.cert());
  if (!caKey || X509_verify(cert.get(), caKey) != 1 ||
      X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca.cert())) != 0) {
    ERR_clear_error();
    return Verdict::OtherCa;
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Verdict::KeyMismatch;
  }
  auto leaf = std::make_shared<MintedLeaf>();
  leaf->cert = std::move(cert);
  leaf->key = std::move(key);
  out.leaf = std::move(leaf);
  return Verdict::Ok;
}

}  // namespace

std::string LeafDiskLoadStats::summary() const {
  std::string s = "loaded " + std::to_string(loaded) + ", dropped " + std::to_string(dropped());
  if (dropped()) {
    s += " (expired " + std::to_string(expired) + ", corrupt " + std::to_string(corrupt) + ", key mismatch " +
         std::to_string(keyMismatch) + ", other CA " + std::to_string(otherCa) + ", over the bound " +
         std::to_string(overBound) + ", stale temp " + std::to_string(staleTemp) + ")";
  }
  return s;
}

std::string LeafDiskCache::fileName(const LeafKey& key) {
  std::string flat = CertCache::flatKey(key);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(flat.data(), flat.size(), md, &n, EVP_sha256(), nullptr) != 1) return {};
  return toHex(md, n) + ".pem";
}

Result<std::shared_ptr<LeafDiskCache>> LeafDiskCache::open(const LeafDiskCacheOptions& opts) {
  const std::string& dir = opts.dir;
  if (dir.empty()) return fail(ErrKind::Config, Side::Config, "leaf cache directory is empty");
  if (::mkdir(dir.c_str(), 0700) == 0) {
    SLOG_INFO("tls.leaf_cache_dir: created %s (mode 0700)", dir.c_str());
  } else if (errno != EEXIST) {
    return fail(ErrKind::Io, Side::Config, dir + ": cannot create the leaf cache directory: " + std::strerror(errno));
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return fail(ErrKind::Io, Side::Config,
                dir + ": cannot open the leaf cache directory: " + std::strerror(errno) +
                    (errno == ENOTDIR ? " (expected a directory)" : ""));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return fail(ErrKind::Io, Side::Config, dir + ": cannot stat the leaf cache directory: " + std::strerror(e));
  }
  if (st.st_uid != ::geteuid()) {
    ::close(fd);
    return fail(ErrKind::Config, Side::Config,
                dir + ": leaf cache directory is owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " +
                    std::to_string(::geteuid()) + "); it holds private keys for every intercepted site");
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    ::close(fd);
    return fail(ErrKind::Config, Side::Config,
                dir + ": leaf cache directory is accessible by group or others (mode " + modeText(st.st_mode) +
                    "); it holds private keys for every intercepted site: run chmod 700 " + dir);
  }
  if (::faccessat(fd, ".", R_OK | W_OK | X_OK, AT_EACCESS) != 0) {
    int e = errno;
    ::close(fd);
    return fail(ErrKind::Io, Side::Config, dir + ": leaf cache directory is not readable and writable: " + std::strerror(e));
  }
  LeafDiskCacheOptions o = opts;
  if (!o.maxEntries) o.maxEntries = 1;
  std::shared_ptr<LeafDiskCache> cache(new LeafDiskCache(std::move(o), fd));
  cache->writer_ = std::thread([raw = cache.get()] { raw->run(); });
  return cache;
}

LeafDiskCache::LeafDiskCache(LeafDiskCacheOptions opts, int dirFd) : opts_(std::move(opts)), dirFd_(dirFd) {}

LeafDiskCache::~LeafDiskCache() {
  stop();
  ::close(dirFd_);
}

LeafDiskLoadStats LeafDiskCache::loadInto(CertCache& cache, const Ca& ca) {
  LeafDiskLoadStats out;
  struct Found {
    std::string name;
    struct timespec mtime;
  };
  std::vector<Found> found;
  int dupFd = ::dup(dirFd_);
  DIR* d = dupFd >= 0 ? ::fdopendir(dupFd) : nullptr;
  if (!d) {
    if (dupFd >= 0) ::close(dupFd);
    SLOG_WARN("tls.leaf_cache_dir: cannot list %s: %s", opts_.dir.c_str(), std::strerror(errno));
    return out;
  }
  ::rewinddir(d);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(kTempPrefix, 0) == 0) {
      if (::unlinkat(dirFd_, name.c_str(), 0) == 0) ++out.staleTemp;
      continue;
    }
    if (!isLeafFileName(name)) continue;  // not ours: left alone
    struct stat st {};
    if (::fstatat(dirFd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode)) {
      if (!S_ISDIR(st.st_mode) && ::unlinkat(dirFd_, name.c_str(), 0) == 0) ++out.corrupt;
      continue;
    }
    found.push_back(Found{name, st.st_mtim});
  }
  ::closedir(d);
  // Newest first; the name breaks ties so the order is stable.
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    if (a.mtime.tv_sec != b.mtime.tv_sec) return a.mtime.tv_sec > b.mtime.tv_sec;
    if (a.mtime.tv_nsec != b.mtime.tv_nsec) return a.mtime.tv_nsec > b.mtime.tv_nsec;
    return a.name < b.name;
  });
  const size_t bound = std::min(opts_.maxEntries, cache.maxEntries());
  std::vector<std::string> kept;  // newest first
  std::vector<Parsed> leaves;
  for (const Found& f : found) {
    auto drop = [&](size_t& counter) {
      ::unlinkat(dirFd_, f.name.c_str(), 0);
      ++counter;
    };
    if (kept.size() >= bound) {
      drop(out.overBound);
      continue;
    }
    auto data = readSmallFile(dirFd_, f.name);
    if (!data) {
      drop(out.corrupt);
      continue;
    }
    Parsed p;
    switch (parseLeafFile(f.name, *data, ca, cache.now(), cache.expiryMargin(), p)) {
      case Verdict::Ok:
        kept.push_back(f.name);
        leaves.push_back(std::move(p));
        break;
      case Verdict::Corrupt:
        drop(out.corrupt);
        break;
      case Verdict::KeyMismatch:
        drop(out.keyMismatch);
        break;
      case Verdict::OtherCa:
        drop(out.otherCa);
        break;
      case Verdict::Expired:
        drop(out.expired);
        break;
    }
  }
  // Oldest first into the LRU, so the newest leaves end up the most recently used. The index is
  // rebuilt from what this scan kept.
  std::lock_guard<std::mutex> lock(indexMu_);
  order_.clear();
  index_.clear();
  for (size_t i = leaves.size(); i-- > 0;) {
    if (!cache.insert(leaves[i].key, leaves[i].leaf)) {
      ::unlinkat(dirFd_, kept[i].c_str(), 0);
      ++out.expired;  // the margin was crossed between the check and now
      continue;
    }
    ++out.loaded;
    if (index_.count(kept[i])) continue;
    order_.push_back(kept[i]);
    index_[kept[i]] = std::prev(order_.end());
  }
  return out;
}

void LeafDiskCache::attachTo(CertCache& cache) {
  std::shared_ptr<LeafDiskCache> self = shared_from_this();
  cache.setOnMinted([self](const LeafKey& key, const std::shared_ptr<const MintedLeaf>& leaf, time_t) {
    self->enqueue(key, leaf);
  });
}

bool LeafDiskCache::enqueue(const LeafKey& key, std::shared_ptr<const MintedLeaf> leaf) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= opts_.queueLimit) {
      ++stats_.dropped;
      return false;
    }
    queue_.push_back(Job{key, std::move(leaf)});
  }
  wake_.notify_one();
  return true;
}

void LeafDiskCache::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void LeafDiskCache::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

LeafDiskStats LeafDiskCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

size_t LeafDiskCache::filesKnown() const {
  std::lock_guard<std::mutex> lock(indexMu_);
  return order_.size();
}

void LeafDiskCache::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and everything queued is written
    Job job = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    write(job);
    job.leaf.reset();
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
  busy_ = false;
  idle_.notify_all();
}

void LeafDiskCache::write(const Job& job) {
  auto failed = [&](const std::string& what) {
    uint64_t n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = ++stats_.writeErrors;
    }
    if ((n & (n - 1)) == 0)  // the 1st, 2nd, 4th, 8th... so a full disk does not flood the log
      SLOG_WARN("tls.leaf_cache_dir: %s: %s (%llu write errors so far)", opts_.dir.c_str(), what.c_str(),
                static_cast<unsigned long long>(n));
  };
  std::string name = fileName(job.key);
  std::string text = std::string(kMagic) + "\n# ca: " + job.key.caId + "\n# key: " +
                     toHex(reinterpret_cast<const unsigned char*>(job.key.key.data()), job.key.key.size()) + "\n";
  if (name.empty() || job.key.caId.find('\n') != std::string::npos || !appendPem(text, *job.leaf)) {
    ERR_clear_error();
    return failed("cannot encode a leaf");
  }
  std::string tmp = std::string(kTempPrefix) + name + "." + std::to_string(++tempSeq_);
  int fd = ::openat(dirFd_, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return failed(tmp + ": cannot create: " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0 && writeAll(fd, text);
  int e = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (!ok || ::renameat(dirFd_, tmp.c_str(), dirFd_, name.c_str()) != 0) {
    if (ok) e = errno;
    ::unlinkat(dirFd_, tmp.c_str(), 0);
    return failed(name + ": write failed: " + std::strerror(e));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.written;
  }
  remember(name);
}

void LeafDiskCache::remember(const std::string& name) {
  uint64_t evicted = 0;
  {
    std::lock_guard<std::mutex> lock(indexMu_);
    if (auto it = index_.find(name); it != index_.end()) {
      order_.splice(order_.end(), order_, it->second);  // rewritten: now the newest
    } else {
      order_.push_back(name);
      index_[name] = std::prev(order_.end());
    }
    while (order_.size() > opts_.maxEntries) {
      ::unlinkat(dirFd_, order_.front().c_str(), 0);
      index_.erase(order_.front());
      order_.pop_front();
      ++evicted;
    }
  }
  if (evicted) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.evicted += evicted;
  }
}

}  // namespace sekisho::ca
