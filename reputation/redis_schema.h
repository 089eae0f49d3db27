// The Redis layout shared by the writer (redis_import.h), the per-worker reader (redis_store.h)
// and the CLI: key names, the compact entry encoding, defensive reply parsing, and the list of
// Redis keys one lookup needs (the same candidates the embedded store tries). See
// docs/REPUTATION.md "Redis store" for the schema and how a replace stays atomic.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/result.h"
#include "reputation/embedded_store.h"
#include "reputation/verdict.h"

struct redisReply;

namespace sekisho::reputation {

// Where the store lives and how the reader behaves. Parsed from `reputation.store`.
struct RedisOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int db = 0;
  std::string password;
  size_t cacheEntries = 100000;  // per worker; 0 turns the cache off
  std::chrono::milliseconds cacheTtl{60000}, negativeTtl{10000}, deadline{50};
};

// redis://[:password@]host[:port][/db] (db 0-65535); host may be [v6]. Anything else is refused
// with a reason.
Result<RedisOptions> parseRedisUrl(std::string_view url);
bool isRedisUrl(std::string_view store) noexcept;  // starts with "redis://"

namespace redis {

inline constexpr std::string_view kChannel = "sekisho:invalidate";  // PUBLISH <source>
inline constexpr std::string_view kGens = "sekisho:gens";           // HASH source -> live generation
inline constexpr std::string_view kGenCounter = "sekisho:gen";      // INCR: generation numbers
inline constexpr std::string_view kSources = "sekisho:sources";     // SET of source names
inline constexpr std::string_view kCidrLens4 = "sekisho:cidrlen:4";  // SET of IPv4 prefix lengths
inline constexpr std::string_view kCidrLens6 = "sekisho:cidrlen:6";  // SET of IPv6 prefix lengths

std::string ruleKey(RuleKind kind, std::string_view key);  // "sekisho:r:domain:evil.example"
std::string metaKey(std::string_view source);              // "sekisho:src:<source>" HASH
std::string keySetKey(std::string_view source, uint64_t gen);  // "sekisho:keys:<source>:<gen>" SET
std::string fieldName(std::string_view source, uint64_t gen);  // "<source>@<gen>"
bool parseFieldName(std::string_view f, std::string& source, uint64_t& gen);

// "1\t<category>\t<score>\t<action>\t<added>\t<expires>\t<reference>": reference last, so it is
// the only free-text column; tabs and newlines in it become spaces.
std::string encodeEntry(std::string_view category, int score, Action action, int64_t added, int64_t expires,
                        std::string_view reference);
// Fills category, score, action, added, expires, reference; false on anything malformed.
bool decodeEntry(std::string_view v, Match& m);

// One Redis key a lookup reads, with the rule kind and key it stands for.
struct KeyRef {
  RuleKind kind;
  std::string key;
  std::string redisKey;
};
// The candidates, in the embedded store's order: URL, host+path prefixes, host and parents down
// to the registrable domain, each IP literal, then each IP masked to every prefix length in use.
std::vector<KeyRef> lookupKeys(const LookupKeys& keys, const std::vector<unsigned>& v4Lens,
                               const std::vector<unsigned>& v6Lens);

// One decoded field of a rule hash: which source and generation wrote it, and the rule.
struct RawField {
  std::string source;
  uint64_t gen = 0;
  Match match;
};
using Generations = std::map<std::string, uint64_t, std::less<>>;

// Defensive reply parsers: a reply of the wrong type or shape gives false and a message naming
// `what` (the Redis key), never a crash. A nil/empty reply is an empty result.
bool parseRuleHash(const redisReply* r, const KeyRef& key, std::vector<RawField>& out, std::string& err);
bool parseGenerations(const redisReply* r, Generations& out, std::string& err);
bool parseLens(const redisReply* r, std::string_view what, unsigned maxLen, std::vector<unsigned>& out,
               std::string& err);

// The matches a key's fields give under the live generations (fields of other generations are
// staged or stale and invisible).
void liveMatches(const std::vector<RawField>& fields, const Generations& gens, std::vector<Match>& out);

}  // namespace redis
}  // namespace sekisho::reputation
