/* store_sync.c — reading messages back: history pages, sync from a
 * position (a merge of the user's conversations by group position), the
 * group's position for WELCOME. See store.h. */
#include "store_int.h"

#include <herald/error.h>
#include <stdlib.h>
#include <string.h>


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
        if (mdb_get(txn, s->db.mpos, &kv, &v) == 0 && v.mv_size == 8)
            m->pos = be64(v.mv_data);
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

/* ---- sync: a merge of the user's conversations by group position -------- */

/* The next message of one conversation still to hand out. */
typedef struct sync_head {
    herald_str conv; /* in the list's arena */
    uint64_t seq;    /* its seq */
    uint64_t pos;    /* its group position */
    uint64_t last;   /* the conversation's newest seq */
} sync_head;

/* State of one store_sync call. */
typedef struct sync_ctx {
    store *s;          /* store */
    MDB_txn *txn;      /* read txn */
    herald_str ten;    /* tenant */
    herald_str user;   /* the reader */
    uint64_t after;    /* the client's position */
    msg_list l;        /* messages (and the arena for conv ids) */
    herald_buf heap;   /* sync_head min-heap by pos */
} sync_ctx;

static sync_head *heap_at(sync_ctx *x, size_t i) { return (sync_head *)x->heap.data + i; }
static size_t heap_n(const sync_ctx *x) { return x->heap.len / sizeof(sync_head); }

static void heap_swap(sync_ctx *x, size_t a, size_t b)
{
    sync_head t = *heap_at(x, a);
    *heap_at(x, a) = *heap_at(x, b);
    *heap_at(x, b) = t;
}

static void heap_down(sync_ctx *x, size_t i)
{
    size_t n = heap_n(x);
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && heap_at(x, l)->pos < heap_at(x, m)->pos)
            m = l;
        if (l + 1 < n && heap_at(x, l + 1)->pos < heap_at(x, m)->pos)
            m = l + 1;
        if (m == i)
            return;
        heap_swap(x, i, m);
        i = m;
    }
}

static int heap_push(sync_ctx *x, const sync_head *h)
{
    size_t i;
    if (herald_buf_append(&x->heap, h, sizeof *h) != 0)
        return HERALD_ENOMEM;
    for (i = heap_n(x) - 1; i > 0 && heap_at(x, (i - 1) / 2)->pos > heap_at(x, i)->pos;
         i = (i - 1) / 2)
        heap_swap(x, i, (i - 1) / 2);
    return 0;
}

static void heap_pop(sync_ctx *x)
{
    size_t n = heap_n(x);
    *heap_at(x, 0) = *heap_at(x, n - 1);
    x->heap.len -= sizeof(sync_head);
    heap_down(x, 0);
}

/* The group position of message seq of conv (0: none recorded). */
static int msg_pos(sync_ctx *x, herald_str conv, uint64_t seq, uint64_t *pos)
{
    kbuf k;
    MDB_val kv, v;
    int rc;
    key_msg(&k, x->ten, conv, seq);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.mpos, &kv, &v);
    *pos = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store_err(rc);
    if (v.mv_size != 8)
        return HERALD_ESTORAGE;
    *pos = be64(v.mv_data);
    return 0;
}

/* One conversation of the user: when its newest message is past the
 * client's position, the first such message from the joined seq on (a
 * binary search: positions grow with seq) goes into the heap. */
static int sync_conv(herald_str conv, MDB_val kind, void *arg)
{
    sync_ctx *x = arg;
    store_conv sc;
    uint32_t role;
    uint64_t joined, lo, hi, pos;
    sync_head h;
    int rc;

    rc = conv_read(x->txn, x->s, x->ten, conv, &sc);
    if (rc == HERALD_ENOT_FOUND)
        return 0;
    if (rc)
        return rc;
    if (kind.mv_size == MEMBEROF_LEFT_LEN &&
        (*(const uint8_t *)kind.mv_data & MEMBEROF_LEFT)) {
        /* Left: what came up to its removal. */
        uint64_t until = be64((const uint8_t *)kind.mv_data + 9);
        joined = be64((const uint8_t *)kind.mv_data + 1);
        if (until < sc.max_seq)
            sc.max_seq = until;
    } else if (kind.mv_size == 1) {
        rc = member_read(x->txn, x->s, x->ten, conv, x->user, &role, &joined, NULL);
        if (rc == HERALD_ENOT_MEMBER)
            return 0;
        if (rc)
            return rc;
    } else {
        return HERALD_ESTORAGE;
    }
    if (joined == 0)
        joined = 1;
    if (sc.max_seq < joined)
        return 0;
    rc = msg_pos(x, conv, sc.max_seq, &pos);
    if (rc || pos <= x->after)
        return rc;
    /* The first seq in [joined, max_seq] whose position is past `after`. */
    lo = joined;
    hi = sc.max_seq;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, p;
        rc = msg_pos(x, conv, mid, &p);
        if (rc)
            return rc;
        if (p > x->after)
            hi = mid;
        else
            lo = mid + 1;
    }
    rc = msg_pos(x, conv, lo, &pos);
    if (rc)
        return rc;
    h = (sync_head){.seq = lo, .pos = pos, .last = sc.max_seq};
    h.conv.ptr = arena_dup(x->l.a, conv.ptr, conv.len);
    h.conv.len = conv.len;
    if (!h.conv.ptr)
        return HERALD_ENOMEM;
    return heap_push(x, &h);
}

