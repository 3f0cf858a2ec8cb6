/*
 * rio_int.h — internals of the raft I/O backend shared by its files. Not a
 * public interface; the tests and the fuzz target use the codec, the store
 * and the transport through it.
 *
 * Floors, from the ground up. A file calls only files on floors below its
 * own, never one above or beside it on its floor. A lower file reaches a
 * higher one only through functions the higher one handed it (a callback
 * and its argument, or a port: a struct of function pointers the upper
 * file fills in), the shape of nng's aio and of raft_io itself:
 *   1  rio_msg.c     the wire codec: frames, records, configurations
 *   2  rio_snap.c    InstallSnapshot streamed in chunks; the transport owns
 *                    the streams, and they send through the rio_snap_out
 *                    it fills in and complete through a rio_snap_cb
 *      rio_tables.c  how raft state lies in LMDB's tables (rio_tables.h,
 *                    for rio_store.c only): keys and values, read and
 *                    written inside the caller's transaction
 *   3  rio_net.c     the nng transport; hands frames up through the
 *                    rio_net_recv_fn the hub registered, completes sends
 *                    through a rio_net_cb
 *      rio_store.c   the LMDB store: environment, map growth, the writer
 *                    thread and group commit; completes through a
 *                    rio_store_cb
 *   4  rio_hub.c     the hub: store, transport, tick, deferred calls and the
 *                    gid → port table; reaches each group's io only
 *                    through the rio_port that io attached, and the driver
 *                    only through the rio_driver slot it filled in
 *   5  rio_io.c      the raft_io of one group (rio_io_init, rio.h)
 *   6  rio_group.c   the multi-raft driver: a struct raft per group
 * The sections below follow the floors from the ground up. Check with
 * cscope: for every function F of a file, `cscope -L -3 F` (who calls F)
 * lists no file on F's floor or below (other than F's own file).
 *
 * Threads: everything here runs on the hub's loop thread unless a comment
 * says otherwise.
 */
#ifndef HERALD_RAFT_RIO_INT_H
#define HERALD_RAFT_RIO_INT_H

#include <ev.h>
#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rio.h"

/* ---- wire codec (rio_msg.c) --------------------------------------------
 *
 * frame  := magic u32 "HRF1" | sender_id u64 | addr_len u16 | addr | record*
 * record := group u32 | type u8 | body_len u32 | body
 * All integers big-endian. Bodies by type (u64 unless noted):
 *   APPEND_ENTRIES      term prev_index prev_term commit n:u32 (term type:u8 len:u32 data)*n
 *   APPEND_ENTRIES_RES  term rejected last_log_index
 *   REQUEST_VOTE        term candidate last_index last_term flags:u8 (1 disrupt, 2 pre-vote)
 *   REQUEST_VOTE_RES    term granted:u8 pre_vote:u8 (tribool)
 *   INSTALL_SNAPSHOT    term last_index last_term conf_index conf data_len:u32 data
 *   TIMEOUT_NOW         term last_index last_term
 * conf := n:u32 (id:u64 role:u8 addr_len:u16 addr)*n — the same encoding is
 * used for snapshot metadata in LMDB.
 * Two record types belong to the transport itself (not raft messages): the
 * pieces of a streamed InstallSnapshot (rio_snap.c, see rio.h):
 *   SNAP_CHUNK (0x40)   term last_index last_term conf_index total hash offset
 *                       conf data_len:u32 data      (offset + data_len ≤ total)
 *   SNAP_ACK   (0x41)   last_index last_term hash have flags:u8
 */
#define RIO_MAGIC 0x48524631u      /* "HRF1" */
#define RIO_ADDR_MAX 255u          /* longest server address */
#define RIO_RECORDS_MAX 65536u     /* raft messages per frame */
#define RIO_CONF_MAX 1024u         /* servers per configuration */
#define RIO_FRAME_HDR_MIN 14u      /* magic + sender id + addr_len */
#define RIO_APPEND_MAX ((size_t)8 << 20) /* bytes of one AppendEntries record (or max_msg) */

