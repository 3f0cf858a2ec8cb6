#!/usr/bin/env python3
"""rsspeak.py STOPFILE OUT NAME=PID [NAME=PID ...] — samples the memory of
each process every INTERVAL seconds (env RSSPEAK_INTERVAL, default 0.2) until
STOPFILE exists, then writes OUT: one JSON object
  {"samples": N, "interval_s": I,
   "first": {NAME: {"VmRSS": KiB, "RssAnon": KiB, "RssFile": KiB}},
   "peak":  {NAME: {...the largest value of each field seen...}},
   "last":  {NAME: {...}}}
from /proc/PID/status (VmRSS = RssAnon + RssFile + RssShmem). A process that
has gone keeps what was seen of it. Used by it_bigflood.sh (cluster and dev).
"""
import json
import os
import sys
import time

FIELDS = ("VmRSS", "RssAnon", "RssFile")


def read(pid):
    d = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in FIELDS:
                d[k] = int(v.split()[0])
    return d


def main():
    stop, out = sys.argv[1], sys.argv[2]
    procs = dict(a.split("=", 1) for a in sys.argv[3:])
    interval = float(os.environ.get("RSSPEAK_INTERVAL", "0.2"))
    first, peak, last = {}, {n: dict.fromkeys(FIELDS, 0) for n in procs}, {}
    samples = 0
    deadline = time.time() + 3600
    while not os.path.exists(stop) and time.time() < deadline:
        for name, pid in procs.items():
            try:
                d = read(pid)
            except (OSError, ValueError):
                continue
            first.setdefault(name, d)
            last[name] = d
            for k, v in d.items():
                peak[name][k] = max(peak[name][k], v)
        samples += 1
        time.sleep(interval)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"samples": samples, "interval_s": interval, "first": first, "peak": peak,
                   "last": last}, f)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
