// The bump decision: one pure function from the facts known after the ClientHello peek to
// tunnel | intercept | block(reason). No I/O, no clock, no config reads: the caller gathers the
// facts (config, the remembered-host table, the reputation verdict) and acts on the answer.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "tls-mitm/client_hello.h"

namespace sekisho::mitm {

enum class HelloState : uint8_t {
  Parsed,      // `hello` points at the parsed ClientHello
  NotTls,      // the client sent something else first (peekClientHello said NotTls)
  Malformed,   // peekClientHello said Malformed
  Unreadable,  // TooLarge, or the caller's byte/time bound ran out while it said NeedMore
};

enum class HostVerdict : uint8_t { Allow, Block, Unknown };

struct BumpFacts {
  std::string_view connectHost;  // from the CONNECT target: a name, an IP, or a bracketed IPv6
  uint16_t port = 0;
  HelloState helloState = HelloState::Parsed;
  const ClientHelloInfo* hello = nullptr;  // set only with HelloState::Parsed
  bool interceptEnabled = false;           // tls.intercept
  bool noIntercept = false;                // host matches tls.no_intercept
  bool rememberedPinned = false;           // a client rejected our minted certificate for it
  bool rememberedClientCert = false;       // remembered: the origin asked for a client certificate
  bool originNeedsClientCert = false;      // known now (e.g. CertificateRequest upstream)
  HostVerdict verdict = HostVerdict::Unknown;
  std::string_view verdictReason;  // with HostVerdict::Block: category/source, for the page
};

enum class BumpAction : uint8_t { Tunnel, Intercept, Block };

struct BumpDecision {
  BumpAction action = BumpAction::Tunnel;
  std::string_view reason;  // machine string (static storage), see the table in bump_decision.cc
  std::string detail;       // human detail: the verdict reason, or "SNI 'a' vs CONNECT 'b'"
  std::string mintFor;      // name (lower-case, no trailing dot) or bare IP (no brackets) to mint for
};

BumpDecision decideBump(const BumpFacts& facts);

// tls.no_intercept patterns: "host" matches that host only; "*.domain" matches the domain
// itself and every name under it. ASCII case-insensitive; a trailing dot on host is ignored.
// Anything else ("*", "*.", "a.*.b", empty) matches nothing.
bool matchesPattern(std::string_view host, std::string_view pattern);

std::string_view actionName(BumpAction a);  // "tunnel", "intercept", "block"

}  // namespace sekisho::mitm
