#include "tls-mitm/client_hello.h"

#include <algorithm>

#include "proxy/net/address.h"

namespace sekisho::mitm {
namespace {

constexpr uint8_t kHandshakeRecord = 0x16;
constexpr uint8_t kClientHello = 0x01;
constexpr size_t kRecordHeader = 5;
constexpr size_t kMaxRecordPayload = 16384;  // RFC 8446 §5.1: TLSPlaintext.length <= 2^14
constexpr size_t kMaxHostName = 253;
constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtSupportedVersions = 43;

// A cursor over one length-delimited region. Every read checks the remaining length first, so
// a field can never reach past its enclosing vector.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool empty() const { return b_.empty(); }
  size_t size() const { return b_.size(); }
  bool u8(uint8_t& v) {
    if (b_.empty()) return false;
    v = uint8_t(b_[0]);
    b_.remove_prefix(1);
    return true;
  }
  bool u16(uint16_t& v) {
    if (b_.size() < 2) return false;
    v = uint16_t((uint8_t(b_[0]) << 8) | uint8_t(b_[1]));
    b_.remove_prefix(2);
    return true;
  }
  bool take(size_t n, std::string_view& out) {
    if (b_.size() < n) return false;
    out = b_.substr(0, n);
    b_.remove_prefix(n);
    return true;
  }
  // A vector with a 1- or 2-byte length prefix.
  bool vec8(std::string_view& out) {
    uint8_t n;
    return u8(n) && take(n, out);
  }
  bool vec16(std::string_view& out) {
    uint16_t n;
    return u16(n) && take(n, out);
  }

