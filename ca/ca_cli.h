// `sekisho ca init` and `sekisho ca export`: main.cc parses the subcommand and --config, then
// calls these. Exit codes: 0 ok, 1 failure with a one-line error on `err`.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

namespace sekisho::ca {

// args: the words after "ca init": --rsa 3072|4096, --name CN, --org O, --permit-dns DOMAIN
// (repeatable). Prints the files written, the SHA-256 fingerprint and the next step.
int caInitCommand(const std::string& certPath, const std::string& keyPath, const std::vector<std::string>& args,
                  FILE* out = stdout, FILE* err = stderr);

// Writes the CA certificate (never the key) as PEM, or DER when `der`, to `out`.
int caExportCommand(const std::string& certPath, bool der, FILE* out = stdout, FILE* err = stderr);

}  // namespace sekisho::ca
