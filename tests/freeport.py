#!/usr/bin/env python3
"""freeport.py [N] — prints N (default 1) distinct free loopback TCP ports,
one per line, for a test that must name a port before the process that
listens on it starts (a restart on the same port, a callback URL).

The ports come from outside the kernel's ephemeral range
(net.ipv4.ip_local_port_range): a port from inside it can be taken as the
source port of any outgoing connection another test opens between this
check and the listener's bind, which fails the bind with EADDRINUSE. Outside
it only a process that asks for the port by number can take it. The range
also stays clear of the local cluster's fixed ports (1883 and up, 7400 and
up). Each candidate is bound (without SO_REUSEADDR, so a TIME-WAIT socket
counts as in use) before it is printed."""

import random
import socket
import sys

LOW_FLOOR = 20000  # below it: the local cluster's and well-known ports


def ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def candidates():
    lo, hi = ephemeral_range()
    pool = []
    if lo > LOW_FLOOR:
        pool.extend(range(LOW_FLOOR, lo))
    if hi < 65535:
        pool.extend(range(max(hi + 1, LOW_FLOOR), 65536))
    if not pool:  # the ephemeral range covers everything above the floor
        pool = list(range(LOW_FLOOR, 65536))
    random.shuffle(pool)
    return pool


def bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def main():
    try:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    except ValueError:
        n = 0
    if not 1 <= n <= 64:
        print("usage: freeport.py [N]   (1 <= N <= 64)", file=sys.stderr)
        return 2
    got = []
    for port in candidates()[:4096]:
        if bindable(port):
            got.append(port)
            if len(got) == n:
                print("\n".join(str(p) for p in got))
                return 0
    print(f"freeport.py: found only {len(got)} of {n} free ports", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
