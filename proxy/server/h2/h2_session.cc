#include "proxy/server/h2/h2_session.h"

#include <event2/buffer.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "proxy/base/log.h"
#include "proxy/base/strings.h"
#include "proxy/http1/parser.h"
#include "proxy/server/worker.h"

namespace sekisho::server::h2 {

namespace {
constexpr size_t kMaxRequestHeaderBytes = 64 * 1024;  // per stream, names and values together
constexpr uint32_t kMaxConcurrentStreams = 100;

bool connectionSpecific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" || name == "transfer-encoding" ||
         name == "upgrade" || name == "te" || name == "host" || name == "content-length";
}
}  // namespace

struct H2Session::Stream {
  H2Session* owner = nullptr;
  int32_t id = 0;
  std::string method, path, authority, scheme, cookie, contentLength, host;
  std::vector<std::pair<std::string, std::string>> headers;
  size_t headerBytes = 0;
  bool started = false, endStream = false, chunkedUp = false;
  BevPtr inner;  // our end of the pair; the other end is an inner ClientConn's client
  bool headParsed = false, bodyDone = false, innerEof = false, innerPaused = false, failed = false;
  std::string method4parse;
  BodyPump pump;
  size_t scanned = 0;
  EvBufferPtr body{evbuffer_new()};  // decoded response body waiting for nghttp2

  ~Stream() {
    // A pair end freed without a word leaves its partner waiting: tell the inner connection.
    if (inner) bufferevent_flush(inner.get(), EV_WRITE, BEV_FINISHED);
  }
};

H2Session::H2Session(Worker& w, bufferevent* client, InnerTarget target)
    : w_(w), client_(client), target_(std::move(target)) {}

H2Session::~H2Session() {
  streams_.clear();  // frees the pair ends: inner connections see EOF and close
  if (session_) nghttp2_session_del(session_);
}

bool H2Session::start() {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &H2Session::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2Session::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Session::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Session::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Session::onStreamClose);
  creating_ = true;
  int rv = nghttp2_session_server_new3(&session_, cb, this, nullptr, &mem_);
  creating_ = false;
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) return false;
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
                                       {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, uint32_t(kMaxRequestHeaderBytes)}};
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2) != 0) return false;
  return flush();
}

bool H2Session::wantsClose() const {
  return !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
}

// nghttp2 keeps one 16 KiB outbound frame buffer per session for the session's life (its first
// large block, made by nghttp2_session_server_new3 through realloc(NULL, n)). That block is given
// whole pages of its own, so that an idle session can hand them back to the kernel
// (MADV_DONTNEED: no glibc metadata lives in them); everything else goes to malloc as usual.
namespace {
constexpr size_t kBigBlock = 16 * 1024;
size_t pageSize() {
  static const size_t p = size_t(sysconf(_SC_PAGESIZE));
  return p;
}
}  // namespace

void* H2Session::memMalloc(size_t size, void*) { return std::malloc(size); }
void* H2Session::memCalloc(size_t n, size_t size, void*) { return std::calloc(n, size); }

void H2Session::memFree(void* ptr, void* arg) {
  auto* self = static_cast<H2Session*>(arg);
  if (ptr && ptr == self->frameBuf_) self->frameBuf_ = nullptr;
  std::free(ptr);
}

void* H2Session::memRealloc(void* ptr, size_t size, void* arg) {
  auto* self = static_cast<H2Session*>(arg);
  if (!ptr && self->creating_ && !self->frameBuf_ && size >= kBigBlock) {
    size_t rounded = (size + pageSize() - 1) / pageSize() * pageSize();
    void* p = std::aligned_alloc(pageSize(), rounded);
    if (!p) return nullptr;
    self->frameBuf_ = p;
    self->frameBufSize_ = rounded;
    return p;
  }
  if (ptr && ptr == self->frameBuf_) {
    // Not seen in nghttp2 1.52 (the buffer is never resized), but kept correct: the block moves
    // to the ordinary heap and is no longer given back.
    void* p = std::malloc(size);
    if (!p) return nullptr;
    std::memcpy(p, ptr, std::min(size, self->frameBufSize_));
    std::free(ptr);
    self->frameBuf_ = nullptr;
    return p;
  }
  return std::realloc(ptr, size);
}