/* A growable byte buffer (malloc). */
typedef struct rio_buf {
    uint8_t *data; /* bytes (owned) */
    size_t len;    /* used */
    size_t cap;    /* allocated */
} rio_buf;

int rio_buf_reserve(rio_buf *b, size_t extra);
void rio_buf_free(rio_buf *b);

/* Starts a frame in an empty buffer. 0, HERALD_EINVAL (address too long),
 * HERALD_ENOMEM. */
int rio_frame_begin(rio_buf *b, uint64_t sender_id, const char *sender_addr);

/* Appends one record; on failure b->len is unchanged. 0, HERALD_EINVAL
 * (unknown type, oversized field), HERALD_ENOMEM. */
int rio_msg_encode(rio_buf *b, uint32_t gid, const struct raft_message *m);

/* Bytes rio_msg_encode adds for m (record header included); SIZE_MAX when
 * m cannot be encoded (unknown type, a field over 4 GiB). */
size_t rio_msg_size(const struct raft_message *m);

/* For an APPEND_ENTRIES m: how many of its leading entries fit in one
 * record of at most `budget` bytes (rio_msg_size of the message cut to
 * them ≤ budget). */
unsigned rio_ae_fit(const struct raft_message *m, size_t budget);

/* Encodes/decodes a configuration (conf production above). */
int rio_conf_encode(rio_buf *b, const struct raft_configuration *c);
/* Reads a conf from p[0..n), advancing *used; c must be initialized and is
 * filled with raft_configuration_add. 0, HERALD_EPROTOCOL, HERALD_ENOMEM. */
int rio_conf_decode(const uint8_t *p, size_t n, size_t *used, struct raft_configuration *c);

#define RIO_REC_SNAP_CHUNK 0x40u /* record type of a snapshot chunk */
#define RIO_REC_SNAP_ACK 0x41u   /* record type of a snapshot acknowledgement */
#define RIO_SNAP_TOTAL_MAX ((uint64_t)1 << 40) /* largest streamed snapshot */

/* A piece of a streamed snapshot: the snapshot's identity and metadata,
 * and bytes [offset, offset + len) of its data. */
typedef struct rio_chunk {
    raft_term term;                /* sender's term (of the InstallSnapshot) */
    raft_index last_index;         /* snapshot's last index */
    raft_term last_term;           /* and term */
    raft_index conf_index;         /* index of its configuration */
    struct raft_configuration conf; /* its configuration (decoded: raft_malloc'd, owned) */
    uint64_t total;                /* bytes of the whole data */
    uint64_t hash;                 /* rio_hash64 of the whole data */
    uint64_t offset;               /* where these bytes go */
    const uint8_t *data;           /* the bytes (decoded: point into the frame buffer) */
    uint32_t len;                  /* how many (0: a probe asking for the receiver's offset) */
} rio_chunk;

/* The receiver's answer to a chunk. */
#define RIO_ACK_REWIND 1u   /* a gap or an unknown stream: resend from `have` */
#define RIO_ACK_COMPLETE 2u /* all bytes arrived, verified, handed to raft */
typedef struct rio_sack {
    raft_index last_index; /* the snapshot acknowledged (identity) */
    raft_term last_term;   /* … */
    uint64_t hash;         /* … */
    uint64_t have;         /* bytes received contiguously from offset 0 */
    uint8_t flags;         /* RIO_ACK_* */
} rio_sack;

/* One decoded record. */
typedef struct rio_rec {
    uint32_t gid;            /* group the message is for */
    uint8_t xtype;           /* 0: a raft message (msg); else RIO_REC_SNAP_* */
    struct raft_message msg; /* decoded; raft_malloc'd parts owned until handed to raft */
    rio_chunk chunk;         /* xtype RIO_REC_SNAP_CHUNK */
    rio_sack ack;            /* xtype RIO_REC_SNAP_ACK */
} rio_rec;

/* Record of a chunk / an ack. 0, HERALD_EINVAL, HERALD_ENOMEM; b->len
 * unchanged on failure. */
