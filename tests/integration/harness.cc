#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "tests/pki/test_pki.h"

extern char** environ;

namespace sekisho::it {
namespace {

constexpr Millis kStartTimeout{15000};  // generous: the sanitizer build starts slower
constexpr size_t kRecvBlock = 256 * 1024;
constexpr size_t kMaxLine = 64 * 1024;
constexpr size_t kDumpTail = 16 * 1024;

std::string envOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string(fallback);
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
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

bool equalsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && lower(a) == lower(b);
}

std::string tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "[...]\n" + s.substr(s.size() - n);
}

// Everything in OpenSSL's error queue (which it empties), for messages.
std::string opensslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

int tlsVersion(std::string_view v) {
  if (v == "1.0") return TLS1_VERSION;
  if (v == "1.1") return TLS1_1_VERSION;
  if (v == "1.2") return TLS1_2_VERSION;
  if (v == "1.3") return TLS1_3_VERSION;
  return -1;
}

bool isIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Waits for what a non-blocking SSL call asked for (SSL_ERROR_WANT_READ/WRITE); false on timeout.
bool waitForTls(int fd, int sslError, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd, static_cast<short>(sslError == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
  return ::poll(&p, 1, static_cast<int>(left)) >= 0 || errno == EINTR;
}

}  // namespace

// ---- small utilities -------------------------------------------------------------------------

std::string sekishoBin() {
#ifdef SEKISHO_IT_DEFAULT_SEKISHO_BIN
  return envOr("SEKISHO_BIN", SEKISHO_IT_DEFAULT_SEKISHO_BIN);
#else
  return envOr("SEKISHO_BIN", "sekisho");
#endif
}

std::string originBin() {
#ifdef SEKISHO_IT_DEFAULT_ORIGIN_BIN
  return envOr("TEST_ORIGIN_BIN", SEKISHO_IT_DEFAULT_ORIGIN_BIN);
#else
  return envOr("TEST_ORIGIN_BIN", "test_origin");
#endif
}

std::vector<std::string> boundedQuarantineEnv() {
#ifdef SEKISHO_SANITIZE
  std::string opts = envOr("ASAN_OPTIONS", "");
  return {"ASAN_OPTIONS=" + opts + (opts.empty() ? "" : ":") + "quarantine_size_mb=8"};
#else
  return {};
#endif
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool writeFileAtomic(const std::string& path, std::string_view text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::vector<std::string> splitLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) break;  // an unterminated last line is still being written
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.emplace_back(line);
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::vector<std::string> splitFields(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) out.emplace_back(line.substr(start, i - start));
  }
  return out;
}

bool containsNoCase(std::string_view haystack, std::string_view needle) {
  return lower(haystack).find(lower(needle)) != std::string::npos;
}

bool waitUntil(const std::function<bool()>& pred, Millis timeout, Millis interval) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

uint16_t pickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

