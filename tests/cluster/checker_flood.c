/*
 * checker_flood.c — `herald-checker flood`: many senders, many receivers,
 * every message seen by every receiver exactly once and in order.
 *
 *   herald-checker flood --convs N --members M --msgs K [--env FILE]
 *                        [--deadline S]
 *
 * Creates N group conversations, each with the M receivers fl-r0..fl-rM-1
 * and its own sender; connects the receivers; then N sender threads send
 * K messages each as fast as acks come back (one in flight per sender).
 * Each receiver (one thread each) counts per conversation: the next
 * message must be seq + 1 of the previous one; anything else is a
 * duplicate, a reordering or a hole. libherald repairs holes it notices
 * with SYNC; the gateway is meant to repair them before that (its log says
 * how many event gaps it saw and repaired). Prints
 *   "E expected, D delivered, X duplicated, O out of order, L missing"
 * and exits 0 only when D = E and X = O = L = 0.
 */
#include "checker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FL_CONVS_MAX 32
#define FL_MEMBERS_MAX 64

static const char usage[] =
    "usage: herald-checker flood --convs N --members M --msgs K [--env FILE] [--deadline S]\n";

typedef struct fl_run {
    ck_env env;
    uint32_t n_convs, n_members;
    uint64_t msgs;            /* per conversation */
    uint64_t deadline;        /* ms, monotonic */
    char convs[FL_CONVS_MAX][64];
    uint64_t first_seq[FL_CONVS_MAX]; /* seq of the first flood message */
    pthread_mutex_t mu;
    uint64_t delivered, dups, reordered;
    int failed;
} fl_run;

typedef struct fl_thread {
    fl_run *r;
    uint32_t idx;
    pthread_t tid;
    herald_client *c;         /* receivers: connected before the senders start */
} fl_thread;

static int conv_of(const fl_run *r, const herald_msg *m)
{
    for (uint32_t i = 0; i < r->n_convs; i++)
        if (m->conv.len == strlen(r->convs[i]) && memcmp(m->conv.ptr, r->convs[i], m->conv.len) == 0)
            return (int)i;
    return -1;
}

