#!/usr/bin/env python3
"""cb_verdict.py LOG APP CONV N — judges what cb_receiver.py logged for one
app and conversation: the message events of seqs FIRST..FIRST+N-1 (FIRST
from the env CB_FIRST, default 1) must each have been acknowledged (a 2xx
answer) at least once; every copy of an event carries the same id; the
first acknowledgements come in seq order; no bad signature at all. Prints
"events sent N delivered D duplicated U lost L" and exits 1 unless L = 0
and everything above holds."""
import json
import os
import sys

log, app, conv, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
first = int(os.environ.get("CB_FIRST", "1"))
want = set(range(first, first + n))
acked = {}          # seq -> id
order = []          # seqs in first-ack order
copies = 0          # acknowledged receptions of our events
bad = []
for line in open(log):
    e = json.loads(line)
    if e["sig"] != "ok":
        bad.append("bad signature: " + line.strip())
        continue
    if e["app"] != app or e["conv"] != conv or e["type"] != "message" or e["seq"] not in want:
        continue
    if e["status"] != 200:
        continue
    copies += 1
    s = e["seq"]
    if s in acked:
        if acked[s] != e["id"]:
            bad.append(f"seq {s} came as {acked[s]} and as {e['id']}")
        continue
    acked[s] = e["id"]
    order.append(s)
lost = len(want - set(acked))
dups = copies - len(acked)
print(f"events sent {n} delivered {len(acked)} duplicated {dups} lost {lost}")
if order != sorted(order):
    bad.append(f"out of order: {order}")
for b in bad[:10]:
    print(b)
sys.exit(0 if lost == 0 and not bad else 1)
