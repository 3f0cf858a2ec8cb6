/* apply.c — the deterministic state machine; see apply.h. */
#include "apply.h"

#include <errno.h>
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_int.h"
#include "log.h"
#include "token.h"

#define APPLY_GROW_RETRIES 40
#define CMID_MAX 128u


/* Records a rejection (deterministic, per command). */
int reject(actx *x, int code, const char *msg)
{
    snprintf(x->r->errmsg, sizeof x->r->errmsg, "%s", msg);
    return code;
}

int reject_cap(actx *x, int kind, uint32_t cap)
{
    static const char *const what[] = {[CONV_SINGLE] = "single conversations",
                                       [CONV_GROUP] = "groups",
                                       [CONV_CUSTOMER_GROUP] = "customer groups",
                                       [CONV_ANNOUNCE] = "announcements"};
    const char *w = kind > 0 && kind <= CONV_ANNOUNCE ? what[kind] : "conversations";
    snprintf(x->r->errmsg, sizeof x->r->errmsg, "%s hold at most %u members", w, cap);
    return HERALD_ECAP_EXCEEDED;
}

/* An LMDB write/read failure: fails the batch (MAP_FULL: grow and retry). */
int fatal(actx *x, int mdb_rc)
{
    x->mdb_fail = mdb_rc;
    return HERALD_ESTORAGE;
}

int put(actx *x, MDB_dbi dbi, kbuf *k, const void *p, size_t n)
{
    MDB_val kv = kb_val(k), v = {.mv_size = n, .mv_data = (void *)p};
    int rc;
    if (k->over)
        return reject(x, HERALD_EINVAL, "id too long");
    rc = mdb_put(x->txn, dbi, &kv, &v, 0);
    return rc ? fatal(x, rc) : 0;
}

int put_rec(actx *x, MDB_dbi dbi, kbuf *k, rbuf *r)
{
    int rc = r->failed ? HERALD_ENOMEM : put(x, dbi, k, r->b.data, r->b.len);
    rb_free(r);
    return rc;
}

int put_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t v)
{
    uint8_t b[8];
    put_be64(b, v);
    return put(x, dbi, k, b, 8);
}

int del(actx *x, MDB_dbi dbi, kbuf *k)
{
    MDB_val kv = kb_val(k);
    int rc = mdb_del(x->txn, dbi, &kv, NULL);
    return rc && rc != MDB_NOTFOUND ? fatal(x, rc) : 0;
}

/* Reads a u64 value; *found tells whether it existed. */
int get_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t *v, bool *found)
{
    MDB_val kv = kb_val(k), val;
    int rc = mdb_get(x->txn, dbi, &kv, &val);
    *found = false;
    *v = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return fatal(x, rc);
    if (val.mv_size != 8)
        return fatal(x, MDB_CORRUPTED);
    *v = be64(val.mv_data);
    *found = true;
    return 0;
}

bool id_ok(herald_str s) { return s.ptr && token_id_valid(s.ptr, s.len); }

int write_conv(actx *x, herald_str conv, const store_conv *sc)
{
    kbuf k;
    rbuf r = {0};
    key_conv(&k, x->c->tenant, conv);
    rb_u8(&r, (uint8_t)sc->kind);
    rb_str(&r, herald_str_z(sc->owner));
    rb_u64(&r, sc->max_seq);
    rb_u64(&r, sc->created);
    rb_u32(&r, sc->cap);
    rb_u32(&r, sc->count);
    rb_u32(&r, sc->n_external);
    return put_rec(x, x->s->db.conv, &k, &r);
}

static int add_target(actx *x, herald_str user, uint64_t useq)
{
    apply_target t = {.user = arena_dup(x->a, user.ptr, user.len), .useq = useq};
    if (!t.user || herald_buf_append(&x->tg, &t, sizeof t) != 0)
        return HERALD_ENOMEM;
    return 0;
}

/* Fan-out of one message: a pointer in each member's log (write diffusion,
 * conversations up to CONV_POINTER_MAX members) or nothing (read diffusion). */
typedef struct fan {
    actx *x;           /* context */
    herald_str conv;   /* conversation */
    uint64_t seq;      /* message */
    bool pointers;     /* write pointers */
    herald_str skip;   /* READ: the reader gets no receipt */
} fan;

static int fan_one(herald_str user, MDB_val rec, void *arg)
{
    fan *f = arg;
    actx *x = f->x;
    uint64_t useq = 0;
    (void)rec;
    if (f->skip.ptr && user.len == f->skip.len && memcmp(user.ptr, f->skip.ptr, user.len) == 0)
        return 0;
    if (f->pointers) {
        kbuf k;
        bool found;
        rbuf r = {0};
        int rc;
        key_ustate(&k, x->c->tenant, user, x->s->group);
        rc = get_u64(x, x->s->db.ustate, &k, &useq, &found);
        if (rc)
            return rc;
        useq++;
        rc = put_u64(x, x->s->db.ustate, &k, useq);
        if (rc)
            return rc;
        kb_u64(&k, useq);
        rb_str(&r, f->conv);
        rb_u64(&r, f->seq);
        rc = put_rec(x, x->s->db.uevt, &k, &r);
        if (rc)
            return rc;
    }
    return add_target(x, user, useq);
}

