"""ws_check.py — the WebSocket client side of it_ws.sh (python3-websockets,
python3-msgpack): drives a running `heraldd dev` over ws:// or wss:// and
prints one "ok   - ..." or "FAIL - ..." line per check. Every wait has a
deadline.

usage: ws_check.py MODE URL HERALD_CLI CONV [CA_FILE]
  MODE plain: the full set (needs gateway.max_frame 65536, gateway.hello_ms
              1500, gateway.ws_origins https://app.example)
  MODE tls:   handshake, HELLO and a round trip over wss:// (CA_FILE)
  MODE limits: the common path's limits over WebSocket (needs gateway.rate
              5 and gateway.idle_ms 1000): RATE_LIMITED past the burst, an
              idle connection closed with 1001, WebSocket pings keeping one
              open
  MODE cluster: through a cluster gateway: HELLO, pings, SEND and DELIVER
              between WebSocket and TCP clients, a fragmented message, a
              text message and a bad token refused with their close codes
Env: HERALD_GATEWAY, HERALD_TENANT, HERALD_SECRET (for the CLI).
"""
import asyncio
import base64
import os
import socket
import ssl
import struct
import subprocess
import sys
import time

import msgpack
import websockets

T_HELLO, T_WELCOME, T_SEND, T_ACK, T_ERROR, T_DELIVER = 1, 2, 3, 4, 5, 6
T_PING, T_PONG = 18, 19
UNAUTHORIZED = 3

fails = 0


def ok(name):
    print("ok   - " + name, flush=True)


def bad(name):
    global fails
    fails += 1
    print("FAIL - " + name, flush=True)


def check(cond, name, detail=""):
    if cond:
        ok(name)
    else:
        bad(name + (": " + str(detail) if detail else ""))


MODE, URL, CLI, CONV = sys.argv[1:5]
CA = sys.argv[5] if len(sys.argv) > 5 else None
HOST, PORT = URL.split("//")[1].split("/")[0].rsplit(":", 1)
PORT = int(PORT)
SSL = None
if URL.startswith("wss:"):
    SSL = ssl.create_default_context(cafile=CA)


def token(user):
    return subprocess.run([CLI, "token", "--user", user], capture_output=True, text=True,
                          timeout=20, check=True).stdout.strip()


def pack(d):
    return msgpack.packb(d, use_bin_type=True)


async def recv_frame(ws, timeout=5):
    m = await asyncio.wait_for(ws.recv(), timeout)
    if isinstance(m, str):
        raise ValueError("a text message from the server")
    return msgpack.unpackb(m, raw=False)


async def connect(**kw):
    return await websockets.connect(URL, ssl=SSL, open_timeout=5, close_timeout=2,
                                    max_size=None, **kw)


async def hello(user, **kw):
    ws = await connect(**kw)
    await ws.send(pack({"t": T_HELLO, "rid": 1, "tok": token(user), "v": 1}))
    w = await recv_frame(ws)
    if w.get("t") != T_WELCOME:
        raise ValueError("no WELCOME: %r" % w)
    return ws, w


async def closed_with(ws, timeout=5):
    """The close code the server sent, reading what comes before it."""
    try:
        async def drain():
            while True:
                await ws.recv()
        await asyncio.wait_for(drain(), timeout)
    except websockets.ConnectionClosed as e:
        return (e.rcvd.code if e.rcvd else None), (e.rcvd.reason if e.rcvd else "")
    except asyncio.TimeoutError:
        return None, "no close within %s s" % timeout
    return None, ""


async def reply(ws, rid, timeout=5):
    """The answer to request rid (the sender's own sessions get pushes too)."""
    end = time.monotonic() + timeout
    while True:
        f = await recv_frame(ws, max(end - time.monotonic(), 0.01))
        if f.get("rid") == rid or f.get("ref") == rid or f.get("t") == T_ERROR:
            return f


