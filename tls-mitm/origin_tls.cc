#include "tls-mitm/origin_tls.h"

#include "proxy/base/strings.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>

#include "proxy/net/address.h"

namespace sekisho::mitm {

namespace {

int clientCertIndex() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

// Called when the origin sends a CertificateRequest. Recording it is all we do: we have no
// certificate to offer on the user's behalf, and the client's own cannot be forwarded through a
// decrypted connection, so the caller tunnels such hosts instead.
int onClientCertRequest(SSL* ssl, X509**, EVP_PKEY**) {
  SSL_set_ex_data(ssl, clientCertIndex(), reinterpret_cast<void*>(1));
  return 0;
}

std::string errorQueue() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::string subjectOf(X509* cert) {
  if (!cert) return "";
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

// X509 verification codes in words a user can act on (and a stable code for logs).
void describe(int err, int depth, VerifyOutcome& out) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      out.code = "expired";
      out.what = "The site's certificate has expired.";
      break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      out.code = "not_yet_valid";
      out.what = "The site's certificate is not valid yet (its start date is in the future).";
      break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      out.code = "wrong_host";
      out.what = "The site's certificate was issued for a different name than the one you visited.";
      break;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      out.code = "self_signed";
      out.what = "The site's certificate is self-signed: no trusted authority vouches for it.";
      break;
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_CERT_UNTRUSTED:
      out.code = "untrusted_root";
      out.what = "The site's certificate chains to an authority that is not trusted.";
      break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      // The issuer of the leaf itself is unknown: most often the server forgot to send its
      // intermediate. Higher up, the chain the server sent ends at an authority we do not trust.
      if (depth == 0) {
        out.code = "missing_intermediate";
        out.what = "The site did not send the intermediate certificate that links its certificate to a trusted authority.";
      } else {
        out.code = "untrusted_root";
        out.what = "The site's certificate chains to an authority that is not trusted.";
      }
      break;
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
      out.code = "weak_key";
      out.what = "The site's certificate uses a key too small to be safe (e.g. RSA under 2048 bits).";
      break;
    case X509_V_ERR_CA_MD_TOO_WEAK:
      out.code = "weak_signature";
      out.what = "The site's certificate is signed with an obsolete algorithm (e.g. SHA-1).";
      break;
    case X509_V_ERR_CERT_REVOKED:
      out.code = "revoked";
      out.what = "The site's certificate has been revoked by its issuer.";
      break;
    case X509_V_ERR_INVALID_PURPOSE:
      out.code = "invalid";
      out.what = "The site's certificate is not meant for web servers.";
      break;
    default:
      out.code = "invalid";
      out.what = "The site's certificate could not be verified.";
      break;
  }
}

bool isIpLiteral(const std::string& host) { return net::parseIp(host).has_value(); }

// A stapled OCSP response that verifies and says "revoked" fails the connection; one that is
// absent, unverifiable or "unknown" changes nothing (soft-fail, as browsers do without stapling).
bool staplesRevoked(SSL* ssl, X509* leaf, STACK_OF(X509)* chain, X509_STORE* store) {
  const unsigned char* p = nullptr;
  long len = SSL_get_tlsext_status_ocsp_resp(ssl, &p);
  if (len <= 0 || !p) return false;
  OCSP_RESPONSE* resp = d2i_OCSP_RESPONSE(nullptr, &p, len);
  if (!resp) return false;
  bool revoked = false;
  if (OCSP_response_status(resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    if (OCSP_BASICRESP* basic = OCSP_response_get1_basic(resp)) {
      if (OCSP_basic_verify(basic, chain, store, 0) == 1) {
        X509* issuer = nullptr;
        for (int i = 0; i < sk_X509_num(chain); ++i) {
          X509* c = sk_X509_value(chain, i);
          if (X509_check_issued(c, leaf) == X509_V_OK) issuer = c;
        }
        if (issuer) {
          if (OCSP_CERTID* id = OCSP_cert_to_id(nullptr, leaf, issuer)) {
            int status = -1, reason = 0;
            ASN1_GENERALIZEDTIME *rev = nullptr, *thisUpd = nullptr, *nextUpd = nullptr;
            if (OCSP_resp_find_status(basic, id, &status, &reason, &rev, &thisUpd, &nextUpd) == 1 &&
                status == V_OCSP_CERTSTATUS_REVOKED && OCSP_check_validity(thisUpd, nextUpd, 300, -1) == 1)
              revoked = true;
            OCSP_CERTID_free(id);
          }
        }
      }
      OCSP_BASICRESP_free(basic);
    }
  }
  OCSP_RESPONSE_free(resp);
  ERR_clear_error();
  return revoked;
}

}  // namespace

// ---------------------------------------------------------------- AiaCache
X509Ptr AiaCache::get(const std::string& url, bool* knownFailed) {
  std::lock_guard lk(mu_);
  if (knownFailed) *knownFailed = false;
  auto it = map_.find(url);
  if (it == map_.end()) return nullptr;
  if (!it->second.cert) {
    if (time(nullptr) - it->second.at > 300) {
      lru_.erase(it->second.lru);
      map_.erase(it);
      return nullptr;
    }
    if (knownFailed) *knownFailed = true;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  X509_up_ref(it->second.cert.get());
  return X509Ptr(it->second.cert.get());
}

void AiaCache::put(const std::string& url, X509Ptr cert) {
  std::lock_guard lk(mu_);
  auto it = map_.find(url);
  if (it != map_.end()) {
    lru_.erase(it->second.lru);
    map_.erase(it);
  }
  while (map_.size() >= max_ && !lru_.empty()) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(url);
  map_.emplace(url, Entry{std::move(cert), time(nullptr), lru_.begin()});
}

size_t AiaCache::size() const {
  std::lock_guard lk(mu_);
  return map_.size();
}

// ---------------------------------------------------------------- OriginTls
Result<std::shared_ptr<OriginTls>> OriginTls::create(const OriginTlsOptions& opts) {
  std::shared_ptr<OriginTls> t(new OriginTls());
  t->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!t->ctx_) return fail(ErrKind::Tls, Side::Config, "origin TLS context: " + errorQueue());
  SSL_CTX* ctx = t->ctx_;
  // TLS 1.2 and 1.3 only, forward-secret AEAD suites: nothing a current browser would not accept.
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_security_level(ctx, 2);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Read ahead into a 64 KiB buffer: one read() takes the records that have arrived instead of
  // two read()s per record (header, then body). The proxy pokes its read event while records
  // wait inside OpenSSL (client_conn.cc, pokeTlsPending) and never pools such a connection.
  // The buffers are not released per record (no SSL_MODE_RELEASE_BUFFERS): freeing and
  // re-allocating 64 KiB per record made glibc trim and fault pages in (S6a twice as slow in
  // some runs). That is ~85 KiB per busy origin connection; one that has waited 100 ms in the
  // pool gives them back (upstream_pool.cc). Client-side connections release theirs when idle.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
  SSL_CTX_set_cipher_list(ctx,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                          "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
  SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
  // The handshake does not judge the chain (verify() does, afterwards, before any request goes
  // up): see the header. The callback also stops OpenSSL building and checking the chain a
  // first time during the handshake only to record a result nobody reads (~5 % of a first
  // visit's CPU, measured).
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, [](X509_STORE_CTX*, void*) { return 1; }, nullptr);
  // Sessions (TLS 1.3 tickets, TLS 1.2 tickets or IDs) are kept per pool key by newSsl/onNewSession,
  // not in OpenSSL's internal cache, which is keyed by session ID and does not know our keys.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &OriginTls::onNewSession);
  SSL_CTX_set_client_cert_cb(ctx, &onClientCertRequest);
  static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
  t->store_ = SSL_CTX_get_cert_store(ctx);
  if (opts.systemStore && SSL_CTX_set_default_verify_paths(ctx) != 1)
    return fail(ErrKind::Tls, Side::Config, "origin TLS: the system certificate store: " + errorQueue());
  if (!opts.extraCaFile.empty()) {
    STACK_OF(X509_INFO)* infos = nullptr;
    if (FILE* f = fopen(opts.extraCaFile.c_str(), "r")) {
      infos = PEM_X509_INFO_read(f, nullptr, nullptr, nullptr);
      fclose(f);
    } else {
      return fail(ErrKind::Config, Side::Config, "tls.upstream_ca_file: " + opts.extraCaFile + ": cannot be read");
    }
    size_t added = 0;
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); ++i) {
      X509_INFO* info = sk_X509_INFO_value(infos, i);
      if (info->x509 && X509_STORE_add_cert(t->store_, info->x509) == 1) ++added;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    ERR_clear_error();
    if (added == 0)
      return fail(ErrKind::Config, Side::Config, "tls.upstream_ca_file: " + opts.extraCaFile + ": no PEM certificate in it");
    t->anchors_ = added;
  }
  t->aia_ = std::make_unique<AiaCache>();
  return t;
}

