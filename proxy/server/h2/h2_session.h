// HTTP/2 towards the client of an intercepted connection (nghttp2, server side), translated to
// the HTTP/1.1 request path: each stream becomes one request on an inner connection (a
// bufferevent pair into an ordinary ClientConn in bump mode), so every h2 request goes through
// the same Host check, reputation hook, verified upstream pool, relay and access log as HTTP/1.1.
// Responses come back as HTTP/1.1, are parsed and decoded (BodyPump), and go out as h2 frames.
//
// Memory stays bounded: nghttp2 pulls response data only while the client's output is under its
// watermark; a stream's decoded body buffer stops its inner connection's reads when full; request
// data to inner connections stops the client's reads when their buffers are full.
#pragma once
#include <event2/bufferevent.h>
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/base/handles.h"
#include "proxy/http/message.h"
#include "proxy/net/address.h"
#include "proxy/server/body_pump.h"
#include "proxy/server/metrics.h"

namespace sekisho::server {
class Worker;
}  // namespace sekisho::server::h2

// HTTP/2 on both sides of an intercepted connection (nghttp2); every stream becomes one
// HTTP/1.1 exchange on the ordinary request path.
namespace sekisho::server::h2 {

// Where the inner connections send their requests: the verified origin of the CONNECT.
struct InnerTarget {
  std::string host;  // the name requests must address (SNI / CONNECT host)
  uint16_t port = 443;
  net::SocketAddr dest;
  std::string poolKey;
  net::SocketAddr peer;  // the real client, for ACLs and the log
  // Stream window granted to h2 origins beyond H2Origin::kBaseWindow for this client
  // connection's streams, summed (H2Origin::kClientWindowBudget at most).
  std::shared_ptr<uint64_t> windowBudget;
};

class H2Session {
 public:
  // `client` is the outer connection's TLS bufferevent (not owned). False from start() means the
  // session could not be set up (the caller closes).
  H2Session(Worker& w, bufferevent* client, InnerTarget target);
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  bool start();
  // Called (deferred, never inside a callback of this session) when client reads resume after a
  // pause, so bytes already buffered are processed.
  void setResume(std::function<void()> fn) { resume_ = std::move(fn); }
  // Returns false when the connection should close (protocol error, GOAWAY done, peer finished).
  bool onClientReadable();
  bool onClientDrained();
  size_t activeStreams() const { return streams_.size(); }
  bool wantsClose() const;
  // GOAWAY(NO_ERROR). `now`: the session ends once it is sent (idle connections). Otherwise the
  // streams already begun are served and the client opens no new ones (graceful shutdown); the
  // session ends with its last stream. Returns what onClientDrained() would.
  bool goAway(bool now);
  // Called (from inside the session's callbacks) when its last open stream has closed.
  void setIdleHook(std::function<void()> fn) { idle_ = std::move(fn); }
  // An idle session gives back the pages of nghttp2's outbound frame buffer (16 KiB, allocated
  // for the session's life; its bytes are dead once everything is sent). They come back, zeroed,
  // when the next frame is written. Returns true when there was something to give back.
  bool releaseIdleMemory();

 private:
  struct Stream;
  static ssize_t onSend(nghttp2_session*, const uint8_t*, size_t, int, void*);
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame*, void*);
  static int onHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t,
                      void*);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int onStreamClose(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*, nghttp2_data_source*, void*);
  static void innerReadCb(bufferevent*, void*);
  static void innerWriteCb(bufferevent*, void*);
  static void innerEventCb(bufferevent*, short, void*);

  void startRequest(Stream& s);
  void onInnerReadable(Stream& s);
  void onInnerEnded(Stream& s, bool clean);
  void respondDirect(Stream& s, int status, const std::string& text);
  void refuse(Stream& s, int status, Reason why, const std::string& text);
  bool flush();
  Stream* find(int32_t id);

  // nghttp2 allocates through these (nghttp2_mem): they find its frame buffer among the blocks.
  static void* memMalloc(size_t size, void* arg);
  static void memFree(void* ptr, void* arg);
  static void* memCalloc(size_t n, size_t size, void* arg);
  static void* memRealloc(void* ptr, size_t size, void* arg);

  Worker& w_;
  bufferevent* client_;
  InnerTarget target_;
  nghttp2_mem mem_{this, &H2Session::memMalloc, &H2Session::memFree, &H2Session::memCalloc, &H2Session::memRealloc};
  bool creating_ = false;     // inside nghttp2_session_server_new3: its first big block is the frame buffer
  void* frameBuf_ = nullptr;  // page-aligned, frameBufSize_ bytes (whole pages)
  size_t frameBufSize_ = 0;
  bool frameBufDirty_ = false;  // written since it was last given back
  std::function<void()> idle_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::unique_ptr<Stream>> streams_;
  bool clientPaused_ = false;
  std::function<void()> resume_;
};

}  // namespace sekisho::server::h2
