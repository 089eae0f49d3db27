// Tunnel: opaque bytes both ways between the client and the origin: a CONNECT that is not
// decrypted (no_intercept, a client certificate, a pinned client, a server that speaks first),
// or a WebSocket after its 101. Half-closes pass through; once every buffer is empty the sockets
// go to splice(2) (SpliceTunnel) and the bufferevents go quiet.
//
// Before any client byte goes upstream a plain CONNECT's first bytes are read as a TLS
// ClientHello, without consuming them: a client may CONNECT to an allowed name and ask for a
// blocked one inside (SNI), which TunnelLink::judgeTunnelSni decides.
//
// It owns its state (half-closes, paused sides, the splice, bytes counted) and asks its
// connection for the rest through TunnelLink. Entered by start() in ConnState::Tunnel; it ends
// with TunnelLink::tunnelOver (both sides done, or the splice ended).
#pragma once
#include <event2/bufferevent.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "proxy/server/bev_io.h"
#include "proxy/server/splice_tunnel.h"

namespace sekisho::server {

class Worker;

class TunnelLink : public StreamLink {
 public:
  virtual void tunnelOver() = 0;
  enum class SniVerdict : uint8_t { Pass, Wait, Refused };
  // The name a tunnel's ClientHello asks for, which is not the CONNECT host. Wait: the store
  // answers later and `resume` runs then; Refused: the connection is closing.
  virtual SniVerdict judgeTunnelSni(const std::string& sni, std::function<void()> resume) = 0;

 protected:
  ~TunnelLink() = default;
};

class Tunnel {
 public:
  explicit Tunnel(TunnelLink& link) : link_(link) {}
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

  // Starts relaying what either side has already buffered. `connectHost`: the CONNECT's host,
  // when the client's hello is to be checked first (empty: it is not, e.g. a WebSocket or a
  // hello the bump already decided on).
  void start(const std::string& connectHost);
  void stop();  // the connection closes: the splice's events must not outlive the sockets

  void onClientReadable() { relay(true); }
  void onUpstreamReadable() { relay(false); }
  void onClientDrained();
  void onUpstreamDrained();
  void onEof(bool fromClient);  // that side finished sending (a clean EOF)
  uint64_t bytesToClient() const { return toClient_ + (splice_ ? splice_->toClient() : 0); }

 private:
  void relay(bool fromClient);
  void trySplice();
  bool checkClientHello();
  static void onSpliceProgress(void* ctx, SpliceTunnel::Outcome outcome);

  TunnelLink& link_;
  bool active_ = false;
  bool clientEof_ = false, upEof_ = false;  // half-closes seen
  bool helloPending_ = false;  // client bytes wait until its ClientHello is read (SNI check)
  std::string connectHost_;
  Paused clientPaused_ = Paused::No;  // client reads paused: the origin's output is full
  Paused upPaused_ = Paused::No;      // origin reads paused: the client's output is full
  uint64_t toClient_ = 0;
  std::unique_ptr<SpliceTunnel> splice_;  // set once the tunnel runs on splice(2)
};

}  // namespace sekisho::server
