#include "proxy/server/relay.h"

#include "proxy/base/strings.h"
#include "proxy/http1/parser.h"
#include "proxy/server/bev_io.h"
#include "proxy/server/worker.h"

namespace sekisho::server {

using http::BodyKind;

namespace {
// A small response body that has arrived with its head goes out in the same write as the head.
constexpr size_t kCoalesceBody = 8 * 1024;
}  // namespace

// ---------------------------------------------------------------- request
void Relay::start(const http::RequestHead& req, int64_t maxForwards) {
  Worker& w = link_.worker();
  const auto& cfg = *w.config();
  req_ = &req;
  evbuffer* out = bufferevent_get_output(link_.upstreamBev());

  // Request line in origin-form, Host from the absolute URI (RFC 9112 §3.2.2).
  std::string h;
  h.reserve(req.storage.size + 128);
  h.append(req.method).append(" ").append(req.path).append(" HTTP/1.1\r\nHost: ");
  bool v6 = req.host.find(':') != std::string::npos;
  if (v6) h.append("[");
  h.append(req.host);
  if (v6) h.append("]");
  if (req.port != (req.scheme == "https" ? 443 : 80)) h.append(":").append(std::to_string(req.port));
  h.append("\r\n");
  // The request's fields through its filters: hop-by-hop removal, Max-Forwards, the WebSocket
  // upgrade and Via (forward_headers.h), then whatever the configuration adds.
  if (requestFilters_.empty()) {  // once: a retry comes here again
    fwdRequest_.setVia(w.viaBy());
    fwdRequest_.setMaxForwards(maxForwards);
    requestFilters_.add(&fwdRequest_);
  }
  for (RequestFilter* f : requestFilters_) {
    HeadAction a = f->begin(req);
    if (a.status != HeadStatus::Continue)  // nothing has gone upstream yet: the page instead
      return link_.respondError(a.answer.status ? a.answer.status : 403, a.answer.reason, a.answer.detail);
  }
  HeadWriter fields(h);
  writeFields(requestFilters_, req.headers, fields);
  upgrade_ = fwdRequest_.upgrade();
  if (req.body == BodyKind::ContentLength) h.append("Content-Length: ").append(std::to_string(req.contentLength)).append("\r\n");
  if (req.body == BodyKind::Chunked) h.append("Transfer-Encoding: chunked\r\n");
  h.append("\r\n");
  addStr(out, h);

  reqPump_.reset(req.body, req.contentLength, req.body == BodyKind::Chunked);
  reqDone_ = reqPump_.done();
  link_.armTimer(cfg.timeouts.firstByte);
  link_.touch();
  if (!reqDone_) {
    bufferevent_enable(link_.clientBev(), EV_READ);
    pumpRequestBody();  // kicks
  } else {
    kick(link_.upstreamBev());
  }
}

void Relay::onClientReadable() {
  if (!reqDone_) pumpRequestBody();
}

void Relay::pumpRequestBody() {
  bufferevent* up = link_.upstreamBev();
  bufferevent* client = link_.clientBev();
  if (!up || reqDone_) return;
  Worker& w = link_.worker();
  if (link_.upstreamIsH2Channel() && w.h2Origins().held(up)) {
    // A request that will not be retried, on an h2 connection the origin has been silent on: the
    // body stays with the client until the origin is heard (H2Origin wakes us with a write event);
    // if it is never heard, nothing of it was sent and it goes on a new connection.
    bufferevent_disable(client, EV_READ);
    clientPaused_ = Paused::OutFull;
    kick(up);  // the head goes over
    return;
  }
  evbuffer* in = bufferevent_get_input(client);
  evbuffer* out = bufferevent_get_output(up);
  uint64_t before = reqPump_.bodyBytes();
  PumpStatus st = reqPump_.run(in, out, false);
  w.metrics().bytesFromClients.fetch_add(reqPump_.bodyBytes() - before, std::memory_order_relaxed);
  if (st == PumpStatus::Error) {
    link_.closeAfter(false);
    if (!haveResp_) return link_.respondError(400, Reason::BadRequest, reqPump_.error());
    return link_.abortExchange(Reason::BadRequest, reqPump_.error());
  }
  kick(up);
  if (st == PumpStatus::Done) {
    reqDone_ = true;
    // The rest of the input belongs to the next request: leave it until this one is answered.
    return;
  }
  if (evbuffer_get_length(out) >= link_.bufferLimit()) {
    bufferevent_disable(client, EV_READ);
    clientPaused_ = Paused::OutFull;  // onUpstreamDrained resumes
  }
}

void Relay::onUpstreamDrained() {
  if (clientPaused_ != Paused::OutFull) return;
  clientPaused_ = Paused::No;
  bufferevent_enable(link_.clientBev(), EV_READ);
  pumpRequestBody();
}

// ---------------------------------------------------------------- response
void Relay::onUpstreamReadable() { readResponse(); }

void Relay::readResponse() {
  const auto& cfg = *link_.worker().config();
  evbuffer* in = bufferevent_get_input(link_.upstreamBev());
  while (!haveResp_) {
    size_t len = evbuffer_get_length(in);
    if (len == 0) return;
    size_t n = std::min(len, cfg.limits.maxHeadBytes);
    auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, ssize_t(n)));
    std::string_view data(p, n);
    size_t end = http1::findHeadEnd(data, upScanned_);
    if (end == 0) {
      upScanned_ = n;
      if (len >= cfg.limits.maxHeadBytes)
        return link_.respondError(502, Reason::BadResponse,
                                  "the origin's response head is larger than " + std::to_string(n) + " bytes");
      return;
    }
    http1::Limits lim{cfg.limits.maxHeadBytes, cfg.limits.maxHeadBytes, cfg.limits.maxHeaders};
    auto parsed = http1::parseResponseHead(data.substr(0, end), lim, req_->method);
    evbuffer_drain(in, end);
    upScanned_ = 0;
    if (!parsed) return link_.respondError(502, Reason::BadResponse, parsed.error().detail);
    if (parsed->status < 200) {
      if (parsed->status == 101 && !upgrade_.empty()) {
        resp_ = std::move(*parsed);
        return upgradeResponse();
      }
      if (parsed->status == 101)
        return link_.respondError(502, Reason::BadResponse, "the origin switched protocols without being asked to");
      // Interim responses go to HTTP/1.1 clients as they are (RFC 9110 §15.2).
      if (req_->versionMinor == 1) {
        std::string line = "HTTP/1.1 " + std::to_string(parsed->status) + " " + std::string(parsed->reason) + "\r\n\r\n";
        addStr(bufferevent_get_output(link_.clientBev()), line);
        kick(link_.clientBev());
      }
      continue;
    }
    resp_ = std::move(*parsed);
    haveResp_ = true;
    sendResponseHead();
    if (!link_.upstreamBev()) return;  // a filter answered instead: the exchange is over
  }
  pumpResponseBody(false);
}

