// The integration test harness: starts the real `sekisho` and the test origin as child processes,
// talks raw HTTP/1.1 to them, and reads what they did (origin records, access log, RSS).
//
// Rules it enforces so tests stay independent and fast:
//  - each test owns a temp dir (mkdtemp) holding configs, logs and the children's stderr, removed
//    when the test passes (kept, with its path printed, when it fails or SEKISHO_IT_KEEP=1);
//  - each test owns its children: started with fork/exec, SIGKILLed and reaped by the destructor,
//    and killed by the kernel if the test process dies (PR_SET_PDEATHSIG);
//  - ports are picked free (bind 127.0.0.1:0, read it back, close) and readiness is polled (TCP
//    connect, then an HTTP request), never assumed after a sleep;
//  - every read and write has a timeout, so a proxy bug fails a test instead of hanging it.
//
// For the TLS-interception tests it also builds the test PKI (tests/pki) into the test dir,
// starts TLS origins serving its certificates, and speaks TLS (TlsClient: directly or through a
// CONNECT tunnel) with the same HTTP/1.1 reading code as the plain Client.
#pragma once
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/origin/pattern.h"

// OpenSSL's SSL and X509, without its headers in every test.
struct ssl_st;
struct x509_st;

namespace sekisho::it {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

inline constexpr long kMiB = 1024 * 1024;
#ifdef SEKISHO_SANITIZE
// Under ASan/UBSan the proxy's RSS includes shadow memory for every page it touched, redzones
// around each allocation and per-thread allocator caches, so a streaming proxy still grows a
// little: bounds get x4. ASan also keeps freed blocks in a quarantine (256 MiB by default) that a
// gigabyte of relayed buffers fills completely; tests that measure RSS start the proxy with
// boundedQuarantineEnv() so the bound measures the proxy, not the quarantine.
inline constexpr long kRssSlack = 4;
#else
inline constexpr long kRssSlack = 1;
#endif

// Environment for a proxy whose RSS is measured: in the sanitizer build, ASAN_OPTIONS (as
// inherited) plus quarantine_size_mb=8; empty otherwise.
std::vector<std::string> boundedQuarantineEnv();

// Paths of the binaries under test: $SEKISHO_BIN / $TEST_ORIGIN_BIN (set by CTest), else the
// paths compiled in from the build tree.
std::string sekishoBin();
std::string originBin();

std::string readFile(const std::string& path);
// Writes through a temp file and rename(), so a process re-reading `path` never sees half a file.
bool writeFileAtomic(const std::string& path, std::string_view text);
std::vector<std::string> splitLines(std::string_view text);
std::vector<std::string> splitFields(std::string_view line);  // on runs of spaces
bool containsNoCase(std::string_view haystack, std::string_view needle);

// Polls `pred` every `interval` until it holds or `timeout` passes; true when it held.
bool waitUntil(const std::function<bool()>& pred, Millis timeout, Millis interval = Millis(20));

uint16_t pickFreePort();
// A connected blocking-free TCP socket to 127.0.0.1:port (O_NONBLOCK, CLOEXEC), or -1 with errno.
int connectTo(uint16_t port, Millis timeout, int rcvBuf = 0);
// Resident set size of `pid` in KiB (VmRSS from /proc), or -1 when the process is gone.
long rssKiB(pid_t pid);

// ---- child processes -------------------------------------------------------------------------

class Child {
 public:
  // stdout and stderr go to <dir>/<name>.stdout and <dir>/<name>.stderr; stdin is /dev/null.
  // `env` entries ("K=V") override the inherited environment.
  static std::unique_ptr<Child> spawn(const std::string& name, const std::vector<std::string>& argv,
                                      const std::string& dir, const std::vector<std::string>& env = {});
  ~Child();  // SIGKILL and reap when still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  bool running();                               // reaps it when it has exited
  bool signal(int sig);                         // false when it is gone
  std::optional<int> waitExit(Millis timeout);  // raw wait status, nullopt on timeout
  std::optional<int> waitStatus() const { return status_; }
  std::string stdoutText() const;
  std::string stderrText() const;
  const std::string& stderrPath() const { return errPath_; }

