// Shared by the ca unit tests: a temp dir per test and a builder for deliberately bad CA certs.
#pragma once
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "ca/ca.h"
#include "ca/x509_util.h"

namespace sekisho::ca::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sekisho-ca-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

inline mode_t fileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

inline std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void writePem(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_X509(f, cert);
  std::fclose(f);
}

inline void writeKeyPem(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  ::chmod(path.c_str(), 0600);
}

struct BadCertSpec {
  bool basicConstraints = true;
  bool isCa = true;
  bool keyUsage = true;
  bool keyCertSign = true;
  long notBeforeOffset = -3600;  // seconds from now
  long notAfterOffset = 86400;
};

// A self-signed P-256 certificate shaped by `spec`; writes cert and key (0600) to the paths.
inline void makeSelfSigned(const BadCertSpec& spec, const std::string& certPath, const std::string& keyPath) {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_TRUE(key);
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASSERT_TRUE(detail::setRandomSerial(cert.get()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Test CA"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.notBeforeOffset);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.notAfterOffset);
  X509_set_pubkey(cert.get(), key.get());
  if (spec.basicConstraints) {
    ASSERT_TRUE(detail::addBasicConstraints(cert.get(), spec.isCa, 0));
  }
  if (spec.keyUsage) {
    ASSERT_TRUE(spec.keyCertSign ? detail::addKeyUsage(cert.get(), {5, 6}) : detail::addKeyUsage(cert.get(), {0}));
  }
  ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  writePem(certPath, cert.get());
  writeKeyPem(keyPath, key.get());
}

inline std::shared_ptr<const Ca> newCa(const TempDir& dir, int rsaBits = 0, std::vector<std::string> permit = {}) {
  CaInitOptions o;
  o.certPath = dir.file("ca.crt");
  o.keyPath = dir.file("ca.key");
  o.rsaBits = rsaBits;
  o.permittedDns = std::move(permit);
  auto r = initCa(o);
  EXPECT_TRUE(r) << (r ? "" : r.error().detail);
  return r ? r->ca : nullptr;
}

}  // namespace sekisho::ca::test
