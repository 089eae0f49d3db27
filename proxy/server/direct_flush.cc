#include "proxy/server/direct_flush.h"

#include <event2/buffer.h>

namespace sekisho::server {

namespace {
thread_local DirectFlush* tCurrent = nullptr;
}

DirectFlush::DirectFlush(event_base* base) { ev_ = event_new(base, -1, 0, &DirectFlush::onFlush, this); }

DirectFlush::~DirectFlush() {
  if (tCurrent == this) tCurrent = nullptr;
  if (ev_) event_free(ev_);
  for (bufferevent* b : queued_) bufferevent_decref(b);
}

int DirectFlush::writeOut(evbuffer* out, evutil_socket_t fd) {
  // libevent keeps a socket bufferevent's output frozen at the front except inside its own write
  // callback (evbuffer_write on a frozen buffer fails without a system call).
  evbuffer_unfreeze(out, 1);
  int n = evbuffer_write(out, fd);
  evbuffer_freeze(out, 1);
  return n;
}

void DirectFlush::bind(DirectFlush* f) { tCurrent = f; }

void DirectFlush::quiet(bufferevent* socketBev) {
  if (!tCurrent || !socketBev || bufferevent_getfd(socketBev) < 0) return;
  evbuffer* out = bufferevent_get_output(socketBev);
  evbuffer_add_cb(out, &DirectFlush::onOutput, socketBev);
  if (evbuffer_get_length(out) == 0) {
    bufferevent_disable(socketBev, EV_WRITE);
  } else if (!(bufferevent_get_enabled(socketBev) & EV_WRITE)) {
    tCurrent->queue(socketBev);
  }
}

// Runs on every change of a quiet bufferevent's output (libevent calls it synchronously).
void DirectFlush::onOutput(evbuffer* buf, const evbuffer_cb_info* info, void* arg) {
  auto* bev = static_cast<bufferevent*>(arg);
  bool writing = bufferevent_get_enabled(bev) & EV_WRITE;
  if (info->n_added && !writing) {
    if (tCurrent) tCurrent->queue(bev);
    else bufferevent_enable(bev, EV_WRITE);
  } else if (info->n_deleted && writing && evbuffer_get_length(buf) == 0) {
    bufferevent_disable(bev, EV_WRITE);  // drained by libevent's write callback: quiet again
  }
}

void DirectFlush::queue(bufferevent* bev) {
  for (bufferevent* b : queued_)
    if (b == bev) return;
  bufferevent_incref(bev);
  queued_.push_back(bev);
  if (!active_) {
    active_ = true;
    event_active(ev_, EV_WRITE, 0);  // runs later in this same loop pass, before epoll_wait
  }
}

void DirectFlush::onFlush(evutil_socket_t, short, void* arg) { static_cast<DirectFlush*>(arg)->flushAll(); }

void DirectFlush::flushAll() {
  active_ = false;
  work_.swap(queued_);
  for (bufferevent* bev : work_) {
    evbuffer* out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (evbuffer_get_length(out) > 0 && fd >= 0 && !(bufferevent_get_enabled(bev) & EV_WRITE)) {
      int n = writeOut(out, fd);
      ++directWrites_;
      if (evbuffer_get_length(out) > 0 || n < 0) {
        // The socket is full (or failed): libevent's write callback takes over and reports
        // any error through the event callback.
        ++deferred_;
        bufferevent_enable(bev, EV_WRITE);
      } else {
        // Room again: let the filter above move what it still holds (its write callback).
        bufferevent_trigger(bev, EV_WRITE, 0);
      }
    }
    bufferevent_decref(bev);
  }
  work_.clear();
}

}  // namespace sekisho::server
