// /ca: how to install the enterprise root CA that signs the certificates users see for
// intercepted sites, in Japanese or English, with the fingerprint to compare and links to
// /ca.crt (PEM) and /ca.der (DER).
#pragma once
#include <string>
#include <string_view>

#include "blockpage/error_page.h"

namespace sekisho::blockpage {

struct CaPageInfo {
  std::string_view subject;      // the CA certificate's subject, e.g. "CN=Example Root CA,O=Example"
  std::string_view fingerprint;  // SHA-256, colon-separated hex
  std::string_view notAfter;     // ISO 8601 date
  std::string_view proxyName;
  Lang lang = Lang::En;
};

std::string renderCaPage(const CaPageInfo& info);

}  // namespace sekisho::blockpage
