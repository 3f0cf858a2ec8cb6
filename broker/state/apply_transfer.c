/* apply_transfer.c — customer transfer in the state machine (WeCom's
 * transfer_customer and resigned transfer).
 *
 * A transfer of one customer from employee A to employee B is a sequence of
 * commands, each idempotent, so a retry after a failover is harmless:
 *   TRANSFER_MARK  (meta)  decides: no record, refused, taker at limit, or
 *                          accepted — in service it WAITs (the customer may
 *                          object until the takeover time), resigned it is
 *                          MOVING at once; the taker's count is reserved;
 *   TRANSFER_DUE   (meta)  periodic: waiting transfers whose time has come
 *                          start MOVING;
 *   CONV_HANDOVER  (conv)  the customer's conversation passes A → B (the
 *                          history stays; A can no longer send);
 *   TRANSFER_DONE  (meta)  the contact record moves to B; DONE.
 * A MOVING transfer stays in the schedule (retried every TRANSFER_RETRY_MS)
 * until TRANSFER_DONE, so steps lost with a gateway or a leader are redone.
 *
 * Records (meta db): "xr" ten customer → transfer (state, resigned, from,
 * to, conv, at, due); "xh" ten customer → the last two completed in-service
 * transfers (ms); "cn" ten employee → customers owned (reserved on accept);
 * schedule "xq" due(8) ten customer → nothing. See apply.h. */
#include <herald/error.h>
#include <stdio.h>
#include <string.h>

#include "apply_ops.h"
#include "hstr.h"

#define XFER_CUSTOMERS_MAX 100u   /* customers per call */
#define TRANSFER_RETRY_MS 60000u  /* a MOVING transfer's steps are redone this often */
#define XFER_DUE_BATCH 256u       /* schedule entries per TRANSFER_DUE */

/* A refused outcome with its reason (XFER_WHY_*). */
#define REFUSED(why) (XFER_REFUSED | (why) << XFER_WHY_SHIFT)

/* One customer's transfer record. */
typedef store_transfer xrec;

/* Reads customer's record; *found false when none. */
static int xrec_get(actx *x, herald_str customer, xrec *r, bool *found)
{
    kbuf k;
    MDB_val kv, v;
    int rc;
    key_transfer(&k, x->c->tenant, customer);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    *found = rc == 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return aw_fatal(x, rc);
    return transfer_decode(v, r) ? aw_fatal(x, MDB_CORRUPTED) : 0;
}

static int xrec_put(actx *x, herald_str customer, const xrec *r)
{
    kbuf k;
    rbuf b = {0};
    key_transfer(&k, x->c->tenant, customer);
    rb_u8(&b, r->state);
    rb_u8(&b, r->resigned ? 1 : 0);
    rb_str(&b, herald_str_z(r->from));
    rb_str(&b, herald_str_z(r->to));
    rb_str(&b, herald_str_z(r->conv));
    rb_u64(&b, r->at);
    rb_u64(&b, r->due);
    return aw_put_rec(x, x->s->db.meta, &k, &b);
}

/* Schedule entry: due first, so a cursor from "xq" finds what is due. */
static void key_sched(kbuf *k, uint64_t due, herald_str ten, herald_str customer)
{
    k->n = 0;
    k->over = false;
    kb_id(k, herald_str_z("xq"));
    kb_u64(k, due);
    kb_id(k, ten);
    kb_id(k, customer);
}

/* Moves r's schedule entry to `due` (0 = drop it). */
static int reschedule(actx *x, herald_str ten, herald_str customer, xrec *r, uint64_t due)
{
    kbuf k;
    int rc = 0;
    if (r->due) {
        key_sched(&k, r->due, ten, customer);
        rc = aw_del(x, x->s->db.meta, &k);
    }
    r->due = due;
    if (rc == 0 && due) {
        key_sched(&k, due, ten, customer);
        rc = aw_put(x, x->s->db.meta, &k, "", 0);
    }
    return rc;
}

/* The contact (customer, employee) → conversation; *found false when none. */
static int contact_get(actx *x, herald_str customer, herald_str employee, char *conv,
                       size_t cap, bool *found)
{
    kbuf k;
    MDB_val kv, v;
    int rc;
    key_contact(&k, x->c->tenant, customer);
    kb_id(&k, employee);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    *found = rc == 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return aw_fatal(x, rc);
    if (v.mv_size >= cap)
        return aw_fatal(x, MDB_CORRUPTED);
    memcpy(conv, v.mv_data, v.mv_size);
    conv[v.mv_size] = '\0';
    return 0;
}

