// RedisStore: the per-worker reader of the Redis reputation store. Lives on one libevent
// event_base thread and never blocks it: hiredis async through its libevent adapter, one
// lookup's HGETALLs pipelined in one MULTI/EXEC (a consistent snapshot), many lookups in flight
// on one connection, a bounded LRU cache with positive and negative entries, a second connection
// SUBSCRIBEd to the invalidation channel, a deadline per lookup, and reconnect with backoff.
// The schema is in redis_schema.h; writers are in redis_import.h.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reputation/embedded_store.h"
#include "reputation/redis_schema.h"
#include "reputation/verdict.h"

struct event_base;

namespace sekisho::reputation {

// ok = false: Redis was down, slow (error "timeout") or answered something malformed; the caller
// applies reputation.on_error. `error` then says which and, for a bad reply, names the key.
struct StoreAnswer {
  bool ok = true;
  std::vector<Match> matches;
  std::string error;
};

class RedisStore {
 public:
  using Callback = std::function<void(StoreAnswer)>;
  enum class State { Connecting, Up, Down };
  struct Stats {
    uint64_t lookups = 0, cacheHits = 0, redisQueries = 0, errors = 0, timeouts = 0, invalidations = 0;
  };

  // Starts connecting (asynchronously) and returns at once. `base` must outlive the store.
  static std::unique_ptr<RedisStore> create(event_base* base, RedisOptions opts);
  // Disconnects; pending callbacks are dropped (never called). Safe from inside a callback.
  ~RedisStore();
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  // Answers from the cache synchronously when every key needed is cached (returns the answer);
  // otherwise returns nullopt and calls `cb` exactly once later (never from inside lookup()),
  // after at most opts.deadline. `ticket` names the lookup for cancel(); a ticket still pending
  // is cancelled by reuse.
  std::optional<StoreAnswer> lookup(const LookupKeys& keys, uint64_t ticket, Callback cb);
  void cancel(uint64_t ticket);  // cb will not be called

  State state() const;
  // "up", "connecting", "down: Connection refused (retry in 2 s)"; notes an invalidation
  // channel that is down (the cache is off meanwhile).
  std::string stateText() const;
  Stats stats() const;
  size_t pendingLookups() const;
  // Called on the loop thread whenever state() changes, with stateText(), for the log. The
  // listener must not destroy the store.
  void setStateListener(std::function<void(State, const std::string&)> fn);

  struct Impl;

 private:
  explicit RedisStore(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

std::string_view stateName(RedisStore::State s) noexcept;  // "connecting", "up", "down"

}  // namespace sekisho::reputation
