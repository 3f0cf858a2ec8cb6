# bench/peers.sh — sourced by compare.sh and cluster.sh: free loopback
# ports, waiting for a listener, stopping what was started, and the two
# multi-process peers: a 3-server NATS JetStream cluster and ejabberd.
#
# The caller sets: tmp (its temp dir), log (a function printing progress to
# stderr). Every process started here is appended to peer_pids; the caller's
# EXIT trap runs peers_stop, which stops them (TERM, then KILL after a
# deadline) before the temp dir is removed.

peer_pids=()
used_ports=" "
# A port below the kernel's ephemeral range (so no outgoing connection can
# hold it) with no socket on it in any state.
eph_lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$eph_lo" -gt 11000 ] || eph_lo=61000
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((10000 + RANDOM % (eph_lo - 10000)))
    case "$used_ports" in *" $p "*) continue ;; esac
    if [ -z "$(ss -Htan "sport = :$p")" ]; then used_ports="$used_ports$p "; echo "$p"; return 0; fi
  done
  log "no free port"; return 1
}
wait_port() { # port pid name: 15 s for a listener on port while pid lives
  for _ in $(seq 150); do
    [ -n "$(ss -Htln "sport = :$1")" ] && return 0
    kill -0 "$2" 2>/dev/null || { log "$3 exited; its log:"; tail -n 20 "$tmp/$3.log" >&2; return 1; }
    sleep 0.1
  done
  log "$3 did not listen on :$1"; return 1
}

# Stops the pids: TERM, up to 10 s for them to go, then KILL. Works for
# processes that are not children of this shell (beam.smp) too.
stop_pids() {
  local p left
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    left=""
    for p in "$@"; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
    [ -n "$left" ] || break
    sleep 0.1
  done
  # shellcheck disable=SC2086
  [ -z "$left" ] || { log "still running after 10 s, killing:$left"; kill -9 $left 2>/dev/null || true; }
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
peers_stop() { stop_pids "${peer_pids[@]}"; peer_pids=(); }

# --- NATS JetStream, 3 servers clustered on loopback -----------------------------
# File storage in $tmp/jetstream/sN; a stream with 3 replicas is made by
# herald-bench itself (drv_jetstream.c). Sets js_url (server 1's client
# address) and js_pids (all three).
start_jetstream() {
  local d=$tmp/jetstream i cp=() rp=() routes="" pid
  mkdir -p "$d"
  for i in 1 2 3; do cp[$i]=$(free_port); rp[$i]=$(free_port); done
  for i in 1 2 3; do routes="$routes${routes:+, }nats-route://127.0.0.1:${rp[$i]}"; done
  js_pids=""
  for i in 1 2 3; do
    cat >"$d/s$i.conf" <<EOF
server_name: herald_bench_js$i
listen: 127.0.0.1:${cp[$i]}
jetstream { store_dir: "$d/s$i" }
cluster {
  name: herald_bench_js
  listen: 127.0.0.1:${rp[$i]}
  routes: [$routes]
}
EOF
    nats-server -c "$d/s$i.conf" >"$tmp/jetstream$i.log" 2>&1 &
    pid=$!
    peer_pids+=("$pid"); js_pids="$js_pids${js_pids:+ }$pid"
  done
  i=1
  for pid in $js_pids; do wait_port "${cp[$i]}" "$pid" "jetstream$i" || return 1; i=$((i + 1)); done
  js_url=127.0.0.1:${cp[1]}
}

# --- ejabberd ------------------------------------------------------------------------
# Run with erl directly (ejabberdctl would switch to the ejabberd user as
# root): its own config, spool (mnesia) and log dirs and HOME (the Erlang
# cookie) in $tmp/ejabberd, a short node name on a fixed distribution port
# (-erl_epmd_port, no epmd is started), c2s on a free loopback port with TLS
# off, mod_muc with MUC history off and no MAM. Users bench-0 ..
# bench-(N-1), password "bench" (drv_xmpp.c), are registered by an -eval
# after the start, which then writes the VM's pid to $tmp/ejabberd/ready.
# start_ejabberd N: sets ej_url and ej_pid (beam.smp).
start_ejabberd() {
  local n=$1 d=$tmp/ejabberd c2s dist pid
  mkdir -p "$d/spool" "$d/logs" "$d/home"
  c2s=$(free_port); dist=$(free_port)
  # max_users_presence: beyond 20 occupants the room stops broadcasting
  # every join to every occupant (500 joins would be 125,000 presences).
  cat >"$d/ejabberd.yml" <<EOF
hosts: ["localhost"]
loglevel: warning
log_rotate_count: 0
certfiles: []
listen:
  - port: $c2s
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    max_stanza_size: 262144
    shaper: none
    backlog: 1024
auth_method: internal
auth_password_format: plain
shaper_rules:
  max_user_sessions: 10
  c2s_shaper: none
  s2s_shaper: none
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
modules:
  mod_muc:
    host: "conference.@HOST@"
    access_create: all
    max_users: 1000
    max_users_presence: 20
    history_size: 0
    default_room_options:
      max_users: 1000
      mam: false
      persistent: false
EOF
  HOME=$d/home ERL_LIBS=/usr/lib/x86_64-linux-gnu EJABBERD_CONFIG_PATH=$d/ejabberd.yml \
    EJABBERD_LOG_PATH=$d/logs/ejabberd.log ERL_CRASH_DUMP=$d/logs/erl_crash.dump \
    erl -sname "herald-bench-$$@localhost" -erl_epmd_port "$dist" -start_epmd false \
      +K true +P 250000 -noinput -mnesia dir "\"$d/spool\"" -s ejabberd \
      -eval "[ok = ejabberd_auth:try_register(list_to_binary(\"bench-\" ++ integer_to_list(I)), <<\"localhost\">>, <<\"bench\">>) || I <- lists:seq(0, $n - 1)], ok = file:write_file(\"$d/ready\", os:getpid())." \
      >"$tmp/ejabberd.log" 2>&1 &
  pid=$!
  peer_pids+=("$pid")
  for _ in $(seq 600); do
    [ -s "$d/ready" ] && break
    kill -0 "$pid" 2>/dev/null || { log "ejabberd exited; its log:"; tail -n 20 "$tmp/ejabberd.log" >&2; return 1; }
    sleep 0.1
  done
  [ -s "$d/ready" ] || { log "ejabberd was not ready in 60 s; its log:"; tail -n 20 "$tmp/ejabberd.log" >&2; return 1; }
  ej_pid=$(cat "$d/ready")
  [ "$ej_pid" = "$pid" ] || peer_pids+=("$ej_pid")
  wait_port "$c2s" "$ej_pid" ejabberd || return 1
  ej_url=127.0.0.1:$c2s
}
