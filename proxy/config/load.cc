// YAML -> immutable Config. The walk is driven by the key table in schema.cc: every map is
// checked for unknown and duplicate keys (yaml-cpp keeps duplicates silently), every value is
// parsed and bounded, and the first problem becomes one "FILE:LINE: key.path: what is wrong,
// what is expected" error. Loading is pure: it reads the config text and nothing else (no
// sockets, no CA or list files; later stages open those).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <unordered_map>

#include "proxy/base/strings.h"
#include "proxy/config/config.h"
#include "proxy/config/schema.h"
#include "proxy/log/logformat.h"
#include "proxy/config/values.h"

namespace sekisho::config {

namespace {

using schema::Key;
using schema::Kind;
using namespace values;

// A config file is a page or two of YAML; anything this large is a mistake (or an attack on
// yaml-cpp, which builds the whole tree in memory).
constexpr size_t kMaxFileBytes = size_t(4) << 20;
unsigned onlineCpus() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return unsigned(std::clamp<long>(n, 1, 256));
}

std::string localHostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

std::string currentDir() {
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  return ec ? std::string("/") : cwd.string();
}

// Config's own initialisers plus the defaults that need code: addresses, CPUs, host name.
Config builtInConfig(std::string baseDir) {
  Config c;
  c.baseDir = std::move(baseDir);
  c.listen.push_back(*net::parseIpPort("127.0.0.1:3128"));
  c.workers = onlineCpus();
  for (const char* cidr : {"127.0.0.0/8", "::1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"})
    c.allowClients.entries.push_back(*net::parseCidr(cidr));
  c.connectPorts = {{443, 443}};
  c.httpPorts = {{80, 80}, {443, 443}, {1025, 65535}};
  c.visibleHostname = localHostName();
  c.admin.listen = net::parseIpPort(c.admin.listenText);
  return c;
}

std::string resolvePath(const std::string& base, const std::string& p) {
  std::filesystem::path path(p);
  if (path.is_absolute()) return path.lexically_normal().string();
  return (std::filesystem::path(base) / path).lexically_normal().string();
}

// Every path key (defaults included) becomes absolute against baseDir.
void resolvePaths(Config& c) {
  for (const Key& k : schema::keys()) {
    if (k.kind != Kind::Path || k.path.find("[]") != std::string_view::npos) continue;
    std::string& p = std::get<std::string& (*)(Config&)>(k.field)(c);
    if (p.empty() || ((k.flags & schema::kDashStdout) && p == "-")) continue;
    p = resolvePath(c.baseDir, p);
  }
  for (ListSpec& l : c.reputation.lists) l.file = resolvePath(c.baseDir, l.file);
}

const char* nodeKind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a single value";
    default:
      return "empty";
  }
}

// Parses nothing into memory: it only lets the parser run through the first document and
// throws Stop when the next one starts, recording where.
class DocumentProbe : public YAML::EventHandler {
 public:
  struct Stop {};
  bool stopAtNext = false;
  YAML::Mark next;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (!stopAtNext) return;
    next = mark;
    throw Stop{};
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
  }
  void OnMapEnd() override {}
};

class Loader {
 public:
  Loader(std::string name, std::string baseDir)
      : name_(std::move(name)), cfg_(builtInConfig(std::move(baseDir))) {}

  Result<ConfigPtr> load(const std::string& text, std::string sourceFile) {
    cfg_.sourceFile = std::move(sourceFile);
    try {
      if (!walkDocument(text)) return fail(ErrKind::Config, Side::Config, std::move(error_));
    } catch (const YAML::Exception& e) {
      return fail(ErrKind::Config, Side::Config,
                  name_ + ":" + std::to_string(std::max(e.mark.line, 0) + 1) +
                      ": YAML syntax error: " + printable(e.msg));
    } catch (const std::exception& e) {
      return fail(ErrKind::Config, Side::Config, name_ + ": cannot load: " + printable(e.what()));
    }
    resolvePaths(cfg_);
    return std::make_shared<const Config>(std::move(cfg_));
  }

