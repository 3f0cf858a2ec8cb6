#!/usr/bin/env bash
# bench/compare.sh — Herald side by side with NATS core, NATS JetStream (a
# stream with 3 replicas on 3 clustered servers), MQTT (Mosquitto and NATS's
# MQTT listener), Redis pub/sub and ejabberd (XMPP multi-user chat): the same
# herald-bench harness, the same open-loop fan-out scenarios, every system on
# its own free loopback ports, runs alternating between systems.
#
#   bench/compare.sh            full: 500 members @ 100 msg/s (3 rounds of 10 s),
#                               500 @ 400 msg/s (1 round of 10 s), and durable
#                               (acked sends/s, 256 in flight, 10 s) for the
#                               systems with acks (herald, jetstream)
#   bench/compare.sh --quick    one round of 3 s @ 100 msg/s and a 3 s durable
#                               run (< 3 min in all)
#   bench/compare.sh --rounds N --systems "herald nats redis"
#   bench/compare.sh --herald dev    herald as the single-node `heraldd dev`
#                               (default: --herald cluster, the replicated
#                               cluster of deploy/local-cluster.sh: 3 nodes,
#                               raft, replication 3, and one gateway)
#   bench/compare.sh --systems "herald herald-plain mosquitto"
#                               herald-plain: the same cluster with plaintext
#                               links (HERALD_CLUSTER_PLAINTEXT=1), next to
#                               herald (mutual TLS on every link, the
#                               default); the table's herald/peer column then
#                               gives the TLS cost as herald / herald-plain.
#                               Cluster only; not in the default list.
#   systems: herald nats nats-mqtt mosquitto redis jetstream ejabberd (the
#   default: all of them), herald-plain and herald-mqtt (Herald's own MQTT
#   listener, driven by the same MQTT driver as Mosquitto: tokens as
#   passwords, topic conv/<id>, QoS 0 = a durable SEND). jetstream: 3 nats-server with
#   JetStream, clustered on loopback, file storage in the temp dir; each run
#   makes a stream with num_replicas 3 and publishes with acks; fan-out goes
#   through one push consumer per receiver (drv_jetstream.c says why).
#   ejabberd: one node under Erlang with a generated config, spool and HOME
#   in the temp dir; 500 registered users join one MUC room (drv_xmpp.c).
#
# stdout: one JSON object per (system, scenario) — the run with the median
#         p99, plus the range over runs and the losses summed over runs.
# stderr: progress, then a table with herald/peer ratios.
# Raw runs (one JSON line each) are kept in $HERALD_BENCH_OUT
# (default build dir/bench-results/compare-<time>.jsonl).
#
# Every row carries the system's durability (what its ack or delivery means
# for the data) and the servers' CPU time per delivery (every process of
# the system: herald's four, JetStream's three nats-server, ejabberd's
# beam.smp).
#
# Installs with apt-get, only if missing: nats-server mosquitto redis-server
# ejabberd libnats-dev libmosquitto-dev libhiredis-dev libstrophe-dev jq
# (plus the build's own dependencies, which deploy/deps.sh handles).
# Env: HERALD_BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${HERALD_BUILD_DIR:-build}

quick=0
rounds=""
systems="herald nats nats-mqtt mosquitto redis jetstream ejabberd"
hmode=cluster
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --systems) systems=$2; shift ;;
    --herald) hmode=$2; shift ;;
    *) echo "usage: bench/compare.sh [--quick] [--rounds N] [--herald cluster|dev] [--systems \"herald nats nats-mqtt mosquitto redis jetstream ejabberd\" (also herald-plain, herald-mqtt)]" >&2; exit 2 ;;
  esac
  shift
done
case "$hmode" in cluster|dev) ;; *) echo "compare: --herald must be cluster or dev" >&2; exit 2 ;; esac
case " $systems " in
  *" herald-plain "*)
    [ "$hmode" = cluster ] || { echo "compare: herald-plain needs --herald cluster (dev has no cluster links)" >&2; exit 2; } ;;
