// `sekisho feed import` and `sekisho lookup`, for main.cc to call with the arguments after the
// subcommand name. Each prints to stdout/stderr and returns the process exit status.
#pragma once
#include <string>
#include <vector>

namespace sekisho::reputation {

// --format F --category C --source NAME [--score N] [--action block|allow|log] FILE|DIR
// Exit 0 on success, 1 when the import failed, 2 on a usage error.
int feedImportCommand(const std::string& dataDir, const std::vector<std::string>& args);

// [--sensitivity low|medium|high] [--ip ADDR]... URL|HOST
// Prints the verdict and the chain of rules. Exit 0 allow or log, 1 block, 2 usage/store error.
int lookupCommand(const std::string& dataDir, const std::vector<std::string>& args);

}  // namespace sekisho::reputation