void Relay::sendResponseHead() {
  Worker& w = link_.worker();
  const auto& cfg = *w.config();
  const http::RequestHead& req = *req_;
  bool client11 = req.versionMinor == 1;
  // Output framing: chunked only for HTTP/1.1 clients; a close-delimited response is re-framed
  // chunked so the client connection survives; an HTTP/1.0 client gets raw bytes and a close.
  bool outChunked = false;
  switch (resp_.body) {
    case BodyKind::Chunked:
    case BodyKind::CloseDelimited:
      outChunked = client11;
      if (!client11) link_.closeAfter(false);
      break;
    default: break;
  }
  if (!reqDone_) link_.closeAfter(false);  // answered before the request body ended
  if (responseFilters_.empty()) {
    fwdResponse_.setVia(w.viaBy());
    responseFilters_.add(&fwdResponse_);
    for (ResponseFilter* f : extraFilters_) responseFilters_.add(f);
  }
  bool hold = false;
  for (ResponseFilter* f : responseFilters_) {
    HeadAction a = f->begin(req, resp_);
    if (a.status == HeadStatus::Replace)  // nothing has gone to the client yet: the page instead
      return link_.respondError(a.answer.status ? a.answer.status : 502, a.answer.reason, a.answer.detail);
    hold |= a.status == HeadStatus::Hold;
    filterBody_ |= f->seesBody();
  }
  // A held head is released by the body's verdict, so only a filter that sees the body may hold.
  if (hold && !filterBody_)
    return link_.respondError(502, Reason::BadResponse, "a response filter held the head but does not see the body");
  std::string h;
  h.reserve(resp_.storage.size + 128);
  h.append("HTTP/1.1 ").append(std::to_string(resp_.status)).append(" ").append(resp_.reason).append("\r\n");
  HeadWriter fields(h);
  writeFields(responseFilters_, resp_.headers, fields);
  if (outChunked) h.append("Transfer-Encoding: chunked\r\n");
  if (link_.closing())
    h.append("Connection: close\r\n");
  else if (!client11)
    h.append("Connection: keep-alive\r\n");
  h.append("\r\n");
  size_t headBytes = h.size();
  const http::Header* ct = resp_.headers.find("content-type");
  link_.armTimer(cfg.timeouts.idle);
  if (filterBody_) {  // decoded for the filters; the relay frames what they let through
    respPump_.reset(resp_.body, resp_.contentLength, false);
    outChunked_ = outChunked;
    staging_.reset(evbuffer_new());
    for (ResponseFilter* f : responseFilters_)
      if (f->seesBody()) f->setWake([this] { onFilterWake(); });
    if (hold) {
      headHeld_ = true;
      heldHead_ = std::move(h);
      heldStatus_ = resp_.status;
      heldContentType_ = ct ? std::string(ct->value) : std::string();
      return;
    }
    addStr(bufferevent_get_output(link_.clientBev()), h);
    link_.noteResponse(resp_.status, ct ? ct->value : std::string_view(), headBytes);
    return;
  }
  respPump_.reset(resp_.body, resp_.contentLength, outChunked);
  respPump_.takeWholeSmall(bufferevent_get_input(link_.upstreamBev()), h, kCoalesceBody);
  addStr(bufferevent_get_output(link_.clientBev()), h);
  link_.noteResponse(resp_.status, ct ? ct->value : std::string_view(), headBytes);
}