bool H2Session::releaseIdleMemory() {
  if (!frameBuf_ || !frameBufDirty_ || !streams_.empty() || nghttp2_session_want_write(session_)) return false;
  if (madvise(frameBuf_, frameBufSize_, MADV_DONTNEED) != 0) return false;
  frameBufDirty_ = false;
  return true;
}

bool H2Session::goAway(bool now) {
  if (now)
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  else
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
  return flush() && !wantsClose();
}

H2Session::Stream* H2Session::find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

bool H2Session::onClientReadable() {
  evbuffer* in = bufferevent_get_input(client_);
  while (!clientPaused_) {
    size_t len = evbuffer_get_length(in);
    if (len == 0) break;
    size_t n = std::min<size_t>(len, 64 * 1024);
    const uint8_t* p = evbuffer_pullup(in, ssize_t(n));
    ssize_t used = nghttp2_session_mem_recv(session_, p, n);
    if (used < 0) {
      SLOG_DEBUG("h2: %s", nghttp2_strerror(int(used)));
      // The client broke the protocol or flooded us: say so with a GOAWAY before the connection
      // ends (the caller closes it once that is out).
      bool flood = used == NGHTTP2_ERR_FLOODED || used == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
      nghttp2_session_terminate_session(session_, flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
      flush();
      return false;
    }
    evbuffer_drain(in, size_t(used));
  }
  if (clientPaused_) bufferevent_disable(client_, EV_READ);
  return flush() && !wantsClose();
}

bool H2Session::onClientDrained() { return flush() && !wantsClose(); }

// Frames go into the client's output while it is under its watermark; the rest waits in
// nghttp2 (which pulls response bodies lazily) until the client drains.
bool H2Session::flush() {
  evbuffer* out = bufferevent_get_output(client_);
  size_t limit = w_.config()->limits.bufferBytes;
  while (nghttp2_session_want_write(session_) && evbuffer_get_length(out) < limit) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return false;
    if (n == 0) break;
    frameBufDirty_ = true;
    evbuffer_add(out, data, size_t(n));
  }
  if (evbuffer_get_length(out)) bufferevent_enable(client_, EV_WRITE);
  return true;
}

int H2Session::onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* arg) {
  auto* self = static_cast<H2Session*>(arg);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto s = std::make_unique<Stream>();
  s->owner = self;
  s->id = frame->hd.stream_id;
  self->streams_[s->id] = std::move(s);
  return 0;
}

int H2Session::onHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                        const uint8_t* value, size_t valuelen, uint8_t, void* arg) {
  auto* self = static_cast<H2Session*>(arg);
  Stream* s = self->find(frame->hd.stream_id);
  if (!s || s->started) return 0;  // trailers: dropped
  s->headerBytes += namelen + valuelen + 32;
  if (s->headerBytes > kMaxRequestHeaderBytes) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  std::string n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":method") s->method = std::move(v);
  else if (n == ":path") s->path = std::move(v);
  else if (n == ":authority") s->authority = std::move(v);
  else if (n == ":scheme") s->scheme = std::move(v);
  else if (n == "cookie") s->cookie += (s->cookie.empty() ? "" : "; ") + v;  // RFC 9113 §8.2.3
  else if (n == "content-length") s->contentLength = std::move(v);
  else if (n == "host") s->host = std::move(v);
  else if (!connectionSpecific(n)) s->headers.emplace_back(std::move(n), std::move(v));
  return 0;
}