/* Appends a message (seq = max+1) and fans it out to the current members.
 * Updates sc (max_seq) and writes the conv record. */
/* Whether the conversation counts as having external members for c: the
 * members' kinds the gateway read at request time, else the join-time count. */
static bool conv_external(const cmd *c, const store_conv *sc)
{
    if ((c->op == CMD_SEND || c->op == CMD_READ) && (c->flags & CMD_KINDS_READ))
        return (c->flags & CMD_EXTERNAL_NOW) != 0;
    return sc->n_external != 0;
}

int append_msg(actx *x, herald_str conv, store_conv *sc, uint32_t mk, uint32_t flags,
                      herald_str body)
{
    const cmd *c = x->c;
    kbuf k;
    rbuf r = {0};
    fan f = {.x = x, .conv = conv};
    int rc;

    sc->max_seq++;
    key_msg(&k, c->tenant, conv, sc->max_seq);
    rb_str(&r, c->user);
    rb_u64(&r, c->ts);
    rb_str(&r, c->cmid);
    rb_u32(&r, flags & ~CMD_KIND_BITS);
    rb_u8(&r, (uint8_t)mk);
    rb_str(&r, body);
    /* Certified identity: an employee's message where customers listen
     * (now, when the gateway read the members' current kinds). */
    if (mk == HERALD_MK_TEXT && conv_external(c, sc) && c->corp.len) {
        rb_str(&r, c->corp);
        rb_str(&r, c->title);
    }
    rc = put_rec(x, x->s->db.msg, &k, &r);
    if (rc)
        return rc;
    rc = write_conv(x, conv, sc);
    if (rc)
        return rc;
    f.seq = sc->max_seq;
    /* By the cap, not the count: the mode of a conversation never changes,
     * so every message is either in its members' pointer logs or found
     * through memberof (see store_sync). */
    f.pointers = !conv_read_diffused(sc);
    rc = store_each_member(x->txn, x->s, c->tenant, conv, fan_one, &f);
    if (rc)
        return rc;
    x->r->seq = sc->max_seq;
    x->r->ts = c->ts;
    return 0;
}

/* Sorted, de-duplicated copy of the command's members (+ extra if set). */
int str_cmp(const void *a, const void *b)
{
    const herald_str *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int d = memcmp(x->ptr, y->ptr, n);
    return d ? d : (x->len > y->len) - (x->len < y->len);
}

static int unique_members(actx *x, herald_str extra, herald_str **out, uint32_t *n_out)
{
    const cmd *c = x->c;
    uint32_t n = c->n_members + (extra.ptr ? 1 : 0), u = 0;
    herald_str *v = arena_alloc(x->a, (size_t)n * sizeof *v + 1);
    if (!v)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < c->n_members; i++) {
        if (!id_ok(c->members[i]))
            return reject(x, HERALD_EINVAL, "invalid member id");
        v[i] = c->members[i];
    }
    if (extra.ptr)
        v[c->n_members] = extra;
    qsort(v, n, sizeof *v, str_cmp);
    for (uint32_t i = 0; i < n; i++)
        if (u == 0 || str_cmp(&v[u - 1], &v[i]) != 0)
            v[u++] = v[i];
    *out = v;
    *n_out = u;
    return 0;
}

static bool contains(const herald_str *v, uint32_t n, herald_str s)
{
    return bsearch(&s, v, n, sizeof *v, str_cmp) != NULL;
}

/* True when the command marks user as external (directory, via the gateway). */
static bool is_external(const cmd *c, herald_str user)
{
    for (uint32_t i = 0; i < c->n_external; i++)
        if (str_cmp(&c->external[i], &user) == 0)
            return true;
    return false;
}

int write_member(actx *x, herald_str conv, herald_str user, uint32_t role,
                        uint64_t joined, const store_conv *sc)
{
    kbuf k = {0};
    rbuf r = {0};
    uint8_t kb = (uint8_t)((unsigned)sc->kind & MEMBEROF_KIND_MASK);
    int rc;
    if (conv_read_diffused(sc))
        kb |= MEMBEROF_READ_DIFFUSED;
    key_member(&k, x->c->tenant, conv, user);
    rb_u8(&r, (uint8_t)role);
    rb_u64(&r, joined);
    rb_u8(&r, is_external(x->c, user) ? 1 : 0);
    rc = put_rec(x, x->s->db.member, &k, &r);
    if (rc)
        return rc;
    k.n = 0;
    kb_id(&k, x->c->tenant);
    kb_id(&k, user);
    kb_id(&k, conv);
    return put(x, x->s->db.memberof, &k, &kb, 1);
}

