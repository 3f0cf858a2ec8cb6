/* apply_app.c — app messages and announcements in the state machine
 * (WeCom's message/send): APP_MARK (meta group) resolves the recipients
 * from the directory and the tag index, checks the duplicate window and the
 * per-member per-app frequency cap, and records the outcome; APP_DELIVER
 * (the conversation's group) creates the app's conversation when missing
 * and appends the message once per cmid. See apply.h. */
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_ops.h"
#include "hstr.h"

#define APP_USERS_MAX 1000u       /* users named in one call */
#define APP_DEPTS_MAX 100u        /* departments in one call */
#define APP_TAGS_MAX 100u         /* tags in one call */
#define APP_RECIPIENTS_MAX 10000u /* recipients of one message, resolved */
#define DEPT_DEPTH_MAX 64         /* the directory's tree bound */

/* meta key of one message's record: app, message id → generation (its
 * first commit time), then every outcome (status u8, id). */
static void key_app_msg(kbuf *k, herald_str ten, herald_str app, herald_str msg_id)
{
    key_meta(k, "ad", ten, app);
    kb_id(k, msg_id);
}

/* meta key of a member's counter for one app: minute (u64), count (u32). */
static void key_app_freq(kbuf *k, herald_str ten, herald_str app, herald_str user)
{
    key_meta(k, "af", ten, app);
    kb_id(k, user);
}

/* Recipients being collected: arena copies (the txn's pages may move once
 * we write). */
typedef struct rcpt {
    actx *x;          /* context */
    herald_buf ids;   /* herald_str array */
    herald_str *want; /* departments asked for (sorted), when scanning users */
    uint32_t n_want;
    bool internal_only; /* @all: employees only */
} rcpt;

static int rcpt_add(rcpt *r, herald_str id)
{
    char *p = arena_dup(r->x->a, id.ptr, id.len);
    herald_str s = {.ptr = p, .len = id.len};
    if (!p || herald_buf_append(&r->ids, &s, sizeof s) != 0)
        return HERALD_ENOMEM;
    return 0;
}

/* True when dept (or one of its ancestors) is among the wanted ones. */
static int dept_wanted(actx *x, const rcpt *r, herald_str dept, bool *hit)
{
    char at[TOKEN_ID_MAX_STORE + 1];
    *hit = false;
    if (dept.len >= sizeof at)
        return 0;
    memcpy(at, dept.ptr, dept.len);
    at[dept.len] = '\0';
    for (int depth = 0; depth < DEPT_DEPTH_MAX && at[0]; depth++) {
        herald_str cur = herald_str_z(at);
        kbuf k;
        MDB_val kv, v;
        store_dir_dept d;
        int rc;
        if (bsearch(&cur, r->want, r->n_want, sizeof *r->want, hstr_cmp)) {
            *hit = true;
            return 0;
        }
        key_dir_dept(&k, x->c->tenant, cur);
        kv = kb_val(&k);
        rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc || dir_dept_decode(v, &d) != 0)
            return aw_fatal(x, rc ? rc : MDB_CORRUPTED);
        memcpy(at, d.parent, strlen(d.parent) + 1);
    }
    return 0;
}

/* scan_ids callback over directory users: @all (employees) or by department. */
static int dir_user_one(herald_str user, MDB_val v, void *arg)
{
    rcpt *r = arg;
    store_dir_user d;
    bool hit = true;
    int rc;
    if (dir_user_decode(v, &d) != 0)
        return HERALD_ESTORAGE;
    if (r->internal_only && d.kind != DIR_INTERNAL)
        return 0;
    if (r->n_want) {
        rc = dept_wanted(r->x, r, herald_str_z(d.dept), &hit);
        if (rc)
            return rc;
    }
    return hit ? rcpt_add(r, user) : 0;
}

static int tagged_one(herald_str user, MDB_val v, void *arg)
{
    (void)v;
    return rcpt_add(arg, user);
}

/* Every directory user of the tenant through fn. */
static int scan_dir_users(actx *x, rcpt *r)
{
    kbuf k = {0};
    int rc;
    kb_id(&k, herald_str_z("u"));
    kb_id(&k, x->c->tenant);
    rc = scan_ids(x->txn, x->s->db.meta, &k, dir_user_one, r);
    return rc == HERALD_ESTORAGE ? aw_fatal(x, MDB_CORRUPTED) : rc;
}

static int meta_exists(actx *x, kbuf *k, bool *found)
{
    MDB_val kv = kb_val(k), v;
    int rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    *found = rc == 0;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : aw_fatal(x, rc);
}

/* Outcome of an invalid id, kept for the record too. */
static int bad(actx *x, rbuf *rec, uint32_t *n, herald_str id, uint32_t status)
{
    rb_u8(rec, (uint8_t)status);
    rb_str(rec, id);
    (*n)++;
    return aw_add_outcome(x, id, (herald_str){0}, (herald_str){0}, status);
}

