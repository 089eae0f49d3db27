// test_origin: the HTTP/1.1 and HTTP/2 origin server the integration tests put behind the proxy.
//
//   test_origin --port-file F [--port P] [--static-dir DIR]
//               [--tls-cert FILE --tls-key FILE [--tls-min V] [--tls-max V]
//                [--require-client-cert] [--alpn LIST] [--tickets] [--ocsp FILE]]
//
// Binds 127.0.0.1:P (0, the default, picks a free port) and writes the port to F (atomically,
// through a rename), so the test can wait for the file instead of guessing. Blocking sockets and
// one thread per connection: simple enough to trust, fast enough for a few GiB per test.
//
// With --tls-cert/--tls-key every connection is TLS (OpenSSL), then the same HTTP endpoints.
// The cert file may hold leaf + chain (sent as is: a leaf-only file is the missing-intermediate
// case). V is 1.0|1.1|1.2|1.3; the minimum defaults to 1.2. The security level is always 0: the
// origin must be able to serve what the proxy is expected to refuse (TLS 1.0, RSA-1024 and SHA-1
// certificates); refusing is the proxy's job. --require-client-cert requests a client certificate
// and fails the handshake without one (any certificate is accepted). --alpn LIST (comma
// separated, e.g. "h2,http/1.1") selects, in the server's order, the first protocol the client
// offers; without an overlap no ALPN is negotiated. --ocsp FILE staples FILE's bytes as the OCSP
// response to a client that asks for one (TLS 1.2 CertificateStatus, TLS 1.3 in the Certificate
// message), whatever they are. The handshake has 10 s; a failure is logged
// to stderr, counted in /stats and closes that connection only.
//
// It is deliberately lenient (bare LF line ends, any header count): the proxy is the component
// under test and the origin must show what the proxy sent rather than refuse it. Every request
// except /stats and /requests is recorded (raw head bytes and body length), so a test can check
// what the proxy forwarded, or that nothing reached the origin at all.
//
// Endpoints (any method; a request body is read first, then the response is sent):
//   /size/N      N bytes of the shared pattern (pattern.h), Content-Length, text/plain.
//                ?chunked=1: chunked in 16 KiB chunks with a trailer (X-Pattern-Trailer: end).
//                ?close=1: no Content-Length, Connection: close, the end of the body is the close.
//   /echo        body = the raw request head bytes as received, then the request body bytes as
//                received (for a chunked body: the chunked framing, trailer included).
//   /upload      reads a Content-Length or chunked body of any size without storing it; the
//                response body is the decoded byte count, X-Body-Pattern: ok|bad says whether the
//                bytes were the shared pattern from offset 0.
//   /status/N    status N with no body (no Content-Length on 204 and 304, "0" otherwise).
//   /delay/MS    waits MS milliseconds, then 200 with a small body.
//   /hang        reads the request and never answers (until the peer closes).
//   /reset       reads the request, then closes with an RST (SO_LINGER 0).
//   /drop-next   200 with keep-alive; the next request on this connection is read and the
//                connection closed without an answer (an origin that timed a keep-alive out).
//   /stats       {"connections":c,"requests":r}; connections count only those that carried a
//                recorded request. Neither /stats nor /requests is recorded.
//   /requests    the raw heads of all recorded requests, concatenated in arrival order;
//                X-Request-Count: r, X-Body-Lengths: comma-separated body sizes.
//                /stats also counts TLS handshakes: "tls_handshakes" and "tls_failures".
//   /tls         this connection's TLS session as JSON: {"version":"TLSv1.3","cipher":"...",
//                "sni":"good.pki.test","alpn":"http/1.1","client_cert":"<subject or empty>"};
//                all empty on a plain connection.
//   /ws          WebSocket (RFC 6455) echo: a valid Upgrade gets 101 with the right
//                Sec-WebSocket-Accept (else 400), then text/binary/continuation frames are echoed
//                unmasked with the same opcode and FIN bit, a ping gets a pong, a close frame is
//                answered with a close frame and the connection closed; an unmasked client frame
//                or unknown opcode gets close 1002.
//   /static/PATH the file DIR/PATH of --static-dir; PATH may name subdirectories (a package
//                index, a git repository served with the dumb protocol), but no segment may be
//                empty or start with '.' (so no "..", no dot files); a PATH that ends in '/' or
//                names a directory serves its index.html. Content-Type application/pkix-cert for
//                .der (an AIA server), application/x-pem-file for .pem and .crt, text/html for
//                .html, application/octet-stream otherwise; 404 when missing.
// Any endpoint takes h=Name:Value (percent-encoded, repeatable) to add a response header.
// HEAD gets the GET head without a body. `Expect: 100-continue` on a request with a body gets an
// interim 100 Continue before the body is read.
//
// HTTP/2: a TLS connection that negotiated ALPN "h2" (--alpn h2,http/1.1) is served with
// libnghttp2 instead, still in its own thread: SETTINGS_MAX_CONCURRENT_STREAMS 100, streams served
// side by side, the peer's flow control respected (bodies are generated as the windows open, so
// memory stays flat whatever the size). Lenient as well: no HTTP messaging checks. A stream is
// answered once its END_STREAM arrives; path and query come from :path. It is recorded like an
// HTTP/1.1 request, its head being the text rendering /echo shows; /stats adds "h2_connections"
// (connections that negotiated h2), "h2_streams" (their recorded requests) and
// "h2_max_stream_window" (the largest send window a WINDOW_UPDATE left one stream). Endpoints:
//   /size/N      as above, content-length N. ?chunked=1: no content-length; after the DATA frames
//                a trailer HEADERS frame (x-pattern-trailer: end) carries END_STREAM.
//                ?reset_after=K: the head and K body bytes, then RST_STREAM(INTERNAL_ERROR).
//   /echo        body = the request head as "name: value\r\n" lines (the pseudo-headers, then the
//                regular fields, each in received order) and "\r\n", then the request body.
//   /upload, /status/N, /stats, /requests, /tls   as above.
//   /reset       RST_STREAM(INTERNAL_ERROR) on that stream; the connection and other streams go on.
//   /hang        that stream is never answered; the others are.
//   /refuse-first  the first such stream of the process gets RST_STREAM(REFUSED_STREAM) (the
//                origin promises it did nothing with it), later ones 200 "accepted".
//   /goaway      200 "bye", then GOAWAY(NO_ERROR, last stream id = this one); the streams up to it
//                are still served, then the connection is closed.
//   /mute        200 "muted", then the connection goes silent: nothing more is read or written
//                (not even PING answers) until the peer closes it, as behind a firewall that
//                dropped it.
//   anything else (/delay, /ws and /static included) 404. h=Name:Value and HEAD work as above
//   (the header name lower-cased).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tests/origin/pattern.h"

