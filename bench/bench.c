/*
 * bench.c — the herald-bench core: pacing, readiness, recording, report.
 *
 * Open loop: sends are scheduled at t0 + i/rate and sent as soon as the loop
 * sees their time has come; each body carries its scheduled time, and a
 * delivery's latency is now − scheduled (so a late sender or a stalled loop
 * shows up in the numbers instead of hiding). See bench.h for the contract
 * with drivers.
 *
 * Failover (BENCH_FAILOVER): the same pacing, but every send carries a
 * message id derived from its index; a send without an ack after
 * cfg->retry_after s, or answered with an error, is sent again with the same
 * id. The run records the longest gap between two consecutive first acks
 * (while something kills the leader: the time writes were not accepted),
 * checks that every index got acks carrying one seq only, and at the end
 * reads back the stored conversation (driver verify) to check that every
 * index is stored exactly once.
 *
 * Conns (BENCH_CONNS): nothing is sent. The driver connects and
 * authenticates every member; once all are in, the run holds them open for
 * cfg->duration s and then reads the server's VmRSS (cfg->rss_pid, read a
 * first time before set-up) while they are still open.
 */
#include <ctype.h>
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
    bool paced;                  /* fanout or failover: sends at a fixed rate */
    bool failover;               /* failover: exactly-once retries, ack gaps */
    bool conns;                  /* conns: connect, hold, read the server's RSS */
    uint64_t receivers;          /* members - 1 */
    uint8_t *body;               /* send buffer, cfg->payload bytes */
    int phase;                   /* 0 set-up, 1 sending, 2 draining, 3 verifying, 4 done */
    /* pacing (loop thread) */
    uint64_t t0_ns;              /* first scheduled send */
    uint64_t end_send_ns;        /* when sending stopped */
    uint64_t end_drain_ns;       /* failover: when the drain ended */
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
    ev_timer deadline;           /* set-up (and verify) deadline */
    /* failover (loop thread) */
    ev_timer retry;              /* retry scan, every 10 ms */
    uint64_t *due_ns;            /* per index: when it is sent again without an ack */
    uint32_t *attempt;           /* per index: the current attempt (0 = first) */
    uint64_t *ack_seq;           /* per index: seq of its first ack (0 = none yet) */
    uint8_t *acks_new;           /* per index: acks with dup = false (saturating) */
    uint32_t *stored;            /* per index: copies found by verify */
    uint64_t lo;                 /* every index below has an ack */
    uint64_t acked_msgs;         /* indices with at least one ack */
    uint64_t retries;            /* sends sent again */
    uint64_t dup_acks;           /* acks with dup = true (a retry of a stored send) */
    uint64_t seq_conflicts;      /* acks of one index with another seq than its first */
    uint64_t multi_new;          /* indices acked as new (dup = false) more than once */
    uint64_t last_ack_ns;        /* arrival of the latest first ack (0 = none yet) */
    uint64_t gap_ns;             /* longest time between consecutive first acks */
    uint64_t gap_start_ns;       /* its start (the ack before it) */
    uint64_t gap_end_ns;         /* its end (the first ack after it) */
    int64_t mono_to_real_ns;     /* CLOCK_REALTIME − CLOCK_MONOTONIC at start */
    uint64_t stored_foreign;     /* stored messages that are not this run's */
    bool verified;               /* verify ran to its end */
    bool verify_complete;        /* ... and read everything back */
    double setup_s;              /* seconds from start to ready */
    ev_timer hold;               /* conns: end of the hold */
    long rss_before_kb;          /* VmRSS of cfg->rss_pid before set-up (-1: unread) */
    long rss_after_kb;           /* ... at the end of the run, connections open */
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

/* Scheduled send time of message idx (paced scenarios). */
static uint64_t sched_of(const bench *b, uint64_t idx)
{
    return b->t0_ns + (uint64_t)(1e9 / b->cfg->rate * (double)idx);
}

/* Sends attempt `attempt` of message idx (failover) with its original
 * scheduled time in the body, so delivery latency counts from the first try. */