 private:
  template <class T>
  T& field(const Key& k) {
    return std::get<T& (*)(Config&)>(k.field)(cfg_);
  }

  bool error(int line, std::string_view path, const std::string& what) {
    error_ = name_ + ":" + std::to_string(line) + ": " + std::string(path) + ": " + what;
    return false;
  }

  // 1-based line of a node; an empty value ("key:" then a new line) is marked on the next line,
  // so it takes its key's line instead.
  static int lineOf(const YAML::Node& n, int fallback) {
    if (n.IsNull() || n.Mark().is_null()) return fallback;
    return n.Mark().line + 1;
  }

  bool walkDocument(const std::string& text) {
    // Probe first: yaml-cpp 0.7 never consumes a token that cannot start a node (a stray ','
    // at the top level), so LoadAll() would return empty documents forever. The probe parses
    // the first document, then stops where a second one would start.
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentProbe probe;
    if (!parser.HandleNextDocument(probe)) return true;  // empty, or only comments: the defaults
    probe.stopAtNext = true;
    try {
      parser.HandleNextDocument(probe);
    } catch (const DocumentProbe::Stop&) {
      int line = probe.next.line + 1;
      size_t pos = probe.next.pos >= 0 ? size_t(probe.next.pos) : text.size();
      std::string_view rest = pos < text.size() ? std::string_view(text).substr(pos) : std::string_view();
      if (rest.starts_with("---"))
        return error(line, "YAML", "a second document starts here, expected a single document");
      error_ = name_ + ":" + std::to_string(line) + ": YAML syntax error: unexpected " +
               show(rest.substr(0, 1)) + ", expected a map of keys";
      return false;
    }
    YAML::Node root = YAML::Load(text);  // the one document the probe saw
    if (root.IsNull()) return true;
    if (!root.IsMap())
      return error(
          lineOf(root, 1), "top level",
          std::string("is ") + nodeKind(root) + ", expected a map of keys such as listen: and workers:");
    return walkMap(root, "", "", 1, nullptr) && crossCheck();
  }

  std::vector<const Key*> childrenOf(std::string_view parent) const {
    std::vector<const Key*> out;
    for (const Key& k : schema::keys())
      if (schema::parentPath(k.path) == parent) out.push_back(&k);
    return out;
  }

  static std::string joinNames(const std::vector<const Key*>& keys) {
    std::string out;
    for (const Key* k : keys) {
      if (!out.empty()) out += ", ";
      out += schema::leafName(k->path);
    }
    return out;
  }

  static std::string childPath(const std::string& parent, std::string_view name) {
    return parent.empty() ? keyText(name) : parent + "." + keyText(name);
  }

  // `schemaPath` names the table rows ("tls", "reputation.lists[]"); `shown` is the path in
  // errors ("tls", "reputation.lists[2]"). `seen`, when given, receives the keys present.
  bool walkMap(const YAML::Node& map, std::string_view schemaPath, const std::string& shown, int line,
               std::vector<std::string>* seen) {
    auto children = childrenOf(schemaPath);
    if (map.IsNull()) return true;  // "tls:" with nothing under it keeps every default
    if (!map.IsMap())
      return error(lineOf(map, line), shown,
                   std::string("is ") + nodeKind(map) + ", expected a map with keys " + joinNames(children));
    std::unordered_map<std::string, int> lines;
    for (auto it = map.begin(); it != map.end(); ++it) {
      // it->first is a member of a temporary: copy the (shared, cheap) nodes before using them.
      YAML::Node keyNode = it->first;
      YAML::Node value = it->second;
      int keyLine = lineOf(keyNode, lineOf(map, line));
      if (!keyNode.IsScalar())
        return error(keyLine, shown.empty() ? "top level" : shown,
                     std::string("has a key that is ") + nodeKind(keyNode) + ", expected key names such as " +
                         joinNames(children));
      const std::string& name = keyNode.Scalar();
      std::string path = childPath(shown, name);
      if (auto [first, fresh] = lines.emplace(name, keyLine); !fresh)
        return error(
            keyLine, path,
            "duplicate key (first at line " + std::to_string(first->second) + "), expected each key once");
      auto match = std::find_if(children.begin(), children.end(),
                                [&](const Key* k) { return schema::leafName(k->path) == name; });
      if (match == children.end())
        return error(keyLine, path, "unknown key, expected one of " + joinNames(children));
      keyLines_[std::string((*match)->path)] = keyLine;
      if (seen) seen->push_back(name);
      if (!readValue(**match, value, path, keyLine)) return false;
    }
    return true;
  }

