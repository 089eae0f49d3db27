#include "proxy/server/forward_headers.h"

#include "proxy/base/strings.h"

namespace sekisho::server {

void ConnectionNamed::collect(const http::HeaderList& fields) {
  fields_ = fields.find("connection") ? &fields : nullptr;
}

bool ConnectionNamed::contains(std::string_view name) const {
  if (!fields_) return false;
  bool named = false;
  for (const auto& c : fields_->items)
    if (iequals(c.name, "connection")) forEachListElement(c.value, [&](std::string_view e) { named |= iequals(e, name); });
  return named;
}

HeadAction ForwardRequestHeaders::begin(const http::RequestHead& req) {
  named_.collect(req.headers);
  v10_ = req.versionMinor == 0;
  upgrade_ = false;
  if (const http::Header* up = req.headers.find("upgrade");
      up && iequals(up->value, "websocket") && req.method == "GET" && req.body == http::BodyKind::None && !v10_)
    upgrade_ = named_.contains("upgrade");
  return {};
}

bool ForwardRequestHeaders::keep(const http::Header& f, HeadWriter& out) {
  if (iequals(f.name, "host") || iequals(f.name, "content-length") || http::isHopByHop(f.name)) return false;
  if (named_.contains(f.name)) return false;
  if (maxForwards_ > 0 && iequals(f.name, "max-forwards")) {
    out.add("Max-Forwards", std::to_string(maxForwards_ - 1));
    return false;
  }
  return true;
}

void ForwardRequestHeaders::end(HeadWriter& out) {
  if (upgrade_) out.raw().append("Connection: Upgrade\r\nUpgrade: websocket\r\n");
  out.raw().append(v10_ ? "Via: 1.0 " : "Via: 1.1 ").append(viaBy_).append("\r\n");
}

HeadAction ForwardResponseHeaders::begin(const http::RequestHead&, const http::ResponseHead& resp) {
  named_.collect(resp.headers);
  dropLength_ = resp.body == http::BodyKind::Chunked || resp.body == http::BodyKind::CloseDelimited;
  sentLength_ = false;
  v10_ = resp.versionMinor == 0;
  return {};
}

bool ForwardResponseHeaders::keep(const http::Header& f, HeadWriter&) {
  if (http::isHopByHop(f.name)) return false;
  if (iequals(f.name, "content-length")) {
    if (dropLength_ || sentLength_) return false;
    sentLength_ = true;
  }
  return !named_.contains(f.name);
}

void ForwardResponseHeaders::end(HeadWriter& out) {
  out.raw().append(v10_ ? "Via: 1.0 " : "Via: 1.1 ").append(viaBy_).append("\r\n");
}

}  // namespace sekisho::server