 private:
  Child() = default;
  std::string name_, outPath_, errPath_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Describes a wait status for messages: "exit 0", "signal 9", "running".
std::string describeStatus(std::optional<int> status);

struct RunResult {
  std::optional<int> status;  // nullopt: killed after the timeout
  std::string out, err;
  bool exitedWith(int code) const;
};
RunResult runToCompletion(const std::string& name, const std::vector<std::string>& argv,
                          const std::string& dir, Millis timeout);

// ---- HTTP/1.1 client -------------------------------------------------------------------------

struct Response {
  bool complete = false;     // a whole response (head and body) was read
  std::string error;         // why not, when !complete
  bool closed = false;       // the peer closed (EOF or reset) while or after reading
  std::vector<int> interim;  // 1xx statuses seen before this one (when skipped)
  std::string version, reason, rawHead;
  int status = 0;
  HeaderList headers;  // in order, names as sent
  std::string body;    // de-chunked payload (when stored)
  uint64_t bodyBytes = 0;
  bool chunked = false, closeDelimited = false;
  std::string rawTrailers;  // chunked trailer section as received, without the final empty line

  std::optional<std::string> header(std::string_view name) const;  // first; case-insensitive
  size_t headerCount(std::string_view name) const;
  std::string summary() const;  // one line for assertion messages
};

struct ReadOptions {
  std::string_view method = "GET";  // decides whether a body follows (HEAD, CONNECT)
  Millis timeout{5000};             // no progress for this long -> give up
  bool skipInterim = true;          // 1xx responses are recorded in `interim` and skipped
  bool storeBody = true;
  std::function<void(std::string_view)> onBody;
};

class Client {
 public:
  explicit Client(uint16_t port, Millis connectTimeout = Millis(3000), int rcvBuf = 0);
  Client(Client&& other) noexcept;
  Client& operator=(Client&&) = delete;
  Client(const Client&) = delete;
  ~Client();

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool send(std::string_view data, Millis timeout = Millis(5000));
  Response read(const ReadOptions& opts = {});
  Response roundTrip(std::string_view request, const ReadOptions& opts = {});
  // True when the peer closes (EOF or reset) within `timeout`; whatever arrives is discarded.
  bool waitClosed(Millis timeout);
  // True when no EOF or error is pending (data pending still counts as open).
  bool isOpen();
  // Bytes received until the peer closes or `timeout` passes without progress.
  std::string readUntilClose(Millis timeout);
  // Bytes already buffered or arriving within `timeout` (at least one recv when data comes).
  std::string readSome(Millis timeout);
  void close();

  // From now on every read and write goes through `ssl` (a TLS session already established on
  // fd(), see TlsClient); the Client owns it and frees it on close(). isOpen() still looks at the
  // socket, so a pending close_notify counts as open.
  void useTls(ssl_st* ssl);
  bool tls() const { return ssl_ != nullptr; }

 private:
  enum class Fill { Data, Eof, Timeout, Error };
  Fill fill(Millis timeout);
  bool readLine(std::string& line, Millis timeout, Response& r);
  bool readBytes(uint64_t n, Millis timeout, Response& r, const ReadOptions& opts);
  void deliver(std::string_view piece, Response& r, const ReadOptions& opts);

