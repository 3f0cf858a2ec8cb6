/*
 * drv_nats.c — herald-bench driver for NATS core pub/sub (libnats 3.4).
 *
 * One natsConnection per member: member 0 publishes on subject cfg->group,
 * members 1..M-1 subscribe to it. The sockets are driven by the bench's libev
 * loop through a small event-loop adapter (libnats ships adapters only for
 * libevent and libuv), so there is no read thread per connection; messages
 * are handed to callbacks by libnats's global delivery pool
 * (natsOptions_UseGlobalMessageDelivery, one thread by default) instead of a
 * thread per subscription. bench_deliver() is called on that thread.
 *
 * NATS does not confirm a SUB, so the run starts with readiness probes
 * (bench_subscribed()). Slow-consumer drops are counted from the error
 * handler and the subscriptions' dropped counters, and show up as lost.
 */
#include <nats/nats.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

typedef struct ndrv ndrv;

/* The libev side of one connection, created by the attach callback. */
typedef struct nev {
    struct ev_loop *loop;    /* the bench loop */
    natsConnection *nc;      /* the connection whose socket this is */
    ev_io rio;               /* read interest */
    ev_io wio;               /* write interest */
} nev;

/* One member connection. */
typedef struct nmember {
    ndrv *d;                 /* owner */
    int idx;                 /* member index; 0 = publisher */
    natsConnection *nc;      /* the connection */
    natsSubscription *sub;   /* receivers: the subscription */
} nmember;

/* The driver state. */
struct ndrv {
    bench *b;                /* the run */
    const bench_config *cfg; /* its parameters */
    natsOptions *opts;       /* shared connection options */
    nmember *m;              /* members[] */
    int connected;           /* members connected */
    atomic_uint_fast64_t async_errors; /* error-handler calls (slow consumer, ...) */
};

/* --- libev adapter. libev is not thread-safe, so every adapter call must
 *     come from the loop thread: SendAsap makes publishes and SUBs flush on
 *     the caller's thread (the flusher thread would otherwise ask for write
 *     events), PINGs are off (the timer thread would) and so are reconnects. */

static void nev_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    nev *e = w->data;
    (void)loop;
    (void)revents;
    natsConnection_ProcessReadEvent(e->nc);
}

static void nev_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    nev *e = w->data;
    (void)loop;
    (void)revents;
    natsConnection_ProcessWriteEvent(e->nc);
}

static natsStatus nev_attach(void **user, void *loop, natsConnection *nc, natsSock sock)
{
    nev *e = *user;

    if (e) /* a reconnect; reconnects are disabled */
        return NATS_ILLEGAL_STATE;
    e = calloc(1, sizeof *e);
    if (!e)
        return NATS_NO_MEMORY;
    e->loop = loop;
    e->nc = nc;
    ev_io_init(&e->rio, nev_on_read, sock, EV_READ);
    ev_io_init(&e->wio, nev_on_write, sock, EV_WRITE);
    e->rio.data = e->wio.data = e;
    ev_io_start(e->loop, &e->rio); /* attach starts read polling (nats.h) */
    *user = e;
    return NATS_OK;
}

static natsStatus nev_read(void *user, bool add)
{
    nev *e = user;
    if (add)
        ev_io_start(e->loop, &e->rio);
    else
        ev_io_stop(e->loop, &e->rio);
    return NATS_OK;
}

static natsStatus nev_write(void *user, bool add)
{
    nev *e = user;
    if (add)
        ev_io_start(e->loop, &e->wio);
    else
        ev_io_stop(e->loop, &e->wio);
    return NATS_OK;
}

static natsStatus nev_detach(void *user)
{
    nev *e = user;
    ev_io_stop(e->loop, &e->rio);
    ev_io_stop(e->loop, &e->wio);
    free(e);
    return NATS_OK;
}

/* --- driver */

/* Runs on the global delivery thread. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nmember *m = closure;
    (void)nc;
    (void)sub;
    bench_deliver(m->d->b, m->idx, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

/* Runs on a libnats thread. */
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                           void *closure)
{
    ndrv *d = closure;
    (void)nc;
    (void)sub;
    if (atomic_fetch_add(&d->async_errors, 1) < 5)
        fprintf(stderr, "herald-bench: nats: async error: %s\n", natsStatus_GetText(err));
}

