#!/usr/bin/env bash
# it_ws.sh HERALDD HERALD — WebSocket on `heraldd dev` (gateway.ws_listen)
# from real clients (python3-websockets, tests/integration/ws_check.py): the
# handshake, HELLO/WELCOME, SEND with its DELIVER to another WebSocket client
# and to a TCP client and back, a fragmented message, text refused (1003),
# over the frame cap refused at the header (1009), bad token (4003), no
# HELLO in time, bad Origin 403, wrong path 404, bad handshakes 400 / 426 /
# 431, ping answered; then wss:// with a test certificate, the listener off,
# the request rate (RATE_LIMITED) and idle timeout (1001, WebSocket pings
# count as traffic), the connection cap shared with TCP (503) and a bad
# Origin list. Every wait
# is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
CERTS=$root/deploy/cluster-certs.sh
. "$(dirname "$0")/lib.sh"
it_init ws

# Debian's python3 has python3-websockets and python3-msgpack (deploy/deps.sh).
PY=
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import websockets, msgpack' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "FAIL - python3 with websockets and msgpack is needed (deploy/deps.sh)"; exit 1; }
CHECK="$root/tests/integration/ws_check.py"

printf 'gateway.max_frame = 65536\ngateway.hello_ms = 1500\ngateway.ws_origins = https://app.example, http://localhost:8080\n' >"$dir/h.conf"
start
[ -n "${HERALD_WS:-}" ] && ok "dev.env names HERALD_WS=$HERALD_WS" || bad "no HERALD_WS in dev.env"
conv=$("$HERALD" --as alice conv create --kind group --members alice,bob | field id)
[ -n "$conv" ] && ok "conversation created" || bad "no conversation"
timeout 120 "$PY" "$CHECK" plain "$HERALD_WS" "$HERALD" "$conv" || fails=$((fails + 1))
"$HERALD" --as alice ping >/dev/null 2>&1 && ok "the TCP port still answers" || bad "TCP port down"
stop || bad "heraldd did not exit 0"

# wss:// with gateway.tls_cert: the WebSocket listener speaks TLS too.
bash "$CERTS" init "$dir/ca" >/dev/null && bash "$CERTS" server "$dir/ca" localhost >/dev/null
printf 'gateway.tls_cert = %s\n' "$dir/ca/localhost.pem" >"$dir/h.conf"
start
case "$HERALD_WS" in wss://*) ok "with tls_cert dev.env says $HERALD_WS" ;; *) bad "not wss: $HERALD_WS" ;; esac
wsport=${HERALD_WS##*:}; wsport=${wsport%%/*}
gwport=${HERALD_GATEWAY##*:}
export HERALD_GATEWAY=tls://localhost:$gwport HERALD_CA=$dir/ca/ca.pem
conv=$("$HERALD" --as alice conv create --kind group --members alice,bob | field id)
timeout 60 "$PY" "$CHECK" tls "wss://localhost:$wsport/ws" "$HERALD" "$conv" "$dir/ca/ca.pem" ||
  fails=$((fails + 1))
stop || bad "heraldd did not exit 0"

# gateway.ws_listen empty: no WebSocket listener, no HERALD_WS.
printf 'gateway.ws_listen =\n' >"$dir/h.conf"
unset HERALD_WS
start
[ -z "${HERALD_WS:-}" ] && ok "gateway.ws_listen empty: no WebSocket" || bad "WebSocket on: $HERALD_WS"
stop || bad "heraldd did not exit 0"

# The request rate and the idle timeout, from the common path.
printf 'gateway.rate = 5\ngateway.idle_ms = 1000\n' >"$dir/h.conf"
unset HERALD_WS
start
conv=$("$HERALD" --as alice conv create --kind group --members alice,bob | field id)
timeout 60 "$PY" "$CHECK" limits "$HERALD_WS" "$HERALD" "$conv" || fails=$((fails + 1))
stop || bad "heraldd did not exit 0"

# The connection cap counts both listeners: with one TCP connection open
# and gateway.max_conns 1, a WebSocket handshake gets 503.
printf 'gateway.max_conns = 1\n' >"$dir/h.conf"
unset HERALD_WS
start
got=$("$PY" - "${HERALD_GATEWAY##*:}" "$HERALD_WS" <<'PY'
import socket, sys, time
port = int(sys.argv[1]); ws = sys.argv[2].split("//")[1].split("/")[0]
host, wport = ws.rsplit(":", 1)
held = socket.create_connection(("127.0.0.1", port), timeout=5)
time.sleep(0.3)
s = socket.create_connection((host, int(wport)), timeout=5)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
data = b""
try:
    while True:
        c = s.recv(4096)
        if not c:
            break
        data += c
except OSError:
    pass
print(data.split(b"\r\n", 1)[0].decode(errors="replace"))
PY
)
case "$got" in "HTTP/1.1 503 "*) ok "over the connection cap a handshake gets: $got" ;;
  *) bad "over the cap: '$got'" ;; esac
stop || bad "heraldd did not exit 0"

# A bad Origin list stops heraldd from starting, with the reason.
printf 'gateway.ws_origins = app.example\n' >"$dir/h.conf"
expect "a bad gateway.ws_origins entry is refused at start" 1 "is not an origin" \
  -- "$HERALDD" dev --data "$dir" --config "$dir/h.conf" --listen 127.0.0.1:0

[ "$fails" = 0 ] && echo "all ok" || { echo "$fails failed"; exit 1; }