  int fd_ = -1;
  ssl_st* ssl_ = nullptr;
  std::string buf_;
};

// ---- TLS client ------------------------------------------------------------------------------

struct TlsOptions {
  bool verify = true;                  // abort the handshake unless chain and name verify
  std::optional<std::string> sni;      // default: the host, none for an IP literal; "" = none
  std::vector<std::string> alpn;       // offered, e.g. {"h2", "http/1.1"}; empty: no ALPN
  std::string minVersion, maxVersion;  // "1.0" ... "1.3"; empty: OpenSSL's defaults
  bool legacy = false;                 // security level 0: TLS 1.0/1.1, SHA-1, small keys
  std::string certFile, keyFile;       // a client certificate to present
  Millis timeout{5000};                // for the connect, the CONNECT answer and the handshake
  // The CONNECT head sent through a proxy, "{}" standing for host:port; empty: HTTP/1.1 with Host.
  // Python's http.client, for one, sends "CONNECT {} HTTP/1.0\r\n\r\n".
  std::string connectHead;
};

// A TLS connection as a browser makes it: to the origin directly, or through the proxy with
// CONNECT. The chain is checked against `caFile` alone (no system roots) and the name against
// the host (DNS name or IP literal); the result is recorded even when !opts.verify. After the
// handshake, send/read/roundTrip are the plain Client's, over TLS.
class TlsClient {
 public:
  static std::unique_ptr<TlsClient> direct(uint16_t port, const std::string& host, const std::string& caFile,
                                           const TlsOptions& opts = {});
  // `host` goes into the CONNECT line (host:port) and is the name the handshake verifies.
  static std::unique_ptr<TlsClient> viaProxy(uint16_t proxyPort, const std::string& host, uint16_t port,
                                             const std::string& caFile, const TlsOptions& opts = {});
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // The proxy's answer to CONNECT (status 0 when direct, or when it never answered).
  const Response& connectResponse() const { return connect_; }
  int proxyStatus() const { return connect_.status; }
  bool tunnelOk() const { return tunnelOk_; }  // TCP up and, via a proxy, CONNECT got 2xx
  bool handshakeOk() const { return handshakeOk_; }
  const std::string& error() const { return error_; }  // why the tunnel or the handshake failed
  long verifyResult() const { return verifyResult_; }  // X509_V_OK (0) or X509_V_ERR_*
  std::string verifyError() const;                     // its text ("ok" when verified)

  // What the server sent (valid after a handshake that got that far; empty/0 otherwise).
  x509_st* peerCert() const { return peer_; }
  int peerChainLength() const { return chainLength_; }  // certificates sent, leaf included
  std::vector<std::string> peerSans() const;            // "DNS:name", "IP:127.0.0.1"
  std::string peerSubject() const;                      // "/O=.../CN=..."
  std::string peerIssuer() const;
  long long peerNotAfter() const;              // Unix time
  std::string peerSignatureAlgorithm() const;  // e.g. "ecdsa-with-SHA256"
  std::string peerKeyType() const;             // "EC", "RSA", ...
  int peerKeyBits() const;
  // The negotiated session.
  const std::string& version() const { return version_; }  // "TLSv1.3", "TLSv1", ...
  const std::string& cipher() const { return cipher_; }
  const std::string& alpn() const { return alpn_; }  // "" when none

  Client& client() { return client_; }
  bool send(std::string_view data, Millis timeout = Millis(5000)) { return client_.send(data, timeout); }
  Response read(const ReadOptions& opts = {}) { return client_.read(opts); }
  Response roundTrip(std::string_view request, const ReadOptions& opts = {}) {
    return client_.roundTrip(request, opts);
  }

 private:
  TlsClient(uint16_t port, Millis timeout) : client_(port, timeout) {}
  void handshake(const std::string& host, const std::string& caFile, const TlsOptions& opts);

