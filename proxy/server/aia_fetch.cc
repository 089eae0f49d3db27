#include "proxy/server/aia_fetch.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include <memory>

#include "proxy/base/log.h"
#include "proxy/server/worker.h"
#include "tls-mitm/origin_tls.h"

namespace sekisho::server {

namespace {

constexpr size_t kMaxAiaBytes = 64 * 1024;
constexpr int kAiaTimeoutSeconds = 5;

struct Fetch {
  Worker* w;
  std::string url, host, path;
  uint16_t port = 80;
  bool clientIsLoopback = false;
  std::function<void(const std::string&)> done;

  void finish(X509Ptr cert, const std::string& error) {
    if (!w->facts().originTls) return done("interception is off");
    if (!error.empty()) SLOG_INFO("aia: %s: %s", url.c_str(), error.c_str());
    w->facts().originTls->aia().put(url, std::move(cert));
    done(error);
  }
};

// DER certificate, PEM certificate, or a DER PKCS#7 bundle (".p7c"): the first certificate.
X509Ptr parseIssuer(const unsigned char* p, size_t n) {
  const unsigned char* q = p;
  if (X509* x = d2i_X509(nullptr, &q, long(n))) return X509Ptr(x);
  if (BIO* bio = BIO_new_mem_buf(p, int(n))) {
    X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (x) return X509Ptr(x);
  }
  q = p;
  if (PKCS7* p7 = d2i_PKCS7(nullptr, &q, long(n))) {
    X509Ptr out;
    if (PKCS7_type_is_signed(p7) && p7->d.sign && p7->d.sign->cert && sk_X509_num(p7->d.sign->cert) > 0) {
      X509* x = sk_X509_value(p7->d.sign->cert, 0);
      X509_up_ref(x);
      out.reset(x);
    }
    PKCS7_free(p7);
    return out;
  }
  return nullptr;
}

void onResponse(evhttp_request* req, void* arg) {
  std::unique_ptr<Fetch> f(static_cast<Fetch*>(arg));
  if (!req) return f->finish(nullptr, "no answer (connection failed or timed out)");
  int code = evhttp_request_get_response_code(req);
  if (code != 200) return f->finish(nullptr, "HTTP status " + std::to_string(code));
  evbuffer* body = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(body);
  if (n == 0 || n > kMaxAiaBytes) return f->finish(nullptr, "bad body size " + std::to_string(n));
  auto* p = evbuffer_pullup(body, ssize_t(n));
  X509Ptr cert = parseIssuer(p, n);
  ERR_clear_error();
  if (!cert) return f->finish(nullptr, "the body is not a certificate");
  f->finish(std::move(cert), "");
}

bool splitUrl(const std::string& url, std::string& host, uint16_t& port, std::string& path) {
  if (url.rfind("http://", 0) != 0) return false;
  std::string rest = url.substr(7);
  size_t slash = rest.find('/');
  std::string auth = rest.substr(0, slash);
  path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (auth.empty() || auth.find('@') != std::string::npos) return false;
  size_t colon = auth.rfind(':');
  if (colon != std::string::npos && auth.find(']') == std::string::npos) {
    unsigned long p = strtoul(auth.c_str() + colon + 1, nullptr, 10);
    if (p == 0 || p > 65535) return false;
    port = uint16_t(p);
    auth.resize(colon);
  }
  if (auth.size() > 2 && auth.front() == '[' && auth.back() == ']') auth = auth.substr(1, auth.size() - 2);
  host = auth;
  return !host.empty();
}

}  // namespace

void fetchAiaIssuer(Worker& w, const std::string& url, bool clientIsLoopback,
                    std::function<void(const std::string& error)> done) {
  auto f = std::make_unique<Fetch>();
  f->w = &w;
  f->url = url;
  f->clientIsLoopback = clientIsLoopback;
  f->done = std::move(done);
  if (!splitUrl(url, f->host, f->port, f->path)) return f->finish(nullptr, "not a plain http:// URL");
  Fetch* raw = f.release();
  w.resolver().resolve(raw->host, [raw](Result<std::vector<net::SocketAddr>> answer) {
    std::unique_ptr<Fetch> f(raw);
    if (!answer || answer->empty())
      return f->finish(nullptr, "cannot resolve " + f->host + (answer ? "" : ": " + answer.error().detail));
    net::SocketAddr a = answer->front();
    a.setPort(f->port);
    if (f->w->isSelf(a) || f->w->isAdmin(a)) return f->finish(nullptr, "the URL points at this proxy");
    if ((a.isLoopback() || a.isAny()) && !f->clientIsLoopback) return f->finish(nullptr, "the URL points at loopback");
    evhttp_connection* conn = evhttp_connection_base_new(f->w->base(), nullptr, a.ipString().c_str(), f->port);
    if (!conn) return f->finish(nullptr, "cannot create a connection");
    evhttp_connection_set_timeout(conn, kAiaTimeoutSeconds);
    evhttp_connection_set_max_body_size(conn, ev_ssize_t(kMaxAiaBytes));
    evhttp_connection_set_retries(conn, 0);
    Fetch* fr = f.release();
    evhttp_request* req = evhttp_request_new(&onResponse, fr);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", fr->host.c_str());
    evhttp_add_header(evhttp_request_get_output_headers(req), "User-Agent", "sekisho-aia");
    if (evhttp_make_request(conn, req, EVHTTP_REQ_GET, fr->path.c_str()) != 0) {
      evhttp_connection_free(conn);
      std::unique_ptr<Fetch> back(fr);
      return back->finish(nullptr, "cannot send the request");
    }
    evhttp_connection_free_on_completion(conn);
  });
}

}  // namespace sekisho::server
