#include "reputation/feeds.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace sekisho;
using namespace sekisho::reputation;

namespace {

FeedOptions opts(std::string category = "malware") {
  FeedOptions o;
  o.category = std::move(category);
  o.source = "test-feed";
  o.now = 1700000000;
  return o;
}

std::vector<size_t> badLineNumbers(const FeedResult& r) {
  std::vector<size_t> out;
  for (const auto& e : r.errors) out.push_back(e.line);
  return out;
}

}  // namespace

TEST(Feeds, DomainsGoodAndBadLinesWithCrlf) {
  std::string text =
      "# comment\r\n"
      "Evil.Example.\r\n"
      "\r\n"
      "bad..example\r\n"
      "c2.example # inline comment\r\n"
      "two words.example\r\n"
      "co.jp\r\n"
      "*.wild.example\r\n"
      "203.0.113.9\r\n"
      "0x7f.1";
  auto r = parseFeed(Format::Domains, text, opts());
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->entries.size(), 4u);
  EXPECT_EQ(r->entries[0].key, "evil.example");
  EXPECT_EQ(r->entries[0].kind, RuleKind::Domain);
  EXPECT_EQ(r->entries[0].added, 1700000000);
  EXPECT_EQ(r->entries[1].key, "c2.example");
  EXPECT_EQ(r->entries[2].key, "wild.example");
  EXPECT_EQ(r->entries[3].kind, RuleKind::Ip);
  EXPECT_EQ(r->lines, 10u);
  EXPECT_EQ(r->badLines, 4u);
  EXPECT_EQ(badLineNumbers(*r), (std::vector<size_t>{4, 6, 7, 10}));
  EXPECT_NE(r->errors[0].reason.find("empty label"), std::string::npos);
  EXPECT_NE(r->errors[2].reason.find("public suffix"), std::string::npos);
  EXPECT_NE(r->errors[3].reason.find("dotted-quad"), std::string::npos);
}

TEST(Feeds, ZeroEntriesIsAnError) {
  auto r = parseFeed(Format::Domains, "# only a comment\n\nbad..x\n", opts());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("no entries"), std::string::npos);
  EXPECT_NE(r.error().detail.find("line 3"), std::string::npos);
  EXPECT_FALSE(parseFeed(Format::Cidr, "", opts()));
}

TEST(Feeds, RefusesBadCategoryAndSource) {
  auto o = opts("Bad Category");
  EXPECT_FALSE(parseFeed(Format::Domains, "a.example\n", o));
  o = opts();
  o.source = "../etc";
  EXPECT_FALSE(parseFeed(Format::Domains, "a.example\n", o));
}

TEST(Feeds, HostsFile) {
  std::string text =
      "127.0.0.1 localhost\r\n"
      "::1 ip6-localhost ip6-loopback\r\n"
      "0.0.0.0 0.0.0.0\r\n"
      "0.0.0.0 ads.example tracker.example # two names\r\n"
      "0.0.0.0\r\n"
      "nonsense evil.example\r\n"
      "0.0.0.0 bad_host.example\r\n";
  auto r = parseFeed(Format::Hosts, text, opts());
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[1].key, "tracker.example");
  EXPECT_EQ(badLineNumbers(*r), (std::vector<size_t>{5, 6, 7}));
}

