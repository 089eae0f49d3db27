#include "reputation/redis_schema.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "proxy/base/strings.h"
#include "reputation/public_suffix.h"

namespace sekisho::reputation {

bool isRedisUrl(std::string_view store) noexcept { return store.starts_with("redis://"); }

Result<RedisOptions> parseRedisUrl(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return fail(ErrKind::Config, Side::Config, "redis URL '" + std::string(url.substr(0, 200)) + "': " + why);
  };
  if (!isRedisUrl(url)) return bad("must start with redis:// (rediss:// and unix sockets are not supported)");
  std::string_view rest = url.substr(8);
  RedisOptions o;
  std::string_view auth, hostport, db;
  size_t slash = rest.find('/');
  hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) db = rest.substr(slash + 1);
  if (size_t at = hostport.rfind('@'); at != std::string_view::npos) {
    auth = hostport.substr(0, at);
    hostport = hostport.substr(at + 1);
    // redis://:password@host; a user name (ACL) before the colon is not supported.
    if (!auth.starts_with(':')) return bad("credentials must be ':password@' (ACL user names are not supported)");
    o.password = std::string(auth.substr(1));
    if (o.password.empty()) return bad("empty password");
  }
  if (hostport.empty()) return bad("no host");
  std::string_view host = hostport, port;
  if (hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return bad("unterminated '[' in host");
    host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after ']'");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else if (size_t colon = hostport.find(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    if (port.empty()) return bad("empty port");
  }
  if (host.empty()) return bad("no host");
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_'))
      return bad("host has a character that is not allowed");
  o.host = std::string(host);
  if (!port.empty()) {
    auto p = parseDecimal(port, 65535);
    if (!p || *p == 0) return bad("port must be 1-65535");
    o.port = uint16_t(*p);
  }
  if (!db.empty()) {
    // Same bound as the config loader; SELECT refuses a number over the server's `databases`.
    auto d = parseDecimal(db, 65535);
    if (!d) return bad("database must be a number 0-65535");
    o.db = int(*d);
  }
  return o;
}

