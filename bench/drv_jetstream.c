/*
 * drv_jetstream.c — herald-bench driver for NATS JetStream (libnats 3.4): a
 * stream with 3 replicas on a 3-server cluster, sends published with acks.
 *
 * Set-up, on an admin connection of its own (libnats's own threads: its
 * JetStream API calls block for their replies, which the bench loop could
 * not read while it waits): creates stream HB_<group> on subject cfg->group
 * with file storage and num_replicas 3 (retried until the JetStream meta
 * leader answers, within the set-up timeout), and one push consumer per
 * receiver. The member connections run on the bench loop (nats_ev.h).
 *
 * Sends: js_PublishAsync from member 0; the server acks once the stream's
 * raft group has the message on a quorum (2 of 3), and the ack handler
 * (libnats's delivery thread) hands {index, seq} to the loop thread through
 * an ev_async, where bench_ack() / bench_error() run. So throughput and
 * durable measure acked sends/s with a window of sends in flight.
 *
 * Receivers: members-1 push consumers, each with deliver policy new, ack
 * policy none, and its own deliver subject hbdlv.<group>.<i> that only
 * member i subscribes to (a core subscription on that subject). So every
 * delivery is read from the stored stream by a consumer, one consumer per
 * member, as an IM server keeps a read position per member. Not core
 * subscriptions on the stream subject: those would get the publish directly,
 * stored or not. Not libnats's ordered consumers (js_Subscribe): creating a
 * consumer is a blocking API request, which the loop-driven member
 * connections cannot make (see nats_ev.h), and ordered consumers add flow
 * control and heartbeats per consumer. The consumers are R1 and in memory
 * (the state of a cursor with nothing to ack, not the data; the messages are
 * in the R3 file stream); 499 R3 consumers would add 499 raft groups per
 * server. They are created by the admin connection from CREATE_THREADS
 * threads (each create is a request through the meta leader).
 *
 * Durability as configured here: the servers' default sync (nats-server 2.9
 * writes every message to its file store and flushes to disk on its
 * sync_interval, 2 min by default; it has no per-message fsync option): an
 * ack means the message is written on 2 of 3 servers, not fsync'd.
 *
 * Readiness: probes (bench_subscribed()) go the same way as the messages,
 * through the stream and every consumer.
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "nats_ev.h"

/* Threads creating the consumers in parallel on the admin connection. */
#define CREATE_THREADS 8
/* Acks the publisher may have in flight (above any --window). */
#define MAX_PENDING 70000

typedef struct jdrv jdrv;

/* One member connection. */
typedef struct jmember {
    jdrv *d;                 /* owner */
    int idx;                 /* member index; 0 = publisher */
    natsConnection *nc;      /* the connection (on the bench loop) */
    natsSubscription *sub;   /* receivers: core subscription on dsubj */
    char dsubj[200];         /* receivers: the consumer's deliver subject */
    char consumer[64];       /* receivers: the consumer's name, once created */
} jmember;

/* An ack or an error on its way to the loop thread. */
typedef struct jack {
    uint64_t idx;            /* message index (BENCH_PROBE_IDX for a probe) */
    uint64_t seq;            /* stream sequence; 0 with err */
    bool err;                /* the publish failed */
    bool dup;                /* the server saw its message id before */
} jack;

/* The driver state. */
struct jdrv {
    bench *b;                /* the run */
    const bench_config *cfg; /* its parameters */
    natsOptions *opts;       /* member connections: on the bench loop */
    natsOptions *aopts;      /* the admin connection: libnats threads */
    natsConnection *admin;   /* stream and consumer management */
    jsCtx *ajs;              /* JetStream context of admin */
    jsCtx *pjs;              /* JetStream context of member 0 (publishes) */
    char stream[140];        /* stream name */
    bool stream_made;        /* the stream exists (delete it at close) */
    jmember *m;              /* members[] */
    int connected;           /* members connected */
    atomic_int created;      /* consumers created */
    atomic_int next_create;  /* next receiver to create a consumer for */
    atomic_int create_failed; /* a consumer create failed */
    ev_async wake;           /* acks are queued */
    bool wake_started;       /* wake is started on the loop */
    pthread_mutex_t mu;      /* guards q, qlen, qcap */
    jack *q;                 /* acks queued by the delivery thread */
    size_t qlen, qcap;
    atomic_uint_fast64_t async_errors; /* error-handler calls (slow consumer, ...) */
    atomic_uint_fast64_t pub_errors;   /* negative publish acks */
};

