// Writing feeds into the Redis store, and reading it synchronously, for the CLI and tools (sync
// hiredis: never call these on a proxy worker's event loop; workers use RedisStore).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "proxy/base/result.h"
#include "reputation/embedded_store.h"
#include "reputation/feeds.h"
#include "reputation/redis_schema.h"

namespace sekisho::reputation {

struct RedisImportSummary {
  FeedResult feed;        // counts and line errors; no entries (they were streamed to Redis)
  size_t distinct = 0;    // distinct rules now in the source
  uint64_t generation = 0;  // the source's live generation after the import
  std::string cleanupError;  // non-empty: the import succeeded but old fields remain in Redis
};

// Streams a feed file (or squidGuard directory) into Redis, thousands of commands per round trip.
// replace = true: the entries are written under a new generation that readers ignore, then one
// MULTI/EXEC makes it the source's live generation (readers switch from the whole old set to the
// whole new set at once), the old generation's fields are deleted, and the change is PUBLISHed.
// replace = false: a delta; the entries are added to the live set in one MULTI/EXEC (first one
// wins on a duplicate, as in the embedded store).
Result<RedisImportSummary> importFeedToRedis(const RedisOptions& redis, Format format, const std::string& path,
                                             FeedOptions opts, bool replace = true);
// Makes the source invisible at once, deletes its fields and metadata, and PUBLISHes the change.
Result<void> removeSourceFromRedis(const RedisOptions& redis, const std::string& source);
// Sources with a live generation, with their entry counts and update times.
Result<std::vector<SourceInfo>> redisSources(const RedisOptions& redis);
// A blocking lookup (two round trips), with the matches RedisStore would give.
Result<std::vector<Match>> lookupRedisSync(const RedisOptions& redis, const LookupKeys& keys);

}  // namespace sekisho::reputation
