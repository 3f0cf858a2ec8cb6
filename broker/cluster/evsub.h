/*
 * evsub.h — a gateway's view of the nodes' event streams: events handed on
 * once each and in order per stream, gaps repaired by pulling the missing
 * events from the publishing node.
 *
 * Each node publishes one stream (epoch, pubseq 1, 2, …; see evpub.h). For
 * each stream evsub delivers events in pubseq order. When one arrives
 * ahead of the next expected, the later ones are held back and `fetch` is
 * asked for the missing range (NW_REPLAY to that node); evsub_replayed
 * hands the answer in, the hole is filled and the held events follow. What
 * the node no longer has, or no answer within the repair timeout, is
 * skipped and counted as lost (clients get those messages with SYNC). A new
 * epoch (the node restarted) starts the stream over. Duplicates (a replay
 * overlapping live traffic) are dropped.
 *
 * Threads: the loop thread given at creation.
 */
#ifndef HERALD_NODE_EVSUB_H
#define HERALD_NODE_EVSUB_H

#include <herald/protocol.h>
#include <stdint.h>

#include "nwire.h"

struct ev_loop;
typedef struct evsub evsub;

/* An event, in order; e is valid during the call. */
typedef void (*evsub_deliver_fn)(void *arg, const nw_event *e);
/* Starts fetching [from, to] of (node, epoch); the answer must come back
 * through evsub_replayed (also on failure). 0, or an error: the gap is
 * then given up at the repair timeout. */
typedef int (*evsub_fetch_fn)(void *arg, uint32_t node, uint64_t epoch, uint64_t from,
                              uint64_t to);

typedef struct evsub_config {
    unsigned repair_ms;    /* give a gap up after this long (0 → 2000) */
    uint32_t hold_max;     /* events held behind a gap per stream (0 → 100,000) */
} evsub_config;

typedef struct evsub_stats {
    uint64_t delivered;    /* events handed on */
    uint64_t gaps;         /* holes detected */
    uint64_t repaired;     /* events recovered by replay */
    uint64_t lost;         /* events given up */
    uint64_t dups;         /* duplicates dropped */
    uint64_t bad;          /* undecodable batches or events */
} evsub_stats;

int evsub_create(struct ev_loop *loop, const evsub_config *cfg, evsub_deliver_fn deliver,
                 evsub_fetch_fn fetch, void *arg, evsub **out);

/* One received PUB message (an nw_batch of events). */
void evsub_batch(evsub *s, const uint8_t *p, size_t n);

/* The answer of the fetch of [from, to]: status 0 with the encoded events
 * (in order), or an error (then that range is given up). An answer to a
 * range no longer asked for (given up at the timeout) only fills what it
 * can. */
void evsub_replayed(evsub *s, uint32_t node, uint64_t epoch, uint64_t from, uint64_t to,
                    int status, const herald_str *events, uint32_t n);

void evsub_stats_get(const evsub *s, evsub_stats *out);
void evsub_destroy(evsub *s);

#endif
