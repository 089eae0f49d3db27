#include "tls-mitm/bump_decision.h"

#include "proxy/base/strings.h"
#include "proxy/net/address.h"

namespace sekisho::mitm {

// Precedence, first matching row wins:
//
// | # | fact                                              | action    | reason               |
// |---|---------------------------------------------------|-----------|----------------------|
// | 1 | host verdict is Block                             | Block     | host_blocked         |
// | 2 | client does not speak TLS                         | Tunnel    | not_tls              |
// | 3 | host matches tls.no_intercept                     | Tunnel    | no_intercept         |
// | 4 | remembered as pinned (client rejected our cert)   | Tunnel    | pinned_client        |
// | 5 | remembered / known to require a client cert       | Tunnel    | client_cert_required |
// | 6 | tls.intercept is off                              | Tunnel    | intercept_disabled   |
// | 7 | ClientHello malformed                             | Block     | malformed_hello      |
// | 8 | ClientHello too large or never complete           | Tunnel    | hello_unreadable     |
// | 9 | valid SNI differs from a name-based CONNECT host  | Block     | sni_mismatch         |
// |10 | otherwise                                         | Intercept | intercept            |
//
// Why this order: a block verdict wins over everything, so no setting can let a known-bad host
// through (the caller may still intercept to show the block page). Rows 2-6 are the cases where
// decrypting would break the client or the origin or is not wanted; they only get the host
// verdict. A malformed hello would fail the TLS handshake anyway; refusing it keeps garbage off
// the origin. One too large for our bound is tunnelled rather than broken. Row 9 is domain
// fronting: the CONNECT host got the verdict, the SNI names another site. An IP-literal CONNECT
// carries no name, so any valid SNI is accepted there and is what we mint for. An SNI that is an
// IP literal or invalid is not trusted: we mint for the CONNECT host.
BumpDecision decideBump(const BumpFacts& f) {
  BumpDecision d;
  std::string_view host = f.connectHost;
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  d.mintFor = toLower(host);
  auto tunnel = [&](std::string_view reason) {
    d.action = BumpAction::Tunnel;
    d.reason = reason;
    return d;
  };
  if (f.verdict == HostVerdict::Block) {
    d.action = BumpAction::Block;
    d.reason = "host_blocked";
    d.detail = std::string(f.verdictReason);
    return d;
  }
  if (f.helloState == HelloState::NotTls) return tunnel("not_tls");
  if (f.noIntercept) return tunnel("no_intercept");
  if (f.rememberedPinned) return tunnel("pinned_client");
  if (f.rememberedClientCert || f.originNeedsClientCert) return tunnel("client_cert_required");
  if (!f.interceptEnabled) return tunnel("intercept_disabled");
  if (f.helloState == HelloState::Malformed) {
    d.action = BumpAction::Block;
    d.reason = "malformed_hello";
    return d;
  }
  if (f.helloState == HelloState::Unreadable || f.hello == nullptr) return tunnel("hello_unreadable");
  const ClientHelloInfo& h = *f.hello;
  if (h.sniStatus == SniStatus::Valid) {
    bool connectIsIp = net::parseIp(host).has_value();
    if (!connectIsIp && h.sni != d.mintFor) {
      d.action = BumpAction::Block;
      d.reason = "sni_mismatch";
      d.detail = "SNI '" + h.sni + "' vs CONNECT '" + d.mintFor + "'";
      return d;
    }
    d.mintFor = h.sni;
  }
  d.action = BumpAction::Intercept;
  d.reason = "intercept";
  return d;
}

bool matchesPattern(std::string_view host, std::string_view pattern) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || pattern.empty()) return false;
  if (pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.') {
    std::string_view domain = pattern.substr(2);
    if (domain.empty() || domain.find('*') != std::string_view::npos) return false;
    if (iequals(host, domain)) return true;
    return host.size() > domain.size() + 1 && host[host.size() - domain.size() - 1] == '.' &&
           iequals(host.substr(host.size() - domain.size()), domain);
  }
  if (pattern.find('*') != std::string_view::npos) return false;
  if (pattern.back() == '.') pattern.remove_suffix(1);
  return iequals(host, pattern);
}

std::string_view actionName(BumpAction a) {
  switch (a) {
    case BumpAction::Tunnel:
      return "tunnel";
    case BumpAction::Intercept:
      return "intercept";
    case BumpAction::Block:
      return "block";
  }
  return "unknown";
}

}  // namespace sekisho::mitm
