#include "reputation/feeds.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <sstream>

#include "proxy/base/strings.h"
#include "proxy/net/address.h"
#include "reputation/normalize.h"
#include "reputation/public_suffix.h"

namespace sekisho::reputation {

namespace {

constexpr size_t kProgressEvery = 1 << 16;  // lines between progress callbacks

enum class LineOutcome : uint8_t { Entry, Skip, Bad };

struct LineResult {
  LineOutcome outcome = LineOutcome::Skip;
  std::string reason;
};

LineResult bad(std::string reason) { return {LineOutcome::Bad, std::move(reason)}; }
LineResult skip() { return {LineOutcome::Skip, {}}; }
LineResult ok() { return {LineOutcome::Entry, {}}; }

// Where a line parser's entries go: the result's vector, or the caller's sink (an index being
// built), so a million-line import need not hold every parsed entry at once.
struct Out {
  FeedResult& res;
  const FeedOptions& opts;
  int64_t now;
  void emit(FeedEntry&& e) {
    if (e.added == 0) e.added = now;
    ++res.accepted;
    if (opts.sink)
      opts.sink(std::move(e));
    else
      res.entries.push_back(std::move(e));
  }
};

std::string_view trimAll(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// "2024-06-26 09:43:05" (UTC) -> unix seconds; 0 when it does not parse.
int64_t parseUtc(std::string_view s) {
  if (s.size() < 19) return 0;
  std::string t(s.substr(0, 19));
  std::tm tm{};
  if (!strptime(t.c_str(), "%Y-%m-%d %H:%M:%S", &tm)) return 0;
  return int64_t(timegm(&tm));
}

// RFC 4180 fields, plus the ThreatFox habit of a space after each separating comma.
bool splitCsv(std::string_view line, std::vector<std::string>& out, std::string& why) {
  out.clear();
  size_t i = 0;
  while (true) {
    while (i < line.size() && line[i] == ' ') ++i;
    std::string field;
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        field += line[i++];
      }
      if (!closed) {
        why = "unterminated quoted field " + std::to_string(out.size() + 1);
        return false;
      }
      while (i < line.size() && line[i] == ' ') ++i;
      if (i < line.size() && line[i] != ',') {
        why = "text after the closing quote of field " + std::to_string(out.size() + 1);
        return false;
      }
    } else {
      size_t comma = line.find(',', i);
      if (comma == std::string_view::npos) comma = line.size();
      field = std::string(trimAll(line.substr(i, comma - i)));
      i = comma;
    }
    out.push_back(std::move(field));
    if (i >= line.size()) return true;
    ++i;  // the comma
  }
}

// Adds a host (domain or IP literal) entry, refusing bare public suffixes.
LineResult addHost(std::string_view text, Out& r, FeedEntry proto = {}) {
  auto h = normalizeHost(text);
  if (!h) return bad(h.error().detail);
  if (h->kind == HostKind::Name && isPublicSuffix(h->host))
    return bad("host '" + h->host + "' is a public suffix; listing it would block every site under it");
  proto.kind = h->kind == HostKind::Name ? RuleKind::Domain : RuleKind::Ip;
  proto.key = std::move(h->host);
  r.emit(std::move(proto));
  return ok();
}

LineResult addUrl(std::string_view text, Out& r, FeedEntry proto = {}) {
  auto u = normalizeUrl(text);
  if (!u) return bad(u.error().detail);
  proto.kind = RuleKind::Url;
  proto.key = std::move(u->url);
  r.emit(std::move(proto));
  return ok();
}

LineResult addCidr(std::string_view text, Out& r, FeedEntry proto = {}) {
  auto c = net::parseCidr(text);
  if (!c)
    return bad("'" + std::string(text.substr(0, 80)) +
               "' is not a CIDR network (address/prefix, host bits zero)");
  proto.kind = RuleKind::Cidr;
  proto.key = c->toString();
  r.emit(std::move(proto));
  return ok();
}

std::string_view stripComment(std::string_view line) {
  size_t hash = line.find('#');
  if (hash != std::string_view::npos) line = line.substr(0, hash);
  return trimAll(line);
}

LineResult domainsLine(std::string_view line, Out& r) {
  line = stripComment(line);
  if (line.empty()) return skip();
  if (line.find_first_of(" \t") != std::string_view::npos)
    return bad("more than one field; expected one host per line");
  if (line.starts_with("*.")) line.remove_prefix(2);  // a domain rule covers its subdomains anyway
  return addHost(line, r);
}

LineResult hostsLine(std::string_view line, Out& r) {
  line = stripComment(line);
  if (line.empty()) return skip();
  size_t sp = line.find_first_of(" \t");
  if (sp == std::string_view::npos) return bad("expected 'address host...', got one field");
  std::string_view addr = line.substr(0, sp);
  if (!net::parseIp(addr))
    return bad("first field '" + std::string(addr.substr(0, 64)) + "' is not an IP address");
  std::string_view rest = trimAll(line.substr(sp));
  bool any = false;
  while (!rest.empty()) {
    size_t end = rest.find_first_of(" \t");
    std::string_view name = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : trimAll(rest.substr(end));
    static constexpr std::string_view kLocal[] = {"localhost",      "localhost.localdomain", "local",
                                                  "broadcasthost",  "ip6-localhost",         "ip6-loopback",
                                                  "ip6-localnet",   "ip6-mcastprefix",       "ip6-allnodes",
                                                  "ip6-allrouters", "ip6-allhosts",          "0.0.0.0"};
    bool local = false;
    for (auto l : kLocal)
      if (iequals(name, l)) local = true;
    if (local) continue;
    LineResult one = addHost(name, r);
    if (one.outcome == LineOutcome::Bad) return one;
    any = true;
  }
  return any ? ok() : skip();
}

struct CsvState {
  std::vector<std::string> fields;
  int urlCol = 2, dateCol = 1, linkCol = 7, minCols = 8;  // URLhaus defaults
};

// URLhaus: id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter (older dumps
// have no last_online; the "# id,..." header line says which).
LineResult urlhausLine(std::string_view line, Out& r, CsvState& st) {
  line = trimAll(line);
  if (line.empty()) return skip();
  if (line.front() == '#') {
    std::string_view h = trimAll(line.substr(1));
    if (h.starts_with("id,")) {
      std::string why;
      std::vector<std::string> cols;
      if (splitCsv(h, cols, why)) {
        for (size_t i = 0; i < cols.size(); ++i) {
          if (cols[i] == "url") st.urlCol = int(i);
          if (cols[i] == "dateadded") st.dateCol = int(i);
          if (cols[i] == "urlhaus_link") st.linkCol = int(i);
        }
        st.minCols = std::max({st.urlCol, st.dateCol, st.linkCol}) + 1;
      }
    }
    return skip();
  }
  std::string why;
  if (!splitCsv(line, st.fields, why)) return bad(why);
  if (int(st.fields.size()) < st.minCols)
    return bad(std::to_string(st.fields.size()) + " fields; expected at least " + std::to_string(st.minCols));
  FeedEntry e;
  e.added = parseUtc(st.fields[size_t(st.dateCol)]);
  e.reference = st.fields[size_t(st.linkCol)];
  return addUrl(st.fields[size_t(st.urlCol)], r, std::move(e));
}

// ThreatFox: "first_seen_utc", "ioc_id", "ioc_value", "ioc_type", "threat_type", "fk_malware",
// "malware_alias", "malware_printable", "last_seen_utc", "confidence_level", "reference", "tags",
// "anonymous", "reporter".
LineResult threatfoxLine(std::string_view line, Out& r, CsvState& st) {
  line = trimAll(line);
  if (line.empty() || line.front() == '#') return skip();
  std::string why;
  if (!splitCsv(line, st.fields, why)) return bad(why);
  auto& f = st.fields;
  if (f.size() < 10) return bad(std::to_string(f.size()) + " fields; expected at least 10");
  FeedEntry e;
  e.added = parseUtc(f[0]);
  if (auto c = parseDecimal(f[9], 100)) e.score = int(*c);
  e.reference =
      f.size() > 10 && f[10].starts_with("http") ? f[10] : "https://threatfox.abuse.ch/ioc/" + f[1] + "/";
  const std::string& type = f[3];
  const std::string& value = f[2];
  if (type == "url") return addUrl(value, r, std::move(e));
  if (type == "domain") return addHost(value, r, std::move(e));
  if (type == "ip:port") {
    auto a = net::parseIpPort(value);
    if (!a) return bad("ip:port value '" + value.substr(0, 64) + "' does not parse");
    e.kind = RuleKind::Ip;
    e.key = a->ipString();
    r.emit(std::move(e));
    return ok();
  }
  if (type.ends_with("_hash")) {
    ++r.res.skipped;  // file hashes belong to the download verdict cache, not to URL reputation
    return skip();
  }
  return bad("unknown ioc_type '" + type.substr(0, 32) + "'");
}

// Spamhaus DROP: {"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"} lines ending in a
// {"type":"metadata",...} line, or the legacy "1.10.16.0/20 ; SBL256894" with ';' comments.
std::string_view jsonString(std::string_view line, std::string_view key) {
  std::string pat = "\"" + std::string(key) + "\"";
  size_t k = line.find(pat);
  if (k == std::string_view::npos) return {};
  size_t colon = line.find(':', k + pat.size());
  if (colon == std::string_view::npos) return {};
  size_t q1 = line.find('"', colon + 1);
  if (q1 == std::string_view::npos || trimAll(line.substr(colon + 1, q1 - colon - 1)).size() != 0) return {};
  size_t q2 = line.find('"', q1 + 1);
  if (q2 == std::string_view::npos) return {};
  return line.substr(q1 + 1, q2 - q1 - 1);
}

LineResult cidrLine(std::string_view line, Out& r) {
  line = trimAll(line);
  if (line.empty() || line.front() == ';' || line.front() == '#') return skip();
  FeedEntry e;
  if (line.front() == '{') {
    if (line.back() != '}') return bad("JSON line does not end with '}'");
    if (jsonString(line, "type") == "metadata") return skip();
    std::string_view cidr = jsonString(line, "cidr");
    if (cidr.empty()) return bad("JSON line has no \"cidr\" string");
    e.reference = std::string(jsonString(line, "sblid"));
    return addCidr(cidr, r, std::move(e));
  }
  std::string_view cidr = line;
  if (size_t semi = line.find(';'); semi != std::string_view::npos) {
    cidr = trimAll(line.substr(0, semi));
    e.reference = std::string(trimAll(line.substr(semi + 1)));
  }
  return addCidr(cidr, r, std::move(e));
}

// squidGuard / UT1: `domains` holds hosts, `urls` holds host/path prefixes (no scheme).
LineResult squidguardLine(std::string_view line, Out& r) {
  line = stripComment(line);
  if (line.empty()) return skip();
  if (line.find_first_of(" \t") != std::string_view::npos) return bad("more than one field");
  if (line.find('/') == std::string_view::npos) return addHost(line, r);
  auto p = normalizeUrlPrefix(line);
  if (!p) return bad(p.error().detail);
  FeedEntry e;
  e.kind = RuleKind::UrlPrefix;
  e.key = std::move(*p);
  r.emit(std::move(e));
  return ok();
}

Result<FeedResult> start(const FeedOptions& opts) {
  if (!validCategory(opts.category))
    return fail(ErrKind::Config, Side::Config,
                "category '" + opts.category + "' is not valid; expected 1-32 of a-z, 0-9, '_', '-'");
  if (!validSourceName(opts.source))
    return fail(ErrKind::Config, Side::Config,
                "source '" + opts.source + "' is not valid; expected 1-64 of A-Z, a-z, 0-9, '.', '_', '-'");
  if (opts.score < 0 || opts.score > 100) return fail(ErrKind::Config, Side::Config, "score must be 0-100");
  FeedResult r;
  r.source = opts.source;
  r.category = opts.category;
  r.score = opts.score;
  r.action = opts.action;
  return r;
}

void parseInto(Format format, std::string_view text, const FeedOptions& opts, FeedResult& res,
               const std::string& file) {
  CsvState st;
  Out r{res, opts, opts.now ? opts.now : int64_t(::time(nullptr))};
  size_t total = text.size(), lineNo = 0;
  std::string_view rest = text;
  if (rest.starts_with("\xEF\xBB\xBF")) rest.remove_prefix(3);  // UTF-8 BOM
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    ++lineNo;
    LineResult lr;
    switch (format) {
      case Format::Domains:
        lr = domainsLine(line, r);
        break;
      case Format::Hosts:
        lr = hostsLine(line, r);
        break;
      case Format::Urlhaus:
        lr = urlhausLine(line, r, st);
        break;
      case Format::Threatfox:
        lr = threatfoxLine(line, r, st);
        break;
      case Format::Cidr:
        lr = cidrLine(line, r);
        break;
      case Format::Squidguard:
        lr = squidguardLine(line, r);
        break;
    }
    if (lr.outcome == LineOutcome::Bad) {
      ++res.badLines;
      if (res.errors.size() < kMaxKeptErrors) res.errors.push_back({file, lineNo, std::move(lr.reason)});
    }
    if (opts.progress && lineNo % kProgressEvery == 0) opts.progress(total - rest.size(), total);
  }
  res.lines += lineNo;
  if (opts.progress) opts.progress(total, total);
}

