// By-hand benchmark for the embedded reputation store (not a test; numbers go to
// docs/PERFORMANCE.md). Usage:
//   reputation_bench [N=1000000] [DATADIR]     import N domains, reload them, time lookups (p50/p99)
//   reputation_bench --load DATADIR            only reload DATADIR (RSS of a restarted store)
//   reputation_bench --gbench [gbench flags]   Google Benchmark for the lookup path
//   reputation_bench --redis redis://127.0.0.1:6379/15 [N]
//                                              import N domains into Redis (twice: first import and
//                                              replace), then time RedisStore round trips (cache off)
#include <benchmark/benchmark.h>
#include <event2/event.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "reputation/reputation.h"

using namespace sekisho::reputation;
using Clock = std::chrono::steady_clock;

namespace {

long statusKiB(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  return -1;
}
long rssKiB() { return statusKiB("VmRSS:"); }
long peakKiB() { return statusKiB("VmHWM:"); }

std::string domainName(size_t i) {
  static const char* tlds[] = {"com", "net", "org", "co.jp", "ru", "info", "xyz", "example"};
  return "h" + std::to_string(i * 2654435761u % 1000000007u) + "-c2." + tlds[i % 8];
}

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[size_t(p * double(v.size() - 1))];
}

std::vector<std::string> queryUrls(size_t n) {
  // Mixed: hits on the listed host, hits on a subdomain, misses, and hostile spellings.
  std::mt19937_64 rng(42);
  std::vector<std::string> out;
  for (size_t i = 0; i < 100000; ++i) {
    size_t k = rng() % n;
    switch (i % 5) {
      case 0:
        out.push_back("http://" + domainName(k) + "/gate.php?id=" + std::to_string(i));
        break;
      case 1:
        out.push_back("https://www.a." + domainName(k) + "/x/../y");
        break;
      case 2:
        out.push_back("http://miss" + std::to_string(i) + ".example.org/index.html");
        break;
      case 3:
        out.push_back("HTTP://" + domainName(k) + ".:80/%7Euser/./a%2fb#frag");
        break;
      default:
        out.push_back("http://203.0.113." + std::to_string(i % 256) + "/");
        break;
    }
  }
  return out;
}

void timeLookups(const EmbeddedStore& store, size_t n) {
  auto urls = queryUrls(n);
  std::vector<NormalUrl> normal;
  for (const auto& u : urls) normal.push_back(*normalizeUrl(u));
  std::vector<double> both, lookupOnly;
  size_t hits = 0;
  for (int pass = 0; pass < 2; ++pass) {  // first pass warms caches
    both.clear();
    lookupOnly.clear();
    hits = 0;
    for (size_t i = 0; i < urls.size(); ++i) {
      auto t0 = Clock::now();
      auto u = normalizeUrl(urls[i]);
      LookupKeys k;
      k.url = &*u;
      auto m = store.lookup(k);
      auto t1 = Clock::now();
      LookupKeys k2;
      k2.url = &normal[i];
      auto m2 = store.lookup(k2);
      auto t2 = Clock::now();
      hits += !m.empty();
      both.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      lookupOnly.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
      benchmark::DoNotOptimize(m2);
    }
  }
  std::printf("lookups: %zu (%zu hits)\n", urls.size(), hits);
  std::printf("normalise+lookup: p50 %.2f us  p99 %.2f us  p99.9 %.2f us\n", pct(both, 0.5), pct(both, 0.99),
              pct(both, 0.999));
  std::printf("lookup only:      p50 %.2f us  p99 %.2f us  p99.9 %.2f us\n", pct(lookupOnly, 0.5),
              pct(lookupOnly, 0.99), pct(lookupOnly, 0.999));
}

EmbeddedStore* gStore = nullptr;
std::vector<NormalUrl>* gUrls = nullptr;

void BM_Lookup(benchmark::State& state) {
  size_t i = 0;
  for (auto _ : state) {
    LookupKeys k;
    k.url = &(*gUrls)[i++ % gUrls->size()];
    benchmark::DoNotOptimize(gStore->lookup(k));
  }
}
BENCHMARK(BM_Lookup)->Threads(1)->Threads(2);