static int outcome(actx *x, herald_str customer, const xrec *r, uint32_t status)
{
    apply_xfer e = {0};
    int rc = aw_add_outcome(x, customer, herald_str_z(r ? r->to : NULL),
                         herald_str_z(r ? r->conv : NULL), status);
    if (rc)
        return rc;
    if (r) {
        e.from = arena_dup(x->a, r->from, strlen(r->from));
        e.at = r->at;
        if (!e.from)
            return HERALD_ENOMEM;
    }
    if (x->c->tenant.len) {
        e.tenant = arena_dup(x->a, x->c->tenant.ptr, x->c->tenant.len);
        if (!e.tenant)
            return HERALD_ENOMEM;
    }
    return herald_buf_append(&x->xfer, &e, sizeof e) ? HERALD_ENOMEM : 0;
}

/* How many completed in-service transfers of customer fall in the last 90 days. */
static int recent_transfers(actx *x, herald_str customer, uint32_t *n)
{
    kbuf k;
    MDB_val kv, v;
    int rc;
    *n = 0;
    key_meta(&k, "xh", x->c->tenant, customer);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return aw_fatal(x, rc);
    if (v.mv_size != 16)
        return aw_fatal(x, MDB_CORRUPTED);
    for (int i = 0; i < 2; i++) {
        uint64_t t = be64((const uint8_t *)v.mv_data + 8 * i);
        *n += t && (x->c->ts <= t || x->c->ts - t < TRANSFER_PROTECT_MS);
    }
    return 0;
}

/* A customer's objection to its waiting transfer (the customer acts). */
static int refuse(actx *x)
{
    const cmd *c = x->c;
    xrec r;
    bool found;
    int rc = xrec_get(x, c->user, &r, &found);
    if (rc)
        return rc;
    if (found && r.state == XFER_REFUSED)
        return outcome(x, c->user, &r, REFUSED(XFER_WHY_OBJECTED)); /* again: same answer */
    if (!found || r.state != XFER_WAITING)
        return aw_reject(x, HERALD_ENOT_FOUND, "no transfer of you is waiting");
    r.state = XFER_REFUSED;
    r.at = c->ts; /* when it objected: the objection holds for 90 days */
    rc = reschedule(x, c->tenant, c->user, &r, 0);
    if (rc == 0)
        rc = aw_customers_add(x, herald_str_z(r.to), -1);
    if (rc == 0)
        rc = xrec_put(x, c->user, &r);
    return rc ? rc : outcome(x, c->user, &r, REFUSED(XFER_WHY_OBJECTED));
}

