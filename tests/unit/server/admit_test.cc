// The admit table (proxy/server/admit.h): one row per refusal that needs no I/O, each with the
// exact status, reason and detail, and the rows that must pass on untouched.
#include "proxy/server/admit.h"

#include <gtest/gtest.h>

#include "proxy/http1/parser.h"

using namespace sekisho;
using namespace sekisho::server;

namespace {

struct Row {
  const char* name;
  std::string head;    // the request head as the client sends it
  bool allowed;
  bool bumped;         // inside an intercepted connection for good.example:8443
  AdmitAction action;
  int status;
  Reason reason;
  std::string detail;  // a part of the detail that must be there
  bool denied;
  int64_t maxForwards;
  Row(const char* n, std::string h, bool a, bool b, AdmitAction act, int st = 0, Reason r = Reason::None,
      std::string d = "", bool den = false, int64_t mf = -1)
      : name(n), head(std::move(h)), allowed(a), bumped(b), action(act), status(st), reason(r), detail(std::move(d)),
        denied(den), maxForwards(mf) {}
};

void PrintTo(const Row& r, std::ostream* os) { *os << r.name; }

std::string req(std::string_view line, std::string_view fields = "") {
  return std::string(line) + "\r\n" + std::string(fields) + "\r\n";
}

class AdmitTable : public ::testing::TestWithParam<Row> {
 protected:
  std::vector<net::SocketAddr> listeners{*net::parseIpPort("127.0.0.1:3128")};
  std::vector<net::SocketAddr> localAddrs{*net::parseIp("10.0.0.5")};
  std::optional<net::SocketAddr> admin = net::parseIpPort("127.0.0.1:3129");
  std::vector<net::PortRange> connectPorts{{443, 443}, {8443, 8443}};
  std::vector<net::PortRange> httpPorts{{80, 80}, {1025, 65535}};
  SelfFacts self() const {
    SelfFacts s;
    s.listeners = &listeners;
    s.localAddrs = &localAddrs;
    s.admin = &admin;
    s.local = *net::parseIpPort("127.0.0.1:3128");
    s.visibleHostname = "gw.example";
    return s;
  }
};

TEST_P(AdmitTable, Decides) {
  const Row& row = GetParam();
  auto parsed = http1::parseRequestHead(row.head, http1::Limits{});
  ASSERT_TRUE(parsed) << parsed.error().detail;
  AdmitFacts f;
  f.req = &*parsed;
  f.clientAllowed = row.allowed;
  f.clientIp = "192.0.2.7";
  BumpedFor b{"good.example", 8443};
  if (row.bumped) f.bumped = &b;
  f.self = self();
  f.connectPorts = &connectPorts;
  f.httpPorts = &httpPorts;
  AdmitDecision d = admitRequest(f);
  EXPECT_EQ(int(d.action), int(row.action));
  EXPECT_EQ(d.status, row.status);
  EXPECT_EQ(int(d.reason), int(row.reason)) << reasonName(d.reason);
  EXPECT_NE(d.detail.find(row.detail), std::string::npos) << d.detail;
  if (row.detail.empty()) {
    EXPECT_EQ(d.detail, "");
  }
  EXPECT_EQ(d.denied, row.denied);
  EXPECT_EQ(d.maxForwards, row.maxForwards);
  EXPECT_EQ(d.rewriteToBumped, row.bumped && row.action == AdmitAction::Forward);
}

const Row kRows[] = {
    {"PlainGetForwards", req("GET http://example.com/ HTTP/1.1", "Host: example.com\r\n"), true, false, AdmitAction::Forward},
    {"ConnectToAllowedPortForwards", req("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443\r\n"), true, false,
     AdmitAction::Forward},
    {"ClientNotAllowedFirst", req("CONNECT example.com:25 HTTP/1.0", "Via: 1.1 gw.example\r\n"), false, false,
     AdmitAction::Refuse, 403, Reason::ClientNotAllowed, "client 192.0.2.7 is not in allow_clients", true},
    {"ClientNotAllowedInsideTls", req("GET / HTTP/1.1", "Host: good.example:8443\r\n"), false, true, AdmitAction::Refuse,
     403, Reason::ClientNotAllowed, "allow_clients", true},
    {"ConnectToOtherPortRefused", req("CONNECT example.com:25 HTTP/1.1", "Host: example.com:25\r\n"), true, false,
     AdmitAction::Refuse, 403, Reason::ConnectPortNotAllowed, "CONNECT to port 25 is not allowed (connect_ports)", true},
    {"HttpToPortOutsideHttpPortsRefused", req("GET http://example.com:22/ HTTP/1.1", "Host: example.com:22\r\n"), true,
     false, AdmitAction::Refuse, 403, Reason::PortNotAllowed, "port 22 is not allowed (http_ports)", true},
    {"HttpsAbsoluteUriWithoutConnectRefused", req("GET https://example.com/ HTTP/1.1", "Host: example.com\r\n"), true,
     false, AdmitAction::Refuse, 501, Reason::UnsupportedScheme, "HTTPS goes through CONNECT"},
    {"OriginFormIsOurPage", req("GET /proxy.pac HTTP/1.1", "Host: anything\r\n"), true, false, AdmitAction::OwnPage},
    {"AbsoluteUriNamingOurListenerIsOurPage", req("GET http://127.0.0.1:3128/ca HTTP/1.1", "Host: 127.0.0.1:3128\r\n"),
     true, false, AdmitAction::OwnPage},
    {"AbsoluteUriNamingOurHostnameIsOurPage", req("GET http://gw.example:3128/ca HTTP/1.1", "Host: gw.example:3128\r\n"),
     true, false, AdmitAction::OwnPage},
    {"OurHostnameOnAnotherPortIsForwarded", req("GET http://gw.example:8080/ HTTP/1.1", "Host: gw.example:8080\r\n"), true,
     false, AdmitAction::Forward},
    {"ViaNamingUsIsALoop", req("GET http://example.com/ HTTP/1.1", "Host: example.com\r\nVia: 1.0 a, 1.1 GW.example (x)\r\n"),
     true, false, AdmitAction::Refuse, 508, Reason::LoopDetected, "already passed through gw.example", true},
    {"ViaNamingOthersForwards", req("GET http://example.com/ HTTP/1.1", "Host: example.com\r\nVia: 1.1 gw.example.net\r\n"),
     true, false, AdmitAction::Forward},
    {"ConnectWithOurViaIsALoop", req("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443\r\nVia: 1.1 gw.example\r\n"), true, false,
     AdmitAction::Refuse, 508, Reason::LoopDetected, "gw.example", true},
    {"TraceAtZeroIsAnswered", req("TRACE http://example.com/ HTTP/1.1", "Host: example.com\r\nMax-Forwards: 0\r\n"), true,
     false, AdmitAction::AnswerTrace, 0, Reason::None, "", false, 0},
    {"OptionsAtZeroIsAnswered", req("OPTIONS http://example.com/ HTTP/1.1", "Host: example.com\r\nMax-Forwards: 0\r\n"),
     true, false, AdmitAction::AnswerOptions, 0, Reason::None, "", false, 0},
    {"TraceAboveZeroGoesOn", req("TRACE http://example.com/ HTTP/1.1", "Host: example.com\r\nMax-Forwards: 5\r\n"), true,
     false, AdmitAction::Forward, 0, Reason::None, "", false, 5},
    {"GetIgnoresMaxForwards", req("GET http://example.com/ HTTP/1.1", "Host: example.com\r\nMax-Forwards: 0\r\n"), true,
     false, AdmitAction::Forward},
    {"MaxForwardsNotANumberRefused", req("TRACE http://example.com/ HTTP/1.1", "Host: example.com\r\nMax-Forwards: -1\r\n"),
     true, false, AdmitAction::Refuse, 400, Reason::BadRequest, "Max-Forwards must be one decimal number"},
    {"TwoMaxForwardsRefused",
     req("OPTIONS http://example.com/ HTTP/1.1", "Host: example.com\r\nMax-Forwards: 1\r\nMax-Forwards: 1\r\n"), true, false,
     AdmitAction::Refuse, 400, Reason::BadRequest, "one decimal number"},
    {"TraceWithContentRefused",
     req("TRACE http://example.com/ HTTP/1.1", "Host: example.com\r\nContent-Length: 3\r\n"), true, false,
     AdmitAction::Refuse, 400, Reason::BadRequest, "a TRACE request must not carry content"},
    {"BumpedRequestForItsOriginIsRewritten", req("GET /a HTTP/1.1", "Host: good.example:8443\r\n"), true, true,
     AdmitAction::Forward},
    {"BumpedRequestWithPort80HostIsItsOrigin", req("GET /a HTTP/1.1", "Host: good.example\r\n"), true, true,
     AdmitAction::Forward},
    {"BumpedRequestForAnotherHostIsMisdirected", req("GET /a HTTP/1.1", "Host: other.example:8443\r\n"), true, true,
     AdmitAction::Refuse, 421, Reason::MisdirectedRequest, "opened for good.example, not for other.example", true},
    {"BumpedHttpAbsoluteUriIsMisdirected", req("GET http://good.example:8443/ HTTP/1.1", "Host: good.example:8443\r\n"),
     true, true, AdmitAction::Refuse, 421, Reason::MisdirectedRequest, "not for good.example", true},
    {"ConnectInsideTlsRefused", req("CONNECT good.example:8443 HTTP/1.1", "Host: good.example:8443\r\n"), true, true,
     AdmitAction::Refuse, 400, Reason::BadRequest, "not accepted inside an intercepted connection"},
    {"BumpedRequestIsNeverOurPage", req("GET /proxy.pac HTTP/1.1", "Host: good.example:8443\r\n"), true, true,
     AdmitAction::Forward},
    {"BumpedLoopStillCaught", req("GET / HTTP/1.1", "Host: good.example:8443\r\nVia: 1.1 gw.example\r\n"), true, true,
     AdmitAction::Refuse, 508, Reason::LoopDetected, "gw.example", true},
    {"BumpedTraceAtZeroIsAnswered", req("TRACE / HTTP/1.1", "Host: good.example:8443\r\nMax-Forwards: 0\r\n"), true, true,
     AdmitAction::AnswerTrace, 0, Reason::None, "", false, 0},
};

INSTANTIATE_TEST_SUITE_P(Rows, AdmitTable, ::testing::ValuesIn(kRows),
                         [](const ::testing::TestParamInfo<Row>& i) { return std::string(i.param.name); });

struct AddrRow {
  const char* name;
  const char* addr;
  bool peerLoopback;
  int status;  // 0: may be connected to
  Reason reason;
  const char* detail;
};

void PrintTo(const AddrRow& r, std::ostream* os) { *os << r.name; }

class AddressTable : public ::testing::TestWithParam<AddrRow> {};

TEST_P(AddressTable, Decides) {
  const AddrRow& row = GetParam();
  std::vector<net::SocketAddr> listeners{*net::parseIpPort("0.0.0.0:3128")};
  std::vector<net::SocketAddr> localAddrs{*net::parseIp("10.0.0.5")};
  std::optional<net::SocketAddr> admin = net::parseIpPort("127.0.0.1:3129");
  AddressFacts f;
  f.host = "target.example";
  f.peerLoopback = row.peerLoopback;
  f.self.listeners = &listeners;
  f.self.localAddrs = &localAddrs;
  f.self.admin = &admin;
  auto d = admitAddress(*net::parseIpPort(row.addr), f);
  if (row.status == 0) {
    EXPECT_FALSE(d) << d->detail;
    return;
  }
  ASSERT_TRUE(d);
  EXPECT_EQ(int(d->action), int(AdmitAction::Refuse));
  EXPECT_EQ(d->status, row.status);
  EXPECT_EQ(int(d->reason), int(row.reason));
  EXPECT_NE(d->detail.find(row.detail), std::string::npos) << d->detail;
  EXPECT_TRUE(d->denied);
}

const AddrRow kAddrRows[] = {
    {"PublicAddressConnects", "192.0.2.10:80", false, 0, Reason::None, ""},
    {"OurListenerIsALoop", "127.0.0.1:3128", true, 508, Reason::LoopDetected, "target.example resolves to this proxy (127.0.0.1:3128)"},
    {"OurInterfaceOnOurPortIsALoop", "10.0.0.5:3128", false, 508, Reason::LoopDetected, "resolves to this proxy"},
    {"OurInterfaceOnAnotherPortConnects", "10.0.0.5:8080", false, 0, Reason::None, ""},
    {"LoopbackForRemoteClientRefused", "127.0.0.1:6379", false, 403, Reason::DestinationNotAllowed, "this proxy's own loopback address"},
    {"LoopbackForLocalClientConnects", "127.0.0.1:6379", true, 0, Reason::None, ""},
    {"AnyAddressForRemoteClientRefused", "0.0.0.0:80", false, 403, Reason::DestinationNotAllowed, "loopback"},
    {"MetadataServiceRefused", "169.254.169.254:80", false, 403, Reason::DestinationNotAllowed,
     "link-local address of the proxy's network (169.254.169.254)"},
    {"AdminListenerRefusedEvenLocally", "127.0.0.1:3129", true, 403, Reason::DestinationNotAllowed, "admin listener"},
};

INSTANTIATE_TEST_SUITE_P(Rows, AddressTable, ::testing::ValuesIn(kAddrRows),
                         [](const ::testing::TestParamInfo<AddrRow>& i) { return std::string(i.param.name); });

}  // namespace