async def wait_deliver(ws, conv, body, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        f = await recv_frame(ws, end - time.monotonic())
        if f.get("t") == T_DELIVER and f["m"]["conv"] == conv and f["m"]["body"] == body:
            return f
    return None


def raw_http(request, timeout=5):
    """Sends bytes on a plain socket; returns the status line's code and
    everything the server wrote before closing."""
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    s.sendall(request)
    data = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    code = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    return code, data


def upgrade_request(path="/ws", extra=b""):
    key = base64.b64encode(os.urandom(16))
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + HOST.encode() +
            b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
            b"\r\nSec-WebSocket-Version: 13\r\n" + extra + b"\r\n")


def raw_ws():
    """A plain socket past the handshake: (socket, leftover bytes)."""
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.sendall(upgrade_request())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ValueError("closed during the handshake")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101 "):
        raise ValueError("no 101: %r" % data[:80])
    return s, data.split(b"\r\n\r\n", 1)[1]


def read_close(s, buf, timeout=5):
    """Reads server frames until a Close; returns (code, seconds taken)."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    while True:
        while len(buf) >= 2:
            n = buf[1] & 0x7f
            h = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = struct.unpack(">H", buf[2:4])[0]
                h = 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n = struct.unpack(">Q", buf[2:10])[0]
                h = 10
            if len(buf) < h + n:
                break
            op, payload, buf = buf[0] & 0x0f, buf[h:h + n], buf[h + n:]
            if op == 8:
                return (struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None,
                        time.monotonic() - t0)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return None, time.monotonic() - t0
        if not chunk:
            return None, time.monotonic() - t0
        buf += chunk


def masked_header(op, n, fin=True):
    b0 = (0x80 if fin else 0) | op
    if n < 126:
        h = bytes([b0, 0x80 | n])
    elif n < 65536:
        h = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    return h + b"\x00\x00\x00\x00"  # a zero mask: payload bytes go as they are


def cli(*args, timeout=20):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)


async def plain():
    a, b = await exchange(65536)

    # A frame near the cap in one message, then one over it.
    big = b"x" * (65536 - 4096 - 64)
    await a.send(pack({"t": T_SEND, "rid": 4, "conv": CONV, "cmid": "ws-big", "body": big}))
    ack = await reply(a, 4)
    check(ack.get("t") == T_ACK and ack.get("rid") == 4, "a 60 KiB message is accepted", ack)
    await b.close()
    await refusals(a)

    # A frame before HELLO.
    ws = await connect()
    await ws.send(pack({"t": T_SEND, "rid": 1, "conv": CONV, "body": b"x"}))
    code, why = await closed_with(ws)
    check(code == 4003, "SEND before HELLO: close 4003", (code, why))

    # No HELLO within gateway.hello_ms (1.5 s).
    ws = await connect()
    t0 = time.monotonic()
    code, why = await closed_with(ws, 8)
    took = time.monotonic() - t0
    check(code == 4003 and took < 5, "no HELLO before the deadline: close 4003 after %.1f s" % took,
          (code, why))

    # A fragmented message whose total passes the cap: 1009 at the fragment
    # that would pass it.
    ws, _ = await hello("alice")
    await ws.send([b"\x81" * 40000, b"\x81" * 40000])
    code, why = await closed_with(ws)
    check(code == 1009, "fragments over the frame cap in total: close 1009", (code, why))

    # Allowed browser origin.
    ws = await connect(origin="https://app.example")
    await ws.send(pack({"t": T_PING, "rid": 1}))
    await ws.close()
    ok("an Origin in gateway.ws_origins is let in")


async def exchange(maxf):
    """HELLO, pings, SEND and DELIVER between WS and TCP, a fragmented
    message; returns alice's and bob's open connections."""
    # Handshake, HELLO/WELCOME, Herald PING and a WebSocket ping.
    a, w = await hello("alice")
    check(w.get("user") == "alice" and w.get("maxf") == maxf,
          "HELLO over WebSocket gets WELCOME (user alice, maxf %d)" % maxf, w)
    await a.send(pack({"t": T_PING, "rid": 7}))
    p = await reply(a, 7)
    check(p.get("t") == T_PONG and p.get("rid") == 7, "Herald PING gets PONG", p)
    pong = await a.ping(b"are you there")
    try:
        await asyncio.wait_for(pong, 5)
        ok("a WebSocket ping is answered with a pong")
    except asyncio.TimeoutError:
        bad("no pong to a WebSocket ping")

    # SEND from WS alice: ACK, DELIVER to WS bob and to a TCP client of bob.
    b, _ = await hello("bob")
    sub = subprocess.Popen([CLI, "--as", "bob", "sub", "--count", "1", "--timeout", "10"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    await asyncio.sleep(1.0)  # the TCP subscriber's HELLO
    await a.send(pack({"t": T_SEND, "rid": 2, "conv": CONV, "cmid": "ws-1",
                       "body": b"from a websocket"}))
    ack = await reply(a, 2)
    check(ack.get("t") == T_ACK and ack.get("rid") == 2 and ack.get("seq", 0) > 0,
          "SEND over WebSocket gets ACK", ack)
    d = await wait_deliver(b, CONV, b"from a websocket")
    check(d is not None and d["m"]["from"] == "alice", "its DELIVER reaches a second WS client")
    try:
        out = sub.communicate(timeout=15)[0]
    except subprocess.TimeoutExpired:
        sub.kill()
        out = sub.communicate()[0]
    check('"text":"from a websocket"' in out, "and a TCP client (herald sub)", out.strip())

    # TCP → WS.
    r = cli("--as", "alice", "send", CONV, "from tcp")
    d = await wait_deliver(b, CONV, b"from tcp")
    check(r.returncode == 0 and d is not None, "a SEND over TCP is DELIVERed to a WS client",
          r.stdout + r.stderr)

    # A message fragmented by the client (websockets sends an iterable as
    # fragments of one message).
    enc = pack({"t": T_SEND, "rid": 3, "conv": CONV, "cmid": "ws-frag",
                "body": b"in three pieces"})
    await a.send([enc[:5], enc[5:11], enc[11:]])
    ack = await reply(a, 3)
    d = await wait_deliver(b, CONV, b"in three pieces")
    check(ack.get("t") == T_ACK and ack.get("rid") == 3 and d is not None,
          "a fragmented message is reassembled into one frame", ack)
    return a, b


async def refusals(a):
    """A text message on a (closes it) and a bad token on a new connection."""
    # Text messages are refused with 1003.
    await a.send("a text message")
    code, why = await closed_with(a)
    check(code == 1003, "a text message is refused: close 1003", (code, why))

    # A bad token: the ERROR, then close 4000 + UNAUTHORIZED.
    ws = await connect()
    await ws.send(pack({"t": T_HELLO, "rid": 1, "tok": "not-a-token", "v": 1}))
    e = await recv_frame(ws)
    code, why = await closed_with(ws)
    check(e.get("t") == T_ERROR and e.get("code") == UNAUTHORIZED and code == 4000 + UNAUTHORIZED,
          "a bad token gets ERROR UNAUTHORIZED and close 4003", (e, code, why))


async def limits():
    # 20 requests at once against a burst of 10: some are refused, not applied.
    a, _ = await hello("alice")
    for i in range(20):
        await a.send(pack({"t": 9, "rid": 100 + i, "conv": CONV, "limit": 1}))  # HISTORY
    limited = answered = 0
    for _ in range(20):
        f = await recv_frame(a)
        if f.get("t") == T_ERROR and f.get("code") == 11:  # RATE_LIMITED
            limited += 1
        else:
            answered += 1
    check(limited >= 5 and answered >= 5,
          "past the burst: %d RATE_LIMITED, %d answered" % (limited, answered))
    # Silent past gateway.idle_ms (1 s): close 1001 (IDLE).
    t0 = time.monotonic()
    code, why = await closed_with(a, 8)
    took = time.monotonic() - t0
    check(code == 1001 and took < 5, "idle: close 1001 after %.1f s" % took, (code, why))
    # WebSocket pings count as traffic: 2.5 s of pings every 0.3 s keep it open.
    b, _ = await hello("bob")
    for _ in range(8):
        pong = await b.ping()
        await asyncio.wait_for(pong, 5)
        await asyncio.sleep(0.3)
    check(b.open, "WebSocket pings keep a connection past gateway.idle_ms")
    code, why = await closed_with(b, 8)
    check(code == 1001, "and it is closed once they stop", (code, why))


async def cluster():
    a, b = await exchange(1048576)
    await b.close()
    await refusals(a)


def raw_checks():
    # A header announcing 16 MiB with a 64 KiB cap: closed with 1009 at once,
    # without the payload ever being sent (so nothing waited for or kept).
    s, rest = raw_ws()
    s.sendall(masked_header(2, 16 << 20))
    code, took = read_close(s, rest)
    s.close()
    check(code == 1009 and took < 2,
          "a 16 MiB header: close 1009 in %.2f s, before any payload" % took, code)

    # The same in the middle of a fragmented message.
    s, rest = raw_ws()
    s.sendall(masked_header(2, 10, fin=False) + b"\x81" * 10 + masked_header(0, 70000))
    code, took = read_close(s, rest)
    s.close()
    check(code == 1009, "a continuation over the cap: close 1009", code)

    # An unmasked client frame is a protocol error.
    s, rest = raw_ws()
    s.sendall(b"\x82\x01\x80")
    code, _ = read_close(s, rest)
    s.close()
    check(code == 1002, "an unmasked client frame: close 1002", code)

    # A client Close is echoed.
    s, rest = raw_ws()
    s.sendall(masked_header(8, 2) + struct.pack(">H", 1000))
    code, _ = read_close(s, rest)
    s.close()
    check(code == 1000, "a client Close 1000 is echoed", code)

    code, _ = raw_http(upgrade_request("/other"))
    check(code == 404, "another path: 404", code)
    code, _ = raw_http(upgrade_request("/ws", b"Origin: https://evil.example\r\n"))
    check(code == 403, "an Origin outside gateway.ws_origins: 403", code)
    code, _ = raw_http(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
    check(code == 400, "a GET without the Upgrade headers: 400", code)
    code, data = raw_http(upgrade_request().replace(b"Version: 13", b"Version: 8"))
    check(code == 426 and b"Sec-WebSocket-Version: 13" in data, "version 8: 426 naming 13", code)
    code, _ = raw_http(b"GET /ws HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n")
    check(code == 431, "a request head over 8 KiB: 431", code)
    code, _ = raw_http(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # never finished
    check(code == 408, "a head never finished: 408 at the HELLO deadline", code)


async def tls():
    a, w = await hello("alice")
    check(w.get("user") == "alice", "wss://: HELLO gets WELCOME")
    b, _ = await hello("bob")
    await a.send(pack({"t": T_SEND, "rid": 2, "conv": CONV, "cmid": "wss-1",
                       "body": b"over wss"}))
    ack = await reply(a, 2)
    d = await wait_deliver(b, CONV, b"over wss")
    check(ack.get("t") == T_ACK and d is not None, "wss://: SEND, ACK and DELIVER", ack)
    pong = await a.ping()
    await asyncio.wait_for(pong, 5)
    ok("wss://: ping answered")
    await a.close()
    await b.close()
    # A plain ws:// client on the TLS port gets nothing that upgrades.
    try:
        ws = await websockets.connect(URL.replace("wss:", "ws:"), open_timeout=3)
        await ws.close()
        bad("a plain ws:// client was upgraded on the TLS port")
    except Exception as e:  # noqa: BLE001 — any failure to upgrade is the point
        ok("a plain ws:// client on the TLS port is not upgraded (%s)" % type(e).__name__)


def main():
    try:
        if MODE == "plain":
            asyncio.run(plain())
            raw_checks()
        elif MODE == "cluster":
            asyncio.run(cluster())
        elif MODE == "limits":
            asyncio.run(limits())
        else:
            asyncio.run(tls())
    except Exception as e:  # noqa: BLE001 — report, do not hang
        bad("unexpected %s: %s" % (type(e).__name__, e))
    sys.exit(1 if fails else 0)


main()