  // A single value is needed. Empty values are refused here; the callers that take "" for
  // "off" check IsNull() first.
  bool needScalar(const YAML::Node& n, const std::string& path, int keyLine, const std::string& expected) {
    if (n.IsScalar()) return true;
    if (n.IsNull()) return error(keyLine, path, "has no value, expected " + expected);
    return error(lineOf(n, keyLine), path, std::string("is ") + nodeKind(n) + ", expected " + expected);
  }

  bool needList(const YAML::Node& n, const std::string& path, int keyLine, const std::string& item) {
    if (n.IsSequence()) return true;
    if (n.IsNull()) return error(keyLine, path, "has no value, expected a list of " + item);
    return error(lineOf(n, keyLine), path, std::string("is ") + nodeKind(n) + ", expected a list of " + item);
  }

  bool readValue(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    int line = lineOf(v, keyLine);
    switch (k.kind) {
      case Kind::Section:
        return walkMap(v, k.path, path, keyLine, nullptr);
      case Kind::Bool:
        return readBool(k, v, path, keyLine);
      case Kind::Duration:
        return readDuration(k, v, path, keyLine);
      case Kind::Count:
        return readCount(k, v, path, keyLine);
      case Kind::Size:
        return readSize(k, v, path, keyLine);
      case Kind::Choice:
        return readChoice(k, v, path, keyLine);
      case Kind::Path:
        return readPath(k, v, path, keyLine);
      case Kind::Workers:
        return readWorkers(k, v, path, keyLine);
      case Kind::Listen:
        return readListen(k, v, path, keyLine);
      case Kind::AdminListen:
        return readAdminListen(k, v, path, keyLine);
      case Kind::Clients:
        return readClients(k, v, path, keyLine);
      case Kind::Ports:
        return readPorts(k, v, path, keyLine);
      case Kind::Resolve:
        return readResolve(k, v, path, keyLine);
      case Kind::Patterns:
        return readStrings(
            k, v, path, keyLine, "host patterns (\"host\" or \"*.domain\")",
            [](std::string_view s) { return normalizePattern(s); },
            "is not a valid pattern, expected a host or '*.' + domain");
      case Kind::HostPorts:
        return readStrings(
            k, v, path, keyLine, "\"host:port\" proxies",
            [](std::string_view s) { return normalizeHostPort(s); },
            "is not a host and port, expected \"host:port\" such as proxy1.example.co.jp:3128");
      case Kind::HostName: {
        const char* expected = "a DNS name such as proxy.example.co.jp";
        if (!needScalar(v, path, keyLine, expected)) return false;
        auto h = normalizeHostName(v.Scalar());
        if (!h) return error(line, path, show(v.Scalar()) + " is not a host name, expected " + expected);
        field<std::string>(k) = *h;
        return true;
      }
      case Kind::Store: {
        const char* expected = "embedded or redis://host[:port][/db]";
        if (!needScalar(v, path, keyLine, expected)) return false;
        const std::string& s = v.Scalar();
        if (s == "embedded") {
          field<std::string>(k) = s;
          return true;
        }
        auto url = normalizeRedisUrl(s);
        if (!url) return error(line, path, show(s) + " is not a store, expected " + expected);
        field<std::string>(k) = *url;
        return true;
      }
      case Kind::Lists:
        return readLists(k, v, path, keyLine);
      case Kind::HttpUrl: {
        const char* expected = "\"\" or an http:// or https:// URL";
        if (v.IsNull()) {
          field<std::string>(k).clear();
          return true;
        }
        if (!needScalar(v, path, keyLine, expected)) return false;
        const std::string& s = v.Scalar();
        if (!s.empty() && !isHttpUrl(s))
          return error(line, path, show(s) + " is not a URL, expected " + expected);
        field<std::string>(k) = s;
        return true;
      }
      case Kind::CategoryActions:
        return readCategoryActions(k, v, path, keyLine);
      case Kind::LogFormat: {
        const char* expected = "squid, combined, sekisho, json, or a Squid logformat string";
        if (!needScalar(v, path, keyLine, expected)) return false;
        const std::string& s = v.Scalar();
        if (s != "json" && !accesslog::LineFormat::named(s) && s.find('%') == std::string::npos)
          return error(line, path, show(s) + " is unknown, expected " + expected);
        if (s != "json")
          if (auto f = accesslog::LineFormat::compile(s); !f) return error(line, path, f.error().detail);
        field<std::string>(k) = s;
        return true;
      }
      case Kind::Category: {
        const char* expected = "lower-case letters, digits, '_' or '-' (such as malware or c2)";
        if (!needScalar(v, path, keyLine, expected)) return false;
        if (!isCategory(v.Scalar()))
          return error(line, path, show(v.Scalar()) + " is not a category, expected " + expected);
        field<std::string>(k) = v.Scalar();
        return true;
      }
    }
    return error(line, path, "has no reader, expected a known kind of key");
  }

