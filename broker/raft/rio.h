/*
 * rio.h — Herald's libraft 0.15 I/O backend for multi-raft: one hub per node
 * process, many raft groups per hub.
 *
 * A hub owns
 *   - one LMDB environment holding the raft state of every group (named dbs
 *     `rlog`: group(4 BE)|index(8 BE) → term, type, payload; `rstate`:
 *     group → term, vote; `rsnap`: group → snapshot metadata + data), written
 *     by one writer thread that commits every append queued during a loop
 *     iteration (from all groups) in ONE write transaction and one fsync;
 *   - one nng transport: a PULL0 listener on the node's URL (which is also
 *     the node's raft address) and one PUSH0 dialer per peer. All raft
 *     messages produced for one peer in one loop iteration (all groups,
 *     heartbeats included) travel in one nng message, each tagged with its
 *     group id;
 *   - one tick timer driving every started group, so heartbeats of all
 *     groups fall due in the same iteration and share the per-peer message.
 *
 * Threads: every call here, and every callback (raft's and ours), runs on
 * the thread running the ev_loop given to rio_hub_create. Internally the hub
 * runs an LMDB writer thread and nng's threads; they only hand results back
 * through ev_async.
 *
 * Errors: Herald codes (herald/error.h). raft_io methods return RAFT_* codes
 * as libraft expects.
 */
#ifndef HERALD_RAFT_RIO_H
#define HERALD_RAFT_RIO_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
typedef struct rio_hub rio_hub;
typedef struct rio_group rio_group;

/* Hub configuration; strings are copied by rio_hub_create. */
typedef struct rio_hub_config {
    uint64_t node_id;       /* this node's raft server id (> 0), same in every group */
    const char *listen_url; /* nng URL to listen on, also this node's raft address */
    const char *data_dir;   /* directory of the LMDB environment (created if missing) */
    size_t map_size;        /* initial LMDB map size in bytes; 0 → 1 GiB. A write that
                             * fills the map doubles it and is retried (its
                             * callbacks fire only after the commit) */
    size_t max_msg;         /* largest nng message accepted (RECVMAXSZ) and sent. An
                             * AppendEntries over it is sent cut to the entries
                             * that fit (see "Large AppendEntries"); only a single
                             * entry over it is refused (RAFT_TOOBIG, counted in
                             * msgs_toobig, logged). Same on every node.
                             * 0 → 64 MiB */
    unsigned tick_ms;       /* period of the hub tick driving all groups; 0 → 50 */
    const struct clink *tls;/* the links' TLS (clink.h): the listener takes only peers
                             * with a certificate of the cluster CA, and dials check
                             * the peer's; NULL: plaintext */
    /* Called on the log writer's thread after each group commit that
     * succeeded, with the time its LMDB transaction took (writes, commit
     * and fsync), for a latency histogram. Must not block. NULL: none. */
    void (*commit_observe)(void *arg, uint64_t ns);
    void *commit_arg;
} rio_hub_config;

/* Large AppendEntries. libraft 0.15 hands io->send every entry from the
 * follower's next index on (after a restart, the whole log since its match
 * index), with no size limit. rio encodes only the leading entries whose
 * record fits min(max_msg − frame header, 8 MiB) (at least one, if it fits
 * max_msg) and completes the send with RAFT_TOOBIG. That is safe and keeps
 * replication moving, as read from 0.15's replication.c:
 *   - the follower sees an ordinary AppendEntries with fewer entries,
 *     appends them and answers with its last stored index;
 *   - the failed send status puts the follower's progress back to probe
 *     (next = match + 1), undoing the optimistic next index raft set for
 *     the whole batch in pipeline mode, so nothing is skipped;
 *   - the success answer moves match to the last entry sent and, now in
 *     pipeline mode, raft sends the next batch at once: one cap-sized batch
 *     per round trip, not one per heartbeat.
 * A heartbeat falling due before the answer re-sends the same batch (the
 * follower ignores entries it already has). */

