// libFuzzer target for the HTTP/1 response head parser. The first byte picks the request
// method (which decides bodies); the rest is the head. Checks the invariants the relay relies
// on and that a canonical re-serialisation parses to the same thing.
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

constexpr std::string_view kMethods[] = {"GET", "HEAD", "CONNECT", "POST"};

void checkInvariants(const http::ResponseHead& r, std::string_view head, std::string_view method) {
  const char* base = r.storage.bytes.get();
  auto within = [&](std::string_view v) {
    return v.empty() || (v.data() >= base && v.data() + v.size() <= base + r.storage.size);
  };
  CHECK(r.storage.size == head.size());
  CHECK(r.status >= 100 && r.status <= 999 && r.versionMinor <= 1);
  CHECK(within(r.reason));
  for (char c : r.reason) {
    auto u = static_cast<unsigned char>(c);
    CHECK(u == '\t' || (u >= 0x20 && u != 0x7f));
  }
  bool hasTe = false, hasCl = false;
  for (const auto& h : r.headers.items) {
    CHECK(!h.name.empty() && within(h.name) && within(h.value));
    for (char c : h.value) {
      auto u = static_cast<unsigned char>(c);
      CHECK(u == '\t' || (u >= 0x20 && u != 0x7f));
    }
    hasTe = hasTe || iequals(h.name, "transfer-encoding");
    hasCl = hasCl || iequals(h.name, "content-length");
  }
  bool noBody = r.status / 100 == 1 || r.status == 204 || r.status == 304 || method == "HEAD" ||
                (method == "CONNECT" && r.status / 100 == 2);
  if (noBody) CHECK(r.body == http::BodyKind::None);
  if (!noBody) CHECK(r.body != http::BodyKind::None);
  if (r.body == http::BodyKind::Chunked) CHECK(hasTe);
  if (r.body == http::BodyKind::ContentLength) CHECK(hasCl && !hasTe && r.contentLength < (1ULL << 63));
  if (r.body == http::BodyKind::CloseDelimited) CHECK(!r.keepAlive);
  if (r.body == http::BodyKind::Chunked && hasCl) CHECK(!r.keepAlive);
}

void checkRoundTrip(const http::ResponseHead& r, std::string_view method) {
  std::string canon = r.versionMinor ? "HTTP/1.1 " : "HTTP/1.0 ";
  canon += std::to_string(r.status);
  canon.append(" ").append(r.reason).append("\r\n");
  for (const auto& h : r.headers.items) canon.append(h.name).append(": ").append(h.value).append("\r\n");
  canon.append("\r\n");
  http1::Limits roomy;
  roomy.maxHeadBytes = canon.size();
  auto again = http1::parseResponseHead(canon, roomy, method);
  CHECK(again.has_value());
  CHECK(again->status == r.status && again->reason == r.reason && again->versionMinor == r.versionMinor);
  CHECK(again->body == r.body && again->contentLength == r.contentLength && again->keepAlive == r.keepAlive);
  CHECK(again->headers.items.size() == r.headers.items.size());
  for (size_t i = 0; i < r.headers.items.size(); ++i) {
    CHECK(again->headers.items[i].name == r.headers.items[i].name);
    CHECK(again->headers.items[i].value == r.headers.items[i].value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view method = kMethods[data[0] % 4];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  for (std::string_view head : {in, in.substr(0, http1::findHeadEnd(in))}) {
    auto r = http1::parseResponseHead(head, http1::Limits{}, method);
    if (!r) {
      CHECK(r.error().kind == ErrKind::BadResponse && r.error().side == Side::Upstream);
      CHECK(!r.error().detail.empty());
      continue;
    }
    checkInvariants(*r, head, method);
    checkRoundTrip(*r, method);
  }
  return 0;
}
