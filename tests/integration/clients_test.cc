// The clients people really use, through the real proxy: each client x {plain HTTP through the
// proxy, intercepted CONNECT, no_intercept tunnel}, against test origins on 127.0.0.1 that the
// proxy reaches through `resolve:` (the clients never resolve the target themselves: with a proxy
// they hand it the name). docs/CLIENTS.md documents how each is pointed at the proxy and made to
// trust the company CA; this test is the proof that those recipes work.
//
// Every row asserts three things:
//  - the body, byte for byte (/size/N is the shared pattern; pip's wheel and git's file are
//    compared with what the test wrote);
//  - who made the certificate: intercepted rows trust the company CA (<dir>/ca.crt, written by
//    the proxy) and nothing of the test PKI, so success proves the leaf was minted by the proxy;
//    tunnel rows trust the test PKI root and not the company CA, so success proves the origin's
//    own leaf came through. (curl, Python, pip, git, Java, HTTPie and LWP trust only that bundle;
//    wget, aria2 and Node.js add it to the system store, which holds neither.) Where the client
//    can print the peer certificate's issuer (curl -w %{certs}, Python ssl, Perl LWP, Java,
//    Node.js) it is checked as well;
//  - the access-log line of the row (every row has its own path or query): TCP_MISS/200 GET
//    http://... for plain rows; the CONNECT line and GET https://... for intercepted rows; for
//    tunnel rows TCP_TUNNEL/200 CONNECT (at least one per row), and the origin's own record of
//    the row's request.
// A client that is missing FAILS (scripts/install-deps.sh --test installs them all); it is
// never skipped. All rows of one kind run side by side against one proxy and one set of origins.
//
// The matrix: every client below in all three kinds of row, except undici (no plain row: its
// ProxyAgent tunnels http:// URLs with CONNECT too):
//   curl --http1.1, curl --http2 (h2 where ALPN allows it: to the proxy's minted leaf; the TLS
//   origin here speaks HTTP/1.1, as pip's and git's static files need), wget, Python urllib
//   (CONNECT as HTTP/1.0 without Host: the bug fixed in c9a5c0e), Python requests, Python httpx,
//   pip download (PEP 503 index + wheel), git clone (dumb HTTP protocol), Java 17 HttpClient and
//   HttpsURLConnection, Node.js http/https with a hand-made CONNECT, Node.js undici ProxyAgent,
//   HTTPie, aria2c, Perl LWP::UserAgent.
// good.pki.test resolves only in the proxy's `resolve:`, so a client that bypassed the proxy
// fails; in the tunnel set-up it is also the `tls.no_intercept` host.
// Chromium is covered by browser_test.cc (NSS database made with certutil, --proxy-server).
//
// Debian-packaged clients left out, and why:
//   - Firefox (firefox-esr): ~300 MB, and headless Firefox reads proxy and trust from a profile
//     (prefs.js, cert9.db), the same NSS mechanism browser_test.cc already drives in Chromium.
//   - lynx, links2, w3m: text browsers hardly used to fetch through company proxies; w3m's and
//     lynx's CA options differ per build (GnuTLS vs OpenSSL).
//   - Go's net/http (golang-go, ~330 MB of toolchain to build a test client): HTTPS_PROXY and
//     SSL_CERT_FILE as documented in docs/CLIENTS.md, untested here.
//   - apt: honours Acquire::http::Proxy / Acquire::https::Proxy, but running it needs root and a
//     repository; documented in docs/CLIENTS.md only.
//   - npm: Debian's npm conflicts with the NodeSource nodejs this machine has (and would replace
//     it); documented only.
//   - Maven / Gradle: Java's own HttpClient and HttpsURLConnection are what they use, tested.
//   - gnutls-cli, openssl s_client: not HTTP clients (openssl s_client -proxy is what the
//     harness's TlsClient already does).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "tests/integration/harness.h"

