/* apply_tenant.c — tenant-level state in the state machine (kept in group
 * 0 with the tenants): the tenants themselves, do-not-disturb, the
 * directory, external contacts and tags, mass-message decisions, the slot
 * map. See apply.h. */
#include <herald/error.h>
#include <stdio.h>
#include <string.h>

#include "apply_ops.h"
#include "hstr.h"
#include "slots.h"
#include "token.h"

/* TENANT_CREATE: a new tenant with its secret and settings (defaults
 * filled in here, so the record holds every value). */
int op_tenant_create(actx *x)
{
    const cmd *c = x->c;
    uint8_t secret[TOKEN_SECRET_LEN];
    char hex[TOKEN_SECRET_HEX + 1];
    kbuf k = {0};
    MDB_val kv, v;
    rbuf r = {0};
    int rc;

    if (!aw_id_ok(c->tenant))
        return aw_reject(x, HERALD_EINVAL, "invalid tenant id");
    if (c->secret.len != TOKEN_SECRET_HEX)
        return aw_reject(x, HERALD_EINVAL, "secret must be 64 hex characters");
    memcpy(hex, c->secret.ptr, TOKEN_SECRET_HEX);
    hex[TOKEN_SECRET_HEX] = '\0';
    if (token_secret_from_hex(hex, secret) != 0)
        return aw_reject(x, HERALD_EINVAL, "secret must be 64 hex characters");
    kb_id(&k, herald_str_z("t"));
    kb_id(&k, c->tenant);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == 0)
        return aw_reject(x, HERALD_EEXISTS, "tenant exists");
    if (rc != MDB_NOTFOUND)
        return aw_fatal(x, rc);
    rb_str(&r, (herald_str){.ptr = (const char *)secret, .len = TOKEN_SECRET_LEN});
    rb_u32(&r, c->cap ? c->cap : CONV_CAP_GROUP_DEFAULT);
    rb_u64(&r, c->win ? c->win : RECALL_WINDOW_DEFAULT);
    rb_u32(&r, c->ivl ? c->ivl : URGENT_INTERVAL_DEFAULT);
    rb_u32(&r, c->max ? c->max : URGENT_MAX_DEFAULT);
    rb_str(&r, c->corp);
    rb_u8(&r, (c->flags & CMD_TENANT_NO_RECEIPTS) ? 1 : 0);
    rb_u32(&r, c->dedup_s ? (c->dedup_s > APP_DEDUP_MAX ? APP_DEDUP_MAX : c->dedup_s)
                          : APP_DEDUP_DEFAULT);
    rb_u32(&r, c->freq ? c->freq : APP_FREQ_DEFAULT);
    rb_u32(&r, c->climit ? c->climit : CUSTOMER_LIMIT_DEFAULT);
    rb_u32(&r, c->xwait ? c->xwait : TRANSFER_WAIT_DEFAULT);
    return aw_put_rec(x, x->s->db.meta, &k, &r);
}

/* DND: on until seq (ms; 0 = until turned off) or off. Kept with the
 * tenants (meta role); the result's seq is the stored until (0 = off). */
int op_dnd(actx *x)
{
    const cmd *c = x->c;
    kbuf k;
    if (!aw_id_ok(c->user))
        return aw_reject(x, HERALD_EINVAL, "invalid user id");
    key_dnd(&k, c->tenant, c->user);
    if (!(c->flags & 1)) {
        x->r->seq = 0;
        return aw_del(x, x->s->db.meta, &k);
    }
    if (c->seq && c->seq <= c->ts)
        return aw_reject(x, HERALD_EINVAL, "until is in the past");
    x->r->seq = c->seq ? c->seq : UINT64_MAX;
    return aw_put_u64(x, x->s->db.meta, &k, x->r->seq);
}

/* Directory changes are the tenant admin's. */
static int admin_only(actx *x)
{
    return x->c->admin ? 0 : aw_reject(x, HERALD_EFORBIDDEN, "directory changes need the admin role");
}

static bool short_text(herald_str s) { return s.len <= 128; }

