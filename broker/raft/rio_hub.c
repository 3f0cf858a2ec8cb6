/*
 * rio_hub.c — the node-level hub: owns the store, the transport, the tick
 * timer, the deferred-call queue and the gid → port table; dispatches
 * received frames and ticks to the groups' ports. See rio.h.
 *
 * Floor: below the group io (rio_io.c) and the driver (rio_group.c), which
 * register with it (a rio_port per group io, the rio_driver slot); it
 * calls only the store, the transport and the codec, and what they filled
 * in (see rio_int.h, "Floors").
 */
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmap.h"
#include "log.h"
#include "rio_int.h"

/* A deferred call. */
typedef struct dcall {
    struct dcall *next; /* link */
    rio_defer_fn fn;    /* what to run */
    void *arg;          /* its argument */
} dcall;

struct rio_hub {
    struct ev_loop *loop;     /* the loop everything runs on */
    uint64_t node_id;         /* our raft server id */
    rio_store *store;         /* LMDB + writer */
    rio_net *net;             /* nng transport */
    hmap *ports;              /* gid (4 bytes BE) → rio_port (the group io's, borrowed) */
    ev_timer tick;            /* drives every started group */
    ev_async defer_wake;      /* runs the deferred queue */
    dcall *dq_head, *dq_tail; /* deferred calls (FIFO) */
    uint64_t rng;             /* xorshift state for io->random */
    rio_driver driver;        /* the driver's slot (rio_group.c fills it in) */
};

rio_driver *rio_hub_driver(rio_hub *h)
{
    return &h->driver;
}

rio_store *rio_hub_store(rio_hub *h) { return h->store; }
rio_net *rio_hub_net(rio_hub *h) { return h->net; }
struct ev_loop *rio_hub_loop(rio_hub *h) { return h->loop; }
uint64_t rio_hub_node_id(const rio_hub *h) { return h->node_id; }
const char *rio_hub_address(const rio_hub *h) { return rio_net_url(h->net); }

raft_time rio_hub_time(rio_hub *h)
{
    struct timespec ts;
    (void)h;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (raft_time)ts.tv_sec * 1000 + (raft_time)ts.tv_nsec / 1000000;
}

int rio_hub_random(rio_hub *h, int min, int max)
{
    uint64_t x = h->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    h->rng = x;
    if (max <= min)
        return min;
    return min + (int)(x % (uint64_t)((int64_t)max - min + 1));
}

int rio_hub_attach(rio_hub *h, uint32_t gid, rio_port *port)
{
    uint8_t k[4];
    rio_put32(k, gid);
    if (hmap_get(h->ports, k, sizeof k))
        return HERALD_EEXISTS;
    return hmap_put(h->ports, k, sizeof k, port);
}

void rio_hub_detach(rio_hub *h, uint32_t gid)
{
    uint8_t k[4];
    rio_put32(k, gid);
    hmap_del(h->ports, k, sizeof k);
}

/* ---- deferred calls --------------------------------------------------------- */

int rio_defer(rio_hub *h, rio_defer_fn fn, void *arg)
{
    dcall *d = malloc(sizeof *d);
    if (!d)
        return HERALD_ENOMEM;
    d->next = NULL;
    d->fn = fn;
    d->arg = arg;
    if (h->dq_tail)
        h->dq_tail->next = d;
    else
        h->dq_head = d;
    h->dq_tail = d;
    ev_async_send(h->loop, &h->defer_wake);
    return 0;
}

static void on_defer(struct ev_loop *loop, ev_async *w, int revents)
{
    rio_hub *h = w->data;
    dcall *d = h->dq_head, *next;

    /* Run what is queued now; calls queued meanwhile re-arm the watcher. */
    h->dq_head = h->dq_tail = NULL;
    for (; d; d = next) {
        next = d->next;
        d->fn(d->arg);
        free(d);
    }
}