  Client client_;
  Response connect_;
  bool tunnelOk_ = false, handshakeOk_ = false;
  std::string error_, version_, cipher_, alpn_;
  long verifyResult_ = -1;
  x509_st* peer_ = nullptr;
  int chainLength_ = 0;
};

// "GET <url> HTTP/1.1" with Host taken from the URL (absolute-form, as a browser sends to a proxy).
std::string getRequest(std::string_view url, std::string_view extraHeaders = "",
                       std::string_view method = "GET");
// Offset just past the empty line ending a head (CRLF or bare LF), or 0.
size_t findHeadEnd(std::string_view data);
// Fields of a head (request or response), names as received, values trimmed.
HeaderList parseHeaderFields(std::string_view head);
std::optional<std::string> findHeader(const HeaderList& h, std::string_view name);
// Decodes a complete chunked body; nullopt when the framing is invalid or incomplete.
std::optional<std::string> decodeChunked(std::string_view wire, std::string* trailers = nullptr);

// ---- the processes under test ----------------------------------------------------------------

class Origin {
 public:
  Origin(Child* child, uint16_t port) : child_(child), port_(port) {}
  uint16_t port() const { return port_; }
  Child& child() { return *child_; }
  std::string url(std::string_view path) const;  // http(s)://127.0.0.1:PORT/path
  std::string authority() const;                 // 127.0.0.1:PORT
  // A TLS origin (TestEnv::startTlsOrigin): stats() and requests() then ask over TLS (any
  // version, no verification), presenting clientCert/clientKey when those are set.
  void setTls(std::string clientCert, std::string clientKey);
  bool tls() const { return tls_; }
  // One request on a new connection to the origin itself (plain or TLS as the origin speaks).
  Response ask(std::string_view path);
  struct Stats {
    long connections = -1, requests = -1;
    long tlsHandshakes = -1, tlsFailures = -1;  // a TLS origin's completed and failed handshakes
    long h2Connections = -1, h2Streams = -1;    // connections that chose h2, and their requests
    long h2MaxStreamWindow = -1;                // the largest send window the peer gave one stream
  };
  Stats stats();           // asked directly (not through the proxy); -1 on failure
  std::string requests();  // raw heads of every recorded request
  long requestCount();     // -1 on failure

 private:
  Child* child_;
  uint16_t port_;
  bool tls_ = false;
  std::string clientCert_, clientKey_;
};

struct TlsOriginOptions {
  std::string cert = "good";           // serves <pki>/<cert>.crt (+ chain as in the file) and .key
  std::string tlsMin, tlsMax;          // "1.0" ... "1.3"; empty: the origin's defaults (1.2 up)
  bool requireClientCert = false;      // the origin's own requests then present client.crt
  std::string alpn;                    // e.g. "h2,http/1.1"; empty: no ALPN
  std::vector<std::string> extraArgs;  // more test_origin arguments, e.g. {"--static-dir", d}
};

struct ProxyConfig {
  uint16_t port = 0;  // 0: picked free
  std::string workers = "2";
  std::vector<std::string> allowClients{"127.0.0.0/8"};
  std::vector<std::string> connectPorts;  // YAML scalars; empty: [443, <first origin port>]
  std::vector<std::string> httpPorts{"80", "\"1025-65535\""};
  std::string visibleHostname = "sekisho-test";
  HeaderList timeouts{{"request_header", "2s"}, {"first_byte", "2s"}};
  HeaderList resolve;            // host -> address
  std::string accessLog;         // "": <dir>/access.log
  // log.format: sekisho (Squid's ten fields, then reason=, ref= and mode=, which the tests read)
  std::string logFormat = "sekisho";
  std::string extra;             // raw YAML lines appended at the end
  std::vector<std::string> env;  // "K=V" for the proxy process
  uint16_t adminPort = 0;         // the admin listener (/metrics, /lookup) on 127.0.0.1; 0: off
  bool listenAll = false;         // listen on 0.0.0.0:PORT, so a client from another address can come
  std::vector<std::string> wrapper;  // argv before the binary, e.g. {"prlimit", "--nofile=200", "--"}
};

class Proxy {
 public:
  Proxy(Child* child, uint16_t port, std::string configPath, std::string accessLog)
      : child_(child), port_(port), configPath_(std::move(configPath)), accessLog_(std::move(accessLog)) {}
  uint16_t port() const { return port_; }
  pid_t pid() const { return child_->pid(); }
  Child& child() { return *child_; }
  const std::string& configPath() const { return configPath_; }
  const std::string& accessLogPath() const { return accessLog_; }
  std::string authority() const;  // 127.0.0.1:PORT
  long rssKiB() const { return it::rssKiB(child_->pid()); }

