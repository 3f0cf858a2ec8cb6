/* store_snap.c — whole-store snapshot, restore and digest; see store_snap.h. */
#include "store_snap.h"

#include <herald/error.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#include "log.h"
#include "store_int.h"

#define SNAP_MAGIC "HSNAP\0\0\2" /* magic + version 2 (store format 2) */
#define SNAP_MAGIC_LEN 8u
#define SNAP_HEAD_LEN (SNAP_MAGIC_LEN + 8u + 4u)
#define REF_MAGIC "HSREF\0\0\1" /* a reference snapshot, version 1 */
#define REF_LEN (SNAP_MAGIC_LEN + 8u + crypto_hash_sha256_BYTES)
#define SNAP_ENTRY_MIN 8u         /* klen + vlen, empty key and value */
#define RESTORE_GROW_RETRIES 40   /* as apply_batch: doubling from 1 GiB */

#define SNAP_NDBS STORE_NDBS

static MDB_dbi snap_dbi(const store *s, size_t i)
{
    MDB_dbi d;
    memcpy(&d, (const char *)&s->db + store_db_names[i].off, sizeof d);
    return d;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- writing: one walk feeds the hash and, for snapshots, the buffer ---- */

typedef struct snap_sink {
    herald_buf *buf;                 /* destination; NULL for a digest */
    crypto_hash_sha256_state sha;    /* over every byte emitted */
    int err;                         /* sticky: first append failure */
} snap_sink;

static void sink_put(snap_sink *k, const void *p, size_t n)
{
    crypto_hash_sha256_update(&k->sha, p, n);
    if (k->buf && !k->err && herald_buf_append(k->buf, p, n) != 0)
        k->err = HERALD_ENOMEM;
}

/* Emits the store's content as read by txn (format in store_snap.h, without
 * the trailer). *applied gets the applied index. 0 or HERALD_ESTORAGE /
 * HERALD_ENOMEM. */
static int snap_walk(store *s, MDB_txn *txn, snap_sink *k, uint64_t *applied)
{
    MDB_val ak = {.mv_size = 7, .mv_data = "applied"}, av;
    uint8_t head[SNAP_HEAD_LEN];
    int mrc;

    *applied = 0;
    mrc = mdb_get(txn, s->db.meta, &ak, &av);
    if (mrc == 0 && av.mv_size != 8)
        return HERALD_ESTORAGE; /* never guess the applied index */
    if (mrc == 0)
        *applied = be64(av.mv_data);
    else if (mrc != MDB_NOTFOUND)
        return store_err(mrc);
    memcpy(head, SNAP_MAGIC, SNAP_MAGIC_LEN);
    put_be64(head + SNAP_MAGIC_LEN, *applied);
    put_be32(head + SNAP_MAGIC_LEN + 8, (uint32_t)SNAP_NDBS);
    sink_put(k, head, sizeof head);

    for (size_t i = 0; i < SNAP_NDBS && !k->err; i++) {
        MDB_dbi dbi = snap_dbi(s, i);
        MDB_stat st;
        MDB_cursor *cur;
        MDB_val kv, v;
        uint8_t name_len = (uint8_t)strlen(store_db_names[i].name), cnt[8], len[4];
        uint64_t seen = 0;

        mrc = mdb_stat(txn, dbi, &st);
        if (mrc)
            return store_err(mrc);
        sink_put(k, &name_len, 1);
        sink_put(k, store_db_names[i].name, name_len);
        put_be64(cnt, st.ms_entries);
        sink_put(k, cnt, sizeof cnt);
        mrc = mdb_cursor_open(txn, dbi, &cur);
        if (mrc)
            return store_err(mrc);
        for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_FIRST); mrc == 0 && !k->err;
             mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
            if (kv.mv_size > UINT32_MAX || v.mv_size > UINT32_MAX) {
                mdb_cursor_close(cur);
                return HERALD_ESTORAGE;
            }
            put_be32(len, (uint32_t)kv.mv_size);
            sink_put(k, len, sizeof len);
            sink_put(k, kv.mv_data, kv.mv_size);
            put_be32(len, (uint32_t)v.mv_size);
            sink_put(k, len, sizeof len);
            sink_put(k, v.mv_data, v.mv_size);
            seen++;
        }
        mdb_cursor_close(cur);
        if (mrc != 0 && mrc != MDB_NOTFOUND)
            return store_err(mrc);
        if (!k->err && seen != st.ms_entries)
            return HERALD_ESTORAGE; /* the count we wrote would lie */
    }
    return k->err;
}

/* Rough size of the serialized content: the pages in use. Only a hint for
 * one up-front reservation; never trusted for correctness. */
