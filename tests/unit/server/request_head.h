// A request head parsed by the real HTTP/1 parser, for the unit tests of the request path.
#pragma once
#include <gtest/gtest.h>

#include <string_view>

#include "proxy/http/message.h"
#include "proxy/http1/parser.h"

namespace sekisho::testing {

inline http::RequestHead request(std::string_view head) {
  auto r = http1::parseRequestHead(head, http1::Limits{});
  EXPECT_TRUE(r) << r.error().detail;
  return r ? std::move(*r) : http::RequestHead{};
}

}  // namespace sekisho::testing
