// ClientHello peek: a bounded, pure parser over the bytes already buffered from a client after
// CONNECT. It never consumes them (the caller hands the same bytes to OpenSSL or to a tunnel) and
// never allocates beyond the limits. The caller bounds the wait: on NeedMore it reads more and
// calls again with everything buffered so far, until its own byte or time limit.
// RFC 8446 §4.1.2, RFC 5246 §7.4.1.2, RFC 6066 §3 (server_name), RFC 7301 (ALPN), RFC 8701 (GREASE).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sekisho::mitm {

struct HelloLimits {
  size_t maxHandshakeBytes = 16 * 1024;  // the ClientHello message, header included, across records
  size_t maxRecords = 64;                // records the message may span
  size_t maxExtensions = 128;
  size_t maxAlpnProtocols = 32;
};

enum class SniStatus : uint8_t {
  Absent,     // no server_name extension, or no host_name entry in it
  Valid,      // `sni` holds the validated, lower-cased name
  IpLiteral,  // an IP address was sent as SNI (RFC 6066 §3 forbids it): reported, not trusted
  Invalid,    // not LDH + dots, too long, empty label, trailing dot...: reported, not trusted
};

struct ClientHelloInfo {
  std::string sni;  // only when sniStatus == Valid: lower-case, no trailing dot, <= 253
  SniStatus sniStatus = SniStatus::Absent;
  std::string sniRaw;             // what was sent, for logs: non-printable bytes as '?', at most 255 bytes
  std::vector<std::string> alpn;  // in client order, GREASE-free
  std::vector<uint16_t> supportedVersions;  // GREASE-free; empty when the extension is absent
  uint16_t legacyVersion = 0;
  size_t cipherSuiteCount = 0;  // GREASE values included
  bool sawGrease = false;       // in suites, extensions, versions or ALPN
  size_t extensionCount = 0;    // GREASE and unknown ones included
  size_t recordBytes = 0;       // end of the record that completes the message, from the start
                                // of `bytes`; may pass bytes.size() while that record arrives
  size_t handshakeBytes = 0;    // the handshake message, 4-byte header included

  bool offersTls13() const;  // supported_versions lists 0x0304
};

enum class HelloStatus : uint8_t {
  NeedMore,   // a prefix of a plausible ClientHello: wait for more bytes (caller-bounded)
  NotTls,     // the first record is not a TLS handshake record (0x16, 0x03xx): e.g. plain HTTP
  Malformed,  // a TLS handshake that is not a well-formed ClientHello; `reason` says why
  TooLarge,   // beyond HelloLimits; `reason` says which
  Parsed,     // `info` is filled
};

struct ParseOutcome {
  HelloStatus status = HelloStatus::NeedMore;
  std::string reason;  // machine-friendly, for Malformed and TooLarge (e.g. "duplicate_extension")
  ClientHelloInfo info;
};

ParseOutcome peekClientHello(std::string_view bytes, const HelloLimits& limits = {});

// "need_more", "not_tls", "malformed", "too_large", "parsed": counter and log labels.
std::string_view statusName(HelloStatus s);

// RFC 8701: 0x0a0a, 0x1a1a, ... 0xfafa.
constexpr bool isGrease(uint16_t v) { return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff); }

}  // namespace sekisho::mitm
