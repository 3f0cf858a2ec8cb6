#!/usr/bin/env bash
# it_offline.sh BIN_DIR — message.offline across two gateways: the 3-node
# cluster with its gateway and a second one (gateway.id 2). carol is
# connected to gateway 1, bob to gateway 2, dave to neither: alice's
# message gives one message.offline naming dave only (bob is online on the
# other gateway: the group's leader intersects both gateways' reports).
# Then gateway 2 stops: once the leader no longer counts it live, the next
# message names bob and dave. Every event signed (cb_receiver.py). Prints
# "offline events N". Bounded waits; the cluster is always brought down.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_offline.sh BIN_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
IT=$root/tests/integration
H=$BIN_DIR/herald
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}
cli() { "$H" "$@"; }

dir=$(mktemp -d /tmp/herald-offline-XXXXXX)
fails=0
recv_pid= gw2= subs=()
cleanup() {
  [ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null
  [ -n "$gw2" ] && kill "$gw2" 2>/dev/null
  for p in "${subs[@]}"; do kill "$p" 2>/dev/null; done
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT
wait_for() { local n=$(( $1 * 10 )); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }

timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
set -a; . "$dir/cluster.env"; set +a
ok "cluster up"
read -r port2 http2 PORT < <(free_ports 3 | paste -sd ' ')
sed -e "s/^gateway.listen = .*/gateway.listen = 127.0.0.1:$port2/" -e 's/^gateway.id = .*/gateway.id = 2/' \
  -e 's/^gateway.ws_listen = .*/gateway.ws_listen = 127.0.0.1:0/' \
  -e 's/^gateway.mqtt_listen = .*/gateway.mqtt_listen = /' \
  -e "s/^gateway.http_listen = .*/gateway.http_listen = 127.0.0.1:$http2/" \
  "$dir/gateway.conf" >"$dir/gateway2.conf"
"$BIN_DIR/heraldd" gateway --config "$dir/gateway2.conf" 2>"$dir/gateway2.log" &
gw2=$!

secrets=$dir/secrets.json log=$dir/recv.jsonl mode=$dir/mode
: >"$log"
echo ok >"$mode"
python3 "$IT/cb_receiver.py" "$PORT" "$secrets" "$mode" "$log" &
recv_pid=$!
ready() { cli --admin conv create --kind group --members alice,bob,carol,dave --id g1 >/dev/null 2>&1; }
wait_for 30 ready && ok "conversation g1" || bad "create g1"
# The create's system message gets its message.offline within the window:
# let it pass before the callback exists (the receiver has no secret yet).
sleep 2
out=$(cli --admin app callback hr --url "http://127.0.0.1:$PORT/cb" --all) && ok "callback set" || bad "callback: $out"
python3 -c "import json,sys; a=json.loads(sys.argv[1]); json.dump({'hr': {'token': a['token'], 'secret': a['secret']}}, open(sys.argv[2], 'w'))" "$out" "$secrets"

online() { curl -sf "$1/metrics" 2>/dev/null | grep -qE '^herald_gateway_users_online [1-9]'; }
timeout 120 "$H" --as carol sub --count 1000 --timeout 100 >"$dir/carol.sub" 2>&1 &
subs+=($!)
HERALD_GATEWAY=127.0.0.1:$port2 timeout 120 "$H" --as bob sub --count 1000 --timeout 100 \
  >"$dir/bob.sub" 2>&1 &
subs+=($!)
wait_for 20 online "$HERALD_HTTP" && ok "carol online on gateway 1" || bad "carol not online"
wait_for 20 online "http://127.0.0.1:$http2" && ok "bob online on gateway 2" || bad "bob not online"

# offline_of SEQ: the message.offline lines of g1/SEQ (acknowledged).
offline_of() { grep '"type": "message.offline"' "$log" | grep "\"conv\": \"g1\", \"seq\": $1," | grep '"status": 200' || true; }
has() { [ -n "$(offline_of "$1")" ]; }
ids() { offline_of "$1" | grep -o '"id": "[^"]*"' | sort -u | wc -l; }

t0=$(date +%s.%N)
cli --as alice send g1 "two gateways" >/dev/null || bad "send 2"
wait_for 20 has 2 && ok "message.offline for g1/2" || bad "none for g1/2: $(grep offline "$log")"
t1=$(date +%s.%N)
sleep 1.5 # a second event would have come by now
line=$(offline_of 2)
echo "$line" | head -n 1
[ "$(ids 2)" = 1 ] && ok "exactly one event" || bad "events: $line"
grep -q '"users": \["dave"\], "from": "alice"' <<<"$line" && ok "it names dave only (bob is on gateway 2, carol on gateway 1)" \
  || bad "users: $line"
grep -q '"sig": "ok"' <<<"$line" && ok "signed" || bad "signature: $line"
python3 -c "import sys; d=float(sys.argv[2])-float(sys.argv[1]); print(f'# decided and delivered {d:.2f} s after the send')" "$t0" "$t1"

# Gateway 2 goes: bob with it. Once the leader stops counting gateway 2
# live (5 s without a request from it), gateway 1's report alone decides.
kill -TERM "$gw2"; wait "$gw2" 2>/dev/null; gw2=
sleep 6
cli --as alice send g1 "one gateway" >/dev/null || bad "send 3"
wait_for 20 has 3 && ok "message.offline for g1/3" || bad "none for g1/3"
sleep 1.5
line=$(offline_of 3)
echo "$line" | head -n 1
[ "$(ids 3)" = 1 ] && ok "exactly one event" || bad "events: $line"
grep -q '"users": \["bob", "dave"\]' <<<"$line" && ok "it names bob and dave (carol is still on gateway 1)" || bad "users: $line"

n=$(grep '"type": "message.offline"' "$log" | grep '"status": 200' | grep -o '"id": "[^"]*"' | sort -u | wc -l)
[ "$(grep -c '"sig": "bad"' "$log" || true)" = 0 ] && ok "every signature verified" || bad "bad signatures"
m=$(curl -sf "$HERALD_HTTP/metrics")
grep -qE '^herald_offline_reports_total [1-9]' <<<"$m" && ok "gateway metrics: reports" || bad "gateway metrics: $(grep offline <<<"$m")"
echo "offline events $n"
[ $fails = 0 ] && echo "it_offline (cluster): all passed" || echo "it_offline (cluster): $fails failed"
exit $((fails > 0))
