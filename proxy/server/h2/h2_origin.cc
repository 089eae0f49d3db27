#include "proxy/server/h2/h2_origin.h"

#include <vector>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>  // ev_read, for the records OpenSSL read ahead
#include <event2/event.h>

#include <openssl/err.h>

#include <algorithm>
#include <cstring>

#include "proxy/base/log.h"
#include "proxy/base/strings.h"
#include "proxy/http1/parser.h"
#include "proxy/server/body_pump.h"
#include "proxy/server/worker.h"

namespace sekisho::server::h2 {

namespace {
constexpr size_t kMaxResponseHeaderBytes = 64 * 1024;  // names, values and 32 bytes each (RFC 9113 §6.5.2)

nghttp2_nv nv(std::string_view n, std::string_view v) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())), reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())),
          n.size(), v.size(), NGHTTP2_NV_FLAG_NONE};
}

void addStr(evbuffer* b, std::string_view s) { evbuffer_add(b, s.data(), s.size()); }
}  // namespace

bool alpnIsH2(SSL* ssl) {
  if (!ssl) return false;
  const unsigned char* p = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(ssl, &p, &n);
  return n == 2 && p[0] == 'h' && p[1] == '2';
}

struct H2Origin::Chan {
  H2Origin* owner = nullptr;
  std::list<std::unique_ptr<Chan>>::iterator self;
  BevPtr end;           // ours; the other end is the ClientConn's upstream
  int32_t id = -1;      // the h2 stream, once the request head arrived
  // Request: the HTTP/1.1 head from the channel, then its body decoded into reqBody.
  bool headParsed = false, reqDone = false, chanPaused = false, repump = false;
  bool held = false;  // not idempotent, on a silent connection: waits until the origin is heard
  size_t scanned = 0;
  std::string method;
  BodyPump reqPump;
  EvBufferPtr reqBody{evbuffer_new()};
  // Response: headers of the current HEADERS frame, then the HTTP/1.1 translation.
  std::vector<std::pair<std::string, std::string>> fields;
  size_t fieldBytes = 0;
  bool headWritten = false, chunked = false, bodyless = false, ended = false;
  uint64_t unconsumed = 0;  // DATA bytes not yet acknowledged to the origin (stream level)
  uint32_t window = H2Origin::kBaseWindow;  // this stream's local window
  uint64_t takenSinceGrow = 0;  // bytes the ClientConn took since the window last grew
  std::shared_ptr<uint64_t> budget;  // its client connection's (InnerTarget::windowBudget)
  uint64_t charged = 0;  // window beyond kBaseWindow, counted in *budget
  uint64_t grown = 0;    // window beyond kStreamWindow, counted in grown_
};

H2Origin::H2Origin(Worker& w, std::string key, BevPtr tls) : w_(w), key_(std::move(key)), tls_(std::move(tls)) {}

H2Origin::~H2Origin() {
  streams_.clear();
  for (auto& c : chans_)  // a pair end freed without a word leaves its partner waiting
    if (c->end) bufferevent_flush(c->end.get(), EV_WRITE, BEV_FINISHED);
  chans_.clear();
  if (tls_) bufferevent_setcb(tls_.get(), nullptr, nullptr, nullptr, nullptr);
  if (session_) nghttp2_session_del(session_);
}

bool H2Origin::start() {
  if (startSession()) return true;
  die("could not start");  // never offered to a request; freed by the registry's reap
  return false;
}

bool H2Origin::startSession() {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return false;
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2Origin::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Origin::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Origin::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Origin::onStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &H2Origin::onFrameSend);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cb);
    return false;
  }
  // Received DATA is acknowledged only when the client side has taken it (onChanDrained).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_reserved_remote_streams(opt, 0);  // no server push
  int rv = nghttp2_session_client_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) return false;
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kBaseWindow},
                                       {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, uint32_t(kMaxResponseHeaderBytes)}};
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 3) != 0) return false;
  if (nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, int32_t(kConnectionWindow)) != 0)
    return false;
  bufferevent_setcb(tls_.get(), &H2Origin::tlsReadCb, &H2Origin::tlsWriteCb, &H2Origin::tlsEventCb, this);
  size_t limit = w_.config()->limits.bufferBytes;
  bufferevent_setwatermark(tls_.get(), EV_READ, 0, 0);  // paced by flow control, not by reads
  bufferevent_setwatermark(tls_.get(), EV_WRITE, limit / 2, 0);
  bufferevent_enable(tls_.get(), EV_READ | EV_WRITE);
  idle_.reset(evtimer_new(w_.base(), &H2Origin::idleCb, this));
  ping_.reset(evtimer_new(w_.base(), &H2Origin::pingCb, this));
  lastHeardMs_ = nowMs();
  w_.metrics().upstreamH2Sessions.fetch_add(1, std::memory_order_relaxed);
  armIdle();
  if (!flush()) return false;
  // Bytes that arrived with the handshake (the origin's SETTINGS) are already buffered.
  if (evbuffer_get_length(bufferevent_get_input(tls_.get()))) onTlsReadable();
  pokePending();
  return !dead_;
}

