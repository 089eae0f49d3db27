#!/usr/bin/env bash
# Configures and builds one CMake preset (see CMakePresets.json): release (default), dev, fuzz.
#   scripts/build.sh [preset] [extra `cmake --build` arguments, e.g. --target sekisho]
# The build lands in build/<preset>/; the proxy binary is build/<preset>/proxy/sekisho.
# JOBS overrides the parallelism (default: every core).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

preset=${1:-release}
[ $# -eq 0 ] || shift
if [ "$preset" = -h ] || [ "$preset" = --help ]; then
  echo "usage: $0 [preset] [cmake --build args...]   (presets: cmake --list-presets)"
  exit 0
fi

jobs=${JOBS:-$(nproc)}
cmake --preset "$preset"
cmake --build --preset "$preset" --parallel "$jobs" "$@"
