#!/usr/bin/env bash
# it_crash.sh HERALDD HERALD — an acknowledged message survives kill -9.
# herald-checker writes to 16 conversations with exactly-once retries while
# `heraldd dev` is killed with SIGKILL twice (once mid-write, once right after
# a restart) and restarted on the same data dir and port; then verify must
# find every acked message exactly once at its acked seq, no duplicate and no
# gap. Also proves the verifier is not vacuous: a forged ack is reported
# lost, a forged conversation as a gap, a stored duplicate as duplicated.
# The checker comes from $HERALD_CHECKER (set by ctest) or the build tree.
# Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
CHECKER=${HERALD_CHECKER:-$(dirname "$HERALD")/../tests/cluster/herald-checker}
DURATION=${IT_CRASH_DURATION:-20}
GRACE=30
[ -x "$CHECKER" ] || { echo "FAIL - herald-checker not found at $CHECKER"; exit 1; }

dir=$(mktemp -d /tmp/herald-crash-XXXXXX)
pid=
wpid=
fails=0
cleanup() {
  [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

ok()  { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; fails=$((fails + 1)); }

# start [PORT]: heraldd dev on the data dir (a free port the first time).
start() {
  rm -f "$dir/dev.env"
  "$HERALDD" dev --data "$dir" --listen "127.0.0.1:${1:-0}" --mqtt-listen "" --ws-listen "" --http-listen "" --log-level warn \
    2>>"$dir/heraldd.log" &
  pid=$!
  for _ in $(seq 150); do [ -f "$dir/dev.env" ] && break; sleep 0.1; done
  [ -f "$dir/dev.env" ] || { echo "FAIL - heraldd did not start"; cat "$dir/heraldd.log"; exit 1; }
}
kill9() { kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=; }

start
port=$(sed -n 's/^HERALD_GATEWAY=.*://p' "$dir/dev.env")
[ -n "$port" ] || { echo "FAIL - no port in dev.env"; exit 1; }
cp "$dir/dev.env" "$dir/checker.env" # stable copy: dev.env is rewritten on each start

timeout $((DURATION + GRACE + 60)) "$CHECKER" write --convs 16 --rate 300 \
  --duration "$DURATION" --grace "$GRACE" --timeout-ms 3000 \
  --log "$dir/acks.log" --env "$dir/checker.env" >"$dir/write.out" 2>"$dir/write.err" &
wpid=$!

sleep 5
kill9 && ok "kill -9 during writes"
sleep 1.5
start "$port" && ok "restart on the same data dir and port"
sleep 4
kill9 && ok "kill -9 again right after the restart"
start "$port"

wait "$wpid"; rc=$?; wpid=
cat "$dir/write.err"
wline=$(tail -n 1 "$dir/write.out")
if [ $rc = 0 ] && grep -qE '^[0-9]+ acked, ' <<<"$wline"; then ok "writer: $wline"
else bad "writer rc=$rc: $(cat "$dir/write.out")"; fi
acked=$(awk '{print $1}' <<<"$wline")
[ "${acked:-0}" -ge 1000 ] && ok "enough acked to mean something ($acked)" \
  || bad "only ${acked:-0} acked"
grep -qE 'retries=[1-9]' "$dir/write.err" && ok "the writer had to retry (the kills hit it)" \
  || bad "no retries: the kills missed the writer"

# --- the check ------------------------------------------------------------------
summary=$(timeout 120 "$CHECKER" verify --log "$dir/acks.log" --env "$dir/checker.env" 2>"$dir/verify.err"); rc=$?
cat "$dir/verify.err"
echo "checker: $summary"
if [ $rc = 0 ] && grep -qE '^[0-9]+ acked, 0 lost, 0 duplicated, 0 gaps$' <<<"$summary"; then
  ok "verify after two kill -9: $summary"
else
  bad "verify rc=$rc: $summary"
fi

# --- the verifier catches what it must catch -----------------------------------
conv=$(sed -n 's/^conv //p' "$dir/acks.log" | head -n 1)
cmid=$(awk -v c="$conv" '$1 == "ack" && $2 == c { print $4; exit }' "$dir/acks.log")
cp "$dir/acks.log" "$dir/forged.log"
echo "ack $conv 999999 forged-cmid" >>"$dir/forged.log"
echo "conv no-such-conv" >>"$dir/forged.log"
out=$(timeout 60 "$CHECKER" verify --settle 0 --log "$dir/forged.log" --env "$dir/checker.env" 2>&1); rc=$?
grep -qE '^[0-9]+ acked, 1 lost, 0 duplicated, 1 gaps$' <<<"$out" && [ $rc = 1 ] \
  && ok "a forged ack is lost, a missing conversation a gap" || bad "forged log rc=$rc: $out"
# Store the cmid's text a second time (new cmid): a duplicate by content.
owner=$(awk -v c="$conv" '$1 == "ack" && $2 == c { split($4, p, "."); print "ck-w" p[2]; exit }' "$dir/acks.log")
(set -a; . "$dir/checker.env"; timeout 10 "$HERALD" --as "$owner" send "$conv" "$cmid" >/dev/null) \
  || bad "could not send the duplicate"
out=$(timeout 60 "$CHECKER" verify --settle 0 --log "$dir/acks.log" --env "$dir/checker.env" 2>&1); rc=$?
grep -qE '^[0-9]+ acked, 0 lost, 1 duplicated, 0 gaps$' <<<"$out" && [ $rc = 1 ] \
  && ok "a stored duplicate is reported" || bad "duplicate rc=$rc: $out"
out=$(timeout 10 "$CHECKER" verify --log "$dir/nonexistent.log" --env "$dir/checker.env" 2>&1); rc=$?
[ $rc = 2 ] && ok "unreadable log: exit 2" || bad "unreadable log rc=$rc: $out"

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ $rc = 0 ] && ok "clean SIGTERM exit" || bad "heraldd exit status $rc"
grep -iE 'panic|assert|corrupt|AddressSanitizer|LeakSanitizer|runtime error:' "$dir/heraldd.log" \
  && bad "heraldd log shows trouble"

[ $fails = 0 ] && echo "it_crash: all passed" || echo "it_crash: $fails failed"
[ $fails = 0 ]
