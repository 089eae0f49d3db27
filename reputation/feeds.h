// Feed parsers: text in, normalised entries plus per-line errors out. Pure (no store, no I/O
// except the file helpers at the bottom). A bad line is counted and reported with its number and
// never aborts the rest; a feed that yields no entry at all is an error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/result.h"
#include "reputation/verdict.h"

namespace sekisho::reputation {

enum class Format : uint8_t {
  Domains,     // one host per line, '#' comments
  Hosts,       // hosts-file lines: "0.0.0.0 evil.example"
  Urlhaus,     // abuse.ch URLhaus CSV dump
  Threatfox,   // abuse.ch ThreatFox CSV dump
  Cidr,        // Spamhaus DROP: JSON lines or legacy "cidr ; SBLnnn"
  Squidguard,  // a UT1-style category directory with `domains` and `urls` files
};

Result<Format> parseFormat(std::string_view name);  // "domains", "hosts", ...
std::string_view formatName(Format f) noexcept;

struct FeedOptions {
  std::string category;  // required, validCategory()
  std::string source;    // required, validSourceName()
  int score = 100;       // for entries whose feed carries no score (ThreatFox does)
  Action action = Action::Block;
  int64_t now = 0;  // "date added" for entries without one; 0: the current time
  // Called now and then while parsing (bytes done, bytes total), for a progress line.
  std::function<void(size_t, size_t)> progress;
  // When set, entries go here as they are parsed instead of into FeedResult::entries.
  std::function<void(FeedEntry&&)> sink;
};

struct LineError {
  std::string file;  // squidguard: "domains" or "urls"; empty otherwise
  size_t line = 0;   // 1-based
  std::string reason;
};

struct FeedResult {
  std::string source, category;
  int score = 100;
  Action action = Action::Block;
  std::vector<FeedEntry> entries;  // empty when FeedOptions::sink took them
  size_t accepted = 0;             // entries produced (kept here or given to the sink)
  std::vector<LineError> errors;   // the first kMaxKeptErrors only; badLines counts them all
  size_t lines = 0;                // lines read, comments and blanks included
  size_t badLines = 0;
  size_t skipped = 0;  // well-formed lines we do not use (hash IOCs, localhost lines)
};

inline constexpr size_t kMaxKeptErrors = 1000;

Result<FeedResult> parseFeed(Format format, std::string_view text, const FeedOptions& opts);
Result<FeedResult> parseFeed(Format format, std::istream& in, const FeedOptions& opts);
// A file, or for Squidguard a directory holding `domains` and/or `urls`.
Result<FeedResult> parseFeedPath(Format format, const std::string& path, const FeedOptions& opts);

}  // namespace sekisho::reputation
