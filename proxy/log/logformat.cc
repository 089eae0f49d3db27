#include "proxy/log/logformat.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cctype>
#include <ctime>

namespace sekisho::accesslog {
namespace {

using sekisho::fail;

using Field = LineFormat::Field;
using Quote = LineFormat::Quote;

struct Code {
  std::string_view name;
  Field field;
};
// Squid's names for the values Sekisho has; the longest that matches wins (">Hs" over ">a").
constexpr Code kCodes[] = {
    {"ts", Field::Seconds},    {"tu", Field::Millis},     {"tr", Field::ResponseTime}, {"tl", Field::LocalTime},
    {"tg", Field::GmtTime},    {">a", Field::ClientIp},   {"<a", Field::ServerIp},     {"Ss", Field::SquidStatus},
    {"Sh", Field::Hierarchy},  {">Hs", Field::HttpStatus}, {"<st", Field::BytesOut},   {">st", Field::BytesIn},
    {"rm", Field::Method},     {"ru", Field::Url},        {"rv", Field::Version},      {"mt", Field::MimeType},
    {"un", Field::User},       {"ui", Field::Ident},      {">h", Field::Referer},      {"note", Field::Reason},
};

constexpr std::string_view kSquid = "%10ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt";
constexpr std::string_view kCombined =
    "%>a %[ui %[un [%tl] \"%rm %ru HTTP/%rv\" %>Hs %<st \"%{Referer}>h\" \"%{User-Agent}>h\" %Ss:%Sh";
// Squid's ten fields, then why: three more fields, always present ("-" when there is nothing).
constexpr std::string_view kSekisho =
    "%10ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt reason=%{reason}note ref=%{ref}note "
    "mode=%{mode}note";

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

constexpr char kHex[] = "0123456789ABCDEF";
void percent(std::string& out, unsigned char c) {
  out += '%';
  out += kHex[c >> 4];
  out += kHex[c & 0xF];
}

void quoteInto(std::string& out, std::string_view s, Quote q) {
  switch (q) {
    case Quote::Token:
      if (s.empty()) s = "-";
      for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c >= 0x7F || c == '"') percent(out, c);
        else out += ch;
      }
      return;
    case Quote::Raw:
      if (s.empty()) s = "-";
      for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) percent(out, c);
        else out += ch;
      }
      return;
    case Quote::Url:
      if (s.empty()) s = "-";
      for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out += ch;
        else percent(out, c);
      }
      return;
    case Quote::Quoted:
      out += '"';
      if (s.empty()) s = "-";
      for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
          out += '\\';
          out += ch;
        } else if (c < 0x20 || c >= 0x7F) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;
        }
      }
      out += '"';
      return;
  }
}

uint64_t epochMillis(double epoch) {
  if (!std::isfinite(epoch) || epoch <= 0) return 0;
  return static_cast<uint64_t>(std::llround(epoch * 1000.0));
}

std::string timeText(uint64_t seconds, bool local) {
  time_t t = time_t(seconds);
  tm parts{};
  if (local) localtime_r(&t, &parts);
  else gmtime_r(&t, &parts);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S %z", &parts);
  return std::string(buf, n);
}

void pad(std::string& out, size_t from, const LineFormat::Token& t, bool number) {
  size_t len = out.size() - from;
  if (t.width <= len) return;
  size_t fill = t.width - len;
  if (t.left) out.append(fill, ' ');
  else out.insert(from, fill, number && t.zero ? '0' : ' ');
}

}  // namespace

std::optional<std::string_view> LineFormat::named(std::string_view name) {
  if (name == "squid") return kSquid;
  if (name == "combined") return kCombined;
  if (name == "sekisho") return kSekisho;
  return std::nullopt;
}