/* System message body: {"event":E,"by":U,"members":[…]} (ids need no escaping). */
int system_body(actx *x, const char *event, const herald_str *v, uint32_t n,
                herald_str *out)
{
    herald_buf b = {0};
    char *p;
    int ok = herald_buf_append(&b, "{\"event\":\"", 10) == 0 &&
             herald_buf_append(&b, event, strlen(event)) == 0 &&
             herald_buf_append(&b, "\",\"by\":\"", 8) == 0 &&
             herald_buf_append(&b, x->c->user.ptr, x->c->user.len) == 0 &&
             herald_buf_append(&b, "\",\"members\":[", 13) == 0;
    for (uint32_t i = 0; ok && i < n; i++)
        ok = herald_buf_append(&b, i ? ",\"" : "\"", i ? 2 : 1) == 0 &&
             herald_buf_append(&b, v[i].ptr, v[i].len) == 0 && herald_buf_append(&b, "\"", 1) == 0;
    ok = ok && herald_buf_append(&b, "]}", 2) == 0;
    p = ok ? arena_dup(x->a, b.data, b.len) : NULL;
    *out = (herald_str){.ptr = p, .len = (uint32_t)b.len};
    herald_buf_free(&b);
    return p ? 0 : HERALD_ENOMEM;
}

uint32_t kind_cap(int kind, uint32_t group_cap)
{
    switch (kind) {
    case CONV_SINGLE: return 2;
    case CONV_GROUP: return group_cap > CONV_CAP_GROUP_MAX ? CONV_CAP_GROUP_MAX : group_cap;
    case CONV_CUSTOMER_GROUP: return CONV_CAP_CUSTOMER_GROUP;
    default: return CONV_CAP_ANNOUNCE;
    }
}

/* ---- one function per command --------------------------------------------- */

static int op_tenant_create(actx *x)
{
    const cmd *c = x->c;
    uint8_t secret[TOKEN_SECRET_LEN];
    char hex[TOKEN_SECRET_HEX + 1];
    kbuf k = {0};
    MDB_val kv, v;
    rbuf r = {0};
    int rc;

    if (!id_ok(c->tenant))
        return reject(x, HERALD_EINVAL, "invalid tenant id");
    if (c->secret.len != TOKEN_SECRET_HEX)
        return reject(x, HERALD_EINVAL, "secret must be 64 hex characters");
    memcpy(hex, c->secret.ptr, TOKEN_SECRET_HEX);
    hex[TOKEN_SECRET_HEX] = '\0';
    if (token_secret_from_hex(hex, secret) != 0)
        return reject(x, HERALD_EINVAL, "secret must be 64 hex characters");
    kb_id(&k, herald_str_z("t"));
    kb_id(&k, c->tenant);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == 0)
        return reject(x, HERALD_EEXISTS, "tenant exists");
    if (rc != MDB_NOTFOUND)
        return fatal(x, rc);
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
    return put_rec(x, x->s->db.meta, &k, &r);
}

/* Counts the members of a conversation found in a sorted list. */
typedef struct expect_walk {
    const herald_str *mem; /* expected members, sorted */
    uint32_t n;            /* their number */
    uint32_t seen;         /* members found in the list */
    uint32_t other;        /* members not in it */
} expect_walk;

static int expect_one(herald_str user, MDB_val rec, void *arg)
{
    expect_walk *w = arg;
    (void)rec;
    if (bsearch(&user, w->mem, w->n, sizeof *w->mem, str_cmp))
        w->seen++;
    else
        w->other++;
    return 0;
}

/* CONV_CREATE with CMD_CONV_EXPECT of an id that exists: a duplicate when it
 * is exactly the conversation asked for (kind and members), else EXISTS. A
 * server-derived id someone else took is never accepted as success. */
static int expected_conv(actx *x, const store_conv *old, int kind, const herald_str *mem,
                         uint32_t n)
{
    expect_walk w = {.mem = mem, .n = n};
    int rc = store_each_member(x->txn, x->s, x->c->tenant, x->c->conv, expect_one, &w);
    if (rc)
        return fatal(x, MDB_CORRUPTED);
    if (old->kind != kind || w.seen != n || w.other != 0)
        return reject(x, HERALD_EEXISTS,
                      "the conversation id is taken by a different conversation");
    x->r->seq = old->max_seq;
    x->r->dup = true;
    return 0;
}

static int op_conv_create(actx *x)
{
    const cmd *c = x->c;
    store_conv sc = {0};
    herald_str *mem, body;
    uint32_t n, group_cap;
    bool creator_in;
    int rc;

    if (!id_ok(c->conv))
        return reject(x, HERALD_EINVAL, "invalid conversation id");
    sc.kind = conv_kind_parse(c->kind);
    if (!sc.kind)
        return reject(x, HERALD_EINVAL, "kind must be single, group, customer_group or announce");
    /* The creator joins unless an admin creates a conversation for others. */
    rc = unique_members(x, c->admin ? (herald_str){0} : c->user, &mem, &n);
    if (rc)
        return rc;
    {
        store_conv old;
        rc = conv_read(x->txn, x->s, c->tenant, c->conv, &old);
        if (rc == 0 && (c->flags & CMD_CONV_EXPECT))
            return expected_conv(x, &old, sc.kind, mem, n);
    }
    if (rc == 0)
        return reject(x, HERALD_EEXISTS, "conversation exists");
    if (rc != HERALD_ENOT_FOUND)
        return fatal(x, MDB_CORRUPTED);
    group_cap = c->cap ? c->cap : CONV_CAP_GROUP_DEFAULT;
    if (sc.kind == CONV_SINGLE && n != 2)
        return reject(x, HERALD_EINVAL, "a single conversation has exactly 2 members");
    if (n == 0)
        return reject(x, HERALD_EINVAL, "members required");
    sc.cap = kind_cap(sc.kind, group_cap);
    if (n > sc.cap)
        return reject_cap(x, sc.kind, sc.cap);
    creator_in = contains(mem, n, c->user);
    snprintf(sc.owner, sizeof sc.owner, "%.*s", (int)c->user.len, c->user.ptr);
    sc.created = c->ts;
    sc.count = n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t role = creator_in && str_cmp(&mem[i], &c->user) == 0 ? ROLE_OWNER : ROLE_MEMBER;
        rc = write_member(x, c->conv, mem[i], role, 1, &sc);
        if (rc)
            return rc;
        sc.n_external += is_external(c, mem[i]);
    }
    rc = system_body(x, "create", mem, n, &body);
    if (rc)
        return rc;
    return append_msg(x, c->conv, &sc, HERALD_MK_SYSTEM, 0, body);
}

