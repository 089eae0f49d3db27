#include "tests/pki/test_pki.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace sekisho::testpki {
namespace {

constexpr long kHour = 3600;
constexpr long kDay = 24 * kHour;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(FILE* p) const { std::fclose(p); }
  void operator()(OCSP_BASICRESP* p) const { OCSP_BASICRESP_free(p); }
  void operator()(OCSP_RESPONSE* p) const { OCSP_RESPONSE_free(p); }
  void operator()(ASN1_TIME* p) const { ASN1_TIME_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;

// Failures carry OpenSSL's own reason: a test that cannot build its fixtures should say why.
struct Failure {
  std::string what;
};

[[noreturn]] void fail(const std::string& what) {
  std::string msg = what;
  if (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    msg += ": ";
    msg += buf;
  }
  ERR_clear_error();
  throw Failure{msg};
}

Key ecKey() {
  Key k(EVP_EC_gen("P-256"));
  if (!k) fail("EC key generation");
  return k;
}

Key rsaKey(unsigned bits) {
  Key k(EVP_RSA_gen(bits));
  if (!k) fail("RSA key generation");
  return k;
}

// Filled with designated initializers; every member has a default because GCC's
// -Wmissing-field-initializers flags a skipped member that has none.
struct CertSpec {
  std::string cn = "";  // leaves: "" = <name>.pki.test
  bool ca = false;
  long notBefore = -kHour;  // seconds from now
  long notAfter = 30 * kDay;
  std::string san = "";  // subjectAltName value, e.g. "DNS:a,IP:127.0.0.1"; "" = none
  std::string eku = "serverAuth";
  std::string aia = "";        // caIssuers URL, "" = none
  const EVP_MD* md = nullptr;  // nullptr: SHA-256
  std::string nameConstraints = "";  // CAs: nameConstraints value, e.g. "critical,permitted;DNS:a.test"
  bool unknownCritical = false;      // adds a critical extension no verifier knows
};

void addExt(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1))
    fail("extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
}

// A certificate for `key` signed by issuerKey; `issuer` null means self-signed.
Cert makeCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey) {
  Cert cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3)) fail("X509_new");
  // Random 64-bit serials: a client that caches by issuer+serial never mixes two test runs up.
  std::unique_ptr<BIGNUM, Free> bn(BN_new());
  if (!bn || !BN_rand(bn.get(), 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) {
    fail("serial");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>("Sekisho Test PKI"), -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0)) {
    fail("subject");
  }
  if (!X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name)) fail("issuer");
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.notBefore) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.notAfter)) {
    fail("validity");
  }
  if (!X509_set_pubkey(cert.get(), key)) fail("public key");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  if (spec.ca) {
    addExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    addExt(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    addExt(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
    addExt(cert.get(), &ctx, NID_ext_key_usage, spec.eku);
  }
  addExt(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  // The AKI of a self-signed certificate names its own key; OpenSSL reads it from the issuer
  // certificate in ctx, which for self-signed is the certificate being built (its key is set).
  addExt(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  if (!spec.san.empty()) addExt(cert.get(), &ctx, NID_subject_alt_name, spec.san);
  if (!spec.aia.empty()) addExt(cert.get(), &ctx, NID_info_access, "caIssuers;URI:" + spec.aia);
  if (!spec.nameConstraints.empty()) addExt(cert.get(), &ctx, NID_name_constraints, spec.nameConstraints);
  if (spec.unknownCritical) {
    // An extension under a private OID, marked critical: RFC 5280 §4.2 says a verifier that does
    // not understand it must reject the certificate.
    std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> oid(OBJ_txt2obj("1.3.6.1.4.1.55555.1.1", 1),
                                                                 &ASN1_OBJECT_free);
    std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> value(ASN1_OCTET_STRING_new(),
                                                                               &ASN1_OCTET_STRING_free);
    static const unsigned char kNull[] = {0x05, 0x00};
    if (!oid || !value || !ASN1_OCTET_STRING_set(value.get(), kNull, sizeof kNull)) fail("critical extension");
    std::unique_ptr<X509_EXTENSION, Free> ext(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get()));
    if (!ext || !X509_add_ext(cert.get(), ext.get(), -1)) fail("critical extension");
  }

  // X509_sign() applies no security level, so SHA-1 still signs under OpenSSL 3.
  if (X509_sign(cert.get(), issuerKey, spec.md ? spec.md : EVP_sha256()) <= 0) fail("signing " + spec.cn);
  return cert;
}

std::unique_ptr<FILE, Free> openOut(const std::string& path, bool secret) {
  std::unique_ptr<FILE, Free> f(std::fopen(path.c_str(), "wb"));
  if (!f) throw Failure{"cannot write " + path + ": " + std::strerror(errno)};
  if (secret) ::chmod(path.c_str(), 0600);
  return f;
}

// Writes certs[0..] (leaf first) as one PEM file.
void writeCerts(const std::string& path, const std::vector<X509*>& certs) {
  auto f = openOut(path, false);
  for (X509* c : certs) {
    if (!PEM_write_X509(f.get(), c)) fail("writing " + path);
  }
  if (std::fflush(f.get()) != 0) throw Failure{"cannot write " + path};
}

void writeKey(const std::string& path, EVP_PKEY* key) {
  auto f = openOut(path, true);
  if (!PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) fail("writing " + path);
  if (std::fflush(f.get()) != 0) throw Failure{"cannot write " + path};
}

void writeDer(const std::string& path, X509* cert) {
  auto f = openOut(path, false);
  if (!i2d_X509_fp(f.get(), cert)) fail("writing " + path);
  if (std::fflush(f.get()) != 0) throw Failure{"cannot write " + path};
}

// A DER OCSP response about `leaf` (issued by `issuer`), signed by signerCert/signerKey: the
// issuer itself answers for its certificates (RFC 6960 §4.2.2.2), another key is a forgery.
void writeOcsp(const std::string& path, X509* leaf, X509* issuer, int status, X509* signerCert,
               EVP_PKEY* signerKey) {
  std::unique_ptr<OCSP_BASICRESP, Free> basic(OCSP_BASICRESP_new());
  OCSP_CERTID* id = OCSP_cert_to_id(nullptr, leaf, issuer);
  std::unique_ptr<ASN1_TIME, Free> thisUpdate(X509_gmtime_adj(nullptr, -kHour));
  std::unique_ptr<ASN1_TIME, Free> nextUpdate(X509_gmtime_adj(nullptr, 7 * kDay));
  std::unique_ptr<ASN1_TIME, Free> revokedAt(X509_gmtime_adj(nullptr, -kHour / 2));
  bool ok = basic && id && thisUpdate && nextUpdate && revokedAt &&
            OCSP_basic_add1_status(basic.get(), id, status,
                                   status == V_OCSP_CERTSTATUS_REVOKED ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : -1,
                                   status == V_OCSP_CERTSTATUS_REVOKED ? revokedAt.get() : nullptr,
                                   thisUpdate.get(), nextUpdate.get()) != nullptr &&
            OCSP_basic_sign(basic.get(), signerCert, signerKey, EVP_sha256(), nullptr, 0) == 1;
  OCSP_CERTID_free(id);
  if (!ok) fail("OCSP response for " + path);
  std::unique_ptr<OCSP_RESPONSE, Free> resp(OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic.get()));
  if (!resp) fail("OCSP response for " + path);
  unsigned char* der = nullptr;
  int len = i2d_OCSP_RESPONSE(resp.get(), &der);
  if (len <= 0) fail("encoding " + path);
  auto f = openOut(path, false);
  bool written = std::fwrite(der, 1, size_t(len), f.get()) == size_t(len) && std::fflush(f.get()) == 0;
  OPENSSL_free(der);
  if (!written) throw Failure{"cannot write " + path};
}

std::string defaultSan(const std::string& name) {
  return "DNS:" + name + ".pki.test,DNS:localhost,IP:127.0.0.1";
}

void build(const std::string& dir, const std::string& aiaUrl) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    throw Failure{"cannot create " + dir + ": " + std::strerror(errno)};
  }
  auto p = [&](const std::string& file) { return dir + "/" + file; };
  constexpr long kCaLife = 3650 * kDay;

  Key rootKey = ecKey();
  CertSpec rootSpec{.cn = "Sekisho Test Root", .ca = true, .notAfter = kCaLife};
  Cert root = makeCert(rootSpec, rootKey.get(), nullptr, rootKey.get());
  writeCerts(p("root.crt"), {root.get()});
  writeKey(p("root.key"), rootKey.get());

  Key interKey = ecKey();
  CertSpec interSpec{.cn = "Sekisho Test Intermediate", .ca = true, .notAfter = kCaLife};
  Cert inter = makeCert(interSpec, interKey.get(), root.get(), rootKey.get());
  writeCerts(p("inter.crt"), {inter.get()});
  writeKey(p("inter.key"), interKey.get());
  writeDer(p("inter.der"), inter.get());

  Key otherRootKey = ecKey();
  CertSpec otherRootSpec{.cn = "Sekisho Untrusted Root", .ca = true, .notAfter = kCaLife};
  Cert otherRoot = makeCert(otherRootSpec, otherRootKey.get(), nullptr, otherRootKey.get());
  writeCerts(p("untrusted-root.crt"), {otherRoot.get()});
  writeKey(p("untrusted-root.key"), otherRootKey.get());
  Key otherInterKey = ecKey();
  CertSpec otherInterSpec{.cn = "Sekisho Untrusted Intermediate", .ca = true, .notAfter = kCaLife};
  Cert otherInter = makeCert(otherInterSpec, otherInterKey.get(), otherRoot.get(), otherRootKey.get());

  // A leaf under inter: `chain` false writes the leaf alone (the missing-intermediate case).
  auto leaf = [&](const std::string& name, CertSpec spec, Key key, bool chain) {
    if (spec.cn.empty()) spec.cn = name + ".pki.test";
    if (spec.san.empty()) spec.san = defaultSan(name);
    if (spec.san == "-") spec.san.clear();  // no subjectAltName at all
    spec.aia = aiaUrl;  // caIssuers of a leaf names its issuer: inter.der
    Cert c = makeCert(spec, key.get(), inter.get(), interKey.get());
    std::vector<X509*> certs{c.get()};
    if (chain) certs.push_back(inter.get());
    writeCerts(p(name + ".crt"), certs);
    writeKey(p(name + ".key"), key.get());
    return c;
  };
  Cert good = leaf("good", {}, ecKey(), true);
  leaf("expired", {.notBefore = -60 * kDay, .notAfter = -30 * kDay}, ecKey(), true);
  leaf("notyet", {.notBefore = 30 * kDay, .notAfter = 60 * kDay}, ecKey(), true);
  leaf("wronghost", {.san = "DNS:other.example"}, ecKey(), true);
  leaf("nointer", {}, ecKey(), false);
  leaf("rsa1024", {}, rsaKey(1024), true);
  leaf("sha1", {.md = EVP_sha1()}, ecKey(), true);
  leaf("clientauth", {}, ecKey(), true);
  // The name only in the subject CN: browsers have ignored the CN since 2017 (Chrome 58).
  leaf("cnonly", {.san = "-"}, ecKey(), true);
  // Meant for TLS clients, not servers (extendedKeyUsage clientAuth only).
  leaf("clientonly", {.eku = "clientAuth"}, ecKey(), true);
  // A critical extension nobody understands.
  leaf("critext", {.unknownCritical = true}, ecKey(), true);
  // Its only DNS name a partial wildcard ("partial*.pki.test"), which browsers do not honour.
  leaf("partialwild", {.san = "DNS:partial*.pki.test"}, ecKey(), true);
  // Revoked by its issuer: revoked.ocsp says so (signed by inter), good.ocsp says "good" about the
  // good leaf, forged.ocsp says "revoked" about this leaf but is signed by the untrusted root.
  {
    Cert revoked = leaf("revoked", {}, ecKey(), true);
    writeOcsp(p("revoked.ocsp"), revoked.get(), inter.get(), V_OCSP_CERTSTATUS_REVOKED, inter.get(), interKey.get());
    writeOcsp(p("forged.ocsp"), revoked.get(), inter.get(), V_OCSP_CERTSTATUS_REVOKED, otherRoot.get(),
              otherRootKey.get());
    writeOcsp(p("good.ocsp"), good.get(), inter.get(), V_OCSP_CERTSTATUS_GOOD, inter.get(), interKey.get());
  }
  {
    // Signed by a certificate that is not a CA (basicConstraints CA:FALSE) posing as intermediate.
    Key fakeKey = ecKey();
    CertSpec fakeSpec{.cn = "notaca.pki.test", .san = "DNS:notaca.pki.test"};
    Cert fake = makeCert(fakeSpec, fakeKey.get(), inter.get(), interKey.get());
    Key key = ecKey();
    CertSpec spec{.cn = "leafca.pki.test", .san = defaultSan("leafca")};
    Cert c = makeCert(spec, key.get(), fake.get(), fakeKey.get());
    writeCerts(p("leafca.crt"), {c.get(), fake.get(), inter.get()});
    writeKey(p("leafca.key"), key.get());
  }
  // Under intermediates of the trusted root that must not vouch for it: one limited by
  // nameConstraints to another domain, one whose own validity has ended.
  auto underCa = [&](const std::string& name, CertSpec caSpec) {
    Key caKey = ecKey();
    caSpec.ca = true;
    Cert ca = makeCert(caSpec, caKey.get(), root.get(), rootKey.get());
    Key key = ecKey();
    CertSpec spec{.cn = name + ".pki.test", .san = defaultSan(name)};
    Cert c = makeCert(spec, key.get(), ca.get(), caKey.get());
    writeCerts(p(name + ".crt"), {c.get(), ca.get()});
    writeKey(p(name + ".key"), key.get());
  };
  underCa("constrained", {.cn = "Sekisho Constrained Intermediate", .notAfter = kCaLife,
                          .nameConstraints = "critical,permitted;DNS:elsewhere.test"});
  underCa("expiredinter", {.cn = "Sekisho Expired Intermediate", .notBefore = -60 * kDay, .notAfter = -1 * kDay});
  // An intermediate the root signed with SHA-1 (the leaf itself is SHA-256).
  underCa("sha1inter", {.cn = "Sekisho SHA-1 Intermediate", .notAfter = kCaLife, .md = EVP_sha1()});
  // No DNS name anywhere: hostname checks fall back to the CN when there is no DNS SAN.
  leaf("ip", {.cn = "127.0.0.1", .san = "IP:127.0.0.1"}, ecKey(), true);

  {
    Key key = ecKey();
    CertSpec spec{.cn = "selfsigned.pki.test", .san = defaultSan("selfsigned")};
    Cert c = makeCert(spec, key.get(), nullptr, key.get());
    writeCerts(p("selfsigned.crt"), {c.get()});
    writeKey(p("selfsigned.key"), key.get());
  }
  {
    Key key = ecKey();
    CertSpec spec{.cn = "untrusted.pki.test", .san = defaultSan("untrusted")};
    Cert c = makeCert(spec, key.get(), otherInter.get(), otherInterKey.get());
    writeCerts(p("untrusted.crt"), {c.get(), otherInter.get()});
    writeKey(p("untrusted.key"), key.get());
  }
  {
    Key key = ecKey();
    CertSpec spec{.cn = "client.pki.test", .san = "DNS:client.pki.test", .eku = "clientAuth"};
    Cert c = makeCert(spec, key.get(), root.get(), rootKey.get());
    writeCerts(p("client.crt"), {c.get()});
    writeKey(p("client.key"), key.get());
  }
}

}  // namespace

bool makeTestPki(const std::string& dir, std::string* error, const std::string& aiaUrl) {
  try {
    build(dir, aiaUrl);
    return true;
  } catch (const Failure& f) {
    if (error) *error = f.what;
    return false;
  }
}

const std::vector<std::string>& leafNames() {
  static const std::vector<std::string> names{"good",       "expired",    "notyet",  "wronghost",
                                              "selfsigned", "untrusted",  "nointer", "rsa1024",
                                              "sha1",       "clientauth", "ip",         "cnonly",
                                              "clientonly", "leafca",     "constrained", "expiredinter", "sha1inter", "critext",
                                              "partialwild", "revoked"};
  return names;
}

}  // namespace sekisho::testpki
