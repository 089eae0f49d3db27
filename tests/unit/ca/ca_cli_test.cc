#include "ca/ca_cli.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "ca_test_util.h"

using namespace sekisho;
using namespace sekisho::ca;
using namespace sekisho::ca::test;

namespace {

// Captures what a command writes to its out/err streams.
struct Capture {
  FILE* out = std::tmpfile();
  FILE* err = std::tmpfile();
  ~Capture() {
    std::fclose(out);
    std::fclose(err);
  }
  static std::string read(FILE* f) {
    std::fflush(f);
    std::rewind(f);
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    return s;
  }
  std::string outText() { return read(out); }
  std::string errText() { return read(err); }
};

TEST(CaCli, InitCreatesAndPrintsFingerprintAndNextStep) {
  TempDir d;
  Capture c;
  int rc = caInitCommand(d.file("ca.crt"), d.file("ca.key"), {"--name", "Example Inspection CA", "--permit-dns", "example.com",
                                                              "--permit-dns", "example.co.jp"},
                         c.out, c.err);
  ASSERT_EQ(rc, 0) << c.errText();
  auto ca = loadCa(d.file("ca.crt"), d.file("ca.key"));
  ASSERT_TRUE(ca) << ca.error().detail;
  std::string out = c.outText();
  EXPECT_NE(out.find((*ca)->fingerprint()), std::string::npos) << out;
  EXPECT_NE(out.find("ECDSA P-256"), std::string::npos);
  EXPECT_NE(out.find("browsers must trust this CA: see /ca on the proxy"), std::string::npos);
  EXPECT_NE(out.find("example.co.jp"), std::string::npos);
  EXPECT_EQ(c.errText(), "");
  EXPECT_EQ(fileMode(d.file("ca.key")), 0600u);
  EXPECT_NE(X509_get_ext_by_NID((*ca)->cert(), NID_name_constraints, -1), -1);
}

TEST(CaCli, InitRsa) {
  TempDir d;
  Capture c;
  ASSERT_EQ(caInitCommand(d.file("ca.crt"), d.file("ca.key"), {"--rsa", "3072"}, c.out, c.err), 0) << c.errText();
  EXPECT_NE(c.outText().find("RSA 3072"), std::string::npos);
  auto ca = loadCa(d.file("ca.crt"), d.file("ca.key"));
  ASSERT_TRUE(ca);
  EXPECT_EQ(EVP_PKEY_get_bits((*ca)->key()), 3072);
}

TEST(CaCli, InitFailuresAreOneLineWithExitCode1) {
  TempDir d;
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  for (const Case& k : std::vector<Case>{{{"--rsa", "2048"}, "expected 3072 or 4096"},
                                         {{"--rsa"}, "--rsa needs a value"},
                                         {{"--bogus"}, "unknown option '--bogus'"},
                                         {{"--permit-dns", "a.com,DNS:b.com"}, "not a valid DNS name"}}) {
    Capture c;
    EXPECT_EQ(caInitCommand(d.file("ca.crt"), d.file("ca.key"), k.args, c.out, c.err), 1);
    std::string err = c.errText();
    EXPECT_NE(err.find(k.expect), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), err.size() - 1) << err;
    EXPECT_EQ(err.rfind("sekisho ca init: ", 0), 0u) << err;
  }
  EXPECT_FALSE(std::filesystem::exists(d.file("ca.key")));
  Capture ok;
  ASSERT_EQ(caInitCommand(d.file("ca.crt"), d.file("ca.key"), {}, ok.out, ok.err), 0);
  Capture again;
  EXPECT_EQ(caInitCommand(d.file("ca.crt"), d.file("ca.key"), {}, again.out, again.err), 1);
  EXPECT_NE(again.errText().find("refusing to overwrite"), std::string::npos);
}

TEST(CaCli, ExportPemAndDer) {
  TempDir d;
  auto ca = newCa(d);
  ASSERT_TRUE(ca);
  Capture pem;
  ASSERT_EQ(caExportCommand(d.file("ca.crt"), false, pem.out, pem.err), 0) << pem.errText();
  EXPECT_EQ(pem.outText(), ca->certPem());
  Capture der;
  ASSERT_EQ(caExportCommand(d.file("ca.crt"), true, der.out, der.err), 0) << der.errText();
  EXPECT_EQ(der.outText(), ca->certDer());
  EXPECT_EQ(pem.outText().find("PRIVATE KEY"), std::string::npos);
}

TEST(CaCli, ExportMissingCertFails) {
  TempDir d;
  Capture c;
  EXPECT_EQ(caExportCommand(d.file("nope.crt"), false, c.out, c.err), 1);
  std::string err = c.errText();
  EXPECT_EQ(err.rfind("sekisho ca export: ", 0), 0u) << err;
  EXPECT_NE(err.find("nope.crt"), std::string::npos);
  EXPECT_EQ(c.outText(), "");
}

}  // namespace