static void send_try(bench *b, uint64_t idx, uint32_t attempt, uint64_t now)
{
    put_u64(b->body, sched_of(b, idx));
    put_u64(b->body + 8, idx);
    b->attempt[idx] = attempt;
    b->due_ns[idx] = now + (uint64_t)(b->cfg->retry_after * 1e9);
    if (b->drv->publish_once(b->dstate, b->body, b->cfg->payload, idx, attempt) != 0) {
        b->send_errors++;
        b->due_ns[idx] = now + 100000000u; /* not even queued: try again soon */
    }
}

static void send_one(bench *b, uint64_t idx, uint64_t sched_ns)
{
    if (b->failover && idx != BENCH_PROBE_IDX) {
        send_try(b, idx, 0, bench_now_ns());
        b->sent++;
        return;
    }
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

    if (b->paced) {
        /* Send everything whose scheduled time has come (open loop). */
        while (b->sent < b->total) {
            uint64_t sched = sched_of(b, b->sent);
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

static void finish(bench *b);

/* Failover: sends again what has no ack and is due; ends the drain early
 * once every send is acked and a second has passed for the pushes. */
static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench *b = w->data;
    uint64_t now = bench_now_ns();
    (void)loop;
    (void)revents;

    while (b->lo < b->sent && b->ack_seq[b->lo])
        b->lo++;
    for (uint64_t i = b->lo; i < b->sent; i++) {
        if (b->ack_seq[i] || now < b->due_ns[i])
            continue;
        b->retries++;
        send_try(b, i, b->attempt[i] + 1, now);
    }
    if (b->phase == 2 && b->lo == b->sent && now - b->last_ack_ns >= 1000000000u)
        finish(b);
}

/* VmRSS of process pid in kB from /proc/PID/status, or -1. */
static long read_rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* Conns: the hold is over; the connections are still open. */
static void on_hold(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench *b = w->data;
    (void)revents;

    b->rss_after_kb = read_rss_kb(b->cfg->rss_pid);
    b->end_send_ns = bench_now_ns();
    b->phase = 4;
    ev_break(loop, EVBREAK_ALL);
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
    if (b->conns) {
        ev_timer_init(&b->hold, on_hold, b->cfg->duration, 0);
        b->hold.data = b;
        ev_timer_start(b->loop, &b->hold);
        return;
    }
    ev_timer_init(&b->tick, on_tick, 0.0, 0.001);
    b->tick.data = b;
    ev_timer_start(b->loop, &b->tick);
    if (b->failover) {
        ev_timer_init(&b->retry, on_retry, 0.01, 0.01);
        b->retry.data = b;
        ev_timer_start(b->loop, &b->retry);
    }
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

/* Failover: an ack for message idx. */
static void failover_ack(bench *b, uint64_t idx, uint64_t seq, bool dup)
{
    uint64_t now = bench_now_ns();

    if (idx >= b->sent)
        return;
    if (dup)
        b->dup_acks++;
    else if (b->acks_new[idx] < UINT8_MAX && ++b->acks_new[idx] == 2)
        b->multi_new++;
    if (b->ack_seq[idx]) {
        if (b->ack_seq[idx] != seq)
            b->seq_conflicts++;
        return;
    }
    /* The first ack of idx: writes are being accepted. */
    b->ack_seq[idx] = seq ? seq : UINT64_MAX;
    b->acked_msgs++;
    hist_record(&b->ack, (now - sched_of(b, idx)) / 1000u);
    if (b->last_ack_ns && now - b->last_ack_ns > b->gap_ns) {
        b->gap_ns = now - b->last_ack_ns;
        b->gap_start_ns = b->last_ack_ns;
        b->gap_end_ns = now;
    }
    b->last_ack_ns = now;
}

void bench_ack(bench *b, uint64_t idx, uint32_t attempt, uint64_t seq, bool dup)
{
    (void)attempt;
    b->acked++;
    if (b->failover) {
        failover_ack(b, idx, seq, dup);
        return;
    }
    if (b->inflight)
        b->inflight--;
    if (b->sent_at && idx < b->total)
        hist_record(&b->ack, (bench_now_ns() - b->sent_at[idx]) / 1000u);
    if (!b->paced && b->phase == 1)
        on_tick(b->loop, &b->tick, 0);
}

bool bench_error(bench *b, uint64_t idx, uint32_t attempt)
{
    b->errors++;
    if (b->failover) {
        /* The current attempt failed: send again after a short backoff. */
        if (idx < b->sent && !b->ack_seq[idx] && attempt == b->attempt[idx])
            b->due_ns[idx] = bench_now_ns() + 100000000u;
        return b->phase == 0;
    }
    if (b->inflight)
        b->inflight--;
    return b->phase == 0;
}

void bench_stored(bench *b, const void *body, size_t len)
{
    uint64_t idx;

    if (len < BENCH_BODY_HDR || !b->stored)
        return;
    idx = get_u64((const uint8_t *)body + 8);
    if (idx < b->total && b->stored[idx] < UINT32_MAX)
        b->stored[idx]++;
    else
        b->stored_foreign++;
}

void bench_verified(bench *b, bool complete)
{
    if (b->phase != 3)
        return;
    b->verified = true;
    b->verify_complete = complete;
    b->phase = 4;
    ev_timer_stop(b->loop, &b->deadline);
    ev_break(b->loop, EVBREAK_ALL);
}

uint64_t bench_errors(const bench *b)
{
    return b->errors;
}

/* The drain is over: verify (failover) or end the loop. */
static void finish(bench *b)
{
    if (b->phase != 2)
        return;
    ev_timer_stop(b->loop, &b->stop);
    if (b->failover) {
        ev_timer_stop(b->loop, &b->retry);
        b->end_drain_ns = bench_now_ns();
    }
    if (b->failover && b->drv->verify) {
        b->phase = 3;
        ev_timer_set(&b->deadline, b->cfg->setup_timeout, 0);
        ev_timer_start(b->loop, &b->deadline);
        b->drv->verify(b->dstate);
        return;
    }
    b->phase = 4;
    ev_break(b->loop, EVBREAK_ALL);
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    finish(w->data);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench *b = w->data;
    char st[256] = "";
    (void)revents;

    if (b->phase == 3) { /* verify did not finish: report what was read */
        fprintf(stderr, "herald-bench: %s: verify did not finish in %.0f s\n", b->drv->name,
                b->cfg->setup_timeout);
        b->phase = 4;
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (b->drv->status)
        b->drv->status(b->dstate, st, sizeof st);
    pthread_mutex_lock(&b->mu);
    fprintf(stderr, "herald-bench: %s: set-up did not finish in %.0f s (%s; %llu/%llu probed)\n",
            b->drv->name, b->cfg->setup_timeout, st, (unsigned long long)b->n_probed,
            (unsigned long long)b->receivers);
    pthread_mutex_unlock(&b->mu);
    exit(1);
}

/* Failover: the exactly-once findings as JSON members (each with a leading
 * comma) into buf. */
static void failover_json(bench *b, char *buf, size_t size)
{
    uint64_t unacked = b->sent - b->acked_msgs, missing = 0, extra = 0, once = 0;
    uint64_t gap = b->gap_ns, gap_start = b->gap_start_ns, gap_end = b->gap_end_ns;
    bool recovered = unacked == 0, exactly_once;

    /* Sends never acked: the gap runs to the end of the drain. */
    if (!recovered && b->last_ack_ns && b->end_drain_ns - b->last_ack_ns > gap) {
        gap = b->end_drain_ns - b->last_ack_ns;
        gap_start = b->last_ack_ns;
        gap_end = 0;
    }
    for (uint64_t i = 0; i < b->sent; i++) {
        if (b->stored[i] == 0)
            missing++;
        else if (b->stored[i] == 1)
            once++;
        else
            extra += b->stored[i] - 1;
    }
    exactly_once = recovered && b->verify_complete && missing == 0 && extra == 0 &&
                   b->multi_new == 0 && b->seq_conflicts == 0;
    snprintf(buf, size,
             ",\"acked_msgs\":%llu,\"unacked\":%llu,\"retries\":%llu,\"dup_acks\":%llu,"
             "\"multi_new_acks\":%llu,\"seq_conflicts\":%llu,\"ack_max_us\":%llu,"
             "\"max_ack_gap_us\":%llu,\"max_ack_gap_start_unix_ms\":%llu,"
             "\"max_ack_gap_end_unix_ms\":%llu,\"recovered\":%s,"
             "\"verified\":%s,\"stored_once\":%llu,\"stored_missing\":%llu,"
             "\"stored_extra\":%llu,\"stored_foreign\":%llu,\"exactly_once\":%s,"
             "\"retry_after_s\":%.1f",
             (unsigned long long)b->acked_msgs, (unsigned long long)unacked,
             (unsigned long long)b->retries, (unsigned long long)b->dup_acks,
             (unsigned long long)b->multi_new, (unsigned long long)b->seq_conflicts,
             (unsigned long long)b->ack.max, (unsigned long long)(gap / 1000u),
             (unsigned long long)(gap_start ? (uint64_t)((int64_t)gap_start + b->mono_to_real_ns) / 1000000u : 0),
             (unsigned long long)(gap_end ? (uint64_t)((int64_t)gap_end + b->mono_to_real_ns) / 1000000u : 0),
             recovered ? "true" : "false", b->verify_complete ? "true" : "false",
             (unsigned long long)once, (unsigned long long)missing, (unsigned long long)extra,
             (unsigned long long)b->stored_foreign, exactly_once ? "true" : "false",
             b->cfg->retry_after);
}

/* Appends s to buf (of size size, holding a string) as a JSON string. */
static void json_str(char *buf, size_t size, const char *s)
{
    size_t n = strlen(buf);

    if (n + 2 >= size)
        return;
    buf[n++] = '"';
    for (; *s && n + 3 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf[n++] = '\\';
        buf[n++] = iscntrl(c) ? ' ' : (char)c;
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

/* The durability statement and the RSS readings as JSON members. */
static void common_json(bench *b, char *buf, size_t size)
{
    const char *dur = b->cfg->durability;
    size_t n;

    if (!dur && b->drv->durability_of && b->dstate)
        dur = b->drv->durability_of(b->dstate);
    if (!dur)
        dur = b->drv->durability ? b->drv->durability : "unknown";
    snprintf(buf, size, ",\"durability\":");
    json_str(buf, size, dur);
    n = strlen(buf);
    if (b->cfg->rss_pid > 0)
        snprintf(buf + n, size - n, ",\"rss_pid\":%d,\"rss_before_kb\":%ld,\"rss_after_kb\":%ld",
                 b->cfg->rss_pid, b->rss_before_kb, b->rss_after_kb);
    n = strlen(buf);
    if (b->conns) {
        long d = b->rss_before_kb >= 0 && b->rss_after_kb >= 0 ? b->rss_after_kb - b->rss_before_kb : -1;
        snprintf(buf + n, size - n, ",\"conns\":%d,\"conns_ok\":%s,\"hold_s\":%.1f",
                 b->cfg->members, b->phase >= 1 ? "true" : "false", b->cfg->duration);
        n = strlen(buf);
        if (d >= 0)
            snprintf(buf + n, size - n, ",\"rss_per_conn_bytes\":%.0f",
                     (double)d * 1024.0 / (double)b->cfg->members);
        else
            snprintf(buf + n, size - n, ",\"rss_per_conn_bytes\":null");
    }
}

/* Prints the JSON object. The fields up to acked_per_s are herald-bench's
 * historical ones, in the same order; the rest were added with the drivers;
 * then the driver's own members (drv_extra) and the failover findings. */
static void report(bench *b, const char *drv_extra, const char *common)
{
    char fo[1024] = "";
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
    if (b->failover)
        failover_json(b, fo, sizeof fo);
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
           "\"client_cpu_s\":%.2f%s%s%s}\n",
           b->cfg->label, b->cfg->scenario, b->cfg->members,
           b->paced ? b->cfg->rate : 0.0, b->cfg->payload, secs,
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
           (unsigned long long)b->probes, b->setup_s, cpu, common, drv_extra, fo);
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
    free(b->due_ns);
    free(b->attempt);
    free(b->ack_seq);
    free(b->acks_new);
    free(b->stored);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

int bench_run(const bench_config *cfg, const bench_driver *drv)
{
    bench *b = calloc(1, sizeof *b);
    char extra[1024] = "", common[1024] = "";
    int rc = 1;

    if (!b)
        bench_die("out of memory");
    b->cfg = cfg;
    b->drv = drv;
    b->loop = cfg->loop;
    b->paced = cfg->mode != BENCH_THROUGHPUT;
    b->failover = cfg->mode == BENCH_FAILOVER;
    b->conns = cfg->mode == BENCH_CONNS;
    b->rss_after_kb = -1;
    b->receivers = (uint64_t)(cfg->members - 1);
    b->start_ns = bench_now_ns();
    pthread_mutex_init(&b->mu, NULL);
    b->total = b->paced ? (uint64_t)(cfg->rate * cfg->duration + 0.5)
                         : (uint64_t)(cfg->duration * 2e6); /* cap; the clock ends it */
    b->body = calloc(1, cfg->payload);
    b->per_msg = calloc(b->total, sizeof *b->per_msg);
    b->last_ns = calloc(b->total, sizeof *b->last_ns);
    b->probed = calloc(b->receivers, sizeof *b->probed);
    if (!b->paced)
        b->sent_at = calloc(b->total, sizeof *b->sent_at);
    if (!b->body || !b->per_msg || !b->last_ns || !b->probed || (!b->paced && !b->sent_at))
        bench_die("out of memory");
    if (b->failover) {
        struct timespec rt;
        if (!drv->publish_once)
            bench_die("the failover scenario needs exactly-once sends: herald only");
        b->due_ns = calloc(b->total, sizeof *b->due_ns);
        b->attempt = calloc(b->total, sizeof *b->attempt);
        b->ack_seq = calloc(b->total, sizeof *b->ack_seq);
        b->acks_new = calloc(b->total, sizeof *b->acks_new);
        b->stored = calloc(b->total, sizeof *b->stored);
        if (!b->due_ns || !b->attempt || !b->ack_seq || !b->acks_new || !b->stored)
            bench_die("out of memory");
        clock_gettime(CLOCK_REALTIME, &rt);
        b->mono_to_real_ns = (int64_t)((uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec) -
                             (int64_t)bench_now_ns();
    }
    hist_init(&b->all);
    hist_init(&b->last);
    hist_init(&b->ack);
    ev_timer_init(&b->stop, on_stop, 0, 0);
    b->stop.data = b;
    ev_timer_init(&b->deadline, on_deadline, cfg->setup_timeout, 0);
    b->deadline.data = b;
    ev_timer_start(b->loop, &b->deadline);

    b->rss_before_kb = read_rss_kb(cfg->rss_pid);
    if (drv->setup(b, cfg, &b->dstate) != 0)
        goto free_bench;
    ev_run(b->loop, 0);
    if (!b->conns)
        b->rss_after_kb = read_rss_kb(cfg->rss_pid);
    if (drv->report)
        drv->report(b->dstate, extra, sizeof extra);
    common_json(b, common, sizeof common);
    /* No delivery may land after close: the histograms are final below. */
    drv->close(b->dstate);
    b->dstate = NULL;
    report(b, extra, common);
    rc = b->conns ? (b->phase >= 1 ? 0 : 1) : b->sent == 0 ? 1 : 0;
free_bench:
    bench_free(b);
    return rc;
}
