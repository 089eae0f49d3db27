// Diagnostic log (stderr): one line per event, level and thread-safe. The access log is separate
// (proxy/log/access_log.h).
#pragma once
#include <cstdarg>

namespace sekisho::log {

enum class Level { Debug, Info, Warn, Error };
void setLevel(Level level);
bool enabled(Level level);
void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace sekisho::log

#define SLOG_DEBUG(...) \
  do { if (::sekisho::log::enabled(::sekisho::log::Level::Debug)) ::sekisho::log::write(::sekisho::log::Level::Debug, __VA_ARGS__); } while (0)
#define SLOG_INFO(...) ::sekisho::log::write(::sekisho::log::Level::Info, __VA_ARGS__)
#define SLOG_WARN(...) ::sekisho::log::write(::sekisho::log::Level::Warn, __VA_ARGS__)
#define SLOG_ERROR(...) ::sekisho::log::write(::sekisho::log::Level::Error, __VA_ARGS__)
// "Cannot happen" after start-up: logged and counted; fatal in debug builds.
#define SEKISHO_BUG(...) ::sekisho::log::bug(__FILE__, __LINE__, __VA_ARGS__)
namespace sekisho::log {
void bug(const char* file, int line, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
}