bool H2Origin::canOpen() const {
  if (dead_ || goaway_ || !session_) return false;
  uint32_t peerMax = nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  if (chans_.size() >= std::min(peerMax, kMaxStreams)) return false;
  return nghttp2_session_get_next_stream_id(session_) < (1u << 31) - 2 * kMaxStreams;
}

BevPtr H2Origin::open(bool unsafe, std::shared_ptr<uint64_t> budget) {
  if (!canOpen()) return nullptr;
  uint64_t now = nowMs();
  bool quiet = now - lastHeardMs_ >= kUnsafeAfterSilenceMs;
  bool busy = !chans_.empty() || evbuffer_get_length(bufferevent_get_output(tls_.get())) != 0;
  if (unsafe && quiet && busy && !pingSentMs_) return nullptr;
  bufferevent* pair[2] = {nullptr, nullptr};
  if (bufferevent_pair_new(w_.base(), BEV_OPT_DEFER_CALLBACKS, pair) != 0) return nullptr;
  w_.h2Origins().forget(pair[0]);  // a mark left by a freed channel at the same address
  // Only an idle connection is asked for a PING: streams under way show life by themselves, and
  // behind a slow upload the PING would wait its turn in our output and time out wrongly.
  bool idle = !busy;
  auto c = std::make_unique<Chan>();
  c->owner = this;
  c->held = unsafe && quiet;  // until the origin is heard (the PING below, or one in flight)
  c->budget = std::move(budget);
  c->end.reset(pair[1]);
  size_t limit = streamBufferBytes(*w_.config());
  bufferevent_setcb(pair[1], &H2Origin::chanReadCb, &H2Origin::chanWriteCb, &H2Origin::chanEventCb, c.get());
  bufferevent_setwatermark(pair[1], EV_READ, 0, limit);
  bufferevent_setwatermark(pair[1], EV_WRITE, limit / 2, 0);
  bufferevent_enable(pair[1], EV_READ | EV_WRITE);
  chans_.push_front(std::move(c));
  chans_.front()->self = chans_.begin();
  if (idle_) evtimer_del(idle_.get());
  if (idle && ping_ && !pingSentMs_ && now - lastHeardMs_ >= kPingAfterSilenceMs &&
      nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr) == 0) {
    pingSentMs_ = now;  // it leaves with the stream's HEADERS
    timeval tv{time_t(kPingTimeoutMs / 1000), suseconds_t((kPingTimeoutMs % 1000) * 1000)};
    evtimer_add(ping_.get(), &tv);
  }
  if (!pingSentMs_) chans_.front()->held = false;  // no PING to wait for after all
  if (chans_.front()->held) w_.h2Origins().markHeld(pair[0]);
  return BevPtr(pair[0]);
}