namespace redis {

std::string ruleKey(RuleKind kind, std::string_view key) {
  std::string k = "sekisho:r:";
  k += kindName(kind);
  k += ':';
  k += key;
  return k;
}
std::string metaKey(std::string_view source) { return "sekisho:src:" + std::string(source); }
std::string keySetKey(std::string_view source, uint64_t gen) {
  return "sekisho:keys:" + std::string(source) + ":" + std::to_string(gen);
}
std::string fieldName(std::string_view source, uint64_t gen) {
  return std::string(source) + "@" + std::to_string(gen);
}

bool parseFieldName(std::string_view f, std::string& source, uint64_t& gen) {
  size_t at = f.rfind('@');
  if (at == std::string_view::npos) return false;
  std::string_view s = f.substr(0, at);
  if (!validSourceName(s)) return false;
  auto g = parseDecimal(f.substr(at + 1));
  if (!g || *g == 0) return false;
  source = std::string(s);
  gen = *g;
  return true;
}

std::string encodeEntry(std::string_view category, int score, Action action, int64_t added, int64_t expires,
                        std::string_view reference) {
  // Same clamping as the embedded store (uint32 seconds, score 0-100, reference <= 1024 bytes),
  // so both stores give identical matches.
  auto clampTime = [](int64_t t) { return std::max<int64_t>(0, std::min<int64_t>(t, UINT32_MAX)); };
  std::string v = "1\t";
  v += category;
  v += '\t';
  v += std::to_string(std::clamp(score, 0, 100));
  v += '\t';
  v += actionName(action);
  v += '\t';
  v += std::to_string(clampTime(added));
  v += '\t';
  v += std::to_string(clampTime(expires));
  v += '\t';
  size_t start = v.size();
  v += reference.substr(0, 1024);
  for (size_t i = start; i < v.size(); ++i)
    if (v[i] == '\t' || v[i] == '\r' || v[i] == '\n') v[i] = ' ';
  return v;
}

bool decodeEntry(std::string_view v, Match& m) {
  std::string_view cols[7];
  for (int i = 0; i < 6; ++i) {
    size_t tab = v.find('\t');
    if (tab == std::string_view::npos) return false;
    cols[i] = v.substr(0, tab);
    v.remove_prefix(tab + 1);
  }
  cols[6] = v;
  if (cols[0] != "1" || !validCategory(cols[1]) || cols[6].size() > 1024) return false;
  if (cols[6].find_first_of("\t\r\n") != std::string_view::npos) return false;
  auto score = parseDecimal(cols[2], 100);
  auto added = parseDecimal(cols[4], UINT32_MAX);
  auto expires = parseDecimal(cols[5], UINT32_MAX);
  Action action;
  if (!score || !added || !expires || !parseAction(cols[3], action)) return false;
  m.category = std::string(cols[1]);
  m.score = int(*score);
  m.action = action;
  m.added = int64_t(*added);
  m.expires = int64_t(*expires);
  m.reference = std::string(cols[6]);
  return true;
}

namespace {

std::string maskedCidr(const net::SocketAddr& a, unsigned prefix) {
  net::SocketAddr m = a;
  uint8_t* b;
  unsigned bytes;
  if (a.family() == AF_INET) {
    b = reinterpret_cast<uint8_t*>(&reinterpret_cast<sockaddr_in*>(&m.ss)->sin_addr);
    bytes = 4;
  } else {
    b = reinterpret_cast<sockaddr_in6*>(&m.ss)->sin6_addr.s6_addr;
    bytes = 16;
  }
  for (unsigned i = 0; i < bytes; ++i) {
    unsigned bitStart = i * 8;
    if (bitStart >= prefix)
      b[i] = 0;
    else if (prefix - bitStart < 8)
      b[i] &= uint8_t(0xFF << (8 - (prefix - bitStart)));
  }
  return m.ipString() + "/" + std::to_string(prefix);
}

}  // namespace

std::vector<KeyRef> lookupKeys(const LookupKeys& keys, const std::vector<unsigned>& v4Lens,
                               const std::vector<unsigned>& v6Lens) {
  std::vector<KeyRef> out;
  auto add = [&](RuleKind kind, std::string_view key) {
    out.push_back({kind, std::string(key), ruleKey(kind, key)});
  };
  const NormalHost* host = keys.host ? keys.host : (keys.url ? &keys.url->host : nullptr);
  if (keys.url) {
    add(RuleKind::Url, keys.url->url);
    std::string_view u = keys.url->url;
    u.remove_prefix(std::min(u.size(), keys.url->scheme.size() + 3));
    std::string_view hp = u.substr(0, u.find('?'));
    size_t slash = hp.find('/');
    while (slash != std::string_view::npos) {
      if (slash + 1 < hp.size()) add(RuleKind::UrlPrefix, hp.substr(0, slash + 1));
      size_t next = hp.find('/', slash + 1);
      if (next == std::string_view::npos) break;
      add(RuleKind::UrlPrefix, hp.substr(0, next));
      slash = next;
    }
    add(RuleKind::UrlPrefix, hp);
  }
  std::vector<net::SocketAddr> addrs;
  if (host && host->kind == HostKind::Name) {
    std::string_view h = host->host;
    add(RuleKind::Domain, h);
    size_t regOff = registrableOffset(host->host);
    if (regOff != std::string::npos) {
      size_t pos = 0;
      while (pos < regOff) {
        size_t dot = h.find('.', pos);
        if (dot == std::string_view::npos || dot + 1 > regOff) break;
        pos = dot + 1;
        add(RuleKind::Domain, h.substr(pos));
      }
    }
  } else if (host) {
    if (auto a = net::parseIp(host->host)) addrs.push_back(*a);
  }
  for (const auto& a : keys.ips) addrs.push_back(a);
  for (const auto& a : addrs) {
    if (a.family() != AF_INET && a.family() != AF_INET6) continue;
    add(RuleKind::Ip, a.ipString());
    for (unsigned p : a.family() == AF_INET ? v4Lens : v6Lens) add(RuleKind::Cidr, maskedCidr(a, p));
  }
  return out;
}

bool parseRuleHash(const redisReply* r, const KeyRef& key, std::vector<RawField>& out, std::string& err) {
  out.clear();
  auto bad = [&](const std::string& why) {
    err = "redis key '" + key.redisKey.substr(0, 300) + "': " + why;
    return false;
  };
  if (!r) return bad("no reply");
  if (r->type == REDIS_REPLY_NIL) return true;
  if (r->type == REDIS_REPLY_ERROR) return bad(std::string(r->str, std::min<size_t>(r->len, 200)));
  if (r->type != REDIS_REPLY_ARRAY) return bad("expected a hash, got a reply of type " + std::to_string(r->type));
  if (r->elements % 2) return bad("hash reply has an odd number of elements");
  if (r->elements > 2 * 4096) return bad("hash has more than 4096 fields");
  for (size_t i = 0; i < r->elements; i += 2) {
    const redisReply* f = r->element[i];
    const redisReply* v = r->element[i + 1];
    if (!f || !v || f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
      return bad("hash field or value is not a string");
    RawField rf;
    if (!parseFieldName({f->str, f->len}, rf.source, rf.gen))
      return bad("field '" + std::string(f->str, std::min<size_t>(f->len, 80)) + "' is not <source>@<generation>");
    if (!decodeEntry({v->str, v->len}, rf.match))
      return bad("value of field '" + std::string(f->str, std::min<size_t>(f->len, 80)) + "' is not a valid entry");
    rf.match.kind = key.kind;
    rf.match.key = key.key;
    rf.match.source = rf.source;
    out.push_back(std::move(rf));
  }
  // Sources in name order, as the embedded store reports them.
  std::sort(out.begin(), out.end(), [](const RawField& a, const RawField& b) { return a.source < b.source; });
  return true;
}

bool parseGenerations(const redisReply* r, Generations& out, std::string& err) {
  out.clear();
  auto bad = [&](const std::string& why) {
    err = "redis key '" + std::string(kGens) + "': " + why;
    return false;
  };
  if (!r) return bad("no reply");
  if (r->type == REDIS_REPLY_NIL) return true;
  if (r->type == REDIS_REPLY_ERROR) return bad(std::string(r->str, std::min<size_t>(r->len, 200)));
  if (r->type != REDIS_REPLY_ARRAY) return bad("expected a hash, got a reply of type " + std::to_string(r->type));
  if (r->elements % 2) return bad("hash reply has an odd number of elements");
  for (size_t i = 0; i < r->elements; i += 2) {
    const redisReply* f = r->element[i];
    const redisReply* v = r->element[i + 1];
    if (!f || !v || f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
      return bad("hash field or value is not a string");
    std::string_view name(f->str, f->len);
    auto g = parseDecimal({v->str, v->len});
    if (!validSourceName(name) || !g || *g == 0)
      return bad("entry '" + std::string(name.substr(0, 80)) + "' is not <source> -> <generation>");
    out.emplace(std::string(name), *g);
  }
  return true;
}

bool parseLens(const redisReply* r, std::string_view what, unsigned maxLen, std::vector<unsigned>& out,
               std::string& err) {
  out.clear();
  auto bad = [&](const std::string& why) {
    err = "redis key '" + std::string(what) + "': " + why;
    return false;
  };
  if (!r) return bad("no reply");
  if (r->type == REDIS_REPLY_NIL) return true;
  if (r->type == REDIS_REPLY_ERROR) return bad(std::string(r->str, std::min<size_t>(r->len, 200)));
  if (r->type != REDIS_REPLY_ARRAY) return bad("expected a set, got a reply of type " + std::to_string(r->type));
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (!e || e->type != REDIS_REPLY_STRING) return bad("set member is not a string");
    auto p = parseDecimal({e->str, e->len}, maxLen);
    if (!p) return bad("member '" + std::string(e->str, std::min<size_t>(e->len, 20)) + "' is not a prefix length");
    out.push_back(unsigned(*p));
  }
  std::sort(out.rbegin(), out.rend());  // longest first, like the embedded store
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return true;
}

void liveMatches(const std::vector<RawField>& fields, const Generations& gens, std::vector<Match>& out) {
  for (const auto& f : fields) {
    auto it = gens.find(f.source);
    if (it != gens.end() && it->second == f.gen) out.push_back(f.match);
  }
}

}  // namespace redis
}  // namespace sekisho::reputation
