// Downloading a feed by URL for `sekisho feed import URL` (libcurl easy interface: blocking, so
// for the CLI only, never on a proxy worker).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "proxy/base/result.h"

namespace sekisho::reputation {

struct FetchOptions {
  size_t maxBytes = size_t(1) << 30;  // a larger body is refused (checked while it arrives)
  long connectTimeoutSec = 30;
  long stallSec = 60;          // below 1 KiB/s for this long: give up
  long totalTimeoutSec = 3600;
  bool progress = false;  // a progress line on stderr (the CLI sets it on a TTY only)
  std::string caFile;     // empty: the system trust store
};

bool isFetchUrl(std::string_view s) noexcept;  // "http://..." or "https://..."

// Downloads `url` (http or https; TLS verified; up to 5 redirects, to http/https only; HTTP
// status >= 400 is an error) into a new file under `dir` and returns its path; the caller
// removes it. A failed download removes its partial file and says what failed.
Result<std::string> fetchToTempFile(const std::string& url, const std::string& dir, const FetchOptions& opts = {});

}  // namespace sekisho::reputation
