#include "ca/ca_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>

#include "ca_test_util.h"

using namespace sekisho;
using namespace sekisho::ca;
using namespace sekisho::ca::test;

namespace {

CaInitOptions optsIn(const TempDir& d) {
  CaInitOptions o;
  o.certPath = d.file("ca.crt");
  o.keyPath = d.file("ca.key");
  return o;
}

TEST(CaStore, InitWritesKey0600AndCert0644) {
  TempDir d;
  mode_t old = ::umask(0);  // the modes must not depend on the caller's umask
  auto r = initCa(optsIn(d));
  ::umask(old);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(fileMode(d.file("ca.key")), 0600u);
  EXPECT_EQ(fileMode(d.file("ca.crt")), 0644u);
  EXPECT_NE(readAll(d.file("ca.key")).find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  EXPECT_EQ(readAll(d.file("ca.crt")), r->ca->certPem());
}

TEST(CaStore, InitRefusesToOverwriteKey) {
  TempDir d;
  { std::ofstream(d.file("ca.key")) << "precious"; }
  auto r = initCa(optsIn(d));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrKind::Io);
  EXPECT_NE(r.error().detail.find("refusing to overwrite"), std::string::npos) << r.error().detail;
  EXPECT_EQ(readAll(d.file("ca.key")), "precious");
  EXPECT_FALSE(std::filesystem::exists(d.file("ca.crt")));
}

TEST(CaStore, InitRefusesWhenCertExists) {
  TempDir d;
  { std::ofstream(d.file("ca.crt")) << "old cert"; }
  auto r = initCa(optsIn(d));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("refusing to overwrite"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(d.file("ca.key")));  // no orphan key left behind
  EXPECT_EQ(readAll(d.file("ca.crt")), "old cert");
}

TEST(CaStore, InitRefusesSecondRun) {
  TempDir d;
  ASSERT_TRUE(initCa(optsIn(d)));
  std::string before = readAll(d.file("ca.key"));
  EXPECT_FALSE(initCa(optsIn(d)));
  EXPECT_EQ(readAll(d.file("ca.key")), before);
}

TEST(CaStore, RootHasTheRightShape) {
  TempDir d;
  auto r = initCa(optsIn(d));
  ASSERT_TRUE(r) << r.error().detail;
  X509* c = r->ca->cert();
  EXPECT_EQ(X509_get_version(c), X509_VERSION_3);
  EXPECT_EQ(EVP_PKEY_get_id(r->ca->key()), EVP_PKEY_EC);
  EXPECT_EQ(X509_get_signature_nid(c), NID_ecdsa_with_SHA256);
  // basicConstraints critical CA:TRUE pathlen:0
  int crit = -1;
  auto* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(c, NID_basic_constraints, &crit, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ(crit, 1);
  EXPECT_TRUE(bc->ca);
  ASSERT_NE(bc->pathlen, nullptr);
  EXPECT_EQ(ASN1_INTEGER_get(bc->pathlen), 0);
  BASIC_CONSTRAINTS_free(bc);
  // keyUsage critical keyCertSign + cRLSign only
  auto* ku = static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(c, NID_key_usage, &crit, nullptr));
  ASSERT_NE(ku, nullptr);
  EXPECT_EQ(crit, 1);
  ASN1_BIT_STRING_free(ku);
  EXPECT_EQ(X509_get_key_usage(c), uint32_t(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(c), nullptr);
  EXPECT_EQ(X509_get_ext_by_NID(c, NID_name_constraints, -1), -1);
  // Self-signed and verifies with its own key.
  EXPECT_EQ(X509_verify(c, r->ca->key()), 1);
  EXPECT_EQ(X509_check_issued(c, c), X509_V_OK);
  // Subject: default CN, O = host name.
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, kDefaultCaCommonName);
  char org[128] = {};
  EXPECT_GT(X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_organizationName, org, sizeof org), 0);
  // 10 years, 16-byte random serial.
  auto nb = asn1TimeToEpoch(X509_get0_notBefore(c));
  auto na = asn1TimeToEpoch(X509_get0_notAfter(c));
  ASSERT_TRUE(nb && na);
  EXPECT_NEAR(double(*na - *nb), 3650.0 * 86400 + 3600, 120);
  EXPECT_EQ(ASN1_STRING_length(X509_get0_serialNumber(c)), 16);
}

