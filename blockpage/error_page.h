// Pages the proxy writes itself when it refuses or fails a request (400/403/413/414/431/501/502/
// 504/508): what happened and why in plain words, in Japanese or English, everything escaped.
// The reputation block page with its review form (a later module) shares the layout and escaping.
#pragma once
#include <string>
#include <string_view>

namespace sekisho::blockpage {

enum class Lang : uint8_t { En, Ja };

// Picks ja or en from an Accept-Language value by q-value (RFC 9110 §12.5.4); default en.
Lang pickLanguage(std::string_view acceptLanguage);

// HTML-escapes & < > " ' (text and attribute safe).
std::string htmlEscape(std::string_view s);

struct ErrorInfo {
  int status = 500;
  std::string_view reason;  // machine reason, e.g. "connect_port_not_allowed" (selects the text)
  std::string_view url;     // what the client asked for; shown escaped
  std::string_view detail;  // extra technical detail (escaped), may be empty
  std::string_view client;  // client address
  std::string_view refId;   // reference id, shown on the page
  std::string_view proxyName;  // visible hostname
  double epoch = 0;            // when
  Lang lang = Lang::En;
};

// Full HTML document (UTF-8). The title and explanation come from `reason`; unknown reasons get
// a generic text for the status.
std::string renderErrorPage(const ErrorInfo& info);

// The standard reason phrase for a status ("Forbidden"), "" when unknown.
std::string_view reasonPhrase(int status);

}  // namespace sekisho::blockpage
