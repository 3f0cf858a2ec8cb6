/*
 * rio_tables.c — the raft state's layout in LMDB: keys and values of rlog,
 * rstate and rsnap, read and written inside the caller's transaction (see
 * rio_tables.h). No thread, no queue, no policy: when and in which
 * transaction they run is the store's business (rio_store.c).
 */
#include <errno.h>
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rio_tables.h"

#define LOG_VAL_HDR 9u /* term + type */
#define SNAP_HDR 24u   /* index + term + conf_index */
#define STATE_LEN 16u  /* term + vote */

int rio_tables_open(MDB_txn *txn, rio_tables *t)
{
    int rc;

    if ((rc = mdb_dbi_open(txn, "rlog", MDB_CREATE, &t->log)) != 0 ||
        (rc = mdb_dbi_open(txn, "rstate", MDB_CREATE, &t->state)) != 0 ||
        (rc = mdb_dbi_open(txn, "rsnap", MDB_CREATE, &t->snap)) != 0)
        return rc;
    return 0;
}

int rio_lmdb_to_raft(int rc)
{
    if (rc == MDB_MAP_FULL || rc == ENOSPC)
        return RAFT_NOSPACE;
    if (rc == MDB_TXN_FULL)
        return RAFT_TOOBIG;
    if (rc == ENOMEM)
        return RAFT_NOMEM;
    return RAFT_IOERR;
}

/* ---- rlog ---------------------------------------------------------------- */

static void log_key(uint8_t k[12], uint32_t gid, raft_index idx)
{
    rio_put32(k, gid);
    rio_put64(k + 4, idx);
}

int rio_tables_put_entries(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index first,
                           const struct raft_entry *ents, unsigned n)
{
    uint8_t kb[12];
    unsigned i;
    int rc;

    for (i = 0; i < n; i++) {
        const struct raft_entry *e = &ents[i];
        MDB_val k = {sizeof kb, kb}, v = {LOG_VAL_HDR + e->buf.len, NULL};
        log_key(kb, gid, first + i);
        if ((rc = mdb_put(txn, t->log, &k, &v, MDB_RESERVE)) != 0)
            return rc;
        rio_put64(v.mv_data, e->term);
        ((uint8_t *)v.mv_data)[8] = (uint8_t)e->type;
        if (e->buf.len)
            memcpy((uint8_t *)v.mv_data + LOG_VAL_HDR, e->buf.base, e->buf.len);
    }
    return 0;
}

int rio_tables_put_conf_entry(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index index,
                              raft_term term, const struct raft_configuration *c)
{
    struct raft_buffer buf;
    struct raft_entry e;
    int rc;

    if ((rc = raft_configuration_encode(c, &buf)) != 0)
        return rc == RAFT_NOMEM ? ENOMEM : EINVAL;
    e.term = term;
    e.type = RAFT_CHANGE;
    e.buf = buf;
    e.batch = NULL;
    rc = rio_tables_put_entries(txn, t, gid, index, &e, 1);
    raft_free(buf.base);
    return rc;
}

int rio_tables_del_entries(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index from,
                           raft_index to)
{
    MDB_cursor *c;
    uint8_t kb[12];
    MDB_val k, v;
    int rc;

    if (from > to)
        return 0;
    if ((rc = mdb_cursor_open(txn, t->log, &c)) != 0)
        return rc;
    log_key(kb, gid, from);
    for (;;) {
        k.mv_data = kb;
        k.mv_size = sizeof kb;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        if (k.mv_size != 12 || rio_get32(k.mv_data) != gid ||
            rio_get64((const uint8_t *)k.mv_data + 4) > to)
            break;
        if ((rc = mdb_cursor_del(c, 0)) != 0)
            break;
    }
    mdb_cursor_close(c);
    return rc;
}

