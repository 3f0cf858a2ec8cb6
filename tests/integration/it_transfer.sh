#!/usr/bin/env bash
# it_transfer.sh HERALDD HERALD — customer transfer (WeCom's in-service and
# resigned transfer): one JSON line per customer with its status (waiting
# with the takeover time, done, refused, taker_at_limit, no_record); the
# takeover after the waiting period (2 s here) by the broker's own periodic
# check; the conversation continues with the new owner (history preserved,
# messages sent during the transfer all there, the old owner can no longer
# send); a customer's objection; the taker's customer limit; the 90-day
# protection after two in-service transfers; customer groups; resigned
# transfers without a wait, surviving a kill -9. Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
. "$(dirname "$0")/lib.sh"
it_init xfer
# Polls `transfer …` until CUSTOMER's status is WANT (deadline 15 s).
wait_status() {
  local cust=$1 want=$2; shift 2
  for _ in $(seq 60); do
    "$HERALD" --admin transfer "$@" 2>/dev/null | grep -q "\"customer\":\"$cust\",\"status\":\"$want\"" && return 0
    sleep 0.25
  done
  return 1
}
printf 'tenant.transfer_wait_s = 2\ntenant.customer_limit = 3\n' >"$dir/h.conf"
start

for u in e1 e2 e3; do "$HERALD" --admin dir user add $u --kind internal >/dev/null; done
for c in cust1 cust2 cust3 cust5 cust6 cust7; do "$HERALD" --admin dir user add $c --kind external >/dev/null; done
conv=$("$HERALD" --admin contact add e1 cust1 | sed -n 's/.*"conv":"\([^"]*\)".*/\1/p')
for c in cust2 cust3; do "$HERALD" --admin contact add e1 $c >/dev/null; done
for c in cust5 cust6 cust7; do "$HERALD" --admin contact add e3 $c >/dev/null; done
"$HERALD" --as cust1 send "$conv" "hello, my order is late" >/dev/null
"$HERALD" --as e1 send "$conv" "let me check" >/dev/null

# --- usage and permissions ----------------------------------------------------------
expect "needs --from and --to" 2 'needs --from and --to' -- "$HERALD" --admin transfer --customers cust1
expect "at most 100 customers" 2 'at most 100 customers' -- "$HERALD" --admin transfer --from e1 --to e2 --customers "$(seq -s, 101)"
expect "admins only" 1 'FORBIDDEN' -- "$HERALD" --as e1 transfer --from e1 --to e2 --customers cust1
expect "the taker is an employee" 1 'INVAL: the taker must be an employee: cust2 is an external user' -- "$HERALD" --admin transfer --from e1 --to cust2 --customers cust1
expect "the taker exists in the directory" 1 'NOT_FOUND: the taker must be an employee: no user ghost in the directory' -- "$HERALD" --admin transfer --from e1 --to ghost --customers cust1
expect "nothing to refuse" 1 'NOT_FOUND' -- "$HERALD" --as cust3 transfer --refuse

# --- in service: waiting with the takeover time ------------------------------------------
out=$("$HERALD" --admin transfer --from e1 --to e2 --customers cust1,cust2,ghost)
grep -qE '^\{"customer":"cust1","status":"waiting","takeover_ms":[0-9]+,"takeover":"[0-9T:-]+Z","reason":"customer_may_object","text":"[^"]+"\}$' <<<"$out" &&
  grep -q '{"customer":"cust2","status":"waiting"' <<<"$out" &&
  grep -q '^{"customer":"ghost","status":"no_record","reason":"not_owner","text":"e1 does not own customer ghost"}$' <<<"$out" && [ "$(wc -l <<<"$out")" = 3 ] &&
  ok "one line per customer: waiting with the takeover time, no record" || bad "transfer: $out"
