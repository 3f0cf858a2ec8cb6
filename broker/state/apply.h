/*
 * apply.h — the deterministic state machine.
 *
 * apply_batch runs a batch of encoded commands (cmd.h) in ONE LMDB write
 * transaction, each inside its own nested transaction so that a command
 * rejected half-way leaves no trace, and stores the applied index in the same
 * transaction. A command whose index is ≤ the stored applied index is
 * skipped (its result says so): raft may re-apply entries after a restart.
 * The result of a command depends only on the store and the command, never on
 * the clock or on which replica runs it. This function is the raft state
 * machine of a shard group; dev mode runs it from writer.c.
 *
 * Rules enforced here (errors are per-command results, not batch failures):
 *  - CONV_CREATE: id valid and new (EXISTS), kind known (INVALID); single has
 *    exactly 2 members; caps: group = the tenant's group cap carried in the
 *    command (default 200, at most 2000), customer_group 500, announce
 *    100,000 (CAP_EXCEEDED). The creator
 *    becomes owner and a member unless the creator is an admin not listed.
 *  - CONV_ADD/REMOVE: actor is owner or admin (FORBIDDEN); single convs
 *    cannot change (INVALID); caps as above.
 *  - Membership changes append a HERALD_MK_SYSTEM message whose body is JSON
 *    {"event":"create|add|remove","by":USER,"members":[…]} so clients see
 *    them through push and sync.
 *  - SEND: actor is a member (NOT_MEMBER; admins too); announce: only owner or
 *    admin (FORBIDDEN); a cmid seen before in this conv from this user gives
 *    the original seq with dup=true and writes nothing.
 *  - Every message (SEND and system messages) takes the next position of
 *    the shard group (meta "gpos", recorded in mpos beside the message) and
 *    goes to all current members, the sender's included (the targets): the
 *    same few records are written whatever the member count (read
 *    diffusion; store_sync finds the messages through memberof).
 *  - READ: member; seq ≤ max seq (INVALID); cursor only moves forward.
 *
 * Thread: the single writer thread (or the raft loop thread in cluster mode).
 */
#ifndef HERALD_STORE_APPLY_H
#define HERALD_STORE_APPLY_H

#include "apply_result.h"
#include "store.h"

/* Frees what a result owns and zeroes it; NULL-safe. */
void apply_result_free(apply_result *r);

/* Applies cmds[i] (encoded, len[i] bytes) with index first_index + i.
 * results must hold n entries; each is filled (caller frees each with
 * apply_result_free). Returns 0 when the transaction committed; otherwise
 * HERALD_ESTORAGE / HERALD_ENOMEM and nothing was committed (results are
 * zeroed). MDB_MAP_FULL is handled inside: grow and retry. */
int apply_batch(store *s, const uint8_t *const *cmds, const size_t *lens,
                size_t n, uint64_t first_index, apply_result *results);

/* ---- incremental batches ----------------------------------------------------
 *
 * The same state machine, one command at a time, in one LMDB write
 * transaction committed when the caller decides (the cluster FSM: once per
 * loop iteration). apply_batch is apply_begin + apply_next for each command
 * + apply_commit; results are identical.
 *
 * Nothing a batch writes is visible to readers (store_* read functions,
 * other threads) before apply_commit returns 0. While a batch is open the
 * calling thread holds the store's only write transaction: no other write
 * (apply_batch, store_restore) on that store until commit or abort, or it
 * deadlocks. Readers on the same thread are fine (MDB_NOTLS). */
typedef struct apply_txn apply_txn;

/* Opens a batch on s. *out is the caller's until apply_commit or
 * apply_abort. 0; HERALD_ENOMEM; HERALD_ESTORAGE (LMDB failed to begin, or
 * the stored applied index is corrupt); *out is NULL on failure. */
int apply_begin(store *s, apply_txn **out);

/* Applies one encoded command (len bytes, copied: cmd may go right after
 * the call) with the given index, in its own nested transaction, and
 * stores the applied index. A command whose index is ≤ the applied index
 * (stored before the batch, or reached earlier in it) is skipped (its
 * result says so). Indexes should increase.
 *
 * *r is zeroed and filled as apply_batch fills its results. It must stay at
 * the same address, untouched, until apply_commit or apply_abort: on
 * MDB_MAP_FULL (here or at commit) the transaction is aborted, the map
 * grown and every command of the batch applied again from the start,
 * refilling each result in place — with the same content, apply being
 * deterministic. Read it only once the batch committed, and free it with
 * apply_result_free (after a failed commit or an abort it is already
 * zeroed).
 *
 * Returns 0 (applied, rejected or skipped: r says which). HERALD_ENOMEM /
 * HERALD_ESTORAGE: this command is not in the batch (r zeroed; the map may
 * be at its ceiling) and the earlier ones still are, applied again in a
 * fresh transaction — unless that failed too: then the batch is lost
 * (sticky: every later apply_next and apply_commit return the error). */
int apply_next(apply_txn *t, const uint8_t *cmd, size_t len, uint64_t index, apply_result *r);

/* Commands in the batch, and the sum of their lengths (for caps). */
size_t apply_count(const apply_txn *t);
size_t apply_bytes(const apply_txn *t);

/* Commits the batch and frees t (always). 0: every result stands and the
 * store shows the batch. MDB_MAP_FULL is handled inside (grow, apply again,
 * commit; with the map at its ceiling, in smaller transactions, in order).
 * HERALD_ESTORAGE / HERALD_ENOMEM (or the sticky error): the batch was not
 * committed — or only a prefix of it, at the ceiling (store_applied tells
 * where it stops) — and the results of what was not are zeroed. */
int apply_commit(apply_txn *t);

/* Drops the batch and frees t; every result is zeroed. NULL-safe. */
void apply_abort(apply_txn *t);

#endif
