/* apply.c — the deterministic state machine: the command table and the
 * batch engine (one write transaction, a nested one per command, results
 * in their arenas, MDB_MAP_FULL recovery); see apply.h. The commands
 * themselves are in the apply_*.c files (apply_ops.h). */
#include "apply.h"

#include <errno.h>
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_ops.h"
#include "log.h"

#define APPLY_GROW_RETRIES 40

typedef int (*op_fn)(actx *x);
static const op_fn ops[CMD_OP_COUNT_] = {
    [CMD_TENANT_CREATE] = op_tenant_create, [CMD_CONV_CREATE] = op_conv_create,
    [CMD_CONV_ADD] = op_conv_add,           [CMD_CONV_REMOVE] = op_conv_remove,
    [CMD_SEND] = op_send,                   [CMD_READ] = op_read,
    [CMD_RECALL] = op_recall,               [CMD_DND] = op_dnd,
    [CMD_CONFIRM] = op_confirm,             [CMD_REMIND] = op_remind,
    [CMD_DIR_USER] = op_dir_user,           [CMD_DIR_DEPT] = op_dir_dept,
    [CMD_CONTACT_ADD] = op_contact_add,     [CMD_TAG] = op_tag,
    [CMD_MASS_MARK] = op_mass_mark,         [CMD_SLOTMAP] = op_slotmap,
    [CMD_APP_MARK] = op_app_mark,           [CMD_APP_DELIVER] = op_app_deliver,
    [CMD_TRANSFER_MARK] = op_transfer_mark, [CMD_TRANSFER_DUE] = op_transfer_due,
    [CMD_CONV_HANDOVER] = op_conv_handover, [CMD_TRANSFER_DONE] = op_transfer_done,
    [CMD_APP_CREATE] = op_app_create,
    [CMD_APP_CALLBACK] = op_app_callback,   [CMD_OUTBOX] = op_outbox,
    [CMD_OFFLINE] = op_offline,
};

void apply_result_free(apply_result *r)
{
    if (!r)
        return;
    if (r->arena) {
        arena_free(r->arena);
        free(r->arena);
    }
    memset(r, 0, sizeof *r);
}

/* Copies the command's ids into the result (apply_result.h: for the
 * events). 0 or ENOMEM. */
static int keep_ids(apply_result *r, arena *a, const cmd *c)
{
    r->tenant = arena_dup(a, c->tenant.ptr, c->tenant.len);
    r->conv = arena_dup(a, c->conv.ptr, c->conv.len);
    r->user = arena_dup(a, c->user.ptr, c->user.len);
    return r->tenant && r->conv && r->user ? 0 : ENOMEM;
}

/* Applies one command inside a nested transaction of parent. Returns 0 (the
 * result says applied or rejected) or the raw LMDB error failing the batch. */
static int apply_one(store *s, MDB_txn *parent, const uint8_t *p, size_t len, uint64_t index,
                     apply_result *r)
{
    cmd c;
    actx x = {.s = s, .r = r};
    int rc;

    r->index = index;
    r->group = s->group;
    r->arena = calloc(1, sizeof(arena));
    if (!r->arena)
        return ENOMEM;
    x.a = r->arena;
    rc = cmd_decode(p, len, &c);
    if (rc == HERALD_ENOMEM)
        return ENOMEM; /* not the command's fault: fail the batch */
    if (rc) {
        r->err = rc;
        snprintf(r->errmsg, sizeof r->errmsg, "undecodable command");
        return 0;
    }
    x.c = &c;
    r->op = c.op;
    rc = keep_ids(r, x.a, &c);
    if (rc)
        goto out_cmd;
    rc = mdb_txn_begin(s->env, parent, 0, &x.txn);
    if (rc)
        goto out_cmd;
    rc = ops[c.op] ? ops[c.op](&x) : aw_reject(&x, HERALD_EUNSUPPORTED, "command not supported");
    if (rc == 0 && !x.mdb_fail)
        rc = aw_outbox(&x); /* its callback events, in the same transaction */
    if (x.mdb_fail || rc == HERALD_ENOMEM) {
        /* Not the command's fault and not deterministic: fail the batch. */
        mdb_txn_abort(x.txn);
        rc = x.mdb_fail ? x.mdb_fail : ENOMEM;
        goto out_cmd;
    }
    if (rc) {
        mdb_txn_abort(x.txn);
        r->err = rc;
        r->seq = 0;
        r->dup = false;
        r->msg = NULL;
        herald_buf_free(&x.tg);
        herald_buf_free(&x.rem);
        herald_buf_free(&x.mass);
        herald_buf_free(&x.xfer);
        rc = 0;
        goto out_cmd;
    }
    rc = mdb_txn_commit(x.txn);
    if (rc)
        goto out_cmd;
    if (x.tg.len) {
        r->targets = arena_alloc(x.a, x.tg.len);
        if (!r->targets) {
            rc = ENOMEM;
            goto out_cmd;
        }
        memcpy(r->targets, x.tg.data, x.tg.len);
        r->n_targets = (uint32_t)(x.tg.len / sizeof(apply_target));
    }
    if (x.rem.len) {
        r->reminders = arena_alloc(x.a, x.rem.len);
        if (!r->reminders) {
            rc = ENOMEM;
            goto out_cmd;
        }
        memcpy(r->reminders, x.rem.data, x.rem.len);
        r->n_reminders = (uint32_t)(x.rem.len / sizeof(apply_remind));
    }
    if (x.mass.len) {
        r->mass = arena_alloc(x.a, x.mass.len);
        if (!r->mass) {
            rc = ENOMEM;
            goto out_cmd;
        }
        memcpy(r->mass, x.mass.data, x.mass.len);
        r->n_mass = (uint32_t)(x.mass.len / sizeof(apply_mass));
    }
    if (x.xfer.len) {
        r->xfer = arena_alloc(x.a, x.xfer.len);
        if (!r->xfer) {
            rc = ENOMEM;
            goto out_cmd;
        }
        memcpy(r->xfer, x.xfer.data, x.xfer.len);
    }
out_cmd:
    herald_buf_free(&x.xfer);
    herald_buf_free(&x.tg);
    herald_buf_free(&x.rem);
    herald_buf_free(&x.mass);
    cmd_release(&c);
    return rc;
}