  bool readBool(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    if (!needScalar(v, path, keyLine, "true or false")) return false;
    const std::string& s = v.Scalar();
    if (iequals(s, "true") || iequals(s, "yes") || iequals(s, "on")) {
      field<bool>(k) = true;
    } else if (iequals(s, "false") || iequals(s, "no") || iequals(s, "off")) {
      field<bool>(k) = false;
    } else {
      return error(lineOf(v, keyLine), path, show(s) + " is not true or false, expected true or false");
    }
    return true;
  }

  bool readDuration(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    std::string range = showMillis(k.min) + " to " + showMillis(k.max);
    std::string expected = "a duration such as 500ms, 10s, 2m or 1h (plain numbers are seconds), " + range;
    if (!needScalar(v, path, keyLine, expected)) return false;
    auto ms = parseDuration(v.Scalar());
    int line = lineOf(v, keyLine);
    if (!ms) return error(line, path, show(v.Scalar()) + " is not a duration, expected " + expected);
    if (*ms < k.min || *ms > k.max)
      return error(line, path, show(v.Scalar()) + " is out of range, expected " + range);
    field<Millis>(k) = Millis(*ms);
    return true;
  }

  bool readCount(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    std::string range = std::to_string(k.min) + " to " + std::to_string(k.max);
    if (!needScalar(v, path, keyLine, "a whole number from " + range)) return false;
    auto n = parseDecimal(v.Scalar());
    int line = lineOf(v, keyLine);
    if (!n) return error(line, path, show(v.Scalar()) + " is not a whole number, expected " + range);
    if (*n < uint64_t(k.min) || *n > uint64_t(k.max))
      return error(line, path, show(v.Scalar()) + " is out of range, expected " + range);
    field<size_t>(k) = size_t(*n);
    return true;
  }

  bool readSize(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    std::string range = showSize(k.min) + " to " + showSize(k.max);
    std::string expected = "a size in bytes, or with a k or m suffix (such as 256k), " + range;
    if (!needScalar(v, path, keyLine, expected)) return false;
    auto n = parseSize(v.Scalar());
    int line = lineOf(v, keyLine);
    if (!n) return error(line, path, show(v.Scalar()) + " is not a size, expected " + expected);
    if (*n < k.min || *n > k.max)
      return error(line, path, show(v.Scalar()) + " is out of range, expected " + range);
    field<size_t>(k) = size_t(*n);
    return true;
  }

  bool readChoice(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    std::vector<std::string_view> words;
    std::string list;
    for (std::string_view rest = k.choices;;) {
      size_t bar = rest.find('|');
      words.push_back(rest.substr(0, bar));
      list += (list.empty() ? "" : ", ") + std::string(words.back());
      if (bar == std::string_view::npos) break;
      rest.remove_prefix(bar + 1);
    }
    if (!needScalar(v, path, keyLine, "one of " + list)) return false;
    auto it = std::find(words.begin(), words.end(), v.Scalar());
    if (it == words.end())
      return error(lineOf(v, keyLine), path, show(v.Scalar()) + " is unknown, expected one of " + list);
    std::get<schema::ChoiceSetter>(k.field)(cfg_, size_t(it - words.begin()), *it);
    return true;
  }

