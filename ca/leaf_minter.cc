#include "ca/leaf_minter.h"

#include <arpa/inet.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "ca/x509_util.h"

namespace sekisho::ca {
namespace {

Error sslErr(const std::string& what) { return Error{ErrKind::Tls, Side::Internal, opensslError(what), false}; }

// Printable form of a name for error messages: bytes outside printable ASCII become \xNN, so a
// NUL or an escape sequence in a hostile SNI cannot cut or colour a log line.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 300)) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += char(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > 300) out += "...";
  return out;
}

tl::unexpected<Error> badName(std::string_view name, const std::string& why) {
  return fail(ErrKind::BadRequest, Side::Downstream, "'" + printable(name) + "' is not a valid DNS name: " + why);
}

bool isLdh(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'; }

// Textual IPv4/IPv6 to the 4/16 bytes of a SAN iPAddress (RFC 5280 §4.2.1.6).
bool parseIp(const std::string& s, unsigned char* out, int* len) {
  if (s.find('\0') != std::string::npos) return false;
  if (inet_pton(AF_INET, s.c_str(), out) == 1) {
    *len = 4;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out) == 1) {
    *len = 16;
    return true;
  }
  return false;
}

Result<void> pushDns(GENERAL_NAMES* names, const std::string& dns) {
  Asn1Ia5StringPtr s(ASN1_IA5STRING_new());
  GeneralNamePtr gn(GENERAL_NAME_new());
  if (!s || !gn || ASN1_STRING_set(s.get(), dns.data(), int(dns.size())) != 1) return tl::unexpected(sslErr("SAN"));
  GENERAL_NAME_set0_value(gn.get(), GEN_DNS, s.release());
  if (!sk_GENERAL_NAME_push(names, gn.get())) return tl::unexpected(sslErr("SAN"));
  gn.release();
  return {};
}

Result<void> pushIp(GENERAL_NAMES* names, const unsigned char* ip, int len) {
  Asn1OctetStringPtr s(ASN1_OCTET_STRING_new());
  GeneralNamePtr gn(GENERAL_NAME_new());
  if (!s || !gn || ASN1_OCTET_STRING_set(s.get(), ip, len) != 1) return tl::unexpected(sslErr("SAN"));
  GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, s.release());
  if (!sk_GENERAL_NAME_push(names, gn.get())) return tl::unexpected(sslErr("SAN"));
  gn.release();
  return {};
}

// authorityKeyIdentifier = the CA's subjectKeyIdentifier, or the same SHA-1 method when an
// enterprise CA we were given has none (RFC 5280 §4.2.1.1).
bool addAuthorityKeyId(X509* leaf, X509* caCert) {
  AuthorityKeyIdPtr akid(AUTHORITY_KEYID_new());
  if (!akid) return false;
  if (const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(caCert)) akid->keyid = ASN1_OCTET_STRING_dup(ski);
  else akid->keyid = detail::keyIdentifier(caCert).release();
  if (!akid->keyid) return false;
  return X509_add1_ext_i2d(leaf, NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_DEFAULT) == 1;
}

bool addServerAuthEku(X509* leaf) {
  ExtendedKeyUsagePtr eku(sk_ASN1_OBJECT_new_null());
  if (!eku || !sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_server_auth))) return false;
  return X509_add1_ext_i2d(leaf, NID_ext_key_usage, eku.get(), 0, X509V3_ADD_DEFAULT) == 1;
}

// A fresh P-256 key, made through EC_KEY on purpose. On OpenSSL 3.0, X509_set_pubkey() with a
// provider-native key encodes it with the generic encoder and decodes it again with the generic
// decoder (both look up every provider's candidates on each call): measured ~170 us of a
// ~210 us mint on this machine, the largest single cost of a first visit. For a key held as an
// EC_KEY it takes the direct path (~1 us); the key's first signature then pays a one-off export
// to the provider (~20 us). Net ~150 us less per mint. The EC_KEY calls are deprecated in 3.0
// but not removed; the key is the same P-256 key from the same implementation.
EVP_PKEY* generateLeafKey() {
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
  static const EC_GROUP* const group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);  // shared, read-only
  if (!group) return nullptr;
  EC_KEY* ec = EC_KEY_new();
  if (!ec || EC_KEY_set_group(ec, group) != 1 || EC_KEY_generate_key(ec) != 1) {
    EC_KEY_free(ec);
    return nullptr;
  }
  EVP_PKEY* key = EVP_PKEY_new();
  if (!key || EVP_PKEY_assign_EC_KEY(key, ec) != 1) {
    EVP_PKEY_free(key);
    EC_KEY_free(ec);
    return nullptr;
  }
  return key;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
}

}  // namespace

Result<void> validateDnsName(std::string_view name, bool allowWildcard) {
  if (name.empty()) return badName(name, "empty");
  if (name.size() > 253) return badName(name, "longer than 253 bytes");
  std::string_view rest = name;
  if (rest.size() >= 2 && rest[0] == '*' && rest[1] == '.') {
    if (!allowWildcard) return badName(name, "a wildcard is not allowed here");
    rest.remove_prefix(2);
    // "*.com" would cover a whole TLD; require a registrable-looking base of two labels.
    if (rest.find('.') == std::string_view::npos) return badName(name, "a wildcard needs at least two labels after '*.'");
  }
  size_t labelLen = 0;
  for (size_t i = 0; i < rest.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(rest[i]);
    if (c == '.') {
      if (labelLen == 0) return badName(name, "empty label");
      if (rest[i - 1] == '-') return badName(name, "a label ends with '-'");
      labelLen = 0;
      continue;
    }
    if (c == '*') return badName(name, "'*' is only allowed as the whole first label ('*.example.com')");
    if (!isLdh(c)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", c);
      return badName(name, std::string("byte ") + buf + " is not a letter, digit, '-' or '.'");
    }
    if (labelLen == 0 && c == '-') return badName(name, "a label starts with '-'");
    if (++labelLen > 63) return badName(name, "a label is longer than 63 bytes");
  }
  if (labelLen == 0) return badName(name, rest.empty() ? "nothing after '*.'" : "empty last label (trailing dot)");
  if (rest.back() == '-') return badName(name, "a label ends with '-'");
  return {};
}