static int js_fail(const char *what, natsStatus s, jsErrCode jerr)
{
    fprintf(stderr, "herald-bench: jetstream: %s: %s (JetStream error %d)\n", what,
            natsStatus_GetText(s), (int)jerr);
    nats_PrintLastErrorStack(stderr);
    return -1;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Delivery thread: a receiver's message from its consumer. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    jmember *m = closure;
    (void)nc;
    (void)sub;
    bench_deliver(m->d->b, m->idx, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

/* Delivery thread: the ack (or error) of one async publish. */
static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    jdrv *d = closure;
    jack a = {.idx = BENCH_NO_IDX};
    (void)js;

    if (msg && natsMsg_GetDataLength(msg) >= (int)BENCH_BODY_HDR)
        a.idx = get_u64((const uint8_t *)natsMsg_GetData(msg) + 8);
    if (pa) {
        a.seq = pa->Sequence;
        a.dup = pa->Duplicate;
    } else {
        a.err = true;
        if (atomic_fetch_add(&d->pub_errors, 1) < 5)
            fprintf(stderr, "herald-bench: jetstream: publish failed: %s (%d) %s\n",
                    pae ? natsStatus_GetText(pae->Err) : "?", pae ? (int)pae->ErrCode : 0,
                    pae && pae->ErrText ? pae->ErrText : "");
    }
    natsMsg_Destroy(msg);
    pthread_mutex_lock(&d->mu);
    if (d->qlen == d->qcap) {
        size_t cap = d->qcap ? d->qcap * 2 : 1024;
        jack *q = realloc(d->q, cap * sizeof *q);
        if (!q) {
            pthread_mutex_unlock(&d->mu);
            bench_die("out of memory");
        }
        d->q = q;
        d->qcap = cap;
    }
    d->q[d->qlen++] = a;
    pthread_mutex_unlock(&d->mu);
    ev_async_send(d->cfg->loop, &d->wake);
}

/* Loop thread: hands the queued acks to the core. */
static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    jdrv *d = w->data;
    jack *q;
    size_t n;
    (void)loop;
    (void)revents;

    pthread_mutex_lock(&d->mu);
    q = d->q;
    n = d->qlen;
    d->q = NULL;
    d->qlen = d->qcap = 0;
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < n; i++) {
        if (q[i].idx == BENCH_PROBE_IDX)
            continue;
        if (!q[i].err) {
            bench_ack(d->b, q[i].idx, 0, q[i].seq, q[i].dup);
        } else if (bench_error(d->b, q[i].idx, 0)) {
            free(q);
            bench_die("jetstream: a publish failed during set-up");
        }
    }
    free(q);
}

/* A libnats thread. */
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                           void *closure)
{
    jdrv *d = closure;
    (void)nc;
    (void)sub;
    if (atomic_fetch_add(&d->async_errors, 1) < 5)
        fprintf(stderr, "herald-bench: jetstream: async error: %s\n", natsStatus_GetText(err));
}

/* Creates the R3 stream, retrying while the cluster is not ready yet
 * (no meta leader, not enough peers) until deadline_ns. */
static int make_stream(jdrv *d, uint64_t deadline_ns)
{
    const char *subjects[1] = {d->cfg->group};
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    int tries = 0;

    jsStreamConfig_Init(&sc);
    sc.Name = d->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = 3;
    for (;;) {
        jerr = 0;
        s = js_AddStream(&si, d->ajs, &sc, NULL, &jerr);
        tries++;
        if (s == NATS_OK)
            break;
        if (bench_now_ns() >= deadline_ns)
            return js_fail("create stream (3 replicas)", s, jerr);
        nats_Sleep(250);
    }
    jsStreamInfo_Destroy(si);
    d->stream_made = true;
    if (tries > 1)
        fprintf(stderr, "herald-bench: jetstream: stream %s created after %d tries\n", d->stream,
                tries);
    return 0;
}

