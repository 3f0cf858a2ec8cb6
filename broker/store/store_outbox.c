/* store_outbox.c — the event-callback outbox's keys, record decoders and
 * reads; see outbox.h. */
#include "outbox.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

void store_event_free(store_event *e)
{
    if (!e)
        return;
    free(e->data);
    e->data = NULL;
    e->data_len = 0;
}

void store_ob_retry_free(store_ob_retry *r)
{
    if (r)
        store_event_free(&r->ev);
}

/* ---- event types ------------------------------------------------------------ */

const char *const ob_type_names[OB_TYPES_N] = {
    "message",         "recall",         "receipt",        "urgent.escalate",
    "message.offline", "directory.user", "directory.dept", "contact.add",
    "tag.add",         "tag.remove",     "transfer",       "transfer.done",
};

uint32_t ob_type_bit(const char *p, size_t n)
{
    for (uint32_t i = 0; i < OB_TYPES_N; i++)
        if (strlen(ob_type_names[i]) == n && memcmp(ob_type_names[i], p, n) == 0)
            return 1u << i;
    return 0;
}

void ob_types_str(uint32_t mask, char *out, size_t cap)
{
    size_t at = 0;
    if (!cap)
        return;
    out[0] = '\0';
    for (uint32_t i = 0; i < OB_TYPES_N; i++) {
        int w;
        if (!(mask & (1u << i)))
            continue;
        w = snprintf(out + at, cap - at, "%s%s", at ? "," : "", ob_type_names[i]);
        if (w < 0 || (size_t)w >= cap - at)
            return; /* cut short, still terminated */
        at += (size_t)w;
    }
}

/* ---- keys ------------------------------------------------------------------ */

void key_ob_event(kbuf *k, uint64_t seq)
{
    k->n = 0;
    k->over = false;
    kb_id(k, herald_str_z("oe"));
    kb_u64(k, seq);
}

void key_ob_state(kbuf *k)
{
    k->n = 0;
    k->over = false;
    kb_id(k, herald_str_z("os"));
}

void key_ob_cursor(kbuf *k, herald_str ten, herald_str app) { key_meta(k, "oc", ten, app); }

void key_ob_retry(kbuf *k, bool failed, herald_str ten, herald_str app, uint64_t seq,
                  bool prefix)
{
    key_meta(k, failed ? "of" : "or", ten, app);
    if (!prefix)
        kb_u64(k, seq);
}

void key_callback(kbuf *k, herald_str ten, herald_str app) { key_meta(k, "cb", ten, app); }

/* ---- records ----------------------------------------------------------------- */

/* Copies s into a fixed buffer of cap bytes (NUL included); false when it
 * does not fit. */
static bool copy_id(char *dst, size_t cap, herald_str s)
{
    if (s.len >= cap)
        return false;
    if (s.len)
        memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
    return true;
}

/* The event part shared by "oe" and "or" records (after the tenant). */
static int event_tail(rcur *c, store_event *out)
{
    herald_str type = rc_str(c), conv = rc_str(c), data = rc_str(c);
    if (c->bad || !copy_id(out->type, sizeof out->type, type) ||
        !copy_id(out->conv, sizeof out->conv, conv))
        return HERALD_ESTORAGE;
    out->data = malloc(data.len + 1);
    if (!out->data)
        return HERALD_ENOMEM;
    if (data.len)
        memcpy(out->data, data.ptr, data.len);
    out->data[data.len] = '\0';
    out->data_len = data.len;
    return 0;
}

int ob_event_decode(MDB_val v, store_event *out)
{
    rcur c = rc_of(v);
    herald_str ten;
    out->data = NULL;
    out->ts = rc_u64(&c);
    ten = rc_str(&c);
    if (c.bad || !copy_id(out->tenant, sizeof out->tenant, ten))
        return HERALD_ESTORAGE;
    return event_tail(&c, out);
}

int ob_state_decode(MDB_val v, store_outbox_state *out)
{
    rcur c = rc_of(v);
    out->last_seq = rc_u64(&c);
    out->held = rc_u64(&c);
    out->dropped = rc_u64(&c);
    return c.bad ? HERALD_ESTORAGE : 0;
}

int ob_cursor_decode(MDB_val v, store_ob_cursor *out)
{
    rcur c = rc_of(v);
    out->cursor = rc_u64(&c);
    out->delivered = rc_u64(&c);
    out->failed = rc_u64(&c);
    out->failed_now = rc_u32(&c);
    return c.bad ? HERALD_ESTORAGE : 0;
}