H2Origin::Chan* H2Origin::byStream(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

// ---------------------------------------------------------------- the origin's side
void H2Origin::tlsReadCb(bufferevent*, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  self->takeBufferedRecords();
  self->onTlsReadable();
  self->pokePending();
}

// bufferevent_openssl hands over one record per read event. Records OpenSSL already holds (it
// reads up to 64 KiB at a time) are decrypted into the input now, so one pass through nghttp2
// and one write towards the clients serve them all, instead of one loop turn each.
void H2Origin::takeBufferedRecords() {
  SSL* s = ssl();
  evbuffer* in = bufferevent_get_input(tls_.get());
  for (size_t taken = 0; s && taken < kMaxTakenPerRead && SSL_has_pending(s);) {
    evbuffer_iovec v;
    if (evbuffer_reserve_space(in, 16 * 1024 + 256, &v, 1) != 1) return;
    ERR_clear_error();
    int r = SSL_read(s, v.iov_base, int(v.iov_len));
    if (r <= 0) {  // a partial record, an alert, close_notify: libevent's own read reports it
      ERR_clear_error();
      return;
    }
    v.iov_len = size_t(r);
    evbuffer_commit_space(in, &v, 1);
    taken += size_t(r);
  }
}

// OpenSSL reads ahead (up to 64 KiB per read, origin_tls.cc) and bufferevent_openssl takes one
// record per socket event: records already inside OpenSSL would wait for the next packet, which
// the origin does not send while its flow-control window is spent. They are read now.
void H2Origin::pokePending() {
  if (dead_ || !tls_) return;
  SSL* s = ssl();
  if (s && SSL_has_pending(s) && (bufferevent_get_enabled(tls_.get()) & EV_READ))
    event_active(&tls_->ev_read, EV_READ, 1);
}
void H2Origin::tlsWriteCb(bufferevent*, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  if (!self->flush()) self->die("write failed");
}
void H2Origin::tlsEventCb(bufferevent*, short what, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  if (what & BEV_EVENT_EOF) return self->die("the origin closed the connection");
  if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) return self->die("the connection to the origin failed");
}

void H2Origin::onTlsReadable() {
  if (dead_) return;
  evbuffer* in = bufferevent_get_input(tls_.get());
  bool heard = evbuffer_get_length(in) != 0;
  if (heard) {
    lastHeardMs_ = nowMs();
    if (pingSentMs_) {  // the origin is there, whether or not this is the PING's answer
      pingSentMs_ = 0;
      evtimer_del(ping_.get());
    }
  }
  // nghttp2 takes any split of the byte stream (partial frames are kept inside it), so each
  // piece of the input is handed over where it lies, without gathering it into one block.
  while (evbuffer_get_length(in)) {
    evbuffer_iovec v[8];
    int n = evbuffer_peek(in, -1, nullptr, v, 8);
    size_t used = 0;
    for (int i = 0; i < n && i < 8; ++i) {
      ssize_t r = nghttp2_session_mem_recv(session_, static_cast<const uint8_t*>(v[i].iov_base), v[i].iov_len);
      if (r < 0) {
        SLOG_INFO("h2 origin %s: %s", key_.c_str(), nghttp2_strerror(int(r)));
        flush();  // our GOAWAY, if nghttp2 queued one
        return die("protocol error");
      }
      used += size_t(r);
      if (dead_) return;
    }
    evbuffer_drain(in, used);
  }
  if (heard) releaseHeld();
  if (dead_) return;
  if (!flush()) return die("write failed");
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) die("session finished");
}

void H2Origin::releaseHeld() {
  std::vector<Chan*> held;
  for (auto& c : chans_)
    if (c->held) {
      c->held = false;
      held.push_back(c.get());
    }
  for (Chan* c : held) {  // each may close only itself; die() would stop the rest
    if (dead_) return;
    if (bufferevent* partner = bufferevent_pair_get_partner(c->end.get())) {
      w_.h2Origins().unmarkHeld(partner);
      bufferevent_trigger(partner, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);  // its body may come
    }
    onChanReadable(*c);
  }
}

// Frames go out while the TLS output is under the worker's buffer size; request bodies waiting
// in nghttp2 are pulled lazily. Channels whose request body was paused are pumped again here,
// outside nghttp2's callbacks.
bool H2Origin::flush() {
  if (dead_ || flushing_) return !dead_;
  flushing_ = true;
  evbuffer* out = bufferevent_get_output(tls_.get());
  size_t limit = w_.config()->limits.bufferBytes;
  bool ok = true;
  for (int round = 0; round < 8 && ok; ++round) {
    while (nghttp2_session_want_write(session_) && evbuffer_get_length(out) < limit) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        ok = false;
        break;
      }
      if (n == 0) break;
      evbuffer_add(out, data, size_t(n));
    }
    if (repumps_ == 0) break;
    for (auto it = chans_.begin(); ok && repumps_ && it != chans_.end();) {
      Chan& c = **it++;
      if (!c.repump) continue;
      c.repump = false;
      --repumps_;
      pumpRequest(c);
    }
  }
  flushing_ = false;
  return ok;
}