 private:
  std::string_view b_;
};

ParseOutcome outcome(HelloStatus s, std::string reason) {
  ParseOutcome o;
  o.status = s;
  o.reason = std::move(reason);
  return o;
}

bool isLdhChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

// LDH labels joined by dots (RFC 1123 §2.1), at most 253 bytes, no trailing dot (RFC 6066 §3).
bool validHostName(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostName) return false;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!isLdhChar(c)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

const char* parseServerName(std::string_view data, ClientHelloInfo& info) {
  Reader r(data);
  std::string_view list;
  if (!r.vec16(list) || !r.empty()) return "bad_server_name_length";
  if (list.empty()) return "empty_server_name_list";
  Reader l(list);
  bool haveHost = false;
  while (!l.empty()) {
    uint8_t type;
    std::string_view name;
    if (!l.u8(type) || !l.vec16(name)) return "bad_server_name_entry";
    if (type != 0) continue;  // unknown name types are skipped (RFC 6066 §3)
    // "MUST NOT contain more than one name of the same name_type" (RFC 6066 §3).
    if (haveHost) return "duplicate_host_name";
    haveHost = true;
    if (name.empty()) return "empty_host_name";
    std::string raw(name.substr(0, 255));
    for (char& c : raw)
      if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    info.sniRaw = raw;
    std::string lower;
    lower.reserve(name.size());
    for (char c : name) lower.push_back((c >= 'A' && c <= 'Z') ? char(c + 32) : c);
    if (net::parseIp(lower)) {
      info.sniStatus = SniStatus::IpLiteral;
    } else if (validHostName(lower)) {
      info.sniStatus = SniStatus::Valid;
      info.sni = std::move(lower);
    } else {
      info.sniStatus = SniStatus::Invalid;
    }
  }
  return nullptr;
}

const char* parseAlpn(std::string_view data, ClientHelloInfo& info, const HelloLimits& limits,
                      bool& tooMany) {
  Reader r(data);
  std::string_view list;
  if (!r.vec16(list) || !r.empty()) return "bad_alpn_length";
  if (list.empty()) return "empty_alpn_list";  // RFC 7301 §3.1: at least one protocol
  Reader l(list);
  while (!l.empty()) {
    std::string_view proto;
    if (!l.vec8(proto)) return "bad_alpn_entry";
    if (proto.empty()) return "empty_alpn_protocol";
    if (proto.size() == 2 && isGrease(uint16_t((uint8_t(proto[0]) << 8) | uint8_t(proto[1])))) {
      info.sawGrease = true;
      continue;
    }
    if (info.alpn.size() >= limits.maxAlpnProtocols) {
      tooMany = true;
      return "too_many_alpn_protocols";
    }
    info.alpn.emplace_back(proto);
  }
  return nullptr;
}

const char* parseSupportedVersions(std::string_view data, ClientHelloInfo& info) {
  Reader r(data);
  std::string_view list;
  // RFC 8446 §4.2.1: ProtocolVersion versions<2..254> in a ClientHello.
  if (!r.vec8(list) || !r.empty() || list.size() < 2 || list.size() % 2 != 0) return "bad_supported_versions";
  Reader l(list);
  uint16_t v;
  while (l.u16(v)) {
    if (isGrease(v)) {
      info.sawGrease = true;
      continue;
    }
    info.supportedVersions.push_back(v);
  }
  return nullptr;
}

// The ClientHello body (after the 4-byte handshake header), RFC 8446 §4.1.2.
ParseOutcome parseBody(std::string_view body, const HelloLimits& limits) {
  ParseOutcome o;
  ClientHelloInfo& info = o.info;
  Reader r(body);
  std::string_view random, sessionId, suites, compression;
  if (!r.u16(info.legacyVersion)) return outcome(HelloStatus::Malformed, "truncated_version");
  if ((info.legacyVersion >> 8) != 0x03) return outcome(HelloStatus::Malformed, "bad_legacy_version");
  if (!r.take(32, random)) return outcome(HelloStatus::Malformed, "truncated_random");
  if (!r.vec8(sessionId) || sessionId.size() > 32) return outcome(HelloStatus::Malformed, "bad_session_id");
  if (!r.vec16(suites) || suites.empty() || suites.size() % 2 != 0)
    return outcome(HelloStatus::Malformed, "bad_cipher_suites");
  info.cipherSuiteCount = suites.size() / 2;
  for (size_t i = 0; i < suites.size(); i += 2)
    if (isGrease(uint16_t((uint8_t(suites[i]) << 8) | uint8_t(suites[i + 1])))) info.sawGrease = true;
  if (!r.vec8(compression) || compression.empty())
    return outcome(HelloStatus::Malformed, "bad_compression_methods");
  if (r.empty()) {  // no extensions at all: allowed before TLS 1.3 (RFC 5246 §7.4.1.2)
    o.status = HelloStatus::Parsed;
    return o;
  }
  std::string_view exts;
  if (!r.vec16(exts)) return outcome(HelloStatus::Malformed, "bad_extensions_length");
  if (!r.empty()) return outcome(HelloStatus::Malformed, "trailing_bytes");
  Reader e(exts);
  std::vector<uint16_t> seen;
  while (!e.empty()) {
    uint16_t type;
    std::string_view data;
    if (!e.u16(type) || !e.vec16(data)) return outcome(HelloStatus::Malformed, "bad_extension");
    if (++info.extensionCount > limits.maxExtensions)
      return outcome(HelloStatus::TooLarge, "too_many_extensions");
    // RFC 8446 §4.2: no more than one extension of the same type.
    if (std::find(seen.begin(), seen.end(), type) != seen.end())
      return outcome(HelloStatus::Malformed, "duplicate_extension");
    seen.push_back(type);
    const char* err = nullptr;
    bool tooMany = false;
    if (isGrease(type)) {
      info.sawGrease = true;
    } else if (type == kExtServerName) {
      err = parseServerName(data, info);
    } else if (type == kExtAlpn) {
      err = parseAlpn(data, info, limits, tooMany);
    } else if (type == kExtSupportedVersions) {
      err = parseSupportedVersions(data, info);
    }  // every other extension is skipped unread
    if (err) return outcome(tooMany ? HelloStatus::TooLarge : HelloStatus::Malformed, err);
  }
  o.status = HelloStatus::Parsed;
  return o;
}

}  // namespace

bool ClientHelloInfo::offersTls13() const {
  return std::find(supportedVersions.begin(), supportedVersions.end(), 0x0304) != supportedVersions.end();
}

