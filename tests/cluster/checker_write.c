/*
 * checker_write.c — `herald-checker write`: creates N group conversations,
 * then W writer threads (one connection each, own user) send at R messages
 * per second in total, round-robin over the conversations they own, for S
 * seconds. Each message has a unique cmid (RUNID.THREAD.N) and carries it as
 * its body.
 *
 * Exactly-once retries: a send that is not acknowledged within the request
 * deadline, or fails with a retryable error (ck_retryable), is sent again
 * with the SAME cmid — reconnecting as needed, with bounded backoff — until
 * it is acknowledged or the run ends (S seconds plus --grace for a send
 * still in flight). The broker answers a repeated cmid with the original seq
 * (dup), so a message is stored at most once however often it was sent.
 * Every ack is appended to the log and flushed before the next send; a send
 * never acknowledged is logged as "unacked".
 *
 * A thread blocks on its one outstanding send, so during an outage it stops
 * starting new ones; pacing resumes afterwards without bursting to catch up.
 *
 * SIGTERM or SIGINT ends the run early exactly as reaching S would: no new
 * sends, the ones in flight get --grace seconds, everything is logged.
 */
#include "checker.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define W_CONVS_MAX 4096u     /* --convs bound */
#define W_WRITERS_MAX 64u     /* --writers bound */
#define W_SETUP_MS 120000u    /* creating the conversations, in total */
#define W_PROGRESS_MS 5000u   /* a progress line on stderr this often */
#define W_TICK_MS 100u        /* the main thread looks at signals this often */
#define W_FAILED_MAX 100u     /* non-retryable refusals before a thread gives up */
#define W_READER "ck-reader"  /* member of every conversation; verify reads as it */

static const char usage[] =
    "usage: herald-checker write --convs N --rate R --duration S --log FILE\n"
    "         [--writers W (4)] [--grace S (60)] [--timeout-ms MS (5000)] [--env FILE]\n";

/* The run, shared read-only by the threads except for the locked counters. */
typedef struct w_run {
    char runid[64];             /* unique per run: ids start with it */
    uint32_t n_convs;           /* conversations */
    char (*convs)[CK_ID_MAX + 1]; /* their ids */
    uint32_t n_writers;         /* threads (≤ n_convs) */
    uint64_t interval_us;       /* pause between two sends of one thread */
    _Atomic uint64_t end_ms;    /* no new send starts after this (monotonic) */
    _Atomic uint64_t hard_end_ms; /* a send in flight is given up after this */
    uint64_t grace_ms;          /* hard_end_ms - end_ms */
    atomic_bool stop;           /* set when the run must end now (setup failed) */
    ck_env env;                 /* template; each thread copies it */
    pthread_mutex_t lock;       /* guards log and the counters below */
    FILE *log;                  /* the ack log */
    uint64_t acked;             /* acks logged */
    uint64_t dups;              /* of them answered with dup (a retry had landed) */
    uint64_t unacked;           /* sends given up */
    uint64_t failed;            /* sends refused with a non-retryable error */
    uint64_t retries;           /* extra send attempts */
    uint64_t connects;          /* connection attempts (the first ones included) */
    bool log_error;             /* writing the log failed: the run is void */
} w_run;

/* Set by SIGTERM / SIGINT: end the run now (the main thread moves end_ms). */
static volatile sig_atomic_t w_term;

static void on_term(int sig)
{
    (void)sig;
    w_term = 1;
}

/* One writer thread. */
typedef struct w_thread {
    w_run *run;           /* the run */
    uint32_t idx;         /* thread number */
    char user[32];        /* ck-wIDX */
    pthread_t tid;        /* the thread */
    herald_client *c;     /* its connection, NULL while down */
    ck_env env;           /* its copy of the credentials */
    int last_err;         /* the last error printed (print changes only) */
} w_thread;

/* Appends one line to the log and flushes it (under the run's lock). */
static void log_line(w_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(w_run *r, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&r->lock);
    va_start(ap, fmt);
    if (vfprintf(r->log, fmt, ap) < 0 || fflush(r->log) != 0) {
        r->log_error = true;
        atomic_store(&r->stop, true);
    }
    va_end(ap);
    pthread_mutex_unlock(&r->lock);
}

static void count(w_run *r, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&r->lock);
    *field += n;
    pthread_mutex_unlock(&r->lock);
}