/* Loads the conversation and the actor's role; admins count as owners. */
int load_conv(actx *x, store_conv *sc, uint32_t *role)
{
    uint64_t joined;
    int rc;
    if (!id_ok(x->c->conv))
        return reject(x, HERALD_EINVAL, "invalid conversation id");
    rc = conv_read(x->txn, x->s, x->c->tenant, x->c->conv, sc);
    if (rc == HERALD_ENOT_FOUND)
        return reject(x, rc, "no such conversation");
    if (rc)
        return fatal(x, MDB_CORRUPTED);
    rc = member_read(x->txn, x->s, x->c->tenant, x->c->conv, x->c->user, role, &joined, NULL);
    if (rc == HERALD_ENOT_MEMBER) {
        *role = UINT32_MAX; /* not a member */
        return 0;
    }
    return rc ? fatal(x, MDB_CORRUPTED) : 0;
}

/* Common start of CONV_ADD / CONV_REMOVE: the conversation (not single),
 * the actor's role and the command's members, sorted and unique. */
static int membership_change(actx *x, store_conv *sc, uint32_t *role, herald_str **mem,
                             uint32_t *n)
{
    int rc = load_conv(x, sc, role);
    if (rc)
        return rc;
    if (sc->kind == CONV_SINGLE)
        return reject(x, HERALD_EINVAL, "members of a single conversation cannot change");
    return unique_members(x, (herald_str){0}, mem, n);
}

static int op_conv_add(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    herald_str *mem, body;
    uint32_t n, role, fresh = 0;
    int rc = membership_change(x, &sc, &role, &mem, &n);

    if (rc)
        return rc;
    if (role != ROLE_OWNER && !c->admin)
        return reject(x, HERALD_EFORBIDDEN, "only the owner or an admin adds members");
    /* Keep only those not yet members. */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r2;
        uint64_t j;
        rc = member_read(x->txn, x->s, c->tenant, c->conv, mem[i], &r2, &j, NULL);
        if (rc == HERALD_ENOT_MEMBER)
            mem[fresh++] = mem[i];
        else if (rc)
            return fatal(x, MDB_CORRUPTED);
    }
    if (fresh == 0)
        return 0; /* already members: nothing to do */
    if (sc.count + fresh > sc.cap)
        return reject_cap(x, sc.kind, sc.cap);
    for (uint32_t i = 0; i < fresh; i++) {
        rc = write_member(x, c->conv, mem[i], ROLE_MEMBER, sc.max_seq + 1, &sc);
        if (rc)
            return rc;
        sc.n_external += is_external(c, mem[i]);
    }
    sc.count += fresh;
    rc = system_body(x, "add", mem, fresh, &body);
    if (rc)
        return rc;
    return append_msg(x, c->conv, &sc, HERALD_MK_SYSTEM, 0, body);
}

static int op_conv_remove(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    herald_str *mem, body;
    uint32_t n, role, gone = 0, ext_gone = 0;
    int rc = membership_change(x, &sc, &role, &mem, &n);

    if (rc)
        return rc;
    /* Anyone may leave; removing others takes the owner or an admin. */
    if (role != ROLE_OWNER && !c->admin && !(n == 1 && str_cmp(&mem[0], &c->user) == 0))
        return reject(x, HERALD_EFORBIDDEN, "only the owner or an admin removes members");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r2;
        uint64_t j;
        bool ext;
        rc = member_read(x->txn, x->s, c->tenant, c->conv, mem[i], &r2, &j, &ext);
        if (rc == HERALD_ENOT_MEMBER)
            continue;
        if (rc)
            return fatal(x, MDB_CORRUPTED);
        if (r2 == ROLE_OWNER && !c->admin)
            return reject(x, HERALD_EINVAL, "the owner cannot be removed");
        ext_gone += ext;
        mem[gone++] = mem[i];
    }
    if (gone == 0)
        return reject(x, HERALD_ENOT_MEMBER, "none of them is a member");
    /* Announce first so the removed members learn it too, then remove. */
    rc = system_body(x, "remove", mem, gone, &body);
    if (rc)
        return rc;
    rc = append_msg(x, c->conv, &sc, HERALD_MK_SYSTEM, 0, body);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < gone; i++) {
        kbuf k;
        key_member(&k, c->tenant, c->conv, mem[i]);
        rc = del(x, x->s->db.member, &k);
        if (rc == 0)
            rc = del(x, x->s->db.cursor, &k);
        if (rc)
            return rc;
        k.n = 0;
        kb_id(&k, c->tenant);
        kb_id(&k, mem[i]);
        kb_id(&k, c->conv);
        rc = del(x, x->s->db.memberof, &k);
        if (rc)
            return rc;
    }
    sc.count -= gone;
    sc.n_external -= ext_gone <= sc.n_external ? ext_gone : sc.n_external;
    return write_conv(x, c->conv, &sc);
}

