// Filters: the seam between a message head being parsed and its bytes going out.
//
// Each exchange runs its request head through a chain of RequestFilters and its response through
// a chain of ResponseFilters (a FilterList each, built per exchange by the relay; the built-in
// filters are members of the relay and the list is inline, so an exchange allocates nothing for
// them). A filter
// never owns a socket and never reads another phase's state: it sees the head, decides, and
// writes through a HeadWriter.
//
// Heads, in three calls per filter:
//   begin(head)   Continue, or Replace with a local answer (status, reason, detail: the error
//                 page); a ResponseFilter may also Hold (the head waits for its body verdict);
//   keep(field)   true: the field goes out as it is; false: it does not (the filter may have
//                 written a replacement through the writer); the first false wins;
//   end(writer)   fields of its own, after every received field.
// Bodies (ResponseFilter): onData(piece, end) sees the decoded payload as it streams and answers
// Continue (the bytes go on), Keep (it moved them into its own buffer, at most bound() bytes in
// all; BodyChain enforces the bound and the connection stops reading the origin while a filter
// holds that much, as with any full buffer) or Replace (a local answer instead of the rest).
//
// Writing a filter: derive from RequestFilter or ResponseFilter, override what it needs (the
// defaults pass everything), keep per-exchange state in members, and add it where the relay
// builds its chains (FilterList::add in relay.cc). forward_headers.h is the example: hop-by-hop
// fields, Connection-named fields, Max-Forwards and Via (RFC 9110 §7.6). The relay runs the head
// chains today; its response pump hands bodies to BodyChain once the first body filter exists
// (docs/ARCHITECTURE.md).
#pragma once
#include <event2/buffer.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/message.h"
#include "proxy/server/metrics.h"

namespace sekisho::server {

// Appends "Name: value\r\n" lines to the head being serialised.
class HeadWriter {
 public:
  explicit HeadWriter(std::string& out) : out_(out) {}
  void add(std::string_view name, std::string_view value) {
    out_.append(name).append(": ").append(value).append("\r\n");
  }
  std::string& raw() { return out_; }  // for a filter that writes a whole line at once

 private:
  std::string& out_;
};

// What a filter answers instead of the origin: the error page's status, reason and detail.
struct LocalAnswer {
  int status = 0;
  Reason reason = Reason::None;
  std::string detail;
};

enum class HeadStatus : uint8_t { Continue, Replace, Hold };
struct HeadAction {
  HeadStatus status = HeadStatus::Continue;
  LocalAnswer answer;  // Replace
};

enum class DataStatus : uint8_t { Continue, Keep, Replace };
struct DataAction {
  DataStatus status = DataStatus::Continue;
  LocalAnswer answer;  // Replace
};

class RequestFilter {
 public:
  virtual ~RequestFilter() = default;
  virtual HeadAction begin(const http::RequestHead& req) { return {}; }
  virtual bool keep(const http::Header& field, HeadWriter& out) { return true; }
  virtual void end(HeadWriter& out) {}
};

class ResponseFilter {
 public:
  virtual ~ResponseFilter() = default;
  virtual HeadAction begin(const http::RequestHead& req, const http::ResponseHead& resp) { return {}; }
  virtual bool keep(const http::Header& field, HeadWriter& out) { return true; }
  virtual void end(HeadWriter& out) {}
  // The payload bytes in `piece` (decoded: no chunk framing). Continue leaves them in `piece` to
  // go on; Keep means the filter has not decided: it moved what it wanted out of `piece` into its
  // own buffer, and what it left stays with the caller, unsent, to be offered again once the
  // filter has room; `end`: this is the last call, the body is complete.
  virtual DataAction onData(evbuffer* piece, bool end) { return {}; }
  virtual bool seesBody() const { return false; }  // onData is called (the relay decodes the body for it)
  virtual size_t bound() const { return 0; }      // bytes it may keep; 0 = it never keeps
  virtual size_t kept() const { return 0; }       // bytes it holds now
  // After a Continue that follows Keeps, the bytes it held go on first, in order.
  virtual void release(evbuffer* out) {}
  // The relay sets this when it adds the filter: a filter that is full and waiting for something
  // of its own (a verdict) calls it once it can decide, and the relay offers the body again. Only
  // within the exchange's life (the filter is the exchange's; it cancels its own callbacks).
  void setWake(std::function<void()> wake) { wake_ = std::move(wake); }

 protected:
  void wake() {
    if (wake_) wake_();
  }

 private:
  std::function<void()> wake_;
};

// One exchange's filters, in order, held inline (an exchange allocates nothing for its chain).
// Holds pointers: the filters belong to the exchange, never to the list. False from add() when
// the list is full (kMaxFilters), which is a programming error of whoever builds the chain.
template <class Filter>
class FilterList {
 public:
  static constexpr size_t kMaxFilters = 8;
  bool add(Filter* f) {
    if (n_ == kMaxFilters) return false;
    items_[n_++] = f;
    return true;
  }
  bool empty() const { return n_ == 0; }
  Filter* const* begin() const { return items_; }
  Filter* const* end() const { return items_ + n_; }
  size_t size() const { return n_; }

 private:
  Filter* items_[kMaxFilters] = {};
  size_t n_ = 0;
};

// Runs `fields` through `filters` into `out`: each field is offered to every filter in order
// until one does not keep it; kept fields are written as received. Then each filter's end().
template <class Filter>
void writeFields(const FilterList<Filter>& filters, const http::HeaderList& fields, HeadWriter& out) {
  for (const auto& f : fields.items) {
    bool send = true;
    for (Filter* flt : filters)
      if (!flt->keep(f, out)) {
        send = false;
        break;
      }
    if (send) out.add(f.name, f.value);
  }
  for (Filter* flt : filters) flt->end(out);
}

// The body half of a response chain: offers each piece to the filters in order and enforces
// their bounds. A filter that keeps more than bound() is a bug in that filter: the exchange is
// answered 502 rather than letting memory grow.
class BodyChain {
 public:
  explicit BodyChain(const FilterList<ResponseFilter>& filters) : filters_(filters) {}
  // `piece` holds decoded payload. Continue: what is left in it goes to the client. Keep: a filter
  // is undecided; what is left must wait (the caller keeps it and, when full(), stops reading).
  // Replace (with the answer): a filter replaced the response or overran its bound.
  DataAction run(evbuffer* piece, bool end);
  // Bytes the filters hold now: the connection pauses the origin while this is at the bound.
  size_t kept() const;
  bool full() const;  // some filter holds its whole bound

 private:
  const FilterList<ResponseFilter>& filters_;
};

}  // namespace sekisho::server