expect "asking again reports the same" 0 '"customer":"cust1","status":"waiting"' -- "$HERALD" --admin transfer --from e1 --to e2 --customers cust1
expect "another taker meanwhile: refused" 0 '"customer":"cust1","status":"refused","reason":"transfer_pending"' -- "$HERALD" --admin transfer --from e1 --to e3 --customers cust1
expect "the customer objects" 0 '^\{"customer":"cust2","status":"refused","reason":"customer_refused","text":"the customer objected to the transfer"\}$' -- "$HERALD" --as cust2 transfer --refuse
expect "a re-run after the objection stays refused" 0 '^\{"customer":"cust2","status":"refused","reason":"customer_refused"' -- "$HERALD" --admin transfer --from e1 --to e2 --customers cust2
expect "taker at its customer limit" 0 '"customer":"cust3","status":"taker_at_limit","reason":"taker_at_limit","text":"e3 owns the tenant.s limit of 3 customers"' -- "$HERALD" --admin transfer --from e1 --to e3 --customers cust3
# Messages in flight during the transfer: the customer keeps writing.
( for i in $(seq 12); do "$HERALD" --as cust1 send "$conv" "in flight $i" >/dev/null || echo "lost $i"; sleep 0.3; done ) >"$dir/flight" 2>&1 &
flight=$!
wait_status cust1 done --from e1 --to e2 --customers cust1 && ok "taken over after the wait" || bad "no takeover"
expect "the objection still stands after the wait" 0 '"customer":"cust2","status":"refused","reason":"customer_refused"' -- "$HERALD" --admin transfer --from e1 --to e2 --customers cust2
wait $flight
[ ! -s "$dir/flight" ] && ok "every in-flight send was acknowledged" || bad "in flight: $(cat "$dir/flight")"
expect "the customer stays with e1 after refusing" 0 '"owners":\["e1"\]' -- "$HERALD" --admin contact list cust2
expect "the contact is the taker's" 0 '"customer":"cust1","owners":\["e2"\]' -- "$HERALD" --admin contact list cust1
expect "the old owner can no longer send" 1 'NOT_MEMBER' -- "$HERALD" --as e1 send "$conv" "still there?"
expect "the new owner sends" 0 '"seq"' -- "$HERALD" --as e2 send "$conv" "Hi, I am e2, taking over"
h=$("$HERALD" --as e2 history "$conv" --limit 100)
grep -q '"from":"cust1","text":"hello, my order is late"' <<<"$h" && grep -q '"from":"e1","text":"let me check"' <<<"$h" &&
  ok "history preserved and visible to the new owner" || bad "history: $h"
n=$(grep -c '"text":"in flight' <<<"$h")
[ "$n" = 12 ] && ok "no message lost during the transfer" || bad "$n of 12 in-flight messages"
grep -q 'transfer.*"kind":"system"' <<<"$h" && ok "a system message tells the members" || bad "no transfer event"
expect "the customer sees the new owner" 0 '"text":"Hi, I am e2, taking over"' -- "$HERALD" --as cust1 history "$conv"
expect "contact add finds the same conversation" 0 "\"conv\":\"$conv\"" -- "$HERALD" --admin contact add e2 cust1

# --- resigned: no wait; survives a restart ---------------------------------------------
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=
start
expect "resigned: done at once" 0 '^\{"customer":"cust1","status":"done"\}$' -- "$HERALD" --admin transfer --from e2 --to e1 --customers cust1 --resigned
expect "back with e1" 0 '"owners":\["e1"\]' -- "$HERALD" --admin contact list cust1

# --- 90-day protection: two in-service transfers, the third is refused -------------------
"$HERALD" --admin transfer --from e1 --to e2 --customers cust1 >/dev/null
wait_status cust1 done --from e1 --to e2 --customers cust1 && ok "second in-service transfer" || bad "second transfer"
expect "a third in service within 90 days: refused" 0 '"customer":"cust1","status":"refused","reason":"protected_90_days"' -- "$HERALD" --admin transfer --from e2 --to e1 --customers cust1
expect "still with e2" 0 '"owners":\["e2"\]' -- "$HERALD" --admin contact list cust1

# --- customer groups ----------------------------------------------------------------------
"$HERALD" --as e2 conv create --kind customer_group --members e2,cust1,cust3 --id cg1 >/dev/null
expect "group handed over" 0 '^\{"group":"cg1","status":"done"\}$' -- "$HERALD" --admin transfer --from e2 --to e3 --groups cg1
expect "the taker owns the group, the old owner stays (in service)" 0 '"owner":"e3","members":\["cust1","cust3","e2","e3"\]' -- "$HERALD" --admin conv info cg1
expect "not the owner: no record" 0 '"group":"cg1","status":"no_record","reason":"not_owner"' -- "$HERALD" --admin transfer --from e1 --to e2 --groups cg1
expect "resigned: the old owner leaves the group" 0 '"group":"cg1","status":"done"' -- "$HERALD" --admin transfer --from e2 --to e3 --groups cg1 --resigned
expect "gone from the group" 0 '"members":\["cust1","cust3","e3"\]' -- "$HERALD" --admin conv info cg1
# A full customer group: the taker cannot join; the answer says why.
"$HERALD" --as e3 conv create --kind customer_group --members "e3,$(seq -f 'm%g' 1 499 | paste -sd,)" --id cg500 >/dev/null
expect "a full group: refused, with the cap named" 0 '^\{"group":"cg500","status":"refused","reason":"member_cap_exceeded","text":"customer groups hold at most 500 members"\}$' -- "$HERALD" --admin transfer --from e3 --to e1 --groups cg500

kill -TERM "$pid"; wait "$pid" && ok "clean exit" || bad "exit status"; pid=
echo "$fails failure(s)"
[ "$fails" = 0 ]