TEST(CaStore, IdAndFingerprintFormats) {
  TempDir d;
  auto ca = newCa(d);
  ASSERT_TRUE(ca);
  EXPECT_EQ(ca->id().size(), 64u);
  EXPECT_EQ(ca->id().find_first_not_of("0123456789abcdef"), std::string::npos);
  ASSERT_EQ(ca->fingerprint().size(), 95u);  // 32 bytes "AB:" ...
  std::string noColons;
  for (char ch : ca->fingerprint())
    if (ch != ':') noColons += char(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_EQ(noColons, ca->id());
  const auto* der = reinterpret_cast<const unsigned char*>(ca->certDer().data());
  X509Ptr parsed(d2i_X509(nullptr, &der, long(ca->certDer().size())));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(X509_cmp(parsed.get(), ca->cert()), 0);
}

TEST(CaStore, NameOptionsAndNameConstraints) {
  TempDir d;
  CaInitOptions o = optsIn(d);
  o.commonName = "Example Corp Inspection CA";
  o.organization = "Example Corp";
  o.permittedDns = {"example.co.jp", "example.com"};
  auto r = initCa(o);
  ASSERT_TRUE(r) << r.error().detail;
  X509* c = r->ca->cert();
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "Example Corp Inspection CA");
  int crit = -1;
  auto* nc = static_cast<NAME_CONSTRAINTS*>(X509_get_ext_d2i(c, NID_name_constraints, &crit, nullptr));
  ASSERT_NE(nc, nullptr);
  EXPECT_EQ(crit, 1);
  ASSERT_EQ(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 2);
  GENERAL_SUBTREE* st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 0);
  ASSERT_EQ(st->base->type, GEN_DNS);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(st->base->d.dNSName))), "example.co.jp");
  NAME_CONSTRAINTS_free(nc);
}

TEST(CaStore, InitRejectsBadPermittedDomain) {
  TempDir d;
  CaInitOptions o = optsIn(d);
  o.permittedDns = {"example.com,DNS:evil.com"};
  auto r = initCa(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("not a valid DNS name"), std::string::npos) << r.error().detail;
  EXPECT_FALSE(std::filesystem::exists(d.file("ca.key")));
}

TEST(CaStore, RsaCa) {
  TempDir d;
  CaInitOptions o = optsIn(d);
  o.rsaBits = 3072;
  auto r = initCa(o);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(EVP_PKEY_get_id(r->ca->key()), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_get_bits(r->ca->key()), 3072);
  EXPECT_EQ(X509_get_signature_nid(r->ca->cert()), NID_sha256WithRSAEncryption);
  auto loaded = loadCa(o.certPath, o.keyPath);
  ASSERT_TRUE(loaded) << loaded.error().detail;
  EXPECT_EQ((*loaded)->id(), r->ca->id());
}

TEST(CaStore, RejectsUnsupportedRsaSize) {
  TempDir d;
  CaInitOptions o = optsIn(d);
  o.rsaBits = 2048;
  auto r = initCa(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrKind::Config);
  EXPECT_NE(r.error().detail.find("expected 3072 or 4096"), std::string::npos);
}

TEST(CaStore, LoadRoundTrip) {
  TempDir d;
  auto ca = newCa(d);
  ASSERT_TRUE(ca);
  auto loaded = loadCa(d.file("ca.crt"), d.file("ca.key"));
  ASSERT_TRUE(loaded) << loaded.error().detail;
  EXPECT_EQ((*loaded)->id(), ca->id());
  EXPECT_EQ((*loaded)->fingerprint(), ca->fingerprint());
  EXPECT_EQ(EVP_PKEY_eq((*loaded)->key(), ca->key()), 1);
  EXPECT_TRUE((*loaded)->chain().empty());
}

TEST(CaStore, LoadRefusesGroupOrWorldReadableKey) {
  TempDir d;
  ASSERT_TRUE(newCa(d));
  for (mode_t m : {0644, 0640, 0604, 0660}) {
    ::chmod(d.file("ca.key").c_str(), m);
    auto r = loadCa(d.file("ca.crt"), d.file("ca.key"));
    ASSERT_FALSE(r) << std::oct << m;
    EXPECT_EQ(r.error().kind, ErrKind::Config);
    EXPECT_NE(r.error().detail.find("chmod 600"), std::string::npos) << r.error().detail;
  }
  ::chmod(d.file("ca.key").c_str(), 0400);
  EXPECT_TRUE(loadCa(d.file("ca.crt"), d.file("ca.key")));
}