static int op_send(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    uint32_t role;
    kbuf dk;
    int rc = load_conv(x, &sc, &role);

    if (rc)
        return rc;
    if (sc.kind == CONV_ANNOUNCE) {
        if (role != ROLE_OWNER && !c->admin)
            return reject(x, HERALD_EFORBIDDEN, "only the owner or an admin posts announcements");
    } else if (role == UINT32_MAX) {
        return reject(x, HERALD_ENOT_MEMBER, "not a member of the conversation");
    }
    if (c->cmid.len > CMID_MAX)
        return reject(x, HERALD_EINVAL, "cmid longer than 128 bytes");
    if (c->cmid.len) {
        uint64_t seq;
        bool found;
        key_member(&dk, c->tenant, c->conv, c->user);
        kb_id(&dk, c->cmid);
        if (dk.over)
            return reject(x, HERALD_EINVAL, "ids too long for a dedup key");
        rc = get_u64(x, x->s->db.dedup, &dk, &seq, &found);
        if (rc)
            return rc;
        if (found) {
            kbuf mk;
            MDB_val mkv, mv;
            rcur r;
            key_msg(&mk, c->tenant, c->conv, seq);
            mkv = kb_val(&mk);
            if (mdb_get(x->txn, x->s->db.msg, &mkv, &mv) != 0)
                return fatal(x, MDB_CORRUPTED);
            r = rc_of(mv);
            rc_str(&r);
            x->r->ts = rc_u64(&r);
            x->r->seq = seq;
            x->r->dup = true;
            return 0;
        }
    }
    rc = append_msg(x, c->conv, &sc, HERALD_MK_TEXT, c->flags, c->body);
    if (rc == 0 && c->cmid.len)
        rc = put_u64(x, x->s->db.dedup, &dk, sc.max_seq);
    if (rc == 0 && (c->flags & HERALD_MSGF_URGENT))
        rc = urgent_track(x, sc.max_seq);
    return rc;
}

static int op_read(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    uint32_t role;
    uint64_t cur;
    bool found;
    kbuf k;
    int rc = load_conv(x, &sc, &role);

    if (rc)
        return rc;
    if (role == UINT32_MAX)
        return reject(x, HERALD_ENOT_MEMBER, "not a member of the conversation");
    if (c->seq == 0 || c->seq > sc.max_seq)
        return store_seq_beyond(x->r->errmsg, sizeof x->r->errmsg, c->seq, sc.max_seq);
    key_member(&k, c->tenant, c->conv, c->user);
    rc = get_u64(x, x->s->db.cursor, &k, &cur, &found);
    if (rc)
        return rc;
    x->r->seq = cur > c->seq ? cur : c->seq;
    if (cur >= c->seq)
        return 0; /* cursors only move forward; nothing to announce */
    rc = put_u64(x, x->s->db.cursor, &k, c->seq);
    if (rc || sc.kind == CONV_ANNOUNCE || conv_external(c, &sc) ||
        (c->flags & CMD_TENANT_NO_RECEIPTS))
        return rc; /* announcements: counts from cursors; with customers:
                      receipts are internal-only data, no events */
    {
        fan f = {.x = x, .conv = c->conv, .skip = c->user};
        return store_each_member(x->txn, x->s, c->tenant, c->conv, fan_one, &f);
    }
}

/* RECALL: the sender within the window, the owner or an admin any time.
 * The message becomes a tombstone (RECALLED, body dropped) and a system
 * message tells every member. Recalling a tombstone again is a no-op. */