OriginTls::~OriginTls() {
  for (auto& [key, entry] : sessions_) SSL_SESSION_free(entry.first);
  if (ctx_) SSL_CTX_free(ctx_);
}

namespace {
// Per-SSL: the OriginTls that made it and the session key, for onNewSession.
struct SessionSlot {
  std::weak_ptr<const OriginTls> owner;  // a connection may outlive a replaced OriginTls
  std::string key;
};
int sessionSlotIndex() {
  static const int idx = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<SessionSlot*>(ptr);
      });
  return idx;
}
}  // namespace

SSL* OriginTls::newSsl(const std::string& sni, const std::string& sessionKey, bool offerH2) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  if (offerH2) {
    static const unsigned char kH2[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_set_alpn_protos(ssl, kH2, sizeof kH2);
  }
  if (!sni.empty() && !isIpLiteral(sni)) SSL_set_tlsext_host_name(ssl, sni.c_str());
  SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp);
  if (sessionKey.empty()) return ssl;
  SSL_set_ex_data(ssl, sessionSlotIndex(), new SessionSlot{weak_from_this(), sessionKey});
  SSL_SESSION* saved;
  {
    std::lock_guard lk(sessMu_);
    saved = takeSessionLocked(sessionKey);  // one use per session
  }
  if (saved) {
    // OpenSSL falls back to a full handshake by itself when the origin declines the session.
    if (SSL_SESSION_is_resumable(saved)) SSL_set_session(ssl, saved);
    SSL_SESSION_free(saved);
  }
  return ssl;
}

