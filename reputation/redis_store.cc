#include "reputation/redis_store.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <list>
#include <unordered_map>

namespace sekisho::reputation {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kBackoffMin{100}, kBackoffMax{5000}, kConnectTimeout{2000};

timeval toTimeval(std::chrono::milliseconds ms) {
  if (ms.count() < 0) ms = std::chrono::milliseconds(0);
  return timeval{time_t(ms.count() / 1000), suseconds_t((ms.count() % 1000) * 1000)};
}

std::string secondsText(std::chrono::milliseconds ms) {
  if (ms.count() < 1000) return std::to_string(ms.count()) + " ms";
  return std::to_string((ms.count() + 500) / 1000) + " s";
}

}  // namespace

std::string_view stateName(RedisStore::State s) noexcept {
  switch (s) {
    case RedisStore::State::Connecting:
      return "connecting";
    case RedisStore::State::Up:
      return "up";
    case RedisStore::State::Down:
      return "down";
  }
  return "?";
}

// Everything the hiredis and libevent callbacks touch. Held by shared_ptr: each in-flight command
// holds a reference, so a reply (or the NULL reply hiredis gives on free) arriving after the
// RedisStore is gone finds `closed` set instead of freed memory.
struct RedisStore::Impl : std::enable_shared_from_this<RedisStore::Impl> {
  event_base* base = nullptr;
  RedisOptions opts;
  bool closed = false;

  // The command connection and its state.
  redisAsyncContext* cmd = nullptr;
  State state = State::Connecting;
  std::string lastError;
  std::chrono::milliseconds backoff{kBackoffMin};
  Clock::time_point retryAt{};
  event* cmdTimer = nullptr;  // reconnect after backoff, or give up a connect that hangs

  // The subscriber connection. While it is not subscribed the cache is off: invalidations
  // would be missed.
  redisAsyncContext* sub = nullptr;
  bool subscribed = false;
  std::string subError;
  std::chrono::milliseconds subBackoff{kBackoffMin};
  event* subTimer = nullptr;

  // What Redis said last: live generations and CIDR prefix lengths in use.
  redis::Generations gens;
  std::vector<unsigned> lens4, lens6;
  uint64_t epoch = 1;  // bumped on every invalidation and generation change; replies sent before are not cached

  struct CacheEntry {
    std::string key;
    std::vector<redis::RawField> fields;  // empty: a negative entry
    Clock::time_point expires;
  };
  std::list<CacheEntry> lru;  // front = most recently used
  std::unordered_map<std::string, std::list<CacheEntry>::iterator> cache;

  struct Pending {
    Impl* impl = nullptr;
    uint64_t ticket = 0, serial = 0;
    Callback cb;
    std::vector<redis::KeyRef> keys;
    event* timer = nullptr;
    int tries = 0;
    std::optional<StoreAnswer> ready;  // set: deliver this when the timer fires (fast failure)
    bool sent = false;
  };
  std::unordered_map<uint64_t, std::unique_ptr<Pending>> pending;  // by ticket
  uint64_t nextSerial = 1;
  Stats stats;
  std::function<void(State, const std::string&)> listener;
  State reported = State::Connecting;
  std::string text() const;
  void setState(State s) {
    state = s;
    if (s != reported) {
      reported = s;
      if (listener) listener(s, text());
    }
  }

  // privdata of every command with a reply callback.
  struct CmdCtx {
    std::shared_ptr<Impl> impl;
    uint64_t ticket = 0, serial = 0, epoch = 0;
    bool init = false;
  };

  ~Impl() = default;

  // ---- cache ----
  void clearCache() {
    lru.clear();
    cache.clear();
    ++epoch;
  }
  bool cacheOn() const { return opts.cacheEntries > 0 && subscribed; }
  const CacheEntry* cached(const std::string& key) {
    auto it = cache.find(key);
    if (it == cache.end()) return nullptr;
    if (it->second->expires <= Clock::now()) {
      lru.erase(it->second);
      cache.erase(it);
      return nullptr;
    }
    lru.splice(lru.begin(), lru, it->second);
    return &*it->second;
  }
  void remember(const std::string& key, std::vector<redis::RawField> fields) {
    if (!cacheOn()) return;
    auto ttl = fields.empty() ? opts.negativeTtl : opts.cacheTtl;
    if (auto it = cache.find(key); it != cache.end()) {
      it->second->fields = std::move(fields);
      it->second->expires = Clock::now() + ttl;
      lru.splice(lru.begin(), lru, it->second);
      return;
    }
    while (cache.size() >= opts.cacheEntries && !lru.empty()) {
      cache.erase(lru.back().key);
      lru.pop_back();
    }
    lru.push_front(CacheEntry{key, std::move(fields), Clock::now() + ttl});
    cache.emplace(key, lru.begin());
  }

