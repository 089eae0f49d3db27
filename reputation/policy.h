// The policy: one pure function from what we know about a request and which rules matched it to
// a decision, with the chain of rules that decided (for logs, block pages and `sekisho lookup`).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/result.h"
#include "proxy/net/address.h"
#include "reputation/verdict.h"

namespace sekisho::reputation {

enum class Sensitivity : uint8_t { Low, Medium, High };

Result<Sensitivity> parseSensitivity(std::string_view s);  // "low" | "medium" | "high"
std::string_view sensitivityName(Sensitivity s) noexcept;
// The lowest score that blocks: low 90, medium 70, high 40. Below it a block rule only logs.
int blockThreshold(Sensitivity s) noexcept;

struct PolicyConfig {
  Sensitivity sensitivity = Sensitivity::Medium;
  // Per-category action overriding the rule's own ("ads: log", "phishing: block").
  std::map<std::string, Action, std::less<>> categoryActions;
};

// What the proxy knows about the request; strings are already normalised.
struct Facts {
  std::string url;  // normalised URL; empty for a CONNECT decided on its host only
  std::string host;
  std::vector<net::SocketAddr> ips;
  std::string client;  // "10.1.2.3", for the chain and the log
  int64_t now = 0;     // unix seconds, for expiry
};

struct Decision {
  enum class Outcome : uint8_t { Allow, Block, Log };
  Outcome outcome = Outcome::Allow;
  std::string reason;              // one line: "c2 (source threatfox, rule domain:evil.example)"
  std::optional<Match> decisive;   // the rule that decided, when one did
  std::vector<std::string> chain;  // every rule considered and what it did, in order
};

std::string_view outcomeName(Decision::Outcome o) noexcept;  // "allow", "block", "log"

Decision decide(const Facts& facts, const std::vector<Match>& matches, const PolicyConfig& config);

}  // namespace sekisho::reputation
