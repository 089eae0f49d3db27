// The access log: one line per request or tunnel, in Squid's native format (so SARG- and
// Calamaris-style analysers read it unchanged) or JSON lines. Loop threads only fill a record and
// hand it over; formatting and file writes happen on the log's own thread.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "proxy/base/result.h"
#include "proxy/config/config.h"

namespace sekisho::accesslog {

struct Record {
  double startEpoch = 0;       // seconds since the epoch, when the request arrived (ms precision)
  uint64_t elapsedMs = 0;      // until the last byte was sent or the connection ended
  std::string client;          // client IP
  std::string squidCode;       // TCP_MISS, TCP_DENIED, TCP_TUNNEL, TCP_MISS_ABORTED, NONE, ...
  int status = 0;              // HTTP status sent to the client (0 when none was sent)
  uint64_t bytesToClient = 0;  // bytes written to the client, head included
  uint64_t bytesFromClient = 0;
  std::string method;          // as received; "-" when none
  std::string url;             // absolute URL or host:port for CONNECT
  std::string user;            // authenticated user, "-" for none
  std::string hierarchy;       // HIER_DIRECT or HIER_NONE
  std::string peer;            // upstream IP, "-" for none
  std::string contentType;     // "-" for none
  std::string mode;            // "http", "tunnel", "bump", "self" (pages about the proxy itself)
  std::string reason;          // why refused/failed, machine-readable ("client_not_allowed", ...); "" when fine
  std::string refId;           // reference id shown on the error/block page; "" when none
};

// Squid native: "%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt", then, only when
// the request was refused or failed, one more field: reason=<reason>[,ref=<refId>]. Tokens
// containing spaces are percent-encoded so the field count never shifts.
std::string formatSquid(const Record& r);
// One JSON object per line with every field of Record (strings escaped per RFC 8259).
std::string formatJson(const Record& r);

class AccessLog {
 public:
  // path "" -> disabled (submit() drops records cheaply); "-" -> stdout.
  static Result<std::unique_ptr<AccessLog>> open(const std::string& path, config::LogFormat format);
  ~AccessLog();  // flushes pending records and joins the writer thread

  bool enabled() const;
  // Thread-safe, never blocks on I/O. Past a bound of pending records (writer far behind),
  // records are dropped and counted rather than growing memory.
  void submit(Record&& record);
  // Reopens the file (log rotation, SIGUSR1); asynchronous, done by the writer thread.
  void reopen();
  uint64_t dropped() const;
  uint64_t written() const;

  struct Impl;
 private:
  explicit AccessLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sekisho::accesslog
