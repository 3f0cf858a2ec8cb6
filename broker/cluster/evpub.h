/*
 * evpub.h — a node's stream of committed events to the gateways: batched
 * per loop iteration, sequenced, and kept in a bounded ring for gap repair.
 *
 * Every event gets the stream's epoch (random, new per process start) and
 * the next pubseq. Events added during one loop iteration travel in one
 * nng PUB message (nw_batch framing), flushed from an ev_prepare watcher
 * or earlier when the batch reaches its byte cap. The ring keeps the last
 * `ring` events (and at most `ring_bytes`) so a gateway that missed some
 * (nng PUB drops silently when a subscriber's queue is full) pulls them
 * again with NW_REPLAY.
 *
 * Threads: the loop thread given at creation.
 */
#ifndef HERALD_NODE_EVPUB_H
#define HERALD_NODE_EVPUB_H

#include <herald/protocol.h>
#include <stdint.h>

#include "clink.h"
#include "nwire.h"

struct ev_loop;
typedef struct evpub evpub;

typedef struct evpub_config {
    const char *url;       /* nng listen URL (the node's publish address) */
    uint32_t node_id;      /* stamped on every event */
    uint32_t sendbuf;      /* nng per-subscriber queue, messages (1..8192; 0 → 8192) */
    uint32_t ring;         /* events kept for replay (0 → 65536) */
    size_t ring_bytes;     /* bytes kept for replay (0 → 64 MiB) */
    size_t batch_bytes;    /* flush a batch at this size (0 → 256 KiB) */
    const clink *tls;      /* the links' TLS (NULL: plaintext) */
} evpub_config;

typedef struct evpub_stats {
    uint64_t events;       /* events published */
    uint64_t batches;      /* nng messages handed to nng */
    uint64_t failed;       /* batches nng refused (their events are in the ring) */
    uint64_t replays;      /* replay requests answered */
    uint64_t epoch;
} evpub_stats;

/* 0, HERALD_EIO (listen failed), HERALD_ENOMEM. */
int evpub_create(struct ev_loop *loop, const evpub_config *cfg, evpub **out);

/* Stamps e (node, epoch, pubseq), encodes it into the current batch and the
 * ring. 0, HERALD_EINVAL (e invalid), HERALD_ENOMEM (event lost; gateways
 * see the gap). */
int evpub_add(evpub *p, nw_event *e);

/* Sends the current batch now (also done once per loop iteration). */
void evpub_flush(evpub *p);

/* The encoded events of [from, to] of stream epoch still in the ring, in
 * order, into frames (pointers into the ring, valid until the next evpub
 * call); *n ≤ cap. Events before the ring's oldest are gone: the first one
 * returned may come after `from`. 0, HERALD_ENOT_FOUND (other epoch, or
 * nothing of the range is kept). */
int evpub_replay(evpub *p, uint64_t epoch, uint64_t from, uint64_t to, herald_str *frames,
                 uint32_t cap, uint32_t *n);

void evpub_stats_get(const evpub *p, evpub_stats *out);

/* Flushes, closes, frees. NULL-safe. */
void evpub_destroy(evpub *p);

#endif
