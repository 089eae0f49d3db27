#include "reputation/embedded_store.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <unordered_map>
#include <utility>

#include "proxy/base/strings.h"
#include "reputation/public_suffix.h"

namespace sekisho::reputation {

namespace {

constexpr std::string_view kFileMagic = "sekisho-reputation 1";
constexpr uint32_t kEmpty = UINT32_MAX;

// 28 bytes per rule; strings live in one arena per source, so a million rules are a few
// allocations, not a million.
struct Rec {
  uint32_t keyOff = 0, refOff = 0;
  uint16_t keyLen = 0, refLen = 0;
  uint32_t added = 0, expires = 0;  // unix seconds (fits until 2106)
  uint16_t cat = 0;
  uint8_t score = 0;
  Action action = Action::Block;
  RuleKind kind = RuleKind::Domain;
};

struct V6Key {
  uint64_t hi = 0, lo = 0;
  bool operator==(const V6Key&) const = default;
};
struct V6Hash {
  size_t operator()(const V6Key& k) const noexcept {
    return std::hash<uint64_t>{}(k.hi * 0x9E3779B97F4A7C15ull ^ k.lo);
  }
};

uint32_t v4Bits(const net::SocketAddr& a) {
  return ntohl(reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr.s_addr);
}
V6Key v6Bits(const net::SocketAddr& a) {
  const uint8_t* b = reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr.s6_addr;
  V6Key k;
  for (int i = 0; i < 8; ++i) k.hi = (k.hi << 8) | b[i];
  for (int i = 8; i < 16; ++i) k.lo = (k.lo << 8) | b[i];
  return k;
}
V6Key maskV6(V6Key k, unsigned prefix) {
  if (prefix == 0) return {};
  if (prefix <= 64) return {k.hi & (prefix == 64 ? ~0ull : ~(~0ull >> prefix)), 0};
  unsigned lo = prefix - 64;
  return {k.hi, k.lo & (lo == 64 ? ~0ull : ~(~0ull >> lo))};
}
uint32_t maskV4(uint32_t a, unsigned prefix) { return prefix == 0 ? 0 : a & (~0u << (32 - prefix)); }

size_t hashKey(RuleKind kind, std::string_view key) noexcept {
  return std::hash<std::string_view>{}(key) ^ (size_t(kind) * 0x9E3779B97F4A7C15ull);
}

std::string cleanRef(std::string_view s) {
  std::string out(s.substr(0, 1024));
  for (char& c : out)
    if (c == '\t' || c == '\r' || c == '\n') c = ' ';
  return out;
}

int64_t nowUnix() { return int64_t(::time(nullptr)); }

}  // namespace

// One source's rules, immutable once built and shared by every reader holding a snapshot.
class SourceIndex {
 public:
  std::string name;
  int64_t updated = 0;

  struct Add {
    RuleKind kind;
    std::string_view key, category, reference;
    int score;
    Action action;
    int64_t added, expires;
  };

  void add(const Add& a) {
    if (a.key.empty() || a.key.size() > UINT16_MAX) return;
    if (auto found = find(a.kind, a.key); found != kEmpty) {
      Rec& r = recs_[found];  // duplicates: keep the strongest claim
      if (a.score > r.score) r.score = uint8_t(a.score);
      return;
    }
    Rec r;
    r.kind = a.kind;
    r.keyOff = uint32_t(arena_.size());
    r.keyLen = uint16_t(a.key.size());
    arena_.append(a.key);
    std::string ref = cleanRef(a.reference);
    r.refOff = uint32_t(arena_.size());
    r.refLen = uint16_t(ref.size());
    arena_.append(ref);
    r.added = uint32_t(std::max<int64_t>(0, std::min<int64_t>(a.added, UINT32_MAX)));
    r.expires = uint32_t(std::max<int64_t>(0, std::min<int64_t>(a.expires, UINT32_MAX)));
    r.cat = categoryId(a.category);
    r.score = uint8_t(std::clamp(a.score, 0, 100));
    r.action = a.action;
    uint32_t idx = uint32_t(recs_.size());
    recs_.push_back(r);
    if (a.kind == RuleKind::Cidr) {
      addCidr(a.key, idx);
      return;
    }
    if ((keyed_ + 1) * 2 > slots_.size()) rehash(std::max<size_t>(64, slots_.size() * 2));
    insertSlot(idx);
    ++keyed_;
  }

