/* apply_conv.c — conversations and their messages in the state machine:
 * CONV_CREATE / CONV_ADD / CONV_REMOVE (membership, each announced by a
 * system message), SEND (dedup by cmid, urgent tracking), READ (cursors and
 * receipt targets) and RECALL (tombstones). See apply.h for the rules. */
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_ops.h"
#include "hstr.h"

#define CMID_MAX 128u

/* Sorted, de-duplicated copy of the command's members (+ extra if set). */
static int unique_members(actx *x, herald_str extra, herald_str **out, uint32_t *n_out)
{
    const cmd *c = x->c;
    uint32_t n = c->n_members + (extra.ptr ? 1 : 0), u = 0;
    herald_str *v = arena_alloc(x->a, (size_t)n * sizeof *v + 1);
    if (!v)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < c->n_members; i++) {
        if (!aw_id_ok(c->members[i]))
            return aw_reject(x, HERALD_EINVAL, "invalid member id");
        v[i] = c->members[i];
    }
    if (extra.ptr)
        v[c->n_members] = extra;
    qsort(v, n, sizeof *v, hstr_cmp);
    for (uint32_t i = 0; i < n; i++)
        if (u == 0 || hstr_cmp(&v[u - 1], &v[i]) != 0)
            v[u++] = v[i];
    *out = v;
    *n_out = u;
    return 0;
}

static bool contains(const herald_str *v, uint32_t n, herald_str s)
{
    return bsearch(&s, v, n, sizeof *v, hstr_cmp) != NULL;
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
    if (bsearch(&user, w->mem, w->n, sizeof *w->mem, hstr_cmp))
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
        return aw_fatal(x, MDB_CORRUPTED);
    if (old->kind != kind || w.seen != n || w.other != 0)
        return aw_reject(x, HERALD_EEXISTS,
                      "the conversation id is taken by a different conversation");
    x->r->seq = old->max_seq;
    x->r->dup = true;
    /* Its event pushes the conversation's last message again. */
    return old->max_seq ? aw_load_msg(x, x->c->conv, old->max_seq) : 0;
}

int op_conv_create(actx *x)
{
    const cmd *c = x->c;
    store_conv sc = {0};
    herald_str *mem, body;
    uint32_t n, group_cap;
    bool creator_in;
    int rc;

    if (!aw_id_ok(c->conv))
        return aw_reject(x, HERALD_EINVAL, "invalid conversation id");
    sc.kind = conv_kind_parse(c->kind);
    if (!sc.kind)
        return aw_reject(x, HERALD_EINVAL, "kind must be single, group, customer_group or announce");
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
        return aw_reject(x, HERALD_EEXISTS, "conversation exists");
    if (rc != HERALD_ENOT_FOUND)
        return aw_fatal(x, MDB_CORRUPTED);
    group_cap = c->cap ? c->cap : CONV_CAP_GROUP_DEFAULT;
    if (sc.kind == CONV_SINGLE && n != 2)
        return aw_reject(x, HERALD_EINVAL, "a single conversation has exactly 2 members");
    if (n == 0)
        return aw_reject(x, HERALD_EINVAL, "members required");
    sc.cap = aw_kind_cap(sc.kind, group_cap);
    if (n > sc.cap)
        return aw_reject_cap(x, sc.kind, sc.cap);
    creator_in = contains(mem, n, c->user);
    snprintf(sc.owner, sizeof sc.owner, "%.*s", (int)c->user.len, c->user.ptr);
    sc.created = c->ts;
    sc.count = n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t role = creator_in && hstr_cmp(&mem[i], &c->user) == 0 ? ROLE_OWNER : ROLE_MEMBER;
        rc = aw_write_member(x, c->conv, mem[i], role, 1, &sc);
        if (rc)
            return rc;
        sc.n_external += aw_is_external(c, mem[i]);
    }
    rc = aw_system_body(x, "create", mem, n, &body);
    if (rc)
        return rc;
    return aw_append_msg(x, c->conv, &sc, HERALD_MK_SYSTEM, 0, body);
}

/* Common start of CONV_ADD / CONV_REMOVE: the conversation (not single),
 * the actor's role and the command's members, sorted and unique. */
static int membership_change(actx *x, store_conv *sc, uint32_t *role, herald_str **mem,
                             uint32_t *n)
{
    int rc = aw_load_conv(x, sc, role);
    if (rc)
        return rc;
    if (sc->kind == CONV_SINGLE)
        return aw_reject(x, HERALD_EINVAL, "members of a single conversation cannot change");
    return unique_members(x, (herald_str){0}, mem, n);
}

