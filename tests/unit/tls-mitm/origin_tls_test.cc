// The pure parts of the origin side: what a minted leaf copies from an origin certificate (and
// what it refuses to), the AIA URL filter, the cache key, and the remembered-host table.
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tls-mitm/origin_tls.h"
#include "tls-mitm/remembered_hosts.h"

namespace sekisho::mitm {
namespace {

// A self-signed P-256 certificate with the given SAN entries ("DNS:..." / "IP:..." / "URI:...")
// and AIA caIssuers URLs, built with the GENERAL_NAME API so hostile bytes stay as they are.
X509Ptr makeCert(const std::vector<std::string>& sans, const std::vector<std::string>& aia = {},
                 const std::string& cn = "origin.example") {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 30);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, key);
  GENERAL_NAMES* gens = sk_GENERAL_NAME_new_null();
  for (const auto& s : sans) {
    GENERAL_NAME* gn = GENERAL_NAME_new();
    if (s.rfind("IP:", 0) == 0) {
      ASN1_OCTET_STRING* ip = a2i_IPADDRESS(s.c_str() + 3);
      GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    } else {
      ASN1_IA5STRING* str = ASN1_IA5STRING_new();
      ASN1_STRING_set(str, s.data() + 4, int(s.size() - 4));
      GENERAL_NAME_set0_value(gn, s.rfind("DNS:", 0) == 0 ? GEN_DNS : GEN_URI, str);
    }
    sk_GENERAL_NAME_push(gens, gn);
  }
  if (!sans.empty()) X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT);
  GENERAL_NAMES_free(gens);
  if (!aia.empty()) {
    AUTHORITY_INFO_ACCESS* info = sk_ACCESS_DESCRIPTION_new_null();
    for (const auto& u : aia) {
      ACCESS_DESCRIPTION* ad = ACCESS_DESCRIPTION_new();
      ad->method = OBJ_nid2obj(NID_ad_ca_issuers);
      ASN1_IA5STRING* str = ASN1_IA5STRING_new();
      ASN1_STRING_set(str, u.data(), int(u.size()));
      GENERAL_NAME_set0_value(ad->location, GEN_URI, str);
      sk_ACCESS_DESCRIPTION_push(info, ad);
    }
    X509_add1_ext_i2d(x, NID_info_access, info, 0, X509V3_ADD_DEFAULT);
    AUTHORITY_INFO_ACCESS_free(info);
  }
  X509_sign(x, key, EVP_sha256());
  EVP_PKEY_free(key);
  return X509Ptr(x);
}

TEST(LeafFromOrigin, CopiesValidDnsAndIpNamesAndNothingElse) {
  std::string nul = std::string("DNS:evil.example") + '\0' + ".good.example";
  auto cert = makeCert({"DNS:good.example", "DNS:*.wild.example", "DNS:Mixed.Case.Example", "DNS:bad name.example",
                        "DNS:a,DNS:injected.example", nul, "URI:http://x.example/", "IP:10.0.0.1", "IP:2001:db8::1"});
  ca::LeafRequest r = leafRequestFromOrigin(cert.get(), "good.example");
  EXPECT_EQ(r.dnsNames, (std::vector<std::string>{"good.example", "*.wild.example", "mixed.case.example"}));
  EXPECT_EQ(r.ipAddresses, (std::vector<std::string>{"10.0.0.1", "2001:db8::1"}));
  EXPECT_EQ(r.commonName, "") << "the CN is not one of the SANs, so it is not copied";
  EXPECT_GT(r.notAfterCap, time(nullptr));
}

TEST(LeafFromOrigin, KeepsTheCnOnlyWhenItIsASan) {
  auto cert = makeCert({"DNS:origin.example", "DNS:www.origin.example"});
  EXPECT_EQ(leafRequestFromOrigin(cert.get(), "origin.example").commonName, "origin.example");
}

TEST(LeafFromOrigin, FallsBackToTheVerifiedNameWhenNoneIsUsable) {
  auto cert = makeCert({"DNS:bad name"});
  ca::LeafRequest r = leafRequestFromOrigin(cert.get(), "asked.example");
  EXPECT_EQ(r.dnsNames, std::vector<std::string>{"asked.example"});
  auto ipOnly = makeCert({});
  EXPECT_EQ(leafRequestFromOrigin(ipOnly.get(), "192.0.2.7").ipAddresses, std::vector<std::string>{"192.0.2.7"});
}

