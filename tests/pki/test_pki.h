// Test PKI: every certificate the TLS-interception tests need, generated at run time with the
// OpenSSL 3 C API so no key or certificate is checked in and none can expire in the repository.
//
// makeTestPki(dir) writes PEM files into `dir` (created when missing):
//   root.crt/.key            the trusted test root (ECDSA P-256, CA:TRUE)
//   inter.crt/.key, inter.der the intermediate signed by root; every leaf it signs names
//                            `aiaUrl` (when given) as its caIssuers: inter.der is what an AIA
//                            server hands out
//   untrusted-root.crt/.key  a second root that tests never trust
//   client.crt/.key          a client certificate (clientAuth) signed by root
// and one leaf per case, <name>.crt (as the server should send it) and <name>.key, for the DNS
// names <name>.pki.test and localhost and the IP 127.0.0.1 unless noted:
//   good        leaf + inter (full chain)           expired    notAfter in the past, full chain
//   notyet      notBefore in the future, full chain wronghost  SAN only other.example, full chain
//   selfsigned  self-signed leaf                    untrusted  leaf + its own intermediate under
//                                                              untrusted-root
//   nointer     leaf signed by inter, leaf ONLY     rsa1024    RSA-1024 key, full chain
//   sha1        signed with SHA-1 by inter, chain   clientauth a good leaf (the origin asks for a
//                                                              client certificate)
//   ip          only the IP SAN 127.0.0.1, full chain
//   cnonly      name only in the subject CN        clientonly  extendedKeyUsage clientAuth only
//   leafca      signed by a CA:FALSE certificate   constrained under an intermediate whose
//                                                              nameConstraints permit another domain
//   expiredinter under an expired intermediate     sha1inter   under an intermediate signed with SHA-1
//   critext     an unknown critical extension      partialwild only DNS name "partial*.pki.test"
//   revoked     a good leaf that its issuer revoked: revoked.ocsp (DER OCSP response signed by inter)
//               says so; forged.ocsp says so too but is signed by untrusted-root; good.ocsp says
//               "good" about the good leaf
// Leaves: random serial, SHA-256 (except sha1), keyUsage digitalSignature, extendedKeyUsage
// serverAuth, CA:FALSE, valid from 1 h ago for 30 days. Keys are ECDSA P-256 except rsa1024.
#pragma once
#include <string>
#include <vector>

namespace sekisho::testpki {

// Writes the whole PKI into `dir`; false with a reason in *error (when not null) on failure.
bool makeTestPki(const std::string& dir, std::string* error, const std::string& aiaUrl = "");

// The leaf case names above, in a stable order (for tests that iterate over them).
const std::vector<std::string>& leafNames();

}  // namespace sekisho::testpki