int connectTo(uint16_t port, Millis timeout, int rcvBuf) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (rcvBuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvBuf, sizeof rcvBuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  if (errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  int err = 0;
  socklen_t len = sizeof err;
  if (n <= 0) {
    err = ETIMEDOUT;
  } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    err = errno;
  }
  if (err != 0) {
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

long rssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// ---- Child -----------------------------------------------------------------------------------

std::unique_ptr<Child> Child::spawn(const std::string& name, const std::vector<std::string>& argv,
                                    const std::string& dir, const std::vector<std::string>& env) {
  std::unique_ptr<Child> c(new Child());
  c->name_ = name;
  c->outPath_ = dir + "/" + name + ".stdout";
  c->errPath_ = dir + "/" + name + ".stderr";

  // Everything the child needs is built before fork(): after it only async-signal-safe calls.
  std::vector<std::string> envStrings;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    std::string_view key = kv.substr(0, kv.find('='));
    bool overridden = false;
    for (const auto& o : env) {
      if (std::string_view(o).substr(0, o.find('=')) == key) overridden = true;
    }
    if (!overridden) envStrings.emplace_back(kv);
  }
  for (const auto& o : env) envStrings.push_back(o);
  std::vector<char*> envp, args;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argvCopy = argv;
  for (auto& s : argvCopy) args.push_back(s.data());
  args.push_back(nullptr);

  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out = ::open(c->outPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = ::open(c->errPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (devnull < 0 || out < 0 || err < 0) return nullptr;
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test process killed by CTest
    if (::getppid() != parent) ::_exit(126);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::close_range(3, ~0U, 0);  // no sockets or files of the test leak into the child
    ::execve(args[0], args.data(), envp.data());
    const char msg[] = "harness: execve failed\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }
  ::close(devnull);
  ::close(out);
  ::close(err);
  if (pid < 0) return nullptr;
  c->pid_ = pid;
  return c;
}

Child::~Child() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

bool Child::running() {
  if (status_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  return r == 0;
}

bool Child::signal(int sig) { return running() && ::kill(pid_, sig) == 0; }

std::optional<int> Child::waitExit(Millis timeout) {
  waitUntil([&] { return !running(); }, timeout, Millis(5));
  return status_;
}

std::string Child::stdoutText() const { return readFile(outPath_); }
std::string Child::stderrText() const { return readFile(errPath_); }

std::string describeStatus(std::optional<int> status) {
  if (!status) return "still running";
  if (WIFEXITED(*status)) return "exit " + std::to_string(WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) return "killed by signal " + std::to_string(WTERMSIG(*status));
  return "wait status " + std::to_string(*status);
}

bool RunResult::exitedWith(int code) const {
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == code;
}

RunResult runToCompletion(const std::string& name, const std::vector<std::string>& argv,
                          const std::string& dir, Millis timeout) {
  RunResult r;
  auto child = Child::spawn(name, argv, dir);
  if (!child) return r;
  r.status = child->waitExit(timeout);
  r.out = child->stdoutText();
  r.err = child->stderrText();
  return r;  // the destructor kills it when it overran
}

// ---- HTTP helpers ----------------------------------------------------------------------------

size_t findHeadEnd(std::string_view s) {
  for (size_t i = s.find('\n'); i != std::string_view::npos; i = s.find('\n', i + 1)) {
    if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return 0;
}

HeaderList parseHeaderFields(std::string_view head) {
  HeaderList out;
  bool first = true;
  while (!head.empty()) {
    size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      first = false;
      continue;
    }
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  return out;
}

std::optional<std::string> findHeader(const HeaderList& h, std::string_view name) {
  for (const auto& [n, v] : h) {
    if (equalsNoCase(n, name)) return v;
  }
  return std::nullopt;
}

std::optional<std::string> decodeChunked(std::string_view wire, std::string* trailers) {
  std::string out;
  for (;;) {
    size_t nl = wire.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view sizeLine = wire.substr(0, nl);
    wire.remove_prefix(nl + 1);
    sizeLine = trim(sizeLine.substr(0, sizeLine.find(';')));
    uint64_t size = 0;
    auto [p, ec] = std::from_chars(sizeLine.data(), sizeLine.data() + sizeLine.size(), size, 16);
    if (ec != std::errc() || p != sizeLine.data() + sizeLine.size() || sizeLine.empty()) return std::nullopt;
    if (size == 0) {
      std::string tr;
      for (;;) {
        size_t end = wire.find('\n');
        if (end == std::string_view::npos) return std::nullopt;
        std::string_view line = wire.substr(0, end + 1);
        wire.remove_prefix(end + 1);
        if (line == "\r\n" || line == "\n") {
          if (trailers) *trailers = tr;
          return out;
        }
        tr += line;
      }
    }
    if (wire.size() < size + 1) return std::nullopt;
    out.append(wire.substr(0, size));
    wire.remove_prefix(size);
    if (wire.substr(0, 2) == "\r\n") {
      wire.remove_prefix(2);
    } else if (wire.substr(0, 1) == "\n") {
      wire.remove_prefix(1);
    } else {
      return std::nullopt;
    }
  }
}

std::string getRequest(std::string_view url, std::string_view extraHeaders, std::string_view method) {
  std::string_view rest = url;
  if (rest.rfind("http://", 0) == 0) rest.remove_prefix(7);
  std::string_view authority = rest.substr(0, rest.find('/'));
  std::string r =
      std::string(method) + " " + std::string(url) + " HTTP/1.1\r\nHost: " + std::string(authority) + "\r\n";
  r += extraHeaders;
  r += "\r\n";
  return r;
}

std::optional<std::string> Response::header(std::string_view name) const { return findHeader(headers, name); }

size_t Response::headerCount(std::string_view name) const {
  size_t n = 0;
  for (const auto& [k, v] : headers) {
    if (equalsNoCase(k, name)) ++n;
  }
  return n;
}

std::string Response::summary() const {
  std::string s = complete ? "complete" : "incomplete (" + error + ")";
  s += ", status " + std::to_string(status) + ", body " + std::to_string(bodyBytes) + " bytes";
  if (closed) s += ", closed";
  if (!rawHead.empty()) s += ", head:\n" + rawHead.substr(0, 2048);
  return s;
}

// ---- Client ----------------------------------------------------------------------------------

Client::Client(uint16_t port, Millis connectTimeout, int rcvBuf) {
  fd_ = connectTo(port, connectTimeout, rcvBuf);
}

Client::Client(Client&& other) noexcept : fd_(other.fd_), ssl_(other.ssl_), buf_(std::move(other.buf_)) {
  other.fd_ = -1;
  other.ssl_ = nullptr;
}

Client::~Client() { close(); }

void Client::close() {
  if (ssl_) {
    SSL_shutdown(ssl_);  // one non-blocking try at a close_notify; the close follows regardless
    SSL_free(ssl_);
    ERR_clear_error();
    ssl_ = nullptr;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Client::useTls(ssl_st* ssl) {
  if (ssl_) SSL_free(ssl_);
  ssl_ = ssl;
  // send() retries a write with the same bytes, but its string_view may sit elsewhere by then.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // OpenSSL writes with write(), not send(MSG_NOSIGNAL): a proxy that closes on a client still
  // sending must fail that send(), not kill the test binary.
  static const bool sigpipeIgnored = ::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
  (void)sigpipeIgnored;
}

bool Client::send(std::string_view data, Millis timeout) {
  if (fd_ < 0) return false;
  auto deadline = Clock::now() + timeout;
  while (ssl_ && !data.empty()) {
    ERR_clear_error();
    int n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), kRecvBlock)));
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      deadline = Clock::now() + timeout;
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      ERR_clear_error();
      errno = EPIPE;
      return false;
    }
    if (!waitForTls(fd_, e, deadline)) return false;
  }
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      deadline = Clock::now() + timeout;  // the timeout is for no progress, not the total
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) return false;
  }
  return true;
}

