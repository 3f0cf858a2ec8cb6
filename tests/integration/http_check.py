#!/usr/bin/env python3
"""http_check.py — checks of heraldd's HTTP endpoints (broker/http/).

  http_check.py metrics URL            GET URL/metrics, parse it strictly
                                       (text format 0.0.4), print
                                       "name{labels} value" per sample
  http_check.py get URL PATH           status and body of one GET
  http_check.py raw HOST PORT          the bad-request drill: prints one
                                       "ok - ..." or "FAIL - ..." line each

Exit status 0 when every check passed, 1 otherwise. Every socket has a
deadline."""
import re
import socket
import sys
import time
import urllib.error
import urllib.request

NAME = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_metrics(text):
    """Strict parse; returns {(name, labels): value} or raises ValueError."""
    if not text.endswith("\n"):
        raise ValueError("exposition does not end with a newline")
    types, helps, samples, seen_family = {}, {}, {}, []
    for no, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                if not NAME.match(parts[2]):
                    raise ValueError("line %d: bad metric name %r" % (no, parts[2]))
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ValueError("line %d: bad TYPE" % no)
                    if parts[2] in types:
                        raise ValueError("line %d: second TYPE for %s" % (no, parts[2]))
                    if any(k[0] == parts[2] or k[0].startswith(parts[2] + "_") and
                           types.get(parts[2]) for k in samples):
                        pass
                    types[parts[2]] = parts[3]
                    seen_family.append(parts[2])
                else:
                    if parts[2] in helps:
                        raise ValueError("line %d: second HELP for %s" % (no, parts[2]))
                    helps[parts[2]] = parts[3] if len(parts) == 4 else ""
            continue
        if not line:
            raise ValueError("line %d: empty line" % no)
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)( -?\d+)?$', line)
        if not m:
            raise ValueError("line %d: not a sample: %r" % (no, line))
        name, lbl, value = m.group(1), m.group(3) or "", m.group(4)
        labels, pos = [], 0
        while pos < len(lbl):
            lm = LABEL.match(lbl, pos)
            if not lm:
                raise ValueError("line %d: bad labels %r" % (no, lbl))
            labels.append((lm.group(1), lm.group(2)))
            pos = lm.end()
            if pos < len(lbl):
                if lbl[pos] != ",":
                    raise ValueError("line %d: bad labels %r" % (no, lbl))
                pos += 1
        if len({k for k, _ in labels}) != len(labels):
            raise ValueError("line %d: repeated label" % no)
        try:
            v = float(value)
        except ValueError:
            raise ValueError("line %d: bad value %r" % (no, value))
        family = name
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and types.get(name[:-len(suf)]) == "histogram":
                family = name[:-len(suf)]
        if family not in types:
            raise ValueError("line %d: sample %s before its TYPE" % (no, name))
        if seen_family[-1] != family:
            raise ValueError("line %d: %s not grouped with its family" % (no, name))
        if types[family] == "counter" and (v < 0 or not name.endswith("_total")):
            raise ValueError("line %d: counter %s negative or without _total" % (no, name))
        key = (name, tuple(labels))
        if key in samples:
            raise ValueError("line %d: duplicate series %s" % (no, line))
        samples[key] = v
    # Histograms: cumulative buckets ending in +Inf equal to _count.
    for fam, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == fam + "_bucket":
                rest = tuple(l for l in labels if l[0] != "le")
                le = dict(labels)["le"]
                series.setdefault(rest, []).append((float(le), v))
        for rest, b in series.items():
            b.sort()
            if b[-1][0] != float("inf"):
                raise ValueError("%s: no +Inf bucket" % fam)
            if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
                raise ValueError("%s: buckets not cumulative" % fam)
            if samples.get((fam + "_count", rest)) != b[-1][1]:
                raise ValueError("%s: +Inf bucket != _count" % fam)
            if (fam + "_sum", rest) not in samples:
                raise ValueError("%s: no _sum" % fam)
    for fam in types:
        if fam not in helps:
            raise ValueError("%s: no HELP" % fam)
    return samples


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def raw(host, port, data, wait=5.0, close_after_send=False, trickle=None):
    """Sends data, returns (bytes received, closed by the server?)."""
    s = socket.create_connection((host, port), timeout=wait)
    s.settimeout(wait)
    if trickle:
        for chunk in trickle:
            try:
                s.sendall(chunk)
            except OSError:
                break
            time.sleep(1.0)
    else:
        s.sendall(data)
    if close_after_send:
        s.shutdown(socket.SHUT_WR)
    got, closed, end = b"", False, time.time() + wait
    while time.time() < end:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not b:
            closed = True
            break
        got += b
    s.close()
    return got, closed


