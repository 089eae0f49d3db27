// The test PKI (tests/pki) must produce exactly the failures the interception tests rely on:
// every case is verified here with X509_verify_cert against root.crt as the only trust anchor.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/pki/test_pki.h"

namespace {

struct Free {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Cert = std::unique_ptr<X509, Free>;
using Chain = std::unique_ptr<STACK_OF(X509), Free>;

class PkiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sekisho-pki-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::string error;
    ASSERT_TRUE(sekisho::testpki::makeTestPki(dir_, &error, "http://127.0.0.1:9/static/inter.der")) << error;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  static std::vector<Cert> load(const std::string& name) {
    std::vector<Cert> out;
    FILE* f = std::fopen((dir_ + "/" + name).c_str(), "rb");
    if (!f) return out;
    while (X509* c = PEM_read_X509(f, nullptr, nullptr, nullptr)) out.emplace_back(c);
    ERR_clear_error();  // the read that ends the loop leaves "no start line"
    std::fclose(f);
    return out;
  }

  struct Outcome {
    bool ok = false;
    int error = 0;
  };
  // Verifies the first certificate of `file` with the rest of the file (plus `extra` files) as
  // untrusted chain and root.crt as the only trust anchor. authLevel < 0: OpenSSL's default.
  static Outcome verify(const std::string& file, int authLevel = -1, std::vector<std::string> extra = {}) {
    Outcome o;
    auto certs = load(file);
    EXPECT_FALSE(certs.empty()) << file;
    if (certs.empty()) return o;
    auto roots = load("root.crt");
    EXPECT_EQ(roots.size(), 1u);
    std::unique_ptr<X509_STORE, Free> store(X509_STORE_new());
    X509_STORE_add_cert(store.get(), roots.at(0).get());
    Chain chain(sk_X509_new_null());
    for (size_t i = 1; i < certs.size(); ++i) {
      X509_up_ref(certs[i].get());
      sk_X509_push(chain.get(), certs[i].get());
    }
    for (const auto& e : extra) {
      for (auto& c : load(e)) sk_X509_push(chain.get(), c.release());
    }
    std::unique_ptr<X509_STORE_CTX, Free> ctx(X509_STORE_CTX_new());
    X509_STORE_CTX_init(ctx.get(), store.get(), certs[0].get(), chain.get());
    if (authLevel >= 0) X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(ctx.get()), authLevel);
    o.ok = X509_verify_cert(ctx.get()) == 1;
    o.error = X509_STORE_CTX_get_error(ctx.get());
    return o;
  }

  static std::string errorText(int e) { return X509_verify_cert_error_string(e); }

  static std::string dir_;
};
std::string PkiTest::dir_;

TEST_F(PkiTest, EveryLeafHasCertAndKeyThatMatch) {
  for (const auto& name : sekisho::testpki::leafNames()) {
    auto certs = load(name + ".crt");
    ASSERT_FALSE(certs.empty()) << name;
    FILE* f = std::fopen((dir_ + "/" + name + ".key").c_str(), "rb");
    ASSERT_NE(f, nullptr) << name;
    std::unique_ptr<EVP_PKEY, Free> key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    ASSERT_TRUE(key) << name;
    EXPECT_EQ(X509_check_private_key(certs[0].get(), key.get()), 1) << name;
  }
}

TEST_F(PkiTest, GoodVerifiesWithItsChainAndNames) {
  auto certs = load("good.crt");
  ASSERT_EQ(certs.size(), 2u) << "leaf then intermediate";
  Outcome o = verify("good.crt");
  EXPECT_TRUE(o.ok) << errorText(o.error);
  X509* leaf = certs[0].get();
  EXPECT_EQ(X509_check_host(leaf, "good.pki.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(leaf, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_get_extension_flags(leaf) & EXFLAG_CA, 0u);
  EXPECT_TRUE(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
  EXPECT_TRUE(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
  // Valid now, and not for years: about 30 days from an hour ago.
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(leaf)), 0);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(leaf)), 0);
  time_t in40Days = std::time(nullptr) + 40 * 86400;
  EXPECT_GT(X509_cmp_time(X509_get0_notAfter(leaf), &in40Days), -2);
  EXPECT_LT(X509_cmp_time(X509_get0_notAfter(leaf), &in40Days), 0);
}