TEST(Feeds, UrlhausCsvWithCommasInTags) {
  std::string text =
      "################################################################\r\n"
      "# abuse.ch URLhaus Database Dump (CSV - recent URLs only)     #\r\n"
      "################################################################\r\n"
      "#\r\n"
      "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\r\n"
      "\"3016515\",\"2024-06-26 09:43:05\",\"http://115.55.238.153:46645/bin.sh\",\"online\",\"2024-06-26 "
      "09:43:05\",\"malware_download\",\"32-bit,elf,mips,Mozi\",\"https://urlhaus.abuse.ch/url/3016515/\","
      "\"geenensp\"\r\n"
      "\"3016516\",\"2024-06-26 09:44:00\",\"HTTP://Evil.Example/a/../payload.exe\",\"online\",\"\","
      "\"malware_download\",\"exe\",\"https://urlhaus.abuse.ch/url/3016516/\",\"anon\"\r\n"
      "\"3016517\",\"2024-06-26 09:44:00\",\"http://bad..example/\",\"online\",\"\",\"malware_download\","
      "\"exe\",\"https://urlhaus.abuse.ch/url/3016517/\",\"anon\"\r\n"
      "\"3016518\",\"unterminated\r\n"
      "\"1\",\"2\"\r\n";
  auto r = parseFeed(Format::Urlhaus, text, opts());
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[0].kind, RuleKind::Url);
  EXPECT_EQ(r->entries[0].key, "http://115.55.238.153:46645/bin.sh");
  EXPECT_EQ(r->entries[0].reference, "https://urlhaus.abuse.ch/url/3016515/");
  EXPECT_EQ(r->entries[0].added, 1719394985);  // 2024-06-26 09:43:05 UTC
  EXPECT_EQ(r->entries[1].key, "http://evil.example/payload.exe");
  EXPECT_EQ(badLineNumbers(*r), (std::vector<size_t>{8, 9, 10}));
  EXPECT_NE(r->errors[1].reason.find("unterminated quoted field"), std::string::npos);
  EXPECT_NE(r->errors[2].reason.find("2 fields"), std::string::npos);
}

TEST(Feeds, UrlhausOlderLayoutWithoutLastOnline) {
  std::string text =
      "# id,dateadded,url,url_status,threat,tags,urlhaus_link,reporter\n"
      "\"1\",\"2019-01-01 00:00:00\",\"http://old.example/x\",\"offline\",\"malware_download\",\"a,b\","
      "\"https://urlhaus.abuse.ch/url/1/\",\"r\"\n";
  auto r = parseFeed(Format::Urlhaus, text, opts());
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reference, "https://urlhaus.abuse.ch/url/1/");
  EXPECT_EQ(r->entries[0].added, 1546300800);
}

TEST(Feeds, ThreatfoxCsv) {
  std::string text =
      "################################################################\r\n"
      "# ThreatFox IOCs: full data dump (CSV)                         #\r\n"
      "# "
      "\"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_"
      "alias\","
      "\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\","
      "\"reporter\"\r\n"
      "\"2024-06-26 09:40:38\", \"1297123\", \"http://c2.example/gate.php\", \"url\", \"botnet_cc\", "
      "\"win.agent_tesla\", \"None\", \"Agent Tesla\", \"\", \"100\", \"\", \"AgentTesla\", \"0\", "
      "\"abuse_ch\"\r\n"
      "\"2024-06-26 09:40:39\", \"1297124\", \"198.51.100.23:4444\", \"ip:port\", \"botnet_cc\", "
      "\"win.cobalt\", "
      "\"None\", \"Cobalt Strike\", \"\", \"75\", \"https://blog.example/report\", \"cs\", \"0\", \"r\"\r\n"
      "\"2024-06-26 09:40:40\", \"1297125\", \"C2.Other.Example\", \"domain\", \"botnet_cc\", \"x\", "
      "\"None\", "
      "\"X\", \"\", \"50\", \"\", \"\", \"0\", \"r\"\r\n"
      "\"2024-06-26 09:40:41\", \"1297126\", \"d41d8cd98f00b204e9800998ecf8427e\", \"md5_hash\", "
      "\"payload\", "
      "\"x\", \"None\", \"X\", \"\", \"50\", \"\", \"\", \"0\", \"r\"\r\n"
      "\"2024-06-26 09:40:42\", \"1297127\", \"999.1.1.1:80\", \"ip:port\", \"botnet_cc\", \"x\", \"None\", "
      "\"X\", \"\", \"50\", \"\", \"\", \"0\", \"r\"\r\n"
      "\"2024-06-26 09:40:43\", \"1297128\", \"x\", \"weird\", \"botnet_cc\", \"x\", \"None\", \"X\", \"\", "
      "\"50\", \"\", \"\", \"0\", \"r\"\r\n";
  auto r = parseFeed(Format::Threatfox, text, opts("c2"));
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->entries.size(), 3u);
  EXPECT_EQ(r->entries[0].key, "http://c2.example/gate.php");
  EXPECT_EQ(r->entries[0].score, 100);
  EXPECT_EQ(r->entries[0].reference, "https://threatfox.abuse.ch/ioc/1297123/");
  EXPECT_EQ(r->entries[1].kind, RuleKind::Ip);
  EXPECT_EQ(r->entries[1].key, "198.51.100.23");
  EXPECT_EQ(r->entries[1].score, 75);
  EXPECT_EQ(r->entries[1].reference, "https://blog.example/report");
  EXPECT_EQ(r->entries[2].key, "c2.other.example");
  EXPECT_EQ(r->skipped, 1u);
  EXPECT_EQ(badLineNumbers(*r), (std::vector<size_t>{8, 9}));
  EXPECT_NE(r->errors[1].reason.find("unknown ioc_type"), std::string::npos);
}

