// Access log: JSON lines (Squid logformats are logformat.cc's) and the writer thread.
//
// Threading: loop threads call submit(), which only moves the record into `pending` under a
// mutex (no formatting, no I/O). The writer thread swaps the whole vector out, formats the batch
// into one buffer and writes it with as few write(2) calls as the kernel allows. The file
// descriptor belongs to the writer thread alone once the thread has started.
#include "proxy/log/access_log.h"
#include "proxy/log/logformat.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "proxy/base/log.h"

namespace sekisho::accesslog {
namespace {

// Past this many records waiting for the writer (it is far behind, e.g. a stalled disk), new
// records are dropped and counted: memory stays bounded and loop threads never wait on I/O.
constexpr size_t kMaxPending = 100'000;
// A batch buffer larger than this is written out before formatting continues.
constexpr size_t kFlushBytes = 1 << 20;
constexpr int kFileMode = 0640;
constexpr int kOpenFlags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;

constexpr char kHexLower[] = "0123456789abcdef";

// Milliseconds since the epoch, rounded; negative or non-finite times become 0.
uint64_t epochMillis(double epoch) {
  if (!std::isfinite(epoch) || epoch <= 0) return 0;
  return static_cast<uint64_t>(std::llround(epoch * 1000.0));
}

// Length of the valid UTF-8 sequence at s[i] (RFC 3629 §4: no overlongs, no surrogates, nothing
// above U+10FFFF), or 0 when the bytes there are not one.
size_t utf8SequenceLength(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = at(i);
  size_t left = s.size() - i;
  auto cont = [&](size_t k) { return (at(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && at(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && at(i + 1) >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && at(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && at(i + 1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// A JSON string literal (RFC 8259 §7): quotes, backslash and all control characters escaped,
// DEL escaped too; each byte that does not start a valid UTF-8 sequence becomes U+FFFD, so the
// line is always valid UTF-8 JSON whatever the client sent.
void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out += kHexLower[c >> 4];
            out += kHexLower[c & 0xF];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    size_t len = utf8SequenceLength(s, i);
    if (len == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  out += '"';
}

void appendJsonField(std::string& out, const char* key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":";
  appendJsonString(out, value);
}

void appendJsonNumber(std::string& out, const char* key, uint64_t value, bool first = false) {
  if (!first) out += ',';
  out += '"';
  out += key;
  out += "\":";
  out += std::to_string(value);
}

void appendJson(std::string& out, const Record& r) {
  uint64_t ms = epochMillis(r.startEpoch);
  char num[48];
  int n = std::snprintf(num, sizeof num, "{\"startEpoch\":%" PRIu64 ".%03u", ms / 1000,
                        static_cast<unsigned>(ms % 1000));
  out.append(num, static_cast<size_t>(n));
  appendJsonNumber(out, "elapsedMs", r.elapsedMs);
  appendJsonField(out, "client", r.client);
  appendJsonField(out, "squidCode", r.squidCode);
  out += ",\"status\":";
  out += std::to_string(r.status);
  appendJsonNumber(out, "bytesToClient", r.bytesToClient);
  appendJsonNumber(out, "bytesFromClient", r.bytesFromClient);
  appendJsonField(out, "method", r.method);
  appendJsonField(out, "url", r.url);
  appendJsonField(out, "user", r.user);
  appendJsonField(out, "hierarchy", r.hierarchy);
  appendJsonField(out, "peer", r.peer);
  appendJsonField(out, "contentType", r.contentType);
  appendJsonField(out, "mode", r.mode);
  appendJsonField(out, "reason", r.reason);
  appendJsonField(out, "refId", r.refId);
  out += '}';
}

int openLogFile(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), kOpenFlags, kFileMode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

// The line, without the trailing newline (the writer adds it).
std::string formatSquid(const Record& r) {
  static const LineFormat squid = *LineFormat::compile("squid");
  std::string out;
  out.reserve(160 + r.url.size());
  squid.append(out, r);
  return out;
}

// The object, without the trailing newline (the writer adds it). Keys are the Record field names.
std::string formatJson(const Record& r) {
  std::string out;
  out.reserve(320 + r.url.size());
  appendJson(out, r);
  return out;
}

struct AccessLog::Impl {
  // Fixed after open().
  std::string path;  // "" disabled, "-" stdout
  bool json = false;
  LineFormat line;  // unless json
  bool enabled = false;

  int fd = -1;  // owned by the writer thread once it runs; closed at the end unless stdout

  std::mutex mu;
  std::condition_variable wake;
  std::vector<Record> pending;   // guarded by mu; never above kMaxPending
  bool reopenRequested = false;  // guarded by mu; the writer reopens before its next batch
  bool stopping = false;         // guarded by mu; the writer drains `pending`, then exits

  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> written{0};
  bool writeFailing = false;  // writer thread only: warn once per failure streak, not per batch

  std::thread writer;

  void run();
  void reopenFile();
  bool writeAll(std::string_view data);
  void writeBatch(std::vector<Record>& batch, std::string& buf);
};

void AccessLog::Impl::run() {
  pthread_setname_np(pthread_self(), "sekisho-log");
  std::vector<Record> batch;
  std::string buf;
  for (;;) {
    bool doReopen = false;
    bool exiting = false;
    {
      std::unique_lock lk(mu);
      wake.wait(lk, [&] { return !pending.empty() || reopenRequested || stopping; });
      batch.swap(pending);
      doReopen = std::exchange(reopenRequested, false);
      exiting = stopping && batch.empty();
    }
    // Reopen first: records submitted after reopen() returned are in this batch or a later
    // one, so they land in the new file (rotation: rename, SIGUSR1, new lines go to the new file).
    if (doReopen) reopenFile();
    if (!batch.empty()) writeBatch(batch, buf);
    if (exiting) return;
  }
}

void AccessLog::Impl::writeBatch(std::vector<Record>& batch, std::string& buf) {
  buf.clear();
  uint64_t lines = 0;  // formatted into buf, not yet written
  auto flush = [&] {
    if (writeAll(buf))
      written.fetch_add(lines, std::memory_order_relaxed);
    else
      dropped.fetch_add(lines, std::memory_order_relaxed);
    buf.clear();
    lines = 0;
  };
  for (const Record& r : batch) {
    if (json)
      appendJson(buf, r);
    else
      line.append(buf, r);
    buf += '\n';
    ++lines;
    if (buf.size() >= kFlushBytes) flush();
  }
  if (lines) flush();
  batch.clear();
  // Do not keep a huge buffer around after a burst.
  if (buf.capacity() > 4 * kFlushBytes) std::string().swap(buf);
}

bool AccessLog::Impl::writeAll(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!writeFailing)
        SLOG_ERROR("access log %s: write failed: %s; records are dropped until writes succeed", path.c_str(),
                   n < 0 ? std::strerror(errno) : "wrote nothing");
      writeFailing = true;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  if (writeFailing) SLOG_INFO("access log %s: writing again", path.c_str());
  writeFailing = false;
  return true;
}

void AccessLog::Impl::reopenFile() {
  if (path == "-") return;  // stdout is not ours to rotate
  int nfd = openLogFile(path);
  if (nfd < 0) {
    // Keep writing to the old descriptor (the renamed file) rather than losing lines.
    SLOG_ERROR("access log %s: reopen failed: %s; still writing to the previous file", path.c_str(),
               std::strerror(errno));
    return;
  }
  ::close(fd);
  fd = nfd;
  SLOG_INFO("access log %s: reopened", path.c_str());
}

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& path, const std::string& format) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->json = format == "json";
  if (!impl->json) {
    auto f = LineFormat::compile(format);
    if (!f) return fail(ErrKind::Config, Side::Config, "access log format: " + f.error().detail);
    impl->line = std::move(*f);
  }
  if (path.empty()) return std::unique_ptr<AccessLog>(new AccessLog(std::move(impl)));

  if (path == "-") {
    impl->fd = STDOUT_FILENO;
  } else {
    impl->fd = openLogFile(path);
    if (impl->fd < 0)
      return fail(ErrKind::Io, Side::Internal,
                  "access log " + path + ": cannot open: " + std::strerror(errno));
  }
  impl->enabled = true;
  impl->pending.reserve(1024);
  Impl* raw = impl.get();
  try {
    impl->writer = std::thread([raw] { raw->run(); });
  } catch (const std::system_error& e) {
    if (path != "-") ::close(impl->fd);
    return fail(ErrKind::Internal, Side::Internal,
                "access log " + path + ": cannot start the writer thread: " + e.what());
  }
  return std::unique_ptr<AccessLog>(new AccessLog(std::move(impl)));
}

AccessLog::AccessLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AccessLog::~AccessLog() {
  if (!impl_->enabled) return;
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_one();
  impl_->writer.join();
  if (impl_->fd >= 0 && impl_->path != "-") ::close(impl_->fd);
}

bool AccessLog::enabled() const { return impl_->enabled; }

void AccessLog::submit(Record&& record) {
  if (!impl_->enabled) return;
  bool wasEmpty;
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->pending.size() >= kMaxPending) {
      impl_->dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    wasEmpty = impl_->pending.empty();
    impl_->pending.push_back(std::move(record));
  }
  // Only the first record of a batch needs to wake the writer; the rest ride along.
  if (wasEmpty) impl_->wake.notify_one();
}

// Not async-signal-safe (takes a mutex): call it from the loop's signal event, not a raw handler.
void AccessLog::reopen() {
  if (!impl_->enabled) return;
  {
    std::lock_guard lk(impl_->mu);
    impl_->reopenRequested = true;
  }
  impl_->wake.notify_one();
}

uint64_t AccessLog::dropped() const { return impl_->dropped.load(std::memory_order_relaxed); }
uint64_t AccessLog::written() const { return impl_->written.load(std::memory_order_relaxed); }

}  // namespace sekisho::accesslog