  void finish() {
    // No shrink_to_fit: the unused tail of a large buffer is never touched, so it costs address
    // space, not RSS, while shrinking would copy the whole index and double the peak.
    for (unsigned p = 0; p <= 32; ++p)
      if (!v4_[p].empty()) v4Lens_.push_back(p);
    std::sort(v4Lens_.rbegin(), v4Lens_.rend());
    for (auto it = v6_.rbegin(); it != v6_.rend(); ++it) v6Lens_.push_back(it->first);
  }

  uint32_t find(RuleKind kind, std::string_view key) const noexcept {
    if (slots_.empty()) return kEmpty;
    size_t mask = slots_.size() - 1;
    for (size_t i = hashKey(kind, key) & mask;; i = (i + 1) & mask) {
      uint32_t s = slots_[i];
      if (s == kEmpty) return kEmpty;
      const Rec& r = recs_[s];
      if (r.kind == kind && keyOf(r) == key) return s;
    }
  }

  void findCidr(const net::SocketAddr& a, std::vector<uint32_t>& out) const {
    if (a.family() == AF_INET) {
      uint32_t bits = v4Bits(a);
      for (unsigned p : v4Lens_)
        if (auto it = v4_[p].find(maskV4(bits, p)); it != v4_[p].end()) out.push_back(it->second);
    } else if (a.family() == AF_INET6) {
      V6Key bits = v6Bits(a);
      for (unsigned p : v6Lens_) {
        const auto& m = v6_.at(p);
        if (auto it = m.find(maskV6(bits, p)); it != m.end()) out.push_back(it->second);
      }
    }
  }

  Match toMatch(uint32_t idx) const {
    const Rec& r = recs_[idx];
    Match m;
    m.kind = r.kind;
    m.key = std::string(keyOf(r));
    m.source = name;
    m.category = categories_[r.cat];
    m.score = r.score;
    m.action = r.action;
    m.added = r.added;
    m.expires = r.expires;
    m.reference = std::string(arena_.data() + r.refOff, r.refLen);
    return m;
  }

  size_t size() const { return recs_.size(); }
  bool empty() const { return recs_.empty(); }

  template <class Fn>
  void forEach(Fn&& fn) const {
    for (uint32_t i = 0; i < recs_.size(); ++i)
      fn(recs_[i], keyOf(recs_[i]), std::string_view(arena_.data() + recs_[i].refOff, recs_[i].refLen),
         categories_[recs_[i].cat]);
  }

 private:
  std::string_view keyOf(const Rec& r) const noexcept { return {arena_.data() + r.keyOff, r.keyLen}; }

  uint16_t categoryId(std::string_view c) {
    for (size_t i = 0; i < categories_.size(); ++i)
      if (categories_[i] == c) return uint16_t(i);
    categories_.emplace_back(c);
    return uint16_t(categories_.size() - 1);
  }

  void insertSlot(uint32_t idx) {
    size_t mask = slots_.size() - 1;
    const Rec& r = recs_[idx];
    size_t i = hashKey(r.kind, keyOf(r)) & mask;
    while (slots_[i] != kEmpty) i = (i + 1) & mask;
    slots_[i] = idx;
  }

  void rehash(size_t n) {
    std::vector<uint32_t> old;
    old.swap(slots_);
    slots_.assign(n, kEmpty);
    for (uint32_t s : old)
      if (s != kEmpty) insertSlot(s);
  }

  void addCidr(std::string_view key, uint32_t idx) {
    auto c = net::parseCidr(key);
    if (!c) return;
    if (c->base.family() == AF_INET)
      v4_[c->prefix].emplace(v4Bits(c->base), idx);
    else
      v6_[c->prefix].emplace(v6Bits(c->base), idx);
  }

