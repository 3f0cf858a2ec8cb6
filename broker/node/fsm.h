/*
 * fsm.h — a shard group's store as a libraft 0.15 state machine.
 *
 * apply: runs the entry (an encoded command, cmd.h) through apply_batch with
 * the entry's raft index, so a re-applied entry is skipped and the applied
 * index lives in the same LMDB transaction as the data. snapshot: the
 * store's whole content (every named database) serialized; restore: the
 * store replaced by a snapshot's content in one write transaction — or
 * nothing done when the store already applied at least the snapshot's index
 * (a restart after kill -9 finds its store intact: LMDB keeps committed
 * transactions across a process crash even without fsync).
 *
 * Results: fsm->apply hands raft a pointer to an apply_result owned by the
 * FSM; it stays valid until the next apply (or fsm_fini), long enough for
 * rio's propose callback, which runs right after apply. The on_applied hook
 * runs for every applied entry on every replica, leader or not.
 *
 * Threads: the raft loop thread.
 */
#ifndef HERALD_NODE_FSM_H
#define HERALD_NODE_FSM_H

#include <raft.h>
#include <stdint.h>

#include "apply.h"
#include "store.h"

/* Called after each applied entry (also for entries whose command was
 * rejected: res->err says so; not for entries skipped as already applied). */
typedef void (*fsm_applied_fn)(void *arg, uint32_t group, uint64_t index, const uint8_t *cmd,
                               size_t len, const apply_result *res);

typedef struct fsm_config {
    store *st;              /* the group's store (borrowed, outlives the FSM) */
    uint32_t group;         /* its group id */
    fsm_applied_fn applied; /* optional hook */
    void *arg;              /* for the hook */
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

/* Releases what fsm_init allocated and the last result; NULL-safe on a
 * zeroed fsm. Call after the group is closed. */
void fsm_fini(struct raft_fsm *fsm);

#endif
