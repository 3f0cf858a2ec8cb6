#!/usr/bin/env bash
# it_directory.sh HERALDD HERALD — the directory (departments, internal and
# external users, admin-only changes), the broker-stamped certified identity
# on employees' messages to conversations with customers, and receipts kept
# internal. Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
. "$(dirname "$0")/lib.sh"
it_init dir
start

expect "dept add" 0 '"dept":"sales","name":"Sales","parent":""' -- "$HERALD" --admin dir dept add sales --name Sales
expect "sub-dept" 0 '"parent":"sales"' -- "$HERALD" --admin dir dept add east --name "East region" --parent sales
expect "unknown parent" 1 'NOT_FOUND' -- "$HERALD" --admin dir dept add west --parent nowhere
expect "no cycles" 1 'INVAL' -- "$HERALD" --admin dir dept add sales --parent east
expect "admins only" 1 'FORBIDDEN' -- "$HERALD" --as bob dir dept add ops
expect "employee" 0 '"user":"alice","kind":"internal","name":"Alice Li","title":"Account Manager","dept":"east"' -- \
  "$HERALD" --admin dir user add alice --kind internal --dept east --title "Account Manager" --name "Alice Li"
expect "customer" 0 '"kind":"external"' -- "$HERALD" --admin dir user add cust1 --kind external --name "Customer One"
expect "bad kind" 2 "unknown --kind 'contractor' \(valid: internal, external\)" -- "$HERALD" --admin dir user add x --kind contractor
expect "unknown dept" 1 'NOT_FOUND' -- "$HERALD" --admin dir user add y --kind internal --dept nope
expect "show" 0 '"title":"Account Manager"' -- "$HERALD" --as bob dir user show alice
expect "not in the directory: internal, named by id" 0 '"user":"zed","kind":"internal","name":"zed"' -- "$HERALD" --as bob dir user show zed
expect "dept show" 0 '"name":"East region"' -- "$HERALD" --as bob dir dept show east

"$HERALD" --as alice conv create --kind customer_group --members alice,bob,cust1 --id cg >/dev/null
"$HERALD" --as alice conv create --kind group --members alice,bob --id team >/dev/null
"$HERALD" --as alice send cg "Welcome! I am your account manager." >/dev/null
"$HERALD" --as cust1 send cg "Thanks" >/dev/null
"$HERALD" --as alice send team "internal note" >/dev/null
h=$("$HERALD" --as cust1 history cg)
grep -q '"from":"alice","text":"Welcome! I am your account manager.".*"identity":{"corp":"demo","title":"Account Manager"}' <<<"$h" && ok "certified identity on the employee's message" || bad "identity: $h"
grep '"from":"cust1"' <<<"$h" | grep -q identity && bad "a customer got an identity" || ok "customers are not certified"
"$HERALD" --as bob history team | grep -q identity && bad "identity in an internal group" || ok "no identity among employees"
seq=$("$HERALD" --as alice history cg | tail -n 1 | sed -n 's/.*"seq":\([0-9]*\).*/\1/p')
expect "receipts stay internal where customers are" 1 'FORBIDDEN' -- "$HERALD" --as alice receipts cg "$seq"
expect "receipts among employees" 0 '"read"' -- "$HERALD" --as alice receipts team 1
# --- external contacts -----------------------------------------------------------
out=$("$HERALD" --admin contact add alice cust1); conv=$(sed -n 's/.*"conv":"\([^"]*\)".*/\1/p' <<<"$out")
[ -n "$conv" ] && ok "contact add prints the 1:1 conversation" || bad "contact add: $out"
expect "adding again finds it" 0 "\"conv\":\"$conv\"" -- "$HERALD" --admin contact add alice cust1
expect "owners" 0 '"customer":"cust1","owners":\["alice"\]' -- "$HERALD" --as alice contact list cust1
expect "customer must be external" 1 'INVAL' -- "$HERALD" --admin contact add alice bob
expect "owner must be an employee" 1 'INVAL' -- "$HERALD" --admin contact add cust1 cust1
expect "admins only" 1 'FORBIDDEN' -- "$HERALD" --as alice contact add alice cust1
expect "conversation of two" 0 '"kind":"single".*"members":\["alice","cust1"\]' -- "$HERALD" --as alice conv info "$conv"
"$HERALD" --as alice send "$conv" "Hello from Acme" >/dev/null
h=$("$HERALD" --as cust1 history "$conv")
grep -q '"text":"Hello from Acme".*"identity":{"corp":"demo","title":"Account Manager"}' <<<"$h" && ok "the customer sees the certified identity" || bad "contact identity: $h"