  // ---- lookups ----
  std::optional<StoreAnswer> lookup(const LookupKeys& keys, uint64_t ticket, Callback cb) {
    ++stats.lookups;
    auto refs = redis::lookupKeys(keys, lens4, lens6);
    if (cacheOn()) {  // also while the command connection is down: the subscriber vouches for it
      StoreAnswer a;
      bool all = true;
      for (const auto& k : refs) {
        const CacheEntry* e = cached(k.redisKey);
        if (!e) {
          all = false;
          break;
        }
        redis::liveMatches(e->fields, gens, a.matches);
      }
      if (all) {
        ++stats.cacheHits;
        return a;
      }
    }
    cancel(ticket);
    auto p = std::make_unique<Pending>();
    p->impl = this;
    p->ticket = ticket;
    p->serial = nextSerial++;
    p->cb = std::move(cb);
    p->keys = std::move(refs);
    p->timer = evtimer_new(base, &Impl::onTimer, p.get());
    Pending* raw = p.get();
    pending[ticket] = std::move(p);
    if (state == State::Down) {
      failSoon(*raw, "redis down: " + lastError);
    } else {
      timeval tv = toTimeval(opts.deadline);
      evtimer_add(raw->timer, &tv);
      if (state == State::Up) send(*raw);  // Connecting: sent when the connection is up
    }
    return std::nullopt;
  }

  // Answers on the next loop iteration (never from inside lookup()).
  void failSoon(Pending& p, std::string why) {
    ++stats.errors;
    p.ready = StoreAnswer{false, {}, std::move(why)};
    timeval zero{0, 0};
    evtimer_add(p.timer, &zero);
  }

  void cancel(uint64_t ticket) {
    auto it = pending.find(ticket);
    if (it == pending.end()) return;
    event_free(it->second->timer);
    pending.erase(it);
  }

  void send(Pending& p) {
    if (!cmd) return failSoon(p, "redis down: " + lastError);
    p.sent = true;
    ++p.tries;
    ++stats.redisQueries;
    int rc = command(nullptr, {"MULTI"});
    rc |= command(nullptr, {"HGETALL", redis::kGens});
    rc |= command(nullptr, {"SMEMBERS", redis::kCidrLens4});
    rc |= command(nullptr, {"SMEMBERS", redis::kCidrLens6});
    for (const auto& k : p.keys) rc |= command(nullptr, {"HGETALL", k.redisKey});
    auto* ctx = new CmdCtx{shared_from_this(), p.ticket, p.serial, epoch, false};
    if (rc != REDIS_OK || command(ctx, {"EXEC"}) != REDIS_OK) {
      delete ctx;
      failSoon(p, "redis connection is closing");
    }
  }

  int command(CmdCtx* ctx, std::initializer_list<std::string_view> args) {
    const char* argv[4];
    size_t lens[4];
    int n = 0;
    for (auto a : args) {
      argv[n] = a.data();
      lens[n++] = a.size();
    }
    return redisAsyncCommandArgv(cmd, ctx ? &Impl::onExec : nullptr, ctx, n, argv, lens);
  }

  void finish(uint64_t ticket, uint64_t serial, StoreAnswer answer) {
    auto it = pending.find(ticket);
    if (it == pending.end() || it->second->serial != serial) return;  // cancelled or timed out
    std::unique_ptr<Pending> p = std::move(it->second);
    pending.erase(it);
    event_free(p->timer);
    Callback cb = std::move(p->cb);
    p.reset();
    cb(std::move(answer));  // may destroy the store: touch nothing after this
  }

  static void onTimer(evutil_socket_t, short, void* arg) {
    auto* p = static_cast<Pending*>(arg);
    Impl* self = p->impl;
    auto keep = self->shared_from_this();
    StoreAnswer a;
    if (p->ready) {
      a = std::move(*p->ready);
    } else {
      ++self->stats.timeouts;
      a = StoreAnswer{false, {}, "timeout: no answer from redis within " + secondsText(self->opts.deadline)};
    }
    self->finish(p->ticket, p->serial, std::move(a));
  }

