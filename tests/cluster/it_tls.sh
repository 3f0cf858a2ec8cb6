#!/usr/bin/env bash
# it_tls.sh BIN_DIR PROBE — the cluster's links refuse outsiders: on a
# 3-node cluster with mutual TLS (what local-cluster.sh sets up), linkprobe
# plays a process that is not the cluster's: plaintext, a certificate of
# another CA, no certificate, or the wrong node's name get no answer at
# all (refused in the handshake, before any frame is read); the events port
# gives them nothing; a certificate of the cluster CA with a forged
# identity and no token is refused by the node (UNAUTHORIZED). A plaintext
# config on non-loopback addresses, or one without its TLS files, does not
# start.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_tls.sh BIN_DIR PROBE}" && pwd)
PROBE_BIN=${2:?usage: it_tls.sh BIN_DIR PROBE}
# probe …: the link prober, with a deadline of its own over its --timeout
# (a TLS handshake that stalls must not hold the test).
probe() { timeout 15 "$PROBE_BIN" "$@"; [ $? = 124 ] && echo "probe: no answer within 15 s"; return 0; }
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
CERTS=$root/deploy/cluster-certs.sh
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}
unset HERALD_CLUSTER_PLAINTEXT

dir=$(mktemp -d /tmp/herald-tls-XXXXXX)
fails=0
cleanup() {
  [ -n "${traffic:-}" ] && kill "$traffic" 2>/dev/null
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT
expect() { # expect WHAT WANT OUTPUT
  if [ "$3" = "$2" ]; then ok "$1: $3"; else bad "$1: wanted '$2', got '$3'"; fi
}

timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
grep -q '(mutual TLS)' "$dir/node1.log" && ok "the nodes' links use mutual TLS" \
  || bad "node 1 does not say it uses mutual TLS"
base=$(sed -n 's/^cluster.members = 1=127.0.0.1:\([0-9]*\),.*/\1/p' "$dir/node1.conf")
req=tcp://127.0.0.1:$((base + 1)) pub=tcp://127.0.0.1:$((base + 2))
ca=$dir/tls/ca.pem gwcert=$dir/tls/gateway-1.pem
bash "$CERTS" init "$dir/evil" >/dev/null && bash "$CERTS" issue "$dir/evil" gateway-1 >/dev/null

# Traffic, so the events port has something to give.
set -a; . "$dir/cluster.env"; set +a
"$BIN_DIR/herald" --as alice conv create --kind group --members alice,bob --id tls-c >/dev/null
( for i in $(seq 1 1200); do "$BIN_DIR/herald" --as alice send tls-c "m$i" >/dev/null 2>&1; sleep 0.05; done ) &
traffic=$!

expect "plaintext request" "no reply" "$(probe req "$req" --timeout 1500)"
expect "another CA's certificate" "no reply" \
  "$(probe req "$req" --ca "$ca" --cert "$dir/evil/gateway-1.pem" --peer node-1 --timeout 1500)"
expect "no client certificate" "no reply" "$(probe req "$req" --ca "$ca" --peer node-1 --timeout 1500)"
expect "the wrong node's name" "no reply" \
  "$(probe req "$req" --ca "$ca" --cert "$gwcert" --peer node-2 --timeout 1500)"
# Up to three tries: "no reply" is not an acceptance, and one probe in a
# loaded full run once got no reply at all within 3 s (not reproduced alone).
for try in 1 2 3; do
  out=$(probe req "$req" --ca "$ca" --cert "$gwcert" --peer node-1 --tenant demo --user alice --timeout 3000)
  [ "$out" = "no reply" ] || break
done
[ "$try" = 1 ] || echo "# the forged-identity probe took $try tries"
expect "a cluster certificate, a forged identity, no token" "status UNAUTHORIZED" "$out"
expect "plaintext subscriber" "no reply" "$(probe sub "$pub" --timeout 1500)"
expect "subscriber with another CA's certificate" "no reply" \
  "$(probe sub "$pub" --ca "$ca" --cert "$dir/evil/gateway-1.pem" --peer node-1 --timeout 1500)"
# Events come from the leaders of the groups that get traffic: ask each
# node, up to three rounds (a probe's TLS connection has once not come up
# within its 4 s in a full ASan run, while the traffic went on).
out=
for round in 1 2 3; do
  for n in 1 2 3; do
    nb=$(sed -n "s/^cluster.members = .*$n=127.0.0.1:\([0-9]*\).*/\1/p" "$dir/node1.conf")
    out=$(probe sub "tcp://127.0.0.1:$((nb + 2))" --ca "$ca" --cert "$gwcert" --peer "node-$n" --timeout 4000)
    case $out in received*) break 2 ;; esac
  done
