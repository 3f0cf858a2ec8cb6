/* apply.c — the deterministic state machine; see apply.h. */
#include "apply.h"

#include <errno.h>
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "store_int.h"
#include "token.h"

#define APPLY_GROW_RETRIES 40
#define CMID_MAX 128u

/* State of one command's application. */
typedef struct actx {
    store *s;          /* store */
    MDB_txn *txn;      /* the command's nested transaction */
    const cmd *c;      /* the command */
    apply_result *r;   /* its result */
    arena *a;          /* the result's arena */
    herald_buf tg;     /* apply_target array being built */
    herald_buf rem;    /* apply_remind array being built (REMIND) */
    int mdb_fail;      /* raw LMDB error that must fail the whole batch */
} actx;

/* Records a rejection (deterministic, per command). */
static int reject(actx *x, int code, const char *msg)
{
    snprintf(x->r->errmsg, sizeof x->r->errmsg, "%s", msg);
    return code;
}

/* An LMDB write/read failure: fails the batch (MAP_FULL: grow and retry). */
static int fatal(actx *x, int mdb_rc)
{
    x->mdb_fail = mdb_rc;
    return HERALD_ESTORAGE;
}

static int put(actx *x, MDB_dbi dbi, kbuf *k, const void *p, size_t n)
{
    MDB_val kv = kb_val(k), v = {.mv_size = n, .mv_data = (void *)p};
    int rc;
    if (k->over)
        return reject(x, HERALD_EINVAL, "id too long");
    rc = mdb_put(x->txn, dbi, &kv, &v, 0);
    return rc ? fatal(x, rc) : 0;
}

static int put_rec(actx *x, MDB_dbi dbi, kbuf *k, rbuf *r)
{
    int rc = r->failed ? HERALD_ENOMEM : put(x, dbi, k, r->b.data, r->b.len);
    rb_free(r);
    return rc;
}

static int put_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t v)
{
    uint8_t b[8];
    put_be64(b, v);
    return put(x, dbi, k, b, 8);
}

static int del(actx *x, MDB_dbi dbi, kbuf *k)
{
    MDB_val kv = kb_val(k);
    int rc = mdb_del(x->txn, dbi, &kv, NULL);
    return rc && rc != MDB_NOTFOUND ? fatal(x, rc) : 0;
}

/* Reads a u64 value; *found tells whether it existed. */
static int get_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t *v, bool *found)
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

static bool id_ok(herald_str s) { return s.ptr && token_id_valid(s.ptr, s.len); }

