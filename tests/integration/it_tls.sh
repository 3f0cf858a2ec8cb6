#!/usr/bin/env bash
# it_tls.sh HERALDD HERALD — TLS on the client port: with gateway.tls_cert
# the port speaks TLS only; the CLI (libherald) connects to tls://HOST:PORT
# and checks the certificate against HERALD_CA: messages and pushes flow;
# another CA, the wrong host name or a plain client are refused with a clear
# error; a client that starts no handshake is closed at the HELLO deadline;
# a bad certificate file stops heraldd from starting. Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
CERTS=$root/deploy/cluster-certs.sh
. "$(dirname "$0")/lib.sh"
it_init tls
bash "$CERTS" init "$dir/ca" >/dev/null && bash "$CERTS" server "$dir/ca" localhost >/dev/null
bash "$CERTS" init "$dir/other" >/dev/null && bash "$CERTS" server "$dir/other" localhost >/dev/null
printf 'gateway.tls_cert = %s\ngateway.hello_ms = 1500\ngateway.http_tls = true\n' \
  "$dir/ca/localhost.pem" >"$dir/h.conf"
start
port=${HERALD_GATEWAY##*:}
hport=${HERALD_HTTP##*:}
case $HERALD_HTTP in https://*) ok "dev.env names the HTTPS port ($HERALD_HTTP)" ;;
  *) bad "HERALD_HTTP is $HERALD_HTTP" ;; esac

export HERALD_GATEWAY=tls://localhost:$port HERALD_CA=$dir/ca/ca.pem
expect "ping over TLS" 0 '"rtt_us"' -- "$HERALD" --as alice ping
conv=$("$HERALD" --as alice conv create --kind group --members alice,bob | field id)
[ -n "$conv" ] && ok "conversation created over TLS" || bad "no conversation"
timeout 20 "$HERALD" --as bob sub --count 1 --timeout 10 >"$dir/sub.out" 2>&1 &
subp=$!
sleep 1
expect "send over TLS" 0 '"seq":2' -- "$HERALD" --as alice send "$conv" "secret plans"
wait $subp
grep -q '"text":"secret plans"' "$dir/sub.out" && ok "the push came over TLS" \
  || bad "no push over TLS: $(cat "$dir/sub.out")"
expect "history over TLS" 0 '"text":"secret plans"' -- "$HERALD" --as bob history "$conv"

# The HTTP port with gateway.http_tls: HTTPS with the same certificate.
H="https://localhost:$hport"
expect "HTTPS: /healthz" 0 '^ok' -- curl -sS --cacert "$dir/ca/ca.pem" "$H/healthz"
admin=$(HERALD_GATEWAY= "$HERALD" --admin token --user ops)
expect "HTTPS: an open API call" 0 '"errcode":0,"errmsg":"ok","token"' -- curl -sS \
  --cacert "$dir/ca/ca.pem" -H "Authorization: Bearer $admin" -d '{"userid":"alice"}' \
  "$H/api/v1/user/token"
expect "HTTPS: keep-alive, two calls on one connection" 0 '"openapi":"3.0.3".*"openapi":"3.0.3"' \
  -- curl -sS --cacert "$dir/ca/ca.pem" "$H/api/v1/openapi.json" "$H/api/v1/openapi.json"
expect "HTTPS: another CA is refused" 60 'certificate' -- curl -sS --cacert "$dir/other/ca.pem" \
  "$H/healthz"
out=$(timeout 20 curl -sS "http://localhost:$hport/healthz" 2>&1); rc=$?
{ [ $rc = 52 ] || [ $rc = 56 ]; } && ok "HTTPS: plain HTTP on it gets no answer (curl $rc)" \
  || bad "plain HTTP on the HTTPS port: rc $rc: $out"

expect "another CA: refused, the certificate named" 3 "UNAUTHORIZED: the server's certificate does not verify" \
  -- env HERALD_CA="$dir/other/ca.pem" "$HERALD" --as alice ping
expect "the wrong host name: refused" 3 "UNAUTHORIZED: the server's certificate does not verify" \
  -- env HERALD_GATEWAY="tls://127.0.0.1:$port" "$HERALD" --as alice ping
expect "a missing CA file: named" 2 "cannot read the CA file $dir/nope.pem" \
  -- env HERALD_CA="$dir/nope.pem" "$HERALD" --as alice ping
expect "a plain client on the TLS port: refused" 3 "CLOSED" \
  -- env HERALD_GATEWAY="127.0.0.1:$port" "$HERALD" --as alice ping

# A client that connects and never starts the handshake is closed at the
# HELLO deadline (1.5 s here), like a silent plain client.
start_s=$(date +%s%N)
python3 - "$port" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
try:
    data = s.recv(1)
    print("closed" if data == b"" else "data")
except Exception as e:
    print("error", e)
PY
ms=$(( ($(date +%s%N) - start_s) / 1000000 ))
[ $ms -lt 6000 ] && ok "a silent client was closed after ${ms} ms" || bad "a silent client held on for ${ms} ms"
stop || bad "heraldd did not exit 0"

printf 'gateway.http_tls = true\n' >"$dir/h.conf"
out=$(timeout 20 "$HERALDD" dev --data "$dir/d3" --config "$dir/h.conf" --listen 127.0.0.1:0 2>&1)
rc=$?
[ $rc != 0 ] && grep -q "gateway.http_tls needs gateway.tls_cert" <<<"$out" \
  && ok "gateway.http_tls without a certificate does not start" || bad "http_tls alone: $rc $out"
printf 'gateway.tls_cert = %s\n' "$dir/ca/ca.key" >"$dir/h.conf"
out=$(timeout 10 "$HERALDD" dev --data "$dir" --config "$dir/h.conf" --listen 127.0.0.1:0 2>&1); rc=$?
[ $rc != 0 ] && grep -q "gateway.tls_cert" <<<"$out" && ok "a key without a certificate does not start" \
  || bad "bad tls_cert: exit $rc: $out"
exit $((fails > 0))