void H2Origin::die(const char* why) {
  if (dead_) return;
  dead_ = true;
  SLOG_DEBUG("h2 origin %s: closed: %s (%zu channels)", key_.c_str(), why, chans_.size());
  streams_.clear();
  // Every channel ends now; one whose response had not begun is retried by its ClientConn.
  for (auto& c : chans_) {
    if (!c->end) continue;
    // One whose request never became a stream was never sent: any request may be retried.
    if (c->id < 0 && !c->headWritten && !c->ended)
      w_.h2Origins().markUnprocessed(bufferevent_pair_get_partner(c->end.get()));
    bufferevent_flush(c->end.get(), EV_WRITE, BEV_FINISHED);
  }
  chans_.clear();
  repumps_ = 0;
  if (idle_) evtimer_del(idle_.get());
  if (ping_) evtimer_del(ping_.get());
  bufferevent_setcb(tls_.get(), nullptr, nullptr, nullptr, nullptr);
  tls_.reset();
  w_.h2Origins().scheduleReap();
}

void H2Origin::armIdle() {
  if (!idle_ || dead_ || !chans_.empty()) return;
  auto ms = w_.config()->timeouts.upstreamIdle;
  timeval tv{time_t(ms.count() / 1000), suseconds_t((ms.count() % 1000) * 1000)};
  evtimer_add(idle_.get(), &tv);
}

void H2Origin::idleCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  if (!self->chans_.empty()) return;
  nghttp2_session_terminate_session(self->session_, NGHTTP2_NO_ERROR);
  self->flush();
  self->die("idle");
}

void H2Origin::pingCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  if (!self->pingSentMs_ || self->dead_) return;
  SLOG_INFO("h2 origin %s: nothing heard for %llu ms after a PING; closing the connection (%zu streams retried or "
            "failed)",
            self->key_.c_str(), static_cast<unsigned long long>(kPingTimeoutMs), self->chans_.size());
  self->die("no answer to PING");
}

uint64_t H2Origin::nowMs() const {
  timeval tv;
  event_base_gettimeofday_cached(w_.base(), &tv);
  return uint64_t(tv.tv_sec) * 1000 + uint64_t(tv.tv_usec) / 1000;
}

// ---------------------------------------------------------------- responses
int H2Origin::onHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  Chan* c = self->byStream(frame->hd.stream_id);
  if (!c) return 0;
  c->fieldBytes += namelen + valuelen + 32;
  if (c->fieldBytes > kMaxResponseHeaderBytes) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_INTERNAL_ERROR);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  c->fields.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                         std::string(reinterpret_cast<const char*>(value), valuelen));
  return 0;
}

int H2Origin::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    // Streams above last_stream_id were never seen by the origin: nghttp2 closes them (and
    // onStreamClose hands them back for a retry); the rest finish, nothing new starts here.
    self->goaway_ = true;
    self->w_.h2Origins().scheduleReap();
    return 0;
  }
  Chan* c = self->byStream(frame->hd.stream_id);
  if (!c) return 0;
  bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (!c->headWritten) {
      self->writeResponseHead(*c, end);
    }
    // else: trailers, written by endResponse
  }
  if (end && c->headWritten && !c->ended) self->endResponse(*c);
  return 0;
}

// The final response head as HTTP/1.1: body framing from what h2 tells us (a Content-Length
// given, a HEADERS frame that ends the stream, or chunked for a body of unknown length).
// Interim 100 goes through; other 1xx (103) are dropped.
void H2Origin::writeResponseHead(Chan& c, bool endStream) {
  std::string status;
  for (const auto& [n, v] : c.fields)
    if (n == ":status") status = v;
  int code = status.size() == 3 && std::all_of(status.begin(), status.end(), ::isdigit) ? std::stoi(status) : 0;
  evbuffer* out = bufferevent_get_output(c.end.get());
  if (code >= 100 && code < 200) {
    if (code == 100) addStr(out, "HTTP/1.1 100 Continue\r\n\r\n");
    c.fields.clear();
    c.fieldBytes = 0;
    return;
  }
  if (code < 200) {  // nghttp2 checks :status; a missing one cannot get here
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, c.id, NGHTTP2_PROTOCOL_ERROR);
    return;
  }
  bool hasLength = false;
  std::string h;
  h.reserve(c.fieldBytes + 64);
  h.append("HTTP/1.1 ").append(status).append(" \r\n");
  for (const auto& [n, v] : c.fields) {
    if (n.empty() || n[0] == ':') continue;
    if (n == "content-length") hasLength = true;
    h.append(n).append(": ").append(v).append("\r\n");
  }
  c.bodyless = c.method == "HEAD" || code == 204 || code == 304;
  if (!c.bodyless && !hasLength) {
    if (endStream)
      h.append("content-length: 0\r\n");
    else {
      c.chunked = true;
      h.append("transfer-encoding: chunked\r\n");
    }
  }
  h.append("\r\n");
  addStr(out, h);
  c.headWritten = true;
  c.fields.clear();
  c.fieldBytes = 0;
}