static int op_recall(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    uint32_t role;
    kbuf k;
    MDB_val kv, v;
    rcur r;
    herald_str from, cmid, body;
    uint64_t ts, window_ms;
    uint32_t flags;
    uint8_t mk;
    rbuf nr = {0};
    char seqtxt[24];
    int rc = load_conv(x, &sc, &role);

    if (rc)
        return rc;
    if (role == UINT32_MAX && !c->admin)
        return reject(x, HERALD_ENOT_MEMBER, "not a member of the conversation");
    if (c->seq == 0 || c->seq > sc.max_seq)
        return reject(x, HERALD_ENOT_FOUND, "no such message");
    key_msg(&k, c->tenant, c->conv, c->seq);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.msg, &kv, &v);
    if (rc)
        return fatal(x, rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc);
    r = rc_of(v);
    from = rc_str(&r);
    ts = rc_u64(&r);
    cmid = rc_str(&r);
    flags = rc_u32(&r);
    mk = rc_u8(&r);
    body = rc_str(&r);
    if (r.bad)
        return fatal(x, MDB_CORRUPTED);
    (void)body;
    if (mk != HERALD_MK_TEXT)
        return reject(x, HERALD_EINVAL, "system messages cannot be recalled");
    if (flags & HERALD_MSGF_RECALLED) {
        x->r->seq = 0; /* already a tombstone: nothing to announce */
        return 0;
    }
    window_ms = (c->win ? c->win : RECALL_WINDOW_DEFAULT) * 1000u;
    if (role != ROLE_OWNER && !c->admin) {
        bool own = from.len == c->user.len && memcmp(from.ptr, c->user.ptr, from.len) == 0;
        if (!own)
            return reject(x, HERALD_EFORBIDDEN, "only the sender, the owner or an admin recalls");
        if (c->ts > ts && c->ts - ts > window_ms)
            return reject(x, HERALD_EFORBIDDEN, "the recall window has passed");
    }
    /* Rewrite as a tombstone; the strings point into the old record, so the
     * new one is built before it is replaced. */
    rb_str(&nr, from);
    rb_u64(&nr, ts);
    rb_str(&nr, cmid);
    rb_u32(&nr, flags | HERALD_MSGF_RECALLED);
    rb_u8(&nr, mk);
    rb_str(&nr, (herald_str){0});
    rc = put_rec(x, x->s->db.msg, &k, &nr);
    if (rc)
        return rc;
    snprintf(seqtxt, sizeof seqtxt, "%llu", (unsigned long long)c->seq);
    {
        herald_buf b = {0};
        char *p;
        int ok = herald_buf_append(&b, "{\"event\":\"recall\",\"by\":\"", 24) == 0 &&
                 herald_buf_append(&b, c->user.ptr, c->user.len) == 0 &&
                 herald_buf_append(&b, "\",\"seq\":", 8) == 0 &&
                 herald_buf_append(&b, seqtxt, strlen(seqtxt)) == 0 &&
                 herald_buf_append(&b, "}", 1) == 0;
        p = ok ? arena_dup(x->a, b.data, b.len) : NULL;
        body = (herald_str){.ptr = p, .len = (uint32_t)b.len};
        herald_buf_free(&b);
        if (!p)
            return HERALD_ENOMEM;
    }
    return append_msg(x, c->conv, &sc, HERALD_MK_SYSTEM, 0, body);
}

typedef int (*op_fn)(actx *x);
static const op_fn ops[CMD_OP_COUNT_] = {
    [CMD_TENANT_CREATE] = op_tenant_create, [CMD_CONV_CREATE] = op_conv_create,
    [CMD_CONV_ADD] = op_conv_add,           [CMD_CONV_REMOVE] = op_conv_remove,
    [CMD_SEND] = op_send,                   [CMD_READ] = op_read,
    [CMD_RECALL] = op_recall,               [CMD_DND] = op_dnd,
    [CMD_CONFIRM] = op_confirm,             [CMD_REMIND] = op_remind,
    [CMD_DIR_USER] = op_dir_user,           [CMD_DIR_DEPT] = op_dir_dept,
    [CMD_CONTACT_ADD] = op_contact_add,     [CMD_TAG] = op_tag,
    [CMD_MASS_MARK] = op_mass_mark,         [CMD_SLOTMAP] = op_slotmap,
    [CMD_APP_MARK] = op_app_mark,           [CMD_APP_DELIVER] = op_app_deliver,
    [CMD_TRANSFER_MARK] = op_transfer_mark, [CMD_TRANSFER_DUE] = op_transfer_due,
    [CMD_CONV_HANDOVER] = op_conv_handover, [CMD_TRANSFER_DONE] = op_transfer_done,
};

void apply_result_free(apply_result *r)
{
    if (!r)
        return;
    if (r->arena) {
        arena_free(r->arena);
        free(r->arena);
    }
    memset(r, 0, sizeof *r);
}

/* Applies one command inside a nested transaction of parent. Returns 0 (the
 * result says applied or rejected) or the raw LMDB error failing the batch. */
