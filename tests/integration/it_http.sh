#!/usr/bin/env bash
# it_http.sh HERALDD HERALD — the operators' HTTP endpoints of `heraldd dev`
# (gateway.http_listen, a free port beside the client port's): /healthz and
# /readyz 200, /metrics valid for `promtool check metrics` and for the strict
# parser of tests/integration/http_check.py, counters that move after CLI
# traffic (frames by type, connections by transport, errors by code,
# deliveries and their latency histogram, store map use), 404 / 405 with a
# JSON body, and the bad-request drill (oversized head 431, bad method 405,
# HTTP/2.0 505, garbage 400, chunked 501, body over the cap 413, no Host 400,
# pipelining answered in order, keep-alive, HTTP/1.0 closed, slowloris 408
# within the request timeout, the connection cap 503). Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
CHECK=$root/tests/integration/http_check.py
. "$(dirname "$0")/lib.sh"
it_init http
command -v promtool >/dev/null || { echo "FAIL - promtool is needed (Debian prometheus, deploy/deps.sh)"; exit 1; }

start
[ -n "${HERALD_HTTP:-}" ] && ok "dev.env has HERALD_HTTP=$HERALD_HTTP" || bad "no HERALD_HTTP in dev.env"
expect "healthz 200 ok" 0 '^200 ok$' -- python3 "$CHECK" get "$HERALD_HTTP" /healthz
expect "readyz 200 ok" 0 '^200 ok$' -- python3 "$CHECK" get "$HERALD_HTTP" /readyz
expect "other path: 404 JSON" 0 '^404 \{"errcode":6,"errmsg":"no such path"\}$' -- \
  python3 "$CHECK" get "$HERALD_HTTP" /nothing
expect "an API path that is none: 404 JSON" 0 '^404 \{"errcode":6,"errmsg":"no such API path"\}$' -- \
  python3 "$CHECK" get "$HERALD_HTTP" /api/v1/nothing

# value NAME_AND_LABELS: the sample's value in the last scrape.
value() { grep -F "$1 " "$dir/m.txt" | awk '{print $2}' | head -n 1; }
scrape() {
  python3 "$CHECK" metrics "$HERALD_HTTP" >"$dir/m.txt" || { bad "strict parse: $(cat "$dir/m.txt")"; return; }
  curl -sf "$HERALD_HTTP/metrics" >"$dir/raw.txt" || { bad "curl /metrics"; return; }
  if out=$(promtool check metrics <"$dir/raw.txt" 2>&1); then ok "promtool check metrics ($1)"
  else bad "promtool check metrics ($1): $out"; fi
}
scrape "at start"
before=$(value 'herald_gateway_frames_received_total{type="SEND"}')
[ "$before" = 0.0 ] && ok "no SEND yet" || bad "SEND before traffic: $before"

# A receiver online (so pushes are delivered), then three sends.
"$HERALD" --as alice conv create --kind group --members alice,bob --id m1 >/dev/null || bad "create"
timeout 20 "$HERALD" --as bob sub >"$dir/sub.txt" 2>&1 &
for _ in $(seq 50); do
  scrape_conns=$(curl -sf "$HERALD_HTTP/metrics" | sed -n 's/^herald_gateway_users_online //p')
  [ "${scrape_conns:-0}" -ge 1 ] && break
  sleep 0.1