static size_t snap_size_hint(store *s, MDB_txn *txn)
{
    size_t pages = 0;
    unsigned psize = 4096;
    for (size_t i = 0; i < SNAP_NDBS; i++) {
        MDB_stat st;
        if (mdb_stat(txn, snap_dbi(s, i), &st) != 0)
            return 0;
        psize = st.ms_psize;
        pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    return pages * psize + SNAP_HEAD_LEN + crypto_hash_sha256_BYTES;
}

int store_snapshot(store *s, herald_buf *out, uint64_t *applied)
{
    snap_sink k = {.buf = out};
    uint8_t sum[crypto_hash_sha256_BYTES];
    uint64_t idx;
    MDB_txn *txn;
    int rc;

    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    crypto_hash_sha256_init(&k.sha);
    (void)herald_buf_reserve(out, snap_size_hint(s, txn)); /* a hint: failure is fine */
    rc = snap_walk(s, txn, &k, &idx);
    store_rd_end(s, txn);
    if (rc)
        goto fail;
    crypto_hash_sha256_final(&k.sha, sum);
    if (herald_buf_append(out, sum, sizeof sum) != 0) {
        rc = HERALD_ENOMEM;
        goto fail;
    }
    if (applied)
        *applied = idx;
    return 0;

fail:
    herald_buf_free(out);
    return rc;
}

int store_digest(store *s, uint8_t out[STORE_SNAP_DIGEST_LEN], uint64_t *applied)
{
    snap_sink k = {.buf = NULL};
    uint64_t idx;
    MDB_txn *txn;
    int rc;

    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    crypto_hash_sha256_init(&k.sha);
    rc = snap_walk(s, txn, &k, &idx);
    store_rd_end(s, txn);
    if (rc)
        return rc;
    crypto_hash_sha256_final(&k.sha, out);
    if (applied)
        *applied = idx;
    return 0;
}

/* ---- reading: a bounded cursor over untrusted bytes ---------------------- */

typedef struct snap_rd {
    const uint8_t *p; /* next byte */
    size_t left;      /* bytes left before the trailer */
    bool bad;         /* a read ran past the end */
} snap_rd;

static const uint8_t *rd_take(snap_rd *r, size_t n)
{
    const uint8_t *p = r->p;
    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static uint64_t rd_u64(snap_rd *r)
{
    const uint8_t *p = rd_take(r, 8);
    return p ? be64(p) : 0;
}

static uint32_t rd_u32(snap_rd *r)
{
    const uint8_t *p = rd_take(r, 4);
    return p ? be32(p) : 0;
}

static uint8_t rd_u8(snap_rd *r)
{
    const uint8_t *p = rd_take(r, 1);
    return p ? *p : 0;
}

int store_snapshot_ref(store *s, herald_buf *out, uint64_t *applied)
{
    uint8_t b[REF_LEN];
    uint64_t idx;
    int mrc;

    /* The store is written without fsync (the raft log is what is
     * durable); before raft may drop the log up to here, the store must
     * hold it on disk. */
    mrc = mdb_env_sync(s->env, 1);
    if (mrc)
        return store_err(mrc);
    idx = store_applied(s);
    memcpy(b, REF_MAGIC, SNAP_MAGIC_LEN);
    put_be64(b + SNAP_MAGIC_LEN, idx);
    crypto_hash_sha256(b + SNAP_MAGIC_LEN + 8, b, SNAP_MAGIC_LEN + 8);
    if (herald_buf_append(out, b, sizeof b) != 0) {
        herald_buf_free(out);
        return HERALD_ENOMEM;
    }
    if (applied)
        *applied = idx;
    return 0;
}

bool store_snapshot_is_ref(const void *p, size_t n)
{
    uint8_t sum[crypto_hash_sha256_BYTES];
    if (!p || n != REF_LEN || memcmp(p, REF_MAGIC, SNAP_MAGIC_LEN) != 0)
        return false;
    crypto_hash_sha256(sum, p, SNAP_MAGIC_LEN + 8);
    return memcmp(sum, (const uint8_t *)p + SNAP_MAGIC_LEN + 8, sizeof sum) == 0;
}

int store_snapshot_applied(const void *p, size_t n, uint64_t *applied)
{
    const uint8_t *b = p;
    if (store_snapshot_is_ref(p, n)) {
        *applied = be64(b + SNAP_MAGIC_LEN);
        return 0;
    }
    if (!p || n < SNAP_HEAD_LEN + crypto_hash_sha256_BYTES ||
        memcmp(b, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0)
        return HERALD_EPROTOCOL;
    *applied = be64(b + SNAP_MAGIC_LEN);
    return 0;
}

/* One (key, value) pair of a database section, or the end of it. */
typedef struct snap_kv {
    MDB_val k; /* key (points into the input) */
    MDB_val v; /* value (points into the input) */
} snap_kv;

/* Reads the next database header: checks its name against store_db_names[i] and
 * bounds its entry count by the bytes left. */
static int rd_db_head(snap_rd *r, size_t i, uint64_t *n_entries)
{
    size_t want = strlen(store_db_names[i].name);
    uint8_t name_len = rd_u8(r);
    const uint8_t *name = rd_take(r, name_len);
    *n_entries = rd_u64(r);
    if (r->bad || name_len != want || memcmp(name, store_db_names[i].name, want) != 0 ||
        *n_entries > r->left / SNAP_ENTRY_MIN)
        return HERALD_EPROTOCOL;
    return 0;
}

static int rd_entry(snap_rd *r, size_t max_key, snap_kv *e)
{
    e->k.mv_size = rd_u32(r);
    if (r->bad || e->k.mv_size == 0 || e->k.mv_size > max_key)
        return HERALD_EPROTOCOL;
    e->k.mv_data = (void *)rd_take(r, e->k.mv_size);
    e->v.mv_size = rd_u32(r);
    e->v.mv_data = (void *)rd_take(r, e->v.mv_size);
    return r->bad ? HERALD_EPROTOCOL : 0;
}

static int key_cmp(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = memcmp(a->mv_data, b->mv_data, n);
    if (c)
        return c;
    return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

/* Checks the whole input without writing anything: checksum, header,
 * database names and order, entry bounds, strictly ascending keys (LMDB's
 * default order), and that meta's "applied" matches the header. */
static int snap_validate(const uint8_t *b, size_t n, size_t max_key)
{
    uint8_t sum[crypto_hash_sha256_BYTES];
    snap_rd r;
    uint64_t applied, meta_applied = 0;

    if (n < SNAP_HEAD_LEN + sizeof sum)
        return HERALD_EPROTOCOL;
    crypto_hash_sha256(sum, b, n - sizeof sum);
    if (sodium_memcmp(sum, b + n - sizeof sum, sizeof sum) != 0)
        return HERALD_EPROTOCOL;
    if (memcmp(b, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0)
        return HERALD_EPROTOCOL;
    r = (snap_rd){.p = b + SNAP_MAGIC_LEN, .left = n - sizeof sum - SNAP_MAGIC_LEN};
    applied = rd_u64(&r);
    if (rd_u32(&r) != SNAP_NDBS)
        return HERALD_EPROTOCOL;
    for (size_t i = 0; i < SNAP_NDBS; i++) {
        uint64_t cnt;
        snap_kv prev = {.k = {.mv_size = 0}}, e;
        if (rd_db_head(&r, i, &cnt) != 0)
            return HERALD_EPROTOCOL;
        for (uint64_t j = 0; j < cnt; j++) {
            if (rd_entry(&r, max_key, &e) != 0)
                return HERALD_EPROTOCOL;
            if (j && key_cmp(&prev.k, &e.k) >= 0)
                return HERALD_EPROTOCOL;
            if (i == 0 && e.k.mv_size == 7 && memcmp(e.k.mv_data, "applied", 7) == 0) {
                if (e.v.mv_size != 8)
                    return HERALD_EPROTOCOL;
                meta_applied = be64(e.v.mv_data);
            }
            prev = e;
        }
    }
    if (r.left != 0 || meta_applied != applied)
        return HERALD_EPROTOCOL;
    return 0;
}

/* Empties every database and loads the (validated) input in txn. Returns
 * an LMDB code (MDB_MAP_FULL is the caller's to handle). */
static int snap_load(store *s, MDB_txn *txn, const uint8_t *b, size_t n, size_t max_key)
{
    snap_rd r = {.p = b + SNAP_HEAD_LEN, .left = n - SNAP_HEAD_LEN - crypto_hash_sha256_BYTES};
    int mrc;

    for (size_t i = 0; i < SNAP_NDBS; i++) {
        mrc = mdb_drop(txn, snap_dbi(s, i), 0);
        if (mrc)
            return mrc;
    }
    for (size_t i = 0; i < SNAP_NDBS; i++) {
        MDB_dbi dbi = snap_dbi(s, i);
        uint64_t cnt;
        snap_kv e;
        if (rd_db_head(&r, i, &cnt) != 0)
            return MDB_CORRUPTED; /* validated: cannot happen */
        for (uint64_t j = 0; j < cnt; j++) {
            if (rd_entry(&r, max_key, &e) != 0)
                return MDB_CORRUPTED;
            /* Keys ascend (validated) and the db is empty: append in order. */
            mrc = mdb_put(txn, dbi, &e.k, &e.v, MDB_APPEND);
            if (mrc)
                return mrc;
        }
    }
    return 0;
}

int store_restore(store *s, const void *p, size_t n)
{
    size_t max_key = (size_t)mdb_env_get_maxkeysize(s->env);
    int rc;

    if (!p)
        return HERALD_EPROTOCOL;
    rc = snap_validate(p, n, max_key);
    if (rc) {
        log_warn("store.restore", "snapshot of %zu bytes rejected: malformed", n);
        return rc;
    }
    for (int attempt = 0; attempt < RESTORE_GROW_RETRIES; attempt++) {
        MDB_txn *txn;
        int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (mrc)
            return store_err(mrc);
        mrc = snap_load(s, txn, p, n, max_key);
        if (mrc == 0)
            mrc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (mrc == 0) {
            log_info("store.restore", "store replaced by a snapshot of %zu bytes", n);
            return 0;
        }
        if (mrc != MDB_MAP_FULL) {
            log_error("store.restore", "restore of %zu bytes failed: %s", n, mdb_strerror(mrc));
            return store_err(mrc);
        }
        rc = store_grow(s);
        if (rc)
            return rc;
    }
    return HERALD_ESTORAGE;
}
