#include "reputation/verdict.h"

namespace sekisho::reputation {

std::string_view kindName(RuleKind k) noexcept {
  switch (k) {
    case RuleKind::Url:
      return "url";
    case RuleKind::UrlPrefix:
      return "prefix";
    case RuleKind::Domain:
      return "domain";
    case RuleKind::Ip:
      return "ip";
    case RuleKind::Cidr:
      return "cidr";
  }
  return "?";
}

std::string_view actionName(Action a) noexcept {
  switch (a) {
    case Action::Block:
      return "block";
    case Action::Allow:
      return "allow";
    case Action::Log:
      return "log";
  }
  return "?";
}

bool parseAction(std::string_view s, Action& out) noexcept {
  if (s == "block")
    out = Action::Block;
  else if (s == "allow")
    out = Action::Allow;
  else if (s == "log")
    out = Action::Log;
  else
    return false;
  return true;
}

std::string Match::ruleId() const { return std::string(kindName(kind)) + ":" + key; }

bool validCategory(std::string_view s) noexcept {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

bool validSourceName(std::string_view s) noexcept {
  if (s.empty() || s.size() > 64 || s.front() == '.') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.'))
      return false;
  return true;
}

}  // namespace sekisho::reputation