namespace sekisho::it {
namespace {

constexpr const char* kCompanyCaName = "Sekisho Enterprise Root CA";
constexpr const char* kPkiIssuerName = "Sekisho Test Intermediate";
constexpr Millis kClientTimeout{60000};

enum class Mode { Plain, Intercept, Tunnel };
const char* modeName(Mode m) { return m == Mode::Plain ? "plain" : m == Mode::Intercept ? "intercept" : "tunnel"; }

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// ---- the client programs the test writes into its directory -----------------------------------

// Python: urllib, requests and httpx, each told of the proxy the way users do (environment), and
// trusting what SSL_CERT_FILE / REQUESTS_CA_BUNDLE / verify= name. Prints the peer's issuer CN
// when the connection exposes it.
constexpr const char* kPythonClient = R"PY(
import os, sys
lib, url, out = sys.argv[1], sys.argv[2], sys.argv[3]

def issuer_of(sock):
    try:
        cert = sock.getpeercert()
    except Exception as e:
        return "unavailable (%s)" % e
    if not cert:
        return "none"
    return ",".join(v for rdn in cert.get("issuer", ()) for k, v in rdn if k == "commonName")

if lib == "urllib":
    import urllib.request
    resp = urllib.request.urlopen(url, timeout=30)
    if url.startswith("https:"):
        print("issuer:", issuer_of(resp.fp.raw._sock))
    body = resp.read()
elif lib == "requests":
    import requests
    resp = requests.get(url, timeout=30, stream=True)
    if url.startswith("https:"):
        sock = resp.raw._connection.sock if resp.raw._connection else None
        print("issuer:", issuer_of(sock) if sock else "unavailable")
    body = resp.raw.read()
    resp.raise_for_status()
elif lib == "httpx":
    import httpx
    with httpx.Client(proxies=os.environ["ROW_PROXY"], verify=os.environ["ROW_BUNDLE"], timeout=30) as c:
        resp = c.get(url)
        resp.raise_for_status()
        body = resp.content
else:
    sys.exit("unknown lib " + lib)
with open(out, "wb") as f:
    f.write(body)
print("status:", resp.status if hasattr(resp, "status") else resp.status_code)
)PY";

// Node.js: plain http to the proxy with an absolute URL; https through a tunnel made with
// http.request({method: 'CONNECT'}) and tls.connect({socket}); undici's ProxyAgent. Trust comes
// from NODE_EXTRA_CA_CERTS.
constexpr const char* kNodeClient = R"JS(
const http = require('http'), https = require('https'), tls = require('tls'), fs = require('fs');
const [kind, proxyHost, proxyPort, url, out] = process.argv.slice(2);
const u = new URL(url);
function done(status, body, issuer) {
  fs.writeFileSync(out, body);
  if (issuer !== undefined) console.log('issuer: ' + issuer);
  console.log('status: ' + status);
  process.exit(status === 200 ? 0 : 1);  // kept-alive sockets would hold the process open
}
function fail(e) { console.error(String(e && e.stack || e)); process.exit(1); }
function collect(res, issuer) {
  const parts = [];
  res.on('data', (d) => parts.push(d));
  res.on('end', () => done(res.statusCode, Buffer.concat(parts), issuer));
  res.on('error', fail);
}
if (kind === 'plain') {
  http.get({host: proxyHost, port: +proxyPort, path: url, headers: {Host: u.host}}, (res) => collect(res)).on('error', fail);
} else if (kind === 'connect') {
  const req = http.request({host: proxyHost, port: +proxyPort, method: 'CONNECT', path: u.host, headers: {Host: u.host}});
  req.on('connect', (res, socket) => {
    if (res.statusCode !== 200) fail('CONNECT answered ' + res.statusCode);
    const tlsSock = tls.connect({socket, servername: u.hostname}, () => {
      const issuer = tlsSock.getPeerCertificate().issuer.CN;
      const agent = new https.Agent();
      agent.createConnection = () => tlsSock;  // the request goes over the tunnel's TLS session
      https.get({host: u.hostname, port: u.port, path: u.pathname + u.search, agent},
                (r) => collect(r, issuer)).on('error', fail);
    });
    tlsSock.on('error', fail);
  });
  req.on('error', fail);
  req.end();
} else if (kind === 'undici') {
  const { ProxyAgent, request } = require('/usr/share/nodejs/undici');
  const dispatcher = new ProxyAgent('http://' + proxyHost + ':' + proxyPort);
  request(url, {dispatcher}).then(async (r) => {
    const body = Buffer.from(await r.body.arrayBuffer());
    done(r.statusCode, body);
    dispatcher.close();
  }, fail);
} else fail('unknown kind ' + kind);
)JS";

// Java 17: java.net.http.HttpClient with a ProxySelector, and (Https)URLConnection with the
// standard http(s).proxyHost/Port properties (set on the command line). Trust: -Djavax.net.ssl.
// trustStore. Prints the issuer of the peer's leaf.
constexpr const char* kJavaClient = R"JAVA(
import java.io.*;
import java.net.*;
import java.net.http.*;
import java.nio.file.*;
import java.security.cert.*;
import javax.net.ssl.*;

