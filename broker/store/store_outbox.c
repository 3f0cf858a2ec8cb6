/* store_outbox.c — the event-callback outbox's keys, record decoders and
 * reads; see outbox.h. */
#include "outbox.h"

#include <herald/error.h>
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

void key_ob_retry(kbuf *k, herald_str ten, herald_str app, uint64_t seq, bool prefix)
{
    key_meta(k, "or", ten, app);
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
    return 0;
}

/* ---- reads ------------------------------------------------------------------- */

int store_outbox_state_get(store *s, store_outbox_state *out)
{
    MDB_txn *txn;
    kbuf k;
    MDB_val kv, v;
    int rc;

    memset(out, 0, sizeof *out);
    key_ob_state(&k);
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    kv = kb_val(&k);
    rc = mdb_get(txn, s->db.meta, &kv, &v);
    if (rc == 0)
        rc = ob_state_decode(v, out);
    else
        rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
    store_rd_end(s, txn);
    return rc;
}

int store_outbox_scan(store *s, uint64_t after, uint32_t max, store_event_fn fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    kbuf k, pre = {0};
    MDB_val kv, v;
    uint32_t n = 0;
    int rc, mrc;

    if (after == UINT64_MAX)
        return 0;
    key_ob_event(&k, after + 1);
    kb_id(&pre, herald_str_z("oe"));
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    mrc = mdb_cursor_open(txn, s->db.meta, &cur);
    if (mrc) {
        store_rd_end(s, txn);
        return store_err(mrc);
    }
    kv = kb_val(&k);
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); mrc == 0 && n < max;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        store_event e;
        if (kv.mv_size != pre.n + 8 || memcmp(kv.mv_data, pre.b, pre.n) != 0)
            break;
        memset(&e, 0, sizeof e);
        e.group = s->group;
        e.seq = be64((const uint8_t *)kv.mv_data + pre.n);
        rc = ob_event_decode(v, &e);
        if (rc == 0)
            rc = fn(&e, arg);
        store_event_free(&e);
        n++;
        if (rc)
            break;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && rc == 0)
        rc = store_err(mrc);
    mdb_cursor_close(cur);
    store_rd_end(s, txn);
    return rc == 1 ? 0 : rc;
}

int store_ob_cursor_get(store *s, herald_str ten, herald_str app, store_ob_cursor *out)
{
    MDB_txn *txn;
    kbuf k;
    MDB_val kv, v;
    int rc;

    memset(out, 0, sizeof *out);
    key_ob_cursor(&k, ten, app);
    if (k.over)
        return 0;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    kv = kb_val(&k);
    rc = mdb_get(txn, s->db.meta, &kv, &v);
    if (rc == 0)
        rc = ob_cursor_decode(v, out);
    else
        rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
    store_rd_end(s, txn);
    return rc;
}

int store_ob_retries(store *s, herald_str ten, herald_str app, store_retry_fn fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    kbuf pre;
    MDB_val kv, v;
    int rc = 0, mrc;

    key_ob_retry(&pre, ten, app, 0, true);
    if (pre.over)
        return 0;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    mrc = mdb_cursor_open(txn, s->db.meta, &cur);
    if (mrc) {
        store_rd_end(s, txn);
        return store_err(mrc);
    }
    kv = kb_val(&pre);
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        store_ob_retry r;
        if (kv.mv_size != pre.n + 8 || memcmp(kv.mv_data, pre.b, pre.n) != 0)
            break;
        memset(&r, 0, sizeof r);
        r.seq = be64((const uint8_t *)kv.mv_data + pre.n);
        rc = ob_retry_decode(v, &r);
        if (rc == 0) {
            r.ev.group = s->group;
            r.ev.seq = r.seq;
            copy_id(r.ev.tenant, sizeof r.ev.tenant, ten);
            rc = fn(&r, arg);
        }
        store_ob_retry_free(&r);
        if (rc)
            break;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && rc == 0)
        rc = store_err(mrc);
    mdb_cursor_close(cur);
    store_rd_end(s, txn);
    return rc == 1 ? 0 : rc;
}

int store_callback_get(store *meta, herald_str ten, herald_str app, store_callback *out)
{
    MDB_txn *txn;
    kbuf k;
    MDB_val kv, v;
    int rc;

    memset(out, 0, sizeof *out);
    key_callback(&k, ten, app);
    if (k.over || !copy_id(out->tenant, sizeof out->tenant, ten) ||
        !copy_id(out->app, sizeof out->app, app))
        return HERALD_ENOT_FOUND;
    rc = store_rd_begin(meta, &txn);
    if (rc)
        return rc;
    kv = kb_val(&k);
    rc = mdb_get(txn, meta->db.meta, &kv, &v);
    if (rc == 0)
        rc = callback_decode(v, out);
    else
        rc = rc == MDB_NOTFOUND ? HERALD_ENOT_FOUND : store_err(rc);
    store_rd_end(meta, txn);
    return rc;
}

int store_callbacks(store *meta, store_callback_fn fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    kbuf pre = {0};
    MDB_val kv, v;
    int rc = 0, mrc;

    kb_id(&pre, herald_str_z("cb"));
    rc = store_rd_begin(meta, &txn);
    if (rc)
        return rc;
    mrc = mdb_cursor_open(txn, meta->db.meta, &cur);
    if (mrc) {
        store_rd_end(meta, txn);
        return store_err(mrc);
    }
    kv = kb_val(&pre);
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        const uint8_t *p = kv.mv_data;
        size_t at = pre.n, tl, al;
        store_callback cb;
        if (kv.mv_size < at + 1 || memcmp(p, pre.b, pre.n) != 0)
            break;
        tl = p[at];
        if (kv.mv_size < at + 1 + tl + 1)
            break;
        al = p[at + 1 + tl];
        if (kv.mv_size != at + 2 + tl + al || tl > TOKEN_ID_MAX_STORE ||
            al > TOKEN_ID_MAX_STORE) {
            rc = HERALD_ESTORAGE;
            break;
        }
        memset(&cb, 0, sizeof cb);
        memcpy(cb.tenant, p + at + 1, tl);
        memcpy(cb.app, p + at + 2 + tl, al);
        rc = callback_decode(v, &cb);
        if (rc == 0)
            rc = fn(&cb, arg);
        if (rc)
            break;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && rc == 0)
        rc = store_err(mrc);
    mdb_cursor_close(cur);
    store_rd_end(meta, txn);
    return rc == 1 ? 0 : rc;
}
