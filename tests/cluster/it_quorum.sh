#!/usr/bin/env bash
# it_quorum.sh BIN_DIR CHECKER — two of three nodes down: the gateway
# answers a HELLO, and a read of a session connected before the loss, with
# UNAVAILABLE saying there is no quorum — the first within two request
# timeouts (2 s each by default: the dead nodes it tries), then at once —
# never UNAUTHORIZED "no HELLO before the deadline"; once a majority is
# back, the same session reads again. Bounded waits; the cluster is always
# brought down.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_quorum.sh BIN_DIR CHECKER}" && pwd)
CHECKER=${2:?usage: it_quorum.sh BIN_DIR CHECKER}
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
H=$BIN_DIR/herald
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}

dir=$(mktemp -d /tmp/herald-quorum-XXXXXX)
fails=0
cleanup() {
  [ -n "${COPROC_PID:-}" ] && kill "$COPROC_PID" 2>/dev/null
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
# timed NAME MAX_MS RC PATTERN -- CMD…: exit status, output and how long it took.
timed() {
  local name=$1 max=$2 want=$3 pat=$4; shift 5
  local t0 out rc ms
  t0=$(now_ms)
  out=$(timeout 30 "$@" 2>&1); rc=$?
  ms=$(( $(now_ms) - t0 ))
  if [ "$rc" = "$want" ] && grep -qE -- "$pat" <<<"$out" && [ "$ms" -le "$max" ]; then
    ok "$name (${ms} ms): $out"
  else bad "$name (rc=$rc, want $want, /$pat/, ${ms} ms, at most $max): $out"; fi
}

timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
set -a; . "$dir/cluster.env"; set +a
ok "cluster up"
"$H" --as alice conv create --kind group --members alice,bob --id q1 >/dev/null || bad "create"
"$H" --as alice send q1 "before" >/dev/null || bad "send"

# A session connected before the loss, reading on request.
coproc "$CHECKER" quorum --user bob --conv q1 --env "$dir/cluster.env"
read -r -t 40 ready <&"${COPROC[0]}"
[ "${ready:-}" = ready ] && ok "a session is connected" || bad "checker quorum: ${ready:-nothing}"
# session_read NAME MAX_MS PATTERN: one read by that session, its answer and time.
session_read() {
  local out ms
  echo go >&"${COPROC[1]}"
  read -r -t 30 out <&"${COPROC[0]}"
  ms=$(sed -n 's/.*"ms":\([0-9]*\).*/\1/p' <<<"$out")
  if grep -qE -- "$3" <<<"$out" && [ -n "$ms" ] && [ "$ms" -le "$2" ]; then ok "$1: $out"
  else bad "$1 (/$3/, at most $2 ms): ${out:-no answer}"; fi
}
session_read "the session reads" 2000 '"err":"OK"'

timeout 30 bash "$LC" kill 2 --data "$dir" >/dev/null
timeout 30 bash "$LC" kill 3 --data "$dir" >/dev/null
# The survivor's leases run out: it says so on /readyz (waiting for that,
# not a fixed sleep, keeps the timings below the survivor's on a busy
# machine).
for _ in $(seq 100); do
  curl -s "$HERALD_HTTP_NODE1/readyz" | grep -q 'no quorum' && break
  sleep 0.1
done
curl -s "$HERALD_HTTP_NODE1/readyz" | grep -q 'no quorum' && ok "node 1 knows it has no quorum" \
  || bad "node 1 /readyz: $(curl -s "$HERALD_HTTP_NODE1/readyz")"
# The first request after the loss finds out which nodes are gone: one
# request timeout (2 s) per dead node it tries, then every answer is at once.
# The CLI exits 3 (connection / authentication) for a HELLO that fails.
msg='UNAVAILABLE: no quorum: 1 of 3 nodes reachable, a majority \(2\) is needed; not applied, retry later'
timed "no quorum: HELLO for a read, first" 5500 3 "$msg" -- "$H" --as alice history q1
for i in 1 2 3; do
  timed "no quorum: HELLO for a read, again ($i)" 1000 3 "$msg" -- "$H" --as alice history q1
done
timed "no quorum: HELLO for a ping" 1000 3 "$msg" -- "$H" --as bob ping
timed "no quorum: HELLO for a write" 1000 3 "$msg" -- "$H" --as alice send q1 "lost?"
session_read "no quorum: the connected session's read" 1000 '"err":"UNAVAILABLE","ms":[0-9]+,"text":"no quorum: 1 of 3 nodes reachable'

timeout 90 bash "$LC" restart 2 --data "$dir" >/dev/null || bad "restart node 2"
out=""
for _ in $(seq 60); do
  out=$(timeout 10 "$H" --as alice history q1 2>&1) && grep -q '"text":"before"' <<<"$out" && break
  sleep 0.5
done
grep -q '"text":"before"' <<<"$out" && ok "a majority again: reads work" || bad "after restart: $out"
session_read "the session connected all along reads again" 3000 '"err":"OK"'
timed "and writes" 10000 0 '"seq"' -- "$H" --as alice send q1 "after"

echo "$fails failure(s)"
[ "$fails" = 0 ]
