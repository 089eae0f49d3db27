// libFuzzer target for the configuration loader: arbitrary bytes must give a Config or one
// error line, never a crash, a hang or an uncaught exception (yaml-cpp throws; load.cc must
// turn every throw into a Result).
#include <cstddef>
#include <cstdint>
#include <string>

#include "proxy/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = sekisho::config::loadString(text, "fuzz.yaml");
  if (!r) {
    // Errors are one line and always name the file.
    const std::string& d = r.error().detail;
    if (d.rfind("fuzz.yaml", 0) != 0 || d.find('\n') != std::string::npos) __builtin_trap();
  } else if ((*r)->listen.empty() || (*r)->allowClients.entries.empty() || (*r)->workers == 0) {
    __builtin_trap();  // a loaded Config always has a listener, clients and workers
  }
  return 0;
}
