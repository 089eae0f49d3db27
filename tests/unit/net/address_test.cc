#include "proxy/net/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

using namespace sekisho::net;

TEST(Address, ParsesIpv4AndIpv6WithPorts) {
  auto a = parseIpPort("127.0.0.1:3128");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port(), 3128);
  EXPECT_EQ(a->toString(), "127.0.0.1:3128");
  auto b = parseIpPort("[::1]:80");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->toString(), "[::1]:80");
  EXPECT_TRUE(b->isLoopback());
}

TEST(Address, RejectsMalformed) {
  EXPECT_FALSE(parseIpPort("127.0.0.1"));
  EXPECT_FALSE(parseIpPort("127.0.0.1:65536"));
  EXPECT_FALSE(parseIpPort("::1:80"));
  EXPECT_FALSE(parseIpPort("host.example:80"));
  EXPECT_FALSE(parseIpPort("1.2.3.4:-1"));
  EXPECT_FALSE(parseIp("1.2.3"));
  EXPECT_FALSE(parseIp(""));
}

TEST(Address, MappedIpv6IsStoredAsIpv4) {
  auto a = parseIp("::ffff:10.1.2.3");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->ipString(), "10.1.2.3");
}

TEST(Cidr, MatchesPrefixes) {
  auto c = parseCidr("10.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(*parseIp("10.255.1.2")));
  EXPECT_FALSE(c->contains(*parseIp("11.0.0.1")));
  EXPECT_FALSE(c->contains(*parseIp("::1")));
  auto s = parseCidr("172.16.0.0/12");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->contains(*parseIp("172.31.255.255")));
  EXPECT_FALSE(s->contains(*parseIp("172.32.0.0")));
  auto six = parseCidr("fd00::/8");
  ASSERT_TRUE(six);
  EXPECT_TRUE(six->contains(*parseIp("fd12::1")));
  auto all = parseCidr("0.0.0.0/0");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->contains(*parseIp("8.8.8.8")));
}

TEST(Cidr, RejectsHostBitsAndBadPrefixes) {
  EXPECT_FALSE(parseCidr("10.1.2.3/8"));
  EXPECT_FALSE(parseCidr("10.0.0.0/33"));
  EXPECT_FALSE(parseCidr("10.0.0.0/"));
  EXPECT_FALSE(parseCidr("::/129"));
  EXPECT_TRUE(parseCidr("192.168.1.7"));
}

TEST(Ports, RangesAllow) {
  std::vector<PortRange> r{{443, 443}, {1025, 65535}};
  EXPECT_TRUE(portAllowed(r, 443));
  EXPECT_TRUE(portAllowed(r, 8080));
  EXPECT_FALSE(portAllowed(r, 25));
  EXPECT_FALSE(portAllowed(r, 0));
}

// What the proxy refuses as a destination for remote clients, however the address is written.
TEST(Address, ClassifiesLoopbackAnyAndLinkLocalIncludingMappedForms) {
  auto v6 = [](const char* text) {
    SocketAddr a;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    sin6->sin6_family = AF_INET6;
    EXPECT_EQ(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1) << text;
    a.len = sizeof(sockaddr_in6);
    return a;
  };
  EXPECT_TRUE(parseIp("127.8.9.10")->isLoopback());
  EXPECT_TRUE(v6("::ffff:127.0.0.1").isLoopback()) << "an IPv4-mapped loopback reaches 127.0.0.1";
  EXPECT_TRUE(v6("::1").isLoopback());
  EXPECT_FALSE(parseIp("128.0.0.1")->isLoopback());
  EXPECT_TRUE(parseIp("0.0.0.0")->isAny());
  EXPECT_TRUE(v6("::ffff:0.0.0.0").isAny());
  EXPECT_TRUE(parseIp("169.254.169.254")->isLinkLocal());
  EXPECT_TRUE(v6("::ffff:169.254.169.254").isLinkLocal());
  EXPECT_TRUE(v6("fe80::1").isLinkLocal());
  EXPECT_FALSE(parseIp("169.253.1.1")->isLinkLocal());
  EXPECT_FALSE(parseIp("10.0.0.1")->isLinkLocal());
  EXPECT_FALSE(v6("2001:db8::1").isLinkLocal());
}
