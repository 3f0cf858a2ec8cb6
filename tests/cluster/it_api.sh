#!/usr/bin/env bash
# it_api.sh BIN_DIR — the open API through the cluster's gateway: apps
# registered with the CLI, api_check.py over every route (each call
# forwarded to the node leading its group, the token verified there); then
# kill -9 of the meta group's leader (where apps, tokens and the directory
# live) while calls keep coming: POST /token and message/send answer once a
# new leader is elected, nothing acknowledged is lost (the directory entry
# written before the kill is read back after it). Bounded waits; the
# cluster is always brought down.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_api.sh BIN_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
HERALD=$BIN_DIR/herald
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}
dir=$(mktemp -d /tmp/herald-capi-XXXXXX)
fails=0
cleanup() {
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT
cli() { (set -a; . "$dir/cluster.env"; set +a; HERALD_TOKEN="" timeout 20 "$HERALD" --timeout 10 "$@"); }
leader_of() { local l; l=$(status_py 'int(grp(a[0]).get("leader") or 0)' "$1"); echo "${l:-0}"; }

timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
set -a; . "$dir/cluster.env"; set +a
U=$HERALD_HTTP
ok "cluster up: gateway HTTP $U"
for _ in $(seq 120); do all_led && break; sleep 0.5; done
all_led && ok "every group has a leader" || bad "no leader in some group"
cli --admin app create hr --scopes message,directory,contact,transfer,conversation,user_token \
  >"$dir/hr.json" && ok "app create hr (through the gateway)" || bad "app create hr"
cli --admin app create bot --scopes message >"$dir/bot.json" || bad "app create bot"
ADMIN=$(cli --admin token --user ops) APPCRED=$(cat "$dir/hr.json") NARROW=$(cat "$dir/bot.json") \
  timeout 240 python3 "$root/tests/integration/api_check.py" "$U" >"$dir/check.out" 2>&1
rc=$?
echo "api_check: $(grep -c '^ok' "$dir/check.out") ok lines"
grep '^FAIL' "$dir/check.out"
[ $rc = 0 ] && ok "api_check: every route through the gateway" || bad "api_check (rc $rc)"

# Failover of the meta group (0): apps, tokens and the directory.
tok() { curl -s -m 20 -X POST "$U/api/v1/token" -d @"$dir/hr.json" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'; }
T=$(tok)
code=$(curl -s -m 20 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T" \
  -d '{"userid":"before","kind":"internal","name":"Before"}' "$U/api/v1/user/create")
[ "$code" = 200 ] && ok "user/create before the kill" || bad "user/create: $code"
L=$(leader_of 0)
(( L > 0 )) && bash "$LC" kill "$L" --data "$dir" >/dev/null 2>&1 \
  && ok "kill -9 node $L, leader of the meta group" || bad "kill leader $L"
t0=$SECONDS
got=""
while (( SECONDS - t0 < 40 )); do
  got=$(tok); [ -n "$got" ] && break; sleep 0.5
done
[ -n "$got" ] && ok "POST /token answers again after $(( SECONDS - t0 )) s" || bad "no token after the kill"
out=$(curl -s -m 30 -H "Authorization: Bearer $got" "$U/api/v1/user/get?userid=before")
grep -q '"name":"Before"' <<<"$out" && ok "the acknowledged user is there after failover" \
  || bad "user/get after failover: $out"
out=$(curl -s -m 30 -X POST -H "Authorization: Bearer $got" "$U/api/v1/message/send" \
  -d '{"touser":"before","agentid":"hr","msgtype":"text","text":{"content":"after failover"}}')
grep -q '"sent":1' <<<"$out" && ok "message/send after failover" || bad "message/send: $out"
out=$(curl -s -m 20 -H "Authorization: Bearer $T" "$U/api/v1/user/get?userid=before")
grep -q '"errcode":0' <<<"$out" && ok "the token minted before the kill still works" \
  || bad "old token: $out"
echo "$fails failures"
[ $fails = 0 ]
