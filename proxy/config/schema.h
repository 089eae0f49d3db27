// The one table of configuration keys: each key's YAML path, kind, default, bounds and doc line.
// The loader (load.cc) walks YAML against this table; tests check that every default written
// here is what Config's own initialisers and defaults() produce, and that docs/CONFIG.md names
// every key. Adding a key means one row here plus its field in config.h.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/config/config.h"

namespace sekisho::config::schema {

enum class Kind : uint8_t {
  Section,      // a map of further keys; an empty value keeps every default
  Bool,         // true | false (also yes/no, on/off)
  Duration,     // "500ms", "10s", "2m", "1h" or a plain integer of seconds; bounds in ms
  Count,        // a whole number within [min, max]
  Size,         // bytes, with an optional k or m suffix (x1024); bounds in bytes
  Choice,       // one word of `choices` ("low|medium|high"); the setter gets its index
  Path,         // a file path, resolved against the config file's directory
  Workers,      // "auto" or a count within [min, max]
  Listen,       // list of "ip:port" (a single string also accepted), at least one, no duplicates
  AdminListen,  // "" or "ip:port"
  Clients,      // list of CIDRs or addresses; no /0 (that would be an open proxy)
  Ports,        // list of port numbers or "lo-hi" strings
  Resolve,      // map host -> IP literal
  Patterns,     // list of "host" or "*.domain"
  HostPorts,    // list of "host:port"
  HostName,     // one DNS name
  Store,        // "embedded" or "redis://host[:port][/db]"
  Lists,        // list of maps whose keys are the rows below "<path>[]"
  HttpUrl,      // "" or http(s)://...
  Category,     // [a-z0-9_-]+
  CategoryActions,  // map category -> block | allow | log
  LogFormat,    // json, squid, combined, sekisho, or a Squid logformat string (proxy/log/logformat.h)
};

// Flags for Path and Lists-item keys.
inline constexpr uint8_t kAllowEmpty = 1;  // "" (or no value) is allowed and means "none/off"
inline constexpr uint8_t kDashStdout = 2;  // "-" is kept as is (stdout), not resolved
inline constexpr uint8_t kRequired = 4;    // must be present (list items only)

using ChoiceSetter = void (*)(Config&, size_t index, std::string_view word);
using AdminT = decltype(Config::admin);
// Where a key's value goes. Keys under "reputation.lists[]" write into lists.back(), which the
// loader appends before it reads an item.
using Field = std::variant<std::monostate,  // Section
                           bool& (*)(Config&), Millis& (*)(Config&), size_t& (*)(Config&),
                           unsigned& (*)(Config&), std::string& (*)(Config&),
                           std::vector<std::string>& (*)(Config&), std::vector<net::SocketAddr>& (*)(Config&),
                           net::CidrSet& (*)(Config&), std::vector<net::PortRange>& (*)(Config&),
                           std::map<std::string, net::SocketAddr>& (*)(Config&),
                           std::map<std::string, std::string>& (*)(Config&),
                           std::vector<ListSpec>& (*)(Config&), AdminT& (*)(Config&), ChoiceSetter>;

struct Key {
  std::string_view path{};  // "timeouts.connect"; list items: "reputation.lists[].file"
  Kind kind = Kind::Section;
  std::string_view defaultText{};  // the default as YAML would write it ("" = none / empty)
  int64_t min = 0, max = 0;        // Count, Size, Workers: value; Duration: milliseconds
  std::string_view choices{};      // Choice: "low|medium|high", in the enum's order
  uint8_t flags = 0;               // kAllowEmpty | kDashStdout | kRequired
  Field field{};
  std::string_view doc{};  // one line for docs and error messages
};

std::span<const Key> keys();

// The last component of a path: "connect" for "timeouts.connect", "file" for "reputation.lists[].file".
std::string_view leafName(std::string_view path);
// The enclosing path: "timeouts" for "timeouts.connect", "" for "listen".
std::string_view parentPath(std::string_view path);

}  // namespace sekisho::config::schema