/* Decides one customer of a TRANSFER_MARK. *taker = the taker's count so far. */
static int mark_one(actx *x, herald_str cust, uint32_t limit, uint64_t wait_ms, uint64_t *taker)
{
    const cmd *c = x->c;
    bool resigned = (c->flags & CMD_XFER_RESIGNED) != 0, found, owned, taken;
    char conv[TOKEN_ID_MAX_STORE + 1], other[TOKEN_ID_MAX_STORE + 1];
    uint32_t recent;
    xrec r = {0};
    int rc;

    if (!aw_id_ok(cust))
        return aw_reject(x, HERALD_EINVAL, "invalid customer id");
    rc = xrec_get(x, cust, &r, &found);
    if (rc)
        return rc;
    if (found && (r.state == XFER_WAITING || r.state == XFER_MOVING)) {
        /* One transfer at a time; the same one again reports its state. */
        bool same = herald_str_eq(c->target, r.from) && herald_str_eq(c->name, r.to);
        return outcome(x, cust, &r, same ? r.state : REFUSED(XFER_WHY_PENDING));
    }
    if (found && r.state == XFER_REFUSED && !resigned && herald_str_eq(c->target, r.from) &&
        (c->ts <= r.at || c->ts - r.at < TRANSFER_PROTECT_MS)) {
        /* The customer objected to leaving this employee: that stands (a
         * re-run reports it); a resigned transfer is not its choice. */
        bool same = herald_str_eq(c->name, r.to);
        return outcome(x, cust, same ? &r : NULL, REFUSED(XFER_WHY_OBJECTED));
    }
    rc = contact_get(x, cust, c->target, conv, sizeof conv, &owned);
    if (rc == 0)
        rc = contact_get(x, cust, c->name, other, sizeof other, &taken);
    if (rc)
        return rc;
    if (!owned) {
        /* Done (or refused) already: a retry reports it. */
        if (found && herald_str_eq(c->target, r.from) && herald_str_eq(c->name, r.to) &&
            (r.state == XFER_DONE || r.state == XFER_REFUSED))
            return outcome(x, cust, &r,
                           r.state == XFER_DONE ? XFER_DONE : REFUSED(XFER_WHY_OBJECTED));
        return outcome(x, cust, NULL, XFER_NO_RECORD);
    }
    if (taken)
        return outcome(x, cust, NULL, REFUSED(XFER_WHY_SERVED));
    if (!resigned) {
        rc = recent_transfers(x, cust, &recent);
        if (rc)
            return rc;
        if (recent >= 2)
            return outcome(x, cust, NULL, REFUSED(XFER_WHY_PROTECTED));
    }
    if (*taker + 1 > limit)
        return outcome(x, cust, NULL, XFER_AT_LIMIT);
    r = (xrec){.state = resigned ? XFER_MOVING : XFER_WAITING, .resigned = resigned,
               .at = resigned ? c->ts : c->ts + wait_ms};
    snprintf(r.from, sizeof r.from, "%.*s", (int)c->target.len, c->target.ptr);
    snprintf(r.to, sizeof r.to, "%.*s", (int)c->name.len, c->name.ptr);
    snprintf(r.conv, sizeof r.conv, "%s", conv);
    /* Resigned: the gateway moves it now; the entry redoes the steps if
     * they get lost. In service: the takeover time. */
    rc = reschedule(x, c->tenant, cust, &r, resigned ? c->ts + TRANSFER_RETRY_MS : r.at);
    if (rc == 0)
        rc = aw_customers_add(x, c->name, +1);
    if (rc == 0)
        rc = xrec_put(x, cust, &r);
    if (rc)
        return rc;
    (*taker)++;
    return outcome(x, cust, &r, r.state);
}

/* TRANSFER_MARK: see cmd.h; one outcome per customer, in command order. */
int op_transfer_mark(actx *x)
{
    const cmd *c = x->c;
    uint32_t limit = c->cap ? c->cap : CUSTOMER_LIMIT_DEFAULT;
    uint64_t wait_ms = (uint64_t)(c->win ? c->win : TRANSFER_WAIT_DEFAULT) * 1000u, taker;
    int rc;

    if (herald_str_eq(c->kind, "refuse"))
        return refuse(x);
    if (c->kind.len)
        return aw_reject(x, HERALD_EINVAL, "kind must be empty or refuse");
    if (!c->admin)
        return aw_reject(x, HERALD_EFORBIDDEN, "customer transfers need the admin role");
    if (!aw_id_ok(c->target) || !aw_id_ok(c->name))
        return aw_reject(x, HERALD_EINVAL, "invalid employee id");
    if (hstr_cmp(&c->target, &c->name) == 0)
        return aw_reject(x, HERALD_EINVAL, "from and to are the same employee");
    if (c->n_members == 0 || c->n_members > XFER_CUSTOMERS_MAX)
        return aw_reject(x, HERALD_EINVAL, "1 to 100 customers per call");
    rc = aw_customers_get(x, c->name, &taker);
    for (uint32_t i = 0; i < c->n_members && rc == 0; i++)
        rc = mark_one(x, c->members[i], limit, wait_ms, &taker);
    return rc;
}

/* TRANSFER_DUE: waiting transfers due at ts start moving; moving ones whose
 * steps did not finish are handed out again. Each is re-scheduled a retry
 * interval later (TRANSFER_DONE removes it). */
