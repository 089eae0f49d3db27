#include "blockpage/ca_page.h"

namespace sekisho::blockpage {

namespace {

struct CaText {
  const char* htmlLang;
  const char* title;
  const char* intro;
  const char* download;
  const char* pem;
  const char* der;
  const char* verify;
  const char* subject;
  const char* fingerprint;
  const char* validUntil;
  const char* windows;
  const char* windowsSteps;
  const char* gpo;
  const char* gpoSteps;
  const char* macos;
  const char* macosSteps;
  const char* firefox;
  const char* firefoxSteps;
  const char* chrome;
  const char* chromeSteps;
  const char* never;
};

constexpr CaText kEn = {
    "en",
    "Install this network's root certificate",
    "This network inspects HTTPS traffic for malware. Your browser trusts the pages it forwards only "
    "if this network's root certificate is installed. Install it once per computer (or let your "
    "administrator deploy it), and compare the fingerprint below before you trust it.",
    "Download",
    "ca.crt (PEM: macOS, Firefox, Linux)",
    "ca.der (DER: Windows)",
    "Check the certificate",
    "Subject",
    "SHA-256 fingerprint",
    "Valid until",
    "Windows (one computer)",
    "Open a Command Prompt as administrator and run <code>certutil -addstore -f Root ca.der</code>. "
    "Edge and Chrome use the Windows store.",
    "Windows (every computer, Group Policy)",
    "Group Policy Management &rarr; Computer Configuration &rarr; Policies &rarr; Windows Settings "
    "&rarr; Security Settings &rarr; Public Key Policies &rarr; Trusted Root Certification Authorities "
    "&rarr; Import &rarr; ca.der.",
    "macOS",
    "Run <code>sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "
    "ca.crt</code>, or open ca.crt in Keychain Access and set it to &ldquo;Always Trust&rdquo;.",
    "Firefox",
    "Settings &rarr; Privacy &amp; Security &rarr; Certificates &rarr; View Certificates &rarr; "
    "Authorities &rarr; Import &rarr; ca.crt, tick &ldquo;Trust this CA to identify websites&rdquo;. "
    "For a fleet: the enterprise policy <code>Certificates.ImportEnterpriseRoots</code> makes Firefox "
    "use the Windows or macOS store.",
    "Chrome on Linux",
    "<code>certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\" -n \"network root\" -i ca.crt</code> "
    "(package libnss3-tools). On Windows and macOS Chrome uses the system store.",
    "Never install a root certificate from a page you reached any other way than through your own "
    "network's proxy, and never when the fingerprint differs from the one your administrator gave you.",
};

constexpr CaText kJa = {
    "ja",
    "このネットワークのルート証明書をインストールする",
    "このネットワークはマルウェア対策のため HTTPS 通信を検査しています。ブラウザーが検査後のページを信頼するには、"
    "このネットワークのルート証明書が必要です。パソコンごとに一度インストールするか、管理者に配布してもらってください。"
    "信頼する前に、下のフィンガープリントを必ず照合してください。",
    "ダウンロード",
    "ca.crt（PEM 形式: macOS、Firefox、Linux）",
    "ca.der（DER 形式: Windows）",
    "証明書の確認",
    "サブジェクト",
    "SHA-256 フィンガープリント",
    "有効期限",
    "Windows（1 台ずつ）",
    "管理者としてコマンド プロンプトを開き、<code>certutil -addstore -f Root ca.der</code> を実行します。"
    "Edge と Chrome は Windows の証明書ストアを使います。",
    "Windows（全台、グループ ポリシー）",
    "グループ ポリシーの管理 &rarr; コンピューターの構成 &rarr; ポリシー &rarr; Windows の設定 &rarr; "
    "セキュリティの設定 &rarr; 公開キーのポリシー &rarr; 信頼されたルート証明機関 &rarr; インポート &rarr; ca.der。",
    "macOS",
    "<code>sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "
    "ca.crt</code> を実行するか、キーチェーンアクセスで ca.crt を開き「常に信頼」に設定します。",
    "Firefox",
    "設定 &rarr; プライバシーとセキュリティ &rarr; 証明書 &rarr; 証明書を表示 &rarr; 認証局証明書 &rarr; "
    "インポート &rarr; ca.crt を選び「この認証局によるウェブサイトの識別を信頼する」にチェックします。"
    "全台に配る場合はエンタープライズ ポリシー <code>Certificates.ImportEnterpriseRoots</code> で "
    "OS の証明書ストアを使わせます。",
    "Linux の Chrome",
    "<code>certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\" -n \"network root\" -i ca.crt</code>"
    "（libnss3-tools パッケージ）。Windows と macOS の Chrome は OS のストアを使います。",
    "自社ネットワークのプロキシー以外の経路でたどり着いたページのルート証明書や、管理者から知らされたものと"
    "フィンガープリントが異なる証明書は、決してインストールしないでください。",
};

void section(std::string& out, const char* heading, const char* body) {
  out += "<h2>";
  out += heading;
  out += "</h2>\n<p>";
  out += body;  // constant text of this file, already HTML
  out += "</p>\n";
}

}  // namespace

std::string renderCaPage(const CaPageInfo& info) {
  const CaText& t = info.lang == Lang::Ja ? kJa : kEn;
  std::string out;
  out.reserve(8192);
  out += "<!DOCTYPE html>\n<html lang=\"";
  out += t.htmlLang;
  out +=
      "\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
  out += t.title;
  out +=
      "</title>\n<style>body{font-family:system-ui,-apple-system,\"Segoe UI\",\"Noto Sans CJK JP\",sans-serif;"
      "background:#f3f4f6;color:#1f2937;margin:0;padding:24px}main{max-width:760px;margin:0 auto;background:#fff;"
      "border-top:4px solid #475569;border-radius:6px;padding:28px 32px;box-shadow:0 1px 3px rgba(0,0,0,.08)}"
      "h1{font-size:1.5rem;margin:0 0 12px}h2{font-size:1.05rem;margin:24px 0 6px}p{line-height:1.6;margin:6px 0}"
      "code{background:#f1f5f9;padding:1px 4px;border-radius:3px;font-size:.9em;word-break:break-all}"
      ".fp{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:1rem;word-break:break-all;"
      "background:#f8fafc;border:1px solid #cbd5e1;border-radius:4px;padding:10px;user-select:all}"
      "a.dl{display:inline-block;margin:4px 12px 4px 0;padding:8px 14px;background:#334155;color:#fff;"
      "text-decoration:none;border-radius:4px}dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}"
      "dt{color:#64748b}dd{margin:0;word-break:break-all}.warn{color:#9a3412;margin-top:20px}</style>\n"
      "</head>\n<body>\n<main>\n<h1>";
  out += t.title;
  out += "</h1>\n<p>";
  out += t.intro;
  out += "</p>\n<h2>";
  out += t.download;
  out += "</h2>\n<p><a class=\"dl\" href=\"/ca.crt\" download=\"ca.crt\">";
  out += t.pem;
  out += "</a><a class=\"dl\" href=\"/ca.der\" download=\"ca.der\">";
  out += t.der;
  out += "</a></p>\n<h2>";
  out += t.verify;
  out += "</h2>\n<dl><dt>";
  out += t.subject;
  out += "</dt><dd>";
  out += htmlEscape(info.subject);
  out += "</dd><dt>";
  out += t.validUntil;
  out += "</dt><dd>";
  out += htmlEscape(info.notAfter);
  out += "</dd></dl>\n<p>";
  out += t.fingerprint;
  out += "</p>\n<div class=\"fp\">";
  out += htmlEscape(info.fingerprint);
  out += "</div>\n";
  section(out, t.windows, t.windowsSteps);
  section(out, t.gpo, t.gpoSteps);
  section(out, t.macos, t.macosSteps);
  section(out, t.firefox, t.firefoxSteps);
  section(out, t.chrome, t.chromeSteps);
  out += "<p class=\"warn\">";
  out += t.never;
  out += "</p>\n";
  if (!info.proxyName.empty()) {
    out += "<p><small>";
    out += htmlEscape(info.proxyName);
    out += "</small></p>\n";
  }
  out += "</main>\n</body>\n</html>\n";
  return out;
}

}  // namespace sekisho::blockpage
