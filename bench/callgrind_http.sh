#!/bin/bash
# Instructions per plain-HTTP keep-alive request (1 KiB GETs), repeatable where timings are not:
# run once with N=200 and once with N=2200 and divide the difference in totals by 2000.
#   bench/callgrind_http.sh BIN N   (needs valgrind and a release build's test_origin)
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$1; N=$2; D=$(mktemp -d)
"$(cd "$(dirname "$0")/.." && pwd)"/build/release/tests/integration/test_origin --port-file $D/oport >/dev/null 2>&1 & OP=$!
for i in $(seq 50); do [ -s $D/oport ] && break; sleep 0.1; done
OPORT=$(cat $D/oport); PORT=$((20000 + RANDOM % 20000))
cat > $D/s.yaml <<Y
listen: ["127.0.0.1:$PORT"]
workers: 1
allow_clients: ["127.0.0.0/8"]
http_ports: ["1025-65535"]
ca: {cert: $D/ca.crt, key: $D/ca.key}
log: {access: ""}
Y
cd $D; valgrind --tool=callgrind --callgrind-out-file=$D/cg.out $BIN --config $D/s.yaml >$D/p.log 2>&1 & VP=$!
for i in $(seq 300); do curl -s -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.2; done
python3 "$HERE"/cg_client.py $PORT $OPORT $N
kill -TERM $VP; wait $VP || true; kill $OP
grep -E "^summary|^totals" $D/cg.out | head -1
