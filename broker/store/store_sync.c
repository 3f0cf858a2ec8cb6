/* store_sync.c — reading messages back: history pages, sync from a
 * position (pointer logs and read-diffused conversations), the current
 * position for WELCOME. See store.h. */
#include "store_int.h"

#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "position.h"

#define HISTORY_DEFAULT 100u
#define HISTORY_MAX 1000u
#define SYNC_DEFAULT 500u
#define SYNC_MAX 1000u

void store_msgs_free(store_msgs *m)
{
    if (!m)
        return;
    if (m->arena) {
        arena_free(m->arena);
        free(m->arena);
    }
    *m = (store_msgs){0};
}

/* A growable message list whose strings live in an arena. */
typedef struct msg_list {
    herald_buf v;     /* herald_msg array */
    arena *a;         /* string storage */
    size_t bytes;     /* estimated encoded size so far */
    size_t max_bytes; /* budget (0 = none); the first message always fits */
} msg_list;

/* Per-message overhead of the encoding beyond the record's bytes. */
#define MSG_OVERHEAD 64u

/* True when a message whose record is rec_len bytes no longer fits. */
static bool ml_full(const msg_list *l, size_t rec_len, size_t conv_len)
{
    return l->max_bytes && l->v.len &&
           l->bytes + rec_len + conv_len + MSG_OVERHEAD > l->max_bytes;
}

/* Accounts a pushed message. */
static void ml_account(msg_list *l, size_t rec_len, size_t conv_len)
{
    l->bytes += rec_len + conv_len + MSG_OVERHEAD;
}

static herald_msg *ml_push(msg_list *l)
{
    herald_msg m = {0};
    if (herald_buf_append(&l->v, &m, sizeof m) != 0)
        return NULL;
    return (herald_msg *)(l->v.data + l->v.len - sizeof m);
}

static uint32_t ml_count(const msg_list *l) { return (uint32_t)(l->v.len / sizeof(herald_msg)); }

/* Reads messages seq > after of (ten, conv) into l, at most `room`. Sets
 * *last to the last seq read (or leaves it) and *cut when more remain. */
static int read_msgs(MDB_txn *txn, store *s, herald_str ten, herald_str conv, uint64_t after,
                     uint32_t room, msg_list *l, uint64_t *last, bool *cut)
{
    MDB_cursor *cur;
    kbuf k;
    MDB_val kv, v;
    size_t plen;
    uint32_t got = 0;
    int rc = 0, mrc;

    key_conv(&k, ten, conv);
    plen = k.n;
    kb_u64(&k, after + 1);
    if (k.over || after == UINT64_MAX)
        return 0;
    rc = mdb_cursor_open(txn, s->db.msg, &cur);
    if (rc)
        return store_err(rc);
    kv = kb_val(&k);
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        herald_msg *m;
        uint64_t seq;
        if (kv.mv_size != plen + 8 || memcmp(kv.mv_data, k.b, plen) != 0)
            break;
        if (got == room || ml_full(l, v.mv_size, conv.len)) {
            *cut = true;
            break;
        }
        ml_account(l, v.mv_size, conv.len);
        seq = be64((const uint8_t *)kv.mv_data + plen);
        m = ml_push(l);
        if (!m) {
            rc = HERALD_ENOMEM;
            break;
        }
        rc = msg_decode(v, conv, seq, l->a, m);
        if (rc)
            break;
        m->group = s->group;
        *last = seq;
        got++;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && !rc)
        rc = store_err(mrc);
    mdb_cursor_close(cur);
    return rc;
}

static int ml_init(msg_list *l)
{
    memset(l, 0, sizeof *l);
    l->a = calloc(1, sizeof *l->a);
    return l->a ? 0 : HERALD_ENOMEM;
}

static void ml_drop(msg_list *l)
{
    herald_buf_free(&l->v);
    if (l->a) {
        arena_free(l->a);
        free(l->a);
    }
    l->a = NULL;
}

/* Moves the list into out (the array is copied into the arena so one free
 * releases everything). 0 or HERALD_ENOMEM (the list is dropped). */
static int ml_finish(msg_list *l, store_msgs *out)
{
    herald_msg *copy = NULL;
    if (l->v.len) {
        copy = arena_alloc(l->a, l->v.len);
        if (!copy) {
            ml_drop(l);
            return HERALD_ENOMEM;
        }
        memcpy(copy, l->v.data, l->v.len);
    }
    out->n = ml_count(l);
    out->v = copy;
    out->arena = l->a;
    herald_buf_free(&l->v);
    l->a = NULL;
    return 0;
}