static int write_conv(actx *x, herald_str conv, const store_conv *sc)
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
static int append_msg(actx *x, herald_str conv, store_conv *sc, uint32_t mk, uint32_t flags,
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
    rb_u32(&r, flags);
    rb_u8(&r, (uint8_t)mk);
    rb_str(&r, body);
    /* Certified identity: an employee's message where customers listen. */
    if (mk == HERALD_MK_TEXT && sc->n_external && c->corp.len) {
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
    f.pointers = sc->kind != CONV_ANNOUNCE && sc->count <= CONV_POINTER_MAX;
    rc = store_each_member(x->txn, x->s, c->tenant, conv, fan_one, &f);
    if (rc)
        return rc;
    x->r->seq = sc->max_seq;
    x->r->ts = c->ts;
    return 0;
}

/* Sorted, de-duplicated copy of the command's members (+ extra if set). */
static int str_cmp(const void *a, const void *b)
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

static int write_member(actx *x, herald_str conv, herald_str user, uint32_t role,
                        uint64_t joined, int kind)
{
    kbuf k = {0};
    rbuf r = {0};
    uint8_t kb = (uint8_t)kind;
    int rc;
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
static int system_body(actx *x, const char *event, const herald_str *v, uint32_t n,
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

static uint32_t kind_cap(int kind, uint32_t group_cap)
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
    return put_rec(x, x->s->db.meta, &k, &r);
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
    {
        store_conv old;
        rc = conv_read(x->txn, x->s, c->tenant, c->conv, &old);
    }
    if (rc == 0)
        return reject(x, HERALD_EEXISTS, "conversation exists");
    if (rc != HERALD_ENOT_FOUND)
        return fatal(x, MDB_CORRUPTED);
    group_cap = c->cap ? c->cap : CONV_CAP_GROUP_DEFAULT;
    /* The creator joins unless an admin creates a conversation for others. */
    rc = unique_members(x, c->admin ? (herald_str){0} : c->user, &mem, &n);
    if (rc)
        return rc;
    if (sc.kind == CONV_SINGLE && n != 2)
        return reject(x, HERALD_EINVAL, "a single conversation has exactly 2 members");
    if (n == 0)
        return reject(x, HERALD_EINVAL, "members required");
    sc.cap = kind_cap(sc.kind, group_cap);
    if (n > sc.cap)
        return reject(x, HERALD_ECAP_EXCEEDED, "member cap exceeded");
    creator_in = contains(mem, n, c->user);
    snprintf(sc.owner, sizeof sc.owner, "%.*s", (int)c->user.len, c->user.ptr);
    sc.created = c->ts;
    sc.count = n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t role = creator_in && str_cmp(&mem[i], &c->user) == 0 ? ROLE_OWNER : ROLE_MEMBER;
        rc = write_member(x, c->conv, mem[i], role, 1, sc.kind);
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
static int load_conv(actx *x, store_conv *sc, uint32_t *role)
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
        return reject(x, HERALD_ECAP_EXCEEDED, "member cap exceeded");
    for (uint32_t i = 0; i < fresh; i++) {
        rc = write_member(x, c->conv, mem[i], ROLE_MEMBER, sc.max_seq + 1, sc.kind);
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

/* Key of a recipient's confirmation of an urgent message. */
static void key_urgent(kbuf *k, herald_str ten, herald_str conv, uint64_t seq)
{
    key_msg(k, ten, conv, seq);
}

/* Key of a reminder in the schedule: due time first, so a cursor from the
 * start finds what is due. */
static void key_remind(kbuf *k, uint64_t due, herald_str ten, herald_str conv, uint64_t seq)
{
    k->n = 0;
    k->over = false;
    kb_u64(k, due);
    kb_id(k, ten);
    kb_id(k, conv);
    kb_u64(k, seq);
}

static int put_remind(actx *x, uint64_t due, herald_str ten, herald_str conv, uint64_t seq,
                      uint8_t count, uint32_t ivl, uint8_t max)
{
    kbuf k;
    rbuf r = {0};
    key_remind(&k, due, ten, conv, seq);
    rb_u8(&r, count);
    rb_u32(&r, ivl);
    rb_u8(&r, max);
    return put_rec(x, x->s->db.remind, &k, &r);
}

/* An urgent message: every recipient but the sender must confirm; the first
 * reminder is scheduled one interval from now. */
static int urgent_track(actx *x, uint64_t seq)
{
    const cmd *c = x->c;
    uint32_t ivl = c->ivl ? c->ivl : URGENT_INTERVAL_DEFAULT;
    uint32_t max = c->max ? c->max : URGENT_MAX_DEFAULT;
    const apply_target *t = (const apply_target *)x->tg.data;
    size_t n = x->tg.len / sizeof *t;
    int rc;

    for (size_t i = 0; i < n; i++) {
        kbuf k;
        herald_str u = herald_str_z(t[i].user);
        if (u.len == c->user.len && memcmp(u.ptr, c->user.ptr, u.len) == 0)
            continue;
        key_urgent(&k, c->tenant, c->conv, seq);
        kb_id(&k, u);
        rc = put_u64(x, x->s->db.urgent, &k, 0);
        if (rc)
            return rc;
    }
    return put_remind(x, c->ts + (uint64_t)ivl * 1000u, c->tenant, c->conv, seq, 0, ivl,
                      (uint8_t)(max > 255 ? 255 : max));
}

static int op_confirm(actx *x)
{
    const cmd *c = x->c;
    kbuf k;
    uint64_t at;
    bool found;
    int rc;

    if (!id_ok(c->conv) || !id_ok(c->user))
        return reject(x, HERALD_EINVAL, "invalid id");
    key_urgent(&k, c->tenant, c->conv, c->seq);
    kb_id(&k, c->user);
    rc = get_u64(x, x->s->db.urgent, &k, &at, &found);
    if (rc)
        return rc;
    if (!found)
        return reject(x, HERALD_ENOT_FOUND, "not an urgent message for this user");
    x->r->seq = c->seq;
    return at ? 0 : put_u64(x, x->s->db.urgent, &k, c->ts ? c->ts : 1);
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
        return fatal(x, mrc);
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
            rc = fatal(x, MDB_CORRUPTED);
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
        rc = fatal(x, mrc);
    mdb_cursor_close(cur);
    return rc;
}

/* REMIND: every schedule entry due at ts (up to REMIND_BATCH): remind the
 * pending recipients and reschedule, or — when the reminders ran out —
 * escalate to the sender once and drop the entry. Entries with nobody
 * pending are dropped. The schedule is state like any other: a new leader
 * continues it. */
static int op_remind(actx *x)
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
        return fatal(x, mrc);
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_FIRST); mrc == 0 && n < REMIND_BATCH;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        const uint8_t *kp = kv.mv_data;
        due_entry *e = &due[n];
        size_t off = 8, tl, cl;
        rcur r = rc_of(v);
        if (kv.mv_size < 8 + 1 + 1 + 8)
            break;
        e->due = be64(kp);
        if (e->due > c->ts)
            break;
        tl = kp[off];
        if (off + 1 + tl + 1 > kv.mv_size || tl >= sizeof e->ten)
            break;
        memcpy(e->ten, kp + off + 1, tl);
        e->ten[tl] = '\0';
        off += 1 + tl;
        cl = kp[off];
        if (off + 1 + cl + 8 != kv.mv_size || cl >= sizeof e->conv)
            break;
        memcpy(e->conv, kp + off + 1, cl);
        e->conv[cl] = '\0';
        e->seq = be64(kp + off + 1 + cl);
        e->count = rc_u8(&r);
        e->ivl = rc_u32(&r);
        e->max = rc_u8(&r);
        if (r.bad)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return fatal(x, mrc);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const due_entry *e = &due[i];
        pend_ctx p = {.x = x, .e = e, .escalate = e->count >= e->max};
        kbuf k;
        key_remind(&k, e->due, herald_str_z(e->ten), herald_str_z(e->conv), e->seq);
        rc = del(x, x->s->db.remind, &k);
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
                return fatal(x, MDB_CORRUPTED);
            }
            r = rc_of(mv);
            from = rc_str(&r);
            if (r.bad || from.len >= sizeof sender) {
                herald_buf_free(&p.list);
                return fatal(x, MDB_CORRUPTED);
            }
            memcpy(sender, from.ptr, from.len);
            sender[from.len] = '\0';
            rc = herald_buf_append(&p.list, "", 1) == 0
                     ? push_reminder(x, e, sender, (const char *)p.list.data, e->count, true)
                     : HERALD_ENOMEM;
        } else if (rc == 0 && p.n) {
            rc = put_remind(x, c->ts + (uint64_t)e->ivl * 1000u, herald_str_z(e->ten),
                            herald_str_z(e->conv), e->seq, (uint8_t)(e->count + 1), e->ivl,
                            e->max);
        }
        herald_buf_free(&p.list);
    }
    return rc;
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
        return reject(x, HERALD_EINVAL, "seq beyond the conversation");
    key_member(&k, c->tenant, c->conv, c->user);
    rc = get_u64(x, x->s->db.cursor, &k, &cur, &found);
    if (rc)
        return rc;
    x->r->seq = cur > c->seq ? cur : c->seq;
    if (cur >= c->seq)
        return 0; /* cursors only move forward; nothing to announce */
    rc = put_u64(x, x->s->db.cursor, &k, c->seq);
    if (rc || sc.kind == CONV_ANNOUNCE || sc.n_external)
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