static int apply_one(store *s, MDB_txn *parent, const uint8_t *p, size_t len, uint64_t index,
                     apply_result *r)
{
    cmd c;
    actx x = {.s = s, .r = r};
    int rc;

    r->index = index;
    r->group = s->group;
    r->arena = calloc(1, sizeof(arena));
    if (!r->arena)
        return ENOMEM;
    x.a = r->arena;
    rc = cmd_decode(p, len, &c);
    if (rc == HERALD_ENOMEM)
        return ENOMEM; /* not the command's fault: fail the batch */
    if (rc) {
        r->err = rc;
        snprintf(r->errmsg, sizeof r->errmsg, "undecodable command");
        return 0;
    }
    x.c = &c;
    r->op = c.op;
    rc = mdb_txn_begin(s->env, parent, 0, &x.txn);
    if (rc)
        goto out_cmd;
    rc = ops[c.op] ? ops[c.op](&x) : reject(&x, HERALD_EUNSUPPORTED, "command not supported");
    if (x.mdb_fail || rc == HERALD_ENOMEM) {
        /* Not the command's fault and not deterministic: fail the batch. */
        mdb_txn_abort(x.txn);
        rc = x.mdb_fail ? x.mdb_fail : ENOMEM;
        goto out_cmd;
    }
    if (rc) {
        mdb_txn_abort(x.txn);
        r->err = rc;
        r->seq = 0;
        r->dup = false;
        herald_buf_free(&x.tg);
        herald_buf_free(&x.rem);
        herald_buf_free(&x.mass);
        herald_buf_free(&x.xfer);
        rc = 0;
        goto out_cmd;
    }
    rc = mdb_txn_commit(x.txn);
    if (rc)
        goto out_cmd;
    if (x.tg.len) {
        r->targets = arena_alloc(x.a, x.tg.len);
        if (!r->targets) {
            rc = ENOMEM;
            goto out_cmd;
        }
        memcpy(r->targets, x.tg.data, x.tg.len);
        r->n_targets = (uint32_t)(x.tg.len / sizeof(apply_target));
    }
    if (x.rem.len) {
        r->reminders = arena_alloc(x.a, x.rem.len);
        if (!r->reminders) {
            rc = ENOMEM;
            goto out_cmd;
        }
        memcpy(r->reminders, x.rem.data, x.rem.len);
        r->n_reminders = (uint32_t)(x.rem.len / sizeof(apply_remind));
    }
    if (x.mass.len) {
        r->mass = arena_alloc(x.a, x.mass.len);
        if (!r->mass) {
            rc = ENOMEM;
            goto out_cmd;
        }
        memcpy(r->mass, x.mass.data, x.mass.len);
        r->n_mass = (uint32_t)(x.mass.len / sizeof(apply_mass));
    }
    if (x.xfer.len) {
        r->xfer = arena_alloc(x.a, x.xfer.len);
        if (!r->xfer) {
            rc = ENOMEM;
            goto out_cmd;
        }
        memcpy(r->xfer, x.xfer.data, x.xfer.len);
    }
out_cmd:
    herald_buf_free(&x.xfer);
    herald_buf_free(&x.tg);
    herald_buf_free(&x.rem);
    herald_buf_free(&x.mass);
    cmd_release(&c);
    return rc;
}

/* ---- batches: one write transaction, many commands ------------------------ */

/* One command of a batch: a private copy, kept until the batch ends so that
 * it can be re-applied after MDB_MAP_FULL. */
typedef struct apply_ent {
    uint8_t *cmd;     /* malloc'd copy of the encoded command */
    size_t len;       /* its length */
    uint64_t index;   /* its raft index */
    apply_result *r;  /* the caller's result (stable until commit/abort) */
} apply_ent;

struct apply_txn {
    store *s;          /* the store */
    MDB_txn *txn;      /* the open write transaction; NULL between retries */
    uint64_t applied;  /* applied index as of the last command run */
    apply_ent *v;      /* the batch's commands, in order */
    size_t n;          /* how many */
    size_t cap;        /* allocated entries of v */
    size_t bytes;      /* sum of their lengths */
    int err;           /* sticky: the batch is lost (HERALD code) */
};

static const MDB_val applied_key = {.mv_size = 7, .mv_data = "applied"};

/* Opens the write transaction and reads the stored applied index. Raw
 * LMDB code; on failure no transaction is open. */
static int txn_open(apply_txn *t)
{
    MDB_val k = applied_key, v;
    int rc = mdb_txn_begin(t->s->env, NULL, 0, &t->txn);
    if (rc) {
        t->txn = NULL;
        return rc;
    }
    t->applied = 0;
    rc = mdb_get(t->txn, t->s->db.meta, &k, &v);
    if (rc == 0 && v.mv_size != 8)
        rc = MDB_CORRUPTED; /* never guess: 0 would re-apply everything */
    if (rc == 0)
        t->applied = be64(v.mv_data);
    else if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc) {
        mdb_txn_abort(t->txn);
        t->txn = NULL;
    }
    return rc;
}

/* Aborts the open transaction (if any) and frees the results of commands
 * [lo, hi). */
static void range_drop(apply_txn *t, size_t lo, size_t hi)
{
    if (t->txn)
        mdb_txn_abort(t->txn);
    t->txn = NULL;
    for (size_t i = lo; i < hi; i++)
        apply_result_free(t->v[i].r);
}

static void txn_drop(apply_txn *t) { range_drop(t, 0, t->n); }

/* Runs one command of the batch in the open transaction: skipped when its
 * index is not beyond the applied index, else applied and the applied
 * index stored. Raw code (0, LMDB error, ENOMEM) as apply_one. */
static int ent_run(apply_txn *t, const apply_ent *e)
{
    uint8_t ab[8];
    MDB_val k = applied_key, v = {.mv_size = 8, .mv_data = ab};
    int rc;

    if (e->index <= t->applied) {
        e->r->index = e->index;
        e->r->skipped = true;
        return 0;
    }
    rc = apply_one(t->s, t->txn, e->cmd, e->len, e->index, e->r);
    if (rc)
        return rc;
    put_be64(ab, e->index);
    rc = mdb_put(t->txn, t->s->db.meta, &k, &v, 0);
    if (rc == 0)
        t->applied = e->index;
    return rc;
}

/* (Re)runs commands [lo, hi) of the batch in a fresh transaction; on
 * MDB_MAP_FULL grows the map and starts again. Raw code; on failure no
 * transaction is open and their results are zeroed. */
