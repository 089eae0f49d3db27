#include "proxy/base/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/time.h>
#include <unistd.h>

namespace sekisho::log {
namespace {
std::atomic<int> gLevel{int(Level::Info)};
const char* name(Level l) {
  switch (l) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
  }
  return "?";
}
void vwrite(const char* level, const char* fmt, va_list ap) {
  char buf[2048];
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  gmtime_r(&tv.tv_sec, &t);
  int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ sekisho[%d] %s: ", t.tm_year + 1900,
                   t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, int(tv.tv_usec / 1000), int(getpid()),
                   level);
  int m = vsnprintf(buf + n, sizeof buf - size_t(n) - 1, fmt, ap);
  size_t len = size_t(n) + (m < 0 ? 0 : std::min(size_t(m), sizeof buf - size_t(n) - 2));
  buf[len++] = '\n';
  // One write(2) per line so lines from several threads never interleave.
  ssize_t w = ::write(2, buf, len);
  (void)w;
}
}  // namespace

void setLevel(Level level) { gLevel.store(int(level), std::memory_order_relaxed); }
bool enabled(Level level) { return int(level) >= gLevel.load(std::memory_order_relaxed); }

void write(Level level, const char* fmt, ...) {
  if (!enabled(level)) return;
  va_list ap;
  va_start(ap, fmt);
  vwrite(name(level), fmt, ap);
  va_end(ap);
}

std::atomic<uint64_t> gBugs{0};
void bug(const char* file, int line, const char* fmt, ...) {
  gBugs.fetch_add(1, std::memory_order_relaxed);
  char where[256];
  snprintf(where, sizeof where, "BUG at %s:%d", file, line);
  va_list ap;
  va_start(ap, fmt);
  vwrite(where, fmt, ap);
  va_end(ap);
#ifndef NDEBUG
  abort();
#endif
}

}  // namespace sekisho::log