public class Clients {
  public static void main(String[] a) throws Exception {
    String kind = a[0], url = a[1], out = a[2];
    byte[] body;
    int status;
    if (kind.equals("httpclient")) {
      HttpClient c = HttpClient.newBuilder()
          .proxy(ProxySelector.of(new InetSocketAddress(a[3], Integer.parseInt(a[4]))))
          .connectTimeout(java.time.Duration.ofSeconds(20)).build();
      HttpResponse<byte[]> r = c.send(HttpRequest.newBuilder(URI.create(url)).build(),
                                      HttpResponse.BodyHandlers.ofByteArray());
      status = r.statusCode();
      body = r.body();
      System.out.println("version: " + r.version());
      if (r.sslSession().isPresent())
        System.out.println("issuer: " + ((X509Certificate) r.sslSession().get().getPeerCertificates()[0])
                                            .getIssuerX500Principal().getName());
    } else {
      HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
      c.setConnectTimeout(20000);
      c.setReadTimeout(20000);
      status = c.getResponseCode();
      System.out.println("via proxy: " + c.usingProxy());
      if (c instanceof HttpsURLConnection)
        System.out.println("issuer: " + ((X509Certificate) ((HttpsURLConnection) c).getServerCertificates()[0])
                                            .getIssuerX500Principal().getName());
      try (InputStream in = c.getInputStream()) { body = in.readAllBytes(); }
    }
    Files.write(Paths.get(out), body);
    System.out.println("status: " + status);
    if (status != 200) System.exit(1);
  }
}
)JAVA";

// Perl LWP::UserAgent with LWP::Protocol::https: proxy() for both schemes, SSL_ca_file for trust;
// LWP reports the peer's issuer in the Client-SSL-Cert-Issuer pseudo-header.
constexpr const char* kPerlClient = R"PL(
use strict; use warnings; use LWP::UserAgent; use Net::SSLeay;
my ($url, $proxy, $bundle, $out) = @ARGV;
my $issuer = 'none';
# IO::Socket::SSL calls this for every certificate of the chain; depth 0 is the peer's leaf.
my $check = sub {
  my ($ok, $store, $name, $err, $cert, $depth) = @_;
  $issuer = Net::SSLeay::X509_NAME_oneline(Net::SSLeay::X509_get_issuer_name($cert)) if $depth == 0;
  return $ok;
};
my $ua = LWP::UserAgent->new(timeout => 30, ssl_opts => {SSL_ca_file => $bundle, verify_hostname => 1,
                                                         SSL_verify_callback => $check});
$ua->proxy(['http', 'https'], $proxy);
my $r = $ua->get($url, ':content_file' => $out);
print "issuer: $issuer\n";
print "status: ", $r->code, "\n";
print STDERR $r->status_line, "\n", ($r->header('X-Died') // ''), "\n" unless $r->is_success;
exit($r->is_success ? 0 : 1);
)PL";

// Builds the tiny package index (PEP 503) and the git repository the origins serve.
constexpr const char* kMakeFixtures = R"PY(
import os, sys, zipfile, hashlib, base64, subprocess
static = sys.argv[1]
# A minimal valid wheel: one module, METADATA, WHEEL, RECORD.
proj = os.path.join(static, "pypi", "simple", "sekisho-demo")
os.makedirs(proj)
whl = os.path.join(proj, "sekisho_demo-1.0-py3-none-any.whl")
files = {
    "sekisho_demo/__init__.py": b"VALUE = 'through the checkpoint'\n",
    "sekisho_demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: sekisho-demo\nVersion: 1.0\n",
    "sekisho_demo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: sekisho-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = ""
for name, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record += "%s,sha256=%s,%d\n" % (name, digest, len(data))
record += "sekisho_demo-1.0.dist-info/RECORD,,\n"
with zipfile.ZipFile(whl, "w") as z:
    for name, data in files.items():
        z.writestr(name, data)
    z.writestr("sekisho_demo-1.0.dist-info/RECORD", record)
sha = hashlib.sha256(open(whl, "rb").read()).hexdigest()
with open(os.path.join(proj, "index.html"), "w") as f:
    f.write('<!DOCTYPE html><html><body><a href="sekisho_demo-1.0-py3-none-any.whl#sha256=%s">'
            'sekisho_demo-1.0-py3-none-any.whl</a></body></html>\n' % sha)
with open(os.path.join(static, "pypi", "simple", "index.html"), "w") as f:
    f.write('<!DOCTYPE html><html><body><a href="sekisho-demo/">sekisho-demo</a></body></html>\n')
# A bare repository served with git's dumb HTTP protocol.
work = os.path.join(static, "..", "git-work")
env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@test",
           GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@test")
def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
git("init", "-q", "-b", "main", work)
with open(os.path.join(work, "README"), "w") as f:
    f.write("Sekisho checks this repository at the checkpoint.\n")
git("add", "README", cwd=work)
git("commit", "-q", "-m", "first", cwd=work)
git("clone", "-q", "--bare", work, os.path.join(static, "repo.git"))
git("update-server-info", cwd=os.path.join(static, "repo.git"))
)PY";