static int nats_fail(const char *what, natsStatus s)
{
    fprintf(stderr, "herald-bench: nats: %s: %s\n", what, natsStatus_GetText(s));
    nats_PrintLastErrorStack(stderr);
    return -1;
}

static void ndrv_close(void *drv);

static int ndrv_setup(bench *b, const bench_config *cfg, void **out)
{
    ndrv *d = calloc(1, sizeof *d);
    char url[300];
    natsStatus s;

    if (!d)
        return -1;
    d->b = b;
    d->cfg = cfg;
    atomic_init(&d->async_errors, 0);
    d->m = calloc((size_t)cfg->members, sizeof *d->m);
    if (!d->m)
        goto fail;
    snprintf(url, sizeof url, "nats://%s:%u", cfg->host, cfg->port);
    s = natsOptions_Create(&d->opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(d->opts, url);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(d->opts, cfg->loop, nev_attach, nev_read, nev_write,
                                     nev_detach);
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(d->opts, true);
    if (s == NATS_OK) /* flush on the caller's (loop) thread, not the flusher thread */
        s = natsOptions_SetSendAsap(d->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(d->opts, false);
    if (s == NATS_OK) /* PINGs would ask for write events from the timer thread */
        s = natsOptions_SetPingInterval(d->opts, 24 * 3600 * 1000);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(d->opts, on_async_error, d);
    if (s != NATS_OK) {
        nats_fail("options", s);
        goto fail;
    }
    for (int i = 0; i < cfg->members; i++) {
        nmember *m = &d->m[i];
        m->d = d;
        m->idx = i;
        s = natsConnection_Connect(&m->nc, d->opts);
        if (s != NATS_OK) {
            nats_fail("connect", s);
            goto fail;
        }
        d->connected++;
        if (i == 0)
            continue;
        s = natsConnection_Subscribe(&m->sub, m->nc, cfg->group, on_msg, m);
        if (s != NATS_OK) {
            nats_fail("subscribe", s);
            goto fail;
        }
    }
    *out = d;
    bench_subscribed(b);
    return 0;
fail:
    ndrv_close(d);
    return -1;
}

static int ndrv_publish(void *drv, const uint8_t *body, size_t len, uint64_t idx)
{
    ndrv *d = drv;
    natsStatus s = natsConnection_Publish(d->m[0].nc, d->cfg->group, body, (int)len);
    (void)idx;
    return s == NATS_OK ? 0 : -1;
}

static void ndrv_status(void *drv, char *buf, size_t size)
{
    ndrv *d = drv;
    snprintf(buf, size, "%d/%d connected", d->connected, d->cfg->members);
}

static void ndrv_close(void *drv)
{
    ndrv *d = drv;
    int64_t dropped = 0;

    if (!d)
        return;
    for (int i = 0; d->m && i < d->cfg->members; i++) {
        int64_t n = 0;
        if (d->m[i].sub && natsSubscription_GetDropped(d->m[i].sub, &n) == NATS_OK)
            dropped += n;
        if (d->m[i].nc)
            natsConnection_Close(d->m[i].nc);
    }
    for (int i = 0; d->m && i < d->cfg->members; i++) {
        natsSubscription_Destroy(d->m[i].sub);
        natsConnection_Destroy(d->m[i].nc);
    }
    natsOptions_Destroy(d->opts);
    /* Waits for libnats's threads (the delivery pool included): no callback
     * can run after this. */
    nats_CloseAndWait(5000);
    if (dropped || atomic_load(&d->async_errors))
        fprintf(stderr, "herald-bench: nats: %lld messages dropped by the client, %llu async errors\n",
                (long long)dropped, (unsigned long long)atomic_load(&d->async_errors));
    free(d->m);
    free(d);
}

const bench_driver bench_drv_nats = {
    .name = "nats",
    .throughput = false,
    .setup = ndrv_setup,
    .publish = ndrv_publish,
    .status = ndrv_status,
    .close = ndrv_close,
};
