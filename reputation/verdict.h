// The verdict model: what a reputation rule says about a URL, host or address, and where it came
// from. Plain data shared by the feed parsers, the stores and the policy function.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sekisho::reputation {

// What an entry asks for. Allow entries (an admin's "this is our supplier") beat every block.
enum class Action : uint8_t { Block, Allow, Log };

// Which key an entry is stored under; the order is also specificity, most specific first.
enum class RuleKind : uint8_t {
  Url,        // exact normalised URL: "http://evil.example/gate.php?id=1"
  UrlPrefix,  // host + path prefix: "evil.example/downloads/"
  Domain,     // a host and every name under it: "evil.example"
  Ip,         // one address literal: "203.0.113.7", "2001:db8::1"
  Cidr,       // a network: "203.0.113.0/24"
};

// Well-known categories; admins may use any other name ([a-z0-9_-]{1,32}).
inline constexpr std::string_view kCategoryMalware = "malware";
inline constexpr std::string_view kCategoryC2 = "c2";
inline constexpr std::string_view kCategoryPhishing = "phishing";

// One rule as imported. `key` is already normalised for its kind.
struct FeedEntry {
  RuleKind kind = RuleKind::Domain;
  std::string key;
  std::string category;   // empty: the feed's category
  int score = -1;         // 0-100; -1: the feed's score
  std::string reference;  // the feed's own link for this entry ("https://urlhaus.abuse.ch/url/1/")
  int64_t added = 0;      // unix seconds the feed says it was added; 0: the import time
  int64_t expires = 0;    // unix seconds; 0: never
};

// A rule that matched a lookup, with its provenance, ready for the policy and the block page.
struct Match {
  RuleKind kind = RuleKind::Domain;
  std::string key;
  std::string source;  // the feed or list name given at import ("urlhaus", "admin-allow")
  std::string category;
  int score = 100;
  Action action = Action::Block;
  int64_t added = 0;
  int64_t expires = 0;
  std::string reference;

  // What matched, for logs and `sekisho lookup`: "domain:evil.example", "cidr:203.0.113.0/24".
  std::string ruleId() const;
};

std::string_view kindName(RuleKind k) noexcept;  // "url", "prefix", "domain", "ip", "cidr"
std::string_view actionName(Action a) noexcept;  // "block", "allow", "log"
bool parseAction(std::string_view s, Action& out) noexcept;
// [a-z0-9_-]{1,32}: categories are printed on block pages and used as config keys.
bool validCategory(std::string_view s) noexcept;
// [A-Za-z0-9._-]{1,64}, not starting with '.': source names become file names in the data dir.
bool validSourceName(std::string_view s) noexcept;

}  // namespace sekisho::reputation