/* Large snapshots. libraft 0.15's InstallSnapshot is one message carrying
 * the whole snapshot data. One whose record is over min(max_msg − frame
 * header, 1 MiB) is streamed by the transport instead (rio_snap.c), in
 * records of its own that raft never sees:
 *   SNAP_CHUNK  the snapshot's identity (last index, last term, data size
 *               and a 64-bit hash of the data), its metadata (term,
 *               configuration index and configuration) and data bytes
 *               [offset, offset + len), len ≤ 1 MiB and within max_msg;
 *   SNAP_ACK    the receiver's answer: identity, bytes held contiguously
 *               from 0 (`have`), REWIND (a gap, or a stream it does not
 *               know: go back to `have`) or COMPLETE.
 * Sender, one stream per peer and group: first an empty chunk at offset 0
 * (a probe) whose ack tells it where the receiver stands, then chunks from
 * there with at most 8 MiB unacknowledged; after 1 s without progress it
 * resends from the acknowledged offset, after 15 s it fails the send
 * (RAFT_NOCONNECTION; raft aborts the install and sends the snapshot again
 * later). A new send to the same peer and group replaces the running one
 * (RAFT_CANCELED), and closing the group cancels its streams. raft's send
 * callback fires with 0 only on COMPLETE; raft's snapshot buffer stays
 * borrowed until then.
 * Receiver, one assembly per group: the bytes from offset 0 in one buffer
 * grown as they arrive (never past the announced size, ≤ 1 TiB) — raft is
 * handed the snapshot as one buffer anyway, so memory stays bounded by the
 * snapshot being installed. A probe or chunk from offset 0 of another
 * snapshot (newer, or another leader's with a term at least as high)
 * replaces the assembly; a lower term's chunks are ignored (that stream
 * stalls and fails); a chunk that does not continue it gets a REWIND. When the last byte arrives the size
 * and hash are checked: a mismatch discards it (snap_bad, logged) and asks
 * for it again from 0; a match hands raft one ordinary InstallSnapshot
 * message and acks COMPLETE. An assembly idle for 60 s is dropped.
 * Resumable: the assembly survives connection loss and the sender's
 * retries (a new stream of the same snapshot continues at `have`); it does
 * not survive a restart of the receiving process (kept in memory). */

/* Counters, for tests and metrics (loop thread). */
typedef struct rio_stats {
    uint64_t txns;        /* LMDB write transactions committed by the writer (group commits) */
    uint64_t appends;     /* append requests made durable */
    uint64_t entries;     /* log entries made durable */
    uint64_t sync_txns;   /* synchronous transactions (term, vote, bootstrap, recover) */
    uint64_t store_errs;  /* writer batches that failed (their callbacks got an error) */
    uint64_t frames_sent; /* nng messages handed to nng */
    uint64_t msgs_sent;   /* raft messages in them (msgs/frames = batching factor) */
    uint64_t send_fails;  /* raft messages that could not be handed to nng */
    uint64_t frames_recv; /* nng messages received */
    uint64_t msgs_recv;   /* raft messages delivered to a started group */
    uint64_t frames_bad;  /* received nng messages rejected by the decoder */
    uint64_t msgs_orphan; /* received messages for a group not started here */
    uint64_t map_grows;   /* times the LMDB map was grown after MDB_MAP_FULL */
    uint64_t map_size;    /* current LMDB map size in bytes */
    uint64_t msgs_toobig; /* raft messages refused because one would exceed max_msg */
    uint64_t appends_cut; /* AppendEntries sent cut to the entries that fit (see below) */
    uint64_t snap_streams;   /* InstallSnapshots sent as chunk streams */
    uint64_t snap_resumed;   /* streams that resumed at an offset the receiver had */
    uint64_t snap_chunks;    /* chunks sent (resends included) */
    uint64_t snap_bytes;     /* snapshot data bytes sent in chunks */
    uint64_t snap_installed; /* streamed snapshots received whole, verified, given to raft */
    uint64_t snap_bad;       /* assemblies discarded (hash mismatch, out of memory, idle) */
} rio_stats;

/* Opens the LMDB env, starts the writer thread, listens. 0, HERALD_EINVAL,
 * HERALD_ENOMEM, HERALD_ESTORAGE (LMDB), HERALD_EIO (nng listen). */
int rio_hub_create(struct ev_loop *loop, const rio_hub_config *cfg, rio_hub **out);

/* Closes every group (raft_close), waits for their callbacks by running the
 * loop (EVRUN_ONCE) until all closed, then stops the transport and the
 * writer and frees the hub. Blocks the loop thread for a quarter of a
 * second more when peers are connected (messages in flight land before the
 * listener closes, see rio_net.c). Must not be called from a callback of
 * this hub. NULL-safe. Groups handed out by this hub are invalid
 * afterwards. */
void rio_hub_destroy(rio_hub *h);