std::string_view statusName(HelloStatus s) {
  switch (s) {
    case HelloStatus::NeedMore:
      return "need_more";
    case HelloStatus::NotTls:
      return "not_tls";
    case HelloStatus::Malformed:
      return "malformed";
    case HelloStatus::TooLarge:
      return "too_large";
    case HelloStatus::Parsed:
      return "parsed";
  }
  return "unknown";
}

ParseOutcome peekClientHello(std::string_view bytes, const HelloLimits& limits) {
  if (bytes.empty()) return outcome(HelloStatus::NeedMore, "");
  if (uint8_t(bytes[0]) != kHandshakeRecord) return outcome(HelloStatus::NotTls, "not_handshake_record");
  if (bytes.size() >= 2 && uint8_t(bytes[1]) != 0x03)
    return outcome(HelloStatus::NotTls, "bad_record_version");

  // Reassemble the handshake message from consecutive handshake records (RFC 8446 §5.1: a
  // message may span records, and no other record type may come in between). The copy is
  // bounded by maxHandshakeBytes.
  std::string msg;
  size_t need = 0;  // full message size, known once its 4-byte header is in
  size_t pos = 0, records = 0;
  while (true) {
    if (bytes.size() - pos < kRecordHeader) {
      // Check the part of the header we have, so garbage is not waited on.
      if (pos < bytes.size() && uint8_t(bytes[pos]) != kHandshakeRecord)
        return outcome(HelloStatus::Malformed, "interleaved_record");
      if (pos + 1 < bytes.size() && uint8_t(bytes[pos + 1]) != 0x03)
        return outcome(HelloStatus::Malformed, "bad_record_version");
      return outcome(HelloStatus::NeedMore, "");
    }
    if (uint8_t(bytes[pos]) != kHandshakeRecord) return outcome(HelloStatus::Malformed, "interleaved_record");
    if (uint8_t(bytes[pos + 1]) != 0x03) return outcome(HelloStatus::Malformed, "bad_record_version");
    size_t len = (size_t(uint8_t(bytes[pos + 3])) << 8) | uint8_t(bytes[pos + 4]);
    if (len == 0) return outcome(HelloStatus::Malformed, "empty_handshake_record");  // RFC 8446 §5.1
    if (len > kMaxRecordPayload) return outcome(HelloStatus::Malformed, "record_overflow");
    if (++records > limits.maxRecords) return outcome(HelloStatus::TooLarge, "too_many_records");
    size_t have = std::min(len, bytes.size() - pos - kRecordHeader);
    size_t want = need ? need - msg.size() : limits.maxHandshakeBytes + 4 - msg.size();
    msg.append(bytes.substr(pos + kRecordHeader, std::min(have, want)));
    if (!need && msg.size() >= 4) {
      if (uint8_t(msg[0]) != kClientHello) return outcome(HelloStatus::Malformed, "not_client_hello");
      need = 4 + ((size_t(uint8_t(msg[1])) << 16) | (size_t(uint8_t(msg[2])) << 8) | uint8_t(msg[3]));
      if (need > limits.maxHandshakeBytes) return outcome(HelloStatus::TooLarge, "handshake_too_large");
      if (msg.size() > need) msg.resize(need);
    } else if (!need && msg.size() > 0 && uint8_t(msg[0]) != kClientHello) {
      return outcome(HelloStatus::Malformed, "not_client_hello");
    }
    if (need && msg.size() >= need) {
      // The whole message is here; the record that ends it may still be arriving, which does
      // not matter for the decision (OpenSSL will read it from the untouched buffer).
      ParseOutcome o = parseBody(std::string_view(msg).substr(4, need - 4), limits);
      if (o.status == HelloStatus::Parsed) {
        o.info.handshakeBytes = need;
        o.info.recordBytes = pos + kRecordHeader + len;
      }
      return o;
    }
    if (have < len) return outcome(HelloStatus::NeedMore, "");
    pos += kRecordHeader + len;
  }
}

}  // namespace sekisho::mitm
