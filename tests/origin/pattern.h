// The body pattern the test origin serves (/size/N) and checks (/upload), shared with the
// integration harness so a test can verify a relayed body byte by byte. The period is a prime
// (251) and the bytes come from a xorshift sequence, so a body shifted, truncated or duplicated
// by the proxy no longer matches at the same offset.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sekisho::testorigin {

inline constexpr size_t kPatternPeriod = 251;

inline constexpr std::array<char, kPatternPeriod> kPattern = [] {
  std::array<char, kPatternPeriod> p{};
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < p.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = kAlphabet[x % kAlphabet.size()];
  }
  return p;
}();

inline char patternByte(uint64_t offset) { return kPattern[offset % kPatternPeriod]; }

// A buffer of `bytes` + one period of pattern starting at offset 0; a window starting at
// `offset % kPatternPeriod` holds the pattern for `offset` onwards.
inline std::string patternBlock(size_t bytes) {
  std::string s(bytes + kPatternPeriod, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = patternByte(i);
  return s;
}

// The first `n` bytes of the pattern.
inline std::string patternString(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = patternByte(i);
  return s;
}

// True when `data` equals the pattern from `offset` onwards.
inline bool matchesPattern(std::string_view data, uint64_t offset) {
  size_t i = 0;
  while (i < data.size()) {
    size_t phase = (offset + i) % kPatternPeriod;
    size_t n = std::min(kPatternPeriod - phase, data.size() - i);
    if (std::memcmp(data.data() + i, kPattern.data() + phase, n) != 0) return false;
    i += n;
  }
  return true;
}

}  // namespace sekisho::testorigin
