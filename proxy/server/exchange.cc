#include "proxy/server/exchange.h"

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
  return r;
}

}  // namespace sekisho::server
