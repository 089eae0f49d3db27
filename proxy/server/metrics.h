// Counters each worker keeps for /metrics. Only the owning worker thread writes a Metrics
// (relaxed atomics, no contention); the admin thread sums them.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace sekisho::server {

using Counter = std::atomic<uint64_t>;

// Refusal and failure reasons, also used as access-log reasons and error-page selectors.
enum class Reason : uint8_t {
  None,
  ClientNotAllowed,
  ConnectPortNotAllowed,
  PortNotAllowed,
  DestinationNotAllowed,
  ReputationBlock,
  BadRequest,
  AmbiguousFraming,
  UriTooLong,
  HeadersTooLarge,
  BodyTooLarge,
  NotImplemented,
  UnsupportedScheme,
  DnsFailed,
  ConnectFailed,
  ConnectTimeout,
  UpstreamTimeout,
  BadResponse,
  UpstreamReset,
  LoopDetected,
  RequestTimeout,
  NotFound,
  TooManyConnections,
  ShuttingDown,
  UpstreamCertInvalid,
  UpstreamTlsFailed,
  MisdirectedRequest,
  ReputationUnavailable,
  Count_
};
const char* reasonName(Reason r);

struct Metrics {
  Counter accepted{0}, active{0}, refusedAtAccept{0}, idleReclaimed{0};
  Counter requests{0}, tunnels{0}, selfPages{0};
  Counter upstreamConnects{0}, upstreamReuses{0}, upstreamRetries{0};
  // TLS interception: connections decrypted, tunnelled after the ClientHello (by decision
  // reason), origin certificates refused, AIA fetches, client handshakes that failed.
  Counter bumped{0}, bumpTunnelled{0}, originCertRefused{0}, aiaFetches{0}, clientTlsFailed{0};
  Counter upstreamTlsHandshakes{0}, upstreamTlsResumed{0};  // towards origins; resumed = abbreviated
  Counter reputationErrors{0};          // lookups the store could not answer (on_error applied)
  Counter h2Sessions{0}, h2Streams{0};  // intercepted clients speaking HTTP/2, and their streams
  Counter upstreamIdle{0};              // a gauge: connections waiting in the worker's pool now
  // HTTP/2 towards origins (h2_origin.h): connections opened, streams started on them, and a
  // gauge of the connections open now.
  Counter upstreamH2Sessions{0}, upstreamH2Streams{0}, upstreamH2Connections{0};
  Counter bytesFromClients{0}, bytesToClients{0};
  std::array<Counter, 6> byStatusClass{};  // 0 = none, 1xx..5xx
  std::array<Counter, size_t(Reason::Count_)> byReason{};
};

}  // namespace sekisho::server
