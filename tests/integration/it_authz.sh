#!/usr/bin/env bash
# it_authz.sh HERALDD HERALD — who may do what, through the CLI: server-derived
# conversation ids are reserved (a user pre-creating a contact's ec- id or an
# app's ap- id is refused, and contact add never records a contact onto a
# conversation that is not theirs), the authorization table driven for every
# role (tenant admin, employee, external customer, app) over a representative
# set of verbs, allowed and refused; receipts and certified identity follow a
# member's kind now, not at join; the corp of a certified identity is the
# tenant's display name. Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
. "$(dirname "$0")/lib.sh"
it_init authz
printf 'tenant.display_name = Acme Trading\n' >"$dir/h.conf"
start

for a in "dir dept add sales --name Sales" \
         "dir user add alice --kind internal --dept sales --title Manager --name Alice" \
         "dir user add bob --kind internal --dept sales" "dir user add mallory --kind internal" \
         "dir user add cust1 --kind external --name C1" "dir user add cust2 --kind external" \
         "dir user add cust3 --kind external"; do
  # shellcheck disable=SC2086
  "$HERALD" --admin $a >/dev/null || bad "setup: $a"
done

# --- D1: the contact conversation of (alice, cust1) cannot be squatted ----------------
# Its id is ec- + 16 hex digits of BLAKE2b-64("alice\0cust1"), as the gateway derives it.
ec="ec-$(printf 'alice\0cust1' | b2sum -l 64 | cut -c1-16)"
ap="ap-$(printf 'hr\0alice\0' | b2sum -l 64 | cut -c1-16)"
expect "a user cannot pre-create a contact's ec- id" 1 'INVAL: conversation ids starting with ec- / ap- / an- are reserved' -- \
  "$HERALD" --as mallory conv create --kind group --members alice,cust1 --id "$ec"
expect "nor an app's ap- id" 1 'INVAL: .*reserved' -- \
  "$HERALD" --as mallory conv create --kind single --members alice --id "$ap"
expect "not even an admin through CONV" 1 'INVAL: .*reserved' -- \
  "$HERALD" --admin conv create --kind group --members alice,cust1 --id "$ec"
out=$("$HERALD" --admin contact add alice cust1); conv=$(sed -n 's/.*"conv":"\([^"]*\)".*/\1/p' <<<"$out")
[ "$conv" = "$ec" ] && ok "contact add makes the derived conversation" || bad "contact add: $out"
expect "it holds exactly the employee and the customer" 0 '"kind":"single".*"members":\["alice","cust1"\]' -- \
  "$HERALD" --as alice conv info "$ec"
expect "mallory is not in it" 1 'NOT_MEMBER' -- "$HERALD" --as mallory history "$ec"
expect "nobody adds members to a reserved id" 1 'INVAL: .*reserved' -- \
  "$HERALD" --admin conv add "$ec" --members mallory
"$HERALD" --admin app send --app hr --users alice "hello from hr" >/dev/null
expect "nobody removes members from an app conversation" 1 'INVAL: .*reserved' -- \
  "$HERALD" --admin conv remove "$ap" --members alice
# After a resigned transfer the (alice, cust1) id holds bob: adding alice back must
# fail loudly rather than record her onto a conversation she is not in.
expect "resigned transfer" 0 '"status":"done"' -- \
  "$HERALD" --admin transfer --from alice --to bob --customers cust1 --resigned
expect "contact add onto a different conversation: EXISTS" 1 'EXISTS: the conversation id is taken by a different conversation' -- \
  "$HERALD" --admin contact add alice cust1
expect "the contact stays with bob" 0 '"owners":\["bob"\]' -- "$HERALD" --admin contact list cust1
"$HERALD" --admin transfer --from bob --to alice --customers cust1 --resigned >/dev/null
expect "back with alice: found again" 0 "\"conv\":\"$ec\"" -- "$HERALD" --admin contact add alice cust1
"$HERALD" --admin contact add bob cust2 >/dev/null || bad "setup: contact bob cust2"
"$HERALD" --admin tag add cust2 vip >/dev/null || bad "setup: tag"
"$HERALD" --admin mass send --tags vip --id m1 "offer" >/dev/null || bad "setup: mass"
"$HERALD" --as alice conv create --kind group --members alice,bob --id team >/dev/null || bad "setup: team"
"$HERALD" --as alice send team "hi team" >/dev/null || bad "setup: send team"