TEST(LeafFromOrigin, AHugeSanListIsCutButKeepsTheAskedName) {
  std::vector<std::string> sans;
  for (int i = 0; i < 1200; ++i) sans.push_back("DNS:n" + std::to_string(i) + ".example");
  auto cert = makeCert(sans);
  ca::LeafRequest r = leafRequestFromOrigin(cert.get(), "n1100.example");
  EXPECT_LE(r.dnsNames.size(), ca::kMaxLeafNames);
  EXPECT_NE(std::find(r.dnsNames.begin(), r.dnsNames.end(), "n1100.example"), r.dnsNames.end());
}

TEST(Aia, OnlyPlainPrintableHttpUrls) {
  EXPECT_EQ(aiaIssuerUrl(makeCert({}, {"http://ca.example/inter.der"}).get()), "http://ca.example/inter.der");
  EXPECT_EQ(aiaIssuerUrl(makeCert({}, {"ldap://ca.example/x", "http://ca.example/b.crt"}).get()),
            "http://ca.example/b.crt");
  EXPECT_EQ(aiaIssuerUrl(makeCert({}, {"https://ca.example/inter.der"}).get()), "");
  EXPECT_EQ(aiaIssuerUrl(makeCert({}, {"http://ca.example/a b"}).get()), "");
  EXPECT_EQ(aiaIssuerUrl(makeCert({}, {std::string("http://ca.example/\x01")}).get()), "");
  EXPECT_EQ(aiaIssuerUrl(makeCert({}).get()), "");
}

TEST(Aia, CacheRemembersFailuresAndEvictsTheOldest) {
  AiaCache cache(2);
  bool failed = false;
  EXPECT_EQ(cache.get("http://a/", &failed), nullptr);
  EXPECT_FALSE(failed);
  cache.put("http://a/", nullptr);
  EXPECT_EQ(cache.get("http://a/", &failed), nullptr);
  EXPECT_TRUE(failed);
  cache.put("http://b/", makeCert({}));
  cache.put("http://c/", makeCert({}));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.get("http://c/"), nullptr);
  EXPECT_EQ(cache.get("http://a/", &failed), nullptr);
  EXPECT_FALSE(failed) << "the oldest entry was evicted";
}

TEST(CertKey, Sha256HexNamesTheCertificate) {
  auto a = makeCert({"DNS:a.example"});
  auto b = makeCert({"DNS:b.example"});
  std::string ka = certSha256Hex(a.get());
  EXPECT_EQ(ka.size(), 64u);
  EXPECT_EQ(ka.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(ka, certSha256Hex(b.get()));
  EXPECT_EQ(ka, certSha256Hex(a.get()));
}

TEST(RememberedHosts, RemembersForTheTtlPerKind) {
  RememberedHosts r(60, 2);
  EXPECT_TRUE(r.remember("a.example:443", RememberKind::ClientCert, 1000));
  EXPECT_FALSE(r.remember("a.example:443", RememberKind::ClientCert, 1010)) << "already known: logged once";
  EXPECT_TRUE(r.check("a.example:443", RememberKind::ClientCert, 1030));
  EXPECT_FALSE(r.check("a.example:443", RememberKind::Pinned, 1030));
  EXPECT_FALSE(r.check("a.example:443", RememberKind::ClientCert, 1071)) << "expired (refreshed at 1010)";
  EXPECT_TRUE(r.remember("a.example:443", RememberKind::ClientCert, 1100)) << "new again after expiry";
  r.remember("b.example:443", RememberKind::Pinned, 1100);
  r.remember("c.example:443", RememberKind::Pinned, 1100);  // bound 2: the oldest (a) goes
  EXPECT_FALSE(r.check("a.example:443", RememberKind::ClientCert, 1101));
  auto list = r.list(1101);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].host, "c.example:443");
}

}  // namespace
}  // namespace sekisho::mitm
