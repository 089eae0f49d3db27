#include "proxy/server/filter.h"

#include "proxy/base/handles.h"

namespace sekisho::server {

namespace {
DataAction replaced(std::string detail) {
  DataAction a;
  a.status = DataStatus::Replace;
  a.answer = {502, Reason::BadResponse, std::move(detail)};
  return a;
}
}  // namespace

DataAction BodyChain::run(evbuffer* piece, bool end) {
  for (ResponseFilter* f : filters_) {
    size_t heldBefore = f->kept();
    DataAction a = f->onData(piece, end);
    if (f->kept() > f->bound())
      return replaced("a response filter kept " + std::to_string(f->kept()) + " bytes, more than its bound of " +
                      std::to_string(f->bound()));
    switch (a.status) {
      case DataStatus::Replace: return a;
      case DataStatus::Keep:  // undecided: nothing goes on, later filters see nothing yet
        if (end) return replaced("a response filter kept the body's end without deciding");
        return a;
      case DataStatus::Continue:
        if (heldBefore > 0 || f->kept() > 0) {  // what it held goes first, then the rest of this piece
          evbuffer* all = evbuffer_new();
          if (!all) return replaced("out of memory while releasing a held body");
          f->release(all);
          evbuffer_add_buffer(all, piece);
          evbuffer_add_buffer(piece, all);
          evbuffer_free(all);
        }
        break;
    }
  }
  return {};
}

size_t BodyChain::kept() const {
  size_t n = 0;
  for (const ResponseFilter* f : filters_) n += f->kept();
  return n;
}

bool BodyChain::full() const {
  for (const ResponseFilter* f : filters_)
    if (f->bound() > 0 && f->kept() >= f->bound()) return true;
  return false;
}

}  // namespace sekisho::server
