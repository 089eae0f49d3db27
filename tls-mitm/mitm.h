// tls-mitm: deciding and doing TLS interception for CONNECT tunnels.
//   client_hello.h     peekClientHello(): bounded ClientHello peek over buffered bytes
//                      (SNI, ALPN, supported_versions, GREASE), never consuming them.
//   bump_decision.h    decideBump(): facts -> Tunnel | Intercept | Block(reason), and
//                      matchesPattern() for tls.no_intercept entries.
//   origin_tls.h       OriginTls: the TLS client context towards origins, post-handshake chain,
//                      name and strength verification in plain words, stapled OCSP, the AIA
//                      intermediate cache, and the leaf request copied from a verified origin.
//   remembered_hosts.h RememberedHosts: client-certificate and pinned hosts, tunnelled for a while.
//   ticket_keys.h      rotating in-memory session-ticket keys for the client-facing context.
// The sockets (bufferevents, the state machine) live in proxy/server; this module has no I/O.
#pragma once
#include "tls-mitm/bump_decision.h"
#include "tls-mitm/client_hello.h"
#include "tls-mitm/origin_tls.h"
#include "tls-mitm/remembered_hosts.h"
#include "tls-mitm/ticket_keys.h"