/* DND: on until seq (ms; 0 = until turned off) or off. Kept with the
 * tenants (meta role); the result's seq is the stored until (0 = off). */
static int op_dnd(actx *x)
{
    const cmd *c = x->c;
    kbuf k;
    if (!id_ok(c->user))
        return reject(x, HERALD_EINVAL, "invalid user id");
    key_dnd(&k, c->tenant, c->user);
    if (!(c->flags & 1)) {
        x->r->seq = 0;
        return del(x, x->s->db.meta, &k);
    }
    if (c->seq && c->seq <= c->ts)
        return reject(x, HERALD_EINVAL, "until is in the past");
    x->r->seq = c->seq ? c->seq : UINT64_MAX;
    return put_u64(x, x->s->db.meta, &k, x->r->seq);
}

/* Directory changes are the tenant admin's. */
static int admin_only(actx *x)
{
    return x->c->admin ? 0 : reject(x, HERALD_EFORBIDDEN, "directory changes need the admin role");
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
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : fatal(x, rc);
}

static int op_dir_user(actx *x)
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
    if (!id_ok(c->target))
        return reject(x, HERALD_EINVAL, "invalid user id");
    if (!kind)
        return reject(x, HERALD_EINVAL, "kind must be internal or external");
    if (!short_text(c->name) || !short_text(c->title))
        return reject(x, HERALD_EINVAL, "name and title are at most 128 bytes");
    if (c->dept.len) {
        if (!id_ok(c->dept))
            return reject(x, HERALD_EINVAL, "invalid department id");
        rc = dept_exists(x, c->dept, &found);
        if (rc)
            return rc;
        if (!found)
            return reject(x, HERALD_ENOT_FOUND, "no such department");
    }
    key_dir_user(&k, c->tenant, c->target);
    rb_u8(&r, kind);
    rb_str(&r, c->name);
    rb_str(&r, c->title);
    rb_str(&r, c->dept);
    return put_rec(x, x->s->db.meta, &k, &r);
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
            return reject(x, HERALD_EINVAL, "a department cannot be moved under itself");
        key_dir_dept(&k, c->tenant, herald_str_z(at));
        kv = kb_val(&k);
        rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc || dir_dept_decode(v, &d) != 0)
            return fatal(x, rc ? rc : MDB_CORRUPTED);
        snprintf(at, sizeof at, "%s", d.parent);
    }
    return at[0] ? reject(x, HERALD_EINVAL, "department tree deeper than 64") : 0;
}

