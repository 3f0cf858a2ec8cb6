/* fsm.c — a shard group's store as a libraft 0.15 state machine; see fsm.h.
 *
 * FSM version 2: snapshot buffers stay ours (snapshot_finalize frees them).
 * A snapshot is a reference (store_snapshot_ref): the store is synced and
 * raft keeps 48 bytes, so taking one costs an fsync, not a copy of the
 * store, and libraft's in-memory log can be kept small (raft.log_bytes).
 * The whole content is serialized only when a peer needs it, by the
 * raft_io's snapshot_get (fsm_snapshot_expand), in one LMDB read
 * transaction at the store's current applied index, which may be past the
 * snapshot's: the receiver skips the entries its store already holds.
 *
 * Batching (fsm.h): entries go into one apply_txn; each keeps its result
 * and a copy of its command in an fsm_ent until the flush that runs its
 * hooks, so the pointer handed to raft stays valid across the commit.
 */
#include "fsm.h"

#include <ev.h>
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_snap.h"

/* One applied entry, from apply until the flush that runs its hooks. */
typedef struct fsm_ent {
    apply_result res;  /* its result (handed to raft; stable address) */
    uint8_t *cmd;      /* copy of the command, for the applied hook */
    size_t len;        /* its length */
    uint64_t index;    /* raft index */
    bool lost;         /* its batch failed to commit: no hook */
} fsm_ent;

/* One fsm_defer callback. */
typedef struct fsm_def {
    fsm_done_fn fn;    /* callback */
    void *arg;         /* its argument */
    size_t after;      /* entries applied when registered: runs after the
                          hook of ents[after - 1] */
} fsm_def;

/* What fsm->data points to. Only the raft loop thread touches it. */
typedef struct fsm_state {
    store *st;              /* the group's store (borrowed) */
    uint32_t group;         /* its group id */
    fsm_applied_fn applied; /* hook, or NULL */
    void *arg;              /* for the hook */
    struct raft *raft;      /* the instance applying to us (fsm_bind); borrowed */
    struct ev_loop *loop;   /* commit once per iteration; or NULL */
    ev_prepare prep;        /* the flush, before the loop blocks */
    unsigned max_batch;     /* entries per transaction */
    apply_txn *txn;         /* the open batch, or NULL */
    fsm_ent **ents;         /* entries whose hooks have not run, in order:
                               [0, n_done) committed, the rest in txn */
    size_t n_ents;          /* how many */
    size_t cap_ents;        /* allocated slots of ents */
    size_t n_done;          /* committed (or lost) ones */
    fsm_def *defs;          /* fsm_defer callbacks, in order */
    size_t n_defs;          /* how many */
    size_t cap_defs;        /* allocated slots of defs */
    int failed;             /* sticky storage failure (HERALD code), or 0 */
    size_t log_bytes;       /* in-memory log budget (fsm_config), 0 none */
    unsigned thr_cfg, trail_cfg; /* the configured snapshot threshold / trailing */
    unsigned thr_now;       /* the threshold set last */
    double entry_avg;       /* moving average of entry sizes, bytes */
    uint64_t seen;          /* entries applied (for the adjustment's pace) */
    bool flushing;          /* hooks running: no nested flush */
} fsm_state;

/* HERALD code → raft code, for failures that must stop raft applying. */
static int raft_code(int herald_rc)
{
    switch (herald_rc) {
    case HERALD_ENOMEM:
        return RAFT_NOMEM;
    case HERALD_EPROTOCOL:
        return RAFT_MALFORMED;
    default:
        return RAFT_IOERR;
    }
}

/* Makes sure the loop flushes before it blocks. */
static void want_flush(fsm_state *f)
{
    if (f->loop && !ev_is_active(&f->prep))
        ev_prepare_start(f->loop, &f->prep);
}

/* Commits the open batch (hooks stay pending). A failure is fatal for the
 * replica: logged once, sticky, the batch's entries marked lost. */
static int commit_open(fsm_state *f)
{
    size_t n;
    int rc;

    if (!f->txn)
        return f->failed;
    n = apply_count(f->txn);
    rc = apply_commit(f->txn);
    f->txn = NULL;
    if (rc) {
        for (size_t i = f->n_done; i < f->n_ents; i++)
            f->ents[i]->lost = true;
        if (!f->failed)
            log_error("fsm.commit",
                      "group %u: committing %zu applied entries failed: %s; this replica "
                      "stops applying (restart the node: raft applies them again)",
                      f->group, n, herald_strerror(rc));
        f->failed = rc;
    }
    f->n_done = f->n_ents;
    return rc;
}

