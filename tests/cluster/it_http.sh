#!/usr/bin/env bash
# it_http.sh BIN_DIR — the HTTP endpoints of the 3-node cluster
# (deploy/local-cluster.sh gives the gateway and every node a free HTTP
# port, in cluster.env): /metrics of the gateway and of each node through
# `promtool check metrics` and the strict parser; per group term, commit,
# applied, a leader on exactly one node, replica lag, the raft log commit
# histogram and store maps; the gateway's forwarded-requests counter moving
# after CLI sends; /readyz 200 everywhere; then two nodes killed -9: the
# gateway's /readyz 503 "no majority of nodes reachable", the survivor's 503
# (no quorum / no leader), /healthz still 200; the cluster is always
# brought down. Bounded waits.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_http.sh BIN_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
CHECK=$root/tests/integration/http_check.py
H=$BIN_DIR/herald
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}
command -v promtool >/dev/null || { echo "FAIL - promtool is needed (Debian prometheus, deploy/deps.sh)"; exit 1; }

dir=$(mktemp -d /tmp/herald-http-XXXXXX)
fails=0
cleanup() {
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT

timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
set -a; . "$dir/cluster.env"; set +a
ok "cluster up: gateway $HERALD_HTTP, nodes $HERALD_HTTP_NODE1 $HERALD_HTTP_NODE2 $HERALD_HTTP_NODE3"

# scrape NAME URL: strict parse into $dir/NAME.txt and promtool.
scrape() {
  python3 "$CHECK" metrics "$2" >"$dir/$1.txt" || { bad "$1: strict parse: $(head -3 "$dir/$1.txt")"; return; }
  if out=$(curl -sf "$2/metrics" | promtool check metrics 2>&1); then ok "$1: promtool check metrics"
  else bad "$1: promtool: $out"; fi
}
val() { grep -F "$2 " "$dir/$1.txt" | awk '{print $2}' | head -n 1; }
# ready URL WANT_STATUS PATTERN DEADLINE_S: polls /readyz until it matches.
ready() {
  local out=""
  for _ in $(seq $(( $4 * 4 ))); do
    out=$(python3 "$CHECK" get "$1" /readyz 2>&1)
    grep -qE -- "^$2 $3" <<<"$out" && { ok "readyz $1: $out"; return; }
    sleep 0.25
  done
  bad "readyz $1 (want $2 /$3/): $out"
}

for u in "$HERALD_HTTP" "$HERALD_HTTP_NODE1" "$HERALD_HTTP_NODE2" "$HERALD_HTTP_NODE3"; do
  ready "$u" 200 'ok' 30
done
"$H" --as alice conv create --kind group --members alice,bob --id h1 >/dev/null || bad "create"
for i in 1 2 3; do "$H" --as alice send h1 "m $i" >/dev/null || bad "send $i"; done
scrape gw "$HERALD_HTTP"
v=$(val gw 'herald_gateway_requests_forwarded_total{}')
[ "${v%.*}" -ge 4 ] && ok "gateway: requests forwarded $v" || bad "gateway: forwarded $v"
v=$(val gw 'herald_gateway_nodes_reachable{}')
[ "${v%.*}" = 3 ] && ok "gateway: 3 nodes reachable" || bad "gateway: reachable $v"
grep -q '^herald_gateway_stream_gaps_total' "$dir/gw.txt" && ok "gateway: stream gap counters" || bad "no stream counters"
leaders=0
for n in 1 2 3; do
  u=HERALD_HTTP_NODE$n
  scrape "node$n" "${!u}"
  v=$(val "node$n" 'herald_raft_term{group="0"}')
  [ "${v%.*}" -ge 1 ] && ok "node$n: meta term $v" || bad "node$n: term $v"
  v=$(val "node$n" 'herald_raft_commit_index{group="1"}')
  [ "${v%.*}" -ge 1 ] && ok "node$n: group 1 commit $v" || bad "node$n: commit $v"
  v=$(val "node$n" 'herald_raft_log_commit_seconds_count{}')
  [ "${v%.*}" -ge 1 ] && ok "node$n: raft log commits timed $v" || bad "node$n: commit histogram $v"
  v=$(val "node$n" 'herald_store_map_size_bytes{group="0"}')
  [ "${v%.*}" -gt 0 ] && ok "node$n: store map $v" || bad "node$n: map $v"
  l=$(val "node$n" 'herald_raft_leader{group="0"}')
  leaders=$((leaders + ${l%.*}))
done
[ $leaders = 1 ] && ok "exactly one meta leader among the nodes" || bad "meta leaders: $leaders"
grep -qh '^herald_raft_replica_lag{group="0",node=' "$dir"/node?.txt && ok "replica lag reported" || bad "no replica lag"

timeout 30 bash "$LC" kill 2 --data "$dir" >/dev/null
timeout 30 bash "$LC" kill 3 --data "$dir" >/dev/null
ready "$HERALD_HTTP" 503 '\{"errcode":24,"errmsg":"no majority of nodes reachable \(1 of 3' 20
ready "$HERALD_HTTP_NODE1" 503 '\{"errcode":24,"errmsg":"(no quorum|group [0-9]+ \(.*\) has no known leader)' 20
out=$(python3 "$CHECK" get "$HERALD_HTTP_NODE1" /healthz)
[ "$out" = "200 ok" ] && ok "node1 healthz still 200" || bad "node1 healthz: $out"
scrape gw-after "$HERALD_HTTP"
v=$(val gw-after 'herald_gateway_nodes_reachable{}')
[ "${v%.*}" = 1 ] && ok "gateway: 1 node reachable" || bad "gateway after: reachable $v"

[ $fails = 0 ] && echo "it_http: all passed" || echo "it_http: $fails failed"
exit $((fails > 0))
