/* aw.c — the state machine's write toolkit; see aw.h. */
#include "aw.h"

#include <herald/error.h>
#include <stdio.h>
#include <string.h>

#include "hstr.h"
#include "token.h"

/* ---- outcomes ----------------------------------------------------------- */

int aw_reject(actx *x, int code, const char *msg)
{
    snprintf(x->r->errmsg, sizeof x->r->errmsg, "%s", msg);
    return code;
}

int aw_reject_cap(actx *x, int kind, uint32_t cap)
{
    static const char *const what[] = {[CONV_SINGLE] = "single conversations",
                                       [CONV_GROUP] = "groups",
                                       [CONV_CUSTOMER_GROUP] = "customer groups",
                                       [CONV_ANNOUNCE] = "announcements"};
    const char *w = kind > 0 && kind <= CONV_ANNOUNCE ? what[kind] : "conversations";
    snprintf(x->r->errmsg, sizeof x->r->errmsg, "%s hold at most %u members", w, cap);
    return HERALD_ECAP_EXCEEDED;
}

int aw_fatal(actx *x, int mdb_rc)
{
    x->mdb_fail = mdb_rc;
    return HERALD_ESTORAGE;
}

/* ---- records ------------------------------------------------------------ */

int aw_put(actx *x, MDB_dbi dbi, kbuf *k, const void *p, size_t n)
{
    MDB_val kv = kb_val(k), v = {.mv_size = n, .mv_data = (void *)p};
    int rc;
    if (k->over)
        return aw_reject(x, HERALD_EINVAL, "id too long");
    rc = mdb_put(x->txn, dbi, &kv, &v, 0);
    return rc ? aw_fatal(x, rc) : 0;
}

int aw_put_rec(actx *x, MDB_dbi dbi, kbuf *k, rbuf *r)
{
    int rc = r->failed ? HERALD_ENOMEM : aw_put(x, dbi, k, r->b.data, r->b.len);
    rb_free(r);
    return rc;
}

int aw_put_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t v)
{
    uint8_t b[8];
    put_be64(b, v);
    return aw_put(x, dbi, k, b, 8);
}

int aw_del(actx *x, MDB_dbi dbi, kbuf *k)
{
    MDB_val kv = kb_val(k);
    int rc = mdb_del(x->txn, dbi, &kv, NULL);
    return rc && rc != MDB_NOTFOUND ? aw_fatal(x, rc) : 0;
}

int aw_get_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t *v, bool *found)
{
    MDB_val kv = kb_val(k), val;
    int rc = mdb_get(x->txn, dbi, &kv, &val);
    *found = false;
    *v = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return aw_fatal(x, rc);
    if (val.mv_size != 8)
        return aw_fatal(x, MDB_CORRUPTED);
    *v = be64(val.mv_data);
    *found = true;
    return 0;
}

/* ---- ids ---------------------------------------------------------------- */

bool aw_id_ok(herald_str s) { return s.ptr && token_id_valid(s.ptr, s.len); }

bool aw_is_external(const cmd *c, herald_str user)
{
    for (uint32_t i = 0; i < c->n_external; i++)
        if (hstr_cmp(&c->external[i], &user) == 0)
            return true;
    return false;
}

/* ---- conversations ------------------------------------------------------ */

uint32_t aw_kind_cap(int kind, uint32_t group_cap)
{
    switch (kind) {
    case CONV_SINGLE: return 2;
    case CONV_GROUP: return group_cap > CONV_CAP_GROUP_MAX ? CONV_CAP_GROUP_MAX : group_cap;
    case CONV_CUSTOMER_GROUP: return CONV_CAP_CUSTOMER_GROUP;
    default: return CONV_CAP_ANNOUNCE;
    }
}

int aw_load_conv(actx *x, store_conv *sc, uint32_t *role)
{
    uint64_t joined;
    int rc;
    if (!aw_id_ok(x->c->conv))
        return aw_reject(x, HERALD_EINVAL, "invalid conversation id");
    rc = conv_read(x->txn, x->s, x->c->tenant, x->c->conv, sc);
    if (rc == HERALD_ENOT_FOUND)
        return aw_reject(x, rc, "no such conversation");
    if (rc)
        return aw_fatal(x, MDB_CORRUPTED);
    rc = member_read(x->txn, x->s, x->c->tenant, x->c->conv, x->c->user, role, &joined, NULL);
    if (rc == HERALD_ENOT_MEMBER) {
        *role = UINT32_MAX; /* not a member */
        return 0;
    }
    return rc ? aw_fatal(x, MDB_CORRUPTED) : 0;
}

int aw_write_conv(actx *x, herald_str conv, const store_conv *sc)
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
    return aw_put_rec(x, x->s->db.conv, &k, &r);
}

