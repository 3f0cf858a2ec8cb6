/*
 * store_snap.h — a store's whole content as one byte string (raft
 * snapshots), its replacement by such a string, and a digest proving two
 * replicas identical.
 *
 * Format (all integers big-endian; version 1):
 *   "HSNAP" 0 0 1             8 bytes: magic and version
 *   applied                   u64: the store's applied index
 *   n_dbs                     u32: named databases that follow (all of them)
 *   per database, in the store's fixed order:
 *     name_len u8, name       its LMDB name ("meta", "conv", …)
 *     n_entries u64
 *     n_entries × (klen u32, key, vlen u32, value), keys ascending
 *   sha256                    32 bytes over everything before it
 * The meta database carries the "applied" key like any other; `applied` in
 * the header repeats it (0 when absent) so a reader can judge a snapshot
 * without parsing it (store_snapshot_applied).
 *
 * Threads: store_snapshot and store_digest run one read transaction and may
 * be called from any thread; store_restore is a write and must run on the
 * store's single writer thread (the raft loop thread in cluster mode), like
 * apply_batch.
 */
#ifndef HERALD_STORE_SNAP_H
#define HERALD_STORE_SNAP_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_SNAP_DIGEST_LEN 32u /* SHA-256 */

/* Serializes every named database and the applied index, read in ONE read
 * transaction (a consistent point), into *out, which must be empty (zeroed).
 * On success *out holds the bytes (caller frees with herald_buf_free) and
 * *applied (optional) the applied index they contain. On error *out is
 * empty. 0, HERALD_ENOMEM, HERALD_ESTORAGE (LMDB error, or a value too long
 * for the format). */
int store_snapshot(store *s, herald_buf *out, uint64_t *applied);

/* Replaces the store's whole content by snapshot p[0..n) in ONE write
 * transaction: every database emptied, then loaded, the applied index
 * becoming the snapshot's. The input is untrusted: it is checked completely
 * (checksum, structure, lengths, key order, database names, applied index)
 * before anything is written. MDB_MAP_FULL: abort, grow the map, retry.
 * p is only read during the call. On any error the store is unchanged.
 * 0, HERALD_EPROTOCOL (malformed input), HERALD_ENOMEM, HERALD_ESTORAGE
 * (LMDB error or map ceiling reached), HERALD_EIO. */
int store_restore(store *s, const void *p, size_t n);

/* A reference snapshot: the store itself is the snapshot. Syncs the store
 * to disk (it is written without fsync in cluster mode) and writes into
 * *out (empty) 48 bytes: "HSREF" 0 0 1, the applied index (u64) and a
 * SHA-256 of those 16 bytes. O(1) in the store's size, apart from the
 * sync. A replica that took it can drop its log up to that index; a peer
 * that needs the content gets store_snapshot's whole string instead, made
 * when it is sent (fsm_snapshot_expand). 0, HERALD_ESTORAGE, HERALD_ENOMEM. */
int store_snapshot_ref(store *s, herald_buf *out, uint64_t *applied);

/* True when p[0..n) is a well-formed reference snapshot. */
bool store_snapshot_is_ref(const void *p, size_t n);

/* The applied index recorded in snapshot p[0..n) (whole or reference),
 * read from the header only (no checksum or structure check of a whole
 * one: store_restore does those). 0 or HERALD_EPROTOCOL (too short, bad
 * magic or version). */
int store_snapshot_applied(const void *p, size_t n, uint64_t *applied);

/* SHA-256 over the store's content as store_snapshot would serialize it
 * (so it equals that snapshot's trailing checksum), computed in one read
 * transaction without building the buffer. Two stores with equal digests
 * hold the same keys and values in every database. *applied (optional):
 * the applied index at that point. 0, HERALD_ESTORAGE. */
int store_digest(store *s, uint8_t out[STORE_SNAP_DIGEST_LEN], uint64_t *applied);

#endif