int op_conv_add(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    herald_str *mem, body;
    uint32_t n, role, fresh = 0;
    int rc = membership_change(x, &sc, &role, &mem, &n);

    if (rc)
        return rc;
    if (role != ROLE_OWNER && !c->admin)
        return aw_reject(x, HERALD_EFORBIDDEN, "only the owner or an admin adds members");
    /* Keep only those not yet members. */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r2;
        uint64_t j;
        rc = member_read(x->txn, x->s, c->tenant, c->conv, mem[i], &r2, &j, NULL);
        if (rc == HERALD_ENOT_MEMBER)
            mem[fresh++] = mem[i];
        else if (rc)
            return aw_fatal(x, MDB_CORRUPTED);
    }
    if (fresh == 0)
        return 0; /* already members: nothing to do */
    if (sc.count + fresh > sc.cap)
        return aw_reject_cap(x, sc.kind, sc.cap);
    for (uint32_t i = 0; i < fresh; i++) {
        rc = aw_write_member(x, c->conv, mem[i], ROLE_MEMBER, sc.max_seq + 1, &sc);
        if (rc)
            return rc;
        sc.n_external += aw_is_external(c, mem[i]);
    }
    sc.count += fresh;
    rc = aw_system_body(x, "add", mem, fresh, &body);
    if (rc)
        return rc;
    return aw_append_msg(x, c->conv, &sc, HERALD_MK_SYSTEM, 0, body);
}

int op_conv_remove(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    herald_str *mem, body;
    uint64_t *joined;
    uint32_t n, role, gone = 0, ext_gone = 0;
    int rc = membership_change(x, &sc, &role, &mem, &n);

    if (rc)
        return rc;
    /* Anyone may leave; removing others takes the owner or an admin. */
    if (role != ROLE_OWNER && !c->admin && !(n == 1 && hstr_cmp(&mem[0], &c->user) == 0))
        return aw_reject(x, HERALD_EFORBIDDEN, "only the owner or an admin removes members");
    joined = arena_alloc(x->a, (size_t)n * sizeof *joined);
    if (!joined)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r2;
        uint64_t j;
        bool ext;
        rc = member_read(x->txn, x->s, c->tenant, c->conv, mem[i], &r2, &j, &ext);
        if (rc == HERALD_ENOT_MEMBER)
            continue;
        if (rc)
            return aw_fatal(x, MDB_CORRUPTED);
        if (r2 == ROLE_OWNER && !c->admin)
            return aw_reject(x, HERALD_EINVAL, "the owner cannot be removed");
        ext_gone += ext;
        joined[gone] = j;
        mem[gone++] = mem[i];
    }
    if (gone == 0)
        return aw_reject(x, HERALD_ENOT_MEMBER, "none of them is a member");
    /* Announce first so the removed members learn it too, then remove. */
    rc = aw_system_body(x, "remove", mem, gone, &body);
    if (rc)
        return rc;
    rc = aw_append_msg(x, c->conv, &sc, HERALD_MK_SYSTEM, 0, body);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < gone; i++) {
        rc = aw_leave(x, c->conv, mem[i], joined[i], &sc);
        if (rc)
            return rc;
    }
    sc.count -= gone;
    sc.n_external -= ext_gone <= sc.n_external ? ext_gone : sc.n_external;
    return aw_write_conv(x, c->conv, &sc);
}

int op_send(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    uint32_t role;
    kbuf dk;
    int rc = aw_load_conv(x, &sc, &role);

    if (rc)
        return rc;
    if (sc.kind == CONV_ANNOUNCE) {
        if (role != ROLE_OWNER && !c->admin)
            return aw_reject(x, HERALD_EFORBIDDEN, "only the owner or an admin posts announcements");
    } else if (role == UINT32_MAX) {
        return aw_reject(x, HERALD_ENOT_MEMBER, "not a member of the conversation");
    }
    if (c->cmid.len > CMID_MAX)
        return aw_reject(x, HERALD_EINVAL, "cmid longer than 128 bytes");
    if (c->cmid.len) {
        uint64_t seq;
        bool found;
        key_member(&dk, c->tenant, c->conv, c->user);
        kb_id(&dk, c->cmid);
        if (dk.over)
            return aw_reject(x, HERALD_EINVAL, "ids too long for a dedup key");
        rc = aw_get_u64(x, x->s->db.dedup, &dk, &seq, &found);
        if (rc)
            return rc;
        if (found) {
            kbuf mk;
            MDB_val mkv, mv;
            rcur r;
            key_msg(&mk, c->tenant, c->conv, seq);
            mkv = kb_val(&mk);
            if (mdb_get(x->txn, x->s->db.msg, &mkv, &mv) != 0)
                return aw_fatal(x, MDB_CORRUPTED);
            r = rc_of(mv);
            rc_str(&r);
            x->r->ts = rc_u64(&r);
            x->r->seq = seq;
            x->r->dup = true;
            return 0;
        }
    }
    rc = aw_append_msg(x, c->conv, &sc, HERALD_MK_TEXT, c->flags, c->body);
    if (rc == 0 && c->cmid.len)
        rc = aw_put_u64(x, x->s->db.dedup, &dk, sc.max_seq);
    if (rc == 0 && (c->flags & HERALD_MSGF_URGENT))
        rc = aw_urgent_track(x, sc.max_seq);
    return rc;
}