static int dept_exists(actx *x, herald_str dept, bool *found)
{
    kbuf k;
    MDB_val kv, v;
    int rc;
    key_dir_dept(&k, x->c->tenant, dept);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    *found = rc == 0;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : aw_fatal(x, rc);
}

int op_dir_user(actx *x)
{
    const cmd *c = x->c;
    uint8_t kind = herald_str_eq(c->kind, "internal") ? DIR_INTERNAL
                   : herald_str_eq(c->kind, "external") ? DIR_EXTERNAL
                                                        : 0;
    kbuf k;
    rbuf r = {0};
    bool found = true;
    int rc = admin_only(x);

    if (rc)
        return rc;
    if (!aw_id_ok(c->target))
        return aw_reject(x, HERALD_EINVAL, "invalid user id");
    if (!kind)
        return aw_reject(x, HERALD_EINVAL, "kind must be internal or external");
    if (!short_text(c->name) || !short_text(c->title))
        return aw_reject(x, HERALD_EINVAL, "name and title are at most 128 bytes");
    if (c->dept.len) {
        if (!aw_id_ok(c->dept))
            return aw_reject(x, HERALD_EINVAL, "invalid department id");
        rc = dept_exists(x, c->dept, &found);
        if (rc)
            return rc;
        if (!found)
            return aw_reject(x, HERALD_ENOT_FOUND, "no such department");
    }
    key_dir_user(&k, c->tenant, c->target);
    rb_u8(&r, kind);
    rb_str(&r, c->name);
    rb_str(&r, c->title);
    rb_str(&r, c->dept);
    return aw_put_rec(x, x->s->db.meta, &k, &r);
}

/* Moving a department under one of its own descendants would make a cycle:
 * walk up from the new parent (depth-bounded). */
static int no_cycle(actx *x)
{
    const cmd *c = x->c;
    char at[TOKEN_ID_MAX + 1];
    snprintf(at, sizeof at, "%.*s", (int)c->parent.len, c->parent.ptr);
    for (int depth = 0; depth < 64 && at[0]; depth++) {
        kbuf k;
        MDB_val kv, v;
        store_dir_dept d;
        int rc;
        if (herald_str_eq(c->dept, at))
            return aw_reject(x, HERALD_EINVAL, "a department cannot be moved under itself");
        key_dir_dept(&k, c->tenant, herald_str_z(at));
        kv = kb_val(&k);
        rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc || dir_dept_decode(v, &d) != 0)
            return aw_fatal(x, rc ? rc : MDB_CORRUPTED);
        snprintf(at, sizeof at, "%s", d.parent);
    }
    return at[0] ? aw_reject(x, HERALD_EINVAL, "department tree deeper than 64") : 0;
}

int op_dir_dept(actx *x)
{
    const cmd *c = x->c;
    kbuf k;
    rbuf r = {0};
    bool found;
    int rc = admin_only(x);

    if (rc)
        return rc;
    if (!aw_id_ok(c->dept))
        return aw_reject(x, HERALD_EINVAL, "invalid department id");
    if (!short_text(c->name))
        return aw_reject(x, HERALD_EINVAL, "name is at most 128 bytes");
    if (c->parent.len) {
        /* The parent must exist already, so the tree has no cycles. */
        if (!aw_id_ok(c->parent) || hstr_cmp(&c->parent, &c->dept) == 0)
            return aw_reject(x, HERALD_EINVAL, "invalid parent department");
        rc = dept_exists(x, c->parent, &found);
        if (rc)
            return rc;
        if (!found)
            return aw_reject(x, HERALD_ENOT_FOUND, "no such parent department");
        rc = no_cycle(x);
        if (rc)
            return rc;
    }
    key_dir_dept(&k, c->tenant, c->dept);
    rb_str(&r, c->name);
    rb_str(&r, c->parent);
    return aw_put_rec(x, x->s->db.meta, &k, &r);
}

/* CONTACT_ADD: the enterprise records that `target` (an employee) owns the
 * relationship with customer `name`; `conv` is their 1:1 conversation
 * (created in its own shard by the gateway first). Idempotent. */