// END_STREAM: the terminal chunk with any trailers. The channel stays until the ClientConn
// has read it all and lets go of its end.
void H2Origin::endResponse(Chan& c) {
  c.ended = true;
  if (!c.chunked) return;
  std::string t = "0\r\n";
  for (const auto& [n, v] : c.fields)
    if (!n.empty() && n[0] != ':') t.append(n).append(": ").append(v).append("\r\n");
  t.append("\r\n");
  addStr(bufferevent_get_output(c.end.get()), t);
  c.fields.clear();
}

int H2Origin::onDataChunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  Chan* c = self->byStream(id);
  if (!c || !c->headWritten || c->bodyless) {
    nghttp2_session_consume(session, id, len);  // not ours to hold (DATA for a gone channel)
    return 0;
  }
  appendBodyPiece(bufferevent_get_output(c->end.get()), data, len, c->chunked);
  c->unconsumed += len;
  nghttp2_session_consume_connection(session, len);  // the connection's window is everyone's
  return 0;
}

int H2Origin::onStreamClose(nghttp2_session*, int32_t id, uint32_t error, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  Chan* c = self->byStream(id);
  self->streams_.erase(id);
  if (!c) return 0;
  c->id = -1;
  if (!c->ended || error != NGHTTP2_NO_ERROR) {
    SLOG_DEBUG("h2 origin %s: stream %d closed early: %s", self->key_.c_str(), id, nghttp2_http2_strerror(error));
    // The ClientConn sees its upstream end (retry or a truncated body). REFUSED_STREAM, also
    // what nghttp2 closes the streams above a GOAWAY's last stream id with: never processed.
    self->closeChan(*c, error == NGHTTP2_REFUSED_STREAM && !c->headWritten);
  }
  return 0;
}

// ---------------------------------------------------------------- channels
void H2Origin::chanReadCb(bufferevent*, void* arg) {
  auto* c = static_cast<Chan*>(arg);
  H2Origin* self = c->owner;
  self->onChanReadable(*c);
  if (!self->dead_ && !self->flush()) self->die("write failed");
}

void H2Origin::chanWriteCb(bufferevent*, void* arg) {
  auto* c = static_cast<Chan*>(arg);
  H2Origin* self = c->owner;
  self->onChanDrained(*c);
  if (!self->dead_ && !self->flush()) self->die("write failed");
}

void H2Origin::chanEventCb(bufferevent*, short what, void* arg) {
  auto* c = static_cast<Chan*>(arg);
  H2Origin* self = c->owner;
  if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) return;
  // The ClientConn let go: its exchange is over (or aborted). A stream still open is cancelled.
  if (c->id >= 0 && !c->ended) nghttp2_submit_rst_stream(self->session_, NGHTTP2_FLAG_NONE, c->id, NGHTTP2_CANCEL);
  self->closeChan(*c);
  if (!self->dead_ && !self->flush()) self->die("write failed");
}

void H2Origin::closeChan(Chan& c, bool unprocessed) {
  grown_ -= c.grown;
  if (c.budget) *c.budget -= c.charged;
  if (unprocessed && c.end) w_.h2Origins().markUnprocessed(bufferevent_pair_get_partner(c.end.get()));
  if (c.id >= 0) {
    nghttp2_session_set_stream_user_data(session_, c.id, nullptr);  // readRequestBody finds nothing
    streams_.erase(c.id);
  }
  if (c.end) bufferevent_flush(c.end.get(), EV_WRITE, BEV_FINISHED);
  if (c.repump) --repumps_;
  chans_.erase(c.self);  // frees c
  armIdle();
  if (goaway_) w_.h2Origins().scheduleReap();
}

