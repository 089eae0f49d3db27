// Small X.509 building blocks shared by ca_store.cc and leaf_minter.cc (not part of the public
// API in ca.h).
#pragma once
#include <openssl/rand.h>

#include "ca/ssl_handles.h"
#include "proxy/base/result.h"

namespace sekisho::ca::detail {

// A random positive 128-bit serial (RFC 5280 §4.1.2.2: at most 20 octets, CA/B asks for at
// least 64 bits of randomness). Top bit cleared so DER needs no sign octet, next bit set so the
// serial is never zero and always 16 octets.
inline bool setRandomSerial(X509* cert) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return false;
  raw[0] = static_cast<unsigned char>((raw[0] & 0x7f) | 0x40);
  BignumPtr bn(BN_bin2bn(raw, sizeof raw, nullptr));
  if (!bn) return false;
  ASN1_INTEGER* serial = X509_get_serialNumber(cert);
  return BN_to_ASN1_INTEGER(bn.get(), serial) != nullptr;
}

// Key identifier = SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2, method 1).
inline Asn1OctetStringPtr keyIdentifier(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_pubkey_digest(cert, EVP_sha1(), md, &len) != 1) return nullptr;
  Asn1OctetStringPtr id(ASN1_OCTET_STRING_new());
  if (!id || ASN1_OCTET_STRING_set(id.get(), md, int(len)) != 1) return nullptr;
  return id;
}

inline bool addSubjectKeyId(X509* cert) {
  Asn1OctetStringPtr id = keyIdentifier(cert);
  return id && X509_add1_ext_i2d(cert, NID_subject_key_identifier, id.get(), 0, X509V3_ADD_DEFAULT) == 1;
}

// keyUsage from bit numbers (RFC 5280 §4.2.1.3: 0 digitalSignature, 5 keyCertSign, 6 cRLSign).
inline bool addKeyUsage(X509* cert, std::initializer_list<int> bits) {
  Asn1BitStringPtr bs(ASN1_BIT_STRING_new());
  if (!bs) return false;
  for (int b : bits)
    if (ASN1_BIT_STRING_set_bit(bs.get(), b, 1) != 1) return false;
  return X509_add1_ext_i2d(cert, NID_key_usage, bs.get(), 1, X509V3_ADD_DEFAULT) == 1;
}

inline bool addBasicConstraints(X509* cert, bool isCa, int pathLen) {
  BasicConstraintsPtr bc(BASIC_CONSTRAINTS_new());
  if (!bc) return false;
  bc->ca = isCa ? 0xff : 0;
  if (isCa && pathLen >= 0) {
    bc->pathlen = ASN1_INTEGER_new();
    if (!bc->pathlen || ASN1_INTEGER_set(bc->pathlen, pathLen) != 1) return false;
  }
  return X509_add1_ext_i2d(cert, NID_basic_constraints, bc.get(), 1, X509V3_ADD_DEFAULT) == 1;
}

}  // namespace sekisho::ca::detail
