#include "proxy/server/admit.h"

#include <algorithm>

#include "proxy/base/strings.h"

namespace sekisho::server {

namespace {
AdmitDecision refuse(int status, Reason reason, std::string detail, bool denied) {
  AdmitDecision d;
  d.action = AdmitAction::Refuse;
  d.status = status;
  d.reason = reason;
  d.detail = std::move(detail);
  d.denied = denied;
  return d;
}

// TRACE and OPTIONS carrying Max-Forwards (RFC 9110 §7.6.2): at 0 this proxy is the final
// recipient and answers itself; above 0 the request goes on with the value less one. A value
// that is not a single number is refused, as is a TRACE with content (§9.3.8). nullopt: the
// request is neither, or carries no Max-Forwards.
std::optional<AdmitDecision> maxForwards(const http::RequestHead& req) {
  if (req.method != "TRACE" && req.method != "OPTIONS") return std::nullopt;
  if (req.method == "TRACE" && req.body != http::BodyKind::None)
    return refuse(400, Reason::BadRequest, "a TRACE request must not carry content", false);
  size_t fields = req.headers.count("max-forwards");
  if (fields == 0) return std::nullopt;
  std::string_view v = req.headers.find("max-forwards")->value;
  bool digits = !v.empty() && v.size() <= 9 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (fields != 1 || !digits) return refuse(400, Reason::BadRequest, "Max-Forwards must be one decimal number", false);
  AdmitDecision d;
  d.maxForwards = std::stoll(std::string(v));
  if (d.maxForwards == 0) d.action = req.method == "OPTIONS" ? AdmitAction::AnswerOptions : AdmitAction::AnswerTrace;
  return d;
}

// Inside an intercepted connection every request must address the origin the connection was
// verified for: its Host, or an https absolute URI naming it (port 80 in Host is what some
// clients send for the default; the connection's own port is what goes up).
std::optional<AdmitDecision> admitBumped(const http::RequestHead& req, const BumpedFor& b) {
  if (req.method == "CONNECT" || req.form == http::TargetForm::Authority || req.form == http::TargetForm::Asterisk)
    return refuse(400, Reason::BadRequest, "this request form is not accepted inside an intercepted connection", false);
  bool sameHost = req.host == b.host;
  bool samePort = req.form == http::TargetForm::Absolute ? req.port == b.port : (req.port == b.port || req.port == 80);
  if (req.form == http::TargetForm::Absolute && req.scheme != "https") sameHost = false;
  if (!sameHost || !samePort)
    return refuse(421, Reason::MisdirectedRequest,
                  "this connection was opened for " + std::string(b.host) + ", not for " + req.host, true);
  return std::nullopt;
}
}  // namespace

bool isSelfAddress(const net::SocketAddr& dest, const SelfFacts& self) {
  if (!self.listeners) return false;
  for (const auto& l : *self.listeners) {
    if (l.port() != dest.port()) continue;
    if (l.sameIp(dest) || dest.isAny()) return true;
    if (l.isAny()) {
      if (dest.isLoopback() || dest.isAny()) return true;
      if (self.localAddrs)
        for (const auto& a : *self.localAddrs)
          if (a.sameIp(dest)) return true;
    }
  }
  return false;
}

bool isAdminAddress(const net::SocketAddr& dest, const SelfFacts& self) {
  if (!self.admin || !*self.admin) return false;
  const net::SocketAddr& a = **self.admin;
  if (a.port() != dest.port()) return false;
  return a.sameIp(dest) || (a.isAny() && (dest.isLoopback() || dest.isAny()));
}

bool targetsSelf(const http::RequestHead& req, const SelfFacts& self) {
  if (req.form == http::TargetForm::Origin || req.form == http::TargetForm::Asterisk) return true;
  if (req.form != http::TargetForm::Absolute) return false;
  bool ourPort = false;
  if (self.listeners)
    for (const auto& l : *self.listeners) ourPort |= l.port() == req.port;
  if (ourPort && req.port == self.local.port()) {
    if (auto ip = net::parseIp(req.host); ip && ip->sameIp(self.local)) return true;
    if (req.host == self.visibleHostname) return true;
  }
  return false;
}

bool viaLoop(const http::RequestHead& req, std::string_view me) {
  for (const auto& h : req.headers.items) {
    if (!iequals(h.name, "via")) continue;
    bool loop = false;
    forEachListElement(h.value, [&](std::string_view elem) {
      size_t sp = elem.find(' ');
      if (sp == std::string_view::npos) return;
      std::string_view by = elem.substr(sp + 1);
      by = by.substr(0, by.find(' '));
      if (iequals(by, me)) loop = true;
    });
    if (loop) return true;
  }
  return false;
}

// Decide before connecting: nothing reaches an origin that policy refuses. The order is the
// order of the checks a client would want explained first: who it is, where it is, what it asks.
AdmitDecision admitRequest(const AdmitFacts& f) {
  const http::RequestHead& req = *f.req;
  if (!f.clientAllowed)
    return refuse(403, Reason::ClientNotAllowed, "client " + std::string(f.clientIp) + " is not in allow_clients", true);
  bool rewrite = false;
  if (f.bumped) {
    if (auto r = admitBumped(req, *f.bumped)) return std::move(*r);
    rewrite = true;
  } else if (targetsSelf(req, f.self)) {
    AdmitDecision d;
    d.action = AdmitAction::OwnPage;
    return d;
  }
  if (viaLoop(req, f.self.visibleHostname))
    return refuse(508, Reason::LoopDetected, "the request already passed through " + std::string(f.self.visibleHostname), true);
  AdmitDecision d;
  if (auto mf = maxForwards(req)) {
    if (mf->action != AdmitAction::Forward) return std::move(*mf);
    d.maxForwards = mf->maxForwards;
  }
  d.rewriteToBumped = rewrite;
  if (f.bumped) return d;
  if (req.method == "CONNECT") {
    if (!f.connectPorts || !net::portAllowed(*f.connectPorts, req.port))
      return refuse(403, Reason::ConnectPortNotAllowed,
                    "CONNECT to port " + std::to_string(req.port) + " is not allowed (connect_ports)", true);
    return d;
  }
  if (req.scheme != "http")
    return refuse(501, Reason::UnsupportedScheme, "only http:// URLs are proxied directly; HTTPS goes through CONNECT", false);
  if (!f.httpPorts || !net::portAllowed(*f.httpPorts, req.port))
    return refuse(403, Reason::PortNotAllowed, "port " + std::to_string(req.port) + " is not allowed (http_ports)", true);
  return d;
}

std::optional<AdmitDecision> admitAddress(const net::SocketAddr& a, const AddressFacts& f) {
  // Loop detection on the resolved address: a name pointing at this proxy must not make it
  // connect to itself over and over.
  if (isSelfAddress(a, f.self))
    return refuse(508, Reason::LoopDetected, std::string(f.host) + " resolves to this proxy (" + a.toString() + ")", true);
  // The proxy host's own loopback services are not a destination for other machines: a remote
  // client could otherwise reach what is bound to 127.0.0.1 here (Squid's to_localhost).
  if ((a.isLoopback() || a.isAny()) && !f.peerLoopback)
    return refuse(403, Reason::DestinationNotAllowed, std::string(f.host) + " is this proxy's own loopback address", true);
  // Link-local addresses belong to the proxy host's own network segment; 169.254.169.254 is the
  // cloud metadata service, which hands out the instance's credentials (Squid's to_linklocal).
  if (a.isLinkLocal() && !f.peerLoopback)
    return refuse(403, Reason::DestinationNotAllowed,
                  std::string(f.host) + " is a link-local address of the proxy's network (" + a.ipString() + ")", true);
  if (isAdminAddress(a, f.self))
    return refuse(403, Reason::DestinationNotAllowed, "the proxy's admin listener is not a destination", true);
  return std::nullopt;
}

}  // namespace sekisho::server