constexpr const char* kGitReadme = "Sekisho checks this repository at the checkpoint.\n";

// ---- rows --------------------------------------------------------------------------------------

struct Row {
  std::string name;               // "<mode>-<client>", also the child's name and its own paths
  std::vector<std::string> argv;  // run under `env -i` with `env` below
  std::vector<std::string> env;
  std::vector<std::string> needs;  // files that must exist (the client's binary, modules)
  std::string bodyFile;            // where the client wrote the body
  std::string expectBody;
  std::vector<std::string> stdoutHas;  // e.g. "issuer: Sekisho Enterprise Root CA"
  std::string stdoutLacks;   // e.g. the company CA's name on a tunnel row
  std::vector<std::pair<std::string, std::string>> logLines;  // each pair must appear on one line
  std::string originSaw;     // a request line the origin must have recorded (tunnel rows)
};

class ProxyClients : public ProxyTest {
 protected:
  // One set of origins and one proxy per kind of row. good.pki.test resolves nowhere but in the
  // proxy's `resolve:`, so a client that went around the proxy fails; in the tunnel set-up it is
  // the no_intercept host.
  void prepare(Mode mode) {
    pki_ = env_.makePki();
    ASSERT_FALSE(pki_.empty()) << env_.lastError();
    static_ = env_.path("static");
    ASSERT_EQ(::mkdir(static_.c_str(), 0755), 0);
    writeFileAtomic(env_.path("client.py"), kPythonClient);
    writeFileAtomic(env_.path("client.js"), kNodeClient);
    writeFileAtomic(env_.path("client.pl"), kPerlClient);
    writeFileAtomic(env_.path("make_fixtures.py"), kMakeFixtures);
    ASSERT_TRUE(need("/usr/bin/python3") && need("/usr/bin/git"));
    RunResult fx = runToCompletion("make-fixtures",
                                   {"/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=" + env_.dir(),
                                    "/usr/bin/python3", env_.path("make_fixtures.py"), static_},
                                   env_.dir(), Millis(30000));
    ASSERT_TRUE(fx.exitedWith(0)) << fx.out << fx.err;
    wheel_ = readFile(static_ + "/pypi/simple/sekisho-demo/sekisho_demo-1.0-py3-none-any.whl");
    ASSERT_FALSE(wheel_.empty());

    plain_ = env_.startOrigin({"--static-dir", static_});
    ASSERT_NE(plain_, nullptr) << env_.lastError();
    TlsOriginOptions o;  // HTTP/1.1 only: test_origin serves static files over HTTP/1.1 only
    o.extraArgs = {"--static-dir", static_};
    tls_ = env_.startTlsOrigin(o);
    ASSERT_NE(tls_, nullptr) << env_.lastError();

    ProxyConfig cfg = env_.proxyConfig();
    cfg.connectPorts = {"\"1025-65535\""};
    cfg.resolve = {{"good.pki.test", "127.0.0.1"}};
    cfg.timeouts.push_back({"connect", "5s"});
    for (auto& t : cfg.timeouts)
      if (t.first == "first_byte" || t.first == "request_header") t.second = "10s";
    cfg.extra = "tls: {upstream_ca_file: \"" + pki_ + "/root.crt\"" +
                (mode == Mode::Tunnel ? ", no_intercept: [good.pki.test]" : "") + "}\n";
    ASSERT_NO_FATAL_FAILURE(startProxy(cfg));
    ca_ = env_.path("ca.crt");
    ASSERT_TRUE(exists(ca_)) << "the proxy did not write " << ca_;
    root_ = pki_ + "/root.crt";
  }

  // A client binary or module that is missing is a failure, never a skip.
  bool need(const std::string& path) {
    if (exists(path)) return true;
    ADD_FAILURE() << path << " is missing: install the client matrix's packages with "
                  << "scripts/install-deps.sh --test";
    return false;
  }