int H2Session::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* arg) {
  auto* self = static_cast<H2Session*>(arg);
  Stream* s = self->find(frame->hd.stream_id);
  if (!s) return 0;
  bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (frame->hd.type == NGHTTP2_HEADERS && !s->started && (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS)) {
    s->endStream = end;
    self->startRequest(*s);
    return 0;
  }
  if (end && s->started && !s->endStream) {  // the request body ended (DATA or trailers)
    s->endStream = true;
    if (s->chunkedUp && s->inner) evbuffer_add(bufferevent_get_output(s->inner.get()), "0\r\n\r\n", 5);
  }
  return 0;
}

int H2Session::onDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* arg) {
  auto* self = static_cast<H2Session*>(arg);
  Stream* s = self->find(id);
  if (!s || !s->inner || len == 0) return 0;
  evbuffer* out = bufferevent_get_output(s->inner.get());
  appendBodyPiece(out, data, len, s->chunkedUp);
  // The inner connection reads no further ahead than its own buffer: stop reading the client
  // until this stream's request body has moved on (innerWriteCb... via the pair's write event).
  if (evbuffer_get_length(out) >= self->w_.config()->limits.bufferBytes) self->clientPaused_ = true;
  return 0;
}

int H2Session::onStreamClose(nghttp2_session*, int32_t id, uint32_t, void* arg) {
  auto* self = static_cast<H2Session*>(arg);
  self->streams_.erase(id);  // frees our pair end: the inner connection ends its exchange
  if (self->streams_.empty() && self->idle_) self->idle_();
  return 0;
}

// One stream = one HTTP/1.1 request on a new inner connection (closed after its response).
void H2Session::startRequest(Stream& s) {
  s.started = true;
  if (s.method.empty() || s.path.empty() || s.method == "CONNECT" || s.path.front() != '/') {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_PROTOCOL_ERROR);
    return;
  }
  // RFC 9113 §8.3.1: a Host that names another entity than :authority makes the request
  // malformed; letting either one win would let a client choose what the checks see.
  if (!s.host.empty() && !s.authority.empty() && !iequals(s.host, s.authority)) {
    refuse(s, 400, Reason::BadRequest, "the Host header and :authority name different hosts");
    return;
  }
  std::string authority = !s.authority.empty() ? s.authority : !s.host.empty() ? s.host : target_.host;
  std::string h;
  h.reserve(256 + s.headerBytes);
  h.append(s.method).append(" ").append(s.path).append(" HTTP/1.1\r\nHost: ").append(authority).append("\r\n");
  for (const auto& [n, v] : s.headers) h.append(n).append(": ").append(v).append("\r\n");
  if (!s.cookie.empty()) h.append("cookie: ").append(s.cookie).append("\r\n");
  if (!s.endStream) {
    if (!s.contentLength.empty())
      h.append("Content-Length: ").append(s.contentLength).append("\r\n");
    else {
      s.chunkedUp = true;
      h.append("Transfer-Encoding: chunked\r\n");
    }
  } else if (!s.contentLength.empty() && s.contentLength != "0") {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_PROTOCOL_ERROR);
    return;
  }
  h.append("Connection: close\r\n\r\n");
  bufferevent* pair[2] = {nullptr, nullptr};
  if (bufferevent_pair_new(w_.base(), BEV_OPT_DEFER_CALLBACKS, pair) != 0) {
    refuse(s, 503, Reason::TooManyConnections, "the proxy cannot take more requests right now");
    return;
  }
  s.inner.reset(pair[1]);
  s.method4parse = s.method;
  bufferevent_setcb(pair[1], &H2Session::innerReadCb, &H2Session::innerWriteCb, &H2Session::innerEventCb, &s);
  size_t limit = streamBufferBytes(*w_.config());
  bufferevent_setwatermark(pair[1], EV_READ, 0, limit);
  bufferevent_setwatermark(pair[1], EV_WRITE, limit / 2, 0);
  bufferevent_enable(pair[1], EV_READ | EV_WRITE);
  if (!w_.adoptInner(BevPtr(pair[0]), target_)) {
    s.inner.reset();
    refuse(s, 503, Reason::TooManyConnections, "the proxy cannot take more requests right now");
    return;
  }
  evbuffer_add(bufferevent_get_output(pair[1]), h.data(), h.size());
}