/* Prints an error once per change of code, so an outage is one line. */
static void note_err(w_thread *t, int rc, const char *what)
{
    if (rc == t->last_err)
        return;
    t->last_err = rc;
    fprintf(stderr, "writer %u: %s: %s%s%s (retrying)\n", t->idx, what, herald_err_name(rc),
            t->c && *herald_client_last_error(t->c) ? ": " : "",
            t->c ? herald_client_last_error(t->c) : "");
}

/* Sends cmid to conv until acknowledged, refused for good, or the run ends.
 * Logs exactly one record for it. */
static void send_one(w_thread *t, const char *conv, const char *cmid)
{
    w_run *r = t->run;
    uint64_t backoff = 0;
    bool first = true;

    for (;;) {
        herald_ack ack;
        char err[512];
        int rc;

        if (ck_now_ms() >= atomic_load(&r->hard_end_ms) || atomic_load(&r->stop)) {
            count(r, &r->unacked, 1);
            log_line(r, "unacked %s %s\n", conv, cmid);
            return;
        }
        if (!t->c) {
            count(r, &r->connects, 1);
            rc = ck_connect(&t->env, t->user, &t->c, err, sizeof err);
            if (rc) {
                if (rc != t->last_err)
                    fprintf(stderr, "writer %u: %s (retrying)\n", t->idx, err);
                t->last_err = rc;
                ck_sleep_ms(ck_backoff_next(&backoff));
                continue;
            }
        }
        if (!first)
            count(r, &r->retries, 1);
        first = false;
        rc = herald_client_send(t->c, conv, cmid, cmid, strlen(cmid), 0, &ack);
        if (rc == 0) {
            if (t->last_err) {
                fprintf(stderr, "writer %u: recovered\n", t->idx);
                t->last_err = 0;
            }
            log_line(r, "ack %s %" PRIu64 " %s\n", conv, ack.seq, cmid);
            pthread_mutex_lock(&r->lock);
            r->acked++;
            r->dups += ack.dup;
            pthread_mutex_unlock(&r->lock);
            ck_drain_events(t->c, 10000);
            if (herald_client_fd(t->c) < 0) {
                herald_client_close(t->c);
                t->c = NULL;
            }
            return;
        }
        note_err(t, rc, "send");
        if (herald_client_fd(t->c) < 0) {
            /* The connection is gone (timeout, closed, server ERROR). */
            herald_client_close(t->c);
            t->c = NULL;
            ck_sleep_ms(ck_backoff_next(&backoff));
            continue;
        }
        if (ck_retryable(rc)) {
            ck_sleep_ms(ck_backoff_next(&backoff));
            continue;
        }
        count(r, &r->failed, 1);
        log_line(r, "failed %s %s %s\n", conv, cmid, herald_err_name(rc));
        return;
    }
}

static void *writer_main(void *arg)
{
    w_thread *t = arg;
    w_run *r = t->run;
    uint64_t next_us = ck_now_ms() * 1000u, k = 0;
    uint32_t mine = 0;

    for (uint32_t i = t->idx; i < r->n_convs; i += r->n_writers)
        mine++;
    while (ck_now_ms() < atomic_load(&r->end_ms) && !atomic_load(&r->stop)) {
        char cmid[CK_ID_MAX + 1];
        uint64_t now_us = ck_now_ms() * 1000u;
        uint32_t ci = t->idx + r->n_writers * (uint32_t)(k % mine);

        if (next_us > now_us)
            ck_sleep_ms((next_us - now_us + 999) / 1000);
        next_us += r->interval_us;
        now_us = ck_now_ms() * 1000u;
        if (now_us > next_us + 1000000u) /* after an outage: no burst */
            next_us = now_us;
        snprintf(cmid, sizeof cmid, "%s.%u.%" PRIu64, r->runid, t->idx, k);
        k++;
        send_one(t, r->convs[ci], cmid);
        pthread_mutex_lock(&r->lock);
        bool too_many = r->failed >= W_FAILED_MAX;
        pthread_mutex_unlock(&r->lock);
        if (too_many) {
            fprintf(stderr, "writer %u: %u refusals, stopping\n", t->idx, W_FAILED_MAX);
            break;
        }
    }
    herald_client_close(t->c);
    t->c = NULL;
    return NULL;
}