int aw_write_member(actx *x, herald_str conv, herald_str user, uint32_t role, uint64_t joined,
                    const store_conv *sc)
{
    kbuf k = {0};
    rbuf r = {0};
    uint8_t kb = (uint8_t)sc->kind;
    int rc;
    key_member(&k, x->c->tenant, conv, user);
    rb_u8(&r, (uint8_t)role);
    rb_u64(&r, joined);
    rb_u8(&r, aw_is_external(x->c, user) ? 1 : 0);
    rc = aw_put_rec(x, x->s->db.member, &k, &r);
    if (rc)
        return rc;
    key_memberof(&k, x->c->tenant, user, conv);
    return aw_put(x, x->s->db.memberof, &k, &kb, 1);
}

int aw_leave(actx *x, herald_str conv, herald_str user, uint64_t joined, const store_conv *sc)
{
    kbuf k;
    uint8_t v[MEMBEROF_LEFT_LEN];
    int rc;
    key_member(&k, x->c->tenant, conv, user);
    rc = aw_del(x, x->s->db.member, &k);
    if (rc == 0)
        rc = aw_del(x, x->s->db.cursor, &k);
    if (rc)
        return rc;
    key_memberof(&k, x->c->tenant, user, conv);
    v[0] = (uint8_t)(((unsigned)sc->kind & MEMBEROF_KIND_MASK) | MEMBEROF_LEFT);
    put_be64(v + 1, joined);
    put_be64(v + 9, sc->max_seq);
    return aw_put(x, x->s->db.memberof, &k, v, sizeof v);
}

bool aw_conv_external(const cmd *c, const store_conv *sc)
{
    if ((c->op == CMD_SEND || c->op == CMD_READ) && (c->flags & CMD_KINDS_READ))
        return (c->flags & CMD_EXTERNAL_NOW) != 0;
    return sc->n_external != 0;
}

/* ---- messages ----------------------------------------------------------- */