// A stream answered here, before any inner connection took it: counted and logged like every
// other refusal (the access log's reason field), then answered.
void H2Session::refuse(Stream& s, int status, Reason why, const std::string& text) {
  w_.metrics().byReason[size_t(why)].fetch_add(1, std::memory_order_relaxed);
  SLOG_DEBUG("h2: stream %d refused: %s", s.id, text.c_str());
  if (accesslog::AccessLog* log = w_.accessLog(); log && log->enabled()) {
    accesslog::Record r;
    timeval tv;
    event_base_gettimeofday_cached(w_.base(), &tv);
    r.startEpoch = double(tv.tv_sec) + double(tv.tv_usec / 1000) / 1000.0;
    r.client = target_.peer.ipString();
    r.squidCode = status == 400 ? "TCP_DENIED" : "NONE_NONE";
    r.status = status;
    r.bytesToClient = text.size() + 1;
    r.method = s.method.empty() ? "-" : s.method;
    r.url = "https://" + (s.authority.empty() ? target_.host : s.authority) + s.path;
    r.user = "-";
    r.hierarchy = "HIER_NONE";
    r.peer = "-";
    r.contentType = "text/plain";
    r.mode = "h2";
    r.reason = reasonName(why);
    log->submit(std::move(r));
  }
  respondDirect(s, status, text + "\n");
}

void H2Session::respondDirect(Stream& s, int status, const std::string& text) {
  std::string st = std::to_string(status);
  nghttp2_nv nv[] = {{(uint8_t*)":status", (uint8_t*)st.data(), 7, st.size(), NGHTTP2_NV_FLAG_NONE},
                     {(uint8_t*)"content-type", (uint8_t*)"text/plain; charset=utf-8", 12, 25, NGHTTP2_NV_FLAG_NONE}};
  evbuffer_add(s.body.get(), text.data(), text.size());
  s.bodyDone = true;
  s.headParsed = true;
  nghttp2_data_provider dp;
  dp.source.ptr = &s;
  dp.read_callback = &H2Session::readBody;
  nghttp2_submit_response(session_, s.id, nv, 2, &dp);
}

void H2Session::innerReadCb(bufferevent*, void* arg) {
  auto* s = static_cast<Stream*>(arg);
  H2Session* self = s->owner;
  self->onInnerReadable(*s);
  if (!self->flush()) bufferevent_disable(self->client_, EV_READ);
}

// A request body moved on into the inner connection: the client may send more.
void H2Session::innerWriteCb(bufferevent*, void* arg) {
  auto* s = static_cast<Stream*>(arg);
  H2Session* self = s->owner;
  if (!self->clientPaused_) return;
  size_t limit = streamBufferBytes(*self->w_.config());
  for (auto& [id, other] : self->streams_)
    if (other->inner && evbuffer_get_length(bufferevent_get_output(other->inner.get())) >= limit) return;
  self->clientPaused_ = false;
  bufferevent_enable(self->client_, EV_READ);
  if (self->resume_) self->resume_();  // bytes already buffered are read now, outside this callback
}

void H2Session::innerEventCb(bufferevent*, short what, void* arg) {
  auto* s = static_cast<Stream*>(arg);
  H2Session* self = s->owner;
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) self->onInnerEnded(*s, !(what & BEV_EVENT_ERROR));
  self->flush();
}