TEST(Feeds, SpamhausDropJsonLines) {
  std::string text =
      "{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"SBL256894\",\"rir\":\"apnic\"}\r\n"
      "{\"cidr\":\"2001:db8::/32\",\"sblid\":\"SBL1\",\"rir\":\"ripencc\"}\r\n"
      "{\"cidr\":\"10.1.2.3/8\",\"sblid\":\"SBL2\"}\r\n"
      "{\"sblid\":\"SBL3\"}\r\n"
      "{\"type\":\"metadata\",\"timestamp\":1718000000,\"size\":1234,\"records\":4,\"copyright\":\"(c) 2024 "
      "The Spamhaus Project SLU\",\"terms\":\"https://www.spamhaus.org/drop/terms/\"}\r\n";
  auto r = parseFeed(Format::Cidr, text, opts());
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[0].key, "1.10.16.0/20");
  EXPECT_EQ(r->entries[0].reference, "SBL256894");
  EXPECT_EQ(r->entries[1].key, "2001:db8::/32");
  EXPECT_EQ(badLineNumbers(*r), (std::vector<size_t>{3, 4}));
}

TEST(Feeds, SpamhausDropLegacyText) {
  std::string text =
      "; Spamhaus DROP List 2024/06/26 - (c) 2024 The Spamhaus Project SLU\r\n"
      "; Last-Modified: Wed, 26 Jun 2024 08:00:00 GMT\r\n"
      "1.10.16.0/20 ; SBL256894\r\n"
      "1.19.0.0/16 ; SBL434604\r\n"
      "not-a-cidr ; SBL5\r\n";
  auto r = parseFeed(Format::Cidr, text, opts());
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[1].reference, "SBL434604");
  EXPECT_EQ(badLineNumbers(*r), (std::vector<size_t>{5}));
}

TEST(Feeds, SquidguardDirectory) {
  auto dir = std::filesystem::temp_directory_path() / ("rep-sg-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "malware");
  std::ofstream(dir / "malware" / "domains") << "evil.example\r\nbad..example\r\nother.example\r\n";
  std::ofstream(dir / "malware" / "urls")
      << "evil2.example/dl/\r\nexample.org/path/x.exe\r\nbad%zz.example/x\r\n";
  auto r = parseFeedPath(Format::Squidguard, (dir / "malware").string(), opts());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->entries.size(), 4u);
  EXPECT_EQ(r->entries[2].kind, RuleKind::UrlPrefix);
  EXPECT_EQ(r->entries[2].key, "evil2.example/dl/");
  ASSERT_EQ(r->errors.size(), 2u);
  EXPECT_EQ(r->errors[0].file, "domains");
  EXPECT_EQ(r->errors[0].line, 2u);
  EXPECT_EQ(r->errors[1].file, "urls");
  EXPECT_EQ(r->errors[1].line, 3u);
}

TEST(Feeds, IstreamAndMissingFile) {
  std::istringstream in("a.example\nb.example\n");
  auto r = parseFeed(Format::Domains, in, opts());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->entries.size(), 2u);
  auto m = parseFeedPath(Format::Domains, "/nonexistent/feed.txt", opts());
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().detail.find("cannot open"), std::string::npos);
}

TEST(Feeds, FormatNames) {
  EXPECT_EQ(*parseFormat("threatfox"), Format::Threatfox);
  auto bad = parseFormat("csv");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().detail.find("domains, hosts"), std::string::npos);
}