int OriginTls::onNewSession(SSL* ssl, SSL_SESSION* sess) {
  auto* slot = static_cast<SessionSlot*>(SSL_get_ex_data(ssl, sessionSlotIndex()));
  if (!slot || !SSL_SESSION_is_resumable(sess)) return 0;
  auto owner = slot->owner.lock();
  if (!owner) return 0;
  owner->saveSession(slot->key, sess);
  return 1;  // we keep the reference
}

SSL_SESSION* OriginTls::takeSessionLocked(const std::string& key) const {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION* sess = it->second.first;
  sessLru_.erase(it->second.second);
  sessions_.erase(it);
  return sess;
}

void OriginTls::saveSession(const std::string& key, SSL_SESSION* sess) const {
  std::lock_guard lk(sessMu_);
  SSL_SESSION_free(takeSessionLocked(key));  // a newer ticket replaces the older one
  while (sessions_.size() >= kMaxSavedSessions) SSL_SESSION_free(takeSessionLocked(sessLru_.back()));
  sessLru_.push_front(key);
  sessions_.emplace(key, std::make_pair(sess, sessLru_.begin()));
}

void OriginTls::forgetSession(const std::string& key) const {
  std::lock_guard lk(sessMu_);
  SSL_SESSION_free(takeSessionLocked(key));
}

namespace {
int h2Index() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}
}  // namespace

void allowH2(SSL* ssl) { SSL_set_ex_data(ssl, h2Index(), reinterpret_cast<void*>(1)); }
bool h2Allowed(const SSL* ssl) { return SSL_get_ex_data(ssl, h2Index()) != nullptr; }

bool OriginTls::clientCertRequested(const SSL* ssl) {
  return SSL_get_ex_data(ssl, clientCertIndex()) != nullptr;
}

VerifyOutcome OriginTls::verify(SSL* ssl, const std::string& host, const std::vector<X509*>& extra) const {
  VerifyOutcome out;
  X509* leaf = SSL_get0_peer_certificate(ssl);
  STACK_OF(X509)* sent = SSL_get_peer_cert_chain(ssl);  // client side: includes the leaf
  if (!leaf) {
    out.code = "no_certificate";
    out.what = "The site did not present a certificate.";
    return out;
  }
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (int i = 0; sent && i < sk_X509_num(sent); ++i) sk_X509_push(untrusted, sk_X509_value(sent, i));
  for (X509* x : extra) sk_X509_push(untrusted, x);
  X509_STORE_CTX* sctx = X509_STORE_CTX_new();
  bool ok = false;
  int err = X509_V_ERR_UNSPECIFIED, depth = 0;
  X509* failing = leaf;
  if (sctx && X509_STORE_CTX_init(sctx, store_, leaf, untrusted) == 1) {
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(sctx);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM_set_auth_level(param, 2);  // >= 2048-bit RSA, >= 224-bit ECC, no SHA-1
    // Names come from subjectAltName only, as in browsers (Chrome since 58): a certificate with
    // its name only in the subject CN is a name mismatch, never a CN fallback.
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (isIpLiteral(host))
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    else
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    ok = X509_verify_cert(sctx) == 1;
    if (!ok) {
      err = X509_STORE_CTX_get_error(sctx);
      depth = X509_STORE_CTX_get_error_depth(sctx);
      if (X509* c = X509_STORE_CTX_get_current_cert(sctx)) failing = c;
    } else if (STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(sctx)) {
      if (staplesRevoked(ssl, leaf, built, store_)) {
        ok = false;
        err = X509_V_ERR_CERT_REVOKED;
      }
    }
  }
  if (sctx) X509_STORE_CTX_free(sctx);
  sk_X509_free(untrusted);
  ERR_clear_error();
  if (ok) {
    out.ok = true;
    out.code = "ok";
    return out;
  }
  describe(err, depth, out);
  out.detail = std::string(X509_verify_cert_error_string(err)) + " (certificate " + subjectOf(failing) + ")";
  if (out.code == "missing_intermediate") out.aiaUrl = aiaIssuerUrl(failing);
  return out;
}