  static void onExec(redisAsyncContext*, void* r, void* privdata) {
    std::unique_ptr<CmdCtx> ctx(static_cast<CmdCtx*>(privdata));
    auto self = ctx->impl;  // keeps Impl alive through a callback that destroys the store
    if (self->closed) return;
    const redisReply* reply = static_cast<const redisReply*>(r);
    if (ctx->init) return self->onInitReply(reply);
    self->onLookupReply(*ctx, reply);
  }

  // Parses the MULTI/EXEC reply shared by init and lookups: [gens, lens4, lens6, key...].
  bool parseHeader(const redisReply* x, size_t keys, std::string& err) {
    if (!x) {
      err = "redis connection lost";
      return false;
    }
    if (x->type == REDIS_REPLY_ERROR) {
      err = "redis: " + std::string(x->str, std::min<size_t>(x->len, 200));
      return false;
    }
    if (x->type != REDIS_REPLY_ARRAY || x->elements != 3 + keys) {
      err = "redis: unexpected reply to EXEC (type " + std::to_string(x->type) + ")";
      return false;
    }
    redis::Generations g;
    std::vector<unsigned> l4, l6;
    if (!redis::parseGenerations(x->element[0], g, err) ||
        !redis::parseLens(x->element[1], redis::kCidrLens4, 32, l4, err) ||
        !redis::parseLens(x->element[2], redis::kCidrLens6, 128, l6, err))
      return false;
    if (g != gens) {
      // A source switched generation: everything cached predates it.
      clearCache();
      gens = std::move(g);
    }
    lens4 = std::move(l4);
    lens6 = std::move(l6);
    return true;
  }

  void onLookupReply(const CmdCtx& ctx, const redisReply* x) {
    auto it = pending.find(ctx.ticket);
    Pending* p = it != pending.end() && it->second->serial == ctx.serial ? it->second.get() : nullptr;
    if (!p) {
      return;  // timed out or cancelled: the late reply is ignored
    }
    std::string err;
    auto oldLens4 = lens4, oldLens6 = lens6;
    if (!parseHeader(x, p->keys.size(), err)) {
      ++stats.errors;
      return finish(ctx.ticket, ctx.serial, StoreAnswer{false, {}, err});
    }
    if ((lens4 != oldLens4 || lens6 != oldLens6) && p->tries < 2) {
      // New CIDR prefix lengths appeared: this lookup asked for too few networks.
      recomputeCidr(*p);
      return send(*p);
    }
    StoreAnswer a;
    std::vector<redis::RawField> fields;
    for (size_t i = 0; i < p->keys.size(); ++i) {
      if (!redis::parseRuleHash(x->element[3 + i], p->keys[i], fields, err)) {
        ++stats.errors;
        return finish(ctx.ticket, ctx.serial, StoreAnswer{false, {}, err});
      }
      redis::liveMatches(fields, gens, a.matches);
      // Sent before an invalidation: may hold what the invalidation removed, so not cached.
      if (ctx.epoch == epoch) remember(p->keys[i].redisKey, std::move(fields));
    }
    finish(ctx.ticket, ctx.serial, std::move(a));
  }

  // Rebuilds the CIDR keys of a pending lookup for the current prefix lengths.
  void recomputeCidr(Pending& p) {
    std::vector<redis::KeyRef> keys;
    for (auto& k : p.keys) {
      if (k.kind == RuleKind::Cidr) continue;
      if (k.kind == RuleKind::Ip) {
        auto a = net::parseIp(k.key);
        keys.push_back(std::move(k));
        if (!a) continue;
        LookupKeys one;
        one.ips.push_back(*a);
        for (auto& c : redis::lookupKeys(one, lens4, lens6))
          if (c.kind == RuleKind::Cidr) keys.push_back(std::move(c));
        continue;
      }
      keys.push_back(std::move(k));
    }
    p.keys = std::move(keys);
  }

