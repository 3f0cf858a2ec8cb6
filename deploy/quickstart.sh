#!/usr/bin/env bash
# deploy/quickstart.sh — from a fresh machine to a running Herald:
# installs missing Debian packages, builds, starts the embedded default
# (`heraldd dev` with an LMDB data dir under ./var), runs a short demo (a
# send, a push, a read receipt) and prints how to connect.
#
#   ./deploy/quickstart.sh          set up, start, demo (server keeps running)
#   ./deploy/quickstart.sh stop     stop the server started here
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data=${HERALD_DATA:-$root/var}
listen=${HERALD_LISTEN:-127.0.0.1:7400}
pidfile=$data/heraldd.pid

stop() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    echo "heraldd stopped"
  fi
  rm -f "$pidfile"
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

./deploy/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target heraldd herald_cli >/dev/null
bin=$root/build/broker
herald=$bin/herald

stop
mkdir -p "$data"
rm -f "$data/dev.env"
nohup "$bin/heraldd" dev --data "$data" --listen "$listen" >"$data/heraldd.log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 100); do [ -f "$data/dev.env" ] && break; sleep 0.1; done
if [ ! -f "$data/dev.env" ]; then
  echo "heraldd did not start; see $data/heraldd.log" >&2
  tail -n 20 "$data/heraldd.log" >&2 || true
  exit 1
fi
set -a; . "$data/dev.env"; set +a
echo "heraldd dev is running (pid $(cat "$pidfile")), gateway $HERALD_GATEWAY, data $data"

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

cat <<EOT

== connect
  set -a; . $data/dev.env; set +a          # HERALD_GATEWAY, HERALD_TENANT, HERALD_SECRET
  $herald --as carol conv create --kind group --members carol,dave
  $herald --as carol send CONV "hi"
  $herald --as dave sub --state /tmp/dave.key
  $herald token --user erin                # a token for your own client (HERALD_TOKEN)
  Wire protocol: include/herald/protocol.h; C client: include/herald/client.h
  Stop: ./deploy/quickstart.sh stop        Log: $data/heraldd.log
EOT