std::string aiaIssuerUrl(X509* cert) {
  std::string url;
  auto* info = static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr));
  if (!info) return url;
  for (int i = 0; i < sk_ACCESS_DESCRIPTION_num(info) && url.empty(); ++i) {
    ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(info, i);
    if (OBJ_obj2nid(ad->method) != NID_ad_ca_issuers || ad->location->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = ad->location->d.uniformResourceIdentifier;
    std::string u(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), size_t(ASN1_STRING_length(s)));
    // Only plain http:// (RFC 5280 §4.2.2.1), printable, bounded: the URL comes from the origin.
    bool clean = u.size() < 512 && u.rfind("http://", 0) == 0;
    for (unsigned char c : u) clean &= c > 0x20 && c < 0x7f;
    if (clean) url = u;
  }
  AUTHORITY_INFO_ACCESS_free(info);
  return url;
}

ca::LeafRequest leafRequestFromOrigin(X509* origin, const std::string& fallbackName) {
  ca::LeafRequest req;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(origin, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    if (req.dnsNames.size() + req.ipAddresses.size() >= ca::kMaxLeafNames) break;
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_DNS) {
      const ASN1_IA5STRING* s = gn->d.dNSName;
      std::string n(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), size_t(ASN1_STRING_length(s)));
      for (auto& c : n) c = char(tolower(static_cast<unsigned char>(c)));
      if (ca::validateDnsName(n, true)) req.dnsNames.push_back(std::move(n));
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = gn->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = "";
      int len = ASN1_STRING_length(s);
      const unsigned char* p = ASN1_STRING_get0_data(s);
      if (len == 4)
        inet_ntop(AF_INET, p, text, sizeof text);
      else if (len == 16)
        inet_ntop(AF_INET6, p, text, sizeof text);
      if (text[0]) req.ipAddresses.emplace_back(text);
    }
  }
  bool truncated = names && size_t(sk_GENERAL_NAME_num(names)) > ca::kMaxLeafNames;
  GENERAL_NAMES_free(names);
  // A certificate with more names than a leaf may carry: the name the client asked for (verified
  // against the origin's certificate already) must survive the cut.
  if (truncated && !fallbackName.empty()) {
    auto& list = isIpLiteral(fallbackName) ? req.ipAddresses : req.dnsNames;
    if (std::find(list.begin(), list.end(), fallbackName) == list.end()) {
      if (req.dnsNames.size() + req.ipAddresses.size() >= ca::kMaxLeafNames) {
        auto& shrink = req.dnsNames.empty() ? req.ipAddresses : req.dnsNames;
        shrink.pop_back();
      }
      list.push_back(fallbackName);
    }
  }
  // The subject CN only when it is one of the names (modern clients ignore it anyway).
  X509_NAME* subj = X509_get_subject_name(origin);
  int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
  if (idx >= 0) {
    ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
    std::string n(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)), size_t(ASN1_STRING_length(cn)));
    for (auto& c : n) c = char(tolower(static_cast<unsigned char>(c)));
    for (const auto& d : req.dnsNames)
      if (d == n) req.commonName = n;
    for (const auto& d : req.ipAddresses)
      if (d == n) req.commonName = n;
  }
  if (req.dnsNames.empty() && req.ipAddresses.empty()) {
    if (isIpLiteral(fallbackName))
      req.ipAddresses.push_back(fallbackName);
    else
      req.dnsNames.push_back(fallbackName);
  }
  if (const ASN1_TIME* na = X509_get0_notAfter(origin)) {
    tm t{};
    if (ASN1_TIME_to_tm(na, &t) == 1) req.notAfterCap = timegm(&t);
  }
  return req;
}

std::string certSha256Hex(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert, EVP_sha256(), md, &len);
  return toHex(md, len);
}

const char* tlsVersionName(int version) {
  switch (version) {
    case TLS1_3_VERSION: return "TLS 1.3";
    case TLS1_2_VERSION: return "TLS 1.2";
    case TLS1_1_VERSION: return "TLS 1.1";
    case TLS1_VERSION: return "TLS 1.0";
    default: return "TLS";
  }
}

}  // namespace sekisho::mitm