static void ent_free(fsm_ent *e)
{
    apply_result_free(&e->res);
    free(e->cmd);
    free(e);
}

/* Commits, then runs the hooks of every entry and the deferred callbacks,
 * in order. Entries and callbacks added meanwhile wait for the next flush. */
static int flush(fsm_state *f)
{
    fsm_ent **ents;
    fsm_def *defs;
    size_t n_ents, n_defs, d = 0;
    int rc = commit_open(f);

    if (f->flushing)
        return rc;
    ents = f->ents;
    n_ents = f->n_ents;
    defs = f->defs;
    n_defs = f->n_defs;
    f->ents = NULL;
    f->n_ents = f->cap_ents = f->n_done = 0;
    f->defs = NULL;
    f->n_defs = f->cap_defs = 0;
    f->flushing = true;
    for (size_t i = 0; i <= n_ents; i++) {
        if (i > 0) {
            fsm_ent *e = ents[i - 1];
            if (!e->lost && !e->res.skipped && f->applied)
                f->applied(f->arg, f->group, e->index, e->cmd, e->len, &e->res);
        }
        for (; d < n_defs && defs[d].after <= i; d++)
            defs[d].fn(defs[d].arg, i > 0 && ents[i - 1]->lost ? HERALD_ESTORAGE : 0);
    }
    f->flushing = false;
    for (size_t i = 0; i < n_ents; i++)
        ent_free(ents[i]);
    free(ents);
    free(defs);
    if (f->loop && !f->n_ents && !f->n_defs && !f->txn)
        ev_prepare_stop(f->loop, &f->prep);
    return rc;
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    flush(w->data);
}

/* Keeps libraft's in-memory log near f->log_bytes: threshold ≈ budget / mean
 * entry size (64 ≤ it ≤ the configured one), trailing at most half of it. */
static void log_budget(fsm_state *f, size_t len)
{
    unsigned thr, trail;
    double avg;
    f->entry_avg = f->seen++ ? f->entry_avg + ((double)len - f->entry_avg) / 32.0 : (double)len;
    if (f->seen % 16 != 1)
        return;
    avg = f->entry_avg > 64.0 ? f->entry_avg : 64.0;
    thr = (double)f->log_bytes / avg > (double)f->thr_cfg ? f->thr_cfg
                                                          : (unsigned)((double)f->log_bytes / avg);
    if (thr < 64)
        thr = 64 < f->thr_cfg ? 64 : f->thr_cfg;
    if (thr == f->thr_now)
        return;
    trail = f->trail_cfg < thr / 2 ? f->trail_cfg : thr / 2;
    raft_set_snapshot_threshold(f->raft, thr);
    raft_set_snapshot_trailing(f->raft, trail);
    if (f->thr_now)
        log_info("fsm.log", "group %u: entries of ~%.0f bytes: a snapshot every %u entries, "
                 "%u kept after it (log budget %zu bytes)", f->group, f->entry_avg, thr, trail,
                 f->log_bytes);
    f->thr_now = thr;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    fsm_state *f = fsm->data;
    fsm_ent *e;
    uint64_t index;
    int rc;

    *result = NULL;
    if (!f->raft) {
        log_error("fsm.apply", "group %u: apply before fsm_bind", f->group);
        return RAFT_INVALID;
    }
    if (f->failed)
        return raft_code(f->failed); /* logged when it failed */
    if (f->log_bytes)
        log_budget(f, buf->len);
    /* libraft applies entry last_applied + 1 and only then advances it. */
    index = raft_last_applied(f->raft) + 1;
    if (f->n_ents == f->cap_ents) {
        size_t cap = f->cap_ents ? f->cap_ents * 2 : 16;
        fsm_ent **v = realloc(f->ents, cap * sizeof *v);
        if (!v)
            return RAFT_NOMEM;
        f->ents = v;
        f->cap_ents = cap;
    }
    e = calloc(1, sizeof *e);
    if (!e || !(e->cmd = malloc(buf->len ? buf->len : 1))) {
        free(e);
        return RAFT_NOMEM;
    }
    if (buf->len)
        memcpy(e->cmd, buf->base, buf->len);
    e->len = buf->len;
    e->index = index;
    rc = f->txn ? 0 : apply_begin(f->st, &f->txn);
    if (rc == 0)
        rc = apply_next(f->txn, e->cmd, e->len, index, &e->res);
    if (rc) {
        /* Not applied: raft must not advance (it retries or stops). What the
         * batch holds already is committed now (or the replica fails). */
        log_error("fsm.apply", "group %u index %llu: %s", f->group, (unsigned long long)index,
                  herald_strerror(rc));
        ent_free(e);
        commit_open(f);
        want_flush(f);
        return raft_code(rc);
    }
    f->ents[f->n_ents++] = e;
    want_flush(f);
    if (apply_count(f->txn) >= f->max_batch || apply_bytes(f->txn) >= FSM_BATCH_BYTES) {
        rc = commit_open(f); /* hooks at the next flush */
        if (rc)
            return raft_code(rc);
    }
    *result = &e->res;
    return 0;
}