int rio_chunk_encode(rio_buf *b, uint32_t gid, const rio_chunk *c);
int rio_ack_encode(rio_buf *b, uint32_t gid, const rio_sack *a);
/* Bytes rio_chunk_encode adds (record header included). */
size_t rio_chunk_size(const rio_chunk *c);
size_t rio_ack_size(void);
/* A 64-bit hash of p[0..n) (not cryptographic: catches corruption and
 * mixed-up streams). */
uint64_t rio_hash64(const void *p, size_t n);

/* A decoded frame. */
typedef struct rio_frame {
    raft_id sender_id;                 /* sending node */
    char sender_addr[RIO_ADDR_MAX + 1]; /* its address, NUL-terminated */
    rio_rec *recs;                     /* records (malloc) */
    size_t n;                          /* number of records */
} rio_frame;

/* Decodes a whole frame; trusts nothing (every length and count is checked
 * against the bytes left and the caps above). Nothing is returned unless the
 * whole frame is valid. 0, HERALD_EPROTOCOL, HERALD_ENOMEM. On success the
 * caller owns *out: hand records to raft (then set rec->msg.type = 0) or
 * leave them, and call rio_frame_free. */
int rio_frame_decode(const uint8_t *p, size_t n, rio_frame *out);
/* Frees the raft-owned parts of one decoded message (entries, batch,
 * snapshot conf and data) and sets its type to 0. */
void rio_msg_release(struct raft_message *m);
/* Frees a decoded record's owned parts (a raft message's, a chunk's conf)
 * and marks it consumed (msg.type = 0, xtype = 0). */
void rio_rec_release(rio_rec *r);
/* Releases every record still typed, then the array. */
void rio_frame_free(rio_frame *f);

/* ---- streamed snapshots (rio_snap.c) ----------------------------------- *
 * See rio.h, "Large snapshots". One rio_snaps per transport: the streams
 * this node sends and the assemblies it receives. */

#define RIO_SNAP_SINGLE_MAX ((size_t)1 << 20) /* larger InstallSnapshots are streamed */

typedef struct rio_snaps rio_snaps;
/* Where the streams' records go: the transport fills it in (rio_net.c). Each
 * call encodes one record into url's outbox now, sent with the next flush,
 * no completion: 0, HERALD_ENOMEM, HERALD_EINVAL. Loop thread. */
typedef struct rio_snap_out {
    int (*put_chunk)(void *arg, const char *url, uint32_t gid, const rio_chunk *c);
    int (*put_ack)(void *arg, const char *url, uint32_t gid, const rio_sack *a);
    void *arg; /* their first argument (the transport) */
} rio_snap_out;
/* Completion of a streamed send (loop thread): see rio_snaps_send. */
typedef void (*rio_snap_cb)(void *arg, int status);

/* port is copied. 0, HERALD_ENOMEM. */
int rio_snaps_create(struct ev_loop *loop, const rio_snap_out *port, rio_snaps **out);
/* Fails every running stream and fires its callback now (RAFT_CANCELED),
 * frees every assembly. NULL-safe. */
void rio_snaps_destroy(rio_snaps *s);
/* Starts streaming InstallSnapshot m (its conf and data borrowed until cb)
 * to m->server_address in chunks whose records fit `limit` bytes; cb fires
 * once, from rio_snaps_flush: 0 when the receiver has verified the whole
 * data and handed it to raft, RAFT_NOCONNECTION when it made no progress
 * for a while, RAFT_CANCELED when replaced by a newer send to the same
 * peer and group or cancelled. 0, RAFT_NOMEM, RAFT_TOOBIG (the metadata
 * alone does not fit a chunk). */
int rio_snaps_send(rio_snaps *s, uint32_t gid, const struct raft_message *m, size_t limit,
                   rio_snap_cb cb, void *arg);
