#include "reputation/public_suffix.h"

#include <libpsl.h>

namespace sekisho::reputation {

namespace {
// Loaded once; libpsl contexts are read-only after load and safe to share between threads.
const psl_ctx_t* context() noexcept {
  static const psl_ctx_t* ctx = [] {
    const psl_ctx_t* c = psl_latest(nullptr);  // the distribution's data file if newer than builtin
    return c ? c : psl_builtin();
  }();
  return ctx;
}
}  // namespace

bool isPublicSuffix(const std::string& host) noexcept {
  const psl_ctx_t* ctx = context();
  if (!ctx) return false;
  return psl_is_public_suffix2(ctx, host.c_str(), PSL_TYPE_ANY) != 0;
}

size_t registrableOffset(const std::string& host) noexcept {
  const psl_ctx_t* ctx = context();
  if (!ctx) return std::string::npos;
  const char* r = psl_registrable_domain(ctx, host.c_str());
  if (!r) return std::string::npos;
  return size_t(r - host.c_str());
}

}  // namespace sekisho::reputation