TEST_F(PkiTest, LeafNamesItsIssuerByAiaAndTheDerCopyExists) {
  auto inter = load("inter.crt");
  ASSERT_EQ(inter.size(), 1u);
  EXPECT_TRUE(X509_get_extension_flags(inter[0].get()) & EXFLAG_CA);
  auto nointer = load("nointer.crt");
  ASSERT_EQ(nointer.size(), 1u);
  auto* aia = static_cast<AUTHORITY_INFO_ACCESS*>(
      X509_get_ext_d2i(nointer[0].get(), NID_info_access, nullptr, nullptr));
  ASSERT_NE(aia, nullptr);
  ASSERT_EQ(sk_ACCESS_DESCRIPTION_num(aia), 1);
  ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
  EXPECT_EQ(OBJ_obj2nid(ad->method), NID_ad_ca_issuers);
  ASSERT_EQ(ad->location->type, GEN_URI);
  const ASN1_IA5STRING* uri = ad->location->d.uniformResourceIdentifier;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)), ASN1_STRING_length(uri)),
            "http://127.0.0.1:9/static/inter.der");
  AUTHORITY_INFO_ACCESS_free(aia);

  FILE* f = std::fopen((dir_ + "/inter.der").c_str(), "rb");
  ASSERT_NE(f, nullptr);
  Cert der(d2i_X509_fp(f, nullptr));
  std::fclose(f);
  ASSERT_TRUE(der);
  EXPECT_EQ(X509_cmp(der.get(), inter[0].get()), 0);
}

TEST_F(PkiTest, NoAiaUrlMeansNoAiaExtension) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sekisho-pki-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  std::string error;
  ASSERT_TRUE(sekisho::testpki::makeTestPki(tmpl, &error)) << error;
  FILE* f = std::fopen((tmpl + "/inter.crt").c_str(), "rb");
  ASSERT_NE(f, nullptr);
  Cert inter(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  ASSERT_TRUE(inter);
  EXPECT_LT(X509_get_ext_by_NID(inter.get(), NID_info_access, -1), 0);
}

TEST_F(PkiTest, MakeTestPkiReportsAnUnwritableDir) {
  std::string error;
  EXPECT_FALSE(sekisho::testpki::makeTestPki("/proc/sekisho-no-such/dir", &error));
  EXPECT_NE(error.find("/proc/sekisho-no-such/dir"), std::string::npos) << error;
}

TEST_F(PkiTest, ExpiredAndNotYetValid) {
  Outcome expired = verify("expired.crt");
  EXPECT_FALSE(expired.ok);
  EXPECT_EQ(expired.error, X509_V_ERR_CERT_HAS_EXPIRED) << errorText(expired.error);
  Outcome notyet = verify("notyet.crt");
  EXPECT_FALSE(notyet.ok);
  EXPECT_EQ(notyet.error, X509_V_ERR_CERT_NOT_YET_VALID) << errorText(notyet.error);
}

TEST_F(PkiTest, SelfSignedAndUntrustedFail) {
  Outcome self = verify("selfsigned.crt");
  EXPECT_FALSE(self.ok);
  EXPECT_EQ(self.error, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT) << errorText(self.error);
  auto untrusted = load("untrusted.crt");
  ASSERT_EQ(untrusted.size(), 2u);
  Outcome o = verify("untrusted.crt");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY) << errorText(o.error);
  // It is a real chain, just under another root: with that root trusted instead it verifies.
  auto otherRoot = load("untrusted-root.crt");
  ASSERT_EQ(otherRoot.size(), 1u);
  std::unique_ptr<X509_STORE, Free> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), otherRoot[0].get());
  Chain chain(sk_X509_new_null());
  X509_up_ref(untrusted[1].get());
  sk_X509_push(chain.get(), untrusted[1].get());
  std::unique_ptr<X509_STORE_CTX, Free> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), untrusted[0].get(), chain.get());
  EXPECT_EQ(X509_verify_cert(ctx.get()), 1) << errorText(X509_STORE_CTX_get_error(ctx.get()));
}

