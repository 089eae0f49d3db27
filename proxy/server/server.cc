#include "proxy/server/server.h"

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <ifaddrs.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "version.h"
#include "ca/leaf_disk_cache.h"
#include "proxy/base/log.h"
#include "proxy/log/access_log.h"
#include "proxy/server/worker.h"
#include "reputation/feeds.h"
#include "reputation/redis_import.h"
#include "reputation/redis_schema.h"
#include "tls-mitm/ticket_keys.h"
#include "reputation/normalize.h"
#include "reputation/policy.h"

namespace sekisho::server {

namespace {

void raiseFdLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::vector<net::SocketAddr> localAddresses() {
  std::vector<net::SocketAddr> out;
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    socklen_t len = i->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (auto a = net::SocketAddr::fromSockaddr(i->ifa_addr, len)) out.push_back(*a);
  }
  freeifaddrs(ifs);
  return out;
}

// With no configuration file at all the proxy still shows what a block looks like: reserved
// .test names (RFC 6761), never real sites.
constexpr std::string_view kSampleBlockList =
    "# Sekisho sample block list, loaded only on built-in defaults\n"
    "malware.sekisho.test\n"
    "c2.sekisho.test\n"
    "phishing.sekisho.test\n";

// A store URL as it may be shown (logs, /healthz): a password becomes "***".
std::string shownStore(const std::string& store) {
  size_t at = store.find('@');
  if (store.rfind("redis://:", 0) != 0 || at == std::string::npos) return store;
  return "redis://:***" + store.substr(at);
}

// The embedded store: persisted under the config file's directory, with reputation.lists loaded
// into it (each file replaces its own source); in memory with the sample list on built-in defaults.
Result<std::shared_ptr<const reputation::EmbeddedStore>> openReputation(const config::Config& cfg) {
  if (cfg.reputation.store != "embedded")
    SLOG_INFO("reputation.store %s: feeds live in Redis (each worker caches answers); reputation.lists "
              "and built-in entries stay in this process", shownStore(cfg.reputation.store).c_str());
  if (cfg.sourceFile.empty()) {
    auto store = std::make_shared<reputation::EmbeddedStore>();
    reputation::FeedOptions o;
    o.category = "malware";
    o.source = "sample";
    auto feed = reputation::parseFeed(reputation::Format::Domains, kSampleBlockList, o);
    if (!feed) return tl::unexpected(feed.error());
    if (auto r = store->replaceSource(*feed); !r) return tl::unexpected(r.error());
    SLOG_INFO("reputation: built-in sample block list (%zu names, e.g. malware.sekisho.test)", store->size());
    return std::shared_ptr<const reputation::EmbeddedStore>(store);
  }
  auto opened = reputation::EmbeddedStore::open(cfg.baseDir);
  if (!opened) return tl::unexpected(opened.error());
  std::shared_ptr<reputation::EmbeddedStore> store(std::move(*opened));
  for (const auto& list : cfg.reputation.lists) {
    auto format = reputation::parseFormat(list.format);
    if (!format) return tl::unexpected(format.error());
    std::string name = list.file.substr(list.file.find_last_of('/') + 1);
    std::string source = "list-";
    for (char c : name) source += (isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
    reputation::FeedOptions o;
    o.category = list.category;
    o.source = source.substr(0, 64);
    auto imported = store->importFeed(*format, list.file, o);
    if (!imported)
      return fail(ErrKind::Config, Side::Config, "reputation.lists: " + list.file + ": " + imported.error().detail);
    SLOG_INFO("reputation: %s: %zu entries as source %s (%zu bad lines)", list.file.c_str(), imported->accepted,
              o.source.c_str(), imported->badLines);
  }
  SLOG_INFO("reputation: embedded store with %zu entries", store->size());
  return std::shared_ptr<const reputation::EmbeddedStore>(store);
}

// Client-facing TLS: 1.2 and 1.3 only, AEAD suites with forward secrecy (what a current browser
// offers, nothing weaker), HTTP/1.1 by ALPN, no renegotiation.
int selectAlpn(SSL* ssl, const unsigned char** out, unsigned char* outLen, const unsigned char* in, unsigned inLen,
               void*) {
  // h2 only on intercepted connections (translated to HTTP/1.1 by h2::H2Session); block and error
  // pages over TLS speak HTTP/1.1.
  static const unsigned char kH2Http11[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  bool h2 = mitm::h2Allowed(ssl);
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outLen, h2 ? kH2Http11 : kHttp11, h2 ? sizeof kH2Http11 : sizeof kHttp11, in,
                            inLen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<SSL_CTX> makeClientTlsContext() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // idle intercepted connections hold no record buffers
  // The chain is added to each SSL explicitly (the CA's intermediates): no store walk per handshake.
  SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
  // One TLS 1.3 ticket per handshake, not OpenSSL's two: each is a serialised, encrypted session.
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_cipher_list(ctx,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                          "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
  SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
  SSL_CTX_set_alpn_select_cb(ctx, &selectAlpn, nullptr);
  // Resumption by session tickets only (no per-process session cache to share between workers):
  // a returning browser skips the full handshake and the leaf signature.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (!mitm::installTicketKeys(ctx)) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return std::shared_ptr<SSL_CTX>(ctx, &SSL_CTX_free);
}

log::Level levelOf(const std::string& s) {
  if (s == "debug") return log::Level::Debug;
  if (s == "warn") return log::Level::Warn;
  if (s == "error") return log::Level::Error;
  return log::Level::Info;
}

struct Server {
  config::ConfigPtr cfg;
  RunOptions opts;
  std::shared_ptr<accesslog::AccessLog> accessLog;
  std::shared_ptr<const reputation::EmbeddedStore> reputation;
  std::vector<std::unique_ptr<Worker>> workers;
  std::shared_ptr<const SharedFacts> facts;
  std::shared_ptr<ca::LeafDiskCache> leafDisk;  // tls.leaf_cache_dir; stopped (drained) after the workers
  EventBasePtr base;
  std::vector<EventPtr> signals;
  evhttp* admin = nullptr;
  bool stopping = false;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  void reload();
  void stop();
  void metrics(evhttp_request* req);
};

Result<std::shared_ptr<accesslog::AccessLog>> openAccessLog(const config::Config& cfg) {
  auto r = accesslog::AccessLog::open(cfg.log.access, cfg.log.format);
  if (!r) return tl::unexpected(r.error());
  return std::shared_ptr<accesslog::AccessLog>(std::move(*r));
}

void Server::reload() {
  if (opts.configPath.empty()) {
    SLOG_INFO("reload: running on built-in defaults (no config file); nothing to reload");
    return;
  }
  auto next = config::loadFile(opts.configPath);
  if (!next) {
    SLOG_ERROR("reload refused, the running configuration stays in force: %s", next.error().detail.c_str());
    return;
  }
  const auto& n = **next;
  if (n.listen.size() != cfg->listen.size() || !std::equal(n.listen.begin(), n.listen.end(), cfg->listen.begin()))
    SLOG_WARN("reload: listen changed; new listeners take effect after a restart");
  if (n.workers != cfg->workers) SLOG_WARN("reload: workers changed; takes effect after a restart");
  if (n.admin.listenText != cfg->admin.listenText) SLOG_WARN("reload: admin.listen changed; takes effect after a restart");
  if (n.tls.leafCacheDir != cfg->tls.leafCacheDir || n.tls.leafCacheEntries != cfg->tls.leafCacheEntries)
    SLOG_WARN("reload: tls.leaf_cache_dir/leaf_cache_entries changed; takes effect after a restart");
  std::shared_ptr<accesslog::AccessLog> log = accessLog;
  if (n.log.access != cfg->log.access || n.log.format != cfg->log.format) {
    auto opened = openAccessLog(n);
    if (!opened) {
      SLOG_ERROR("reload refused: %s", opened.error().detail.c_str());
      return;
    }
    log = *opened;
  }
  // Lists are read again, so `sekisho feed import` + SIGHUP is live without a restart; a list
  // that fails refuses the whole reload.
  auto rep = openReputation(n);
  if (!rep) {
    SLOG_ERROR("reload refused, the running configuration stays in force: %s", rep.error().detail.c_str());
    return;
  }
  log::setLevel(levelOf(n.log.level));
  cfg = *next;
  accessLog = log;
  reputation = *rep;
  for (auto& w : workers) w->postConfig(cfg, accessLog, reputation);
  SLOG_INFO("configuration reloaded from %s", opts.configPath.c_str());
}

void Server::stop() {
  if (stopping) {
    SLOG_WARN("second stop signal: exiting now");
    for (auto& w : workers) w->postShutdown(std::chrono::milliseconds(0));
  } else {
    stopping = true;
    SLOG_INFO("stopping: no new connections; draining in-flight requests for up to %lld ms",
              (long long)cfg->timeouts.shutdown.count());
    for (auto& w : workers) w->postShutdown(cfg->timeouts.shutdown);
  }
  if (admin) {
    evhttp_free(admin);
    admin = nullptr;
  }
  // The main loop ends; run() then joins the workers, which end when drained.
  event_base_loopexit(base.get(), nullptr);
}

void addCounter(std::string& out, const char* name, const char* help, const char* type, uint64_t v,
                const std::string& labels = "") {
  if (!help) {
    out += name + labels + " " + std::to_string(v) + "\n";
    return;
  }
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  out += name + labels + " " + std::to_string(v) + "\n";
}

void Server::metrics(evhttp_request* req) {
  auto sum = [&](auto member) {
    uint64_t s = 0;
    for (auto& w : workers) s += (w->metrics().*member).load(std::memory_order_relaxed);
    return s;
  };
  std::string out;
  addCounter(out, "sekisho_connections_accepted_total", "Client connections accepted.", "counter", sum(&Metrics::accepted));
  addCounter(out, "sekisho_connections_active", "Client connections open now.", "gauge", sum(&Metrics::active));
  addCounter(out, "sekisho_connections_refused_total", "Connections closed at accept (limit or shutdown).", "counter", sum(&Metrics::refusedAtAccept));
  addCounter(out, "sekisho_idle_connections_reclaimed_total",
             "Idle client connections closed to let new ones in (at the connection or descriptor limit).", "counter",
             sum(&Metrics::idleReclaimed));
  addCounter(out, "sekisho_requests_total", "Requests read from clients (CONNECT included).", "counter", sum(&Metrics::requests));
  addCounter(out, "sekisho_tunnels_total", "CONNECT tunnels established.", "counter", sum(&Metrics::tunnels));
  addCounter(out, "sekisho_self_pages_total", "Requests for the proxy's own pages.", "counter", sum(&Metrics::selfPages));
  addCounter(out, "sekisho_upstream_connects_total", "New upstream TCP connections.", "counter", sum(&Metrics::upstreamConnects));
  addCounter(out, "sekisho_upstream_reuses_total", "Requests sent on a pooled upstream connection.", "counter", sum(&Metrics::upstreamReuses));
  addCounter(out, "sekisho_upstream_retries_total", "Requests retried after a pooled connection turned out closed.", "counter", sum(&Metrics::upstreamRetries));
  addCounter(out, "sekisho_upstream_idle_connections", "Upstream connections idle in the pools now (verified TLS ones included).", "gauge", sum(&Metrics::upstreamIdle));
  addCounter(out, "sekisho_tls_intercepted_total", "CONNECT tunnels decrypted (origin verified, leaf minted).", "counter", sum(&Metrics::bumped));
  addCounter(out, "sekisho_tls_tunnelled_total", "CONNECT tunnels passed through undecrypted after the ClientHello.", "counter", sum(&Metrics::bumpTunnelled));
  addCounter(out, "sekisho_tls_origin_cert_refused_total", "Origin certificates that failed verification.", "counter", sum(&Metrics::originCertRefused));
  addCounter(out, "sekisho_reputation_errors_total", "Lookups the reputation store could not answer (on_error decided: open lets them through).", "counter", sum(&Metrics::reputationErrors));
  addCounter(out, "sekisho_h2_sessions_total", "Intercepted client connections that chose HTTP/2.", "counter", sum(&Metrics::h2Sessions));
  addCounter(out, "sekisho_h2_streams_total", "HTTP/2 streams (each one request through the HTTP/1.1 path).", "counter", sum(&Metrics::h2Streams));
  addCounter(out, "sekisho_upstream_h2_connections_total", "HTTP/2 connections opened to origins (the origin chose h2 for an HTTP/2 client).", "counter", sum(&Metrics::upstreamH2Sessions));
  addCounter(out, "sekisho_upstream_h2_streams_total", "Requests sent as streams on HTTP/2 origin connections.", "counter", sum(&Metrics::upstreamH2Streams));
  addCounter(out, "sekisho_upstream_h2_open_connections", "HTTP/2 origin connections open now.", "gauge", sum(&Metrics::upstreamH2Connections));
  addCounter(out, "sekisho_tls_upstream_handshakes_total", "TLS handshakes with origins.", "counter", sum(&Metrics::upstreamTlsHandshakes));
  addCounter(out, "sekisho_tls_upstream_resumed_total", "TLS handshakes with origins that resumed a saved session.", "counter", sum(&Metrics::upstreamTlsResumed));
  addCounter(out, "sekisho_tls_aia_fetches_total", "Missing intermediates fetched from AIA URLs.", "counter", sum(&Metrics::aiaFetches));
  addCounter(out, "sekisho_tls_client_handshake_failures_total", "Client TLS handshakes on minted leaves that failed.", "counter", sum(&Metrics::clientTlsFailed));
  if (facts && facts->leafCache) {
    auto st = facts->leafCache->stats();
    addCounter(out, "sekisho_tls_leaf_cache_entries", "Minted leaves in the shared cache.", "gauge", facts->leafCache->size());
    addCounter(out, "sekisho_tls_leaf_mints_total", "Leaves minted.", "counter", st.mints);
    addCounter(out, "sekisho_tls_leaf_cache_hits_total", "Leaf cache hits.", "counter", st.hits);
  }
  if (leafDisk) {
    auto ds = leafDisk->stats();
    addCounter(out, "sekisho_tls_leaf_disk_writes_total", "Minted leaves written to tls.leaf_cache_dir.", "counter", ds.written);
    addCounter(out, "sekisho_tls_leaf_disk_dropped_total", "Leaf writes dropped because the writer queue was full.", "counter", ds.dropped);
    addCounter(out, "sekisho_tls_leaf_disk_errors_total", "Leaf writes that failed.", "counter", ds.writeErrors);
  }
  addCounter(out, "sekisho_client_bytes_received_total", "Bytes received from clients.", "counter", sum(&Metrics::bytesFromClients));
  addCounter(out, "sekisho_client_bytes_sent_total", "Bytes sent to clients.", "counter", sum(&Metrics::bytesToClients));
  out += "# HELP sekisho_responses_total Responses sent to clients by status class.\n# TYPE sekisho_responses_total counter\n";
  static const char* kClasses[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (size_t c = 0; c < 6; ++c) {
    uint64_t v = 0;
    for (auto& w : workers) v += w->metrics().byStatusClass[c].load(std::memory_order_relaxed);
    addCounter(out, "sekisho_responses_total", nullptr, nullptr, v, std::string("{class=\"") + kClasses[c] + "\"}");
  }
  out += "# HELP sekisho_refusals_total Requests refused or failed, by reason.\n# TYPE sekisho_refusals_total counter\n";
  for (size_t r = 1; r < size_t(Reason::Count_); ++r) {
    uint64_t v = 0;
    for (auto& w : workers) v += w->metrics().byReason[r].load(std::memory_order_relaxed);
    addCounter(out, "sekisho_refusals_total", nullptr, nullptr, v, std::string("{reason=\"") + reasonName(Reason(r)) + "\"}");
  }
  if (accessLog) {
    addCounter(out, "sekisho_access_log_dropped_total", "Access log records dropped because the writer fell behind.", "counter", accessLog->dropped());
  }
  double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  out += "# HELP sekisho_uptime_seconds Seconds since start.\n# TYPE sekisho_uptime_seconds gauge\nsekisho_uptime_seconds " +
         std::to_string(up) + "\n";
  out += "# HELP sekisho_build_info Build information.\n# TYPE sekisho_build_info gauge\nsekisho_build_info{version=\"" SEKISHO_VERSION "\"} 1\n";
  evbuffer* b = evbuffer_new();
  evbuffer_add(b, out.data(), out.size());
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  evhttp_send_reply(req, 200, "OK", b);
  evbuffer_free(b);
}

// Admin /lookup?url=URL: the verdict and the chain of rules, as `sekisho lookup` prints it.
std::string adminLookup(const Server& s, const std::string& target, int& status) {
  if (target.empty()) {
    status = 400;
    return "usage: /lookup?url=http://host/path (or a host name)\n";
  }
  bool isUrl = target.find("://") != std::string::npos;
  reputation::LookupKeys keys;
  reputation::Facts facts;
  std::optional<reputation::NormalUrl> url;
  std::optional<reputation::NormalHost> host;
  if (isUrl) {
    auto u = reputation::normalizeUrl(target);
    if (!u) {
      status = 400;
      return "not a URL this proxy can check: " + u.error().detail + "\n";
    }
    url = std::move(*u);
    keys.url = &*url;
    facts.url = url->url;
    facts.host = url->host.host;
  } else {
    auto h = reputation::normalizeHost(target);
    if (!h) {
      status = 400;
      return "not a host name this proxy can check: " + h.error().detail + "\n";
    }
    host = std::move(*h);
    keys.host = &*host;
    facts.host = host->host;
  }
  facts.now = int64_t(time(nullptr));
  auto matches = s.reputation ? s.reputation->lookup(keys) : std::vector<reputation::Match>{};
  std::string storeNote;
  if (reputation::isRedisUrl(s.cfg->reputation.store)) {
    // A blocking query from the admin thread (short timeouts), as `sekisho lookup` makes it.
    auto opts = reputation::parseRedisUrl(s.cfg->reputation.store);
    auto more = opts ? reputation::lookupRedisSync(*opts, keys) : tl::unexpected(opts.error());
    if (more)
      for (auto& m : *more) matches.push_back(std::move(m));
    else
      storeNote = "store: the Redis store did not answer: " + more.error().detail + "\n";
  }
  reputation::PolicyConfig policy = policyOf(*s.cfg);
  reputation::Decision d = reputation::decide(facts, matches, policy);
  status = 200;
  std::string out = "target: " + (isUrl ? facts.url : facts.host) + "\nverdict: " +
                    std::string(reputation::outcomeName(d.outcome)) + "\nreason: " + d.reason + "\nrules:\n";
  for (const auto& c : d.chain) out += "  " + c + "\n";
  return out + storeNote;
}

void onAdmin(evhttp_request* req, void* arg) {
  auto* s = static_cast<Server*>(arg);
  const char* uri = evhttp_request_get_uri(req);
  std::string path = uri ? uri : "";
  path = path.substr(0, path.find('?'));
  if (path == "/metrics") return s->metrics(req);
  evbuffer* b = evbuffer_new();
  if (path == "/lookup") {
    evkeyvalq params;
    params.tqh_first = nullptr;  // TAILQ_INIT
    params.tqh_last = &params.tqh_first;
    const evhttp_uri* parsed = evhttp_request_get_evhttp_uri(req);
    const char* query = parsed ? evhttp_uri_get_query(parsed) : nullptr;
    std::string target;
    if (query && evhttp_parse_query_str(query, &params) == 0) {
      const char* v = evhttp_find_header(&params, "url");
      if (!v) v = evhttp_find_header(&params, "host");
      if (v) target = v;
    }
    evhttp_clear_headers(&params);
    int status = 200;
    std::string text = adminLookup(*s, target, status);
    evbuffer_add(b, text.data(), text.size());
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Bad Request", b);
  } else if (path == "/healthz") {
    evbuffer_add_printf(b, "ok\n");
    if (reputation::isRedisUrl(s->cfg->reputation.store)) {
      // The shared store's state as each worker sees it (its connection, its reconnects).
      evbuffer_add_printf(b, "reputation store %s (on_error: %s)\n", shownStore(s->cfg->reputation.store).c_str(),
                          s->cfg->reputation.onError == config::OnError::Open ? "open" : "closed");
      for (size_t i = 0; i < s->workers.size(); ++i)
        evbuffer_add_printf(b, "  worker %zu: %s\n", i, s->workers[i]->redisState().c_str());
    }
    if (s->reputation) {
      evbuffer_add_printf(b, "reputation: embedded store, %zu entries\n", s->reputation->size());
      for (const auto& src : s->reputation->sources())
        evbuffer_add_printf(b, "  source %s: %zu entries, updated %lld\n", src.name.c_str(), src.entries,
                            (long long)src.updated);
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
  } else if (path == "/tls/remembered") {
    // Hosts tunnelled because interception failed for them (client certificate, pinned client).
    time_t now = time(nullptr);
    std::vector<mitm::RememberedHost> hosts;
    if (s->facts && s->facts->remembered) hosts = s->facts->remembered->list(now);
    evbuffer_add_printf(b, "# host kind since_unix until_unix tunnelled_connections\n");
    for (const auto& h : hosts)
      evbuffer_add_printf(b, "%s %s %lld %lld %llu\n", h.host.c_str(), std::string(mitm::rememberKindName(h.kind)).c_str(),
                          (long long)h.since, (long long)h.until, (unsigned long long)h.hits);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
  } else {
    evbuffer_add_printf(b, "not found; try /metrics, /healthz, /lookup?url=URL or /tls/remembered\n");
    evhttp_send_reply(req, 404, "Not Found", b);
  }
  evbuffer_free(b);
}

void onSignal(evutil_socket_t sig, short, void* arg) {
  auto* s = static_cast<Server*>(arg);
  switch (sig) {
    case SIGHUP: s->reload(); break;
    case SIGUSR1:
      SLOG_INFO("reopening the access log");
      if (s->accessLog) s->accessLog->reopen();
      break;
    default: s->stop(); break;
  }
}

}  // namespace

int run(config::ConfigPtr cfg, const RunOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  evthread_use_pthreads();
  raiseFdLimit();
  signal(SIGPIPE, SIG_IGN);
  log::setLevel(levelOf(cfg->log.level));

  Server s;
  s.cfg = cfg;
  s.opts = opts;
  auto opened = openAccessLog(*cfg);
  if (!opened) {
    SLOG_ERROR("%s", opened.error().detail.c_str());
    return 1;
  }
  s.accessLog = *opened;

  auto facts = std::make_shared<SharedFacts>();
  facts->listeners = cfg->listen;
  facts->localAddrs = localAddresses();
  facts->admin = cfg->admin.listen;
  facts->hosts = std::make_shared<const HostsMap>(loadHostsFile("/etc/hosts"));
  facts->clientCounts = std::make_shared<ClientCounts>();
  auto rep = openReputation(*cfg);
  if (!rep) {
    SLOG_ERROR("%s", rep.error().detail.c_str());
    return 1;
  }
  facts->reputation = *rep;
  s.reputation = *rep;
  if (cfg->tls.intercept) {
    // The CA users install (/ca). Created on first start when neither file exists; a key that
    // others can read, or a cert that does not match it, stops start-up.
    ca::CaInitOptions opts;
    opts.certPath = cfg->ca.cert;
    opts.keyPath = cfg->ca.key;
    auto loaded = ca::loadOrCreateCa(opts, cfg->ca.chain);
    if (!loaded) {
      SLOG_ERROR("ca: %s", loaded.error().detail.c_str());
      return 1;
    }
    facts->ca = *loaded;
    facts->leafCache = std::make_shared<ca::CertCache>(cfg->tls.leafCacheEntries);
    if (!cfg->tls.leafCacheDir.empty()) {
      // Asked for by the admin, so a directory that cannot be used (or that others can read)
      // stops start-up rather than silently running cold.
      ca::LeafDiskCacheOptions diskOpts;
      diskOpts.dir = cfg->tls.leafCacheDir;
      diskOpts.maxEntries = cfg->tls.leafCacheEntries;
      auto disk = ca::LeafDiskCache::open(diskOpts);
      if (!disk) {
        SLOG_ERROR("tls.leaf_cache_dir: %s", disk.error().detail.c_str());
        return 1;
      }
      ca::LeafDiskLoadStats loadedLeaves = (*disk)->loadInto(*facts->leafCache, *facts->ca);
      SLOG_INFO("tls.leaf_cache_dir %s: %s", cfg->tls.leafCacheDir.c_str(), loadedLeaves.summary().c_str());
      (*disk)->attachTo(*facts->leafCache);
      s.leafDisk = *disk;
    }
    facts->clientTls = makeClientTlsContext();
    if (!facts->clientTls) {
      SLOG_ERROR("tls: cannot set up the client-side TLS context");
      return 1;
    }
    mitm::OriginTlsOptions originOpts;
    originOpts.extraCaFile = cfg->tls.upstreamCaFile;
    auto origin = mitm::OriginTls::create(originOpts);
    if (!origin) {
      SLOG_ERROR("tls: %s", origin.error().detail.c_str());
      return 1;
    }
    facts->originTls = *origin;
    facts->remembered = std::make_shared<mitm::RememberedHosts>(time_t(cfg->tls.rememberFor.count() / 1000));
    SLOG_INFO("ca: %s (SHA-256 %s); users install it from /ca", cfg->ca.cert.c_str(), facts->ca->fingerprint().c_str());
    SLOG_INFO("tls: intercepting CONNECT; origin certificates verified against the system store%s",
              cfg->tls.upstreamCaFile.empty() ? "" : (" and " + cfg->tls.upstreamCaFile).c_str());
  }

  // Workers block the control signals; only the main thread handles them.
  sigset_t set, old;
  sigemptyset(&set);
  for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  // The first worker binds what the config says; the others bind the same ports (so a port 0
  // in the config means one kernel-chosen port shared by every worker).
  std::vector<net::SocketAddr> bindTo = cfg->listen;
  for (unsigned i = 0; i < cfg->workers; ++i) {
    auto w = std::make_unique<Worker>(i, cfg, s.accessLog, facts);
    auto r = w->bind(bindTo);
    if (!r) {
      SLOG_ERROR("%s", r.error().detail.c_str());
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      return 1;
    }
    bindTo = *r;
    s.workers.push_back(std::move(w));
  }
  facts->listeners = bindTo;
  for (auto& w : s.workers) w->setFacts(facts);
  s.facts = facts;
  // The admin listener is bound before any worker serves: once the proxy answers /healthz, its
  // /metrics and /lookup answer too (a monitor that starts on the first health check must not
  // find the admin port closed).
  s.base.reset(event_base_new());
  if (cfg->admin.listen) {
    s.admin = evhttp_new(s.base.get());
    evhttp_set_allowed_methods(s.admin, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(s.admin, &onAdmin, &s);
    evhttp_set_timeout(s.admin, 10);
    const auto& a = *cfg->admin.listen;
    if (!evhttp_bind_socket_with_handle(s.admin, a.ipString().c_str(), a.port())) {
      SLOG_ERROR("cannot listen on admin.listen %s: %s", a.toString().c_str(), strerror(errno));
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      evhttp_free(s.admin);
      s.admin = nullptr;
      return 1;
    }
  }
  for (auto& w : s.workers) w->start();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) {
    s.signals.emplace_back(evsignal_new(s.base.get(), sig, &onSignal, &s));
    evsignal_add(s.signals.back().get(), nullptr);
  }
  std::string where;
  for (const auto& l : bindTo) where += (where.empty() ? "" : ", ") + l.toString();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  SLOG_INFO("sekisho %s listening on %s with %u workers (config: %s; admin: %s; started in %.1f ms)", SEKISHO_VERSION,
            where.c_str(), cfg->workers, opts.configPath.empty() ? "built-in defaults" : opts.configPath.c_str(),
            cfg->admin.listen ? cfg->admin.listen->toString().c_str() : "off", ms);

  event_base_dispatch(s.base.get());
  for (auto& w : s.workers) w->join();
  s.workers.clear();
  if (s.leafDisk) s.leafDisk->stop();  // no worker mints any more: write what is queued, join the writer
  s.signals.clear();
  if (s.admin) evhttp_free(s.admin);
  s.accessLog.reset();
  SLOG_INFO("stopped");
  return 0;
}

}  // namespace sekisho::server