Client::Fill Client::fill(Millis timeout) {
  if (fd_ < 0) return Fill::Error;
  auto deadline = Clock::now() + timeout;
  while (ssl_) {
    char buf[kRecvBlock];
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      buf_.append(buf, static_cast<size_t>(n));
      return Fill::Data;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!waitForTls(fd_, e, deadline)) return Fill::Timeout;
      continue;
    }
    // close_notify, a TCP close without one (OpenSSL 3 reports "unexpected eof" as an SSL
    // error) and a reset all end the stream; anything else (a bad record, an alert) is an error.
    unsigned long err = ERR_peek_error();
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN) return Fill::Eof;
    if (e == SSL_ERROR_SYSCALL) return Fill::Eof;
    if (e == SSL_ERROR_SSL && ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return Fill::Eof;
    return Fill::Error;
  }
  for (;;) {
    char buf[kRecvBlock];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      buf_.append(buf, static_cast<size_t>(n));
      return Fill::Data;
    }
    if (n == 0) return Fill::Eof;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return errno == ECONNRESET ? Fill::Eof : Fill::Error;
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return Fill::Timeout;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) return Fill::Error;
  }
}

void Client::deliver(std::string_view piece, Response& r, const ReadOptions& opts) {
  r.bodyBytes += piece.size();
  if (opts.storeBody) r.body.append(piece);
  if (opts.onBody) opts.onBody(piece);
}

bool Client::readLine(std::string& line, Millis timeout, Response& r) {
  size_t nl;
  while ((nl = buf_.find('\n')) == std::string::npos) {
    if (buf_.size() > kMaxLine) {
      r.error = "line too long";
      return false;
    }
    Fill f = fill(timeout);
    if (f != Fill::Data) {
      r.closed = f == Fill::Eof;
      r.error = f == Fill::Timeout ? "timed out in the chunked framing" : "closed in the chunked framing";
      return false;
    }
  }
  line = buf_.substr(0, nl + 1);
  buf_.erase(0, nl + 1);
  return true;
}