void rio_snaps_cancel(rio_snaps *s, uint32_t gid);
/* Fires the callbacks of finished streams (end of loop iteration). NULL-safe. */
void rio_snaps_flush(rio_snaps *s);
/* A received ack / chunk from node `from` at `from_url`. A chunk that
 * completes and verifies an assembly turns rec into an INSTALL_SNAPSHOT raft
 * message (rec->xtype 0, owned parts in rec->msg); otherwise rec is left for
 * the caller to release. */
void rio_snaps_on_ack(rio_snaps *s, const char *from_url, uint32_t gid, const rio_sack *a);
void rio_snaps_on_chunk(rio_snaps *s, raft_id from, const char *from_url, rio_rec *rec);
void rio_snaps_stats(const rio_snaps *s, rio_stats *st);

/* ---- LMDB store (rio_store.c; its tables: rio_tables.h) ---------------- */

typedef struct rio_store rio_store;
/* Completion of an asynchronous store request (loop thread, submission
 * order); status is 0 or a RAFT_* code. */
typedef void (*rio_store_cb)(void *arg, int status);

int rio_store_open(struct ev_loop *loop, const char *dir, size_t map_size, rio_store **out);
/* Hands over everything pending, waits for the writer, fires the remaining
 * callbacks, frees. NULL-safe. */
void rio_store_close(rio_store *s);

/* Synchronous (loop thread; return RAFT_* codes). */
int rio_store_load(rio_store *s, uint32_t gid, raft_term *term, raft_id *vote,
                   struct raft_snapshot **snap, raft_index *start,
                   struct raft_entry **ents, size_t *n);
int rio_store_set_term(rio_store *s, uint32_t gid, raft_term term);
int rio_store_set_vote(rio_store *s, uint32_t gid, raft_id vote);
/* Entry 1 (term 1, RAFT_CHANGE) and term 1 on a pristine group, else
 * RAFT_CANTBOOTSTRAP. */
int rio_store_bootstrap(rio_store *s, uint32_t gid, const struct raft_configuration *c);
/* Appends a RAFT_CHANGE entry after the last one, in the current term. */
int rio_store_recover(rio_store *s, uint32_t gid, const struct raft_configuration *c);
/* Reads the group's snapshot (raft_malloc'd, one buffer) or *out = NULL. */
int rio_store_snapshot_get(rio_store *s, uint32_t gid, struct raft_snapshot **out);

/* Asynchronous, ordered per store (a FIFO): queued now, handed to the writer
 * at the end of the loop iteration, committed with everything else queued,
 * cb fired afterwards. The entries' and snapshot's buffers are borrowed
 * until cb. RAFT_NOMEM or 0. */
int rio_store_append(rio_store *s, uint32_t gid, raft_index first,
                     const struct raft_entry *ents, unsigned n, rio_store_cb cb, void *arg);
/* Deletes entries ≥ index, after every earlier request (a barrier). */
int rio_store_truncate(rio_store *s, uint32_t gid, raft_index index);
/* Stores the snapshot; then deletes entries ≤ index − trailing, or all of
 * the group's entries when trailing is 0 (an installed snapshot). */
int rio_store_snapshot_put(rio_store *s, uint32_t gid, unsigned trailing,
                           const struct raft_snapshot *snap, rio_store_cb cb, void *arg);
/* Fault injection (tests): the next n rio_store_append calls fail with
 * RAFT_NOMEM as if out of memory. */
void rio_store_inject_fail(rio_store *s, unsigned n);
/* Requests queued and not yet called back. */
size_t rio_store_pending(const rio_store *s);
void rio_store_stats(const rio_store *s, rio_stats *st);
/* Sets the group-commit observer (rio_hub_config.commit_observe). */
void rio_store_observe(rio_store *s, void (*fn)(void *arg, uint64_t ns), void *arg);

/* ---- nng transport (rio_net.c) ----------------------------------------- */

typedef struct rio_net rio_net;
/* A decoded frame for the hub; the callee owns f's contents (rio_frame_free). */
typedef void (*rio_net_recv_fn)(void *arg, rio_frame *f);
/* Send completion (loop thread, at the end of the iteration the message was
 * queued in): 0 or RAFT_NOCONNECTION / RAFT_CANCELED, or RAFT_TOOBIG when
 * an AppendEntries was sent cut to a prefix of its entries. A streamed
 * InstallSnapshot completes as rio_snaps_send says (the same type). */
