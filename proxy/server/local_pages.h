// Local responses: what this proxy answers itself, as bytes ready to write. Our own pages
// (/proxy.pac, /wpad.dat, /healthz, /ca, /ca.crt, /ca.der), the Max-Forwards answers (TRACE
// echo, OPTIONS), and the error and block pages (ja/en, everything escaped: blockpage/) with the
// reference id in the page, the X-Sekisho-Ref header and the access log. Pure: no socket, no
// clock; ClientConn::respondLocal and ClientConn::respondError write what these build.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "ca/ca.h"
#include "proxy/config/config.h"
#include "proxy/http/message.h"

namespace sekisho::server {

struct LocalPage {
  int status = 200;
  std::string contentType;
  std::string body;
  std::string extraHeaders;  // whole lines, each ending in CRLF
};

struct OwnPageFacts {
  const config::Config* cfg = nullptr;
  const ca::Ca* ca = nullptr;                    // null: no /ca pages
  std::function<std::string()> proxyAddress;     // "ip:port" the client reached us on (for the PAC)
};
// The page `req` asks for; nullopt when there is none (the caller answers 404).
std::optional<LocalPage> ownPage(const http::RequestHead& req, const OwnPageFacts& facts);
// The path of a request for our pages, without the query.
std::string_view ownPagePath(const http::RequestHead& req);

// Max-Forwards: 0 (admit.h): TRACE echoes the request as received, minus the fields that carry
// credentials (RFC 9110 §9.3.8); OPTIONS says what the proxy allows.
LocalPage traceEcho(const http::RequestHead& req);
LocalPage optionsAnswer();

// "HTTP/1.1 <status> <phrase>" and the fields every local response carries; `close` adds
// Connection: close.
std::string localResponseHead(const LocalPage& page, bool close);

struct ErrorFacts {
  int status = 0;
  std::string_view reason;   // reasonName()
  std::string_view url, detail, client, refId, proxyName, acceptLanguage;
  double epoch = 0;
};
struct ErrorResponse {
  std::string head, body;
};
// The error or block page and its head (Connection: close: an error ends the connection).
ErrorResponse errorResponse(const ErrorFacts& facts);

}  // namespace sekisho::server
