#!/usr/bin/env bash
# bench/api.sh — request latency of the open API with wrk (Debian's wrk;
# installed when missing): POST /api/v1/message/send (WeCom's shape, an app
# message to one user, a new msgid per call), POST /api/v1/conversation/send
# (a user's message into a group) and GET /api/v1/user/get, each for
# DURATION seconds with CONNS keep-alive connections, against heraldd dev
# (group commit, fsync) and the 3-node cluster's gateway (raft, mutual TLS).
# Prints one line per run: target, route, requests/s, p50, p99 and non-2xx,
# and appends them as JSON lines to bench/results/api-DATE.jsonl.
#
#   bench/api.sh [--duration S] [--conns N] [--only dev|cluster]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${HERALD_BIN_DIR:-$root/build/broker}
dur=10 conns=16 only=""
while [ $# -gt 0 ]; do
  case $1 in
    --duration) dur=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "usage: bench/api.sh [--duration S] [--conns N] [--only dev|cluster]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
[ -x "$B/heraldd" ] || { echo "build first: cmake --build build" >&2; exit 1; }
out=$root/bench/results/api-$(date +%Y%m%d).jsonl
work=$(mktemp -d /tmp/herald-apibench-XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  timeout 60 bash "$root/deploy/local-cluster.sh" down --data "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# post.lua BODY: every request POSTs BODY; "%ID%" becomes a fresh id.
cat >"$work/post.lua" <<'LUA'
local body, n, NUSERS = os.getenv("BODY"), 0, tonumber(os.getenv("NUSERS"))
local tid = tostring(math.random(1, 1e9))
request = function()
  n = n + 1
  local b = body:gsub("%%ID%%", tid .. "-" .. n):gsub("%%U%%", "u" .. (n % NUSERS))
  return wrk.format("POST", nil, {["Authorization"] = "Bearer " .. os.getenv("TOK"),
    ["Content-Type"] = "application/json"}, b)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.requests))
end
LUA
limits='gateway.api_rate = 1000000
gateway.api_burst = 1000000'
export NUSERS=5000

# run TARGET ROUTE URL [BODY]: one wrk run (GET when BODY is empty).
run() {
  local target=$1 route=$2 url=$3 body=${4:-} res
  if [ -n "$body" ]; then
    res=$(BODY=$body TOK=$TOK wrk -t2 -c"$conns" -d"${dur}s" -s "$work/post.lua" "$url" | grep '^RESULT')
  else
    res=$(BODY="" TOK=$TOK wrk -t2 -c"$conns" -d"${dur}s" -s "$work/get.lua" "$url" | grep '^RESULT')
  fi
  read -r _ rps p50 p99 non2xx total <<<"$res"
  printf '%-8s %-28s %9s req/s  p50 %7s ms  p99 %7s ms  non-2xx %s of %s\n' "$target" "$route" \
    "$rps" "$p50" "$p99" "$non2xx" "$total"
  printf '{"date":"%s","target":"%s","route":"%s","conns":%s,"duration_s":%s,"rps":%s,"p50_ms":%s,"p99_ms":%s,"non2xx":%s,"requests":%s}\n' \
    "$(date -u +%FT%TZ)" "$target" "$route" "$conns" "$dur" "$rps" "$p50" "$p99" "$non2xx" "$total" >>"$out"
}
sed -e 's/return wrk.format("POST", nil,/return wrk.format("GET", nil,/' -e 's/, b)$/, nil)/' \
  "$work/post.lua" >"$work/get.lua"

# bench TARGET: apps, users and a group, then the three routes.
bench() {
  local target=$1 H=$2 U=$3
  "$B/herald" --admin app create benchapp --scopes message,directory,user_token >"$work/app.json"
  TOK=$(curl -sf -X POST "$U/api/v1/token" -d @"$work/app.json" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  # Recipients in the directory; the sends go round them, so no member
  # passes the tenant's per-app frequency cap (30 a minute by default).
  python3 - "$U" "$TOK" "$NUSERS" <<'PY'
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
for i in range(int(sys.argv[3])):
    c.request("POST", "/api/v1/user/create", '{"userid":"u%d","kind":"internal"}' % i,
              {"Authorization": "Bearer " + sys.argv[2]})
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit("user/create: HTTP %d" % r.status)
PY
  run "$target" "POST /message/send" "$U/api/v1/message/send" \
    '{"touser":"%U%","agentid":"benchapp","msgtype":"text","text":{"content":"hello"},"msgid":"b-%ID%"}'
  run "$target" "GET /user/get" "$U/api/v1/user/get?userid=u2"
  TOK=$(curl -sf -X POST "$U/api/v1/user/token" -H "Authorization: Bearer $TOK" \
    -d '{"userid":"u1"}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  "$B/herald" --as u1 conv create --kind group --members u1,u2,u3 --id bench-g >/dev/null
  run "$target" "POST /conversation/send" "$U/api/v1/conversation/send" \
    '{"conv":"bench-g","text":"hi","msgid":"c-%ID%"}'
}

if [ "$only" != cluster ]; then
  mkdir -p "$work/dev"
  printf '%s\n' "$limits" >"$work/dev.conf"
  "$B/heraldd" dev --data "$work/dev" --config "$work/dev.conf" --listen 127.0.0.1:0 \
    --ws-listen "" --mqtt-listen "" --log-level warn 2>"$work/dev.log" &
  pid=$!
  for _ in $(seq 100); do [ -f "$work/dev/dev.env" ] && break; sleep 0.1; done
  (set -a; . "$work/dev/dev.env"; set +a; bench dev "$B" "$HERALD_HTTP")
  kill -TERM "$pid"; wait "$pid" || true; pid=""
fi
if [ "$only" != dev ]; then
  lc() { HERALD_BIN_DIR=$B timeout 120 bash "$root/deploy/local-cluster.sh" "$@" --data "$work/cluster"; }
  lc up >/dev/null
  # The open API's per-app limit (100/s by default) would be what is
  # measured: raise it and restart the gateway (later keys win).
  printf '%s\n' "$limits" >>"$work/cluster/gateway.conf"
  { lc kill gateway && lc restart gateway; } >/dev/null
  (set -a; . "$work/cluster/cluster.env"; set +a; bench cluster "$B" "$HERALD_HTTP")
fi
echo "results appended to $out"
