#include "proxy/config/values.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstdio>

#include "proxy/base/strings.h"

namespace sekisho::config::values {

bool isDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string printable(std::string_view s) {
  std::string out;
  for (char ch : s.substr(0, 200)) {
    auto c = uint8_t(ch);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string show(std::string_view s) {
  if (isDigits(s) && s.size() <= 20) return std::string(s);
  std::string out = "'";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == kMaxShown) {
      // Do not leave half a UTF-8 sequence behind.
      while (out.size() > 1 && (uint8_t(out.back()) & 0xC0) == 0x80) out.pop_back();
      if (out.size() > 1 && uint8_t(out.back()) >= 0xC0) out.pop_back();
      out += "...";
      break;
    }
    auto c = uint8_t(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "'";
}

std::string keyText(std::string_view s) {
  bool plain = !s.empty() && s.size() <= kMaxShown && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
  return plain ? std::string(s) : show(s);
}

std::string showMillis(int64_t ms) {
  if (ms > 0 && ms % kHourMs == 0) return std::to_string(ms / kHourMs) + "h";
  if (ms > 0 && ms % kMinMs == 0) return std::to_string(ms / kMinMs) + "m";
  if (ms % kSecMs == 0) return std::to_string(ms / kSecMs) + "s";
  return std::to_string(ms) + "ms";
}

std::string showSize(int64_t bytes) {
  if (bytes > 0 && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "m";
  if (bytes > 0 && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "k";
  return std::to_string(bytes);
}

std::optional<int64_t> parseDuration(std::string_view s) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  auto n = parseDecimal(s.substr(0, digits), 1'000'000'000'000);  // 1e12 h still fits in int64 ms
  if (!n) return std::nullopt;
  std::string_view unit = s.substr(digits);
  int64_t scale;
  if (unit.empty() || unit == "s") {
    scale = kSecMs;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = kMinMs;
  } else if (unit == "h") {
    scale = kHourMs;
  } else {
    return std::nullopt;
  }
  return int64_t(*n) * scale;
}

std::optional<int64_t> parseSize(std::string_view s) {
  int64_t scale = 1;
  if (!s.empty() && (s.back() == 'k' || s.back() == 'K')) {
    scale = kKiB;
    s.remove_suffix(1);
  } else if (!s.empty() && (s.back() == 'm' || s.back() == 'M')) {
    scale = kMiB;
    s.remove_suffix(1);
  }
  auto n = parseDecimal(s, 1'000'000'000'000);
  if (!n) return std::nullopt;
  return int64_t(*n) * scale;
}

std::optional<std::string> normalizeHostName(std::string_view s) {
  std::string h = toLower(s);
  if (!h.empty() && h.back() == '.') h.pop_back();
  if (h.empty() || h.size() > 253) return std::nullopt;
  std::string_view rest = h;
  std::string_view label;
  while (true) {
    size_t dot = rest.find('.');
    label = rest.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return std::nullopt;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return std::nullopt;
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (isDigits(label)) return std::nullopt;
  return h;
}

std::optional<std::string> normalizePattern(std::string_view s) {
  if (s.starts_with("*.")) {
    auto domain = normalizeHostName(s.substr(2));
    if (!domain) return std::nullopt;
    return "*." + *domain;
  }
  if (auto ip = net::parseIp(s)) return ip->ipString();
  return normalizeHostName(s);
}

std::optional<std::string> normalizeHostPort(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = s.substr(0, colon);
  auto port = parseDecimal(s.substr(colon + 1), 65535);
  if (!port || *port == 0) return std::nullopt;
  std::string h;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    auto ip = net::parseIp(host);
    if (!ip || ip->family() != AF_INET6) return std::nullopt;
    h = "[" + ip->ipString() + "]";
  } else if (auto ip = net::parseIp(host); ip && host.find(':') == std::string_view::npos) {
    h = ip->ipString();
  } else if (auto name = normalizeHostName(host)) {
    h = *name;
  } else {
    return std::nullopt;
  }
  return h + ":" + std::to_string(*port);
}

std::optional<std::string> normalizeRedisUrl(std::string_view s) {
  constexpr std::string_view kScheme = "redis://";
  if (!s.starts_with(kScheme)) return std::nullopt;
  s.remove_prefix(kScheme.size());
  // ":password@" (Redis AUTH) is kept as written; a user name is not (Redis 5 style AUTH only).
  std::string auth;
  if (size_t at = s.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = s.substr(0, at);
    if (userinfo.size() < 2 || userinfo.front() != ':' || userinfo.find_first_of("/@ ") != std::string_view::npos)
      return std::nullopt;
    auth = std::string(userinfo) + "@";
    s.remove_prefix(at + 1);
  }
  uint64_t db = 0;
  if (size_t slash = s.find('/'); slash != std::string_view::npos) {
    std::string_view dbText = s.substr(slash + 1);
    if (!dbText.empty()) {
      auto n = parseDecimal(dbText, kMaxRedisDb);
      if (!n) return std::nullopt;
      db = *n;
    }
    s = s.substr(0, slash);
  }
  std::string_view host = s;
  uint64_t port = 6379;
  size_t colon = s.rfind(':');
  bool bracketed = !s.empty() && s.front() == '[';
  if (colon != std::string_view::npos && (!bracketed || colon > s.find(']'))) {
    auto p = parseDecimal(s.substr(colon + 1), 65535);
    if (!p || *p == 0) return std::nullopt;
    port = *p;
    host = s.substr(0, colon);
  }
  std::string h;
  if (bracketed) {
    auto ip = host.back() == ']' ? net::parseIp(host) : std::nullopt;
    if (!ip || ip->family() != AF_INET6) return std::nullopt;
    h = "[" + ip->ipString() + "]";
  } else if (auto ip = net::parseIp(host); ip && host.find(':') == std::string_view::npos) {
    h = ip->ipString();
  } else if (auto name = normalizeHostName(host)) {
    h = *name;
  } else {
    return std::nullopt;
  }
  return "redis://" + auth + h + ":" + std::to_string(port) + "/" + std::to_string(db);
}

bool isHttpUrl(std::string_view s) {
  std::string_view rest;
  if (s.size() > 7 && iequals(s.substr(0, 7), "http://")) {
    rest = s.substr(7);
  } else if (s.size() > 8 && iequals(s.substr(0, 8), "https://")) {
    rest = s.substr(8);
  } else {
    return false;
  }
  for (char c : s)
    if (uint8_t(c) <= 0x20 || c == 0x7f) return false;
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  return !authority.empty() && authority.find('@') == std::string_view::npos;
}

bool isCategory(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string maskedNetwork(const net::SocketAddr& addr, unsigned prefix) {
  net::SocketAddr out = addr;
  uint8_t* bytes;
  size_t n;
  if (out.family() == AF_INET) {
    bytes = reinterpret_cast<uint8_t*>(&reinterpret_cast<sockaddr_in*>(&out.ss)->sin_addr);
    n = 4;
  } else {
    bytes = reinterpret_cast<uint8_t*>(&reinterpret_cast<sockaddr_in6*>(&out.ss)->sin6_addr);
    n = 16;
  }
  for (size_t bit = prefix; bit < n * 8; ++bit) bytes[bit / 8] &= uint8_t(~(0x80 >> (bit % 8)));
  return out.ipString() + "/" + std::to_string(prefix);
}

}  // namespace sekisho::config::values