/* Creates conversation i, retrying; EXISTS after a lost answer counts as
 * created once conv info confirms it. 0, or 2 (printed). */
static int create_conv(w_run *r, herald_client **c, uint32_t i, uint64_t deadline)
{
    const char *members[W_WRITERS_MAX + 3];
    char owner[32];
    uint32_t n = 0;
    uint64_t backoff = 0;
    bool retried = false;

    snprintf(owner, sizeof owner, "ck-w%u", i % r->n_writers);
    members[n++] = owner;
    members[n++] = W_READER;
    members[n++] = "ck-m1";
    members[n++] = "ck-m2";
    for (;;) {
        int rc;
        if (!*c && ck_connect_retry(&r->env, owner, deadline, "setup", c) != 0)
            return 2;
        rc = herald_client_conv_create(*c, "group", r->convs[i], members, n, NULL);
        if (rc == HERALD_EEXISTS && retried)
            rc = herald_client_conv_info(*c, r->convs[i], NULL);
        if (rc == 0)
            break;
        fprintf(stderr, "setup: create %s: %s: %s\n", r->convs[i], herald_err_name(rc),
                herald_client_last_error(*c));
        if (herald_client_fd(*c) < 0) {
            herald_client_close(*c);
            *c = NULL;
        } else if (!ck_retryable(rc)) {
            return 2;
        }
        retried = true;
        if (ck_now_ms() >= deadline) {
            fprintf(stderr, "setup: could not create %s in time\n", r->convs[i]);
            return 2;
        }
        ck_sleep_ms(ck_backoff_next(&backoff));
    }
    log_line(r, "conv %s\n", r->convs[i]);
    return 0;
}

/* Creates every conversation; each owner connects in turn. */
static int create_convs(w_run *r)
{
    uint64_t deadline = ck_now_ms() + W_SETUP_MS;
    int rc = 0;

    for (uint32_t w = 0; w < r->n_writers && rc == 0; w++) {
        herald_client *c = NULL;
        char owner[32];
        snprintf(owner, sizeof owner, "ck-w%u", w);
        if (ck_connect_retry(&r->env, owner, deadline, "setup", &c) != 0)
            return 2;
        for (uint32_t i = w; i < r->n_convs && rc == 0; i += r->n_writers)
            rc = create_conv(r, &c, i, deadline);
        herald_client_close(c);
    }
    return rc;
}

static void print_progress(w_run *r, uint64_t start, const char *prefix)
{
    pthread_mutex_lock(&r->lock);
    fprintf(stderr,
            "%s: t=%" PRIu64 "s acked=%" PRIu64 " (dup %" PRIu64 ") unacked=%" PRIu64
            " failed=%" PRIu64 " retries=%" PRIu64 " connects=%" PRIu64 "\n",
            prefix, (ck_now_ms() - start) / 1000, r->acked, r->dups, r->unacked, r->failed,
            r->retries, r->connects);
    pthread_mutex_unlock(&r->lock);
}

