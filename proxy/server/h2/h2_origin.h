// HTTP/2 towards an origin that chose h2 (ALPN) on a verified TLS connection: one connection
// carries the requests of many intercepted HTTP/2 client streams, instead of one origin
// connection (and one handshake) per concurrent stream.
//
// A request reaches an H2Origin as HTTP/1.1 on a channel: one end of a bufferevent pair whose
// other end is an ordinary ClientConn's upstream. The channel's request is translated to one h2
// stream and the response comes back on the channel as HTTP/1.1 (Content-Length kept, otherwise
// chunked with the trailers), so the ClientConn's relay, strict response parsing, limits, timeouts
// and access log are the same as with an HTTP/1.1 origin. One request per channel.
//
// Memory per stream stays bounded: response DATA is acknowledged to the origin at the stream
// level (WINDOW_UPDATE) only once the ClientConn has taken it off the channel, so an origin can
// never have more than one stream window in flight towards a client that does not read; a
// request body is read from the channel only while its h2 buffer is under the stream buffer size.
// The connection-level window is acknowledged as DATA arrives: it is shared by every client of
// the worker, and one that stops reading must not stall the others' streams. A stream's window
// starts at kStreamWindow and doubles, up to kMaxStreamWindow, each time its client has taken a
// whole window and left nothing waiting (a fast reader far from the origin needs a window per
// round trip); the windows grown beyond the first add up to kGrowBudget per connection at most.
//
// A stream the origin refuses or resets before answering, or one cut by GOAWAY or the connection
// ending, closes its channel with nothing written: the ClientConn then retries an idempotent
// request once on a new connection, as it does when a pooled HTTP/1.1 connection turns out to be
// closed. Any other request is retried only when the origin cannot have seen it (RFC 9113 §8.7):
// REFUSED_STREAM (also what nghttp2 gives the streams above a GOAWAY's last stream id), or a
// request that never became a stream; H2Origins::unprocessed() tells the ClientConn so. Such a
// request on a connection the origin has been silent on for kUnsafeAfterSilenceMs waits for the
// answer to a PING before it becomes a stream: if none comes, it was never sent, and is retried
// on a new connection whatever its method.
//
// An idle connection the origin has been silent on for kPingAfterSilenceMs is asked for a PING
// when a new stream is put on it: a firewall or NAT box that dropped an idle connection without a word
// would otherwise swallow every request sent on it until each timed out. Nothing heard within
// kPingTimeoutMs ends the connection, and its unanswered streams are retried on a new one.
#pragma once
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "proxy/base/handles.h"

namespace sekisho::server {
class Worker;
}  // namespace sekisho::server::h2

// HTTP/2 on both sides of an intercepted connection (nghttp2); every stream becomes one
// HTTP/1.1 exchange on the ordinary request path.
namespace sekisho::server::h2 {

class H2Origin {
 public:
  // One download's throughput is at most a window per round trip: 256 KiB is ~5 MB/s to an
  // origin 50 ms away, 2 MiB ~40 MB/s (what HTTP/1.1 gets from TCP's own window). Unread data per
  // connection: at most 100 x 256 KiB, plus kGrowBudget for the windows of fast readers.
  static constexpr uint32_t kStreamWindow = 256 * 1024;
  // Every stream starts at kBaseWindow (SETTINGS_INITIAL_WINDOW_SIZE) and is raised to
  // kStreamWindow at once, then grown, only while its client connection's streams hold less
  // than kClientWindowBudget beyond kBaseWindow each: one client with 100 unread downloads holds
  // 100 x 64 KiB + 4 MiB of windows, not 100 x 256 KiB.
  static constexpr uint32_t kBaseWindow = 64 * 1024;
  static constexpr uint64_t kClientWindowBudget = 4 * 1024 * 1024;
  static constexpr uint32_t kMaxStreamWindow = 2 * 1024 * 1024;
  static constexpr uint64_t kGrowBudget = 16 * 1024 * 1024;
  static constexpr uint32_t kConnectionWindow = 16 * 1024 * 1024;
  static constexpr uint32_t kMaxStreams = 100;  // ours, whatever the origin allows beyond it
  static constexpr uint64_t kPingAfterSilenceMs = 2000;
  static constexpr uint64_t kPingTimeoutMs = 3000;
  static constexpr uint64_t kUnsafeAfterSilenceMs = 2000;
  static constexpr size_t kMaxTakenPerRead = 256 * 1024;  // decrypted per read event, at most

  // `tls` is a verified TLS bufferevent on which the origin selected h2.
  H2Origin(Worker& w, std::string key, BevPtr tls);
  ~H2Origin();
  H2Origin(const H2Origin&) = delete;
  H2Origin& operator=(const H2Origin&) = delete;