  bool readPath(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    bool allowEmpty = k.flags & schema::kAllowEmpty;
    std::string expected = allowEmpty ? "a file path, or \"\" for none" : "a file path";
    if (allowEmpty && v.IsNull()) {
      field<std::string>(k).clear();
      return true;
    }
    if (!needScalar(v, path, keyLine, expected)) return false;
    const std::string& s = v.Scalar();
    int line = lineOf(v, keyLine);
    if (s.empty() && !allowEmpty) return error(line, path, "is empty, expected " + expected);
    if (std::any_of(s.begin(), s.end(), [](char c) { return uint8_t(c) < 0x20 || c == 0x7f; }))
      return error(line, path, show(s) + " contains control characters, expected " + expected);
    field<std::string>(k) = s;  // made absolute by resolvePaths() once baseDir is final
    return true;
  }

  bool readWorkers(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    std::string expected =
        "\"auto\" or a number from " + std::to_string(k.min) + " to " + std::to_string(k.max);
    if (!needScalar(v, path, keyLine, expected)) return false;
    const std::string& s = v.Scalar();
    int line = lineOf(v, keyLine);
    if (s == "auto") {
      field<unsigned>(k) = std::min<unsigned>(onlineCpus(), unsigned(k.max));
      return true;
    }
    auto n = parseDecimal(s);
    if (!n) return error(line, path, show(s) + " is not a number, expected " + expected);
    if (*n < uint64_t(k.min) || *n > uint64_t(k.max))
      return error(line, path, show(s) + " is out of range, expected " + expected);
    field<unsigned>(k) = unsigned(*n);
    return true;
  }

  std::optional<net::SocketAddr> parseListenAddr(const YAML::Node& v, const std::string& path, int keyLine,
                                                 const char* expected) {
    if (!needScalar(v, path, keyLine, expected)) return std::nullopt;
    auto addr = net::parseIpPort(v.Scalar());
    if (!addr) {
      error(lineOf(v, keyLine), path,
            show(v.Scalar()) + " is not an IP address and port, expected " + expected +
                " (host names are not resolved here)");
      return std::nullopt;
    }
    return addr;
  }

