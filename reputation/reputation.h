// reputation: what Sekisho knows about hosts, URLs and addresses, and what it does about them.
//   verdict.h         Action, RuleKind, FeedEntry, Match (category, score, source, rule id, provenance)
//   normalize.h       normalizeHost / normalizeUrl: one key per meaning, clear refusals
//   feeds.h           parseFeed / parseFeedPath for domains, hosts, urlhaus, threatfox, cidr, squidguard
//   embedded_store.h  EmbeddedStore: per-source indexes, atomic replace or delta, persisted on disk
//   policy.h          decide(): facts + matches + sensitivity + category actions -> Decision
//   redis_schema.h    RedisOptions, parseRedisUrl, the Redis key layout and entry encoding
//   redis_import.h    importFeedToRedis (replace or delta), removeSourceFromRedis, lookupRedisSync (sync)
//   redis_store.h     RedisStore: per-worker async reader (libevent), cache, invalidation, deadline
//   fetch.h           fetchToTempFile: download a feed by http(s) URL (libcurl, CLI only)
//   cli.h             feedImportCommand / lookupCommand for `sekisho feed import` and `sekisho lookup`
// All but the Redis reader are pure or blocking helpers; the proxy wiring builds on these.
#pragma once

#include "reputation/cli.h"
#include "reputation/embedded_store.h"
#include "reputation/feeds.h"
#include "reputation/fetch.h"
#include "reputation/normalize.h"
#include "reputation/policy.h"
#include "reputation/redis_import.h"
#include "reputation/redis_schema.h"
#include "reputation/redis_store.h"
#include "reputation/verdict.h"