int redisBench(const std::string& url, size_t n) {
  auto ro = parseRedisUrl(url);
  if (!ro) {
    std::fprintf(stderr, "%s\n", ro.error().detail.c_str());
    return 2;
  }
  std::string file = "/tmp/reputation-bench-redis-" + std::to_string(::getpid()) + ".txt";
  {
    std::ofstream out(file);
    for (size_t i = 0; i < n; ++i) out << domainName(i) << "\n";
  }
  FeedOptions o;
  o.category = "c2";
  o.source = "bench";
  for (const char* what : {"first import", "replace"}) {
    auto t0 = Clock::now();
    auto r = importFeedToRedis(*ro, Format::Domains, file, o);
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().detail.c_str());
      return 1;
    }
    std::printf("redis %s: %zu lines -> %zu distinct, %.2f s (peak RSS %ld MiB)\n", what, n, r->distinct,
                secondsSince(t0), peakKiB() / 1024);
  }
  std::filesystem::remove(file);
  // Round trips through the async reader, cache off: one lookup at a time, then 64 in flight.
  event_base* base = event_base_new();
  RedisOptions opts = *ro;
  opts.cacheEntries = 0;
  opts.deadline = std::chrono::milliseconds(1000);
  auto store = RedisStore::create(base, opts);
  while (store->state() == RedisStore::State::Connecting) event_base_loop(base, EVLOOP_ONCE);
  if (store->state() != RedisStore::State::Up) {
    std::fprintf(stderr, "redis: %s\n", store->stateText().c_str());
    return 1;
  }
  auto urls = queryUrls(n);
  std::vector<NormalUrl> normal;
  for (size_t i = 0; i < 20000; ++i) normal.push_back(*normalizeUrl(urls[i]));
  std::vector<double> rtt;
  size_t hits = 0, errors = 0;
  for (size_t i = 0; i < normal.size(); ++i) {
    LookupKeys k;
    k.url = &normal[i];
    bool done = false;
    auto t0 = Clock::now();
    store->lookup(k, i, [&](StoreAnswer a) {
      done = true;
      hits += !a.matches.empty();
      errors += !a.ok;
    });
    while (!done) event_base_loop(base, EVLOOP_ONCE);
    rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::printf("redis lookup round trip (1 in flight): %zu lookups, %zu hits, %zu errors, p50 %.0f us  p99 %.0f us\n",
              rtt.size(), hits, errors, pct(rtt, 0.5), pct(rtt, 0.99));
  size_t inFlight = 0, next = 0, answered = 0;
  auto t0 = Clock::now();
  std::function<void()> issue = [&] {
    while (inFlight < 64 && next < normal.size()) {
      LookupKeys k;
      k.url = &normal[next];
      ++inFlight;
      store->lookup(k, 100000 + next++, [&](StoreAnswer) {
        --inFlight;
        ++answered;
      });
    }
  };
  issue();
  while (answered < normal.size()) {
    event_base_loop(base, EVLOOP_ONCE);
    issue();
  }
  std::printf("redis lookups, 64 in flight on one connection: %.0f lookups/s\n",
              double(normal.size()) / secondsSince(t0));
  store.reset();
  event_base_free(base);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "--redis") == 0)
    return redisBench(argv[2], argc >= 4 ? std::strtoul(argv[3], nullptr, 10) : 1000000);
  if (argc >= 3 && std::strcmp(argv[1], "--load") == 0) {
    long before = rssKiB();
    auto t0 = Clock::now();
    auto s = EmbeddedStore::open(argv[2]);
    if (!s) {
      std::fprintf(stderr, "%s\n", s.error().detail.c_str());
      return 1;
    }
    malloc_trim(0);
    std::printf("reload: %zu entries in %.2f s, RSS %ld MiB, peak %ld MiB (process before load %ld MiB)\n",
                (*s)->size(), secondsSince(t0), rssKiB() / 1024, peakKiB() / 1024, before / 1024);
    timeLookups(**s, 1000000);
    return 0;
  }
  bool gbench = argc >= 2 && std::strcmp(argv[1], "--gbench") == 0;
  size_t n = !gbench && argc >= 2 ? std::strtoul(argv[1], nullptr, 10) : 1000000;
  std::string dir = !gbench && argc >= 3 ? argv[2] : "/tmp/reputation-bench-" + std::to_string(::getpid());
  std::string file = dir + ".txt";
  {
    std::ofstream out(file);
    for (size_t i = 0; i < n; ++i) out << domainName(i) << "\n";
  }
  long rss0 = rssKiB();
  auto t0 = Clock::now();
  FeedOptions o;
  o.category = "c2";
  o.source = "bench";
  auto store = EmbeddedStore::open(dir);
  if (!store) return 1;
  auto feed = (*store)->importFeed(Format::Domains, file, o);  // parse, index, persist, swap
  if (!feed) {
    std::fprintf(stderr, "%s\n", feed.error().detail.c_str());
    return 1;
  }
  double importS = secondsSince(t0);
  malloc_trim(0);
  std::printf(
      "import: %zu lines -> %zu entries (%zu bad), parse+index+persist %.2f s, RSS %ld MiB, peak %ld MiB "
      "(before %ld MiB)\n",
      n, feed->accepted, feed->badLines, importS, rssKiB() / 1024, peakKiB() / 1024, rss0 / 1024);
  if (gbench) {
    auto urls = queryUrls(n);
    std::vector<NormalUrl> normal;
    for (const auto& u : urls) normal.push_back(*normalizeUrl(u));
    gStore = store->get();
    gUrls = &normal;
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
  } else {
    timeLookups(**store, n);
    std::printf("data dir kept for --load: %s\n", dir.c_str());
  }
  std::filesystem::remove(file);
  return 0;
}