/* This node's id and address (valid as long as the hub). */
uint64_t rio_hub_node_id(const rio_hub *h);
const char *rio_hub_address(const rio_hub *h);
void rio_hub_stats(const rio_hub *h, rio_stats *out);

/* ------------------------------------------------------------------------
 * The raw raft_io, for embedding in your own struct raft and for the
 * conformance tests. rio_io_init fills `io` (version 2, all methods set) for
 * group `gid` of hub `h`; io->impl is ours, io->data is left to raft.
 * 0, HERALD_EEXISTS (gid already has an io on this hub), HERALD_ENOMEM.
 * After io->close's callback has fired the io holds nothing; rio_io_fini
 * releases an io that was initialized but never closed (NULL impl → no-op).
 */
int rio_io_init(struct raft_io *io, rio_hub *h, uint32_t gid);
void rio_io_fini(struct raft_io *io);

/* Replaces a compact snapshot by what a peer can install, when raft is
 * about to send it (snapshot_get; loop thread): buf->base may be
 * raft_free'd and replaced. 0, or a HERALD code (the send fails and raft
 * tries again later). See fsm_snapshot_expand. */
typedef int (*rio_expand_fn)(struct raft_fsm *fsm, struct raft_buffer *buf);
/* Sets the io's expand hook (NULL: snapshots are sent as stored). */
void rio_io_set_expand(struct raft_io *io, rio_expand_fn fn, struct raft_fsm *fsm);

/* ------------------------------------------------------------------------
 * The multi-raft driver: a struct raft per group over rio's raft_io. */

/* Group configuration. */
typedef struct rio_group_config {
    uint32_t group_id;           /* group id, unique on the hub */
    struct raft_fsm *fsm;        /* state machine (borrowed; must outlive the group) */
    unsigned election_timeout;   /* ms; 0 → 1000 */
    unsigned heartbeat_timeout;  /* ms; 0 → 100 */
    unsigned snapshot_threshold; /* entries between snapshots; 0 → 1024 */
    unsigned snapshot_trailing;  /* entries kept after a snapshot; 0 → 128 */
    rio_expand_fn snapshot_expand; /* see rio_io_set_expand; NULL: none */
} rio_group_config;

/* A member of a group, for bootstrap. */
typedef struct rio_peer {
    uint64_t id;     /* raft server id (the node id) */
    const char *url; /* the node's listen URL (its raft address) */
} rio_peer;

/* Creates the group (raft_init). The group belongs to the hub and is freed by
 * rio_hub_destroy. 0, HERALD_EINVAL, HERALD_EEXISTS, HERALD_ENOMEM,
 * HERALD_EINTERNAL (raft_init failed). */
int rio_group_add(rio_hub *h, const rio_group_config *cfg, rio_group **out);

/* Writes the initial configuration of a pristine group (before start).
 * 0; HERALD_EEXISTS when the group already has state (normal on restart);
 * HERALD_EINVAL, HERALD_ENOMEM, HERALD_ESTORAGE. */
int rio_group_bootstrap(rio_group *g, const rio_peer *peers, unsigned n);

/* Loads the group's state and starts it (raft_start). 0, HERALD_ESTORAGE,
 * HERALD_EINTERNAL. */
int rio_group_start(rio_group *g);

/* Called once per rio_group_propose on the loop thread: status 0 when the
 * entry is committed and applied (result is what fsm->apply returned, owned
 * by the FSM's convention); else a HERALD code (HERALD_ENOT_LEADER when
 * leadership was lost, HERALD_ESHUTDOWN on close, HERALD_ESTORAGE). */
typedef void (*rio_apply_fn)(void *arg, int status, void *result);

/* Proposes one command (copied). 0 (then cb runs exactly once, never from
 * inside this call), HERALD_ENOT_LEADER, HERALD_ENOMEM, HERALD_ESHUTDOWN. */
int rio_group_propose(rio_group *g, const void *data, size_t len, rio_apply_fn cb,
                      void *arg);

/* True when this node is the group's leader. */
bool rio_group_is_leader(rio_group *g);

/* The leader known to this node: id 0 and url NULL when none. url is valid
 * until the next loop iteration. */
void rio_group_leader(rio_group *g, uint64_t *id, const char **url);

/* The group's raft instance (advanced use, tests); owned by the group. */
struct raft *rio_group_raft(rio_group *g);
uint32_t rio_group_id(const rio_group *g);

#endif