void Relay::onTimer(uint64_t idleForMs) {
  const auto& t = link_.worker().config()->timeouts;
  std::chrono::milliseconds limit = haveResp_ ? t.idle : t.firstByte;
  if (idleForMs < uint64_t(limit.count())) return link_.armTimer(std::chrono::milliseconds(uint64_t(limit.count()) - idleForMs));
  if (!haveResp_)
    return link_.respondError(504, Reason::UpstreamTimeout,
                              "the origin did not answer within " + std::to_string(t.firstByte.count() / 1000) + " s");
  link_.abortExchange(Reason::UpstreamTimeout, "no progress for " + std::to_string(t.idle.count() / 1000) + " s");
}

bool Relay::addResponseFilter(ResponseFilter* f) { return extraFilters_.add(f); }

void Relay::pumpResponseBody(bool upstreamEnded) {
  if (filterBody_) return pumpFilteredBody(upstreamEnded);
  bufferevent* up = link_.upstreamBev();
  bufferevent* client = link_.clientBev();
  evbuffer* in = bufferevent_get_input(up);
  evbuffer* out = bufferevent_get_output(client);
  PumpStatus st = respPump_.run(in, out, upstreamEnded);
  kick(client);
  if (st == PumpStatus::Error) return link_.abortExchange(Reason::BadResponse, respPump_.error());
  if (st == PumpStatus::Done) {
    return responseDone();  // last: the exchange (and this relay) may be gone after it
  }
  pauseOriginAtMark(out);
}

// The response is complete: the origin connection is reusable when it was left clean.
void Relay::responseDone() {
  bufferevent* up = link_.upstreamBev();
  respDone_ = true;
  bool reusable = resp_.keepAlive && reqDone_ && evbuffer_get_length(bufferevent_get_input(up)) == 0 &&
                  evbuffer_get_length(bufferevent_get_output(up)) == 0 && !tlsPending(up) &&
                  !link_.worker().draining();
  link_.relayDone(reusable);
}

// The client's output holds a buffer's worth: the origin waits until it drains (onClientDrained).
void Relay::pauseOriginAtMark(evbuffer* out) {
  if (evbuffer_get_length(out) < link_.bufferLimit()) return;
  bufferevent_disable(link_.upstreamBev(), EV_READ);
  upPaused_ = Paused::OutFull;
}

