#!/bin/bash
# Instructions per intercepted keep-alive request (1 KiB GETs inside one bumped CONNECT), the
# TLS twin of callgrind_http.sh: run with N=200 and N=2200 and divide the difference by 2000.
#   bench/callgrind_https.sh BIN N   (needs valgrind, openssl and a release build's test_origin)
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(readlink -f "$1"); N=$2; D=$(mktemp -d)
# A throw-away PKI: a root and a leaf for 127.0.0.1 that the origin presents.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=cg-root \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout $D/root.key -out $D/root.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout $D/leaf.key -out $D/leaf.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > $D/ext
openssl x509 -req -in $D/leaf.csr -CA $D/root.crt -CAkey $D/root.key -CAcreateserial -days 2 \
  -extfile $D/ext -out $D/leaf.crt 2>/dev/null
"$HERE"/../build/release/tests/integration/test_origin --port-file $D/oport --tls-cert $D/leaf.crt --tls-key $D/leaf.key >/dev/null 2>&1 & OP=$!
for i in $(seq 50); do [ -s $D/oport ] && break; sleep 0.1; done
OPORT=$(cat $D/oport); PORT=$((20000 + RANDOM % 20000))
cat > $D/s.yaml <<Y
listen: ["127.0.0.1:$PORT"]
workers: 1
allow_clients: ["127.0.0.0/8"]
connect_ports: ["1025-65535"]
ca: {cert: $D/ca.crt, key: $D/ca.key}
tls: {upstream_ca_file: $D/root.crt}
log: {access: ""}
Y
cd $D; valgrind --tool=callgrind --callgrind-out-file=$D/cg.out $BIN --config $D/s.yaml >$D/p.log 2>&1 & VP=$!
for i in $(seq 300); do curl -s -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.2; done
python3 "$HERE"/cg_client.py $PORT $OPORT $N $D/ca.crt
kill -TERM $VP; wait $VP || true; kill $OP
grep -E "^summary|^totals" $D/cg.out | head -1
