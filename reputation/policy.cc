#include "reputation/policy.h"

#include <algorithm>

namespace sekisho::reputation {

Result<Sensitivity> parseSensitivity(std::string_view s) {
  if (s == "low") return Sensitivity::Low;
  if (s == "medium") return Sensitivity::Medium;
  if (s == "high") return Sensitivity::High;
  return fail(ErrKind::Config, Side::Config,
              "sensitivity '" + std::string(s) + "' is not one of low, medium, high");
}

std::string_view sensitivityName(Sensitivity s) noexcept {
  switch (s) {
    case Sensitivity::Low:
      return "low";
    case Sensitivity::Medium:
      return "medium";
    case Sensitivity::High:
      return "high";
  }
  return "?";
}

int blockThreshold(Sensitivity s) noexcept {
  switch (s) {
    case Sensitivity::Low:
      return 90;
    case Sensitivity::Medium:
      return 70;
    case Sensitivity::High:
      return 40;
  }
  return 70;
}

std::string_view outcomeName(Decision::Outcome o) noexcept {
  switch (o) {
    case Decision::Outcome::Allow:
      return "allow";
    case Decision::Outcome::Block:
      return "block";
    case Decision::Outcome::Log:
      return "log";
  }
  return "?";
}

namespace {

std::string describe(const Match& m) {
  return m.ruleId() + " (source " + m.source + ", category " + m.category + ", score " +
         std::to_string(m.score) + ")";
}

// Most decisive first: higher score, then the more specific key (url before domain before cidr).
bool stronger(const Match& a, const Match& b) {
  if (a.score != b.score) return a.score > b.score;
  return a.kind < b.kind;
}

}  // namespace

Decision decide(const Facts& facts, const std::vector<Match>& matches, const PolicyConfig& config) {
  Decision d;
  int threshold = blockThreshold(config.sensitivity);
  std::vector<const Match*> live;
  for (const Match& m : matches) {
    if (m.expires != 0 && facts.now != 0 && m.expires <= facts.now) {
      d.chain.push_back(describe(m) + ": expired, ignored");
      continue;
    }
    live.push_back(&m);
  }
  // An allow entry (an admin's correction) beats every block, whatever its score.
  const Match* allow = nullptr;
  for (const Match* m : live)
    if (m->action == Action::Allow && (!allow || stronger(*m, *allow))) allow = m;
  if (allow) {
    d.outcome = Decision::Outcome::Allow;
    d.decisive = *allow;
    d.reason = "allowed by " + allow->ruleId() + " (source " + allow->source + ")";
    d.chain.push_back(describe(*allow) + ": allow entry, beats every block");
    for (const Match* m : live)
      if (m != allow && m->action != Action::Allow)
        d.chain.push_back(describe(*m) + ": overridden by the allow entry");
    return d;
  }
  std::sort(live.begin(), live.end(), [](const Match* a, const Match* b) { return stronger(*a, *b); });
  const Match* block = nullptr;
  const Match* log = nullptr;
  for (const Match* m : live) {
    Action act = m->action;
    std::string why;
    if (auto it = config.categoryActions.find(m->category); it != config.categoryActions.end()) {
      act = it->second;
      why = "category " + m->category + " set to " + std::string(actionName(act));
    }
    if (act == Action::Block && m->score < threshold) {
      act = Action::Log;
      why = "score " + std::to_string(m->score) + " below the " +
            std::string(sensitivityName(config.sensitivity)) + " threshold " + std::to_string(threshold);
    }
    std::string line = describe(*m) + ": " + std::string(actionName(act));
    if (!why.empty()) line += " (" + why + ")";
    if (act == Action::Block && !block) {
      block = m;
      line += ", decides";
    } else if (act == Action::Log && !log) {
      log = m;
    }
    d.chain.push_back(std::move(line));
  }
  if (block) {
    d.outcome = Decision::Outcome::Block;
    d.decisive = *block;
    d.reason = block->category + " (source " + block->source + ", rule " + block->ruleId() + ")";
  } else if (log) {
    d.outcome = Decision::Outcome::Log;
    d.decisive = *log;
    d.reason = "logged: " + log->category + " (source " + log->source + ", rule " + log->ruleId() + ")";
  } else {
    d.outcome = Decision::Outcome::Allow;
    d.reason = live.empty() ? "no rule matched" : "no matching rule blocks";
    if (matches.empty()) d.chain.push_back("no rule matched " + (facts.url.empty() ? facts.host : facts.url));
  }
  return d;
}

}  // namespace sekisho::reputation
