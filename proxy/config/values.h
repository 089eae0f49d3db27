// The value parsers and quoting the config loader uses (load.cc): durations, sizes, host names,
// patterns, host:port, Redis URLs, categories, and text made safe to quote back in an error.
// Pure functions; nullopt means "not a valid value" and the loader says what is expected.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/net/address.h"

namespace sekisho::config::values {

constexpr size_t kMaxShown = 64;  // longest value quoted back in an error
constexpr uint64_t kMaxRedisDb = 65535;

constexpr int64_t kSecMs = 1000, kMinMs = 60 * kSecMs, kHourMs = 60 * kMinMs;
constexpr int64_t kKiB = 1024, kMiB = 1024 * kKiB;

bool isDigits(std::string_view s);
// Text from elsewhere (yaml-cpp messages quote the offending character) made safe for one log
// line: control bytes escaped, length bounded.
std::string printable(std::string_view s);
// A value quoted back in an error: numbers as they are, anything else in single quotes with
// control bytes escaped and long text cut, so an error line is always one printable line.
std::string show(std::string_view s);
// A key name inside a key path: as written when it is a plain word, quoted otherwise.
std::string keyText(std::string_view s);
std::string showMillis(int64_t ms);
std::string showSize(int64_t bytes);
// "500ms", "10s", "2m", "1h", or plain seconds. Milliseconds, or nullopt.
std::optional<int64_t> parseDuration(std::string_view s);
// Bytes with an optional k or m suffix (binary: 1k = 1024).
std::optional<int64_t> parseSize(std::string_view s);
// RFC 1123 host name: dot-separated letter-digit-hyphen labels of 1..63, at most 253 in all.
// Lower-cased, one trailing dot dropped. A name whose last label is all digits is refused: it
// is an IPv4 address (or a typo of one), not a name.
std::optional<std::string> normalizeHostName(std::string_view s);
// "host" (a name or an IP literal) or "*.domain", lower-cased; IP literals in canonical form.
std::optional<std::string> normalizePattern(std::string_view s);
// "host:port" where host is a name, an IPv4 address or "[v6]"; port 1..65535.
std::optional<std::string> normalizeHostPort(std::string_view s);
// "redis://host[:port][/db]" -> "redis://host:port/db" with the defaults filled in.
std::optional<std::string> normalizeRedisUrl(std::string_view s);
bool isHttpUrl(std::string_view s);
bool isCategory(std::string_view s);
// The network a CIDR with host bits set was probably meant to be ("10.1.2.3/8" -> 10.0.0.0/8).
std::string maskedNetwork(const net::SocketAddr& addr, unsigned prefix);

}  // namespace sekisho::config::values
