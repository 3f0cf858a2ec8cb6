/* store_convs.c — a user's conversation list: newest activity first, with
 * the last message, member count and unread count of each. See store.h. */
#include "store_int.h"

#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#define CONVS_DEFAULT 50u
#define CONVS_MAX 200u

void store_convlist_free(store_convlist *l)
{
    if (!l)
        return;
    if (l->arena) {
        arena_free(l->arena);
        free(l->arena);
    }
    free(l->v);
    *l = (store_convlist){0};
}

/* Order of the list: newest last message first, then conversation id. */
int store_conv_entry_cmp(const store_conv_entry *a, const store_conv_entry *b)
{
    size_t n;
    int c;
    if (a->last.ts != b->last.ts)
        return a->last.ts > b->last.ts ? -1 : 1;
    n = a->last.conv.len < b->last.conv.len ? a->last.conv.len : b->last.conv.len;
    c = memcmp(a->last.conv.ptr, b->last.conv.ptr, n);
    if (c)
        return c;
    return a->last.conv.len < b->last.conv.len ? -1 : a->last.conv.len > b->last.conv.len;
}

static int cmp_entries(const void *a, const void *b) { return store_conv_entry_cmp(a, b); }

/* State of one store_convs call. */
typedef struct convs_ctx {
    store *s;
    MDB_txn *txn;
    herald_str ten, user;
    const store_conv_entry *after; /* the cursor (NULL: from the top) */
    arena *a;
    herald_buf v;                  /* store_conv_entry array */
} convs_ctx;

/* Cuts a preview to at most STORE_PREVIEW_MAX bytes, not inside a UTF-8
 * sequence. */
static herald_str preview(herald_str b)
{
    if (b.len <= STORE_PREVIEW_MAX)
        return b;
    b.len = STORE_PREVIEW_MAX;
    while (b.len && ((const uint8_t *)b.ptr)[b.len] >= 0x80 &&
           ((const uint8_t *)b.ptr)[b.len] < 0xc0)
        b.len--;
    return b;
}

static int one_conv(herald_str conv, MDB_val kind, void *arg)
{
    convs_ctx *x = arg;
    store_conv_entry e = {0};
    store_conv sc;
    kbuf k;
    MDB_val kv, v;
    int rc;

    if (kind.mv_size != 1)
        return kind.mv_size == MEMBEROF_LEFT_LEN ? 0 : HERALD_ESTORAGE; /* left: not listed */
    rc = conv_read(x->txn, x->s, x->ten, conv, &sc);
    if (rc == HERALD_ENOT_FOUND)
        return 0;
    if (rc)
        return rc;
    e.kind = sc.kind;
    e.count = sc.count;
    e.last.conv.ptr = arena_dup(x->a, conv.ptr, conv.len);
    e.last.conv.len = conv.len;
    if (!e.last.conv.ptr)
        return HERALD_ENOMEM;
    if (sc.max_seq) {
        key_msg(&k, x->ten, conv, sc.max_seq);
        kv = kb_val(&k);
        rc = mdb_get(x->txn, x->s->db.msg, &kv, &v);
        if (rc)
            return store_err(rc);
        rc = msg_decode(v, e.last.conv, sc.max_seq, x->a, &e.last);
        if (rc)
            return rc;
        e.last.body = preview(e.last.body);
        e.last.group = x->s->group;
        if (mdb_get(x->txn, x->s->db.mpos, &kv, &v) == 0 && v.mv_size == 8)
            e.last.pos = be64(v.mv_data);
    } else {
        e.last.ts = sc.created;
    }
    key_member(&k, x->ten, conv, x->user);
    kv = kb_val(&k);
    e.unread = sc.max_seq;
    if (mdb_get(x->txn, x->s->db.cursor, &kv, &v) == 0 && v.mv_size == 8)
        e.unread = sc.max_seq - (be64(v.mv_data) < sc.max_seq ? be64(v.mv_data) : sc.max_seq);
    /* Whoever wrote the last message has seen the conversation. */
    if (e.last.from.len == x->user.len && memcmp(e.last.from.ptr, x->user.ptr, x->user.len) == 0)
        e.unread = 0;
    if (x->after && store_conv_entry_cmp(&e, x->after) <= 0)
        return 0; /* on an earlier page */
    return herald_buf_append(&x->v, &e, sizeof e) == 0 ? 0 : HERALD_ENOMEM;
}

int store_convs(store *s, herald_str tenant, herald_str user, const store_conv_entry *after,
                uint32_t limit, store_convlist *out)
{
    convs_ctx x = {.s = s, .ten = tenant, .user = user, .after = after};
    kbuf k = {0};
    uint32_t n;
    int rc;

    memset(out, 0, sizeof *out);
    if (limit == 0)
        limit = CONVS_DEFAULT;
    if (limit > CONVS_MAX)
        limit = CONVS_MAX;
    x.a = calloc(1, sizeof *x.a);
    if (!x.a)
        return HERALD_ENOMEM;
    key_memberof(&k, tenant, user, (herald_str){0});
    rc = store_rd_begin(s, &x.txn);
    if (rc == 0) {
        if (!k.over)
            rc = scan_ids(x.txn, s->db.memberof, &k, one_conv, &x);
        store_rd_end(s, x.txn);
    }
    if (rc) {
        herald_buf_free(&x.v);
        arena_free(x.a);
        free(x.a);
        return rc;
    }
    n = (uint32_t)(x.v.len / sizeof(store_conv_entry));
    if (n)
        qsort(x.v.data, n, sizeof(store_conv_entry), cmp_entries);
    out->more = n > limit;
    out->n = n > limit ? limit : n;
    out->v = (store_conv_entry *)x.v.data; /* the tail past limit stays unused */
    out->arena = x.a;
    return 0;
}
