#include "proxy/config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "proxy/config/schema.h"

using namespace sekisho;
using namespace sekisho::config;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;

ConfigPtr mustLoad(const std::string& text) {
  auto r = loadString(text, "sekisho.yaml");
  EXPECT_TRUE(r) << (r ? "" : r.error().detail);
  return r ? *r : defaults();
}

std::string errorOf(const std::string& text) {
  auto r = loadString(text, "sekisho.yaml");
  if (r) return "(loaded without error)";
  EXPECT_EQ(r.error().kind, ErrKind::Config);
  EXPECT_EQ(r.error().side, Side::Config);
  return r.error().detail;
}

std::string ports(const std::vector<net::PortRange>& v) {
  std::string out;
  for (const auto& p : v) out += std::to_string(p.lo) + "-" + std::to_string(p.hi) + " ";
  return out;
}

// Every field of a Config as text, so two configs compare in one EXPECT_EQ with a readable diff.
std::string fingerprint(const Config& c) {
  std::ostringstream o;
  o << "baseDir=" << c.baseDir << "\nlisten=";
  for (const auto& a : c.listen) o << a.toString() << " ";
  o << "\nworkers=" << c.workers << "\nallow=";
  for (const auto& e : c.allowClients.entries) o << e.toString() << " ";
  o << "\nconnect=" << ports(c.connectPorts) << "\nhttp=" << ports(c.httpPorts) << "\nresolve=";
  for (const auto& [h, a] : c.resolve) o << h << "=" << a.ipString() << " ";
  o << "\nhostname=" << c.visibleHostname << "\nca=" << c.ca.cert << "," << c.ca.key << "," << c.ca.chain
    << "\ntls=" << c.tls.intercept << "," << c.tls.upstreamCaFile << "," << c.tls.leafCacheDir << ","
    << c.tls.leafCacheEntries << ",";
  for (const auto& p : c.tls.noIntercept) o << p << " ";
  o << "\nreputation=" << c.reputation.store << "," << int(c.reputation.sensitivity) << ","
    << int(c.reputation.onError) << ",";
  for (const auto& l : c.reputation.lists) o << l.file << "/" << l.format << "/" << l.category << " ";
  o << "\nsandbox=" << c.sandbox.url << "," << int(c.sandbox.mode) << "\nlog=" << c.log.access << ","
    << c.log.format << "," << c.log.level << "\nadmin=" << c.admin.listenText << ","
    << (c.admin.listen ? c.admin.listen->toString() : "none") << "\npac=";
  for (const auto& p : c.pac.direct) o << p << " ";
  o << "|";
  for (const auto& p : c.pac.proxies) o << p << " ";
  const Timeouts& t = c.timeouts;
  o << "\ntimeouts=" << t.requestHeader.count() << "," << t.clientIdle.count() << "," << t.connect.count()
    << "," << t.firstByte.count() << "," << t.idle.count() << "," << t.tunnelIdle.count() << ","
    << t.upstreamIdle.count() << "," << t.shutdown.count();
  const Limits& l = c.limits;
  o << "\nlimits=" << l.maxRequestLine << "," << l.maxHeadBytes << "," << l.maxHeaders << ","
    << l.maxConnections << "," << l.maxConnectionsPerClient << "," << l.maxIdleUpstream << "," << l.maxIdleUpstreamPerHost << "," << l.bufferBytes
    << "\n";
  return o.str();
}

// A fresh directory under the system temp dir, removed with the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sekisho-config-XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;
};

std::string cwd() { return fs::current_path().string(); }

}  // namespace

// ---- defaults ----

TEST(ConfigDefaults, AreSafeBuiltIns) {
  ConfigPtr c = defaults();
  EXPECT_EQ(c->sourceFile, "");
  EXPECT_EQ(c->baseDir, cwd());
  ASSERT_EQ(c->listen.size(), 1u);
  EXPECT_EQ(c->listen[0].toString(), "127.0.0.1:3128");
  EXPECT_GE(c->workers, 1u);
  EXPECT_EQ(c->workers, unsigned(std::clamp<long>(sysconf(_SC_NPROCESSORS_ONLN), 1, 256)));
  EXPECT_TRUE(c->allowClients.contains(*net::parseIp("127.0.0.1")));
  EXPECT_TRUE(c->allowClients.contains(*net::parseIp("::1")));
  EXPECT_TRUE(c->allowClients.contains(*net::parseIp("10.20.30.40")));
  EXPECT_TRUE(c->allowClients.contains(*net::parseIp("172.31.0.1")));
  EXPECT_TRUE(c->allowClients.contains(*net::parseIp("192.168.1.1")));
  EXPECT_FALSE(c->allowClients.contains(*net::parseIp("8.8.8.8")));
  EXPECT_FALSE(c->allowClients.contains(*net::parseIp("2001:db8::1")));
  EXPECT_EQ(ports(c->connectPorts), "443-443 ");
  EXPECT_EQ(ports(c->httpPorts), "80-80 443-443 1025-65535 ");
  EXPECT_TRUE(c->resolve.empty());
  EXPECT_FALSE(c->visibleHostname.empty());
  EXPECT_EQ(c->ca.cert, cwd() + "/ca.crt");
  EXPECT_EQ(c->ca.key, cwd() + "/ca.key");
  EXPECT_EQ(c->ca.chain, "");
  EXPECT_TRUE(c->tls.intercept);
  EXPECT_EQ(c->tls.leafCacheDir, "");  // off unless asked for
  EXPECT_EQ(c->tls.leafCacheEntries, 10000u);
  EXPECT_EQ(c->reputation.store, "embedded");
  EXPECT_EQ(c->reputation.sensitivity, Sensitivity::Medium);
  EXPECT_EQ(c->reputation.onError, OnError::Open);
  EXPECT_EQ(c->sandbox.mode, SandboxMode::Hold);
  EXPECT_EQ(c->log.access, cwd() + "/access.log");
  EXPECT_EQ(c->log.format, "squid");
  EXPECT_EQ(c->log.level, "info");
  EXPECT_EQ(c->admin.listenText, "127.0.0.1:3129");
  ASSERT_TRUE(c->admin.listen);
  EXPECT_EQ(c->admin.listen->toString(), "127.0.0.1:3129");
  EXPECT_EQ(c->timeouts.requestHeader, 10s);
  EXPECT_EQ(c->limits.bufferBytes, 256u * 1024);
}