static int op_dir_dept(actx *x)
{
    const cmd *c = x->c;
    kbuf k;
    rbuf r = {0};
    bool found;
    int rc = admin_only(x);

    if (rc)
        return rc;
    if (!id_ok(c->dept))
        return reject(x, HERALD_EINVAL, "invalid department id");
    if (!short_text(c->name))
        return reject(x, HERALD_EINVAL, "name is at most 128 bytes");
    if (c->parent.len) {
        /* The parent must exist already, so the tree has no cycles. */
        if (!id_ok(c->parent) || str_cmp(&c->parent, &c->dept) == 0)
            return reject(x, HERALD_EINVAL, "invalid parent department");
        rc = dept_exists(x, c->parent, &found);
        if (rc)
            return rc;
        if (!found)
            return reject(x, HERALD_ENOT_FOUND, "no such parent department");
        rc = no_cycle(x);
        if (rc)
            return rc;
    }
    key_dir_dept(&k, c->tenant, c->dept);
    rb_str(&r, c->name);
    rb_str(&r, c->parent);
    return put_rec(x, x->s->db.meta, &k, &r);
}

/* CONTACT_ADD: the enterprise records that `target` (an employee) owns the
 * relationship with customer `name`; `conv` is their 1:1 conversation
 * (created in its own shard by the gateway first). Idempotent. */
static int op_contact_add(actx *x)
{
    const cmd *c = x->c;
    kbuf k;
    int rc = x->c->admin ? 0 : reject(x, HERALD_EFORBIDDEN, "contacts are managed by an admin");
    if (rc)
        return rc;
    if (!id_ok(c->target) || !id_ok(c->name) || !id_ok(c->conv))
        return reject(x, HERALD_EINVAL, "invalid id");
    key_contact(&k, c->tenant, c->name);
    kb_id(&k, c->target);
    return put(x, x->s->db.meta, &k, c->conv.ptr, c->conv.len);
}

typedef int (*op_fn)(actx *x);
static const op_fn ops[CMD_OP_COUNT_] = {
    [CMD_TENANT_CREATE] = op_tenant_create, [CMD_CONV_CREATE] = op_conv_create,
    [CMD_CONV_ADD] = op_conv_add,           [CMD_CONV_REMOVE] = op_conv_remove,
    [CMD_SEND] = op_send,                   [CMD_READ] = op_read,
    [CMD_RECALL] = op_recall,               [CMD_DND] = op_dnd,
    [CMD_CONFIRM] = op_confirm,             [CMD_REMIND] = op_remind,
    [CMD_DIR_USER] = op_dir_user,           [CMD_DIR_DEPT] = op_dir_dept,
    [CMD_CONTACT_ADD] = op_contact_add,
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
    rc = ops[c.op](&x);
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
out_cmd:
    herald_buf_free(&x.tg);
    herald_buf_free(&x.rem);
    cmd_release(&c);
    return rc;
}

int apply_batch(store *s, const uint8_t *const *cmds, const size_t *lens, size_t n,
                uint64_t first_index, apply_result *results)
{
    MDB_val ak = {.mv_size = 7, .mv_data = "applied"}, av;
    uint8_t ab[8];

    for (int attempt = 0; attempt < APPLY_GROW_RETRIES; attempt++) {
        MDB_txn *txn;
        uint64_t applied = 0;
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

        memset(results, 0, n * sizeof *results);
        if (rc)
            return store_err(rc);
        if (mdb_get(txn, s->db.meta, &ak, &av) == 0 && av.mv_size == 8)
            applied = be64(av.mv_data);
        for (size_t i = 0; i < n && rc == 0; i++) {
            uint64_t index = first_index + i;
            if (index <= applied) {
                results[i].index = index;
                results[i].skipped = true;
                continue;
            }
            rc = apply_one(s, txn, cmds[i], lens[i], index, &results[i]);
        }
        if (rc == 0 && first_index + n - 1 > applied) {
            put_be64(ab, first_index + n - 1);
            av = (MDB_val){.mv_size = 8, .mv_data = ab};
            rc = mdb_put(txn, s->db.meta, &ak, &av, 0);
        }
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc == 0)
            return 0;
        for (size_t i = 0; i < n; i++)
            apply_result_free(&results[i]);
        if (rc != MDB_MAP_FULL) {
            log_error("store.apply", "batch of %zu at index %llu failed: %s", n,
                      (unsigned long long)first_index, mdb_strerror(rc));
            return rc == ENOMEM ? HERALD_ENOMEM : HERALD_ESTORAGE;
        }
        rc = store_grow(s);
        if (rc)
            return rc;
    }
    return HERALD_ESTORAGE;
}
