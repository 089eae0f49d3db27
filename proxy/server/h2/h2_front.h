// H2Front: an intercepted client connection whose client chose h2 (ALPN), as its connection
// sees it. It owns the session (h2_session.h) and what the connection needs decided about it:
// reading what was buffered during a pause (a deferred resume on its own event, so it can never
// outlive the session), when an idle session gives memory back and when it ends with a GOAWAY
// (the connection's timer), which idle sessions may be reclaimed, and graceful shutdown.
// Each stream is a request on an inner connection that takes the ordinary bumped request path.
//
// Whatever ends the session ends in H2FrontLink::h2Over(), always as the last thing a call of
// this class does: the connection destroys the front there.
#pragma once
#include <event2/bufferevent.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include "proxy/base/handles.h"
#include "proxy/server/h2/h2_session.h"

namespace sekisho::server {
class Worker;
}

namespace sekisho::server::h2 {

class H2FrontLink {
 public:
  virtual void armTimer(std::chrono::milliseconds ms) = 0;
  virtual void idleSinceNow() = 0;  // the connection is idle from now (the worker's idle list)
  virtual void h2Over() = 0;        // the session ended: the connection drains and closes

 protected:
  ~H2FrontLink() = default;
};

class H2Front {
 public:
  H2Front(Worker& w, H2FrontLink& link, bufferevent* client, InnerTarget target);
  H2Front(const H2Front&) = delete;
  H2Front& operator=(const H2Front&) = delete;

  // The connection preface and SETTINGS, then what the client sent already. False when the
  // session could not be set up (the caller closes).
  bool start();
  void onReadable();  // client bytes
  void onDrained();   // the client took what we wrote
  // The connection's timer: busy() re-arms it while streams are open (and is true); otherwise
  // the idle session's memory goes back, and after the connection's own step idle() ends the
  // session with a GOAWAY once it idled for timeouts.clientIdle.
  bool busy();
  void idle(uint64_t idleForMs);
  // Worker::reclaimIdle: a session without streams ends now (GOAWAY NO_ERROR: the browser opens
  // a new connection for its next request). False when it has streams.
  bool reclaim();
  void shutdown();  // GOAWAY: no new streams; the session ends with its last one

 private:
  static void onResume(evutil_socket_t, short, void* arg);

  Worker& w_;
  H2FrontLink& link_;
  bufferevent* client_;
  H2Session session_;
  EventPtr resume_;
};

}  // namespace sekisho::server::h2
