#!/usr/bin/env bash
# bench/cluster.sh — herald-bench against the replicated cluster
# (deploy/local-cluster.sh: three `heraldd node`, raft, replication 3, 8 shard
# groups + meta, one `heraldd gateway`), with the single-node `heraldd dev`
# as the baseline for acked-send throughput.
#
#   bench/cluster.sh            full: ~4 min
#   bench/cluster.sh --quick    short runs, < 2.5 min
#   bench/cluster.sh --only "conns durable"   just those scenarios (names as
#                               below: throughput fanout announce durable
#                               conns failover lossless)
#   bench/cluster.sh --conns N  idle connections of the conns rows (10000)
#
# Runs, in this order (the cluster is fresh when the fan-out runs):
#   throughput  heraldd dev (one node, fresh data dir, free port): acked sends/s,
#               one connection, 256 in flight
#   fanout      cluster: 500 members @ 100 msg/s (customer_group)
#   announce    cluster: 10,000 members, kind announce (read-diffused)
#   durable     cluster: the throughput scenario; acks after the raft commit
#               on a majority (fsync'd raft log) and apply; then the same
#               scenario against NATS JetStream: 3 nats-server clustered on
#               loopback (bench/peers.sh), a file stream with num_replicas 3,
#               async publishes with acks (row durable-jetstream-r3)
#   conns       N idle connections, each authenticated (HELLO/WELCOME), held
#               open while the server's VmRSS is read (/proc/PID/status),
#               opened with at most 32 handshakes in flight:
#               before, after, and per connection; against the cluster's
#               gateway (conns-gateway) and against heraldd dev (conns-dev,
#               in the one-node phase). The fd limit is raised (ulimit -n) and
#               so are the gateway's connection cap (gateway.max_conns) and
#               idle timeout (gateway.idle_ms: the bench's idle connections
#               send no pings), in the gateway's config file (dev: --config)
#   failover    cluster: 100 sends/s with cmids; the leader of the
#               conversation's shard group (`herald --admin conv info`) is
#               killed with SIGKILL mid-run and restarted later; reports the
#               longest gap between two consecutive acks and exactly-once
#               (acks and the stored history)
#   throughput-lossless  cluster: fan-out to 500 at rising rates (100 … 500
#               msg/s) until a run misses a delivery; the last lossless run
#               (highest lossless deliveries/s, whatever its latency)
#
# stdout: one JSON object per run (herald-bench's, plus scenario_name,
#         server_cpu_s, server_cpu_us_per_delivery, and for failover
#         killed_node, kill_unix_ms, kill_to_ack_ms; every run has
#         durability). stderr: progress, then a table.
# Raw runs also go to $HERALD_BENCH_OUT (default BUILD/bench-results)/cluster-TIME.jsonl.
# Env: HERALD_BUILD_DIR (default build; configured and built when needed),
#      HERALD_BENCH_KEEP=1 keeps the temp dir (logs, data) for a look.
# Everything started here is stopped on exit (trap), also on failure or ^C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${HERALD_BUILD_DIR:-build}

quick=0
only="throughput fanout announce durable conns failover lossless"
conns_n=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) only=$2; shift ;;
    --conns) conns_n=$2; shift ;;
    *) echo "usage: bench/cluster.sh [--quick] [--only \"throughput fanout announce durable conns failover lossless\"] [--conns N]" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "cluster-bench: $*" >&2; }
command -v jq >/dev/null || { log "needs jq (apt-get install jq)"; exit 1; }
for s in $only; do
  case "$s" in throughput|fanout|announce|durable|conns|failover|lossless) ;;
    *) log "unknown scenario '$s'"; exit 2 ;; esac
