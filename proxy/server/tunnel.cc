#include "proxy/server/tunnel.h"

#include <sys/socket.h>

#include "proxy/server/worker.h"
#include "tls-mitm/client_hello.h"

namespace sekisho::server {

void Tunnel::start(const std::string& connectHost) {
  active_ = true;
  connectHost_ = connectHost;
  helloPending_ = !connectHost.empty();
  bufferevent* c = link_.clientBev();
  bufferevent* u = link_.upstreamBev();
  bufferevent_enable(u, EV_READ);
  bufferevent_enable(c, EV_READ);
  // Bytes either side sent before the tunnel began (a ClientHello, say) are already buffered.
  if (evbuffer_get_length(bufferevent_get_input(u))) relay(false);
  if (!active_) return;
  if (evbuffer_get_length(bufferevent_get_input(c)))
    relay(true);
  else
    trySplice();
}

void Tunnel::stop() {
  active_ = false;
  splice_.reset();
}

void Tunnel::relay(bool fromClient) {
  if (!active_) return;
  if (fromClient && helloPending_ && !checkClientHello()) return;
  bufferevent* from = fromClient ? link_.clientBev() : link_.upstreamBev();
  bufferevent* to = fromClient ? link_.upstreamBev() : link_.clientBev();
  evbuffer* in = bufferevent_get_input(from);
  evbuffer* out = bufferevent_get_output(to);
  size_t n = evbuffer_get_length(in);
  if (fromClient)
    link_.worker().metrics().bytesFromClients.fetch_add(n, std::memory_order_relaxed);
  else
    toClient_ += n;
  evbuffer_add_buffer(out, in);
  kick(to);
  if (evbuffer_get_length(out) >= link_.bufferLimit()) {
    bufferevent_disable(from, EV_READ);
    (fromClient ? clientPaused_ : upPaused_) = Paused::OutFull;  // the peer's write callback resumes
    return;
  }
  trySplice();
}

void Tunnel::onUpstreamDrained() {
  if (!active_) return;
  bufferevent* u = link_.upstreamBev();
  if (clientPaused_ == Paused::OutFull) {
    clientPaused_ = Paused::No;
    bufferevent_enable(link_.clientBev(), EV_READ);
  }
  if (clientEof_ && evbuffer_get_length(bufferevent_get_output(u)) == 0) shutdown(bufferevent_getfd(u), SHUT_WR);
  trySplice();
}

void Tunnel::onClientDrained() {
  if (!active_) return;
  bufferevent* c = link_.clientBev();
  evbuffer* out = bufferevent_get_output(c);
  if (upPaused_ == Paused::OutFull) {
    upPaused_ = Paused::No;
    bufferevent_enable(link_.upstreamBev(), EV_READ);
  }
  if (upEof_ && evbuffer_get_length(out) == 0) shutdown(bufferevent_getfd(c), SHUT_WR);
  if (upEof_ && clientEof_ && evbuffer_get_length(out) == 0) return link_.tunnelOver();
  trySplice();
}

// One side finished sending: pass the half-close on once its bytes are out (TCP half-close
// semantics survive the tunnel); over when both sides are done.
void Tunnel::onEof(bool fromClient) {
  if (!active_) return;
  (fromClient ? clientEof_ : upEof_) = true;
  bufferevent* to = fromClient ? link_.upstreamBev() : link_.clientBev();
  relay(fromClient);
  if (!active_) return;
  if (evbuffer_get_length(bufferevent_get_output(to)) == 0) shutdown(bufferevent_getfd(to), SHUT_WR);
  if (clientEof_ && upEof_ && evbuffer_get_length(bufferevent_get_output(link_.clientBev())) == 0) link_.tunnelOver();
}

// Once every buffer of the tunnel is empty (our 200 is out, early client bytes forwarded), the
// sockets are handed to splice(2) and the bufferevents go quiet.
void Tunnel::trySplice() {
  if (!active_ || splice_ || clientEof_ || upEof_ || helloPending_) return;
  bufferevent* c = link_.clientBev();
  bufferevent* u = link_.upstreamBev();
  if (isTlsBev(c) || isTlsBev(u)) return;  // a WebSocket inside interception: bytes go through OpenSSL
  if (evbuffer_get_length(bufferevent_get_input(c)) || evbuffer_get_length(bufferevent_get_output(c)) ||
      evbuffer_get_length(bufferevent_get_input(u)) || evbuffer_get_length(bufferevent_get_output(u)))
    return;
  Worker& w = link_.worker();
  splice_ = SpliceTunnel::create(w.base(), bufferevent_getfd(c), bufferevent_getfd(u), w.config()->limits.bufferBytes,
                                 &Tunnel::onSpliceProgress, this);
  if (!splice_) return;  // no pipes (descriptor limit): keep relaying through the buffers
  bufferevent_disable(c, EV_READ | EV_WRITE);
  bufferevent_disable(u, EV_READ | EV_WRITE);
  clientPaused_ = upPaused_ = Paused::No;
}

void Tunnel::onSpliceProgress(void* ctx, SpliceTunnel::Outcome outcome) {
  auto* self = static_cast<Tunnel*>(ctx);
  self->link_.touch();
  if (outcome != SpliceTunnel::Outcome::Open) self->link_.tunnelOver();
}

// Reads the client's first bytes as a TLS ClientHello, without consuming them, and has the name
// it asks for (SNI) judged when it differs from the CONNECT host. True when the bytes may go
// upstream; false while the hello is incomplete, the store has not answered, or after the tunnel
// was refused.
bool Tunnel::checkClientHello() {
  mitm::ParseOutcome o = peekBufferedHello(bufferevent_get_input(link_.clientBev()));
  if (o.status == mitm::HelloStatus::NeedMore && !clientEof_) return false;
  if (o.status != mitm::HelloStatus::Parsed || o.info.sniStatus != mitm::SniStatus::Valid || o.info.sni == connectHost_) {
    helloPending_ = false;
    return true;
  }
  switch (link_.judgeTunnelSni(o.info.sni, [this] { relay(true); })) {
    case TunnelLink::SniVerdict::Pass: helloPending_ = false; return true;
    case TunnelLink::SniVerdict::Wait: return false;  // the bytes wait for the store
    case TunnelLink::SniVerdict::Refused: active_ = false; return false;
  }
  return false;
}

}  // namespace sekisho::server
