// One access-log record: what a loop thread hands to the log (access_log.h), and what a line
// format (logformat.h) prints fields of.
#pragma once
#include <cstdint>
#include <string>

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
  uint8_t versionMinor = 1;    // HTTP/1.<minor> of the request (an HTTP/2 stream's is 1.1 inside)
  std::string referer;         // the request's Referer, "" for none
  std::string userAgent;       // the request's User-Agent, "" for none
};


}  // namespace sekisho::accesslog