done
[ "$round" = 1 ] || echo "# the events probe needed round $round"
case $out in received*) ok "a cluster certificate gets the events ($out)" ;;
  *) bad "a cluster certificate got no events: $out" ;; esac
grep -q '"node.auth"' "$dir"/node1.log && ok "node 1 logged the refused request" \
  || bad "no node.auth line in node 1's log"

# Configurations that must not start.
sed -e 's/^cluster.members = .*/cluster.members = 1=10.9.9.1:7410,2=10.9.9.2:7410,3=10.9.9.3:7410/' \
  -e '/^cluster.tls_/d' "$dir/node1.conf" >"$dir/bad1.conf"
echo "cluster.plaintext = true" >>"$dir/bad1.conf"
err=$(timeout 10 "$BIN_DIR/heraldd" node --config "$dir/bad1.conf" 2>&1); rc=$?
[ $rc != 0 ] && echo "$err" | grep -q "only for loopback clusters" && ok "plaintext on non-loopback addresses refused: $(echo "$err" | tail -1)" \
  || bad "plaintext on non-loopback addresses: exit $rc: $err"
sed -e '/^cluster.tls_/d' "$dir/node1.conf" >"$dir/bad2.conf"
err=$(timeout 10 "$BIN_DIR/heraldd" node --config "$dir/bad2.conf" 2>&1); rc=$?
[ $rc != 0 ] && echo "$err" | grep -q "cluster.tls_ca: required" && ok "no TLS files and no plaintext: refused" \
  || bad "no TLS files: exit $rc: $err"
sed -e "s|^cluster.tls_cert = .*|cluster.tls_cert = $dir/missing.pem|" "$dir/node1.conf" >"$dir/bad3.conf"
err=$(timeout 10 "$BIN_DIR/heraldd" node --config "$dir/bad3.conf" 2>&1); rc=$?
[ $rc != 0 ] && echo "$err" | grep -q "missing.pem" && ok "a missing certificate file is named" \
  || bad "missing certificate: exit $rc: $err"

# node.http_tls: node 3's /metrics, /healthz and /readyz over HTTPS with its
# cluster certificate (checked with the cluster CA and the name node-3);
# plain HTTP on that port gets nothing. Without a certificate it does not start.
sed -e '/^cluster.tls_/d' "$dir/node3.conf" >"$dir/bad4.conf"
printf 'cluster.plaintext = true\nnode.http_tls = true\n' >>"$dir/bad4.conf"
err=$(timeout 10 "$BIN_DIR/heraldd" node --config "$dir/bad4.conf" 2>&1); rc=$?
[ $rc != 0 ] && echo "$err" | grep -q "node.http_tls: needs the node's certificate" \
  && ok "node.http_tls without a certificate: refused" || bad "node.http_tls, plaintext: exit $rc: $err"
echo "node.http_tls = true" >>"$dir/node3.conf"
timeout 60 bash "$LC" restart 3 --data "$dir" >/dev/null 2>&1 || bad "node 3 did not restart with node.http_tls"
hp=$(sed -n 's/^node.http_listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$dir/node3.conf")
grep -q "^HERALD_HTTP_NODE3=https://127.0.0.1:$hp$" "$dir/cluster.env" && ok "cluster.env: node 3's URL is https://" \
  || bad "cluster.env: $(grep NODE3 "$dir/cluster.env")"
https_ok() { curl -sf --max-time 5 --cacert "$ca" --resolve "node-3:$hp:127.0.0.1" "https://node-3:$hp/healthz" >/dev/null; }
for _ in $(seq 100); do https_ok && break; sleep 0.2; done
m=$(curl -sf --max-time 5 --cacert "$ca" --resolve "node-3:$hp:127.0.0.1" "https://node-3:$hp/metrics")
grep -q '^herald_raft_term' <<<"$m" && ok "node 3's /metrics over HTTPS, verified with the cluster CA as node-3" \
  || bad "node 3 HTTPS /metrics: $(head -c 300 <<<"$m")"
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/healthz")
[ "$code" = 000 ] && ok "plain HTTP on node 3's HTTPS port: no answer" || bad "plain HTTP got $code"
curl -s --max-time 5 --cacert "$ca" --resolve "node-4:$hp:127.0.0.1" -o /dev/null "https://node-4:$hp/healthz" \
  && bad "a client expecting node-4 accepted node 3's certificate" || ok "the certificate names node-3 only"

# And the cluster still works over TLS.
kill "$traffic" 2>/dev/null; wait "$traffic" 2>/dev/null; traffic=
n=$("$BIN_DIR/herald" --as bob history tls-c --limit 1000 | grep -c '"text":"m')
[ "$n" -gt 0 ] && ok "messages went through the TLS links ($n stored)" || bad "nothing stored"
exit $((fails > 0))
