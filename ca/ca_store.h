// The enterprise root CA: create one (`sekisho ca init`) or load the one the company already
// has, and expose what the rest of the proxy needs (cert, key, chain, identity, fingerprint).
#pragma once
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "ca/ssl_handles.h"
#include "proxy/base/result.h"

namespace sekisho::ca {

inline constexpr const char* kDefaultCaCommonName = "Sekisho Enterprise Root CA";
inline constexpr int kCaValidityDays = 3650;  // 10 years: the root is installed once per fleet

struct CaInitOptions {
  std::string certPath;                   // written 0644, never overwritten
  std::string keyPath;                    // written 0600 with O_EXCL, never overwritten
  int rsaBits = 0;                        // 0 = ECDSA P-256 (default); 3072 or 4096 = RSA
  std::string commonName = kDefaultCaCommonName;
  std::string organization;               // empty = this machine's host name
  std::vector<std::string> permittedDns;  // nameConstraints permitted DNS subtrees; empty = none
  int validityDays = kCaValidityDays;
};

// A loaded CA: immutable once built, shared by every worker as shared_ptr<const Ca>.
class Ca {
 public:
  // Takes ownership. Checks nothing: loadCa/initCa do the checks before calling it.
  static std::shared_ptr<const Ca> make(X509Ptr cert, EvpPkeyPtr key, std::vector<X509Ptr> chain);

  X509* cert() const noexcept { return cert_.get(); }
  EVP_PKEY* key() const noexcept { return key_.get(); }
  // Intermediates between our signing cert and the root, leaf-side first; sent to clients
  // after the minted leaf. Empty for a root that signs directly.
  const std::vector<X509Ptr>& chain() const noexcept { return chain_; }
  // SHA-256 of the certificate DER, lowercase hex: names this CA in cache keys.
  const std::string& id() const noexcept { return id_; }
  // SHA-256 fingerprint as users compare it: "AB:CD:...".
  const std::string& fingerprint() const noexcept { return fingerprint_; }
  const std::string& certPem() const noexcept { return pem_; }
  const std::string& certDer() const noexcept { return der_; }  // bytes
  time_t notAfter() const noexcept { return notAfter_; }

 private:
  Ca() = default;
  X509Ptr cert_;
  EvpPkeyPtr key_;
  std::vector<X509Ptr> chain_;
  std::string id_, fingerprint_, pem_, der_;
  time_t notAfter_ = 0;
};

struct CaInit {
  std::shared_ptr<const Ca> ca;
  std::string certPath;
  std::string keyPath;
};

// Creates a new root CA and writes key and cert. Refuses (ErrKind::Io) when either file exists.
Result<CaInit> initCa(const CaInitOptions& opts);

// Loads a CA cert + key PEM (and optional intermediate chain PEM, "" for none). Refuses a key
// readable by group or others, a key that does not match, a cert that is not a CA or cannot
// sign certificates, and a cert outside its validity period.
Result<std::shared_ptr<const Ca>> loadCa(const std::string& certPath, const std::string& keyPath,
                                         const std::string& chainPath = "");

// Start-up path: creates the CA (and logs it) when both files are missing, loads it otherwise.
// Only one of the two present is an error: never guess which half is stale.
Result<std::shared_ptr<const Ca>> loadOrCreateCa(const CaInitOptions& opts, const std::string& chainPath = "");

// Helpers shared with the CLI and the minter.
std::string sha256Fingerprint(X509* cert);  // "AB:CD:..."
Result<X509Ptr> readCertPem(const std::string& path);
Result<time_t> asn1TimeToEpoch(const ASN1_TIME* t);

}  // namespace sekisho::ca
