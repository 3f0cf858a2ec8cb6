/*
 * node_metrics.h — what the replica layer shows on GET /metrics and
 * /readyz (http/obs.h): each group store's LMDB map (dev and node), and a
 * node's raft groups, log writer, events and peers. Loop thread.
 */
#ifndef HERALD_REPLICA_NODE_METRICS_H
#define HERALD_REPLICA_NODE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prom.h"
#include "store.h"
#include "svc.h"

/* herald_store_map_size_bytes, _map_used_bytes, herald_store_applied_index
 * of stores[0..n) (group i in stores[i]). */
void store_metrics(prom_w *w, store *const *stores, uint32_t n);

/* Event callbacks: per group, the outbox's events held (the queue depth:
 * not yet delivered to every app that wants them) and dropped at the cap or
 * age limit (replicated, the same on every replica); this process's
 * deliverer's attempts, failures, deliveries, events given up on and POSTs
 * in flight (only the groups it leads). s may be NULL (no deliverer). */
struct svc;
void callback_metrics(prom_w *w, const struct svc *s, store *const *stores, uint32_t n);

#endif