  // Java needs its trust in a keystore and the program compiled; done once per test, on demand.
  bool prepareJava() {
    if (javaReady_) return true;
    if (!need("/usr/bin/java") || !need("/usr/bin/javac") || !need("/usr/bin/keytool")) return false;
    ::mkdir(env_.path("java").c_str(), 0755);
    writeFileAtomic(env_.path("java/Clients.java"), kJavaClient);
    auto javac = Child::spawn("javac", {"/usr/bin/javac", "-d", env_.path("java"), env_.path("java/Clients.java")},
                              env_.dir());
    auto ks1 = Child::spawn("keytool-company",
                            {"/usr/bin/keytool", "-importcert", "-noprompt", "-alias", "sekisho", "-file", ca_,
                             "-keystore", env_.path("company.p12"), "-storetype", "PKCS12", "-storepass", "changeit"},
                            env_.dir());
    auto ks2 = Child::spawn("keytool-pki",
                            {"/usr/bin/keytool", "-importcert", "-noprompt", "-alias", "pki", "-file", root_,
                             "-keystore", env_.path("pki.p12"), "-storetype", "PKCS12", "-storepass", "changeit"},
                            env_.dir());
    bool ok = true;
    for (auto* c : {javac.get(), ks1.get(), ks2.get()}) {
      if (!c) return false;
      auto st = c->waitExit(kClientTimeout);
      if (!st || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0) {
        ADD_FAILURE() << c->name() << " failed (" << describeStatus(st) << "): " << c->stdoutText()
                      << c->stderrText();
        ok = false;
      }
    }
    javaReady_ = ok;
    return ok;
  }

