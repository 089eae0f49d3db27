#include "blockpage/error_page.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

using namespace sekisho::blockpage;

namespace {

struct ReasonCase {
  const char* reason;
  int status;
};

const std::vector<ReasonCase> kAllReasons = {
    {"client_not_allowed", 403},   {"connect_port_not_allowed", 403},
    {"port_not_allowed", 403},     {"destination_not_allowed", 403},
    {"bad_request", 400},          {"ambiguous_framing", 400},
    {"uri_too_long", 414},         {"headers_too_large", 431},
    {"body_too_large", 413},       {"not_implemented", 501},
    {"unsupported_scheme", 501},   {"dns_failed", 502},
    {"connect_failed", 502},       {"connect_timeout", 504},
    {"upstream_timeout", 504},     {"bad_response", 502},
    {"upstream_reset", 502},       {"loop_detected", 508},
    {"request_timeout", 408},      {"not_found", 404},
    {"too_many_connections", 503}, {"shutting_down", 503},
};

ErrorInfo info(std::string_view reason, int status, Lang lang = Lang::En) {
  ErrorInfo i;
  i.status = status;
  i.reason = reason;
  i.url = "http://example.com:8443/path?q=1";
  i.detail = "connect to 93.184.216.34:8443 refused";
  i.client = "10.1.2.3";
  i.refId = "K7Q2-9XTM";
  i.proxyName = "gw1.corp.example";
  i.epoch = 1764090000;
  i.lang = lang;
  return i;
}

std::string between(const std::string& s, const std::string& open, const std::string& close) {
  size_t a = s.find(open);
  if (a == std::string::npos) return {};
  a += open.size();
  size_t b = s.find(close, a);
  return b == std::string::npos ? std::string() : s.substr(a, b - a);
}

// Every tag in the page is one the renderer itself writes: no value injected markup.
void expectOnlyOwnTags(const std::string& page) {
  static const std::set<std::string> kOwn = {"!DOCTYPE", "html", "head", "meta", "title", "style",
                                             "body",     "main", "p",    "h1",   "h2",    "div",
                                             "span",     "dl",   "dt",   "dd",   "footer"};
  for (size_t at = page.find('<'); at != std::string::npos; at = page.find('<', at + 1)) {
    size_t i = at + 1;
    if (i < page.size() && page[i] == '/') ++i;
    size_t end = page.find_first_of(" >\n", i);
    std::string name = page.substr(i, end - i);
    EXPECT_TRUE(kOwn.count(name)) << "unexpected tag <" << name << "> at " << at;
  }
}

}  // namespace

