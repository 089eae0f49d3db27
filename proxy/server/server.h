// The proxy process: workers (one event loop per core), the main thread's signal handling
// (SIGHUP reload, SIGTERM/SIGINT drain and exit, SIGUSR1 log reopen) and the admin listener.
#pragma once
#include <memory>
#include <string>

#include "proxy/base/result.h"
#include "proxy/config/config.h"

namespace sekisho::server {

struct RunOptions {
  std::string configPath;  // "" = built-in defaults (no file)
};

// Runs until SIGTERM/SIGINT; returns the process exit code. Start-up errors are returned
// before any thread starts.
int run(config::ConfigPtr cfg, const RunOptions& opts);

}  // namespace sekisho::server