  std::string arena_;
  std::vector<Rec> recs_;
  std::vector<uint32_t> slots_;  // open addressing, linear probing, load <= 0.5
  size_t keyed_ = 0;
  std::vector<std::string> categories_;
  // CIDR: one hash map per prefix length, probed longest first. Feeds hold few distinct lengths
  // (DROP uses ~15), so a lookup is a handful of probes.
  std::array<std::unordered_map<uint32_t, uint32_t>, 33> v4_;
  std::map<unsigned, std::unordered_map<V6Key, uint32_t, V6Hash>> v6_;
  std::vector<unsigned> v4Lens_, v6Lens_;
};

struct EmbeddedStore::Snapshot {
  std::map<std::string, std::shared_ptr<const SourceIndex>> sources;
};

namespace {

std::shared_ptr<SourceIndex> buildIndex(const FeedResult& feed, int64_t updated) {
  auto idx = std::make_shared<SourceIndex>();
  idx->name = feed.source;
  idx->updated = updated;
  for (const FeedEntry& e : feed.entries)
    idx->add({e.kind, e.key,
              e.category.empty() ? std::string_view(feed.category) : std::string_view(e.category),
              e.reference, e.score < 0 ? feed.score : e.score, feed.action, e.added, e.expires});
  return idx;
}

Error ioError(const std::string& what) {
  return Error{ErrKind::Io, Side::Internal, what + ": " + std::strerror(errno), false};
}

bool parseKind(std::string_view s, RuleKind& k) {
  for (RuleKind x : {RuleKind::Url, RuleKind::UrlPrefix, RuleKind::Domain, RuleKind::Ip, RuleKind::Cidr})
    if (kindName(x) == s) {
      k = x;
      return true;
    }
  return false;
}

// Reads one persisted source file (see persist() for the format).
Result<std::shared_ptr<SourceIndex>> loadFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return tl::unexpected(ioError("cannot open '" + path + "'"));
  std::unique_ptr<FILE, int (*)(FILE*)> guard(f, std::fclose);
  auto idx = std::make_shared<SourceIndex>();
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t n;
  size_t lineNo = 0;
  std::vector<std::string_view> cols;
  auto bad = [&](const std::string& why) {
    std::free(buf);
    return fail(ErrKind::Io, Side::Internal, path + ":" + std::to_string(lineNo) + ": " + why);
  };
  while ((n = getline(&buf, &cap, f)) > 0) {
    ++lineNo;
    std::string_view line(buf, size_t(n));
    if (line.back() == '\n') line.remove_suffix(1);
    if (lineNo == 1) {
      if (line != kFileMagic)
        return bad("not a reputation store file (expected '" + std::string(kFileMagic) + "')");
      continue;
    }
    cols.clear();
    while (true) {
      size_t tab = line.find('\t');
      cols.push_back(line.substr(0, tab));
      if (tab == std::string_view::npos) break;
      line.remove_prefix(tab + 1);
    }
    if (cols[0] == "source" && cols.size() == 3) {
      idx->name = std::string(cols[1]);
      idx->updated = int64_t(parseDecimal(cols[2]).value_or(0));
      continue;
    }
    RuleKind kind;
    Action action;
    if (cols[0] != "e" || cols.size() != 9 || !parseKind(cols[1], kind) || !parseAction(cols[5], action))
      return bad("malformed entry line");
    auto score = parseDecimal(cols[4], 100);
    auto added = parseDecimal(cols[6]);
    auto expires = parseDecimal(cols[7]);
    if (!score || !added || !expires) return bad("malformed number");
    idx->add({kind, cols[2], cols[3], cols[8], int(*score), action, int64_t(*added), int64_t(*expires)});
  }
  std::free(buf);
  if (std::ferror(f)) return tl::unexpected(ioError("cannot read '" + path + "'"));
  if (!validSourceName(idx->name))
    return fail(ErrKind::Io, Side::Internal, path + ": missing or bad source line");
  idx->finish();
  return idx;
}

}  // namespace

EmbeddedStore::EmbeddedStore() : snap_(std::make_shared<const Snapshot>()) {}
EmbeddedStore::~EmbeddedStore() = default;

std::shared_ptr<const EmbeddedStore::Snapshot> EmbeddedStore::snapshot() const {
  std::lock_guard lock(snapMu_);
  return snap_;
}

Result<std::unique_ptr<EmbeddedStore>> EmbeddedStore::open(const std::string& dataDir) {
  auto store = std::make_unique<EmbeddedStore>();
  store->dir_ = dataDir + "/reputation";
  ::mkdir(dataDir.c_str(), 0750);
  if (::mkdir(store->dir_.c_str(), 0750) != 0 && errno != EEXIST)
    return tl::unexpected(ioError("cannot create '" + store->dir_ + "'"));
  DIR* d = ::opendir(store->dir_.c_str());
  if (!d) return tl::unexpected(ioError("cannot open '" + store->dir_ + "'"));
  std::vector<std::string> files;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 4 && n.ends_with(".rep")) files.push_back(store->dir_ + "/" + n);
  }
  ::closedir(d);
  auto snap = std::make_shared<Snapshot>();
  for (const auto& f : files) {
    auto idx = loadFile(f);
    if (!idx) return tl::unexpected(idx.error());
    snap->sources[(*idx)->name] = std::move(*idx);
  }
  std::lock_guard lock(store->snapMu_);
  store->snap_ = std::move(snap);
  return store;
}

