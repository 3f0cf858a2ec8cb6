/*
 * bench.c — the herald-bench core: pacing, readiness, recording, report.
 *
 * Open loop: sends are scheduled at t0 + i/rate and sent as soon as the loop
 * sees their time has come; each body carries its scheduled time, and a
 * delivery's latency is now − scheduled (so a late sender or a stalled loop
 * shows up in the numbers instead of hiding). See bench.h for the contract
 * with drivers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "hist.h"

/* One benchmark run; created by bench_run(), passed to every driver call. */
struct bench {
    const bench_config *cfg;     /* the run's parameters */
    const bench_driver *drv;     /* the system under test */
    void *dstate;                /* the driver's state */
    struct ev_loop *loop;        /* cfg->loop */
    bool fanout;                 /* scenario is fanout (else throughput) */
    uint64_t receivers;          /* members - 1 */
    uint8_t *body;               /* send buffer, cfg->payload bytes */
    int phase;                   /* 0 set-up, 1 sending, 2 draining, 3 done */
    /* pacing (loop thread) */
    uint64_t t0_ns;              /* first scheduled send */
    uint64_t end_send_ns;        /* when sending stopped */
    uint64_t total;              /* messages to send (fanout) / index cap */
    uint64_t sent;               /* messages handed to the driver */
    uint64_t send_errors;        /* publish() returned -1 */
    uint64_t probes;             /* readiness probes sent */
    uint64_t acked;              /* acks received */
    uint64_t errors;             /* error replies received */
    uint64_t inflight;           /* throughput: outstanding sends */
    uint64_t *sent_at;           /* throughput: send time per index */
    hist ack;                    /* send → ack latency, µs */
    ev_timer tick;               /* send pacing, every 1 ms */
    ev_timer probe;              /* readiness probes, every 20 ms */
    ev_timer stop;               /* end of drain */
    ev_timer deadline;           /* set-up deadline */
    double setup_s;              /* seconds from start to ready */
    uint64_t start_ns;           /* bench_run() start */
    /* recording (any thread, under mu) */
    pthread_mutex_t mu;          /* guards the fields below */
    uint64_t delivered;          /* deliveries counted */
    uint64_t duplicates;         /* deliveries beyond one per receiver */
    uint32_t *per_msg;           /* deliveries per message */
    uint64_t *last_ns;           /* latest delivery latency per message */
    bool *probed;                /* receiver has seen a probe */
    uint64_t n_probed;           /* receivers that have seen a probe */
    hist all;                    /* every delivery latency, µs */
    hist last;                   /* latency to the last member, µs (at finish) */
};

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_die(const char *what)
{
    fprintf(stderr, "herald-bench: %s\n", what);
    exit(1);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void send_one(bench *b, uint64_t idx, uint64_t sched_ns)
{
    put_u64(b->body, sched_ns);
    put_u64(b->body + 8, idx);
    if (b->drv->publish(b->dstate, b->body, b->cfg->payload, idx) != 0)
        b->send_errors++;
    if (idx != BENCH_PROBE_IDX)
        b->sent++;
}

/* Sending is over: stop the pacing timer and give stragglers `drain` s. */
static void begin_drain(bench *b, uint64_t now)
{
    if (b->phase != 1)
        return;
    b->phase = 2;
    b->end_send_ns = now;
    ev_timer_stop(b->loop, &b->tick);
    ev_timer_set(&b->stop, b->cfg->drain, 0);
    ev_timer_start(b->loop, &b->stop);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench *b = w->data;
    uint64_t now = bench_now_ns();
    (void)loop;
    (void)revents;

    if (b->fanout) {
        double period = 1e9 / b->cfg->rate;
        /* Send everything whose scheduled time has come (open loop). */
        while (b->sent < b->total) {
            uint64_t sched = b->t0_ns + (uint64_t)(period * (double)b->sent);
            if (sched > now)
                break;
            send_one(b, b->sent, sched);
        }
        if (b->sent == b->total)
            begin_drain(b, now);
        return;
    }
    /* throughput: keep the window full until the duration is over. */
    if (now - b->t0_ns >= (uint64_t)(b->cfg->duration * 1e9)) {
        begin_drain(b, now);
        return;
    }
    while (b->inflight < b->cfg->window && b->sent < b->total) {
        b->sent_at[b->sent] = now;
        send_one(b, b->sent, now);
        b->inflight++;
    }
}

static void start_sending(bench *b)
{
    if (b->phase != 0)
        return;
    b->phase = 1;
    ev_timer_stop(b->loop, &b->deadline);
    ev_timer_stop(b->loop, &b->probe);
    b->t0_ns = bench_now_ns();
    b->setup_s = (double)(b->t0_ns - b->start_ns) / 1e9;
    ev_timer_init(&b->tick, on_tick, 0.0, 0.001);
    b->tick.data = b;
    ev_timer_start(b->loop, &b->tick);
}

void bench_ready(bench *b)
{
    start_sending(b);
}

static void on_probe(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench *b = w->data;
    uint64_t seen;
    (void)loop;
    (void)revents;

    pthread_mutex_lock(&b->mu);
    seen = b->n_probed;
    pthread_mutex_unlock(&b->mu);
    if (seen == b->receivers) {
        start_sending(b);
        return;
    }
    b->probes++;
    send_one(b, BENCH_PROBE_IDX, bench_now_ns());
}

void bench_subscribed(bench *b)
{
    if (b->phase != 0)
        return;
    ev_timer_init(&b->probe, on_probe, 0.0, 0.02);
    b->probe.data = b;
    ev_timer_start(b->loop, &b->probe);
}

void bench_deliver(bench *b, int member, const void *body, size_t len)
{
    uint64_t now = bench_now_ns(), sched, idx, lat;

    if (member < 1 || (uint64_t)member > b->receivers || len < BENCH_BODY_HDR)
        return;
    sched = get_u64(body);
    idx = get_u64((const uint8_t *)body + 8);
    pthread_mutex_lock(&b->mu);
    if (idx == BENCH_PROBE_IDX) {
        if (!b->probed[member - 1]) {
            b->probed[member - 1] = true;
            b->n_probed++;
        }
    } else if (idx < b->total && sched <= now) {
        lat = now - sched;
        if (b->per_msg[idx] >= b->receivers) {
            b->duplicates++;
        } else {
            hist_record(&b->all, lat / 1000u);
            b->delivered++;
            b->per_msg[idx]++;
            if (lat > b->last_ns[idx])
                b->last_ns[idx] = lat;
        }
    }
    pthread_mutex_unlock(&b->mu);
}

void bench_ack(bench *b, uint64_t idx)
{
    b->acked++;
    if (b->inflight)
        b->inflight--;
    if (b->sent_at && idx < b->total)
        hist_record(&b->ack, (bench_now_ns() - b->sent_at[idx]) / 1000u);
    if (!b->fanout && b->phase == 1)
        on_tick(b->loop, &b->tick, 0);
}

bool bench_error(bench *b)
{
    b->errors++;
    if (b->inflight)
        b->inflight--;
    return b->phase == 0;
}

uint64_t bench_errors(const bench *b)
{
    return b->errors;
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench *b = w->data;
    (void)revents;
    b->phase = 3;
    ev_break(loop, EVBREAK_ALL);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench *b = w->data;
    char st[256] = "";
    (void)loop;
    (void)revents;
    if (b->drv->status)
        b->drv->status(b->dstate, st, sizeof st);
    pthread_mutex_lock(&b->mu);
    fprintf(stderr, "herald-bench: %s: set-up did not finish in %.0f s (%s; %llu/%llu probed)\n",
            b->drv->name, b->cfg->setup_timeout, st, (unsigned long long)b->n_probed,
            (unsigned long long)b->receivers);
    pthread_mutex_unlock(&b->mu);
    exit(1);
}

/* Prints the JSON object. The fields up to acked_per_s are herald-bench's
 * historical ones, in the same order; the rest were added with the drivers. */
static void report(bench *b)
{
    double secs = (double)(b->end_send_ns - b->t0_ns) / 1e9;
    uint64_t expected = b->sent * b->receivers;
    uint64_t complete = 0;
    uint64_t lost;
    struct rusage ru = {0};
    double cpu;

    pthread_mutex_lock(&b->mu);
    for (uint64_t i = 0; i < b->sent; i++) {
        if (b->per_msg[i] == b->receivers) {
            hist_record(&b->last, b->last_ns[i] / 1000u);
            complete++;
        }
    }
    lost = expected - (b->delivered < expected ? b->delivered : expected);
    getrusage(RUSAGE_SELF, &ru); /* the whole process: set-up included */
    cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (secs <= 0)
        secs = 1e-9;
    printf("{\"system\":\"%s\",\"scenario\":\"%s\",\"members\":%d,\"rate\":%.0f,"
           "\"payload\":%u,\"duration_s\":%.2f,"
           "\"p50_us\":%llu,\"p99_us\":%llu,\"p999_us\":%llu,\"max_us\":%llu,"
           "\"last_p50_us\":%llu,\"last_p99_us\":%llu,\"last_max_us\":%llu,"
           "\"ack_p50_us\":%llu,\"ack_p99_us\":%llu,"
           "\"sent\":%llu,\"acked\":%llu,\"errors\":%llu,\"expected\":%llu,"
           "\"delivered\":%llu,\"lost\":%llu,\"deliveries_per_s\":%.0f,"
           "\"acked_per_s\":%.0f,"
           "\"driver\":\"%s\",\"receivers\":%llu,\"complete_msgs\":%llu,"
           "\"send_errors\":%llu,\"duplicates\":%llu,\"probes\":%llu,\"setup_s\":%.2f,"
           "\"client_cpu_s\":%.2f}\n",
           b->cfg->label, b->cfg->scenario, b->cfg->members,
           b->fanout ? b->cfg->rate : 0.0, b->cfg->payload, secs,
           (unsigned long long)hist_quantile(&b->all, 0.5),
           (unsigned long long)hist_quantile(&b->all, 0.99),
           (unsigned long long)hist_quantile(&b->all, 0.999),
           (unsigned long long)b->all.max,
           (unsigned long long)hist_quantile(&b->last, 0.5),
           (unsigned long long)hist_quantile(&b->last, 0.99),
           (unsigned long long)b->last.max,
           (unsigned long long)hist_quantile(&b->ack, 0.5),
           (unsigned long long)hist_quantile(&b->ack, 0.99),
           (unsigned long long)b->sent, (unsigned long long)b->acked,
           (unsigned long long)b->errors, (unsigned long long)expected,
           (unsigned long long)b->delivered, (unsigned long long)lost,
           (double)b->delivered / secs, (double)b->acked / secs,
           b->drv->name, (unsigned long long)b->receivers, (unsigned long long)complete,
           (unsigned long long)b->send_errors, (unsigned long long)b->duplicates,
           (unsigned long long)b->probes, b->setup_s, cpu);
    pthread_mutex_unlock(&b->mu);
    fflush(stdout);
}

static void bench_free(bench *b)
{
    free(b->body);
    free(b->per_msg);
    free(b->last_ns);
    free(b->sent_at);
    free(b->probed);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

int bench_run(const bench_config *cfg, const bench_driver *drv)
{
    bench *b = calloc(1, sizeof *b);
    int rc = 1;

    if (!b)
        bench_die("out of memory");
    b->cfg = cfg;
    b->drv = drv;
    b->loop = cfg->loop;
    b->fanout = strcmp(cfg->scenario, "fanout") == 0;
    b->receivers = (uint64_t)(cfg->members - 1);
    b->start_ns = bench_now_ns();
    pthread_mutex_init(&b->mu, NULL);
    b->total = b->fanout ? (uint64_t)(cfg->rate * cfg->duration + 0.5)
                         : (uint64_t)(cfg->duration * 2e6); /* cap; the clock ends it */
    b->body = calloc(1, cfg->payload);
    b->per_msg = calloc(b->total, sizeof *b->per_msg);
    b->last_ns = calloc(b->total, sizeof *b->last_ns);
    b->probed = calloc(b->receivers, sizeof *b->probed);
    if (!b->fanout)
        b->sent_at = calloc(b->total, sizeof *b->sent_at);
    if (!b->body || !b->per_msg || !b->last_ns || !b->probed || (!b->fanout && !b->sent_at))
        bench_die("out of memory");
    hist_init(&b->all);
    hist_init(&b->last);
    hist_init(&b->ack);
    ev_timer_init(&b->stop, on_stop, 0, 0);
    b->stop.data = b;
    ev_timer_init(&b->deadline, on_deadline, cfg->setup_timeout, 0);
    b->deadline.data = b;
    ev_timer_start(b->loop, &b->deadline);

    if (drv->setup(b, cfg, &b->dstate) != 0)
        goto free_bench;
    ev_run(b->loop, 0);
    /* No delivery may land after close: the histograms are final below. */
    drv->close(b->dstate);
    b->dstate = NULL;
    report(b);
    rc = b->sent == 0 ? 1 : 0;
free_bench:
    bench_free(b);
    return rc;
}