int store_history(store *s, herald_str tenant, herald_str conv, uint64_t after,
                  uint32_t limit, size_t max_bytes, store_msgs *out)
{
    MDB_txn *txn;
    msg_list l;
    store_conv sc;
    uint64_t last = after;
    bool cut = false;
    int rc;

    *out = (store_msgs){0};
    if (limit == 0)
        limit = HISTORY_DEFAULT;
    if (limit > HISTORY_MAX)
        limit = HISTORY_MAX;
    rc = ml_init(&l);
    if (rc)
        return rc;
    l.max_bytes = max_bytes;
    rc = store_rd_begin(s, &txn);
    if (rc)
        goto fail_list;
    rc = conv_read(txn, s, tenant, conv, &sc);
    if (rc == 0)
        rc = read_msgs(txn, s, tenant, conv, after, limit, &l, &last, &cut);
    store_rd_end(s, txn);
    if (rc)
        goto fail_list;
    rc = ml_finish(&l, out);
    if (rc)
        return rc;
    out->more = cut;
    return 0;

fail_list:
    ml_drop(&l);
    return rc;
}

void store_sync_free(store_sync_out *o)
{
    if (!o)
        return;
    store_msgs_free(&o->msgs);
    *o = (store_sync_out){0};
}

/* Visits the user's read-diffused conversations: fn(conv, arg). */
typedef int (*conv_fn)(herald_str conv, void *arg);

/* Filter of each_announce: only read-diffused conversations. */
typedef struct announce_filter {
    conv_fn fn; /* caller's */
    void *arg;  /* its argument */
} announce_filter;

static int only_announce(herald_str conv, MDB_val kind, void *arg)
{
    announce_filter *f = arg;
    uint8_t v;
    if (kind.mv_size != 1)
        return HERALD_ESTORAGE;
    v = *(const uint8_t *)kind.mv_data;
    return (v & MEMBEROF_READ_DIFFUSED) || (v & MEMBEROF_KIND_MASK) == CONV_ANNOUNCE
               ? f->fn(conv, f->arg)
               : 0;
}

static int each_announce(MDB_txn *txn, store *s, herald_str ten, herald_str user,
                         conv_fn fn, void *arg)
{
    kbuf k = {0};
    announce_filter f = {.fn = fn, .arg = arg};
    kb_id(&k, ten);
    kb_id(&k, user);
    if (k.over)
        return 0;
    return scan_ids(txn, s->db.memberof, &k, only_announce, &f);
}

/* State of one store_sync / store_position call. */
typedef struct sync_ctx {
    store *s;                        /* store */
    MDB_txn *txn;                    /* read txn */
    herald_str ten, user;            /* who */
    const herald_sync_conv *convs;   /* client's conv positions */
    uint32_t n_convs;
    uint32_t room;                   /* messages still allowed */
    bool only_position;              /* store_position: no messages */
    msg_list l;                      /* messages */
    herald_buf pos;                  /* herald_sync_conv array (new positions) */
    bool cut;                        /* the limit cut the answer */
} sync_ctx;

static int sync_announce(herald_str conv, void *arg)
{
    sync_ctx *x = arg;
    herald_sync_conv p = {0};
    uint64_t after = 0, last;
    bool known = false;
    int rc;

    if (x->only_position) {
        store_conv sc;
        rc = conv_read(x->txn, x->s, x->ten, conv, &sc);
        if (rc)
            return rc;
        after = sc.max_seq;
    } else {
        for (uint32_t i = 0; i < x->n_convs; i++) {
            if (x->convs[i].conv.len == conv.len &&
                memcmp(x->convs[i].conv.ptr, conv.ptr, conv.len) == 0) {
                after = x->convs[i].seq;
                known = true;
                break;
            }
        }
        if (!known) {
            uint32_t role;
            rc = member_read(x->txn, x->s, x->ten, conv, x->user, &role, &after, NULL);
            if (rc)
                return rc;
            /* Messages from the one that added the member onward. */
            after = after ? after - 1 : 0;
        }
        uint32_t before = ml_count(&x->l);
        last = after;
        rc = read_msgs(x->txn, x->s, x->ten, conv, after, x->room, &x->l, &last, &x->cut);
        if (rc)
            return rc;
        x->room -= ml_count(&x->l) - before;
        after = last;
    }
    p.conv.ptr = arena_dup(x->l.a, conv.ptr, conv.len);
    p.conv.len = conv.len;
    p.seq = after;
    if (!p.conv.ptr || herald_buf_append(&x->pos, &p, sizeof p) != 0)
        return HERALD_ENOMEM;
    return 0;
}

