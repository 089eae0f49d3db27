#include "proxy/server/resolver.h"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

using namespace sekisho;
using server::HostsMap;
using server::Resolver;

TEST(HostsFile, ParsesNamesCommentsAndBothFamilies) {
  char path[] = "/tmp/sekisho-hosts-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "127.0.0.1 localhost Bench.Test # comment\n"
                         "::1 localhost ip6-localhost\n"
                         "# 10.0.0.1 hidden\n"
                         "not-an-ip name\n"
                         "10.1.2.3\n";
  HostsMap m = server::loadHostsFile(path);
  unlink(path);
  ASSERT_EQ(m.count("bench.test"), 1u);
  EXPECT_EQ(m["bench.test"][0].ipString(), "127.0.0.1");
  ASSERT_EQ(m["localhost"].size(), 2u);
  EXPECT_EQ(m.count("hidden"), 0u);
  EXPECT_EQ(m.count("name"), 0u);
}

TEST(Resolver, LiteralsOverridesAndHostsAnswerAtOnce) {
  event_base* base = event_base_new();
  auto hosts = std::make_shared<HostsMap>();
  (*hosts)["bench.test"].push_back(*net::parseIp("127.0.0.1"));
  {
    Resolver r(base, hosts);
    auto overrides = std::make_shared<HostsMap>();
    (*overrides)["edi.example.co.jp"].push_back(*net::parseIp("10.1.2.3"));
    (*overrides)["bench.test"].push_back(*net::parseIp("10.9.9.9"));
    r.setOverrides(overrides);
    std::string got;
    r.resolve("192.0.2.7", [&](auto a) { got = a ? (*a)[0].ipString() : "error"; });
    EXPECT_EQ(got, "192.0.2.7");
    r.resolve("edi.example.co.jp", [&](auto a) { got = a ? (*a)[0].ipString() : "error"; });
    EXPECT_EQ(got, "10.1.2.3");
    // The configured override wins over /etc/hosts.
    r.resolve("bench.test", [&](auto a) { got = a ? (*a)[0].ipString() : "error"; });
    EXPECT_EQ(got, "10.9.9.9");
    r.setOverrides(nullptr);
    r.resolve("bench.test", [&](auto a) { got = a ? (*a)[0].ipString() : "error"; });
    EXPECT_EQ(got, "127.0.0.1");
  }
  event_base_free(base);
}