TEST_F(PkiTest, NoInterNeedsTheIntermediate) {
  EXPECT_EQ(load("nointer.crt").size(), 1u) << "the leaf alone";
  Outcome alone = verify("nointer.crt");
  EXPECT_FALSE(alone.ok);
  EXPECT_EQ(alone.error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY) << errorText(alone.error);
  Outcome fetched = verify("nointer.crt", -1, {"inter.crt"});
  EXPECT_TRUE(fetched.ok) << errorText(fetched.error);
}

TEST_F(PkiTest, WrongHostChainsButNamesOnlyOtherExample) {
  Outcome o = verify("wronghost.crt");
  EXPECT_TRUE(o.ok) << errorText(o.error);
  auto certs = load("wronghost.crt");
  ASSERT_FALSE(certs.empty());
  EXPECT_EQ(X509_check_host(certs[0].get(), "wronghost.pki.test", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_host(certs[0].get(), "localhost", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_host(certs[0].get(), "other.example", 0, 0, nullptr), 1);
}

TEST_F(PkiTest, IpLeafHasOnlyTheIpSan) {
  EXPECT_TRUE(verify("ip.crt").ok);
  auto certs = load("ip.crt");
  ASSERT_FALSE(certs.empty());
  EXPECT_EQ(X509_check_ip_asc(certs[0].get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(certs[0].get(), "ip.pki.test", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_host(certs[0].get(), "localhost", 0, 0, nullptr), 0);
}

TEST_F(PkiTest, Rsa1024PassesByDefaultAndFailsAtLevel2) {
  auto certs = load("rsa1024.crt");
  ASSERT_FALSE(certs.empty());
  EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(certs[0].get())), 1024);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(certs[0].get())), EVP_PKEY_RSA);
  Outcome lax = verify("rsa1024.crt");
  EXPECT_TRUE(lax.ok) << errorText(lax.error);
  Outcome level1 = verify("rsa1024.crt", 1);  // 1024-bit RSA is 80 bits: enough for level 1
  EXPECT_TRUE(level1.ok) << errorText(level1.error);
  Outcome level2 = verify("rsa1024.crt", 2);
  EXPECT_FALSE(level2.ok);
  EXPECT_EQ(level2.error, X509_V_ERR_EE_KEY_TOO_SMALL) << errorText(level2.error);
}

TEST_F(PkiTest, Sha1PassesByDefaultAndFailsFromLevel1) {
  auto certs = load("sha1.crt");
  ASSERT_FALSE(certs.empty());
  EXPECT_EQ(X509_get_signature_nid(certs[0].get()), NID_ecdsa_with_SHA1);
  Outcome lax = verify("sha1.crt");
  EXPECT_TRUE(lax.ok) << errorText(lax.error);
  Outcome level1 = verify("sha1.crt", 1);
  EXPECT_FALSE(level1.ok);
  EXPECT_EQ(level1.error, X509_V_ERR_CA_MD_TOO_WEAK) << errorText(level1.error);
}

TEST_F(PkiTest, ClientCertIsForClientAuthUnderRoot) {
  Outcome o = verify("client.crt");
  EXPECT_TRUE(o.ok) << errorText(o.error);
  auto certs = load("client.crt");
  ASSERT_FALSE(certs.empty());
  EXPECT_TRUE(X509_get_extended_key_usage(certs[0].get()) & XKU_SSL_CLIENT);
}

}  // namespace
