// tls-mitm: the ClientHello peek, the pure bump decision (tunnel | intercept | block), verified
// upstream TLS and the client-side TLS on a minted leaf. Depends on ca/. Not built yet: until its
// issue lands, every allowed CONNECT is a tunnel (splice), decided in proxy/server.
#pragma once