int rio_tables_last_entry(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index *last,
                          raft_term *last_term)
{
    MDB_cursor *c;
    uint8_t kb[12];
    MDB_val k = {sizeof kb, kb}, v;
    int rc;

    *last = 0;
    *last_term = 0;
    if ((rc = mdb_cursor_open(txn, t->log, &c)) != 0)
        return rc;
    /* The first key after the group, then one back. */
    log_key(kb, gid, UINT64_MAX);
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 12 && rio_get32(k.mv_data) == gid && v.mv_size >= LOG_VAL_HDR) {
        *last = rio_get64((const uint8_t *)k.mv_data + 4);
        *last_term = rio_get64(v.mv_data);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Reads the group's log: two passes over a cursor (size, then copy into one
 * raft_malloc'd batch). */
int rio_tables_get_entries(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index *first,
                           struct raft_entry **ents, size_t *n)
{
    MDB_cursor *c;
    uint8_t kb[12];
    MDB_val k, v;
    size_t count = 0, bytes = 0, i;
    raft_index expect = 0;
    struct raft_entry *arr = NULL;
    uint8_t *batch = NULL;
    int pass, rc;

    *first = 0;
    *ents = NULL;
    *n = 0;
    if ((rc = mdb_cursor_open(txn, t->log, &c)) != 0)
        return rio_lmdb_to_raft(rc);
    for (pass = 0; pass < 2; pass++) {
        i = 0;
        bytes = 0;
        log_key(kb, gid, 0);
        k.mv_data = kb;
        k.mv_size = sizeof kb;
        for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            raft_index idx;
            if (k.mv_size != 12 || rio_get32(k.mv_data) != gid)
                break;
            idx = rio_get64((const uint8_t *)k.mv_data + 4);
            if (v.mv_size < LOG_VAL_HDR) {
                rc = RAFT_CORRUPT;
                goto fail_cursor;
            }
            if (pass == 0) {
                if (count == 0)
                    *first = idx;
                else if (idx != expect) {
                    log_error("rio.load", "group %u: log gap at %llu", gid, expect);
                    rc = RAFT_CORRUPT;
                    goto fail_cursor;
                }
                expect = idx + 1;
                count++;
            } else {
                size_t len = v.mv_size - LOG_VAL_HDR;
                arr[i].term = rio_get64(v.mv_data);
                arr[i].type = ((const uint8_t *)v.mv_data)[8];
                arr[i].buf.base = batch + bytes;
                arr[i].buf.len = len;
                arr[i].batch = batch;
                if (len)
                    memcpy(batch + bytes, (const uint8_t *)v.mv_data + LOG_VAL_HDR, len);
                i++;
            }
            bytes += v.mv_size - LOG_VAL_HDR;
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
            rc = rio_lmdb_to_raft(rc);
            goto fail_cursor;
        }
        if (pass == 0) {
            if (count == 0)
                break;
            arr = raft_calloc(count, sizeof *arr);
            batch = raft_malloc(bytes ? bytes : 1);
            if (!arr || !batch) {
                rc = RAFT_NOMEM;
                goto fail_cursor;
            }
        } else if (i != count) {
            rc = RAFT_CORRUPT; /* cannot happen inside one read txn */
            goto fail_cursor;
        }
    }
    mdb_cursor_close(c);
    *ents = arr;
    *n = count;
    return 0;

fail_cursor:
    mdb_cursor_close(c);
    raft_free(arr);
    raft_free(batch);
    return rc;
}

/* ---- rstate -------------------------------------------------------------- */