/* A creator thread: push consumers for receivers taken from next_create. */
static void *create_consumers(void *arg)
{
    jdrv *d = arg;
    int i;

    while ((i = atomic_fetch_add(&d->next_create, 1)) < d->cfg->members) {
        jmember *m = &d->m[i];
        jsConsumerConfig cc;
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        natsStatus s = NATS_OK;

        if (atomic_load(&d->create_failed))
            break;
        jsConsumerConfig_Init(&cc);
        cc.DeliverSubject = m->dsubj;
        cc.DeliverPolicy = js_DeliverNew;
        cc.AckPolicy = js_AckNone;
        cc.Replicas = 1;
        cc.MemoryStorage = true;
        /* A few tries: a create can time out while the meta leader is busy. */
        for (int t = 0; t < 5; t++) {
            s = js_AddConsumer(&ci, d->ajs, d->stream, &cc, NULL, &jerr);
            if (s == NATS_OK)
                break;
            nats_Sleep(200);
        }
        if (s != NATS_OK) {
            atomic_store(&d->create_failed, 1);
            js_fail("create consumer", s, jerr);
            break;
        }
        if (ci && ci->Name)
            snprintf(m->consumer, sizeof m->consumer, "%s", ci->Name);
        jsConsumerInfo_Destroy(ci);
        atomic_fetch_add(&d->created, 1);
    }
    return NULL;
}

static void jdrv_close(void *drv);