  // The rows of one kind: every client, its own path, trust and expectations.
  std::vector<Row> rows(Mode mode) {
    const bool tlsMode = mode != Mode::Plain;
    const std::string host = "good.pki.test";
    const uint16_t port = tlsMode ? tls_->port() : plain_->port();
    const std::string base = (tlsMode ? "https://" : "http://") + host + ":" + std::to_string(port);
    const std::string bundle = mode == Mode::Intercept ? ca_ : root_;  // never both
    const std::string proxyUrl = "http://" + proxy().authority();
    const std::string authority = host + ":" + std::to_string(port);
    std::vector<Row> out;
    size_t index = 0;

    // A /size/N row: N differs per row, the query names it.
    auto sizeRow = [&](const std::string& client) {
      Row r;
      r.name = std::string(modeName(mode)) + "-" + client;
      size_t n = 20000 + 37 * index++;
      r.expectBody = testorigin::patternString(n);
      r.bodyFile = env_.path(r.name + ".body");
      std::string path = "/size/" + std::to_string(n) + "?row=" + r.name;
      expectRequest(r, mode, base, authority, path);
      return std::make_pair(r, base + path);
    };

    // curl, HTTP/1.1 and HTTP/2. -w %{certs} prints the chain it received (curl 7.88).
    for (bool h2 : {false, true}) {
      auto [r, url] = sizeRow(h2 ? "curl-h2" : "curl-h1");
      r.needs = {"/usr/bin/curl"};
      r.argv = {"/usr/bin/curl", "-sS", "--fail", "--max-time", "30", "-x", proxyUrl, "-o", r.bodyFile};
      if (tlsMode) {
        r.argv.insert(r.argv.end(), {"--cacert", bundle, "-w", "%{http_version} %{certs}"});
      } else {
        r.argv.insert(r.argv.end(), {"-w", "%{http_version} "});
      }
      r.argv.push_back(h2 ? "--http2" : "--http1.1");
      r.argv.push_back(url);
      issuerOf(r, mode, "CN = ");
      // h2 needs ALPN: the proxy offers it when intercepting; over a tunnel it is the origin's
      // choice (HTTP/1.1 only here, as pip and git need its static files); plain --http2 would
      // be h2c, which goes to an origin, not to a proxy, so it stays HTTP/1.1.
      r.stdoutHas.insert(r.stdoutHas.begin(), h2 && mode == Mode::Intercept ? "2 " : "1.1 ");
      out.push_back(r);
    }
    // wget: proxy through -e (as in .wgetrc), trust through --ca-certificate.
    {
      auto [r, url] = sizeRow("wget");
      r.needs = {"/usr/bin/wget"};
      r.argv = {"/usr/bin/wget", "-q", "--tries=1", "--timeout=30", "-e", "use_proxy=on",
                "-e", "http_proxy=" + proxyUrl, "-e", "https_proxy=" + proxyUrl, "-O", r.bodyFile};
      if (tlsMode) r.argv.push_back("--ca-certificate=" + bundle);
      r.argv.push_back(url);
      out.push_back(r);
    }
    // Python urllib and requests from Debian's python3 (not a pyenv one on PATH): proxy from the
    // environment, trust from SSL_CERT_FILE / REQUESTS_CA_BUNDLE; httpx with explicit arguments.
    for (const char* lib : {"urllib", "requests", "httpx"}) {
      auto [r, url] = sizeRow(std::string("python-") + lib);
      r.needs = {"/usr/bin/python3"};
      if (std::string(lib) != "urllib") r.needs.push_back(std::string("/usr/lib/python3/dist-packages/") + lib);
      r.env = {"http_proxy=" + proxyUrl, "https_proxy=" + proxyUrl, "ROW_PROXY=" + proxyUrl,
               "ROW_BUNDLE=" + bundle};
      if (tlsMode) r.env.insert(r.env.end(), {"SSL_CERT_FILE=" + bundle, "REQUESTS_CA_BUNDLE=" + bundle});
      r.argv = {"/usr/bin/python3", env_.path("client.py"), lib, url, r.bodyFile};
      if (std::string(lib) != "httpx") issuerOf(r, mode, "issuer: ");
      if (mode == Mode::Tunnel) r.stdoutLacks = kCompanyCaName;
      out.push_back(r);
    }
    // pip download from a PEP 503 index; the wheel is compared with the one the test wrote.
    {
      Row r;
      r.name = std::string(modeName(mode)) + "-pip";
      r.needs = {"/usr/bin/python3", "/usr/lib/python3/dist-packages/pip"};
      std::string prefix = "/static/" + r.name;  // a link to the shared index: the row's own URLs
      ::symlink((static_ + "/pypi").c_str(), (static_ + "/" + r.name).c_str());
      std::string dest = env_.path(r.name + "-dl");
      r.argv = {"/usr/bin/python3", "-m", "pip", "download", "--isolated", "--no-cache-dir",
                "--disable-pip-version-check", "--no-input", "--timeout", "30", "--retries", "0",
                "--no-deps", "--index-url", base + prefix + "/simple/", "--proxy", proxyUrl, "-d", dest};
      if (tlsMode) {
        r.argv.insert(r.argv.end(), {"--cert", bundle});
      } else {
        r.argv.insert(r.argv.end(), {"--trusted-host", host});
      }
      r.argv.push_back("sekisho-demo==1.0");
      r.bodyFile = dest + "/sekisho_demo-1.0-py3-none-any.whl";
      r.expectBody = wheel_;
      expectRequest(r, mode, base, authority, prefix + "/simple/sekisho-demo/");
      expectRequest(r, mode, base, authority, prefix + "/simple/sekisho-demo/sekisho_demo-1.0-py3-none-any.whl");
      out.push_back(r);
    }
    // git clone over the dumb HTTP protocol.
    {
      Row r;
      r.name = std::string(modeName(mode)) + "-git";
      r.needs = {"/usr/bin/git"};
      std::string repo = "/static/" + r.name + ".git";
      ::symlink((static_ + "/repo.git").c_str(), (static_ + "/" + r.name + ".git").c_str());
      std::string dest = env_.path(r.name + "-clone");
      r.env = {"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"};
      r.argv = {"/usr/bin/git", "-c", "http.proxy=" + proxyUrl};
      if (tlsMode) r.argv.insert(r.argv.end(), {"-c", "http.sslCAInfo=" + bundle});
      r.argv.insert(r.argv.end(), {"clone", "-q", base + repo, dest});
      r.bodyFile = dest + "/README";
      r.expectBody = kGitReadme;
      expectRequest(r, mode, base, authority, repo + "/info/refs?service=git-upload-pack");
      expectRequest(r, mode, base, authority, repo + "/HEAD");
      out.push_back(r);
    }
    // Java 17: HttpClient with a ProxySelector; URLConnection with the standard properties. (Java
    // never proxies localhost/127.* unless http.nonProxyHosts is set EMPTY: a non-empty value still
    // gets the loopback defaults added. good.pki.test is not affected.)
    if (prepareJava()) {
      for (const char* kind : {"httpclient", "urlconnection"}) {
        auto [r, url] = sizeRow(std::string("java-") + kind);
        std::string store = mode == Mode::Intercept ? env_.path("company.p12") : env_.path("pki.p12");
        const std::string pp = std::to_string(proxy().port());
        r.argv = {"/usr/bin/java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Djavax.net.ssl.trustStore=" + store,
                  "-Djavax.net.ssl.trustStorePassword=changeit", "-Djavax.net.ssl.trustStoreType=PKCS12",
                  "-Dhttp.proxyHost=127.0.0.1", "-Dhttp.proxyPort=" + pp, "-Dhttps.proxyHost=127.0.0.1",
                  "-Dhttps.proxyPort=" + pp,
                  "-cp", env_.path("java"), "Clients", kind, url, r.bodyFile, "127.0.0.1", pp};
        issuerOf(r, mode, "CN=");
        if (std::string(kind) == "urlconnection") r.stdoutHas.push_back("via proxy: true");
        // HttpClient prefers h2: it gets it where the proxy mints the leaf and offers ALPN h2.
        if (std::string(kind) == "httpclient")
          r.stdoutHas.push_back(mode == Mode::Intercept ? "version: HTTP_2" : "version: HTTP_1_1");
        out.push_back(r);
      }
    }
    // Node.js: http/https with a hand-made CONNECT; undici's ProxyAgent (no plain row: it tunnels
    // http:// URLs too).
    for (const char* kind : {"connect", "undici"}) {
      if (mode == Mode::Plain && std::string(kind) == "undici") continue;
      auto [r, url] = sizeRow(std::string("node-") + (mode == Mode::Plain ? "http" : kind));
      r.needs = {"/usr/bin/node"};
      if (tlsMode) r.env = {"NODE_EXTRA_CA_CERTS=" + bundle};
      if (std::string(kind) == "undici") {
        r.needs.push_back("/usr/share/nodejs/undici");
        // Debian's node searches /usr/share/nodejs by itself; a node from elsewhere (NodeSource)
        // needs NODE_PATH to find undici's own dependencies (busboy).
        r.env.push_back("NODE_PATH=/usr/share/nodejs");
      }
      r.argv = {"/usr/bin/node", env_.path("client.js"), mode == Mode::Plain ? "plain" : kind, "127.0.0.1",
                std::to_string(proxy().port()), url, r.bodyFile};
      if (std::string(kind) == "connect") issuerOf(r, mode, "issuer: ");
      if (mode == Mode::Tunnel) r.stdoutLacks = kCompanyCaName;
      out.push_back(r);
    }
    // HTTPie (uses requests): --proxy per scheme, --verify for trust.
    {
      auto [r, url] = sizeRow("httpie");
      r.needs = {"/usr/bin/http"};
      r.argv = {"/usr/bin/http", "--ignore-stdin", "--check-status", "--timeout=30", "--proxy=http:" + proxyUrl,
                "--proxy=https:" + proxyUrl, "--download", "--output", r.bodyFile};
      if (tlsMode) r.argv.push_back("--verify=" + bundle);
      r.argv.push_back(url);
      out.push_back(r);
    }
    // aria2c: --all-proxy, --ca-certificate.
    {
      auto [r, url] = sizeRow("aria2");
      r.needs = {"/usr/bin/aria2c"};
      r.argv = {"/usr/bin/aria2c", "-q", "--max-tries=1", "--timeout=30", "--allow-overwrite=true",
                "--auto-file-renaming=false", "--all-proxy=" + proxyUrl, "-d", env_.dir(), "-o",
                r.name + ".body"};
      if (tlsMode) r.argv.insert(r.argv.end(), {"--check-certificate=true", "--ca-certificate=" + bundle});
      r.argv.push_back(url);
      out.push_back(r);
    }
    // Perl LWP::UserAgent.
    {
      auto [r, url] = sizeRow("perl-lwp");
      r.needs = {"/usr/bin/perl", "/usr/share/perl5/LWP/UserAgent.pm", "/usr/share/perl5/LWP/Protocol/https.pm"};
      r.argv = {"/usr/bin/perl", env_.path("client.pl"), url, proxyUrl, bundle, r.bodyFile};
      issuerOf(r, mode, "CN=");
      if (mode == Mode::Plain) r.stdoutHas = {"issuer: none"};
      if (mode == Mode::Tunnel) r.stdoutLacks = kCompanyCaName;
      out.push_back(r);
    }
    return out;
  }

