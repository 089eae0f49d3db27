// `sekisho`: the proxy and its command-line tools.
//   sekisho [--config FILE]            run the proxy (sekisho.yaml in the cwd, else built-in defaults)
//   sekisho check-config [--config] FILE   validate a configuration and exit
//   sekisho --version | --help
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ca/ca.h"
#include "reputation/cli.h"
#include "version.h"
#include "proxy/config/config.h"
#include "proxy/server/server.h"

using namespace sekisho;

namespace {

void usage(FILE* f) {
  fprintf(f,
          "usage: sekisho [--config FILE]              run the proxy\n"
          "       sekisho check-config [--config] FILE validate a configuration file\n"
          "       sekisho [--config FILE] ca init [--rsa 3072] [--name CN] [--permit-dns D]...\n"
          "       sekisho [--config FILE] ca export [--der]   the CA certificate to stdout\n"
          "       sekisho [--config FILE] feed import --format F --category C --source NAME [--delta] FILE|DIR|URL\n"
          "       sekisho [--config FILE] lookup URL     the verdict and the rules that decided it\n"
          "       sekisho --version\n"
          "\n"
          "With no --config, sekisho.yaml in the working directory is used if present;\n"
          "otherwise the proxy runs on built-in defaults (127.0.0.1:3128, loopback and\n"
          "private networks allowed, CONNECT to port 443 only).\n");
}

bool fileExists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// The configuration the server and every subcommand use: --config FILE, else ./sekisho.yaml,
// else the built-in defaults. Prints the error and returns null when the file is bad;
// `path` becomes the file actually used ("" for defaults).
config::ConfigPtr loadConfig(std::string& path, bool given) {
  if (!given && fileExists("sekisho.yaml")) path = "sekisho.yaml";
  if (path.empty()) return config::defaults();
  auto loaded = config::loadFile(path);
  if (!loaded) {
    fprintf(stderr, "%s\n", loaded.error().detail.c_str());
    return nullptr;
  }
  return *loaded;
}

int checkConfig(const std::string& path) {
  auto cfg = config::loadFile(path);
  if (!cfg) {
    fprintf(stderr, "%s\n", cfg.error().detail.c_str());
    return 1;
  }
  printf("%s: OK (%zu listener%s, %u workers)\n", path.c_str(), (*cfg)->listen.size(),
         (*cfg)->listen.size() == 1 ? "" : "s", (*cfg)->workers);
  return 0;
}

// glibc hands freed memory back to the kernel once 128 KiB lie free at the top of a heap. A body
// streaming through a worker allocates and frees its buffers in that range, so every few records
// paid an madvise and then page faults to touch the memory again (1,670 faults and a third of
// the CPU per intercepted 10 MiB object). Up to 8 MiB per arena stays free; blocks below 4 MiB come
// from the heap (setting the first turns off glibc's moving mmap threshold, which would
// otherwise send every 128 KiB read buffer to mmap).
void tuneMalloc() {
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
}
}  // namespace

int main(int argc, char** argv) {
  tuneMalloc();
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string configPath;
  bool configGiven = false;
  std::string command;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--version" || a == "-V") {
      printf("sekisho %s\n", SEKISHO_VERSION);
      return 0;
    }
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    }
    if (a == "--config" || a == "-c") {
      if (i + 1 >= args.size()) {
        fprintf(stderr, "sekisho: --config needs a file name\n");
        return 2;
      }
      configPath = args[++i];
      configGiven = true;
      continue;
    }
    if (a.rfind("--config=", 0) == 0) {
      configPath = a.substr(9);
      configGiven = true;
      continue;
    }
    if (command.empty() && a.size() && a[0] != '-') {
      command = a;
      continue;
    }
    rest.push_back(a);
  }

  if (command == "check-config") {
    if (!rest.empty()) configPath = rest.front();
    if (configPath.empty()) {
      fprintf(stderr, "sekisho: check-config needs a file name\n");
      return 2;
    }
    return checkConfig(configPath);
  }
  if (command == "ca" || command == "feed" || command == "lookup") {
    // Subcommands work on the same files and stores as the server with the same --config.
    config::ConfigPtr cfg = loadConfig(configPath, configGiven);
    if (!cfg) return 1;
    if (command == "lookup") return reputation::lookupCommand(cfg->baseDir, cfg->reputation.store, rest);
    if (command == "feed") {
      if (rest.empty() || rest.front() != "import") {
        fprintf(stderr, "usage: sekisho [--config FILE] feed import --format F --category C --source NAME [--delta] FILE|DIR|URL\n");
        return 2;
      }
      return reputation::feedImportCommand(cfg->baseDir, cfg->reputation.store,
                                               std::vector<std::string>(rest.begin() + 1, rest.end()));
    }
    std::string sub = rest.empty() ? "" : rest.front();
    std::vector<std::string> subArgs(rest.empty() ? rest.end() : rest.begin() + 1, rest.end());
    if (sub == "init") return ca::caInitCommand(cfg->ca.cert, cfg->ca.key, subArgs);
    if (sub == "export") {
      bool der = false;
      for (const auto& a : subArgs) {
        if (a == "--der") {
          der = true;
        } else {
          fprintf(stderr, "sekisho: ca export: unknown option '%s' (expected --der)\n", a.c_str());
          return 2;
        }
      }
      return ca::caExportCommand(cfg->ca.cert, der);
    }
    fprintf(stderr, "usage: sekisho [--config FILE] ca init [--rsa 3072] [--name CN] [--org O] [--permit-dns DOMAIN]...\n"
                    "       sekisho [--config FILE] ca export [--der]\n");
    return 2;
  }
  if (!command.empty() && command != "run") {
    fprintf(stderr, "sekisho: unknown command '%s'\n", command.c_str());
    usage(stderr);
    return 2;
  }
  if (!rest.empty()) {
    fprintf(stderr, "sekisho: unexpected argument '%s'\n", rest.front().c_str());
    usage(stderr);
    return 2;
  }

  config::ConfigPtr cfg = loadConfig(configPath, configGiven);
  if (!cfg) return 1;
  return server::run(cfg, server::RunOptions{configPath});
}