// Response bytes left the channel for the ClientConn: acknowledge them to the origin. What is
// still in our end's output (framing included) stays counted until it leaves too.
void H2Origin::onChanDrained(Chan& c) {
  if (!c.unconsumed) return;
  size_t pending = evbuffer_get_length(bufferevent_get_output(c.end.get()));
  uint64_t gone = pending >= c.unconsumed ? 0 : c.unconsumed - pending;
  if (pending == 0) gone = c.unconsumed;
  if (!gone) return;
  c.unconsumed -= gone;
  if (c.id < 0) return;  // the stream is over; its connection-level share went back on arrival
  nghttp2_session_consume_stream(session_, c.id, gone);
  // A client that took a whole window and left nothing waiting keeps up: give its stream a
  // bigger one, within the connection's budget.
  c.takenSinceGrow += gone;
  if (pending == 0 && c.takenSinceGrow >= c.window && c.window < kMaxStreamWindow &&
      raiseWindow(c, std::min<uint32_t>(std::max(c.window * 2, kStreamWindow), kMaxStreamWindow)))
    c.takenSinceGrow = 0;
}

bool H2Origin::raiseWindow(Chan& c, uint32_t to) {
  if (to <= c.window || c.id < 0) return false;
  uint64_t extra = to - c.window;
  if (c.budget && *c.budget + extra > kClientWindowBudget) return false;
  uint64_t beyond = to > kStreamWindow ? to - std::max(c.window, kStreamWindow) : 0;
  if (grown_ + beyond > kGrowBudget) return false;
  if (nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, c.id, int32_t(to)) != 0) return false;
  if (c.budget) *c.budget += extra;
  c.charged += extra;
  grown_ += beyond;
  c.grown += beyond;
  c.window = to;
  return true;
}

// Our request HEADERS left: the stream exists now, and gets kStreamWindow if its client's budget
// allows (the WINDOW_UPDATE follows the HEADERS in the same write).
int H2Origin::onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* arg) {
  auto* self = static_cast<H2Origin*>(arg);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (Chan* c = self->byStream(frame->hd.stream_id)) self->raiseWindow(*c, kStreamWindow);
  return 0;
}

void H2Origin::onChanReadable(Chan& c) {
  if (dead_ || c.held) return;  // a held request stays in the channel until the origin is heard
  evbuffer* in = bufferevent_get_input(c.end.get());
  if (!c.headParsed) {
    const auto& cfg = *w_.config();
    size_t len = evbuffer_get_length(in);
    size_t n = std::min(len, cfg.limits.maxHeadBytes);
    auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, ssize_t(n)));
    size_t end = http1::findHeadEnd(std::string_view(p, n), c.scanned);
    if (end == 0) {
      c.scanned = n;
      if (len >= cfg.limits.maxHeadBytes) closeChan(c);
      return;
    }
    http1::Limits lim{cfg.limits.maxHeadBytes, cfg.limits.maxHeadBytes, cfg.limits.maxHeaders};
    auto parsed = http1::parseRequestHead(std::string_view(p, end), lim);
    if (!parsed) {  // our own ClientConn wrote it; nothing else can be on a channel
      SLOG_WARN("h2 origin %s: request head refused: %s", key_.c_str(), parsed.error().detail.c_str());
      return closeChan(c);
    }
    c.headParsed = true;
    c.method.assign(parsed->method);
    std::string authority, path(parsed->path);
    std::vector<std::pair<std::string, std::string>> fields;
    for (const auto& f : parsed->headers.items) {
      std::string name = toLower(f.name);
      if (name == "host") {
        authority.assign(f.value);
        continue;
      }
      if (name == "te") {  // RFC 9113 §8.2.2: only "trailers"
        if (iequals(f.value, "trailers")) fields.emplace_back(std::move(name), "trailers");
        continue;
      }
      if (http::isHopByHop(name)) continue;
      fields.emplace_back(std::move(name), std::string(f.value));
    }
    std::vector<nghttp2_nv> nva;
    nva.reserve(fields.size() + 4);
    nva.push_back(nv(":method", c.method));
    nva.push_back(nv(":scheme", "https"));
    nva.push_back(nv(":authority", authority));
    nva.push_back(nv(":path", path));
    for (const auto& [n, v] : fields) nva.push_back(nv(n, v));
    evbuffer_drain(in, end);
    c.reqPump.reset(parsed->body, parsed->contentLength, false);
    c.reqDone = c.reqPump.done();
    nghttp2_data_provider dp;
    dp.source.ptr = &c;
    dp.read_callback = &H2Origin::readRequestBody;
    int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), c.reqDone ? nullptr : &dp, &c);
    if (id < 0) {
      SLOG_DEBUG("h2 origin %s: no stream: %s", key_.c_str(), nghttp2_strerror(id));
      return closeChan(c, true);  // retried elsewhere by the ClientConn
    }
    c.id = id;
    streams_[id] = &c;
    w_.metrics().upstreamH2Streams.fetch_add(1, std::memory_order_relaxed);
  }
  pumpRequest(c);
}

