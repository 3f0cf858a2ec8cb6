#!/usr/bin/env bash
# it_events.sh BIN_DIR CHECKER — pushes reach every receiver once and in
# order although nng drops event batches: with the nodes' publish queue and
# the gateway's receive queue cut to one message (events.sendbuf = 1,
# events.recvbuf = 1), a flood from 8 senders to 20 receivers makes nng drop
# batches, the gateway pulls the missed events from the nodes' rings
# (NW_REPLAY), and herald-checker flood sees 0 duplicated, 0 out of order,
# 0 missing. The gateway's log must show gaps that were repaired, none lost.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_events.sh BIN_DIR CHECKER}" && pwd)
CHECKER=${2:?usage: it_events.sh BIN_DIR CHECKER}
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}

dir=$(mktemp -d /tmp/herald-events-XXXXXX)
fails=0
cleanup() {
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT

# Generate the configs, then cut the queues and start for real.
timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
for n in 1 2 3; do echo "events.sendbuf = 1" >>"$dir/node$n.conf"; done
echo "events.recvbuf = 1" >>"$dir/gateway.conf"
timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not restart"; exit 1; }
ok "cluster up with events.sendbuf = 1, events.recvbuf = 1"

out=$(timeout 150 "$CHECKER" flood --convs 8 --members 20 --msgs 400 --env "$dir/cluster.env" \
  --deadline 120 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
line=$(echo "$out" | grep "expected,")
[ $rc = 0 ] && ok "flood: $line" || bad "flood: ${line:-no summary} (exit $rc)"

# A second gateway: a session there gets what is sent through the first.
port2=$(free_ports)
sed -e "s/^gateway.listen = .*/gateway.listen = 127.0.0.1:$port2/" -e 's/^gateway.id = .*/gateway.id = 2/' \
  -e 's/^gateway.ws_listen = .*/gateway.ws_listen = 127.0.0.1:0/' \
  -e 's/^gateway.mqtt_listen = .*/gateway.mqtt_listen = /' \
  -e 's/^gateway.http_listen = .*/gateway.http_listen = /' \
  "$dir/gateway.conf" >"$dir/gateway2.conf"
"$BIN_DIR/heraldd" gateway --config "$dir/gateway2.conf" 2>"$dir/gateway2.log" &
gw2=$!
set -a; . "$dir/cluster.env"; set +a
"$BIN_DIR/herald" --as alice conv create --kind group --members alice,bob --id two-gateways >/dev/null
sleep 0.5
HERALD_GATEWAY=127.0.0.1:$port2 timeout 20 "$BIN_DIR/herald" --as bob sub --count 1 --timeout 10 \
  >"$dir/bob.out" 2>&1 &
sub=$!
sleep 1
"$BIN_DIR/herald" --as alice send two-gateways "through gateway 1" >/dev/null
wait $sub
grep -q '"text":"through gateway 1"' "$dir/bob.out" && ok "a push crosses gateways" \
  || bad "no push through the second gateway: $(cat "$dir/bob.out")"
kill -TERM $gw2 2>/dev/null
wait $gw2 2>/dev/null

timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
stats=$(grep '"front.stop"' "$dir/gateway.log" | tail -n 1)
echo "# $stats"
gaps=$(echo "$stats" | sed -n 's/.* \([0-9]*\) gaps.*/\1/p')
lost=$(echo "$stats" | sed -n 's/.* \([0-9]*\) lost.*/\1/p')
if [ -z "$gaps" ]; then bad "no event statistics in the gateway log"
elif [ "$gaps" = 0 ]; then bad "nng dropped nothing: the test did not exercise gap repair"
elif [ "$lost" != 0 ]; then bad "$lost events could not be repaired"
else ok "gateway: $gaps gaps repaired, 0 lost"; fi
exit $((fails > 0))
