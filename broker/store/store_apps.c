/* store_apps.c — the tenant's registered apps (meta group): key, record
 * and the read side. The write side is apply_app.c's APP_CREATE. See
 * store.h. */
#include "store_int.h"

#include <herald/error.h>
#include <string.h>

void key_app(kbuf *k, herald_str ten, herald_str app)
{
    key_meta(k, "ap", ten, app);
}

/* Record: u32 scopes, str name, str secret_sha (64 hex), u64 created. */
int app_decode(MDB_val v, store_app *out)
{
    rcur c = rc_of(v);
    herald_str name, sha;

    memset(out, 0, sizeof *out);
    out->scopes = rc_u32(&c);
    name = rc_str(&c);
    sha = rc_str(&c);
    out->created = rc_u64(&c);
    if (c.bad || c.left || name.len >= sizeof out->name || sha.len != 64 ||
        (out->scopes & ~APP_SCOPE_ALL_))
        return HERALD_ESTORAGE;
    memcpy(out->name, name.ptr, name.len);
    memcpy(out->secret_sha, sha.ptr, sha.len);
    return 0;
}

int store_app_get(store *s, herald_str tenant, herald_str app, store_app *out)
{
    MDB_txn *txn;
    MDB_val kv, v;
    kbuf k;
    int rc;

    key_app(&k, tenant, app);
    if (k.over || app.len == 0)
        return HERALD_ENOT_FOUND;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    kv = kb_val(&k);
    rc = mdb_get(txn, s->db.meta, &kv, &v);
    rc = rc ? store_err(rc) : app_decode(v, out);
    store_rd_end(s, txn);
    return rc;
}

typedef struct app_scan {
    herald_str after;
    uint32_t limit, n;
    bool more;
    int (*fn)(void *ctx, herald_str id, const store_app *a);
    void *ctx;
} app_scan;

/* Whether id sorts after `after` in key order (length byte first). */
static bool id_after(herald_str id, herald_str after)
{
    if (id.len != after.len)
        return id.len > after.len;
    return memcmp(id.ptr, after.ptr, id.len) > 0;
}

static int app_one(herald_str id, MDB_val rec, void *arg)
{
    app_scan *sc = arg;
    store_app a;
    int rc;

    if (sc->after.len && !id_after(id, sc->after))
        return 0;
    if (sc->n == sc->limit) {
        sc->more = true;
        return 1;
    }
    rc = app_decode(rec, &a);
    if (rc)
        return rc;
    sc->n++;
    return sc->fn(sc->ctx, id, &a);
}

int store_app_each(store *s, herald_str tenant, herald_str after, uint32_t limit,
                   int (*fn)(void *ctx, herald_str id, const store_app *a), void *ctx,
                   bool *more)
{
    app_scan sc = {.after = after, .limit = limit, .fn = fn, .ctx = ctx};
    MDB_txn *txn;
    kbuf k;
    int rc;

    *more = false;
    key_app(&k, tenant, herald_str_z(""));
    k.n--; /* the prefix: kind and tenant, without the empty id's length byte */
    if (k.over)
        return 0;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    rc = scan_ids(txn, s->db.meta, &k, app_one, &sc);
    store_rd_end(s, txn);
    if (rc == 1)
        rc = 0;
    *more = sc.more;
    return rc;
}
