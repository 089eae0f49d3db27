#include "proxy/server/local_pages.h"

#include <openssl/x509.h>

#include <ctime>

#include "blockpage/ca_page.h"
#include "blockpage/error_page.h"
#include "proxy/base/strings.h"
#include "proxy/pac/pac.h"

namespace sekisho::server {

std::string_view ownPagePath(const http::RequestHead& req) {
  std::string_view path = req.form == http::TargetForm::Absolute ? req.path : req.target;
  return path.substr(0, path.find('?'));
}

std::optional<LocalPage> ownPage(const http::RequestHead& req, const OwnPageFacts& f) {
  std::string_view path = ownPagePath(req);
  bool get = req.method == "GET" || req.method == "HEAD";
  if (!get) return std::nullopt;
  if (path == "/proxy.pac" || path == "/wpad.dat")
    return LocalPage{200, "application/x-ns-proxy-autoconfig", pac::render(*f.cfg, f.proxyAddress()), ""};
  if (path == "/healthz") return LocalPage{200, "text/plain; charset=utf-8", "ok\n", ""};
  if (!f.ca || (path != "/ca" && path != "/ca/" && path != "/ca.crt" && path != "/ca.der")) return std::nullopt;
  const ca::Ca& authority = *f.ca;
  if (path == "/ca.crt") return LocalPage{200, "application/x-x509-ca-cert", authority.certPem(), ""};
  if (path == "/ca.der") return LocalPage{200, "application/pkix-cert", authority.certDer(), ""};
  const http::Header* al = req.headers.find("accept-language");
  char notAfter[32] = "";
  time_t na = authority.notAfter();
  tm t;
  gmtime_r(&na, &t);
  strftime(notAfter, sizeof notAfter, "%Y-%m-%d", &t);
  char* subj = X509_NAME_oneline(X509_get_subject_name(authority.cert()), nullptr, 0);
  std::string subject = subj ? subj : "";
  OPENSSL_free(subj);
  blockpage::CaPageInfo info;
  info.subject = subject;
  info.fingerprint = authority.fingerprint();
  info.notAfter = notAfter;
  info.proxyName = f.cfg->visibleHostname;
  info.lang = blockpage::pickLanguage(al ? al->value : std::string_view());
  return LocalPage{200, "text/html; charset=utf-8", blockpage::renderCaPage(info), ""};
}

LocalPage traceEcho(const http::RequestHead& req) {
  std::string echo;
  echo.append(req.method).append(" ").append(req.target).append(req.versionMinor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const auto& h : req.headers.items) {
    if (iequals(h.name, "cookie") || iequals(h.name, "authorization") || iequals(h.name, "proxy-authorization")) continue;
    echo.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  echo.append("\r\n");
  return LocalPage{200, "message/http", std::move(echo), ""};
}

LocalPage optionsAnswer() {
  return LocalPage{200, "text/plain; charset=utf-8", "", "Allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT\r\n"};
}

std::string localResponseHead(const LocalPage& p, bool close) {
  std::string h = "HTTP/1.1 " + std::to_string(p.status) + " " + std::string(blockpage::reasonPhrase(p.status)) +
                  "\r\nContent-Type: " + p.contentType + "\r\nContent-Length: " + std::to_string(p.body.size()) +
                  "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
  h.append(p.extraHeaders);
  if (close) h += "Connection: close\r\n";
  h += "\r\n";
  return h;
}

ErrorResponse errorResponse(const ErrorFacts& f) {
  blockpage::ErrorInfo info;
  info.status = f.status;
  info.reason = f.reason;
  info.url = f.url;
  info.detail = f.detail;
  info.client = f.client;
  info.refId = f.refId;
  info.proxyName = f.proxyName;
  info.epoch = f.epoch;
  info.lang = blockpage::pickLanguage(f.acceptLanguage);
  ErrorResponse r;
  r.body = blockpage::renderErrorPage(info);
  r.head = "HTTP/1.1 " + std::to_string(f.status) + " " + std::string(blockpage::reasonPhrase(f.status)) +
           "\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: " + std::to_string(r.body.size()) +
           "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
           "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n"
           "X-Sekisho-Ref: " + std::string(f.refId) + "\r\nConnection: close\r\n\r\n";
  return r;
}

}  // namespace sekisho::server