static void *receiver_main(void *arg)
{
    fl_thread *t = arg;
    fl_run *r = t->r;
    uint64_t last[FL_CONVS_MAX] = {0}, got = 0, dups = 0, reord = 0;
    uint64_t want = r->msgs * r->n_convs;

    while (got < want && ck_now_ms() < r->deadline) {
        herald_event *ev = NULL;
        int rc = herald_client_next_event(t->c, 500, &ev);
        int ci;
        if (rc == HERALD_ETIMEOUT)
            continue;
        if (rc) {
            fprintf(stderr, "flood: receiver %u: %s\n", t->idx, herald_err_name(rc));
            break;
        }
        if (ev->type == HERALD_EV_MSG && (ci = conv_of(r, &ev->msg)) >= 0 &&
            ev->msg.seq >= r->first_seq[ci]) {
            uint64_t expect = last[ci] ? last[ci] + 1 : r->first_seq[ci];
            if (ev->msg.seq == expect) {
                last[ci] = ev->msg.seq;
                got++;
            } else if (ev->msg.seq < expect) {
                dups++;
            } else {
                reord++; /* a hole: counted, and we continue from here */
                got++;
                last[ci] = ev->msg.seq;
            }
        }
        herald_event_free(ev);
    }
    pthread_mutex_lock(&r->mu);
    r->delivered += got;
    r->dups += dups;
    r->reordered += reord;
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void *sender_main(void *arg)
{
    fl_thread *t = arg;
    fl_run *r = t->r;
    char user[32], cmid[96], body[128];
    herald_client *c = NULL;

    snprintf(user, sizeof user, "fl-s%u", t->idx);
    for (uint64_t k = 0; k < r->msgs && ck_now_ms() < r->deadline;) {
        int rc;
        if (!c && ck_connect_retry(&r->env, user, r->deadline, "flood", &c) != 0)
            break;
        snprintf(cmid, sizeof cmid, "%s-%llu", r->convs[t->idx], (unsigned long long)k);
        snprintf(body, sizeof body, "flood %s", cmid);
        rc = herald_client_send(c, r->convs[t->idx], cmid, body, strlen(body), 0, NULL);
        if (rc == 0) {
            k++;
            ck_drain_events(c, 64);
            continue;
        }
        if (!ck_retryable(rc)) {
            fprintf(stderr, "flood: sender %u: %s\n", t->idx, herald_err_name(rc));
            pthread_mutex_lock(&r->mu);
            r->failed = 1;
            pthread_mutex_unlock(&r->mu);
            break;
        }
        if (herald_client_fd(c) < 0) {
            herald_client_close(c);
            c = NULL;
        }
    }
    herald_client_close(c);
    return NULL;
}

int ck_flood_main(int argc, char **argv)
{
    const char *convs = NULL, *members = NULL, *msgs = NULL, *envf = NULL, *dl = NULL;
    ck_opt opts[] = {{"--convs", &convs},   {"--members", &members}, {"--msgs", &msgs},
                     {"--env", &envf},      {"--deadline", &dl},     {NULL, NULL}};
    fl_run *r = calloc(1, sizeof *r);
    fl_thread rx[FL_MEMBERS_MAX], tx[FL_CONVS_MAX];
    uint64_t v, expected;
    char err[256];
    int rc = 2;
    uint32_t started_rx = 0, started_tx = 0;

    if (!r)
        return 2;
    memset(rx, 0, sizeof rx);
    pthread_mutex_init(&r->mu, NULL);
    if (ck_parse_opts(argc, argv, opts, usage) || !convs || !members || !msgs) {
        if (!convs || !members || !msgs)
            fputs(usage, stderr);
        goto out;
    }
    if (ck_parse_num("--convs", convs, 1, FL_CONVS_MAX, &v))
        goto out;
    r->n_convs = (uint32_t)v;
    if (ck_parse_num("--members", members, 1, FL_MEMBERS_MAX, &v))
        goto out;
    r->n_members = (uint32_t)v;
    if (ck_parse_num("--msgs", msgs, 1, 1000000, &r->msgs))
        goto out;
    v = 120;
    if (dl && ck_parse_num("--deadline", dl, 1, 3600, &v))
        goto out;
    r->deadline = ck_now_ms() + v * 1000;
    if (envf)
        snprintf(r->env.file, sizeof r->env.file, "%s", envf);
    if (ck_env_load(&r->env, err, sizeof err) != 0) {
        fprintf(stderr, "flood: %s\n", err);
        goto out;
    }
    /* Conversations: sender i + every receiver. */
    for (uint32_t i = 0; i < r->n_convs; i++) {
        const char *mv[FL_MEMBERS_MAX + 1];
        char names[FL_MEMBERS_MAX + 1][32];
        herald_client *c = NULL;
        herald_conv_info info;
        snprintf(names[0], sizeof names[0], "fl-s%u", i);
        mv[0] = names[0];
        for (uint32_t m = 0; m < r->n_members; m++) {
            snprintf(names[m + 1], sizeof names[m + 1], "fl-r%u", m);
            mv[m + 1] = names[m + 1];
        }
        snprintf(r->convs[i], sizeof r->convs[i], "fl-%llx-%u",
                 (unsigned long long)(ck_now_ms() ^ (uint64_t)getpid() << 20), i);
        if (ck_connect_retry(&r->env, names[0], r->deadline, "setup", &c) != 0)
            goto out;
        if (herald_client_conv_create(c, "group", r->convs[i], mv, r->n_members + 1, NULL) != 0 ||
            herald_client_conv_info(c, r->convs[i], &info) != 0) {
            fprintf(stderr, "flood: create %s: %s\n", r->convs[i], herald_client_last_error(c));
            herald_client_close(c);
            goto out;
        }
        r->first_seq[i] = info.max_seq + 1;
        herald_conv_info_free(&info);
        herald_client_close(c);
    }
    for (uint32_t m = 0; m < r->n_members; m++) {
        char user[32];
        snprintf(user, sizeof user, "fl-r%u", m);
        rx[m] = (fl_thread){.r = r, .idx = m};
        if (ck_connect_retry(&r->env, user, r->deadline, "setup", &rx[m].c) != 0)
            goto join;
    }
    for (uint32_t m = 0; m < r->n_members; m++, started_rx++)
        if (pthread_create(&rx[m].tid, NULL, receiver_main, &rx[m]) != 0)
            goto join;
    for (uint32_t i = 0; i < r->n_convs; i++, started_tx++) {
        tx[i] = (fl_thread){.r = r, .idx = i};
        if (pthread_create(&tx[i].tid, NULL, sender_main, &tx[i]) != 0)
            goto join;
    }
join:
    for (uint32_t i = 0; i < started_tx; i++)
        pthread_join(tx[i].tid, NULL);
    for (uint32_t m = 0; m < started_rx; m++)
        pthread_join(rx[m].tid, NULL);
    for (uint32_t m = 0; m < r->n_members; m++)
        herald_client_close(rx[m].c);
    expected = r->msgs * r->n_convs * r->n_members;
    printf("%llu expected, %llu delivered, %llu duplicated, %llu out of order, %llu missing\n",
           (unsigned long long)expected, (unsigned long long)r->delivered,
           (unsigned long long)r->dups, (unsigned long long)r->reordered,
           (unsigned long long)(expected > r->delivered ? expected - r->delivered : 0));
    rc = !r->failed && r->delivered == expected && r->dups == 0 && r->reordered == 0 ? 0 : 1;
out:
    pthread_mutex_destroy(&r->mu);
    free(r);
    return rc;
}