int fsm_defer(struct raft_fsm *fsm, fsm_done_fn fn, void *arg)
{
    fsm_state *f = fsm ? fsm->data : NULL;
    if (!f || !fn)
        return HERALD_EINVAL;
    if (f->n_defs == f->cap_defs) {
        size_t cap = f->cap_defs ? f->cap_defs * 2 : 16;
        fsm_def *v = realloc(f->defs, cap * sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        f->defs = v;
        f->cap_defs = cap;
    }
    f->defs[f->n_defs++] = (fsm_def){.fn = fn, .arg = arg, .after = f->n_ents};
    want_flush(f);
    return 0;
}

int fsm_flush(struct raft_fsm *fsm)
{
    fsm_state *f = fsm ? fsm->data : NULL;
    return f ? flush(f) : 0;
}

/* bufs: one raft_malloc'd raft_buffer whose base is a reference snapshot
 * (store_snapshot_ref: the store, synced, is the snapshot); both freed by
 * fsm_snapshot_finalize. The whole content is made only for a peer that
 * needs it (fsm_snapshot_expand). */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    fsm_state *f = fsm->data;
    herald_buf b = {0};
    struct raft_buffer *v;
    uint64_t applied;
    int rc;

    /* Everything applied is in the snapshot (raft takes it at last_applied). */
    rc = commit_open(f);
    if (rc)
        return raft_code(rc);
    v = raft_malloc(sizeof *v);
    if (!v)
        return RAFT_NOMEM;
    rc = store_snapshot_ref(f->st, &b, &applied);
    if (rc == 0 && f->raft && applied < raft_last_applied(f->raft))
        rc = HERALD_ESTORAGE; /* the store would not hold what raft drops */
    if (rc) {
        log_error("fsm.snapshot", "group %u: %s", f->group, herald_strerror(rc));
        herald_buf_free(&b);
        raft_free(v);
        return raft_code(rc);
    }
    v[0].base = b.data;
    v[0].len = b.len;
    *bufs = v;
    *n_bufs = 1;
    log_debug("fsm.snapshot", "group %u: reference at applied index %llu", f->group,
              (unsigned long long)applied);
    return 0;
}