Result<LineFormat> LineFormat::compile(std::string_view spec) {
  if (auto n = named(spec)) spec = *n;
  LineFormat f;
  std::string lit;
  auto flushLiteral = [&] {
    if (lit.empty()) return;
    Token t;
    t.literal = std::move(lit);
    f.tokens_.push_back(std::move(t));
    lit.clear();
  };
  auto bad = [&](size_t at, const std::string& what) {
    return fail(ErrKind::Config, Side::Config, "column " + std::to_string(at + 1) + ": " + what);
  };
  for (size_t i = 0; i < spec.size();) {
    char c = spec[i];
    if (c != '%') {
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return bad(i, "a control character");
      lit += c;
      ++i;
      continue;
    }
    size_t start = i++;
    if (i < spec.size() && spec[i] == '%') {
      lit += '%';
      ++i;
      continue;
    }
    Token t;
    if (i < spec.size()) {
      switch (spec[i]) {
        case '"': t.quote = Quote::Quoted; ++i; break;
        case '[': t.quote = Quote::Token; ++i; break;
        case '#': t.quote = Quote::Url; ++i; break;
        case '\'': t.quote = Quote::Raw; ++i; break;
        default: break;
      }
    }
    if (i < spec.size() && spec[i] == '-') {
      t.left = true;
      ++i;
    }
    if (i < spec.size() && spec[i] == '0') {
      t.zero = true;
      ++i;
    }
    auto digits = [&](int64_t* v) {
      size_t b = i;
      int64_t n = 0;
      while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i])) && i - b < 4) n = n * 10 + (spec[i++] - '0');
      *v = n;
      return i > b;
    };
    int64_t n = 0;
    if (digits(&n)) t.width = uint16_t(n);
    if (i < spec.size() && spec[i] == '.') {
      ++i;
      if (!digits(&n)) return bad(i, "'.' must be followed by a precision");
      t.precision = int32_t(n);
    }
    std::string arg;
    bool hasArg = false;
    auto readArg = [&]() -> bool {
      size_t close = spec.find('}', i);
      if (close == std::string_view::npos) return false;
      arg.assign(spec.substr(i + 1, close - i - 1));
      hasArg = true;
      i = close + 1;
      return true;
    };
    if (i < spec.size() && spec[i] == '{' && !readArg()) return bad(i, "'{' without '}'");
    const Code* best = nullptr;
    for (const Code& k : kCodes)
      if (spec.substr(i, k.name.size()) == k.name && (!best || k.name.size() > best->name.size())) best = &k;
    if (!best) {
      std::string_view shown = spec.substr(start, std::min<size_t>(6, spec.size() - start));
      return bad(start, "unknown or unsupported logformat code \"" + std::string(shown) +
                             "\" (Sekisho has %ts %tu %tr %tl %tg %>a %<a %Ss %Sh %>Hs %<st %>st %rm %ru %rv %mt "
                             "%un %ui %{Referer}>h %{User-Agent}>h %{reason|ref|mode}note %%)");
    }
    i += best->name.size();
    if (!hasArg && i < spec.size() && spec[i] == '{' && !readArg()) return bad(i, "'{' without '}'");
    t.field = best->field;
    if (best->field == Field::Referer) {
      if (iequals(arg, "Referer")) t.field = Field::Referer;
      else if (iequals(arg, "User-Agent")) t.field = Field::UserAgent;
      else
        return bad(start, hasArg ? "the request field \"" + arg + "\" is not kept for the log (Referer and User-Agent are)"
                                  : "%>h needs a field name: %{Referer}>h or %{User-Agent}>h");
    } else if (best->field == Field::Reason) {
      if (arg == "reason") t.field = Field::Reason;
      else if (arg == "ref") t.field = Field::RefId;
      else if (arg == "mode") t.field = Field::Mode;
      else
        return bad(start, hasArg ? "there is no annotation \"" + arg + "\" (reason, ref and mode are)"
                                  : "%note needs a name: %{reason}note, %{ref}note or %{mode}note");
    } else if (hasArg) {
      return bad(start, "%" + std::string(best->name) + " takes no {argument}");
    }
    flushLiteral();
    f.tokens_.push_back(std::move(t));
  }
  flushLiteral();
  if (f.tokens_.empty()) return fail(ErrKind::Config, Side::Config, "an empty logformat");
  return f;
}

void LineFormat::append(std::string& out, const Record& r) const {
  uint64_t ms = epochMillis(r.startEpoch);
  for (const Token& t : tokens_) {
    if (t.field == Field::Literal) {
      out += t.literal;
      continue;
    }
    size_t from = out.size();
    auto number = [&](uint64_t v) {
      char num[24];
      int n = std::snprintf(num, sizeof num, "%" PRIu64, v);
      out.append(num, size_t(n));
      pad(out, from, t, true);
    };
    auto text = [&](std::string_view s) {
      if (t.precision >= 0 && s.size() > size_t(t.precision)) s = s.substr(0, size_t(t.precision));
      quoteInto(out, s, t.quote);
      pad(out, from, t, false);
    };
    switch (t.field) {
      case Field::Literal: break;
      case Field::Seconds: number(ms / 1000); break;
      case Field::Millis: number(ms % 1000); break;
      case Field::ResponseTime: number(r.elapsedMs); break;
      case Field::LocalTime:  // our own text: never quoted or encoded
      case Field::GmtTime:
        out += timeText(ms / 1000, t.field == Field::LocalTime);
        pad(out, from, t, false);
        break;
      case Field::ClientIp: text(r.client); break;
      case Field::ServerIp: text(r.peer); break;
      case Field::SquidStatus: text(r.squidCode); break;
      case Field::Hierarchy: text(r.hierarchy); break;
      case Field::HttpStatus: number(uint64_t(r.status < 0 ? 0 : r.status > 999 ? 999 : r.status)); break;
      case Field::BytesOut: number(r.bytesToClient); break;
      case Field::BytesIn: number(r.bytesFromClient); break;
      case Field::Method: text(r.method); break;
      case Field::Url: text(r.url); break;
      case Field::Version: text("1." + std::to_string(r.versionMinor)); break;
      case Field::MimeType: text(r.contentType); break;
      case Field::User: text(r.user); break;
      case Field::Ident: text("-"); break;
      case Field::Referer: text(r.referer); break;
      case Field::UserAgent: text(r.userAgent); break;
      case Field::Reason: text(r.reason); break;
      case Field::RefId: text(r.refId); break;
      case Field::Mode: text(r.mode); break;
    }
  }
}

}  // namespace sekisho::accesslog
