// Configuration: one immutable Config built from YAML (or the built-in defaults). Workers hold a
// std::shared_ptr<const Config>; a reload builds a new one and swaps the pointer. No other
// component reads YAML.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/base/result.h"
#include "proxy/net/address.h"

namespace sekisho::config {

using Millis = std::chrono::milliseconds;

enum class OnError : uint8_t { Open, Closed };
enum class Sensitivity : uint8_t { Low, Medium, High };
enum class SandboxMode : uint8_t { Hold, Learn };

struct ListSpec {           // reputation.lists[]
  std::string file;         // resolved relative to the config file's directory
  std::string format = "domains";
  std::string category = "malware";
};

struct Timeouts {
  Millis requestHeader{10'000};  // whole request head must arrive within this (slowloris)
  Millis clientIdle{60'000};     // keep-alive client between requests
  Millis connect{10'000};        // upstream TCP connect (per attempt)
  Millis firstByte{30'000};      // request sent -> first response byte, then 504
  Millis idle{120'000};          // no progress in either direction while relaying a body
  Millis tunnelIdle{600'000};    // CONNECT tunnel with no bytes either way
  Millis upstreamIdle{30'000};   // pooled idle upstream connection kept this long
  Millis shutdown{30'000};       // SIGTERM: drain in-flight requests up to this long
};

struct Limits {
  size_t maxRequestLine = 8192;
  size_t maxHeadBytes = 65536;
  size_t maxHeaders = 100;
  size_t maxConnections = 20000;     // per worker; past this, new connections are refused
  size_t maxConnectionsPerClient = 0;  // per client address, across workers; 0: no limit
  size_t maxIdleUpstream = 1024;     // per worker, across all origins
  size_t maxIdleUpstreamPerHost = 256;
  size_t bufferBytes = 256 * 1024;   // per direction high-water mark before reads pause
};

struct Config {
  std::string sourceFile;  // "" when running on built-in defaults
  std::string baseDir;     // relative paths are resolved against this

  std::vector<net::SocketAddr> listen;   // default 127.0.0.1:3128
  unsigned workers = 0;                  // resolved: "auto" -> number of online CPUs (>= 1)
  net::CidrSet allowClients;             // default loopback + RFC 1918
  std::vector<net::PortRange> connectPorts;  // default [443]
  std::vector<net::PortRange> httpPorts;     // plain-HTTP destination ports; default 80, 443, 1025-65535
  std::map<std::string, net::SocketAddr> resolve;  // lower-case host -> address (port 0)
  std::string visibleHostname;           // in Via and pages; default gethostname()

  struct {
    std::string cert = "ca.crt", key = "ca.key", chain;  // paths resolved against baseDir
  } ca;
  struct {
    bool intercept = true;
    std::vector<std::string> noIntercept;  // "host" or "*.domain"
    std::string upstreamCaFile;
    Millis rememberFor{3'600'000};  // client-certificate and pinned hosts stay tunnelled this long
    bool http2 = true;  // offer h2 to intercepted clients (translated; h2 upstream when the origin chooses it)
    std::string leafCacheDir;       // "" = off; else minted leaves persist there (resolved against baseDir)
    size_t leafCacheEntries = 10000;  // minted leaves kept in memory (and on disk)
  } tls;
  struct {
    std::string store = "embedded";  // "embedded" or "redis://host:port/db"
    std::vector<ListSpec> lists;
    Sensitivity sensitivity = Sensitivity::Medium;
    OnError onError = OnError::Open;
    std::map<std::string, std::string> categoryActions;  // category -> "block" | "allow" | "log"
    Millis deadline{50};                  // Redis store: per-lookup deadline, then on_error
    size_t cacheEntries = 100000;         // Redis store: per-worker cache of answers
    Millis cacheTtl{60'000};              // Redis store: how long a cached answer is used
  } reputation;
  struct {
    std::string url;
    SandboxMode mode = SandboxMode::Hold;
  } sandbox;
  struct {
    std::string access = "access.log";  // "" turns the access log off; "-" is stdout
    // "json", a named line format ("squid", "combined", "sekisho") or a Squid logformat string
    // (proxy/log/logformat.h); checked at load.
    std::string format = "squid";
    std::string level = "info";         // debug | info | warn | error (diagnostics on stderr)
  } log;
  struct {
    std::string listenText = "127.0.0.1:3129";  // "" turns the admin listener off
    std::optional<net::SocketAddr> listen;
  } admin;
  struct {
    std::vector<std::string> direct;   // extra names sent DIRECT by /proxy.pac ("host" or "*.domain")
    std::vector<std::string> proxies;  // "host:port" list for PROXY fail-over; default: this listener
  } pac;
  Timeouts timeouts;
  Limits limits;
};

using ConfigPtr = std::shared_ptr<const Config>;

// Built-in defaults (what runs when there is no file at all).
ConfigPtr defaults();

// Loads and validates a YAML file. Errors are ErrKind::Config with detail
// "FILE:LINE: key.path: what is wrong, what is expected" (one error: the first found).
Result<ConfigPtr> loadFile(const std::string& path);
// Same from text; `name` stands in for the file name in errors and baseDir is the cwd.
Result<ConfigPtr> loadString(const std::string& text, const std::string& name);

}  // namespace sekisho::config