done
[[ $conns_n =~ ^[0-9]+$ ]] && [ "$conns_n" -ge 2 ] || { log "--conns must be a number >= 2"; exit 2; }
want() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }
# The JetStream durable row needs nats-server and herald-bench's jetstream
# driver (libnats-dev).
if want durable; then
  missing=()
  command -v nats-server >/dev/null || missing+=(nats-server)
  [ -f /usr/include/nats/nats.h ] || missing+=(libnats-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    log "installing ${missing[*]}"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
  fi
fi
# conns: this shell's fd limit is inherited by heraldd dev, the gateway and
# herald-bench; each of them needs one per connection plus a margin.
if want conns; then
  need=$((conns_n + 1000))
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    log "--conns $conns_n needs $need descriptors, the hard limit is $hard (ulimit -Hn)"; exit 1
  fi
  [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -ge "$need" ] || ulimit -n "$need"
fi

# --- build (incremental; configures when the cache is missing) -----------------
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -q 'HERALD_BENCH_PEERS:BOOL=ON' "$build/CMakeCache.txt"; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_BENCH_PEERS=ON >&2
fi
case "$build" in /*) ;; *) build=$root/$build ;; esac
# Others may be editing the tree: when the incremental build fails but every
# binary is there from an earlier build, go on with those (and say so).
if ! cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target herald-bench heraldd herald_cli \
     >"$build/cluster-bench-build.log" 2>&1; then
  tail -n 20 "$build/cluster-bench-build.log" >&2
  for f in bench/herald-bench broker/heraldd broker/herald; do
    [ -x "$build/$f" ] || { log "build failed and $build/$f is missing"; exit 1; }
  done
  log "WARNING: the build failed (log: $build/cluster-bench-build.log); using the binaries of $(date -r "$build/broker/heraldd" '+%F %T')"
fi
bench_bin=$build/bench/herald-bench
export HERALD_BIN_DIR=$build/broker
heraldd=$HERALD_BIN_DIR/heraldd
herald=$HERALD_BIN_DIR/herald

# --- scenario parameters ---------------------------------------------------------
if [ "$quick" = 1 ]; then
  tput_s=3; fan_s=3; fan_drain=2; ann_rate=2; ann_s=3; ann_drain=3; conns_hold=2
  fo_runs=1; fo_s=8; fo_kill_at=2.5; fo_down_s=3
  sweep_rates="100 200"; sweep_s=2
else
  tput_s=10; fan_s=10; fan_drain=5; ann_rate=5; ann_s=10; ann_drain=5; conns_hold=5
  fo_runs=3; fo_s=20; fo_kill_at=5; fo_down_s=7
  sweep_rates="100 150 200 250 300 350 400 500"; sweep_s=5
fi
ann_members=10000
# conns: handshakes in flight. 10,000 HELLOs at once (as the announce set-up
# sends them) made the gateway lose its nodes' heartbeats ("1 of 3 nodes
# reachable: no quorum") and refuse HELLOs with UNAVAILABLE; this row
# measures idle connections, not a reconnect storm.
conns_window=32

# --- processes and clean-up ------------------------------------------------------
tmp=$(mktemp -d /tmp/herald-cluster-bench.XXXXXX)
cluster=$tmp/cluster
devpid=""
lc() { "$root/deploy/local-cluster.sh" "$@" --data "$cluster"; }
# shellcheck source=bench/peers.sh
. "$root/bench/peers.sh"
cleanup() {
  if [ -n "$devpid" ]; then kill "$devpid" 2>/dev/null || true; wait "$devpid" 2>/dev/null || true; fi
  peers_stop
  if [ -d "$cluster" ]; then lc down >/dev/null 2>&1 || true; fi
  if [ "${HERALD_BENCH_KEEP:-0}" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

outdir=${HERALD_BENCH_OUT:-$build/bench-results}
mkdir -p "$outdir"
raw=$outdir/cluster-$(date +%Y%m%dT%H%M%S).jsonl
: >"$raw"

cpu_ticks() { # pids…: user + system clock ticks so far, summed
  local p t=0
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
clk_tck=$(getconf CLK_TCK)
cluster_pids() { cat "$cluster"/node?.pid "$cluster"/gateway.pid 2>/dev/null || true; }
hcli() { (set -a; . "$cluster/cluster.env"; set +a; "$herald" --timeout 5 --admin "$@"); }

# Runs herald-bench (args after the name), adds scenario_name and the
# servers' CPU seconds over the run (pids from $run_pids: every process of
# the system) and per delivery, prints the JSON. $run_sys names the system
# in a failure line.
run_sys=herald
run_bench() { # scenario_name herald-bench-args…
  local name=$1 out c0 c1
  shift
  # shellcheck disable=SC2086 # pids have no blanks
  c0=$(cpu_ticks $run_pids)
  if ! out=$("$bench_bin" "$@" 2>"$tmp/run.err"); then
    log "  $name: herald-bench failed:"; sed 's/^/    /' "$tmp/run.err" >&2
    out=$(jq -nc --arg s "$run_sys" --arg sc "$name" '{system: $s, scenario_name: $sc, failed: true}')
    echo "$out" >>"$raw"; echo "$out"
    return 0
  fi
  # shellcheck disable=SC2086
  c1=$(cpu_ticks $run_pids)
  [ -s "$tmp/run.err" ] && sed 's/^/    /' "$tmp/run.err" | head -n 5 >&2
  out=$(echo "$out" | jq -c --arg sc "$name" --argjson cpu "$((c1 - c0))" --argjson hz "$clk_tck" \
    '. + {scenario_name: $sc, server_cpu_s: ($cpu / $hz),
          server_cpu_us_per_delivery: (if .delivered > 0 then ($cpu / $hz * 1e6 / .delivered * 100 | round) / 100 else null end)}')
  echo "$out" >>"$raw"
  echo "$out"
}

# --- 1. one node: heraldd dev on a fresh dir, free port ---------------------------
# Connection cap and idle timeout for the conns rows, and no byte-rate
# limit (the throughput rows measure the broker, not the per-connection
# limiter: 256 B x 66 k/s passes its 16 MB/s default) (dev: --config; the
# gateway: its config file). Later keys win.
conn_keys=$(printf 'gateway.max_conns = %d\ngateway.idle_ms = 600000\ngateway.byte_rate = 16G\n' $((conns_n * 2)))
if want throughput || want conns; then
  mkdir -p "$tmp/dev"
  echo "$conn_keys" >"$tmp/dev.conf"
  "$heraldd" dev --data "$tmp/dev" --config "$tmp/dev.conf" --listen 127.0.0.1:0 --rate 1000000 >"$tmp/dev.log" 2>&1 &
  devpid=$!
  for _ in $(seq 100); do [ -f "$tmp/dev/dev.env" ] && break; kill -0 "$devpid" 2>/dev/null || break; sleep 0.1; done
  [ -f "$tmp/dev/dev.env" ] || { log "heraldd dev did not start:"; tail -n 20 "$tmp/dev.log" >&2; exit 1; }
  run_pids=$devpid
  if want throughput; then
    log "throughput on one node (heraldd dev), ${tput_s} s"
    run_bench throughput-1node --env "$tmp/dev/dev.env" --scenario throughput --window 256 \
      --duration "$tput_s" | tee -a "$tmp/results.jsonl"
  fi
  if want conns; then
    log "conns: $conns_n idle authenticated connections to heraldd dev, held ${conns_hold} s"
    run_bench conns-dev --env "$tmp/dev/dev.env" --scenario conns --members "$conns_n" --window "$conns_window" \
      --duration "$conns_hold" --rss-pid "$devpid" --setup-timeout 120 | tee -a "$tmp/results.jsonl"
  fi
  kill "$devpid"; wait "$devpid" 2>/dev/null || true; devpid=""
fi

# --- 2. the cluster ----------------------------------------------------------------
log "starting the cluster in $cluster"
lc up >"$tmp/up.log" 2>&1 || { cat "$tmp/up.log" >&2; exit 1; }
# local-cluster.sh writes gateway.conf with the defaults: 2,000 requests/s
# per connection (throughput would measure the rate limiter) and 10,000
# connections (the announce run needs 10,000 plus the CLI). Raise both and
# restart the gateway (later keys win).
printf 'gateway.rate = 1000000\ngateway.max_conns = 20000\n%s\n' "$conn_keys" >>"$cluster/gateway.conf"
{ lc kill gateway && lc restart gateway; } >>"$tmp/up.log" 2>&1 || { cat "$tmp/up.log" >&2; exit 1; }
log "cluster up: gateway $(sed -n 's/^HERALD_GATEWAY=//p' "$cluster/cluster.env"), $(hcli admin status | jq -r '"mode \(.mode), \(.groups | length) groups"')"
envf=$cluster/cluster.env
run_pids=$(cluster_pids)

if want fanout; then
  log "fanout 500 members @ 100 msg/s, ${fan_s} s"
  run_bench fanout-500x100 --env "$envf" --scenario fanout --members 500 --rate 100 \
    --duration "$fan_s" --drain "$fan_drain" --setup-timeout 60 | tee -a "$tmp/results.jsonl"
fi

if want conns; then
  gwpid=$(cat "$cluster/gateway.pid")
  log "conns: $conns_n idle authenticated connections to the gateway (pid $gwpid), held ${conns_hold} s"
  run_pids=$(cluster_pids)
  run_bench conns-gateway --env "$envf" --scenario conns --members "$conns_n" --window "$conns_window" \
    --duration "$conns_hold" --rss-pid "$gwpid" --setup-timeout 120 | tee -a "$tmp/results.jsonl"
fi

if want announce; then
  log "announce $ann_members members @ $ann_rate msg/s, ${ann_s} s"
  run_bench announce-10000 --env "$envf" --scenario fanout --kind announce --members "$ann_members" \
    --rate "$ann_rate" --duration "$ann_s" --drain "$ann_drain" --setup-timeout 120 |
    tee -a "$tmp/results.jsonl"
fi

if want durable; then
  log "durable: acked sends/s on the cluster, ${tput_s} s"
  run_bench durable-3replicas --env "$envf" --scenario durable --window 256 --duration "$tput_s" |
    tee -a "$tmp/results.jsonl"
  # The same scenario against JetStream R3 (its 3 servers run only for this
  # row; the herald cluster sits idle meanwhile).
  log "durable: acked sends/s on NATS JetStream, stream with 3 replicas, ${tput_s} s"
  if start_jetstream; then
    run_pids=$js_pids; run_sys=jetstream
    run_bench durable-jetstream-r3 --system jetstream --url "$js_url" --scenario durable --window 256 \
      --duration "$tput_s" --setup-timeout 60 | tee -a "$tmp/results.jsonl"
    run_pids=$(cluster_pids); run_sys=herald
    peers_stop
  else
    jq -nc '{system: "jetstream", scenario_name: "durable-jetstream-r3", failed: true}' | tee -a "$raw" "$tmp/results.jsonl"
    peers_stop
  fi
fi

# --- 3. failover -------------------------------------------------------------------
want failover || fo_runs=0
for r in $(seq "$fo_runs"); do
  conv=failover-$(date +%s)-$r
  log "failover $r/$fo_runs: conversation $conv, 100 sends/s for ${fo_s} s; kill -9 its leader at ${fo_kill_at} s, restart ${fo_down_s} s later"
  run_pids=""
  "$bench_bin" --env "$envf" --scenario failover --conv "$conv" --rate 100 --duration "$fo_s" \
    --setup-timeout 60 >"$tmp/fo.json" 2>"$tmp/fo.err" &
  bpid=$!
  info=""
  for _ in $(seq 100); do
    info=$(hcli conv info "$conv" 2>/dev/null) && break
    kill -0 "$bpid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$info" ] || { log "conversation $conv never appeared"; wait "$bpid" || true; cat "$tmp/fo.err" >&2; exit 1; }
  sleep "$fo_kill_at"
  info=$(hcli conv info "$conv" 2>/dev/null) || info="{}"
  group=$(echo "$info" | jq -r '.group // 0')
  leader=$(echo "$info" | jq -r '.leader // 0')
  kill_ms=0
  if [[ $leader =~ ^[1-3]$ ]]; then
    kill_ms=$(date +%s%3N)
    lc kill "$leader" >>"$tmp/up.log" 2>&1
    log "  killed node $leader (leader of group $group)"
    sleep "$fo_down_s"
    lc restart "$leader" >>"$tmp/up.log" 2>&1 || log "  restart of node $leader failed (see $cluster/node$leader.log)"
    log "  restarted node $leader"
  else
    log "  conv info gave no leader ($info): nothing killed"
  fi
  if ! wait "$bpid"; then
    log "  herald-bench failed:"; sed 's/^/    /' "$tmp/fo.err" >&2
    out=$(jq -nc --arg sc "failover" '{system: "herald", scenario_name: $sc, failed: true}')
  else
    out=$(jq -c --argjson node "$leader" --argjson g "$group" --argjson k "$kill_ms" --argjson r "$r" \
      '. + {scenario_name: "failover", run: $r, killed_node: $node, killed_group: $g, kill_unix_ms: $k,
            kill_to_ack_ms: (if $k > 0 and .max_ack_gap_end_unix_ms > 0 then .max_ack_gap_end_unix_ms - $k else null end)}' \
      "$tmp/fo.json")
  fi
  echo "$out" >>"$raw"
  echo "$out" | tee -a "$tmp/results.jsonl"
  [ -s "$tmp/fo.err" ] && sed 's/^/    /' "$tmp/fo.err" | head -n 5 >&2
  # Let the restarted node catch up before the next run.
  [ "$r" = "$fo_runs" ] || sleep 2
done

# Highest lossless deliveries/s: fan-out to 500 at rising rates until a run
# misses a delivery; the last lossless run is reported (latency aside). Last,
# because overload starves raft heartbeats and moves leaders.
want lossless || sweep_rates=""
run_pids=$(cluster_pids) # again: the failover runs restarted a node
[ -z "$sweep_rates" ] || log "throughput-lossless: fan-out 500 at ${sweep_rates// /, } msg/s, ${sweep_s} s each, until a loss"
best=""
for r in $sweep_rates; do
  out=$(run_bench "sweep-500x$r" --env "$envf" --scenario fanout --members 500 --rate "$r" \
    --duration "$sweep_s" --drain 5 --setup-timeout 60)
  lost=$(echo "$out" | jq -r '.lost // 1')
  log "  $r msg/s: $(echo "$out" | jq -r '"\(.deliveries_per_s // 0 | floor) deliveries/s, lost \(.lost // "?"), p99 \((.p99_us // 0) / 1000 | floor) ms"')"
  [ "$lost" = 0 ] || break
  best=$out
done
if [ -n "$best" ]; then
  echo "$best" | jq -c '. + {scenario_name: "throughput-lossless"}' | tee -a "$raw" "$tmp/results.jsonl"
elif ! want lossless; then
  :
else
  jq -nc '{system: "herald", scenario_name: "throughput-lossless", failed: true}' | tee -a "$raw" "$tmp/results.jsonl"
fi


# --- report --------------------------------------------------------------------------
{
  echo
  echo "Herald cluster benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), loopback, 256 B payloads, 3 nodes + gateway + herald-bench on the same cores"
  printf '%-20s %-10s %-8s %9s %9s %9s %12s %22s %9s %10s  %s | %s\n' scenario system target "p50 ms" "p99 ms" "max ms" "last p99 ms" "delivered/expected" "acked/s" "CPU us/dlv" "notes" "durability"
  jq -r '
    def ms: . / 1000 | (. * 10 | round) / 10 | tostring;
    if .failed then [.scenario_name, (.system // "-"), "-", "FAILED", "", "", "", "", "", "", "", ""]
    elif .scenario == "conns" then [.scenario_name, .system, (.target // "-"), "-", "-", "-", "-", "-", "-",
          "\(.server_cpu_s)s",
          "\(.conns) conns authenticated in \(.setup_s) s, server RSS \(.rss_before_kb / 1024 | floor) -> \(.rss_after_kb / 1024 | floor) MiB: \(.rss_per_conn_bytes) bytes/conn",
          (.durability // "-")]
    else [.scenario_name, .system, (.target // "-"), (.p50_us | ms), (.p99_us | ms), (.max_us | ms),
          (if .scenario == "fanout" then (.last_p99_us | ms) else "-" end),
          "\(.delivered)/\(.expected)" + (if .lost > 0 then " LOST \(.lost)" else "" end),
          (.acked_per_s | tostring),
          (.server_cpu_us_per_delivery // "-" | tostring),
          (if .scenario == "failover" then
             "node \(.killed_node) killed: max ack gap \(.max_ack_gap_us | ms) ms, kill->ack \(.kill_to_ack_ms // "-") ms, retries \(.retries), dup acks \(.dup_acks), exactly_once \(.exactly_once), push dups \(.duplicates)"
           elif .scenario == "fanout" then "\(.members) members, kind \(.kind), \(.rate) msg/s"
           else "ack p50/p99 \(.ack_p50_us | ms)/\(.ack_p99_us | ms) ms, window 256, errors \(.errors)" end),
          (.durability // "-")]
    end | @tsv' "$tmp/results.jsonl" |
  while IFS=$'\t' read -r a b c d e f g h i j k l; do
    printf '%-20s %-10s %-8s %9s %9s %9s %12s %22s %9s %10s  %s | %s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i" "$j" "$k" "$l"
  done
  echo "p50/p99/max: delivery latency from each message's scheduled send time (throughput/durable: to the one receiver)."
  echo "failover: kill->ack = SIGKILL of the group leader to the first ack after the longest gap."
  echo "CPU us/dlv: server CPU per delivery over the whole run (herald cluster: all four processes; jetstream: its three nats-server);"
  echo "  conns rows: the server CPU seconds of the run instead. RSS: VmRSS of the process holding the connections (gateway / heraldd dev)."
  echo "Raw runs: $raw"
} >&2
