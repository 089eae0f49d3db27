#include "ca/ca_store.h"

#include <fcntl.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "ca/leaf_minter.h"
#include "ca/x509_util.h"
#include "proxy/base/fd_io.h"
#include "proxy/base/log.h"
#include "proxy/base/strings.h"

namespace sekisho::ca {
namespace {

Error sslErr(ErrKind kind, const std::string& what) { return Error{kind, Side::Internal, opensslError(what), false}; }

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Writes all of `data` to a new file; O_EXCL so an existing file (or a symlink planted in its
// place) is never overwritten, fchmod so the mode does not depend on the umask.
Result<void> writeNewFile(const std::string& path, const std::string& data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return fail(ErrKind::Io, Side::Config, path + ": cannot create: " + std::strerror(errno) +
                                                (errno == EEXIST ? " (refusing to overwrite an existing file)" : ""));
  bool ok = ::fchmod(fd, mode) == 0 && writeAll(fd, data);
  int savedErrno = errno;
  if (ok && ::fsync(fd) != 0) ok = false;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return fail(ErrKind::Io, Side::Config, path + ": write failed: " + std::strerror(savedErrno));
  }
  return {};
}

Result<std::string> toPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return tl::unexpected(sslErr(ErrKind::Tls, "PEM encode"));
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, size_t(n));
}

Result<std::string> keyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return tl::unexpected(sslErr(ErrKind::Tls, "PEM encode key"));
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, size_t(n));
}

Result<EvpPkeyPtr> generateCaKey(int rsaBits) {
  EVP_PKEY* k = nullptr;
  if (rsaBits == 0) k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  else if (rsaBits == 3072 || rsaBits == 4096) k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(rsaBits));
  else
    return fail(ErrKind::Config, Side::Config,
                "RSA key size " + std::to_string(rsaBits) + " is not supported; expected 3072 or 4096");
  if (!k) return tl::unexpected(sslErr(ErrKind::Tls, "CA key generation"));
  return EvpPkeyPtr(k);
}

bool addNameEntry(X509_NAME* name, const char* field, const std::string& value) {
  return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.data()),
                                    int(value.size()), -1, 0) == 1;
}

// Permitted DNS subtrees (RFC 5280 §4.2.1.10): "example.com" covers the host and every name
// below it. The extension is critical as the RFC requires.
Result<void> addNameConstraints(X509* cert, const std::vector<std::string>& domains) {
  NameConstraintsPtr nc(NAME_CONSTRAINTS_new());
  if (!nc) return tl::unexpected(sslErr(ErrKind::Internal, "nameConstraints"));
  nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
  if (!nc->permittedSubtrees) return tl::unexpected(sslErr(ErrKind::Internal, "nameConstraints"));
  for (const std::string& d : domains) {
    std::string_view check = d;
    if (!check.empty() && check.front() == '.') check.remove_prefix(1);  // ".example.com": subdomains only
    if (auto v = validateDnsName(check, false); !v)
      return fail(ErrKind::Config, Side::Config, "--permit-dns: " + v.error().detail);
    GeneralSubtreePtr st(GENERAL_SUBTREE_new());
    Asn1Ia5StringPtr s(ASN1_IA5STRING_new());
    if (!st || !s || ASN1_STRING_set(s.get(), d.data(), int(d.size())) != 1)
      return tl::unexpected(sslErr(ErrKind::Internal, "nameConstraints"));
    GENERAL_NAME_set0_value(st->base, GEN_DNS, s.release());
    if (!sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, st.get()))
      return tl::unexpected(sslErr(ErrKind::Internal, "nameConstraints"));
    st.release();
  }
  if (X509_add1_ext_i2d(cert, NID_name_constraints, nc.get(), 1, X509V3_ADD_DEFAULT) != 1)
    return tl::unexpected(sslErr(ErrKind::Internal, "nameConstraints"));
  return {};
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "Sekisho";
  return buf;
}

