#include "ca/ca_cli.h"

#include <openssl/pem.h>

#include "ca/ca_store.h"
#include "proxy/base/strings.h"

namespace sekisho::ca {
namespace {

int usageError(FILE* err, const std::string& msg) {
  std::fprintf(err, "sekisho ca init: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int caInitCommand(const std::string& certPath, const std::string& keyPath, const std::vector<std::string>& args,
                  FILE* out, FILE* err) {
  CaInitOptions opts;
  opts.certPath = certPath;
  opts.keyPath = keyPath;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool hasValue = i + 1 < args.size();
    if (a == "--rsa" || a == "--name" || a == "--org" || a == "--permit-dns") {
      if (!hasValue) return usageError(err, a + " needs a value");
      const std::string& v = args[++i];
      if (a == "--rsa") {
        auto bits = parseDecimal(v, 1u << 20);
        if (!bits || (*bits != 3072 && *bits != 4096))
          return usageError(err, "--rsa '" + v + "': expected 3072 or 4096");
        opts.rsaBits = int(*bits);
      } else if (a == "--name") {
        opts.commonName = v;
      } else if (a == "--org") {
        opts.organization = v;
      } else {
        opts.permittedDns.push_back(v);
      }
    } else {
      return usageError(err, "unknown option '" + a +
                                 "'; expected --rsa 3072|4096, --name CN, --org O, --permit-dns DOMAIN");
    }
  }
  auto r = initCa(opts);
  if (!r) return usageError(err, r.error().detail);
  const Ca& ca = *r->ca;
  std::fprintf(out, "Created the enterprise root CA (%s, valid %d years)\n",
               opts.rsaBits ? ("RSA " + std::to_string(opts.rsaBits)).c_str() : "ECDSA P-256",
               opts.validityDays / 365);
  std::fprintf(out, "  certificate: %s (mode 0644)\n", r->certPath.c_str());
  std::fprintf(out, "  private key: %s (mode 0600: keep it secret, back it up offline)\n", r->keyPath.c_str());
  std::fprintf(out, "  SHA-256 fingerprint: %s\n", ca.fingerprint().c_str());
  if (!opts.permittedDns.empty()) {
    std::fprintf(out, "  limited to DNS names under:");
    for (const auto& d : opts.permittedDns) std::fprintf(out, " %s", d.c_str());
    std::fprintf(out, "\n");
  }
  std::fprintf(out, "Next: browsers must trust this CA: see /ca on the proxy (or `sekisho ca export`).\n");
  return 0;
}

int caExportCommand(const std::string& certPath, bool der, FILE* out, FILE* err) {
  auto cert = readCertPem(certPath);
  if (!cert) {
    std::fprintf(err, "sekisho ca export: %s\n", cert.error().detail.c_str());
    return 1;
  }
  BioPtr bio(BIO_new_fp(out, BIO_NOCLOSE));
  int ok = bio ? (der ? i2d_X509_bio(bio.get(), cert->get()) : PEM_write_bio_X509(bio.get(), cert->get())) : 0;
  if (ok != 1 || BIO_flush(bio.get()) != 1) {
    std::fprintf(err, "sekisho ca export: %s\n", opensslError("cannot write the certificate").c_str());
    return 1;
  }
  return 0;
}

}  // namespace sekisho::ca
