/* fsm.c — a shard group's store as a libraft 0.15 state machine; see fsm.h.
 *
 * FSM version 2: snapshot buffers stay ours (snapshot_finalize frees them),
 * so they are the store_snapshot buffer itself, never copied. The snapshot
 * is taken synchronously on the loop thread in one LMDB read transaction.
 */
#include "fsm.h"

#include <herald/error.h>
#include <stdlib.h>

#include "log.h"
#include "store_snap.h"

/* What fsm->data points to. Only the raft loop thread touches it. */
typedef struct fsm_state {
    store *st;              /* the group's store (borrowed) */
    uint32_t group;         /* its group id */
    fsm_applied_fn applied; /* hook, or NULL */
    void *arg;              /* for the hook */
    struct raft *raft;      /* the instance applying to us (fsm_bind); borrowed */
    apply_result res;       /* last apply's result, handed to raft; owned here
                               until the next apply or fsm_fini */
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

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    fsm_state *f = fsm->data;
    const uint8_t *cmd = buf->base;
    size_t len = buf->len;
    uint64_t index;
    int rc;

    *result = NULL;
    if (!f->raft) {
        log_error("fsm.apply", "group %u: apply before fsm_bind", f->group);
        return RAFT_INVALID;
    }
    /* libraft applies entry last_applied + 1 and only then advances it. */
    index = raft_last_applied(f->raft) + 1;
    apply_result_free(&f->res);
    rc = apply_batch(f->st, &cmd, &len, 1, index, &f->res);
    if (rc) {
        /* Not applied: raft must not advance (it retries or stops). */
        log_error("fsm.apply", "group %u index %llu: %s", f->group, (unsigned long long)index,
                  herald_strerror(rc));
        return raft_code(rc);
    }
    if (!f->res.skipped && f->applied)
        f->applied(f->arg, f->group, index, cmd, len, &f->res);
    *result = &f->res;
    return 0;
}

/* bufs: one raft_malloc'd raft_buffer whose base is the store_snapshot
 * buffer (malloc'd by herald_buf); both freed by fsm_snapshot_finalize. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    fsm_state *f = fsm->data;
    herald_buf b = {0};
    struct raft_buffer *v;
    uint64_t applied;
    int rc;

    v = raft_malloc(sizeof *v);
    if (!v)
        return RAFT_NOMEM;
    rc = store_snapshot(f->st, &b, &applied);
    if (rc) {
        log_error("fsm.snapshot", "group %u: %s", f->group, herald_strerror(rc));
        raft_free(v);
        return raft_code(rc);
    }
    v[0].base = b.data;
    v[0].len = b.len;
    *bufs = v;
    *n_bufs = 1;
    log_debug("fsm.snapshot", "group %u: %zu bytes at applied index %llu", f->group, b.len,
              (unsigned long long)applied);
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

    rc = store_snapshot_applied(buf->base, buf->len, &snap_applied);
    if (rc) {
        log_error("fsm.restore", "group %u: snapshot of %zu bytes malformed", f->group, buf->len);
        return RAFT_MALFORMED;
    }
    have = store_applied(f->st);
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
        apply_result_free(&f->res);
        free(f);
    }
    fsm->data = NULL;
}