  bool readListen(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    const char* expected = "\"ip:port\" or \"[v6]:port\"";
    auto& out = field<std::vector<net::SocketAddr>>(k);
    out.clear();
    listenLines_.clear();
    if (v.IsScalar()) {  // one listener may be written without the list
      auto addr = parseListenAddr(v, path, keyLine, expected);
      if (!addr) return false;
      out.push_back(*addr);
      listenLines_.push_back(lineOf(v, keyLine));
      return true;
    }
    if (!needList(v, path, keyLine, expected)) return false;
    if (v.size() == 0)
      return error(lineOf(v, keyLine), path,
                   std::string("is an empty list, expected at least one ") + expected);
    size_t i = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++i) {
      YAML::Node item = *it;  // iterators yield temporaries: hold a copy (cheap, shared)
      std::string itemPath = path + "[" + std::to_string(i) + "]";
      auto addr = parseListenAddr(item, itemPath, lineOf(v, keyLine), expected);
      if (!addr) return false;
      int line = lineOf(item, keyLine);
      for (size_t j = 0; j < out.size(); ++j)
        if (out[j] == *addr)
          return error(line, itemPath,
                       addr->toString() + " is listed twice (also " + path + "[" + std::to_string(j) +
                           "]), expected each address once");
      out.push_back(*addr);
      listenLines_.push_back(line);
    }
    return true;
  }

  bool readAdminListen(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    auto& admin = field<schema::AdminT>(k);
    if (v.IsNull() || (v.IsScalar() && v.Scalar().empty())) {
      admin.listenText.clear();
      admin.listen.reset();
      return true;
    }
    auto addr = parseListenAddr(v, path, keyLine, "\"ip:port\", or \"\" to turn the admin listener off");
    if (!addr) return false;
    admin.listenText = v.Scalar();
    admin.listen = addr;
    return true;
  }

  bool readClients(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    const char* itemDesc = "client networks or addresses (such as 10.0.0.0/8)";
    if (!needList(v, path, keyLine, itemDesc)) return false;
    if (v.size() == 0)
      return error(lineOf(v, keyLine), path,
                   "is an empty list, which would refuse every client, expected at least one network "
                   "(such as 10.0.0.0/8)");
    auto& out = field<net::CidrSet>(k);
    out.entries.clear();
    size_t i = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++i) {
      YAML::Node item = *it;  // iterators yield temporaries: hold a copy (cheap, shared)
      std::string itemPath = path + "[" + std::to_string(i) + "]";
      if (!needScalar(item, itemPath, lineOf(v, keyLine), "an IP address or network such as 10.0.0.0/8"))
        return false;
      const std::string& s = item.Scalar();
      int line = lineOf(item, keyLine);
      size_t slash = s.find('/');
      auto addr = net::parseIp(std::string_view(s).substr(0, slash));
      if (!addr)
        return error(
            line, itemPath,
            show(s) + " is not an address or network, expected an IP address or CIDR such as 10.0.0.0/8");
      unsigned maxPrefix = addr->family() == AF_INET ? 32 : 128;
      std::optional<uint64_t> prefix = maxPrefix;
      if (slash != std::string::npos) prefix = parseDecimal(std::string_view(s).substr(slash + 1), maxPrefix);
      if (!prefix)
        return error(line, itemPath,
                     show(s) + " has a bad prefix length, expected /1 to /" + std::to_string(maxPrefix));
      if (*prefix == 0)
        return error(line, itemPath,
                     show(s) +
                         " matches every address and would make an open proxy, expected the networks of "
                         "your own clients (such as 10.0.0.0/8)");
      auto cidr = net::parseCidr(s);
      if (!cidr)
        return error(line, itemPath,
                     show(s) + " has host bits set, expected a network address such as " +
                         maskedNetwork(*addr, unsigned(*prefix)));
      out.entries.push_back(*cidr);
    }
    return true;
  }

  bool readPorts(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    const char* expected = "1-65535 or \"lo-hi\"";
    if (!needList(v, path, keyLine, "port numbers or \"lo-hi\" ranges")) return false;
    auto& out = field<std::vector<net::PortRange>>(k);
    out.clear();
    size_t i = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++i) {
      YAML::Node item = *it;  // iterators yield temporaries: hold a copy (cheap, shared)
      std::string itemPath = path + "[" + std::to_string(i) + "]";
      if (!needScalar(item, itemPath, lineOf(v, keyLine), expected)) return false;
      std::string_view s = item.Scalar();
      int line = lineOf(item, keyLine);
      size_t dash = s.find('-');
      if (dash == std::string_view::npos) {
        auto p = parseDecimal(s, 65535);
        if (!p || *p == 0) return error(line, itemPath, show(s) + " is not a port, expected " + expected);
        out.push_back({uint16_t(*p), uint16_t(*p)});
        continue;
      }
      auto lo = parseDecimal(s.substr(0, dash), 65535);
      auto hi = parseDecimal(s.substr(dash + 1), 65535);
      if (!lo || !hi || *lo == 0 || *lo > *hi)
        return error(line, itemPath,
                     show(s) + " is not a port range, expected \"lo-hi\" with 1 <= lo <= hi <= 65535");
      out.push_back({uint16_t(*lo), uint16_t(*hi)});
    }
    return true;
  }

  bool readCategoryActions(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    auto& out = field<std::map<std::string, std::string>>(k);
    out.clear();
    if (v.IsNull()) return true;
    if (!v.IsMap())
      return error(lineOf(v, keyLine), path, std::string("is ") + nodeKind(v) + ", expected a map of category: block|allow|log");
    for (auto it = v.begin(); it != v.end(); ++it) {
      YAML::Node name = it->first;
      YAML::Node value = it->second;
      int line = lineOf(name, keyLine);
      if (!name.IsScalar() || !isCategory(name.Scalar()))
        return error(line, path, (name.IsScalar() ? show(name.Scalar()) : std::string(nodeKind(name))) +
                                     " is not a category, expected lower-case letters, digits, '_' or '-'");
      std::string entryPath = path + "." + name.Scalar();
      if (out.count(name.Scalar())) return error(line, entryPath, "is given twice, expected each category once");
      if (!needScalar(value, entryPath, line, "block, allow or log")) return false;
      const std::string& a = value.Scalar();
      if (a != "block" && a != "allow" && a != "log")
        return error(lineOf(value, line), entryPath, show(a) + " is not an action, expected block, allow or log");
      out.emplace(name.Scalar(), a);
    }
    return true;
  }

  bool readResolve(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    auto& out = field<std::map<std::string, net::SocketAddr>>(k);
    out.clear();
    if (v.IsNull()) return true;  // every entry commented out
    if (!v.IsMap())
      return error(lineOf(v, keyLine), path,
                   std::string("is ") + nodeKind(v) + ", expected a map of host name: IP address");
    std::map<std::string, int> lines;
    for (auto it = v.begin(); it != v.end(); ++it) {
      YAML::Node hostNode = it->first;
      YAML::Node value = it->second;
      int hostLine = lineOf(hostNode, keyLine);
      if (!hostNode.IsScalar())
        return error(hostLine, path,
                     std::string("has a key that is ") + nodeKind(hostNode) + ", expected a host name");
      const std::string& raw = hostNode.Scalar();
      if (net::parseIp(raw))
        return error(hostLine, path, show(raw) + " is an IP address, expected a host name");
      auto host = normalizeHostName(raw);
      if (!host)
        return error(hostLine, path,
                     show(raw) + " is not a host name, expected a DNS name such as edi.example.co.jp");
      std::string entryPath = path + "[" + *host + "]";
      if (auto [first, fresh] = lines.emplace(*host, hostLine); !fresh)
        return error(
            hostLine, entryPath,
            "duplicate host (first at line " + std::to_string(first->second) + "), expected each host once");
      const char* expected = "an IPv4 or IPv6 address";
      if (!needScalar(value, entryPath, hostLine, expected)) return false;
      auto addr = net::parseIp(value.Scalar());
      if (!addr)
        return error(lineOf(value, hostLine), entryPath,
                     show(value.Scalar()) + " is not an IP address, expected " + expected);
      out.emplace(*host, *addr);
    }
    return true;
  }

  template <class Normalize>
  bool readStrings(const Key& k, const YAML::Node& v, const std::string& path, int keyLine,
                   const char* itemDesc, Normalize normalize, const char* problem) {
    auto& out = field<std::vector<std::string>>(k);
    out.clear();
    if (v.IsNull()) return true;  // every entry commented out
    if (!needList(v, path, keyLine, itemDesc)) return false;
    size_t i = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++i) {
      YAML::Node item = *it;  // iterators yield temporaries: hold a copy (cheap, shared)
      std::string itemPath = path + "[" + std::to_string(i) + "]";
      if (!needScalar(item, itemPath, lineOf(v, keyLine), itemDesc)) return false;
      auto s = normalize(item.Scalar());
      if (!s) return error(lineOf(item, keyLine), itemPath, show(item.Scalar()) + " " + problem);
      out.push_back(std::move(*s));
    }
    return true;
  }

  bool readLists(const Key& k, const YAML::Node& v, const std::string& path, int keyLine) {
    auto& out = field<std::vector<ListSpec>>(k);
    out.clear();
    if (v.IsNull()) return true;  // every entry commented out
    const char* itemDesc = "maps such as {file: blocklist.txt, format: domains, category: malware}";
    if (!needList(v, path, keyLine, itemDesc)) return false;
    std::string itemSchema = std::string(k.path) + "[]";
    size_t i = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++i) {
      YAML::Node item = *it;  // iterators yield temporaries: hold a copy (cheap, shared)
      std::string itemPath = path + "[" + std::to_string(i) + "]";
      const YAML::Node& entry = item;
      int line = lineOf(entry, lineOf(v, keyLine));
      if (!entry.IsMap())
        return error(line, itemPath,
                     std::string("is ") + nodeKind(entry) + ", expected a map such as " +
                         "{file: blocklist.txt, format: domains, category: malware}");
      out.emplace_back();
      std::vector<std::string> seen;
      if (!walkMap(entry, itemSchema, itemPath, line, &seen)) return false;
      for (const Key* child : childrenOf(itemSchema)) {
        std::string_view name = schema::leafName(child->path);
        if ((child->flags & schema::kRequired) && std::find(seen.begin(), seen.end(), name) == seen.end())
          return error(line, itemPath,
                       "has no " + std::string(name) + ", expected " + std::string(child->doc));
      }
    }
    return true;
  }

  // Checks between keys, after every key has been read; reported at the key the file set.
  bool crossCheck() {
    const Limits& lim = cfg_.limits;
    if (lim.maxHeadBytes < lim.maxRequestLine) {
      if (keyLines_.count("limits.max_head_bytes"))
        return error(keyLines_["limits.max_head_bytes"], "limits.max_head_bytes",
                     std::to_string(lim.maxHeadBytes) + " is smaller than limits.max_request_line (" +
                         std::to_string(lim.maxRequestLine) + "), expected at least that");
      return error(keyLines_["limits.max_request_line"], "limits.max_request_line",
                   std::to_string(lim.maxRequestLine) + " is larger than limits.max_head_bytes (" +
                       std::to_string(lim.maxHeadBytes) + "), expected at most that");
    }
    // Port 0 asks the kernel for a free port, so two of them never collide.
    if (cfg_.admin.listen && cfg_.admin.listen->port() != 0) {
      for (size_t i = 0; i < cfg_.listen.size(); ++i) {
        if (!(cfg_.listen[i] == *cfg_.admin.listen)) continue;
        std::string addr = cfg_.listen[i].toString();
        if (keyLines_.count("admin.listen"))
          return error(keyLines_["admin.listen"], "admin.listen",
                       addr + " is also a proxy listener (listen), expected a different address");
        return error(
            i < listenLines_.size() ? listenLines_[i] : 1, "listen[" + std::to_string(i) + "]",
            addr + " is also the admin listener (admin.listen default), expected a different address");
      }
    }
    return true;
  }

  std::string name_;
  Config cfg_;
  std::string error_;
  std::unordered_map<std::string, int> keyLines_;  // schema path -> line of its key
  std::vector<int> listenLines_;                   // line of each listen entry
};

}  // namespace

