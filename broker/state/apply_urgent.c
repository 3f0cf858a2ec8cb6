/* apply_urgent.c — urgent (DING) messages in the state machine: who must
 * confirm, confirmations, and the reminder schedule (replicated state: a
 * REMIND command applies everything due). See apply.h. */
#include <herald/error.h>
#include <stdio.h>
#include <string.h>

#include "apply_ops.h"

/* Key of a recipient's confirmation of an urgent message. */
static void key_urgent(kbuf *k, herald_str ten, herald_str conv, uint64_t seq)
{
    key_msg(k, ten, conv, seq);
}

int op_confirm(actx *x)
{
    const cmd *c = x->c;
    kbuf k;
    uint64_t at;
    bool found;
    int rc;

    if (!aw_id_ok(c->conv) || !aw_id_ok(c->user))
        return aw_reject(x, HERALD_EINVAL, "invalid id");
    key_urgent(&k, c->tenant, c->conv, c->seq);
    kb_id(&k, c->user);
    rc = aw_get_u64(x, x->s->db.urgent, &k, &at, &found);
    if (rc)
        return rc;
    if (!found)
        return aw_reject(x, HERALD_ENOT_FOUND, "not an urgent message for this user");
    x->r->seq = c->seq;
    return at ? 0 : aw_put_u64(x, x->s->db.urgent, &k, c->ts ? c->ts : 1);
}

/* Pending recipients of one urgent message, appended to reminders. */
typedef struct due_entry {
    uint64_t due;        /* schedule key parts */
    char ten[130];
    char conv[130];
    uint64_t seq;
    uint8_t count;       /* reminders sent so far */
    uint32_t ivl;        /* interval, seconds */
    uint8_t max;         /* reminders before escalation */
} due_entry;

#define REMIND_BATCH 256u /* schedule entries handled per REMIND command */

static int push_reminder(actx *x, const due_entry *e, const char *user, const char *pending,
                         uint32_t count, bool escalate)
{
    apply_remind r = {.seq = e->seq, .count = count, .escalate = escalate};
    r.tenant = arena_dup(x->a, e->ten, strlen(e->ten));
    r.conv = arena_dup(x->a, e->conv, strlen(e->conv));
    r.user = arena_dup(x->a, user, strlen(user));
    r.pending = pending ? arena_dup(x->a, pending, strlen(pending)) : NULL;
    if (!r.tenant || !r.conv || !r.user || (pending && !r.pending) ||
        herald_buf_append(&x->rem, &r, sizeof r) != 0)
        return HERALD_ENOMEM;
    return 0;
}

/* Collects pending users of e into a comma list and reminds each. */
typedef struct pend_ctx {
    actx *x;            /* context */
    const due_entry *e; /* the message */
    herald_buf list;    /* "u1,u2" */
    uint32_t n;         /* pending users */
    bool escalate;      /* reminders ran out */
} pend_ctx;

static int remind_pending(actx *x, const due_entry *e, pend_ctx *p)
{
    MDB_cursor *cur;
    kbuf k;
    MDB_val kv, v;
    size_t plen;
    int rc = 0, mrc;

    key_urgent(&k, herald_str_z(e->ten), herald_str_z(e->conv), e->seq);
    plen = k.n;
    mrc = mdb_cursor_open(x->txn, x->s->db.urgent, &cur);
    if (mrc)
        return aw_fatal(x, mrc);
    kv = kb_val(&k);
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        const uint8_t *kp = kv.mv_data;
        char user[130];
        uint32_t ul;
        if (kv.mv_size <= plen + 1 || memcmp(kp, k.b, plen) != 0)
            break;
        ul = kp[plen];
        if (plen + 1 + ul != kv.mv_size || v.mv_size != 8 || ul >= sizeof user) {
            rc = aw_fatal(x, MDB_CORRUPTED);
            break;
        }
        if (be64(v.mv_data) != 0)
            continue; /* confirmed */
        memcpy(user, kp + plen + 1, ul);
        user[ul] = '\0';
        if ((p->n && herald_buf_append(&p->list, ",", 1) != 0) ||
            herald_buf_append(&p->list, user, ul) != 0) {
            rc = HERALD_ENOMEM;
            break;
        }
        p->n++;
        if (!p->escalate) {
            rc = push_reminder(x, e, user, NULL, (uint32_t)e->count + 1, false);
            if (rc)
                break;
        }
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && !rc)
        rc = aw_fatal(x, mrc);
    mdb_cursor_close(cur);
    return rc;
}

