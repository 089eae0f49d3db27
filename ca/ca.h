// ca: the enterprise root CA (load or create, key 0600), leaf minting and the shared leaf-cert
// cache used by tls-mitm. Not built yet: interception is delivered by its own issue. Until then
// the proxy tunnels every CONNECT (see docs/REQUEST_PATH.md).
#pragma once
