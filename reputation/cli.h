// `sekisho feed import` and `sekisho lookup`, for main.cc to call with the arguments after the
// subcommand name. Each prints to stdout/stderr and returns the process exit status.
// `store` is the config's reputation.store: "embedded" (files under <dataDir>/reputation/) or a
// redis:// URL; a `--store` option on the command line overrides it.
#pragma once
#include <string>
#include <vector>

namespace sekisho::reputation {

// --format F --category C --source NAME [--score N] [--action block|allow|log] [--delta]
//   [--store embedded|redis://...] FILE|DIR|http(s)://URL
// A URL is downloaded first (libcurl, TLS verified, 1 GiB cap). --delta adds to the source
// instead of replacing it (Redis store only).
// Exit 0 on success, 1 when the import failed, 2 on a usage error.
int feedImportCommand(const std::string& dataDir, const std::string& store, const std::vector<std::string>& args);
int feedImportCommand(const std::string& dataDir, const std::vector<std::string>& args);  // store "embedded"

// [--sensitivity low|medium|high] [--ip ADDR]... [--store embedded|redis://...] URL|HOST
// Prints the verdict and the chain of rules. Exit 0 allow or log, 1 block, 2 usage/store error.
int lookupCommand(const std::string& dataDir, const std::string& store, const std::vector<std::string>& args);
int lookupCommand(const std::string& dataDir, const std::vector<std::string>& args);  // store "embedded"

}  // namespace sekisho::reputation
