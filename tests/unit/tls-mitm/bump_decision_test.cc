#include "tls-mitm/bump_decision.h"

#include <gtest/gtest.h>

using namespace sekisho::mitm;

namespace {

ClientHelloInfo helloFor(const std::string& sni, SniStatus st = SniStatus::Valid) {
  ClientHelloInfo h;
  h.sniStatus = st;
  if (st == SniStatus::Valid) h.sni = sni;
  h.sniRaw = sni;
  return h;
}

// Facts under which every row of the table would fire, so each test switches one off at a time.
struct Fixture {
  ClientHelloInfo hello = helloFor("www.example.com");
  BumpFacts facts() const {
    BumpFacts f;
    f.connectHost = "www.example.com";
    f.port = 443;
    f.helloState = HelloState::Parsed;
    f.hello = &hello;
    f.interceptEnabled = true;
    f.verdict = HostVerdict::Allow;
    return f;
  }
};

}  // namespace

TEST(BumpDecision, InterceptsAConsistentHello) {
  Fixture fx;
  auto d = decideBump(fx.facts());
  EXPECT_EQ(d.action, BumpAction::Intercept);
  EXPECT_EQ(d.reason, "intercept");
  EXPECT_EQ(d.mintFor, "www.example.com");
}

TEST(BumpDecision, UnknownVerdictStillIntercepts) {
  Fixture fx;
  auto f = fx.facts();
  f.verdict = HostVerdict::Unknown;
  EXPECT_EQ(decideBump(f).action, BumpAction::Intercept);
}

TEST(BumpDecision, BlockVerdictWinsOverEverything) {
  Fixture fx;
  auto f = fx.facts();
  f.verdict = HostVerdict::Block;
  f.verdictReason = "malware (feed abuse.ch)";
  f.helloState = HelloState::NotTls;
  f.noIntercept = true;
  f.rememberedPinned = true;
  f.interceptEnabled = false;
  auto d = decideBump(f);
  EXPECT_EQ(d.action, BumpAction::Block);
  EXPECT_EQ(d.reason, "host_blocked");
  EXPECT_EQ(d.detail, "malware (feed abuse.ch)");
  EXPECT_EQ(d.mintFor, "www.example.com");
}

TEST(BumpDecision, NotTlsIsTunnelled) {
  Fixture fx;
  auto f = fx.facts();
  f.helloState = HelloState::NotTls;
  f.hello = nullptr;
  f.noIntercept = true;
  auto d = decideBump(f);
  EXPECT_EQ(d.action, BumpAction::Tunnel);
  EXPECT_EQ(d.reason, "not_tls");
}

TEST(BumpDecision, NoInterceptIsTunnelled) {
  Fixture fx;
  auto f = fx.facts();
  f.noIntercept = true;
  f.rememberedPinned = true;
  auto d = decideBump(f);
  EXPECT_EQ(d.action, BumpAction::Tunnel);
  EXPECT_EQ(d.reason, "no_intercept");
}

TEST(BumpDecision, RememberedPinnedIsTunnelled) {
  Fixture fx;
  auto f = fx.facts();
  f.rememberedPinned = true;
  f.rememberedClientCert = true;
  EXPECT_EQ(decideBump(f).reason, "pinned_client");
  EXPECT_EQ(decideBump(f).action, BumpAction::Tunnel);
}

TEST(BumpDecision, ClientCertOriginsAreTunnelled) {
  Fixture fx;
  auto f = fx.facts();
  f.rememberedClientCert = true;
  f.interceptEnabled = false;
  EXPECT_EQ(decideBump(f).reason, "client_cert_required");
  auto g = fx.facts();
  g.originNeedsClientCert = true;
  auto d = decideBump(g);
  EXPECT_EQ(d.action, BumpAction::Tunnel);
  EXPECT_EQ(d.reason, "client_cert_required");
}

TEST(BumpDecision, DisabledInterceptionTunnels) {
  Fixture fx;
  auto f = fx.facts();
  f.interceptEnabled = false;
  f.helloState = HelloState::Malformed;
  auto d = decideBump(f);
  EXPECT_EQ(d.action, BumpAction::Tunnel);
  EXPECT_EQ(d.reason, "intercept_disabled");
}