int rio_tables_get_state(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_term *term,
                         raft_id *vote)
{
    uint8_t kb[4];
    MDB_val k = {sizeof kb, kb}, v;
    int rc;

    rio_put32(kb, gid);
    *term = 0;
    *vote = 0;
    rc = mdb_get(txn, t->state, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (v.mv_size != STATE_LEN)
        return MDB_CORRUPTED;
    *term = rio_get64(v.mv_data);
    *vote = rio_get64((const uint8_t *)v.mv_data + 8);
    return 0;
}

int rio_tables_put_state(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_term term,
                         raft_id vote)
{
    uint8_t kb[4], vb[STATE_LEN];
    MDB_val k = {sizeof kb, kb}, v = {sizeof vb, vb};

    rio_put32(kb, gid);
    rio_put64(vb, term);
    rio_put64(vb + 8, vote);
    return mdb_put(txn, t->state, &k, &v, 0);
}

/* ---- rsnap --------------------------------------------------------------- */

int rio_tables_put_snapshot(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index index,
                            raft_term term, raft_index conf_index, const rio_buf *conf,
                            const struct raft_buffer *bufs, unsigned n_bufs)
{
    uint8_t kb[4];
    size_t total = SNAP_HDR + conf->len, off;
    MDB_val k = {sizeof kb, kb}, v;
    unsigned i;
    int rc;

    for (i = 0; i < n_bufs; i++)
        total += bufs[i].len;
    v.mv_size = total;
    v.mv_data = NULL;
    rio_put32(kb, gid);
    if ((rc = mdb_put(txn, t->snap, &k, &v, MDB_RESERVE)) != 0)
        return rc;
    rio_put64(v.mv_data, index);
    rio_put64((uint8_t *)v.mv_data + 8, term);
    rio_put64((uint8_t *)v.mv_data + 16, conf_index);
    memcpy((uint8_t *)v.mv_data + SNAP_HDR, conf->data, conf->len);
    off = SNAP_HDR + conf->len;
    for (i = 0; i < n_bufs; i++) {
        if (bufs[i].len)
            memcpy((uint8_t *)v.mv_data + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    return 0;
}

int rio_tables_has_snapshot(MDB_txn *txn, const rio_tables *t, uint32_t gid, bool *has)
{
    uint8_t kb[4];
    MDB_val k = {sizeof kb, kb}, v;
    int rc;

    rio_put32(kb, gid);
    rc = mdb_get(txn, t->snap, &k, &v);
    *has = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Decodes a stored snapshot value into a raft_malloc'd snapshot. */
static int decode_snapshot(const MDB_val *v, struct raft_snapshot **out)
{
    const uint8_t *p = v->mv_data;
    struct raft_snapshot *snap;
    size_t used = 0, dlen;
    int rc;

    if (v->mv_size < SNAP_HDR)
        return RAFT_CORRUPT;
    snap = raft_calloc(1, sizeof *snap);
    if (!snap)
        return RAFT_NOMEM;
    snap->index = rio_get64(p);
    snap->term = rio_get64(p + 8);
    snap->configuration_index = rio_get64(p + 16);
    raft_configuration_init(&snap->configuration);
    rc = rio_conf_decode(p + SNAP_HDR, v->mv_size - SNAP_HDR, &used, &snap->configuration);
    if (rc != 0) {
        rc = rc == HERALD_ENOMEM ? RAFT_NOMEM : RAFT_CORRUPT;
        goto fail_conf;
    }
    dlen = v->mv_size - SNAP_HDR - used;
    rc = RAFT_NOMEM;
    snap->bufs = raft_malloc(sizeof *snap->bufs);
    if (!snap->bufs)
        goto fail_conf;
    snap->bufs[0].base = raft_malloc(dlen ? dlen : 1);
    if (!snap->bufs[0].base)
        goto fail_bufs;
    if (dlen)
        memcpy(snap->bufs[0].base, p + SNAP_HDR + used, dlen);
    snap->bufs[0].len = dlen;
    snap->n_bufs = 1;
    *out = snap;
    return 0;

fail_bufs:
    raft_free(snap->bufs);
fail_conf:
    raft_configuration_close(&snap->configuration);
    raft_free(snap);
    return rc;
}

void rio_snapshot_free(struct raft_snapshot *snap)
{
    unsigned i;
    if (!snap)
        return;
    raft_configuration_close(&snap->configuration);
    for (i = 0; i < snap->n_bufs; i++)
        raft_free(snap->bufs[i].base);
    raft_free(snap->bufs);
    raft_free(snap);
}

int rio_tables_get_snapshot(MDB_txn *txn, const rio_tables *t, uint32_t gid,
                            struct raft_snapshot **out)
{
    uint8_t kb[4];
    MDB_val k = {sizeof kb, kb}, v;
    int rc;

    *out = NULL;
    rio_put32(kb, gid);
    rc = mdb_get(txn, t->snap, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rio_lmdb_to_raft(rc);
    return decode_snapshot(&v, out);
}