TEST(ConfigDefaults, EmptyOrCommentOnlyTextGivesDefaults) {
  std::string want = fingerprint(*defaults());
  for (const char* text : {"", "\n\n", "# nothing here\n  # still nothing\n", "---\n", "~\n"}) {
    auto r = loadString(text, "sekisho.yaml");
    ASSERT_TRUE(r) << text << ": " << r.error().detail;
    EXPECT_EQ(fingerprint(**r), want) << text;
    EXPECT_EQ((*r)->sourceFile, "sekisho.yaml");
  }
}

TEST(ConfigDefaults, EmptySectionKeepsItsDefaults) {
  ConfigPtr c = mustLoad("tls:\ntimeouts:\n");
  EXPECT_EQ(fingerprint(*c), fingerprint(*defaults()));
}

// Each row's defaultText, written into a file, must give exactly what defaults() gives: the
// table and Config's initialisers cannot drift apart.
TEST(ConfigSchema, DocumentedDefaultsEqualBuiltInDefaults) {
  std::string want = fingerprint(*defaults());
  for (const schema::Key& k : schema::keys()) {
    if (k.kind == schema::Kind::Section || k.kind == schema::Kind::HostName) continue;
    if (k.path.find("[]") != std::string_view::npos) continue;
    std::string yaml;
    std::string indent;
    std::string_view rest = k.path;
    for (size_t dot; (dot = rest.find('.')) != std::string_view::npos; rest.remove_prefix(dot + 1)) {
      yaml += indent + std::string(rest.substr(0, dot)) + ":\n";
      indent += "  ";
    }
    std::string value = k.defaultText.empty() ? "\"\"" : std::string(k.defaultText);
    yaml += indent + std::string(rest) + ": " + value + "\n";
    auto r = loadString(yaml, "defaults.yaml");
    ASSERT_TRUE(r) << yaml << r.error().detail;
    EXPECT_EQ(fingerprint(**r), want) << yaml;
  }
}

TEST(ConfigSchema, ListItemDefaultsMatchListSpec) {
  ConfigPtr c = mustLoad("reputation:\n  lists:\n    - file: /feeds/a.txt\n");
  ASSERT_EQ(c->reputation.lists.size(), 1u);
  ListSpec plain;
  EXPECT_EQ(c->reputation.lists[0].format, plain.format);
  EXPECT_EQ(c->reputation.lists[0].category, plain.category);
  for (const schema::Key& k : schema::keys()) {
    if (k.path == "reputation.lists[].format") {
      EXPECT_EQ(k.defaultText, plain.format);
    }
    if (k.path == "reputation.lists[].category") {
      EXPECT_EQ(k.defaultText, plain.category);
    }
  }
}

TEST(ConfigSchema, EveryKeyHasDocAndUniquePath) {
  std::set<std::string_view> paths;
  for (const schema::Key& k : schema::keys()) {
    EXPECT_FALSE(k.doc.empty()) << k.path;
    EXPECT_TRUE(paths.insert(k.path).second) << k.path;
    std::string_view parent = schema::parentPath(k.path);
    if (parent.ends_with("[]")) parent.remove_suffix(2);
    if (!parent.empty()) {
      EXPECT_TRUE(paths.count(parent)) << k.path << " has no parent row";
    }
  }
}

// ---- a full valid file ----

