// test_origin: the HTTP/1.1 origin server the integration tests put behind the proxy.
//
//   test_origin --port-file F [--port P]
//
// Binds 127.0.0.1:P (0, the default, picks a free port) and writes the port to F (atomically,
// through a rename), so the test can wait for the file instead of guessing. Blocking sockets and
// one thread per connection: simple enough to trust, fast enough for a few GiB per test.
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
//   /stats       {"connections":c,"requests":r}; connections count only those that carried a
//                recorded request. Neither /stats nor /requests is recorded.
//   /requests    the raw heads of all recorded requests, concatenated in arrival order;
//                X-Request-Count: r, X-Body-Lengths: comma-separated body sizes.
// Any endpoint takes h=Name:Value (percent-encoded, repeatable) to add a response header.
// HEAD gets the GET head without a body. `Expect: 100-continue` on a request with a body gets an
// interim 100 Continue before the body is read.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
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
};

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
  return r;
}

class Conn {
 public:
  explicit Conn(int fd) : fd_(fd) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }

  void run() {
    for (;;) {
      auto req = readRequest();
      if (!req) return;
      if (!serve(*req)) return;
    }
  }

 private:
  using Sink = std::function<void(std::string_view)>;

  // One recv() appended to in_; false on EOF or error.
  bool fill() {
    char buf[kReadBlock];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
  }

  bool sendAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
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
      if (!headOnly && !sendPattern(*n, chunked)) return false;
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
    if (path == "/reset") {
      logLine(req, 0);
      linger lg{1, 0};  // close() now sends an RST instead of a FIN
      ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      ::close(fd_);
      fd_ = -1;
      return false;
    }
    if (path == "/stats") {
      auto& rec = recorder();
      std::string body;
      {
        std::lock_guard lock(rec.mu);
        body = "{\"connections\":" + std::to_string(rec.connections) +
               ",\"requests\":" + std::to_string(rec.records.size()) + "}";
      }
      return finish(200, {{"Content-Type", "application/json"}}, body);
    }
    if (path == "/requests") {
      auto& rec = recorder();
      std::string body, lengths;
      size_t count;
      {
        std::lock_guard lock(rec.mu);
        count = rec.records.size();
        for (const auto& r : rec.records) {
          body += r.head;
          if (!lengths.empty()) lengths += ",";
          lengths += std::to_string(r.bodyBytes);
        }
      }
      return finish(200,
                    {{"Content-Type", "text/plain"},
                     {"X-Request-Count", std::to_string(count)},
                     {"X-Body-Lengths", lengths.empty() ? "-" : lengths}},
                    body);
    }
    return finish(404, {{"Content-Type", "text/plain"}}, "no such endpoint\n");
  }

  int fd_;
  std::string in_;
  bool counted_ = false;  // this connection carried a recorded request (counted once)
};

void usage() { std::fprintf(stderr, "usage: test_origin --port-file FILE [--port PORT]\n"); }

}  // namespace

int main(int argc, char** argv) {
  std::string portFile;
  uint16_t port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--port-file" && i + 1 < argc) {
      portFile = argv[++i];
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
  if (portFile.empty()) {
    usage();
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);

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
  std::fprintf(stderr, "test_origin: listening on 127.0.0.1:%u\n", ntohs(addr.sin_port));

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
      std::thread([fd] { Conn(fd).run(); }).detach();
    } catch (const std::system_error&) {
      ::close(fd);  // out of threads: refuse this one, keep serving the others
    }
  }
}
