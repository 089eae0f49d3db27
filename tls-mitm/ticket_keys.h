// Session-ticket keys for the client-facing TLS context: resumption without a server-side
// session cache (one ticket decrypts on any worker), keys generated in memory at start-up and
// rotated every `rotateSeconds`; a ticket under the previous key is still accepted once and
// renewed, so rotation never forces a full handshake on a returning browser. Keys never touch disk.
#pragma once
#include <openssl/ssl.h>

#include <ctime>

namespace sekisho::mitm {

// Installs the ticket callback on `ctx` (TLS 1.2 tickets and TLS 1.3 resumption PSKs both use it).
bool installTicketKeys(SSL_CTX* ctx, time_t rotateSeconds = 12 * 3600);

}  // namespace sekisho::mitm
