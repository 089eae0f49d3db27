#include "proxy/server/client_counts.h"

#include <gtest/gtest.h>

using sekisho::net::SocketAddr;
using sekisho::server::ClientCounts;

namespace {

SocketAddr addr(const char* text) {
  auto a = sekisho::net::parseIpPort(text);
  EXPECT_TRUE(a) << text;
  return a ? *a : SocketAddr{};
}

TEST(ClientCounts, RefusesPastTheLimitPerAddressNotPerPort) {
  ClientCounts c;
  EXPECT_TRUE(c.tryAdd(addr("10.0.0.1:1000"), 2));
  EXPECT_TRUE(c.tryAdd(addr("10.0.0.1:1001"), 2));
  EXPECT_FALSE(c.tryAdd(addr("10.0.0.1:1002"), 2)) << "a third connection from the same address";
  EXPECT_EQ(c.count(addr("10.0.0.1:9")), 2u) << "a refused one is not counted";
  EXPECT_TRUE(c.tryAdd(addr("10.0.0.2:1000"), 2)) << "another address has its own share";
  c.remove(addr("10.0.0.1:1000"));
  EXPECT_TRUE(c.tryAdd(addr("10.0.0.1:1003"), 2)) << "room again once one ended";
  EXPECT_EQ(c.clients(), 2u);
}

TEST(ClientCounts, ZeroMeansNoLimitAndEveryConnectionIsStillCounted) {
  ClientCounts c;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(c.tryAdd(addr("192.0.2.7:40000"), 0));
  EXPECT_EQ(c.count(addr("192.0.2.7:1")), 1000u) << "counted, so a limit set by a reload applies at once";
  EXPECT_FALSE(c.tryAdd(addr("192.0.2.7:40000"), 1000));
  for (int i = 0; i < 1000; ++i) c.remove(addr("192.0.2.7:40000"));
  EXPECT_EQ(c.clients(), 0u) << "an address with nothing open is forgotten";
  c.remove(addr("192.0.2.7:40000"));  // one too many: ignored
  EXPECT_EQ(c.count(addr("192.0.2.7:1")), 0u);
}

TEST(ClientCounts, AnIpv4MappedAddressIsThatIpv4Client) {
  ClientCounts c;
  EXPECT_TRUE(c.tryAdd(addr("10.1.2.3:5"), 2));
  EXPECT_TRUE(c.tryAdd(addr("[::ffff:10.1.2.3]:6"), 2));
  EXPECT_FALSE(c.tryAdd(addr("10.1.2.3:7"), 2));
  EXPECT_TRUE(c.tryAdd(addr("[2001:db8::1]:7"), 2));
  EXPECT_EQ(c.count(addr("[::ffff:10.1.2.3]:1")), 2u);
}

}  // namespace
