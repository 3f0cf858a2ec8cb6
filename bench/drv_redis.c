/*
 * drv_redis.c — herald-bench driver for Redis pub/sub (hiredis 0.14 async API
 * on the bench's libev loop through hiredis's own libev adapter).
 *
 * One connection per member: member 0 PUBLISHes on channel cfg->group,
 * members 1..M-1 SUBSCRIBE to it (hiredis sets TCP_NODELAY). Everything runs
 * on the loop thread. The run starts once the publisher is connected and
 * every subscriber has its subscribe confirmation.
 */
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct rdrv rdrv;

/* One member connection. */
typedef struct rmember {
    rdrv *d;                 /* owner */
    int idx;                 /* member index; 0 = publisher */
    redisAsyncContext *ac;   /* the connection; NULL once hiredis freed it */
    bool connected;          /* connect callback reported success */
    bool subscribed;         /* receivers: subscribe confirmed */
} rmember;

/* The driver state. */
struct rdrv {
    bench *b;                /* the run */
    const bench_config *cfg; /* its parameters */
    rmember *m;              /* members[] */
    int connected;           /* connections established */
    int subscribed;          /* subscriptions confirmed */
    int lost;                /* connections lost */
    uint64_t pub_errors;     /* PUBLISH replies that were errors */
    long long min_receivers; /* smallest PUBLISH reply (subscribers reached); -1 none yet */
    bool ready;              /* bench_ready() called */
    bool closing;            /* in rdrv_close: disconnects are expected */
};

static void maybe_ready(rdrv *d)
{
    if (d->ready || !d->m[0].connected || d->subscribed < d->cfg->members - 1)
        return;
    d->ready = true;
    bench_ready(d->b);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rmember *m = ac->data;
    if (status != REDIS_OK) {
        fprintf(stderr, "herald-bench: redis: member %d: connect: %s\n", m->idx, ac->errstr);
        exit(1);
    }
    m->connected = true;
    m->d->connected++;
    maybe_ready(m->d);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rmember *m = ac->data;
    m->ac = NULL; /* hiredis frees the context after this callback */
    if (m->d->closing)
        return;
    m->d->lost++;
    if (m->d->lost <= 5)
        fprintf(stderr, "herald-bench: redis: member %d disconnected: %s\n", m->idx,
                status == REDIS_OK ? "by request" : ac->errstr);
}

/* Every reply on a subscriber connection: the confirmation, then messages. */
static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    rmember *m = priv;
    redisReply *reply = r;
    (void)ac;

    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(reply->element[0]->str, "message") == 0) {
        bench_deliver(m->d->b, m->idx, reply->element[2]->str, reply->element[2]->len);
    } else if (strcmp(reply->element[0]->str, "subscribe") == 0 && !m->subscribed) {
        m->subscribed = true;
        m->d->subscribed++;
        maybe_ready(m->d);
    }
}

static void on_pub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    rdrv *d = priv;
    redisReply *reply = r;
    (void)ac;

    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_INTEGER) {
        if (d->min_receivers < 0 || reply->integer < d->min_receivers)
            d->min_receivers = reply->integer;
    } else if (d->pub_errors++ < 5) {
        fprintf(stderr, "herald-bench: redis: PUBLISH: %s\n",
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
}

static void rdrv_close(void *drv);

static int rdrv_setup(bench *b, const bench_config *cfg, void **out)
{
    rdrv *d = calloc(1, sizeof *d);

    if (!d)
        return -1;
    d->b = b;
    d->cfg = cfg;
    d->min_receivers = -1;
    d->m = calloc((size_t)cfg->members, sizeof *d->m);
    if (!d->m)
        goto fail;
    for (int i = 0; i < cfg->members; i++) {
        rmember *m = &d->m[i];
        m->d = d;
        m->idx = i;
        m->ac = redisAsyncConnect(cfg->host, cfg->port);
        if (!m->ac || m->ac->err) {
            fprintf(stderr, "herald-bench: redis: connect %s:%u: %s\n", cfg->host, cfg->port,
                    m->ac ? m->ac->errstr : "out of memory");
            if (m->ac)
                redisAsyncFree(m->ac);
            m->ac = NULL;
            goto fail;
        }
        m->ac->data = m;
        if (redisLibevAttach(cfg->loop, m->ac) != REDIS_OK) {
            fprintf(stderr, "herald-bench: redis: cannot attach to the loop\n");
            goto fail;
        }
        redisAsyncSetConnectCallback(m->ac, on_connect);
        redisAsyncSetDisconnectCallback(m->ac, on_disconnect);
        if (i > 0 &&
            redisAsyncCommand(m->ac, on_sub_reply, m, "SUBSCRIBE %s", cfg->group) != REDIS_OK) {
            fprintf(stderr, "herald-bench: redis: SUBSCRIBE: %s\n", m->ac->errstr);
            goto fail;
        }
    }
    *out = d;
    return 0;
fail:
    rdrv_close(d);
    return -1;
}

static int rdrv_publish(void *drv, const uint8_t *body, size_t len, uint64_t idx)
{
    rdrv *d = drv;
    rmember *m = &d->m[0];
    (void)idx;

    if (!m->ac)
        return -1;
    return redisAsyncCommand(m->ac, on_pub_reply, d, "PUBLISH %s %b", d->cfg->group, body,
                             len) == REDIS_OK ? 0 : -1;
}

static void rdrv_status(void *drv, char *buf, size_t size)
{
    rdrv *d = drv;
    snprintf(buf, size, "%d/%d connected, %d/%d subscribed, %d lost", d->connected,
             d->cfg->members, d->subscribed, d->cfg->members - 1, d->lost);
}

static void rdrv_close(void *drv)
{
    rdrv *d = drv;
    if (!d)
        return;
    d->closing = true;
    for (int i = 0; d->m && i < d->cfg->members; i++) {
        if (d->m[i].ac)
            redisAsyncFree(d->m[i].ac); /* reply callbacks run with NULL */
        d->m[i].ac = NULL;
    }
    if (d->lost || d->pub_errors)
        fprintf(stderr, "herald-bench: redis: %d connections lost, %llu PUBLISH errors\n",
                d->lost, (unsigned long long)d->pub_errors);
    if (d->min_receivers >= 0 && d->min_receivers < d->cfg->members - 1)
        fprintf(stderr, "herald-bench: redis: a PUBLISH reached only %lld subscribers\n",
                d->min_receivers);
    free(d->m);
    free(d);
}

const bench_driver bench_drv_redis = {
    .name = "redis",
    .throughput = false,
    .durability = "memory only: pub/sub, nothing stored",
    .setup = rdrv_setup,
    .publish = rdrv_publish,
    .status = rdrv_status,
    .close = rdrv_close,
};
