/*
 * node_int.h — internals of `heraldd node`. Floors, each calling only down:
 *   node.c         the process: groups, the fsm hook (events, waiters),
 *                  housekeeping ticks, the slot map;
 *   node_serve.c   requests from gateways (run by the request service) and
 *                  from nodes (forwarded proposals, status, event replays);
 *   node_prop.c    proposals: here, or forwarded to the group's leader;
 *   node_status.c  the admin status document;
 *   node_groups.c  peers, leaders, commit-deferred proposing.
 * Loop thread only.
 */
#ifndef HERALD_HERALDD_NODE_INT_H
#define HERALD_HERALDD_NODE_INT_H

#include <ev.h>
#include <herald/error.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cmd.h"
#include "fsm.h"
#include "events.h"
#include "svc.h"
#include "json.h"
#include "log.h"
#include "evpub.h"
#include "nwire.h"
#include "obs.h"
#include "prom.h"
#include "rio.h"
#include "rpc.h"
#include "route.h"
#include "slots.h"
#include "token.h"

#define NODE_MAX_MSG (64u << 20)
#define NODE_RETRY_S 0.05   /* between tries while no leader is known */
#define NODE_PEER_UP_S 3.0  /* a peer answered a ping this recently: up */
#define NODE_GW_LIVE_S 5.0  /* a gateway sent a request this recently: live (it
                               probes every node at least once a second) */
#define NODE_MAX_GATEWAYS 64u /* gateways remembered */

typedef struct node node;

typedef struct nwait nwait;
typedef struct nreach nreach;

typedef struct ngroup {
    node *n;
    uint32_t id;
    store *st;
    struct raft_fsm fsm;
    bool fsm_ready;
    rio_group *rg;
    nwait *waiting;         /* forwarded results waiting for this replica */
    size_t inflight_bytes;  /* proposed here, not committed yet (node.queue_bytes) */
    uint64_t busy;          /* proposals refused for it (BUSY) */
    events_chain *chain;    /* its push chain while this node leads it */
} ngroup;

/* A gateway this node has heard from (node_serve.c). */
typedef struct ngw {
    uint32_t id;            /* gateway.id */
    ev_tstamp last;         /* its last request */
} ngw;

typedef struct npeer {
    const node_member *m;   /* cfg.member[i] */
    rpc_client *rpc;        /* NULL for this node */
    ev_tstamp last_seen;    /* last status reply */
    bool ping_busy;
    uint64_t *prog;         /* its last replica progress report (nw_reply.prog) */
    uint32_t n_prog;
} npeer;

struct node {
    node_config *cfg;
    struct ev_loop *loop;
    rio_hub *hub;
    uint32_t ngroups;       /* meta + shard groups */
    ngroup *groups;
    store **stores;
    svc *s;                 /* the request service */
    rpc_server *srv;
    clink *tls;             /* the links' TLS (NULL: cluster.plaintext) */
    evpub *pub;             /* committed events to the gateways */
    npeer peers[NODECFG_MAX_MEMBERS];
    struct nprop *props;    /* proposals without an outcome yet */
    ev_timer tick;          /* 1 s: slot map, tenants, env files, peer pings */
    bool tenant_busy;
    bool slot_busy;         /* SLOTMAP proposed */
    bool slot_ok;           /* the slot map is loaded: requests are served */
    bool slot_bad;          /* the stored map does not fit cluster.groups */
    uint8_t slotmap[HERALD_SLOTS];
    bool stopping;
    ev_tstamp started;
    nreach *reach_head;     /* HELLO / SYNC waiting for this node's replicas */
    ev_timer reach_kick;    /* re-checks them once an iteration applied entries */
    uint64_t reach_waits;   /* requests that had to wait */
    uint64_t reach_timeouts;/* … and were told to retry (replica behind too long) */
    uint64_t reach_wait_ms_sum; /* time the served ones waited, in all */
    uint64_t reach_wait_ms_max; /* … and the longest */
    bool groups_ready;      /* every raft group started (metrics may read them) */
    prom_hist commit_lat;   /* raft log group commits (recorded on its writer thread) */
    obs *obs;               /* /metrics, /healthz, /readyz (NULL: node.http_listen off) */
    ngw gws[NODE_MAX_GATEWAYS]; /* the gateways heard from (the oldest is forgotten) */
    uint32_t n_gws;
};

typedef struct nprop {
    node *n;
    struct nprop *next, *prev; /* n->props */
    uint32_t group;
    void *cookie;           /* the service's pending command */
    herald_buf cmd;         /* owned */
    ev_timer retry;         /* next try while no leader is known */
    ev_tstamp deadline;
} nprop;

/* node_metrics.c: obs_source callbacks, and rio_hub_config.commit_observe
 * (arg: a prom_hist). */
void node_metrics(void *ctx, prom_w *w);
bool node_ready(void *ctx, char *why, size_t whylen);
void node_commit_observe(void *arg, uint64_t ns);

/* node_groups.c */
npeer *peer_by_id(node *n, uint64_t id);
/* The node id leading group (0 unknown). */
uint32_t leader_of(node *n, uint32_t group);
uint32_t be_leader(void *ctx, uint32_t group);
bool be_leads(void *ctx, uint32_t group);
/* Every group's leader as this node knows it, into a reply. */
void fill_leaders(node *n, nw_reply *r);
/* rio_group_propose whose cb runs after the entry's LMDB commit. */
int group_propose(ngroup *ng, const void *data, size_t len, rio_apply_fn cb, void *arg);

/* node.c: loads (or, as meta leader, writes) the slot map. */
void slotmap_tick(node *n);

/* node_prop.c */
/* service backend: submit a command to a group (here or at its leader). */
int be_submit(void *ctx, uint32_t group, herald_buf *cmdbuf, void *cookie);
/* Hands on forwarded results this replica has applied (all: regardless). */
void wait_release(ngroup *ng, bool all);
/* Reports an error outcome for p and frees it. */
void prop_finish_err(nprop *p, int code, const char *why);

/* node_status.c */
uint32_t progress_of(node *n, uint64_t **out);
void status_json(node *n, json_w *w);
void be_status(void *ctx, json_w *w);

/* node_serve.c: service backend: the gateways live now (their offline
 * reports decide a message before callback.offline_wait_ms). */
uint32_t be_gateways(void *ctx, uint32_t *ids, uint32_t cap);
/* node_serve.c: the rpc server's handler. */
void on_request(void *arg, rpc_call *call, const uint8_t *p, size_t len);
/* Entries were applied: requests waiting for them are looked at next
 * iteration. */
void reach_applied(node *n);
/* Answers every waiting request with SHUTDOWN. */
void reach_stop(node *n);

#endif
