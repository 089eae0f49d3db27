// libFuzzer target for what Sekisho reads back from Redis: rule values ("1\tcategory\tscore\t...")
// and hash field names ("source@generation"). Checks, beyond "no crash": a value that decodes
// encodes back to a value that decodes to the same rule (so nothing read from Redis is
// reinterpreted), scores stay 0-100, categories stay valid, and a parsed field name prints back
// as one that parses to the same source and generation.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reputation/redis_schema.h"
#include "reputation/verdict.h"

using namespace sekisho::reputation;
using namespace sekisho::reputation::redis;

#define CHECK(cond)                \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view v(reinterpret_cast<const char*>(data), size);
  Match m;
  if (decodeEntry(v, m)) {
    CHECK(m.score >= 0 && m.score <= 100);
    CHECK(validCategory(m.category));
    Match again;
    CHECK(decodeEntry(encodeEntry(m.category, m.score, m.action, m.added, m.expires, m.reference), again));
    CHECK(again.category == m.category && again.score == m.score && again.action == m.action);
    CHECK(again.added == m.added && again.expires == m.expires && again.reference == m.reference);
  }
  std::string source;
  uint64_t gen = 0;
  if (parseFieldName(v, source, gen)) {
    std::string again;
    uint64_t gen2 = 0;
    CHECK(parseFieldName(fieldName(source, gen), again, gen2) && again == source && gen2 == gen && gen != 0);
  }
  return 0;
}