int ob_retry_decode(MDB_val v, store_ob_retry *out)
{
    rcur c = rc_of(v);
    herald_str err;
    out->ev.data = NULL;
    out->state = rc_u8(&c);
    out->attempts = rc_u32(&c);
    out->next_ms = rc_u64(&c);
    out->first_ms = rc_u64(&c);
    err = rc_str(&c);
    out->ev.ts = rc_u64(&c);
    if (c.bad || out->state > OB_REQUEUED ||
        !copy_id(out->last_error, sizeof out->last_error, err))
        return HERALD_ESTORAGE;
    return event_tail(&c, &out->ev);
}

int callback_decode(MDB_val v, store_callback *out)
{
    rcur c = rc_of(v);
    herald_str url = rc_str(&c), token = rc_str(&c), secret = rc_str(&c);
    uint32_t flags = rc_u32(&c);
    out->set_ms = rc_u64(&c);
    if (c.bad || !copy_id(out->url, sizeof out->url, url) ||
        !copy_id(out->token, sizeof out->token, token) ||
        !copy_id(out->secret, sizeof out->secret, secret))
        return HERALD_ESTORAGE;
    out->all = (flags & 1u) != 0;
    out->types = 0; /* a record from before types: every type */
    if (c.left >= 4) {
        out->types = rc_u32(&c);
        if (c.bad || (out->types >> OB_TYPES_N) != 0)
            return HERALD_ESTORAGE;
    }
    return 0;
}

/* ---- reads ------------------------------------------------------------------- */

/* ---- reads ------------------------------------------------------------------- */

typedef int (*rec_decode_fn)(MDB_val v, void *out);
static int dec_state(MDB_val v, void *out) { return ob_state_decode(v, out); }
static int dec_cursor(MDB_val v, void *out) { return ob_cursor_decode(v, out); }
static int dec_callback(MDB_val v, void *out) { return callback_decode(v, out); }

/* The meta table's record at k, decoded into out: 0, or `missing` when
 * there is none, or an error. */
static int get_rec(store *s, kbuf *k, rec_decode_fn dec, void *out, int missing)
{
    MDB_txn *txn;
    MDB_val kv = kb_val(k), v;
    int rc = store_rd_begin(s, &txn);

    if (rc)
        return rc;
    rc = mdb_get(txn, s->db.meta, &kv, &v);
    if (rc == 0)
        rc = dec(v, out);
    else
        rc = rc == MDB_NOTFOUND ? missing : store_err(rc);
    store_rd_end(s, txn);
    return rc;
}

/* Calls each(key, value, arg) for the meta table's records from key `from`
 * on while their key starts with pre, in key order, at most max of them;
 * each returns 0 to go on, 1 to stop (then 0 is returned) or an error. */
typedef int (*rec_each_fn)(const MDB_val *k, MDB_val v, void *arg);
static int scan_recs(store *s, kbuf *from, const kbuf *pre, uint32_t max, rec_each_fn each,
                     void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val kv = kb_val(from), v;
    uint32_t n = 0;
    int rc = store_rd_begin(s, &txn), mrc;

    if (rc)
        return rc;
    mrc = mdb_cursor_open(txn, s->db.meta, &cur);
    if (mrc) {
        store_rd_end(s, txn);
        return store_err(mrc);
    }
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); mrc == 0 && n < max;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT), n++) {
        if (kv.mv_size < pre->n || memcmp(kv.mv_data, pre->b, pre->n) != 0)
            break;
        if ((rc = each(&kv, v, arg)) != 0)
            break;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && rc == 0)
        rc = store_err(mrc);
    mdb_cursor_close(cur);
    store_rd_end(s, txn);
    return rc == 1 ? 0 : rc;
}

int store_outbox_state_get(store *s, store_outbox_state *out)
{
    kbuf k;
    memset(out, 0, sizeof *out);
    key_ob_state(&k);
    return get_rec(s, &k, dec_state, out, 0);
}

typedef struct ev_scan {
    store *s;
    size_t pre_n;
    store_event_fn fn;
    void *arg;
} ev_scan;

