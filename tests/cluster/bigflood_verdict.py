"""bigflood_verdict.py — the part of the bigflood tests' verdict that the
cluster and the dev flood share: every acked SEND stored, every refused one
not, unknown outcomes counted, nothing stored twice. Imported by
tests/cluster/it_bigflood.sh and tests/integration/it_bigflood.sh."""


def ok(s):
    print("ok   - " + s)


def bad(s):
    print("FAIL - " + s)


def stored_as_answered(r, must_refuse=True):
    """Checks herald-checker bigflood's summary r; returns the failures.
    must_refuse False (the sanitizer tree, whose senders may be too slow
    to reach a budget): nothing refused is reported, not judged."""
    n_bad = 0
    if r["acked"] > 0 and r["stored_acked"] == r["acked"] and r["lost"] == 0 and r["bad"] == 0:
        ok("%d acked, all stored at their seq with the same length and hash" % r["acked"])
    else:
        bad("%d acked, %d stored as acked, %d lost, %d with other bytes or seq"
            % (r["acked"], r["stored_acked"], r["lost"], r["bad"]))
        n_bad += 1
    if r["refused"] > 0 and r["stored_refused"] == 0:
        ok("%d refused (%s), none stored" % (r["refused"], ", ".join(
            "%s %d" % kv for kv in r["codes"].items())))
    elif r["refused"] == 0 and r["unknown"] == 0 and not must_refuse:
        print("# nothing was refused: the flood reached no budget (not judged here)")
    elif r["refused"] == 0 and r["unknown"] == 0:
        bad("nothing was refused: the flood reached no budget")
        n_bad += 1
    else:
        bad("%d of %d refused SENDs are stored" % (r["stored_refused"], r["refused"]))
        n_bad += 1
    for a in r["answers"]:
        print("#   %s answered %s x%d, %d of them stored: %s"
              % (a["as"], a["code"], a["n"], a["stored"], a["text"]))
    print("# outcome unknown: %d (UNAVAILABLE etc. %d, unanswered when a connection closed %d), "
          "%d of them stored"
          % (r["unknown"], r["unknown"] - r["unanswered"], r["unanswered"], r["stored_unknown"]))
    if r["duplicated"] or r["foreign"]:
        bad("%d stored twice, %d not ours" % (r["duplicated"], r["foreign"]))
        n_bad += 1
    return n_bad
