#include "tls-mitm/client_hello.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sekisho::mitm;

namespace {

// Captured from `openssl s_client -connect 127.0.0.1:PORT -servername example.com
// -alpn h2,http/1.1 -tls1_3 -groups X25519` (OpenSSL 3.0) against a listener that only read.
constexpr const char* kOpenSslTls13Hex =
    "16030100f0010000ec03039d4e44b59ce3b5d39c1ce8b1117e0549660daa632fb319fbe89ff7b24ddcf4602029a2febd"
    "3486898989e6ae3c1e56308117a95ca1bc271ec99c91bce3f92f456a000813021303130100ff0100009b00000010000e"
    "00000b6578616d706c652e636f6d000b000403000102000a00040002001d002300000010000e000c0268320868747470"
    "2f312e310016000000170000000d001e001c040305030603080708080809080a080b080408050806040105010601002b"
    "0003020304002d00020101003300260024001d00208d7f33a5abecd2dee749d3038a61e49c010c601ec64fd87178e952d0b05efe"
    "62";

std::string fromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(char(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

std::string u8(unsigned v) { return std::string(1, char(v & 0xff)); }
std::string u16(unsigned v) { return u8(v >> 8) + u8(v); }
std::string u24(unsigned v) { return u8(v >> 16) + u16(v & 0xffff); }

std::string ext(uint16_t type, const std::string& data) {
  return u16(type) + u16(unsigned(data.size())) + data;
}
std::string sniExt(const std::string& name) {
  std::string entry = u8(0) + u16(unsigned(name.size())) + name;
  return ext(0, u16(unsigned(entry.size())) + entry);
}
std::string alpnExt(const std::vector<std::string>& protos) {
  std::string list;
  for (const auto& p : protos) list += u8(unsigned(p.size())) + p;
  return ext(16, u16(unsigned(list.size())) + list);
}
std::string versionsExt(const std::vector<uint16_t>& vs) {
  std::string list;
  for (auto v : vs) list += u16(v);
  return ext(43, u8(unsigned(list.size())) + list);
}
std::string body(const std::string& exts, const std::string& suites = u16(0x1301) + u16(0x1302),
                 bool withExts = true) {
  return u16(0x0303) + std::string(32, 'r') + u8(0) + u16(unsigned(suites.size())) + suites + u8(1) + u8(0) +
         (withExts ? u16(unsigned(exts.size())) + exts : "");
}
std::string handshake(const std::string& b) { return u8(1) + u24(unsigned(b.size())) + b; }
// Wraps a handshake message into records of at most `chunk` payload bytes.
std::string records(const std::string& hs, size_t chunk = 16384) {
  std::string out;
  for (size_t i = 0; i < hs.size(); i += chunk) {
    std::string part = hs.substr(i, chunk);
    out += "\x16\x03\x01" + u16(unsigned(part.size())) + part;
  }
  return out;
}
std::string hello(const std::string& exts) { return records(handshake(body(exts))); }

std::string realHello() { return fromHex(kOpenSslTls13Hex); }

}  // namespace

TEST(ClientHello, ParsesRealOpenSslTls13Hello) {
  std::string in = realHello();
  ASSERT_EQ(in.size(), 245u);
  auto o = peekClientHello(in);
  ASSERT_EQ(o.status, HelloStatus::Parsed) << o.reason;
  EXPECT_EQ(o.info.sni, "example.com");
  EXPECT_EQ(o.info.sniStatus, SniStatus::Valid);
  EXPECT_EQ(o.info.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(o.info.supportedVersions, (std::vector<uint16_t>{0x0304}));
  EXPECT_TRUE(o.info.offersTls13());
  EXPECT_EQ(o.info.legacyVersion, 0x0303);
  EXPECT_EQ(o.info.cipherSuiteCount, 4u);
  EXPECT_FALSE(o.info.sawGrease);
  EXPECT_EQ(o.info.extensionCount, 11u);
  EXPECT_EQ(o.info.recordBytes, 245u);
  EXPECT_EQ(o.info.handshakeBytes, 240u);
}

TEST(ClientHello, TrailingApplicationBytesDoNotMatter) {
  auto o = peekClientHello(realHello() + "\x17\x03\x03\x00\x05hello");
  ASSERT_EQ(o.status, HelloStatus::Parsed);
  EXPECT_EQ(o.info.recordBytes, 245u);
}

TEST(ClientHello, EveryPrefixNeedsMore) {
  std::string in = realHello();
  for (size_t n = 0; n < in.size(); ++n)
    EXPECT_EQ(peekClientHello(std::string_view(in).substr(0, n)).status, HelloStatus::NeedMore) << n;
}

TEST(ClientHello, ReassemblesAcrossTwoRecordsAtEverySplit) {
  std::string hs = realHello().substr(5);
  for (size_t k = 1; k < hs.size(); ++k) {
    std::string a = hs.substr(0, k), b = hs.substr(k);
    std::string in =
        "\x16\x03\x01" + u16(unsigned(a.size())) + a + "\x16\x03\x01" + u16(unsigned(b.size())) + b;
    auto o = peekClientHello(in);
    ASSERT_EQ(o.status, HelloStatus::Parsed) << k << " " << o.reason;
    EXPECT_EQ(o.info.sni, "example.com");
    EXPECT_EQ(o.info.recordBytes, in.size());
    // And every prefix of the two-record form is still NeedMore.
    if (k % 37 == 0) {
      for (size_t n = 0; n < in.size(); ++n)
        ASSERT_EQ(peekClientHello(std::string_view(in).substr(0, n)).status, HelloStatus::NeedMore);
    }
  }
}

TEST(ClientHello, ManyTinyRecordsAreCapped) {
  std::string in = records(realHello().substr(5), 1);
  auto o = peekClientHello(in);
  EXPECT_EQ(o.status, HelloStatus::TooLarge);
  EXPECT_EQ(o.reason, "too_many_records");
  HelloLimits roomy;
  roomy.maxRecords = 300;
  auto p = peekClientHello(in, roomy);
  ASSERT_EQ(p.status, HelloStatus::Parsed) << p.reason;
  EXPECT_EQ(p.info.alpn.size(), 2u);
}

TEST(ClientHello, LargePostQuantumSizedKeyShare) {
  // Like X25519MLKEM768: a 1216-byte key_share entry, so the hello is well over 1 KiB.
  std::string share = u16(0x11ec) + u16(1216) + std::string(1216, 'k');
  std::string exts = sniExt("pq.example") + alpnExt({"h2"}) + versionsExt({0x0304, 0x0303}) +
                     ext(51, u16(unsigned(share.size())) + share);
  std::string hs = handshake(body(exts));
  ASSERT_GT(hs.size(), 1300u);
  for (size_t chunk : {16384, 1000, 512, 100}) {
    auto o = peekClientHello(records(hs, chunk));
    ASSERT_EQ(o.status, HelloStatus::Parsed) << chunk << o.reason;
    EXPECT_EQ(o.info.sni, "pq.example");
    EXPECT_EQ(o.info.supportedVersions, (std::vector<uint16_t>{0x0304, 0x0303}));
  }
  HelloLimits small;
  small.maxHandshakeBytes = 1024;
  // Known from the 4-byte handshake header alone, before the rest arrives.
  auto o = peekClientHello(records(hs).substr(0, 9), small);
  EXPECT_EQ(o.status, HelloStatus::TooLarge);
  EXPECT_EQ(o.reason, "handshake_too_large");
}

TEST(ClientHello, PlainHttpIsNotTls) {
  EXPECT_EQ(peekClientHello("GET / HTTP/1.1\r\nHost: a\r\n\r\n").status, HelloStatus::NotTls);
  EXPECT_EQ(peekClientHello("G").status, HelloStatus::NotTls);
  EXPECT_EQ(peekClientHello(std::string("\x16\x01", 2)).status, HelloStatus::NotTls);
  EXPECT_EQ(peekClientHello("\x16").status, HelloStatus::NeedMore);
  EXPECT_EQ(peekClientHello("").status, HelloStatus::NeedMore);
}

TEST(ClientHello, RejectsOtherRecordBetweenFragments) {
  std::string hs = realHello().substr(5);
  std::string in = "\x16\x03\x01" + u16(10) + hs.substr(0, 10) + "\x17\x03\x03" + u16(1) + "x";
  auto o = peekClientHello(in);
  EXPECT_EQ(o.status, HelloStatus::Malformed);
  EXPECT_EQ(o.reason, "interleaved_record");
  EXPECT_EQ(peekClientHello(in.substr(0, 16)).reason, "interleaved_record");
}

TEST(ClientHello, RejectsRecordLevelErrors) {
  EXPECT_EQ(peekClientHello(std::string("\x16\x03\x01\x00\x00", 5)).reason, "empty_handshake_record");
  EXPECT_EQ(peekClientHello(std::string("\x16\x03\x01\x40\x01", 5)).reason, "record_overflow");
  std::string serverHello = "\x16\x03\x03" + u16(4) + u8(2) + u24(0);
  EXPECT_EQ(peekClientHello(serverHello).reason, "not_client_hello");
  EXPECT_EQ(peekClientHello("\x16\x03\x03" + u16(1) + u8(2)).reason, "not_client_hello");
}

TEST(ClientHello, TruncatedMessageIsMalformed) {
  std::string b = body(sniExt("a.example"));
  // The handshake header claims a short message: the body ends inside the random.
  auto o = peekClientHello(records(u8(1) + u24(10) + b.substr(0, 10)));
  EXPECT_EQ(o.status, HelloStatus::Malformed);
  EXPECT_EQ(o.reason, "truncated_random");
  o = peekClientHello(records(u8(1) + u24(unsigned(b.size() - 3)) + b.substr(0, b.size() - 3)));
  EXPECT_EQ(o.status, HelloStatus::Malformed);
  EXPECT_EQ(o.reason, "bad_extensions_length");
}

TEST(ClientHello, LengthsThatOverflowTheirEnclosure) {
  // server_name list length larger than the extension.
  std::string sni = ext(0, u16(200) + u8(0) + u16(3) + "a.b");
  EXPECT_EQ(peekClientHello(hello(sni)).reason, "bad_server_name_length");
  // host_name length past the list.
  std::string entry = u8(0) + u16(50) + "a.b";
  EXPECT_EQ(peekClientHello(hello(ext(0, u16(unsigned(entry.size())) + entry))).reason,
            "bad_server_name_entry");
  // extension length past the extensions block.
  EXPECT_EQ(peekClientHello(hello(u16(0x1234) + u16(100) + "xx")).reason, "bad_extension");
  // extensions length past the message.
  std::string b = body("");
  b.resize(b.size() - 2);
  b += u16(40) + "abc";
  EXPECT_EQ(peekClientHello(records(handshake(b))).reason, "bad_extensions_length");
  // session id over 32 bytes.
  std::string s = u16(0x0303) + std::string(32, 'r') + u8(33) + std::string(33, 's');
  EXPECT_EQ(peekClientHello(records(handshake(s))).reason, "bad_session_id");
  // cipher suites: odd, empty, or longer than the message.
  EXPECT_EQ(peekClientHello(records(handshake(body("", u16(1) + u8(1))))).reason, "bad_cipher_suites");
  EXPECT_EQ(peekClientHello(records(handshake(body("", "")))).reason, "bad_cipher_suites");
  std::string c = u16(0x0303) + std::string(32, 'r') + u8(0) + u16(0xffff) + "ab";
  EXPECT_EQ(peekClientHello(records(handshake(c))).reason, "bad_cipher_suites");
  // no compression methods.
  std::string m = u16(0x0303) + std::string(32, 'r') + u8(0) + u16(2) + u16(0x1301) + u8(0);
  EXPECT_EQ(peekClientHello(records(handshake(m))).reason, "bad_compression_methods");
  // bytes after the extensions.
  std::string t = body(sniExt("a.b")) + "zz";
  EXPECT_EQ(peekClientHello(records(handshake(t))).reason, "trailing_bytes");
  // ALPN and supported_versions inner lengths.
  EXPECT_EQ(peekClientHello(hello(ext(16, u16(5) + u8(9) + "h2"))).reason, "bad_alpn_length");
  EXPECT_EQ(peekClientHello(hello(ext(16, u16(3) + u8(9) + "h2"))).reason, "bad_alpn_entry");
  EXPECT_EQ(peekClientHello(hello(ext(43, u8(3) + u16(0x0304) + u8(3)))).reason, "bad_supported_versions");
  EXPECT_EQ(peekClientHello(hello(ext(43, u8(4) + u16(0x0304)))).reason, "bad_supported_versions");
}

TEST(ClientHello, RefusesDuplicateExtensions) {
  auto o = peekClientHello(hello(sniExt("a.example") + sniExt("b.example")));
  EXPECT_EQ(o.status, HelloStatus::Malformed);
  EXPECT_EQ(o.reason, "duplicate_extension");
  std::string two = u8(0) + u16(3) + "a.b" + u8(0) + u16(3) + "c.d";
  o = peekClientHello(hello(ext(0, u16(unsigned(two.size())) + two)));
  EXPECT_EQ(o.reason, "duplicate_host_name");
  EXPECT_EQ(peekClientHello(hello(ext(0, u16(0)))).reason, "empty_server_name_list");
}

TEST(ClientHello, SkipsGreaseAndUnknownExtensions) {
  std::string exts = ext(0x0a0a, "") + sniExt("g.example") + ext(0xfe0d, std::string(40, 'e')) +
                     alpnExt({std::string("\x3a\x3a", 2), "h2"}) + versionsExt({0x5a5a, 0x0304}) +
                     ext(0x1a1a, u8(0));
  auto o = peekClientHello(records(handshake(body(exts, u16(0x2a2a) + u16(0x1301)))));
  ASSERT_EQ(o.status, HelloStatus::Parsed) << o.reason;
  EXPECT_TRUE(o.info.sawGrease);
  EXPECT_EQ(o.info.sni, "g.example");
  EXPECT_EQ(o.info.alpn, (std::vector<std::string>{"h2"}));
  EXPECT_EQ(o.info.supportedVersions, (std::vector<uint16_t>{0x0304}));
  EXPECT_EQ(o.info.extensionCount, 6u);
  EXPECT_EQ(o.info.cipherSuiteCount, 2u);
  EXPECT_TRUE(isGrease(0xfafa));
  EXPECT_FALSE(isGrease(0x0a1a));
}

TEST(ClientHello, ValidatesSni) {
  auto sni = [](const std::string& name) { return peekClientHello(hello(sniExt(name))).info; };
  auto i = sni("WWW.Example.COM");
  EXPECT_EQ(i.sniStatus, SniStatus::Valid);
  EXPECT_EQ(i.sni, "www.example.com");
  EXPECT_EQ(i.sniRaw, "WWW.Example.COM");
  EXPECT_EQ(sni("192.0.2.1").sniStatus, SniStatus::IpLiteral);
  EXPECT_EQ(sni("::1").sniStatus, SniStatus::IpLiteral);
  EXPECT_EQ(sni("192.0.2.1").sni, "");
  for (const std::string& bad :
       std::vector<std::string>{"example.com.", "exa_mple.com", "a..b", "-a.b", "a-.b", ".a", "a b",
                                std::string("a\0b", 3), std::string(64, 'x') + ".com"}) {
    auto b = sni(bad);
    EXPECT_EQ(b.sniStatus, SniStatus::Invalid) << bad;
    EXPECT_EQ(b.sni, "");
  }
  EXPECT_EQ(sni(std::string("a\0b", 3)).sniRaw, "a?b");
  std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                        std::string(61, 'd');
  ASSERT_EQ(longest.size(), 253u);
  EXPECT_EQ(sni(longest).sniStatus, SniStatus::Valid);
  EXPECT_EQ(sni(longest + "d").sniStatus, SniStatus::Invalid);
  EXPECT_EQ(peekClientHello(hello(sniExt(""))).reason, "empty_host_name");
  EXPECT_EQ(peekClientHello(hello(alpnExt({"h2"}))).info.sniStatus, SniStatus::Absent);
}

TEST(ClientHello, HelloWithoutExtensions) {
  auto o = peekClientHello(records(handshake(body("", u16(0xc02f), false))));
  ASSERT_EQ(o.status, HelloStatus::Parsed) << o.reason;
  EXPECT_EQ(o.info.sniStatus, SniStatus::Absent);
  EXPECT_FALSE(o.info.offersTls13());
  EXPECT_EQ(o.info.extensionCount, 0u);
}

TEST(ClientHello, CapsExtensionsAndAlpn) {
  std::string exts;
  for (unsigned t = 100; t < 240; ++t) exts += ext(uint16_t(t), "");
  auto o = peekClientHello(hello(exts));
  EXPECT_EQ(o.status, HelloStatus::TooLarge);
  EXPECT_EQ(o.reason, "too_many_extensions");
  std::vector<std::string> protos(40, "p");
  o = peekClientHello(hello(alpnExt(protos)));
  EXPECT_EQ(o.status, HelloStatus::TooLarge);
  EXPECT_EQ(o.reason, "too_many_alpn_protocols");
  EXPECT_EQ(peekClientHello(hello(alpnExt({"h2", ""}))).reason, "empty_alpn_protocol");
  EXPECT_EQ(peekClientHello(hello(ext(16, u16(0)))).reason, "empty_alpn_list");
}

TEST(ClientHello, StatusNames) {
  EXPECT_EQ(statusName(HelloStatus::NotTls), "not_tls");
  EXPECT_EQ(statusName(HelloStatus::TooLarge), "too_large");
}
