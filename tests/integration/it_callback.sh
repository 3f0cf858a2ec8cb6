#!/usr/bin/env bash
# it_callback.sh HERALDD HERALD — event callbacks of `heraldd dev` with a
# real receiver (cb_receiver.py verifies every signature): down at first,
# then answering 500, then healthy: every event arrives, in order, none
# lost, duplicates with the same id; an app subscribed to its own
# conversations only gets those; events, metrics; across a restart, an app
# whose URL is dead gets its events marked failed, then redelivered to a
# new URL. Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
it_init callback
printf 'callback.backoff_ms = 100\ncallback.max_attempts = 60\ncallback.timeout_ms = 1000\ntenant.urgent_interval_s = 1\ntenant.urgent_max_reminders = 1\n' >"$dir/h.conf"
start
PORT=$(free_ports)
URL="http://127.0.0.1:$PORT/cb"
secrets=$dir/secrets.json log=$dir/recv.jsonl mode=$dir/mode
echo '{}' >"$secrets"
: >"$log"
# keep APP CALLBACK-JSON: the app's token and secret go to the receiver's file.
keep() {
  python3 - "$secrets" "$1" "$2" <<'PY'
import json, sys
path, app, ans = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
d = json.load(open(path)); d[app] = {"token": ans["token"], "secret": ans["secret"]}
json.dump(d, open(path, "w"))
PY
}
recv_pid=
recv_start() { python3 "$here/cb_receiver.py" "$PORT" "$secrets" "$mode" "$log" & recv_pid=$!; sleep 0.5; }
recv_stop() { [ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null; wait "$recv_pid" 2>/dev/null; recv_pid=; }
# wait_for SECONDS CMD…: until CMD succeeds.
wait_for() { local n=$(( $1 * 10 )); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }

"$HERALD" --admin conv create --kind group --members alice,bob --id g1 >/dev/null || bad "create g1"
out=$("$HERALD" --admin app callback hr --url "$URL" --all) && ok "callback set: $out" || bad "callback: $out"
grep -qE '"token":"[0-9a-f]{32}","secret":"[0-9a-f]{64}","all":true' <<<"$out" && ok "token and secret drawn" || bad "token/secret: $out"
keep hr "$out"
out=$("$HERALD" --admin app callback crm --url "$URL") || bad "callback crm: $out"
keep crm "$out"
# push (vendor push): every conversation, but message.offline events only.
out=$("$HERALD" --admin app callback push --url "$URL" --all --events message.offline) || bad "callback push: $out"
grep -q '"event_types":\["message.offline"\]' <<<"$out" && ok "push gets message.offline only" || bad "push types: $out"
keep push "$out"
expect "an unknown event type is refused, the types listed" 1 '"mesage" is no event type \(one of: message,recall,' -- \
  "$HERALD" --admin app callback push --url "$URL" --events message,mesage
expect "an empty event type is refused" 2 'event types separated by commas' -- \
  "$HERALD" --admin app callback push --url "$URL" --events message,,recall
expect "callbacks are admin-only" 1 'FORBIDDEN' -- "$HERALD" --as alice app events hr
expect "a bad URL is refused" 1 'INVAL.*https://' -- "$HERALD" --admin app callback hr --url ftp://x
expect "no callback: NOT_FOUND" 1 'NOT_FOUND' -- "$HERALD" --admin app events nobody

# 1. The receiver is down: 10 messages wait.
for i in $(seq 1 10); do "$HERALD" --as alice send g1 "down $i" >/dev/null || bad "send $i"; done
sleep 1.5
out=$("$HERALD" --admin app events hr --limit 3)
grep -q '"state":"pending"' <<<"$out" && grep -q '"attempts":[1-9]' <<<"$out" && ok "pending with attempts while down" || bad "events while down: $out"
grep -qE '"last_error":"[^"]+"' <<<"$out" && ok "last error kept" || bad "no last error: $out"
# 2. Up, but answering 500: 10 more.
echo 500 >"$mode"
recv_start
for i in $(seq 11 20); do "$HERALD" --as alice send g1 "busy $i" >/dev/null || bad "send $i"; done
sleep 2
grep -q '"status": 500' "$log" && ok "500s were answered" || bad "no 500 seen"
# 3. Healthy: 10 more, and everything arrives.
echo ok >"$mode"
for i in $(seq 21 30); do "$HERALD" --as alice send g1 "ok $i" >/dev/null || bad "send $i"; done
# seq 1 is the create's system message: messages 2..31.
verdict() { CB_FIRST=2 python3 "$here/cb_verdict.py" "$log" hr g1 30; }
wait_for 40 verdict >/dev/null
if out=$(verdict); then ok "every event: $out"; else bad "verdict: $out"; fi
echo "$out" | head -n 1
grep '"seq": 31,' "$log" | grep -q '"body": "ok 30", "enc": "utf8"' && ok "the body as text" || bad "body: $(grep '"seq": 31,' "$log")"

# A receiver too slow to answer within callback.timeout_ms: the event is
# sent again, with the same id; both copies were processed.
echo slow >"$mode"
"$HERALD" --as alice send g1 "slow 31" >/dev/null || bad "send slow"
# (hr's copies of message 32 itself: its message.offline, and push's, carry seq 32 too)
twice() { [ "$(grep '"app": "hr"' "$log" | grep '"type": "message"' | grep '"seq": 32,' | grep -c '"status": 200' || true)" -ge 2 ]; }
wait_for 20 twice && ok "a timed-out event came again" || bad "no second copy: $(grep '"seq": 32,' "$log")"
echo ok >"$mode"
if out=$(CB_FIRST=2 python3 "$here/cb_verdict.py" "$log" hr g1 31); then ok "with the copy: $out"; else bad "verdict: $out"; fi
echo "$out" | head -n 1
grep -q 'duplicated [1-9]' <<<"$out" && ok "duplicates counted, each with its id" || bad "no duplicate: $out"
count() { grep "$@" || true; }
[ "$(count -c '"sig": "bad"' "$log")" = 0 ] && ok "every signature verified" || bad "bad signatures"

# The member-only app: its own conversation (an app message), not g1.
"$HERALD" --admin dir user add alice --kind internal >/dev/null || bad "dir add alice"
"$HERALD" --admin app send --app crm --users alice --id w1 "welcome" >/dev/null || bad "app send"
# hr (every conversation) sees the app's message: its conversation id.
ap_seen() { grep '"app": "hr"' "$log" | grep -q '"conv": "ap-'; }
wait_for 20 ap_seen || bad "hr did not see the app conversation"
apconv=$(grep '"app": "hr"' "$log" | grep -o '"conv": "ap-[0-9a-f]*"' | head -n 1 | cut -d'"' -f4)
"$HERALD" --as alice send "$apconv" "thanks" >/dev/null || bad "reply in $apconv"
crm_got() { grep '"app": "crm"' "$log" | grep -q "\"conv\": \"$apconv\""; }
wait_for 20 crm_got && ok "crm got the reply in its conversation" || bad "crm: $(grep crm "$log")"
sleep 0.5
grep '"app": "crm"' "$log" | grep -q '"conv": "g1"' && bad "crm got g1's events" || ok "crm got nothing of g1"
[ "$(grep '"app": "crm"' "$log" | grep '"type": "message"' | count -c '"seq": 1,')" = 0 ] && ok "its own message is not sent back" || bad "crm got its own message"

# Directory events, receipts.
"$HERALD" --admin dir user add dana --kind internal >/dev/null || bad "dir add"
"$HERALD" --as bob read g1 32 >/dev/null || bad "read"
dir_got() { grep '"app": "hr"' "$log" | grep -q '"type": "directory.user"'; }
rcpt_got() { grep '"app": "hr"' "$log" | grep -q '"type": "receipt"'; }
wait_for 20 dir_got && ok "directory.user event" || bad "no directory event"
wait_for 20 rcpt_got && ok "receipt event" || bad "no receipt event"
# Urgent escalation, contacts, tags, a resigned transfer.
"$HERALD" --admin dir user add cust1 --kind external >/dev/null || bad "dir cust1"
"$HERALD" --admin dir user add dave --kind internal >/dev/null || bad "dir dave"
"$HERALD" --admin contact add alice cust1 >/dev/null || bad "contact add"
"$HERALD" --admin tag add cust1 vip >/dev/null || bad "tag add"
"$HERALD" --as alice send g1 "DING: sign the contract" --urgent >/dev/null || bad "urgent send"
"$HERALD" --admin transfer --from alice --to dave --customers cust1 --resigned >/dev/null || bad "transfer"
for t in contact.add tag.add urgent.escalate transfer transfer.done; do
  has_type() { grep '"app": "hr"' "$log" | grep -q "\"type\": \"$t\""; }
  wait_for 20 has_type && ok "$t event" || bad "no $t event"
done
# message.offline: bob is connected, carol is not; alice's message to g2
# gives one event naming carol only (alice sent it, bob was online).
"$HERALD" --admin conv create --kind group --members alice,bob,carol --id g2 >/dev/null || bad "create g2"
"$HERALD" --as bob sub --count 1000 --timeout 60 >"$dir/bob.sub" 2>&1 &
sub_pid=$!
bob_on() { "$HERALD" --admin admin status | grep -qE '"users_online":[1-9]'; }
wait_for 10 bob_on || bad "bob's session is not online"
"$HERALD" --as alice send g2 "are you there" >/dev/null || bad "send g2"
off_got() { grep '"app": "hr"' "$log" | grep '"type": "message.offline"' | grep -q '"conv": "g2", "seq": 2,'; }
wait_for 20 off_got && ok "message.offline for g2/2" || bad "no message.offline: $(grep offline "$log")"
sleep 1 # a second one would have come by now
offl=$(grep '"app": "hr"' "$log" | grep '"type": "message.offline"' | grep '"conv": "g2", "seq": 2,')
echo "$offl" | head -n 1
[ "$(echo "$offl" | grep -o '"id": "[^"]*"' | sort -u | wc -l)" = 1 ] && ok "exactly one message.offline event" || bad "events: $offl"
grep -q '"users": \["carol"\], "from": "alice"' <<<"$offl" && ok "it names carol only (not bob, online; not alice, the sender)" || bad "users: $offl"
grep -q '"sig": "ok"' <<<"$offl" && ok "signed like every event" || bad "signature: $offl"
grep '"app": "crm"' "$log" | grep '"type": "message.offline"' | grep -q '"conv": "g2"' && bad "crm got g2's message.offline" || ok "crm (not a member of g2) got none of it"
grep '"type": "message.offline"' "$log" | grep -q '"users": \[[^]]*"app:' && bad "an app listed as offline" || ok "apps are never listed as offline"
push_off() { grep '"app": "push"' "$log" | grep '"type": "message.offline"' | grep -q '"conv": "g2", "seq": 2,'; }
wait_for 10 push_off && ok "push got the message.offline" || bad "push: $(grep '"app": "push"' "$log")"
others=$(grep '"app": "push"' "$log" | grep -vc '"type": "message.offline"' || true)
[ "$others" = 0 ] && ok "push got no other type of event" || bad "push got $others other events: $(grep '"app": "push"' "$log" | grep -v message.offline | head -n 3)"
kill "$sub_pid" 2>/dev/null; wait "$sub_pid" 2>/dev/null
ev_done() { "$HERALD" --admin app events hr | grep -q '"pending":0,'; }
wait_for 20 ev_done && ok "nothing pending" || bad "pending: $("$HERALD" --admin app events hr)"
out=$("$HERALD" --admin app events hr)
d=$(grep -o '"delivered":[0-9]*' <<<"$out" | cut -d: -f2)
[ "${d:-0}" -ge 40 ] && ok "delivered $d" || bad "delivered: $out"
if [ -n "${HERALD_HTTP:-}" ]; then
  m=$(curl -sf "$HERALD_HTTP/metrics")
  grep -qE '^herald_callback_delivered_total [1-9]' <<<"$m" && ok "metrics: delivered" || bad "metrics: $(grep callback <<<"$m")"
  grep -qE '^herald_callback_failures_total [1-9]' <<<"$m" && ok "metrics: failures" || bad "metrics failures"
  grep -q '^herald_callback_queue_depth{group="0"}' <<<"$m" && ok "metrics: queue depth" || bad "metrics depth"
  grep -qE '^herald_offline_events_total [1-9]' <<<"$m" && ok "metrics: offline events" || bad "metrics: $(grep offline <<<"$m")"
  grep -qE '^herald_offline_reports_total [1-9]' <<<"$m" && ok "metrics: offline reports" || bad "metrics offline reports"
  if command -v promtool >/dev/null; then
    promtool check metrics <<<"$m" >/dev/null 2>&1 && ok "promtool check metrics" || bad "promtool: $(promtool check metrics <<<"$m" 2>&1)"
  fi
fi

# 4. Restart with 3 attempts: an app whose URL is dead gets failed events,
#    which survive the restart and are redelivered to a new URL.
stop || bad "stop"
printf 'callback.backoff_ms = 100\ncallback.max_attempts = 3\n' >"$dir/h.conf"
start
DEAD=$(free_ports)
out=$("$HERALD" --admin app callback dead --url "http://127.0.0.1:$DEAD/x" --all) || bad "callback dead"
for i in 1 2 3; do "$HERALD" --as alice send g1 "to the dead $i" >/dev/null || bad "send"; done
failed_n() { "$HERALD" --admin app events dead --failed | grep -o '"failed":[0-9]*' | cut -d: -f2; }
# Each message is two events: itself, and bob's message.offline.
three_failed() { [ "$(failed_n)" -ge 6 ] 2>/dev/null; }
wait_for 30 three_failed && ok "failed after 3 attempts: $(failed_n)" || bad "failed: $("$HERALD" --admin app events dead --failed)"
out=$("$HERALD" --admin app events dead --failed --limit 1)
grep -q '"state":"failed","' <<<"$out" || grep -q '"state":"failed"' <<<"$out" && ok "listed as failed" || bad "events --failed: $out"
grep -q '"attempts":3' <<<"$out" && ok "with its 3 attempts" || bad "attempts: $out"
grep -q '"more":true' <<<"$out" && ok "paged (more)" || bad "more: $out"
stop || bad "stop 2"
start
three_failed && ok "failed events survive a restart" || bad "after restart: $(failed_n)"
# Once the outbox is pruned (every app past them, older than 10 s), the
# full list still shows the failed events, from their failed records.
outbox_empty() { local o; o=$("$HERALD" --admin app events hr --limit 200) && ! grep -q '"state"' <<<"$o"; }
wait_for 30 outbox_empty && ok "the outbox pruned" || bad "not pruned: $("$HERALD" --admin app events hr)"
out=$("$HERALD" --admin app events dead --limit 100)
n=$(grep -o '"state":"failed"' <<<"$out" | wc -l)
[ "$n" -ge 3 ] && ok "the full list shows the $n failed events after the prune" || bad "full list: $out"
out=$("$HERALD" --admin app callback dead --url "$URL" --all) || bad "callback dead again"
keep dead "$out"
expect "redeliver needs --id or --failed" 2 'redeliver' -- "$HERALD" --admin app redeliver dead
expect "redeliver an unknown id" 1 'NOT_FOUND' -- "$HERALD" --admin app redeliver dead --id 0-999999
out=$("$HERALD" --admin app redeliver dead --failed)
grep -qE '"requeued":([6-9]|[1-9][0-9])' <<<"$out" && ok "requeued: $out" || bad "redeliver: $out"
dead_got() { [ "$(grep '"app": "dead"' "$log" | grep '"status": 200' | count -c '"conv": "g1"')" -ge 3 ]; }
wait_for 20 dead_got && ok "the failed events reached the new URL" || bad "redelivered: $(grep dead "$log")"
nofail() { [ "$(failed_n)" = 0 ]; }
wait_for 10 nofail && ok "none failed any more" || bad "still failed: $(failed_n)"
recv_stop
stop || bad "stop 3"
[ "$fails" = 0 ] && echo "it_callback: all passed" || echo "it_callback: $fails failed"
exit $((fails > 0))