# --- customer tags -------------------------------------------------------------
expect "tag add" 0 '"customer":"cust1","tags":\["gold","vip"\]' -- "$HERALD" --admin tag add cust1 vip,gold
expect "tag remove" 0 '"tags":\["vip"\]' -- "$HERALD" --admin tag remove cust1 gold
expect "tag list" 0 '"tags":\["vip"\]' -- "$HERALD" --as alice tag list cust1
expect "tags only on customers" 1 'INVAL' -- "$HERALD" --admin tag add alice vip
expect "tags need admin" 1 'FORBIDDEN' -- "$HERALD" --as alice tag add cust1 vip
expect "bad tag id" 2 "invalid id 'no spaces' among the tags" -- "$HERALD" --admin tag add cust1 "no spaces"

# --- mass messages by tag: through the owners, once a day ----------------------
"$HERALD" --admin dir user add cust2 --kind external >/dev/null
"$HERALD" --admin dir user add cust3 --kind external >/dev/null
"$HERALD" --admin contact add bob cust2 >/dev/null
"$HERALD" --admin tag add cust2 vip >/dev/null
"$HERALD" --admin tag add cust3 vip,gold >/dev/null
expect "mass send" 0 '"id":"spring","sent":2,"reached":\["cust1","cust2"\],"limited":\[\],"missed":\["cust3"\],"invalidtag":\[\]' -- \
  "$HERALD" --admin mass send --tags vip,gold --id spring "Spring offer: 20% off"
h=$("$HERALD" --as cust1 history "$conv")
grep -q '"from":"alice","text":"Spring offer: 20% off".*"identity":{"corp":"demo"' <<<"$h" && ok "mass message arrives through the owner, certified" || bad "mass delivery: $h"
expect "retrying the same id is exactly-once" 0 '"id":"spring","sent":2,"reached":\["cust1","cust2"\]' -- \
  "$HERALD" --admin mass send --tags vip --id spring "Spring offer: 20% off"
n=$("$HERALD" --as cust1 history "$conv" | grep -c 'Spring offer')
[ "$n" = 1 ] && ok "no duplicate after the retry" || bad "$n copies after retry"
expect "one mass message per customer per day" 0 '"reached":\[\],"limited":\["cust1","cust2"\],"missed":\["cust3"\]' -- \
  "$HERALD" --admin mass send --tags vip --id summer "Summer offer"
expect "mass status" 0 '"id":"spring","reached":\["cust1","cust2"\],"limited":\[\],"missed":\["cust3"\]' -- "$HERALD" --admin mass status spring
expect "mass needs admin" 1 'FORBIDDEN' -- "$HERALD" --as alice mass send --tags vip "x"
expect "mass: unknown tags are listed" 0 '"reached":\[\],"limited":\["cust1","cust2"\],"missed":\["cust3"\],"invalidtag":\["nosuch","bronze"\]' -- \
  "$HERALD" --admin mass send --tags nosuch,vip,bronze --id autumn "Autumn offer"
expect "mass: no valid tag is INVAL" 1 'INVAL: no customer carries any of the tags: nosuch,bronze' -- \
  "$HERALD" --admin mass send --tags nosuch,bronze "Nobody"
expect "unknown mass id" 1 'NOT_FOUND' -- "$HERALD" --admin mass status nope

kill -TERM "$pid"; wait "$pid" && ok "clean exit" || bad "exit status"; pid=
echo "$fails failure(s)"
[ "$fails" = 0 ]