int op_contact_add(actx *x)
{
    const cmd *c = x->c;
    kbuf k;
    int rc = x->c->admin ? 0 : aw_reject(x, HERALD_EFORBIDDEN, "contacts are managed by an admin");
    if (rc)
        return rc;
    if (!aw_id_ok(c->target) || !aw_id_ok(c->name) || !aw_id_ok(c->conv))
        return aw_reject(x, HERALD_EINVAL, "invalid id");
    key_contact(&k, c->tenant, c->name);
    kb_id(&k, c->target);
    {
        MDB_val kv = kb_val(&k), v;
        rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
        if (rc == MDB_NOTFOUND) {
            /* A new relationship counts towards the employee's customers. */
            rc = aw_customers_add(x, c->target, +1);
        } else if (rc) {
            return aw_fatal(x, rc);
        } else {
            return 0; /* recorded already (a transfer may have moved it here) */
        }
    }
    return rc ? rc : aw_put(x, x->s->db.meta, &k, c->conv.ptr, c->conv.len);
}

/* TAG: add or remove tags on a customer; both indexes move together. */
int op_tag(actx *x)
{
    const cmd *c = x->c;
    bool add = herald_str_eq(c->kind, "add");
    static const uint8_t one = 1;
    int rc = x->c->admin ? 0 : aw_reject(x, HERALD_EFORBIDDEN, "tags are managed by an admin");

    if (rc)
        return rc;
    if (!add && !herald_str_eq(c->kind, "remove"))
        return aw_reject(x, HERALD_EINVAL, "kind must be add or remove");
    if (!aw_id_ok(c->target))
        return aw_reject(x, HERALD_EINVAL, "invalid customer id");
    if (c->n_members == 0 || c->n_members > TAGS_PER_CALL_MAX)
        return aw_reject(x, HERALD_EINVAL, "1 to 100 tags per call");
    for (uint32_t i = 0; i < c->n_members; i++)
        if (!aw_id_ok(c->members[i]))
            return aw_reject(x, HERALD_EINVAL, "invalid tag id");
    for (uint32_t i = 0; i < c->n_members && rc == 0; i++) {
        kbuf by_customer, by_tag;
        key_tags_of(&by_customer, c->tenant, c->target);
        kb_id(&by_customer, c->members[i]);
        key_tagged(&by_tag, c->tenant, c->members[i]);
        kb_id(&by_tag, c->target);
        if (add) {
            rc = aw_put(x, x->s->db.meta, &by_customer, &one, 1);
            if (rc == 0)
                rc = aw_put(x, x->s->db.meta, &by_tag, &one, 1);
        } else {
            rc = aw_del(x, x->s->db.meta, &by_customer);
            if (rc == 0)
                rc = aw_del(x, x->s->db.meta, &by_tag);
        }
    }
    return rc;
}

static int mass_outcome(actx *x, herald_str customer, const char *owner, size_t olen,
                        const char *conv, size_t clen, uint32_t status)
{
    return aw_add_outcome(x, customer,
                       owner ? (herald_str){.ptr = owner, .len = (uint32_t)olen} : (herald_str){0},
                       conv ? (herald_str){.ptr = conv, .len = (uint32_t)clen} : (herald_str){0},
                       status);
}

/* Owners of one customer (contacts), each an outcome MASS_SENT. */
typedef struct owners_ctx {
    actx *x;            /* context */
    herald_str customer;/* whose owners */
    uint32_t n;         /* owners found */
} owners_ctx;

static int owner_one(herald_str owner, MDB_val conv, void *arg)
{
    owners_ctx *o = arg;
    o->n++;
    return mass_outcome(o->x, o->customer, owner.ptr, owner.len, conv.mv_data, conv.mv_size,
                        MASS_SENT);
}

/* MASS_MARK: for mass message cmid, decides customer by customer: limited
 * (already had a mass message this UTC day), no owner, or one message per
 * owning employee; records the outcome and the day. With kind "missed" it
 * only records customers whose sends failed as not reached. */