bool Client::readBytes(uint64_t n, Millis timeout, Response& r, const ReadOptions& opts) {
  while (n > 0) {
    if (buf_.empty()) {
      Fill f = fill(timeout);
      if (f != Fill::Data) {
        r.closed = f == Fill::Eof;
        r.error = std::string(f == Fill::Timeout ? "timed out" : "closed") + " with " + std::to_string(n) +
                  " body bytes missing";
        return false;
      }
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
    deliver(std::string_view(buf_.data(), take), r, opts);
    buf_.erase(0, take);
    n -= take;
  }
  return true;
}

Response Client::read(const ReadOptions& opts) {
  Response r;
  if (fd_ < 0) {
    r.error = "not connected";
    return r;
  }
  for (;;) {
    size_t end;
    while ((end = findHeadEnd(buf_)) == 0) {
      Fill f = fill(opts.timeout);
      if (f != Fill::Data) {
        r.closed = f == Fill::Eof;
        if (f == Fill::Timeout) {
          r.error = "timed out waiting for a response head";
        } else {
          r.error = buf_.empty() ? "closed before a response" : "closed inside a response head";
        }
        r.rawHead = buf_;
        return r;
      }
    }
    r.rawHead = buf_.substr(0, end);
    buf_.erase(0, end);
    std::string_view statusLine(r.rawHead);
    statusLine = statusLine.substr(0, statusLine.find('\n'));
    if (!statusLine.empty() && statusLine.back() == '\r') statusLine.remove_suffix(1);
    size_t sp1 = statusLine.find(' ');
    if (sp1 == std::string_view::npos || statusLine.size() < sp1 + 4) {
      r.error = "malformed status line";
      return r;
    }
    r.version = std::string(statusLine.substr(0, sp1));
    std::string_view code = statusLine.substr(sp1 + 1, 3);
    std::from_chars(code.data(), code.data() + code.size(), r.status);
    r.reason = std::string(trim(statusLine.size() > sp1 + 4 ? statusLine.substr(sp1 + 5) : ""));
    r.headers = parseHeaderFields(r.rawHead);
    if (r.status >= 100 && r.status < 200 && r.status != 101 && opts.skipInterim) {
      r.interim.push_back(r.status);
      r.headers.clear();
      continue;
    }
    break;
  }
  // RFC 9112 §6.3: which responses have a body, and how it is delimited.
  const bool noBody = opts.method == "HEAD" || (r.status >= 100 && r.status < 200) || r.status == 204 ||
                      r.status == 304 || (opts.method == "CONNECT" && r.status / 100 == 2);
  if (noBody) {
    r.complete = true;
    return r;
  }
  auto te = r.header("Transfer-Encoding");
  if (te && containsNoCase(*te, "chunked")) {
    r.chunked = true;
    for (;;) {
      std::string line;
      if (!readLine(line, opts.timeout, r)) return r;
      std::string_view sizeText = trim(std::string_view(line).substr(0, line.find(';')));
      uint64_t size = 0;
      auto [p, ec] = std::from_chars(sizeText.data(), sizeText.data() + sizeText.size(), size, 16);
      if (ec != std::errc() || p != sizeText.data() + sizeText.size() || sizeText.empty()) {
        r.error = "bad chunk size line '" + std::string(trim(line)) + "'";
        return r;
      }
      if (size == 0) {
        for (;;) {
          if (!readLine(line, opts.timeout, r)) return r;
          if (line == "\r\n" || line == "\n") break;
          r.rawTrailers += line;
        }
        r.complete = true;
        return r;
      }
      if (!readBytes(size, opts.timeout, r, opts)) return r;
      if (!readLine(line, opts.timeout, r)) return r;
      if (line != "\r\n" && line != "\n") {
        r.error = "chunk data not followed by CRLF";
        return r;
      }
    }
  }
  if (auto cl = r.header("Content-Length")) {
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec != std::errc() || p != cl->data() + cl->size()) {
      r.error = "bad Content-Length '" + *cl + "'";
      return r;
    }
    r.complete = readBytes(n, opts.timeout, r, opts);
    return r;
  }
  r.closeDelimited = true;
  for (;;) {
    if (!buf_.empty()) {
      deliver(buf_, r, opts);
      buf_.clear();
    }
    Fill f = fill(opts.timeout);
    if (f == Fill::Data) continue;
    if (f == Fill::Eof) {
      r.closed = true;
      r.complete = true;
    } else {
      r.error =
          f == Fill::Timeout ? "timed out in a close-delimited body" : "error in a close-delimited body";
    }
    return r;
  }
}

Response Client::roundTrip(std::string_view request, const ReadOptions& opts) {
  if (!send(request)) {
    Response r;
    r.error = fd_ < 0 ? "not connected" : std::string("send failed: ") + std::strerror(errno);
    // The server may have answered and closed before reading everything; report that answer.
    Response answered = read(opts);
    return answered.status != 0 ? answered : r;
  }
  return read(opts);
}

bool Client::waitClosed(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    Fill f = fill(left);
    buf_.clear();
    if (f == Fill::Eof || f == Fill::Error) return true;
    if (f == Fill::Timeout) return false;
  }
}

