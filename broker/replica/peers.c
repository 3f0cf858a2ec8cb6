/* peers.c — see peers.h. */
#include "peers.h"

#include <herald/error.h>
#include <stdlib.h>

#include "log.h"
#include "nodecfg.h"
#include "nwire.h"

#define PEERS_PROBE_S 1.0 /* between probes of the down (and the quiet) nodes */
#define PEERS_FRESH_S 5.0 /* an answer this recent counts for peers_fresh */

/* One node. */
typedef struct peer {
    peers *owner;   /* back pointer for the probe's callback */
    uint32_t index; /* in rpc[] */
    bool down;      /* the last request failed; up again when it answers */
    bool probing;   /* a probe is in flight */
    ev_tstamp last_ok; /* when it last answered (0: never) */
} peer;

struct peers {
    struct ev_loop *loop;                /* the gateway's loop */
    rpc_client *const *rpc;              /* per node (borrowed) */
    uint32_t n;                          /* nodes */
    unsigned timeout_ms;                 /* a probe's deadline */
    uint32_t gw;                         /* the probing gateway's id */
    peer p[NODECFG_MAX_MEMBERS];         /* per node */
    ev_timer probe;                      /* every PEERS_PROBE_S */
};

static void probe_done(void *arg, int status, const uint8_t *data, size_t len)
{
    peer *e = arg;
    (void)data;
    (void)len;
    e->probing = false;
    if (status == 0)
        peers_answered(e->owner, e->index);
}

static void probe_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    peers *p = w->data;
    nw_request q = {.kind = NW_STATUS, .gw = p->gw};
    herald_buf b = {0};
    (void)loop;
    (void)revents;
    if (nw_request_encode(&q, &b) != 0)
        return;
    for (uint32_t i = 0; i < p->n; i++) {
        peer *e = &p->p[i];
        /* Down nodes, to see them back; quiet ones, so that peers_fresh
         * notices a node gone while no request went its way. A failed
         * probe of an up node does not mark it down (requests do). */
        bool quiet = ev_now(p->loop) - e->last_ok >= PEERS_PROBE_S;
        if ((e->down || quiet) && !e->probing &&
            rpc_send(p->rpc[i], b.data, b.len, p->timeout_ms, probe_done, e) == 0)
            e->probing = true;
    }
    herald_buf_free(&b);
}

int peers_create(struct ev_loop *loop, rpc_client *const *rpc, uint32_t n, unsigned timeout_ms,
                 uint32_t gw, peers **out)
{
    peers *p = calloc(1, sizeof *p);
    if (!p)
        return HERALD_ENOMEM;
    p->loop = loop;
    p->rpc = rpc;
    p->n = n < NODECFG_MAX_MEMBERS ? n : NODECFG_MAX_MEMBERS;
    p->timeout_ms = timeout_ms;
    p->gw = gw;
    for (uint32_t i = 0; i < p->n; i++)
        p->p[i] = (peer){.owner = p, .index = i};
    ev_timer_init(&p->probe, probe_cb, PEERS_PROBE_S, PEERS_PROBE_S);
    p->probe.data = p;
    ev_timer_start(loop, &p->probe);
    ev_unref(loop); /* the probe alone keeps no loop running */
    *out = p;
    return 0;
}

void peers_destroy(peers *p)
{
    if (!p)
        return;
    ev_ref(p->loop);
    ev_timer_stop(p->loop, &p->probe);
    free(p);
}

void peers_failed(peers *p, uint32_t i)
{
    if (i >= p->n || p->p[i].down)
        return;
    p->p[i].down = true;
    log_warn("front.peer", "member %u unreachable; %u of %u reachable%s", i,
             peers_reachable(p), p->n, peers_quorum(p) ? "" : ": no quorum");
}

void peers_answered(peers *p, uint32_t i)
{
    if (i < p->n)
        p->p[i].last_ok = ev_now(p->loop);
    if (i >= p->n || !p->p[i].down)
        return;
    p->p[i].down = false;
    log_info("front.peer", "member %u reachable again; %u of %u reachable", i,
             peers_reachable(p), p->n);
}

bool peers_up(const peers *p, uint32_t i) { return i < p->n && !p->p[i].down; }

uint32_t peers_reachable(const peers *p)
{
    uint32_t up = 0;
    for (uint32_t i = 0; i < p->n; i++)
        up += !p->p[i].down;
    return up;
}

bool peers_quorum(const peers *p) { return peers_reachable(p) >= p->n / 2 + 1; }

uint32_t peers_fresh(const peers *p)
{
    uint32_t up = 0;
    ev_tstamp now = ev_now(p->loop);
    for (uint32_t i = 0; i < p->n; i++)
        up += !p->p[i].down && p->p[i].last_ok > 0 && now - p->p[i].last_ok < PEERS_FRESH_S;
    return up;
}

uint32_t peers_count(const peers *p) { return p->n; }
