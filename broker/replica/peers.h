/*
 * peers.h — what a gateway knows about reaching the nodes: a node whose
 * request was not sent or not answered in time is down until it answers
 * again (a probe, NW_STATUS, goes to every down node once a second). With
 * fewer than a majority of the nodes reachable there is no quorum: the
 * front end answers UNAVAILABLE at once instead of retrying until its
 * deadline. Loop thread.
 */
#ifndef HERALD_HERALDD_PEERS_H
#define HERALD_HERALDD_PEERS_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"

typedef struct peers peers;

/* n nodes, reached through rpc[0..n) (borrowed; destroy them before
 * peers_destroy so probes in flight finish first), by gateway gw (its id
 * goes with every probe: a node counts the gateway live by it). Everyone
 * starts up. 0 or HERALD_ENOMEM. */
int peers_create(struct ev_loop *loop, rpc_client *const *rpc, uint32_t n, unsigned timeout_ms,
                 uint32_t gw, peers **out);
/* NULL-safe. */
void peers_destroy(peers *p);

/* A request to node i was not sent or not answered in time. */
void peers_failed(peers *p, uint32_t i);
/* Node i answered. */
void peers_answered(peers *p, uint32_t i);
/* Whether node i is thought reachable. */
bool peers_up(const peers *p, uint32_t i);
/* Nodes thought reachable. */
uint32_t peers_reachable(const peers *p);
/* A majority of the nodes is thought reachable. */
bool peers_quorum(const peers *p);
/* Nodes that answered (a request or the probe every quiet node gets each
 * second) within the last 5 s: what /readyz judges by. */
uint32_t peers_fresh(const peers *p);
/* Nodes configured. */
uint32_t peers_count(const peers *p);

#endif