/* ---- batches: one write transaction, many commands ------------------------ */

/* One command of a batch: a private copy, kept until the batch ends so that
 * it can be re-applied after MDB_MAP_FULL. */
typedef struct apply_ent {
    uint8_t *cmd;     /* malloc'd copy of the encoded command */
    size_t len;       /* its length */
    uint64_t index;   /* its raft index */
    apply_result *r;  /* the caller's result (stable until commit/abort) */
} apply_ent;

struct apply_txn {
    store *s;          /* the store */
    MDB_txn *txn;      /* the open write transaction; NULL between retries */
    uint64_t applied;  /* applied index as of the last command run */
    apply_ent *v;      /* the batch's commands, in order */
    size_t n;          /* how many */
    size_t cap;        /* allocated entries of v */
    size_t bytes;      /* sum of their lengths */
    int err;           /* sticky: the batch is lost (HERALD code) */
};

static const MDB_val applied_key = {.mv_size = 7, .mv_data = "applied"};

/* Opens the write transaction and reads the stored applied index. Raw
 * LMDB code; on failure no transaction is open. */
static int txn_open(apply_txn *t)
{
    MDB_val k = applied_key, v;
    int rc = mdb_txn_begin(t->s->env, NULL, 0, &t->txn);
    if (rc) {
        t->txn = NULL;
        return rc;
    }
    t->applied = 0;
    rc = mdb_get(t->txn, t->s->db.meta, &k, &v);
    if (rc == 0 && v.mv_size != 8)
        rc = MDB_CORRUPTED; /* never guess: 0 would re-apply everything */
    if (rc == 0)
        t->applied = be64(v.mv_data);
    else if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc) {
        mdb_txn_abort(t->txn);
        t->txn = NULL;
    }
    return rc;
}

/* Aborts the open transaction (if any) and frees the results of commands
 * [lo, hi). */
static void range_drop(apply_txn *t, size_t lo, size_t hi)
{
    if (t->txn)
        mdb_txn_abort(t->txn);
    t->txn = NULL;
    for (size_t i = lo; i < hi; i++)
        apply_result_free(t->v[i].r);
}

static void txn_drop(apply_txn *t) { range_drop(t, 0, t->n); }

/* Runs one command of the batch in the open transaction: skipped when its
 * index is not beyond the applied index, else applied and the applied
 * index stored. Raw code (0, LMDB error, ENOMEM) as apply_one. */
static int ent_run(apply_txn *t, const apply_ent *e)
{
    uint8_t ab[8];
    MDB_val k = applied_key, v = {.mv_size = 8, .mv_data = ab};
    int rc;

    if (e->index <= t->applied) {
        e->r->index = e->index;
        e->r->skipped = true;
        return 0;
    }
    rc = apply_one(t->s, t->txn, e->cmd, e->len, e->index, e->r);
    if (rc)
        return rc;
    put_be64(ab, e->index);
    rc = mdb_put(t->txn, t->s->db.meta, &k, &v, 0);
    if (rc == 0)
        t->applied = e->index;
    return rc;
}

/* (Re)runs commands [lo, hi) of the batch in a fresh transaction; on
 * MDB_MAP_FULL grows the map and starts again. Raw code; on failure no
 * transaction is open and their results are zeroed. */
static int range_run(apply_txn *t, size_t lo, size_t hi)
{
    for (int attempt = 0; attempt < APPLY_GROW_RETRIES; attempt++) {
        int rc = txn_open(t);
        for (size_t i = lo; i < hi && rc == 0; i++)
            rc = ent_run(t, &t->v[i]);
        if (rc == 0)
            return 0;
        range_drop(t, lo, hi);
        if (rc != MDB_MAP_FULL || store_grow(t->s) != 0)
            return rc;
    }
    return MDB_MAP_FULL;
}

