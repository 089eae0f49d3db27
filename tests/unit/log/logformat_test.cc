// Squid logformat strings (proxy/log/logformat.h): every supported code, the modifiers, the
// named formats, and the refusals check-config shows with their column.
#include "proxy/log/logformat.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

using namespace sekisho::accesslog;

namespace {
Record sample() {
  Record r;
  r.startEpoch = 1796422333.045;  // 2026-12-04 22:12:13.045 UTC
  r.elapsedMs = 87;
  r.client = "192.0.2.7";
  r.squidCode = "TCP_MISS";
  r.status = 200;
  r.bytesToClient = 5120;
  r.bytesFromClient = 410;
  r.method = "GET";
  r.url = "http://example.com/a b?q=\"x\"";
  r.user = "-";
  r.hierarchy = "HIER_DIRECT";
  r.peer = "198.51.100.9";
  r.contentType = "text/html";
  r.mode = "bump";
  r.reason = "reputation_block";
  r.refId = "K7Q2-9XTM";
  r.versionMinor = 0;
  r.referer = "http://ref.example/";
  r.userAgent = "Mozilla/5.0 (X11; Linux)";
  return r;
}

std::string line(const std::string& spec, const Record& r = sample()) {
  auto f = LineFormat::compile(spec);
  EXPECT_TRUE(f) << spec << ": " << (f ? "" : f.error().detail);
  std::string out;
  if (f) f->append(out, r);
  return out;
}

std::string refusal(const std::string& spec) {
  auto f = LineFormat::compile(spec);
  EXPECT_FALSE(f) << spec;
  return f ? "" : f.error().detail;
}
}  // namespace

TEST(LogFormat, EachSupportedCode) {
  setenv("TZ", "Asia/Tokyo", 1);
  tzset();
  struct Row {
    const char* spec;
    const char* want;
  } rows[] = {
      {"%ts", "1796422333"},
      {"%tu", "45"},
      {"%03tu", "045"},
      {"%tr", "87"},
      {"%tl", "05/Dec/2026:07:12:13 +0900"},
      {"%tg", "04/Dec/2026:22:12:13 +0000"},
      {"%>a", "192.0.2.7"},
      {"%<a", "198.51.100.9"},
      {"%Ss", "TCP_MISS"},
      {"%Sh", "HIER_DIRECT"},
      {"%>Hs", "200"},
      {"%<st", "5120"},
      {"%>st", "410"},
      {"%rm", "GET"},
      {"%ru", "http://example.com/a%20b?q=%22x%22"},
      {"%rv", "1.0"},
      {"%mt", "text/html"},
      {"%un", "-"},
      {"%ui", "-"},
      {"%{Referer}>h", "http://ref.example/"},
      {"%{user-agent}>h", "Mozilla/5.0%20(X11;%20Linux)"},
      {"%{reason}note", "reputation_block"},
      {"%{ref}note", "K7Q2-9XTM"},
      {"%{mode}note", "bump"},
      {"100%%", "100%"},
  };
  for (const auto& r : rows) EXPECT_EQ(line(r.spec), r.want) << r.spec;
  unsetenv("TZ");
  tzset();
}

TEST(LogFormat, Modifiers) {
  EXPECT_EQ(line("[%8tr]"), "[      87]");
  EXPECT_EQ(line("[%-8tr]"), "[87      ]");
  EXPECT_EQ(line("[%08tr]"), "[00000087]");
  EXPECT_EQ(line("[%-8Ss]"), "[TCP_MISS]");
  EXPECT_EQ(line("%.4rm%.3Ss"), "GETTCP");
  EXPECT_EQ(line("%\"{User-Agent}>h"), "\"Mozilla/5.0 (X11; Linux)\"");
  EXPECT_EQ(line("%\"ru"), "\"http://example.com/a b?q=\\\"x\\\"\"");
  EXPECT_EQ(line("%#ru"), "http%3A%2F%2Fexample.com%2Fa%20b%3Fq%3D%22x%22");
  EXPECT_EQ(line("%'{User-Agent}>h"), "Mozilla/5.0 (X11; Linux)");
  EXPECT_EQ(line("%[un"), "-");
  EXPECT_EQ(line("%>h{Referer}"), "http://ref.example/") << "the argument may follow the code";
}

TEST(LogFormat, NoValueCanAddAFieldOrALine) {
  Record r = sample();
  r.userAgent = "evil\r\n1796422333.000 0 10.0.0.1 TCP_MISS/200";
  r.refId = "a\tb";
  for (const char* spec : {"%{User-Agent}>h", "%'{User-Agent}>h", "%\"{User-Agent}>h", "%#{User-Agent}>h"}) {
    std::string out = line(spec, r);
    EXPECT_EQ(out.find('\n'), std::string::npos) << spec << ": " << out;
    EXPECT_EQ(out.find('\r'), std::string::npos) << spec << ": " << out;
  }
  EXPECT_EQ(line("%{ref}note", r), "a%09b");
}

TEST(LogFormat, EmptyValuesAreADash) {
  Record r;
  EXPECT_EQ(line("%>a %Ss %ru %mt %{reason}note %{Referer}>h", r), "- - - - - -");
  EXPECT_EQ(line("%03>Hs %<st", r), "000 0");
}

TEST(LogFormat, NamedFormats) {
  Record r = sample();
  EXPECT_EQ(line("squid", r),
            "1796422333.045     87 192.0.2.7 TCP_MISS/200 5120 GET http://example.com/a%20b?q=%22x%22 - "
            "HIER_DIRECT/198.51.100.9 text/html");
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(line("combined", r),
            "192.0.2.7 - - [04/Dec/2026:22:12:13 +0000] \"GET http://example.com/a%20b?q=%22x%22 HTTP/1.0\" 200 5120 "
            "\"http://ref.example/\" \"Mozilla/5.0%20(X11;%20Linux)\" TCP_MISS:HIER_DIRECT");
  unsetenv("TZ");
  tzset();
  EXPECT_EQ(line("sekisho", r).substr(line("squid", r).size()), " reason=reputation_block ref=K7Q2-9XTM mode=bump");
  EXPECT_FALSE(LineFormat::named("apache"));
  ASSERT_TRUE(LineFormat::named("squid"));
  EXPECT_EQ(line(std::string(*LineFormat::named("squid")), r), line("squid", r));
}

TEST(LogFormat, RefusesWhatItCannotPrintWithTheColumn) {
  EXPECT_EQ(refusal("%ts %xx").substr(0, 9), "column 5:");
  EXPECT_NE(refusal("%ts %xx").find("\"%xx\""), std::string::npos) << refusal("%ts %xx");
  EXPECT_NE(refusal("%{Cookie}>h").find("\"Cookie\" is not kept"), std::string::npos);
  EXPECT_NE(refusal("%>h").find("needs a field name"), std::string::npos);
  EXPECT_NE(refusal("%{password}note").find("no annotation"), std::string::npos);
  EXPECT_NE(refusal("%note").find("needs a name"), std::string::npos);
  EXPECT_NE(refusal("%{x}ts").find("takes no {argument}"), std::string::npos);
  EXPECT_NE(refusal("%{Referer>h").find("without '}'"), std::string::npos);
  EXPECT_NE(refusal("%ts%").find("column 4"), std::string::npos);
  EXPECT_NE(refusal("%5.rm").find("precision"), std::string::npos);
  EXPECT_NE(refusal("a\nb").find("control character"), std::string::npos);
  EXPECT_FALSE(LineFormat::compile(""));
}
