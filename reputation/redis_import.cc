#include "reputation/redis_import.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <ctime>
#include <memory>
#include <set>

#include "proxy/base/strings.h"
#include "proxy/net/address.h"

namespace sekisho::reputation {

namespace {

using ContextPtr = std::unique_ptr<redisContext, decltype(&redisFree)>;
using ReplyPtr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

// Commands per round trip: large enough that loopback latency disappears, small enough that a
// batch's replies (a few hundred KiB) never pile up.
constexpr size_t kBatch = 4000;

tl::unexpected<Error> redisFail(const RedisOptions& o, const std::string& what) {
  return fail(ErrKind::Io, Side::Upstream, "redis " + o.host + ":" + std::to_string(o.port) + ": " + what);
}

std::string replyText(const redisReply* r) { return r && r->str ? std::string(r->str, r->len) : std::string(); }

class Conn {
 public:
  explicit Conn(const RedisOptions& o) : o_(o), c_(nullptr, redisFree) {}

  Result<void> open() {
    timeval tv{5, 0};
    c_.reset(redisConnectWithTimeout(o_.host.c_str(), o_.port, tv));
    if (!c_) return redisFail(o_, "cannot allocate a connection");
    if (c_->err) return redisFail(o_, c_->errstr);
    timeval io{120, 0};  // an EXEC of a large delta or a slow server; not a worker, so waiting is fine
    redisSetTimeout(c_.get(), io);
    if (!o_.password.empty())
      if (auto r = run({"AUTH", o_.password}); !r) return tl::unexpected(r.error());
    if (o_.db != 0)
      if (auto r = run({"SELECT", std::to_string(o_.db)}); !r) return tl::unexpected(r.error());
    return {};
  }

  // One command, waiting for its reply; an error reply is an error.
  Result<ReplyPtr> run(std::initializer_list<std::string_view> args) {
    append(args);
    return read();
  }

  void append(std::initializer_list<std::string_view> args) {
    std::vector<std::string_view> v(args);
    appendv(v);
  }
  void appendv(const std::vector<std::string_view>& args) {
    argv_.clear();
    lens_.clear();
    for (auto a : args) {
      argv_.push_back(a.data());
      lens_.push_back(a.size());
    }
    // Formats into hiredis's output buffer at once, so `args` need not outlive the call.
    if (redisAppendCommandArgv(c_.get(), int(argv_.size()), argv_.data(), lens_.data()) == REDIS_OK) ++queued_;
  }

  Result<ReplyPtr> read() {
    void* raw = nullptr;
    if (queued_) --queued_;
    if (redisGetReply(c_.get(), &raw) != REDIS_OK || !raw)
      return redisFail(o_, c_->errstr[0] ? c_->errstr : "connection lost");
    ReplyPtr r(static_cast<redisReply*>(raw), freeReplyObject);
    if (r->type == REDIS_REPLY_ERROR) return redisFail(o_, replyText(r.get()));
    return r;
  }

  // Writes everything appended so far without waiting for a reply.
  Result<void> send() {
    int done = 0;
    while (!done)
      if (redisBufferWrite(c_.get(), &done) != REDIS_OK) return redisFail(o_, c_->errstr[0] ? c_->errstr : "write failed");
    return {};
  }

  // Reads the `n` oldest queued replies; the first error reply is the result.
  Result<void> readN(size_t n) {
    Result<void> out;
    for (; n && queued_; --n)
      if (auto r = read(); !r && out) out = tl::unexpected(r.error());
    return out;
  }

  // Reads every queued reply; the first error reply is the result.
  Result<void> flush() {
    Result<void> out;
    while (queued_) {
      auto r = read();
      if (!r && out) out = tl::unexpected(r.error());
    }
    return out;
  }