  bool start();  // the connection preface and our SETTINGS; false: not usable
  // Whether a new request may start here: alive, no GOAWAY, under the concurrent stream limit.
  bool canOpen() const;
  // A channel for one request (the ClientConn's end of the pair), or nullptr. `unsafe`: its
  // request will not be retried (not idempotent); on a connection the origin has been silent on,
  // it waits for a PING's answer (nullptr if the connection is busy: no PING is sent there).
  // `budget`: the client connection's window budget (InnerTarget::windowBudget), or null.
  BevPtr open(bool unsafe = false, std::shared_ptr<uint64_t> budget = nullptr);
  SSL* ssl() const { return bufferevent_openssl_get_ssl(tls_.get()); }
  bool dead() const { return dead_; }
  size_t channels() const { return chans_.size(); }

 private:
  struct Chan;
  static ssize_t readRequestBody(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*, nghttp2_data_source*, void*);
  static int onHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t,
                      void*);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int onStreamClose(nghttp2_session*, int32_t, uint32_t, void*);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame*, void*);
  // Raises a stream's window from `from` to `to` within its client's budget (and, beyond
  // kStreamWindow, the connection's kGrowBudget); false when there is no room.
  bool raiseWindow(Chan& c, uint32_t to);
  static void tlsReadCb(bufferevent*, void*);
  static void tlsWriteCb(bufferevent*, void*);
  static void tlsEventCb(bufferevent*, short, void*);
  static void chanReadCb(bufferevent*, void*);
  static void chanWriteCb(bufferevent*, void*);
  static void chanEventCb(bufferevent*, short, void*);
  static void idleCb(evutil_socket_t, short, void*);
  static void pingCb(evutil_socket_t, short, void*);

  bool startSession();
  void onTlsReadable();
  void takeBufferedRecords();
  void pokePending();
  void onChanReadable(Chan& c);
  void releaseHeld();  // the origin was heard: held requests become streams
  void onChanDrained(Chan& c);
  void startStream(Chan& c);
  void pumpRequest(Chan& c);
  void writeResponseHead(Chan& c, bool endStream);
  void endResponse(Chan& c);
  // Frees it: the ClientConn sees the end of its upstream. `unprocessed`: the origin never acted
  // on its request (any request may then be retried).
  void closeChan(Chan& c, bool unprocessed = false);
  Chan* byStream(int32_t id);
  bool flush();
  void die(const char* why);
  void armIdle();
  uint64_t nowMs() const;

  Worker& w_;
  std::string key_;
  BevPtr tls_;
  nghttp2_session* session_ = nullptr;
  EventPtr idle_;
  EventPtr ping_;
  uint64_t lastHeardMs_ = 0;  // when the origin last sent anything
  uint64_t pingSentMs_ = 0;   // non-zero while a PING waits for an answer
  std::list<std::unique_ptr<Chan>> chans_;
  std::unordered_map<int32_t, Chan*> streams_;
  bool dead_ = false, goaway_ = false, flushing_ = false;
  size_t repumps_ = 0;  // channels with Chan::repump set (flush() looks only when there are any)
  uint64_t grown_ = 0;  // the open streams' windows beyond kStreamWindow, summed
};

// The h2 origin connections of one worker, by pool key (UpstreamPool::tlsKey). Dead ones are
// freed on the loop's next turn, never inside their own callbacks.
class H2Origins {
 public:
  explicit H2Origins(Worker& w) : w_(w) {}
  ~H2Origins();
  // One that can take a new request now, or nullptr.
  H2Origin* find(const std::string& key);
  bool has(const std::string& key) { return find(key) != nullptr; }
  // Takes a verified TLS connection on which the origin chose h2; nullptr when it cannot start.
  H2Origin* add(const std::string& key, BevPtr tls);
  void reap();  // frees the dead ones
  // The channels (by the ClientConn's end) whose request the origin never acted on, as they are
  // closed; the ClientConn asks before deciding on a retry and forgets its end when it frees it.
  void markUnprocessed(const bufferevent* clientEnd) { unprocessed_.insert(clientEnd); }
  bool unprocessed(const bufferevent* clientEnd) const { return unprocessed_.count(clientEnd) != 0; }
  // A held channel (H2Origin::open): its ClientConn sends the request head but keeps the body
  // until the origin is heard, then H2Origin wakes it with a write event on its end. So a request
  // that is never sent keeps its body, and can go on a new connection.
  void markHeld(const bufferevent* clientEnd) { held_.insert(clientEnd); }
  void unmarkHeld(const bufferevent* clientEnd) { held_.erase(clientEnd); }
  bool held(const bufferevent* clientEnd) const { return held_.count(clientEnd) != 0; }
  void forget(const bufferevent* clientEnd) {
    unprocessed_.erase(clientEnd);
    held_.erase(clientEnd);
  }
  void scheduleReap();
  void clear();
  size_t size() const;

 private:
  static void reapCb(evutil_socket_t, short, void*);
  Worker& w_;
  std::unordered_map<std::string, std::list<std::unique_ptr<H2Origin>>> byKey_;
  EventPtr reapEv_;
  std::unordered_set<const bufferevent*> unprocessed_, held_;
};

bool alpnIsH2(SSL* ssl);

}  // namespace sekisho::server::h2
