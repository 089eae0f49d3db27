// Mints the leaf certificate presented to a client for an intercepted origin: names copied from
// the verified origin certificate, a fresh key of its own, SHA-256, validity capped by the origin.
#pragma once
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "ca/ca_store.h"
#include "ca/ssl_handles.h"
#include "proxy/base/result.h"

namespace sekisho::ca {

inline constexpr int kLeafMaxDays = 397;         // CA/Browser Forum limit for server certificates
inline constexpr long kLeafBackdateSeconds = 3600;  // tolerate clients whose clock is a little slow
inline constexpr size_t kMaxLeafNames = 1000;    // SAN entries per leaf (CDN certs carry hundreds)

struct LeafRequest {
  std::string commonName;                // "" = the first DNS name (or IP address)
  std::vector<std::string> dnsNames;     // SAN dNSName entries, each validated
  std::vector<std::string> ipAddresses;  // SAN iPAddress entries, textual IPv4 or IPv6
  time_t notAfterCap = 0;                // the origin's notAfter, 0 = none
};

struct MintedLeaf {
  X509Ptr cert;
  EvpPkeyPtr key;  // ECDSA P-256, generated for this leaf only
};

// Checks a DNS name before it goes anywhere near a certificate: LDH labels of 1-63 bytes, total
// at most 253, no empty label, no trailing dot; `allowWildcard` permits one leading "*." label
// followed by at least two labels. Everything else (NUL, comma, space, control bytes, '_',
// non-ASCII) is refused with a message naming the byte.
Result<void> validateDnsName(std::string_view name, bool allowWildcard = true);

// Builds and signs a leaf. Fails (ErrKind::BadRequest, Side::Downstream) on an invalid name, so
// a hostile SNI never reaches the certificate; ErrKind::Tls on an OpenSSL failure.
Result<MintedLeaf> mintLeaf(const Ca& ca, const LeafRequest& req);

}  // namespace sekisho::ca