int fsm_snapshot_expand(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    fsm_state *f = fsm ? fsm->data : NULL;
    herald_buf b = {0};
    uint64_t applied;
    int rc;

    if (!f || !store_snapshot_is_ref(buf->base, buf->len))
        return 0; /* a whole snapshot (a replica installed it): sent as it is */
    rc = commit_open(f);
    if (rc == 0)
        rc = store_snapshot(f->st, &b, &applied);
    if (rc) {
        log_error("fsm.expand", "group %u: %s", f->group, herald_strerror(rc));
        return rc;
    }
    log_info("fsm.expand", "group %u: the store at applied index %llu, %zu bytes, for a peer",
             f->group, (unsigned long long)applied, b.len);
    raft_free(buf->base);
    buf->base = b.data; /* raft's default heap is malloc's */
    buf->len = b.len;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                                 unsigned *n_bufs)
{
    (void)fsm;
    if (*bufs) {
        for (unsigned i = 0; i < *n_bufs; i++)
            free((*bufs)[i].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* On success raft hands us buf->base (we raft_free it); on failure raft
 * frees it itself (libraft 0.15 installSnapshotCb / raft_start). */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    fsm_state *f = fsm->data;
    uint64_t snap_applied, have;
    int rc;

    rc = commit_open(f); /* no write transaction may stay open over it */
    if (rc)
        return raft_code(rc);
    rc = store_snapshot_applied(buf->base, buf->len, &snap_applied);
    if (rc) {
        log_error("fsm.restore", "group %u: snapshot of %zu bytes malformed", f->group, buf->len);
        return RAFT_MALFORMED;
    }
    have = store_applied(f->st);
    if (store_snapshot_is_ref(buf->base, buf->len) && have < snap_applied) {
        /* Our own reference (a restart): the store was synced at
         * snap_applied before raft dropped its log, and now holds less. */
        log_error("fsm.restore", "group %u: the store is at %llu but was synced at %llu "
                  "(its files were lost or replaced): wipe this node's data dir and let the "
                  "replicas install it", f->group, (unsigned long long)have,
                  (unsigned long long)snap_applied);
        return RAFT_CORRUPT;
    }
    if (have >= snap_applied) {
        /* Restart after a crash: LMDB kept at least this much. Entries after
         * the snapshot are re-applied and skipped up to `have`. */
        log_info("fsm.restore", "group %u: store at %llu, snapshot at %llu: kept", f->group,
                 (unsigned long long)have, (unsigned long long)snap_applied);
    } else {
        rc = store_restore(f->st, buf->base, buf->len);
        if (rc) {
            log_error("fsm.restore", "group %u: restore to %llu: %s", f->group,
                      (unsigned long long)snap_applied, herald_strerror(rc));
            return raft_code(rc);
        }
        log_info("fsm.restore", "group %u: store replaced, %llu → %llu", f->group,
                 (unsigned long long)have, (unsigned long long)snap_applied);
    }
    raft_free(buf->base);
    buf->base = NULL;
    buf->len = 0;
    return 0;
}

int fsm_init(struct raft_fsm *fsm, const fsm_config *cfg)
{
    fsm_state *f;

    if (!cfg || !cfg->st)
        return HERALD_EINVAL;
    f = calloc(1, sizeof *f);
    if (!f)
        return HERALD_ENOMEM;
    f->st = cfg->st;
    f->group = cfg->group;
    f->applied = cfg->applied;
    f->arg = cfg->arg;
    f->loop = cfg->loop;
    f->max_batch = cfg->max_batch ? cfg->max_batch : FSM_BATCH_DEFAULT;
    f->log_bytes = cfg->log_bytes;
    f->thr_cfg = cfg->snapshot_threshold;
    f->trail_cfg = cfg->snapshot_trailing;
    f->thr_now = cfg->snapshot_threshold;
    ev_prepare_init(&f->prep, on_prepare);
    f->prep.data = f;
    /* Before the watchers that flush raft messages and events, so what the
     * hooks produce leaves in the same iteration. */
    ev_set_priority(&f->prep, EV_MAXPRI);
    *fsm = (struct raft_fsm){
        .version = 2,
        .data = f,
        .apply = fsm_apply,
        .snapshot = fsm_snapshot,
        .restore = fsm_restore,
        .snapshot_finalize = fsm_snapshot_finalize,
        .snapshot_async = NULL,
    };
    return 0;
}

void fsm_bind(struct raft_fsm *fsm, struct raft *r)
{
    fsm_state *f = fsm->data;
    if (f)
        f->raft = r;
}

void fsm_fini(struct raft_fsm *fsm)
{
    fsm_state *f;
    if (!fsm)
        return;
    f = fsm->data;
    if (f) {
        commit_open(f);
        if (f->loop)
            ev_prepare_stop(f->loop, &f->prep);
        f->flushing = true; /* a callback cannot start a flush */
        for (size_t i = 0; i < f->n_defs; i++)
            f->defs[i].fn(f->defs[i].arg, HERALD_ESHUTDOWN);
        for (size_t i = 0; i < f->n_ents; i++)
            ent_free(f->ents[i]);
        free(f->ents);
        free(f->defs);
        free(f);
    }
    fsm->data = NULL;
}