/* Hands out messages in position order until the heap is empty (whole:
 * *pos untouched) or the limit cuts (*pos = the last position handed). */
static int sync_merge(sync_ctx *x, uint32_t room, uint64_t *pos, bool *cut)
{
    while (heap_n(x)) {
        sync_head *h = heap_at(x, 0);
        kbuf k;
        MDB_val kv, v;
        herald_msg *m;
        int rc;

        if (ml_count(&x->l) == room) {
            *cut = true;
            return 0;
        }
        key_msg(&k, x->ten, h->conv, h->seq);
        kv = kb_val(&k);
        rc = mdb_get(x->txn, x->s->db.msg, &kv, &v);
        if (rc)
            return store_err(rc); /* a position without its message */
        if (ml_full(&x->l, v.mv_size, h->conv.len)) {
            *cut = true;
            return 0;
        }
        ml_account(&x->l, v.mv_size, h->conv.len);
        m = ml_push(&x->l);
        if (!m)
            return HERALD_ENOMEM;
        rc = msg_decode(v, h->conv, h->seq, x->l.a, m);
        if (rc)
            return rc;
        m->group = x->s->group;
        m->pos = h->pos;
        *pos = h->pos;
        if (h->seq == h->last) {
            heap_pop(x);
            continue;
        }
        h->seq++;
        rc = msg_pos(x, h->conv, h->seq, &h->pos);
        if (rc)
            return rc;
        if (!h->pos)
            return HERALD_ESTORAGE;
        heap_down(x, 0);
    }
    return 0;
}

int store_sync(store *s, herald_str tenant, herald_str user, uint64_t after, uint32_t limit,
               size_t max_bytes, store_sync_out *out)
{
    sync_ctx x = {.s = s, .ten = tenant, .user = user, .after = after};
    kbuf k = {0};
    uint64_t gpos, last = after;
    bool cut = false;
    int rc;

    memset(out, 0, sizeof *out);
    if (limit == 0)
        limit = SYNC_DEFAULT;
    if (limit > SYNC_MAX)
        limit = SYNC_MAX;
    rc = ml_init(&x.l);
    if (rc)
        return rc;
    x.l.max_bytes = max_bytes;
    rc = store_rd_begin(s, &x.txn);
    if (rc)
        goto fail;
    gpos = store_gpos_txn(x.txn, s);
    key_memberof(&k, tenant, user, (herald_str){0});
    if (!k.over && after < gpos)
        rc = scan_ids(x.txn, s->db.memberof, &k, sync_conv, &x);
    if (rc == 0)
        rc = sync_merge(&x, limit, &last, &cut);
    store_rd_end(s, x.txn);
    if (rc)
        goto fail;
    herald_buf_free(&x.heap);
    rc = ml_finish(&x.l, &out->msgs);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->msgs.more = cut;
    /* Never behind the client: a key from the future (another data dir)
     * stays as it is rather than move back. */
    out->pos = cut ? last : gpos > after ? gpos : after;
    /* Urgent messages say whether this reader confirmed them. */
    rc = store_urgent_mark(s, tenant, user, out->msgs.v, out->msgs.n);
    if (rc)
        store_sync_free(out);
    return rc;

fail:
    herald_buf_free(&x.heap);
    ml_drop(&x.l);
    memset(out, 0, sizeof *out);
    return rc;
}

uint64_t store_gpos(store *s)
{
    MDB_txn *txn;
    uint64_t pos;
    if (store_rd_begin(s, &txn) != 0)
        return 0;
    pos = store_gpos_txn(txn, s);
    store_rd_end(s, txn);
    return pos;
}