esac
log() { echo "compare: $*" >&2; }
want() { case " $systems " in *" $1 "*) return 0 ;; esac; return 1; }
for s in $systems; do
  case "$s" in herald|herald-plain|herald-mqtt|nats|nats-mqtt|mosquitto|redis|jetstream|ejabberd) ;;
    *) echo "compare: unknown system '$s'" >&2; exit 2 ;; esac
done

# --- dependencies ----------------------------------------------------------
missing=()
command -v nats-server >/dev/null || missing+=(nats-server)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v jq >/dev/null || missing+=(jq)
[ -f /usr/include/nats/nats.h ] || missing+=(libnats-dev)
[ -f /usr/include/mosquitto.h ] || missing+=(libmosquitto-dev)
[ -f /usr/include/hiredis/hiredis.h ] || missing+=(libhiredis-dev)
[ -x /usr/sbin/ejabberdctl ] || missing+=(ejabberd)
[ -f /usr/include/strophe.h ] || missing+=(libstrophe-dev)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  log "installing ${missing[*]}"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
PATH=$PATH:/usr/sbin

# --- build (incremental; configures when the cache is missing) ---------------
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -q 'HERALD_BENCH_PEERS:BOOL=ON' "$build/CMakeCache.txt"; then
  cmake -S . -B "$build" -DHERALD_BENCH_PEERS=ON >&2
