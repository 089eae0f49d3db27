#include "reputation/embedded_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "reputation/cli.h"
#include "reputation/policy.h"

using namespace sekisho;
using namespace sekisho::reputation;

namespace {

FeedResult feed(std::string source, std::vector<FeedEntry> entries, std::string category = "malware",
                Action action = Action::Block) {
  FeedResult f;
  f.source = std::move(source);
  f.category = std::move(category);
  f.action = action;
  f.entries = std::move(entries);
  return f;
}

FeedEntry entry(RuleKind kind, std::string key, std::string ref = "") {
  FeedEntry e;
  e.kind = kind;
  e.key = std::move(key);
  e.reference = std::move(ref);
  e.added = 1700000000;
  return e;
}

std::vector<std::string> rulesFor(const EmbeddedStore& s, std::string_view text,
                                  std::vector<std::string> ips = {}) {
  auto u = normalizeUrl(text);
  EXPECT_TRUE(u) << text;
  if (!u) return {};
  LookupKeys k;
  k.url = &*u;
  for (const auto& ip : ips) k.ips.push_back(*net::parseIp(ip));
  std::vector<std::string> out;
  for (const auto& m : s.lookup(k)) out.push_back(m.source + " " + m.ruleId());
  std::sort(out.begin(), out.end());
  return out;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int n = 0;
    path = std::filesystem::temp_directory_path() /
           ("rep-store-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST(EmbeddedStore, DomainMatchesHostAndParentsButStopsAtPublicSuffix) {
  EmbeddedStore s;
  ASSERT_TRUE(s.replaceSource(feed("f", {entry(RuleKind::Domain, "evil.example.co.jp")})));
  EXPECT_EQ(rulesFor(s, "http://evil.example.co.jp/"),
            (std::vector<std::string>{"f domain:evil.example.co.jp"}));
  EXPECT_EQ(rulesFor(s, "http://a.b.evil.example.co.jp/x"),
            (std::vector<std::string>{"f domain:evil.example.co.jp"}));
  EXPECT_TRUE(rulesFor(s, "http://example.co.jp/").empty());
  EXPECT_TRUE(rulesFor(s, "http://notevil.example.co.jp/").empty());
  // A bare suffix smuggled into the store (a feed parser refuses it) still never matches children.
  ASSERT_TRUE(
      s.replaceSource(feed("g", {entry(RuleKind::Domain, "co.jp"), entry(RuleKind::Domain, "github.io")})));
  EXPECT_TRUE(rulesFor(s, "http://other.co.jp/").empty());
  EXPECT_TRUE(rulesFor(s, "http://someone.github.io/").empty());
}

TEST(EmbeddedStore, ExactUrlAndPathPrefix) {
  EmbeddedStore s;
  ASSERT_TRUE(s.replaceSource(
      feed("f", {entry(RuleKind::Url, "http://e.example/gate.php?id=1"),
                 entry(RuleKind::UrlPrefix, "d.example/dl/"), entry(RuleKind::UrlPrefix, "d.example/bin")})));
  EXPECT_EQ(rulesFor(s, "HTTP://E.EXAMPLE/x/../gate.php?id=1#f"),
            (std::vector<std::string>{"f url:http://e.example/gate.php?id=1"}));
  EXPECT_TRUE(rulesFor(s, "http://e.example/gate.php?id=2").empty());
  EXPECT_EQ(rulesFor(s, "https://d.example/dl/a/b.exe?q"),
            (std::vector<std::string>{"f prefix:d.example/dl/"}));
  EXPECT_EQ(rulesFor(s, "http://d.example/bin"), (std::vector<std::string>{"f prefix:d.example/bin"}));
  EXPECT_EQ(rulesFor(s, "http://d.example/bin/x"), (std::vector<std::string>{"f prefix:d.example/bin"}));
  EXPECT_TRUE(rulesFor(s, "http://d.example/binary").empty());
  EXPECT_TRUE(rulesFor(s, "http://d.example/dl").empty());
}

TEST(EmbeddedStore, IpAndCidrV4V6) {
  EmbeddedStore s;
  ASSERT_TRUE(s.replaceSource(
      feed("drop", {entry(RuleKind::Cidr, "203.0.113.0/24", "SBL1"), entry(RuleKind::Cidr, "203.0.0.0/16"),
                    entry(RuleKind::Cidr, "2001:db8::/32"), entry(RuleKind::Cidr, "2001:db8:1:2::/64"),
                    entry(RuleKind::Ip, "198.51.100.7")})));
  EXPECT_EQ(rulesFor(s, "http://203.0.113.9/"),
            (std::vector<std::string>{"drop cidr:203.0.0.0/16", "drop cidr:203.0.113.0/24"}));
  EXPECT_EQ(rulesFor(s, "http://203.0.114.9/"), (std::vector<std::string>{"drop cidr:203.0.0.0/16"}));
  EXPECT_TRUE(rulesFor(s, "http://203.1.0.1/").empty());
  EXPECT_EQ(rulesFor(s, "http://[2001:db8:1:2::99]/"),
            (std::vector<std::string>{"drop cidr:2001:db8:1:2::/64", "drop cidr:2001:db8::/32"}));
  EXPECT_TRUE(rulesFor(s, "http://[2001:db9::1]/").empty());
  // Resolved addresses of a name are checked too.
  EXPECT_EQ(rulesFor(s, "http://innocent.example/", {"198.51.100.7"}),
            (std::vector<std::string>{"drop ip:198.51.100.7"}));
  EXPECT_EQ(rulesFor(s, "http://innocent.example/", {"2001:db8:ffff::1"}),
            (std::vector<std::string>{"drop cidr:2001:db8::/32"}));
}

TEST(EmbeddedStore, AllowEntryBeatsBlockThroughPolicy) {
  EmbeddedStore s;
  ASSERT_TRUE(s.replaceSource(feed("c2feed", {entry(RuleKind::Domain, "edi.supplier.example")}, "c2")));
  ASSERT_TRUE(s.replaceSource(feed("admin-allow", {entry(RuleKind::UrlPrefix, "edi.supplier.example/edi/")},
                                   "allow", Action::Allow)));
  auto check = [&](std::string_view text) {
    auto u = normalizeUrl(text);
    LookupKeys k;
    k.url = &*u;
    Facts f;
    f.url = u->url;
    f.host = u->host.host;
    return decide(f, s.lookup(k), PolicyConfig{}).outcome;
  };
  EXPECT_EQ(check("https://edi.supplier.example/edi/upload"), Decision::Outcome::Allow);
  EXPECT_EQ(check("https://edi.supplier.example/other"), Decision::Outcome::Block);
}

TEST(EmbeddedStore, ReplaceIsAtomicUnderConcurrentLookups) {
  EmbeddedStore s;
  constexpr int kN = 2000;
  // Generation A lists k.example and 192.0.2.1; generation B lists only 192.0.2.2. One lookup
  // asks about all three, so it must see exactly A's pair or exactly B's single rule.
  auto makeFeed = [&](bool genA) {
    std::vector<FeedEntry> es;
    for (int i = 0; i < kN; ++i)
      es.push_back(entry(RuleKind::Domain, (genA ? "a" : "b") + std::to_string(i) + ".example"));
    if (genA) {
      es.push_back(entry(RuleKind::Domain, "k.example"));
      es.push_back(entry(RuleKind::Ip, "192.0.2.1"));
    } else {
      es.push_back(entry(RuleKind::Ip, "192.0.2.2"));
    }
    return feed("rot", std::move(es));
  };
  ASSERT_TRUE(s.replaceSource(makeFeed(true)));
  std::atomic<bool> stop{false};
  std::atomic<long> torn{0}, seenA{0}, seenB{0};
  auto reader = [&] {
    auto u = normalizeUrl("http://www.k.example/");
    LookupKeys k;
    k.url = &*u;
    k.ips = {*net::parseIp("192.0.2.1"), *net::parseIp("192.0.2.2")};
    while (!stop.load()) {
      auto m = s.lookup(k);
      if (m.size() == 2 && m[0].key == "k.example" && m[1].key == "192.0.2.1")
        seenA.fetch_add(1);
      else if (m.size() == 1 && m[0].key == "192.0.2.2")
        seenB.fetch_add(1);
      else
        torn.fetch_add(1);
      auto src = s.sources();
      if (src.size() != 1 || src[0].entries < size_t(kN) + 1) torn.fetch_add(1);
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader);
  for (int round = 0; round < 40; ++round) ASSERT_TRUE(s.replaceSource(makeFeed(round % 2 == 1)));
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(seenA.load() + seenB.load(), 0);
  EXPECT_EQ(torn.load(), 0) << "a lookup saw half a feed";
  EXPECT_EQ(s.size(), size_t(kN) + 2);  // the last round installed generation A
}

TEST(EmbeddedStore, PersistenceRoundTrip) {
  TempDir dir;
  {
    auto s = EmbeddedStore::open(dir.path.string());
    ASSERT_TRUE(s) << s.error().detail;
    auto f =
        feed("urlhaus", {entry(RuleKind::Url, "http://e.example/a.exe", "https://urlhaus.abuse.ch/url/1/"),
                         entry(RuleKind::Domain, "evil.example"), entry(RuleKind::Cidr, "2001:db8::/32")});
    f.score = 85;
    ASSERT_TRUE((*s)->replaceSource(f));
    ASSERT_TRUE((*s)->replaceSource(feed("other", {entry(RuleKind::Ip, "192.0.2.1")}, "c2")));
  }
  auto s = EmbeddedStore::open(dir.path.string());
  ASSERT_TRUE(s) << s.error().detail;
  EXPECT_EQ((*s)->size(), 4u);
  auto u = normalizeUrl("http://e.example/a.exe");
  LookupKeys k;
  k.url = &*u;
  auto m = (*s)->lookup(k);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].source, "urlhaus");
  EXPECT_EQ(m[0].category, "malware");
  EXPECT_EQ(m[0].score, 85);
  EXPECT_EQ(m[0].added, 1700000000);
  EXPECT_EQ(m[0].reference, "https://urlhaus.abuse.ch/url/1/");
  EXPECT_EQ(rulesFor(**s, "http://[2001:db8::5]/"), (std::vector<std::string>{"urlhaus cidr:2001:db8::/32"}));
  EXPECT_EQ(rulesFor(**s, "http://192.0.2.1/"), (std::vector<std::string>{"other ip:192.0.2.1"}));
  ASSERT_TRUE((*s)->removeSource("other"));
  auto again = EmbeddedStore::open(dir.path.string());
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->size(), 3u);
}