  // ---- connections ----
  void connectCmd() {
    setState(State::Connecting);
    cmd = redisAsyncConnect(opts.host.c_str(), opts.port);
    if (!cmd || cmd->err) {
      std::string why = cmd ? cmd->errstr : "cannot allocate a connection";
      if (cmd) redisAsyncFree(cmd);
      cmd = nullptr;
      return cmdDown(why);
    }
    cmd->data = this;
    redisLibeventAttach(cmd, base);
    redisAsyncSetConnectCallback(cmd, &Impl::onConnect);
    redisAsyncSetDisconnectCallback(cmd, &Impl::onDisconnect);
    if (!opts.password.empty()) command(nullptr, {"AUTH", opts.password});
    if (opts.db != 0) {
      std::string db = std::to_string(opts.db);
      command(nullptr, {"SELECT", db});
    }
    command(nullptr, {"MULTI"});
    command(nullptr, {"HGETALL", redis::kGens});
    command(nullptr, {"SMEMBERS", redis::kCidrLens4});
    command(nullptr, {"SMEMBERS", redis::kCidrLens6});
    auto* ctx = new CmdCtx{shared_from_this(), 0, 0, epoch, true};
    if (command(ctx, {"EXEC"}) != REDIS_OK) delete ctx;
    timeval tv = toTimeval(kConnectTimeout);
    evtimer_add(cmdTimer, &tv);  // a connect that hangs is given up after this
  }

  void onInitReply(const redisReply* x) {
    std::string err;
    if (!parseHeader(x, 0, err)) {
      if (x) {  // NULL: the disconnect callback reports it
        ++stats.errors;
        dropCmd(err);
      }
      return;
    }
    backoff = kBackoffMin;
    lastError.clear();
    setState(State::Up);
    evtimer_del(cmdTimer);
    std::vector<Pending*> waiting;
    for (auto& kv : pending)
      if (!kv.second->sent && !kv.second->ready) waiting.push_back(kv.second.get());
    for (Pending* p : waiting) {
      recomputeCidr(*p);
      send(*p);
    }
  }

  // Gives up the command connection (a bad handshake reply or a hung connect) and retries later.
  void dropCmd(const std::string& why) {
    if (cmd) {
      redisAsyncContext* c = cmd;
      cmd = nullptr;
      c->onConnect = nullptr;
      c->onDisconnect = nullptr;
      redisAsyncFree(c);  // pending lookups get NULL replies: "connection lost"
    }
    cmdDown(why);
  }

  void cmdDown(const std::string& why) {
    lastError = why;
    retryAt = Clock::now() + backoff;
    setState(State::Down);
    timeval tv = toTimeval(backoff);
    evtimer_add(cmdTimer, &tv);
    backoff = std::min(backoff * 2, kBackoffMax);
    // Lookups waiting for the connection fail now rather than at their deadline.
    for (auto& kv : pending)
      if (!kv.second->sent && !kv.second->ready) failSoon(*kv.second, "redis down: " + why);
  }

  static void onCmdTimer(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    if (self->state == State::Connecting && self->cmd)
      return self->dropCmd("connect timed out after " + secondsText(kConnectTimeout));
    if (!self->cmd) self->connectCmd();
  }

