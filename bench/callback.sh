#!/usr/bin/env bash
# bench/callback.sh — latency of event callbacks: COUNT messages sent at RATE
# per second through POST /api/v1/conversation/send into a group; an app with
# a callback for the whole tenant gets a `message` event for each. A local
# receiver (HTTP/1.1, answers 200 at once, checks every signature) records
# when each event arrives. Two latencies per event:
#   commit → callback: the event's `time` (the command's commit time) to
#                      the POST's arrival;
#   send → callback:   the start of the API call that sent the message to
#                      the POST's arrival (what an app sees end to end);
# and, since the group's members have no session anywhere, each message's
# `message.offline` (users b2, b3): commit → offline, the message's commit
# to that event's arrival (the gateways' report batch and the leader's
# decision included).
# Against heraldd dev and the 3-node cluster (its gateway's API; the
# deliverer runs on the group's leader node). Prints p50 / p99 / max and
# appends JSON lines to bench/results/callback-DATE.jsonl.
#
#   bench/callback.sh [--count N] [--rate R] [--only dev|cluster]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${HERALD_BIN_DIR:-$root/build/broker}
count=2000 rate=200 only=""
while [ $# -gt 0 ]; do
  case $1 in
    --count) count=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "usage: bench/callback.sh [--count N] [--rate R] [--only dev|cluster]" >&2; exit 2 ;;
  esac
done
[ -x "$B/heraldd" ] || { echo "build first: cmake --build build" >&2; exit 1; }
out=$root/bench/results/callback-$(date +%Y%m%d).jsonl
work=$(mktemp -d /tmp/herald-cbbench-XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  timeout 60 bash "$root/deploy/local-cluster.sh" down --data "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/cbbench.py" <<'PY'
# cbbench.py URL ADMIN_TOKEN HERALD COUNT RATE TARGET OUT: one run.
import hashlib, hmac, http.client, http.server, json, socket, subprocess, sys
import threading, time, urllib.parse

url, admin, herald, count, rate, target, out = sys.argv[1:8]
count, rate = int(count), float(rate)
api = urllib.parse.urlparse(url)
arrived, offline, bad = {}, {}, [0]
done = threading.Event()
cred = {}

class Recv(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        now = time.time() * 1000
        body = self.rfile.read(int(self.headers["Content-Length"]))
        h = self.headers
        msg = b"\n".join([cred["token"].encode(), h["X-Herald-Timestamp"].encode(),
                          h["X-Herald-Nonce"].encode(), body])
        want = hmac.new(cred["secret"].encode(), msg, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, h["X-Herald-Signature"]):
            bad[0] += 1
        ev = json.loads(body)
        if ev["type"] == "message" and ev["conv"] == "cbbench":
            seq = ev["data"]["seq"]
            if seq not in arrived:
                arrived[seq] = (now, ev["time"])
            if len(arrived) >= count and len(offline) >= count:
                done.set()
        elif ev["type"] == "message.offline" and ev["conv"] == "cbbench":
            offline.setdefault(ev["data"]["seq"], (now, ev["data"]["users"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recv)
threading.Thread(target=srv.serve_forever, daemon=True).start()
cb = json.loads(subprocess.check_output(
    [herald, "--admin", "app", "callback", "cbbench", "--all",
     "--url", "http://127.0.0.1:%d/cb" % srv.server_address[1]]))
cred.update(token=cb["token"], secret=cb["secret"])
subprocess.check_output([herald, "--admin", "conv", "create", "--kind", "group",
                         "--members", "b1,b2,b3", "--id", "cbbench"])
time.sleep(1.0)  # the callback reaches every node's deliverer

c = http.client.HTTPConnection(api.hostname, api.port, timeout=30)
def call(method, path, body, tok):
    c.request(method, path, body, {"Authorization": "Bearer " + tok})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit("%s: HTTP %d %s" % (path, r.status, data[:200]))
    return json.loads(data)
tok = call("POST", "/api/v1/user/token", '{"userid":"b1"}', admin)["token"]
started = {}
t0 = time.time()
for i in range(count):
    due = t0 + i / rate
    while time.time() < due:
        time.sleep(max(0.0, due - time.time()))
    s = time.time() * 1000
    seq = call("POST", "/api/v1/conversation/send",
               json.dumps({"conv": "cbbench", "text": "m%d" % i}), tok)["seq"]
    started[seq] = s
done.wait(timeout=60 + count / rate)
srv.shutdown()

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else float("nan")
commit = [arrived[s][0] - arrived[s][1] for s in started if s in arrived]
e2e = [arrived[s][0] - st for s, st in started.items() if s in arrived]
# message.offline: b2 and b3 have no session anywhere; from the message's
# commit to the event's arrival (the decision window included).
off = [offline[s][0] - arrived[s][1] for s in started if s in offline and s in arrived]
wrong = sum(1 for s in started if s in offline and sorted(offline[s][1]) != ["b2", "b3"])
lost = len(started) - len(e2e)
for name, v in (("commit->callback", commit), ("send->callback", e2e),
                ("commit->offline", off)):
    print("%-8s %-17s %5d events  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  lost %d  bad signatures %d"
          % (target, name, len(v), pct(v, 50), pct(v, 99), max(v) if v else 0, lost, bad[0]))
    with open(out, "a") as f:
        f.write(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "target": target, "latency": name, "count": count, "rate": rate,
                            "events": len(v), "p50_ms": round(pct(v, 50), 3),
                            "p99_ms": round(pct(v, 99), 3), "max_ms": round(max(v) if v else 0, 3),
                            "lost": lost, "bad_signatures": bad[0]}) + "\n")
if wrong or len(off) != len(started):
    print("%s message.offline: %d of %d messages, %d with other users than b2, b3"
          % (target, len(off), len(started), wrong))
sys.exit(1 if lost or bad[0] or wrong or len(off) != len(started) else 0)
PY

limits='gateway.api_rate = 1000000
gateway.api_burst = 1000000'
# bench TARGET URL: one run against the process whose env is loaded.
bench() {
  python3 "$work/cbbench.py" "$2" "$("$B/herald" --admin token --user ops)" "$B/herald" \
    "$count" "$rate" "$1" "$out"
}
if [ "$only" != cluster ]; then
  mkdir -p "$work/dev"
  printf '%s\n' "$limits" >"$work/dev.conf"
  "$B/heraldd" dev --data "$work/dev" --config "$work/dev.conf" --listen 127.0.0.1:0 \
    --ws-listen "" --mqtt-listen "" --log-level warn 2>"$work/dev.log" &
  pid=$!
  for _ in $(seq 100); do [ -f "$work/dev/dev.env" ] && break; sleep 0.1; done
  (set -a; . "$work/dev/dev.env"; set +a; PATH=$B:$PATH bench dev "$HERALD_HTTP")
  kill -TERM "$pid"; wait "$pid" || true; pid=""
fi
if [ "$only" != dev ]; then
  lc() { HERALD_BIN_DIR=$B timeout 120 bash "$root/deploy/local-cluster.sh" "$@" --data "$work/cluster"; }
  lc up >/dev/null
  printf '%s\n' "$limits" >>"$work/cluster/gateway.conf"
  { lc kill gateway && lc restart gateway; } >/dev/null
  (set -a; . "$work/cluster/cluster.env"; set +a; bench cluster "$HERALD_HTTP")
fi
echo "results appended to $out"