void H2Session::onInnerReadable(Stream& s) {
  if (s.failed || !s.inner) return;
  evbuffer* in = bufferevent_get_input(s.inner.get());
  const auto& cfg = *w_.config();
  while (!s.headParsed) {
    size_t len = evbuffer_get_length(in);
    if (len == 0) return;
    size_t n = std::min(len, cfg.limits.maxHeadBytes);
    auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, ssize_t(n)));
    size_t end = http1::findHeadEnd(std::string_view(p, n), s.scanned);
    if (end == 0) {
      s.scanned = n;
      if (len >= cfg.limits.maxHeadBytes) break;
      return;
    }
    http1::Limits lim{cfg.limits.maxHeadBytes, cfg.limits.maxHeadBytes, cfg.limits.maxHeaders};
    auto parsed = http1::parseResponseHead(std::string_view(p, end), lim, s.method4parse);
    evbuffer_drain(in, end);
    s.scanned = 0;
    if (!parsed) break;
    if (parsed->status < 200) continue;  // interim answers are not forwarded over h2
    std::vector<std::string> names;
    names.reserve(parsed->headers.items.size());
    std::vector<nghttp2_nv> nv;
    std::string status = std::to_string(parsed->status);
    nv.push_back({(uint8_t*)":status", (uint8_t*)status.data(), 7, status.size(), NGHTTP2_NV_FLAG_NONE});
    for (const auto& f : parsed->headers.items) {
      std::string name = toLower(f.name);
      if (http::isHopByHop(name) || name == "host") continue;
      bool named = false;  // listed in Connection: hop-by-hop too
      for (const auto& c : parsed->headers.items)
        if (iequals(c.name, "connection"))
          forEachListElement(c.value, [&](std::string_view e) { named |= iequals(e, name); });
      if (named) continue;
      names.push_back(std::move(name));
      nv.push_back({(uint8_t*)names.back().data(), (uint8_t*)f.value.data(), names.back().size(), f.value.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    // `names` must not reallocate while nv points into it.
    s.pump.reset(parsed->body, parsed->contentLength, false);
    s.headParsed = true;
    nghttp2_data_provider dp;
    dp.source.ptr = &s;
    dp.read_callback = &H2Session::readBody;
    nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), &dp);
  }
  if (!s.headParsed) {  // a response head the parser refused, or one too large
    s.failed = true;
    respondDirect(s, 502, "the response could not be read\n");
    return;
  }
  if (!s.bodyDone) {
    PumpStatus st = s.pump.run(in, s.body.get(), s.innerEof);
    if (st == PumpStatus::Error) {
      s.failed = true;
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (st == PumpStatus::Done) s.bodyDone = true;
  }
  nghttp2_session_resume_data(session_, s.id);
  if (!s.bodyDone && evbuffer_get_length(s.body.get()) >= streamBufferBytes(cfg)) {
    bufferevent_disable(s.inner.get(), EV_READ);  // the inner connection pauses its origin
    s.innerPaused = true;
  }
}

void H2Session::onInnerEnded(Stream& s, bool) {
  s.innerEof = true;
  if (s.failed) return;
  if (!s.headParsed && evbuffer_get_length(bufferevent_get_input(s.inner.get())) == 0) {
    s.failed = true;
    return respondDirect(s, 502, "the request could not be completed\n");
  }
  onInnerReadable(s);
  if (!s.failed && !s.bodyDone) {
    s.failed = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
  }
}

ssize_t H2Session::readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                            nghttp2_data_source* source, void*) {
  auto* s = static_cast<Stream*>(source->ptr);
  int n = evbuffer_remove(s->body.get(), buf, length);
  if (n < 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (s->innerPaused && evbuffer_get_length(s->body.get()) < streamBufferBytes(*s->owner->w_.config()) / 2 &&
      s->inner) {
    s->innerPaused = false;
    bufferevent_enable(s->inner.get(), EV_READ);
  }
  if (evbuffer_get_length(s->body.get()) == 0 && s->bodyDone) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return n;
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;
  return n;
}

}  // namespace sekisho::server::h2
