# lib.sh — sourced by the tests/integration/it_*.sh scripts after they set
# HERALDD and HERALD: a temp dir, a `heraldd dev` on a free loopback port,
# and the ok / bad / expect reporting. Every wait is bounded.
#
#   it_init NAME           dir=/tmp/herald-NAME-XXXXXX, cleanup on exit
#   start                  heraldd dev on dir (with dir/h.conf when it
#                          exists), waits for dev.env and exports it
#   stop                   SIGTERM and wait; returns heraldd's exit status
#   expect NAME RC PATTERN -- CMD…   runs CMD (20 s cap), checks its exit
#                          status and that stdout+stderr match PATTERN
#   field KEY              the first "KEY":value of stdin's JSON
#   free_ports [N]         N free loopback ports outside the ephemeral
#                          range, one per line (tests/freeport.py)

it_init() {
  dir=$(mktemp -d "/tmp/herald-$1-XXXXXX")
  pid=
  fails=0
  trap it_cleanup EXIT
}

it_cleanup() {
  # A failed run shows the server's last words (a sanitizer report, a crash).
  if [ "${fails:-0}" != 0 ] && [ -s "$dir/heraldd.log" ]; then
    echo "--- heraldd.log (tail):"
    tail -60 "$dir/heraldd.log"
  fi
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  jobs -p | xargs -r kill 2>/dev/null
  rm -rf "$dir"
}

ok()  { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; fails=$((fails + 1)); }

expect() {
  local name=$1 want=$2 pat=$3; shift 4
  local out rc
  out=$(timeout 20 "$@" 2>&1); rc=$?
  if [ "$rc" = "$want" ] && grep -qE -- "$pat" <<<"$out"; then ok "$name"
  else bad "$name (rc=$rc, want $want, /$pat/): $out"; fi
}

free_ports() { python3 "$(dirname "${BASH_SOURCE[0]}")/../freeport.py" "${1:-1}"; }

field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n 1; }

start() {
  local conf=()
  [ -f "$dir/h.conf" ] && conf=(--config "$dir/h.conf")
  rm -f "$dir/dev.env"
  "$HERALDD" dev --data "$dir" "${conf[@]}" --listen 127.0.0.1:0 --log-level warn \
    2>>"$dir/heraldd.log" &
  pid=$!
  for _ in $(seq 150); do [ -f "$dir/dev.env" ] && break; sleep 0.1; done
  [ -f "$dir/dev.env" ] || { echo "heraldd did not start"; cat "$dir/heraldd.log"; exit 1; }
  set -a; . "$dir/dev.env"; set +a
}

stop() { kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=; return $rc; }