  std::vector<std::string> logLines() const;
  // Polls the access log (written by the proxy's log thread) for a line matching `pred`.
  std::optional<std::string> waitLogLine(const std::function<bool(const std::string&)>& pred,
                                         Millis timeout = Millis(3000)) const;
  std::optional<std::string> waitLogLineWith(std::string_view a, std::string_view b = "",
                                             Millis timeout = Millis(3000)) const;

 private:
  Child* child_;
  uint16_t port_;
  std::string configPath_, accessLog_;
};

class TestEnv {
 public:
  TestEnv();
  ~TestEnv();
  TestEnv(const TestEnv&) = delete;
  TestEnv& operator=(const TestEnv&) = delete;

  const std::string& dir() const { return dir_; }
  std::string path(std::string_view name) const { return dir_ + "/" + std::string(name); }
  const std::string& lastError() const { return lastError_; }

  Child* spawn(const std::string& name, const std::vector<std::string>& argv,
               const std::vector<std::string>& env = {});
  // Starts a test origin and waits until it answers; nullptr (and lastError()) on failure.
  // `extraArgs` go to test_origin (e.g. {"--static-dir", dir} for an AIA server).
  Origin* startOrigin(const std::vector<std::string>& extraArgs = {});
  // Writes the test PKI (tests/pki/test_pki.h) into <dir>/pki on the first call and returns that
  // path; later calls return it unchanged (their aiaUrl is ignored). "" (and lastError()) on
  // failure. The AIA URL is usually an origin's /static/inter.der, so start that origin first
  // with {"--static-dir", path("pki")}: it reads the files per request.
  std::string makePki(const std::string& aiaUrl = "");
  // Starts a TLS test origin serving a PKI certificate (makePki() first when needed) and waits
  // until a TLS handshake and GET /stats succeed; nullptr (and lastError()) on failure.
  Origin* startTlsOrigin(const TlsOriginOptions& opts = {});
  // The configuration of the usual test proxy, sending to the first origin.
  ProxyConfig proxyConfig() const;
  std::string renderConfig(const ProxyConfig& cfg, uint16_t port) const;
  // Writes <dir>/sekisho.yaml, starts `sekisho --config` and waits until GET /healthz answers
  // (200, or any HTTP status when !expectHealthy, e.g. for a client the proxy refuses).
  Proxy* startProxy(const ProxyConfig& cfg, bool expectHealthy = true);
  // Prints each child's stderr and the access log tail (called when a test failed).
  void dumpDiagnostics() const;

 private:
  Proxy* startProxyOnce(const ProxyConfig& cfg, uint16_t port, bool expectHealthy);
  Origin* launchOrigin(const std::vector<std::string>& args, bool tls, const std::string& clientCert,
                       const std::string& clientKey);

  std::string dir_, lastError_, pkiDir_;
  int proxyStarts_ = 0;
  std::vector<std::unique_ptr<Child>> children_;
  std::vector<std::unique_ptr<Origin>> origins_;
  std::vector<std::unique_ptr<Proxy>> proxies_;
};

// Fixture: a TestEnv per test, diagnostics printed when the test fails.
class ProxyTest : public ::testing::Test {
 protected:
  void TearDown() override;
  // Start an origin, then a proxy with `cfg` (default: proxyConfig()); ASSERT inside, so wrap
  // calls in ASSERT_NO_FATAL_FAILURE.
  void startOrigin();
  void startProxy(std::optional<ProxyConfig> cfg = std::nullopt, bool expectHealthy = true);
  void startBoth() {
    startOrigin();
    if (!HasFatalFailure()) startProxy();
  }
  Origin& origin() { return *origin_; }
  Proxy& proxy() { return *proxy_; }
  // One request on a new connection to the proxy.
  Response viaProxy(std::string_view request, const ReadOptions& opts = {});
  // Asserts a plain request through the proxy still works (after an error on another connection).
  void expectStillServing();

  TestEnv env_;
  Origin* origin_ = nullptr;
  Proxy* proxy_ = nullptr;
};

}  // namespace sekisho::it