bool Client::isOpen() {
  if (fd_ < 0) return false;
  char c;
  ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return true;
  if (n == 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

std::string Client::readUntilClose(Millis timeout) {
  for (;;) {
    Fill f = fill(timeout);
    if (f != Fill::Data) break;
  }
  return std::exchange(buf_, std::string());
}

std::string Client::readSome(Millis timeout) {
  if (buf_.empty()) fill(timeout);
  return std::exchange(buf_, std::string());
}

// ---- TlsClient -------------------------------------------------------------------------------

std::unique_ptr<TlsClient> TlsClient::direct(uint16_t port, const std::string& host,
                                             const std::string& caFile, const TlsOptions& opts) {
  std::unique_ptr<TlsClient> t(new TlsClient(port, opts.timeout));
  if (!t->client_.connected()) {
    t->error_ = "connect to port " + std::to_string(port) + ": " + std::strerror(errno);
    return t;
  }
  t->tunnelOk_ = true;
  t->handshake(host, caFile, opts);
  return t;
}

std::unique_ptr<TlsClient> TlsClient::viaProxy(uint16_t proxyPort, const std::string& host, uint16_t port,
                                               const std::string& caFile, const TlsOptions& opts) {
  std::unique_ptr<TlsClient> t(new TlsClient(proxyPort, opts.timeout));
  if (!t->client_.connected()) {
    t->error_ = "connect to the proxy on port " + std::to_string(proxyPort) + ": " + std::strerror(errno);
    return t;
  }
  std::string authority =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  ReadOptions ro;
  ro.method = "CONNECT";
  ro.timeout = opts.timeout;
  std::string head = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
  if (!opts.connectHead.empty()) {
    head = opts.connectHead;
    for (size_t at; (at = head.find("{}")) != std::string::npos;) head.replace(at, 2, authority);
  }
  t->connect_ = t->client_.roundTrip(head, ro);
  if (t->connect_.status / 100 != 2) {
    t->error_ = "CONNECT " + authority + ": " + t->connect_.summary();
    return t;
  }
  t->tunnelOk_ = true;
  t->handshake(host, caFile, opts);
  return t;
}

TlsClient::~TlsClient() {
  if (peer_) X509_free(peer_);
}

void TlsClient::handshake(const std::string& host, const std::string& caFile, const TlsOptions& opts) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) {
    error_ = "SSL_CTX_new: " + opensslErrors();
    return;
  }
  if (opts.legacy) {
    // The cipher string carries the level too: a system-wide CipherString would raise it again.
    SSL_CTX_set_security_level(ctx.get(), 0);
    SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0");
  }
  int minV = opts.minVersion.empty() ? 0 : tlsVersion(opts.minVersion);
  int maxV = opts.maxVersion.empty() ? 0 : tlsVersion(opts.maxVersion);
  if (minV < 0 || maxV < 0 || !SSL_CTX_set_min_proto_version(ctx.get(), minV) ||
      !SSL_CTX_set_max_proto_version(ctx.get(), maxV)) {
    error_ = "bad TLS version range '" + opts.minVersion + "'..'" + opts.maxVersion + "'";
    return;
  }
  // Only caFile is trusted: a test must never pass because of the machine's roots.
  if (!caFile.empty() && SSL_CTX_load_verify_locations(ctx.get(), caFile.c_str(), nullptr) != 1) {
    error_ = "cannot load CA file " + caFile + ": " + opensslErrors();
    return;
  }
  SSL_CTX_set_verify(ctx.get(), opts.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (!opts.certFile.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx.get(), opts.certFile.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx.get(), opts.keyFile.c_str(), SSL_FILETYPE_PEM) != 1)) {
    error_ = "cannot load client certificate " + opts.certFile + ": " + opensslErrors();
    return;
  }
  SSL* ssl = SSL_new(ctx.get());
  if (!ssl || !SSL_set_fd(ssl, client_.fd())) {
    error_ = "SSL_new: " + opensslErrors();
    if (ssl) SSL_free(ssl);
    return;
  }
  client_.useTls(ssl);  // owned by the Client from here on, also when the handshake fails
  const bool ip = isIpLiteral(host);
  std::string sni = opts.sni ? *opts.sni : (ip ? "" : host);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  if (ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set1_host(ssl, host.c_str());
  }
  if (!opts.alpn.empty()) {
    std::string wire;
    for (const auto& p : opts.alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned>(wire.size()));
  }

  auto deadline = Clock::now() + opts.timeout;
  int rc;
  for (;;) {
    ERR_clear_error();
    rc = SSL_connect(ssl);
    if (rc == 1) break;
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (waitForTls(client_.fd(), e, deadline)) continue;
      error_ = "TLS handshake timed out";
      break;
    }
    error_ = "TLS handshake failed: ";
    std::string queued = opensslErrors();
    if (e == SSL_ERROR_SYSCALL && queued.empty()) {
      queued = errno ? std::strerror(errno) : "the peer closed the connection";
    }
    error_ += queued;
    break;
  }
  verifyResult_ = SSL_get_verify_result(ssl);
  if (X509* peer = SSL_get1_peer_certificate(ssl)) peer_ = peer;
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) chainLength_ = sk_X509_num(chain);
  if (rc != 1) {
    if (verifyResult_ != X509_V_OK) error_ += " (verify: " + verifyError() + ")";
    return;
  }
  handshakeOk_ = true;
  version_ = SSL_get_version(ssl);
  cipher_ = SSL_get_cipher_name(ssl);
  const unsigned char* alpn = nullptr;
  unsigned alpnLen = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpnLen);
  if (alpn) alpn_.assign(reinterpret_cast<const char*>(alpn), alpnLen);
}

std::string TlsClient::verifyError() const {
  return verifyResult_ < 0 ? "no verification" : X509_verify_cert_error_string(verifyResult_);
}