# --- D5: the table, every role over a representative set of verbs ---------------------
# allowed VERB… for each role: admin, employee (alice), external (cust1), app (app:hr)
role() { case $1 in admin) echo --admin;; employee) echo "--as alice";; external) echo "--as cust1";; app) echo "--as app:hr";; esac; }
check() { # check ROLE y|n NAME -- CMD…
  local r=$1 want=$2 name=$3; shift 4
  # shellcheck disable=SC2046
  if [ "$want" = y ]; then expect "$r may $name" 0 '.' -- "$HERALD" $(role "$r") "$@"
  else expect "$r may not $name" 1 'FORBIDDEN' -- "$HERALD" $(role "$r") "$@"; fi
}
matrix() { # matrix NAME admin employee external app -- CMD…
  local name=$1 a=$2 e=$3 x=$4 p=$5; shift 6
  check admin "$a" "$name" -- "$@"; check employee "$e" "$name" -- "$@"
  check external "$x" "$name" -- "$@"; check app "$p" "$name" -- "$@"
}
matrix "ping"                        y y y y -- ping
matrix "dnd status"                  y y y y -- dnd status
matrix "show the department tree"    y y n n -- dir dept show sales
matrix "show another customer"       y y n n -- dir user show cust2
matrix "list another's owners"       y y n n -- contact list cust2
matrix "list tags"                   y y n n -- tag list cust2
matrix "read mass results"           y n n n -- mass status m1
matrix "send mass messages"          y n n n -- mass send --tags vip --id m2 "x"
matrix "add to the directory"        y n n n -- dir user add zed --kind internal
matrix "add contacts"                y n n n -- contact add alice cust3
matrix "tag"                         y n n n -- tag add cust3 gold
matrix "send app messages"           y n n n -- app send --app hr --users bob "x"
matrix "read status"                 y n n n -- admin status
matrix "start transfers"             y n n n -- transfer --from bob --to alice --customers cust2 --resigned
check external y "see its own card" -- dir user show cust1
check external y "see its owner's public card" -- dir user show alice
check external y "list its own owners" -- contact list cust1
check employee y "read receipts among employees" -- receipts team 1
check external n "read receipts" -- receipts "$ec" 1
check employee y "create a group of employees" -- conv create --kind group --members alice,bob --id g2
check external n "create a group holding employees" -- conv create --kind customer_group --members cust1,alice --id g3
check external y "create a conversation with customers only" -- conv create --kind customer_group --members cust1,cust3 --id g4
check app n "create conversations" -- conv create --kind group --members alice --id g5
check external n "add members" -- conv add g4 --members alice
check external n "remove someone else" -- conv remove g4 --members cust3
expect "external may leave" 0 '"count":1' -- "$HERALD" --as cust3 conv remove g4 --members cust3
check employee n "object to a transfer" -- transfer --refuse
expect "the public card: name, title, corp, no department" 0 '^\{"user":"alice","kind":"internal","name":"Alice","title":"Manager","dept":"","corp":"Acme Trading"\}$' -- \
  "$HERALD" --as cust1 dir user show alice
expect "employees see the department" 0 '"dept":"sales","corp":"Acme Trading"' -- "$HERALD" --as bob dir user show alice
expect "externals see only conversations they belong to" 1 'NOT_MEMBER' -- "$HERALD" --as cust1 history team
expect "nor their members" 1 'NOT_MEMBER' -- "$HERALD" --as cust1 conv info team
expect "a refusal names the verb and the role" 1 'FORBIDDEN: MASS status \(role employee\): mass results need the admin role' -- \
  "$HERALD" --as alice mass status m1

# --- D6: kinds now, not at join ----------------------------------------------------
"$HERALD" --as alice conv create --kind group --members alice,bob,dave --id later >/dev/null || bad "setup: later"
"$HERALD" --as alice send later "before" >/dev/null
expect "receipts while everyone is internal" 0 '"read"' -- "$HERALD" --as alice receipts later 2
"$HERALD" --admin dir user add dave --kind external >/dev/null || bad "setup: dave external"
"$HERALD" --as alice send later "after" >/dev/null
h=$("$HERALD" --as dave history later)
grep -q '"text":"after".*"identity":{"corp":"Acme Trading","title":"Manager"}' <<<"$h" && ok "a member marked external later: employees' messages are certified" || bad "identity after reclassification: $h"
grep '"text":"before"' <<<"$h" | grep -q identity && bad "an old message got an identity" || ok "messages before keep what they had"
expect "and receipts are no longer shown" 1 'FORBIDDEN: receipts are not shown in conversations with external members' -- \
  "$HERALD" --as alice receipts later 3
timeout 10 "$HERALD" --as dave sub --count 3 --timeout 4 >"$dir/dave.sub" 2>&1 &
sub=$!
sleep 0.5
"$HERALD" --as bob read later 3 >/dev/null
"$HERALD" --as alice send later "marker" >/dev/null
wait "$sub"
grep -q '"text":"marker"' "$dir/dave.sub" && ok "dave's session got the marker" || bad "dave sub: $(cat "$dir/dave.sub")"
grep -q '"receipt"\|"reader"' "$dir/dave.sub" && bad "a receipt reached a member marked external: $(cat "$dir/dave.sub")" || ok "no receipt events to a member marked external"
"$HERALD" --admin dir user add dave --kind internal >/dev/null
"$HERALD" --as alice send later "internal again" >/dev/null
"$HERALD" --as dave history later | grep '"text":"internal again"' | grep -q identity && bad "identity after dave became internal again" || ok "back to internal: no identity"
expect "back to internal: receipts again" 0 '"read"' -- "$HERALD" --as alice receipts later 5

stop && ok "clean exit" || bad "exit status"
echo "$fails failure(s)"
[ "$fails" = 0 ]