TEST(CaStore, LoadRefusesMismatchedKey) {
  TempDir a, b;
  ASSERT_TRUE(newCa(a));
  ASSERT_TRUE(newCa(b));
  auto r = loadCa(a.file("ca.crt"), b.file("ca.key"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("does not match"), std::string::npos) << r.error().detail;
}

TEST(CaStore, LoadRefusesNonCaCert) {
  TempDir d;
  makeSelfSigned({.isCa = false}, d.file("c.crt"), d.file("c.key"));
  auto r = loadCa(d.file("c.crt"), d.file("c.key"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("not a CA certificate"), std::string::npos) << r.error().detail;

  makeSelfSigned({.basicConstraints = false}, d.file("v.crt"), d.file("v.key"));
  r = loadCa(d.file("v.crt"), d.file("v.key"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("not a CA certificate"), std::string::npos) << r.error().detail;
}

TEST(CaStore, LoadRefusesCaWithoutKeyCertSign) {
  TempDir d;
  makeSelfSigned({.keyCertSign = false}, d.file("c.crt"), d.file("c.key"));
  auto r = loadCa(d.file("c.crt"), d.file("c.key"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("keyCertSign"), std::string::npos) << r.error().detail;
  // No keyUsage at all means every usage (RFC 5280 §4.2.1.3): accepted.
  makeSelfSigned({.keyUsage = false}, d.file("n.crt"), d.file("n.key"));
  EXPECT_TRUE(loadCa(d.file("n.crt"), d.file("n.key")));
}

TEST(CaStore, LoadRefusesExpiredAndNotYetValid) {
  TempDir d;
  makeSelfSigned({.notBeforeOffset = -10 * 86400, .notAfterOffset = -86400}, d.file("e.crt"), d.file("e.key"));
  auto r = loadCa(d.file("e.crt"), d.file("e.key"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("expired"), std::string::npos) << r.error().detail;
  makeSelfSigned({.notBeforeOffset = 86400, .notAfterOffset = 10 * 86400}, d.file("f.crt"), d.file("f.key"));
  r = loadCa(d.file("f.crt"), d.file("f.key"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("not valid yet"), std::string::npos) << r.error().detail;
}

TEST(CaStore, LoadReportsMissingAndGarbageFiles) {
  TempDir d;
  auto r = loadCa(d.file("none.crt"), d.file("none.key"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrKind::Io);
  EXPECT_NE(r.error().detail.find("none.key"), std::string::npos);
  ASSERT_TRUE(newCa(d));
  { std::ofstream(d.file("junk.crt")) << "not a certificate\n"; }
  r = loadCa(d.file("junk.crt"), d.file("ca.key"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("not a PEM certificate"), std::string::npos) << r.error().detail;
}

TEST(CaStore, LoadsIntermediateChain) {
  TempDir d, other;
  ASSERT_TRUE(newCa(d));
  auto o = newCa(other);
  ASSERT_TRUE(o);
  { std::ofstream(d.file("chain.pem")) << o->certPem() << o->certPem(); }
  auto r = loadCa(d.file("ca.crt"), d.file("ca.key"), d.file("chain.pem"));
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ((*r)->chain().size(), 2u);
  { std::ofstream(d.file("empty.pem")) << ""; }
  EXPECT_FALSE(loadCa(d.file("ca.crt"), d.file("ca.key"), d.file("empty.pem")));
  EXPECT_FALSE(loadCa(d.file("ca.crt"), d.file("ca.key"), d.file("missing.pem")));
}

TEST(CaStore, LoadOrCreateCreatesOnceThenLoads) {
  TempDir d;
  auto first = loadOrCreateCa(optsIn(d));
  ASSERT_TRUE(first) << first.error().detail;
  EXPECT_EQ(fileMode(d.file("ca.key")), 0600u);
  auto second = loadOrCreateCa(optsIn(d));
  ASSERT_TRUE(second) << second.error().detail;
  EXPECT_EQ((*first)->id(), (*second)->id());
}

TEST(CaStore, LoadOrCreateRefusesHalfACa) {
  TempDir d;
  ASSERT_TRUE(newCa(d));
  std::filesystem::remove(d.file("ca.crt"));
  auto r = loadOrCreateCa(optsIn(d));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("certificate missing"), std::string::npos) << r.error().detail;
  EXPECT_TRUE(std::filesystem::exists(d.file("ca.key")));
}

}  // namespace
