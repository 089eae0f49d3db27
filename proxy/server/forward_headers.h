// The header rewriting every forwarded message gets, as the first filters of each chain
// (filter.h): what is hop-by-hop stays on its hop (RFC 9110 §7.6.1: the fixed list and every
// field the Connection header names), Max-Forwards is passed on less one (§7.6.2), a WebSocket
// upgrade asked for properly is passed on explicitly (RFC 6455 §4.1), and our Via is added
// (§7.6.3). Host, Content-Length and Transfer-Encoding are not fields but framing: the relay
// writes them itself.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "proxy/server/filter.h"

namespace sekisho::server {

// Names listed in a head's Connection fields (lower-case comparison by iequals).
// Looked up in the head itself, with no copy: most heads have one Connection field or none.
class ConnectionNamed {
 public:
  void collect(const http::HeaderList& fields);
  bool contains(std::string_view name) const;

 private:
  const http::HeaderList* fields_ = nullptr;  // null: the head has no Connection field
};

// Via names this proxy as "<visible hostname> (sekisho/<version>)" (Worker::viaBy), after the
// protocol version of the message received ("1.0 " or "1.1 ").
class ForwardRequestHeaders final : public RequestFilter {
 public:
  void setVia(std::string_view viaBy) { viaBy_ = viaBy; }  // "<visible hostname> (sekisho/<version>)"
  void setMaxForwards(int64_t received) { maxForwards_ = received; }  // -1: none to pass on
  HeadAction begin(const http::RequestHead& req) override;
  bool keep(const http::Header& field, HeadWriter& out) override;
  void end(HeadWriter& out) override;
  // "websocket" when the request asked for that upgrade and it is passed on; else empty.
  std::string_view upgrade() const { return upgrade_ ? "websocket" : ""; }

 private:
  std::string_view viaBy_;
  ConnectionNamed named_;
  int64_t maxForwards_ = -1;
  bool v10_ = false;
  bool upgrade_ = false;
};

class ForwardResponseHeaders final : public ResponseFilter {
 public:
  void setVia(std::string_view viaBy) { viaBy_ = viaBy; }
  HeadAction begin(const http::RequestHead& req, const http::ResponseHead& resp) override;
  bool keep(const http::Header& field, HeadWriter& out) override;
  void end(HeadWriter& out) override;

 private:
  std::string_view viaBy_;
  ConnectionNamed named_;
  bool dropLength_ = false;  // the body is re-framed (chunked or close-delimited): no Content-Length
  bool sentLength_ = false;
  bool v10_ = false;
};

}  // namespace sekisho::server
