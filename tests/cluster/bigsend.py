#!/usr/bin/env python3
"""bigsend.py GATEWAY TOKEN CONV COUNT BYTES [WINDOW] — sends COUNT messages
of BYTES bytes to CONV over one client connection, WINDOW SENDs in flight
(default 8), and waits for every ACK. Prints "acked N of COUNT in S s" and
exits 0 only when all were acknowledged; an ERROR frame is printed and the
message is counted as not acked (the script does not retry).

Speaks the Herald client protocol v1 (include/herald/protocol.h) with a
minimal msgpack codec of its own (the test machines have no msgpack module).
"""
import socket
import struct
import sys
import time

T_HELLO, T_WELCOME, T_SEND, T_ACK, T_ERROR = 1, 2, 3, 4, 5


def pack(o):
    if isinstance(o, bool):
        return b"\xc3" if o else b"\xc2"
    if isinstance(o, int):
        if o < 128:
            return bytes([o])
        return b"\xcf" + struct.pack(">Q", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(o, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(o)) + bytes(o)
    if isinstance(o, dict):
        out = b"\xdf" + struct.pack(">I", len(o))
        for k, v in o.items():
            out += pack(k) + pack(v)
        return out
    raise TypeError(type(o))


def unpack(b, i=0):
    """Returns (object, next index)."""
    c = b[i]
    i += 1
    if c < 0x80:
        return c, i
    if c >= 0xE0:
        return c - 256, i
    if 0x80 <= c <= 0x8F:
        return _map(b, i, c & 15)
    if 0x90 <= c <= 0x9F:
        return _arr(b, i, c & 15)
    if 0xA0 <= c <= 0xBF:
        n = c & 31
        return b[i:i + n].decode(errors="replace"), i + n
    if c == 0xC0:
        return None, i
    if c in (0xC2, 0xC3):
        return c == 0xC3, i
    sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
    if c in sizes:
        n = sizes[c]
        return int.from_bytes(b[i:i + n], "big", signed=c >= 0xD0), i + n
    lens = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
    if c in lens:
        m = lens[c]
        n = int.from_bytes(b[i:i + m], "big")
        i += m
        raw = b[i:i + n]
        return (raw if c <= 0xC6 else raw.decode(errors="replace")), i + n
    if c in (0xDC, 0xDD):
        m = 2 if c == 0xDC else 4
        return _arr(b, i + m, int.from_bytes(b[i:i + m], "big"))
    if c in (0xDE, 0xDF):
        m = 2 if c == 0xDE else 4
        return _map(b, i + m, int.from_bytes(b[i:i + m], "big"))
    raise ValueError("msgpack type 0x%02x" % c)


def _map(b, i, n):
    d = {}
    for _ in range(n):
        k, i = unpack(b, i)
        v, i = unpack(b, i)
        d[k] = v
    return d, i


def _arr(b, i, n):
    a = []
    for _ in range(n):
        v, i = unpack(b, i)
        a.append(v)
    return a, i


class Conn:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=30)
        self.buf = b""

    def send(self, m):
        p = pack(m)
        self.s.sendall(struct.pack(">I", len(p)) + p)

    def recv(self):
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    p, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return unpack(p)[0]
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk


def main():
    gw, tok, conv, count, size = sys.argv[1:6]
    count, size = int(count), int(size)
    window = int(sys.argv[6]) if len(sys.argv) > 6 else 8
    c = Conn(gw)
    c.send({"t": T_HELLO, "tok": tok, "v": 1})
    w = c.recv()
    if w.get("t") != T_WELCOME:
        print("no WELCOME: %r" % (w,))
        return 1
    body = bytes((i * 131 + 7) & 255 for i in range(size))
    t0 = time.time()
    sent = acked = failed = 0
    inflight = set()
    while acked + failed < count:
        while sent < count and len(inflight) < window:
            sent += 1
            c.send({"t": T_SEND, "rid": sent, "conv": conv, "cmid": "big-%d" % sent,
                    "body": body})
            inflight.add(sent)
        f = c.recv()
        t = f.get("t")
        if t == T_ACK and f.get("rid") in inflight:
            inflight.discard(f["rid"])
            acked += 1
        elif t == T_ERROR and f.get("ref") in inflight:
            inflight.discard(f["ref"])
            failed += 1
            print("send %d: ERROR %s %s" % (f["ref"], f.get("code"), f.get("msg")))
    dt = time.time() - t0
    print("acked %d of %d in %.1f s (%.1f MiB)" % (acked, count, dt, acked * size / 1048576.0))
    return 0 if acked == count else 1


if __name__ == "__main__":
    sys.exit(main())
