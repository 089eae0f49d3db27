// test_pki: writes the test PKI (test_pki.h) into DIR.
//
//   test_pki DIR [--aia-url URL]
//
// For bench scripts and manual experiments; the tests call makeTestPki() directly.
#include <cstdio>
#include <string>
#include <string_view>

#include "tests/pki/test_pki.h"

int main(int argc, char** argv) {
  std::string dir, aiaUrl;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--aia-url" && i + 1 < argc) {
      aiaUrl = argv[++i];
    } else if (dir.empty() && !a.empty() && a[0] != '-') {
      dir = argv[i];
    } else {
      dir.clear();
      break;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: test_pki DIR [--aia-url URL]\n");
    return 2;
  }
  std::string error;
  if (!sekisho::testpki::makeTestPki(dir, &error, aiaUrl)) {
    std::fprintf(stderr, "test_pki: %s\n", error.c_str());
    return 1;
  }
  std::printf("%s\n", dir.c_str());
  return 0;
}