std::vector<std::string> TlsClient::peerSans() const {
  std::vector<std::string> out;
  if (!peer_) return out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(peer_, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      const ASN1_STRING* s = n->d.dNSName;
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (n->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = n->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = "";
      int family = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
      ::inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof text);
      out.push_back(std::string("IP:") + text);
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string TlsClient::peerSubject() const {
  if (!peer_) return "";
  char buf[512];
  return X509_NAME_oneline(X509_get_subject_name(peer_), buf, sizeof buf);
}

std::string TlsClient::peerIssuer() const {
  if (!peer_) return "";
  char buf[512];
  return X509_NAME_oneline(X509_get_issuer_name(peer_), buf, sizeof buf);
}

long long TlsClient::peerNotAfter() const {
  std::tm tm{};
  if (!peer_ || ASN1_TIME_to_tm(X509_get0_notAfter(peer_), &tm) != 1) return 0;
  return static_cast<long long>(::timegm(&tm));
}

std::string TlsClient::peerSignatureAlgorithm() const {
  return peer_ ? OBJ_nid2ln(X509_get_signature_nid(peer_)) : "";
}

std::string TlsClient::peerKeyType() const {
  EVP_PKEY* key = peer_ ? X509_get0_pubkey(peer_) : nullptr;
  if (!key) return "";
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC:
      return "EC";
    case EVP_PKEY_RSA:
      return "RSA";
    default:
      return OBJ_nid2sn(EVP_PKEY_get_base_id(key));
  }
}

int TlsClient::peerKeyBits() const {
  EVP_PKEY* key = peer_ ? X509_get0_pubkey(peer_) : nullptr;
  return key ? EVP_PKEY_get_bits(key) : 0;
}

// ---- Origin and Proxy ------------------------------------------------------------------------

std::string Origin::authority() const { return "127.0.0.1:" + std::to_string(port_); }
std::string Origin::url(std::string_view path) const {
  return (tls_ ? "https://" : "http://") + authority() + std::string(path);
}

void Origin::setTls(std::string clientCert, std::string clientKey) {
  tls_ = true;
  clientCert_ = std::move(clientCert);
  clientKey_ = std::move(clientKey);
}

Response Origin::ask(std::string_view path) {
  std::string request =
      "GET " + std::string(path) + " HTTP/1.1\r\nHost: " + authority() + "\r\nConnection: close\r\n\r\n";
  if (!tls_) {
    Client c(port_);
    return c.roundTrip(request);
  }
  // Whatever the origin speaks (a TLS 1.0-only one too), whichever certificate it serves.
  TlsOptions o;
  o.verify = false;
  o.legacy = true;
  o.minVersion = "1.0";
  o.certFile = clientCert_;
  o.keyFile = clientKey_;
  auto t = TlsClient::direct(port_, "127.0.0.1", "", o);
  if (!t->handshakeOk()) {
    Response r;
    r.error = t->error();
    return r;
  }
  return t->roundTrip(request);
}

Origin::Stats Origin::stats() {
  Stats s;
  Response r = ask("/stats");
  if (!r.complete || r.status != 200) return s;
  auto number = [&](std::string_view key) -> long {
    size_t at = r.body.find("\"" + std::string(key) + "\":");
    if (at == std::string::npos) return -1;
    return std::strtol(r.body.c_str() + at + key.size() + 3, nullptr, 10);
  };
  s.connections = number("connections");
  s.requests = number("requests");
  s.tlsHandshakes = number("tls_handshakes");
  s.tlsFailures = number("tls_failures");
  s.h2Connections = number("h2_connections");
  s.h2Streams = number("h2_streams");
  s.h2MaxStreamWindow = number("h2_max_stream_window");
  return s;
}

std::string Origin::requests() {
  Response r = ask("/requests");
  return r.complete ? r.body : "<origin /requests failed: " + r.error + ">";
}

long Origin::requestCount() { return stats().requests; }

std::string Proxy::authority() const { return "127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> Proxy::logLines() const { return splitLines(readFile(accessLog_)); }

std::optional<std::string> Proxy::waitLogLine(const std::function<bool(const std::string&)>& pred,
                                              Millis timeout) const {
  std::optional<std::string> found;
  waitUntil(
      [&] {
        for (const auto& l : logLines()) {
          if (pred(l)) {
            found = l;
            return true;
          }
        }
        return false;
      },
      timeout, Millis(25));
  return found;
}

std::optional<std::string> Proxy::waitLogLineWith(std::string_view a, std::string_view b,
                                                  Millis timeout) const {
  return waitLogLine(
      [&](const std::string& l) {
        return l.find(a) != std::string::npos && (b.empty() || l.find(b) != std::string::npos);
      },
      timeout);
}

// ---- TestEnv ---------------------------------------------------------------------------------

TestEnv::TestEnv() {
  std::string base = envOr("TMPDIR", "/tmp");
  std::string tmpl = base + "/sekisho-it-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << tmpl << "): " << std::strerror(errno);
    return;
  }
  dir_ = buf.data();
}