// Request body bytes from the channel into the stream's buffer, which nghttp2 pulls from as the
// origin's window allows; the channel is not read further while the buffer is full.
void H2Origin::pumpRequest(Chan& c) {
  if (c.reqDone || c.id < 0 || !c.end) return;
  evbuffer* in = bufferevent_get_input(c.end.get());
  size_t limit = streamBufferBytes(*w_.config());
  if (evbuffer_get_length(c.reqBody.get()) < limit) {
    PumpStatus st = c.reqPump.run(in, c.reqBody.get(), false);
    if (st == PumpStatus::Error) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, c.id, NGHTTP2_CANCEL);
      return closeChan(c);
    }
    if (st == PumpStatus::Done) c.reqDone = true;
  }
  bool full = evbuffer_get_length(c.reqBody.get()) >= limit;
  if (full && !c.chanPaused) {
    c.chanPaused = true;
    bufferevent_disable(c.end.get(), EV_READ);
  }
  nghttp2_session_resume_data(session_, c.id);
}

ssize_t H2Origin::readRequestBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                                  nghttp2_data_source*, void*) {
  // The stream's user data, not the source pointer: a channel closed while its stream's
  // RST_STREAM waits to be sent is gone.
  auto* c = static_cast<Chan*>(nghttp2_session_get_stream_user_data(session, id));
  if (!c) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  int n = evbuffer_remove(c->reqBody.get(), buf, length);
  if (n < 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t limit = streamBufferBytes(*c->owner->w_.config());
  if (c->chanPaused && evbuffer_get_length(c->reqBody.get()) < limit / 2) {
    c->chanPaused = false;
    bufferevent_enable(c->end.get(), EV_READ);
    if (!c->repump) ++c->owner->repumps_;
    c->repump = true;  // bytes already in the channel's input: pumped by flush(), not from here
  }
  if (evbuffer_get_length(c->reqBody.get()) == 0 && c->reqDone) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return n;
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;
  return n;
}

// ---------------------------------------------------------------- the registry
H2Origins::~H2Origins() { clear(); }

H2Origin* H2Origins::find(const std::string& key) {
  auto it = byKey_.find(key);
  if (it == byKey_.end()) return nullptr;
  for (auto& o : it->second)
    if (o->canOpen()) return o.get();
  return nullptr;
}

H2Origin* H2Origins::add(const std::string& key, BevPtr tls) {
  auto o = std::make_unique<H2Origin>(w_, key, std::move(tls));
  if (!o->start()) {
    scheduleReap();
    auto& list = byKey_[key];
    list.push_back(std::move(o));  // freed by the reap, outside any of its callbacks
    return nullptr;
  }
  auto& list = byKey_[key];
  list.push_front(std::move(o));
  w_.metrics().upstreamH2Connections.store(size(), std::memory_order_relaxed);
  return list.front().get();
}

void H2Origins::scheduleReap() {
  if (!reapEv_) reapEv_.reset(evtimer_new(w_.base(), &H2Origins::reapCb, this));
  event_active(reapEv_.get(), EV_TIMEOUT, 0);
}

void H2Origins::reapCb(evutil_socket_t, short, void* arg) { static_cast<H2Origins*>(arg)->reap(); }

// Frees dead connections, and ones that said GOAWAY once their last stream is done.
void H2Origins::reap() {
  for (auto it = byKey_.begin(); it != byKey_.end();) {
    auto& list = it->second;
    list.remove_if([](const std::unique_ptr<H2Origin>& o) { return o->dead() || (!o->canOpen() && o->channels() == 0); });
    it = list.empty() ? byKey_.erase(it) : std::next(it);
  }
  w_.metrics().upstreamH2Connections.store(size(), std::memory_order_relaxed);
}

void H2Origins::clear() {
  byKey_.clear();
  reapEv_.reset();
}

size_t H2Origins::size() const {
  size_t n = 0;
  for (const auto& [k, l] : byKey_) n += l.size();
  return n;
}

}  // namespace sekisho::server::h2
