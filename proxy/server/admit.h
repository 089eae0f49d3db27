// Admit: the refusals that need no I/O, decided over the facts of one request.
//
// Two pure functions, each a table in tests/unit/server/admit_test.cc:
//   admitRequest  the request head as parsed: client allowed, request forms inside an
//                 intercepted connection (CONNECT, a host it was not opened for), our own pages,
//                 Via loops, Max-Forwards (TRACE/OPTIONS), CONNECT and HTTP ports, the scheme;
//   admitAddress  one address the name resolved to (called by the upstream phase): this proxy
//                 itself, its loopback and link-local networks for remote clients, its admin
//                 listener.
// Neither looks at a socket, the clock or the reputation store; the connection applies the
// answer (ClientConn::handleRequest, ClientConn::onResolved). What needs a lookup is the judge's
// (judge.h); what needs the origin is the upstream's and the bump's.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/message.h"
#include "proxy/net/address.h"
#include "proxy/server/metrics.h"

namespace sekisho::server {

// Where this proxy is, so that a request or an address that names it is recognised.
struct SelfFacts {
  const std::vector<net::SocketAddr>* listeners = nullptr;   // bound proxy listeners
  const std::vector<net::SocketAddr>* localAddrs = nullptr;  // this host's interface addresses
  const std::optional<net::SocketAddr>* admin = nullptr;     // the admin listener, if any
  net::SocketAddr local;                                     // our end of this connection
  std::string_view visibleHostname;
};

// An intercepted connection: the origin it was opened (and verified) for.
struct BumpedFor {
  std::string_view host;
  uint16_t port = 443;
};

struct AdmitFacts {
  const http::RequestHead* req = nullptr;
  bool clientAllowed = false;
  std::string_view clientIp;
  const BumpedFor* bumped = nullptr;  // set inside an intercepted connection
  SelfFacts self;
  const std::vector<net::PortRange>* connectPorts = nullptr;
  const std::vector<net::PortRange>* httpPorts = nullptr;
};

enum class AdmitAction : uint8_t {
  Forward,      // on to the judge; `maxForwards` is what to send on (less one), or -1
  OwnPage,      // a page this proxy serves about itself (/proxy.pac, /ca, /healthz, ...)
  AnswerTrace,  // TRACE with Max-Forwards: 0: this proxy is the final recipient (RFC 9110 §7.6.2)
  AnswerOptions,// OPTIONS with Max-Forwards: 0
  Refuse,       // status + reason + detail: the error page
};

struct AdmitDecision {
  AdmitAction action = AdmitAction::Forward;
  int status = 0;
  Reason reason = Reason::None;
  std::string detail;
  bool denied = false;        // the access log says TCP_DENIED (a policy refusal, not an error)
  int64_t maxForwards = -1;   // the Max-Forwards received on a TRACE/OPTIONS going on
  // Inside an intercepted connection the request is rewritten to https://host:port of the
  // connection before it goes on (its Host or absolute URI named the same origin).
  bool rewriteToBumped = false;
};

AdmitDecision admitRequest(const AdmitFacts& facts);

// True when `req` (absolute-form) names this proxy's own listener, or has no host at all
// (origin-form or '*' sent to a proxy): it asks for one of our pages.
bool targetsSelf(const http::RequestHead& req, const SelfFacts& self);
// A Via entry naming us: the request has been through this proxy already (RFC 9110 §7.6.3).
bool viaLoop(const http::RequestHead& req, std::string_view visibleHostname);
// `dest` is one of this proxy's listeners (or would reach one).
bool isSelfAddress(const net::SocketAddr& dest, const SelfFacts& self);
bool isAdminAddress(const net::SocketAddr& dest, const SelfFacts& self);

struct AddressFacts {
  std::string_view host;  // the name that resolved to it, for the page
  bool peerLoopback = false;
  SelfFacts self;
};
// nullopt: `dest` may be connected to; otherwise the refusal (Refuse, with status and reason).
std::optional<AdmitDecision> admitAddress(const net::SocketAddr& dest, const AddressFacts& facts);

}  // namespace sekisho::server