Result<FeedResult> finish(FeedResult r) {
  if (r.accepted != 0) return r;
  std::string d = "feed yielded no entries (" + std::to_string(r.lines) + " lines, " +
                  std::to_string(r.badLines) + " bad";
  for (size_t i = 0; i < r.errors.size() && i < 3; ++i)
    d += "; " + (r.errors[i].file.empty() ? "" : r.errors[i].file + ":") + "line " +
         std::to_string(r.errors[i].line) + ": " + r.errors[i].reason;
  return fail(ErrKind::Config, Side::Config, d + ")");
}

// Reads a whole file in one allocation of its size (a stringstream would grow by doubling and
// briefly hold two or three copies of a large feed).
Result<std::string> slurp(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return fail(ErrKind::Io, Side::Internal, "cannot open '" + path + "': " + std::strerror(errno));
  std::unique_ptr<FILE, int (*)(FILE*)> guard(f, std::fclose);
  std::string out;
  struct stat sb {};
  if (::fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode)) out.reserve(size_t(sb.st_size));
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  if (std::ferror(f))
    return fail(ErrKind::Io, Side::Internal, "cannot read '" + path + "': " + std::strerror(errno));
  return out;
}

}  // namespace

Result<Format> parseFormat(std::string_view name) {
  for (Format f :
       {Format::Domains, Format::Hosts, Format::Urlhaus, Format::Threatfox, Format::Cidr, Format::Squidguard})
    if (name == formatName(f)) return f;
  return fail(ErrKind::Config, Side::Config,
              "format '" + std::string(name) +
                  "' is not one of domains, hosts, urlhaus, threatfox, cidr, squidguard");
}