Result<MintedLeaf> mintLeaf(const Ca& ca, const LeafRequest& req) {
  // Validate every input first: nothing below runs on a name we have not checked.
  if (req.dnsNames.size() + req.ipAddresses.size() > kMaxLeafNames)
    return fail(ErrKind::BadRequest, Side::Upstream, "too many names for one certificate");
  for (const std::string& d : req.dnsNames)
    if (auto v = validateDnsName(d); !v) return tl::unexpected(v.error());
  std::vector<std::pair<std::array<unsigned char, 16>, int>> ips;
  for (const std::string& ip : req.ipAddresses) {
    std::array<unsigned char, 16> raw{};
    int len = 0;
    if (!parseIp(ip, raw.data(), &len))
      return fail(ErrKind::BadRequest, Side::Downstream, "'" + printable(ip) + "' is not an IPv4 or IPv6 address");
    ips.emplace_back(raw, len);
  }
  std::string cn = req.commonName;
  if (cn.empty()) cn = !req.dnsNames.empty() ? req.dnsNames.front() : !req.ipAddresses.empty() ? req.ipAddresses.front() : "";
  if (cn.empty()) return fail(ErrKind::BadRequest, Side::Downstream, "a leaf needs at least one name");
  {
    unsigned char raw[16];
    int len = 0;
    bool cnIsIp = parseIp(cn, raw, &len);
    if (!cnIsIp)
      if (auto v = validateDnsName(cn); !v) return tl::unexpected(v.error());
    if (cn.size() > 64)  // ub-common-name (RFC 5280 appendix A)
      return fail(ErrKind::BadRequest, Side::Downstream, "common name longer than 64 bytes: '" + printable(cn) + "'");
  }

  time_t now = time(nullptr);
  time_t notBefore = now - kLeafBackdateSeconds;
  time_t notAfter = now + time_t(kLeafMaxDays) * 86400;
  if (req.notAfterCap) notAfter = std::min(notAfter, req.notAfterCap);
  if (ca.notAfter()) notAfter = std::min(notAfter, ca.notAfter());  // never outlive the issuer
  if (notAfter <= now) return fail(ErrKind::Tls, Side::Upstream, "origin certificate (or CA) has already expired");

  // A key of its own per leaf: a leaf key read from memory or disk never unlocks other sites.
  EVP_PKEY* rawKey = generateLeafKey();
  if (!rawKey) return tl::unexpected(sslErr("leaf key generation"));
  EvpPkeyPtr key(rawKey);

  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 || !detail::setRandomSerial(cert.get()))
    return tl::unexpected(sslErr("leaf certificate"));
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn.data()), int(cn.size()), -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.cert())) != 1)
    return tl::unexpected(sslErr("leaf names"));
  if (!X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, 0, &notBefore) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, 0, &notAfter) || X509_set_pubkey(cert.get(), key.get()) != 1)
    return tl::unexpected(sslErr("leaf validity/key"));

  // SANs as GENERAL_NAME objects, one per checked name: no config-string parsing, so a name can
  // never smuggle in a second entry. Browsers ignore the CN (RFC 6125 §6.4.4), so it is always
  // present as a SAN too.
  GeneralNamesPtr sans(sk_GENERAL_NAME_new_null());
  if (!sans) return tl::unexpected(sslErr("SAN"));
  for (const std::string& d : req.dnsNames)
    if (auto r = pushDns(sans.get(), d); !r) return tl::unexpected(r.error());
  for (const auto& [raw, len] : ips)
    if (auto r = pushIp(sans.get(), raw.data(), len); !r) return tl::unexpected(r.error());
  if (req.dnsNames.empty() && req.ipAddresses.empty()) {
    unsigned char raw[16];
    int len = 0;
    auto r = parseIp(cn, raw, &len) ? pushIp(sans.get(), raw, len) : pushDns(sans.get(), cn);
    if (!r) return tl::unexpected(r.error());
  }
  if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, sans.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return tl::unexpected(sslErr("SAN extension"));

  if (!detail::addBasicConstraints(cert.get(), false, -1) || !detail::addKeyUsage(cert.get(), {0}) ||
      !addServerAuthEku(cert.get()) || !detail::addSubjectKeyId(cert.get()) || !addAuthorityKeyId(cert.get(), ca.cert()))
    return tl::unexpected(sslErr("leaf extensions"));
  // SHA-256 whatever the origin used: a SHA-1 origin (if policy ever let one through) must not
  // make us sign with SHA-1.
  if (X509_sign(cert.get(), ca.key(), EVP_sha256()) <= 0) return tl::unexpected(sslErr("leaf signature"));
  return MintedLeaf{std::move(cert), std::move(key)};
}

}  // namespace sekisho::ca