Result<void> EmbeddedStore::persist(const SourceIndex& index) const {
  if (dir_.empty()) return {};
  std::string path = dir_ + "/" + index.name + ".rep";
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return tl::unexpected(ioError("cannot create '" + tmp + "'"));
  std::fprintf(f, "%s\nsource\t%s\t%lld\n", std::string(kFileMagic).c_str(), index.name.c_str(),
               static_cast<long long>(index.updated));
  index.forEach([&](const Rec& r, std::string_view key, std::string_view ref, const std::string& cat) {
    std::fprintf(f, "e\t%s\t%.*s\t%s\t%u\t%s\t%u\t%u\t%.*s\n", std::string(kindName(r.kind)).c_str(),
                 int(key.size()), key.data(), cat.c_str(), unsigned(r.score),
                 std::string(actionName(r.action)).c_str(), r.added, r.expires, int(ref.size()), ref.data());
  });
  bool ok = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = ioError("cannot write '" + path + "'");
    std::remove(tmp.c_str());
    return tl::unexpected(e);
  }
  if (int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {  // make the rename durable
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Result<void> EmbeddedStore::install(const std::string& source, std::shared_ptr<const SourceIndex> index) {
  // Caller holds writeMu_. Persist first: a source that cannot be saved is not served either,
  // so what readers see is always what a restart will load.
  if (index) {
    if (auto p = persist(*index); !p) return p;
  }
  auto next = std::make_shared<Snapshot>(*snapshot());
  if (index)
    next->sources[source] = std::move(index);
  else
    next->sources.erase(source);
  std::shared_ptr<const Snapshot> old;
  {
    std::lock_guard lock(snapMu_);
    old = std::exchange(snap_, std::move(next));
  }
  // `old` (and any index only it held) is freed here, outside the lock, unless a reader still
  // holds it; then the last reader frees it.
  return {};
}

Result<FeedResult> EmbeddedStore::importFeed(Format format, const std::string& path, FeedOptions opts) {
  auto idx = std::make_shared<SourceIndex>();
  idx->name = opts.source;
  idx->updated = nowUnix();
  const std::string category = opts.category;
  const int score = opts.score;
  const Action action = opts.action;
  opts.sink = [&](FeedEntry&& e) {
    idx->add({e.kind, e.key, e.category.empty() ? std::string_view(category) : std::string_view(e.category),
              e.reference, e.score < 0 ? score : e.score, action, e.added, e.expires});
  };
  auto feed = parseFeedPath(format, path, opts);
  if (!feed) return feed;
  idx->finish();
  std::lock_guard lock(writeMu_);
  if (auto r = install(opts.source, std::move(idx)); !r) return tl::unexpected(r.error());
  return feed;
}

Result<void> EmbeddedStore::replaceSource(const FeedResult& feed) {
  if (!validSourceName(feed.source))
    return fail(ErrKind::Config, Side::Config, "source '" + feed.source + "' is not valid");
  if (feed.entries.empty())
    return fail(ErrKind::Config, Side::Config,
                "refusing to replace source '" + feed.source + "' with an empty set");
  auto idx = buildIndex(feed, nowUnix());
  idx->finish();
  std::lock_guard lock(writeMu_);
  return install(feed.source, std::move(idx));
}

Result<void> EmbeddedStore::applyDelta(const FeedResult& adds, const std::vector<FeedEntry>& removes) {
  if (!validSourceName(adds.source))
    return fail(ErrKind::Config, Side::Config, "source '" + adds.source + "' is not valid");
  std::lock_guard lock(writeMu_);
  auto cur = snapshot();
  auto it = cur->sources.find(adds.source);
  auto idx = std::make_shared<SourceIndex>();
  idx->name = adds.source;
  idx->updated = nowUnix();
  // Removals first, against a small lookup table of what goes.
  SourceIndex gone;
  for (const FeedEntry& e : removes) gone.add({e.kind, e.key, "", "", 0, Action::Block, 0, 0});
  if (it != cur->sources.end()) {
    it->second->forEach(
        [&](const Rec& r, std::string_view key, std::string_view ref, const std::string& cat) {
          if (gone.find(r.kind, key) != kEmpty) return;
          idx->add({r.kind, key, cat, ref, r.score, r.action, r.added, r.expires});
        });
  }
  auto fresh = buildIndex(adds, 0);
  fresh->forEach([&](const Rec& r, std::string_view key, std::string_view ref, const std::string& cat) {
    idx->add({r.kind, key, cat, ref, r.score, r.action, r.added, r.expires});
  });
  idx->finish();
  if (idx->empty()) {
    if (!dir_.empty()) std::remove((dir_ + "/" + adds.source + ".rep").c_str());
    return install(adds.source, nullptr);
  }
  return install(adds.source, std::move(idx));
}

Result<void> EmbeddedStore::removeSource(const std::string& source) {
  std::lock_guard lock(writeMu_);
  if (!snapshot()->sources.count(source))
    return fail(ErrKind::Config, Side::Config, "no source '" + source + "'");
  if (!dir_.empty() && validSourceName(source)) std::remove((dir_ + "/" + source + ".rep").c_str());
  return install(source, nullptr);
}

std::vector<Match> EmbeddedStore::lookup(const LookupKeys& keys) const {
  std::vector<Match> out;
  auto snap = snapshot();
  if (snap->sources.empty()) return out;
  const NormalHost* host = keys.host ? keys.host : (keys.url ? &keys.url->host : nullptr);

  // Candidate keys, computed once for every source. Scratch buffers are per thread so a miss
  // allocates nothing after the first lookup on a thread.
  thread_local std::vector<uint32_t> cidrHits;
  thread_local std::vector<net::SocketAddr> addrs;
  addrs.clear();
  size_t regOff = std::string::npos;
  if (host) {
    if (host->kind == HostKind::Name)
      regOff = registrableOffset(host->host);
    else if (auto a = net::parseIp(host->host))
      addrs.push_back(*a);
  }
  for (const auto& a : keys.ips) addrs.push_back(a);
  std::string_view hostPath;
  if (keys.url) {
    // url is scheme://host[:port]/path[?query]: host + path is a slice of it, no copy needed.
    std::string_view u = keys.url->url;
    u.remove_prefix(std::min(u.size(), keys.url->scheme.size() + 3));
    hostPath = u.substr(0, u.find('?'));
  }

  for (const auto& source : snap->sources) {
    const auto& idx = source.second;  // not a structured binding: clang 14 cannot capture those
    auto hit = [&](uint32_t i) {
      if (i != kEmpty) out.push_back(idx->toMatch(i));
    };
    if (keys.url) {
      hit(idx->find(RuleKind::Url, keys.url->url));
      std::string_view hp = hostPath;
      size_t slash = hp.find('/');
      while (slash != std::string_view::npos) {
        if (slash + 1 < hp.size()) hit(idx->find(RuleKind::UrlPrefix, hp.substr(0, slash + 1)));
        size_t next = hp.find('/', slash + 1);
        if (next == std::string_view::npos) break;
        hit(idx->find(RuleKind::UrlPrefix, hp.substr(0, next)));
        slash = next;
      }
      hit(idx->find(RuleKind::UrlPrefix, hp));
    }
    if (host && host->kind == HostKind::Name) {
      std::string_view h = host->host;
      // The host itself, then each parent down to the registrable domain; never a bare suffix.
      hit(idx->find(RuleKind::Domain, h));
      if (regOff != std::string::npos) {
        size_t pos = 0;
        while (pos < regOff) {
          size_t dot = h.find('.', pos);
          if (dot == std::string_view::npos || dot + 1 > regOff) break;
          pos = dot + 1;
          hit(idx->find(RuleKind::Domain, h.substr(pos)));
        }
      }
    }
    for (const auto& a : addrs) {
      char buf[INET6_ADDRSTRLEN] = "";
      if (a.family() == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr, buf, sizeof buf);
      else
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr, buf, sizeof buf);
      hit(idx->find(RuleKind::Ip, buf));
      cidrHits.clear();
      idx->findCidr(a, cidrHits);
      for (uint32_t i : cidrHits) hit(i);
    }
  }
  return out;
}

std::vector<SourceInfo> EmbeddedStore::sources() const {
  std::vector<SourceInfo> out;
  auto snap = snapshot();  // held: a range-for over snapshot()->sources would free it mid-loop
  for (const auto& [name, idx] : snap->sources) out.push_back({name, idx->size(), idx->updated});
  return out;
}

size_t EmbeddedStore::sourceSize(const std::string& source) const {
  auto snap = snapshot();
  auto it = snap->sources.find(source);
  return it == snap->sources.end() ? 0 : it->second->size();
}

size_t EmbeddedStore::size() const {
  size_t n = 0;
  auto snap = snapshot();
  for (const auto& [name, idx] : snap->sources) n += idx->size();
  return n;
}

}  // namespace sekisho::reputation
