#!/usr/bin/env bash
# it_catchup.sh BIN_DIR — replication never stalls on large messages, on the
# 3-node cluster (deploy/local-cluster.sh):
#   1. no fault: one client pipelines 1 MB SENDs (8 in flight); every
#      replica of the conversation's group reaches the commit index;
#   2. a follower of that group is killed -9 while 250 acked 1 MB messages
#      go to the group (250 MB, about 4 x the 64 MiB raft message cap), then
#      restarted: it catches up (lag 0) within the deadline, through the
#      leader's store streamed as a snapshot (the defaults keep ~64 MB of
#      log per group);
#   3. the same with raft.log_bytes 16G on every node: the backlog goes as
#      AppendEntries cut under the cap, no snapshot;
# and no node ever logged rio.toobig (a raft message refused as too big).
# Prints the catch-up figures. Bounded waits; the cluster is always brought
# down; DIR is kept on failure.
# IT_CATCHUP_MSGS / IT_CATCHUP_BYTES change the shape of step 2.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_catchup.sh BIN_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
LC=$root/deploy/local-cluster.sh
H=$BIN_DIR/herald
MSGS=${IT_CATCHUP_MSGS:-250}
BYTES=${IT_CATCHUP_BYTES:-1000000}
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}
command -v python3 >/dev/null || { echo "FAIL - python3 is needed"; exit 1; }

dir=$(mktemp -d /tmp/herald-catchup-XXXXXX)
fails=0
cleanup() {
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ] && [ -z "${IT_KEEP:-}" ]; then rm -rf "$dir"
  else echo "data and logs kept in $dir"; fi
}
trap cleanup EXIT
note() { echo "# $*"; }
lc() { timeout -k 5 150 bash "$LC" "$@" --data "$dir"; }
cli() { (set -a; . "$dir/cluster.env"; set +a; HERALD_TOKEN="" timeout 20 "$H" --timeout 10 "$@"); }