/* Resolves the command's users, departments and tags into r (sorted,
 * unique); invalid ones become outcomes (and go into rec). */
static int resolve(actx *x, rcpt *r, rbuf *rec, uint32_t *n_rec)
{
    const cmd *c = x->c;
    bool all = false;
    int rc = 0;

    for (uint32_t i = 0; i < c->n_members && rc == 0; i++) {
        herald_str u = c->members[i];
        kbuf k;
        bool found = false;
        if (herald_str_eq(u, "@all")) {
            all = true;
            continue;
        }
        if (aw_id_ok(u)) {
            key_dir_user(&k, c->tenant, u);
            rc = meta_exists(x, &k, &found);
        }
        if (rc == 0)
            rc = found ? rcpt_add(r, u) : bad(x, rec, n_rec, u, APP_BAD_USER);
    }
    if (rc == 0 && all) {
        r->internal_only = true;
        rc = scan_dir_users(x, r);
        r->internal_only = false;
    }
    if (rc == 0 && c->n_depts) {
        herald_str *want = arena_alloc(x->a, (size_t)c->n_depts * sizeof *want + 1);
        if (!want)
            return HERALD_ENOMEM;
        for (uint32_t i = 0; i < c->n_depts && rc == 0; i++) {
            kbuf k;
            bool found = false;
            if (aw_id_ok(c->depts[i])) {
                key_dir_dept(&k, c->tenant, c->depts[i]);
                rc = meta_exists(x, &k, &found);
            }
            if (rc == 0 && found)
                want[r->n_want++] = c->depts[i];
            else if (rc == 0)
                rc = bad(x, rec, n_rec, c->depts[i], APP_BAD_DEPT);
        }
        if (rc == 0 && r->n_want) {
            qsort(want, r->n_want, sizeof *want, hstr_cmp);
            r->want = want;
            rc = scan_dir_users(x, r);
            r->n_want = 0;
        }
    }
    for (uint32_t i = 0; i < c->n_tags && rc == 0; i++) {
        size_t before = r->ids.len;
        kbuf k;
        if (aw_id_ok(c->tags[i])) {
            key_tagged(&k, c->tenant, c->tags[i]);
            rc = scan_ids(x->txn, x->s->db.meta, &k, tagged_one, r);
            if (rc == HERALD_ESTORAGE)
                return aw_fatal(x, MDB_CORRUPTED);
        }
        if (rc == 0 && r->ids.len == before)
            rc = bad(x, rec, n_rec, c->tags[i], APP_BAD_TAG);
    }
    if (rc == 0 && r->ids.len) {
        herald_str *v = (herald_str *)r->ids.data;
        size_t n = r->ids.len / sizeof *v, u = 0;
        qsort(v, n, sizeof *v, hstr_cmp);
        for (size_t i = 0; i < n; i++)
            if (u == 0 || hstr_cmp(&v[u - 1], &v[i]) != 0)
                v[u++] = v[i];
        r->ids.len = u * sizeof *v;
    }
    return rc;
}

/* The frequency cap: a fixed one-minute window per (app, member). */
static int charge(actx *x, herald_str user, uint32_t cap, bool *limited)
{
    const cmd *c = x->c;
    uint64_t minute = c->ts / 60000u;
    kbuf k;
    MDB_val kv, v;
    rbuf r = {0};
    uint64_t at = 0;
    uint32_t n = 0;
    int rc;

    key_app_freq(&k, c->tenant, c->target, user);
    if (k.over)
        return aw_reject(x, HERALD_EINVAL, "ids too long");
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == 0) {
        rcur rc2 = rc_of(v);
        at = rc_u64(&rc2);
        n = rc_u32(&rc2);
        if (rc2.bad)
            return aw_fatal(x, MDB_CORRUPTED);
    } else if (rc != MDB_NOTFOUND) {
        return aw_fatal(x, rc);
    }
    if (at != minute)
        n = 0;
    *limited = n >= cap;
    if (*limited)
        return 0;
    rb_u64(&r, minute);
    rb_u32(&r, n + 1);
    return aw_put_rec(x, x->s->db.meta, &k, &r);
}

/* A duplicate: the recorded outcome again (dup set, nothing charged). */
static int replay(actx *x, MDB_val v)
{
    rcur r = rc_of(v);
    uint64_t gen = rc_u64(&r);
    uint32_t n = rc_u32(&r);
    int rc = 0;
    x->r->dup = true;
    x->r->ts = gen;
    for (uint32_t i = 0; i < n && rc == 0 && !r.bad; i++) {
        uint8_t st = rc_u8(&r);
        herald_str id = rc_str(&r);
        if (!r.bad)
            rc = aw_add_outcome(x, id, (herald_str){0}, (herald_str){0}, st);
    }
    if (rc == 0 && r.bad)
        return aw_fatal(x, MDB_CORRUPTED);
    return rc;
}

