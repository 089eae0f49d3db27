// reputation: what Sekisho knows about hosts, URLs and addresses, and what it does about them.
//   verdict.h         Action, RuleKind, FeedEntry, Match (category, score, source, rule id, provenance)
//   normalize.h       normalizeHost / normalizeUrl: one key per meaning, clear refusals
//   feeds.h           parseFeed / parseFeedPath for domains, hosts, urlhaus, threatfox, cidr, squidguard
//   embedded_store.h  EmbeddedStore: per-source indexes, atomic replace or delta, persisted on disk
//   policy.h          decide(): facts + matches + sensitivity + category actions -> Decision
//   cli.h             feedImportCommand / lookupCommand for `sekisho feed import` and `sekisho lookup`
// Pure and in-process; the Redis store and the proxy wiring build on these.
#pragma once

#include "reputation/cli.h"
#include "reputation/embedded_store.h"
#include "reputation/feeds.h"
#include "reputation/normalize.h"
#include "reputation/policy.h"
#include "reputation/verdict.h"