# every replica of group $1 has lag 0 (and the leader reports all three)
all_caught_up() {
  [ "$(status_py '1 if len(grp(a[0]).get("replicas") or []) == 3 and all(int(r.get("lag", 1)) == 0 for r in grp(a[0])["replicas"]) else 0' "$1")" = 1 ]
}
wait_for() { # SECONDS CMD…: polls every 0.5 s
  local end=$(( SECONDS + $1 )); shift
  while (( SECONDS < end )); do "$@" && return 0; sleep 0.5; done
  return 1
}
toobig() { grep -l '"rio.toobig"' "$dir"/*.log 2>/dev/null | wc -l; }

note "local-cluster.sh up --data $dir"
lc up >"$dir/up.out" 2>&1 || { cat "$dir/up.out"; bad "local-cluster.sh up"; exit 1; }
# One client sends 1 MB messages back to back: lift its byte rate.
echo "gateway.byte_rate = 1G" >>"$dir/gateway.conf"
lc restart gateway >>"$dir/up.out" 2>&1 || { cat "$dir/up.out"; bad "gateway restart"; exit 1; }
wait_for 60 all_led || { bad "no leader in every group"; exit 1; }
ok "cluster up, every group has a leader"

out=$(cli --as alice conv create --kind group --members alice,bob --id big-room 2>&1)
grep -q '"id":"big-room"' <<<"$out" || { bad "conv create: $out"; exit 1; }
info=$(cli --as alice conv info big-room 2>&1)
group=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("group",""))' "$info" 2>/dev/null)
tok=$(cli token --user alice 2>&1 | tail -n 1)
gw=$(sed -n 's/^HERALD_GATEWAY=//p' "$dir/cluster.env")

# --- 1. no fault ------------------------------------------------------------------
res=$(timeout 300 python3 "$here/bigsend.py" "$gw" "$tok" big-room 60 "$BYTES" 8 2>&1)
if grep -q '^acked 60 of 60' <<<"$res"; then ok "no fault: $res"; else bad "no fault: $res"; fi
if [ -z "$group" ]; then # conv info names no group: the shard group that committed the most
  group=$(status_py 'max((x for x in groups if int(x["group"]) != 0), key=lambda x: int(x.get("commit") or 0))["group"]')
fi
[ -n "$group" ] || { bad "no group for big-room"; exit 1; }
ok "big-room is in group $group"
if wait_for 60 all_caught_up "$group"; then ok "no fault: every replica of group $group at lag 0"
else bad "no fault: a replica of group $group lags: $(status_py 'grp(a[0]).get("replicas")' "$group")"; fi

# --- 2. a follower down while MSGS x BYTES are acked ----------------------------------
expands() { grep -h '"fsm.expand"' "$dir"/*.log 2>/dev/null | wc -l; }
catchup() { # LABEL: kill a follower of the group, send, restart it, wait for lag 0
  local leader follower res behind t0
  leader=$(status_py 'int(grp(a[0]).get("leader") or 0)' "$group")
  follower=1
  while [ "$follower" = "$leader" ]; do follower=$(( follower + 1 )); done
  lc kill "$follower" >/dev/null && ok "$1: kill -9 follower node $follower (group $group led by $leader)" \
    || bad "$1: kill node $follower"
  res=$(timeout 600 python3 "$here/bigsend.py" "$gw" "$tok" big-room "$MSGS" "$BYTES" 8 2>&1)
  if grep -q "^acked $MSGS of $MSGS" <<<"$res"; then ok "$1: follower down: $res"
  else bad "$1: follower down: $res"; fi
  behind=$(status_py 'lag(a[0], a[1])' "$group" "$follower")
  note "node $follower is $behind entries behind in group $group"
  lc restart "$follower" >/dev/null && ok "$1: node $follower restarted" || bad "$1: restart node $follower"
  t0=$SECONDS
  if wait_for 180 all_caught_up "$group"; then
    ok "$1: node $follower caught up in group $group: $behind entries ($MSGS x $BYTES bytes) in $(( SECONDS - t0 )) s (status polled every 0.5 s)"
  else
    bad "$1: node $follower did not catch up within 180 s: $(status_py 'grp(a[0]).get("replicas")' "$group")"
  fi
}
# At the defaults (raft.log_bytes 64M: a group keeps ~64 MB of log after a
# snapshot) the follower is further behind than any leader's log: it gets
# the store, streamed in chunks (the snapshot is a reference until a peer
# needs it; the leader serializes its store then).
e0=$(expands)
catchup "snapshot"
if (( $(expands) > e0 )); then ok "snapshot: the leader sent its store ($(grep -h '"fsm.expand"' "$dir"/*.log | tail -n 1 | sed 's/.*"msg":"//; s/"}$//'))"
else bad "snapshot: no fsm.expand logged: the catch-up did not go through a snapshot"; fi

# --- 3. the same with every entry still in the leader's log: AppendEntries --------
# cut under the transport cap carry the whole backlog.
for n in 1 2 3; do echo "raft.log_bytes = 16G" >>"$dir/node$n.conf"; done
for n in 1 2 3; do lc restart "$n" >/dev/null || bad "restart node $n with raft.log_bytes 16G"; done
wait_for 60 all_led || bad "no leader in every group after the restarts"
wait_for 60 all_caught_up "$group" || bad "group $group not caught up after the restarts"
e0=$(expands)
catchup "log"
if (( $(expands) == e0 )); then ok "log: no snapshot was sent (the backlog went as AppendEntries)"
else bad "log: a snapshot was sent although the leader kept the whole log"; fi

n=$(toobig)
if [ "$n" = 0 ]; then ok "no raft message refused as too big (rio.toobig) in any log"
else bad "rio.toobig in $n logs: $(grep -h '"rio.toobig"' "$dir"/*.log | tail -n 3)"; fi
grep -h '"rio.snap' "$dir"/*.log | tail -n 5

[ $fails = 0 ] && echo "PASS - it_catchup" || echo "FAIL - it_catchup ($fails)"
exit $(( fails > 0 ))