TEST(EmbeddedStore, CorruptFileIsReportedWithItsLine) {
  TempDir dir;
  std::filesystem::create_directories(dir.path / "reputation");
  { std::ofstream(dir.path / "reputation" / "x.rep") << "sekisho-reputation 1\nsource\tx\t0\ngarbage\n"; }
  auto s = EmbeddedStore::open(dir.path.string());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().detail.find("x.rep:3: malformed entry line"), std::string::npos) << s.error().detail;
}

TEST(EmbeddedStore, DeltaAddsAndRemoves) {
  EmbeddedStore s;
  ASSERT_TRUE(s.replaceSource(
      feed("f", {entry(RuleKind::Domain, "a.example"), entry(RuleKind::Domain, "b.example")})));
  ASSERT_TRUE(s.applyDelta(feed("f", {entry(RuleKind::Domain, "c.example")}),
                           {entry(RuleKind::Domain, "a.example")}));
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(rulesFor(s, "http://a.example/").empty());
  EXPECT_EQ(rulesFor(s, "http://c.example/").size(), 1u);
  EXPECT_EQ(rulesFor(s, "http://b.example/").size(), 1u);
}

TEST(EmbeddedStore, EmptyReplaceIsRefused) {
  EmbeddedStore s;
  auto r = s.replaceSource(feed("f", {}));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("empty set"), std::string::npos);
}