namespace {

using sekisho::testorigin::kPatternPeriod;
using sekisho::testorigin::matchesPattern;
using sekisho::testorigin::patternBlock;

constexpr size_t kMaxHeadBytes = 4 * 1024 * 1024;  // far above any limit the proxy enforces
constexpr size_t kMaxLineBytes = 64 * 1024;        // chunk-size and trailer lines
constexpr size_t kChunkBytes = 16 * 1024;
constexpr size_t kWriteBlock = 256 * 1024;
constexpr size_t kReadBlock = 64 * 1024;
constexpr int kLingerDrainMs = 2000;  // how long a graceful close waits for the peer's FIN

struct Record {
  std::string head;
  uint64_t bodyBytes = 0;
};

struct Recorder {
  std::mutex mu;
  std::vector<Record> records;
  uint64_t connections = 0;
  uint64_t tlsHandshakes = 0, tlsFailures = 0;
  uint64_t h2Connections = 0, h2Streams = 0;  // connections that negotiated h2, their recorded streams
  int64_t h2MaxStreamWindow = 0;  // the largest send window a peer's WINDOW_UPDATE gave one stream
};

struct Options {
  std::string staticDir;
  std::string tlsCert, tlsKey;
  int tlsMin = 0, tlsMax = 0;  // TLS1_VERSION...; 0 = default
  bool requireClientCert = false;
  bool tickets = false;  // --tickets: TLS 1.3 session tickets (resumption) instead of full handshakes only
  std::string alpnWire;  // ALPN protocol list in wire format (length-prefixed)
  std::string ocsp;      // --ocsp FILE: this DER OCSP response is stapled when a client asks for one
};

Options& options() {
  static Options o;
  return o;
}

Recorder& recorder() {
  static Recorder r;
  return r;
}

std::mutex& logMutex() {
  static std::mutex m;
  return m;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

template <class T>
std::optional<T> parseNumber(std::string_view s, int base = 10) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      if (auto v = parseNumber<unsigned>(s.substr(i + 1, 2), 16)) {
        out.push_back(static_cast<char>(*v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

const char* reasonFor(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// Offset just past the empty line that ends a head (CRLF or bare LF line ends), or 0.
size_t findHeadEnd(std::string_view s) {
  for (size_t i = s.find('\n'); i != std::string_view::npos; i = s.find('\n', i + 1)) {
    if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return 0;
}

struct Request {
  std::string rawHead;
  std::string method, target, version, path;
  std::vector<std::pair<std::string, std::string>> query;    // decoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased

  const std::string* header(std::string_view lname) const {
    for (const auto& [n, v] : headers) {
      if (n == lname) return &v;
    }
    return nullptr;
  }
  // True when a comma-separated header (any instance) lists `token` (case-insensitive).
  bool hasToken(std::string_view lname, std::string_view token) const {
    for (const auto& [n, v] : headers) {
      if (n != lname) continue;
      std::string lv = lower(v);
      size_t start = 0;
      while (start <= lv.size()) {
        size_t comma = lv.find(',', start);
        if (comma == std::string::npos) comma = lv.size();
        if (trim(std::string_view(lv).substr(start, comma - start)) == token) return true;
        start = comma + 1;
      }
    }
    return false;
  }
  std::optional<std::string> param(std::string_view name) const {
    for (const auto& [n, v] : query) {
      if (n == name) return v;
    }
    return std::nullopt;
  }
};

// Splits r.target into r.path and the decoded r.query.
void parseTarget(Request& r) {
  std::string_view target(r.target);
  if (target.rfind("http://", 0) == 0) {  // absolute-form: keep only the path
    size_t slash = target.find('/', 7);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view qs = target.substr(q + 1);
    while (!qs.empty()) {
      size_t amp = qs.find('&');
      std::string_view kv = qs.substr(0, amp);
      qs.remove_prefix(amp == std::string_view::npos ? qs.size() : amp + 1);
      size_t eq = kv.find('=');
      if (eq == std::string_view::npos) {
        r.query.emplace_back(percentDecode(kv), "");
      } else {
        r.query.emplace_back(percentDecode(kv.substr(0, eq)), percentDecode(kv.substr(eq + 1)));
      }
    }
  }
}

std::optional<Request> parseHead(std::string head) {
  Request r;
  r.rawHead = std::move(head);
  std::string_view rest(r.rawHead);
  bool first = true;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      if (line.empty()) continue;  // tolerate leading empty lines
      first = false;
      size_t sp1 = line.find(' ');
      size_t sp2 = line.rfind(' ');
      if (sp1 == std::string_view::npos || sp2 == sp1) return std::nullopt;
      r.method = std::string(line.substr(0, sp1));
      r.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
      r.version = std::string(line.substr(sp2 + 1));
      continue;
    }
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    r.headers.emplace_back(lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  if (first) return std::nullopt;
  parseTarget(r);
  return r;
}

constexpr int kHandshakeTimeoutSec = 10;
constexpr const char* kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr uint64_t kMaxFrameBytes = 64 * 1024 * 1024;

std::string opensslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error queued" : out;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// RFC 6455 §4.2.1: the key is the base64 of 16 bytes, i.e. 22 characters and "==".
bool validWebSocketKey(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  unsigned char out[24];
  return EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(key.data()), 24) == 18;
}

std::string webSocketAccept(std::string_view key) {
  std::string in = std::string(key) + kWebSocketGuid;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), md, &len, EVP_sha1(), nullptr);
  return base64(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string jsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The connection's byte stream: the socket itself or a TLS session over it, so plain and TLS
// connections run the same HTTP code. Blocking semantics: >0 bytes, 0 EOF, <0 error.
struct Io {
  int fd = -1;
  SSL* ssl = nullptr;

  ssize_t read(char* buf, size_t cap) {
    if (!ssl) {
      for (;;) {
        ssize_t n = ::recv(fd, buf, cap, 0);
        if (n < 0 && errno == EINTR) continue;
        return n;
      }
    }
    int n = SSL_read(ssl, buf, static_cast<int>(std::min<size_t>(cap, INT_MAX)));
    if (n > 0) return n;
    int e = SSL_get_error(ssl, n);
    ERR_clear_error();
    // A peer that closes without close_notify is an EOF here too: the tests (and the proxy)
    // often just close the TCP connection.
    return e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL ? 0 : -1;
  }

  ssize_t write(const char* p, size_t len) {
    if (!ssl) {
      for (;;) {
        ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        return n;
      }
    }
    int n = SSL_write(ssl, p, static_cast<int>(std::min<size_t>(len, INT_MAX)));
    if (n > 0) return n;
    ERR_clear_error();
    return -1;
  }
};

struct TlsInfo {
  std::string version, cipher, sni, alpn, clientCert;
  bool resumed = false;
};

// The /stats body: {"connections":c,"requests":r,...}; see the top of the file.
std::string statsJson() {
  auto& rec = recorder();
  std::lock_guard lock(rec.mu);
  return "{\"connections\":" + std::to_string(rec.connections) +
         ",\"requests\":" + std::to_string(rec.records.size()) +
         ",\"tls_handshakes\":" + std::to_string(rec.tlsHandshakes) +
         ",\"tls_failures\":" + std::to_string(rec.tlsFailures) +
         ",\"h2_connections\":" + std::to_string(rec.h2Connections) +
         ",\"h2_streams\":" + std::to_string(rec.h2Streams) +
         ",\"h2_max_stream_window\":" + std::to_string(rec.h2MaxStreamWindow) + "}";
}

// The /requests answer: all recorded heads concatenated, their count, their body lengths.
struct RequestsDump {
  std::string heads, lengths;
  size_t count = 0;
};

RequestsDump requestsDump() {
  auto& rec = recorder();
  RequestsDump d;
  {
    std::lock_guard lock(rec.mu);
    d.count = rec.records.size();
    for (const auto& r : rec.records) {
      d.heads += r.head;
      if (!d.lengths.empty()) d.lengths += ",";
      d.lengths += std::to_string(r.bodyBytes);
    }
  }
  if (d.lengths.empty()) d.lengths = "-";
  return d;
}

std::string tlsJson(const TlsInfo& tls) {
  return "{\"version\":\"" + jsonEscape(tls.version) + "\",\"cipher\":\"" + jsonEscape(tls.cipher) +
         "\",\"sni\":\"" + jsonEscape(tls.sni) + "\",\"alpn\":\"" + jsonEscape(tls.alpn) +
         "\",\"client_cert\":\"" + jsonEscape(tls.clientCert) +
         "\",\"resumed\":" + (tls.resumed ? "true" : "false") + "}";
}

constexpr uint32_t kH2MaxStreams = 100;    // SETTINGS_MAX_CONCURRENT_STREAMS
constexpr int kH2PollMs = 50;              // idle wait for input between flushes
constexpr size_t kH2FlushBytes = 1 << 20;  // output written before input is looked at again

// One connection that negotiated ALPN "h2", served in its connection's thread by an nghttp2
// server session: flush what nghttp2 has to send, wait (briefly) for input, feed it to nghttp2,
// repeat. Every stream lives in the callbacks of that one thread, so nothing needs a lock except
// the shared recorder. Response bodies are produced lazily by the data provider (readBody), so
// nghttp2 enforces the peer's flow-control windows and memory stays flat whatever the size.
class H2Session {
 public:
  H2Session(Io& io, const TlsInfo& tls) : io_(io), tls_(tls) {}
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;
  ~H2Session() {
    if (session_) nghttp2_session_del(session_);
  }

  // Returns when the connection is finished: the peer closed it or failed, or nghttp2 has nothing
  // left to read or write (e.g. after a GOAWAY, once the streams it kept are done). The caller
  // closes the socket.
  void run() {
    {
      auto& rec = recorder();
      std::lock_guard lock(rec.mu);
      ++rec.h2Connections;
    }
    if (!start()) return;
    for (;;) {
      bool more = false;  // the flush stopped at kH2FlushBytes with frames still to send
      if (!flush(&more)) return;
      if (goawayAfter_ && !goawaySent_) {
        // The /goaway stream is complete (its response fully serialized): now the GOAWAY.
        nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, goawayAfter_, NGHTTP2_NO_ERROR, nullptr, 0);
        goawaySent_ = true;
        continue;
      }
      if (muted_ && !more) {
        // Silent until the peer closes: poll for its hang-up only, never read.
        for (;;) {
          pollfd p{io_.fd, POLLRDHUP, 0};
          if (::poll(&p, 1, 1000) < 0 && errno != EINTR) return;
          if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return;
        }
      }
      // Also the end after a GOAWAY: nghttp2 stops wanting to read once no stream is left open.
      if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) return;
      if (!SSL_has_pending(io_.ssl)) {  // decrypted or buffered bytes are not visible to poll()
        pollfd p{io_.fd, POLLIN, 0};
        int r = ::poll(&p, 1, more ? 0 : kH2PollMs);
        if (r < 0 && errno != EINTR) return;
        if (r <= 0) continue;
      }
      char buf[kReadBlock];
      ssize_t n = io_.read(buf, sizeof buf);
      if (n <= 0) return;
      ssize_t used =
          nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(n));
      if (used < 0) return;
    }
  }

 private:
  using Fields = std::vector<std::pair<std::string, std::string>>;

  struct Stream {
    int32_t id = 0;
    // The request head rendered as text (the /echo and /requests form): pseudo-header lines in
    // received order, then regular header lines in received order, then an empty line.
    std::string pseudoLines, headerLines;
    bool headersDone = false;  // later HEADERS frames are trailers: not part of the head
    bool complete = false;     // END_STREAM received (the response has been decided)
    Request req;
    std::optional<size_t> record;
    uint64_t bodyBytes = 0;
    std::string echoBody;   // /echo only
    bool patternOk = true;  // /upload: the body so far is the pattern from offset 0
    bool goawayAfter = false, muteAfter = false;
    // The response body readBody produces: `fixed`, or `length` pattern bytes when `pattern`.
    std::string fixed;
    bool pattern = false;
    uint64_t length = 0, sent = 0;
    std::optional<uint64_t> resetAt;  // RST_STREAM(INTERNAL_ERROR) once this many bytes are sent
    bool trailer = false;             // end with a trailer HEADERS frame instead of END_STREAM
  };

  bool start() {
    nghttp2_session_callbacks* cb = nullptr;
    if (nghttp2_session_callbacks_new(&cb) != 0) return false;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cb, onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, onDataChunkRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, onStreamClose);
    nghttp2_option* opt = nullptr;
    if (nghttp2_option_new(&opt) != 0) {
      nghttp2_session_callbacks_del(cb);
      return false;
    }
    // Lenient like the HTTP/1.1 side: no HTTP messaging checks (pseudo-headers, forbidden
    // connection-specific fields, content-length), so /echo shows whatever the proxy sent.
    nghttp2_option_set_no_http_messaging(opt, 1);
    int rv = nghttp2_session_server_new2(&session_, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) return false;
    nghttp2_settings_entry settings{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kH2MaxStreams};
    return nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &settings, 1) == 0;
  }

  // Writes what nghttp2 has to send, stopping after about kH2FlushBytes (with *more set) so a
  // large window cannot keep the loop from reading new requests, resets and window updates.
  // Small frames are batched into fewer TLS records. False on a write error.
  bool flush(bool* more) {
    std::string out;
    size_t written = 0;
    for (;;) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return false;
      if (n > 0) out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      const bool stop = n == 0 || written + out.size() >= kH2FlushBytes;
      if (stop || out.size() >= kReadBlock) {
        if (!writeAll(out)) return false;
        written += out.size();
        out.clear();
      }
      if (stop) {
        *more = n > 0;
        return true;
      }
    }
  }