typedef rio_snap_cb rio_net_cb;

/* tls: the links' TLS (clink.h), NULL for plaintext. */
int rio_net_open(struct ev_loop *loop, const char *url, uint64_t self_id, size_t max_msg,
                 const struct clink *tls, rio_net_recv_fn fn, void *arg, rio_net **out);
/* Flushes queued messages (callbacks fire), stops nng, frees. NULL-safe. */
void rio_net_close(rio_net *n);
/* Encodes m now into the outbox of its destination (m->server_address);
 * cb fires after the flush. 0, RAFT_NOMEM, RAFT_MALFORMED. */
int rio_net_send(rio_net *n, uint32_t gid, const struct raft_message *m, rio_net_cb cb,
                 void *arg);
/* Fails the group's running snapshot streams (RAFT_CANCELED, at the next
 * flush) and drops its partial assemblies: io->close. */
void rio_net_cancel(rio_net *n, uint32_t gid);
/* Our advertised address (the listen URL, with the bound port when it was :0). */
const char *rio_net_url(const rio_net *n);
void rio_net_stats(const rio_net *n, rio_stats *st);
/* Counts a message delivered / orphaned (hub bookkeeping). */
void rio_net_count(rio_net *n, uint64_t delivered, uint64_t orphaned);

/* ---- hub internals (rio_hub.c) ------------------------------------------ */

typedef void (*rio_defer_fn)(void *arg);
/* Runs fn(arg) on the loop thread soon, never inside this call, in FIFO
 * order. 0 or HERALD_ENOMEM. */
int rio_defer(rio_hub *h, rio_defer_fn fn, void *arg);

rio_store *rio_hub_store(rio_hub *h);
rio_net *rio_hub_net(rio_hub *h);
struct ev_loop *rio_hub_loop(rio_hub *h);

/* What the hub calls on one group's io: the io (rio_io.c) fills it in and
 * attaches it. Both run on the loop thread, from the hub's receive path and
 * tick timer. */
typedef struct rio_port {
    /* Hands a received message to the group's raft, which takes ownership
     * of its raft-owned parts; false when the group is not started (the
     * hub releases the message). */
    bool (*deliver)(void *arg, struct raft_message *m);
    /* The hub's tick: calls raft's tick callback when started. */
    void (*tick)(void *arg);
    void *arg; /* their first argument (the group io) */
} rio_port;
/* port is borrowed until rio_hub_detach (it must stay valid through the
 * tick in which the group closes). 0, HERALD_EEXISTS (gid has a port),
 * HERALD_ENOMEM. */
int rio_hub_attach(rio_hub *h, uint32_t gid, rio_port *port);
void rio_hub_detach(rio_hub *h, uint32_t gid);

/* The driver's slot in the hub (rio_group.c fills it in): its list of
 * groups, and what rio_hub_destroy calls first, before the transport and
 * the store stop (NULL: no driver groups). */
typedef struct rio_driver {
    rio_group *groups;         /* the driver's groups (linked by rio_group.c) */
    void (*close)(rio_hub *h); /* closes every group, runs the loop until all
                                * have closed, frees them */
} rio_driver;
rio_driver *rio_hub_driver(rio_hub *h);

/* Milliseconds of a monotonic clock; a random int in [min, max]. */
raft_time rio_hub_time(rio_hub *h);
int rio_hub_random(rio_hub *h, int min, int max);

/* Big-endian helpers. */
static inline void rio_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}
static inline void rio_put64(uint8_t *p, uint64_t v)
{
    rio_put32(p, (uint32_t)(v >> 32));
    rio_put32(p + 4, (uint32_t)v);
}
static inline uint32_t rio_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t rio_get64(const uint8_t *p)
{
    return ((uint64_t)rio_get32(p) << 32) | rio_get32(p + 4);
}

#endif
