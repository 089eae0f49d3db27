// Fetches a missing intermediate certificate from an origin certificate's AIA caIssuers URL, on
// the worker's loop: resolved through the worker's resolver, fetched with libevent's HTTP client
// (AIA URLs are plain http:// by RFC 5280, and the loop already runs evhttp for the admin
// listener, so no second HTTP stack is needed), bounded in size (64 KiB) and time (5 s), and
// refused for this proxy's own listeners and for loopback unless the asking client is local.
// The result goes into the shared AiaCache (failures too, briefly).
#pragma once
#include <functional>
#include <string>

#include "proxy/net/address.h"

namespace sekisho::server {

class Worker;

// Calls `done` on the loop thread exactly once, after the cache holds the outcome for `url`
// (a certificate, or a remembered failure). `done` receives "" on success or why it failed.
void fetchAiaIssuer(Worker& w, const std::string& url, bool clientIsLoopback,
                    std::function<void(const std::string& error)> done);

}  // namespace sekisho::server