TestEnv::~TestEnv() {
  proxies_.clear();
  origins_.clear();
  children_.clear();  // kills and reaps
  if (dir_.empty()) return;
  const bool failed = ::testing::Test::HasFailure();
  if (failed || std::getenv("SEKISHO_IT_KEEP")) {
    std::cerr << "[harness] kept " << dir_ << "\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Child* TestEnv::spawn(const std::string& name, const std::vector<std::string>& argv,
                      const std::vector<std::string>& env) {
  auto c = Child::spawn(name, argv, dir_, env);
  if (!c) {
    lastError_ = "cannot spawn " + argv.at(0) + ": " + std::strerror(errno);
    return nullptr;
  }
  children_.push_back(std::move(c));
  return children_.back().get();
}

Origin* TestEnv::startOrigin(const std::vector<std::string>& extraArgs) {
  return launchOrigin(extraArgs, false, "", "");
}

std::string TestEnv::makePki(const std::string& aiaUrl) {
  if (!pkiDir_.empty()) return pkiDir_;
  std::string error;
  if (!testpki::makeTestPki(path("pki"), &error, aiaUrl)) {
    lastError_ = "cannot make the test PKI: " + error;
    return "";
  }
  pkiDir_ = path("pki");
  return pkiDir_;
}

Origin* TestEnv::startTlsOrigin(const TlsOriginOptions& opts) {
  std::string pki = makePki();
  if (pki.empty()) return nullptr;
  std::vector<std::string> args{"--tls-cert", pki + "/" + opts.cert + ".crt", "--tls-key",
                                pki + "/" + opts.cert + ".key"};
  if (!opts.tlsMin.empty()) args.insert(args.end(), {"--tls-min", opts.tlsMin});
  if (!opts.tlsMax.empty()) args.insert(args.end(), {"--tls-max", opts.tlsMax});
  if (opts.requireClientCert) args.emplace_back("--require-client-cert");
  if (!opts.alpn.empty()) args.insert(args.end(), {"--alpn", opts.alpn});
  args.insert(args.end(), opts.extraArgs.begin(), opts.extraArgs.end());
  return opts.requireClientCert ? launchOrigin(args, true, pki + "/client.crt", pki + "/client.key")
                                : launchOrigin(args, true, "", "");
}

Origin* TestEnv::launchOrigin(const std::vector<std::string>& extraArgs, bool tls,
                              const std::string& clientCert, const std::string& clientKey) {
  std::string name = origins_.empty() ? "origin" : "origin" + std::to_string(origins_.size() + 1);
  std::string portFile = path(name + ".port");
  std::vector<std::string> argv{originBin(), "--port-file", portFile};
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  Child* c = spawn(name, argv);
  if (!c) return nullptr;
  uint16_t port = 0;
  bool ok = waitUntil(
      [&] {
        std::string text = readFile(portFile);
        port = static_cast<uint16_t>(std::strtoul(text.c_str(), nullptr, 10));
        return port != 0 || !c->running();
      },
      kStartTimeout, Millis(5));
  if (!ok || port == 0) {
    lastError_ = "test origin " + originBin() + " did not write its port (" +
                 describeStatus(c->waitStatus()) + "): " + c->stderrText();
    return nullptr;
  }
  origins_.push_back(std::make_unique<Origin>(c, port));
  Origin* o = origins_.back().get();
  if (tls) o->setTls(clientCert, clientKey);
  // The port file is written after listen(), so this first request (a TLS handshake included)
  // needs no retry: failing here is a broken origin, not a slow one.
  Response r = o->ask("/stats");
  if (!r.complete || r.status != 200 || r.body.find("\"requests\":0") == std::string::npos) {
    lastError_ = "test origin on port " + std::to_string(port) + " does not answer /stats" +
                 (tls ? " over TLS" : "") + ": " + r.summary() + "\nstderr:\n" +
                 tail(c->stderrText(), kDumpTail);
    return nullptr;
  }
  return o;
}

ProxyConfig TestEnv::proxyConfig() const {
  ProxyConfig cfg;
  cfg.connectPorts = {"443"};
  if (!origins_.empty()) cfg.connectPorts.push_back(std::to_string(origins_.front()->port()));
  return cfg;
}

std::string TestEnv::renderConfig(const ProxyConfig& cfg, uint16_t port) const {
  auto list = [](const std::vector<std::string>& items, bool quote) {
    std::string s = "[";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) s += ", ";
      s += quote ? "\"" + items[i] + "\"" : items[i];
    }
    return s + "]";
  };
  auto map = [](const HeaderList& items) {
    std::string s = "{";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) s += ", ";
      s += items[i].first + ": " + items[i].second;
    }
    return s + "}";
  };
  std::string y;
  y += "listen: [\"" + std::string(cfg.listenAll ? "0.0.0.0:" : "127.0.0.1:") + std::to_string(port) + "\"]\n";
  y += "workers: " + cfg.workers + "\n";
  y += "allow_clients: " + list(cfg.allowClients, true) + "\n";
  y += "connect_ports: " + list(cfg.connectPorts, false) + "\n";
  y += "http_ports: " + list(cfg.httpPorts, false) + "\n";
  if (!cfg.visibleHostname.empty()) y += "visible_hostname: " + cfg.visibleHostname + "\n";
  if (!cfg.resolve.empty()) y += "resolve: " + map(cfg.resolve) + "\n";
  y += "log: {access: \"" + (cfg.accessLog.empty() ? path("access.log") : cfg.accessLog) +
       "\", format: \"" + cfg.logFormat + "\"}\n";
  y += "admin: {listen: \"" + (cfg.adminPort ? "127.0.0.1:" + std::to_string(cfg.adminPort) : std::string()) + "\"}\n";
  if (!cfg.timeouts.empty()) y += "timeouts: " + map(cfg.timeouts) + "\n";
  y += cfg.extra;
  return y;
}

