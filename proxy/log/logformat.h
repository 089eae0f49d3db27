// Access-log lines in Squid's logformat language (squid.conf `logformat`), so that a line can be
// shaped for whatever reads it: Squid's native ten fields for Calamaris and SARG, Apache's
// combined format, Sekisho's own (native plus why a request was refused), or a string of the
// admin's own. Pure: compile once (config load and log open), then print records.
//
// A code is `%` [quoting] [-] [0][width] [.precision] [{arg}] name [{arg}]:
//   quoting    none or `[`: one token: empty is "-"; space, control bytes, `"`, DEL and bytes
//              >= 0x80 are percent-encoded, so no value can add a field or a line.
//              `"`: a quoted string ("..." with \" \\ and \xHH escapes, spaces kept).
//              `#`: URL-encoded (everything but unreserved characters).
//              `'`: as is, but control bytes and DEL are still percent-encoded.
//   -          left-align in `width`; `0` pads numbers with zeros; `.precision` cuts a string.
// Supported names (those Sekisho has a value for):
//   %ts %tu %tr %tl %tg    seconds, milliseconds, response time (ms), local and GMT time
//                          ("04/Dec/2026:22:12:13 +0000")
//   %>a %<a                client address, server address ("-" when none)
//   %Ss %Sh %>Hs           Squid request status, hierarchy code, HTTP status sent
//   %<st %>st              bytes sent to the client, bytes received from it
//   %rm %ru %rv %mt        method, URL, protocol version ("1.1"), MIME type of the reply
//   %un %ui                user name, ident ("-": Sekisho does no ident lookups)
//   %{Referer}>h %{User-Agent}>h   those request fields (no others are kept for the log)
//   %{reason}note %{ref}note %{mode}note   why the request was refused or failed, the
//                          reference id on its page, and how it went (http, tunnel, bump, h2, self)
//   %%                     a percent sign
// Anything else is refused with its column, so a typo fails at check-config, not in a report.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/result.h"
#include "proxy/log/record.h"

namespace sekisho::accesslog {

class LineFormat {
 public:
  // `spec` is one of the names below, or a logformat string (it contains a '%').
  static Result<LineFormat> compile(std::string_view spec);
  // The logformat string of a named format ("squid", "combined", "sekisho"), or nullopt.
  static std::optional<std::string_view> named(std::string_view name);

  void append(std::string& out, const Record& r) const;  // one line, without the newline

  enum class Field : uint8_t {
    Literal, Seconds, Millis, ResponseTime, LocalTime, GmtTime, ClientIp, ServerIp, SquidStatus,
    Hierarchy, HttpStatus, BytesOut, BytesIn, Method, Url, Version, MimeType, User, Ident,
    Referer, UserAgent, Reason, RefId, Mode
  };
  enum class Quote : uint8_t { Token, Quoted, Url, Raw };
  struct Token {
    Field field = Field::Literal;
    Quote quote = Quote::Token;
    bool left = false, zero = false;
    uint16_t width = 0;
    int32_t precision = -1;
    std::string literal;
  };

 private:
  std::vector<Token> tokens_;
};

}  // namespace sekisho::accesslog