TEST(HtmlEscape, EscapesTheFiveSpecialCharacters) {
  EXPECT_EQ(htmlEscape(R"(<a href="x" title='y'>&amp;</a>)"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
  EXPECT_EQ(htmlEscape("plain text 日本"), "plain text 日本");
  EXPECT_EQ(htmlEscape(""), "");
}

TEST(ErrorPage, EscapesXssVectorsInEveryRequestValue) {
  ErrorInfo i = info("destination_not_allowed", 403);
  i.url = "http://x.example/<script>alert(1)</script>?a=\"onmouseover='alert(2)'";
  i.detail = "<img src=x onerror=alert(3)>";
  i.refId = "\"><svg onload=alert(4)>";
  i.client = "<b>10.0.0.1</b>";
  i.proxyName = "</title><script>alert(5)</script>";
  for (Lang lang : {Lang::En, Lang::Ja}) {
    i.lang = lang;
    std::string page = renderErrorPage(i);
    expectOnlyOwnTags(page);
    EXPECT_EQ(page.find("<script"), std::string::npos);
    EXPECT_EQ(page.find("<img"), std::string::npos);
    EXPECT_EQ(page.find("<svg"), std::string::npos);
    EXPECT_EQ(page.find("'alert(2)'"), std::string::npos);
    EXPECT_NE(page.find("http://x.example/&lt;script&gt;alert(1)&lt;/script&gt;?a=&quot;"
                        "onmouseover=&#39;alert(2)&#39;"),
              std::string::npos);
    EXPECT_NE(page.find("&lt;img src=x onerror=alert(3)&gt;"), std::string::npos);
    EXPECT_NE(page.find("&quot;&gt;&lt;svg onload=alert(4)&gt;"), std::string::npos);
    EXPECT_NE(page.find("&lt;b&gt;10.0.0.1&lt;/b&gt;"), std::string::npos);
  }
}

TEST(ErrorPage, ReplacesInvalidUtf8AndControlCharactersInValues) {
  ErrorInfo i = info("bad_request", 400);
  i.url = "http://x.example/\xFF\xC0\xAF\x01\x7F/\xE6\x97\xA5";
  std::string page = renderErrorPage(i);
  EXPECT_NE(page.find("http://x.example/\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                      "\xEF\xBF\xBD/\xE6\x97\xA5"),
            std::string::npos);
}

TEST(ErrorPage, TruncatesVeryLongUrls) {
  ErrorInfo i = info("uri_too_long", 414);
  std::string url = "http://x.example/" + std::string(100000, 'a');
  i.url = url;
  std::string page = renderErrorPage(i);
  EXPECT_LT(page.size(), 20000u);
  EXPECT_NE(page.find("aaaa\xE2\x80\xA6"), std::string::npos);  // ends in an ellipsis
}

TEST(ErrorPage, EveryReasonRendersItsOwnTextWithStatusAndReferenceId) {
  for (Lang lang : {Lang::En, Lang::Ja}) {
    std::set<std::string> titles;
    std::string generic4 = between(renderErrorPage(info("no_such_reason", 403, lang)), "<h1>", "</h1>");
    std::string generic5 = between(renderErrorPage(info("no_such_reason", 502, lang)), "<h1>", "</h1>");
    for (const ReasonCase& rc : kAllReasons) {
      SCOPED_TRACE(rc.reason);
      std::string page = renderErrorPage(info(rc.reason, rc.status, lang));
      std::string status = std::to_string(rc.status) + " " + std::string(reasonPhrase(rc.status));
      ASSERT_FALSE(reasonPhrase(rc.status).empty());
      EXPECT_EQ(page.rfind("<!DOCTYPE html>\n", 0), 0u);
      EXPECT_NE(page.find("<p class=\"status\">" + status + "</p>"), std::string::npos);
      EXPECT_NE(page.find("<title>" + status), std::string::npos);
      EXPECT_NE(page.find("<span class=\"ref-id\">K7Q2-9XTM</span>"), std::string::npos);
      EXPECT_NE(page.find("http://example.com:8443/path?q=1"), std::string::npos);
      EXPECT_NE(page.find("connect to 93.184.216.34:8443 refused"), std::string::npos);
      EXPECT_NE(page.find("10.1.2.3"), std::string::npos);
      EXPECT_NE(page.find("gw1.corp.example"), std::string::npos);
      EXPECT_NE(page.find("2025-11-25T17:00:00Z"), std::string::npos);
      std::string title = between(page, "<h1>", "</h1>");
      EXPECT_FALSE(title.empty());
      EXPECT_NE(title, generic4);
      EXPECT_NE(title, generic5);
      titles.insert(title);
      expectOnlyOwnTags(page);
    }
    EXPECT_EQ(titles.size(), kAllReasons.size()) << "each reason has its own title";
  }
}

TEST(ErrorPage, EnglishPageAsksToQuoteTheReferenceId) {
  std::string page = renderErrorPage(info("client_not_allowed", 403));
  EXPECT_NE(page.find("<html lang=\"en\">"), std::string::npos);
  EXPECT_NE(page.find("contact your network administrator and quote the reference ID"), std::string::npos);
  EXPECT_NE(page.find("This computer is not allowed to use the proxy"), std::string::npos);
  EXPECT_NE(page.find("What you can do"), std::string::npos);
}

TEST(ErrorPage, JapanesePageIsInJapanese) {
  std::string page = renderErrorPage(info("connect_port_not_allowed", 403, Lang::Ja));
  EXPECT_NE(page.find("<html lang=\"ja\">"), std::string::npos);
  EXPECT_NE(page.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(page.find("このポートへの暗号化接続は許可されていません"), std::string::npos);
  EXPECT_NE(page.find("参照 ID"), std::string::npos);
  EXPECT_NE(page.find("ネットワーク管理者に連絡し、上記の参照 ID をお伝えください"), std::string::npos);
  EXPECT_EQ(page.find("What happened"), std::string::npos);
}

TEST(ErrorPage, UnknownReasonFallsBackToGenericTextForTheStatus) {
  std::string p403 = renderErrorPage(info("something_new", 403));
  EXPECT_NE(p403.find("<h1>The request was refused</h1>"), std::string::npos);
  EXPECT_NE(p403.find("403 Forbidden"), std::string::npos);
  std::string p502 = renderErrorPage(info("", 502));
  EXPECT_NE(p502.find("<h1>The request could not be completed</h1>"), std::string::npos);
  std::string ja = renderErrorPage(info("something_new", 599, Lang::Ja));
  EXPECT_NE(ja.find("<h1>リクエストを完了できませんでした</h1>"), std::string::npos);
  EXPECT_NE(ja.find("<p class=\"status\">599</p>"), std::string::npos);  // no phrase known
}

TEST(ErrorPage, IsSelfContainedWithoutScriptsOrExternalResources) {
  std::string page = renderErrorPage(info("dns_failed", 502));
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_EQ(page.find("@import"), std::string::npos);
  EXPECT_EQ(page.find("url("), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_NE(page.find("Content-Security-Policy\" content=\"default-src 'none'"), std::string::npos);
  EXPECT_NE(page.find("<style>"), std::string::npos);
}

TEST(ErrorPage, OmitsEmptyOptionalRowsAndSaysWhatToQuoteWithoutReferenceId) {
  ErrorInfo i = info("request_timeout", 408);
  i.refId = "";
  i.detail = "";
  i.url = "";
  std::string page = renderErrorPage(i);
  EXPECT_EQ(page.find("class=\"ref-id\""), std::string::npos);
  EXPECT_EQ(page.find("<dt>Details</dt>"), std::string::npos);
  EXPECT_EQ(page.find("<dt>Address</dt>"), std::string::npos);
  EXPECT_NE(page.find("<dt>Time (UTC)</dt>"), std::string::npos);
  EXPECT_NE(page.find("tell them the time shown above"), std::string::npos);
}

TEST(PickLanguage, ChoosesByQValueWithTiesInHeaderOrder) {
  struct Case {
    const char* header;
    Lang want;
  };
  const Case cases[] = {
      {"", Lang::En},
      {"ja", Lang::Ja},
      {"ja-JP", Lang::Ja},
      {"JA-jp", Lang::Ja},
      {"en", Lang::En},
      {"en-GB", Lang::En},
      {"ja,en-US;q=0.9,en;q=0.8", Lang::Ja},
      {"en-US,en;q=0.9,ja;q=0.8", Lang::En},
      {"en-US;q=0.8, ja-JP;q=0.9", Lang::Ja},
      {"fr-FR, fr;q=0.9, ja;q=0.5", Lang::Ja},  // the best language we offer
      {"fr, de", Lang::En},
      {"en;q=0.5, ja;q=0.5", Lang::En},  // tie: header order
      {"ja;q=0.5, en;q=0.5", Lang::Ja},
      {"ja;q=0.500, en;q=0.5", Lang::Ja},
      {"ja;q=0", Lang::En},  // q=0: not acceptable
      {"ja;q=0.000, en;q=0.001", Lang::En},
      {"en;q=0, ja;q=0.001", Lang::Ja},
      {"ja;q=1.000", Lang::Ja},
      {" ja ; q=0.7 , en;q=0.6", Lang::Ja},
      {"ja;Q=0.7, en;q=0.6", Lang::Ja},
      {",,ja,", Lang::Ja},
      {"*", Lang::En},
      {"*;q=1, ja;q=0.1", Lang::Ja},
      {"ja-JP-x-osaka", Lang::Ja},
      // Malformed elements are ignored, the rest still count.
      {"ja;q=abc, en;q=0.2", Lang::En},
      {"ja;q=1.5", Lang::En},
      {"ja;q=1.001", Lang::En},
      {"ja;q=0.0001", Lang::En},
      {"ja;q=", Lang::En},
      {"ja;q=.5", Lang::En},
      {"ja;level=1", Lang::En},
      {"ja;q=0.5;x=1", Lang::En},
      {"j@, ja-", Lang::En},
      {"jap", Lang::En},
      {"123, ja-123", Lang::Ja},
      {"toolongtag-ja, ja;q=0.3", Lang::Ja},
      {"en;q=0.1, garbage;;, ja;q=0.2", Lang::Ja},
  };
  for (const Case& c : cases) EXPECT_EQ(pickLanguage(c.header), c.want) << "Accept-Language: " << c.header;
}

TEST(ReasonPhrase, KnowsTheStatusesTheProxySends) {
  EXPECT_EQ(reasonPhrase(200), "OK");
  EXPECT_EQ(reasonPhrase(400), "Bad Request");
  EXPECT_EQ(reasonPhrase(403), "Forbidden");
  EXPECT_EQ(reasonPhrase(407), "Proxy Authentication Required");
  EXPECT_EQ(reasonPhrase(413), "Content Too Large");
  EXPECT_EQ(reasonPhrase(414), "URI Too Long");
  EXPECT_EQ(reasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reasonPhrase(502), "Bad Gateway");
  EXPECT_EQ(reasonPhrase(504), "Gateway Timeout");
  EXPECT_EQ(reasonPhrase(508), "Loop Detected");
  EXPECT_EQ(reasonPhrase(0), "");
  EXPECT_EQ(reasonPhrase(299), "");
  EXPECT_EQ(reasonPhrase(999), "");
}
