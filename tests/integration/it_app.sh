#!/usr/bin/env bash
# it_app.sh HERALDD HERALD — app messages and announcements (WeCom's
# message/send): users / departments (with sub-departments) / tags / @all,
# per-recipient results with the invalid ids, the duplicate window by
# message id, the per-member per-app frequency cap that says no clearly,
# and delivery into each user's app conversation (push and history). Every
# wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
. "$(dirname "$0")/lib.sh"
it_init app
printf 'tenant.app_freq_per_min = 3\ntenant.app_dedup_s = 3\n' >"$dir/h.conf"
start
[ -f "$dir/dev.env" ] || { echo "heraldd did not start"; cat "$dir/heraldd.log"; exit 1; }
set -a; . "$dir/dev.env"; set +a

for a in "dir dept add eng" "dir dept add backend --parent eng" "dir dept add sales" \
         "dir user add alice --kind internal --dept backend" "dir user add bob --kind internal --dept eng" \
         "dir user add carol --kind internal --dept sales" "dir user add cust1 --kind external" \
         "tag add cust1 vip"; do
  # shellcheck disable=SC2086
  "$HERALD" --admin $a >/dev/null || bad "setup: $a"
done
timeout 15 "$HERALD" --as alice sub --count 2 --timeout 12 >"$dir/alice.sub" 2>&1 &
sub=$!
sleep 0.5

# --- recipients and per-recipient results ----------------------------------------
expect "users, with the invalid listed" 0 '"id":"m1","app":"hr","dup":false,"stored":2,"reached":\["alice","carol"\],"limited":\[\],"invaliduser":\["ghost"\]' -- \
  "$HERALD" --admin app send --app hr --users alice,carol,ghost --id m1 "Payday is Friday"
expect "a malformed user id is a usage error" 2 "invalid id 'bad id' among the users" -- \
  "$HERALD" --admin app send --app hr --users alice,"bad id" --id m0 "Payday is Friday"
expect "departments include sub-departments" 0 '"reached":\["alice","bob"\],"limited":\[\],"invaliduser":\[\],"invalidparty":\["nowhere"\]' -- \
  "$HERALD" --admin app send --app hr --depts eng,nowhere "Eng all-hands at 3"
expect "tags" 0 '"reached":\["cust1"\],.*"invalidtag":\["nobody-has-it"\]' -- \
  "$HERALD" --admin app send --app crm --tags vip,nobody-has-it "Your order shipped"
expect "@all is every employee" 0 '"reached":\["alice","bob","carol"\]' -- \
  "$HERALD" --admin app send --app it --users @all "Maintenance tonight"
expect "nobody valid: a clear no" 1 'INVAL: no valid recipient' -- \
  "$HERALD" --admin app send --app hr --users ghost "x"
expect "admins only" 1 'FORBIDDEN' -- "$HERALD" --as alice app send --app hr --users bob "x"
expect "at most 1,000 users" 2 'at most 1000 users' -- \
  "$HERALD" --admin app send --app hr --users "$(seq -s, 1001)" "x"
expect "window at most 4 h" 2 'at most 14400' -- \
  "$HERALD" --admin app send --app hr --users bob --window 14401 "x"
expect "bad app id" 2 "invalid app id 'h r'" -- "$HERALD" --admin app send --app "h r" --users bob "x"
wait $sub
grep -q '"from":"app:hr","text":"Payday is Friday"' "$dir/alice.sub" && ok "pushed to the user from the app" || bad "push: $(cat "$dir/alice.sub")"

# --- the app's conversation with the user: history ------------------------------
conv=$(grep -o '"conv":"ap-[0-9a-f]*"' "$dir/alice.sub" | head -1 | cut -d'"' -f4)
h=$("$HERALD" --as alice history "$conv")
grep -q 'Payday is Friday' <<<"$h" && grep -q 'Eng all-hands' <<<"$h" && ok "history of the app conversation" || bad "history ($conv): $h"
expect "others cannot read it" 1 'NOT_MEMBER' -- "$HERALD" --as bob history "$conv"

# --- duplicate check by message id (window 3 s here) ------------------------------
expect "a retry within the window is a duplicate" 0 '"id":"m1","app":"hr","dup":true,"stored":2,"reached":\["alice","carol"\]' -- \
  "$HERALD" --admin app send --app hr --users alice,carol,ghost --id m1 "Payday is Friday"
n=$("$HERALD" --as alice history "$conv" | grep -c 'Payday is Friday')
[ "$n" = 1 ] && ok "no second copy" || bad "$n copies"
expect "the same id in another app is another message" 0 '"dup":false' -- \
  "$HERALD" --admin app send --app it --users carol --id m1 "other app"
sleep 3.2
expect "after the window the id is new again" 0 '"id":"m1","app":"hr","dup":false,"stored":1' -- \
  "$HERALD" --admin app send --app hr --users carol --id m1 "Payday is Friday"
expect "a request's own shorter window" 0 '"dup":false' -- \
  "$HERALD" --admin app send --app it --users carol --id m1 --window 1 "other app"

# --- frequency cap: 3 per member per app per minute here --------------------------
"$HERALD" --admin app send --app ops --users bob "1" >/dev/null
"$HERALD" --admin app send --app ops --users bob "2" >/dev/null
expect "third still fits" 0 '"reached":\["bob","carol"\]' -- "$HERALD" --admin app send --app ops --users bob,carol "3"
expect "over the cap: listed as limited" 0 '"reached":\["carol"\],"limited":\["bob"\]' -- \
  "$HERALD" --admin app send --app ops --users bob,carol "4"
expect "everyone over the cap: RATE_LIMITED" 1 'RATE_LIMITED: frequency cap: every recipient already got 3 messages from app ops this minute' -- \
  "$HERALD" --admin app send --app ops --users bob "5"
expect "the cap is per app" 0 '"reached":\["bob"\]' -- "$HERALD" --admin app send --app hr --users bob "from hr"

# --- announcements: one read-diffused conversation for everyone --------------------
out=$("$HERALD" --admin app announce --app hr --depts eng --users carol --id ann1 "Quarterly results")
aconv=$(sed -n 's/.*"conv":"\([^"]*\)".*/\1/p' <<<"$out")
grep -q '"stored":1,"reached":\["alice","bob","carol"\]' <<<"$out" && [ -n "$aconv" ] && ok "announcement" || bad "announce: $out"
expect "the announcement is an announce conversation" 0 '"kind":"announce".*"members":\["alice","app:hr","bob","carol"\]' -- \
  "$HERALD" --admin conv info "$aconv"
expect "members read it" 0 'Quarterly results' -- "$HERALD" --as carol history "$aconv"
expect "announcement retry is a duplicate" 0 "\"conv\":\"$aconv\",\"dup\":true" -- \
  "$HERALD" --admin app announce --app hr --depts eng --users carol --id ann1 "Quarterly results"
n=$("$HERALD" --as carol history "$aconv" | grep -c 'Quarterly results')
[ "$n" = 1 ] && ok "one announcement after the retry" || bad "$n announcements"

kill -TERM "$pid"; wait "$pid" && ok "clean exit" || bad "exit status"; pid=
echo "$fails failure(s)"
[ "$fails" = 0 ]