TEST(ConfigLoad, LoadsFullValidFile) {
  TempDir dir;
  std::string file = dir.write("etc/sekisho.yaml", R"(# every key, none left at its default
listen: ["0.0.0.0:8080", "[::1]:3128"]
workers: 4
allow_clients: ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
connect_ports: [443, 8443, "9000-9100"]
http_ports: [80, "8000-8999"]
resolve:
  EDI.Example.co.jp: 10.1.2.3
  v6.example: "2001:db8::5"
visible_hostname: Proxy1.Example.co.jp
ca:
  cert: pki/root.crt
  key: /secure/root.key
  chain: pki/chain.pem
tls:
  intercept: false
  no_intercept: ["*.Bank.example", "login.example.com", "192.0.2.1"]
  upstream_ca_file: extra-roots.pem
  leaf_cache_dir: ../var/leaves
  leaf_cache_entries: 500
reputation:
  store: redis://redis.internal
  lists:
    - {file: feeds/urlhaus.csv, format: urlhaus, category: malware_download}
    - file: /var/lib/sekisho/c2.txt
      format: hosts
      category: c2
  sensitivity: high
  on_error: closed
sandbox:
  url: https://cape.internal:8000/apiv2/
  mode: learn
log:
  access: "-"
  format: json
  level: debug
admin:
  listen: "127.0.0.1:9090"
pac:
  direct: ["*.intranet.example", "printer"]
  proxies: ["proxy1.example.co.jp:3128", "10.0.0.2:3128", "[2001:db8::2]:3128"]
timeouts:
  request_header: 5s
  client_idle: 30
  connect: 500ms
  first_byte: 2m
  idle: 1h
  tunnel_idle: 24h
  upstream_idle: 15s
  shutdown: 0
limits:
  max_request_line: 16384
  max_head_bytes: 131072
  max_headers: 200
  max_connections: 5000
  max_connections_per_client: 300
  max_idle_upstream: 512
  max_idle_upstream_per_host: 32
  buffer_bytes: 1m
)");
  auto r = loadFile(file);
  ASSERT_TRUE(r) << r.error().detail;
  const Config& c = **r;
  std::string etc = dir.path() + "/etc";
  EXPECT_EQ(c.sourceFile, file);
  EXPECT_EQ(c.baseDir, etc);
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].toString(), "0.0.0.0:8080");
  EXPECT_EQ(c.listen[1].toString(), "[::1]:3128");
  EXPECT_EQ(c.workers, 4u);
  ASSERT_EQ(c.allowClients.entries.size(), 3u);
  EXPECT_EQ(c.allowClients.entries[1].toString(), "192.0.2.7/32");
  EXPECT_TRUE(c.allowClients.contains(*net::parseIp("2001:db8:1::1")));
  EXPECT_FALSE(c.allowClients.contains(*net::parseIp("192.0.2.8")));
  EXPECT_EQ(ports(c.connectPorts), "443-443 8443-8443 9000-9100 ");
  EXPECT_EQ(ports(c.httpPorts), "80-80 8000-8999 ");
  ASSERT_EQ(c.resolve.size(), 2u);
  EXPECT_EQ(c.resolve.at("edi.example.co.jp").ipString(), "10.1.2.3");
  EXPECT_EQ(c.resolve.at("edi.example.co.jp").port(), 0);
  EXPECT_EQ(c.resolve.at("v6.example").ipString(), "2001:db8::5");
  EXPECT_EQ(c.visibleHostname, "proxy1.example.co.jp");
  EXPECT_EQ(c.ca.cert, etc + "/pki/root.crt");
  EXPECT_EQ(c.ca.key, "/secure/root.key");
  EXPECT_EQ(c.ca.chain, etc + "/pki/chain.pem");
  EXPECT_FALSE(c.tls.intercept);
  EXPECT_EQ(c.tls.noIntercept,
            (std::vector<std::string>{"*.bank.example", "login.example.com", "192.0.2.1"}));
  EXPECT_EQ(c.tls.upstreamCaFile, etc + "/extra-roots.pem");
  EXPECT_EQ(c.tls.leafCacheDir, dir.path() + "/var/leaves");
  EXPECT_EQ(c.tls.leafCacheEntries, 500u);
  EXPECT_EQ(c.reputation.store, "redis://redis.internal:6379/0");
  ASSERT_EQ(c.reputation.lists.size(), 2u);
  EXPECT_EQ(c.reputation.lists[0].file, etc + "/feeds/urlhaus.csv");
  EXPECT_EQ(c.reputation.lists[0].format, "urlhaus");
  EXPECT_EQ(c.reputation.lists[0].category, "malware_download");
  EXPECT_EQ(c.reputation.lists[1].file, "/var/lib/sekisho/c2.txt");
  EXPECT_EQ(c.reputation.lists[1].format, "hosts");
  EXPECT_EQ(c.reputation.lists[1].category, "c2");
  EXPECT_EQ(c.reputation.sensitivity, Sensitivity::High);
  EXPECT_EQ(c.reputation.onError, OnError::Closed);
  EXPECT_EQ(c.sandbox.url, "https://cape.internal:8000/apiv2/");
  EXPECT_EQ(c.sandbox.mode, SandboxMode::Learn);
  EXPECT_EQ(c.log.access, "-");
  EXPECT_EQ(c.log.format, "json");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.admin.listenText, "127.0.0.1:9090");
  ASSERT_TRUE(c.admin.listen);
  EXPECT_EQ(c.admin.listen->port(), 9090);
  EXPECT_EQ(c.pac.direct, (std::vector<std::string>{"*.intranet.example", "printer"}));
  EXPECT_EQ(c.pac.proxies,
            (std::vector<std::string>{"proxy1.example.co.jp:3128", "10.0.0.2:3128", "[2001:db8::2]:3128"}));
  EXPECT_EQ(c.timeouts.requestHeader, 5s);
  EXPECT_EQ(c.timeouts.clientIdle, 30s);
  EXPECT_EQ(c.timeouts.connect, 500ms);
  EXPECT_EQ(c.timeouts.firstByte, 2min);
  EXPECT_EQ(c.timeouts.idle, 1h);
  EXPECT_EQ(c.timeouts.tunnelIdle, 24h);
  EXPECT_EQ(c.timeouts.upstreamIdle, 15s);
  EXPECT_EQ(c.timeouts.shutdown, 0s);
  EXPECT_EQ(c.limits.maxRequestLine, 16384u);
  EXPECT_EQ(c.limits.maxHeadBytes, 131072u);
  EXPECT_EQ(c.limits.maxHeaders, 200u);
  EXPECT_EQ(c.limits.maxConnections, 5000u);
  EXPECT_EQ(c.limits.maxConnectionsPerClient, 300u);
  EXPECT_EQ(c.limits.maxIdleUpstream, 512u);
  EXPECT_EQ(c.limits.maxIdleUpstreamPerHost, 32u);
  EXPECT_EQ(c.limits.bufferBytes, 1024u * 1024);
}

TEST(ConfigLoad, LoadsTheExampleFileFromDocs) {
  std::string file = std::string(SEKISHO_SOURCE_DIR) + "/docs/sekisho.example.yaml";
  auto r = loadFile(file);
  ASSERT_TRUE(r) << r.error().detail;
  const Config& c = **r;
  EXPECT_EQ(c.baseDir, std::string(SEKISHO_SOURCE_DIR) + "/docs");
  EXPECT_EQ(c.listen[0].toString(), "127.0.0.1:3128");
  EXPECT_FALSE(c.reputation.lists.empty());
  EXPECT_FALSE(c.allowClients.contains(*net::parseIp("8.8.8.8")));
}

TEST(ConfigDocs, ConfigMdNamesEveryKey) {
  std::ifstream in(std::string(SEKISHO_SOURCE_DIR) + "/docs/CONFIG.md");
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  for (const schema::Key& k : schema::keys())
    EXPECT_NE(doc.find("`" + std::string(k.path) + "`"), std::string::npos)
        << k.path << " is not in CONFIG.md";
}

TEST(ConfigReputation, CategoryActionsAreAMapOfKnownActions) {
  auto c = mustLoad("reputation:\n  categories:\n    ads: log\n    gambling: block\n    supplier: allow\n");
  EXPECT_EQ(c->reputation.categoryActions.size(), 3u);
  EXPECT_EQ(c->reputation.categoryActions.at("ads"), "log");
  EXPECT_EQ(errorOf("reputation:\n  categories:\n    ads: maybe\n"),
            "sekisho.yaml:3: reputation.categories.ads: 'maybe' is not an action, expected block, allow or log");
  EXPECT_EQ(errorOf("reputation:\n  categories:\n    Bad Cat: log\n"),
            "sekisho.yaml:3: reputation.categories: 'Bad Cat' is not a category, expected lower-case letters, digits, '_' or '-'");
  EXPECT_EQ(errorOf("reputation:\n  categories: [ads]\n"),
            "sekisho.yaml:2: reputation.categories: is a list, expected a map of category: block|allow|log");
}

// ---- errors: exact messages and lines ----

TEST(ConfigErrors, RejectsUnknownNestedKeyWithLine) {
  EXPECT_EQ(
      errorOf("listen: [\"127.0.0.1:3128\"]\ntls:\n  intercpt: true\n"),
      "sekisho.yaml:3: tls.intercpt: unknown key, expected one of intercept, no_intercept, upstream_ca_file, remember_for, http2, leaf_cache_dir, leaf_cache_entries");
}

TEST(ConfigErrors, RejectsUnknownTopLevelKeyWithLine) {
  EXPECT_EQ(
      errorOf("# comment\n\nlisen: [\"127.0.0.1:3128\"]\n"),
      "sekisho.yaml:3: lisen: unknown key, expected one of listen, workers, allow_clients, connect_ports, "
      "http_ports, resolve, visible_hostname, ca, tls, reputation, sandbox, log, admin, pac, timeouts, "
      "limits");
}