fi
case "$build" in /*) ;; *) build=$root/$build ;; esac
# Others may be editing the tree: when the incremental build fails but every
# binary is there from an earlier build, go on with those (and say so).
if ! cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target herald-bench heraldd herald_cli \
     >"$build/compare-build.log" 2>&1; then
  tail -n 20 "$build/compare-build.log" >&2
  for f in bench/herald-bench broker/heraldd broker/herald; do
    [ -x "$build/$f" ] || { log "build failed and $build/$f is missing"; exit 1; }
  done
  log "WARNING: the build failed (log: $build/compare-build.log); using the binaries of $(date -r "$build/broker/heraldd" '+%F %T')"
fi
bench_bin=$build/bench/herald-bench
heraldd=$build/broker/heraldd
export HERALD_BIN_DIR=$build/broker # deploy/local-cluster.sh
compiled=$("$bench_bin" --help 2>&1 | sed -n "s/^systems compiled in://p" || true)
# The drivers the listed systems need.
for sys in $systems; do
  case $sys in nats) s=nats ;; nats-mqtt|mosquitto|herald-mqtt) s=mqtt ;; redis) s=redis ;;
    jetstream) s=jetstream ;; ejabberd) s=xmpp ;; *) continue ;; esac
  case " $compiled " in *" $s "*) ;; *) log "herald-bench lacks the $s driver (compiled in:$compiled)"; exit 1 ;; esac
done

# --- servers -----------------------------------------------------------------
declare -A url spid
tmp=$(mktemp -d /tmp/herald-compare.XXXXXX)
pids=()
hcluster=""
lc() { "$root/deploy/local-cluster.sh" "$@" --data "$hcluster"; }
# shellcheck source=bench/peers.sh
. "$root/bench/peers.sh"
cleanup() {
  stop_pids "${pids[@]}"
  peers_stop
  if [ -n "$hcluster" ] && [ -d "$hcluster" ]; then lc down >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# NATS core: defaults, nothing stored.
if want nats; then
  p=$(free_port)
  nats-server -a 127.0.0.1 -p "$p" >"$tmp/nats.log" 2>&1 &
  pids+=($!); spid[nats]=$!; wait_port "$p" $! nats; url[nats]=127.0.0.1:$p
fi
# NATS's MQTT listener needs JetStream and a server name (a second instance,
# so the core NATS numbers are not affected by it).
if want nats-mqtt; then
  p=$(free_port); pm=$(free_port)
  mkdir -p "$tmp/nats-mqtt"
  cat >"$tmp/nats-mqtt/nats.conf" <<EOF
server_name: herald_compare
listen: 127.0.0.1:$p
jetstream { store_dir: "$tmp/nats-mqtt/js" }
mqtt { listen: 127.0.0.1:$pm }
EOF
  nats-server -c "$tmp/nats-mqtt/nats.conf" >"$tmp/nats-mqtt.log" 2>&1 &
  pids+=($!); spid[nats-mqtt]=$!; wait_port "$pm" $! nats-mqtt; url[nats-mqtt]=127.0.0.1:$pm
fi
# Mosquitto: anonymous, no persistence.
if want mosquitto; then
  p=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$p" >"$tmp/mosquitto.conf"
  mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
  pids+=($!); spid[mosquitto]=$!; wait_port "$p" $! mosquitto; url[mosquitto]=127.0.0.1:$p
fi
# Redis: no RDB, no AOF.
if want redis; then
  p=$(free_port)
  mkdir -p "$tmp/redis"
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp/redis" \
    --protected-mode no --daemonize no >"$tmp/redis.log" 2>&1 &
  pids+=($!); spid[redis]=$!; wait_port "$p" $! redis; url[redis]=127.0.0.1:$p
fi
# JetStream: 3 servers, one cluster (bench/peers.sh); streams are made per run.
if want jetstream; then
  start_jetstream || exit 1
  spid[jetstream]=$js_pids; url[jetstream]=$js_url
fi
# ejabberd: one node, users bench-0..bench-499 (the largest group here).
if want ejabberd; then
  start_ejabberd 500 || exit 1
  spid[ejabberd]=$ej_pid; url[ejabberd]=$ej_url
fi
# Herald: the replicated cluster (--herald cluster) or the single-node dev
# server (--herald dev, fsync'd LMDB group commit), restarted on a fresh data
# dir before every herald run: its latency grows with the data earlier runs
# left behind (measured: p50 6.0 -> 14 ms over 4 runs of 500 msgs x 500
# members on one data dir), and the runs must not depend on their order. See
# bench/RESULTS.md. henv is the env file herald-bench gets; spid[herald] is
# the dev server's pid, or for the cluster the gateway's (hpids: all four).
# start_herald [plain]: the cluster's links on mutual TLS (the default, set
# explicitly whatever the caller's environment says), or plaintext
# (herald-plain).
hrun=0
hpids=""
start_herald_cluster() {
  local plain=0
  [ "${1:-}" = plain ] && plain=1
  if [ -n "$hcluster" ]; then
    lc down >/dev/null 2>&1 || true
    rm -rf "$hcluster"
  fi
  hrun=$((hrun + 1))
  hcluster=$tmp/herald-cluster-$hrun
  if ! HERALD_CLUSTER_PLAINTEXT=$plain lc up >"$tmp/herald.log" 2>&1; then
    log "the cluster did not start:"; tail -n 30 "$tmp/herald.log" >&2; exit 1
  fi
  # The generated gateway.conf has the default 2,000 requests/s per
  # connection; the dev server gets --rate 1000000. Same here (later keys
  # win), then restart the gateway.
  printf 'gateway.rate = 1000000\ngateway.max_conns = 20000\n' >>"$hcluster/gateway.conf"
  if ! { lc kill gateway && lc restart gateway; } >>"$tmp/herald.log" 2>&1; then
    log "the gateway did not restart:"; tail -n 30 "$tmp/herald.log" >&2; exit 1
  fi
  if grep -q '^cluster.plaintext = true' "$hcluster/node1.conf"; then
    log "  herald cluster $hrun: links plaintext"
  else
    log "  herald cluster $hrun: links on mutual TLS ($(grep -c '^cluster.tls_cert' "$hcluster"/node?.conf "$hcluster/gateway.conf" | grep -c ':1$') of 4 configs with a certificate)"
  fi
  henv=$hcluster/cluster.env
  hpids=$(cat "$hcluster"/node?.pid "$hcluster/gateway.pid")
  spid[herald]=$(cat "$hcluster/gateway.pid")
}
start_herald() {
  if [ "$hmode" = cluster ]; then start_herald_cluster "${1:-}"; return; fi
  if [ -n "${spid[herald]:-}" ]; then
    kill "${spid[herald]}" 2>/dev/null || true
    wait "${spid[herald]}" 2>/dev/null || true
    local keep=() q
    for q in "${pids[@]}"; do [ "$q" = "${spid[herald]}" ] || keep+=("$q"); done
    pids=("${keep[@]}")
    rm -rf "$tmp/herald-$hrun"
  fi
  hrun=$((hrun + 1))
  hdata=$tmp/herald-$hrun
  mkdir -p "$hdata"
  "$heraldd" dev --data "$hdata" --listen 127.0.0.1:0 --rate 1000000 >"$tmp/herald.log" 2>&1 &
  spid[herald]=$!; pids+=($!)
  for _ in $(seq 100); do [ -f "$hdata/dev.env" ] && break; sleep 0.1; done
  [ -f "$hdata/dev.env" ] || { log "heraldd did not start:"; tail -n 20 "$tmp/herald.log" >&2; exit 1; }
  henv=$hdata/dev.env
  hpids=${spid[herald]}
}
henv=""
if want herald || want herald-plain || want herald-mqtt; then start_herald; fi
log "servers up: herald ($hmode) $([ -n "$henv" ] && sed -n 's/^HERALD_GATEWAY=//p' "$henv")$(for k in "${!url[@]}"; do printf ', %s %s' "$k" "${url[$k]}"; done)"
if [ "$hmode" = cluster ]; then
  log "note: herald runs as the replicated cluster (3 heraldd node, raft, replication 3, + heraldd gateway), fresh before every herald run"
else
  log "note: herald runs as the single-node 'heraldd dev' (--herald dev)"
fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before the runs: $load0 (benchmark on a quiet machine)"

# --- runs ----------------------------------------------------------------------
# scenario table: name kind members rate duration drain rounds. kind
# fanout: every system; durable: acked sends/s, one connection, 256 in
# flight, for the systems with acks (herald: the cluster's durable scenario,
# or throughput against heraldd dev; jetstream: the R3 stream).
if [ "$quick" = 1 ]; then
  scenarios=("fanout-500x100 fanout 500 100 3 1 ${rounds:-1}"
             "durable-w256 durable 2 0 3 2 ${rounds:-1}")
else
  scenarios=("fanout-500x100 fanout 500 100 10 5 ${rounds:-3}"
             "fanout-500x400 fanout 500 400 10 5 ${rounds:-1}"
             "durable-w256 durable 2 0 10 2 ${rounds:-1}")
fi
outdir=${HERALD_BENCH_OUT:-$build/bench-results}
mkdir -p "$outdir"
raw=$outdir/compare-$(date +%Y%m%dT%H%M%S).jsonl
: >"$raw"

# CPU time (user + system, clock ticks) the processes have used so far.
cpu_ticks() {
  local p t=0
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
# The server processes of a system: herald's are all of its processes.
server_pids() { case "$1" in herald|herald-plain|herald-mqtt) echo "$hpids" ;; *) echo "${spid[$1]}" ;; esac; }
clk_tck=$(getconf CLK_TCK)

# Systems whose driver has acks (the durable rows).
has_acks() { case "$1" in herald|herald-plain|jetstream) return 0 ;; esac; return 1; }

run_one() { # system scenario_name kind members rate duration drain round
  local sys=$1 name=$2 kind=$3 args sargs
  if [ "$kind" = durable ]; then
    has_acks "$sys" || return 0
    sargs=(--scenario durable --window 256 --duration "$6" --drain "$7")
    # heraldd dev is no cluster: its acked sends/s are the throughput scenario.
    case "$sys" in herald*) [ "$hmode" = cluster ] || sargs[1]=throughput ;; esac
  else
    sargs=(--scenario fanout --members "$4" --rate "$5" --duration "$6" --drain "$7")
  fi
  case "$sys" in
    herald) start_herald; args=(--system herald --env "$henv") ;;
    herald-plain) start_herald plain; args=(--system herald --label herald-plain --env "$henv") ;;
    herald-mqtt) start_herald; args=(--system mqtt --label herald-mqtt --env "$henv") ;;
    nats) args=(--system nats --url "${url[nats]}") ;;
    nats-mqtt) args=(--system mqtt --label nats-mqtt --url "${url[nats-mqtt]}") ;;
    mosquitto) args=(--system mqtt --label mosquitto --url "${url[mosquitto]}") ;;
    redis) args=(--system redis --url "${url[redis]}") ;;
    jetstream) args=(--system jetstream --url "${url[jetstream]}") ;;
    ejabberd) args=(--system xmpp --label ejabberd --url "${url[ejabberd]}") ;;
    *) log "unknown system $sys"; return 1 ;;
  esac
  set -- "$name" "$8"
  local out c0 c1
  # shellcheck disable=SC2046 # pids have no blanks
  c0=$(cpu_ticks $(server_pids "$sys"))
  if out=$("$bench_bin" "${args[@]}" "${sargs[@]}" --payload 256 --setup-timeout 60 2>"$tmp/run.err"); then
    # shellcheck disable=SC2046
    c1=$(cpu_ticks $(server_pids "$sys"))
    out=$(echo "$out" | jq -c --arg sc "$1" --argjson r "$2" --argjson cpu "$(( c1 - c0 ))" --argjson hz "$clk_tck" \
      '. + {scenario_name: $sc, run: $r, server_cpu_s: ($cpu / $hz),
            server_cpu_us_per_delivery: (if .delivered > 0 then ($cpu / $hz * 1e6 / .delivered * 100 | round) / 100 else null end),
            client_cpu_us_per_delivery: (if .delivered > 0 then (.client_cpu_s * 1e6 / .delivered * 100 | round) / 100 else null end)}')
    echo "$out" >>"$raw"
    echo "$out" | jq -r '"compare:   \(.system): " + (if .scenario == "fanout" then "p50 \(.p50_us) us, p99 \(.p99_us) us" else "\(.acked_per_s) acked/s, ack p50 \(.ack_p50_us) us, p99 \(.ack_p99_us) us" end) + ", lost \(.lost)/\(.expected), CPU us/delivery server \(.server_cpu_us_per_delivery) client \(.client_cpu_us_per_delivery)"' >&2
  else
    log "  $sys: run failed:"; sed 's/^/    /' "$tmp/run.err" >&2
    jq -nc --arg s "$sys" --arg k "$kind" --arg sc "$1" --argjson r "$2" \
      '{system: $s, scenario: (if $k == "durable" then "durable" else "fanout" end), scenario_name: $sc, run: $r, failed: true}' >>"$raw"
  fi
  [ -s "$tmp/run.err" ] && sed 's/^/    /' "$tmp/run.err" >&2
  return 0
}

read -r -a sysv <<<"$systems"
for sc in "${scenarios[@]}"; do
  read -r name kind members rate dur drain nround <<<"$sc"
  for r in $(seq "$nround"); do
    log "$name round $r/$nround"
    # Alternate: each round starts with a different system.
    n=${#sysv[@]}
    for i in $(seq 0 $((n - 1))); do
      run_one "${sysv[$(((i + r - 1) % n))]}" "$name" "$kind" "$members" "$rate" "$dur" "$drain" "$r"
    done
  done
done

# --- report --------------------------------------------------------------------
# One object per (system, scenario): the median-p99 run (durable: the median
# by acked sends/s), with ranges and totals.
jq -s -c '
  group_by([.scenario_name, .system])[] as $g
  | ($g | map(select(.failed | not))) as $ok
  | if ($ok | length) == 0 then ($g[0] + {runs: ($g | length), failed_runs: ($g | length)})
    else ($ok | sort_by(if .scenario == "fanout" then .p99_us else .acked_per_s end)) as $s
    | $s[(($s | length) / 2 | floor)] + {
        runs: ($g | length),
        failed_runs: (($g | length) - ($ok | length)),
        p50_us_range: [($ok | map(.p50_us) | min), ($ok | map(.p50_us) | max)],
        p99_us_range: [($ok | map(.p99_us) | min), ($ok | map(.p99_us) | max)],
        last_p99_us_range: [($ok | map(.last_p99_us) | min), ($ok | map(.last_p99_us) | max)],
        acked_per_s_range: [($ok | map(.acked_per_s) | min), ($ok | map(.acked_per_s) | max)],
        expected_all_runs: ($ok | map(.expected) | add),
        delivered_all_runs: ($ok | map(.delivered) | add),
        lost_all_runs: ($ok | map(.lost) | add)}
    end' "$raw" | tee "$tmp/agg.jsonl"

{
  echo
  echo "Herald vs peers — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), loopback, 256 B payload, brokers and herald-bench unpinned on the same cores"
  echo "load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "median run by p99 (range over runs); ratio = herald / peer (< 1: herald lower)"
  printf '%-15s %-10s %5s %18s %18s %9s %16s %26s %12s %22s  %s\n' scenario system runs "p50 ms" "p99 ms" "p99.9 ms" "last p50/p99 ms" "delivered/expected" "CPU us/dlv" "herald/peer" durability
  jq -r -s '
    def ms: . / 1000 | (. * 10 | round) / 10 | tostring;
    def rng(a): if a[0] == a[1] then (a[0] | ms) else "\(a[0] | ms)-\(a[1] | ms)" end;
    map(select(.scenario == "fanout")) | group_by(.scenario_name)[] as $sc
    | ($sc | map(select(.system == "herald" and (.failed | not))) | first) as $h
    | $sc | sort_by(if .system == "herald" then 0 elif .system == "herald-plain" then 1 else 2 end)[]
    | if .failed and (.p50_us | not) then [.scenario_name, .system, (.runs | tostring), "FAILED", "", "", "", "", "", "", ""]
      else [.scenario_name, .system, (.runs | tostring),
            "\(.p50_us | ms) (\(rng(.p50_us_range)))",
            "\(.p99_us | ms) (\(rng(.p99_us_range)))",
            (.p999_us | ms),
            "\(.last_p50_us | ms)/\(.last_p99_us | ms)",
            "\(.delivered_all_runs)/\(.expected_all_runs)" + (if .lost_all_runs > 0 then " LOST \(.lost_all_runs)" else "" end),
            "\(.server_cpu_us_per_delivery)+\(.client_cpu_us_per_delivery)",
            (if .system == "herald" or $h == null then "-"
             else "p50 \(($h.p50_us / .p50_us * 100 | round) / 100) p99 \(($h.p99_us / .p99_us * 100 | round) / 100)" end),
            (.durability // "-")]
      end
    | @tsv' "$tmp/agg.jsonl" |
  while IFS=$'\t' read -r a b c d e f g h i j k; do
    printf '%-15s %-10s %5s %18s %18s %9s %16s %26s %12s %22s  %s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i" "$j" "$k"
  done
  if jq -e -s 'any(.[]; .scenario != "fanout")' "$tmp/agg.jsonl" >/dev/null; then
    echo
    echo "durable: acked sends/s from one connection, 256 in flight, 1 receiver (median run by acked/s, range over runs); ratio = herald / peer (> 1: herald higher)"
    printf '%-15s %-12s %5s %22s %16s %20s %12s %12s  %s\n' scenario system runs "acked/s" "ack p50/p99 ms" "delivered/expected" "CPU us/dlv" "herald/peer" durability
    jq -r -s '
      def ms: . / 1000 | (. * 10 | round) / 10 | tostring;
      map(select(.scenario != "fanout")) | group_by(.scenario_name)[] as $sc
      | ($sc | map(select(.system == "herald" and (.failed | not))) | first) as $h
      | $sc | sort_by(if .system == "herald" then 0 elif .system == "herald-plain" then 1 else 2 end)[]
      | if .failed and (.acked_per_s | not) then [.scenario_name, .system, (.runs | tostring), "FAILED", "", "", "", "", ""]
        else [.scenario_name, .system, (.runs | tostring),
              "\(.acked_per_s) (\(.acked_per_s_range[0])-\(.acked_per_s_range[1]))",
              "\(.ack_p50_us | ms)/\(.ack_p99_us | ms)",
              "\(.delivered_all_runs)/\(.expected_all_runs)" + (if .lost_all_runs > 0 then " LOST \(.lost_all_runs)" else "" end),
              "\(.server_cpu_us_per_delivery)+\(.client_cpu_us_per_delivery)",
              (if .system == "herald" or $h == null or .acked_per_s == 0 then "-"
               else "\(($h.acked_per_s / .acked_per_s * 100 | round) / 100)" end),
              (.durability // "-") + (if .errors > 0 then " (errors \(.errors))" else "" end)]
        end
      | @tsv' "$tmp/agg.jsonl" |
    while IFS=$'\t' read -r a b c d e f g h i; do
      printf '%-15s %-12s %5s %22s %16s %20s %12s %12s  %s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i"
    done
  fi
  echo "CPU us/dlv: CPU time per delivery of the server processes + of herald-bench (whole runs, set-up included;"
  echo "  herald cluster: all four processes; jetstream: its three nats-server; ejabberd: its beam.smp)."
  echo
  if [ "$hmode" = cluster ]; then
    echo "Durability: herald (cluster) acks a send only after the raft entry is committed on 2 of 3 nodes (fsync'd raft log) and applied, and keeps every message;"
  else
    echo "Durability: herald acks a send only after its fsync'd LMDB commit (group commit) and keeps every message;"
  fi
  echo "NATS core and Redis pub/sub keep nothing (a subscriber that is away or slow loses messages);"
  echo "Mosquitto at QoS 0 keeps nothing; NATS MQTT at QoS 0 keeps nothing (JetStream only holds its session state)."
  echo "herald-mqtt: the same herald through its MQTT listener (gateway.mqtt_listen): a QoS 0 PUBLISH is a SEND, stored like herald's before it is pushed."
  echo "JetStream: a file stream with 3 replicas; a publish is acked once 2 of 3 servers have written it, but nats-server 2.9 flushes"
  echo "  its files to disk only every 2 min (sync_interval), so an acked message is not yet fsync'd; deliveries come from the stream"
  echo "  through one push consumer per receiver (R1, in memory)."
  echo "ejabberd: MUC messages are not stored (history_size 0, no MAM): memory only; users and rooms in mnesia."
  if [ "$hmode" = cluster ]; then
    echo "Herald here is the replicated cluster (deploy/local-cluster.sh: 3 heraldd node, 8 shard groups + meta, replication 3, + heraldd gateway), fresh per run; server CPU = all four processes."
    echo "herald: links between the processes on mutual TLS; herald-plain (when listed): the same cluster with plaintext links (its herald/peer column = TLS / plaintext)."
  else
    echo "Herald here is the single-node 'heraldd dev' (4 shard groups) on a fresh data dir per run."
  fi
  echo "Raw runs: $raw"
} >&2