/* APP_MARK: see cmd.h. Result: ts = the message's generation (its first
 * commit time; the gateway derives delivery ids from it), dup, and one
 * outcome per recipient or invalid id. */
int op_app_mark(actx *x)
{
    const cmd *c = x->c;
    uint64_t win = c->win ? c->win : APP_DEDUP_DEFAULT;
    uint32_t cap = c->cap ? c->cap : APP_FREQ_DEFAULT;
    rcpt r = {.x = x};
    rbuf rec = {0};
    uint32_t n_rec = 0;
    size_t count_at;
    kbuf k;
    MDB_val kv, v;
    int rc;

    if (!c->admin)
        return aw_reject(x, HERALD_EFORBIDDEN, "app messages need the admin role");
    if (!aw_id_ok(c->target))
        return aw_reject(x, HERALD_EINVAL, "invalid app id");
    if (!aw_id_ok(c->cmid))
        return aw_reject(x, HERALD_EINVAL, "invalid message id");
    if (!herald_str_eq(c->kind, "send") && !herald_str_eq(c->kind, "announce"))
        return aw_reject(x, HERALD_EINVAL, "kind must be send or announce");
    if (c->n_members > APP_USERS_MAX)
        return aw_reject(x, HERALD_EINVAL, "at most 1,000 users per message");
    if (c->n_depts > APP_DEPTS_MAX)
        return aw_reject(x, HERALD_EINVAL, "at most 100 departments per message");
    if (c->n_tags > APP_TAGS_MAX)
        return aw_reject(x, HERALD_EINVAL, "at most 100 tags per message");
    if (c->n_members + c->n_depts + c->n_tags == 0)
        return aw_reject(x, HERALD_EINVAL, "no recipients: users, departments, tags or @all");
    if (win > APP_DEDUP_MAX)
        return aw_reject(x, HERALD_EINVAL, "the duplicate window is at most 14,400 s");
    key_app_msg(&k, c->tenant, c->target, c->cmid);
    if (k.over)
        return aw_reject(x, HERALD_EINVAL, "ids too long");
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == 0) {
        uint64_t gen;
        if (v.mv_size < 12)
            return aw_fatal(x, MDB_CORRUPTED);
        gen = be64(v.mv_data);
        /* Within the window (or a proposer clock behind the first one's). */
        if (c->ts <= gen || c->ts - gen < win * 1000u)
            return replay(x, v);
    } else if (rc != MDB_NOTFOUND) {
        return aw_fatal(x, rc);
    }
    /* A new message (or the window has passed): its generation is now. */
    rb_u64(&rec, c->ts);
    count_at = rec.b.len;
    rb_u32(&rec, 0);
    rc = resolve(x, &r, &rec, &n_rec);
    if (rc == 0 && r.ids.len / sizeof(herald_str) > APP_RECIPIENTS_MAX)
        rc = aw_reject(x, HERALD_EINVAL, "more than 10,000 recipients");
    for (size_t i = 0; rc == 0 && i < r.ids.len / sizeof(herald_str); i++) {
        herald_str u = ((herald_str *)r.ids.data)[i];
        bool limited;
        rc = charge(x, u, cap, &limited);
        if (rc == 0) {
            uint32_t st = limited ? APP_LIMITED : APP_SENT;
            rb_u8(&rec, (uint8_t)st);
            rb_str(&rec, u);
            n_rec++;
            rc = aw_add_outcome(x, u, (herald_str){0}, (herald_str){0}, st);
        }
    }
    herald_buf_free(&r.ids);
    if (rc) {
        rb_free(&rec);
        return rc;
    }
    if (!rec.failed) {
        uint8_t *p = rec.b.data + count_at;
        p[0] = (uint8_t)(n_rec >> 24);
        p[1] = (uint8_t)(n_rec >> 16);
        p[2] = (uint8_t)(n_rec >> 8);
        p[3] = (uint8_t)n_rec;
    }
    x->r->ts = c->ts;
    return aw_put_rec(x, x->s->db.meta, &k, &rec);
}

/* APP_DELIVER: see cmd.h. The conversation is created on first use (the
 * app as owner; no system message), then the message is appended unless
 * this cmid was seen (dup, original seq). */
