// tls-mitm: deciding, and later doing, TLS interception for CONNECT tunnels.
// Offered now (pure, no sockets, no OpenSSL):
//   client_hello.h   peekClientHello(): bounded ClientHello peek over buffered bytes
//                    (SNI, ALPN, supported_versions, GREASE), never consuming them.
//   bump_decision.h  decideBump(): facts -> Tunnel | Intercept | Block(reason), and
//                    matchesPattern() for tls.no_intercept entries.
// Later (issue "TLS interception"): verified upstream TLS, client-side TLS on a leaf minted by
// ca/, the remembered pinned / client-certificate host table, HTTP/2 bridging. Until those land,
// the proxy tunnels every allowed CONNECT.
#pragma once
#include "tls-mitm/bump_decision.h"
#include "tls-mitm/client_hello.h"