int ck_write_main(int argc, char **argv)
{
    const char *o_convs = NULL, *o_rate = NULL, *o_dur = NULL, *o_log = NULL,
               *o_writers = "4", *o_grace = "60", *o_timeout = "5000", *o_env = NULL;
    ck_opt opts[] = {{"--convs", &o_convs},     {"--rate", &o_rate},
                     {"--duration", &o_dur},    {"--log", &o_log},
                     {"--writers", &o_writers}, {"--grace", &o_grace},
                     {"--timeout-ms", &o_timeout}, {"--env", &o_env},
                     {NULL, NULL}};
    uint64_t convs, rate, dur, writers, grace, tmo, start;
    w_run r = {0};
    w_thread *th = NULL;
    uint32_t started = 0;
    int rc = 2;
    char err[512];

    if (ck_parse_opts(argc, argv, opts, usage))
        return 2;
    if (!o_convs || !o_rate || !o_dur || !o_log) {
        fprintf(stderr, "herald-checker: write needs --convs, --rate, --duration and --log\n%s",
                usage);
        return 2;
    }
    if (ck_parse_num("--convs", o_convs, 1, W_CONVS_MAX, &convs) ||
        ck_parse_num("--rate", o_rate, 1, 100000, &rate) ||
        ck_parse_num("--duration", o_dur, 1, 86400, &dur) ||
        ck_parse_num("--writers", o_writers, 1, W_WRITERS_MAX, &writers) ||
        ck_parse_num("--grace", o_grace, 0, 3600, &grace) ||
        ck_parse_num("--timeout-ms", o_timeout, 100, 600000, &tmo))
        return 2;
    r.n_convs = (uint32_t)convs;
    r.n_writers = (uint32_t)(writers < convs ? writers : convs);
    r.interval_us = 1000000u * r.n_writers / rate;
    r.env.timeout_ms = (int)tmo;
    snprintf(r.env.file, sizeof r.env.file, "%s", o_env ? o_env : "");
    if (ck_env_load(&r.env, err, sizeof err) != 0) {
        fprintf(stderr, "herald-checker: %s\n", err);
        return 2;
    }
    snprintf(r.runid, sizeof r.runid, "ck%lx-%ld", (unsigned long)time(NULL), (long)getpid());
    pthread_mutex_init(&r.lock, NULL);
    {
        struct sigaction sa = {.sa_handler = on_term};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    r.log = fopen(o_log, "w");
    if (!r.log) {
        perror(o_log);
        goto out;
    }
    r.convs = calloc(r.n_convs, sizeof *r.convs);
    th = calloc(r.n_writers, sizeof *th);
    if (!r.convs || !th) {
        fprintf(stderr, "herald-checker: out of memory\n");
        goto out;
    }
    for (uint32_t i = 0; i < r.n_convs; i++)
        snprintf(r.convs[i], sizeof r.convs[i], "%s-c%u", r.runid, i);
    log_line(&r, "run %s\nreader %s\n", r.runid, W_READER);
    fprintf(stderr, "write: run %s, %u conversations, %u writers, %" PRIu64 " msg/s for %" PRIu64
                    " s, log %s\n",
            r.runid, r.n_convs, r.n_writers, rate, dur, o_log);
    if (create_convs(&r) != 0)
        goto out;
    start = ck_now_ms();
    r.grace_ms = grace * 1000u;
    atomic_store(&r.end_ms, start + dur * 1000u);
    atomic_store(&r.hard_end_ms, start + dur * 1000u + r.grace_ms);
    for (uint32_t i = 0; i < r.n_writers; i++) {
        th[i].run = &r;
        th[i].idx = i;
        th[i].env = r.env;
        snprintf(th[i].user, sizeof th[i].user, "ck-w%u", i);
        if (pthread_create(&th[i].tid, NULL, writer_main, &th[i]) != 0) {
            fprintf(stderr, "herald-checker: cannot start writer %u\n", i);
            atomic_store(&r.stop, true); /* end the others at once */
            break;
        }
        started++;
    }
    /* Progress until no new send may start (or a signal ends the run),
     * then join. */
    uint64_t next_progress = start + W_PROGRESS_MS;
    while (started == r.n_writers && ck_now_ms() < atomic_load(&r.end_ms)) {
        uint64_t now = ck_now_ms(), left = atomic_load(&r.end_ms) - now;
        if (w_term) {
            fprintf(stderr, "write: signal: ending the run (in-flight sends get %" PRIu64
                            " s)\n", grace);
            atomic_store(&r.end_ms, now);
            atomic_store(&r.hard_end_ms, now + r.grace_ms);
            break;
        }
        ck_sleep_ms(left < W_TICK_MS ? left : W_TICK_MS);
        if (ck_now_ms() >= next_progress) {
            print_progress(&r, start, "write");
            next_progress += W_PROGRESS_MS;
        }
    }
    for (uint32_t i = 0; i < started; i++)
        pthread_join(th[i].tid, NULL);
    print_progress(&r, start, "write: done");
    if (r.log_error) {
        fprintf(stderr, "herald-checker: writing %s failed: the run is void\n", o_log);
        goto out;
    }
    rc = started == r.n_writers && r.acked > 0 ? 0 : 1;
    printf("%" PRIu64 " acked, %" PRIu64 " unacked, %" PRIu64 " failed, %" PRIu64 " retries\n",
           r.acked, r.unacked, r.failed, r.retries);

out:
    if (r.log && fclose(r.log) != 0 && rc == 0) {
        perror(o_log);
        rc = 2;
    }
    free(th);
    free(r.convs);
    pthread_mutex_destroy(&r.lock);
    return rc;
}
