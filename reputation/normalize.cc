#include "reputation/normalize.h"

#include <arpa/inet.h>

#include <cstring>

#include "proxy/base/strings.h"

namespace sekisho::reputation {

namespace {

constexpr size_t kMaxHost = 253;
constexpr size_t kMaxLabel = 63;
constexpr size_t kMaxUrl = 8192;

Error refuse(std::string detail) {
  return Error{ErrKind::BadRequest, Side::Downstream, std::move(detail), false};
}

int hexVal(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool isUnreserved(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// Characters that may stand unescaped in a path or query (RFC 3986 §3.3, §3.4).
bool isPathChar(unsigned char c) noexcept {
  if (isUnreserved(c)) return true;
  return std::strchr("!$&'()*+,;=:@/?", c) != nullptr && c != 0;
}

std::string quoted(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s.substr(0, 80)) {
    if (c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789ABCDEF";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  if (s.size() > 80) out += "...";
  return out + "'";
}

bool looksNumeric(std::string_view label) noexcept {
  if (label.empty()) return false;
  if (label.size() > 1 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')) {
    for (char c : label.substr(2))
      if (hexVal(c) < 0) return false;
    return true;
  }
  for (char c : label)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

Result<NormalHost> normalizeHost(std::string_view text) {
  if (text.empty()) return tl::unexpected(refuse("empty host"));
  if (text.front() == '[') {
    if (text.size() < 3 || text.back() != ']')
      return tl::unexpected(refuse("host " + quoted(text) + ": unterminated IPv6 literal"));
    std::string inner(text.substr(1, text.size() - 2));
    in6_addr a6{};
    if (inet_pton(AF_INET6, inner.c_str(), &a6) != 1)
      return tl::unexpected(refuse("host " + quoted(text) + ": not a valid IPv6 address"));
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    return NormalHost{buf, HostKind::Ipv6};
  }
  std::string h;
  h.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      int hi = i + 2 < text.size() ? hexVal(text[i + 1]) : -1;
      int lo = hi >= 0 ? hexVal(text[i + 2]) : -1;
      if (lo < 0) return tl::unexpected(refuse("host " + quoted(text) + ": broken percent-escape"));
      c = char(hi * 16 + lo);
      i += 2;
    }
    h += asciiLower(c);
  }
  if (h.size() > kMaxHost + 1)
    return tl::unexpected(refuse("host " + quoted(text) + ": longer than 253 bytes"));
  if (!h.empty() && h.back() == '.') h.pop_back();
  if (h.empty()) return tl::unexpected(refuse("host " + quoted(text) + ": empty"));
  if (h.size() > kMaxHost) return tl::unexpected(refuse("host " + quoted(text) + ": longer than 253 bytes"));
  if (h.find(':') != std::string::npos) {
    // A bare IPv6 literal (feeds write them without brackets).
    in6_addr a6{};
    if (inet_pton(AF_INET6, h.c_str(), &a6) != 1)
      return tl::unexpected(refuse("host " + quoted(text) + ": not a valid IPv6 address"));
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    return NormalHost{buf, HostKind::Ipv6};
  }
  for (unsigned char c : h) {
    if (c >= 0x80)
      return tl::unexpected(
          refuse("host " + quoted(text) +
                 ": non-ASCII name; internationalised names must be given in punycode (xn--)"));
  }
  // WHATWG URL §3.5: a name whose last label is numeric is an IPv4 address. Only the dotted
  // quad is accepted; the other forms parse differently across resolvers and hide the target.
  std::string_view last = h;
  if (size_t dot = last.rfind('.'); dot != std::string_view::npos) last = last.substr(dot + 1);
  if (looksNumeric(last)) {
    in_addr a4{};
    if (inet_pton(AF_INET, h.c_str(), &a4) != 1)
      return tl::unexpected(
          refuse("host " + quoted(text) +
                 ": not a dotted-quad IPv4 address (hex, octal, integer and short forms are refused)"));
    return NormalHost{h, HostKind::Ipv4};
  }
  size_t start = 0;
  while (start <= h.size()) {
    size_t dot = h.find('.', start);
    if (dot == std::string::npos) dot = h.size();
    std::string_view label(h.data() + start, dot - start);
    if (label.empty()) return tl::unexpected(refuse("host " + quoted(text) + ": empty label"));
    if (label.size() > kMaxLabel)
      return tl::unexpected(refuse("host " + quoted(text) + ": label longer than 63 bytes"));
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        return tl::unexpected(refuse("host " + quoted(text) + ": character " +
                                     quoted(std::string_view(&c, 1)) + " is not a letter, digit or hyphen"));
    if (label.front() == '-' || label.back() == '-')
      return tl::unexpected(refuse("host " + quoted(text) + ": label starts or ends with a hyphen"));
    start = dot + 1;
  }
  return NormalHost{std::move(h), HostKind::Name};
}

namespace {

// Normalises percent-encoding in a path or query component (RFC 3986 §6.2.2.2).
Result<std::string> normalizeEscapes(std::string_view in, bool isPath) {
  std::string out;
  out.reserve(in.size());
  static const char* hex = "0123456789ABCDEF";
  for (size_t i = 0; i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '%') {
      int hi = i + 2 < in.size() ? hexVal(in[i + 1]) : -1;
      int lo = hi >= 0 ? hexVal(in[i + 2]) : -1;
      if (lo < 0) return tl::unexpected(refuse("broken percent-escape in " + quoted(in)));
      unsigned char d = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
      if (isUnreserved(d)) {
        out += char(d);
      } else {
        out += '%';
        out += hex[d >> 4];
        out += hex[d & 15];
      }
      continue;
    }
    if (isPath && c == '\\') c = '/';  // browsers read '\' as '/' in http(s) paths
    if (isPathChar(c) && !(isPath && c == '?')) {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// RFC 3986 §5.2.4.
std::string removeDotSegments(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  while (!in.empty()) {
    if (in.starts_with("../")) {
      in.remove_prefix(3);
    } else if (in.starts_with("./")) {
      in.remove_prefix(2);
    } else if (in.starts_with("/./")) {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.starts_with("/../") || in == "/..") {
      if (in == "/..")
        in = "/";
      else
        in.remove_prefix(3);
      size_t slash = out.rfind('/');
      out.erase(slash == std::string::npos ? 0 : slash);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      size_t next = in.find('/', in.front() == '/' ? 1 : 0);
      if (next == std::string_view::npos) next = in.size();
      out.append(in.substr(0, next));
      in.remove_prefix(next);
    }
  }
  return out;
}

uint16_t defaultPort(std::string_view scheme) noexcept {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  if (scheme == "ftp") return 21;
  return 0;
}

}  // namespace

std::string NormalUrl::hostPath() const {
  std::string out = host.kind == HostKind::Ipv6 ? "[" + host.host + "]" : host.host;
  if (port != defaultPort(scheme)) out += ":" + std::to_string(port);
  return out + path;
}

Result<NormalUrl> normalizeUrl(std::string_view text) {
  text = trimOws(text);
  if (text.empty()) return tl::unexpected(refuse("empty URL"));
  if (text.size() > kMaxUrl) return tl::unexpected(refuse("URL longer than 8192 bytes"));
  NormalUrl u;
  // A scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) right before "://" (RFC 3986 §3.1);
  // a "://" later in the text is part of a path, not a scheme.
  size_t sep = text.find("://");
  if (sep != std::string_view::npos) {
    bool scheme = sep > 0 && ((text[0] | 0x20) >= 'a' && (text[0] | 0x20) <= 'z');
    for (size_t i = 0; scheme && i < sep; ++i) {
      char c = text[i];
      scheme = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
               c == '-' || c == '.';
    }
    if (!scheme) sep = std::string_view::npos;
  }
  std::string_view rest = text;
  if (sep == std::string_view::npos) {
    u.scheme = "http";
  } else {
    u.scheme = toLower(text.substr(0, sep));
    rest = text.substr(sep + 3);
  }
  uint16_t dport = defaultPort(u.scheme);
  if (dport == 0)
    return tl::unexpected(
        refuse("URL " + quoted(text) + ": scheme '" + u.scheme + "' is not http, https, ftp, ws or wss"));
  size_t hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  size_t authEnd = rest.find_first_of("/?\\");
  std::string_view auth = rest.substr(0, authEnd);
  std::string_view tail = authEnd == std::string_view::npos ? std::string_view{} : rest.substr(authEnd);
  if (size_t at = auth.rfind('@'); at != std::string_view::npos) auth = auth.substr(at + 1);  // userinfo
  std::string_view hostText = auth;
  std::string_view portText;
  bool hasPort = false;
  if (!auth.empty() && auth.front() == '[') {
    size_t close = auth.find(']');
    if (close == std::string_view::npos)
      return tl::unexpected(refuse("URL " + quoted(text) + ": unterminated IPv6 literal"));
    hostText = auth.substr(0, close + 1);
    std::string_view after = auth.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return tl::unexpected(refuse("URL " + quoted(text) + ": junk after IPv6 literal"));
      portText = after.substr(1);
      hasPort = true;
    }
  } else if (size_t colon = auth.rfind(':'); colon != std::string_view::npos) {
    hostText = auth.substr(0, colon);
    portText = auth.substr(colon + 1);
    hasPort = true;
  }
  u.port = dport;
  if (hasPort && !portText.empty()) {
    auto p = parseDecimal(portText, 65535);
    if (!p || *p == 0)
      return tl::unexpected(refuse("URL " + quoted(text) + ": port " + quoted(portText) + " is not 1-65535"));
    u.port = uint16_t(*p);
  }
  auto h = normalizeHost(hostText);
  if (!h) return tl::unexpected(refuse("URL " + quoted(text) + ": " + h.error().detail));
  u.host = std::move(*h);
  std::string_view pathText = tail;
  std::string_view queryText;
  bool hasQuery = false;
  if (size_t q = tail.find('?'); q != std::string_view::npos) {
    pathText = tail.substr(0, q);
    queryText = tail.substr(q + 1);
    hasQuery = true;
  }
  auto p = normalizeEscapes(pathText, true);
  if (!p) return tl::unexpected(refuse("URL " + quoted(text) + ": " + p.error().detail));
  u.path = removeDotSegments(*p);
  if (u.path.empty() || u.path.front() != '/') u.path.insert(0, "/");
  if (hasQuery) {
    auto q = normalizeEscapes(queryText, false);
    if (!q) return tl::unexpected(refuse("URL " + quoted(text) + ": " + q.error().detail));
    u.query = std::move(*q);
  }
  std::string hostOut = u.host.kind == HostKind::Ipv6 ? "[" + u.host.host + "]" : u.host.host;
  u.url = u.scheme + "://" + hostOut;
  if (u.port != dport) u.url += ":" + std::to_string(u.port);
  u.url += u.path;
  if (hasQuery && !u.query.empty()) u.url += "?" + u.query;
  return u;
}

Result<std::string> normalizeUrlPrefix(std::string_view text) {
  auto u = normalizeUrl(text);
  if (!u) return tl::unexpected(u.error());
  return u->hostPath();
}

}  // namespace sekisho::reputation
