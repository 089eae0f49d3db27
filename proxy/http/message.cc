#include "proxy/http/message.h"

namespace sekisho::http {

bool isHopByHop(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "trailer",
      "proxy-authorization", "proxy-authenticate"};
  for (auto n : kNames)
    if (iequals(name, n)) return true;
  return false;
}

bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" || method == "PUT" ||
         method == "DELETE";
}

}  // namespace sekisho::http
