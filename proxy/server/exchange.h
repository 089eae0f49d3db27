// The data of one request on a client connection that more than one phase writes: what the
// access log will say of it (ExchangeRecord) and its origin connection (UpstreamLeg). Plain data
// with no behaviour: each phase's own state lives in the phase (relay.h, tunnel.h, bump.h,
// origin_handshake.h), never here.
#pragma once
#include <event2/bufferevent.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/handles.h"
#include "proxy/net/address.h"
#include "proxy/http/message.h"
#include "proxy/log/access_log.h"
#include "proxy/server/metrics.h"

namespace sekisho::server {

struct ExchangeRecord {
  double startEpoch = 0;
  uint64_t startMs = 0;
  uint64_t headBytesToClient = 0;
  int status = 0;
  Reason reason = Reason::None;
  std::string refId;            // set with every refusal; on the page and in the log
  std::string detail;
  const char* squidCode = "TCP_MISS";
  const char* mode = nullptr;   // access-log mode when not derived from squidCode ("bump")
  std::string contentType;
  bool respHeadSent = false;    // bytes of a response went to the client
  bool logged = false;
};

struct UpstreamLeg {
  std::vector<net::SocketAddr> addrs;  // what the name resolved to; tried in order (up to 3)
  size_t addrIndex = 0;
  net::SocketAddr dest;                // the address connected to (or to be)
  BevPtr up;                           // the origin side: plain, verified TLS, or an h2 channel
  bool upReused = false;               // `up` came from the pool
  bool retried = false;                // sent again after a reused connection died unanswered
  bool fdRetried = false;              // connecting again after making room for a descriptor
  bool upTls = false;                  // `up` is a verified TLS connection (intercepted requests)
  bool upH2 = false;                   // `up` is a channel to an HTTP/2 origin connection (h2_origin.h)
};

// The URL as the user knows it, for pages and the log: host:port for a CONNECT ([v6]:port); inside an
// intercepted connection (insideHost not empty) https://host[:port]/path of the origin the
// connection was opened for; else the request target as received.
std::string shownUrl(const http::RequestHead& req, std::string_view insideHost, uint16_t insidePort);

// A CONNECT's "200 Connection established", written to `client` and recorded in `rec`.
void answerConnect(bufferevent* client, ExchangeRecord& rec);

// The access-log line of an exchange (Squid's fields, or JSON: proxy/log): `url` as the user knows
// it, bytes counted by the phases, `nowMs` for the elapsed time.
accesslog::Record accessRecord(const ExchangeRecord& rec, const UpstreamLeg& leg, const http::RequestHead& req,
                               const std::string& client, std::string url, uint64_t nowMs, uint64_t toClient,
                               uint64_t fromClient);

}  // namespace sekisho::server
