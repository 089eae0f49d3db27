// The states of a client connection (ClientConn), each with what is true in it. The phases
// (relay.h, tunnel.h, bump.h) name the state they run in; ClientConn moves between them.
//
// States (each line says what is true in it):
//   ReadHead  waiting for or reading a request head; no exchange upstream; timer = client idle
//             (between requests) or request-header deadline (from the first byte)
//   Judge     a reputation lookup in flight in Redis (before Resolve, before Connect, or before
//             an intercepted request goes up); client reads ignored; timer = deadline backstop
//   Resolve   name lookup in flight; client reads paused; timer = connect deadline
//   Connect   upstream TCP connect in flight; client reads paused; timer = connect deadline
//   Relay     request head sent; request body and response stream with watermarks; timer =
//             first-byte deadline until the response head, then idle
//   Tunnel    CONNECT answered 200; opaque bytes both ways; timer = tunnel idle
//   TlsBlockHello  a blocked CONNECT was answered 200; waiting for the ClientHello to mint a leaf
//             for; then TLS with the client and every request inside gets the block page
//   BumpHello an allowed CONNECT was answered 200 (origin TCP connected); waiting for the
//             ClientHello (peeked, never consumed) to decide tunnel | intercept | block;
//             timer = request-header deadline
//   BumpUpstream  TLS handshake with the origin in flight (SNI from the hello), then chain
//             verification, possibly waiting for an AIA fetch; client reads paused; timer = connect
//             deadline. Success mints a leaf and takes the client's TLS (-> ReadHead, bumped);
//             failure shows the certificate-error page over TLS.
//   H2        an intercepted client speaks HTTP/2 (ALPN h2): h2_ owns the protocol; every stream is a
//             request on an inner ClientConn (a bufferevent pair, in bump mode); timer = client idle
//   Drain     a final response is queued; no more requests; output flushed, write side shut,
//             then the input is discarded briefly before close (so the client reads our answer)
//   Closed    callbacks detached; waiting in the worker's deferred-delete queue
// HTTP: ReadHead -> Resolve -> Connect -> Relay -> ReadHead. CONNECT: ReadHead -> Resolve ->
// Connect -> Tunnel, or with interception -> BumpHello -> (Tunnel | BumpUpstream -> ReadHead).
// Inside an intercepted connection (bump.h: origin() set) a request goes ReadHead -> Relay on a
// pooled, verified TLS upstream, or ReadHead -> Connect -> BumpUpstream -> Relay when none is
// idle. A refusal or failure goes to Drain; a pooled upstream skips Connect.
#pragma once
#include <cstdint>

namespace sekisho::server {

enum class ConnState : uint8_t {
  ReadHead, Judge, Resolve, Connect, Relay, Tunnel, TlsBlockHello, BumpHello, BumpUpstream, H2, Drain, Closed
};

}  // namespace sekisho::server