int op_mass_mark(actx *x)
{
    const cmd *c = x->c;
    uint64_t day = c->ts / 86400000u + 1; /* +1: 0 means never */
    bool missed = herald_str_eq(c->kind, "missed");
    uint8_t st;
    int rc = x->c->admin ? 0 : aw_reject(x, HERALD_EFORBIDDEN, "mass messages need the admin role");

    if (rc)
        return rc;
    if (!aw_id_ok(c->cmid))
        return aw_reject(x, HERALD_EINVAL, "invalid mass message id");
    if (c->n_members > MASS_CUSTOMERS_MAX)
        return aw_reject(x, HERALD_EINVAL, "more than 10,000 customers");
    for (uint32_t i = 0; i < c->n_members && rc == 0; i++) {
        herald_str cust = c->members[i];
        kbuf k;
        uint64_t last;
        bool found;
        if (!aw_id_ok(cust))
            return aw_reject(x, HERALD_EINVAL, "invalid customer id");
        if (missed) {
            st = MASS_NO_OWNER;
        } else {
            kbuf prev;
            uint64_t seen_st = 0;
            MDB_val pk, pv;
            /* A retry of the same mass id repeats its decision (the sends
             * carry the id as cmid, so they are not duplicated). */
            key_mass_result(&prev, c->tenant, c->cmid);
            kb_id(&prev, cust);
            pk = kb_val(&prev);
            if (mdb_get(x->txn, x->s->db.meta, &pk, &pv) == 0 && pv.mv_size == 1)
                seen_st = *(const uint8_t *)pv.mv_data;
            key_mass_day(&k, c->tenant, cust);
            rc = aw_get_u64(x, x->s->db.meta, &k, &last, &found);
            if (rc)
                return rc;
            if (seen_st == MASS_LIMITED || seen_st == MASS_NO_OWNER) {
                st = (uint8_t)seen_st;
                rc = mass_outcome(x, cust, NULL, 0, NULL, 0, st);
                continue;
            }
            if (found && last == day && seen_st != MASS_SENT) {
                st = MASS_LIMITED;
                rc = mass_outcome(x, cust, NULL, 0, NULL, 0, st);
            } else {
                owners_ctx o = {.x = x, .customer = cust};
                kbuf ck;
                key_contact(&ck, c->tenant, cust);
                rc = scan_ids(x->txn, x->s->db.meta, &ck, owner_one, &o);
                if (rc == HERALD_ESTORAGE)
                    return aw_fatal(x, MDB_CORRUPTED);
                if (rc)
                    return rc;
                st = o.n ? MASS_SENT : MASS_NO_OWNER;
                if (!o.n)
                    rc = mass_outcome(x, cust, NULL, 0, NULL, 0, st);
                else
                    rc = aw_put_u64(x, x->s->db.meta, &k, day);
            }
        }
        if (rc == 0) {
            kbuf rk;
            uint8_t v = (uint8_t)st;
            key_mass_result(&rk, c->tenant, c->cmid);
            kb_id(&rk, cust);
            rc = aw_put(x, x->s->db.meta, &rk, &v, 1);
        }
    }
    return rc;
}

/* SLOTMAP: the slot → shard group map of the cluster, written once by the
 * first meta leader. The same map again is a no-op; another is refused
 * (moving conversations between groups is not supported). */
int op_slotmap(actx *x)
{
    const cmd *c = x->c;
    kbuf k = {0};
    MDB_val kv, v;
    int rc;

    if (c->body.len != HERALD_SLOTS)
        return aw_reject(x, HERALD_EINVAL, "a slot map has one group per slot");
    for (uint32_t i = 0; i < HERALD_SLOTS; i++)
        if ((uint8_t)c->body.ptr[i] == 0)
            return aw_reject(x, HERALD_EINVAL, "slots map to shard groups 1..255");
    kb_id(&k, herald_str_z("slots"));
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == 0)
        return v.mv_size == HERALD_SLOTS && memcmp(v.mv_data, c->body.ptr, HERALD_SLOTS) == 0
                   ? 0
                   : aw_reject(x, HERALD_EEXISTS, "the slot map is fixed once written");
    if (rc != MDB_NOTFOUND)
        return aw_fatal(x, rc);
    return aw_put(x, x->s->db.meta, &k, c->body.ptr, HERALD_SLOTS);
}
