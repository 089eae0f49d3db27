// Zero-copy relay of an established CONNECT tunnel: bytes move socket -> pipe -> socket with
// splice(2), never through user space. Each direction has its own pipe and stops reading while
// its pipe cannot be emptied into the destination (backpressure), and passes a half-close on
// once its pipe is empty.
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <memory>

#include "proxy/base/handles.h"

namespace sekisho::server {

class SpliceTunnel {
 public:
  enum class Outcome : uint8_t { Open, Finished, Failed };
  // Called after progress (to refresh idle timers) and when the tunnel ends; the callee may
  // destroy this object from inside it: nothing touches members afterwards.
  using Notify = void (*)(void* ctx, Outcome);

  // Takes no ownership of the sockets. Returns nullptr when pipes cannot be made (the caller then
  // keeps relaying through its buffers).
  static std::unique_ptr<SpliceTunnel> create(event_base* base, int clientFd, int upstreamFd, size_t pipeBytes,
                                              Notify notify, void* ctx);
  ~SpliceTunnel();
  SpliceTunnel(const SpliceTunnel&) = delete;
  SpliceTunnel& operator=(const SpliceTunnel&) = delete;

  uint64_t toClient() const { return dirs_[1].total; }
  uint64_t fromClient() const { return dirs_[0].total; }

 private:
  struct Dir {
    int src = -1, dst = -1;
    int pipeR = -1, pipeW = -1;
    size_t inPipe = 0;
    uint64_t total = 0;
    bool srcEof = false, shut = false;
    EventPtr readEv, writeEv;
  };
  SpliceTunnel(Notify notify, void* ctx) : notify_(notify), ctx_(ctx) {}
  static void onEvent(evutil_socket_t, short, void* arg);
  Outcome pump(Dir& d);
  Outcome step();

  Dir dirs_[2];  // 0: client -> upstream, 1: upstream -> client
  size_t pipeBytes_ = 65536;
  Notify notify_;
  void* ctx_;
};

}  // namespace sekisho::server
