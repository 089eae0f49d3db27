// By-hand benchmark for the embedded reputation store (not a test; numbers go to
// docs/PERFORMANCE.md). Usage:
//   reputation_bench [N=1000000] [DATADIR]     import N domains, reload them, time lookups (p50/p99)
//   reputation_bench --load DATADIR            only reload DATADIR (RSS of a restarted store)
//   reputation_bench --gbench [gbench flags]   Google Benchmark for the lookup path
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
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
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[size_t(p * double(v.size() - 1))];
  };
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

}  // namespace

int main(int argc, char** argv) {
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
