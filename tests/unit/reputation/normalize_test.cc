#include "reputation/normalize.h"

#include <gtest/gtest.h>

using namespace sekisho;
using namespace sekisho::reputation;

namespace {

std::string host(std::string_view in) {
  auto r = normalizeHost(in);
  return r ? r->host : "ERR: " + r.error().detail;
}
std::string url(std::string_view in) {
  auto r = normalizeUrl(in);
  return r ? r->url : "ERR: " + r.error().detail;
}
bool refusedWith(std::string_view in, std::string_view needle) {
  auto r = normalizeHost(in);
  if (r) {
    ADD_FAILURE() << "'" << in << "' accepted as '" << r->host << "'";
    return false;
  }
  if (r.error().detail.find(needle) == std::string::npos) {
    ADD_FAILURE() << "'" << in << "' refused with '" << r.error().detail << "', expected '" << needle << "'";
    return false;
  }
  return true;
}

}  // namespace

TEST(NormalizeHost, LowerCasesAndDropsOneTrailingDot) {
  EXPECT_EQ(host("EVIL.Example"), "evil.example");
  EXPECT_EQ(host("evil.example."), "evil.example");
  EXPECT_TRUE(refusedWith("evil.example..", "empty label"));
}

TEST(NormalizeHost, DecodesPercentEscapesThenChecksLdh) {
  EXPECT_EQ(host("%65vil.example"), "evil.example");
  EXPECT_EQ(host("EVIL%2Eexample"), "evil.example");
  EXPECT_TRUE(refusedWith("evil%2fexample", "is not a letter, digit or hyphen"));
  EXPECT_TRUE(refusedWith("evil%00.example", "is not a letter, digit or hyphen"));
  EXPECT_TRUE(refusedWith("evil%zz.example", "broken percent-escape"));
  EXPECT_TRUE(refusedWith("evil%4", "broken percent-escape"));
  EXPECT_TRUE(refusedWith("ev_il.example", "is not a letter, digit or hyphen"));
}

TEST(NormalizeHost, RefusesEmptyAndOverlongLabels) {
  EXPECT_TRUE(refusedWith("a..b", "empty label"));
  EXPECT_TRUE(refusedWith(".a.b", "empty label"));
  EXPECT_TRUE(refusedWith("", "empty host"));
  EXPECT_TRUE(refusedWith(".", "empty"));
  EXPECT_TRUE(refusedWith(std::string(64, 'a') + ".example", "label longer than 63"));
  EXPECT_EQ(host(std::string(63, 'a') + ".example"), std::string(63, 'a') + ".example");
  std::string longName;
  while (longName.size() < 250) longName += "abcdefghi.";
  longName += "example";
  EXPECT_TRUE(refusedWith(longName, "longer than 253"));
  EXPECT_TRUE(refusedWith("-evil.example", "hyphen"));
}

TEST(NormalizeHost, IdnMustBePunycode) {
  EXPECT_EQ(host("xn--r8jz45g.jp"), "xn--r8jz45g.jp");
  EXPECT_TRUE(refusedWith("例え.jp", "punycode"));
  EXPECT_TRUE(refusedWith("%E4%BE%8B.jp", "punycode"));
}

TEST(NormalizeHost, Ipv4OnlyAsDottedQuad) {
  auto r = normalizeHost("203.0.113.7");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, HostKind::Ipv4);
  EXPECT_TRUE(refusedWith("0x7f.1", "dotted-quad"));
  EXPECT_TRUE(refusedWith("2130706433", "dotted-quad"));
  EXPECT_TRUE(refusedWith("127.1", "dotted-quad"));
  EXPECT_TRUE(refusedWith("0177.0.0.1", "dotted-quad"));
  EXPECT_TRUE(refusedWith("127.0.0.0x1", "dotted-quad"));
  EXPECT_TRUE(refusedWith("1.2.3.4.5", "dotted-quad"));
}

TEST(NormalizeHost, Ipv6BracketedOrBareIsCanonical) {
  auto r = normalizeHost("[2001:DB8:0:0::1]");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, HostKind::Ipv6);
  EXPECT_EQ(r->host, "2001:db8::1");
  EXPECT_EQ(host("2001:db8::0:1"), "2001:db8::1");
  EXPECT_TRUE(refusedWith("[2001:db8::1", "unterminated"));
  EXPECT_TRUE(refusedWith("[2001:db8:::1]", "not a valid IPv6"));
}

TEST(NormalizeUrl, SpellingsOfOneUrlGiveOneKey) {
  const char* want = "http://evil.example/a/b.exe?x=1";
  for (const char* s : {"http://evil.example/a/b.exe?x=1", "HTTP://EVIL.EXAMPLE:80/a/b.exe?x=1#frag",
                        "http://evil.example./a/./b.exe?x=1", "http://evil.example/a/c/../b.exe?x=1",
                        "http://user:pw@evil.example/%61/b%2Eexe?x=1", "http://evil.example\\a\\b.exe?x=1",
                        "evil.example/a/b.exe?x=1"})
    EXPECT_EQ(url(s), want) << s;
}

TEST(NormalizeUrl, PercentEncodingIsNormalised) {
  EXPECT_EQ(url("http://e.example/a%2fb"), "http://e.example/a%2Fb");
  EXPECT_EQ(url("http://e.example/a b"), "http://e.example/a%20b");
  EXPECT_EQ(url("http://e.example/a%20b"), "http://e.example/a%20b");
  EXPECT_EQ(url("http://e.example/%7euser"), "http://e.example/~user");
  EXPECT_EQ(url("https://e.example:443"), "https://e.example/");
  EXPECT_EQ(url("https://e.example:8443/x"), "https://e.example:8443/x");
  EXPECT_EQ(url("http://[2001:db8::1]:8080/x"), "http://[2001:db8::1]:8080/x");
  EXPECT_EQ(url("http://e.example/../../etc"), "http://e.example/etc");
}

TEST(NormalizeUrl, RefusalsSayWhy) {
  auto r = normalizeUrl("gopher://e.example/");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("scheme 'gopher'"), std::string::npos);
  r = normalizeUrl("http://e.example:99999/");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("is not 1-65535"), std::string::npos);
  r = normalizeUrl("http://e.example/%G1");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("broken percent-escape"), std::string::npos);
  r = normalizeUrl("http://0x7f.1/");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("dotted-quad"), std::string::npos);
}

TEST(NormalizeUrl, HostPathForPrefixRules) {
  auto r = normalizeUrl("http://E.example:8080/a/b?q");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->hostPath(), "e.example:8080/a/b");
  auto p = normalizeUrlPrefix("e.example/dir/");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, "e.example/dir/");
}