Result<X509Ptr> buildRoot(const CaInitOptions& opts, EVP_PKEY* key) {
  if (opts.commonName.empty() || opts.commonName.size() > 64)
    return fail(ErrKind::Config, Side::Config, "CA common name must be 1-64 characters");
  if (opts.validityDays <= 0) return fail(ErrKind::Config, Side::Config, "CA validity must be positive");
  std::string org = opts.organization.empty() ? hostName() : opts.organization;
  if (org.size() > 64) org.resize(64);
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 || !detail::setRandomSerial(cert.get()))
    return tl::unexpected(sslErr(ErrKind::Internal, "CA certificate"));
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!addNameEntry(name, "O", org) || !addNameEntry(name, "CN", opts.commonName) ||
      X509_set_issuer_name(cert.get(), name) != 1)
    return tl::unexpected(sslErr(ErrKind::Config, "CA subject"));
  // Backdated an hour so clients with a slightly slow clock accept a CA created just now.
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), long(opts.validityDays) * 86400) ||
      X509_set_pubkey(cert.get(), key) != 1)
    return tl::unexpected(sslErr(ErrKind::Internal, "CA validity/key"));
  // pathlen:0: this root signs leaves only, so a stolen leaf can never act as a CA below it.
  if (!detail::addBasicConstraints(cert.get(), true, 0) || !detail::addKeyUsage(cert.get(), {5, 6}) ||
      !detail::addSubjectKeyId(cert.get()))
    return tl::unexpected(sslErr(ErrKind::Internal, "CA extensions"));
  if (!opts.permittedDns.empty())
    if (auto r = addNameConstraints(cert.get(), opts.permittedDns); !r) return tl::unexpected(r.error());
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) return tl::unexpected(sslErr(ErrKind::Tls, "CA self-signature"));
  return cert;
}

Result<EvpPkeyPtr> readKeyPem(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(ErrKind::Io, Side::Config, path + ": cannot open CA key: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return fail(ErrKind::Io, Side::Config, path + ": cannot stat CA key: " + std::strerror(errno));
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return fail(ErrKind::Config, Side::Config,
                path + ": CA private key is accessible by group or others (mode " + mode +
                    "); whoever reads it can impersonate every site: run chmod 600 " + path);
  }
  BioPtr bio(BIO_new_fd(fd, BIO_CLOSE));
  if (!bio) {
    ::close(fd);
    return tl::unexpected(sslErr(ErrKind::Io, path));
  }
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (!k) return tl::unexpected(sslErr(ErrKind::Config, path + ": not a PEM private key"));
  return EvpPkeyPtr(k);
}

Result<std::vector<X509Ptr>> readChainPem(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return tl::unexpected(sslErr(ErrKind::Io, path + ": cannot open CA chain"));
  std::vector<X509Ptr> out;
  while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(c);
  // PEM_read_bio_X509 ends the file with "no start line"; anything else is a broken PEM.
  unsigned long e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) ERR_clear_error();
  else if (e) return tl::unexpected(sslErr(ErrKind::Config, path + ": bad certificate in chain"));
  if (out.empty()) return fail(ErrKind::Config, Side::Config, path + ": no certificate in CA chain file");
  return out;
}

}  // namespace

std::string sha256Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) != 1) return {};
  return toHex(md, n, ':', true);
}

Result<time_t> asn1TimeToEpoch(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return fail(ErrKind::Tls, Side::Internal, opensslError("bad ASN.1 time"));
  return timegm(&tm);
}

Result<X509Ptr> readCertPem(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return tl::unexpected(sslErr(ErrKind::Io, path + ": cannot open CA certificate"));
  X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (!c) return tl::unexpected(sslErr(ErrKind::Config, path + ": not a PEM certificate"));
  return X509Ptr(c);
}

std::shared_ptr<const Ca> Ca::make(X509Ptr cert, EvpPkeyPtr key, std::vector<X509Ptr> chain) {
  std::shared_ptr<Ca> ca(new Ca());
  unsigned char* der = nullptr;
  int n = i2d_X509(cert.get(), &der);
  if (n > 0) {
    ca->der_.assign(reinterpret_cast<const char*>(der), size_t(n));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdLen = 0;
    if (EVP_Digest(der, size_t(n), md, &mdLen, EVP_sha256(), nullptr) == 1) ca->id_ = toHex(md, mdLen);
    OPENSSL_free(der);
  }
  ca->fingerprint_ = sha256Fingerprint(cert.get());
  if (auto pem = toPem(cert.get())) ca->pem_ = std::move(*pem);
  if (auto t = asn1TimeToEpoch(X509_get0_notAfter(cert.get()))) ca->notAfter_ = *t;
  ca->cert_ = std::move(cert);
  ca->key_ = std::move(key);
  ca->chain_ = std::move(chain);
  return ca;
}

