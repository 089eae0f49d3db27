// Direct writes for the socket bufferevent under a TLS filter: encrypted bytes leave in one
// writev from the loop pass that produced them, with no EPOLLOUT registration. libevent would
// add EPOLLOUT for every record, wait a loop turn, write and remove it again (two epoll_ctl and
// a loop turn per write); here the write event is on only while the socket refuses bytes.
//
// How: quiet() keeps the socket bufferevent's EV_WRITE off and watches its output buffer. Bytes
// added there (by the filter: records, handshake flights, alerts) queue the bufferevent on the
// worker's DirectFlush, which one event activated in the same loop pass writes out. What the
// socket does not take turns EV_WRITE on; once the output drains it goes off again. A queued
// bufferevent holds a reference, so one freed meanwhile is still flushed, then released.
#pragma once
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <cstdint>
#include <vector>

namespace sekisho::server {

class DirectFlush {
 public:
  explicit DirectFlush(event_base* base);
  ~DirectFlush();
  DirectFlush(const DirectFlush&) = delete;
  DirectFlush& operator=(const DirectFlush&) = delete;

  // Makes this the calling thread's flusher (nullptr clears it).
  static void bind(DirectFlush* f);

  // Puts `socketBev` (a socket bufferevent, usually the one under a TLS filter) into direct-write
  // mode. Without a flusher on this thread it stays as libevent made it.
  static void quiet(bufferevent* socketBev);

  // Writes what `out` (a socket bufferevent's output) holds to `fd` now, as far as the socket
  // takes it; evbuffer_write's result.
  static int writeOut(evbuffer* out, evutil_socket_t fd);

  uint64_t directWrites() const { return directWrites_; }
  uint64_t deferredWrites() const { return deferred_; }

 private:
  static void onOutput(evbuffer* buf, const evbuffer_cb_info* info, void* arg);
  static void onFlush(evutil_socket_t, short, void* arg);
  void queue(bufferevent* bev);
  void flushAll();

  event* ev_ = nullptr;
  std::vector<bufferevent*> queued_;  // each holds a bufferevent_incref
  std::vector<bufferevent*> work_;
  bool active_ = false;
  uint64_t directWrites_ = 0;
  uint64_t deferred_ = 0;  // writes the socket did not take whole (EV_WRITE turned on)
};

}  // namespace sekisho::server
