#include "reputation/cli.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "proxy/base/strings.h"
#include "reputation/embedded_store.h"
#include "reputation/feeds.h"
#include "reputation/fetch.h"
#include "reputation/policy.h"
#include "reputation/redis_import.h"

namespace sekisho::reputation {

namespace {

constexpr size_t kShownBadLines = 10;

int usage(const char* msg, const char* synopsis) {
  std::fprintf(stderr, "%s\nusage: %s\n", msg, synopsis);
  return 2;
}

constexpr const char* kImportSynopsis =
    "sekisho feed import --format domains|hosts|urlhaus|threatfox|cidr|squidguard --category C --source NAME "
    "[--score 0-100] [--action block|allow|log] [--delta] [--store embedded|redis://host:port/db] "
    "FILE|DIR|http(s)://URL";
constexpr const char* kLookupSynopsis =
    "sekisho lookup [--sensitivity low|medium|high] [--ip ADDR]... [--store embedded|redis://host:port/db] URL|HOST";

// Removes a downloaded feed when the import is done, whatever happened.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

int feedImportCommand(const std::string& dataDir, const std::vector<std::string>& args) {
  return feedImportCommand(dataDir, "embedded", args);
}

int lookupCommand(const std::string& dataDir, const std::vector<std::string>& args) {
  return lookupCommand(dataDir, "embedded", args);
}

int feedImportCommand(const std::string& dataDir, const std::string& configStore,
                      const std::vector<std::string>& args) {
  std::string format, category, source, file, score, action, store = configStore;
  bool delta = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    bool ok = true;
    if (a == "--format")
      ok = value(format);
    else if (a == "--category")
      ok = value(category);
    else if (a == "--source")
      ok = value(source);
    else if (a == "--score")
      ok = value(score);
    else if (a == "--action")
      ok = value(action);
    else if (a == "--store")
      ok = value(store);
    else if (a == "--delta")
      delta = true;
    else if (a.starts_with("--"))
      return usage(("feed import: unknown option '" + a + "'").c_str(), kImportSynopsis);
    else if (file.empty())
      file = a;
    else
      return usage("feed import: more than one FILE given", kImportSynopsis);
    if (!ok) return usage(("feed import: " + a + " needs a value").c_str(), kImportSynopsis);
  }
  if (format.empty() || category.empty() || source.empty() || file.empty())
    return usage("feed import: --format, --category, --source and FILE are required", kImportSynopsis);
  auto fmt = parseFormat(format);
  if (!fmt) return usage(("feed import: " + fmt.error().detail).c_str(), kImportSynopsis);
  const bool redisStore = isRedisUrl(store);
  if (!redisStore && store != "embedded")
    return usage(("feed import: store '" + store + "' is neither 'embedded' nor a redis:// URL").c_str(),
                 kImportSynopsis);
  if (delta && !redisStore) return usage("feed import: --delta needs the Redis store", kImportSynopsis);
  RedisOptions redis;
  if (redisStore) {
    auto r = parseRedisUrl(store);
    if (!r) return usage(("feed import: " + r.error().detail).c_str(), kImportSynopsis);
    redis = *r;
  }
  if (file.starts_with("ftp://"))
    return usage("feed import: only http:// and https:// URLs can be fetched", kImportSynopsis);
  FeedOptions opts;
  opts.category = category;
  opts.source = source;
  if (!score.empty()) {
    auto s = parseDecimal(score, 100);
    if (!s) return usage("feed import: --score must be 0-100", kImportSynopsis);
    opts.score = int(*s);
  }
  if (!action.empty() && !parseAction(action, opts.action))
    return usage("feed import: --action must be block, allow or log", kImportSynopsis);
  bool tty = ::isatty(2) == 1;
  if (tty) {
    opts.progress = [](size_t done, size_t total) {
      int pct = total ? int(done * 100 / total) : 100;
      std::fprintf(stderr, "\rimporting %3d%% (%zu / %zu bytes)", pct, done, total);
    };
  }
  auto t0 = std::chrono::steady_clock::now();
  TempFile download;
  std::string from = file;
  if (isFetchUrl(file)) {
    if (*fmt == Format::Squidguard)
      return usage("feed import: a squidguard feed is a directory; download and unpack it first", kImportSynopsis);
    FetchOptions fo;
    fo.progress = tty;
    const char* tmpdir = std::getenv("TMPDIR");
    auto got = fetchToTempFile(file, tmpdir && *tmpdir ? tmpdir : "/tmp", fo);
    if (!got) {
      std::fprintf(stderr, "feed import: %s\n", got.error().detail.c_str());
      return 1;
    }
    download.path = *got;
    file = *got;
  }
  Result<FeedResult> feed = fail(ErrKind::Internal, Side::Internal, "not run");
  size_t distinct = 0;
  if (redisStore) {
    auto r = importFeedToRedis(redis, *fmt, file, opts, !delta);
    if (r) {
      distinct = r->distinct;
      if (!r->cleanupError.empty()) std::fprintf(stderr, "feed import: warning: %s\n", r->cleanupError.c_str());
      feed = std::move(r->feed);
    } else {
      feed = tl::unexpected(r.error());
    }
  } else {
    auto store = EmbeddedStore::open(dataDir);
    if (!store) {
      std::fprintf(stderr, "feed import: %s\n", store.error().detail.c_str());
      return 1;
    }
    feed = (*store)->importFeed(*fmt, file, opts);
    distinct = (*store)->sourceSize(source);
  }
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (!feed) {
    std::fprintf(stderr, "feed import: %s: %s\n", from.c_str(), feed.error().detail.c_str());
    return 1;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "imported %zu entries (%zu distinct) into source '%s' (format %s, category %s, store %s%s) from %s: "
      "%zu lines, %zu bad, %zu skipped, %.2f s\n",
      feed->accepted, distinct, source.c_str(), format.c_str(), category.c_str(), redisStore ? "redis" : "embedded",
      delta ? ", delta" : "", from.c_str(), feed->lines, feed->badLines, feed->skipped, secs);
  for (size_t i = 0; i < feed->errors.size() && i < kShownBadLines; ++i) {
    const auto& e = feed->errors[i];
    std::printf("  %s%sline %zu: %s\n", e.file.c_str(), e.file.empty() ? "" : ":", e.line, e.reason.c_str());
  }
  if (feed->badLines > kShownBadLines)
    std::printf("  ... and %zu more bad lines\n", feed->badLines - kShownBadLines);
  return 0;
}

int lookupCommand(const std::string& dataDir, const std::string& configStore,
                  const std::vector<std::string>& args) {
  std::string store = configStore;
  PolicyConfig config;
  std::string target;
  std::vector<net::SocketAddr> ips;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--sensitivity" && i + 1 < args.size()) {
      auto s = parseSensitivity(args[++i]);
      if (!s) return usage(("lookup: " + s.error().detail).c_str(), kLookupSynopsis);
      config.sensitivity = *s;
    } else if (a == "--ip" && i + 1 < args.size()) {
      auto ip = net::parseIp(args[++i]);
      if (!ip) return usage(("lookup: '" + args[i] + "' is not an IP address").c_str(), kLookupSynopsis);
      ips.push_back(*ip);
    } else if (a == "--store" && i + 1 < args.size()) {
      store = args[++i];
    } else if (a.starts_with("--")) {
      return usage(("lookup: unknown option or missing value '" + a + "'").c_str(), kLookupSynopsis);
    } else if (target.empty()) {
      target = a;
    } else {
      return usage("lookup: more than one URL given", kLookupSynopsis);
    }
  }
  if (target.empty()) return usage("lookup: URL or HOST required", kLookupSynopsis);
  auto url = normalizeUrl(target);
  if (!url) {
    std::fprintf(stderr, "lookup: %s\n", url.error().detail.c_str());
    return 2;
  }
  LookupKeys keys;
  keys.url = &*url;
  keys.ips = ips;
  std::vector<Match> matches;
  if (isRedisUrl(store)) {
    auto redis = parseRedisUrl(store);
    if (!redis) return usage(("lookup: " + redis.error().detail).c_str(), kLookupSynopsis);
    auto m = lookupRedisSync(*redis, keys);
    if (!m) {
      std::fprintf(stderr, "lookup: %s\n", m.error().detail.c_str());
      return 2;
    }
    matches = std::move(*m);
  } else if (store == "embedded") {
    auto es = EmbeddedStore::open(dataDir);
    if (!es) {
      std::fprintf(stderr, "lookup: %s\n", es.error().detail.c_str());
      return 2;
    }
    matches = (*es)->lookup(keys);
  } else {
    return usage(("lookup: store '" + store + "' is neither 'embedded' nor a redis:// URL").c_str(),
                 kLookupSynopsis);
  }
  Facts facts;
  facts.url = url->url;
  facts.host = url->host.host;
  facts.ips = ips;
  facts.now = int64_t(::time(nullptr));
  Decision d = decide(facts, matches, config);
  std::printf("url: %s\nverdict: %s\nreason: %s\n", url->url.c_str(),
              std::string(outcomeName(d.outcome)).c_str(), d.reason.c_str());
  if (d.decisive && !d.decisive->reference.empty())
    std::printf("reference: %s\n", d.decisive->reference.c_str());
  if (d.decisive && d.decisive->added) {
    char buf[32];
    time_t t = time_t(d.decisive->added);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    std::printf("added: %s UTC\n", buf);
  }
  std::printf("sensitivity: %s (blocks at score >= %d)\nrules:\n",
              std::string(sensitivityName(config.sensitivity)).c_str(), blockThreshold(config.sensitivity));
  for (const auto& line : d.chain) std::printf("  %s\n", line.c_str());
  return d.outcome == Decision::Outcome::Block ? 1 : 0;
}

}  // namespace sekisho::reputation
