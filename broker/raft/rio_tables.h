/*
 * rio_tables.h — how the raft state of every group is laid out in LMDB:
 * the three named databases, their keys and values, and the reads and
 * writes of them inside a transaction the caller holds (rio_tables.c).
 * Only the store (rio_store.c) uses it; it knows nothing of the store's
 * threads, map growth or queues.
 *
 *   rlog   group(4 BE)|index(8 BE) → term(8) type(1) payload
 *   rstate group(4 BE)            → term(8) vote(8)
 *   rsnap  group(4 BE)            → index(8) term(8) conf_index(8) conf data
 *
 * (conf: rio_conf_encode, rio_int.h.) Every function runs in the caller's
 * transaction on the caller's thread and returns an LMDB/errno code unless
 * it says RAFT_*; a write that fails leaves the transaction to be aborted.
 */
#ifndef HERALD_RAFT_RIO_TABLES_H
#define HERALD_RAFT_RIO_TABLES_H

#include <lmdb.h>
#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

#include "rio_int.h"

/* The databases of an environment (valid while it is open). */
typedef struct rio_tables {
    MDB_dbi log;   /* rlog */
    MDB_dbi state; /* rstate */
    MDB_dbi snap;  /* rsnap */
} rio_tables;

/* Opens (creating when missing) the three databases in txn. */
int rio_tables_open(MDB_txn *txn, rio_tables *t);

/* LMDB/errno code → RAFT_* (NOSPACE, TOOBIG, NOMEM or IOERR). */
int rio_lmdb_to_raft(int rc);

/* ---- rlog ---- */

/* Puts ents[0..n) at first, first + 1, … (the payloads copied into the
 * map). */
int rio_tables_put_entries(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index first,
                           const struct raft_entry *ents, unsigned n);
/* Puts a RAFT_CHANGE entry of `term` holding c (raft's own encoding) at
 * index. */
int rio_tables_put_conf_entry(MDB_txn *txn, const rio_tables *t, uint32_t gid,
                              raft_index index, raft_term term,
                              const struct raft_configuration *c);
/* Deletes the group's entries with index in [from, to]. */
int rio_tables_del_entries(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index from,
                           raft_index to);
/* The group's last entry: *last = 0 (and *last_term 0) when its log is
 * empty. */
int rio_tables_last_entry(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index *last,
                          raft_term *last_term);
/* Reads the group's whole log into one raft_malloc'd batch (*ents, *n;
 * *first its first index; all 0/NULL when empty; the caller frees
 * (*ents)[0].batch and *ents). RAFT_* code: RAFT_CORRUPT on a gap or a short
 * value. */
int rio_tables_get_entries(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index *first,
                           struct raft_entry **ents, size_t *n);

/* ---- rstate ---- */

/* Term and vote, 0 and 0 for a group without state; MDB_CORRUPTED on a
 * value of the wrong size. */
int rio_tables_get_state(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_term *term,
                         raft_id *vote);
int rio_tables_put_state(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_term term,
                         raft_id vote);

/* ---- rsnap ---- */

/* Puts the group's snapshot: its metadata, conf (encoded) and the bytes of
 * bufs[0..n_bufs) one after another. */
int rio_tables_put_snapshot(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index index,
                            raft_term term, raft_index conf_index, const rio_buf *conf,
                            const struct raft_buffer *bufs, unsigned n_bufs);
/* Whether the group has a snapshot (*yes). */
int rio_tables_has_snapshot(MDB_txn *txn, const rio_tables *t, uint32_t gid, bool *yes);
/* Reads the group's snapshot into one raft_malloc'd snapshot with one
 * buffer (free with rio_snapshot_free), or *out = NULL when it has none.
 * RAFT_* code. */
int rio_tables_get_snapshot(MDB_txn *txn, const rio_tables *t, uint32_t gid,
                            struct raft_snapshot **out);
/* Frees a raft_malloc'd snapshot: configuration, buffers, itself.
 * NULL-safe. */
void rio_snapshot_free(struct raft_snapshot *snap);

#endif