TEST(ConfigErrors, RejectsUnknownKeyInListItemWithIndex) {
  EXPECT_EQ(
      errorOf("reputation:\n  lists:\n    - file: a.txt\n    - file: b.txt\n      fromat: hosts\n"),
      "sekisho.yaml:5: reputation.lists[1].fromat: unknown key, expected one of file, format, category");
}

TEST(ConfigErrors, RejectsOutOfRangePortWithIndexAndLine) {
  EXPECT_EQ(errorOf("listen: [\"127.0.0.1:3128\"]\nworkers: 2\ntls:\n  intercept: true\nconnect_ports:\n"
                    "  - 443\n  - 70000\n"),
            "sekisho.yaml:7: connect_ports[1]: 70000 is not a port, expected 1-65535 or \"lo-hi\"");
}

TEST(ConfigErrors, RejectsBadConnectionsPerClientWithLine) {
  for (const char* bad : {"-1", "1000001", "many", "[5]"}) {
    std::string err = errorOf(std::string("limits:\n  max_connections_per_client: ") + bad + "\n");
    EXPECT_EQ(err.rfind("sekisho.yaml:2: limits.max_connections_per_client: ", 0), 0u) << bad << " -> " << err;
  }
}

TEST(ConfigErrors, RejectsBadPortRanges) {
  EXPECT_EQ(
      errorOf("http_ports: [80, \"9000-80\"]\n"),
      "sekisho.yaml:1: http_ports[1]: '9000-80' is not a port range, expected \"lo-hi\" with 1 <= lo <= hi "
      "<= 65535");
  EXPECT_EQ(errorOf("connect_ports: [0]\n"),
            "sekisho.yaml:1: connect_ports[0]: 0 is not a port, expected 1-65535 or \"lo-hi\"");
  EXPECT_EQ(errorOf("connect_ports: [https]\n"),
            "sekisho.yaml:1: connect_ports[0]: 'https' is not a port, expected 1-65535 or \"lo-hi\"");
  EXPECT_EQ(errorOf("connect_ports: 443\n"),
            "sekisho.yaml:1: connect_ports: is a single value, expected a list of port numbers or \"lo-hi\" "
            "ranges");
}

TEST(ConfigErrors, AcceptsEmptyPortListsAsNoneAllowed) {
  ConfigPtr c = mustLoad("connect_ports: []\n");
  EXPECT_TRUE(c->connectPorts.empty());
}

