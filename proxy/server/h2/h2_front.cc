#include "proxy/server/h2/h2_front.h"

#include <event2/event.h>

#include <algorithm>

#include "proxy/server/worker.h"

namespace sekisho::server::h2 {

using std::chrono::milliseconds;

H2Front::H2Front(Worker& w, H2FrontLink& link, bufferevent* client, InnerTarget target)
    : w_(w), link_(link), client_(client), session_(w, client, std::move(target)) {
  resume_.reset(event_new(w.base(), -1, 0, &H2Front::onResume, this));
  session_.setResume([this] { event_active(resume_.get(), EV_TIMEOUT, 0); });
  // A second after its last stream, an idle session gives its frame buffer back (busy()).
  session_.setIdleHook([this] {
    link_.armTimer(std::min<milliseconds>(milliseconds(1000), w_.config()->timeouts.clientIdle));
    link_.idleSinceNow();
  });
}

bool H2Front::start() {
  w_.metrics().h2Sessions.fetch_add(1, std::memory_order_relaxed);
  if (!session_.start()) return false;
  link_.armTimer(w_.config()->timeouts.clientIdle);
  if (evbuffer_get_length(bufferevent_get_input(client_))) onReadable();  // may end it: nothing after
  return true;
}

void H2Front::onReadable() {
  if (!session_.onClientReadable()) link_.h2Over();
}

void H2Front::onDrained() {
  if (!session_.onClientDrained()) link_.h2Over();
}

void H2Front::onResume(evutil_socket_t, short, void* arg) { static_cast<H2Front*>(arg)->onReadable(); }

bool H2Front::busy() {
  if (session_.activeStreams() > 0) {
    link_.armTimer(w_.config()->timeouts.clientIdle);
    return true;
  }
  session_.releaseIdleMemory();
  return false;
}

void H2Front::idle(uint64_t idleForMs) {
  if (session_.activeStreams() > 0) return;
  milliseconds limit = w_.config()->timeouts.clientIdle;
  if (idleForMs < uint64_t(limit.count())) return link_.armTimer(milliseconds(uint64_t(limit.count()) - idleForMs));
  // Idle: a GOAWAY first, so that a browser does not send its next request into a closing
  // connection.
  session_.goAway(true);
  link_.h2Over();
}

bool H2Front::reclaim() {
  if (session_.activeStreams() > 0) return false;
  session_.goAway(true);
  link_.h2Over();
  return true;
}

void H2Front::shutdown() {
  if (!session_.goAway(false)) link_.h2Over();
}

}  // namespace sekisho::server::h2