int op_transfer_due(actx *x)
{
    const cmd *c = x->c;
    herald_str prefix_kind = herald_str_z("xq");
    struct {
        char ten[TOKEN_ID_MAX_STORE + 1];
        char cust[TOKEN_ID_MAX_STORE + 1];
        uint64_t when;
    } due[32];
    uint32_t total = 0;
    int rc = 0;

    /* Collect a few entries, then write (no writes under an open cursor). */
    while (total < XFER_DUE_BATCH && rc == 0) {
        MDB_cursor *cur;
        kbuf k = {0};
        MDB_val kv, v;
        uint32_t n = 0;
        int mrc;
        kb_id(&k, prefix_kind);
        kv = kb_val(&k);
        mrc = mdb_cursor_open(x->txn, x->s->db.meta, &cur);
        if (mrc)
            return aw_fatal(x, mrc);
        for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
             mrc == 0 && n < sizeof due / sizeof due[0];
             mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
            const uint8_t *p = kv.mv_data;
            rcur rk;
            herald_str t, cu;
            if (kv.mv_size < 3 + 8 || memcmp(p, k.b, 3) != 0)
                break;
            if (be64(p + 3) > c->ts)
                break;
            rk = (rcur){.p = p + 11, .left = kv.mv_size - 11};
            t.len = rk.left ? *rk.p : 0;
            t.ptr = (const char *)rk.p + 1;
            if (rk.left < 1u + t.len + 1u) {
                mrc = MDB_CORRUPTED;
                break;
            }
            cu.len = rk.p[1 + t.len];
            cu.ptr = (const char *)rk.p + 2 + t.len;
            if (rk.left != 2u + t.len + cu.len) {
                mrc = MDB_CORRUPTED;
                break;
            }
            snprintf(due[n].ten, sizeof due[n].ten, "%.*s", (int)t.len, t.ptr);
            snprintf(due[n].cust, sizeof due[n].cust, "%.*s", (int)cu.len, cu.ptr);
            due[n].when = be64(p + 3);
            n++;
        }
        mdb_cursor_close(cur);
        if (mrc == MDB_CORRUPTED)
            return aw_fatal(x, mrc);
        if (n == 0)
            break;
        for (uint32_t i = 0; i < n && rc == 0; i++) {
            /* The record is per tenant: act as that tenant's command. */
            cmd sub = *c;
            const cmd *keep = x->c;
            herald_str cust = herald_str_z(due[i].cust);
            xrec r;
            bool found;
            kbuf sk;
            sub.tenant = herald_str_z(due[i].ten);
            x->c = &sub;
            /* The entry read goes; a live transfer gets a new one. */
            key_sched(&sk, due[i].when, sub.tenant, cust);
            rc = aw_del(x, x->s->db.meta, &sk);
            if (rc == 0)
                rc = xrec_get(x, cust, &r, &found);
            if (rc == 0 && found && (r.state == XFER_WAITING || r.state == XFER_MOVING)) {
                if (r.due == due[i].when)
                    r.due = 0;
                r.state = XFER_MOVING;
                rc = reschedule(x, sub.tenant, cust, &r, c->ts + TRANSFER_RETRY_MS);
                if (rc == 0)
                    rc = xrec_put(x, cust, &r);
                if (rc == 0)
                    rc = outcome(x, cust, &r, XFER_MOVING); /* with sub's tenant */
            }
            x->c = keep;
            total++;
        }
        if (rc == 0 && n < sizeof due / sizeof due[0])
            break;
    }
    return rc;
}

/* CONV_HANDOVER: see cmd.h. The customer's 1:1 conversation: from leaves,
 * to joins as owner (all history visible). A customer group: to becomes
 * owner (joining if needed), from stays a member unless resigned. A system
 * message {"event":"transfer","by":…,"members":[from,to]} tells everyone.
 * Handed over already: nothing to do (seq 0). */
