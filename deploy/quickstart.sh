#!/usr/bin/env bash
# deploy/quickstart.sh — from a fresh machine to a running Herald:
# installs missing Debian packages, builds, starts a local cluster on
# loopback (three `heraldd node` processes replicating every shard group
# with raft, LMDB data dirs under ./var/cluster, and one `heraldd gateway`
# on 127.0.0.1:7400 — see deploy/local-cluster.sh), runs a short demo (a
# send, a push, a read receipt) and prints how to connect. The admin console
# (common/console, npm ci + build) is served by the cluster's gateway at
# HERALD_HTTP/console/.
#
#   ./deploy/quickstart.sh          set up, start the cluster, demo (it keeps running)
#   ./deploy/quickstart.sh dev      the same with the single-process `heraldd dev` (./var)
#   ./deploy/quickstart.sh stop     stop what was started here
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mode=cluster
case "${1:-}" in
  "") ;;
  dev) mode=dev ;;
  stop) mode=stop ;;
  *) echo "usage: $0 [dev|stop]" >&2; exit 2 ;;
esac
data=${HERALD_DATA:-$root/var}
cdata=$data/cluster
listen=${HERALD_LISTEN:-127.0.0.1:7400}
pidfile=$data/heraldd.pid
bin=$root/build/broker
herald=$bin/herald

stop_dev() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    echo "heraldd dev stopped"
  fi
  rm -f "$pidfile"
}
stop_cluster() {
  if [ -d "$cdata" ]; then
    HERALD_BIN_DIR=$bin ./deploy/local-cluster.sh down --data "$cdata" || true
  fi
}

if [ "$mode" = stop ]; then stop_dev; stop_cluster; exit 0; fi

./deploy/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target heraldd herald_cli >/dev/null
# The admin console (common/console → dist), served by the cluster's gateway at /console/.
(cd common/console && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build) >/dev/null

stop_dev
stop_cluster
mkdir -p "$data"
if [ "$mode" = dev ]; then
  rm -f "$data/dev.env"
  nohup "$bin/heraldd" dev --data "$data" --listen "$listen" >"$data/heraldd.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 100); do [ -f "$data/dev.env" ] && break; sleep 0.1; done
  if [ ! -f "$data/dev.env" ]; then
    echo "heraldd did not start; see $data/heraldd.log" >&2
    tail -n 20 "$data/heraldd.log" >&2 || true
    exit 1
  fi
  envfile=$data/dev.env
  logs=$data/heraldd.log
  set -a; . "$envfile"; set +a
  echo "heraldd dev is running (pid $(cat "$pidfile")), gateway $HERALD_GATEWAY${HERALD_WS:+, WebSocket $HERALD_WS}, data $data"
else
  HERALD_BIN_DIR=$bin HERALD_GATEWAY_PORT=${listen##*:} HERALD_CONSOLE_DIR=$root/common/console/dist \
    ./deploy/local-cluster.sh up --data "$cdata"
  envfile=$cdata/cluster.env
  logs="$cdata/NAME.log"
  set -a; . "$envfile"; set +a
fi

echo
echo "== demo: alice and bob in a group"
conv=$("$herald" --as alice conv create --kind group --members alice,bob | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
echo "created conversation $conv"
"$herald" --as bob sub --count 2 --timeout 10 >"$data/demo-bob.jsonl" &
bob=$!
"$herald" --as alice sub --count 3 --timeout 10 >"$data/demo-alice.jsonl" &
alice=$!
sleep 0.5
echo "alice sends:"
"$herald" --as alice send "$conv" "hello bob, the quarterly report is ready"
sleep 0.3
seq=$("$herald" --as bob history "$conv" | tail -n 1 | sed -n 's/.*"seq":\([0-9]*\).*/\1/p')
echo "bob marks seq $seq read:"
"$herald" --as bob read "$conv" "$seq"
"$herald" --as bob send "$conv" "thanks!" >/dev/null
wait $bob $alice || true
echo "bob's pushes:";   sed 's/^/  /' "$data/demo-bob.jsonl"
echo "alice's pushes:"; sed 's/^/  /' "$data/demo-alice.jsonl"
echo "who has read seq $seq:"
"$herald" --as alice receipts "$conv" "$seq"

console="(the cluster's gateway serves it: ./deploy/quickstart.sh without dev)"
[ "$mode" = dev ] || console="$HERALD_HTTP/console/   (sign in with a token from: $herald --admin token --user admin)"
cat <<EOT

== connect
  set -a; . $envfile; set +a   # HERALD_GATEWAY, HERALD_TENANT, HERALD_SECRET
  $herald --as carol conv create --kind group --members carol,dave
  $herald --as carol send CONV "hi"
  $herald --as dave sub --state /tmp/dave.key
  $herald token --user erin                # a token for your own client (HERALD_TOKEN)
  Wire protocol: include/herald/protocol.h; C client: include/herald/client.h
  Cluster state: $herald --admin admin status
  Admin console: $console
  Stop: ./deploy/quickstart.sh stop        Logs: $logs
EOT