TEST(BumpDecision, MalformedHelloIsBlocked) {
  Fixture fx;
  auto f = fx.facts();
  f.helloState = HelloState::Malformed;
  f.hello = nullptr;
  auto d = decideBump(f);
  EXPECT_EQ(d.action, BumpAction::Block);
  EXPECT_EQ(d.reason, "malformed_hello");
}

TEST(BumpDecision, UnreadableHelloIsTunnelled) {
  Fixture fx;
  auto f = fx.facts();
  f.helloState = HelloState::Unreadable;
  f.hello = nullptr;
  EXPECT_EQ(decideBump(f).reason, "hello_unreadable");
  auto g = fx.facts();
  g.hello = nullptr;  // Parsed without a hello: treated as unreadable, never as a free pass
  EXPECT_EQ(decideBump(g).action, BumpAction::Tunnel);
}

TEST(BumpDecision, SniNamingAnotherHostIsDomainFronting) {
  Fixture fx;
  fx.hello = helloFor("evil.example");
  auto d = decideBump(fx.facts());
  EXPECT_EQ(d.action, BumpAction::Block);
  EXPECT_EQ(d.reason, "sni_mismatch");
  EXPECT_EQ(d.detail, "SNI 'evil.example' vs CONNECT 'www.example.com'");
}

TEST(BumpDecision, SniComparedCaseAndTrailingDotInsensitive) {
  Fixture fx;
  auto f = fx.facts();
  f.connectHost = "WWW.Example.com.";
  auto d = decideBump(f);
  EXPECT_EQ(d.action, BumpAction::Intercept);
  EXPECT_EQ(d.mintFor, "www.example.com");
}

TEST(BumpDecision, IpConnectTakesTheSniName) {
  Fixture fx;
  fx.hello = helloFor("api.example");
  for (const char* ip : {"192.0.2.7", "2001:db8::1"}) {
    auto f = fx.facts();
    f.connectHost = ip;
    auto d = decideBump(f);
    EXPECT_EQ(d.action, BumpAction::Intercept) << ip;
    EXPECT_EQ(d.mintFor, "api.example");
  }
}

TEST(BumpDecision, UntrustedSniMintsForConnectHost) {
  Fixture fx;
  for (auto st : {SniStatus::IpLiteral, SniStatus::Invalid, SniStatus::Absent}) {
    fx.hello = helloFor("bogus_name", st);
    auto f = fx.facts();
    auto d = decideBump(f);
    EXPECT_EQ(d.action, BumpAction::Intercept);
    EXPECT_EQ(d.mintFor, "www.example.com");
    f.connectHost = "192.0.2.7";
    EXPECT_EQ(decideBump(f).mintFor, "192.0.2.7");
    f.connectHost = "[2001:DB8::1]";
    EXPECT_EQ(decideBump(f).mintFor, "2001:db8::1");
  }
}

TEST(BumpDecision, ActionNames) {
  EXPECT_EQ(actionName(BumpAction::Tunnel), "tunnel");
  EXPECT_EQ(actionName(BumpAction::Intercept), "intercept");
  EXPECT_EQ(actionName(BumpAction::Block), "block");
}

TEST(MatchesPattern, ExactHost) {
  EXPECT_TRUE(matchesPattern("bank.example", "bank.example"));
  EXPECT_TRUE(matchesPattern("BANK.example.", "bank.EXAMPLE"));
  EXPECT_FALSE(matchesPattern("www.bank.example", "bank.example"));
  EXPECT_FALSE(matchesPattern("bank.example.org", "bank.example"));
}

TEST(MatchesPattern, WildcardMatchesDomainAndSubdomains) {
  EXPECT_TRUE(matchesPattern("bank.example", "*.bank.example"));
  EXPECT_TRUE(matchesPattern("www.bank.example", "*.bank.example"));
  EXPECT_TRUE(matchesPattern("a.b.Bank.Example", "*.bank.example"));
  EXPECT_FALSE(matchesPattern("evilbank.example", "*.bank.example"));
  EXPECT_FALSE(matchesPattern("bank.example.evil", "*.bank.example"));
  EXPECT_FALSE(matchesPattern("example", "*.bank.example"));
}

TEST(MatchesPattern, MalformedPatternsMatchNothing) {
  for (const char* p : {"", "*", "*.", "a.*.b", "*.*.example", "ban*.example"})
    EXPECT_FALSE(matchesPattern("a.b", p)) << p;
  EXPECT_FALSE(matchesPattern("", "*.example"));
  EXPECT_FALSE(matchesPattern(".", "*.example"));
}