int op_conv_handover(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    uint32_t role, from_role = 0, to_role = 0;
    uint64_t joined, from_joined = 1;
    bool from_in, to_in, ext;
    herald_str pair[2] = {c->target, c->name}, body;
    int rc;

    if (!c->admin)
        return aw_reject(x, HERALD_EFORBIDDEN, "transfers need the admin role");
    if (!aw_id_ok(c->target) || !aw_id_ok(c->name) || hstr_cmp(&c->target, &c->name) == 0)
        return aw_reject(x, HERALD_EINVAL, "invalid employees");
    rc = aw_load_conv(x, &sc, &role);
    if (rc)
        return rc;
    if (sc.kind != CONV_SINGLE && sc.kind != CONV_CUSTOMER_GROUP)
        return aw_reject(x, HERALD_EINVAL, "only customer conversations and groups are transferred");
    rc = member_read(x->txn, x->s, c->tenant, c->conv, c->target, &from_role, &from_joined, &ext);
    if (rc && rc != HERALD_ENOT_MEMBER)
        return aw_fatal(x, MDB_CORRUPTED);
    from_in = rc == 0;
    rc = member_read(x->txn, x->s, c->tenant, c->conv, c->name, &to_role, &joined, &ext);
    if (rc && rc != HERALD_ENOT_MEMBER)
        return aw_fatal(x, MDB_CORRUPTED);
    to_in = rc == 0;
    if (sc.kind == CONV_SINGLE) {
        if (!from_in && to_in)
            return 0; /* handed over already */
        if (!from_in)
            return aw_reject(x, HERALD_ENOT_FOUND, "the employee is not in the conversation");
        if (to_in)
            return aw_reject(x, HERALD_EINVAL, "the taker is in the conversation already");
    } else {
        bool to_owns = herald_str_eq(c->name, sc.owner);
        if (to_owns && (!(c->flags & CMD_XFER_RESIGNED) || !from_in))
            return 0; /* handed over already */
        if (!to_owns && !herald_str_eq(c->target, sc.owner))
            return aw_reject(x, HERALD_ENOT_FOUND, "the employee does not own the group");
        if (!to_in && sc.count + 1 > sc.cap)
            return aw_reject_cap(x, sc.kind, sc.cap);
    }
    /* The taker joins (or becomes owner) first, so it gets the message. */
    rc = aw_write_member(x, c->conv, c->name, ROLE_OWNER, to_in ? joined : 1, &sc);
    if (rc)
        return rc;
    sc.count += to_in ? 0 : 1;
    snprintf(sc.owner, sizeof sc.owner, "%.*s", (int)c->name.len, c->name.ptr);
    if (from_in && sc.kind == CONV_CUSTOMER_GROUP) {
        rc = aw_write_member(x, c->conv, c->target, ROLE_MEMBER, from_joined, &sc);
        if (rc)
            return rc;
    }
    rc = aw_system_body(x, "transfer", pair, 2, &body);
    if (rc == 0)
        rc = aw_append_msg(x, c->conv, &sc, HERALD_MK_SYSTEM, 0, body);
    if (rc)
        return rc;
    if (from_in && (sc.kind == CONV_SINGLE || (c->flags & CMD_XFER_RESIGNED))) {
        /* The old owner leaves: it can no longer send. */
        rc = aw_leave(x, c->conv, c->target, from_joined, &sc);
        if (rc)
            return rc;
        sc.count--;
        rc = aw_write_conv(x, c->conv, &sc);
    }
    return rc;
}

/* TRANSFER_DONE: see cmd.h. */
int op_transfer_done(actx *x)
{
    const cmd *c = x->c;
    herald_str cust;
    xrec r;
    bool found;
    kbuf k;
    int rc;

    if (!c->admin)
        return aw_reject(x, HERALD_EFORBIDDEN, "transfers need the admin role");
    if (c->n_members != 1 || !aw_id_ok(c->members[0]) || !aw_id_ok(c->conv))
        return aw_reject(x, HERALD_EINVAL, "one customer and its conversation");
    cust = c->members[0];
    rc = xrec_get(x, cust, &r, &found);
    if (rc)
        return rc;
    if (!found || !herald_str_eq(c->target, r.from) || !herald_str_eq(c->name, r.to) ||
        !herald_str_eq(c->conv, r.conv))
        return aw_reject(x, HERALD_ENOT_FOUND, "no such transfer");
    if (r.state == XFER_DONE)
        return outcome(x, cust, &r, XFER_DONE); /* again: nothing to do */
    if (r.state != XFER_MOVING)
        return aw_reject(x, HERALD_EINVAL, "the transfer is not taking over");
    key_contact(&k, c->tenant, cust);
    kb_id(&k, c->target);
    rc = aw_del(x, x->s->db.meta, &k);
    if (rc == 0) {
        key_contact(&k, c->tenant, cust);
        kb_id(&k, c->name);
        rc = aw_put(x, x->s->db.meta, &k, c->conv.ptr, c->conv.len);
    }
    if (rc == 0)
        rc = aw_customers_add(x, c->target, -1);
    if (rc == 0 && !r.resigned) {
        /* The in-service history: the last two takeovers. */
        MDB_val kv, v;
        uint8_t h[16] = {0};
        key_meta(&k, "xh", c->tenant, cust);
        kv = kb_val(&k);
        rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
        if (rc == 0 && v.mv_size == 16)
            memcpy(h + 8, v.mv_data, 8);
        else if (rc == 0 || rc != MDB_NOTFOUND)
            return aw_fatal(x, rc ? rc : MDB_CORRUPTED);
        put_be64(h, c->ts);
        rc = aw_put(x, x->s->db.meta, &k, h, sizeof h);
    }
    if (rc == 0)
        rc = reschedule(x, c->tenant, cust, &r, 0);
    r.state = XFER_DONE;
    r.at = c->ts;
    if (rc == 0)
        rc = xrec_put(x, cust, &r);
    return rc ? rc : outcome(x, cust, &r, XFER_DONE);
}
