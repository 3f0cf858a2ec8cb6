#!/usr/bin/env bash
# deploy/local-cluster.sh — a three-node Herald cluster and one gateway on
# loopback, for development and failure drills.
#
#   deploy/local-cluster.sh up          [--data DIR]  start (configs written on the first up)
#   deploy/local-cluster.sh down        [--data DIR]  SIGTERM all, SIGKILL stragglers
#   deploy/local-cluster.sh status      [--data DIR]  processes, then `herald admin status`
#   deploy/local-cluster.sh kill N      [--data DIR]  kill -9 node N (1..3, or gateway)
#   deploy/local-cluster.sh restart N   [--data DIR]  (re)start node N (1..3, or gateway)
#
# DIR (default ./var/cluster under the repository) holds node1.conf..node3.conf
# and gateway.conf, the node data dirs node1..node3, NAME.log and NAME.pid per
# process, and cluster.env (HERALD_GATEWAY, HERALD_TENANT, HERALD_SECRET,
# HERALD_WS, the gateway's WebSocket URL, HERALD_MQTT, its MQTT listener,
# HERALD_HTTP, its /metrics, /healthz and /readyz base URL — the same
# variables as dev.env — and HERALD_HTTP_NODE1..3, each node's):
#   set -a; . DIR/cluster.env; set +a
#
# The links between the processes use mutual TLS: the first up makes a
# cluster CA and a certificate per process in DIR/tls (deploy/cluster-certs.sh).
#
# Environment: HERALD_BIN_DIR (heraldd and herald; default build/broker, built
# when missing), HERALD_CLUSTER_PLAINTEXT=1 (first up only: no TLS on the
# links, loopback only), HERALD_GATEWAY_PORT (first up only; default 7400 when free,
# else a free port), HERALD_CONSOLE_DIR (first up only: the gateway's
# gateway.console_dir, the built admin console common/console/dist, served at
# HERALD_HTTP/console/), HERALD_UP_TIMEOUT (seconds to wait for readiness, 20).
# Exit status: 0 done (status: everything up), 1 failure (status: something
# down), 2 usage.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prog=deploy/local-cluster.sh
NODES=(1 2 3)
HOST=127.0.0.1

usage() {
  cat <<EOT
usage: $prog up|down|status [--data DIR]
       $prog kill|restart N [--data DIR]      N: 1..${#NODES[@]} or gateway
EOT
}

die() { echo "$prog: $*" >&2; exit 1; }
usage_error() { echo "$prog: $*" >&2; usage >&2; exit 2; }

# ---- arguments ------------------------------------------------------------
verb="" target="" data=""
while (($#)); do
  case $1 in
    --data) (($# >= 2)) || usage_error "--data needs a directory"; data=$2; shift 2 ;;
    --data=*) data=${1#--data=}; shift ;;
    -h|--help|help) usage; exit 0 ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
      if [ -z "$verb" ]; then verb=$1
      elif [ -z "$target" ]; then target=$1
      else usage_error "unexpected argument '$1'"
      fi
      shift ;;
  esac
done
[ -n "$data" ] || data=$root/var/cluster
case $verb in
  up|down|status)
    [ -z "$target" ] || usage_error "'$verb' takes no argument" ;;
  kill|restart)
    [ -n "$target" ] || usage_error "'$verb' needs N (1..${#NODES[@]} or gateway)"
    case $target in
      gateway) ;;
      [1-9]) ((target <= ${#NODES[@]})) || usage_error "no node $target (1..${#NODES[@]})" ;;
      *) usage_error "'$target' is not a node (1..${#NODES[@]}) or gateway" ;;
    esac ;;
  "") usage_error "missing verb" ;;
  *) usage_error "unknown verb '$verb'" ;;
