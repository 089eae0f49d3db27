#include "proxy/log/access_log.h"
#include "proxy/log/logformat.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace sekisho;
using namespace sekisho::accesslog;
namespace fs = std::filesystem;

namespace {

Record exampleRecord() {
  Record r;
  r.startEpoch = 1764090000.123;
  r.elapsedMs = 125;
  r.client = "127.0.0.1";
  r.squidCode = "TCP_MISS";
  r.status = 200;
  r.bytesToClient = 1234;
  r.bytesFromClient = 321;
  r.method = "GET";
  r.url = "http://example.com/";
  r.user = "-";
  r.hierarchy = "HIER_DIRECT";
  r.peer = "93.184.216.34";
  r.contentType = "text/html";
  r.mode = "http";
  return r;
}

std::vector<std::string> splitSpaces(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

std::vector<std::string> readLines(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sekisho-accesslog-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Polls `done` until it holds or 10 s pass (readiness, not a fixed sleep).
bool waitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::unique_ptr<AccessLog> openOrDie(const std::string& path,
                                     const std::string& fmt = "squid") {
  auto log = AccessLog::open(path, fmt);
  if (!log) {
    ADD_FAILURE() << log.error().detail;
    return nullptr;
  }
  return std::move(*log);
}

}  // namespace

// ----- Squid native format -------------------------------------------------------------------

TEST(SquidFormat, MatchesSquidNativeLineByteForByte) {
  EXPECT_EQ(formatSquid(exampleRecord()),
            "1764090000.123    125 127.0.0.1 TCP_MISS/200 1234 GET http://example.com/ - "
            "HIER_DIRECT/93.184.216.34 text/html");
}

TEST(SquidFormat, PadsTimeAndElapsedAndStatusLikeSquid) {
  Record r = exampleRecord();
  r.startEpoch = 5.007;
  r.elapsedMs = 1234567;
  r.status = 0;
  r.squidCode = "NONE";
  r.bytesToClient = 0;
  EXPECT_EQ(formatSquid(r),
            "         5.007 1234567 127.0.0.1 NONE/000 0 GET http://example.com/ - "
            "HIER_DIRECT/93.184.216.34 text/html");
}

TEST(SquidFormat, RoundsMillisecondsWithCarryIntoSeconds) {
  Record r = exampleRecord();
  r.startEpoch = 1764090000.9996;
  EXPECT_EQ(formatSquid(r).substr(0, 14), "1764090001.000");
  r.startEpoch = -3;
  EXPECT_EQ(formatSquid(r).substr(0, 14), "         0.000");
}

TEST(SquidFormat, EmptyTokensBecomeDash) {
  Record r;
  r.startEpoch = 1764090000;
  r.status = 403;
  EXPECT_EQ(formatSquid(r), "1764090000.000      0 - -/403 0 - - - -/- -");
}

TEST(SquidFormat, PercentEncodesSpacesAndControlCharactersInEveryToken) {
  Record r = exampleRecord();
  r.url = "http://a.example/p q\r\nFAKE 1 2\t\x01\x7f";
  r.user = "evil user";
  r.method = "G ET";
  r.contentType = "text/html; charset=utf-8";
  r.client = "1.2.3.4\n";
  r.peer = "x y";
  r.squidCode = "TCP MISS";
  r.hierarchy = "HIER\vDIRECT";
  std::string line = formatSquid(r);
  EXPECT_EQ(line,
            "1764090000.123    125 1.2.3.4%0A TCP%20MISS/200 1234 G%20ET "
            "http://a.example/p%20q%0D%0AFAKE%201%202%09%01%7F evil%20user "
            "HIER%0BDIRECT/x%20y text/html;%20charset=utf-8");
  EXPECT_EQ(splitSpaces(line).size(), 10u);
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(SquidFormat, PercentEncodesNonAsciiBytesAndKeepsExistingEscapes) {
  Record r = exampleRecord();
  r.url = "http://example.com/a%20b/\xE6\x97\xA5";
  EXPECT_EQ(splitSpaces(formatSquid(r))[6], "http://example.com/a%20b/%E6%97%A5");
}

// Squid's readers (Calamaris, SARG) count fields: a refusal is ten fields like any other line.
TEST(SquidFormat, RefusalsHaveTheTenFieldsOnly) {
  Record r = exampleRecord();
  r.squidCode = "TCP_DENIED";
  r.status = 403;
  r.reason = "client_not_allowed";
  r.refId = "K7Q2-9XTM";
  EXPECT_EQ(formatSquid(r),
            "1764090000.123    125 127.0.0.1 TCP_DENIED/403 1234 GET http://example.com/ - "
            "HIER_DIRECT/93.184.216.34 text/html");
  EXPECT_EQ(splitSpaces(formatSquid(r)).size(), 10u);
}

// The sekisho format: the ten fields, then reason, ref and mode, always present.
TEST(SekishoFormat, AppendsReasonReferenceAndMode) {
  auto f = LineFormat::compile("sekisho");
  ASSERT_TRUE(f) << f.error().detail;
  Record r = exampleRecord();
  r.squidCode = "TCP_DENIED";
  r.status = 403;
  r.reason = "client_not_allowed";
  r.refId = "K7Q2-9XTM";
  std::string out;
  f->append(out, r);
  EXPECT_EQ(out,
            "1764090000.123    125 127.0.0.1 TCP_DENIED/403 1234 GET http://example.com/ - "
            "HIER_DIRECT/93.184.216.34 text/html reason=client_not_allowed ref=K7Q2-9XTM mode=http");
  r.reason.clear();
  r.refId.clear();
  out.clear();
  f->append(out, r);
  EXPECT_EQ(splitSpaces(out).size(), 13u);
  EXPECT_NE(out.find(" reason=- ref=- mode=http"), std::string::npos) << out;
}

TEST(SekishoFormat, ReasonAndReferenceCannotForgeFields) {
  auto f = LineFormat::compile("sekisho");
  ASSERT_TRUE(f);
  Record r = exampleRecord();
  r.reason = "x ref=FORGED extra";
  r.refId = "a b\nc";
  std::string out;
  f->append(out, r);
  auto fields = splitSpaces(out);
  ASSERT_EQ(fields.size(), 13u) << out;
  EXPECT_EQ(fields[10], "reason=x%20ref=FORGED%20extra");
  EXPECT_EQ(fields[11], "ref=a%20b%0Ac");
  EXPECT_EQ(out.find('\n'), std::string::npos);
}

// ----- JSON ----------------------------------------------------------------------------------

TEST(JsonFormat, WritesEveryRecordField) {
  Record r = exampleRecord();
  r.reason = "dns_failed";
  r.refId = "AB12";
  EXPECT_EQ(formatJson(r),
            R"({"startEpoch":1764090000.123,"elapsedMs":125,"client":"127.0.0.1",)"
            R"("squidCode":"TCP_MISS","status":200,"bytesToClient":1234,"bytesFromClient":321,)"
            R"("method":"GET","url":"http://example.com/","user":"-","hierarchy":"HIER_DIRECT",)"
            R"("peer":"93.184.216.34","contentType":"text/html","mode":"http",)"
            R"("reason":"dns_failed","refId":"AB12"})");
}

TEST(JsonFormat, EscapesQuotesBackslashesAndControlCharacters) {
  Record r;
  r.url = std::string("a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk/") + std::string(1, '\0') + "z";
  std::string j = formatJson(r);
  EXPECT_NE(j.find(R"("url":"a\"b\\c\nd\re\tf\bg\fh\u0001i\u001fj\u007fk/\u0000z")"), std::string::npos) << j;
}

TEST(JsonFormat, ReplacesInvalidUtf8AndKeepsValidMultibyteText) {
  Record r;
  r.user = "\xE6\x97\xA5\xE6\x9C\xAC";  // 日本, valid
  r.url =
      "a\xC0\xAF"
      "b\x80"
      "c\xED\xA0\x80"
      "d\xE3\x81"
      "e\xF5\x80\x80\x80"
      "f\xF0\x9F\x98\x80";
  std::string j = formatJson(r);
  EXPECT_NE(j.find("\"user\":\"\xE6\x97\xA5\xE6\x9C\xAC\""), std::string::npos);
  EXPECT_NE(j.find("\"url\":\"a\\ufffd\\ufffdb\\ufffdc\\ufffd\\ufffd\\ufffdd\\ufffd\\ufffde"
                   "\\ufffd\\ufffd\\ufffd\\ufffdf\xF0\x9F\x98\x80\""),
            std::string::npos)
      << j;
}

TEST(JsonFormat, KeepsEmptyStringsAndNegativeStatus) {
  Record r;
  r.status = -1;
  std::string j = formatJson(r);
  EXPECT_NE(j.find(R"("startEpoch":0.000,)"), std::string::npos);
  EXPECT_NE(j.find(R"("status":-1,)"), std::string::npos);
  EXPECT_NE(j.find(R"("client":"",)"), std::string::npos);
}

// ----- Writer --------------------------------------------------------------------------------

TEST(AccessLogWriter, EmptyPathDisablesTheLog) {
  auto log = openOrDie("");
  ASSERT_TRUE(log);
  EXPECT_FALSE(log->enabled());
  log->submit(exampleRecord());
  log->reopen();
  EXPECT_EQ(log->written(), 0u);
  EXPECT_EQ(log->dropped(), 0u);
}

TEST(AccessLogWriter, OpenFailureNamesThePath) {
  auto log = AccessLog::open("/nonexistent-sekisho-dir/access.log", "squid");
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().kind, ErrKind::Io);
  EXPECT_NE(log.error().detail.find("/nonexistent-sekisho-dir/access.log: cannot open: "), std::string::npos)
      << log.error().detail;
}

TEST(AccessLogWriter, CreatesTheFileWithMode0640AndAppends) {
  TempDir dir;
  fs::path p = dir / "access.log";
  { std::ofstream(p) << "existing line\n"; }
  mode_t old = umask(022);
  fs::path fresh = dir / "fresh.log";
  {
    auto log = openOrDie(fresh.string());
    ASSERT_TRUE(log);
  }
  umask(old);
  struct stat st {};
  ASSERT_EQ(stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  {
    auto log = openOrDie(p.string());
    ASSERT_TRUE(log);
    log->submit(exampleRecord());
  }
  auto lines = readLines(p);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "existing line");
  EXPECT_EQ(lines[1], formatSquid(exampleRecord()));
}

TEST(AccessLogWriter, DestructorDrainsEveryPendingRecord) {
  TempDir dir;
  fs::path p = dir / "access.log";
  {
    auto log = openOrDie(p.string(), "json");
    ASSERT_TRUE(log);
    for (int i = 0; i < 1000; ++i) {
      Record r = exampleRecord();
      r.elapsedMs = uint64_t(i);
      log->submit(std::move(r));
    }
  }
  auto lines = readLines(p);
  ASSERT_EQ(lines.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    Record r = exampleRecord();
    r.elapsedMs = uint64_t(i);
    ASSERT_EQ(lines[size_t(i)], formatJson(r));  // one whole object per line, in order
  }
}

TEST(AccessLogWriter, WritesEveryRecordFromManyProducersWithoutInterleaving) {
  TempDir dir;
  fs::path p = dir / "access.log";
  constexpr int kThreads = 8, kPerThread = 5000;
  uint64_t written = 0, dropped = 0;
  {
    auto log = openOrDie(p.string());
    ASSERT_TRUE(log);
    std::vector<std::thread> producers;
    for (int t = 0; t < kThreads; ++t) {
      producers.emplace_back([&log, t] {
        for (int i = 0; i < kPerThread; ++i) {
          Record r = exampleRecord();
          r.url = "http://example.com/t" + std::to_string(t) + "/" + std::to_string(i);
          log->submit(std::move(r));
        }
      });
    }
    for (auto& th : producers) th.join();
    ASSERT_TRUE(waitFor([&] { return log->written() == uint64_t(kThreads * kPerThread); }));
    written = log->written();
    dropped = log->dropped();
  }
  EXPECT_EQ(written, uint64_t(kThreads * kPerThread));
  EXPECT_EQ(dropped, 0u);
  auto lines = readLines(p);
  ASSERT_EQ(lines.size(), size_t(kThreads * kPerThread));
  std::set<std::string> urls;
  for (const auto& l : lines) {
    auto f = splitSpaces(l);
    ASSERT_EQ(f.size(), 10u) << l;
    urls.insert(f[6]);
  }
  EXPECT_EQ(urls.size(), size_t(kThreads * kPerThread));
}

// The writer is stuck on a FIFO nobody reads: memory must stay bounded, the excess is counted.
TEST(AccessLogWriter, DropsAndCountsRecordsPastThePendingBound) {
  TempDir dir;
  fs::path fifo = dir / "access.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(rd, 0);
  // At most one batch (<= the bound of 100,000) is in the writer's hands, at most the bound is
  // pending and the pipe holds ~1,500 short lines, so 260,000 submitted must drop over 50,000.
  constexpr uint64_t kSubmitted = 260'000;
  uint64_t written = 0, dropped = 0, linesRead = 0;
  {
    auto log = openOrDie(fifo.string());
    ASSERT_TRUE(log);
    for (uint64_t i = 0; i < kSubmitted; ++i) {
      Record r;
      r.status = 200;
      log->submit(std::move(r));
    }
    EXPECT_GE(log->dropped(), 50'000u);
    // Now drain the FIFO so the writer can finish; the destructor waits for it.
    fcntl(rd, F_SETFL, 0);
    std::thread reader([&] {
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(rd, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t k = 0; k < n; ++k) linesRead += buf[k] == '\n';
      }
    });
    ASSERT_TRUE(waitFor([&] { return log->written() + log->dropped() == kSubmitted; }));
    written = log->written();
    dropped = log->dropped();
    log.reset();  // closes the write end: the reader sees EOF
    reader.join();
  }
  ::close(rd);
  EXPECT_GE(dropped, 50'000u);
  EXPECT_EQ(written + dropped, kSubmitted);
  EXPECT_EQ(linesRead, written);
}

TEST(AccessLogWriter, ReopenAfterRenameSendsNewLinesToTheNewFile) {
  TempDir dir;
  fs::path p = dir / "access.log";
  fs::path rotated = dir / "access.log.1";
  auto record = [](const char* url) {
    Record r = exampleRecord();
    r.url = url;
    return r;
  };
  {
    auto log = openOrDie(p.string());
    ASSERT_TRUE(log);
    log->submit(record("http://before/1"));
    log->submit(record("http://before/2"));
    ASSERT_TRUE(waitFor([&] { return log->written() == 2; }));

    fs::rename(p, rotated);
    log->submit(record("http://between/"));  // after the rename, before the reopen: old file
    ASSERT_TRUE(waitFor([&] { return log->written() == 3; }));
    mode_t old = umask(022);
    log->reopen();
    log->submit(record("http://after/1"));
    log->submit(record("http://after/2"));
    ASSERT_TRUE(waitFor([&] { return log->written() == 5; }));
    umask(old);
  }
  auto old = readLines(rotated);
  auto fresh = readLines(p);
  ASSERT_EQ(old.size(), 3u);
  EXPECT_EQ(splitSpaces(old[0])[6], "http://before/1");
  EXPECT_EQ(splitSpaces(old[2])[6], "http://between/");
  ASSERT_EQ(fresh.size(), 2u);
  EXPECT_EQ(splitSpaces(fresh[0])[6], "http://after/1");
  EXPECT_EQ(splitSpaces(fresh[1])[6], "http://after/2");
  struct stat st {};
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);  // the reopened file gets the same mode
}

TEST(AccessLogWriter, ReopenThatFailsKeepsWritingToThePreviousFile) {
  TempDir dir;
  fs::path sub = dir / "logs";
  fs::create_directory(sub);
  fs::path p = sub / "access.log";
  fs::path moved = dir / "moved.log";
  {
    auto log = openOrDie(p.string());
    ASSERT_TRUE(log);
    log->submit(exampleRecord());
    ASSERT_TRUE(waitFor([&] { return log->written() == 1; }));
    fs::rename(p, moved);
    fs::remove(sub);  // the path cannot be created again
    log->reopen();
    log->submit(exampleRecord());
  }
  EXPECT_EQ(readLines(moved).size(), 2u);
}