  static void onConnect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<Impl*>(ac->data);
    if (!self) return;
    if (ac == self->sub) {
      if (status != REDIS_OK) {
        self->sub = nullptr;  // hiredis frees it after this callback
        self->subDown(ac->errstr);
      }
      return;
    }
    if (status != REDIS_OK) {
      self->cmd = nullptr;
      evtimer_del(self->cmdTimer);
      self->cmdDown(ac->errstr);
    }
  }

  static void onDisconnect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<Impl*>(ac->data);
    if (!self) return;
    std::string why = status == REDIS_OK ? "connection closed by redis" : ac->errstr;
    if (ac == self->sub) {
      self->sub = nullptr;
      self->subDown(why);
      return;
    }
    self->cmd = nullptr;
    evtimer_del(self->cmdTimer);
    self->cmdDown(why);
  }

  void connectSub() {
    sub = redisAsyncConnect(opts.host.c_str(), opts.port);
    if (!sub || sub->err) {
      std::string why = sub ? sub->errstr : "cannot allocate a connection";
      if (sub) redisAsyncFree(sub);
      sub = nullptr;
      return subDown(why);
    }
    sub->data = this;
    redisLibeventAttach(sub, base);
    redisAsyncSetConnectCallback(sub, &Impl::onConnect);
    redisAsyncSetDisconnectCallback(sub, &Impl::onDisconnect);
    if (!opts.password.empty()) {
      const char* argv[] = {"AUTH", opts.password.c_str()};
      size_t lens[] = {4, opts.password.size()};
      redisAsyncCommandArgv(sub, nullptr, nullptr, 2, argv, lens);
    }
    const char* argv[] = {"SUBSCRIBE", redis::kChannel.data()};
    size_t lens[] = {9, redis::kChannel.size()};
    redisAsyncCommandArgv(sub, &Impl::onMessage, this, 2, argv, lens);
  }

  void subDown(const std::string& why) {
    subscribed = false;
    subError = why;
    clearCache();
    timeval tv = toTimeval(subBackoff);
    evtimer_add(subTimer, &tv);
    subBackoff = std::min(subBackoff * 2, kBackoffMax);
  }

  static void onSubTimer(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    if (!self->sub) self->connectSub();
  }

  // Only ever runs inside the subscriber's own event handling or its free (both while the Impl is
  // alive: the store never runs user callbacks from here, so it cannot be destroyed meanwhile).
  static void onMessage(redisAsyncContext*, void* r, void* privdata) {
    auto* self = static_cast<Impl*>(privdata);
    const redisReply* x = static_cast<const redisReply*>(r);
    if (!x || self->closed) return;
    if (x->type == REDIS_REPLY_ERROR) {  // e.g. NOAUTH: drop the connection and retry later
      ++self->stats.errors;
      redisAsyncContext* c = self->sub;
      self->sub = nullptr;
      if (c) {
        c->onConnect = nullptr;
        c->onDisconnect = nullptr;
        redisAsyncFree(c);  // deferred by hiredis until this callback returns
      }
      self->subDown("SUBSCRIBE refused: " + std::string(x->str, std::min<size_t>(x->len, 200)));
      return;
    }
    if (x->type != REDIS_REPLY_ARRAY || x->elements < 3 || x->element[0]->type != REDIS_REPLY_STRING) {
      ++self->stats.errors;
      return;
    }
    std::string_view kind(x->element[0]->str, x->element[0]->len);
    if (kind == "subscribe") {
      // Anything could have changed while we were not listening.
      self->subscribed = true;
      self->subBackoff = kBackoffMin;
      self->subError.clear();
      self->clearCache();
    } else if (kind == "message") {
      ++self->stats.invalidations;
      self->clearCache();
    }
  }

  void shutdown() {
    closed = true;
    for (auto& kv : pending) event_free(kv.second->timer);
    pending.clear();
    for (redisAsyncContext** c : {&cmd, &sub}) {
      if (!*c) continue;
      redisAsyncContext* ac = *c;
      *c = nullptr;
      ac->onConnect = nullptr;
      ac->onDisconnect = nullptr;
      ac->data = nullptr;
      redisAsyncFree(ac);  // deferred by hiredis when called from inside one of its callbacks
    }
    if (cmdTimer) event_free(cmdTimer);
    if (subTimer) event_free(subTimer);
    cmdTimer = subTimer = nullptr;
  }
};

RedisStore::RedisStore(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisStore::~RedisStore() { impl_->shutdown(); }

std::unique_ptr<RedisStore> RedisStore::create(event_base* base, RedisOptions opts) {
  auto impl = std::make_shared<Impl>();
  impl->base = base;
  impl->opts = std::move(opts);
  Impl* raw = impl.get();
  impl->cmdTimer = evtimer_new(base, &Impl::onCmdTimer, raw);
  impl->subTimer = evtimer_new(base, &Impl::onSubTimer, raw);
  std::unique_ptr<RedisStore> store(new RedisStore(impl));
  raw->connectSub();
  raw->connectCmd();
  return store;
}

std::optional<StoreAnswer> RedisStore::lookup(const LookupKeys& keys, uint64_t ticket, Callback cb) {
  return impl_->lookup(keys, ticket, std::move(cb));
}
void RedisStore::cancel(uint64_t ticket) { impl_->cancel(ticket); }
RedisStore::State RedisStore::state() const { return impl_->state; }
RedisStore::Stats RedisStore::stats() const { return impl_->stats; }
size_t RedisStore::pendingLookups() const { return impl_->pending.size(); }

void RedisStore::setStateListener(std::function<void(State, const std::string&)> fn) {
  impl_->listener = std::move(fn);
}

std::string RedisStore::stateText() const { return impl_->text(); }

std::string RedisStore::Impl::text() const {
  const Impl& s = *this;
  std::string out(stateName(s.state));
  if (s.state == State::Down) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s.retryAt - Clock::now());
    out += ": " + s.lastError + " (retry in " + secondsText(std::max(left, std::chrono::milliseconds(0))) + ")";
  }
  if (!s.subscribed && s.state == State::Up)
    out += "; invalidation channel " + (s.subError.empty() ? std::string("connecting") : "down: " + s.subError) +
           " (cache off)";
  return out;
}

}  // namespace sekisho::reputation