esac
# Absolute, so the configs stay valid whatever the caller's directory.
case $data in /*) ;; *) data=$PWD/$data ;; esac
data=${data%/}

# ---- processes --------------------------------------------------------------
# A process is NAME (node1..node3, gateway) with DIR/NAME.pid, DIR/NAME.log
# and DIR/NAME.conf.
all_names() { for n in "${NODES[@]}"; do echo "node$n"; done; echo gateway; }
name_of() { if [ "$1" = gateway ]; then echo gateway; else echo "node$1"; fi; }

# Prints the pid of NAME when it is running (and is our heraldd), else fails.
# A stale pid file is removed.
pid_of() {
  local f=$data/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    # Guard against a recycled pid: the command line must be ours.
    if [ ! -r "/proc/$pid/cmdline" ] ||
      tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--config $data/$1.conf"; then
      echo "$pid"
      return 0
    fi
  fi
  rm -f "$f"
  return 1
}

# True while pid runs: a zombie (exited, its parent has not reaped it yet)
# has stopped.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true)
  [ "$st" != Z ]
}

# Sends SIGTERM to each NAME given, waits up to 10 s (a node's own budget,
# node.shutdown_s, is 5 s by default), then SIGKILLs the rest.
stop_procs() {
  local name pid pids=() names=() i
  for name in "$@"; do
    if pid=$(pid_of "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$name")
    fi
  done
  ((${#pids[@]})) || return 0
  for _ in $(seq 100); do
    local alive=0
    for pid in "${pids[@]}"; do alive "$pid" && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if alive "${pids[$i]}"; then
      echo "${names[$i]} (pid ${pids[$i]}) ignored SIGTERM for 10 s: SIGKILL" >&2
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    else
      echo "${names[$i]} stopped"
    fi
    rm -f "$data/${names[$i]}.pid"
  done
}

# ---- binaries ---------------------------------------------------------------
heraldd="" herald=""
find_bins() {
  local dir=${HERALD_BIN_DIR:-$root/build/broker}
  heraldd=$dir/heraldd herald=$dir/herald
  if [ -x "$heraldd" ] && [ -x "$herald" ]; then return 0; fi
  if [ -n "${HERALD_BIN_DIR:-}" ]; then
    die "HERALD_BIN_DIR=$HERALD_BIN_DIR has no heraldd and herald"
  fi
  echo "building heraldd and herald in $root/build ..."
  "$root/deploy/deps.sh"
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$root/build" -j"$(nproc 2>/dev/null || echo 2)" --target heraldd herald_cli \
    >/dev/null
  if [ ! -x "$heraldd" ] || [ ! -x "$herald" ]; then
    die "the build did not produce $heraldd and $herald"
  fi
}

# ---- ports -------------------------------------------------------------------
# Ports in use on this host (any TCP state but TIME-WAIT) from ss when available, plus the
# ones chosen so far (a TIME-WAIT socket does not stop a listener with
# SO_REUSEADDR, which every heraldd listener sets); without ss a connect
# probe tells listeners apart.
declare -A used=()
load_used_ports() {
  local p
  command -v ss >/dev/null 2>&1 || return 0
  while read -r p; do used[$p]=1; done < <(ss -tanH exclude time-wait 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}')
}
port_free() {
  local p=$1
  ((p >= 1 && p <= 65535)) || return 1
  [ -z "${used[$p]:-}" ] || return 1
  ! (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null
}
# First base port from $1 upwards, in steps of 10, with three free ports.
pick_block() {
  local b=$1
  while ((b + 2 < 32768)); do
    if port_free "$b" && port_free $((b + 1)) && port_free $((b + 2)); then
      used[$b]=1 used[$((b + 1))]=1 used[$((b + 2))]=1
      echo "$b"
      return 0
    fi
    b=$((b + 10))
  done
  return 1
}

# ---- configs -----------------------------------------------------------------
conf_get() { sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" | tail -n 1; }
# scheme CONF SECTION: https when SECTION.http_tls is on in DIR/CONF, else http.
scheme() { [ "$(conf_get "$data/$1" "$2.http_tls")" = true ] && echo https || echo http; }

write_configs() {
  local members="" bases=() n b gport wsport mport hport hports=()
  load_used_ports
  if [ -n "${HERALD_GATEWAY_PORT:-}" ]; then
    if ! [[ $HERALD_GATEWAY_PORT =~ ^[0-9]{1,5}$ ]] || ((10#$HERALD_GATEWAY_PORT < 1 ||
      10#$HERALD_GATEWAY_PORT > 65535)); then
      die "HERALD_GATEWAY_PORT=$HERALD_GATEWAY_PORT is not a port (1..65535)"
    fi
    gport=$((10#$HERALD_GATEWAY_PORT))
    port_free "$gport" || die "HERALD_GATEWAY_PORT=$gport is in use"
  elif port_free 7400; then
    gport=7400
  else
    gport=7401
    while ! port_free "$gport"; do
      gport=$((gport + 1))
      ((gport < 32768)) || die "no free port for the gateway"
    done
  fi
  used[$gport]=1
  # The WebSocket port: 7401 when free, else the next free one.
  wsport=7401
  while ! port_free "$wsport"; do
    wsport=$((wsport + 1))
    ((wsport < 32768)) || die "no free port for the gateway's WebSocket"
  done
  used[$wsport]=1
  # MQTT: 1883 when free (a Mosquitto may hold it), else the next free one.
  mport=1883
  while ! port_free "$mport"; do
    mport=$((mport + 1))
    ((mport < 32768)) || die "no free port for the gateway's MQTT listener"
  done
  used[$mport]=1
  # HTTP (metrics, health): the gateway at 7480 when free, the nodes on the
  # next free ports.
  hport=7480
  for n in gateway "${NODES[@]}"; do
    while ! port_free "$hport"; do
      hport=$((hport + 1))
      ((hport < 32768)) || die "no free port for the HTTP endpoints of $n"
    done
    used[$hport]=1
    hports+=("$hport")
  done
  b=7410
  for n in "${NODES[@]}"; do
    b=$(pick_block "$b") || die "no three consecutive free ports for node $n"
    used[$b]=1 used[$((b + 1))]=1 used[$((b + 2))]=1
    bases+=("$b")
    members+="${members:+,}$n=$HOST:$b"
    b=$((b + 10))
  done
  # The links' mutual TLS: a cluster CA and a certificate per process
  # (HERALD_CLUSTER_PLAINTEXT=1: none, loopback only).
  local links_node links_gw
  if [ "${HERALD_CLUSTER_PLAINTEXT:-0}" = 1 ]; then
    links_node="cluster.plaintext = true" links_gw="cluster.plaintext = true"
  else
    rm -rf "$data/tls"
    "$root/deploy/cluster-certs.sh" init "$data/tls" >/dev/null
    for n in "${NODES[@]}"; do "$root/deploy/cluster-certs.sh" issue "$data/tls" "node-$n" >/dev/null; done
    "$root/deploy/cluster-certs.sh" issue "$data/tls" gateway-1 >/dev/null
    links_node="cluster.tls_ca = $data/tls/ca.pem" links_gw="cluster.tls_ca = $data/tls/ca.pem
cluster.tls_cert = $data/tls/gateway-1.pem"
  fi
  for n in "${NODES[@]}"; do
    local links=$links_node
    [ "${HERALD_CLUSTER_PLAINTEXT:-0}" = 1 ] || links+=$'\n'"cluster.tls_cert = $data/tls/node-$n.pem"
    cat >"$data/node$n.conf" <<EOT
# Node $n of the local cluster, written by $prog on the first up.
# All keys and defaults: deploy/node.conf (heraldd sample-config node).
node.id = $n
node.data = $data/node$n
cluster.members = $members
cluster.replication = ${#NODES[@]}
cluster.groups = 8
cluster.tenants = demo
node.http_listen = $HOST:${hports[$n]}
$links
log.level = info
EOT
  done
  local console=""
  if [ -n "${HERALD_CONSOLE_DIR:-}" ]; then
    [ -d "$HERALD_CONSOLE_DIR" ] || die "HERALD_CONSOLE_DIR=$HERALD_CONSOLE_DIR is not a directory (build it: cd common/console && npm ci && npm run build)"
    console="gateway.console_dir = $(cd "$HERALD_CONSOLE_DIR" && pwd)"
  fi
  cat >"$data/gateway.conf" <<EOT
# Gateway of the local cluster, written by $prog on the first up.
# All keys and defaults: deploy/gateway.conf (heraldd sample-config gateway).
gateway.id = 1
gateway.listen = $HOST:$gport
gateway.ws_listen = $HOST:$wsport
gateway.mqtt_listen = $HOST:$mport
gateway.http_listen = $HOST:${hports[0]}
cluster.members = $members
cluster.groups = 8
$links_gw
log.level = info
EOT
  [ -z "$console" ] || echo "$console" >>"$data/gateway.conf"
  echo "wrote $data/node{1..${#NODES[@]}}.conf and gateway.conf: nodes at $members, gateway $HOST:$gport (WebSocket ws://$HOST:$wsport/ws, MQTT $HOST:$mport, metrics http://$HOST:${hports[0]}/metrics)"
}

# 0 when every config is there; 1 when none is; dies on a partial set.
have_configs() {
  local name have=0 missing=()
  for name in $(all_names); do
    if [ -f "$data/$name.conf" ]; then have=1; else missing+=("$name.conf"); fi
  done
  ((${#missing[@]})) || return 0
  ((have)) || return 1
  die "$data holds some configs but not ${missing[*]}: restore them or remove $data"
}

# The ports NAME listens on, from the configs.
ports_of() {
  local b
  if [ "$1" = gateway ]; then
    gateway_addr | sed 's/.*://'
    conf_get "$data/gateway.conf" gateway.http_listen | sed -n 's/.*://p'
  else
    conf_get "$data/$1.conf" node.http_listen | sed -n 's/.*://p'
    b=$(conf_get "$data/$1.conf" cluster.members | tr ',' '\n' | sed -n "s/^ *${1#node} *=.*:\([0-9]*\) *$/\1/p")
    [ -z "$b" ] || echo "$b $((b + 1)) $((b + 2))"
  fi
}

gateway_addr() { conf_get "$data/gateway.conf" gateway.listen; }
tenant_name() { conf_get "$data/node1.conf" cluster.tenants | cut -d, -f1 | tr -d '[:space:]'; }
# HERALD_SECRET from node N's env file for the tenant (empty when not there).
node_secret() {
  local f
  f=$data/node$1/tenant-$(tenant_name).env
  [ -f "$f" ] && sed -n 's/^HERALD_SECRET=//p' "$f" | tail -n 1
  return 0
}

# Creates DIR (and parents) unless it exists; DIR itself 0700 (secrets).
mkdir_private() {
  [ -d "$1" ] && return 0
  mkdir -p "$1"
  chmod 0700 "$1"
}

# ---- start -------------------------------------------------------------------
# Dies when a port NAME (not running) needs has a listener.
check_ports() {
  local p
  for p in $(ports_of "$1"); do
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
      die "$1: port $p is taken by another process (ss -tlnp | grep :$p)"
    fi
  done
}

# Starts NAME unless it runs and says so.
start_proc() {
  local name=$1 mode=node pid
  if pid=$(pid_of "$name"); then echo "$name already running (pid $pid)"; return 0; fi
  [ "$name" = gateway ] && mode=gateway
  [ "$mode" = gateway ] || mkdir_private "$data/$name"
  check_ports "$name"
  echo "== $(date '+%F %T') $prog: heraldd $mode --config $data/$name.conf" >>"$data/$name.log"
  nohup "$heraldd" "$mode" --config "$data/$name.conf" >>"$data/$name.log" 2>&1 </dev/null &
  pid=$!
  # Until the child has exec'd heraldd its command line is this shell's, and
  # pid_of would take it for a recycled pid: wait for the exec (2 s at most).
  for _ in $(seq 40); do
    kill -0 "$pid" 2>/dev/null || break
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--config $data/$name.conf" && break
    sleep 0.05
  done
  echo "$pid" >"$data/$name.pid"
  echo "$name started (pid $pid)"
}

# The log's last lines, to stderr.
show_log() {
  echo "--- last lines of $data/$1.log:" >&2
  tail -n 15 "$data/$1.log" >&2 || true
}

# Pings the gateway with the tenant's admin token.
gw_ping() {
  HERALD_GATEWAY=$(gateway_addr) HERALD_TENANT=$(tenant_name) HERALD_SECRET=$1 \
    HERALD_TOKEN="" "$herald" --timeout 2 --admin ping >/dev/null 2>&1
}

# Waits until every node has the tenant's env file and, when the gateway
# runs, it answers; the processes named in $@ must stay alive meanwhile (and
# for at least a second). Fails on a deadline or a death.
wait_ready() {
  local deadline=$((SECONDS + ${HERALD_UP_TIMEOUT:-20})) start=$SECONDS name n secret pending
  while :; do
    pending=""
    for name in "$@"; do
      pid_of "$name" >/dev/null || {
        echo "$prog: $name exited during start-up" >&2
        show_log "$name"
        return 1
      }
    done
    for n in "${NODES[@]}"; do
      [ -n "$(node_secret "$n")" ] || pending+=" node$n(tenant $(tenant_name))"
    done
    secret=$(node_secret 1)
    if [ -z "$pending" ] && pid_of gateway >/dev/null && ! gw_ping "$secret"; then
      pending=" gateway(ping)"
    fi
    if [ -z "$pending" ] && ((SECONDS > start)); then return 0; fi
    if ((SECONDS >= deadline)); then
      echo "$prog: not ready after ${HERALD_UP_TIMEOUT:-20} s, still waiting for:$pending" >&2
      for name in "$@"; do show_log "$name"; done
      return 1
    fi
    sleep 0.2
  done
}

write_env() {
  local secret tenant n tmp ws mq http
  tenant=$(tenant_name)
  secret=$(node_secret 1)
  for n in "${NODES[@]}"; do
    [ "$(node_secret "$n")" = "$secret" ] ||
      echo "$prog: warning: node$n has a different secret for tenant $tenant" >&2
  done
  tmp=$data/.cluster.env.tmp
  ws=$(conf_get "$data/gateway.conf" gateway.ws_listen)
  mq=$(conf_get "$data/gateway.conf" gateway.mqtt_listen)
  (umask 077; printf 'HERALD_GATEWAY=%s\nHERALD_TENANT=%s\nHERALD_SECRET=%s\n' \
    "$(gateway_addr)" "$tenant" "$secret" >"$tmp"
    [ -z "$ws" ] || printf 'HERALD_WS=ws://%s/ws\n' "$ws" >>"$tmp"
    [ -z "$mq" ] || printf 'HERALD_MQTT=%s\n' "$mq" >>"$tmp"
    http=$(conf_get "$data/gateway.conf" gateway.http_listen)
    [ -z "$http" ] || printf 'HERALD_HTTP=%s://%s\n' "$(scheme gateway.conf gateway)" "$http" >>"$tmp"
    for n in "${NODES[@]}"; do
      http=$(conf_get "$data/node$n.conf" node.http_listen)
      [ -z "$http" ] || printf 'HERALD_HTTP_NODE%s=%s://%s\n' "$n" "$(scheme "node$n.conf" node)" \
        "$http" >>"$tmp"
    done)
  mv -f "$tmp" "$data/cluster.env"
}

summary() {
  local name pid
  echo "herald cluster is up (data $data)"
  for name in $(all_names); do
    pid=$(pid_of "$name" || echo -)
    if [ "$name" = gateway ]; then
      printf '  %-8s pid %-7s client %s\n' "$name" "$pid" "$(gateway_addr)"
    else
      printf '  %-8s pid %-7s %s\n' "$name" "$pid" \
        "$(conf_get "$data/$name.conf" cluster.members | tr ',' '\n' | sed -n "s/^${name#node}=//p") (raft; +1 requests, +2 events)"
    fi
  done
  if [ -n "$(conf_get "$data/gateway.conf" gateway.console_dir)" ]; then
    echo "  console: $(scheme gateway.conf gateway)://$(conf_get "$data/gateway.conf" gateway.http_listen)/console/   (token: $herald --admin token --user admin)"
  fi
  cat <<EOT
  env:     set -a; . $data/cluster.env; set +a    # HERALD_GATEWAY, HERALD_TENANT, HERALD_SECRET
  try:     $herald --as alice conv create --kind group --members alice,bob
  drill:   $prog kill 2; $prog restart 2     (logs: $data/NAME.log)
  stop:    $prog down$( [ "$data" = "$root/var/cluster" ] || printf ' --data %s' "$data")
EOT
}

# ---- verbs -------------------------------------------------------------------
cmd_up() {
  local name
  find_bins
  mkdir_private "$data"
  if ! have_configs; then
    write_configs
  elif [ -n "${HERALD_GATEWAY_PORT:-}" ] &&
    [ "$(gateway_addr)" != "$HOST:$HERALD_GATEWAY_PORT" ]; then
    echo "$prog: warning: HERALD_GATEWAY_PORT ignored: $data/gateway.conf says $(gateway_addr)" >&2
  fi
  if [ -n "${HERALD_CONSOLE_DIR:-}" ] && [ -d "$HERALD_CONSOLE_DIR" ] &&
    [ "$(conf_get "$data/gateway.conf" gateway.console_dir)" != "$(cd "$HERALD_CONSOLE_DIR" && pwd)" ]; then
    echo "$prog: warning: HERALD_CONSOLE_DIR ignored: $data/gateway.conf was written on the first up (set gateway.console_dir there)" >&2
  fi
  for name in $(all_names); do pid_of "$name" >/dev/null || check_ports "$name"; done
  for name in $(all_names); do start_proc "$name"; done
  # shellcheck disable=SC2046 # names have no blanks
  if ! wait_ready $(all_names); then
    echo "$prog: the others are left running for a look: $prog status, then $prog down" >&2
    exit 1
  fi
  write_env
  summary
}

cmd_down() {
  # shellcheck disable=SC2046
  stop_procs gateway $(for n in "${NODES[@]}"; do echo "node$n"; done)
  echo "cluster in $data is down"
}

cmd_status() {
  local name pid down=0 envf=$data/cluster.env
  if [ ! -d "$data" ]; then
    echo "no cluster in $data"
    return 1
  fi
  for name in $(all_names); do
    if pid=$(pid_of "$name"); then
      echo "$name up (pid $pid)"
    else
      echo "$name down"
      down=1
    fi
  done
  if pid_of gateway >/dev/null && [ -f "$envf" ]; then
    herald=${HERALD_BIN_DIR:-$root/build/broker}/herald
    if [ -x "$herald" ]; then
      echo "== herald --admin admin status"
      HERALD_GATEWAY=$(sed -n 's/^HERALD_GATEWAY=//p' "$envf") \
        HERALD_TENANT=$(sed -n 's/^HERALD_TENANT=//p' "$envf") \
        HERALD_SECRET=$(sed -n 's/^HERALD_SECRET=//p' "$envf") HERALD_TOKEN="" \
        "$herald" --timeout 5 --admin admin status || down=1
    fi
  fi
  return "$down"
}

cmd_kill() {
  local name pid
  name=$(name_of "$target")
  if pid=$(pid_of "$name"); then
    kill -KILL "$pid"
    rm -f "$data/$name.pid"
    echo "$name (pid $pid) killed with SIGKILL"
  else
    echo "$name is not running"
  fi
}

cmd_restart() {
  local name
  name=$(name_of "$target")
  have_configs || die "no cluster in $data: run '$prog up' first"
  find_bins
  stop_procs "$name"
  start_proc "$name"
  wait_ready "$name" || exit 1
  write_env # a changed config (gateway port, node.http_tls) shows in cluster.env
  echo "$name is ready"
}

case $verb in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill) cmd_kill ;;
  restart) cmd_restart ;;
esac