int op_read(actx *x)
{
    const cmd *c = x->c;
    store_conv sc;
    uint32_t role;
    uint64_t cur;
    bool found;
    kbuf k;
    int rc = aw_load_conv(x, &sc, &role);

    if (rc)
        return rc;
    if (role == UINT32_MAX)
        return aw_reject(x, HERALD_ENOT_MEMBER, "not a member of the conversation");
    if (c->seq == 0 || c->seq > sc.max_seq)
        return store_seq_beyond(x->r->errmsg, sizeof x->r->errmsg, c->seq, sc.max_seq);
    key_member(&k, c->tenant, c->conv, c->user);
    rc = aw_get_u64(x, x->s->db.cursor, &k, &cur, &found);
    if (rc)
        return rc;
    x->r->seq = cur > c->seq ? cur : c->seq;
    if (cur >= c->seq)
        return 0; /* cursors only move forward; nothing to announce */
    rc = aw_put_u64(x, x->s->db.cursor, &k, c->seq);
    if (rc || sc.kind == CONV_ANNOUNCE || aw_conv_external(c, &sc) ||
        (c->flags & CMD_TENANT_NO_RECEIPTS))
        return rc; /* announcements: counts from cursors; with customers:
                      receipts are internal-only data, no events */
    return aw_receipt_targets(x, c->conv, c->user);
}

/* RECALL: the sender within the window, the owner or an admin any time.
 * The message becomes a tombstone (RECALLED, body dropped) and a system
 * message tells every member. Recalling a tombstone again is a no-op. */
int op_recall(actx *x)
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
    int rc = aw_load_conv(x, &sc, &role);

    if (rc)
        return rc;
    if (role == UINT32_MAX && !c->admin)
        return aw_reject(x, HERALD_ENOT_MEMBER, "not a member of the conversation");
    if (c->seq == 0 || c->seq > sc.max_seq)
        return aw_reject(x, HERALD_ENOT_FOUND, "no such message");
    key_msg(&k, c->tenant, c->conv, c->seq);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.msg, &kv, &v);
    if (rc)
        return aw_fatal(x, rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc);
    r = rc_of(v);
    from = rc_str(&r);
    ts = rc_u64(&r);
    cmid = rc_str(&r);
    flags = rc_u32(&r);
    mk = rc_u8(&r);
    body = rc_str(&r);
    if (r.bad)
        return aw_fatal(x, MDB_CORRUPTED);
    (void)body;
    if (mk != HERALD_MK_TEXT)
        return aw_reject(x, HERALD_EINVAL, "system messages cannot be recalled");
    if (flags & HERALD_MSGF_RECALLED) {
        x->r->seq = 0; /* already a tombstone: nothing to announce */
        return 0;
    }
    window_ms = (c->win ? c->win : RECALL_WINDOW_DEFAULT) * 1000u;
    if (role != ROLE_OWNER && !c->admin) {
        bool own = from.len == c->user.len && memcmp(from.ptr, c->user.ptr, from.len) == 0;
        if (!own)
            return aw_reject(x, HERALD_EFORBIDDEN, "only the sender, the owner or an admin recalls");
        if (c->ts > ts && c->ts - ts > window_ms)
            return aw_reject(x, HERALD_EFORBIDDEN, "the recall window has passed");
    }
    /* Rewrite as a tombstone; the strings point into the old record, so the
     * new one is built before it is replaced. */
    rb_str(&nr, from);
    rb_u64(&nr, ts);
    rb_str(&nr, cmid);
    rb_u32(&nr, flags | HERALD_MSGF_RECALLED);
    rb_u8(&nr, mk);
    rb_str(&nr, (herald_str){0});
    rc = aw_put_rec(x, x->s->db.msg, &k, &nr);
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
    return aw_append_msg(x, c->conv, &sc, HERALD_MK_SYSTEM, 0, body);
}