  bool writeAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = io_.write(data.data(), data.size());
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  Stream* find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  static H2Session& self(void* user) { return *static_cast<H2Session*>(user); }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      auto s = std::make_unique<Stream>();
      s->id = frame->hd.stream_id;
      self(user).streams_[s->id] = std::move(s);
    }
    return 0;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t nameLen,
                      const uint8_t* value, size_t valueLen, uint8_t, void* user) {
    Stream* s = self(user).find(frame->hd.stream_id);
    if (!s || s->headersDone) return 0;
    std::string n(reinterpret_cast<const char*>(name), nameLen);
    std::string v(reinterpret_cast<const char*>(value), valueLen);
    const bool pseudo = !n.empty() && n[0] == ':';
    (pseudo ? s->pseudoLines : s->headerLines) += n + ": " + v + "\r\n";
    if (n == ":method") {
      s->req.method = v;
    } else if (n == ":path") {
      s->req.target = v;
    } else if (!pseudo) {
      s->req.headers.emplace_back(lower(n), std::move(v));
    }
    return 0;
  }

  static int onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    H2Session& h = self(user);
    if (frame->hd.type == NGHTTP2_WINDOW_UPDATE && frame->hd.stream_id != 0) {
      int64_t w = nghttp2_session_get_stream_remote_window_size(session, frame->hd.stream_id);
      auto& rec = recorder();
      std::lock_guard lock(rec.mu);
      rec.h2MaxStreamWindow = std::max(rec.h2MaxStreamWindow, w);
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    Stream* s = h.find(frame->hd.stream_id);
    if (!s) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !s->headersDone) h.headRecv(*s);
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !s->complete) {
      s->complete = true;
      if (s->record) h.recordBody(*s);
      h.respond(*s);
    }
    return 0;
  }

  static int onDataChunkRecv(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                             void* user) {
    Stream* s = self(user).find(id);
    if (!s) return 0;
    std::string_view piece(reinterpret_cast<const char*>(data), len);
    if (s->req.path == "/echo") s->echoBody.append(piece);
    if (s->req.path == "/upload" && s->patternOk) s->patternOk = matchesPattern(piece, s->bodyBytes);
    s->bodyBytes += len;
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t, void* user) {
    H2Session& h = self(user);
    Stream* s = h.find(id);
    if (!s) return 0;
    if (s->record && !s->complete) h.recordBody(*s);  // reset by the peer before END_STREAM
    if (s->goawayAfter) h.goawayAfter_ = id;
    if (s->muteAfter) h.muted_ = true;
    h.streams_.erase(id);
    return 0;
  }

  // The request head is complete: parse :path and record the request (as Conn::recordRequest).
  void headRecv(Stream& s) {
    s.headersDone = true;
    s.req.rawHead = s.pseudoLines + s.headerLines + "\r\n";
    s.req.version = "HTTP/2";
    parseTarget(s.req);
    if (s.req.path == "/stats" || s.req.path == "/requests") return;
    auto& rec = recorder();
    std::lock_guard lock(rec.mu);
    if (!counted_) {
      counted_ = true;
      ++rec.connections;
    }
    ++rec.h2Streams;
    rec.records.push_back(Record{s.req.rawHead, 0});
    s.record = rec.records.size() - 1;
  }

  void recordBody(const Stream& s) {
    auto& rec = recorder();
    std::lock_guard lock(rec.mu);
    rec.records[*s.record].bodyBytes = s.bodyBytes;
  }

  void log(const Stream& s, const char* what) {
    std::lock_guard lock(logMutex());
    std::fprintf(stderr, "test_origin: h2 stream %d %s %s -> %s\n", s.id, s.req.method.c_str(),
                 s.req.target.c_str(), what);
  }

  // Submits the response head: :status, server, `fields`, then the h=Name:Value additions (names
  // lower-cased, as HTTP/2 requires). With `withBody` the body comes from readBody, else the
  // HEADERS frame carries END_STREAM.
  void submit(Stream& s, int status, const Fields& fields, bool withBody) {
    Fields all{{":status", std::to_string(status)}, {"server", "sekisho-test-origin"}};
    all.insert(all.end(), fields.begin(), fields.end());
    for (const auto& [n, v] : s.req.query) {
      if (n != "h") continue;
      size_t colon = v.find(':');
      if (colon == std::string::npos) continue;
      all.emplace_back(lower(v.substr(0, colon)), std::string(trim(std::string_view(v).substr(colon + 1))));
    }
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : all) {
      nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                               n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider provider{};
    provider.source.ptr = &s;
    provider.read_callback = readBody;
    nghttp2_submit_response(session_, s.id, nva.data(), nva.size(), withBody ? &provider : nullptr);
    log(s, std::to_string(status).c_str());
  }

  // The DATA source of every response body; `s.sent` advances as nghttp2 asks for bytes, within
  // the flow-control windows and at most 16 KiB a frame.
  static ssize_t readBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                          nghttp2_data_source* source, void*) {
    static const std::string kBlock = patternBlock(kChunkBytes);
    auto& s = *static_cast<Stream*>(source->ptr);
    const uint64_t stop = s.resetAt.value_or(s.length);
    // ?reset_after: nghttp2 answers this error with RST_STREAM(INTERNAL_ERROR).
    if (s.resetAt && s.sent == stop) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    const size_t n = static_cast<size_t>(std::min<uint64_t>({length, kChunkBytes, stop - s.sent}));
    const char* from = s.pattern ? kBlock.data() + s.sent % kPatternPeriod : s.fixed.data() + s.sent;
    std::memcpy(buf, from, n);
    s.sent += n;
    if (s.sent == s.length) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (s.trailer) {  // the trailer HEADERS frame carries END_STREAM instead
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::string name = "x-pattern-trailer", value = "end";
        nghttp2_nv nv{reinterpret_cast<uint8_t*>(name.data()), reinterpret_cast<uint8_t*>(value.data()),
                      name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
        if (nghttp2_submit_trailer(session, id, &nv, 1) != 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
    }
    return static_cast<ssize_t>(n);
  }

  // The request is complete (END_STREAM): the same endpoints as HTTP/1.1 where they make sense.
  void respond(Stream& s) {
    const Request& req = s.req;
    const std::string& path = req.path;
    const bool headOnly = req.method == "HEAD";
    auto finish = [&](int status, Fields fields, std::string body, bool withLength = true) {
      if (withLength) fields.emplace_back("content-length", std::to_string(body.size()));
      s.fixed = std::move(body);
      s.length = s.fixed.size();
      submit(s, status, fields, !headOnly && s.length > 0);
    };

    if (path.rfind("/size/", 0) == 0) {
      auto n = parseNumber<uint64_t>(std::string_view(path).substr(6));
      if (!n) return finish(400, {{"content-type", "text/plain"}}, "bad size\n");
      s.pattern = true;
      s.length = *n;
      s.trailer = req.param("chunked") == "1";
      auto resetParam = req.param("reset_after");
      if (auto k = resetParam ? parseNumber<uint64_t>(*resetParam) : std::nullopt; k && *k < *n) {
        s.resetAt = *k;
      }
      Fields fields{{"content-type", "text/plain"}};
      if (!s.trailer) fields.emplace_back("content-length", std::to_string(*n));
      return submit(s, 200, fields, !headOnly && (*n > 0 || s.trailer || s.resetAt));
    }
    if (path == "/echo") {
      return finish(200, {{"content-type", "application/octet-stream"}}, req.rawHead + s.echoBody);
    }
    if (path == "/upload") {
      return finish(200, {{"content-type", "text/plain"}, {"x-body-pattern", s.patternOk ? "ok" : "bad"}},
                    std::to_string(s.bodyBytes));
    }
    if (path.rfind("/status/", 0) == 0) {
      auto n = parseNumber<int>(std::string_view(path).substr(8));
      if (!n || *n < 200 || *n > 599) return finish(400, {{"content-type", "text/plain"}}, "bad status\n");
      return finish(*n, {}, "", *n != 204 && *n != 304);
    }
    if (path == "/reset") {
      log(s, "RST_STREAM");
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (path == "/refuse-first") {
      static std::atomic<bool> refused{false};
      if (!refused.exchange(true)) {
        log(s, "REFUSED_STREAM");
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_REFUSED_STREAM);
        return;
      }
      return finish(200, {{"content-type", "text/plain"}}, "accepted");
    }
    if (path == "/hang") return log(s, "no answer");
    if (path == "/goaway") {
      // GOAWAY once this stream is closed (its answer serialized); the streams it keeps (ids up
      // to this one) are still served, then nghttp2 wants nothing more and the connection ends.
      s.goawayAfter = true;
      return finish(200, {{"content-type", "text/plain"}}, "bye");
    }
    if (path == "/mute") {
      s.muteAfter = true;
      return finish(200, {{"content-type", "text/plain"}}, "muted");
    }
    if (path == "/stats") return finish(200, {{"content-type", "application/json"}}, statsJson());
    if (path == "/requests") {
      RequestsDump d = requestsDump();
      return finish(200,
                    {{"content-type", "text/plain"},
                     {"x-request-count", std::to_string(d.count)},
                     {"x-body-lengths", d.lengths}},
                    std::move(d.heads));
    }
    if (path == "/tls") return finish(200, {{"content-type", "application/json"}}, tlsJson(tls_));
    return finish(404, {{"content-type", "text/plain"}}, "no such endpoint\n");
  }

  Io& io_;
  const TlsInfo& tls_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  bool counted_ = false;     // this connection carried a recorded request (counted once)
  int32_t goawayAfter_ = 0;  // a /goaway stream closed: send GOAWAY with it as last stream id
  bool muted_ = false;       // a /mute stream closed: the connection goes silent
  bool goawaySent_ = false;
};

class Conn {
 public:
  Conn(int fd, SSL_CTX* tls) : fd_(fd), tlsCtx_(tls) { io_.fd = fd; }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    if (io_.ssl) SSL_free(io_.ssl);
    if (fd_ >= 0) ::close(fd_);
  }

  void run() {
    if (tlsCtx_ && !handshake()) return;
    if (tls_.alpn == "h2") {
      H2Session(io_, tls_).run();
      lingeringClose();
      return;
    }
    for (;;) {
      auto req = readRequest();
      if (!req) return;
      if (dropNext_) {
        logLine(*req, 0);  // closed unanswered (after /drop-next)
        return;
      }
      if (!serve(*req)) return;
    }
  }

 private:
  using Sink = std::function<void(std::string_view)>;

  static void setTimeouts(int fd, int seconds) {
    timeval tv{seconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  // Blocking SSL_accept bounded by socket timeouts (a client that never finishes must not pin a
  // thread forever); the timeouts are lifted afterwards because /hang and idle keep-alive
  // connections legitimately wait for the peer.
  bool handshake() {
    io_.ssl = SSL_new(tlsCtx_);
    if (!io_.ssl || !SSL_set_fd(io_.ssl, fd_)) {
      logTls("cannot create a TLS session: " + opensslError());
      return false;
    }
    setTimeouts(fd_, kHandshakeTimeoutSec);
    int rc = SSL_accept(io_.ssl);
    setTimeouts(fd_, 0);
    auto& rec = recorder();
    if (rc != 1) {
      int e = SSL_get_error(io_.ssl, rc);
      std::string why =
          e == SSL_ERROR_SYSCALL && errno != 0 ? std::string(std::strerror(errno)) : opensslError();
      ERR_clear_error();
      {
        std::lock_guard lock(rec.mu);
        ++rec.tlsFailures;
      }
      logTls("TLS handshake failed: " + why);
      return false;
    }
    {
      std::lock_guard lock(rec.mu);
      ++rec.tlsHandshakes;
    }
    tls_.version = SSL_get_version(io_.ssl);
    tls_.cipher = SSL_get_cipher_name(io_.ssl);
    tls_.resumed = SSL_session_reused(io_.ssl) == 1;
    if (const char* sni = SSL_get_servername(io_.ssl, TLSEXT_NAMETYPE_host_name)) tls_.sni = sni;
    const unsigned char* alpn = nullptr;
    unsigned int alpnLen = 0;
    SSL_get0_alpn_selected(io_.ssl, &alpn, &alpnLen);
    if (alpn) tls_.alpn.assign(reinterpret_cast<const char*>(alpn), alpnLen);
    if (X509* peer = SSL_get1_peer_certificate(io_.ssl)) {
      char buf[512];
      X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof buf);
      tls_.clientCert = buf;
      X509_free(peer);
    }
    logTls("TLS " + tls_.version + " " + tls_.cipher + " sni=" + tls_.sni + " alpn=" + tls_.alpn);
    return true;
  }

  void logTls(const std::string& what) {
    std::lock_guard lock(logMutex());
    std::fprintf(stderr, "test_origin: %s\n", what.c_str());
  }

  // One read appended to in_; false on EOF or error.
  bool fill() {
    char buf[kReadBlock];
    ssize_t n = io_.read(buf, sizeof buf);
    if (n <= 0) return false;
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }

  bool sendAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = io_.write(data.data(), data.size());
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  std::optional<Request> readRequest() {
    size_t end = 0;
    while ((end = findHeadEnd(in_)) == 0) {
      if (in_.size() > kMaxHeadBytes) return std::nullopt;
      if (!fill()) return std::nullopt;
    }
    std::string head = in_.substr(0, end);
    in_.erase(0, end);
    return parseHead(std::move(head));
  }

  // A line including its terminator, or nullopt on EOF / over-long line.
  std::optional<std::string> readLine() {
    size_t nl;
    while ((nl = in_.find('\n')) == std::string::npos) {
      if (in_.size() > kMaxLineBytes) return std::nullopt;
      if (!fill()) return std::nullopt;
    }
    std::string line = in_.substr(0, nl + 1);
    in_.erase(0, nl + 1);
    return line;
  }

  bool readExact(uint64_t n, const Sink& decoded, std::string* raw) {
    while (n > 0) {
      if (in_.empty() && !fill()) return false;
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, in_.size()));
      std::string_view piece(in_.data(), take);
      if (decoded) decoded(piece);
      if (raw) raw->append(piece);
      in_.erase(0, take);
      n -= take;
    }
    return true;
  }

  // Reads the request body (RFC 9112 §6.3): chunked when Transfer-Encoding ends in chunked,
  // else Content-Length, else none. `decoded` sees the payload, `raw` gets the wire bytes.
  bool readBody(const Request& req, const Sink& decoded, std::string* raw, uint64_t* count) {
    *count = 0;
    auto counting = [&](std::string_view p) {
      *count += p.size();
      if (decoded) decoded(p);
    };
    if (req.hasToken("transfer-encoding", "chunked")) {
      for (;;) {
        auto line = readLine();
        if (!line) return false;
        if (raw) raw->append(*line);
        std::string_view sizeText(*line);
        if (!sizeText.empty() && sizeText.back() == '\n') sizeText.remove_suffix(1);
        sizeText = trim(sizeText.substr(0, sizeText.find(';')));
        auto size = parseNumber<uint64_t>(sizeText, 16);
        if (!size) return false;
        if (*size == 0) {
          for (;;) {  // trailer section up to the empty line
            auto t = readLine();
            if (!t) return false;
            if (raw) raw->append(*t);
            if (*t == "\r\n" || *t == "\n") return true;
          }
        }
        if (!readExact(*size, counting, raw)) return false;
        auto crlf = readLine();
        if (!crlf) return false;
        if (raw) raw->append(*crlf);
      }
    }
    if (const std::string* cl = req.header("content-length")) {
      auto n = parseNumber<uint64_t>(*cl);
      if (!n) return false;
      return readExact(*n, counting, raw);
    }
    return true;
  }

  bool hasBody(const Request& req) const {
    if (req.hasToken("transfer-encoding", "chunked")) return true;
    const std::string* cl = req.header("content-length");
    return cl && *cl != "0";
  }

  size_t recordRequest(const Request& req) {
    auto& rec = recorder();
    std::lock_guard lock(rec.mu);
    if (!counted_) {
      counted_ = true;
      ++rec.connections;
    }
    rec.records.push_back(Record{req.rawHead, 0});
    return rec.records.size() - 1;
  }

  void recordBody(size_t index, uint64_t bytes) {
    auto& rec = recorder();
    std::lock_guard lock(rec.mu);
    rec.records[index].bodyBytes = bytes;
  }

  // Closes after the peer has read everything: half-close, then drain until its FIN, so unread
  // input never turns our close into an RST that could destroy the response in flight.
  void lingeringClose() {
    if (io_.ssl) {
      SSL_shutdown(io_.ssl);  // close_notify, so a TLS client sees a clean end
      ERR_clear_error();
    }
    ::shutdown(fd_, SHUT_WR);
    pollfd p{fd_, POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kLingerDrainMs);
    while (std::chrono::steady_clock::now() < deadline) {
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
    }
    ::close(fd_);
    fd_ = -1;
  }

  std::string headFor(int status, const Request& req,
                      const std::vector<std::pair<std::string, std::string>>& fields) const {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reasonFor(status) + "\r\n";
    h += "Server: sekisho-test-origin\r\n";
    for (const auto& [n, v] : fields) h += n + ": " + v + "\r\n";
    for (const auto& [n, v] : req.query) {
      if (n != "h") continue;
      size_t colon = v.find(':');
      if (colon == std::string::npos) continue;
      h += v.substr(0, colon) + ": " + std::string(trim(std::string_view(v).substr(colon + 1))) + "\r\n";
    }
    h += "\r\n";
    return h;
  }

  bool sendPattern(uint64_t n, bool chunked) {
    static const std::string block = patternBlock(kWriteBlock);
    uint64_t off = 0;
    if (!chunked) {
      while (off < n) {
        size_t len = static_cast<size_t>(std::min<uint64_t>(kWriteBlock, n - off));
        if (!sendAll(std::string_view(block.data() + off % kPatternPeriod, len))) return false;
        off += len;
      }
      return true;
    }
    std::string out;
    out.reserve(kWriteBlock + kChunkBytes + 64);
    while (off < n) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(kChunkBytes, n - off));
      char sizeLine[32];
      int sl = std::snprintf(sizeLine, sizeof sizeLine, "%zx\r\n", len);
      out.append(sizeLine, static_cast<size_t>(sl));
      out.append(block.data() + off % kPatternPeriod, len);
      out.append("\r\n");
      off += len;
      if (out.size() >= kWriteBlock) {
        if (!sendAll(out)) return false;
        out.clear();
      }
    }
    out.append("0\r\nX-Pattern-Trailer: end\r\n\r\n");
    return sendAll(out);
  }

  static bool wantsKeepAlive(const Request& req) {
    if (req.hasToken("connection", "close")) return false;
    if (req.version == "HTTP/1.0") return req.hasToken("connection", "keep-alive");
    return true;
  }

  void logLine(const Request& req, int status) {
    std::lock_guard lock(logMutex());
    std::fprintf(stderr, "test_origin: %s %s -> %d\n", req.method.c_str(), req.target.c_str(), status);
  }

  // Serves one request; false when the connection is finished.
  bool serve(const Request& req) {
    const bool introspection = req.path == "/stats" || req.path == "/requests";
    std::optional<size_t> index;
    if (!introspection) index = recordRequest(req);
    const bool headOnly = req.method == "HEAD";
    bool keepAlive = wantsKeepAlive(req);

    // RFC 9110 §10.1.1: answer 100-continue before reading the body it announces.
    if (hasBody(req) && req.hasToken("expect", "100-continue")) {
      if (!sendAll("HTTP/1.1 100 Continue\r\n\r\n")) return false;
    }

    std::string rawBody;
    uint64_t bodyBytes = 0;
    bool patternOk = true;
    Sink decoded;
    std::string* raw = nullptr;
    if (req.path == "/echo") raw = &rawBody;
    if (req.path == "/upload") {
      decoded = [&, off = uint64_t{0}](std::string_view p) mutable {
        if (patternOk && !matchesPattern(p, off)) patternOk = false;
        off += p.size();
      };
    }
    if (!readBody(req, decoded, raw, &bodyBytes)) {
      if (index) recordBody(*index, bodyBytes);
      logLine(req, 0);
      return false;
    }
    if (index) recordBody(*index, bodyBytes);

    auto finish = [&](int status, std::vector<std::pair<std::string, std::string>> fields,
                      std::string_view body, bool withLength = true) {
      if (withLength) fields.emplace_back("Content-Length", std::to_string(body.size()));
      if (!keepAlive) fields.emplace_back("Connection", "close");
      logLine(req, status);
      std::string out = headFor(status, req, fields);
      if (!headOnly) out.append(body);
      if (!sendAll(out)) return false;
      if (!keepAlive) {
        lingeringClose();
        return false;
      }
      return true;
    };

    const std::string& path = req.path;
    if (path.rfind("/size/", 0) == 0) {
      auto n = parseNumber<uint64_t>(std::string_view(path).substr(6));
      if (!n) return finish(400, {{"Content-Type", "text/plain"}}, "bad size\n");
      bool chunked = req.param("chunked") == "1";
      bool closeDelimited = req.param("close") == "1";
      // ?short=M: promise n bytes, send M, then end the connection (close_notify and FIN at once).
      uint64_t sendBytes = *n;
      auto shortParam = req.param("short");
      if (auto m = shortParam ? parseNumber<uint64_t>(*shortParam) : std::nullopt; m && *m < *n) {
        sendBytes = *m;
        keepAlive = false;
      }
      // ?corrupt=M (TLS): after M body bytes, a record that does not decrypt, sent on the raw socket.
      auto corruptParam = req.param("corrupt");
      auto corruptAt = corruptParam ? parseNumber<uint64_t>(*corruptParam) : std::nullopt;
      if (corruptAt && (*corruptAt >= *n || !io_.ssl)) corruptAt.reset();
      if (corruptAt) sendBytes = *corruptAt;
      std::vector<std::pair<std::string, std::string>> fields{{"Content-Type", "text/plain"}};
      if (closeDelimited) {
        keepAlive = false;
        fields.emplace_back("Connection", "close");
      } else if (chunked) {
        fields.emplace_back("Transfer-Encoding", "chunked");
        fields.emplace_back("Trailer", "X-Pattern-Trailer");
      } else {
        fields.emplace_back("Content-Length", std::to_string(*n));
      }
      if (!keepAlive && !closeDelimited) fields.emplace_back("Connection", "close");
      logLine(req, 200);
      if (!sendAll(headFor(200, req, fields))) return false;
      if (!headOnly && !sendPattern(sendBytes, chunked)) return false;
      if (corruptAt) {
        std::string bad = "\x17\x03\x03";  // application_data, TLS 1.2 framing, 64 bytes of noise
        bad.push_back('\0');
        bad.push_back(char(64));
        bad.append(64, '\x5a');
        (void)!::send(fd_, bad.data(), bad.size(), MSG_NOSIGNAL);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        ::close(fd_);
        fd_ = -1;
        return false;
      }
      if (!keepAlive) {
        lingeringClose();
        return false;
      }
      return true;
    }
    if (path == "/echo") {
      std::string body = req.rawHead + rawBody;
      return finish(200, {{"Content-Type", "application/octet-stream"}}, body);
    }
    if (path == "/upload") {
      return finish(200, {{"Content-Type", "text/plain"}, {"X-Body-Pattern", patternOk ? "ok" : "bad"}},
                    std::to_string(bodyBytes));
    }
    if (path.rfind("/status/", 0) == 0) {
      auto n = parseNumber<int>(std::string_view(path).substr(8));
      if (!n || *n < 200 || *n > 599) return finish(400, {{"Content-Type", "text/plain"}}, "bad status\n");
      bool noBody = *n == 204 || *n == 304;
      return finish(*n, {}, "", !noBody);
    }
    if (path.rfind("/delay/", 0) == 0) {
      auto ms = parseNumber<unsigned>(std::string_view(path).substr(7));
      if (!ms) return finish(400, {{"Content-Type", "text/plain"}}, "bad delay\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(*ms));
      return finish(200, {{"Content-Type", "text/plain"}}, "delayed " + std::to_string(*ms) + " ms\n");
    }
    if (path == "/hang") {
      logLine(req, 0);
      while (fill()) in_.clear();  // never answer; return once the peer gives up
      return false;
    }
    if (path == "/drop-next") {
      dropNext_ = true;
      return finish(200, {{"Content-Type", "text/plain"}}, "the next request is dropped\n");
    }
    if (path == "/reset") {
      logLine(req, 0);
      linger lg{1, 0};  // close() now sends an RST instead of a FIN
      ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      ::close(fd_);
      fd_ = -1;
      return false;
    }
    if (path == "/stats") return finish(200, {{"Content-Type", "application/json"}}, statsJson());
    if (path == "/requests") {
      RequestsDump d = requestsDump();
      return finish(200,
                    {{"Content-Type", "text/plain"},
                     {"X-Request-Count", std::to_string(d.count)},
                     {"X-Body-Lengths", d.lengths}},
                    d.heads);
    }
    if (path == "/tls") return finish(200, {{"Content-Type", "application/json"}}, tlsJson(tls_));
    if (path == "/ws") {
      const std::string* key = req.header("sec-websocket-key");
      const std::string* version = req.header("sec-websocket-version");
      if (!key || !validWebSocketKey(*key) || !version || *version != "13" ||
          !req.hasToken("upgrade", "websocket") || !req.hasToken("connection", "upgrade")) {
        return finish(400, {{"Content-Type", "text/plain"}}, "bad websocket upgrade\n");
      }
      logLine(req, 101);
      std::string head =
          "HTTP/1.1 101 Switching Protocols\r\nServer: sekisho-test-origin\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
          webSocketAccept(*key) + "\r\n\r\n";
      if (!sendAll(head)) return false;
      echoWebSocket();
      return false;
    }
    if (path.rfind("/static/", 0) == 0) {
      std::string name = path.substr(8);
      const std::string& dir = options().staticDir;
      // Only names inside DIR: every '/'-separated segment non-empty and not a dot file (so no
      // ".."); a trailing '/' (or a directory) means its index.html.
      bool safe = !dir.empty() && !name.empty();
      for (size_t at = 0; safe && at < name.size();) {
        size_t slash = name.find('/', at);
        size_t end = slash == std::string::npos ? name.size() : slash;
        if (end == at || name[at] == '.') safe = false;
        at = slash == std::string::npos ? name.size() : slash + 1;
      }
      if (!safe) return finish(404, {{"Content-Type", "text/plain"}}, "no such file\n");
      if (name.back() == '/') {
        name += "index.html";
      } else if (struct stat st{}; ::stat((dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        name += "/index.html";
      }
      std::ifstream in(dir + "/" + name, std::ios::binary);
      if (!in) return finish(404, {{"Content-Type", "text/plain"}}, "no such file\n");
      std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto endsWith = [&](std::string_view ext) {
        return name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
      };
      const char* type = endsWith(".der")                       ? "application/pkix-cert"
                         : endsWith(".pem") || endsWith(".crt") ? "application/x-pem-file"
                         : endsWith(".html")                    ? "text/html"
                                                                : "application/octet-stream";
      return finish(200, {{"Content-Type", type}}, body);
    }
    return finish(404, {{"Content-Type", "text/plain"}}, "no such endpoint\n");
  }

  // Waits until in_ holds at least n bytes; false on EOF or error.
  bool need(size_t n) {
    while (in_.size() < n) {
      if (!fill()) return false;
    }
    return true;
  }

  // An unmasked server frame (RFC 6455 §5.2); b0 carries FIN and the opcode.
  bool sendFrame(uint8_t b0, std::string_view payload) {
    std::string f(1, static_cast<char>(b0));
    if (payload.size() < 126) {
      f.push_back(static_cast<char>(payload.size()));
    } else if (payload.size() <= 0xffff) {
      f.push_back(static_cast<char>(126));
      f.push_back(static_cast<char>(payload.size() >> 8));
      f.push_back(static_cast<char>(payload.size() & 0xff));
    } else {
      f.push_back(static_cast<char>(127));
      for (int i = 7; i >= 0; --i)
        f.push_back(static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xff));
    }
    f.append(payload);
    return sendAll(f);
  }

  void closeWebSocket(uint16_t code) {
    const char payload[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    sendFrame(0x88, std::string_view(payload, 2));
    lingeringClose();
  }

  // The echo loop after the 101: returns when the connection is finished.
  void echoWebSocket() {
    for (;;) {
      if (!need(2)) return;
      const auto b0 = static_cast<uint8_t>(in_[0]);
      const auto b1 = static_cast<uint8_t>(in_[1]);
      size_t hdr = 2;
      uint64_t len = b1 & 0x7f;
      if (len == 126) {
        if (!need(4)) return;
        len = uint64_t{static_cast<uint8_t>(in_[2])} << 8 | static_cast<uint8_t>(in_[3]);
        hdr = 4;
      } else if (len == 127) {
        if (!need(10)) return;
        len = 0;
        for (size_t i = 0; i < 8; ++i) len = len << 8 | static_cast<uint8_t>(in_[2 + i]);
        hdr = 10;
      }
      // §5.1: a client frame must be masked; an unmasked one is a protocol error (1002).
      if (!(b1 & 0x80) || len > kMaxFrameBytes) return closeWebSocket(1002);
      if (!need(hdr + 4 + len)) return;
      std::string payload = in_.substr(hdr + 4, static_cast<size_t>(len));
      for (size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<char>(payload[i] ^ in_[hdr + i % 4]);
      in_.erase(0, hdr + 4 + static_cast<size_t>(len));
      switch (b0 & 0x0f) {
        case 0x0:  // continuation, text, binary: echoed with the same FIN bit and opcode
        case 0x1:
        case 0x2:
          if (!sendFrame(static_cast<uint8_t>(b0 & 0x8f), payload)) return;
          break;
        case 0x8:  // close: answer with the peer's status code, then close
          sendFrame(0x88, std::string_view(payload).substr(0, 125));
          lingeringClose();
          return;
        case 0x9:  // ping -> pong with the same payload
          if (!sendFrame(0x8a, payload)) return;
          break;
        case 0xa:  // unsolicited pong: ignored (§5.5.3)
          break;
        default:
          return closeWebSocket(1002);
      }
    }
  }

  int fd_;
  SSL_CTX* tlsCtx_;  // null: plain HTTP
  Io io_;
  TlsInfo tls_;
  std::string in_;
  bool counted_ = false;  // this connection carried a recorded request (counted once)
  bool dropNext_ = false;  // /drop-next: close on the next request without answering
};

void usage() {
  std::fprintf(stderr,
               "usage: test_origin --port-file FILE [--port PORT] [--static-dir DIR]\n"
               "       [--tls-cert FILE --tls-key FILE [--tls-min V] [--tls-max V] [--require-client-cert]\n"
               "        [--alpn LIST] [--tickets] [--ocsp FILE]]   (V: 1.0|1.1|1.2|1.3)\n");
}

int parseTlsVersion(std::string_view v) {
  if (v == "1.0") return TLS1_VERSION;
  if (v == "1.1") return TLS1_1_VERSION;
  if (v == "1.2") return TLS1_2_VERSION;
  if (v == "1.3") return TLS1_3_VERSION;
  return -1;
}

// "h2,http/1.1" -> "\x02h2\x08http/1.1"; empty on an empty or over-long name.
std::string alpnWire(std::string_view list) {
  std::string wire;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view name = trim(list.substr(0, comma));
    list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    if (name.empty() || name.size() > 255) return "";
    wire.push_back(static_cast<char>(name.size()));
    wire.append(name);
  }
  return wire;
}

int selectAlpn(SSL*, const unsigned char** out, unsigned char* outLen, const unsigned char* in,
               unsigned inLen, void*) {
  const std::string& wire = options().alpnWire;
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outLen, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()), in, inLen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no overlap: carry on without ALPN
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Staples the bytes of --ocsp as they are (the tests also staple garbage), whatever the client
// asked about.
int stapleOcsp(SSL* ssl, void*) {
  static const std::string bytes = [] {
    std::ifstream in(options().ocsp, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }();
  if (bytes.empty()) return SSL_TLSEXT_ERR_NOACK;
  auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(bytes.size()));
  if (!copy) return SSL_TLSEXT_ERR_NOACK;
  std::memcpy(copy, bytes.data(), bytes.size());
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(bytes.size()));  // OpenSSL frees it
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX* makeTlsContext(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return nullptr;
  // Level 0 (see the top of the file): the origin serves weak protocols and certificates so the
  // proxy's refusal of them can be tested. The cipher string carries the level too, because a
  // system-wide CipherString would otherwise raise it again.
  SSL_CTX_set_security_level(ctx, 0);
  if (!SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") ||
      !SSL_CTX_set_min_proto_version(ctx, o.tlsMin ? o.tlsMin : TLS1_2_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, o.tlsMax) ||
      SSL_CTX_use_certificate_chain_file(ctx, o.tlsCert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, o.tlsKey.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  if (o.requireClientCert) {
    // Any certificate will do: the tests check that the proxy presents one, not whose it is.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       [](int, X509_STORE_CTX*) { return 1; });
  }
  if (!o.alpnWire.empty()) SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, nullptr);
  if (!o.ocsp.empty()) SSL_CTX_set_tlsext_status_cb(ctx, stapleOcsp);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // Unless asked (--tickets), each connection is a full handshake the test can observe.
  SSL_CTX_set_num_tickets(ctx, o.tickets ? 2 : 0);
  if (o.tickets) SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>("origin"), 6);
  return ctx;
}

}  // namespace

int main(int argc, char** argv) {
  std::string portFile;
  uint16_t port = 0;
  Options& opts = options();
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--port-file" && i + 1 < argc) {
      portFile = argv[++i];
    } else if (a == "--static-dir" && i + 1 < argc) {
      opts.staticDir = argv[++i];
    } else if (a == "--tls-cert" && i + 1 < argc) {
      opts.tlsCert = argv[++i];
    } else if (a == "--tls-key" && i + 1 < argc) {
      opts.tlsKey = argv[++i];
    } else if ((a == "--tls-min" || a == "--tls-max") && i + 1 < argc) {
      int v = parseTlsVersion(argv[++i]);
      if (v < 0) {
        usage();
        return 2;
      }
      (a == "--tls-min" ? opts.tlsMin : opts.tlsMax) = v;
    } else if (a == "--require-client-cert") {
      opts.requireClientCert = true;
    } else if (a == "--ocsp" && i + 1 < argc) {
      opts.ocsp = argv[++i];
    } else if (a == "--tickets") {
      opts.tickets = true;
    } else if (a == "--alpn" && i + 1 < argc) {
      opts.alpnWire = alpnWire(argv[++i]);
      if (opts.alpnWire.empty()) {
        usage();
        return 2;
      }
    } else if (a == "--port" && i + 1 < argc) {
      auto p = parseNumber<uint16_t>(argv[++i]);
      if (!p) {
        usage();
        return 2;
      }
      port = *p;
    } else {
      usage();
      return 2;
    }
  }
  if (portFile.empty() || opts.tlsCert.empty() != opts.tlsKey.empty()) {
    usage();
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  SSL_CTX* tls = nullptr;
  if (!opts.tlsCert.empty()) {
    tls = makeTlsContext(opts);
    if (!tls) {
      std::fprintf(stderr, "test_origin: TLS setup (%s, %s): %s\n", opts.tlsCert.c_str(), opts.tlsKey.c_str(),
                   opensslError().c_str());
      return 1;
    }
  }

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) {
    std::perror("test_origin: socket");
    return 1;
  }
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 4096) != 0) {
    std::perror("test_origin: bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  {
    std::string tmp = portFile + ".tmp";
    std::ofstream out(tmp, std::ios::trunc);
    out << ntohs(addr.sin_port) << "\n";
    out.close();
    if (!out || std::rename(tmp.c_str(), portFile.c_str()) != 0) {
      std::perror("test_origin: writing the port file");
      return 1;
    }
  }
  std::fprintf(stderr, "test_origin: listening on 127.0.0.1:%u%s\n", ntohs(addr.sin_port),
               tls ? " (TLS)" : "");

  for (;;) {
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      continue;
    }
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    try {
      std::thread([fd, tls] { Conn(fd, tls).run(); }).detach();
    } catch (const std::system_error&) {
      ::close(fd);  // out of threads: refuse this one, keep serving the others
    }
  }
}