static int event_each(const MDB_val *k, MDB_val v, void *arg)
{
    ev_scan *x = arg;
    store_event e;
    int rc;
    if (k->mv_size != x->pre_n + 8)
        return 1;
    memset(&e, 0, sizeof e);
    e.group = x->s->group;
    e.seq = be64((const uint8_t *)k->mv_data + x->pre_n);
    rc = ob_event_decode(v, &e);
    if (rc == 0)
        rc = x->fn(&e, x->arg);
    store_event_free(&e);
    return rc;
}

int store_outbox_scan(store *s, uint64_t after, uint32_t max, store_event_fn fn, void *arg)
{
    kbuf k, pre = {0};
    ev_scan x = {.s = s, .fn = fn, .arg = arg};

    if (after == UINT64_MAX)
        return 0;
    key_ob_event(&k, after + 1);
    kb_id(&pre, herald_str_z("oe"));
    x.pre_n = pre.n;
    return scan_recs(s, &k, &pre, max, event_each, &x);
}

int store_ob_cursor_get(store *s, herald_str ten, herald_str app, store_ob_cursor *out)
{
    kbuf k;
    memset(out, 0, sizeof *out);
    key_ob_cursor(&k, ten, app);
    return k.over ? 0 : get_rec(s, &k, dec_cursor, out, 0);
}

typedef struct retry_scan {
    store *s;
    size_t pre_n;
    herald_str ten;
    store_retry_fn fn;
    void *arg;
} retry_scan;

static int retry_each(const MDB_val *k, MDB_val v, void *arg)
{
    retry_scan *x = arg;
    store_ob_retry r;
    int rc;
    if (k->mv_size != x->pre_n + 8)
        return 1;
    memset(&r, 0, sizeof r);
    r.seq = be64((const uint8_t *)k->mv_data + x->pre_n);
    rc = ob_retry_decode(v, &r);
    if (rc == 0) {
        r.ev.group = x->s->group;
        r.ev.seq = r.seq;
        copy_id(r.ev.tenant, sizeof r.ev.tenant, x->ten);
        rc = x->fn(&r, x->arg);
    }
    store_ob_retry_free(&r);
    return rc;
}

int store_ob_retries(store *s, herald_str ten, herald_str app, bool failed, store_retry_fn fn,
                     void *arg)
{
    kbuf pre;
    retry_scan x = {.s = s, .ten = ten, .fn = fn, .arg = arg};

    key_ob_retry(&pre, failed, ten, app, 0, true);
    if (pre.over)
        return 0;
    x.pre_n = pre.n;
    return scan_recs(s, &pre, &pre, UINT32_MAX, retry_each, &x);
}

int store_callback_get(store *meta, herald_str ten, herald_str app, store_callback *out)
{
    kbuf k;
    memset(out, 0, sizeof *out);
    key_callback(&k, ten, app);
    if (k.over || !copy_id(out->tenant, sizeof out->tenant, ten) ||
        !copy_id(out->app, sizeof out->app, app))
        return HERALD_ENOT_FOUND;
    return get_rec(meta, &k, dec_callback, out, HERALD_ENOT_FOUND);
}

typedef struct cb_scan {
    size_t pre_n;
    store_callback_fn fn;
    void *arg;
} cb_scan;

static int callback_each(const MDB_val *k, MDB_val v, void *arg)
{
    cb_scan *x = arg;
    const uint8_t *p = k->mv_data;
    size_t at = x->pre_n, tl, al;
    store_callback cb;
    int rc;
    if (k->mv_size < at + 1)
        return 1;
    tl = p[at];
    if (k->mv_size < at + 1 + tl + 1)
        return 1;
    al = p[at + 1 + tl];
    if (k->mv_size != at + 2 + tl + al || tl > TOKEN_ID_MAX_STORE || al > TOKEN_ID_MAX_STORE)
        return HERALD_ESTORAGE;
    memset(&cb, 0, sizeof cb);
    memcpy(cb.tenant, p + at + 1, tl);
    memcpy(cb.app, p + at + 2 + tl, al);
    rc = callback_decode(v, &cb);
    return rc ? rc : x->fn(&cb, x->arg);
}

int store_callbacks(store *meta, store_callback_fn fn, void *arg)
{
    kbuf pre = {0};
    cb_scan x = {.fn = fn, .arg = arg};
    kb_id(&pre, herald_str_z("cb"));
    x.pre_n = pre.n;
    return scan_recs(meta, &pre, &pre, UINT32_MAX, callback_each, &x);
}
