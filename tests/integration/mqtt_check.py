#!/usr/bin/env python3
"""mqtt_check.py — Herald's MQTT 3.1.1 listener with real clients.

Run by it_mqtt.sh (and the cluster run) against a running heraldd whose
env (HERALD_GATEWAY, HERALD_TENANT, HERALD_SECRET) is exported; argv:
HERALD_CLI MQTT_HOST MQTT_PORT. Uses mosquitto_pub / mosquitto_sub,
paho-mqtt and raw sockets (for DUP resends and keep-alive), and reads back
over Herald's own protocol with the herald CLI. Every wait is bounded.
Prints "ok - …" / "FAIL - …" and exits 1 on any failure.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

HERALD, HOST, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
RUN = os.environ.get("IT_MQTT_RUN", str(os.getpid()))  # names apart per run
fails = 0


def ok(name):
    print(f"ok   - {name}", flush=True)


def bad(name):
    global fails
    fails += 1
    print(f"FAIL - {name}", flush=True)


def check(cond, name, detail=""):
    if cond:
        ok(name)
    else:
        bad(f"{name}: {detail}")


def herald(*args, user="alice"):
    r = subprocess.run([HERALD, "--as", user, *args], capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout, r.stderr


def token(user):
    r = subprocess.run([HERALD, "token", "--user", user], capture_output=True, text=True,
                       timeout=20)
    return r.stdout.strip()


def history(conv, user="alice"):
    rc, out, _ = herald("history", conv, "--limit", "1000", user=user)
    return [json.loads(l) for l in out.splitlines() if l.strip()] if rc == 0 else []


def texts(conv, user="alice"):
    return [m["text"] for m in history(conv, user) if m.get("kind") == "text"]


def mosq(tool, *args, timeout=15):
    r = subprocess.run([tool, "-h", HOST, "-p", str(PORT), "-V", "mqttv311", *args],
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


# ---- raw MQTT over a socket ---------------------------------------------------

def rl(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def s16(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack(">H", len(b)) + b


def pkt(first, body):
    return bytes([first]) + rl(len(body)) + body


def connect_pkt(cid, user, password, clean=True, keepalive=60):
    flags = (0x02 if clean else 0) | (0x80 if user else 0) | (0x40 if password else 0)
    body = s16("MQTT") + bytes([4, flags]) + struct.pack(">H", keepalive) + s16(cid)
    if user:
        body += s16(user)
    if password:
        body += s16(password)
    return pkt(0x10, body)


def publish_pkt(topic, payload, qos=1, pid=1, dup=False):
    first = 0x30 | (qos << 1) | (0x08 if dup else 0)
    body = s16(topic) + (struct.pack(">H", pid) if qos else b"") + payload.encode()
    return pkt(first, body)


class Raw:
    def __init__(self, timeout=10):
        self.s = socket.create_connection((HOST, PORT), timeout=timeout)
        self.buf = b""

    def send(self, b):
        self.s.sendall(b)

    def read_packet(self):
        """(type, flags, body) or None at EOF."""
        while True:
            if len(self.buf) >= 2:
                n, mul, i = 0, 1, 1
                while i < len(self.buf):
                    n += (self.buf[i] & 0x7F) * mul
                    mul *= 128
                    if not self.buf[i] & 0x80:
                        break
                    i += 1
                else:
                    i = None
                if i is not None and len(self.buf) >= i + 1 + n:
                    p = self.buf[: i + 1 + n]
                    self.buf = self.buf[i + 1 + n:]
                    return p[0] >> 4, p[0] & 15, p[i + 1:]
            try:
                d = self.s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return None
            if not d:
                return None
            self.buf += d

    def connect(self, cid, user, password, clean=True, keepalive=60):
        self.send(connect_pkt(cid, user, password, clean, keepalive))
        p = self.read_packet()
        return p[2] if p and p[0] == 2 else None  # CONNACK body: flags, code

    def close(self):
        self.s.close()


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


# ---- setup ----------------------------------------------------------------------

room, secret = f"room-{RUN}", f"secret-{RUN}"
tok = {u: token(u) for u in ("alice", "bob", "carol")}
herald("conv", "create", "--kind", "group", "--members", "alice,bob", "--id", room)
herald("conv", "create", "--kind", "group", "--members", "alice,carol", "--id", secret)

# ---- credentials -----------------------------------------------------------------

rc, out = mosq("mosquitto_pub", "-u", "alice", "-P", "not-a-token", "-t", f"conv/{room}",
               "-m", "x", "-q", "1")
check(rc != 0 and "bad user name or password" in out.lower(), "a bad password is refused (CONNACK 4)",
      f"rc={rc} {out!r}")
rc, out = mosq("mosquitto_pub", "-u", "bob", "-P", tok["alice"], "-t", f"conv/{room}", "-m", "x",
               "-q", "1")
check(rc != 0 and "bad user name or password" in out.lower(),
      "a user name that is not the token's user is refused", f"rc={rc} {out!r}")
r = Raw()
ack = r.connect("raw-nopass", "alice", None)
check(ack == b"\x00\x04", "no password: CONNACK 4", repr(ack))
r.close()
check("x" not in texts(room), "nothing stored from refused connections")

# ---- publish QoS 1 and 0: stored, delivered to MQTT and Herald subscribers -----

# Both subscribers first make their session (a persistent MQTT session, a
# saved Herald sync key), then listen live: one that connects late still
# gets everything from its session, so a loaded machine cannot fail this.
sub_args = ["mosquitto_sub", "-h", HOST, "-p", str(PORT), "-V", "mqttv311", "-u", "bob", "-P",
            tok["bob"], "-c", "-i", f"bob-live-{RUN}", "-t", f"conv/{room}", "-q", "1", "-v"]
state = f"/tmp/mqtt-check-bob-{RUN}.state"
subprocess.run(sub_args + ["-W", "1"], capture_output=True, timeout=15)
subprocess.run([HERALD, "--as", "bob", "sub", "--state", state, "--timeout", "1"],
               capture_output=True, timeout=15)
sub = subprocess.Popen(sub_args + ["-C", "2", "-W", "15"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
hsub = subprocess.Popen([HERALD, "--as", "bob", "sub", "--state", state, "--count", "2",
                         "--timeout", "15"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True)
time.sleep(1.0)
rc1, o1 = mosq("mosquitto_pub", "-u", "alice", "-P", tok["alice"], "-t", f"conv/{room}", "-m",
               "hello at qos 1", "-q", "1")
rc0, o0 = mosq("mosquitto_pub", "-u", "alice", "-P", tok["alice"], "-t", f"conv/{room}", "-m",
               "hello at qos 0", "-q", "0")
check(rc1 == 0 and rc0 == 0, "mosquitto_pub QoS 1 and 0 accepted", f"{o1!r} {o0!r}")
sout, _ = sub.communicate(timeout=20)
hout, _ = hsub.communicate(timeout=20)
try:
    os.unlink(state)
except OSError:
    pass
check(f"conv/{room} hello at qos 1" in sout and f"conv/{room} hello at qos 0" in sout,
      "an MQTT subscriber gets both", repr(sout))
check('"text":"hello at qos 1"' in hout and '"text":"hello at qos 0"' in hout,
      "a Herald TCP client gets both", repr(hout))
check(wait_for(lambda: texts(room)[-2:] == ["hello at qos 1", "hello at qos 0"], 5),
      "both are stored (history over Herald's protocol)", repr(texts(room)))

# A Herald client's message reaches an MQTT subscriber (json envelope: sender, seq).
got = []
c = mqtt.Client(client_id=f"bob-json-{RUN}", clean_session=True, protocol=mqtt.MQTTv311)
c.username_pw_set("bob", tok["bob"])
c.on_message = lambda cl, u, m: got.append((m.topic, m.payload))
subacks = []
c.on_subscribe = lambda cl, u, mid, q: subacks.append(q)
c.connect(HOST, PORT, keepalive=30)
c.loop_start()
c.subscribe([(f"json/conv/{room}", 1), (f"conv/{secret}", 1), ("foo/bar", 1), ("conv/+", 0)])
wait_for(lambda: subacks, 10)
check(subacks and list(subacks[0]) == [1, 128, 128, 0],
      "SUBACK: granted json/conv/ID 1, a conversation of others 0x80, outside conv/ 0x80, conv/+ 0",
      repr(subacks))
herald("send", room, "from the herald cli")
wait_for(lambda: len(got) >= 2, 10)
env = [json.loads(p) for t, p in got if t == f"json/conv/{room}"]
raw = [p for t, p in got if t == f"conv/{room}"]
check(env and env[0]["from"] == "alice" and env[0]["body"] == "from the herald cli"
      and env[0]["seq"] == history(room)[-1]["seq"],
      "json/conv/ID: the envelope carries sender and seq", repr(got))
check(raw == [b"from the herald cli"], "conv/+ gets the raw body once", repr(got))
c.loop_stop()
c.disconnect()

# ---- DUP resend is not stored twice; a reused packet id is a new message -------

r = Raw()
check(r.connect(f"dup-{RUN}", "alice", tok["alice"], clean=False) == b"\x00\x00",
      "raw CONNECT clean=0 accepted")
r.send(publish_pkt(f"conv/{room}", "dup me", pid=5))
p1 = r.read_packet()
r.send(publish_pkt(f"conv/{room}", "dup me", pid=5, dup=True))
p2 = r.read_packet()
r.send(publish_pkt(f"conv/{room}", "pid 5 reused", pid=5))
p3 = r.read_packet()
check(p1 == p2 == p3 == (4, 0, b"\x00\x05"), "each QoS 1 publish gets its PUBACK", f"{p1} {p2} {p3}")
# Sent, then the connection drops before the PUBACK is read; resent with DUP
# on a new connection of the same persistent session.
r.send(publish_pkt(f"conv/{room}", "dup across reconnect", pid=6))
time.sleep(0.5)
r.close()
r = Raw()
ack = r.connect(f"dup-{RUN}", "alice", tok["alice"], clean=False)
check(ack == b"\x01\x00", "reconnect clean=0: session present", repr(ack))
r.send(publish_pkt(f"conv/{room}", "dup across reconnect", pid=6, dup=True))
check(r.read_packet() == (4, 0, b"\x00\x06"), "the DUP resend after reconnect is acknowledged")
r.close()
t = texts(room)
check(t.count("dup me") == 1 and t.count("pid 5 reused") == 1 and t.count("dup across reconnect") == 1,
      "DUP resends stored once, the reused packet id stored as a new message", repr(t[-6:]))

# ---- unauthorized publish, QoS 2, retain ----------------------------------------

r = Raw()
r.connect(f"bob-bad-{RUN}", "bob", tok["bob"])
r.send(publish_pkt(f"conv/{secret}", "bob sneaks in", pid=1))
check(r.read_packet() is None, "QoS 1 publish to a conversation of others: connection closed")
r.close()
check("bob sneaks in" not in texts(secret), "… and not stored")
rc, out = mosq("mosquitto_pub", "-u", "alice", "-P", tok["alice"], "-t", f"conv/{room}", "-m",
               "at qos 2", "-q", "2")
check("at qos 2" not in texts(room), "QoS 2 refused, nothing stored", f"rc={rc} {out!r}")
r = Raw()
r.connect(f"retain-{RUN}", "alice", tok["alice"])
r.send(pkt(0x33, s16(f"conv/{room}") + struct.pack(">H", 1) + b"retained?"))
check(r.read_packet() is None and "retained?" not in texts(room),
      "RETAIN refused: connection closed, nothing stored")
r.close()

# ---- persistent session: what was sent while away, once, then live --------------

got2 = []
lock = threading.Lock()


def on_msg(cl, u, m):
    with lock:
        got2.append(m.payload.decode())


def client(clean):
    cl = mqtt.Client(client_id=f"bob-phone-{RUN}", clean_session=clean, protocol=mqtt.MQTTv311)
    cl.username_pw_set("bob", tok["bob"])
    cl.on_message = on_msg
    flags = []
    cl.on_connect = lambda c2, u, f, rc: flags.append((f.get("session present"), rc))
    cl.acks = []  # SUBACK / UNSUBACK message ids
    cl.on_subscribe = lambda c2, u, mid, q: cl.acks.append(mid)
    cl.on_unsubscribe = lambda c2, u, mid: cl.acks.append(mid)
    cl.connect(HOST, PORT, keepalive=30)
    cl.loop_start()
    wait_for(lambda: flags, 10)
    return cl, flags


c, fl = client(False)
mid = c.subscribe(f"conv/+", 1)[1]
wait_for(lambda: mid in c.acks, 10)
herald("send", room, "before going away")
wait_for(lambda: "before going away" in got2, 10)
c.loop_stop()
c.disconnect()
for i in range(3):
    herald("send", room, f"while away {i}")
c, fl = client(False)  # no SUBSCRIBE: the session keeps it
check(fl and fl[0] == (1, 0), "reconnect clean=0: CONNACK session present", repr(fl))
wait_for(lambda: sum(x.startswith("while away") for x in got2) >= 3, 10)
herald("send", room, "live again")
wait_for(lambda: "live again" in got2, 10)
time.sleep(0.5)
c.loop_stop()
c.disconnect()
with lock:
    seen = list(got2)
check(seen == ["before going away", "while away 0", "while away 1", "while away 2", "live again"],
      "the messages sent while away come once, in order, before new ones", repr(seen))

got2.clear()
herald("send", room, "missed by a clean session")
c, fl = client(True)
check(fl and fl[0] == (0, 0), "clean=1: no session present", repr(fl))
mid = c.subscribe(f"conv/{room}", 1)[1]
wait_for(lambda: mid in c.acks, 10)
herald("send", room, "after clean start")
wait_for(lambda: "after clean start" in got2, 10)
c.loop_stop()
c.disconnect()
check(got2 == ["after clean start"], "clean session 1 starts from now", repr(got2))

# UNSUBSCRIBE: no more deliveries of that conversation.
got2.clear()
c, fl = client(True)
mid = c.subscribe(f"conv/{room}", 0)[1]
wait_for(lambda: mid in c.acks, 10)
mid = c.unsubscribe(f"conv/{room}")[1]
wait_for(lambda: mid in c.acks, 10)
herald("send", room, "after unsubscribe")
time.sleep(1.0)
c.loop_stop()
c.disconnect()
check(got2 == [], "nothing after UNSUBSCRIBE", repr(got2))

# ---- a QoS 1 subscriber that does not acknowledge: the window, then SYNC -------

slow = f"slow-{RUN}"
herald("conv", "create", "--kind", "group", "--members", "alice,bob", "--id", slow)


def parse_publish(p):
    t, fl, body = p
    tl = struct.unpack(">H", body[:2])[0]
    topic = body[2:2 + tl].decode()
    qos = (fl >> 1) & 3
    pid = struct.unpack(">H", body[2 + tl:4 + tl])[0] if qos else 0
    return topic, qos, pid, body[2 + tl + (2 if qos else 0):].decode()


def read_publishes(r, quiet=1.0, limit=10000, ack=False):
    out = []
    r.s.settimeout(quiet)
    while len(out) < limit:
        p = r.read_packet()
        if p is None:
            break
        if p[0] != 3:
            continue
        topic, qos, pid, payload = parse_publish(p)
        out.append((pid, payload))
        if ack:
            r.send(bytes([0x40, 2]) + struct.pack(">H", pid))
    return out


N = 300
r = Raw()
check(r.connect(f"slow-{RUN}", "bob", tok["bob"], clean=False) == b"\x00\x00", "slow subscriber connected")
r.send(pkt(0x82, struct.pack(">H", 1) + s16(f"conv/{slow}") + b"\x01"))
check(r.read_packet() == (9, 0, b"\x00\x01\x01"), "slow subscriber: SUBACK QoS 1")
pub = subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(PORT), "-V", "mqttv311", "-u", "alice",
                      "-P", tok["alice"], "-t", f"conv/{slow}", "-q", "1", "-l"],
                     input="".join(f"slow {i}\n" for i in range(N)), capture_output=True, text=True,
                     timeout=60)
check(pub.returncode == 0, f"mosquitto_pub -l: {N} QoS 1 publishes acknowledged", pub.stderr)
# Deliveries follow the stored order (seq), and one client's pipelined
# publishes to a conversation are stored in the order sent: in heraldd dev,
# and through the cluster's gateway, which sends a conversation's requests
# on one rpc lane (README, MQTT).
stored = texts(slow, "bob")
check(sorted(stored) == sorted(f"slow {i}" for i in range(N)), f"all {N} stored once", repr(stored[:3]))
want = [f"slow {i}" for i in range(N)]
at = next((i for i in range(N) if i >= len(stored) or stored[i] != want[i]), N)
check(stored == want, "stored in the order published", f"first difference at {at}: {stored[max(0, at - 2):at + 4]!r}")
first = read_publishes(r, quiet=2.0)
check(len(first) == 128 and [x[1] for x in first] == stored[:128],
      "without PUBACKs: exactly the 128-message window, in stored order", f"{len(first)} received")
for pid, _ in first[:100]:
    r.send(bytes([0x40, 2]) + struct.pack(">H", pid))
more = read_publishes(r, quiet=1.5)
r.close()
# 100 acknowledged made room for 100 more (SYNC from the key), unacknowledged too.
check([x[1] for x in more] == stored[128:228],
      "100 PUBACKs: the next 100 follow through SYNC, in order", f"{len(more)}: {more[:2]}…")
r = Raw()
check(r.connect(f"slow-{RUN}", "bob", tok["bob"], clean=False) == b"\x01\x00",
      "slow subscriber back (session present)")
rest = read_publishes(r, quiet=2.0, ack=True)
r.close()
check([x[1] for x in rest] == stored[100:],
      "after reconnect: from the first unacknowledged one to the end, once each, in order",
      f"{len(rest)}: {rest[:1]} … {rest[-1:]}")

# ---- keep-alive ------------------------------------------------------------------

r = Raw(timeout=8)
r.connect(f"ka-{RUN}", "alice", tok["alice"], keepalive=1)
r.send(bytes([0xC0, 0]))
check(r.read_packet() == (13, 0, b""), "PINGREQ answered with PINGRESP")
t0 = time.time()
gone = r.read_packet() is None
el = time.time() - t0
check(gone and 1.0 <= el <= 4.0, "keep-alive 1 s: closed after ~1.5 s of silence", f"{el:.2f}s")
r.close()

print(f"{'FAIL' if fails else 'ok'}: mqtt_check {fails} failure(s)", flush=True)
sys.exit(1 if fails else 0)
