// /proxy.pac and /wpad.dat, generated from the configuration.
#pragma once
#include <string>

#include "proxy/config/config.h"

namespace sekisho::pac {

// A PAC file (application/x-ns-proxy-autoconfig). DIRECT for: plain host names (no dot),
// the allow_clients internal networks (by isInNet on the resolved address, IPv4 CIDRs), and the
// names in cfg.pac.direct; everything else "PROXY a; PROXY b; ..." with fail-over through
// cfg.pac.proxies, or through `selfHostPort` (the address the client reached us on) when that
// list is empty. Every string placed in the JavaScript is escaped.
std::string render(const config::Config& cfg, const std::string& selfHostPort);

}  // namespace sekisho::pac