// The body through BodyChain: decoded into staging_, offered to the filters, and what they let
// through framed for the client. While a filter is undecided its bytes stay in staging_; the
// origin is paused when staging_ or the client's output reaches the buffer mark, or when a filter
// holds its whole bound (it wakes the relay when it can decide: onFilterWake).
void Relay::pumpFilteredBody(bool upstreamEnded) {
  bufferevent* up = link_.upstreamBev();
  bufferevent* client = link_.clientBev();
  evbuffer* in = bufferevent_get_input(up);
  evbuffer* out = bufferevent_get_output(client);
  if (!bodyEnded_) {
    PumpStatus st = respPump_.run(in, staging_.get(), upstreamEnded);
    if (st == PumpStatus::Error) {
      if (headHeld_) return link_.respondError(502, Reason::BadResponse, respPump_.error());
      return link_.abortExchange(Reason::BadResponse, respPump_.error());
    }
    bodyEnded_ = st == PumpStatus::Done;
  }
  BodyChain chain(responseFilters_);
  inChain_ = true;
  DataAction a = chain.run(staging_.get(), bodyEnded_);
  inChain_ = false;
  if (a.status == DataStatus::Replace) {
    if (headHeld_) return link_.respondError(a.answer.status, a.answer.reason, a.answer.detail);
    return link_.abortExchange(a.answer.reason, a.answer.detail);
  }
  if (a.status == DataStatus::Keep) {
    if (chain.full() || evbuffer_get_length(staging_.get()) >= link_.bufferLimit()) {
      bufferevent_disable(up, EV_READ);
      upPaused_ = Paused::OutFull;  // the filter's wake (or the client's drain) resumes
    }
    return;
  }
  if (headHeld_) {  // the filters let the response go: its head first
    headHeld_ = false;
    addStr(out, heldHead_);
    link_.noteResponse(heldStatus_, heldContentType_, heldHead_.size());
    heldHead_.clear();
  }
  size_t n = evbuffer_get_length(staging_.get());
  if (n > 0) {
    size_t before = evbuffer_get_length(out);
    if (outChunked_) evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add_buffer(out, staging_.get());
    if (outChunked_) evbuffer_add(out, "\r\n", 2);
    bodyOut_ += evbuffer_get_length(out) - before;
  }
  if (bodyEnded_ && outChunked_) {
    evbuffer_add(out, "0\r\n\r\n", 5);  // trailers are not passed on through a filtered body
    bodyOut_ += 5;
  }
  kick(client);
  if (bodyEnded_) {
    return responseDone();  // last: the exchange (and this relay) may be gone after it
  }
  pauseOriginAtMark(out);
}

// A filter that was full and waiting can decide now: offer the body again, and read the origin
// again if it was paused for the filter.
void Relay::onFilterWake() {
  if (inChain_ || !link_.upstreamBev() || respDone_) return;
  if (upPaused_ == Paused::OutFull &&
      evbuffer_get_length(bufferevent_get_output(link_.clientBev())) < link_.bufferLimit()) {
    upPaused_ = Paused::No;
    bufferevent_enable(link_.upstreamBev(), EV_READ);
  }
  pumpFilteredBody(false);
}

void Relay::onClientDrained() {
  if (upPaused_ != Paused::OutFull || !link_.upstreamBev()) return;
  upPaused_ = Paused::No;
  bufferevent_enable(link_.upstreamBev(), EV_READ);
  pumpResponseBody(false);
}

void Relay::onUpstreamEof() { pumpResponseBody(true); }

// The origin accepted a WebSocket upgrade: pass its 101 on; from here the connection is a tunnel
// (over TLS on either side when intercepted) and ends with the WebSocket.
void Relay::upgradeResponse() {
  const http::Header* up = resp_.headers.find("upgrade");
  if (!up || !iequals(up->value, upgrade_))
    return link_.respondError(502, Reason::BadResponse, "the origin switched to a protocol that was not asked for");
  std::string h = "HTTP/1.1 101 " + std::string(resp_.reason) + "\r\n";
  for (const auto& f : resp_.headers.items) {
    if (http::isHopByHop(f.name)) continue;
    h.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  h.append("Connection: Upgrade\r\nUpgrade: ").append(upgrade_).append("\r\n");
  h.append("Via: 1.1 ").append(link_.worker().viaBy()).append("\r\n\r\n");
  addStr(bufferevent_get_output(link_.clientBev()), h);
  kick(link_.clientBev());
  haveResp_ = true;
  link_.noteResponse(101, "", h.size());
  link_.closeAfter(false);
  link_.upgraded();
}

}  // namespace sekisho::server