static int batch_run(apply_txn *t) { return range_run(t, 0, t->n); }

/* Commits commands [lo, hi) (the open transaction holds exactly them, or
 * none is open). MDB_MAP_FULL at commit: grow and again; with the map at
 * its ceiling, one transaction per command, as apply_batch of one would (a
 * big transaction needs more free pages than several small ones: it cannot
 * reuse the pages it frees itself). Raw code; on failure the commands from
 * the first one not committed on have zeroed results. */
static int commit_range(apply_txn *t, size_t lo, size_t hi)
{
    for (int attempt = 0; attempt < APPLY_GROW_RETRIES; attempt++) {
        int rc = t->txn ? 0 : range_run(t, lo, hi);
        if (rc == 0) {
            rc = mdb_txn_commit(t->txn); /* frees the transaction either way */
            t->txn = NULL;
            if (rc == 0)
                return 0;
            range_drop(t, lo, hi);
        }
        if (rc != MDB_MAP_FULL)
            return rc;
        if (store_grow(t->s) == 0)
            continue;
        if (hi - lo < 2)
            return rc;
        rc = 0;
        for (size_t i = lo; i < hi && rc == 0; i++) {
            rc = commit_range(t, i, i + 1);
            if (rc)
                range_drop(t, i + 1, hi);
        }
        return rc;
    }
    return MDB_MAP_FULL;
}

static int herald_code(int raw) { return raw == ENOMEM ? HERALD_ENOMEM : HERALD_ESTORAGE; }

int apply_begin(store *s, apply_txn **out)
{
    apply_txn *t = calloc(1, sizeof *t);
    int rc;

    *out = NULL;
    if (!t)
        return HERALD_ENOMEM;
    t->s = s;
    rc = txn_open(t);
    if (rc) {
        log_error("store.apply", "group %u: cannot begin a batch: %s", s->group,
                  mdb_strerror(rc));
        free(t);
        return herald_code(rc);
    }
    *out = t;
    return 0;
}

int apply_next(apply_txn *t, const uint8_t *p, size_t len, uint64_t index, apply_result *r)
{
    apply_ent *e;
    int rc;

    memset(r, 0, sizeof *r);
    if (t->err)
        return t->err;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        apply_ent *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        t->v = v;
        t->cap = cap;
    }
    e = &t->v[t->n];
    *e = (apply_ent){.cmd = malloc(len ? len : 1), .len = len, .index = index, .r = r};
    if (!e->cmd)
        return HERALD_ENOMEM;
    if (len)
        memcpy(e->cmd, p, len);
    t->n++;
    /* The transaction is closed only after a failure that was recovered. */
    rc = t->txn ? ent_run(t, e) : MDB_BAD_TXN;
    if (rc) {
        txn_drop(t);
        rc = batch_run(t); /* MAP_FULL: grown, every command again */
    }
    if (rc == 0) {
        t->bytes += len;
        return 0;
    }
    /* This command cannot go in (map at its ceiling, out of memory, a
     * storage error): drop it and keep the others, in a fresh transaction. */
    log_error("store.apply", "group %u: command at index %llu not applied: %s", t->s->group,
              (unsigned long long)index, mdb_strerror(rc));
    t->n--;
    free(e->cmd);
    apply_result_free(r);
    if (batch_run(t) != 0) {
        t->err = herald_code(rc);
        log_error("store.apply", "group %u: the batch of %zu commands is lost", t->s->group,
                  t->n);
    }
    return herald_code(rc);
}

size_t apply_count(const apply_txn *t) { return t->n; }

size_t apply_bytes(const apply_txn *t) { return t->bytes; }

/* Frees the batch (not the results). */
static void txn_free(apply_txn *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].cmd);
    free(t->v);
    free(t);
}

int apply_commit(apply_txn *t)
{
    int rc = t->err ? 0 : commit_range(t, 0, t->n), herr;

    if (!t->err && rc == 0) {
        txn_free(t);
        return 0;
    }
    herr = t->err ? t->err : herald_code(rc);
    log_error("store.apply", "group %u: batch of %zu commands not committed: %s", t->s->group,
              t->n, t->err ? herald_strerror(t->err) : mdb_strerror(rc));
    if (t->err)
        txn_drop(t);
    txn_free(t);
    return herr;
}

void apply_abort(apply_txn *t)
{
    if (!t)
        return;
    txn_drop(t);
    txn_free(t);
}

int apply_batch(store *s, const uint8_t *const *cmds, const size_t *lens, size_t n,
                uint64_t first_index, apply_result *results)
{
    apply_txn *t;
    int rc;

    if (n == 0)
        return 0;
    memset(results, 0, n * sizeof *results);
    rc = apply_begin(s, &t);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = apply_next(t, cmds[i], lens[i], first_index + i, &results[i]);
    if (rc) {
        apply_abort(t);
        return rc;
    }
    return apply_commit(t);
}
