#!/usr/bin/env bash
# By-hand benchmark: what the reputation check costs on the request path. Two Sekisho processes
# in the same run, both one worker pinned to CPU 0, alternating repetitions of the shared
# harness's S1 (1 KiB keep-alive GETs): one with no list, one with a 1,000,000-domain list in the
# embedded store (none of the bench hosts listed, so every request is a full miss: URL, host,
# parents, address). Prints both and the ratio; numbers go to docs/PERFORMANCE.md.
#
#   bench/reputation_overhead.sh [-r REPS] [-n ENTRIES]     defaults: 3 reps, 1000000 entries
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
harness=${SEKISHO_BENCH_HARNESS:-$root/../shared/bench}
reps=3
n=1000000
while getopts "r:n:" o; do
  case $o in r) reps=$OPTARG ;; n) n=$OPTARG ;; *) echo "usage: $0 [-r REPS] [-n ENTRIES]" >&2; exit 2 ;; esac
done
bin=${SEKISHO_BIN:-$root/build/release/proxy/sekisho}
[ -x "$bin" ] || "$root/scripts/build.sh" release --target sekisho
work=$(mktemp -d /tmp/sekisho-repbench.XXXXXX)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
echo "bench: generating $n domains"
python3 -c "
import random
r = random.Random(7)
with open('$work/big.txt', 'w') as f:
    for i in range($n):
        f.write('h%d-%08x.example-%d.com\n' % (i, r.getrandbits(32), i % 997))
"
( cd "$harness" && taskset -c 1 origin/origin.sh start >/dev/null && lib/hosts.sh add >/dev/null )
start() {  # name port extra-yaml
  mkdir -p "$work/$1"
  cat > "$work/$1/sekisho.yaml" <<CONF
listen: ["127.0.0.1:$2"]
workers: 1
allow_clients: ["127.0.0.0/8"]
admin: {listen: ""}
log: {access: ""}
tls: {intercept: false}
$3
CONF
  taskset -c 0 "$bin" --config "$work/$1/sekisho.yaml" >"$work/$1/stderr" 2>&1 &
  echo $! > "$work/$1.pid"
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$2/healthz" && return 0
    sleep 0.1
  done
  echo "bench: $1 did not start" >&2; cat "$work/$1/stderr" >&2; exit 1
}
start plain 18161 ""
start list 18162 "reputation: {lists: [{file: $work/big.txt, format: domains, category: malware}]}"
echo "bench: RSS plain $(awk '/VmRSS/{print $2}' /proc/$(cat "$work/plain.pid")/status) KiB, with $n entries $(awk '/VmRSS/{print $2}' /proc/$(cat "$work/list.pid")/status) KiB"
out="$work/results.jsonl"
for r in $(seq 1 "$reps"); do
  for name in plain list; do
    port=$([ $name = plain ] && echo 18161 || echo 18162)
    (cd "$harness" && ./run-scenarios --proxy "127.0.0.1:$port" --pid "$(cat "$work/$name.pid")" --caps http \
       --name "$name" --rep "$r" --scenarios S1 --out "$out" >/dev/null 2>&1)
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for d in rows:
    by.setdefault(d["name"], []).append((d["result"]["rps"], d.get("proxy_cpu_us_per_req")))
for k, v in by.items():
    print("%-6s rps %s  cpu us/req %s" % (k, [round(x[0]) for x in v], [x[1] for x in v]))
p = statistics.median(x[0] for x in by["plain"]); l = statistics.median(x[0] for x in by["list"])
pc = statistics.median(x[1] for x in by["plain"]); lc = statistics.median(x[1] for x in by["list"])
print("median rps: plain %.0f, with list %.0f -> %.1f %% of plain; CPU per request %.1f vs %.1f us" % (p, l, 100 * l / p, pc, lc))
PY
