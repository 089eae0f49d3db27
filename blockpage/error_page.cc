// Error pages: one self-contained HTML5 document per refusal or failure. No scripts and no
// external resources (the page is shown while the network is exactly what is failing, and a
// Content-Security-Policy meta tag forbids anything else), all styles inline. Every value that
// came from the request or the network is made valid UTF-8 and HTML-escaped before it is placed.
#include "blockpage/error_page.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <optional>

#include "proxy/base/strings.h"

namespace sekisho::blockpage {
namespace {

// ---------------------------------------------------------------------------------------------
// Texts

struct Text {
  std::string_view title;  // the heading
  std::string_view what;   // what happened, in plain words
  std::string_view todo;   // what the user can do about it
};

struct ReasonText {
  std::string_view reason;
  Text en;
  Text ja;
};

// One row per machine reason. The status is not stored: the caller's status is shown.
constexpr ReasonText kReasons[] = {
    {"client_not_allowed",
     {"This computer is not allowed to use the proxy",
      "The proxy only serves computers on approved networks, and the address this request came "
      "from is not one of them.",
      "If you are on the company network and expected this to work, your network administrator "
      "can check whether your network should be added."},
     {"このコンピューターはプロキシを利用できません",
      "このプロキシは、許可されたネットワークにあるコンピューターからの通信だけを中継します。"
      "このリクエストの送信元アドレスは許可されていません。",
      "社内ネットワークから接続しているのにこの画面が表示される場合は、ネットワーク管理者に"
      "ご相談ください。"}},
    {"connect_port_not_allowed",
     {"Secure connections to this port are not allowed",
      "The browser asked the proxy to open an encrypted tunnel (CONNECT) to a port that is not "
      "on the allowed list. Normally only port 443, the standard HTTPS port, is allowed.",
      "Check the address for an unusual port number (the part after a colon, as in :8443). If "
      "you need this site for your work, ask your network administrator to allow the port."},
     {"このポートへの暗号化接続は許可されていません",
      "ブラウザーが、許可されていないポートへの暗号化トンネル（CONNECT）を要求しました。"
      "通常は HTTPS の標準ポートである 443 番だけが許可されています。",
      "アドレスに通常と異なるポート番号（:8443 のようにコロンの後ろの数字）が含まれていないか"
      "確認してください。業務で必要な場合は、ネットワーク管理者にポートの許可を依頼してください。"}},
    {"port_not_allowed",
     {"Connections to this port are not allowed",
      "The address asks for a port number that the proxy does not connect to for web traffic.",
      "Check the address for an unusual port number (the part after a colon, as in :8080). If "
      "you need this site for your work, ask your network administrator."},
     {"このポートへの接続は許可されていません",
      "アドレスに、このプロキシが中継しないポート番号が指定されています。",
      "アドレスに通常と異なるポート番号（:8080 のようにコロンの後ろの数字）が含まれていないか"
      "確認してください。業務で必要な場合は、ネットワーク管理者にご相談ください。"}},
    {"reputation_block",
     {"This site is blocked for your protection",
      "The site is on a list of known threats that this network checks every request against: "
      "the details below say which list, rule and category decided. Sites like this spread malware, "
      "steal passwords, or are used to control infected computers.",
      "If you are sure this site is legitimate and you need it for your work (a supplier's server, "
      "say), contact your network administrator and quote the reference ID: they can review the "
      "decision and allow the site for everyone."},
     {"安全のためこのサイトはブロックされました",
      "このサイトは、このネットワークがすべての通信を照合している既知の脅威リストに載っています。"
      "どのリスト・ルール・カテゴリーで判定されたかは下の詳細に表示されています。このようなサイトは、"
      "マルウェアの配布やパスワードの窃取、感染したコンピューターの遠隔操作に使われます。",
      "業務に必要な正当なサイト（取引先のサーバーなど）であることが確かな場合は、参照 ID を添えて"
      "ネットワーク管理者にご連絡ください。判定を見直し、全員に対して許可することができます。"}},
    {"destination_not_allowed",
     {"This destination is not allowed",
      "The site's address is on a network the proxy does not connect to, such as an internal or "
      "reserved address range.",
      "If you need to reach this address for your work, ask your network administrator."},
     {"この接続先は許可されていません",
      "接続先のアドレスが、社内用や予約済みのアドレス範囲など、このプロキシが接続しないネットワーク"
      "にあります。",
      "業務でこの接続先が必要な場合は、ネットワーク管理者にご相談ください。"}},
    {"bad_request",
     {"The request could not be understood",
      "The proxy received a request that is not valid HTTP, so it could not pass it on.",
      "Try loading the page again. If this keeps happening with one program, that program may be "
      "misconfigured or out of date."},
     {"リクエストを解釈できませんでした",
      "プロキシが受け取ったリクエストが HTTP として正しい形式ではなかったため、転送できません"
      "でした。",
      "ページを再読み込みしてください。特定のプログラムで繰り返し発生する場合は、そのプログラムの"
      "設定やバージョンを確認してください。"}},
    {"ambiguous_framing",
     {"The request was ambiguous and was refused",
      "The request stated its own length in conflicting ways. Requests like this can be used to "
      "smuggle hidden requests past security checks, so the proxy refuses them.",
      "Ordinary browsers do not send such requests. If a program you rely on for your work does, "
      "tell your network administrator."},
     {"あいまいなリクエストのため拒否しました",
      "リクエストの長さの指定が矛盾していました。このようなリクエストはセキュリティ検査をすり抜ける"
      "攻撃（リクエストスマグリング）に使われるため、プロキシは受け付けません。",
      "通常のブラウザーはこのようなリクエストを送信しません。業務で使うプログラムで発生する場合は、"
      "ネットワーク管理者に連絡してください。"}},
    {"uri_too_long",
     {"The address is too long", "The web address in this request is longer than the proxy accepts.",
      "Go back and try another link, or open the site from its home page."},
     {"アドレスが長すぎます", "このリクエストの URL が、プロキシが受け付ける長さを超えています。",
      "前のページに戻って別のリンクを試すか、サイトのトップページから開き直してください。"}},
    {"headers_too_large",
     {"The request headers are too large",
      "The request carried more header data than the proxy accepts. This often happens when a "
      "site has stored very many or very large cookies in your browser.",
      "Delete this site's cookies in your browser settings and try again."},
     {"リクエストヘッダーが大きすぎます",
      "リクエストのヘッダーが、プロキシが受け付ける大きさを超えています。サイトがブラウザーに保存した"
      " Cookie が多すぎる、または大きすぎる場合によく起こります。",
      "ブラウザーの設定でこのサイトの Cookie を削除してから、もう一度お試しください。"}},
    {"body_too_large",
     {"The upload is too large", "The data sent with this request is larger than the proxy allows.",
      "Try a smaller file. If you need to send large files for your work, ask your network "
      "administrator."},
     {"送信データが大きすぎます",
      "このリクエストで送信されたデータが、プロキシで許可されている大きさを超えています。",
      "より小さいファイルでお試しください。業務で大きなファイルの送信が必要な場合は、ネットワーク"
      "管理者にご相談ください。"}},
    {"not_implemented",
     {"This kind of request is not supported",
      "The request uses a method or feature that the proxy does not support.",
      "If a program you need for your work depends on it, tell your network administrator."},
     {"この種類のリクエストには対応していません",
      "このリクエストは、プロキシが対応していないメソッドまたは機能を使っています。",
      "業務で使うプログラムがこの機能を必要とする場合は、ネットワーク管理者に連絡してください。"}},
    {"unsupported_scheme",
     {"This kind of address is not supported",
      "The proxy handles http:// and https:// addresses only. This address uses another kind, "
      "for example ftp://.",
      "Use an http:// or https:// address, or ask your network administrator how to reach this "
      "service."},
     {"この形式のアドレスには対応していません",
      "このプロキシが扱えるのは http:// と https:// のアドレスだけです。このアドレスは ftp:// など"
      "別の形式です。",
      "http:// または https:// のアドレスを使うか、このサービスへの接続方法をネットワーク管理者に"
      "確認してください。"}},
    {"dns_failed",
     {"The site's name could not be found",
      "The proxy could not find the network address of this site. The name may be misspelled, or "
      "the site may no longer exist.",
      "Check the spelling of the address and try again."},
     {"サイトの名前が見つかりませんでした",
      "プロキシはこのサイトのネットワーク上のアドレスを見つけられませんでした。名前の入力間違いか、"
      "サイトがすでに存在しない可能性があります。",
      "アドレスのつづりを確認して、もう一度お試しください。"}},
    {"connect_failed",
     {"The site could not be reached",
      "The proxy tried to connect to the site, but the connection was refused or the site could "
      "not be reached.",
      "The site may be down. Try again in a few minutes."},
     {"サイトに接続できませんでした",
      "プロキシはサイトへの接続を試みましたが、接続を拒否されたか、サイトに到達できませんでした。",
      "サイトが停止している可能性があります。しばらくしてから、もう一度お試しください。"}},
    {"connect_timeout",
     {"The site took too long to answer",
      "The proxy tried to connect to the site, but the site did not answer in time.",
      "The site may be busy or down. Try again in a few minutes."},
     {"サイトへの接続がタイムアウトしました",
      "プロキシはサイトへの接続を試みましたが、時間内に応答がありませんでした。",
      "サイトが混雑しているか、停止している可能性があります。しばらくしてから、もう一度お試しください。"}},
    {"upstream_timeout",
     {"The site did not respond in time",
      "The proxy connected to the site and sent the request, but the site did not respond in "
      "time.",
      "The site may be busy. Try again in a few minutes."},
     {"サイトの応答がタイムアウトしました",
      "プロキシはサイトに接続してリクエストを送信しましたが、時間内に応答がありませんでした。",
      "サイトが混雑している可能性があります。しばらくしてから、もう一度お試しください。"}},
    {"bad_response",
     {"The site sent an invalid response",
      "The site answered with something that is not valid HTTP, so the proxy could not pass it on "
      "safely.",
      "Try again later. If it keeps happening, the problem is most likely on the site's side."},
     {"サイトから不正な応答がありました",
      "サイトからの応答が HTTP として正しい形式ではなかったため、プロキシは安全に転送できません"
      "でした。",
      "時間をおいて、もう一度お試しください。繰り返し発生する場合は、サイト側の問題と考えられます。"}},
    {"upstream_reset",
     {"The site closed the connection",
      "The site closed the connection before it had sent a complete response.",
      "Try loading the page again. If it keeps happening, the site may be having problems."},
     {"サイトが接続を切断しました", "サイトが、応答を最後まで送信する前に接続を切断しました。",
      "ページを再読み込みしてください。繰り返し発生する場合は、サイトに問題が起きている可能性が"
      "あります。"}},
    {"upstream_cert_invalid",
     {"The site's security certificate is not trustworthy",
      "The proxy checks every secure site's certificate the way your browser would, and this "
      "site's certificate failed a check (named in the details below). Someone may be "
      "impersonating the site, or the site is misconfigured. The page was not loaded.",
      "Do not enter passwords or personal data on this site. If it is a site you need for your "
      "work, tell the site's owner or your network administrator, quoting the reference ID; the "
      "proxy never lets a bad certificate through, so the site itself must be fixed."},
     {"このサイトのセキュリティ証明書は信頼できません",
      "プロキシは、ブラウザーと同じようにすべての安全なサイトの証明書を確認しています。このサイトの"
      "証明書は確認に失敗しました（詳細は下に表示されています）。第三者がサイトになりすましているか、"
      "サイトの設定に誤りがある可能性があります。ページは読み込まれていません。",
      "このサイトでパスワードや個人情報を入力しないでください。業務に必要なサイトの場合は、参照 ID を"
      "添えてサイトの管理者またはネットワーク管理者にご連絡ください。プロキシは不正な証明書を"
      "通過させないため、サイト側での修正が必要です。"}},
    {"upstream_tls_failed",
     {"A secure connection to the site could not be made",
      "The proxy could not complete a secure (TLS) connection with the site: the details below "
      "say why. Sites that only offer outdated encryption are refused, because it can be broken.",
      "Try again later. If it keeps happening, the site needs to update its server; tell your "
      "network administrator, quoting the reference ID."},
     {"サイトとの安全な接続を確立できませんでした",
      "プロキシはサイトとの安全な接続（TLS）を完了できませんでした。理由は下の詳細に表示されています。"
      "古い暗号方式しか提供しないサイトは、解読されるおそれがあるため接続を拒否します。",
      "時間をおいて、もう一度お試しください。繰り返し発生する場合はサイト側のサーバー更新が必要です。"
      "参照 ID を添えてネットワーク管理者にご連絡ください。"}},
    {"misdirected_request",
     {"The request was sent on the wrong connection",
      "The browser sent a request for one site on a secure connection that was opened for another.",
      "Reload the page. If it keeps happening, tell your network administrator, quoting the "
      "reference ID."},
     {"リクエストが別の接続に送信されました",
      "ブラウザーが、別のサイト用に開かれた安全な接続で、このサイトへのリクエストを送信しました。",
      "ページを再読み込みしてください。繰り返し発生する場合は、参照 ID を添えてネットワーク管理者に"
      "ご連絡ください。"}},
    {"reputation_unavailable",
     {"The site could not be checked",
      "Every request is checked against this network's list of known threats before it goes out, "
      "and that check is not answering right now. The network is set to be careful, so the page "
      "was not loaded.",
      "Try again in a minute. If it keeps happening, tell your network administrator, quoting the "
      "reference ID."},
     {"サイトを確認できませんでした",
      "このネットワークでは、すべての通信を送信前に既知の脅威リストと照合していますが、現在その照合が"
      "応答していません。安全を優先する設定のため、ページは読み込まれていません。",
      "しばらくしてから、もう一度お試しください。繰り返し発生する場合は、参照 ID を添えてネットワーク"
      "管理者にご連絡ください。"}},
    {"loop_detected",
     {"The request is going round in a loop",
      "The request came back to this proxy after it had already passed through it: proxies are "
      "forwarding it to each other in a circle.",
      "This is a configuration problem that only your network administrator can fix."},
     {"リクエストが循環しています",
      "このリクエストは、すでにこのプロキシを通過した後に再び戻ってきました。プロキシ同士が"
      "リクエストを循環して転送している状態です。",
      "設定の問題のため、ネットワーク管理者による対応が必要です。"}},
    {"request_timeout",
     {"The request took too long to arrive",
      "The proxy waited for the browser to finish sending the request, but it did not arrive in "
      "time.",
      "Try loading the page again. A slow or unstable network connection can cause this."},
     {"リクエストの受信がタイムアウトしました",
      "プロキシはブラウザーからのリクエストを待ちましたが、時間内に届きませんでした。",
      "ページを再読み込みしてください。ネットワークが遅い、または不安定な場合に起こることがあります。"}},
    {"not_found",
     {"Page not found", "This proxy has no page at this address.", "Check the address and try again."},
     {"ページが見つかりません", "このプロキシには、指定されたアドレスのページはありません。",
      "アドレスを確認して、もう一度お試しください。"}},
    {"too_many_connections",
     {"The proxy is busy",
      "The proxy is handling too many connections right now and could not take this one.",
      "Wait a moment and try again."},
     {"プロキシが混雑しています",
      "現在プロキシへの接続が多すぎるため、このリクエストを受け付けられませんでした。",
      "少し待ってから、もう一度お試しください。"}},
    {"shutting_down",
     {"The proxy is shutting down",
      "This proxy is shutting down, for example for maintenance, and no longer accepts new "
      "requests.",
      "Try again in a moment; your request will normally go to another proxy."},
     {"プロキシは停止処理中です",
      "このプロキシはメンテナンスなどのため停止処理中で、新しいリクエストを受け付けていません。",
      "少し待ってから、もう一度お試しください。通常は別のプロキシに接続されます。"}},
};

// Unknown reasons: a text chosen by the status class.
constexpr Text kGeneric4xxEn = {"The request was refused", "The proxy did not forward this request.",
                                "Check the address and try again."};
constexpr Text kGeneric4xxJa = {"リクエストは拒否されました",
                                "プロキシはこのリクエストを転送しませんでした。",
                                "アドレスを確認して、もう一度お試しください。"};
constexpr Text kGeneric5xxEn = {
    "The request could not be completed",
    "The proxy could not complete this request, because of a problem reaching the site or in "
    "the proxy itself.",
    "Try again in a few minutes."};
constexpr Text kGeneric5xxJa = {
    "リクエストを完了できませんでした",
    "サイトへの接続またはプロキシ自身の問題により、このリクエストを完了できませんでした。",
    "しばらくしてから、もう一度お試しください。"};

struct Labels {
  std::string_view htmlLang;
  std::string_view whatHeading, todoHeading;
  std::string_view refLabel, refHint;
  std::string_view url, detail, client, time, proxy;
  std::string_view contactWithRef, contactNoRef;
  std::string_view product;
  std::string_view fontFamily;
};

constexpr Labels kEn = {
    .htmlLang = "en",
    .whatHeading = "What happened",
    .todoHeading = "What you can do",
    .refLabel = "Reference ID",
    .refHint = "With this ID your administrator can find this event in the proxy's logs.",
    .url = "Address",
    .detail = "Details",
    .client = "Your computer",
    .time = "Time (UTC)",
    .proxy = "Proxy",
    .contactWithRef =
        "If you need help, contact your network administrator and quote the reference ID above.",
    .contactNoRef =
        "If you need help, contact your network administrator and tell them the time shown above.",
    .product = "Sekisho web gateway",
    .fontFamily =
        "system-ui, -apple-system, \"Segoe UI\", Roboto, \"Noto Sans\", \"Helvetica Neue\", Arial, "
        "sans-serif",
};
constexpr Labels kJa = {
    .htmlLang = "ja",
    .whatHeading = "何が起きたか",
    .todoHeading = "対処方法",
    .refLabel = "参照 ID",
    .refHint = "管理者はこの ID でプロキシのログからこの記録を探すことができます。",
    .url = "URL",
    .detail = "詳細",
    .client = "クライアント",
    .time = "日時 (UTC)",
    .proxy = "プロキシ",
    .contactWithRef = "ご不明な点は、ネットワーク管理者に連絡し、上記の参照 ID をお伝えください。",
    .contactNoRef = "ご不明な点は、ネットワーク管理者に連絡し、上記の日時をお伝えください。",
    .product = "Sekisho ウェブゲートウェイ",
    .fontFamily =
        "\"Hiragino Sans\", \"Hiragino Kaku Gothic ProN\", \"Yu Gothic UI\", Meiryo, "
        "\"Noto Sans CJK JP\", \"Noto Sans JP\", system-ui, sans-serif",
};

// ---------------------------------------------------------------------------------------------
// Helpers

// Longest value shown on the page (a 64 KiB URL would only bury the explanation).
constexpr size_t kMaxShown = 2048;

// Valid UTF-8 without C0 controls (tab and newline kept) or DEL; other bytes become U+FFFD.
// Cut after kMaxShown bytes, on a character boundary, with an ellipsis.
std::string cleanText(std::string_view s) {
  std::string out;
  out.reserve(std::min(s.size(), kMaxShown) + 4);
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  for (size_t i = 0; i < s.size();) {
    if (out.size() >= kMaxShown) {
      out += "\u2026";
      break;
    }
    unsigned char c = b(i);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F)
        out += "\uFFFD";
      else
        out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (b(i + k) & 0xC0) == 0x80;
    if (ok && len >= 3) {
      unsigned char c1 = b(i + 1);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) ||
          (c == 0xF4 && c1 >= 0x90))
        ok = false;  // overlong, surrogate or above U+10FFFF
    }
    if (!ok) {
      out += "\uFFFD";
      ++i;
      continue;
    }
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

std::string shown(std::string_view s) { return htmlEscape(cleanText(s)); }

// RFC 3339 / ISO 8601 in UTC, to the second. A zero epoch means "now".
std::string isoTime(double epoch) {
  time_t t = epoch > 0 && std::isfinite(epoch) ? static_cast<time_t>(epoch) : std::time(nullptr);
  tm tmv{};
  gmtime_r(&t, &tmv);
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  return std::string(buf, n);
}

const Text& textFor(std::string_view reason, int status, Lang lang) {
  for (const ReasonText& r : kReasons)
    if (r.reason == reason) return lang == Lang::Ja ? r.ja : r.en;
  if (status >= 500) return lang == Lang::Ja ? kGeneric5xxJa : kGeneric5xxEn;
  return lang == Lang::Ja ? kGeneric4xxJa : kGeneric4xxEn;
}

// One language-range;q=... element of Accept-Language. nullopt when malformed.
struct LangChoice {
  std::optional<Lang> lang;  // nullopt: a language we do not offer (or "*")
  unsigned q = 1000;         // thousandths
};

std::optional<unsigned> parseQValue(std::string_view v) {
  // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )   (RFC 9110 §12.4.2)
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  unsigned whole = unsigned(v[0] - '0');
  unsigned frac = 0;
  if (v.size() > 1) {
    if (v[1] != '.' || v.size() > 5) return std::nullopt;
    unsigned scale = 100;
    for (char c : v.substr(2)) {
      if (c < '0' || c > '9') return std::nullopt;
      frac += unsigned(c - '0') * scale;
      scale /= 10;
    }
  }
  if (whole == 1 && frac != 0) return std::nullopt;
  return whole * 1000 + frac;
}

bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isAlnum(char c) { return isAlpha(c) || (c >= '0' && c <= '9'); }

// language-range = (1*8ALPHA *("-" 1*8alphanum)) / "*"   (RFC 4647 §2.1)
bool validRange(std::string_view r) {
  if (r == "*") return true;
  size_t i = 0, n = 0;
  bool first = true;
  for (;; first = false) {
    n = 0;
    while (i < r.size() && r[i] != '-') {
      if (!(first ? isAlpha(r[i]) : isAlnum(r[i]))) return false;
      ++i;
      ++n;
    }
    if (n == 0 || n > 8) return false;
    if (i == r.size()) return true;
    ++i;  // '-'
  }
}

std::optional<LangChoice> parseElement(std::string_view elem) {
  size_t semi = elem.find(';');
  std::string_view range = trimOws(elem.substr(0, semi));
  if (!validRange(range)) return std::nullopt;
  LangChoice out;
  if (semi != std::string_view::npos) {
    std::string_view param = trimOws(elem.substr(semi + 1));
    if (param.size() < 2 || asciiLower(param[0]) != 'q') return std::nullopt;
    param = trimOws(param.substr(1));
    if (param.empty() || param[0] != '=') return std::nullopt;
    auto q = parseQValue(trimOws(param.substr(1)));
    if (!q) return std::nullopt;  // also rejects a second parameter after the qvalue
    out.q = *q;
  }
  std::string_view primary = range.substr(0, range.find('-'));
  if (iequals(primary, "ja"))
    out.lang = Lang::Ja;
  else if (iequals(primary, "en"))
    out.lang = Lang::En;
  return out;
}

constexpr std::string_view kCss = R"(
*{box-sizing:border-box}
html{background:#f3f4f6;color:#1f2933;-webkit-text-size-adjust:100%}
body{margin:0;padding:32px 20px;font-size:16px;line-height:1.55}
main{max-width:760px;margin:0 auto;background:#fff;border:1px solid #d9dde3;border-radius:10px;
 border-top:5px solid #52606d;padding:30px 44px 24px}
.status{margin:0 0 6px;font-size:13px;font-weight:600;letter-spacing:.06em;text-transform:uppercase;
 color:#7b8794}
h1{margin:0 0 18px;font-size:26px;line-height:1.35;font-weight:600;color:#1f2933}
h2{margin:16px 0 2px;font-size:14px;font-weight:600;color:#52606d}
p{margin:0 0 8px}
.ref{margin:22px 0 18px;padding:14px 20px;background:#f5f7fa;border:1px solid #d9dde3;border-radius:8px}
.ref-label{display:block;font-size:13px;font-weight:600;color:#52606d}
.ref-id{display:block;margin:2px 0 4px;font-family:MONO;font-size:26px;font-weight:600;
 letter-spacing:.08em;color:#102a43;user-select:all;word-break:break-all}
.ref-hint{display:block;font-size:13px;color:#7b8794}
dl{display:grid;grid-template-columns:max-content 1fr;align-items:baseline;gap:6px 24px;margin:0;
 padding:16px 0 0;
 border-top:1px solid #e4e7eb;font-size:14px}
dt{color:#7b8794}
dd{margin:0;min-width:0;color:#323f4b;overflow-wrap:anywhere}
dd.code{font-family:MONO;font-size:13px}
.contact{margin:18px 0 0;padding-top:14px;border-top:1px solid #e4e7eb;font-size:14px;color:#3e4c59}
footer{max-width:760px;margin:14px auto 0;font-size:12px;color:#9aa5b1;text-align:center}
@media (max-width:600px){main{padding:24px 20px}dl{grid-template-columns:1fr;gap:2px}dd{margin-bottom:8px}}
)";

constexpr std::string_view kMonoFonts =
    "ui-monospace, SFMono-Regular, Menlo, Consolas, \"DejaVu Sans Mono\", \"Liberation Mono\", "
    "monospace";

std::string css(const Labels& l) {
  std::string out;
  out.reserve(kCss.size() + 400);
  for (size_t i = 0; i < kCss.size();) {
    if (kCss.compare(i, 4, "MONO") == 0) {
      out += kMonoFonts;
      i += 4;
    } else {
      out += kCss[i++];
    }
  }
  out += "body{font-family:";
  out += l.fontFamily;
  out += "}\n";
  return out;
}

void row(std::string& out, std::string_view label, const std::string& valueHtml, bool code) {
  out += "<dt>";
  out += label;
  out += code ? "</dt><dd class=\"code\">" : "</dt><dd>";
  out += valueHtml;
  out += "</dd>\n";
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Lang pickLanguage(std::string_view acceptLanguage) {
  Lang best = Lang::En;
  unsigned bestQ = 0;  // q=0 means "not acceptable", so it can never win
  forEachListElement(acceptLanguage, [&](std::string_view elem) {
    auto choice = parseElement(elem);
    if (!choice || !choice->lang) return;
    if (choice->q > bestQ) {  // strictly greater: on a tie the earlier element wins
      best = *choice->lang;
      bestQ = choice->q;
    }
  });
  return best;
}

std::string htmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string_view reasonPhrase(int status) {
  // RFC 9110 §15, plus 428/429/431/511 (RFC 6585) and 508 (RFC 5842).
  struct Phrase {
    int status;
    std::string_view text;
  };
  static constexpr Phrase kPhrases[] = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {203, "Non-Authoritative Information"},
      {204, "No Content"},
      {205, "Reset Content"},
      {206, "Partial Content"},
      {300, "Multiple Choices"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {305, "Use Proxy"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {402, "Payment Required"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {406, "Not Acceptable"},
      {407, "Proxy Authentication Required"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {410, "Gone"},
      {411, "Length Required"},
      {412, "Precondition Failed"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {415, "Unsupported Media Type"},
      {416, "Range Not Satisfiable"},
      {417, "Expectation Failed"},
      {421, "Misdirected Request"},
      {422, "Unprocessable Content"},
      {425, "Too Early"},
      {426, "Upgrade Required"},
      {428, "Precondition Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {451, "Unavailable For Legal Reasons"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
      {508, "Loop Detected"},
      {511, "Network Authentication Required"},
  };
  for (const Phrase& p : kPhrases)
    if (p.status == status) return p.text;
  return "";
}

std::string renderErrorPage(const ErrorInfo& info) {
  const Labels& l = info.lang == Lang::Ja ? kJa : kEn;
  const Text& t = textFor(info.reason, info.status, info.lang);
  std::string statusLine = std::to_string(info.status);
  if (std::string_view phrase = reasonPhrase(info.status); !phrase.empty()) {
    statusLine += ' ';
    statusLine += phrase;
  }

  std::string out;
  out.reserve(8192 + std::min(info.url.size(), kMaxShown) * 2);
  out += "<!DOCTYPE html>\n<html lang=\"";
  out += l.htmlLang;
  out +=
      "\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"robots\" content=\"noindex, nofollow\">\n"
      "<meta name=\"color-scheme\" content=\"light\">\n<title>";
  out += statusLine;
  out += " \u2014 ";
  out += t.title;
  out += "</title>\n<style>";
  out += css(l);
  out += "</style>\n</head>\n<body>\n<main>\n<p class=\"status\">";
  out += statusLine;
  out += "</p>\n<h1>";
  out += t.title;
  out += "</h1>\n<h2>";
  out += l.whatHeading;
  out += "</h2>\n<p>";
  out += t.what;
  out += "</p>\n<h2>";
  out += l.todoHeading;
  out += "</h2>\n<p>";
  out += t.todo;
  out += "</p>\n";

  if (!info.refId.empty()) {
    out += "<div class=\"ref\"><span class=\"ref-label\">";
    out += l.refLabel;
    out += "</span><span class=\"ref-id\">";
    out += shown(info.refId);
    out += "</span><span class=\"ref-hint\">";
    out += l.refHint;
    out += "</span></div>\n";
  }

  out += "<dl>\n";
  if (!info.url.empty()) row(out, l.url, shown(info.url), true);
  if (!info.detail.empty()) row(out, l.detail, shown(info.detail), false);
  if (!info.client.empty()) row(out, l.client, shown(info.client), true);
  row(out, l.time, isoTime(info.epoch), true);
  if (!info.proxyName.empty()) row(out, l.proxy, shown(info.proxyName), true);
  out += "</dl>\n<p class=\"contact\">";
  out += info.refId.empty() ? l.contactNoRef : l.contactWithRef;
  out += "</p>\n</main>\n<footer>";
  out += l.product;
  out += "</footer>\n</body>\n</html>\n";
  return out;
}

}  // namespace sekisho::blockpage