def drill(host, port):
    fails = 0

    def check(name, cond, detail=""):
        nonlocal fails
        print(("ok   - " if cond else "FAIL - ") + name + ("" if cond else ": " + detail))
        fails += 0 if cond else 1

    req = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    got, closed = raw(host, port, req, wait=1.5)
    check("keep-alive: 200 and the connection stays open", got.startswith(b"HTTP/1.1 200")
          and b"Connection: keep-alive" in got and not closed, repr(got[:200]))
    got, closed = raw(host, port, req + req.replace(b"/healthz", b"/readyz") +
                      b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", wait=3)
    check("pipelining: three answers in order, then closed",
          got.count(b"HTTP/1.1 ") == 3 and got.index(b"200 OK") < got.index(b"404 Not Found")
          and closed, repr(got[:400]))
    got, closed = raw(host, port, b"GET /healthz HTTP/1.0\r\n\r\n")
    check("HTTP/1.0 without keep-alive: answered and closed",
          got.startswith(b"HTTP/1.1 200") and closed, repr(got[:200]))
    got, closed = raw(host, port, b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
    check("oversized head: 431 and closed", got.startswith(b"HTTP/1.1 431") and closed and
          b'"errcode":2' in got, repr(got[:200]))
    got, closed = raw(host, port, b"DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n", wait=1.5)
    check("bad method: 405 with a JSON body", got.startswith(b"HTTP/1.1 405") and
          b'{"errcode":20,' in got, repr(got[:300]))
    got, closed = raw(host, port, b"BREW /metrics HTTP/1.1\r\nHost: t\r\n\r\n", wait=1.5)
    check("unknown method: 405", got.startswith(b"HTTP/1.1 405"), repr(got[:200]))
    got, closed = raw(host, port, b"GET /metrics HTTP/2.0\r\nHost: t\r\n\r\n")
    check("HTTP/2.0: 505 and closed", got.startswith(b"HTTP/1.1 505") and closed, repr(got[:200]))
    got, closed = raw(host, port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
    check("garbage: 400 and closed", got.startswith(b"HTTP/1.1 400") and closed, repr(got[:200]))
    got, closed = raw(host, port, b"POST /metrics HTTP/1.1\r\nHost: t\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
    check("chunked body: 501", got.startswith(b"HTTP/1.1 501") and closed, repr(got[:200]))
    got, closed = raw(host, port, b"POST /metrics HTTP/1.1\r\nHost: t\r\n"
                      b"Content-Length: 2000000\r\n\r\n")
    check("body over the cap: 413 before it is sent", got.startswith(b"HTTP/1.1 413") and
          closed, repr(got[:200]))
    got, closed = raw(host, port, b"GET /metrics HTTP/1.1\r\n\r\n")
    check("HTTP/1.1 without Host: 400", got.startswith(b"HTTP/1.1 400"), repr(got[:200]))
    # Slowloris: a byte a second never completes the head; the server gives
    # the request 10 s from its first byte, then 408 and close.
    t0 = time.time()
    head = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 30
    got, closed = raw(host, port, None, wait=4, trickle=[head[i:i + 1] for i in range(len(head))])
    if not closed:
        more, closed = raw(host, port, b"", wait=0.1)
    took = time.time() - t0
    check("slowloris: 408 within the request timeout", got.startswith(b"HTTP/1.1 408") and
          closed and 9 <= took <= 16, "%r after %.1f s" % (got[:200], took))
    # The connection cap (64): the 65th gets 503.
    socks = []
    try:
        for _ in range(64):
            socks.append(socket.create_connection((host, port), timeout=5))
        time.sleep(0.3)
        got, closed = raw(host, port, req, wait=2)
        check("connection cap: 503 past 64", got.startswith(b"HTTP/1.1 503") and closed,
              repr(got[:200]))
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    got, closed = raw(host, port, req, wait=1)
    check("after the cap: served again", got.startswith(b"HTTP/1.1 200"), repr(got[:200]))
    return fails


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "metrics":
        st, hdr, body = get(sys.argv[2] + "/metrics")
        if st != 200 or not hdr.get("Content-Type", "").startswith("text/plain; version=0.0.4"):
            print("FAIL - GET /metrics: %s %s" % (st, hdr.get("Content-Type")))
            return 1
        try:
            samples = parse_metrics(body)
        except ValueError as e:
            print("FAIL - /metrics: %s" % e)
            return 1
        for (name, labels), v in sorted(samples.items()):
            lab = ",".join('%s="%s"' % kv for kv in labels)
            print("%s{%s} %s" % (name, lab, repr(v)))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "get":
        st, _, body = get(sys.argv[2] + sys.argv[3])
        print(st, body.strip())
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "raw":
        return 1 if drill(sys.argv[2], int(sys.argv[3])) else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