static int range_run(apply_txn *t, size_t lo, size_t hi)
{
    for (int attempt = 0; attempt < APPLY_GROW_RETRIES; attempt++) {
        int rc = txn_open(t);
        for (size_t i = lo; i < hi && rc == 0; i++)
            rc = ent_run(t, &t->v[i]);
        if (rc == 0)
            return 0;
        range_drop(t, lo, hi);
        if (rc != MDB_MAP_FULL || store_grow(t->s) != 0)
            return rc;
    }
    return MDB_MAP_FULL;
}

static int batch_run(apply_txn *t) { return range_run(t, 0, t->n); }

/* Commits commands [lo, hi) (the open transaction holds exactly them, or
 * none is open). MDB_MAP_FULL at commit: grow and again; with the map at
 * its ceiling, one transaction per command, as apply_batch of one would (a
 * big transaction needs more free pages than several small ones: it cannot
 * reuse the pages it frees itself). Raw code; on failure the commands from
 * the first one not committed on have zeroed results. */
static int commit_range(apply_txn *t, size_t lo, size_t hi)
{
    for (int attempt = 0; attempt < APPLY_GROW_RETRIES; attempt++) {
        int rc = t->txn ? 0 : range_run(t, lo, hi);
        if (rc == 0) {
            rc = mdb_txn_commit(t->txn); /* frees the transaction either way */
            t->txn = NULL;
            if (rc == 0)
                return 0;
            range_drop(t, lo, hi);
        }
        if (rc != MDB_MAP_FULL)
            return rc;
        if (store_grow(t->s) == 0)
            continue;
        if (hi - lo < 2)
            return rc;
        rc = 0;
        for (size_t i = lo; i < hi && rc == 0; i++) {
            rc = commit_range(t, i, i + 1);
            if (rc)
                range_drop(t, i + 1, hi);
        }
        return rc;
    }
    return MDB_MAP_FULL;
}

static int herald_code(int raw) { return raw == ENOMEM ? HERALD_ENOMEM : HERALD_ESTORAGE; }

int apply_begin(store *s, apply_txn **out)
{
    apply_txn *t = calloc(1, sizeof *t);
    int rc;

    *out = NULL;
    if (!t)
        return HERALD_ENOMEM;
    t->s = s;
    rc = txn_open(t);
    if (rc) {
        log_error("store.apply", "group %u: cannot begin a batch: %s", s->group,
                  mdb_strerror(rc));
        free(t);
        return herald_code(rc);
    }
    *out = t;
    return 0;
}

int apply_next(apply_txn *t, const uint8_t *p, size_t len, uint64_t index, apply_result *r)
{
    apply_ent *e;
    int rc;

    memset(r, 0, sizeof *r);
    if (t->err)
        return t->err;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        apply_ent *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        t->v = v;
        t->cap = cap;
    }
    e = &t->v[t->n];
    *e = (apply_ent){.cmd = malloc(len ? len : 1), .len = len, .index = index, .r = r};
    if (!e->cmd)
        return HERALD_ENOMEM;
    if (len)
        memcpy(e->cmd, p, len);
    t->n++;
    /* The transaction is closed only after a failure that was recovered. */
    rc = t->txn ? ent_run(t, e) : MDB_BAD_TXN;
    if (rc) {
        txn_drop(t);
        rc = batch_run(t); /* MAP_FULL: grown, every command again */
    }
    if (rc == 0) {
        t->bytes += len;
        return 0;
    }
    /* This command cannot go in (map at its ceiling, out of memory, a
     * storage error): drop it and keep the others, in a fresh transaction. */
    log_error("store.apply", "group %u: command at index %llu not applied: %s", t->s->group,
              (unsigned long long)index, mdb_strerror(rc));
    t->n--;
    free(e->cmd);
    apply_result_free(r);
    if (batch_run(t) != 0) {
        t->err = herald_code(rc);
        log_error("store.apply", "group %u: the batch of %zu commands is lost", t->s->group,
                  t->n);
    }
    return herald_code(rc);
}

size_t apply_count(const apply_txn *t) { return t->n; }

size_t apply_bytes(const apply_txn *t) { return t->bytes; }

/* Frees the batch (not the results). */
static void txn_free(apply_txn *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].cmd);
    free(t->v);
    free(t);
}

int apply_commit(apply_txn *t)
{
    int rc = t->err ? 0 : commit_range(t, 0, t->n), herr;

    if (!t->err && rc == 0) {
        txn_free(t);
        return 0;
    }
    herr = t->err ? t->err : herald_code(rc);
    log_error("store.apply", "group %u: batch of %zu commands not committed: %s", t->s->group,
              t->n, t->err ? herald_strerror(t->err) : mdb_strerror(rc));
    if (t->err)
        txn_drop(t);
    txn_free(t);
    return herr;
}

void apply_abort(apply_txn *t)
{
    if (!t)
        return;
    txn_drop(t);
    txn_free(t);
}

int apply_batch(store *s, const uint8_t *const *cmds, const size_t *lens, size_t n,
                uint64_t first_index, apply_result *results)
{
    apply_txn *t;
    int rc;

    if (n == 0)
        return 0;
    memset(results, 0, n * sizeof *results);
    rc = apply_begin(s, &t);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = apply_next(t, cmds[i], lens[i], first_index + i, &results[i]);
    if (rc) {
        apply_abort(t);
        return rc;
    }
    return apply_commit(t);
}
