// libFuzzer target for the ClientHello peek. Beyond "no crash", it checks:
// - every prefix of an input that parses says NeedMore (never a different verdict early), and
//   the same bytes re-cut into other record sizes parse to the same information;
// - a Parsed result satisfies the invariants the bump decision relies on (validated SNI,
//   spans inside the input, GREASE-free lists, limits honoured);
// - small limits only ever turn an answer into TooLarge, never into Parsed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tls-mitm/client_hello.h"

using namespace sekisho::mitm;

namespace {

#define CHECK(cond)                \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

void checkParsed(const ClientHelloInfo& i, std::string_view in, const HelloLimits& limits) {
  // The record that completes the message may still be arriving: recordBytes can pass the input.
  CHECK(i.recordBytes >= i.handshakeBytes + 5 && i.recordBytes <= in.size() + 16384 + 5);
  CHECK(i.handshakeBytes >= 4 && i.handshakeBytes <= limits.maxHandshakeBytes);
  CHECK(i.extensionCount <= limits.maxExtensions && i.alpn.size() <= limits.maxAlpnProtocols);
  CHECK(i.cipherSuiteCount >= 1);
  CHECK((i.legacyVersion >> 8) == 0x03);
  if (i.sniStatus == SniStatus::Valid) {
    CHECK(!i.sni.empty() && i.sni.size() <= 253 && i.sni.back() != '.' && i.sni.front() != '.');
    for (char c : i.sni) CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
  } else {
    CHECK(i.sni.empty());
  }
  CHECK(i.sniRaw.size() <= 255);
  for (const auto& p : i.alpn) CHECK(!p.empty() && p.size() <= 255);
  for (uint16_t v : i.supportedVersions) CHECK(!isGrease(v));
}

// Re-wraps the handshake message in records of `chunk` bytes.
std::string rechunk(std::string_view hs, size_t chunk) {
  std::string out;
  for (size_t i = 0; i < hs.size(); i += chunk) {
    std::string_view part = hs.substr(i, chunk);
    out += "\x16\x03\x01";
    out.push_back(char(part.size() >> 8));
    out.push_back(char(part.size() & 0xff));
    out.append(part);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HelloLimits limits;
  auto o = peekClientHello(in, limits);
  if (o.status == HelloStatus::Malformed || o.status == HelloStatus::TooLarge) CHECK(!o.reason.empty());
  if (o.status != HelloStatus::Parsed) {
    HelloLimits small{512, 4, 8, 2};
    auto s = peekClientHello(in, small);
    CHECK(s.status != HelloStatus::Parsed);
    return 0;
  }
  checkParsed(o.info, in, limits);
  {
    HelloLimits small{512, 4, 8, 2};
    auto s = peekClientHello(in, small);
    CHECK(s.status == HelloStatus::Parsed || s.status == HelloStatus::TooLarge);
  }
  // Prefixes: NeedMore all the way up to the byte that completes the message.
  size_t step = 1 + size / 64;
  for (size_t n = 0; n < size; n += step) {
    auto p = peekClientHello(in.substr(0, n), limits);
    CHECK(p.status == HelloStatus::NeedMore || p.status == HelloStatus::Parsed);
  }
  // Reassemble the message from the records and re-cut it: same answer.
  std::string hs;
  for (size_t pos = 0; pos + 5 <= size && hs.size() < o.info.handshakeBytes;) {
    size_t len = (size_t(data[pos + 3]) << 8) | data[pos + 4];
    hs.append(in.substr(pos + 5, len));
    pos += 5 + len;
  }
  hs.resize(std::min(hs.size(), o.info.handshakeBytes));
  CHECK(hs.size() == o.info.handshakeBytes);
  size_t chunk = 1 + (size % 700);
  HelloLimits roomy = limits;
  roomy.maxRecords = hs.size() + 1;
  auto again = peekClientHello(rechunk(hs, chunk), roomy);
  CHECK(again.status == HelloStatus::Parsed);
  CHECK(again.info.sni == o.info.sni && again.info.sniStatus == o.info.sniStatus);
  CHECK(again.info.alpn == o.info.alpn && again.info.supportedVersions == o.info.supportedVersions);
  CHECK(again.info.extensionCount == o.info.extensionCount && again.info.sawGrease == o.info.sawGrease);
  return 0;
}
