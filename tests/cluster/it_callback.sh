#!/usr/bin/env bash
# it_callback.sh BIN_DIR — event callbacks on the 3-node cluster: a real
# receiver (tests/integration/cb_receiver.py, every signature verified)
# gets a stream of 200 messages while the leader of the conversation's
# group is killed -9 mid-stream and the receiver answers 500 for a while:
# the new leader resumes from the first event not acknowledged (the
# cursor is replicated), nothing is lost, copies carry the same id, the
# first acknowledgements come in order. Prints "events sent N delivered N
# duplicated N lost 0". Bounded waits; the cluster is always brought down.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_callback.sh BIN_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
IT=$root/tests/integration
H=$BIN_DIR/herald
N=${IT_CALLBACK_N:-200}
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}
cli() { "$H" "$@"; }

dir=$(mktemp -d /tmp/herald-cbcluster-XXXXXX)
fails=0
recv_pid=
cleanup() {
  [ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null
  jobs -p | xargs -r kill 2>/dev/null
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT
wait_for() { local n=$(( $1 * 10 )); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }

# Configs first (callback.* in every node's), then the cluster.
timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
rm -rf "$dir"/node1 "$dir"/node2 "$dir"/node3
for n in 1 2 3; do
  printf 'callback.backoff_ms = 200\ncallback.max_attempts = 60\n' >>"$dir/node$n.conf"
done
timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not restart"; exit 1; }
set -a; . "$dir/cluster.env"; set +a
ok "cluster up"

PORT=$(free_ports)
secrets=$dir/secrets.json log=$dir/recv.jsonl mode=$dir/mode
: >"$log"
echo ok >"$mode"
python3 "$IT/cb_receiver.py" "$PORT" "$secrets" "$mode" "$log" &
recv_pid=$!

ready() { cli --admin conv create --kind group --members alice,bob --id g1 >/dev/null 2>&1; }
wait_for 30 ready && ok "conversation g1" || bad "create g1"
out=$(cli --admin app callback hr --url "http://127.0.0.1:$PORT/cb" --all) && ok "callback set" || bad "callback: $out"
python3 -c "import json,sys; a=json.loads(sys.argv[1]); json.dump({'hr': {'token': a['token'], 'secret': a['secret']}}, open(sys.argv[2], 'w'))" "$out" "$secrets"

# The stream: N messages, each retried with its cmid until acknowledged
# (exactly once across the failover).
sender() {
  for i in $(seq 1 "$N"); do
    for _ in $(seq 100); do
      timeout 10 "$H" --as alice send g1 "event $i" --cmid "m$i" >/dev/null 2>&1 && break
      sleep 0.2
    done
  done
  echo done >"$dir/sent"
}
sender &
got() { [ "$(grep -c '"status": 200' "$log" 2>/dev/null || true)" -ge "$1" ]; }
wait_for 60 got 40 && ok "the stream is flowing" || bad "no events reached the receiver"
group=$(grep -o '"id": "[0-9]*-' "$log" | grep -v '"id": "0-' | head -n 1 | grep -o '[0-9]*')
group=${group:-$(grep -o '"id": "[0-9]*-' "$log" | head -n 1 | grep -o '[0-9]*')}
leader=$(status_py 'grp(a[0]).get("leader")' "$group")
[ -n "$leader" ] && [ "$leader" != 0 ] && ok "g1's group $group is led by node $leader" || bad "no leader for group $group"
before=$(grep -c '"status": 200' "$log")
timeout 30 bash "$LC" kill "$leader" --data "$dir" >/dev/null && ok "node $leader killed -9 after $before acknowledged events" || bad "kill"
sleep 2
echo 500 >"$mode"   # and the receiver has trouble of its own for a while
sleep 2
echo ok >"$mode"
if out=$(timeout 90 bash "$LC" restart "$leader" --data "$dir" 2>&1); then ok "node $leader restarted"
else bad "restart $leader: $(tail -n 3 <<<"$out")"; fi
sent() { [ -f "$dir/sent" ]; }
wait_for 180 sent && ok "all $N sent" || bad "the sender did not finish"
verdict() { CB_FIRST=2 python3 "$IT/cb_verdict.py" "$log" hr g1 "$N"; }
wait_for 90 verdict >/dev/null
if out=$(verdict); then ok "failover: $out"; else bad "failover verdict: $out"; fi
echo "$out" | head -n 1
new=$(status_py 'grp(a[0]).get("leader")' "$group")
[ -n "$new" ] && ok "group $group now led by node $new" || bad "no leader after"
[ "$(grep -c '"sig": "bad"' "$log" || true)" = 0 ] && ok "every signature verified" || bad "bad signatures"
# The outbox, cursors and retry records are replicated state: once the
# deliverer is idle (everything acked, the last events pruned after their
# 10 s of grace) and raft settled, the three replicas are identical.
pruned() { curl -sf "$HERALD_HTTP_NODE1/metrics" 2>/dev/null | grep -E '^herald_callback_queue_depth\{' | awk '{s+=$2} END {exit !(NR > 0 && s == 0)}'; }
if [ -n "${HERALD_HTTP_NODE1:-}" ]; then
  wait_for 40 pruned && ok "every outbox pruned (queue depth 0)" || bad "outbox not pruned: $(curl -sf "$HERALD_HTTP_NODE1/metrics" | grep callback_queue)"
fi
settled() {
  local s; s=$(status_py 'sorted((x["group"], x.get("commit"), x.get("applied")) for x in groups)')
  [ -n "$s" ] && [ "$s" = "${last_settled:-}" ] && return 0
  last_settled=$s; sleep 1.5; return 1
}
last_settled=
wait_for 30 settled || true
timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1 && ok "cluster down for the digests"
for n in 1 2 3; do
  timeout 120 "$BIN_DIR/heraldd" digest --data "$dir/node$n" >"$dir/digest$n" 2>"$dir/digest$n.err" ||
    bad "heraldd digest node$n: $(cat "$dir/digest$n.err")"
done
if cmp -s "$dir/digest1" "$dir/digest2" && cmp -s "$dir/digest1" "$dir/digest3"; then
  ok "replicas identical: $(wc -l <"$dir/digest1") groups, same applied index and sha256"
else
  bad "replicas differ"; paste "$dir/digest1" "$dir/digest2" "$dir/digest3"
fi
[ $fails = 0 ] && echo "it_callback (cluster): all passed" || echo "it_callback (cluster): $fails failed"
exit $((fails > 0))