TEST(ReputationCli, ImportThenLookup) {
  TempDir dir;
  std::filesystem::create_directories(dir.path);
  auto file = (dir.path / "list.txt").string();
  std::ofstream(file) << "evil.example\nbad..line\n";
  EXPECT_EQ(feedImportCommand(dir.path.string(),
                              {"--format", "domains", "--category", "c2", "--source", "mine", file}),
            0);
  EXPECT_EQ(lookupCommand(dir.path.string(), {"http://www.evil.example/x"}), 1);
  EXPECT_EQ(lookupCommand(dir.path.string(), {"http://good.example/"}), 0);
  EXPECT_EQ(feedImportCommand(dir.path.string(), {"--format", "domains", "--category", "c2", "--source",
                                                  "mine", "https://feeds.example/list.txt"}),
            1);
  EXPECT_EQ(
      feedImportCommand(dir.path.string(), {"--format", "nope", "--category", "c2", "--source", "m", file}),
      2);
  std::ofstream(file) << "# nothing\n";
  EXPECT_EQ(feedImportCommand(dir.path.string(),
                              {"--format", "domains", "--category", "c2", "--source", "mine", file}),
            1);
  // The failed import left the earlier set in place.
  EXPECT_EQ(lookupCommand(dir.path.string(), {"http://evil.example/"}), 1);
}
