// Strict HTTP/1.1 head parsing. One pass over one copy of the head: the request or status line,
// then each field line, validating every byte as it goes and taking views into the copy. Anything
// an origin or another intermediary could read differently is refused rather than repaired,
// because a proxy that "fixes" a head is the classic way to smuggle a second request past it.
#include "proxy/http1/parser.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstring>
#include <string>

namespace sekisho::http1 {
namespace {

using http::BodyKind;
using http::Header;
using http::HeaderList;
using http::TargetForm;

constexpr std::string_view kRootPath = "/";
constexpr std::string_view kSchemeHttp = "http";
constexpr std::string_view kSchemeHttps = "https";
// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
constexpr int kMaxLeadingEmptyLines = 4;
constexpr size_t kMaxHostLength = 255;  // a DNS name never exceeds this (RFC 1035 §2.3.4)
constexpr uint64_t kMaxContentLength = (uint64_t{1} << 63) - 1;

// Character classes, one table lookup per byte.
constexpr uint8_t kTchar = 1;  // token (RFC 9110 §5.6.2)
constexpr uint8_t kFieldChar =
    2;  // field-vchar / obs-text / SP / HTAB (RFC 9110 §5.5), also reason-phrase (RFC 9112 §4)
constexpr uint8_t kRegName = 4;  // reg-name without percent-escapes: ALPHA DIGIT - . _ ~ (RFC 3986 §3.2.2)

constexpr std::array<uint8_t, 256> makeClassTable() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t k = 0;
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bool digit = c >= '0' && c <= '9';
    if (alpha || digit) k |= kTchar | kRegName;
    switch (c) {
      case '!':
      case '#':
      case '$':
      case '%':
      case '&':
      case '\'':
      case '*':
      case '+':
      case '^':
      case '`':
      case '|':
        k |= kTchar;
        break;
      case '-':
      case '.':
      case '_':
      case '~':
        k |= kTchar | kRegName;
        break;
      default:
        break;
    }
    if (c == '\t' || (c >= 0x20 && c < 0x7f) || c >= 0x80) k |= kFieldChar;
    t[size_t(c)] = k;
  }
  return t;
}
constexpr auto kClass = makeClassTable();

inline bool has(char c, uint8_t cls) { return (kClass[static_cast<unsigned char>(c)] & cls) != 0; }
inline bool isDigit(char c) { return c >= '0' && c <= '9'; }

// The next LF in [p, end), or nullptr (memchr must not see a null pointer, even for 0 bytes).
inline const char* findLf(const char* p, const char* end) {
  return p < end ? static_cast<const char*>(std::memchr(p, '\n', size_t(end - p))) : nullptr;
}

// The first byte in [p, end) below `Limit` (a CTL, or also SP when Limit is 0x21) or DEL, or
// end. Eight bytes at a time: field values and targets are most of a head's bytes, and almost
// all of them are plain VCHARs. obs-text (0x80-0xFF) never matches.
template <uint8_t Limit>
inline const char* findCtl(const char* p, const char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
  while (end - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    uint64_t below = (x - kOnes * Limit) & ~x & kHighs;  // some byte < Limit (exact as a whole)
    uint64_t y = x ^ (kOnes * 0x7f);
    uint64_t del = (y - kOnes) & ~y & kHighs;  // some byte == 0x7f
    if ((below | del) != 0) break;
    p += 8;
  }
  while (p < end && static_cast<unsigned char>(*p) >= Limit && *p != 0x7f) ++p;
  return p;
}

// Where a line's content ends: before its LF and before one CR that directly precedes the LF.
inline const char* contentEnd(const char* begin, const char* lf) {
  return (lf > begin && lf[-1] == '\r') ? lf - 1 : lf;
}

