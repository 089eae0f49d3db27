#include "proxy/server/judge.h"

#include "proxy/base/log.h"
#include "proxy/server/worker.h"
#include "reputation/normalize.h"

namespace sekisho::server {

bool Judge::enabled() const { return w_->reputation() || w_->redis(); }

void Judge::cancel() {
  if (ticket_ && w_->redis()) w_->redis()->cancel(ticket_);
  ticket_ = 0;
  resume_.reset();
}

bool Judge::expire() {
  if (ticket_ && w_->redis()) w_->redis()->cancel(ticket_);
  auto resume = std::move(resume_);
  if (!resume) return false;
  reputation::StoreAnswer late;
  late.ok = false;
  late.error = "no answer in time";
  (*resume)(std::move(late));
  return true;
}

// The local lists first (always synchronous); with a Redis store its answer joins them, from the
// worker's cache now or later by ticket. A late answer for a connection that is gone, or for a
// lookup it no longer waits for, finds no Judge with that ticket and is dropped.
bool Judge::lookup(const reputation::LookupKeys& keys, reputation::Facts facts, std::function<void(Verdict)> done) {
  std::vector<reputation::Match> local;
  if (const auto* store = w_->reputation()) local = store->lookup(keys);
  Worker* w = w_;
  auto finish = [w](reputation::Facts& f, std::vector<reputation::Match>& matches, bool ok, std::string error) {
    Verdict v;
    v.storeOk = ok;
    v.error = std::move(error);
    if (!matches.empty()) v.decision = reputation::decide(f, matches, w->policy());
    return v;
  };
  reputation::RedisStore* redis = w_->redis();
  if (!redis) {
    done(finish(facts, local, true, ""));
    return true;
  }
  uint64_t ticket = w_->newTicket();
  uint64_t id = connId_;
  auto answered = std::make_shared<std::function<void(reputation::StoreAnswer)>>();
  *answered = [this, facts = std::move(facts), local = std::move(local), done = std::move(done),
               finish](reputation::StoreAnswer a) mutable {
    ticket_ = 0;
    resume_.reset();  // (this lambda lives on in the caller's copy of the pointer)
    for (auto& m : a.matches) local.push_back(std::move(m));
    done(finish(facts, local, a.ok, std::move(a.error)));
  };
  auto now = redis->lookup(keys, ticket, [w, id, ticket, answered](reputation::StoreAnswer a) {
    Judge* j = w->findJudge(id);
    if (j && j->ticket_ == ticket) (*answered)(std::move(a));
  });
  if (now) {
    (*answered)(std::move(*now));
    return true;
  }
  ticket_ = ticket;
  resume_ = answered;
  return false;
}

Judge::Ruling Judge::rule(Verdict v, std::string_view client) const {
  const auto& cfg = *w_->config();
  if (!v.storeOk) {
    w_->metrics().reputationErrors.fetch_add(1, std::memory_order_relaxed);
    if (cfg.reputation.onError == config::OnError::Closed)
      return {Outcome::Unavailable, "the reputation store cannot answer (" + v.error + ")"};
    SLOG_DEBUG("reputation store: %s (on_error: open, request allowed)", v.error.c_str());
  }
  if (!v.decision) return {};
  reputation::Decision& d = *v.decision;
  if (d.outcome == reputation::Decision::Outcome::Log)
    SLOG_INFO("reputation (log only): %.*s %s", int(client.size()), client.data(), d.reason.c_str());
  if (d.outcome != reputation::Decision::Outcome::Block) return {};
  return {Outcome::Block, std::move(d.reason)};
}

bool Judge::judgeRequest(const Query& q, std::function<void(Ruling)> done) {
  if (!enabled()) {
    done({});
    return true;
  }
  reputation::Facts facts;
  facts.client = std::string(q.client);
  facts.now = q.now;
  reputation::LookupKeys keys;
  std::optional<reputation::NormalUrl> url;
  std::optional<reputation::NormalHost> host;
  if (q.addrs) {
    keys.ips = *q.addrs;
    facts.ips = *q.addrs;
  } else {
    if (!q.url.empty())
      if (auto u = reputation::normalizeUrl(q.url)) url = std::move(*u);
    auto h = reputation::normalizeHost(q.host);
    if (!h) {
      // A name the HTTP parser took but the reputation keys cannot express: on_error decides.
      if (w_->config()->reputation.onError == config::OnError::Closed) {
        done({Outcome::Unchecked, "the host name cannot be checked (" + h.error().detail + ")"});
        return true;
      }
      done({});
      return true;
    }
    host = std::move(*h);
    keys.url = url ? &*url : nullptr;
    keys.host = &*host;
    facts.url = url ? url->url : std::string();
    facts.host = host->host;
  }
  std::string client(q.client);
  return lookup(keys, std::move(facts), [this, done = std::move(done), client](Verdict v) { done(rule(std::move(v), client)); });
}

bool Judge::judgeSni(const std::string& sni, std::string_view client, int64_t now, std::function<void()> resume) {
  if (sni_ == SniState::Done) return true;
  if (sni_ == SniState::Pending) return false;
  auto host = reputation::normalizeHost(sni);
  if (!enabled() || !host) {
    sni_ = SniState::Done;
    return true;
  }
  reputation::LookupKeys keys;
  keys.host = &*host;
  reputation::Facts facts;
  facts.host = host->host;
  facts.client = std::string(client);
  facts.now = now;
  sni_ = SniState::Pending;
  auto sync = std::make_shared<bool>(true);
  bool answered = lookup(keys, std::move(facts), [this, sync, resume = std::move(resume)](Verdict v) {
    sni_ = SniState::Done;
    if (!v.storeOk && w_->config()->reputation.onError == config::OnError::Closed) {
      w_->metrics().reputationErrors.fetch_add(1, std::memory_order_relaxed);
      reputation::Decision d;
      d.outcome = reputation::Decision::Outcome::Block;
      d.reason = "the reputation store cannot answer (" + v.error + ")";
      sniDecision_ = std::move(d);
    } else {
      sniDecision_ = std::move(v.decision);
    }
    if (!*sync) resume();
  });
  *sync = false;
  return answered;
}

}  // namespace sekisho::server