int op_app_deliver(actx *x)
{
    const cmd *c = x->c;
    int kind = conv_kind_parse(c->kind);
    store_conv sc = {0};
    kbuf dk;
    uint64_t seq;
    bool found;
    int rc;

    if (!c->admin)
        return aw_reject(x, HERALD_EFORBIDDEN, "app messages need the admin role");
    if (kind != CONV_SINGLE && kind != CONV_ANNOUNCE)
        return aw_reject(x, HERALD_EINVAL, "kind must be single or announce");
    if (!aw_id_ok(c->conv) || !aw_id_ok(c->user) || !aw_id_ok(c->cmid))
        return aw_reject(x, HERALD_EINVAL, "invalid id");
    if (c->n_members == 0 || (kind == CONV_SINGLE && c->n_members != 1) ||
        c->n_members > CONV_CAP_ANNOUNCE - 1)
        return aw_reject(x, HERALD_EINVAL, "single: one recipient; announce: 1 to 99,999");
    for (uint32_t i = 0; i < c->n_members; i++)
        if (!aw_id_ok(c->members[i]) || hstr_cmp(&c->members[i], &c->user) == 0)
            return aw_reject(x, HERALD_EINVAL, "invalid recipient");
    rc = conv_read(x->txn, x->s, c->tenant, c->conv, &sc);
    if (rc == HERALD_ENOT_FOUND) {
        sc = (store_conv){.kind = kind, .created = c->ts, .cap = aw_kind_cap(kind, 0)};
        snprintf(sc.owner, sizeof sc.owner, "%.*s", (int)c->user.len, c->user.ptr);
        rc = aw_write_member(x, c->conv, c->user, ROLE_OWNER, 1, &sc);
        for (uint32_t i = 0; i < c->n_members && rc == 0; i++) {
            uint32_t role;
            uint64_t joined;
            if (member_read(x->txn, x->s, c->tenant, c->conv, c->members[i], &role, &joined,
                            NULL) == 0)
                continue; /* listed twice */
            rc = aw_write_member(x, c->conv, c->members[i], ROLE_MEMBER, 1, &sc);
            sc.count++;
        }
        sc.count++;
        if (rc)
            return rc;
    } else if (rc) {
        return aw_fatal(x, MDB_CORRUPTED);
    } else if (sc.kind != kind || !herald_str_eq(c->user, sc.owner)) {
        return aw_reject(x, HERALD_EEXISTS, "the conversation belongs to something else");
    } else if (kind == CONV_SINGLE) {
        /* The app's 1:1: exactly the app and this recipient. */
        uint32_t role;
        uint64_t joined;
        if (sc.count != 2 || member_read(x->txn, x->s, c->tenant, c->conv, c->members[0], &role,
                                         &joined, NULL) != 0)
            return aw_reject(x, HERALD_EEXISTS, "the conversation belongs to something else");
    }
    key_member(&dk, c->tenant, c->conv, c->user);
    kb_id(&dk, c->cmid);
    if (dk.over)
        return aw_reject(x, HERALD_EINVAL, "ids too long for a dedup key");
    rc = aw_get_u64(x, x->s->db.dedup, &dk, &seq, &found);
    if (rc)
        return rc;
    if (found) {
        x->r->seq = seq;
        x->r->dup = true;
        return 0;
    }
    rc = aw_append_msg(x, c->conv, &sc, HERALD_MK_TEXT, 0, c->body);
    return rc ? rc : aw_put_u64(x, x->s->db.dedup, &dk, sc.max_seq);
}

/* "app:" + id must stay a user id. */
#define APP_CMD_ID_MAX 100u

/* APP_CREATE: registers an app of the tenant (see cmd.h). An id taken
 * already is EXISTS: an app's secret is shown once, never replaced here. */
int op_app_create(actx *x)
{
    const cmd *c = x->c;
    rbuf r = {0};
    kbuf k;
    MDB_val kv, v;
    int rc;

    if (!c->admin)
        return aw_reject(x, HERALD_EFORBIDDEN, "apps are registered by a tenant admin");
    if (!aw_id_ok(c->target) || c->target.len > APP_CMD_ID_MAX)
        return aw_reject(x, HERALD_EINVAL, "invalid app id");
    if (c->name.len > 128)
        return aw_reject(x, HERALD_EINVAL, "name is at most 128 bytes");
    if (c->secret.len != 64 || (c->flags & ~APP_SCOPE_ALL_))
        return aw_reject(x, HERALD_EINVAL, "malformed app record");
    key_app(&k, c->tenant, c->target);
    if (k.over)
        return aw_reject(x, HERALD_EINVAL, "ids too long");
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == 0)
        return aw_reject(x, HERALD_EEXISTS, "an app with this id exists");
    if (rc != MDB_NOTFOUND)
        return aw_fatal(x, rc);
    rb_u32(&r, c->flags);
    rb_str(&r, c->name);
    rb_str(&r, c->secret);
    rb_u64(&r, c->ts);
    return aw_put_rec(x, x->s->db.meta, &k, &r);
}
