# lib.sh — sourced by the tests/cluster/it_*.sh scripts: reporting and
# reading the cluster's admin status. The script sets `fails=0` and, for
# status_py, defines `cli` (the herald CLI with the cluster's credentials).

# free_ports [N]: N free loopback ports outside the ephemeral range, one per
# line (tests/freeport.py): for a listener started later, or restarted.
free_ports() { python3 "$(dirname "${BASH_SOURCE[0]}")/../freeport.py" "${1:-1}"; }

ok()  { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; fails=$((fails + 1)); }

# status_py EXPR [ARGS]: evaluates python over d = `herald --admin admin
# status` JSON, with groups, grp(g), lag(g, node) and a = ARGS (prints
# nothing when the status is unavailable).
status_py() {
  local expr=$1; shift
  cli --admin admin status 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    sys.exit(1)
a = sys.argv[2:]
groups = d.get("groups") or []
def grp(g):
    for x in groups:
        if int(x.get("group", -1)) == int(g):
            return x
    return {}
def lag(g, n):
    for r in grp(g).get("replicas") or []:
        if int(r.get("node", 0)) == int(n):
            return int(r.get("lag", -1))
    return -1
r = eval(sys.argv[1])
if r is not None:
    print(r)
' "$expr" "$@"
}

# True when every group has a leader.
all_led() {
  [ "$(status_py '1 if groups and all(int(x.get("leader") or 0) > 0 for x in groups) else 0')" = 1 ]
}