// Skips up to kMaxLeadingEmptyLines empty lines at the start of `s`; returns the offset.
size_t skipLeadingEmptyLines(std::string_view s) {
  size_t pos = 0;
  for (int i = 0; i < kMaxLeadingEmptyLines; ++i) {
    if (pos < s.size() && s[pos] == '\n') {
      pos += 1;
    } else if (pos + 1 < s.size() && s[pos] == '\r' && s[pos + 1] == '\n') {
      pos += 2;
    } else {
      break;
    }
  }
  return pos;
}

// Port: 1*DIGIT with a value 1..65535 (RFC 3986 §3.2.3; port 0 is never a destination).
bool parsePort(std::string_view s, uint16_t& port) {
  if (s.empty()) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (!isDigit(c)) return false;
    v = v * 10 + uint32_t(c - '0');
    if (v > 65535) return false;
  }
  if (v == 0) return false;
  port = uint16_t(v);
  return true;
}

// Canonical dotted-decimal IPv4: four 0..255 parts without leading zeros.
bool isDottedQuad(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    unsigned v = 0;
    while (i < s.size() && isDigit(s[i]) && i - start < 4) v = v * 10 + unsigned(s[i++] - '0');
    size_t len = i - start;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && s[start] == '0')) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

// True when the last label of a name is a number (decimal, or 0x-hex). Resolvers built on
// inet_aton read such names as IPv4 addresses ("127.1", "0x7f.0.0.1", "0177.0.0.1"), so an
// access check made on the text would not match what gets connected to (the WHATWG URL
// standard's "ends in a number" rule exists for the same reason).
bool endsInNumber(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  size_t dot = s.rfind('.');
  std::string_view last = dot == std::string_view::npos ? s : s.substr(dot + 1);
  if (last.empty()) return false;
  bool allDigits = true;
  for (char c : last) allDigits = allDigits && isDigit(c);
  if (allDigits) return true;
  if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
    for (char c : last.substr(2))
      if (!isDigit(c) && !((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    return true;
  }
  return false;
}

// Parses `uri-host [":" port]` (RFC 9110 §4.2.1, §7.2; RFC 3986 §3.2.2). host is a reg-name
// without percent-escapes, a canonical IPv4 address or a bracketed IPv6 literal (no zone, no
// IPvFuture). Stores the host lower-cased (IPv6 without brackets). Returns nullptr or a reason.
const char* parseAuthority(std::string_view a, bool portRequired, uint16_t defaultPort, std::string& host,
                           uint16_t& port) {
  std::string_view h;
  std::string_view rest;
  if (!a.empty() && a.front() == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos) return "IPv6 literal without a closing ']'";
    h = a.substr(1, close - 1);
    rest = a.substr(close + 1);
    char buf[INET6_ADDRSTRLEN];
    in6_addr addr;
    if (h.empty() || h.size() >= sizeof buf) return "invalid IPv6 literal";
    for (char c : h)
      if (!(isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
        return "invalid IPv6 literal";
    std::memcpy(buf, h.data(), h.size());
    buf[h.size()] = '\0';
    if (inet_pton(AF_INET6, buf, &addr) != 1) return "invalid IPv6 literal";
    if (!rest.empty() && rest.front() != ':') return "unexpected characters after an IPv6 literal";
  } else {
    size_t colon = a.find(':');
    h = a.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : a.substr(colon);
    if (h.empty()) return "empty host";
    if (h.size() > kMaxHostLength) return "host name is too long";
    for (char c : h) {
      if (c == '%') return "percent-encoded host";
      if (c == '@') return "userinfo in authority";
      if (!has(c, kRegName)) return "invalid character in host";
    }
    if (endsInNumber(h) && !isDottedQuad(h)) return "numeric host is not a dotted-decimal IPv4 address";
  }
  if (rest.empty()) {
    if (portRequired) return "missing port";
    port = defaultPort;
  } else {
    std::string_view p = rest.substr(1);  // after ':'
    if (p.empty()) {
      // RFC 3986 §3.2.3: an empty port means the scheme's default.
      if (portRequired) return "missing port";
      port = defaultPort;
    } else if (!parsePort(p, port)) {
      return "invalid port";
    }
  }
  host.assign(h.data(), h.size());
  for (char& c : host) c = asciiLower(c);
  return nullptr;
}

// The fields every message shares, gathered during the single pass over the field lines.
struct Facts {
  size_t hostCount = 0;
  std::string_view host;
  size_t teLines = 0;     // Transfer-Encoding field lines
  size_t teElements = 0;  // list elements across all of them
  size_t teChunked = 0;   // elements that are "chunked"
  bool teLastChunked = false;
  bool teEmptyLine = false;  // a Transfer-Encoding line with no coding in it
  bool hasContentLength = false;
  uint64_t contentLength = 0;
  bool connClose = false;
  bool connKeepAlive = false;
  bool proxyConnClose = false;
  bool proxyConnKeepAlive = false;
  bool expectContinue = false;
};

class HeadParser {
 public:
  HeadParser(const char* p, const char* end, bool response) : p_(p), end_(end), response_(response) {}

  Error& error() { return error_; }
  const char* pos() const { return p_; }
  void setPos(const char* p) { p_ = p; }

  bool fail(ErrKind kind, const char* detail) {
    // Every fault in an origin's response is a 502 for our client, whatever the cause.
    error_.kind = response_ ? ErrKind::BadResponse : kind;
    error_.side = response_ ? Side::Upstream : Side::Downstream;
    error_.detail = detail;
    return false;
  }
  bool bad(const char* detail) { return fail(ErrKind::BadRequest, detail); }

  // Field lines up to and including the empty line (RFC 9112 §5). One pass: the name is
  // scanned as tchars, the value until its first CTL, which must be the line end.
  bool parseFields(HeaderList& out, size_t maxHeaders, Facts& facts) {
    for (;;) {
      if (p_ == end_) return bad("head is not terminated by an empty line");
      if (*p_ == '\n') {
        p_ += 1;
        return true;
      }
      if (*p_ == '\r' && end_ - p_ >= 2 && p_[1] == '\n') {
        p_ += 2;
        return true;
      }
      // RFC 9112 §5.2: obs-fold is refused; a server MUST either reject it with 400 or
      // replace it, and replacing is a reinterpretation another hop might not share.
      if (*p_ == ' ' || *p_ == '\t')
        return bad("obsolete line folding (a field line starts with whitespace)");
      const char* q = p_;
      while (q < end_ && has(*q, kTchar)) ++q;
      if (q == end_) return bad("head is not terminated by an empty line");
      if (*q != ':') {
        // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon;
        // a server MUST reject such a message with 400.
        if (q > p_ && (*q == ' ' || *q == '\t')) return bad("whitespace between a field name and the colon");
        if (*q == '\n' || (*q == '\r' && end_ - q >= 2 && q[1] == '\n'))
          return bad("field line without a colon");
        if (*q == '\r') return bad("bare CR in a field name");
        return bad("invalid character in a field name");
      }
      if (q == p_) return bad("empty field name");
      std::string_view name(p_, size_t(q - p_));
      const char* v = q + 1;
      const char* c = v;
      for (;;) {
        c = findCtl<0x20>(c, end_);
        if (c == end_) return bad("head is not terminated by an empty line");
        if (*c != '\t') break;
        ++c;
      }
      const char* le = c;
      if (*c == '\r' && end_ - c >= 2 && c[1] == '\n') {
        ++c;
      } else if (*c != '\n') {
        // RFC 9110 §5.5: CR, LF and NUL are never allowed in a value; other CTLs are not
        // field-vchar either.
        if (*c == '\r') return bad("bare CR in a field value");
        if (*c == '\0') return bad("NUL in a field value");
        return bad("control character in a field value");
      }
      while (v < le && (*v == ' ' || *v == '\t')) ++v;
      const char* ve = le;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) --ve;
      if (out.items.size() >= maxHeaders) return fail(ErrKind::HeadTooLarge, "too many header fields");
      std::string_view value(v, size_t(ve - v));
      out.items.push_back(Header{name, value});
      if (!noteField(name, value, facts)) return false;
      p_ = c + 1;
    }
  }

 private:
  bool noteField(std::string_view name, std::string_view value, Facts& f) {
    switch (name.size()) {
      case 4:
        if (iequals(name, "host")) {
          ++f.hostCount;
          f.host = value;
        }
        break;
      case 6:
        if (iequals(name, "expect") && iequals(value, "100-continue")) f.expectContinue = true;
        break;
      case 10:
        if (iequals(name, "connection")) noteConnection(value, f.connClose, f.connKeepAlive);
        break;
      case 14:
        if (iequals(name, "content-length")) return noteContentLength(value, f);
        break;
      case 16:
        if (iequals(name, "proxy-connection")) noteConnection(value, f.proxyConnClose, f.proxyConnKeepAlive);
        break;
      case 17:
        if (iequals(name, "transfer-encoding")) {
          ++f.teLines;
          size_t before = f.teElements;
          forEachListElement(value, [&](std::string_view e) {
            bool chunked = iequals(e, "chunked");
            ++f.teElements;
            f.teChunked += chunked;
            f.teLastChunked = chunked;
          });
          // A recipient that keeps only the last field line would see no coding at all.
          if (f.teElements == before) f.teEmptyLine = true;
        }
        break;
      default:
        break;
    }
    return true;
  }

  static void noteConnection(std::string_view value, bool& close, bool& keepAlive) {
    forEachListElement(value, [&](std::string_view e) {
      if (iequals(e, "close")) close = true;
      if (iequals(e, "keep-alive")) keepAlive = true;
    });
  }

  // RFC 9110 §8.6: Content-Length = 1*DIGIT. A list of identical values ("5, 5", or several
  // field lines) may be taken as one value; differing values are a framing ambiguity
  // (RFC 9112 §6.3 item 5), and so is a value we cannot represent.
  bool noteContentLength(std::string_view value, Facts& f) {
    bool any = false;
    while (true) {
      size_t comma = value.find(',');
      std::string_view e = trimOws(value.substr(0, comma));
      if (!e.empty()) {
        any = true;
        uint64_t v = 0;
        for (char c : e) {
          if (!isDigit(c)) return bad("Content-Length is not a decimal number");
          auto d = uint64_t(c - '0');
          if (v > (kMaxContentLength - d) / 10)
            return fail(ErrKind::AmbiguousFraming, "Content-Length is too large");
          v = v * 10 + d;
        }
        if (f.hasContentLength && f.contentLength != v)
          return fail(ErrKind::AmbiguousFraming, "differing Content-Length values");
        f.hasContentLength = true;
        f.contentLength = v;
      }
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
    if (!any) return bad("Content-Length is empty");
    return true;
  }

  const char* p_;
  const char* end_;
  bool response_;
  Error error_;
};

// Field lines in [p, end), at most `max` + 1: enough to reserve the header vector exactly.
inline size_t countLines(const char* p, const char* end, size_t max) {
  size_t n = 0;
  while (n <= max && (p = findLf(p, end)) != nullptr) {
    ++p;
    ++n;
  }
  return n;
}

http::HeadStorage copyHead(std::string_view head, size_t extra) {
  http::HeadStorage s;
  s.bytes.reset(new char[head.size() + extra]);
  std::memcpy(s.bytes.get(), head.data(), head.size());
  s.size = head.size();
  return s;
}

// The request line (RFC 9112 §3): method SP request-target SP HTTP-version, single spaces.
bool parseRequestLine(HeadParser& hp, const char* p, const char* le, http::RequestHead& r) {
  const char* q = p;
  while (q < le && has(*q, kTchar)) ++q;
  if (q == p) return hp.bad(p == le ? "empty request line" : "invalid request method");
  if (q == le || *q != ' ') return hp.bad("invalid request method");
  r.method = std::string_view(p, size_t(q - p));
  const char* t = q + 1;
  q = findCtl<0x21>(t, le);
  if (q == t) return hp.bad("empty request-target or more than one space in the request line");
  if (q == le || *q != ' ') {
    if (q < le && *q == '\r') return hp.bad("bare CR in the request line");
    return hp.bad(q == le ? "request line without an HTTP version"
                          : "invalid character in the request-target");
  }
  r.target = std::string_view(t, size_t(q - t));
  std::string_view version(q + 1, size_t(le - q - 1));
  if (version == "HTTP/1.1") {
    r.versionMinor = 1;
  } else if (version == "HTTP/1.0") {
    r.versionMinor = 0;
  } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/" && isDigit(version[5]) &&
             version[6] == '.' && isDigit(version[7])) {
    return hp.fail(ErrKind::NotImplemented, "unsupported HTTP version");
  } else {
    return hp.bad("invalid HTTP version in the request line");
  }
  return true;
}

// Classifies and checks the request-target (RFC 9112 §3.2). May ask for the path to be
// rebuilt as "/" + query (absolute-form with an empty path and a query) via `slashQuery`.
bool parseTarget(HeadParser& hp, http::RequestHead& r, std::string_view& slashQuery) {
  std::string_view t = r.target;
  // A fragment is never part of a request-target (RFC 9112 §3.2; RFC 9110 §7.1).
  if (t.find('#') != std::string_view::npos) return hp.bad("fragment in the request-target");
  bool connect = r.method == "CONNECT";
  if (connect) {
    // RFC 9112 §3.2.3: CONNECT uses authority-form, and only CONNECT does.
    if (t.find('/') != std::string_view::npos)
      return hp.bad("CONNECT needs an authority-form target (host:port)");
    if (t.find('@') != std::string_view::npos) return hp.bad("userinfo in the request-target");
    r.form = TargetForm::Authority;
    if (const char* why = parseAuthority(t, true, 0, r.host, r.port)) return hp.bad(why);
    return true;
  }
  if (t.front() == '/') {
    r.form = TargetForm::Origin;
    r.path = t;
    return true;
  }
  if (t == "*") {
    // RFC 9112 §3.2.4: asterisk-form only for a server-wide OPTIONS.
    if (r.method != "OPTIONS") return hp.bad("asterisk-form target is only allowed with OPTIONS");
    r.form = TargetForm::Asterisk;
    r.path = t;
    return true;
  }
  // absolute-form (RFC 9112 §3.2.2): scheme "://" authority path-abempty [ "?" query ].
  size_t colon = t.find(':');
  bool schemeOk = colon != std::string_view::npos && colon > 0 &&
                  ((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z'));
  for (size_t i = 1; schemeOk && i < colon; ++i) {
    char c = t[i];
    schemeOk =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '+' || c == '-' || c == '.';
  }
  if (!schemeOk || t.substr(colon, 3) != "://") return hp.bad("unrecognised request-target form");
  std::string_view scheme = t.substr(0, colon);
  uint16_t defaultPort;
  if (iequals(scheme, "http")) {
    r.scheme = kSchemeHttp;
    defaultPort = 80;
  } else if (iequals(scheme, "https")) {
    r.scheme = kSchemeHttps;
    defaultPort = 443;
  } else {
    return hp.fail(ErrKind::NotImplemented, "unsupported URI scheme in the request-target");
  }
  std::string_view rest = t.substr(colon + 3);
  size_t authEnd = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authEnd);
  // RFC 9110 §4.2.4: userinfo in http(s) URIs is deprecated and a phishing vector; refuse it.
  if (authority.find('@') != std::string_view::npos) return hp.bad("userinfo in the request-target");
  if (const char* why = parseAuthority(authority, false, defaultPort, r.host, r.port)) return hp.bad(why);
  r.form = TargetForm::Absolute;
  if (authEnd == std::string_view::npos) {
    r.path = kRootPath;
  } else if (rest[authEnd] == '?') {
    slashQuery = rest.substr(authEnd);
  } else {
    r.path = rest.substr(authEnd);
  }
  return true;
}

}  // namespace

size_t findHeadEnd(std::string_view data, size_t scanFrom) {
  size_t start = skipLeadingEmptyLines(data);
  // A lone CR at the very start may become a leading CRLF: wait for the next byte.
  if (start == data.size() || (start + 1 == data.size() && data[start] == '\r')) return 0;
  // The terminator is LF [CR] LF and ends at most 2 bytes after the LF we look for; the
  // previous scan may have stopped inside one, so back up.
  if (scanFrom > start + 3) start = scanFrom - 3;
  const char* base = data.data();
  const char* end = base + data.size();
  const char* p = base + start;
  while (p < end) {
    const char* lf = findLf(p, end);
    if (lf == nullptr || lf + 1 >= end) return 0;
    if (lf[1] == '\n') return size_t(lf + 2 - base);
    if (lf[1] == '\r') {
      if (lf + 2 >= end) return 0;
      if (lf[2] == '\n') return size_t(lf + 3 - base);
    }
    p = lf + 1;
  }
  return 0;
}

Result<http::RequestHead> parseRequestHead(std::string_view head, const Limits& limits) {
  http::RequestHead r;
  HeadParser hp(nullptr, nullptr, false);
  size_t lineStart = skipLeadingEmptyLines(head);
  const char* lineBegin = head.data() + lineStart;
  const char* lf = findLf(lineBegin, head.data() + head.size());
  const char* le = lf ? contentEnd(lineBegin, lf) : head.data() + head.size();
  if (size_t(le - lineBegin) > limits.maxRequestLine)
    return fail(ErrKind::UriTooLong, Side::Downstream, "request line is too long");
  if (lf == nullptr) return fail(ErrKind::BadRequest, Side::Downstream, "head ends inside the request line");
  if (head.size() > limits.maxHeadBytes)
    return fail(ErrKind::HeadTooLarge, Side::Downstream, "request head is too large");

  r.storage = copyHead(head, 0);
  const char* base = r.storage.bytes.get();
  const char* end = base + head.size();
  if (!parseRequestLine(hp, base + lineStart, base + (le - head.data()), r))
    return tl::unexpected(std::move(hp.error()));
  std::string_view slashQuery;
  if (!parseTarget(hp, r, slashQuery)) return tl::unexpected(std::move(hp.error()));
  if (!slashQuery.empty()) {
    // "http://host?q" has an empty path; the origin-form sent upstream is "/?q" (RFC 9112
    // §3.2.1), which needs bytes of its own: append them after the head in a new buffer.
    auto methodOff = size_t(r.method.data() - base);
    auto targetOff = size_t(r.target.data() - base);
    auto queryOff = size_t(slashQuery.data() - base);
    http::HeadStorage s = copyHead(head, 1 + slashQuery.size());
    char* nb = s.bytes.get();
    nb[head.size()] = '/';
    std::memcpy(nb + head.size() + 1, nb + queryOff, slashQuery.size());
    r.method = std::string_view(nb + methodOff, r.method.size());
    r.target = std::string_view(nb + targetOff, r.target.size());
    r.path = std::string_view(nb + head.size(), 1 + slashQuery.size());
    r.storage = std::move(s);
    base = nb;
    end = base + head.size();
  }

  const char* fieldsStart = base + (lf - head.data()) + 1;
  size_t lines = countLines(fieldsStart, end, limits.maxHeaders);
  r.headers.items.reserve(lines < limits.maxHeaders ? lines : limits.maxHeaders);
  Facts f;
  hp = HeadParser(fieldsStart, end, false);
  if (!hp.parseFields(r.headers, limits.maxHeaders, f)) return tl::unexpected(std::move(hp.error()));
  if (hp.pos() != end) return fail(ErrKind::BadRequest, Side::Downstream, "data after the end of the head");

  // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host and to any
  // request with more than one Host field line or an invalid Host value.
  if (f.hostCount > 1) return fail(ErrKind::BadRequest, Side::Downstream, "more than one Host header");
  if (f.hostCount == 0 && r.versionMinor == 1)
    return fail(ErrKind::BadRequest, Side::Downstream, "HTTP/1.1 request without a Host header");
  std::string hostFromHeader;
  uint16_t portFromHeader = 0;
  if (f.hostCount == 1) {
    if (f.host.empty()) return fail(ErrKind::BadRequest, Side::Downstream, "empty Host header");
    if (const char* why = parseAuthority(f.host, false, 80, hostFromHeader, portFromHeader))
      return fail(ErrKind::BadRequest, Side::Downstream, std::string("invalid Host header: ") + why);
  }
  if (r.form == TargetForm::Origin || r.form == TargetForm::Asterisk) {
    // A request in origin-form is addressed to the proxy itself (PAC file, CA download, ...);
    // RFC 9110 §7.2: its Host names the target. Absolute-form overrides Host (RFC 9112 §3.2.2).
    r.host = std::move(hostFromHeader);
    r.port = f.hostCount == 1 ? portFromHeader : 80;
  }

  // Framing (RFC 9112 §6.1, §6.3).
  if (f.teLines > 0) {
    // §6.3 item 3: CL with TE "ought to be handled as an error" — it is the smuggling vector.
    if (f.hasContentLength)
      return fail(ErrKind::AmbiguousFraming, Side::Downstream,
                  "Content-Length and Transfer-Encoding both present");
    // §6.1: TE in an HTTP/1.0 message means the framing is faulty.
    if (r.versionMinor == 0)
      return fail(ErrKind::BadRequest, Side::Downstream, "Transfer-Encoding in an HTTP/1.0 request");
    // §6.3 item 4: in a request, chunked MUST be the final coding, else 400. We decode no
    // other coding, so only the single element "chunked" is accepted.
    if (f.teEmptyLine) return fail(ErrKind::BadRequest, Side::Downstream, "empty Transfer-Encoding");
    if (f.teElements != 1 || f.teChunked != 1)
      return fail(ErrKind::BadRequest, Side::Downstream, "Transfer-Encoding other than a single 'chunked'");
    r.body = BodyKind::Chunked;
  } else if (f.hasContentLength) {
    r.body = BodyKind::ContentLength;
    r.contentLength = f.contentLength;
  } else {
    r.body = BodyKind::None;  // §6.3 item 7
  }

  // RFC 9112 §9.3: persistence. Browsers send Proxy-Connection to proxies; honour it too.
  bool close = f.connClose || f.proxyConnClose;
  if (r.versionMinor == 1) {
    r.keepAlive = !close;
  } else {
    r.keepAlive = !close && (f.connKeepAlive || f.proxyConnKeepAlive);
  }
  r.expectContinue = f.expectContinue;
  return r;
}

Result<http::ResponseHead> parseResponseHead(std::string_view head, const Limits& limits,
                                             std::string_view requestMethod) {
  http::ResponseHead r;
  if (head.size() > limits.maxHeadBytes)
    return fail(ErrKind::BadResponse, Side::Upstream, "response head is too large");
  r.storage = copyHead(head, 0);
  const char* base = r.storage.bytes.get();
  const char* end = base + head.size();
  HeadParser hp(base, end, true);

  // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4).
  const char* p = base + skipLeadingEmptyLines(head);
  const char* lf = findLf(p, end);
  if (lf == nullptr)
    return fail(ErrKind::BadResponse, Side::Upstream, "response head ends inside the status line");
  const char* le = contentEnd(p, lf);
  auto len = size_t(le - p);
  if (len > limits.maxRequestLine)
    return fail(ErrKind::BadResponse, Side::Upstream, "status line is too long");
  std::string_view line(p, len);
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ')
    return fail(ErrKind::BadResponse, Side::Upstream, "invalid HTTP version in the status line");
  r.versionMinor = uint8_t(line[7] - '0');
  if (!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]))
    return fail(ErrKind::BadResponse, Side::Upstream, "invalid status code");
  r.status = uint16_t((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
  if (r.status < 100) return fail(ErrKind::BadResponse, Side::Upstream, "invalid status code");
  if (line.size() > 12) {
    // RFC 9112 §4: the SP before an empty reason is required, but a missing one is harmless.
    if (line[12] != ' ') return fail(ErrKind::BadResponse, Side::Upstream, "invalid status code");
    r.reason = line.substr(13);
    for (char c : r.reason)
      if (!has(c, kFieldChar))
        return fail(ErrKind::BadResponse, Side::Upstream,
                    c == '\r' ? "bare CR in the status line" : "control character in the reason phrase");
  }

  const char* fieldsStart = lf + 1;
  size_t lines = countLines(fieldsStart, end, limits.maxHeaders);
  r.headers.items.reserve(lines < limits.maxHeaders ? lines : limits.maxHeaders);
  Facts f;
  hp.setPos(fieldsStart);
  if (!hp.parseFields(r.headers, limits.maxHeaders, f)) return tl::unexpected(std::move(hp.error()));
  if (hp.pos() != end) return fail(ErrKind::BadResponse, Side::Upstream, "data after the end of the head");

  bool keepAlive = r.versionMinor == 1 ? !f.connClose : (!f.connClose && f.connKeepAlive);
  if (f.teLines > 0) {
    // RFC 9112 §6.1: TE in an HTTP/1.0 message means faulty framing.
    if (r.versionMinor == 0)
      return fail(ErrKind::BadResponse, Side::Upstream, "Transfer-Encoding in an HTTP/1.0 response");
    if (f.teEmptyLine) return fail(ErrKind::BadResponse, Side::Upstream, "empty Transfer-Encoding");
    // §6.1: a sender MUST NOT apply chunked more than once; "chunked, chunked" leaves the
    // content still chunked after we decode one layer.
    if (f.teChunked > 1) return fail(ErrKind::BadResponse, Side::Upstream, "chunked applied more than once");
  }
  // RFC 9112 §6.3, in order.
  int cls = r.status / 100;
  if (cls == 1 || r.status == 204 || r.status == 304 || requestMethod == "HEAD" ||
      (cls == 2 && requestMethod == "CONNECT")) {
    r.body = BodyKind::None;  // items 1 and 2 (after a 2xx to CONNECT a tunnel follows)
  } else if (f.teLines > 0) {
    if (f.teLastChunked) {
      r.body = BodyKind::Chunked;  // item 3; a CL beside it is ignored, the connection not reused
      if (f.hasContentLength) keepAlive = false;
    } else {
      r.body = BodyKind::CloseDelimited;  // item 4
    }
  } else if (f.hasContentLength) {
    r.body = BodyKind::ContentLength;  // item 6
    r.contentLength = f.contentLength;
  } else {
    r.body = BodyKind::CloseDelimited;  // item 8
  }
  if (r.body == BodyKind::CloseDelimited) keepAlive = false;
  r.keepAlive = keepAlive;
  return r;
}

int statusFor(ErrKind kind) {
  switch (kind) {
    case ErrKind::BadRequest:
    case ErrKind::AmbiguousFraming:
      return 400;
    case ErrKind::UriTooLong:
      return 414;
    case ErrKind::HeadTooLarge:
      return 431;
    case ErrKind::BodyTooLarge:
      return 413;
    case ErrKind::NotImplemented:
      return 501;
    case ErrKind::BadResponse:
      return 502;
    case ErrKind::Timeout:
      return 504;
    case ErrKind::Forbidden:
      return 403;
    default:
      return 500;
  }
}

}  // namespace sekisho::http1