Proxy* TestEnv::startProxy(const ProxyConfig& cfg, bool expectHealthy) {
  // A port picked free can be taken by another process before the proxy binds it: pick again.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    Proxy* p = startProxyOnce(cfg, cfg.port ? cfg.port : pickFreePort(), expectHealthy);
    if (p || cfg.port || attempt == kAttempts || !containsNoCase(lastError_, "in use")) return p;
  }
}

Proxy* TestEnv::startProxyOnce(const ProxyConfig& cfg, uint16_t port, bool expectHealthy) {
  std::string configPath = path("sekisho.yaml");
  std::string accessLog = cfg.accessLog.empty() ? path("access.log") : cfg.accessLog;
  if (!writeFileAtomic(configPath, renderConfig(cfg, port))) {
    lastError_ = "cannot write " + configPath;
    return nullptr;
  }
  ++proxyStarts_;
  std::string name = proxyStarts_ == 1 ? "sekisho" : "sekisho" + std::to_string(proxyStarts_);
  std::vector<std::string> argv = cfg.wrapper;
  argv.insert(argv.end(), {sekishoBin(), "--config", configPath});
  Child* c = spawn(name, argv, cfg.env);
  if (!c) return nullptr;
  Response health;
  bool ok = waitUntil(
      [&] {
        if (!c->running()) return true;
        Client client(port, Millis(500));
        if (!client.connected()) return false;
        ReadOptions quick;  // short, so a proxy that is still starting is asked again
        quick.timeout = Millis(1000);
        health = client.roundTrip("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                                      "\r\nConnection: close\r\n\r\n",
                                  quick);
        return health.status != 0;
      },
      kStartTimeout, Millis(20));
  if (!c->running()) {
    lastError_ = "sekisho exited during start-up (" + describeStatus(c->waitStatus()) + "); config:\n" +
                 readFile(configPath) + "stderr:\n" + tail(c->stderrText(), kDumpTail);
    return nullptr;
  }
  if (!ok || (expectHealthy && health.status != 200)) {
    lastError_ = "sekisho on port " + std::to_string(port) + " not ready: GET /healthz -> " +
                 health.summary() + "\nstderr:\n" + tail(c->stderrText(), kDumpTail);
    return nullptr;
  }
  proxies_.push_back(std::make_unique<Proxy>(c, port, configPath, accessLog));
  return proxies_.back().get();
}

void TestEnv::dumpDiagnostics() const {
  std::cerr << "[harness] test dir " << dir_ << "\n";
  for (const auto& c : children_) {
    std::cerr << "[harness] ---- " << c->name() << " (pid " << c->pid() << ", "
              << describeStatus(c->waitStatus()) << ") stderr ----\n"
              << tail(c->stderrText(), kDumpTail) << "\n";
  }
  for (const auto& p : proxies_) {
    std::cerr << "[harness] ---- " << p->accessLogPath() << " ----\n"
              << tail(readFile(p->accessLogPath()), kDumpTail / 2) << "\n";
  }
}

// ---- ProxyTest -------------------------------------------------------------------------------

void ProxyTest::TearDown() {
  if (HasFailure()) env_.dumpDiagnostics();
}

void ProxyTest::startOrigin() {
  origin_ = env_.startOrigin();
  ASSERT_NE(origin_, nullptr) << env_.lastError();
}

void ProxyTest::startProxy(std::optional<ProxyConfig> cfg, bool expectHealthy) {
  proxy_ = env_.startProxy(cfg ? *cfg : env_.proxyConfig(), expectHealthy);
  ASSERT_NE(proxy_, nullptr) << env_.lastError();
}

Response ProxyTest::viaProxy(std::string_view request, const ReadOptions& opts) {
  Client c(proxy_->port());
  return c.roundTrip(request, opts);
}

void ProxyTest::expectStillServing() {
  Response r = viaProxy(getRequest(origin_->url("/size/10")));
  EXPECT_TRUE(r.complete) << r.summary();
  EXPECT_EQ(r.status, 200) << r.summary();
  EXPECT_EQ(r.body, testorigin::patternString(10));
}

}  // namespace sekisho::it
