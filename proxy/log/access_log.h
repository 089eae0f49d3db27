// The access log: one line per request or tunnel, in a Squid logformat (logformat.h: Squid's
// native ten fields by default, which Calamaris and SARG read unchanged) or JSON lines. Loop threads only fill a record and
// hand it over; formatting and file writes happen on the log's own thread.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "proxy/base/result.h"
#include "proxy/log/record.h"

namespace sekisho::accesslog {

// Squid native: "%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt", ten fields for
// every line, refusals included. Values are percent-encoded where they would shift a field.
std::string formatSquid(const Record& r);
// One JSON object per line (strings escaped per RFC 8259): the fields of Record up to refId.
std::string formatJson(const Record& r);

class AccessLog {
 public:
  // path "" -> disabled (submit() drops records cheaply); "-" -> stdout. `format`: "json", or
  // what LineFormat::compile takes.
  static Result<std::unique_ptr<AccessLog>> open(const std::string& path, const std::string& format);
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
