#!/usr/bin/env bash
# it_ws.sh BIN_DIR — WebSocket through the 3-node cluster's gateway
# (gateway.ws_listen, written by local-cluster.sh): HELLO forwarded to a
# node, pings, SEND and DELIVER between WebSocket and TCP clients both ways,
# a fragmented message, a text message refused (1003) and a bad token
# refused by the node with its ERROR and close 4003 (the gateway forwards
# the node's refusal). Real clients: python3-websockets
# (tests/integration/ws_check.py). Bounded waits; the cluster is always
# brought down.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_ws.sh BIN_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
H=$BIN_DIR/herald
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}

PY=
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import websockets, msgpack' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "FAIL - python3 with websockets and msgpack is needed (deploy/deps.sh)"; exit 1; }

dir=$(mktemp -d /tmp/herald-ws-XXXXXX)
fails=0
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT

timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
set -a; . "$dir/cluster.env"; set +a
[ -n "${HERALD_WS:-}" ] && ok "cluster.env names HERALD_WS=$HERALD_WS" || bad "no HERALD_WS in cluster.env"
grep -q '"gw.listen".*ws framing' "$dir/gateway.log" && ok "the gateway listens for WebSocket" \
  || bad "no WebSocket listener in gateway.log"
conv=""
for _ in $(seq 40); do
  conv=$(timeout 10 "$H" --as alice conv create --kind group --members alice,bob 2>/dev/null |
    sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  [ -n "$conv" ] && break
  sleep 0.5
done
[ -n "$conv" ] && ok "conversation created" || bad "no conversation"
timeout 120 "$PY" "$root/tests/integration/ws_check.py" cluster "$HERALD_WS" "$H" "$conv" ||
  fails=$((fails + 1))
[ "$fails" = 0 ] && echo "all ok" || { echo "$fails failed"; exit 1; }
