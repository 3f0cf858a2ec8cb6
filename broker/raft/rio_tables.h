/*
 * rio_tables.h — how the raft state of every group lies in LMDB: three
 * named databases of one environment, their keys and values, and the reads
 * and writes of them. For rio_store.c only (see rio_int.h, "Floors").
 *
 *   rlog   group(4 BE)|index(8 BE) → term(8) type(1) payload
 *   rstate group(4 BE)            → term(8) vote(8)
 *   rsnap  group(4 BE)            → index(8) term(8) conf_index(8) conf data
 * All integers big-endian; conf is the codec's configuration encoding
 * (rio_conf_encode).
 *
 * Every call works inside a transaction the caller began and ends (a read
 * one suffices for the get_ and last_ calls); none keeps a pointer into the
 * map after it returns. Any thread, one transaction per thread at a time
 * (LMDB's rule). Errors are LMDB codes (or errno values) unless a comment
 * says RAFT_* codes.
 */
#ifndef HERALD_RAFT_RIO_TABLES_H
#define HERALD_RAFT_RIO_TABLES_H

#include <lmdb.h>

#include "rio_int.h"

/* The environment's raft databases (handles valid as long as the env). */
typedef struct rio_tables {
    MDB_dbi log;   /* rlog */
    MDB_dbi state; /* rstate */
    MDB_dbi snap;  /* rsnap */
} rio_tables;

/* Opens (creating) the three databases in a write transaction. */
int rio_tables_open(MDB_txn *txn, rio_tables *t);

/* An LMDB or errno code as the RAFT_* code raft_io reports. */
int rio_lmdb_to_raft(int rc);

/* ---- rlog ---------------------------------------------------------------- */

/* Puts ents[0..n) at indexes first, first + 1, … (replacing what is there). */
int rio_tables_put_entries(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index first,
                           const struct raft_entry *ents, unsigned n);
/* Puts a RAFT_CHANGE entry holding c (raft's own encoding) at index.
 * ENOMEM or EINVAL when c cannot be encoded. */
int rio_tables_put_conf_entry(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index index,
                              raft_term term, const struct raft_configuration *c);
/* Deletes the group's entries with index in [from, to]. */
int rio_tables_del_entries(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index from,
                           raft_index to);
/* The group's last entry: *last = 0 (and *last_term = 0) when its log is
 * empty. */
int rio_tables_last_entry(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index *last,
                          raft_term *last_term);
/* Reads the group's whole log into one raft_malloc'd batch: *ents (an array
 * of *n, raft_malloc'd; every entry's batch is the same buffer) and the
 * index of the first in *first; *n = 0 and *ents = NULL when empty.
 * RAFT_* codes: RAFT_CORRUPT (a gap, a short value), RAFT_NOMEM, … */
int rio_tables_get_entries(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index *first,
                           struct raft_entry **ents, size_t *n);

/* ---- rstate -------------------------------------------------------------- */

/* Term and vote, 0 and 0 when never written; MDB_CORRUPTED for a value of
 * the wrong size. */
int rio_tables_get_state(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_term *term,
                         raft_id *vote);
int rio_tables_put_state(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_term term,
                         raft_id vote);

/* ---- rsnap --------------------------------------------------------------- */

/* Stores the group's snapshot (replacing the previous one): its metadata,
 * conf (already encoded) and the data of bufs[0..n_bufs) one after the
 * other. The log is not touched. */
int rio_tables_put_snapshot(MDB_txn *txn, const rio_tables *t, uint32_t gid, raft_index index,
                            raft_term term, raft_index conf_index, const rio_buf *conf,
                            const struct raft_buffer *bufs, unsigned n_bufs);
/* Whether the group has a snapshot stored. */
int rio_tables_has_snapshot(MDB_txn *txn, const rio_tables *t, uint32_t gid, bool *has);
/* The group's snapshot, raft_malloc'd with its data in one buffer (free with
 * rio_snapshot_free), or *out = NULL when none. RAFT_* codes. */
int rio_tables_get_snapshot(MDB_txn *txn, const rio_tables *t, uint32_t gid,
                            struct raft_snapshot **out);
/* Frees what rio_tables_get_snapshot returned. NULL-safe. */
void rio_snapshot_free(struct raft_snapshot *snap);

#endif