/* ---- tick and receive -------------------------------------------------------- */

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    rio_hub *h = w->data;
    size_t i = 0, n = hmap_count(h->ports), k = 0;
    rio_port *stack[64], **list = stack;
    const void *key;
    size_t kl;
    void *v;

    /* Snapshot the table: a tick may close a group (raft on fatal error). */
    if (n > 64 && !(list = malloc(n * sizeof *list)))
        return;
    while (k < n && (i = hmap_next(h->ports, i, &key, &kl, &v)) != (size_t)-1) {
        list[k++] = v;
        i++;
    }
    for (i = 0; i < k; i++)
        list[i]->tick(list[i]->arg);
    if (list != stack)
        free(list);
}

static void on_frame(void *arg, rio_frame *f)
{
    rio_hub *h = arg;
    uint64_t delivered = 0, orphaned = 0;
    size_t i;

    for (i = 0; i < f->n; i++) {
        rio_rec *r = &f->recs[i];
        uint8_t k[4];
        rio_port *p;
        if (r->msg.type == 0) /* a transport record the net consumed */
            continue;
        rio_put32(k, r->gid);
        p = hmap_get(h->ports, k, sizeof k);
        r->msg.server_address = f->sender_addr;
        if (p && p->deliver(p->arg, &r->msg)) {
            r->msg.type = 0; /* raft owns its parts now */
            delivered++;
        } else {
            orphaned++;
        }
    }
    rio_net_count(h->net, delivered, orphaned);
    rio_frame_free(f);
}

/* ---- lifecycle --------------------------------------------------------------- */

int rio_hub_create(struct ev_loop *loop, const rio_hub_config *cfg, rio_hub **out)
{
    rio_hub *h;
    int rc;

    if (!loop || !cfg || cfg->node_id == 0 || !cfg->listen_url || !cfg->data_dir)
        return HERALD_EINVAL;
    h = calloc(1, sizeof *h);
    if (!h)
        return HERALD_ENOMEM;
    h->loop = loop;
    h->node_id = cfg->node_id;
    h->rng = (cfg->node_id * 0x9E3779B97F4A7C15ull) ^ rio_hub_time(h) ^ (uintptr_t)h;
    if (h->rng == 0)
        h->rng = 1;
    if ((rc = hmap_create(&h->ports)) != 0)
        goto fail_alloc;
    if ((rc = rio_store_open(loop, cfg->data_dir, cfg->map_size, &h->store)) != 0)
        goto fail_ports;
    if (cfg->commit_observe)
        rio_store_observe(h->store, cfg->commit_observe, cfg->commit_arg);
    if ((rc = rio_net_open(loop, cfg->listen_url, cfg->node_id,
                           cfg->max_msg ? cfg->max_msg : ((size_t)64 << 20), cfg->tls, on_frame,
                           h, &h->net)) != 0)
        goto fail_store;
    ev_async_init(&h->defer_wake, on_defer);
    h->defer_wake.data = h;
    ev_async_start(loop, &h->defer_wake);
    ev_timer_init(&h->tick, on_tick, 0., (cfg->tick_ms ? cfg->tick_ms : 50) / 1000.);
    h->tick.data = h;
    ev_timer_again(loop, &h->tick);
    *out = h;
    return 0;

fail_store:
    rio_store_close(h->store);
fail_ports:
    hmap_destroy(h->ports);
fail_alloc:
    free(h);
    return rc;
}

void rio_hub_destroy(rio_hub *h)
{
    if (!h)
        return;
    if (h->driver.close)
        h->driver.close(h); /* runs the loop until every group closed */
    if (hmap_count(h->ports) > 0)
        log_warn("rio.destroy", "%zu raw raft_io still open at hub destroy", hmap_count(h->ports));
    rio_net_close(h->net);
    rio_store_close(h->store);
    on_defer(h->loop, &h->defer_wake, 0);
    ev_timer_stop(h->loop, &h->tick);
    ev_async_stop(h->loop, &h->defer_wake);
    hmap_destroy(h->ports);
    free(h);
}

void rio_hub_stats(const rio_hub *h, rio_stats *out)
{
    memset(out, 0, sizeof *out);
    rio_store_stats(h->store, out);
    rio_net_stats(h->net, out);
}
