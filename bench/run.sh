#!/usr/bin/env bash
# By-hand benchmark: Sekisho against the shared harness (../shared/bench) and anchors measured in
# the same run. Not part of the test suite; results go to bench/results/<date>/ (not committed)
# and the numbers worth keeping into docs/PERFORMANCE.md.
#
#   bench/run.sh [-r REPS] [ADAPTER...]      default: -r 3 direct squid ats sekisho
#   BENCH_SCENARIOS=S1,S2,S3,S4,S5,S6a,S6b,S7 (default: all)   which scenarios (the harness's ids)
#
# The proxy runs pinned to CPU 0 with one worker, the origin and load generator on CPU 1 (the
# harness does the pinning). Sekisho intercepts with the bench CA and verifies the bench origin
# against its root (the shared adapter's config). bench/reputation_overhead.sh measures the
# reputation check itself (S1 with and without a 1,000,000-entry list, same run).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
harness=${SEKISHO_BENCH_HARNESS:-$root/../shared/bench}
[ -x "$harness/run-matrix" ] || { echo "bench: no harness at $harness (set SEKISHO_BENCH_HARNESS)" >&2; exit 2; }

reps=3
while getopts "r:" o; do
  case $o in r) reps=$OPTARG ;; *) echo "usage: $0 [-r REPS] [ADAPTER...]" >&2; exit 2 ;; esac
done
shift $((OPTIND - 1))
adapters=("$@")
[ ${#adapters[@]} -gt 0 ] || adapters=(direct squid ats sekisho)

"$root/scripts/install-deps.sh" --build
need=(nginx-light curl python3 util-linux gcc make libssl-dev)
for a in "${adapters[@]}"; do
  case $a in
    squid) need+=(squid-openssl) ;;
    ats) need+=(trafficserver) ;;
    mitmproxy) need+=(mitmproxy) ;;
    tinyproxy) need+=(tinyproxy) ;;
    e2guardian) need+=(e2guardian) ;;
  esac
done
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  # Debian starts some of these as services on install; the harness runs its own copies.
  for s in squid trafficserver tinyproxy e2guardian nginx; do systemctl stop "$s" 2>/dev/null || service "$s" stop 2>/dev/null || true; done
fi

"$root/scripts/build.sh" release --target sekisho
export SEKISHO_BIN="$root/build/release/proxy/sekisho"
export SEKISHO_CAPS="${SEKISHO_CAPS:-http mitm tunnel}"
export BENCH_SCENARIOS="${BENCH_SCENARIOS:-S1,S2,S3,S4,S5,S6a,S6b,S7}"
out="$root/bench/results/$(date -u +%Y-%m-%dT%H%M)"
mkdir -p "$out"
"$harness/run-matrix" -r "$reps" -o "$out" "${adapters[@]}"
echo "bench: summary in $out/summary.md"
