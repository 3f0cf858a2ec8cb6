/*
 * fsm.h — a shard group's store as a libraft 0.15 state machine.
 *
 * apply: runs the entry (an encoded command, cmd.h) through the store's
 * incremental batch (apply.h: apply_begin / apply_next / apply_commit) with
 * the entry's raft index, so a re-applied entry is skipped and the applied
 * index lives in the same LMDB transaction as the data. snapshot: the
 * store's whole content (every named database) serialized; restore: the
 * store replaced by a snapshot's content in one write transaction — or
 * nothing done when the store already applied at least the snapshot's index
 * (a restart after kill -9 finds its store intact: LMDB keeps committed
 * transactions across a process crash even without fsync).
 *
 * Batching: the entries applied in one loop iteration share ONE LMDB write
 * transaction (messages applied close together touch the same pages, which
 * are then written once). The batch is committed
 *  - by an ev_prepare watcher on cfg->loop (once per loop iteration, before
 *    the loop blocks; highest priority, so before the watchers that flush
 *    raft messages and events),
 *  - when it reaches cfg->max_batch entries or FSM_BATCH_BYTES of commands,
 *  - before a snapshot (it must contain everything applied) and a restore,
 *  - by fsm_flush (without a loop, e.g. under raft_fixture, call it).
 * Nothing outside sees an uncommitted entry: the store's readers see only
 * committed transactions, and every hook below runs after the commit.
 *
 * Hooks run after the commit, from the flush (the prepare watcher or
 * fsm_flush; never from inside fsm->apply, snapshot or restore): for each
 * entry of the batch in order, cfg->applied, then the fsm_defer callbacks
 * registered right after that entry was applied. A result pointer handed to
 * raft (and so to the propose callback, which libraft runs right after
 * apply, i.e. BEFORE the commit) stays valid until that flush has run the
 * hooks that follow it. A propose callback must therefore not act on the
 * result (ack a client, read the store) directly: it defers with fsm_defer.
 *
 * Storage failure is fatal for this replica: if a batch cannot be committed
 * (or is lost while applying), the error is logged, the entries of that
 * batch get no applied hook, their deferred callbacks get HERALD_ESTORAGE,
 * and every later apply fails with RAFT_IOERR, so raft stops applying
 * instead of running ahead of a store that lacks entries. Restart the node:
 * raft re-applies the entries beyond the store's applied index from its
 * log or a snapshot. (A failure of one apply that leaves the batch intact —
 * out of memory, the map at its ceiling — is not fatal: the earlier entries
 * are committed at once and apply returns the raft error for that entry.)
 *
 * Threads: the raft loop thread (the loop's thread).
 */
#ifndef HERALD_NODE_FSM_H
#define HERALD_NODE_FSM_H

#include <raft.h>
#include <stdint.h>

#include "apply.h"
#include "store.h"

struct ev_loop;

#define FSM_BATCH_DEFAULT 64u        /* entries per transaction (cap) */
#define FSM_BATCH_BYTES (4u << 20)   /* command bytes per transaction (cap) */

/* Called after the commit of each applied entry, in index order (also for
 * entries whose command was rejected: res->err says so; not for entries
 * skipped as already applied). res is valid during the call. */
typedef void (*fsm_applied_fn)(void *arg, uint32_t group, uint64_t index, const uint8_t *cmd,
                               size_t len, const apply_result *res);

/* A deferred callback (fsm_defer): status 0 when everything applied before
 * it was committed; HERALD_ESTORAGE when that batch was lost (the replica
 * failed, see above); HERALD_ESHUTDOWN from fsm_fini. */
typedef void (*fsm_done_fn)(void *arg, int status);

typedef struct fsm_config {
    store *st;              /* the group's store (borrowed, outlives the FSM) */
    uint32_t group;         /* its group id */
    fsm_applied_fn applied; /* optional hook, after the commit */
    void *arg;              /* for the hook */
    struct ev_loop *loop;   /* commits once per iteration of this loop; NULL:
                               only at the caps and in fsm_flush */
    unsigned max_batch;     /* entries per transaction; 0 → FSM_BATCH_DEFAULT */
    /* libraft keeps every entry since the last snapshot in memory: with a
     * log budget (bytes, 0 none) the FSM lowers the group's snapshot
     * threshold and trailing from the configured ones (entries) as entries
     * grow, so about log_bytes of entries stay in memory (at least 64
     * entries between snapshots). */
    size_t log_bytes;
    unsigned snapshot_threshold; /* configured threshold (entries) */
    unsigned snapshot_trailing;  /* configured trailing (entries) */
} fsm_config;

/* Fills fsm (version, methods, data). 0, HERALD_EINVAL (no store) or
 * HERALD_ENOMEM. */
int fsm_init(struct raft_fsm *fsm, const fsm_config *cfg);

/* Tells the FSM which raft instance it was given to (raft_init / the
 * fixture / rio_group_add), before that instance is started. Needed
 * because libraft's apply callback carries no index: the FSM reads the
 * entry's index as raft_last_applied(r) + 1, which libraft 0.15 guarantees
 * while it applies a command. Until bound, apply fails (RAFT_INVALID) and
 * nothing is applied. r is borrowed and must outlive the FSM's use. */
void fsm_bind(struct raft_fsm *fsm, struct raft *r);

/* Runs fn(arg, status) once everything applied so far is committed, right
 * after the applied hook of the last entry applied so far (at the next
 * flush even when nothing is pending). Never from inside this call. 0, or
 * HERALD_ENOMEM / HERALD_EINVAL (fsm not initialised): fn will not run. */
int fsm_defer(struct raft_fsm *fsm, fsm_done_fn fn, void *arg);

/* Commits the open batch (if any) and runs the pending hooks and deferred
 * callbacks. 0, or the storage error that made this replica fail (sticky;
 * hooks still run for what was committed before). Not from inside a hook. */
int fsm_flush(struct raft_fsm *fsm);

/* For the raft_io's snapshot_get: when buf (a snapshot raft is about to
 * send to a peer) is a reference, replaces buf->base (raft_free'd) by the
 * store's whole content (store_snapshot, at the current applied index, ≥
 * the reference's). A whole snapshot is left as it is. Loop thread; never
 * from inside apply, snapshot or restore. 0, HERALD_ENOMEM,
 * HERALD_ESTORAGE (buf unchanged). */
int fsm_snapshot_expand(struct raft_fsm *fsm, struct raft_buffer *buf);

/* Commits the open batch, then releases everything; NULL-safe on a zeroed
 * fsm. Applied hooks still pending do NOT run; pending deferred callbacks
 * run with HERALD_ESHUTDOWN. Call fsm_flush first (while what the hooks
 * use is alive), after the group is closed. */
void fsm_fini(struct raft_fsm *fsm);

#endif