/* REMIND: every schedule entry due at ts (up to REMIND_BATCH): remind the
 * pending recipients and reschedule, or — when the reminders ran out —
 * escalate to the sender once and drop the entry. Entries with nobody
 * pending are dropped. The schedule is state like any other: a new leader
 * continues it. */
int op_remind(actx *x)
{
    const cmd *c = x->c;
    due_entry *due = arena_alloc(x->a, REMIND_BATCH * sizeof *due);
    MDB_cursor *cur;
    MDB_val kv, v;
    uint32_t n = 0;
    int rc = 0, mrc;

    if (!due)
        return HERALD_ENOMEM;
    mrc = mdb_cursor_open(x->txn, x->s->db.remind, &cur);
    if (mrc)
        return aw_fatal(x, mrc);
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_FIRST); mrc == 0 && n < REMIND_BATCH;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        const uint8_t *kp = kv.mv_data;
        due_entry *e = &due[n];
        size_t off = 8, tl, cl;
        rcur r = rc_of(v);
        if (kv.mv_size < 8)
            goto drop;
        e->due = be64(kp);
        if (e->due > c->ts)
            break;
        if (kv.mv_size < 8 + 1 + 1 + 8)
            goto drop;
        tl = kp[off];
        if (off + 1 + tl + 1 > kv.mv_size || tl >= sizeof e->ten)
            goto drop;
        memcpy(e->ten, kp + off + 1, tl);
        e->ten[tl] = '\0';
        off += 1 + tl;
        cl = kp[off];
        if (off + 1 + cl + 8 != kv.mv_size || cl >= sizeof e->conv)
            goto drop;
        memcpy(e->conv, kp + off + 1, cl);
        e->conv[cl] = '\0';
        e->seq = be64(kp + off + 1 + cl);
        e->count = rc_u8(&r);
        e->ivl = rc_u32(&r);
        e->max = rc_u8(&r);
        if (r.bad)
            goto drop;
        n++;
        continue;
    drop:
        /* A malformed entry would be due forever: drop it (every replica
         * sees the same bytes and drops the same entry). */
        mrc = mdb_cursor_del(cur, 0);
        if (mrc) {
            mdb_cursor_close(cur);
            return aw_fatal(x, mrc);
        }
        n++;
    }
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return aw_fatal(x, mrc);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const due_entry *e = &due[i];
        pend_ctx p = {.x = x, .e = e, .escalate = e->count >= e->max};
        kbuf k;
        aw_key_remind(&k, e->due, herald_str_z(e->ten), herald_str_z(e->conv), e->seq);
        rc = aw_del(x, x->s->db.remind, &k);
        if (rc == 0)
            rc = remind_pending(x, e, &p);
        if (rc == 0 && p.n && p.escalate) {
            /* Tell the sender (read from the message) with the list. */
            kbuf mk;
            MDB_val mkv, mv;
            rcur r;
            herald_str from;
            char sender[130];
            key_msg(&mk, herald_str_z(e->ten), herald_str_z(e->conv), e->seq);
            mkv = kb_val(&mk);
            if (mdb_get(x->txn, x->s->db.msg, &mkv, &mv) != 0) {
                herald_buf_free(&p.list);
                return aw_fatal(x, MDB_CORRUPTED);
            }
            r = rc_of(mv);
            from = rc_str(&r);
            if (r.bad || from.len >= sizeof sender) {
                herald_buf_free(&p.list);
                return aw_fatal(x, MDB_CORRUPTED);
            }
            memcpy(sender, from.ptr, from.len);
            sender[from.len] = '\0';
            rc = herald_buf_append(&p.list, "", 1) == 0
                     ? push_reminder(x, e, sender, (const char *)p.list.data, e->count, true)
                     : HERALD_ENOMEM;
        } else if (rc == 0 && p.n) {
            rc = aw_put_remind(x, c->ts + (uint64_t)e->ivl * 1000u, herald_str_z(e->ten),
                            herald_str_z(e->conv), e->seq, (uint8_t)(e->count + 1), e->ivl,
                            e->max);
        }
        herald_buf_free(&p.list);
    }
    return rc;
}