static int jdrv_setup(bench *b, const bench_config *cfg, void **out)
{
    jdrv *d = calloc(1, sizeof *d);
    pthread_t th[CREATE_THREADS];
    int nth = 0;
    char url[300];
    jsOptions jo;
    natsStatus s;
    uint64_t deadline = bench_now_ns() + (uint64_t)(cfg->setup_timeout * 0.8 * 1e9);

    if (!d)
        return -1;
    d->b = b;
    d->cfg = cfg;
    pthread_mutex_init(&d->mu, NULL);
    atomic_init(&d->created, 0);
    atomic_init(&d->next_create, 1);
    atomic_init(&d->create_failed, 0);
    atomic_init(&d->async_errors, 0);
    atomic_init(&d->pub_errors, 0);
    ev_async_init(&d->wake, on_wake);
    d->wake.data = d;
    ev_async_start(cfg->loop, &d->wake);
    d->wake_started = true;
    snprintf(d->stream, sizeof d->stream, "HB_%s", cfg->group);
    d->m = calloc((size_t)cfg->members, sizeof *d->m);
    if (!d->m)
        goto fail;
    snprintf(url, sizeof url, "nats://%s:%u", cfg->host, cfg->port);

    /* The admin connection and the stream. */
    s = natsOptions_Create(&d->aopts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(d->aopts, url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(d->aopts, 5000);
    if (s == NATS_OK)
        s = natsConnection_Connect(&d->admin, d->aopts);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&d->ajs, d->admin, NULL);
    if (s != NATS_OK) {
        js_fail("admin connection", s, 0);
        goto fail;
    }
    if (make_stream(d, deadline) != 0)
        goto fail;

    /* The members, each receiver subscribed to its deliver subject. */
    s = nats_ev_options(&d->opts, cfg->loop, url, on_async_error, d);
    if (s != NATS_OK) {
        js_fail("options", s, 0);
        goto fail;
    }
    for (int i = 0; i < cfg->members; i++) {
        jmember *m = &d->m[i];
        m->d = d;
        m->idx = i;
        s = natsConnection_Connect(&m->nc, d->opts);
        if (s != NATS_OK) {
            js_fail("connect", s, 0);
            goto fail;
        }
        d->connected++;
        if (i == 0)
            continue;
        snprintf(m->dsubj, sizeof m->dsubj, "hbdlv.%s.%d", cfg->group, i);
        s = natsConnection_Subscribe(&m->sub, m->nc, m->dsubj, on_msg, m);
        if (s == NATS_OK) /* the server, not the client, queues for a slow reader */
            s = natsSubscription_SetPendingLimits(m->sub, -1, -1);
        if (s != NATS_OK) {
            js_fail("subscribe", s, 0);
            goto fail;
        }
    }

    /* One push consumer per receiver. */
    for (nth = 0; nth < CREATE_THREADS && nth < cfg->members - 1; nth++)
        if (pthread_create(&th[nth], NULL, create_consumers, d) != 0)
            break;
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    if (atomic_load(&d->create_failed) || atomic_load(&d->created) != cfg->members - 1) {
        fprintf(stderr, "herald-bench: jetstream: %d of %d consumers created\n",
                atomic_load(&d->created), cfg->members - 1);
        goto fail;
    }

    /* The publisher's context: async publishes with an ack handler. */
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = MAX_PENDING;
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = d;
    s = natsConnection_JetStream(&d->pjs, d->m[0].nc, &jo);
    if (s != NATS_OK) {
        js_fail("publisher context", s, 0);
        goto fail;
    }
    *out = d;
    bench_subscribed(b);
    return 0;
fail:
    jdrv_close(d);
    return -1;
}

static int jdrv_publish(void *drv, const uint8_t *body, size_t len, uint64_t idx)
{
    jdrv *d = drv;
    natsStatus s = js_PublishAsync(d->pjs, d->cfg->group, body, (int)len, NULL);
    (void)idx;
    return s == NATS_OK ? 0 : -1;
}

static void jdrv_status(void *drv, char *buf, size_t size)
{
    jdrv *d = drv;
    snprintf(buf, size, "stream %s, %d/%d connected, %d/%d consumers",
             d->stream_made ? "made" : "not made", d->connected, d->cfg->members,
             atomic_load(&d->created), d->cfg->members - 1);
}

static void jdrv_report(void *drv, char *buf, size_t size)
{
    jdrv *d = drv;
    snprintf(buf, size, ",\"stream\":\"%s\",\"replicas\":3,\"storage\":\"file\",\"consumers\":%d,"
             "\"consumer_kind\":\"push, deliver new, ack none, R1 memory, one per receiver\","
             "\"pub_ack_errors\":%llu",
             d->stream, atomic_load(&d->created),
             (unsigned long long)atomic_load(&d->pub_errors));
}

static void jdrv_close(void *drv)
{
    jdrv *d = drv;
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
    jsCtx_Destroy(d->pjs);
    for (int i = 0; d->m && i < d->cfg->members; i++) {
        natsSubscription_Destroy(d->m[i].sub);
        natsConnection_Destroy(d->m[i].nc);
    }
    /* Deleting the stream deletes its consumers: the servers are left as
     * they were for the next run. */
    if (d->stream_made) {
        jsErrCode jerr = 0;
        natsStatus s = js_DeleteStream(d->ajs, d->stream, NULL, &jerr);
        if (s != NATS_OK)
            js_fail("delete stream", s, jerr);
    }
    jsCtx_Destroy(d->ajs);
    if (d->admin)
        natsConnection_Close(d->admin);
    natsConnection_Destroy(d->admin);
    natsOptions_Destroy(d->opts);
    natsOptions_Destroy(d->aopts);
    /* Waits for libnats's threads (the delivery pool included): no callback
     * can run after this. */
    nats_CloseAndWait(5000);
    if (d->wake_started)
        ev_async_stop(d->cfg->loop, &d->wake);
    if (dropped || atomic_load(&d->async_errors))
        fprintf(stderr, "herald-bench: jetstream: %lld messages dropped by the client, %llu async errors\n",
                (long long)dropped, (unsigned long long)atomic_load(&d->async_errors));
    free(d->q);
    pthread_mutex_destroy(&d->mu);
    free(d->m);
    free(d);
}

const bench_driver bench_drv_jetstream = {
    .name = "jetstream",
    .throughput = true,
    .durability = "file store R3, ack after quorum (2 of 3 wrote it; flushed on the 2-min sync_interval, no per-message fsync)",
    .setup = jdrv_setup,
    .publish = jdrv_publish,
    .status = jdrv_status,
    .report = jdrv_report,
    .close = jdrv_close,
};
