#include "proxy/server/bump.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include <algorithm>

#include "ca/leaf_minter.h"
#include "proxy/base/log.h"
#include "proxy/server/aia_fetch.h"
#include "proxy/server/bev_io.h"
#include "proxy/server/upstream_pool.h"
#include "proxy/server/worker.h"
#include "tls-mitm/bump_decision.h"
#include "tls-mitm/client_hello.h"
#include "tls-mitm/origin_tls.h"

namespace sekisho::server {

namespace {

// A server SSL on `leaf`, with the CA's chain: what the client's TLS is taken on.
SSL* serverSsl(Worker& w, const ca::Ca& authority, const ca::MintedLeaf& leaf) {
  SSL* ssl = SSL_new(w.facts().clientTls.get());
  if (!ssl || SSL_use_certificate(ssl, leaf.cert.get()) != 1 || SSL_use_PrivateKey(ssl, leaf.key.get()) != 1) {
    if (ssl) SSL_free(ssl);
    ERR_clear_error();
    return nullptr;
  }
  for (const auto& c : authority.chain()) SSL_add1_chain_cert(ssl, c.get());
  return ssl;
}

}  // namespace

bool Bump::possible(const Worker& w) {
  const auto& f = w.facts();
  return f.ca && f.clientTls && f.originTls && w.config()->tls.intercept;
}

// ---------------------------------------------------------------- hello
void Bump::onOriginConnected() {
  if (fallbackTunnel_) return link_.tunnelAfterHello("client_cert_required");
  if (after_ == After::Tunnel) return link_.tunnelAfterHello(tunnelWhy_);
  if (after_ == After::Bump) return startOriginTls();
  startHello();
}

// Answer, then read the client's ClientHello before deciding: the bytes stay buffered, so a
// tunnel still gets them untouched.
void Bump::startHello() {
  answerConnect(link_.clientBev(), link_.record());
  link_.enterState(ConnState::BumpHello, link_.worker().config()->timeouts.requestHeader);
  // TLS is client-first: an origin that speaks first (SSH banner, SMTP greeting) makes this a
  // plain tunnel at once instead of waiting for a ClientHello that will never come.
  if (link_.upstream().up) bufferevent_enable(link_.upstream().up.get(), EV_READ);
  bufferevent* client = link_.clientBev();
  bufferevent_enable(client, EV_READ);
  if (evbuffer_get_length(bufferevent_get_input(client))) onHello(false);
}

void Bump::onOriginServesFirst() { link_.tunnelAfterHello("server_first"); }

// The ClientHello decides. Nothing of the client's has been consumed, so every outcome still has
// the original bytes: a tunnel forwards them, OpenSSL reads them.
void Bump::onHello(bool timedOut) {
  Worker& w = link_.worker();
  const auto& cfg = *w.config();
  const http::RequestHead& req = link_.request();
  ExchangeRecord& rec = link_.record();
  size_t n = 0;
  mitm::ParseOutcome o = peekBufferedHello(bufferevent_get_input(link_.clientBev()), &n);
  if (o.status == mitm::HelloStatus::NeedMore && !timedOut && n < helloPeekLimit())
    return;
  if (o.status == mitm::HelloStatus::NeedMore && timedOut && n > 0) {
    // Part of a hello, then nothing for the whole deadline: a slow client is not a reason to let
    // its traffic through undecrypted. (No bytes at all is a client waiting for the server; the
    // decision below tunnels that.)
    rec.reason = Reason::RequestTimeout;
    rec.detail = "incomplete ClientHello (" + std::to_string(n) + " bytes) after " +
                 std::to_string(cfg.timeouts.requestHeader.count() / 1000) + " s";
    SLOG_INFO("tls: CONNECT %s:%u from %s closed: %s", req.host.c_str(), unsigned(req.port), link_.clientIp().c_str(),
              rec.detail.c_str());
    return link_.close();
  }
  mitm::BumpFacts f;
  f.connectHost = req.host;
  f.port = req.port;
  switch (o.status) {
    case mitm::HelloStatus::Parsed: f.helloState = mitm::HelloState::Parsed; f.hello = &o.info; break;
    case mitm::HelloStatus::NotTls: f.helloState = mitm::HelloState::NotTls; break;
    case mitm::HelloStatus::Malformed: f.helloState = mitm::HelloState::Malformed; break;
    default: f.helloState = mitm::HelloState::Unreadable; break;
  }
  f.interceptEnabled = cfg.tls.intercept;
  std::string name = req.host;
  if (o.status == mitm::HelloStatus::Parsed && o.info.sniStatus == mitm::SniStatus::Valid) name = o.info.sni;
  offersH2_ = o.status == mitm::HelloStatus::Parsed &&
              std::find(o.info.alpn.begin(), o.info.alpn.end(), "h2") != o.info.alpn.end();
  for (const auto& pat : cfg.tls.noIntercept)
    f.noIntercept |= mitm::matchesPattern(req.host, pat) || mitm::matchesPattern(name, pat);
  time_t now = time_t(link_.nowSeconds());
  std::string hostPort = name + ":" + std::to_string(req.port);
  if (auto* rem = w.facts().remembered.get()) {
    f.rememberedClientCert = rem->check(hostPort, mitm::RememberKind::ClientCert, now);
    f.rememberedPinned = rem->check(link_.clientIp() + "|" + hostPort, mitm::RememberKind::Pinned, now);
  }
  std::optional<reputation::Decision> sd;  // outlives decideBump: f.verdictReason views it
  if (name != req.host) {
    if (!link_.judgeHelloSni(name, [this] { onHello(false); }, &sd)) return;  // the store answers later
    if (sd && sd->outcome == reputation::Decision::Outcome::Block) {
      f.verdict = mitm::HostVerdict::Block;
      f.verdictReason = sd->reason;
    }
  }
  mitm::BumpDecision d = mitm::decideBump(f);
  UpstreamLeg& up = link_.upstream();
  switch (d.action) {
    case mitm::BumpAction::Tunnel:
      if (!up.up) {  // answered early (ClientConn::connectUpstream): the tunnel needs its own connection
        after_ = After::Tunnel;
        tunnelWhy_ = d.reason;
        return link_.connectOrigin();
      }
      return link_.tunnelAfterHello(d.reason);
    case mitm::BumpAction::Block:
      if (d.reason == "host_blocked") {
        rec.squidCode = "TCP_DENIED";
        rec.refId = w.newRefId();
        link_.dropUpstream();
        pendingDeny_ = Deny{403, Reason::ReputationBlock, d.detail, req.host, req.port};
        rec.reason = Reason::ReputationBlock;
        rec.detail = d.detail;
        w.metrics().byReason[size_t(Reason::ReputationBlock)].fetch_add(1, std::memory_order_relaxed);
        link_.enterState(ConnState::TlsBlockHello, cfg.timeouts.requestHeader);
        return onDenyHello();
      }
      // A malformed hello or domain fronting: no page the client could read; the log says why.
      rec.squidCode = "TCP_DENIED";
      rec.reason = Reason::BadRequest;
      rec.detail = std::string(d.reason) + (d.detail.empty() ? "" : ": " + d.detail) +
                   (o.reason.empty() ? "" : " (" + o.reason + ")");
      rec.refId = w.newRefId();
      w.metrics().byReason[size_t(Reason::BadRequest)].fetch_add(1, std::memory_order_relaxed);
      SLOG_INFO("tls: CONNECT %s:%u from %s refused: %s", req.host.c_str(), unsigned(req.port),
                link_.clientIp().c_str(), rec.detail.c_str());
      return link_.close();
    case mitm::BumpAction::Intercept:
      name_ = d.mintFor;
      if (!up.up) {
        std::string key = UpstreamPool::tlsKey(up.dest, name_);
        if (offersH2_ && cfg.tls.http2)
          if (h2::H2Origin* h = w.h2Origins().find(key)) return onOriginVerified(h->ssl());  // verified when it opened
        if (BevPtr pooled = w.pool().take(key)) {
          up.up = std::move(pooled);
          up.upTls = true;
          w.metrics().upstreamReuses.fetch_add(1, std::memory_order_relaxed);
          return onOriginVerified(bufferevent_openssl_get_ssl(up.up.get()));
        }
        after_ = After::Bump;
        return link_.connectOrigin();
      }
      return startOriginTls();
  }
}

// ---------------------------------------------------------------- origin
// TLS towards the origin for the name the hello decided (mint for), on the connected TCP
// upstream; h2 is offered when the client's hello offered it.
void Bump::startOriginTls() {
  Worker& w = link_.worker();
  UpstreamLeg& up = link_.upstream();
  if (!handshake_.begin(w, up, name_, w.config()->tls.http2 && offersH2_, w.config()->limits.bufferBytes))
    return fail(502, Reason::UpstreamTlsFailed, "Sekisho could not start TLS.");
  link_.attach(up.up.get());
  link_.enterState(ConnState::BumpUpstream, w.config()->timeouts.connect);
}

void Bump::onOriginTlsEvent(short what) { onOriginTls(handshake_.onEvent(link_.worker(), link_.upstream(), what)); }

void Bump::onOriginTlsTimeout() {
  fail(504, Reason::UpstreamTimeout,
       "The site did not complete the TLS handshake within " +
           std::to_string(link_.worker().config()->timeouts.connect.count() / 1000) + " s.");
}

void Bump::onOriginTls(OriginHandshake::Outcome o) {
  Worker& w = link_.worker();
  using Kind = OriginHandshake::Outcome::Kind;
  switch (o.kind) {
    case Kind::ClientCertRequested:
      OriginHandshake::rememberClientCert(w, handshake_.name() + ":" + std::to_string(link_.request().port),
                                          time_t(link_.nowSeconds()));
      link_.dropUpstream();
      return onOriginWantsClientCert();
    case Kind::FetchIssuer: {
      Worker* wp = &w;
      uint64_t id = link_.connId();
      fetchAiaIssuer(w, o.aiaUrl, link_.peerIsLoopback(), [wp, id](const std::string&) {
        Bump* b = wp->findBump(id, ConnState::BumpUpstream);
        UpstreamLeg* up = b ? &b->link_.upstream() : nullptr;
        if (up && up->up) b->onOriginTls(b->handshake_.verify(*wp, up->up.get(), up->dest));
      });
      return;  // the upstream waits; the connect deadline still runs
    }
    case Kind::Failed: return fail(o.status, o.reason, o.what);
    case Kind::Verified: break;
  }
  onOriginVerified(bufferevent_openssl_get_ssl(link_.upstream().up.get()));
}

// ---------------------------------------------------------------- mint
void Bump::onOriginVerified(SSL* upSsl) {
  Worker& w = link_.worker();
  const ca::Ca& authority = *w.facts().ca;
  X509* originCert = SSL_get0_peer_certificate(upSsl);
  std::string name = name_;
  auto leaf = w.facts().leafCache->getOrMint(ca::LeafKey{authority.id(), mitm::certSha256Hex(originCert)}, [&]() {
    return ca::mintLeaf(authority, mitm::leafRequestFromOrigin(originCert, name));
  });
  if (!leaf) {
    SLOG_WARN("tls: minting a leaf for %s failed: %s", name.c_str(), leaf.error().detail.c_str());
    return fail(502, Reason::UpstreamTlsFailed, "Sekisho could not create a certificate for this site.");
  }
  SSL* ssl = serverSsl(w, authority, **leaf);
  if (!ssl) return link_.close();
  // Never a stronger protocol towards the client than the origin gave us.
  SSL_set_max_proto_version(ssl, SSL_version(upSsl));
  if (w.config()->tls.http2) mitm::allowH2(ssl);  // h2 to the client, translated to HTTP/1.1 here
  UpstreamLeg& up = link_.upstream();
  BumpedOrigin b;
  b.host = name;
  b.port = link_.request().port;
  b.dest = up.dest;
  b.poolKey = UpstreamPool::tlsKey(up.dest, name);
  ExchangeRecord& rec = link_.record();
  rec.squidCode = "NONE_NONE";
  rec.mode = "bump";
  w.metrics().bumped.fetch_add(1, std::memory_order_relaxed);
  link_.logExchange();  // the CONNECT line, mode bump
  // The verified connection waits in the pool for the first request (any connection of this
  // worker to the same origin name may use it); one on which the origin chose h2 becomes this
  // worker's HTTP/2 connection to it. (None when the CONNECT was served by an existing one.)
  if (BevPtr conn = std::move(up.up)) {
    bufferevent_setcb(conn.get(), nullptr, nullptr, nullptr, nullptr);
    if (h2::alpnIsH2(upSsl))
      w.h2Origins().add(b.poolKey, std::move(conn));
    else
      w.pool().put(b.poolKey, std::move(conn));
  }
  origin_ = std::move(b);
  if (!link_.wrapClientTls(ssl)) return link_.close();
  link_.beginInsideTunnel();
}

// The origin asked for a client certificate during our handshake, which spent the origin
// connection: a new one carries the client's own hello, tunnelled.
void Bump::onOriginWantsClientCert() {
  fallbackTunnel_ = true;
  link_.upstream().addrIndex = 0;
  link_.connectOrigin();
}

// ---------------------------------------------------------------- deny
void Bump::fail(int status, Reason reason, const std::string& detail) {
  Worker& w = link_.worker();
  link_.dropUpstream();
  ExchangeRecord& rec = link_.record();
  rec.reason = reason;
  rec.detail = detail;
  rec.refId = w.newRefId();
  w.metrics().byReason[size_t(reason)].fetch_add(1, std::memory_order_relaxed);
  pendingDeny_ = Deny{uint16_t(status), reason, detail, link_.request().host, link_.request().port};
  link_.enterState(ConnState::TlsBlockHello, w.config()->timeouts.requestHeader);
  onDenyHello();
}

// No origin is contacted: the leaf is minted for the name the client asked for (validated SNI,
// else the CONNECT host; there is no origin certificate to copy).
void Bump::block(const std::string& reason) {
  Worker& w = link_.worker();
  answerConnect(link_.clientBev(), link_.record());
  ExchangeRecord& rec = link_.record();
  rec.reason = Reason::ReputationBlock;
  rec.detail = reason;
  rec.refId = w.newRefId();
  w.metrics().byReason[size_t(Reason::ReputationBlock)].fetch_add(1, std::memory_order_relaxed);
  pendingDeny_ = Deny{403, Reason::ReputationBlock, reason, link_.request().host, link_.request().port};
  link_.enterState(ConnState::TlsBlockHello, w.config()->timeouts.requestHeader);
  bufferevent* client = link_.clientBev();
  bufferevent_enable(client, EV_READ);
  if (evbuffer_get_length(bufferevent_get_input(client))) onDenyHello();
}

void Bump::onDenyHello() {
  Worker& w = link_.worker();
  mitm::ParseOutcome o = peekBufferedHello(bufferevent_get_input(link_.clientBev()));
  if (o.status == mitm::HelloStatus::NeedMore) return;
  if (o.status != mitm::HelloStatus::Parsed) return link_.close();  // not TLS: nothing to show it
  std::string name = o.info.sniStatus == mitm::SniStatus::Valid ? o.info.sni : link_.request().host;
  const ca::Ca& authority = *w.facts().ca;
  auto leaf = w.facts().leafCache->getOrMint(ca::LeafKey{authority.id(), "block:" + name}, [&]() {
    ca::LeafRequest lr;
    lr.commonName = name;
    if (net::parseIp(name))
      lr.ipAddresses.push_back(name);
    else
      lr.dnsNames.push_back(name);
    return ca::mintLeaf(authority, lr);
  });
  if (!leaf) {
    SLOG_WARN("block page over TLS for %s: %s", name.c_str(), leaf.error().detail.c_str());
    return link_.close();
  }
  SSL* ssl = serverSsl(w, authority, **leaf);
  if (!ssl) return link_.close();
  link_.logExchange();  // the CONNECT line: TCP_DENIED, reason and the reference id
  if (!link_.wrapClientTls(ssl)) return link_.close();
  deny_ = std::move(pendingDeny_);
  link_.beginInsideTunnel();
}

std::optional<LocalAnswer> Bump::denyInside() const {
  if (!deny_) return std::nullopt;
  return LocalAnswer{deny_->status, deny_->reason, deny_->detail};
}

std::optional<BumpedFor> Bump::shownOrigin() const {
  if (origin_) return BumpedFor{origin_->host, origin_->port};
  if (deny_) return BumpedFor{deny_->host, deny_->port};
  return std::nullopt;
}

void Bump::onClientRejectedLeaf(bufferevent* client) {
  Worker& w = link_.worker();
  w.metrics().clientTlsFailed.fetch_add(1, std::memory_order_relaxed);
  bool rejectedCert = false;
  std::string why;
  while (unsigned long e = bufferevent_get_openssl_error(client)) {
    int r = ERR_GET_REASON(e);
    rejectedCert |= r == SSL_R_TLSV1_ALERT_UNKNOWN_CA || r == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
                    r == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN || r == SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE ||
                    r == SSL_R_TLSV1_ALERT_ACCESS_DENIED || r == SSL_R_TLSV1_ALERT_DECRYPT_ERROR;
    if (const char* t = ERR_reason_error_string(e)) why = t;
  }
  const std::string& ip = link_.clientIp();
  std::string key = ip + "|" + origin_->host + ":" + std::to_string(origin_->port);
  if (rejectedCert && w.facts().remembered &&
      w.facts().remembered->remember(key, mitm::RememberKind::Pinned, time_t(link_.nowSeconds())))
    SLOG_INFO("tls: client %s rejected the certificate minted for %s:%u (%s); tunnelling it there for %lld s",
              ip.c_str(), origin_->host.c_str(), unsigned(origin_->port), why.c_str(),
              (long long)(w.config()->tls.rememberFor.count() / 1000));
  else
    SLOG_DEBUG("tls: handshake with client %s for %s failed: %s", ip.c_str(), origin_->host.c_str(),
               why.empty() ? "closed" : why.c_str());
}

}  // namespace sekisho::server