ConfigPtr defaults() {
  Config c = builtInConfig(currentDir());
  resolvePaths(c);
  return std::make_shared<const Config>(std::move(c));
}

Result<ConfigPtr> loadString(const std::string& text, const std::string& name) {
  return Loader(name, currentDir()).load(text, name);
}

Result<ConfigPtr> loadFile(const std::string& path) {
  auto ioError = [&](const std::string& what) { return fail(ErrKind::Io, Side::Config, path + ": " + what); };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ioError(std::string("cannot open: ") + strerror(errno));
  std::string text;
  struct stat st {};
  bool ok = fstat(fd, &st) == 0;
  if (ok && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return ioError("is a directory, expected a YAML file");
  }
  char buf[65536];
  ssize_t n = 0;
  while (ok && (n = ::read(fd, buf, sizeof buf)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    text.append(buf, size_t(n));
    if (text.size() > kMaxFileBytes) {
      ::close(fd);
      return fail(ErrKind::Config, Side::Config,
                  path + ": larger than " + std::to_string(kMaxFileBytes >> 20) +
                      " MiB, expected a configuration file");
    }
  }
  int savedErrno = errno;
  ::close(fd);
  if (!ok) return ioError(std::string("cannot read: ") + strerror(savedErrno));

  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return ioError("cannot make the path absolute: " + ec.message());
  abs = abs.lexically_normal();
  return Loader(path, abs.parent_path().string()).load(text, abs.string());
}

}  // namespace sekisho::config