  // The issuer line a client prints: the company CA when intercepted, the PKI's otherwise.
  static void issuerOf(Row& r, Mode mode, const std::string& prefix) {
    if (mode == Mode::Intercept) r.stdoutHas.push_back(prefix + kCompanyCaName);
    if (mode == Mode::Tunnel) r.stdoutHas.push_back(prefix + kPkiIssuerName);
  }

  // What the access log (and, for tunnels, the origin) must show for a request of `r` to `path`.
  void expectRequest(Row& r, Mode mode, const std::string& base, const std::string& authority,
                     const std::string& path) {
    switch (mode) {
      case Mode::Plain:
        r.logLines.push_back({"TCP_MISS/200", "GET " + base + path + " "});
        break;
      case Mode::Intercept:
        r.logLines.push_back({"/200", "CONNECT " + authority});
        r.logLines.push_back({"TCP_MISS/200", "GET " + base + path + " "});
        break;
      case Mode::Tunnel:
        r.logLines.push_back({"TCP_TUNNEL/200", "CONNECT " + authority});
        r.originSaw = "GET " + path + " ";  // the last one wins; every row has one
        break;
    }
  }

  // Runs the rows side by side, then checks each.
  void runRows(Mode mode) {
    ASSERT_NO_FATAL_FAILURE(prepare(mode));
    std::vector<Row> all = rows(mode);
    ASSERT_FALSE(all.empty());
    struct Running {
      Row row;
      std::unique_ptr<Child> child;
    };
    std::vector<Running> running;
    for (auto& r : all) {
      if (mode == Mode::Tunnel) r.stdoutLacks = kCompanyCaName;
      bool ok = true;
      for (const auto& n : r.needs) ok = need(n) && ok;
      if (!ok) {
        ADD_FAILURE() << r.name << ": client missing";
        continue;
      }
      std::vector<std::string> argv{"/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=" + env_.dir(),
                                    "LANG=C.UTF-8", "TMPDIR=" + env_.dir()};
      argv.insert(argv.end(), r.env.begin(), r.env.end());
      argv.insert(argv.end(), r.argv.begin(), r.argv.end());
      auto child = Child::spawn(r.name, argv, env_.dir());
      if (!child) {
        ADD_FAILURE() << r.name << ": could not start " << r.argv[0];
        continue;
      }
      running.push_back({r, std::move(child)});
    }
    std::string originRecords;
    auto failures = [] {
      return ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    };
    for (auto& [r, child] : running) {
      SCOPED_TRACE(r.name);
      const int before = failures();
      auto st = child->waitExit(kClientTimeout);
      std::string out = child->stdoutText(), err = child->stderrText();
      std::string cmd;
      for (const auto& a : r.argv) cmd += a + " ";
      bool exited0 = st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0;
      EXPECT_TRUE(exited0) << r.name << " " << describeStatus(st) << "\n  command: " << cmd
                           << "\n  stdout: " << out << "\n  stderr: " << err.substr(0, 3000);
      if (!exited0) {
        std::cout << "[ clients ] FAIL " << r.name << "\n";
        continue;
      }
      std::string body = exists(r.bodyFile) ? readFile(r.bodyFile) : std::string("<no body file>");
      EXPECT_TRUE(body == r.expectBody) << r.name << ": body of " << body.size() << " bytes, expected "
                                        << r.expectBody.size() << " (" << r.bodyFile << ")";
      for (const auto& want : r.stdoutHas) {
        EXPECT_NE(out.find(want), std::string::npos) << r.name << ": stdout lacks '" << want << "':\n" << out;
      }
      if (!r.stdoutLacks.empty()) {
        EXPECT_EQ(out.find(r.stdoutLacks), std::string::npos) << r.name << ": stdout has '" << r.stdoutLacks
                                                              << "':\n" << out;
      }
      for (const auto& [a, b] : r.logLines) {
        EXPECT_TRUE(proxy().waitLogLineWith(a, b)) << r.name << ": no access-log line with '" << a << "' and '"
                                                   << b << "'";
      }
      if (!r.originSaw.empty()) {
        if (originRecords.find(r.originSaw) == std::string::npos) originRecords = tls_->requests();
        EXPECT_NE(originRecords.find(r.originSaw), std::string::npos)
            << r.name << ": the origin did not record '" << r.originSaw << "'";
      }
      std::cout << "[ clients ] " << (failures() == before ? "pass " : "FAIL ") << r.name << "\n";
    }
    if (mode == Mode::Tunnel) {
      // The tunnel lines name no path: at least one CONNECT per row, then.
      size_t tunnels = 0;
      const std::string connect = "CONNECT good.pki.test:" + std::to_string(tls_->port());
      for (const auto& l : proxy().logLines())
        if (l.find("TCP_TUNNEL/200") != std::string::npos && l.find(connect) != std::string::npos) ++tunnels;
      EXPECT_GE(tunnels, running.size()) << "fewer tunnels than rows";
    }
    std::cout << "[ clients ] " << modeName(mode) << ": " << running.size() << " rows run\n";
  }

  std::string pki_, static_, ca_, root_, wheel_;
  Origin* plain_ = nullptr;
  Origin* tls_ = nullptr;
  bool javaReady_ = false;
};

TEST_F(ProxyClients, PlainHttpThroughTheProxy) { runRows(Mode::Plain); }
TEST_F(ProxyClients, InterceptedConnect) { runRows(Mode::Intercept); }
TEST_F(ProxyClients, NoInterceptTunnel) { runRows(Mode::Tunnel); }

}  // namespace
}  // namespace sekisho::it
