// libFuzzer target for the HTTP/1 request head parser. Beyond "no crash", it checks:
// - findHeadEnd gives the same answer when the bytes arrive in pieces (resumed scans);
// - every accepted head satisfies the invariants the proxy relies on (views inside the copy,
//   clean values, lower-case host, framing consistent with the fields);
// - an accepted head, re-serialised canonically, parses to the same thing (no field can mean
//   one thing to us and another to the origin after we forward it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http1/parser.h"

using namespace sekisho;

namespace {

#define CHECK(cond)                \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

bool isTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  for (char t : std::string_view("!#$%&'*+-.^_`|~"))
    if (c == t) return true;
  return false;
}

bool within(std::string_view v, const char* base, size_t size) {
  return v.empty() || (v.data() >= base && v.data() + v.size() <= base + size);
}

void checkFindHeadEnd(std::string_view in) {
  size_t whole = http1::findHeadEnd(in);
  CHECK(whole <= in.size());
  size_t step = 1 + in.size() % 13;
  size_t prev = 0, got = 0;
  for (size_t n = 0; n < in.size();) {
    n = std::min(in.size(), n + step);
    got = http1::findHeadEnd(in.substr(0, n), prev);
    if (got != 0) break;
    prev = n;
  }
  CHECK(got == whole);
}

void checkInvariants(const http::RequestHead& r, std::string_view head) {
  const char* base = r.storage.bytes.get();
  CHECK(r.storage.size == head.size());
  // The extra bytes hold at most "/" + the query of the target.
  size_t cap = r.storage.size + 1 + r.target.size();
  CHECK(within(r.method, base, r.storage.size));
  CHECK(within(r.target, base, r.storage.size));
  CHECK(r.path == "/" || within(r.path, base, cap));
  CHECK(!r.method.empty() && !r.target.empty());
  for (char c : r.method) CHECK(isTchar(c));
  for (char c : r.target) CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f && c != '#');
  CHECK(r.versionMinor <= 1);
  for (char c : r.host) CHECK(!(c >= 'A' && c <= 'Z'));
  size_t teCount = 0;
  bool hasCl = false;
  for (const auto& h : r.headers.items) {
    CHECK(!h.name.empty());
    CHECK(within(h.name, base, r.storage.size) && within(h.value, base, r.storage.size));
    for (char c : h.name) CHECK(isTchar(c));
    for (char c : h.value) {
      auto u = static_cast<unsigned char>(c);
      CHECK(u == '\t' || (u >= 0x20 && u != 0x7f));
    }
    if (!h.value.empty()) {
      CHECK(h.value.front() != ' ' && h.value.front() != '\t');
      CHECK(h.value.back() != ' ' && h.value.back() != '\t');
    }
    teCount += iequals(h.name, "transfer-encoding");
    hasCl = hasCl || iequals(h.name, "content-length");
  }
  CHECK(!(teCount > 0 && hasCl));  // never both (RFC 9112 §6.3)
  if (r.body == http::BodyKind::Chunked) CHECK(teCount >= 1 && r.versionMinor == 1);
  if (r.body == http::BodyKind::ContentLength) CHECK(hasCl && teCount == 0 && r.contentLength < (1ULL << 63));
  if (r.body == http::BodyKind::None) CHECK(!hasCl && teCount == 0);
  CHECK(r.body != http::BodyKind::CloseDelimited);
  if (r.versionMinor == 1) CHECK(r.headers.count("host") == 1);
  CHECK(r.headers.count("host") <= 1);
  switch (r.form) {
    case http::TargetForm::Origin:
      CHECK(r.target.front() == '/' && r.path == r.target);
      break;
    case http::TargetForm::Absolute:
      CHECK(!r.host.empty() && r.port != 0 && (r.scheme == "http" || r.scheme == "https"));
      CHECK(!r.path.empty() && (r.path.front() == '/'));
      {
        size_t s = r.scheme.size() + 3;
        std::string_view authority = r.target.substr(s, r.target.find_first_of("/?", s) - s);
        CHECK(authority.find('@') == std::string_view::npos);
      }
      break;
    case http::TargetForm::Authority:
      CHECK(r.method == "CONNECT" && !r.host.empty() && r.port != 0);
      break;
    case http::TargetForm::Asterisk:
      CHECK(r.method == "OPTIONS" && r.target == "*");
      break;
  }
  if (r.method == "CONNECT") CHECK(r.form == http::TargetForm::Authority);
}

void checkRoundTrip(const http::RequestHead& r, const http1::Limits& limits) {
  std::string canon;
  canon.reserve(r.storage.size * 2 + 16);
  canon.append(r.method).append(" ").append(r.target).append(r.versionMinor ? " HTTP/1.1\r\n"
                                                                            : " HTTP/1.0\r\n");
  for (const auto& h : r.headers.items) canon.append(h.name).append(": ").append(h.value).append("\r\n");
  canon.append("\r\n");
  http1::Limits roomy = limits;
  roomy.maxHeadBytes = canon.size();
  auto again = http1::parseRequestHead(canon, roomy);
  CHECK(again.has_value());
  CHECK(again->method == r.method && again->target == r.target && again->form == r.form);
  CHECK(again->versionMinor == r.versionMinor && again->scheme == r.scheme);
  CHECK(again->host == r.host && again->port == r.port && again->path == r.path);
  CHECK(again->body == r.body && again->contentLength == r.contentLength);
  CHECK(again->keepAlive == r.keepAlive && again->expectContinue == r.expectContinue);
  CHECK(again->headers.items.size() == r.headers.items.size());
  for (size_t i = 0; i < r.headers.items.size(); ++i) {
    CHECK(again->headers.items[i].name == r.headers.items[i].name);
    CHECK(again->headers.items[i].value == r.headers.items[i].value);
  }
}

void checkError(const Error& e) {
  CHECK(!e.detail.empty() && e.side == Side::Downstream);
  CHECK(e.kind == ErrKind::BadRequest || e.kind == ErrKind::AmbiguousFraming ||
        e.kind == ErrKind::UriTooLong || e.kind == ErrKind::HeadTooLarge ||
        e.kind == ErrKind::NotImplemented);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  checkFindHeadEnd(in);
  // Small limits now and then, so the bounds are exercised with short inputs too.
  http1::Limits limits;
  if (size > 0 && data[0] == 'S') {
    limits.maxRequestLine = 40;
    limits.maxHeadBytes = 120;
    limits.maxHeaders = 4;
  }
  for (std::string_view head : {in, in.substr(0, http1::findHeadEnd(in))}) {
    auto r = http1::parseRequestHead(head, limits);
    if (!r) {
      checkError(r.error());
      CHECK(http1::statusFor(r.error().kind) >= 400 && http1::statusFor(r.error().kind) <= 501);
      continue;
    }
    checkInvariants(*r, head);
    checkRoundTrip(*r, limits);
  }
  return 0;
}
