#include "proxy/server/splice_tunnel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace sekisho::server {

std::unique_ptr<SpliceTunnel> SpliceTunnel::create(event_base* base, int clientFd, int upstreamFd, size_t pipeBytes,
                                                   Notify notify, void* ctx) {
  std::unique_ptr<SpliceTunnel> t(new SpliceTunnel(notify, ctx));
  t->pipeBytes_ = pipeBytes;
  int fds[2][2];
  for (int i = 0; i < 2; ++i) {
    if (pipe2(fds[i], O_NONBLOCK | O_CLOEXEC) != 0) {
      if (i == 1) {
        ::close(fds[0][0]);
        ::close(fds[0][1]);
      }
      return nullptr;
    }
    // A larger pipe means fewer wake-ups per megabyte; the kernel may refuse (then 64 KiB).
    int got = fcntl(fds[i][1], F_SETPIPE_SZ, int(pipeBytes));
    if (got > 0) t->pipeBytes_ = size_t(got);
    else t->pipeBytes_ = 65536;
  }
  int srcs[2] = {clientFd, upstreamFd};
  int dsts[2] = {upstreamFd, clientFd};
  for (int i = 0; i < 2; ++i) {
    Dir& d = t->dirs_[i];
    d.src = srcs[i];
    d.dst = dsts[i];
    d.pipeR = fds[i][0];
    d.pipeW = fds[i][1];
    d.readEv.reset(event_new(base, d.src, EV_READ | EV_PERSIST, &SpliceTunnel::onEvent, t.get()));
    d.writeEv.reset(event_new(base, d.dst, EV_WRITE | EV_PERSIST, &SpliceTunnel::onEvent, t.get()));
    event_add(d.readEv.get(), nullptr);
  }
  return t;
}

SpliceTunnel::~SpliceTunnel() {
  for (auto& d : dirs_) {
    d.readEv.reset();
    d.writeEv.reset();
    if (d.pipeR >= 0) ::close(d.pipeR);
    if (d.pipeW >= 0) ::close(d.pipeW);
  }
}

// Moves what it can in one direction. Open: waiting on an event; Finished: this direction is
// done (EOF passed on); Failed: a socket error.
SpliceTunnel::Outcome SpliceTunnel::pump(Dir& d) {
  for (;;) {
    while (d.inPipe > 0) {
      ssize_t n = splice(d.pipeR, nullptr, d.dst, nullptr, d.inPipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.inPipe -= size_t(n);
        d.total += uint64_t(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        // Destination full: stop reading the source until it drains (backpressure).
        event_del(d.readEv.get());
        event_add(d.writeEv.get(), nullptr);
        return Outcome::Open;
      }
      return Outcome::Failed;
    }
    event_del(d.writeEv.get());
    if (d.srcEof) {
      if (!d.shut) {
        shutdown(d.dst, SHUT_WR);
        d.shut = true;
      }
      event_del(d.readEv.get());
      return Outcome::Finished;
    }
    ssize_t n = splice(d.src, nullptr, d.pipeW, nullptr, pipeBytes_, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d.inPipe += size_t(n);
      continue;
    }
    if (n == 0) {
      d.srcEof = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      event_add(d.readEv.get(), nullptr);
      return Outcome::Open;
    }
    return Outcome::Failed;
  }
}

SpliceTunnel::Outcome SpliceTunnel::step() {
  Outcome a = pump(dirs_[0]);
  if (a == Outcome::Failed) return a;
  Outcome b = pump(dirs_[1]);
  if (b == Outcome::Failed) return b;
  return (a == Outcome::Finished && b == Outcome::Finished) ? Outcome::Finished : Outcome::Open;
}

void SpliceTunnel::onEvent(evutil_socket_t, short, void* arg) {
  auto* t = static_cast<SpliceTunnel*>(arg);
  Outcome o = t->step();
  Notify notify = t->notify_;
  void* ctx = t->ctx_;
  notify(ctx, o);  // may destroy *t: nothing after this line
}

}  // namespace sekisho::server
