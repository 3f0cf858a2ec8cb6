/*
 * drv_nats.c — herald-bench driver for NATS core pub/sub (libnats 3.4).
 *
 * One natsConnection per member: member 0 publishes on subject cfg->group,
 * members 1..M-1 subscribe to it. The sockets are driven by the bench's libev
 * loop (nats_ev.h), so there is no read thread per connection; messages are
 * handed to callbacks by libnats's global delivery pool (one thread by
 * default) instead of a thread per subscription. bench_deliver() is called
 * on that thread.
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
#include "nats_ev.h"

typedef struct ndrv ndrv;

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
    s = nats_ev_options(&d->opts, cfg->loop, url, on_async_error, d);
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
    .durability = "memory only: nothing stored, no acks",
    .setup = ndrv_setup,
    .publish = ndrv_publish,
    .status = ndrv_status,
    .close = ndrv_close,
};