std::string_view formatName(Format f) noexcept {
  switch (f) {
    case Format::Domains:
      return "domains";
    case Format::Hosts:
      return "hosts";
    case Format::Urlhaus:
      return "urlhaus";
    case Format::Threatfox:
      return "threatfox";
    case Format::Cidr:
      return "cidr";
    case Format::Squidguard:
      return "squidguard";
  }
  return "?";
}

Result<FeedResult> parseFeed(Format format, std::string_view text, const FeedOptions& opts) {
  auto r = start(opts);
  if (!r) return r;
  parseInto(format, text, opts, *r, {});
  return finish(std::move(*r));
}

Result<FeedResult> parseFeed(Format format, std::istream& in, const FeedOptions& opts) {
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = std::move(ss).str();
  return parseFeed(format, text, opts);
}

Result<FeedResult> parseFeedPath(Format format, const std::string& path, const FeedOptions& opts) {
  auto r = start(opts);
  if (!r) return r;
  struct stat sb {};
  bool isDir = ::stat(path.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode);
  if (format == Format::Squidguard && isDir) {
    bool any = false;
    for (const char* name : {"domains", "urls"}) {
      std::string p = path + "/" + name;
      if (::stat(p.c_str(), &sb) != 0) continue;
      auto text = slurp(p);
      if (!text) return tl::unexpected(text.error());
      parseInto(format, *text, opts, *r, name);
      any = true;
    }
    if (!any)
      return fail(ErrKind::Io, Side::Internal, "'" + path + "' has neither a 'domains' nor a 'urls' file");
    return finish(std::move(*r));
  }
  if (isDir)
    return fail(ErrKind::Io, Side::Internal,
                "'" + path + "' is a directory; only squidguard reads directories");
  auto text = slurp(path);
  if (!text) return tl::unexpected(text.error());
  parseInto(format, *text, opts, *r, {});
  return finish(std::move(*r));
}

}  // namespace sekisho::reputation
