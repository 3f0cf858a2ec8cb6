#!/usr/bin/env bash
# it_urgent.sh HERALDD HERALD — tenant settings (reminder schedule, the
# receipts switch) and urgent (DING) messages end to end: every
# recipient must confirm; the unconfirmed are reminded on the tenant's
# schedule (1 s here), the schedule survives kill -9, and when the reminders
# run out the sender gets an escalation. Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
. "$(dirname "$0")/lib.sh"
it_init urgent
printf 'tenant.urgent_interval_s = 1\ntenant.urgent_max_reminders = 3\ntenant.receipts = false\n' >"$dir/h.conf"
start

"$HERALD" --as alice conv create --kind group --members alice,bob,carol --id war-room >/dev/null
"$HERALD" --as alice send war-room "ordinary" >/dev/null
"$HERALD" --as bob sub --state "$dir/bob.st" --timeout 1 >/dev/null 2>&1
timeout 10 "$HERALD" --as bob sub --count 1 --timeout 8 >"$dir/push" 2>&1 &
pushp=$!
sleep 0.5
out=$("$HERALD" --as alice send war-room "server room on fire, confirm now" --urgent)
seq=$(sed -n 's/.*"seq":\([0-9]*\).*/\1/p' <<<"$out")
wait $pushp
grep -q '"text":"server room on fire, confirm now".*"urgent":true,"confirmed":false' "$dir/push" && ok "the push shows an urgent message" || bad "push: $(cat "$dir/push")"
st=$("$HERALD" --as alice urgent-status war-room "$seq")
[ "$st" = '{"confirmed":[],"pending":["bob","carol"]}' ] && ok "both pending" || bad "status: $st"
"$HERALD" --as bob confirm war-room "$seq" >/dev/null && ok "bob confirms" || bad "bob confirm"
st=$("$HERALD" --as alice urgent-status war-room "$seq")
[ "$st" = '{"confirmed":["bob"],"pending":["carol"]}' ] && ok "bob confirmed, carol pending" || bad "status: $st"
h=$("$HERALD" --as bob history war-room)
grep -q '"text":"server room on fire, confirm now".*"urgent":true,"confirmed":true' <<<"$h" && ! grep -q '"text":"ordinary".*"urgent"' <<<"$h" && ok "history: urgent, confirmed by bob" || bad "bob's history: $h"
expect "history: urgent, not confirmed by carol" 0 '"text":"server room on fire, confirm now".*"urgent":true,"confirmed":false' -- "$HERALD" --as carol history war-room
expect "sync: urgent, confirmed by bob" 0 '"type":"msg".*"text":"server room on fire, confirm now".*"urgent":true,"confirmed":true' -- "$HERALD" --as bob sub --state "$dir/bob.st" --count 1 --timeout 5
"$HERALD" --as mallory confirm war-room "$seq" >/dev/null 2>&1; [ $? = 1 ] && ok "a stranger cannot confirm" || bad "stranger confirm"
"$HERALD" --as bob confirm war-room $((seq - 1)) >/dev/null 2>&1; [ $? = 1 ] && ok "ordinary messages need no confirmation" || bad "confirm ordinary"

# carol is reminded (1 s interval); the schedule survives kill -9.
timeout 10 "$HERALD" --as carol sub --count 1 --timeout 8 >"$dir/r1" 2>&1
grep -q "\"type\":\"remind\",\"conv\":\"war-room\",\"seq\":$seq,\"count\":1" "$dir/r1" && ok "first reminder" || bad "reminder 1: $(cat "$dir/r1")"
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=
start
timeout 15 "$HERALD" --as alice sub --timeout 12 --count 1 >"$dir/esc" 2>&1 &
esc=$!
timeout 12 "$HERALD" --as carol sub --count 2 --timeout 10 >"$dir/r2" 2>&1
grep -q '"type":"remind".*"count":2' "$dir/r2" && grep -q '"type":"remind".*"count":3' "$dir/r2" && ok "reminders continue after kill -9" || bad "reminders 2-3: $(cat "$dir/r2")"
wait $esc
grep -q "\"type\":\"escalate\",\"conv\":\"war-room\",\"seq\":$seq,\"count\":3,\"pending\":\[\"carol\"\]" "$dir/esc" && ok "escalation to the sender" || bad "escalation: $(cat "$dir/esc")"
grep -q '"id":"urgent.escalate"' "$dir/heraldd.log" && ok "escalation logged for the hook" || bad "no urgent.escalate log line"
"$HERALD" --as carol confirm war-room "$seq" >/dev/null && ok "late confirmation still recorded" || bad "late confirm"
st=$("$HERALD" --as alice urgent-status war-room "$seq")
[ "$st" = '{"confirmed":["bob","carol"],"pending":[]}' ] && ok "all confirmed" || bad "status: $st"
# This tenant switched read receipts off: cursors still move, nobody sees who read.
"$HERALD" --as bob read war-room "$seq" >/dev/null && ok "read still moves the cursor" || bad "read"
"$HERALD" --as alice receipts war-room "$seq" >/dev/null 2>&1; [ $? = 1 ] && ok "receipts switched off for the tenant" || bad "receipts visible"
kill -TERM "$pid"; wait "$pid" && ok "clean exit" || bad "exit status"; pid=
echo "$fails failure(s)"
[ "$fails" = 0 ]
