#!/usr/bin/env bash
# Installs the build dependencies, builds the release preset and runs the proxy in the
# foreground, in the current directory. Arguments go to `sekisho` unchanged:
#   scripts/run.sh                         # ./sekisho.yaml, or safe built-in defaults on 127.0.0.1:3128
#   scripts/run.sh --config my.yaml
#   scripts/run.sh check-config my.yaml
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

"$root/scripts/install-deps.sh" --build
"$root/scripts/build.sh" release --target sekisho

# No cd: the proxy looks for sekisho.yaml (and relative paths) where the user started it.
exec "$root/build/release/proxy/sekisho" "$@"
