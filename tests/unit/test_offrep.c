/*
 * test_offrep.c — the session tier's offline reports (session/offrep.h)
 * over a real tier with no connection (nobody is online here): a DELIVER
 * of a stored message is reported with its recipients but the sender,
 * batched per (group, tenant) until the timer; recalls, other frames and
 * pushes long after their commit are not reported; a full batch goes at
 * once; a batch the sender refuses is counted as dropped.
 */
#include <ev.h>
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "offrep.h"
#include "prom.h"
#include "session.h"
#include "tier.h"

/* What the sender was handed. */
typedef struct sent {
    uint32_t batches;
    uint32_t msgs;        /* messages over every batch */
    uint32_t group;       /* the last batch's */
    char tenant[64];
    char last[512];       /* the last batch: "conv/seq:u,u;…" */
    int answer;           /* what send returns */
} sent;

static int on_send(void *arg, const offrep_batch *b)
{
    sent *s = arg;
    size_t at = 0;
    uint32_t u = 0;
    s->batches++;
    s->msgs += b->n;
    s->group = b->group;
    snprintf(s->tenant, sizeof s->tenant, "%s", b->tenant);
    s->last[0] = '\0';
    for (uint32_t i = 0; i < b->n && at < sizeof s->last; i++) {
        at += (size_t)snprintf(s->last + at, sizeof s->last - at, "%s%.*s/%llu:", i ? ";" : "",
                               (int)b->convs[i].len, b->convs[i].ptr,
                               (unsigned long long)b->seqs[i]);
        for (uint64_t k = 0; k < b->counts[i] && at < sizeof s->last; k++, u++)
            at += (size_t)snprintf(s->last + at, sizeof s->last - at, "%s%.*s", k ? "," : "",
                                   (int)b->users[u].len, b->users[u].ptr);
    }
    u = 0;
    for (uint32_t i = 0; i < b->n; i++)
        u += (uint32_t)b->counts[i];
    assert_int_equal(u, b->n_users);
    return s->answer;
}

/* The collector's metrics as one NUL-terminated text (freed by the caller). */
static char *metrics(offrep *o)
{
    herald_buf b = {0};
    prom_w w = {.b = &b};
    offrep_metrics(o, &w);
    assert_int_equal(herald_buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

typedef struct fx {
    struct ev_loop *loop;
    tier *t;
    offrep *o;
    sent s;
} fx;

static void on_frame(void *ctx, conn *c, herald_frame *f, const uint8_t *p, size_t n)
{
    (void)ctx;
    (void)c;
    (void)f;
    (void)p;
    (void)n;
}

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    gw_config cfg;
    tier_handler h = {.frame = on_frame};
    assert_non_null(x);
    gw_config_defaults(&cfg);
    cfg.listen = "127.0.0.1:0";
    x->loop = ev_loop_new(EVFLAG_AUTO);
    assert_int_equal(tier_create(&cfg, x->loop, &h, &x->t), 0);
    assert_int_equal(offrep_create(x->loop, x->t, 20, on_send, &x->s, &x->o), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    offrep_destroy(x->o);
    tier_destroy(x->t);
    ev_loop_destroy(x->loop);
    free(x);
    return 0;
}

/* Runs the loop until the flush timer (20 ms) has fired. */
static void flush(fx *x)
{
    usleep(40 * 1000);
    ev_now_update(x->loop);
    ev_run(x->loop, EVRUN_NOWAIT);
}

static herald_frame deliver(const char *conv, uint64_t seq, const char *from, uint32_t group)
{
    herald_frame f = {.type = HERALD_FT_DELIVER};
    f.msg = (herald_msg){.conv = herald_str_z(conv), .seq = seq, .from = herald_str_z(from),
                         .ts = session_now_ms(), .group = group};
    return f;
}

static void batched(void **state)
{
    fx *x = *state;
    const char *users[] = {"alice", "bob", "carol"};
    herald_frame f = deliver("g1", 7, "alice", 2);

    offrep_note(x->o, "acme", users, 3, &f);
    f = deliver("g2", 1, "dave", 2);
    offrep_note(x->o, "acme", users, 3, &f);
    assert_int_equal(x->s.batches, 0); /* gathered until the timer */
    flush(x);
    assert_int_equal(x->s.batches, 1);
    assert_int_equal(x->s.group, 2);
    assert_string_equal(x->s.tenant, "acme");
    /* Nobody is online here; the sender is never listed. */
    assert_string_equal(x->s.last, "g1/7:bob,carol;g2/1:alice,bob,carol");

    /* Another group, another tenant: a batch each. */
    f = deliver("g3", 2, "alice", 1);
    offrep_note(x->o, "acme", users, 1, &f); /* only the sender: nobody away */
    offrep_note(x->o, "other", users, 2, &f);
    flush(x);
    assert_int_equal(x->s.batches, 3);
    assert_int_equal(x->s.msgs, 4);
}

static void not_reported(void **state)
{
    fx *x = *state;
    const char *users[] = {"bob"};
    herald_frame f = deliver("g1", 3, "alice", 1);
    herald_frame r = {.type = HERALD_FT_RECEIPT, .conv = herald_str_z("g1")};
    char *m;

    f.msg.flags = HERALD_MSGF_RECALLED; /* a recall's tombstone */
    offrep_note(x->o, "acme", users, 1, &f);
    offrep_note(x->o, "acme", users, 1, &r);
    f = deliver("g1", 4, "alice", 1);
    f.msg.ts -= OFFREP_STALE_MS + 1000; /* a replay, long after the commit */
    offrep_note(x->o, "acme", users, 1, &f);
    flush(x);
    assert_int_equal(x->s.batches, 0);
    m = metrics(x->o);
    assert_non_null(strstr(m, "herald_offline_reports_stale_total 1"));
    assert_non_null(strstr(m, "herald_offline_reports_total 0"));
    free(m);
}

static void full_and_refused(void **state)
{
    fx *x = *state;
    const char *users[] = {"bob"};
    char *m;

    for (uint32_t i = 0; i < OFFREP_MAX_REPORTS + 5; i++) {
        herald_frame f = deliver("g1", i + 1, "alice", 1);
        offrep_note(x->o, "acme", users, 1, &f);
    }
    assert_int_equal(x->s.batches, 1); /* the full one went at once */
    assert_int_equal(x->s.msgs, OFFREP_MAX_REPORTS);
    x->s.answer = HERALD_EBUSY;
    flush(x);
    assert_int_equal(x->s.batches, 2);
    m = metrics(x->o);
    assert_non_null(strstr(m, "herald_offline_reports_dropped_total 5"));
    assert_non_null(strstr(m, "herald_offline_report_batches_total 1"));
    free(m);
    offrep_lost(x->o, 2);
    m = metrics(x->o);
    assert_non_null(strstr(m, "herald_offline_reports_dropped_total 7"));
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(batched, setup, teardown),
        cmocka_unit_test_setup_teardown(not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(full_and_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