/* Pointer-log part of a sync. */
static int sync_pointers(sync_ctx *x, uint64_t after, uint64_t *next)
{
    MDB_cursor *cur;
    kbuf k;
    MDB_val kv, v;
    size_t plen;
    int rc = 0, mrc;

    key_ustate(&k, x->ten, x->user, x->s->group);
    plen = k.n;
    kb_u64(&k, after + 1);
    *next = after;
    if (k.over || after == UINT64_MAX)
        return 0;
    mrc = mdb_cursor_open(x->txn, x->s->db.uevt, &cur);
    if (mrc)
        return store_err(mrc);
    kv = kb_val(&k);
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        rcur c = rc_of(v);
        herald_str conv;
        uint64_t seq, useq;
        kbuf mk;
        MDB_val mkv, mv;
        herald_msg *m;
        if (kv.mv_size != plen + 8 || memcmp(kv.mv_data, k.b, plen) != 0)
            break;
        if (x->room == 0) {
            x->cut = true;
            break;
        }
        useq = be64((const uint8_t *)kv.mv_data + plen);
        conv = rc_str(&c);
        seq = rc_u64(&c);
        if (c.bad) {
            rc = HERALD_ESTORAGE;
            break;
        }
        key_msg(&mk, x->ten, conv, seq);
        mkv = kb_val(&mk);
        rc = mdb_get(x->txn, x->s->db.msg, &mkv, &mv);
        if (rc) {
            rc = store_err(rc);
            break;
        }
        if (ml_full(&x->l, mv.mv_size, conv.len)) {
            x->cut = true;
            break;
        }
        ml_account(&x->l, mv.mv_size, conv.len);
        m = ml_push(&x->l);
        if (!m) {
            rc = HERALD_ENOMEM;
            break;
        }
        rc = msg_decode(mv, conv, seq, x->l.a, m);
        if (rc)
            break;
        m->group = x->s->group;
        m->useq = useq;
        *next = useq;
        x->room--;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && !rc)
        rc = store_err(mrc);
    mdb_cursor_close(cur);
    return rc;
}

static int sync_run(store *s, herald_str tenant, herald_str user, uint64_t after_useq,
                    const herald_sync_conv *convs, uint32_t n_convs, uint32_t limit,
                    size_t max_bytes, bool only_position, store_sync_out *out)
{
    sync_ctx x = {.s = s, .ten = tenant, .user = user, .convs = convs, .n_convs = n_convs,
                  .only_position = only_position};
    int rc;

    memset(out, 0, sizeof *out);
    if (limit == 0)
        limit = SYNC_DEFAULT;
    if (limit > SYNC_MAX)
        limit = SYNC_MAX;
    x.room = limit;
    rc = ml_init(&x.l);
    if (rc)
        return rc;
    x.l.max_bytes = max_bytes;
    rc = store_rd_begin(s, &x.txn);
    if (rc)
        goto fail;
    if (only_position) {
        kbuf k;
        MDB_val kv, v;
        key_ustate(&k, tenant, user, s->group);
        kv = kb_val(&k);
        out->useq = 0;
        if (!k.over && mdb_get(x.txn, s->db.ustate, &kv, &v) == 0 && v.mv_size == 8)
            out->useq = be64(v.mv_data);
    } else {
        rc = sync_pointers(&x, after_useq, &out->useq);
    }
    if (rc == 0)
        rc = each_announce(x.txn, s, tenant, user, sync_announce, &x);
    store_rd_end(s, x.txn);
    if (rc)
        goto fail;
    if (x.pos.len) {
        out->convs = arena_alloc(x.l.a, x.pos.len);
        if (!out->convs) {
            rc = HERALD_ENOMEM;
            goto fail;
        }
        memcpy(out->convs, x.pos.data, x.pos.len);
        out->n_convs = (uint32_t)(x.pos.len / sizeof(herald_sync_conv));
    }
    herald_buf_free(&x.pos);
    rc = ml_finish(&x.l, &out->msgs);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->msgs.more = x.cut;
    return 0;

fail:
    herald_buf_free(&x.pos);
    ml_drop(&x.l);
    memset(out, 0, sizeof *out);
    return rc;
}

int store_sync(store *s, herald_str tenant, herald_str user, uint64_t after_useq,
               const herald_sync_conv *convs, uint32_t n_convs, uint32_t limit,
               size_t max_bytes, store_sync_out *out)
{
    int rc = sync_run(s, tenant, user, after_useq, convs, n_convs, limit, max_bytes, false, out);
    /* Urgent messages say whether this reader confirmed them. */
    if (rc == 0 && (rc = store_urgent_mark(s, tenant, user, out->msgs.v, out->msgs.n)) != 0)
        store_sync_free(out);
    return rc;
}

int store_position(store *s, herald_str tenant, herald_str user, store_sync_out *out)
{
    return sync_run(s, tenant, user, 0, NULL, 0, 0, 0, true, out);
}

