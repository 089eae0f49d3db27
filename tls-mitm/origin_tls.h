// The origin side of an intercepted connection: the TLS client context Sekisho uses towards
// origins, the verification of what an origin presented (chain, name, validity, key and signature
// strength, stapled OCSP), the plain-words account of a failure for the certificate-error page,
// the leaf request copied from a verified origin certificate, and the shared cache of
// intermediates fetched from AIA URLs.
//
// Verification happens after the handshake, never inside it: the handshake only proves the
// origin holds the key of the certificate it sent; whether that certificate deserves trust is
// decided here, before a single byte of the client's request goes upstream. That order is what
// lets a missing intermediate be fetched (AIA) and the chain verified again without a second
// handshake, as browsers do.
#pragma once
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ctime>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ca/leaf_minter.h"
#include "proxy/base/handles.h"
#include "proxy/base/result.h"

namespace sekisho::mitm {

struct OriginTlsOptions {
  std::string extraCaFile;      // tls.upstream_ca_file: PEM trust anchors beside the system store
  bool systemStore = true;      // the distribution's CA bundle (tests may turn it off)
};

// What verification found, in words for the page and a code for the log and metrics.
struct VerifyOutcome {
  bool ok = false;
  std::string code;    // "expired", "not_yet_valid", "wrong_host", "self_signed", "untrusted_root",
                       // "missing_intermediate", "weak_key", "weak_signature", "revoked", "no_certificate", "invalid"
  std::string what;    // one plain-English sentence naming the check that failed
  std::string detail;  // OpenSSL's text and the certificate's subject, for the admin
  std::string aiaUrl;  // with missing_intermediate: the caIssuers http:// URL to fetch, if any
};

// A bounded, thread-safe cache of intermediates fetched from AIA URLs (shared by all workers).
// Failed fetches are remembered too, briefly, so a broken URL is not fetched for every request.
class AiaCache {
 public:
  explicit AiaCache(size_t maxEntries = 1000) : max_(maxEntries) {}
  // The certificate for `url` (nullptr when absent); `known` says whether a (failed) entry exists.
  X509Ptr get(const std::string& url, bool* knownFailed = nullptr);
  void put(const std::string& url, X509Ptr cert);  // cert may be null: a failure, kept 5 minutes
  size_t size() const;

 private:
  struct Entry {
    X509Ptr cert;
    time_t at = 0;
    std::list<std::string>::iterator lru;
  };
  size_t max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  std::list<std::string> lru_;
};

class OriginTls : public std::enable_shared_from_this<OriginTls> {
 public:
  static Result<std::shared_ptr<OriginTls>> create(const OriginTlsOptions& opts);
  ~OriginTls();
  OriginTls(const OriginTls&) = delete;
  OriginTls& operator=(const OriginTls&) = delete;

  // A client SSL for one origin connection: SNI `sni` unless it is empty or an IP literal,
  // ALPN http/1.1 (h2 first when `offerH2`: for a client that speaks HTTP/2), OCSP stapling requested, and a client-certificate callback that records a
  // CertificateRequest (and offers no certificate).
  // `sessionKey` (the upstream pool key: address and SNI) picks a TLS session saved from an
  // earlier connection to the same origin, so the next one resumes instead of a full handshake;
  // each saved session is used once. Resumption changes nothing about verification: verify()
  // still checks the chain the session recorded (and its validity today) before any request.
  SSL* newSsl(const std::string& sni, const std::string& sessionKey = "", bool offerH2 = false) const;
  // Drops the saved session for `sessionKey` (its origin failed verification).
  void forgetSession(const std::string& sessionKey) const;
  // True when the origin asked for a client certificate during the handshake of `ssl`.
  static bool clientCertRequested(const SSL* ssl);

  // Verifies the chain `ssl` received for `host` (a DNS name, or an IP literal) against the
  // system store plus the extra anchors, with the AIA-fetched intermediates in `extra` as
  // untrusted helpers. TLS security level 2 applies: RSA keys under 2048 bits and SHA-1
  // signatures fail. A stapled OCSP response that says "revoked" fails too.
  VerifyOutcome verify(SSL* ssl, const std::string& host, const std::vector<X509*>& extra = {}) const;

  AiaCache& aia() const { return *aia_; }
  size_t anchors() const { return anchors_; }

  static constexpr size_t kMaxSavedSessions = 10000;

 private:
  OriginTls() = default;
  static int onNewSession(SSL* ssl, SSL_SESSION* sess);
  void saveSession(const std::string& key, SSL_SESSION* sess) const;
  SSL_SESSION* takeSessionLocked(const std::string& key) const;  // removed and handed over; sessMu_ held

  // Sessions the origins gave us, one per pool key, bounded (oldest dropped); any worker thread.
  mutable std::mutex sessMu_;
  mutable std::unordered_map<std::string, std::pair<SSL_SESSION*, std::list<std::string>::iterator>> sessions_;
  mutable std::list<std::string> sessLru_;  // front = newest
  SSL_CTX* ctx_ = nullptr;
  X509_STORE* store_ = nullptr;  // owned by ctx_
  size_t anchors_ = 0;
  std::unique_ptr<AiaCache> aia_;
};

// The caIssuers http:// URL of a certificate's AIA extension, or "".
std::string aiaIssuerUrl(X509* cert);

// Subject CN and SANs (DNS and IP) of a verified origin certificate, with its notAfter as the cap,
// ready for ca::mintLeaf. Names that fail validation are left out (a hostile origin cannot inject
// names); when none is left, `fallbackName` (the validated SNI or CONNECT host) is used.
ca::LeafRequest leafRequestFromOrigin(X509* origin, const std::string& fallbackName);

// Marks a client-facing SSL as one that may be offered h2 by ALPN (intercepted connections).
void allowH2(SSL* ssl);
bool h2Allowed(const SSL* ssl);

// SHA-256 of a certificate's DER, lowercase hex (the minted-leaf cache key).
std::string certSha256Hex(X509* cert);

// Plain words for a TLS protocol version: "TLS 1.3".
const char* tlsVersionName(int version);

}  // namespace sekisho::mitm
