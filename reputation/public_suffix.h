// The public suffix list (libpsl with the Debian publicsuffix data): where parent-domain matching
// stops, so a rule can never cover a whole registry ("co.jp").
#pragma once
#include <string>

namespace sekisho::reputation {

// `host` is a normalised name. True for "jp", "co.jp", "github.io"; false for "example.co.jp".
bool isPublicSuffix(const std::string& host) noexcept;
// The shortest parent of `host` that is not a public suffix ("example.co.jp" for
// "a.b.example.co.jp"); empty when `host` is itself a suffix or has no registrable part.
// The result points into `host`'s buffer as an offset; returns std::string::npos if none.
size_t registrableOffset(const std::string& host) noexcept;

}  // namespace sekisho::reputation