TEST(ConfigErrors, ReportsYamlSyntaxErrorWithLine) {
  EXPECT_EQ(errorOf("workers: 2\nlisten: [\"127.0.0.1:3128\"\nlog: {}\n"),
            "sekisho.yaml:3: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(errorOf("tls:\n\tintercept: true\n"), "sekisho.yaml:2: YAML syntax error: illegal map value");
  EXPECT_EQ(errorOf("tls: *nowhere\n"),
            "sekisho.yaml:1: YAML syntax error: the referenced anchor is not defined");
}

TEST(ConfigErrors, SyntaxErrorsAreOnePrintableLine) {
  EXPECT_EQ(errorOf("workers: 2\nlog: \"x\\\x01\"\n"),
            "sekisho.yaml:2: YAML syntax error: unknown escape character: \\x01");
}

TEST(ConfigErrors, RejectsNonMapTopLevel) {
  EXPECT_EQ(errorOf("- listen\n- workers\n"),
            "sekisho.yaml:1: top level: is a list, expected a map of keys such as listen: and workers:");
  EXPECT_EQ(
      errorOf("\nhello\n"),
      "sekisho.yaml:2: top level: is a single value, expected a map of keys such as listen: and workers:");
}

TEST(ConfigErrors, RejectsSecondDocument) {
  EXPECT_EQ(errorOf("workers: 2\n---\nworkers: 3\n"),
            "sekisho.yaml:2: YAML: a second document starts here, expected a single document");
  EXPECT_EQ(errorOf("workers: 2\n--- # empty\n"),
            "sekisho.yaml:2: YAML: a second document starts here, expected a single document");
  EXPECT_TRUE(loadString("---\nworkers: 2\n...\n", "sekisho.yaml"));
}

// yaml-cpp 0.7 loops forever in LoadAll() on a stray top-level ','; it must be an error.
TEST(ConfigErrors, StrayTopLevelCommaIsASyntaxErrorNotAHang) {
  EXPECT_EQ(errorOf(", x\n"), "sekisho.yaml:1: YAML syntax error: unexpected ',', expected a map of keys");
  EXPECT_EQ(errorOf("- a\n,\n"), "sekisho.yaml:2: YAML syntax error: unexpected ',', expected a map of keys");
  EXPECT_EQ(errorOf("workers: 2\n---\n, fa\"[12\n"),
            "sekisho.yaml:2: YAML: a second document starts here, expected a single document");
}

TEST(ConfigErrors, RejectsDuplicateTopLevelKey) {
  EXPECT_EQ(errorOf("workers: 2\nlisten: [\"127.0.0.1:3128\"]\nworkers: 3\n"),
            "sekisho.yaml:3: workers: duplicate key (first at line 1), expected each key once");
}

TEST(ConfigErrors, RejectsDuplicateNestedKeys) {
  EXPECT_EQ(errorOf("timeouts:\n  connect: 5s\n  idle: 1m\n  connect: 6s\n"),
            "sekisho.yaml:4: timeouts.connect: duplicate key (first at line 2), expected each key once");
  EXPECT_EQ(
      errorOf("reputation:\n  lists: [{file: a, format: hosts, format: cidr}]\n"),
      "sekisho.yaml:2: reputation.lists[0].format: duplicate key (first at line 2), expected each key once");
  EXPECT_EQ(
      errorOf("resolve:\n  edi.example: 10.0.0.1\n  EDI.example.: 10.0.0.2\n"),
      "sekisho.yaml:3: resolve[edi.example]: duplicate host (first at line 2), expected each host once");
}

TEST(ConfigErrors, RejectsWrongTypes) {
  EXPECT_EQ(
      errorOf("allow_clients: 10.0.0.0/8\n"),
      "sekisho.yaml:1: allow_clients: is a single value, expected a list of client networks or addresses "
      "(such as 10.0.0.0/8)");
  EXPECT_EQ(errorOf("tls: true\n"),
            "sekisho.yaml:1: tls: is a single value, expected a map with keys intercept, no_intercept, "
            "upstream_ca_file, remember_for, http2, leaf_cache_dir, leaf_cache_entries");
  EXPECT_EQ(errorOf("tls:\n  no_intercept: {a: b}\n"),
            "sekisho.yaml:2: tls.no_intercept: is a map, expected a list of host patterns (\"host\" or "
            "\"*.domain\")");
  EXPECT_EQ(errorOf("workers: [1]\n"),
            "sekisho.yaml:1: workers: is a list, expected \"auto\" or a number from 1 to 256");
  EXPECT_EQ(errorOf("tls:\n  intercept: maybe\n"),
            "sekisho.yaml:2: tls.intercept: 'maybe' is not true or false, expected true or false");
  EXPECT_EQ(errorOf("ca:\n  cert:\n  key: k.pem\n"),
            "sekisho.yaml:2: ca.cert: has no value, expected a file path");
  EXPECT_EQ(errorOf("ca:\n  cert: \"\"\n"), "sekisho.yaml:2: ca.cert: is empty, expected a file path");
  EXPECT_EQ(errorOf("resolve: [a, b]\n"),
            "sekisho.yaml:1: resolve: is a list, expected a map of host name: IP address");
  EXPECT_EQ(
      errorOf("reputation:\n  lists:\n    - blocklist.txt\n"),
      "sekisho.yaml:3: reputation.lists[0]: is a single value, expected a map such as {file: blocklist.txt, "
      "format: domains, category: malware}");
  EXPECT_EQ(
      errorOf("[a]: 1\n"),
      "sekisho.yaml:1: top level: has a key that is a list, expected key names such as listen, workers, "
      "allow_clients, connect_ports, http_ports, resolve, visible_hostname, ca, tls, reputation, sandbox, "
      "log, admin, pac, timeouts, limits");
}

TEST(ConfigErrors, AcceptsYamlBooleanSpellings) {
  EXPECT_FALSE(mustLoad("tls: {intercept: no}\n")->tls.intercept);
  EXPECT_FALSE(mustLoad("tls: {intercept: Off}\n")->tls.intercept);
  EXPECT_TRUE(mustLoad("tls: {intercept: yes}\n")->tls.intercept);
  EXPECT_TRUE(mustLoad("tls: {intercept: TRUE}\n")->tls.intercept);
}

TEST(ConfigErrors, QuotesBadValuesSafely) {
  EXPECT_EQ(errorOf("log:\n  level: \"loud\\x01\"\n"),
            "sekisho.yaml:2: log.level: 'loud\\x01' is unknown, expected one of debug, info, warn, error");
  std::string longValue(200, 'a');
  std::string err = errorOf("log:\n  format: " + longValue + "\n");
  EXPECT_EQ(err, "sekisho.yaml:2: log.format: '" + std::string(64, 'a') +
                     "...' is unknown, expected squid, combined, sekisho, json, or a Squid logformat string");
}

// ---- listen, workers, clients ----

TEST(ConfigListen, AcceptsSingleStringAndIpv6) {
  ConfigPtr c = mustLoad("listen: \"[::]:3128\"\n");
  ASSERT_EQ(c->listen.size(), 1u);
  EXPECT_EQ(c->listen[0].toString(), "[::]:3128");
  EXPECT_TRUE(c->listen[0].isAny());
}

TEST(ConfigListen, RejectsHostNamesEmptyAndDuplicates) {
  EXPECT_EQ(
      errorOf("listen: [\"localhost:3128\"]\n"),
      "sekisho.yaml:1: listen[0]: 'localhost:3128' is not an IP address and port, expected \"ip:port\" or "
      "\"[v6]:port\" (host names are not resolved here)");
  EXPECT_EQ(errorOf("listen: []\n"),
            "sekisho.yaml:1: listen: is an empty list, expected at least one \"ip:port\" or \"[v6]:port\"");
  EXPECT_EQ(errorOf("listen:\n  - 127.0.0.1:3128\n  - 10.0.0.1:3128\n  - 127.0.0.1:3128\n"),
            "sekisho.yaml:4: listen[2]: 127.0.0.1:3128 is listed twice (also listen[0]), expected each "
            "address once");
  EXPECT_EQ(
      errorOf("listen: 3128\n"),
      "sekisho.yaml:1: listen: 3128 is not an IP address and port, expected \"ip:port\" or \"[v6]:port\" "
      "(host names are not resolved here)");
  EXPECT_EQ(errorOf("listen:\n"),
            "sekisho.yaml:1: listen: has no value, expected a list of \"ip:port\" or "
            "\"[v6]:port\"");
}

TEST(ConfigListen, RejectsAdminListenerOnAProxyListener) {
  EXPECT_EQ(
      errorOf("listen: [\"127.0.0.1:3128\"]\nadmin:\n  listen: 127.0.0.1:3128\n"),
      "sekisho.yaml:3: admin.listen: 127.0.0.1:3128 is also a proxy listener (listen), expected a different "
      "address");
  EXPECT_EQ(errorOf("listen:\n  - 127.0.0.1:3128\n  - 127.0.0.1:3129\n"),
            "sekisho.yaml:3: listen[1]: 127.0.0.1:3129 is also the admin listener (admin.listen default), "
            "expected a "
            "different address");
  ConfigPtr c = mustLoad("listen: [\"127.0.0.1:3129\"]\nadmin: {listen: \"\"}\n");
  EXPECT_FALSE(c->admin.listen);
  EXPECT_EQ(c->admin.listenText, "");
}

TEST(ConfigListen, AdminListenMustBeAnAddress) {
  EXPECT_EQ(
      errorOf("admin:\n  listen: admin.local:80\n"),
      "sekisho.yaml:2: admin.listen: 'admin.local:80' is not an IP address and port, expected \"ip:port\", "
      "or \"\" to turn the admin listener off (host names are not resolved here)");
  EXPECT_FALSE(mustLoad("admin:\n  listen:\n")->admin.listen);
}

TEST(ConfigWorkers, AcceptsAutoAndNumbersWithinBounds) {
  EXPECT_EQ(mustLoad("workers: auto\n")->workers, defaults()->workers);
  EXPECT_EQ(mustLoad("workers: 1\n")->workers, 1u);
  EXPECT_EQ(mustLoad("workers: 256\n")->workers, 256u);
  EXPECT_EQ(errorOf("workers: 0\n"),
            "sekisho.yaml:1: workers: 0 is out of range, expected \"auto\" or a number "
            "from 1 to 256");
  EXPECT_EQ(errorOf("workers: 257\n"),
            "sekisho.yaml:1: workers: 257 is out of range, expected \"auto\" or a "
            "number from 1 to 256");
  EXPECT_EQ(errorOf("workers: -1\n"),
            "sekisho.yaml:1: workers: '-1' is not a number, expected \"auto\" or a "
            "number from 1 to 256");
  EXPECT_EQ(errorOf("workers: Auto\n"),
            "sekisho.yaml:1: workers: 'Auto' is not a number, expected \"auto\" or a "
            "number from 1 to 256");
}

TEST(ConfigClients, RefusesAnySlashZeroAsOpenProxy) {
  EXPECT_EQ(
      errorOf("allow_clients:\n  - 10.0.0.0/8\n  - 0.0.0.0/0\n"),
      "sekisho.yaml:3: allow_clients[1]: '0.0.0.0/0' matches every address and would make an open proxy, "
      "expected the networks of your own clients (such as 10.0.0.0/8)");
  EXPECT_EQ(
      errorOf("allow_clients: [\"::/0\"]\n"),
      "sekisho.yaml:1: allow_clients[0]: '::/0' matches every address and would make an open proxy, expected "
      "the networks of your own clients (such as 10.0.0.0/8)");
  // Host bits do not hide a /0.
  EXPECT_NE(errorOf("allow_clients: [\"10.1.2.3/0\"]\n").find("open proxy"), std::string::npos);
}

TEST(ConfigClients, RefusesEmptyListAndBadNetworks) {
  EXPECT_EQ(
      errorOf("allow_clients: []\n"),
      "sekisho.yaml:1: allow_clients: is an empty list, which would refuse every client, expected at least "
      "one network (such as 10.0.0.0/8)");
  EXPECT_EQ(
      errorOf("allow_clients: [10.1.2.3/8]\n"),
      "sekisho.yaml:1: allow_clients[0]: '10.1.2.3/8' has host bits set, expected a network address such as "
      "10.0.0.0/8");
  EXPECT_EQ(errorOf("allow_clients: [10.0.0.0/33]\n"),
            "sekisho.yaml:1: allow_clients[0]: '10.0.0.0/33' has a bad prefix length, expected /1 to /32");
  EXPECT_EQ(errorOf("allow_clients: [office.example]\n"),
            "sekisho.yaml:1: allow_clients[0]: 'office.example' is not an address or network, expected an IP "
            "address or CIDR such as 10.0.0.0/8");
}

// ---- durations, sizes, counts ----

TEST(ConfigDurations, ParsesUnitsAndPlainSeconds) {
  const char* yaml =
      "timeouts:\n  connect: 250ms\n  client_idle: 45\n  idle: 3m\n  tunnel_idle: 2h\n"
      "  request_header: 1s\n";
  ConfigPtr c = mustLoad(yaml);
  EXPECT_EQ(c->timeouts.connect, 250ms);
  EXPECT_EQ(c->timeouts.clientIdle, 45s);
  EXPECT_EQ(c->timeouts.idle, 3min);
  EXPECT_EQ(c->timeouts.tunnelIdle, 2h);
  EXPECT_EQ(c->timeouts.requestHeader, 1s);
}

TEST(ConfigDurations, RejectsOutOfBoundsAndBadUnits) {
  EXPECT_EQ(errorOf("timeouts:\n  request_header: 20m\n"),
            "sekisho.yaml:2: timeouts.request_header: '20m' is out of range, expected 1s to 10m");
  EXPECT_EQ(errorOf("timeouts:\n  request_header: 999ms\n"),
            "sekisho.yaml:2: timeouts.request_header: '999ms' is out of range, expected 1s to 10m");
  EXPECT_EQ(errorOf("timeouts:\n  connect: 10 s\n"),
            "sekisho.yaml:2: timeouts.connect: '10 s' is not a duration, expected a duration such as 500ms, "
            "10s, 2m "
            "or 1h (plain numbers are seconds), 100ms to 5m");
  EXPECT_EQ(errorOf("timeouts:\n  connect: 1d\n").substr(0, 50),
            "sekisho.yaml:2: timeouts.connect: '1d' is not a du");
  EXPECT_NE(errorOf("timeouts:\n  connect: 99999999999999999999h\n").find("is not a duration"),
            std::string::npos);
  EXPECT_EQ(errorOf("timeouts:\n  shutdown: 11m\n"),
            "sekisho.yaml:2: timeouts.shutdown: '11m' is out of range, expected 0s to 10m");
}

TEST(ConfigSizes, AcceptsSuffixesAndBounds) {
  EXPECT_EQ(mustLoad("limits: {buffer_bytes: 256k}\n")->limits.bufferBytes, 256u * 1024);
  EXPECT_EQ(mustLoad("limits: {buffer_bytes: 2M}\n")->limits.bufferBytes, 2u * 1024 * 1024);
  EXPECT_EQ(mustLoad("limits: {buffer_bytes: 65536}\n")->limits.bufferBytes, 65536u);
  EXPECT_EQ(errorOf("limits:\n  buffer_bytes: 1k\n"),
            "sekisho.yaml:2: limits.buffer_bytes: '1k' is out of range, expected 4k to 64m");
  EXPECT_EQ(
      errorOf("limits:\n  buffer_bytes: 1g\n"),
      "sekisho.yaml:2: limits.buffer_bytes: '1g' is not a size, expected a size in bytes, or with a k or m "
      "suffix (such as 256k), 4k to 64m");
}

TEST(ConfigSizes, CountsAreWholeNumbersWithinBounds) {
  EXPECT_EQ(errorOf("limits:\n  max_headers: 5\n"),
            "sekisho.yaml:2: limits.max_headers: 5 is out of range, expected 16 to 10000");
  EXPECT_EQ(errorOf("limits:\n  max_connections: 1e6\n"),
            "sekisho.yaml:2: limits.max_connections: '1e6' is not a whole number, expected 1 to 1000000");
  EXPECT_EQ(errorOf("limits:\n  max_connections: 99999999999999999999999\n"),
            "sekisho.yaml:2: limits.max_connections: '99999999999999999999999' is not a whole number, "
            "expected 1 to "
            "1000000");
}

TEST(ConfigSizes, HeadLimitMustHoldTheRequestLine) {
  EXPECT_EQ(
      errorOf("limits:\n  max_head_bytes: 4096\n"),
      "sekisho.yaml:2: limits.max_head_bytes: 4096 is smaller than limits.max_request_line (8192), expected "
      "at least that");
  EXPECT_EQ(errorOf("limits:\n  max_request_line: 1048576\n"),
            "sekisho.yaml:2: limits.max_request_line: 1048576 is larger than limits.max_head_bytes (65536), "
            "expected at most that");
}

// ---- paths ----

TEST(ConfigPaths, ResolvesRelativePathsAgainstTheFilesDirectory) {
  TempDir dir;
  std::string file = dir.write("conf/sub/sekisho.yaml",
                               "ca: {cert: ../pki/ca.crt}\nlog: {access: logs/access.log}\n"
                               "reputation:\n  lists: [{file: ./feeds/a.txt}]\n");
  auto r = loadFile(file);
  ASSERT_TRUE(r) << r.error().detail;
  std::string base = dir.path() + "/conf/sub";
  EXPECT_EQ((*r)->baseDir, base);
  EXPECT_EQ((*r)->ca.cert, dir.path() + "/conf/pki/ca.crt");
  EXPECT_EQ((*r)->ca.key, base + "/ca.key");  // defaults are resolved too
  EXPECT_EQ((*r)->log.access, base + "/logs/access.log");
  EXPECT_EQ((*r)->reputation.lists[0].file, base + "/feeds/a.txt");
  EXPECT_EQ((*r)->tls.upstreamCaFile, "");
}

TEST(ConfigPaths, RelativeFileNameResolvesAgainstCwd) {
  TempDir dir;
  dir.write("sekisho.yaml", "ca: {cert: my.crt}\n");
  std::string old = cwd();
  fs::current_path(dir.path());
  auto r = loadFile("sekisho.yaml");
  fs::current_path(old);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ((*r)->sourceFile, dir.path() + "/sekisho.yaml");
  EXPECT_EQ((*r)->ca.cert, dir.path() + "/my.crt");
}

TEST(ConfigPaths, LoadStringResolvesAgainstCwdAndKeepsSpecialValues) {
  ConfigPtr c =
      mustLoad("log: {access: \"\"}\ntls: {upstream_ca_file: /etc/ssl/extra.pem}\nca: {chain: c.pem}\n");
  EXPECT_EQ(c->baseDir, cwd());
  EXPECT_EQ(c->log.access, "");
  EXPECT_EQ(c->tls.upstreamCaFile, "/etc/ssl/extra.pem");
  EXPECT_EQ(c->ca.chain, cwd() + "/c.pem");
  EXPECT_EQ(mustLoad("log: {access: \"-\"}\n")->log.access, "-");
  EXPECT_EQ(mustLoad("log: {access: }\n")->log.access, "");
}

TEST(ConfigPaths, LeafCacheDirIsOffByDefaultAndResolvedLikeOtherPaths) {
  TempDir dir;
  std::string file = dir.write("conf/sekisho.yaml", "tls:\n  leaf_cache_dir: state/leaves\n");
  auto r = loadFile(file);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ((*r)->tls.leafCacheDir, dir.path() + "/conf/state/leaves");
  EXPECT_EQ(mustLoad("tls: {leaf_cache_dir: /var/lib/sekisho/leaves}\n")->tls.leafCacheDir,
            "/var/lib/sekisho/leaves");
  EXPECT_EQ(mustLoad("tls: {leaf_cache_dir: \"\"}\n")->tls.leafCacheDir, "");
  EXPECT_EQ(mustLoad("tls: {leaf_cache_dir: }\n")->tls.leafCacheDir, "");
  EXPECT_EQ(mustLoad("tls: {leaf_cache_entries: 1}\n")->tls.leafCacheEntries, 1u);
  EXPECT_EQ(mustLoad("tls: {leaf_cache_entries: 1000000}\n")->tls.leafCacheEntries, 1000000u);
}

TEST(ConfigPaths, LeafCacheKeysRejectBadValuesWithLine) {
  EXPECT_EQ(errorOf("tls:\n  intercept: true\n  leaf_cache_dir: [a, b]\n"),
            "sekisho.yaml:3: tls.leaf_cache_dir: is a list, expected a file path, or \"\" for none");
  EXPECT_EQ(errorOf("tls:\n  leaf_cache_dir: {a: b}\n"),
            "sekisho.yaml:2: tls.leaf_cache_dir: is a map, expected a file path, or \"\" for none");
  EXPECT_EQ(errorOf("tls:\n  leaf_cache_dir: \"a\\tb\"\n"),
            "sekisho.yaml:2: tls.leaf_cache_dir: 'a\\x09b' contains control characters, expected a file path, or "
            "\"\" for none");
  EXPECT_EQ(errorOf("tls:\n\n  leaf_cache_entries: 0\n"),
            "sekisho.yaml:3: tls.leaf_cache_entries: 0 is out of range, expected 1 to 1000000");
  EXPECT_EQ(errorOf("tls:\n  leaf_cache_entries: 1000001\n"),
            "sekisho.yaml:2: tls.leaf_cache_entries: 1000001 is out of range, expected 1 to 1000000");
  EXPECT_EQ(errorOf("tls:\n  leaf_cache_entries: lots\n"),
            "sekisho.yaml:2: tls.leaf_cache_entries: 'lots' is not a whole number, expected 1 to 1000000");
  EXPECT_EQ(errorOf("tls:\n  leaf_cache_entries: [1]\n"),
            "sekisho.yaml:2: tls.leaf_cache_entries: is a list, expected a whole number from 1 to 1000000");
}

TEST(ConfigPaths, ErrorsForMissingOrUnreadableFiles) {
  TempDir dir;
  auto missing = loadFile(dir.path() + "/nope.yaml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrKind::Io);
  EXPECT_EQ(missing.error().detail, dir.path() + "/nope.yaml: cannot open: No such file or directory");
  auto isDir = loadFile(dir.path());
  ASSERT_FALSE(isDir);
  EXPECT_EQ(isDir.error().detail, dir.path() + ": is a directory, expected a YAML file");
  std::string bad = dir.write("bad.yaml", "workers: 2\nworkers: 3\n");
  auto r = loadFile(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrKind::Config);
  EXPECT_EQ(r.error().detail, bad + ":2: workers: duplicate key (first at line 1), expected each key once");
}

// ---- names and patterns ----

TEST(ConfigNames, ValidatesAndLowerCasesPatterns) {
  EXPECT_EQ(
      errorOf("tls:\n  no_intercept:\n    - \"*.bank.example\"\n    - ok.example\n    - \"*.*.example\"\n"),
      "sekisho.yaml:5: tls.no_intercept[2]: '*.*.example' is not a valid pattern, expected a host or '*.' + "
      "domain");
  for (const char* bad :
       {"*", "*.", "a..b", "-a.example", "a_b.example", "*example.com", "host:80", "1.2.3.4.5"})
    EXPECT_NE(errorOf(std::string("pac:\n  direct: [\"") + bad + "\"]\n").find("is not a valid pattern"),
              std::string::npos)
        << bad;
  ConfigPtr c = mustLoad("pac:\n  direct: [\"*.Corp.Example.\", \"2001:DB8::1\", \"Intranet\"]\n");
  EXPECT_EQ(c->pac.direct, (std::vector<std::string>{"*.corp.example", "2001:db8::1", "intranet"}));
  EXPECT_TRUE(mustLoad("tls:\n  no_intercept:\n")->tls.noIntercept.empty());
}

TEST(ConfigNames, ValidatesResolveHostsAndAddresses) {
  EXPECT_EQ(
      errorOf("resolve:\n  edi.example: edi-backup.example\n"),
      "sekisho.yaml:2: resolve[edi.example]: 'edi-backup.example' is not an IP address, expected an IPv4 or "
      "IPv6 address");
  EXPECT_EQ(errorOf("resolve:\n  \"bad host\": 10.0.0.1\n"),
            "sekisho.yaml:2: resolve: 'bad host' is not a host name, expected a DNS name such as "
            "edi.example.co.jp");
  EXPECT_EQ(errorOf("resolve:\n  10.0.0.1: 10.0.0.2\n"),
            "sekisho.yaml:2: resolve: '10.0.0.1' is an IP address, expected a host name");
  EXPECT_EQ(errorOf("resolve:\n  a.example:\n"),
            "sekisho.yaml:2: resolve[a.example]: has no value, expected an IPv4 or IPv6 address");
}

TEST(ConfigNames, ValidatesPacProxiesAndVisibleHostname) {
  EXPECT_EQ(
      errorOf("pac:\n  proxies: [\"proxy1.example\"]\n"),
      "sekisho.yaml:2: pac.proxies[0]: 'proxy1.example' is not a host and port, expected \"host:port\" such "
      "as proxy1.example.co.jp:3128");
  EXPECT_NE(errorOf("pac:\n  proxies: [\"p.example:0\"]\n").find("is not a host and port"),
            std::string::npos);
  EXPECT_EQ(errorOf("visible_hostname: \"proxy one\"\n"),
            "sekisho.yaml:1: visible_hostname: 'proxy one' is not a host name, expected a DNS name such as "
            "proxy.example.co.jp");
}

// ---- reputation, sandbox, log ----

TEST(ConfigReputation, NormalizesRedisStoreUrls) {
  EXPECT_EQ(mustLoad("reputation: {store: \"redis://10.0.0.5\"}\n")->reputation.store,
            "redis://10.0.0.5:6379/0");
  EXPECT_EQ(mustLoad("reputation: {store: \"redis://Redis.Internal:6380/2\"}\n")->reputation.store,
            "redis://redis.internal:6380/2");
  EXPECT_EQ(mustLoad("reputation: {store: \"redis://[::1]:7000\"}\n")->reputation.store,
            "redis://[::1]:7000/0");
  EXPECT_EQ(mustLoad("reputation: {store: \"redis://[::1]/3\"}\n")->reputation.store, "redis://[::1]:6379/3");
  EXPECT_EQ(mustLoad("reputation: {store: \"redis://:s3cret@Redis.Internal/1\"}\n")->reputation.store,
            "redis://:s3cret@redis.internal:6379/1");
  for (const char* bad : {"redis://", "redis://h:0", "redis://h:99999", "redis://h/x", "redis://user:pw@h", "redis://@h",
                          "rediss://h", "memcached://h", "Embedded", "redis://[::1"})
    EXPECT_EQ(errorOf(std::string("reputation:\n  store: \"") + bad + "\"\n"),
              std::string("sekisho.yaml:2: reputation.store: '") + bad +
                  "' is not a store, expected embedded or redis://host[:port][/db]")
        << bad;
}

TEST(ConfigReputation, ValidatesListEntries) {
  EXPECT_EQ(errorOf("reputation:\n  lists:\n    - format: hosts\n"),
            "sekisho.yaml:3: reputation.lists[0]: has no file, expected the list file (required)");
  EXPECT_EQ(errorOf("reputation:\n  lists:\n    - file: a.txt\n      format: csv\n"),
            "sekisho.yaml:4: reputation.lists[0].format: 'csv' is unknown, expected one of domains, hosts, "
            "urlhaus, "
            "threatfox, cidr, squidguard");
  EXPECT_EQ(
      errorOf("reputation:\n  lists:\n    - {file: a.txt, category: \"C&C\"}\n"),
      "sekisho.yaml:3: reputation.lists[0].category: 'C&C' is not a category, expected lower-case letters, "
      "digits, '_' or '-' (such as malware or c2)");
  EXPECT_EQ(
      errorOf("reputation:\n  sensitivity: extreme\n"),
      "sekisho.yaml:2: reputation.sensitivity: 'extreme' is unknown, expected one of low, medium, high");
  EXPECT_EQ(errorOf("reputation:\n  on_error: fail\n"),
            "sekisho.yaml:2: reputation.on_error: 'fail' is unknown, expected one of open, closed");
  for (const char* f : {"domains", "hosts", "urlhaus", "threatfox", "cidr", "squidguard"})
    EXPECT_EQ(mustLoad(std::string("reputation: {lists: [{file: x, format: ") + f + "}]}\n")
                  ->reputation.lists[0]
                  .format,
              f);
}

TEST(ConfigSandbox, AcceptsEmptyOrHttpUrls) {
  EXPECT_EQ(mustLoad("sandbox: {url: \"http://10.0.0.9:8090\"}\n")->sandbox.url, "http://10.0.0.9:8090");
  EXPECT_EQ(mustLoad("sandbox: {url: \"\"}\n")->sandbox.url, "");
  EXPECT_EQ(
      errorOf("sandbox:\n  url: ftp://cape\n"),
      "sekisho.yaml:2: sandbox.url: 'ftp://cape' is not a URL, expected \"\" or an http:// or https:// URL");
  EXPECT_NE(errorOf("sandbox:\n  url: \"http:// cape\"\n").find("is not a URL"), std::string::npos);
  EXPECT_NE(errorOf("sandbox:\n  url: \"https://\"\n").find("is not a URL"), std::string::npos);
  EXPECT_EQ(errorOf("sandbox:\n  mode: block\n"),
            "sekisho.yaml:2: sandbox.mode: 'block' is unknown, expected one of hold, learn");
}
