#!/usr/bin/env python3
"""cb_receiver.py — an event-callback receiver for the tests: verifies the
signature of every POST (README "Event callbacks"), appends each verified
event to a log (one JSON line each), and answers what a control file says.

  cb_receiver.py PORT SECRETS MODE LOG

SECRETS: a JSON file {"APP": {"token": T, "secret": S}, …}, re-read per
request (a callback set again gets a new secret). MODE: a file holding
"ok" (answer 200), "500", or "slow" (answer 200 after 1.5 s: past a 1 s
callback.timeout_ms the sender gives up and sends it again); re-read per
request; missing = ok. LOG: lines
{"id", "app", "type", "conv", "seq", "sig": "ok"|"bad", "status"} (and
"users", "from" of a message.offline); an
event with a bad signature gets 401 and a "bad" line. Runs until killed."""
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, SECRETS, MODE, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def verify(secret, token, ts, nonce, body, sig):
    msg = token.encode() + b"\n" + ts.encode() + b"\n" + nonce.encode() + b"\n" + body
    want = hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig)


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        try:
            ev = json.loads(body)
            secrets = json.load(open(SECRETS))
            s = secrets[ev["app"]]
            ok = verify(s["secret"], s["token"], self.headers["X-Herald-Timestamp"],
                        self.headers["X-Herald-Nonce"], body,
                        self.headers["X-Herald-Signature"])
            ok = ok and self.headers["X-Herald-Event-Id"] == ev["id"]
            ok = ok and abs(time.time() - int(self.headers["X-Herald-Timestamp"])) < 300
        except Exception as e:  # noqa: BLE001 — any malformed request is a bad one
            ev, ok = {"error": str(e)}, False
        try:
            mode = open(MODE).read().strip()
        except OSError:
            mode = "ok"
        status = 401 if not ok else (500 if mode == "500" else 200)
        line = {"id": ev.get("id"), "app": ev.get("app"), "type": ev.get("type"),
                "conv": ev.get("conv"), "seq": (ev.get("data") or {}).get("seq")
                if isinstance(ev.get("data"), dict) else None,
                "sig": "ok" if ok else "bad", "status": status}
        if isinstance(ev.get("data"), dict) and "body" in ev["data"]:
            line["body"] = ev["data"]["body"][:60]
            line["enc"] = ev["data"].get("encoding")
        if isinstance(ev.get("data"), dict) and "users" in ev["data"]:
            line["users"] = ev["data"]["users"]
            line["from"] = ev["data"].get("from")
        with open(LOG, "a") as f:
            f.write(json.dumps(line) + "\n")
        if mode == "slow":
            time.sleep(1.5)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
