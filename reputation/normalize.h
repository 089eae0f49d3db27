// Host and URL normalisation: every spelling that means the same host or URL yields one key, and
// every spelling we cannot map safely is refused with a message that says why. Pure functions.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/base/result.h"

namespace sekisho::reputation {

enum class HostKind : uint8_t { Name, Ipv4, Ipv6 };

struct NormalHost {
  std::string host;  // "evil.example", "203.0.113.7", "2001:db8::1" (IPv6 without brackets)
  HostKind kind = HostKind::Name;
};

// Lower-cases, removes one trailing dot, decodes percent-escapes and refuses anything outside
// letters/digits/hyphen, labels outside 1-63 bytes, names over 253 bytes, empty labels, raw UTF-8
// (IDN must already be punycode, "xn--"), and IPv4 in any form but the dotted quad (0x7f.1,
// 2130706433, 127.1 and 0177.0.0.1 are refused: resolvers disagree on what they mean).
// "[v6]" is accepted and returned without brackets.
Result<NormalHost> normalizeHost(std::string_view text);

struct NormalUrl {
  std::string url;     // scheme://host[:port]/path[?query], the exact-URL key
  std::string scheme;  // "http"
  NormalHost host;
  uint16_t port = 0;  // effective port (default filled in)
  std::string path;   // "/a/b" (normalised, no query)
  std::string query;  // without '?'; empty when none
  // host + path, the key space of UrlPrefix rules: "evil.example/a/b", "[2001:db8::1]/x"
  std::string hostPath() const;
};

// RFC 3986 §6.2.2 normalisation: scheme and host lower-cased, default port dropped, userinfo and
// fragment dropped, percent-encoding normalised (unreserved decoded, other escapes upper-cased,
// stray bytes encoded), '\' read as '/', dot-segments removed (§5.2.4), empty path -> "/".
// Accepts http, https, ftp, ws, wss; a text without "://" is read as "http://" + text.
Result<NormalUrl> normalizeUrl(std::string_view text);

// Normalises a UrlPrefix key ("evil.example/path" or a full URL): returns host + path.
Result<std::string> normalizeUrlPrefix(std::string_view text);

}  // namespace sekisho::reputation