done
for i in 1 2 3; do "$HERALD" --as alice send m1 "hello $i" >/dev/null || bad "send $i"; done
"$HERALD" --as alice send nosuchconv "x" >/dev/null 2>&1
for _ in $(seq 50); do grep -q 'hello 3' "$dir/sub.txt" && break; sleep 0.1; done
scrape "after traffic"
v=$(value 'herald_gateway_frames_received_total{type="SEND"}')
[ "${v%.*}" -ge 4 ] && ok "SEND frames counted: $v" || bad "SEND frames: $v (want ≥ 4)"
v=$(value 'herald_gateway_frames_received_total{type="HELLO"}')
[ "${v%.*}" -ge 5 ] && ok "HELLO frames counted: $v" || bad "HELLO frames: $v"
v=$(value 'herald_gateway_connections_accepted_total{transport="tcp"}')
[ "${v%.*}" -ge 5 ] && ok "tcp connections counted: $v" || bad "tcp connections: $v"
v=$(value 'herald_gateway_connections{transport="tcp"}')
[ "${v%.*}" -ge 1 ] && ok "the subscriber's connection is open: $v" || bad "open tcp: $v"
grep -q '^herald_gateway_errors_sent_total{code="' "$dir/m.txt" &&
  ok "errors by code: $(grep '^herald_gateway_errors_sent_total' "$dir/m.txt" | tr '\n' ' ')" ||
  bad "no error counted after a send to a missing conversation"
v=$(value 'herald_gateway_deliveries_total{}')
[ "${v%.*}" -ge 3 ] && ok "deliveries counted: $v" || bad "deliveries: $v (want ≥ 3)"
v=$(value 'herald_gateway_delivery_latency_seconds_count{}')
[ "${v%.*}" -ge 3 ] && ok "delivery latency observed: $v" || bad "latency count: $v"
v=$(value 'herald_store_map_used_bytes{group="0"}')
[ "${v%.*}" -gt 0 ] && ok "store map use: $v bytes" || bad "store map use: $v"
v=$(grep '^herald_writer_batches_total{' "$dir/m.txt" | awk '{s += $2} END {print int(s)}')
[ "$v" -gt 0 ] && ok "writer commits, all groups: $v" || bad "writer commits: $v"

port=${HERALD_HTTP##*:}
if out=$(timeout 90 python3 "$CHECK" raw 127.0.0.1 "$port"); then ok "bad-request drill"; else bad "bad-request drill"; fi
echo "$out" | sed 's/^/     /'
expect "still healthy after the drill" 0 '^200 ok$' -- python3 "$CHECK" get "$HERALD_HTTP" /healthz

# Off: an empty gateway.http_listen listens nowhere and writes no HERALD_HTTP.
stop || bad "heraldd did not exit 0 on SIGTERM"
printf 'gateway.http_listen =\n' >"$dir/h.conf"
start
[ -z "${HERALD_HTTP:-}" ] || grep -q HERALD_HTTP "$dir/dev.env" && bad "HERALD_HTTP with the listener off" || ok "gateway.http_listen empty: off"
unset HERALD_HTTP
stop || bad "heraldd did not exit 0 on SIGTERM (listener off)"
# A bad address is refused with the key's name.
printf 'gateway.http_listen = nowhere\n' >"$dir/h.conf"
expect "bad gateway.http_listen refused" 1 'gateway.http_listen' -- \
  "$HERALDD" dev --data "$dir" --config "$dir/h.conf" --listen 127.0.0.1:0

# Draining: SIGTERM with gateway.drain_ms → /readyz 503 "draining" while
# everything still answers, then exit 0.
printf 'gateway.drain_ms = 2000\n' >"$dir/h.conf"
start
expect "readyz before the signal" 0 '^200 ok' -- python3 "$CHECK" get "$HERALD_HTTP" /readyz
t0=$(date +%s%N)
kill -TERM "$pid"
sleep 0.3
expect "readyz while draining: 503" 0 '^503 \{"errcode":24,"errmsg":"draining' -- \
  python3 "$CHECK" get "$HERALD_HTTP" /readyz
expect "still serving while draining" 0 '"rtt_us"' -- "$HERALD" --as alice ping
wait "$pid"; rc=$?; pid=
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 0 ] && [ $ms -ge 1800 ] && [ $ms -lt 8000 ] && ok "stopped after draining (${ms} ms, exit 0)" \
  || bad "drain: exit $rc after ${ms} ms"

[ $fails = 0 ] && echo "it_http: all passed" || echo "it_http: $fails failed"
exit $((fails > 0))