Result<CaInit> initCa(const CaInitOptions& opts) {
  if (opts.certPath.empty() || opts.keyPath.empty())
    return fail(ErrKind::Config, Side::Config, "CA cert and key paths must be set");
  // Check both before generating anything: an existing CA is never replaced, even half of one.
  if (exists(opts.certPath))
    return fail(ErrKind::Io, Side::Config, opts.certPath + ": already exists; refusing to overwrite the CA certificate");
  if (exists(opts.keyPath))
    return fail(ErrKind::Io, Side::Config, opts.keyPath + ": already exists; refusing to overwrite the CA key");
  auto key = generateCaKey(opts.rsaBits);
  if (!key) return tl::unexpected(key.error());
  auto cert = buildRoot(opts, key->get());
  if (!cert) return tl::unexpected(cert.error());
  auto keyPem = keyToPem(key->get());
  if (!keyPem) return tl::unexpected(keyPem.error());
  auto certPem = toPem(cert->get());
  if (!certPem) return tl::unexpected(certPem.error());
  if (auto w = writeNewFile(opts.keyPath, *keyPem, 0600); !w) return tl::unexpected(w.error());
  if (auto w = writeNewFile(opts.certPath, *certPem, 0644); !w) {
    ::unlink(opts.keyPath.c_str());  // ours: created above with O_EXCL
    return tl::unexpected(w.error());
  }
  CaInit out;
  out.ca = Ca::make(std::move(*cert), std::move(*key), {});
  out.certPath = opts.certPath;
  out.keyPath = opts.keyPath;
  return out;
}

Result<std::shared_ptr<const Ca>> loadCa(const std::string& certPath, const std::string& keyPath,
                                         const std::string& chainPath) {
  auto key = readKeyPem(keyPath);
  if (!key) return tl::unexpected(key.error());
  auto cert = readCertPem(certPath);
  if (!cert) return tl::unexpected(cert.error());
  X509* c = cert->get();
  if (X509_check_private_key(c, key->get()) != 1)
    return fail(ErrKind::Config, Side::Config,
                opensslError(keyPath + ": CA key does not match the certificate " + certPath));
  // EXFLAG_CA is set only for basicConstraints CA:TRUE (X509_check_ca also accepts v1 roots).
  uint32_t flags = X509_get_extension_flags(c);
  if (!(flags & EXFLAG_CA))
    return fail(ErrKind::Config, Side::Config,
                certPath + ": not a CA certificate (basicConstraints CA:TRUE missing)");
  // No keyUsage at all means every usage (RFC 5280 §4.2.1.3); present, it must allow keyCertSign.
  if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(c) & KU_KEY_CERT_SIGN))
    return fail(ErrKind::Config, Side::Config, certPath + ": CA keyUsage lacks keyCertSign; it cannot sign certificates");
  if (X509_cmp_current_time(X509_get0_notBefore(c)) > 0)
    return fail(ErrKind::Config, Side::Config, certPath + ": CA certificate is not valid yet (check the clock)");
  if (X509_cmp_current_time(X509_get0_notAfter(c)) < 0)
    return fail(ErrKind::Config, Side::Config, certPath + ": CA certificate has expired");
  std::vector<X509Ptr> chain;
  if (!chainPath.empty()) {
    auto ch = readChainPem(chainPath);
    if (!ch) return tl::unexpected(ch.error());
    chain = std::move(*ch);
  }
  return Ca::make(std::move(*cert), std::move(*key), std::move(chain));
}

Result<std::shared_ptr<const Ca>> loadOrCreateCa(const CaInitOptions& opts, const std::string& chainPath) {
  bool haveCert = exists(opts.certPath), haveKey = exists(opts.keyPath);
  if (!haveCert && !haveKey) {
    if (!chainPath.empty())
      return fail(ErrKind::Config, Side::Config, "a CA chain file is set but the CA itself is missing: " + opts.certPath);
    auto r = initCa(opts);
    if (!r) return tl::unexpected(r.error());
    SLOG_INFO("created a new enterprise CA: %s (key %s, mode 0600), SHA-256 fingerprint %s; browsers must trust it",
              opts.certPath.c_str(), opts.keyPath.c_str(), r->ca->fingerprint().c_str());
    return r->ca;
  }
  if (!haveCert) return fail(ErrKind::Config, Side::Config, opts.certPath + ": CA certificate missing but its key exists");
  if (!haveKey) return fail(ErrKind::Config, Side::Config, opts.keyPath + ": CA key missing but its certificate exists");
  return loadCa(opts.certPath, opts.keyPath, chainPath);
}

}  // namespace sekisho::ca