  // Appends `args`, reads the replies queued before it (MULTI's +OK, QUEUED), returns its own.
  Result<ReplyPtr> runLast(std::initializer_list<std::string_view> args) {
    append(args);
    Result<void> earlier;
    while (queued_ > 1)
      if (auto r = read(); !r && earlier) earlier = tl::unexpected(r.error());
    auto last = read();
    if (!last) return last;
    if (!earlier) return tl::unexpected(earlier.error());
    return last;
  }

  size_t queued() const { return queued_; }

 private:
  const RedisOptions& o_;
  ContextPtr c_;
  size_t queued_ = 0;
  std::vector<const char*> argv_;
  std::vector<size_t> lens_;
};

Result<int64_t> integerOf(const RedisOptions& o, Result<ReplyPtr> r, std::string_view what) {
  if (!r) return tl::unexpected(r.error());
  if ((*r)->type != REDIS_REPLY_INTEGER) return redisFail(o, std::string(what) + ": expected an integer reply");
  return int64_t((*r)->integer);
}

// The source's live generation, 0 when it has none.
Result<uint64_t> liveGeneration(const RedisOptions& o, Conn& c, const std::string& source) {
  auto r = c.run({"HGET", redis::kGens, source});
  if (!r) return tl::unexpected(r.error());
  if ((*r)->type == REDIS_REPLY_NIL) return uint64_t(0);
  auto g = (*r)->type == REDIS_REPLY_STRING ? parseDecimal(replyText(r->get())) : std::nullopt;
  if (!g) return redisFail(o, "key '" + std::string(redis::kGens) + "' field '" + source + "' is not a generation");
  return *g;
}

// Deletes one generation's fields of a source, batch by batch, inside Redis (a short script per
// batch: no key travels to us and back, and Redis is never busy for more than a few ms at a time).
// SPOP empties the key set as it goes, so an interrupted cleanup resumes where it stopped.
// Readers never see these fields: they are not the source's live generation.
constexpr std::string_view kDropScript =
    "local ks = redis.call('SPOP', KEYS[1], ARGV[2]) "
    "for _, k in ipairs(ks) do redis.call('HDEL', k, ARGV[1]) end "
    "return #ks";

Result<void> dropGeneration(const RedisOptions& o, Conn& c, const std::string& source, uint64_t gen) {
  std::string set = redis::keySetKey(source, gen), field = redis::fieldName(source, gen);
  std::string count = std::to_string(kBatch);
  while (true) {
    auto n = integerOf(o, c.run({"EVAL", kDropScript, "1", set, field, count}), "cleanup script");
    if (!n) return tl::unexpected(n.error());
    if (*n == 0) return {};
  }
}

int64_t nowUnix() { return int64_t(::time(nullptr)); }

}  // namespace

Result<RedisImportSummary> importFeedToRedis(const RedisOptions& o, Format format, const std::string& path,
                                             FeedOptions opts, bool replace) {
  if (!validSourceName(opts.source))
    return fail(ErrKind::Config, Side::Config, "source '" + opts.source + "' is not valid");
  Conn c(o);
  if (auto r = c.open(); !r) return tl::unexpected(r.error());
  auto live = liveGeneration(o, c, opts.source);
  if (!live) return tl::unexpected(live.error());
  bool delta = !replace && *live != 0;  // a delta into a source that does not exist is an import
  uint64_t gen = *live;
  if (!delta) {
    auto g = integerOf(o, c.run({"INCR", redis::kGenCounter}), redis::kGenCounter);
    if (!g) return tl::unexpected(g.error());
    gen = uint64_t(*g);
  }
  const std::string field = redis::fieldName(opts.source, gen), keySet = redis::keySetKey(opts.source, gen);
  const std::string category = opts.category;
  const int score = opts.score;
  const Action action = opts.action;
  std::set<unsigned> lens4, lens6;
  std::vector<std::string> batch;  // rule keys of the current batch, for one SADD to the key set
  Result<void> writeErr;
  size_t inFlight = 0;  // replies of the previous batch, read after the next one is sent
  auto flushBatch = [&]() {
    if (!batch.empty()) {
      std::vector<std::string_view> args{"SADD", keySet};
      for (const auto& k : batch) args.push_back(k);
      c.appendv(args);
      batch.clear();
    }
    // Batch k goes out, then batch k-1's replies are read: Redis works on one batch while we
    // parse the next. (A delta runs inside MULTI: its replies are QUEUED.)
    size_t thisBatch = c.queued() - inFlight;
    if (auto f = c.send(); !f && writeErr) writeErr = f;
    if (auto f = c.readN(inFlight); !f && writeErr) writeErr = f;
    inFlight = thisBatch;
  };
  if (delta)
    if (auto r = c.run({"MULTI"}); !r) return tl::unexpected(r.error());
  opts.sink = [&](FeedEntry&& e) {
    if (!writeErr || e.key.empty() || e.key.size() > UINT16_MAX) return;
    std::string rk = redis::ruleKey(e.kind, e.key);
    // HSETNX: the first of duplicate entries wins, as in the embedded store.
    c.append({"HSETNX", rk, field,
              redis::encodeEntry(e.category.empty() ? std::string_view(category) : std::string_view(e.category),
                                 e.score < 0 ? score : e.score, action, e.added, e.expires, e.reference)});
    if (e.kind == RuleKind::Cidr)
      if (auto cidr = net::parseCidr(e.key)) (cidr->base.family() == AF_INET ? lens4 : lens6).insert(cidr->prefix);
    batch.push_back(std::move(rk));
    if (batch.size() >= kBatch) flushBatch();
  };
  auto feed = parseFeedPath(format, path, opts);
  if (feed && writeErr) flushBatch();
  if (!feed || !writeErr) {
    Error err = feed ? writeErr.error() : feed.error();
    if (delta) {
      c.flush();
      c.run({"DISCARD"});
    } else {
      c.flush();
      dropGeneration(o, c, opts.source, gen);  // best effort: staged fields are invisible anyway
    }
    return tl::unexpected(err);
  }
  for (unsigned p : lens4) c.append({"SADD", redis::kCidrLens4, std::to_string(p)});
  for (unsigned p : lens6) c.append({"SADD", redis::kCidrLens6, std::to_string(p)});
  if (auto f = c.flush(); !f) return tl::unexpected(f.error());
  if (!delta) {
    // The switch: one MULTI/EXEC of three small commands; readers go from the old generation to
    // the new one between two of their own transactions.
    c.append({"MULTI"});
    c.append({"HSET", redis::kGens, opts.source, std::to_string(gen)});
    c.append({"SADD", redis::kSources, opts.source});
  }
  c.append({"SCARD", keySet});
  auto exec = c.runLast({"EXEC"});
  if (!exec) {
    if (!delta) dropGeneration(o, c, opts.source, gen);
    return tl::unexpected(exec.error());
  }
  const redisReply* x = exec->get();
  if (x->type != REDIS_REPLY_ARRAY || x->elements == 0 || x->element[x->elements - 1]->type != REDIS_REPLY_INTEGER)
    return redisFail(o, "unexpected EXEC reply while switching source '" + opts.source + "'");
  RedisImportSummary out;
  out.distinct = size_t(x->element[x->elements - 1]->integer);
  out.generation = gen;
  if (auto r = c.run({"HSET", redis::metaKey(opts.source), "entries", std::to_string(out.distinct), "updated",
                      std::to_string(nowUnix()), "action", actionName(action), "category", category,
                      "generation", std::to_string(gen)});
      !r)
    return tl::unexpected(r.error());
  if (auto r = c.run({"PUBLISH", redis::kChannel, opts.source}); !r) return tl::unexpected(r.error());
  // The new set is live whatever happens now: a failed cleanup only leaves invisible fields (and
  // their key set, so `SPOP`-based cleanup can be rerun by hand); it is reported, not fatal.
  if (!delta && *live != 0)
    if (auto d = dropGeneration(o, c, opts.source, *live); !d)
      out.cleanupError = "old generation " + std::to_string(*live) + " not fully deleted: " + d.error().detail;
  out.feed = std::move(*feed);
  return out;
}

Result<void> removeSourceFromRedis(const RedisOptions& o, const std::string& source) {
  if (!validSourceName(source)) return fail(ErrKind::Config, Side::Config, "source '" + source + "' is not valid");
  Conn c(o);
  if (auto r = c.open(); !r) return r;
  auto live = liveGeneration(o, c, source);
  if (!live) return tl::unexpected(live.error());
  if (*live == 0) return fail(ErrKind::Config, Side::Config, "no source '" + source + "'");
  c.append({"MULTI"});
  c.append({"HDEL", redis::kGens, source});
  c.append({"SREM", redis::kSources, source});
  c.append({"DEL", redis::metaKey(source)});
  auto exec = c.runLast({"EXEC"});
  if (!exec) return tl::unexpected(exec.error());
  if (auto r = c.run({"PUBLISH", redis::kChannel, source}); !r) return tl::unexpected(r.error());
  return dropGeneration(o, c, source, *live);
}

Result<std::vector<SourceInfo>> redisSources(const RedisOptions& o) {
  Conn c(o);
  if (auto r = c.open(); !r) return tl::unexpected(r.error());
  auto g = c.run({"HGETALL", redis::kGens});
  if (!g) return tl::unexpected(g.error());
  redis::Generations gens;
  std::string err;
  if (!redis::parseGenerations(g->get(), gens, err)) return redisFail(o, err);
  std::vector<SourceInfo> out;
  for (const auto& kv : gens) {
    SourceInfo info{kv.first, 0, 0};
    auto e = c.run({"HMGET", redis::metaKey(kv.first), "entries", "updated"});
    if (!e) return tl::unexpected(e.error());
    const redisReply* a = e->get();
    if (a->type == REDIS_REPLY_ARRAY && a->elements == 2) {
      info.entries = size_t(parseDecimal(replyText(a->element[0])).value_or(0));
      info.updated = int64_t(parseDecimal(replyText(a->element[1])).value_or(0));
    }
    out.push_back(std::move(info));
  }
  return out;
}

Result<std::vector<Match>> lookupRedisSync(const RedisOptions& o, const LookupKeys& keys) {
  Conn c(o);
  if (auto r = c.open(); !r) return tl::unexpected(r.error());
  std::vector<unsigned> lens4, lens6;
  std::string err;
  auto l4 = c.run({"SMEMBERS", redis::kCidrLens4});
  if (!l4) return tl::unexpected(l4.error());
  if (!redis::parseLens(l4->get(), redis::kCidrLens4, 32, lens4, err)) return redisFail(o, err);
  auto l6 = c.run({"SMEMBERS", redis::kCidrLens6});
  if (!l6) return tl::unexpected(l6.error());
  if (!redis::parseLens(l6->get(), redis::kCidrLens6, 128, lens6, err)) return redisFail(o, err);
  auto refs = redis::lookupKeys(keys, lens4, lens6);
  c.append({"MULTI"});
  c.append({"HGETALL", redis::kGens});
  for (const auto& k : refs) c.append({"HGETALL", k.redisKey});
  auto exec = c.runLast({"EXEC"});
  if (!exec) return tl::unexpected(exec.error());
  const redisReply* x = exec->get();
  if (x->type != REDIS_REPLY_ARRAY || x->elements != refs.size() + 1) return redisFail(o, "unexpected EXEC reply");
  redis::Generations gens;
  if (!redis::parseGenerations(x->element[0], gens, err)) return redisFail(o, err);
  std::vector<Match> out;
  std::vector<redis::RawField> fields;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (!redis::parseRuleHash(x->element[i + 1], refs[i], fields, err)) return redisFail(o, err);
    redis::liveMatches(fields, gens, out);
  }
  return out;
}

}  // namespace sekisho::reputation
