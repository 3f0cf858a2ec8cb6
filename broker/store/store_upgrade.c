/* store_upgrade.c — format 1 (per-user pointer logs) to format 2 (one
 * position per shard group), in place, in one write transaction. See
 * store.h (store_upgrade). */
#include "store_int.h"

#include <herald/error.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

/* Gives every message a position in key order (tenant, conversation,
 * seq): deterministic from the data alone, so replicas that applied the
 * same index get the same positions; within a conversation they grow with
 * seq, which is all sync needs. *n: messages. */
static int number_messages(MDB_txn *txn, MDB_dbi msg, MDB_dbi mpos, uint64_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, msg, &cur);
    *n = 0;
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint8_t b[8];
        put_be64(b, ++*n);
        rc = mdb_put(txn, mpos, &k, &(MDB_val){.mv_size = 8, .mv_data = b}, 0);
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Format 1 marked read-diffused memberships with 0x80 in the kind byte:
 * format 2 keeps the kind alone (0x80 now means "left"). */
static int plain_memberof(MDB_txn *txn, MDB_dbi memberof)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, memberof, &cur);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint8_t kind;
        if (v.mv_size != 1 || !(*(const uint8_t *)v.mv_data & 0x80u))
            continue;
        kind = *(const uint8_t *)v.mv_data & MEMBEROF_KIND_MASK;
        rc = mdb_cursor_put(cur, &k, &(MDB_val){.mv_size = 1, .mv_data = &kind}, MDB_CURRENT);
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_upgrade(const char *dir, store_upgrade_report *out)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta, msg, mpos, memberof, old;
    MDB_val fk = {.mv_size = 6, .mv_data = "format"}, gk = {.mv_size = 4, .mv_data = "gpos"};
    MDB_val ak = {.mv_size = 7, .mv_data = "applied"}, v;
    uint8_t fmt[4] = {0, 0, 0, STORE_FORMAT}, gb[8];
    int rc;

    char path[PATH_MAX];
    struct stat sb;
    size_t map = (size_t)1 << 30;

    memset(out, 0, sizeof *out);
    /* Room for a position per message: twice the data, and 1 GiB more. */
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &sb) != 0) {
        log_error("store.upgrade", "%s: no store here", dir);
        return HERALD_EIO;
    }
    map += 2 * (size_t)sb.st_size;
    rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 16);
    if (rc == 0)
        rc = mdb_env_set_mapsize(env, map);
    if (rc == 0)
        rc = mdb_env_open(env, dir, 0, 0600);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc)
        goto out;
    rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta);
    if (rc)
        goto out;
    if (mdb_get(txn, meta, &ak, &v) == 0 && v.mv_size == 8)
        out->applied = be64(v.mv_data);
    if (mdb_get(txn, meta, &fk, &v) == 0) {
        out->already = true; /* format 2 (or newer: store_open says which) */
        goto out;
    }
    rc = mdb_dbi_open(txn, "msg", MDB_CREATE, &msg);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "mpos", MDB_CREATE, &mpos);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "memberof", MDB_CREATE, &memberof);
    if (rc == 0)
        rc = mdb_drop(txn, mpos, 0);
    if (rc == 0)
        rc = number_messages(txn, msg, mpos, &out->messages);
    if (rc == 0)
        rc = plain_memberof(txn, memberof);
    /* The pointer logs go. */
    if (rc == 0 && mdb_dbi_open(txn, "uevt", 0, &old) == 0)
        rc = mdb_drop(txn, old, 1);
    if (rc == 0 && mdb_dbi_open(txn, "ustate", 0, &old) == 0)
        rc = mdb_drop(txn, old, 1);
    put_be64(gb, out->messages);
    if (rc == 0)
        rc = mdb_put(txn, meta, &gk, &(MDB_val){.mv_size = 8, .mv_data = gb}, 0);
    if (rc == 0)
        rc = mdb_put(txn, meta, &fk, &(MDB_val){.mv_size = 4, .mv_data = fmt}, 0);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
out:
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    if (rc) {
        log_error("store.upgrade", "%s: %s", dir, mdb_strerror(rc));
        return store_err(rc);
    }
    return 0;
}