/* System message body: {"event":E,"by":U,"members":[…]} (ids need no escaping). */
int aw_system_body(actx *x, const char *event, const herald_str *v, uint32_t n,
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

static int add_target(actx *x, herald_str user)
{
    apply_target t = {.user = arena_dup(x->a, user.ptr, user.len)};
    if (!t.user || herald_buf_append(&x->tg, &t, sizeof t) != 0)
        return HERALD_ENOMEM;
    return 0;
}

/* The recipients of one message or receipt: every member but `skip`. */
typedef struct fan {
    actx *x;           /* context */
    herald_str skip;   /* READ: the reader gets no receipt */
} fan;

static int fan_one(herald_str user, MDB_val rec, void *arg)
{
    fan *f = arg;
    (void)rec;
    if (f->skip.ptr && user.len == f->skip.len && memcmp(user.ptr, f->skip.ptr, user.len) == 0)
        return 0;
    return add_target(f->x, user);
}

/* Decodes message record rec (len bytes) of conv at seq into the arena, as
 * store_history would return it; *out NULL when it does not decode. */
static int decode_msg(actx *x, const void *rec, size_t len, herald_str conv, uint64_t seq,
                      const herald_msg **out)
{
    herald_msg *m = arena_alloc(x->a, sizeof *m);
    int rc;
    *out = NULL;
    if (!m)
        return HERALD_ENOMEM;
    rc = msg_decode((MDB_val){.mv_size = len, .mv_data = (void *)rec}, conv, seq, x->a, m);
    if (rc == HERALD_ENOMEM)
        return rc;
    if (rc == 0) {
        m->group = x->s->group;
        *out = m;
    }
    return 0;
}

int aw_append_msg(actx *x, herald_str conv, store_conv *sc, uint32_t mk, uint32_t flags,
                  herald_str body)
{
    const cmd *c = x->c;
    kbuf k;
    rbuf r = {0};
    fan f = {.x = x};
    const herald_msg *m = NULL;
    kbuf gk = {.b = "gpos", .n = 4};
    uint64_t pos = 0;
    bool found;
    int rc;

    /* The group's next position. */
    rc = aw_get_u64(x, x->s->db.meta, &gk, &pos, &found);
    if (rc)
        return rc;
    pos++;
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
    if (mk == HERALD_MK_TEXT && aw_conv_external(c, sc) && c->corp.len) {
        rb_str(&r, c->corp);
        rb_str(&r, c->title);
    }
    /* The result's copy is the record itself, decoded as readers will. */
    if (!r.failed) {
        rc = decode_msg(x, r.b.data, r.b.len, conv, sc->max_seq, &m);
        if (rc) {
            rb_free(&r);
            return rc;
        }
    }
    rc = aw_put_rec(x, x->s->db.msg, &k, &r);
    if (rc)
        return rc;
    /* Its group position, beside it (same key) and as the group's newest. */
    rc = aw_put_u64(x, x->s->db.mpos, &k, pos);
    if (rc == 0)
        rc = aw_put_u64(x, x->s->db.meta, &gk, pos);
    if (rc)
        return rc;
    if (m)
        ((herald_msg *)m)->pos = pos;
    rc = aw_write_conv(x, conv, sc);
    if (rc)
        return rc;
    rc = store_each_member(x->txn, x->s, c->tenant, conv, fan_one, &f);
    if (rc)
        return rc;
    x->r->seq = sc->max_seq;
    x->r->ts = c->ts;
    x->r->msg = m;
    return 0;
}

int aw_load_msg(actx *x, herald_str conv, uint64_t seq)
{
    kbuf k;
    MDB_val kv, v;
    const herald_msg *m;
    int rc;

    x->r->msg = NULL;
    key_msg(&k, x->c->tenant, conv, seq);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.msg, &kv, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return aw_fatal(x, rc);
    rc = decode_msg(x, v.mv_data, v.mv_size, conv, seq, &m);
    if (rc == 0 && m) {
        rc = mdb_get(x->txn, x->s->db.mpos, &kv, &v);
        if (rc == 0 && v.mv_size == 8)
            ((herald_msg *)m)->pos = be64(v.mv_data);
        else if (rc != MDB_NOTFOUND)
            return aw_fatal(x, rc ? rc : MDB_CORRUPTED);
        x->r->msg = m;
        rc = 0;
    }
    return rc;
}

int aw_receipt_targets(actx *x, herald_str conv, herald_str reader)
{
    fan f = {.x = x, .skip = reader};
    return store_each_member(x->txn, x->s, x->c->tenant, conv, fan_one, &f);
}

/* ---- urgent (DING) messages --------------------------------------------- */

void aw_key_remind(kbuf *k, uint64_t due, herald_str ten, herald_str conv, uint64_t seq)
{
    k->n = 0;
    k->over = false;
    kb_u64(k, due);
    kb_id(k, ten);
    kb_id(k, conv);
    kb_u64(k, seq);
}

int aw_put_remind(actx *x, uint64_t due, herald_str ten, herald_str conv, uint64_t seq,
                  uint8_t count, uint32_t ivl, uint8_t max)
{
    kbuf k;
    rbuf r = {0};
    aw_key_remind(&k, due, ten, conv, seq);
    rb_u8(&r, count);
    rb_u32(&r, ivl);
    rb_u8(&r, max);
    return aw_put_rec(x, x->s->db.remind, &k, &r);
}

int aw_urgent_track(actx *x, uint64_t seq)
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
        /* A recipient's confirmation: the message's key, then the user. */
        key_msg(&k, c->tenant, c->conv, seq);
        kb_id(&k, u);
        rc = aw_put_u64(x, x->s->db.urgent, &k, 0);
        if (rc)
            return rc;
    }
    return aw_put_remind(x, c->ts + (uint64_t)ivl * 1000u, c->tenant, c->conv, seq, 0, ivl,
                         (uint8_t)(max > 255 ? 255 : max));
}

/* ---- customers ---------------------------------------------------------- */

int aw_customers_get(actx *x, herald_str employee, uint64_t *n)
{
    kbuf k;
    bool found;
    key_meta(&k, "cn", x->c->tenant, employee);
    return aw_get_u64(x, x->s->db.meta, &k, n, &found);
}

int aw_customers_add(actx *x, herald_str employee, int delta)
{
    kbuf k;
    uint64_t n;
    bool found;
    int rc;
    key_meta(&k, "cn", x->c->tenant, employee);
    rc = aw_get_u64(x, x->s->db.meta, &k, &n, &found);
    if (rc)
        return rc;
    n = delta < 0 ? (n ? n - 1 : 0) : n + 1;
    return aw_put_u64(x, x->s->db.meta, &k, n);
}

/* ---- multi-subject outcomes --------------------------------------------- */

int aw_add_outcome(actx *x, herald_str subject, herald_str owner, herald_str conv,
                   uint32_t status)
{
    apply_mass m = {.status = status};
    m.customer = arena_dup(x->a, subject.ptr, subject.len);
    m.owner = owner.ptr ? arena_dup(x->a, owner.ptr, owner.len) : NULL;
    m.conv = conv.ptr ? arena_dup(x->a, conv.ptr, conv.len) : NULL;
    if (!m.customer || (owner.ptr && !m.owner) || (conv.ptr && !m.conv) ||
        herald_buf_append(&x->mass, &m, sizeof m) != 0)
        return HERALD_ENOMEM;
    return 0;
}
