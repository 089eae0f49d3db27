#include "reputation/policy.h"

#include <gtest/gtest.h>

using namespace sekisho;
using namespace sekisho::reputation;

namespace {

Match rule(RuleKind kind, std::string key, std::string category, int score, Action action = Action::Block,
           std::string source = "feed") {
  Match m;
  m.kind = kind;
  m.key = std::move(key);
  m.category = std::move(category);
  m.score = score;
  m.action = action;
  m.source = std::move(source);
  return m;
}

Facts facts() {
  Facts f;
  f.url = "http://evil.example/x";
  f.host = "evil.example";
  f.now = 1700000000;
  return f;
}

PolicyConfig at(Sensitivity s) {
  PolicyConfig c;
  c.sensitivity = s;
  return c;
}

}  // namespace

TEST(Policy, NoMatchAllows) {
  auto d = decide(facts(), {}, at(Sensitivity::High));
  EXPECT_EQ(d.outcome, Decision::Outcome::Allow);
  EXPECT_EQ(d.reason, "no rule matched");
  ASSERT_EQ(d.chain.size(), 1u);
}

TEST(Policy, ScoreThresholdsPerSensitivity) {
  std::vector<Match> m{rule(RuleKind::Domain, "evil.example", "malware", 80)};
  EXPECT_EQ(decide(facts(), m, at(Sensitivity::Low)).outcome, Decision::Outcome::Log);
  EXPECT_EQ(decide(facts(), m, at(Sensitivity::Medium)).outcome, Decision::Outcome::Block);
  EXPECT_EQ(decide(facts(), m, at(Sensitivity::High)).outcome, Decision::Outcome::Block);
  std::vector<Match> weak{rule(RuleKind::Domain, "evil.example", "malware", 50)};
  EXPECT_EQ(decide(facts(), weak, at(Sensitivity::Medium)).outcome, Decision::Outcome::Log);
  EXPECT_EQ(decide(facts(), weak, at(Sensitivity::High)).outcome, Decision::Outcome::Block);
  std::vector<Match> strong{rule(RuleKind::Domain, "evil.example", "c2", 95)};
  EXPECT_EQ(decide(facts(), strong, at(Sensitivity::Low)).outcome, Decision::Outcome::Block);
  auto d = decide(facts(), weak, at(Sensitivity::Medium));
  EXPECT_NE(d.chain[0].find("score 50 below the medium threshold 70"), std::string::npos) << d.chain[0];
}

TEST(Policy, AllowEntryBeatsBlocks) {
  std::vector<Match> m{rule(RuleKind::Url, "http://evil.example/x", "c2", 100),
                       rule(RuleKind::Domain, "evil.example", "admin-allow", 0, Action::Allow, "admin"),
                       rule(RuleKind::Cidr, "203.0.113.0/24", "malware", 100)};
  auto d = decide(facts(), m, at(Sensitivity::High));
  EXPECT_EQ(d.outcome, Decision::Outcome::Allow);
  ASSERT_TRUE(d.decisive);
  EXPECT_EQ(d.decisive->source, "admin");
  EXPECT_EQ(d.chain.size(), 3u);
  EXPECT_NE(d.chain[1].find("overridden by the allow entry"), std::string::npos);
}

TEST(Policy, ExpiredAllowNoLongerBeatsBlock) {
  auto allow = rule(RuleKind::Domain, "evil.example", "ok", 0, Action::Allow, "admin");
  allow.expires = 1600000000;
  std::vector<Match> m{allow, rule(RuleKind::Domain, "evil.example", "c2", 100)};
  auto d = decide(facts(), m, at(Sensitivity::Medium));
  EXPECT_EQ(d.outcome, Decision::Outcome::Block);
  EXPECT_NE(d.chain[0].find("expired"), std::string::npos);
}

TEST(Policy, CategoryActionsOverrideRules) {
  PolicyConfig c = at(Sensitivity::High);
  c.categoryActions["ads"] = Action::Log;
  c.categoryActions["phishing"] = Action::Allow;
  std::vector<Match> ads{rule(RuleKind::Domain, "ads.example", "ads", 100)};
  EXPECT_EQ(decide(facts(), ads, c).outcome, Decision::Outcome::Log);
  std::vector<Match> ph{rule(RuleKind::Domain, "p.example", "phishing", 100)};
  EXPECT_EQ(decide(facts(), ph, c).outcome, Decision::Outcome::Allow);
}

TEST(Policy, StrongestMostSpecificRuleDecides) {
  std::vector<Match> m{rule(RuleKind::Cidr, "203.0.113.0/24", "malware", 90),
                       rule(RuleKind::Url, "http://evil.example/x", "c2", 90),
                       rule(RuleKind::Domain, "evil.example", "phishing", 80)};
  auto d = decide(facts(), m, at(Sensitivity::Medium));
  EXPECT_EQ(d.outcome, Decision::Outcome::Block);
  ASSERT_TRUE(d.decisive);
  EXPECT_EQ(d.decisive->ruleId(), "url:http://evil.example/x");
  EXPECT_EQ(d.reason, "c2 (source feed, rule url:http://evil.example/x)");
  EXPECT_EQ(d.chain.size(), 3u);
  EXPECT_NE(d.chain[0].find(", decides"), std::string::npos);
}

TEST(Policy, Names) {
  EXPECT_EQ(*parseSensitivity("high"), Sensitivity::High);
  EXPECT_FALSE(parseSensitivity("extreme"));
  EXPECT_EQ(blockThreshold(Sensitivity::Low), 90);
}
