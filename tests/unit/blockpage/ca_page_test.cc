#include "blockpage/ca_page.h"

#include <gtest/gtest.h>

using namespace sekisho::blockpage;

TEST(CaPage, ShowsFingerprintAndDownloadLinksInEnglish) {
  CaPageInfo info;
  info.subject = "CN=Example Root CA,O=Example";
  info.fingerprint = "AB:CD:EF";
  info.notAfter = "2036-11-25";
  std::string page = renderCaPage(info);
  EXPECT_NE(page.find("lang=\"en\""), std::string::npos);
  EXPECT_NE(page.find("AB:CD:EF"), std::string::npos);
  EXPECT_NE(page.find("href=\"/ca.crt\""), std::string::npos);
  EXPECT_NE(page.find("href=\"/ca.der\""), std::string::npos);
  EXPECT_NE(page.find("certutil -addstore -f Root"), std::string::npos);
  EXPECT_NE(page.find("add-trusted-cert"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
}

TEST(CaPage, JapaneseWhenAsked) {
  CaPageInfo info;
  info.lang = Lang::Ja;
  info.fingerprint = "00:11";
  std::string page = renderCaPage(info);
  EXPECT_NE(page.find("lang=\"ja\""), std::string::npos);
  EXPECT_NE(page.find("ルート証明書"), std::string::npos);
}

TEST(CaPage, EscapesCertificateFields) {
  CaPageInfo info;
  info.subject = "CN=<script>alert(1)</script>";
  info.fingerprint = "\"><img src=x>";
  info.proxyName = "<b>p</b>";
  std::string page = renderCaPage(info);
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_EQ(page.find("<img src=x>"), std::string::npos);
  EXPECT_EQ(page.find("<b>p</b>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;"), std::string::npos);
}
