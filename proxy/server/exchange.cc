#include "proxy/server/exchange.h"

#include "proxy/server/bev_io.h"

namespace sekisho::server {

accesslog::Record accessRecord(const ExchangeRecord& rec, const UpstreamLeg& leg, const http::RequestHead& req,
                               const std::string& client, std::string url, uint64_t nowMs, uint64_t toClient,
                               uint64_t fromClient) {
  accesslog::Record r;
  r.startEpoch = rec.startEpoch;
  r.elapsedMs = nowMs - rec.startMs;
  r.client = client;
  r.squidCode = rec.squidCode;
  r.status = rec.status;
  r.bytesToClient = toClient;
  r.bytesFromClient = fromClient;
  r.method = req.method.empty() ? "-" : std::string(req.method);
  r.url = url.empty() ? "-" : std::move(url);
  r.user = "-";
  bool direct = leg.dest.len != 0;
  r.hierarchy = direct ? "HIER_DIRECT" : "HIER_NONE";
  r.peer = direct ? leg.dest.ipString() : "-";
  r.contentType = rec.contentType.empty() ? "-" : rec.contentType.substr(0, rec.contentType.find(';'));
  std::string_view code = rec.squidCode;
  r.mode = rec.mode                      ? rec.mode
           : code == "TCP_TUNNEL"         ? "tunnel"
           : code == "NONE_NONE" && rec.reason == Reason::None ? "self"
                                           : "http";
  r.reason = reasonName(rec.reason);
  r.refId = rec.refId;
  r.versionMinor = req.versionMinor;
  if (const http::Header* h = req.headers.find("referer")) r.referer.assign(h->value);
  if (const http::Header* h = req.headers.find("user-agent")) r.userAgent.assign(h->value);
  return r;
}

std::string shownUrl(const http::RequestHead& req, std::string_view insideHost, uint16_t insidePort) {
  if (req.form == http::TargetForm::Authority) {
    bool v6 = req.host.find(':') != std::string::npos;
    return (v6 ? "[" + req.host + "]" : req.host) + ":" + std::to_string(req.port);
  }
  if (insideHost.empty() || req.form != http::TargetForm::Origin) return std::string(req.target);
  bool v6 = insideHost.find(':') != std::string_view::npos;
  std::string u = v6 ? "https://[" + std::string(insideHost) + "]" : "https://" + std::string(insideHost);
  if (insidePort != 443) u += ":" + std::to_string(insidePort);
  return u.append(req.target);
}

void answerConnect(bufferevent* client, ExchangeRecord& rec) {
  static constexpr std::string_view k200 = "HTTP/1.1 200 Connection established\r\n\r\n";
  addStr(bufferevent_get_output(client), k200);
  kick(client);
  rec.status = 200;
  rec.respHeadSent = true;
  rec.headBytesToClient = k200.size();
}

}  // namespace sekisho::server
