// Small string helpers shared by every parser: ASCII-only, locale-free, allocation-free.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sekisho {

constexpr char asciiLower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  return true;
}

inline std::string toLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = asciiLower(c);
  return out;
}

constexpr std::string_view trimOws(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Decimal digits only (no sign, no spaces); nullopt on overflow past `max` or empty input.
constexpr std::optional<uint64_t> parseDecimal(std::string_view s, uint64_t max = UINT64_MAX) noexcept {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = uint64_t(c - '0');
    if (v > (max - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

// Calls fn(element) for each comma-separated element of a header list value, trimmed,
// skipping empty elements (RFC 9110 §5.6.1).
template <class Fn>
void forEachListElement(std::string_view value, Fn&& fn) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view elem = trimOws(value.substr(0, comma));
    if (!elem.empty()) fn(elem);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// Bytes as two hex digits each, lowercase unless `upper`, `sep` between bytes unless '\0'
// (e.g. ':' for certificate fingerprints).
inline std::string toHex(const unsigned char* p, size_t n, char sep = '\0', bool upper = false) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  out.reserve(n * 3);
  for (size_t i = 0; i < n; ++i) {
    if (sep && i) out += sep;
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0xf];
  }
  return out;
}

}  // namespace sekisho
