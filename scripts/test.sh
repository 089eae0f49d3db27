#!/usr/bin/env bash
# Runs every test: installs the test dependencies, then builds and runs CTest for
#   release  RelWithDebInfo, warnings as errors
#   dev      Debug with ASan + UBSan
#   fuzz     clang + libFuzzer (replays the fuzz corpora), when clang++ is present
# Each preset is built and tested even if an earlier one failed; the summary at the end lists
# every preset with its CTest result line, and the exit status is non-zero on any failure.
# Tests start their own redis-server, origins and PKI; nothing here starts services.
# JOBS overrides the parallelism (default: every core); CTEST_TIMEOUT the per-test default (s).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

scripts/install-deps.sh --test

jobs=${JOBS:-$(nproc)}
test_timeout=${CTEST_TIMEOUT:-300}

presets=(release dev)
declare -A outcome=() ctest_line=() took=()
if command -v clang++ >/dev/null 2>&1; then
  presets+=(fuzz)
else
  outcome[fuzz]="skipped (clang++ not found)"
fi

failed=0
for preset in "${presets[@]}"; do
  printf '\n==== %s: build ====\n' "$preset"
  start=$SECONDS
  if ! scripts/build.sh "$preset"; then
    outcome[$preset]="FAILED (build)"
    took[$preset]=$((SECONDS - start))
    failed=1
    continue
  fi

  printf '\n==== %s: ctest ====\n' "$preset"
  log="build/$preset/ctest.log"
  if ctest --preset "$preset" --parallel "$jobs" --timeout "$test_timeout" --output-on-failure 2>&1 |
    tee "$log"; then
    outcome[$preset]="passed"
  else
    outcome[$preset]="FAILED (tests)"
    failed=1
  fi
  took[$preset]=$((SECONDS - start))
  ctest_line[$preset]=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
done

printf '\n==== summary ====\n'
for preset in release dev fuzz; do
  [ -n "${outcome[$preset]:-}" ] || continue
  detail=${ctest_line[$preset]:-}
  [ -z "${took[$preset]:-}" ] || detail="$detail (${took[$preset]}s)"
  printf '%-8s %-16s %s\n' "$preset" "${outcome[$preset]}" "$detail"
done
if [ "$failed" -ne 0 ]; then
  echo "test.sh: FAILED (output of failing tests is above; CTest logs in build/<preset>/Testing/)"
  exit 1
fi
echo "test.sh: all presets passed"
