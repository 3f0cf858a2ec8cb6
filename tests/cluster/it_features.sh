#!/usr/bin/env bash
# it_features.sh BIN_DIR — the enterprise features on the 3-node cluster,
# across leader failovers: directory and certified identity, external
# contacts, tags, receipts, urgent (DING) messages whose reminder schedule
# keeps running after the conversation's group leader is killed -9, recall,
# do-not-disturb, mass messages, app messages and a resigned customer
# transfer after the meta group's leader is killed -9. Every state written
# before a kill is read back after it from the new leader. Bounded waits;
# the cluster is always brought down.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_features.sh BIN_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
H=$BIN_DIR/herald
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}

dir=$(mktemp -d /tmp/herald-features-XXXXXX)
fails=0
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT
expect() {
  local name=$1 want=$2 pat=$3; shift 4
  local out rc
  out=$(timeout 20 "$@" 2>&1); rc=$?
  if [ "$rc" = "$want" ] && grep -qE -- "$pat" <<<"$out"; then ok "$name"
  else bad "$name (rc=$rc, want $want, /$pat/): $out"; fi
}
# Retries a command until it succeeds and matches (the cluster may still be
# electing after a kill); 30 s at most.
eventually() {
  local name=$1 pat=$2; shift 3
  local out=""
  for _ in $(seq 60); do
    out=$(timeout 10 "$@" 2>&1) && grep -qE -- "$pat" <<<"$out" && { ok "$name"; return 0; }
    sleep 0.5
  done
  bad "$name (/$pat/): $out"
}
leader_of_group() {
  "$H" --admin admin status | python3 -c "
import json, sys
d = json.load(sys.stdin)
print(next(g['leader'] for g in d['groups'] if g['group'] == $1))"
}
kill_restart() { # NODE
  timeout 30 bash "$LC" kill "$1" --data "$dir" >/dev/null
  sleep 3 # an election timeout and then some: the survivors elect
  timeout 90 bash "$LC" restart "$1" --data "$dir" >/dev/null || bad "restart node $1"
}

# A cluster whose tenant reminds every second (tenant settings apply to
# tenants created afterwards: configure, wipe, start again).
timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
rm -rf "$dir"/node1 "$dir"/node2 "$dir"/node3
for n in 1 2 3; do
  printf 'tenant.urgent_interval_s = 1\ntenant.urgent_max_reminders = 5\n' >>"$dir/node$n.conf"
done
timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not restart"; exit 1; }
set -a; . "$dir/cluster.env"; set +a
ok "cluster up"

# --- state written before any failover -------------------------------------
expect "dir dept add" 0 '"dept":"sales"' -- "$H" --admin dir dept add sales --name Sales
expect "dir user add (employee)" 0 '"title":"Account Manager"' -- \
  "$H" --admin dir user add alice --kind internal --dept sales --title "Account Manager" --name Alice
expect "dir user add (customer)" 0 '"kind":"external"' -- "$H" --admin dir user add cust1 --kind external
expect "dir user add (taker)" 0 '"kind":"internal"' -- "$H" --admin dir user add dave --kind internal
ccv=$("$H" --admin contact add alice cust1 | sed -n 's/.*"conv":"\([^"]*\)".*/\1/p')
[ -n "$ccv" ] && ok "contact add: $ccv" || bad "contact add"
expect "tag add" 0 'vip' -- "$H" --admin tag add cust1 vip
expect "group create" 0 '"id":"war-room"' -- \
  "$H" --as alice conv create --kind group --members alice,bob,carol --id war-room
useq=$("$H" --as alice send war-room "all hands: incident" --urgent | sed -n 's/.*"seq":\([0-9]*\).*/\1/p')
[ -n "$useq" ] && ok "urgent send: seq $useq" || bad "urgent send"
expect "read (receipt)" 0 '"seq"' -- "$H" --as carol read war-room "$useq"

# --- kill -9 the leader of war-room's group --------------------------------
grp=$("$H" --as alice conv info war-room | sed -n 's/.*"group":\([0-9]*\).*/\1/p')
ldr=$(leader_of_group "$grp")
echo "# war-room is in group $grp, led by node $ldr: kill -9"
kill_restart "$ldr"
eventually "urgent state after failover" '"pending":\["bob","carol"\]|"pending":\["bob"\]' -- \
  "$H" --as alice urgent-status war-room "$useq"
# Reminders continue: the schedule is replicated state, proposed by whoever leads now.
out=$(timeout 20 "$H" --as bob sub --count 1 --timeout 15 2>&1)
grep -q '"type":"remind"' <<<"$out" && ok "reminder after failover: $out" || bad "no reminder after failover: $out"
expect "confirm after failover" 0 '"seq"' -- "$H" --as bob confirm war-room "$useq"
eventually "urgent-status shows bob confirmed" '"confirmed":\[[^]]*"bob"' -- \
  "$H" --as alice urgent-status war-room "$useq"
expect "receipts kept across failover" 0 '"read":\[[^]]*"carol"' -- "$H" --as alice receipts war-room "$useq"
rseq=$("$H" --as bob send war-room "wrong channel, sorry" | sed -n 's/.*"seq":\([0-9]*\).*/\1/p')
expect "recall" 0 '"seq"' -- "$H" --as bob recall war-room "$rseq"
eventually "history shows the tombstone" '"recalled":true' -- "$H" --as carol history war-room --after $((rseq - 1))

# --- kill -9 the meta group's leader ---------------------------------------
ldr=$(leader_of_group 0)
echo "# the meta group is led by node $ldr: kill -9"
kill_restart "$ldr"
eventually "directory after failover" '"title":"Account Manager"' -- "$H" --as bob dir user show alice
eventually "contacts after failover" 'alice' -- "$H" --admin contact list cust1
eventually "tags after failover" 'vip' -- "$H" --admin tag list cust1
expect "certified identity on the customer conversation" 0 '"seq"' -- \
  "$H" --as alice send "$ccv" "hello from your account manager"
eventually "identity stamped by the broker" '"identity":\{[^}]*"title":"Account Manager"' -- \
  "$H" --as cust1 history "$ccv"
expect "dnd on" 0 '"dnd":true|"until"' -- "$H" --as bob dnd on --until +1h
eventually "dnd status after the meta failover" '"dnd":true|"until":[1-9]' -- "$H" --as bob dnd status
expect "mass message by tag" 0 '"reached":\["cust1"\]' -- "$H" --admin mass send --tags vip "spring offer"
expect "app message" 0 '"reached":\["alice"\]' -- "$H" --admin app send --app hr --users alice "payday"
expect "resigned transfer" 0 '"status":"done"' -- \
  "$H" --admin transfer --from alice --to dave --customers cust1 --resigned
eventually "the taker sends in the customer conversation" '"seq"' -- \
  "$H" --as dave send "$ccv" "I take over from Alice"
expect "the old owner can no longer send" 1 'NOT_MEMBER|FORBIDDEN' -- \
  "$H" --as alice send "$ccv" "still here?"
expect "history kept for the taker" 0 'hello from your account manager' -- "$H" --as dave history "$ccv"
# A new device of the taker lists its conversations (over every shard
# group): the customer's, newest first, with its last message.
eventually "conversation list of the taker" "\"conv\":\"$ccv\".*I take over from Alice" -- \
  "$H" --as dave convs
expect "conversation list: a bad cursor" 1 'INVAL' -- "$H" --as carol convs --after nonsense

exit $((fails > 0))
