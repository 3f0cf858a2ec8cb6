/*
 * test_rio_fixture.c — deterministic checks on libraft 0.15's own fixture
 * (raft/fixture.h, simulated time, in-memory io): the counter FSM the rio
 * tests use round-trips through a 3-server cluster, and a probe for the
 * 0.15 hazard fixed upstream in 0.17/0.18 — entries applied (commit index
 * advanced) on a server before that server has persisted them. The probe
 * reports what it sees; it asserts the upstream-safe property only where
 * 0.15 is known to hold it, and documents the rest (see the printout).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <raft.h>
#include <raft/fixture.h>

/* Counter FSM (same shape as test_rio_cluster's). */
typedef struct cfsm {
    struct raft_fsm fsm; /* raft's view */
    uint64_t count;      /* commands applied */
    uint64_t sum;        /* their sum */
} cfsm;

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    cfsm *c = fsm->data;
    uint64_t v;
    if (buf->len != 8)
        return RAFT_MALFORMED;
    memcpy(&v, buf->base, 8);
    c->count++;
    c->sum += v;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    cfsm *c = fsm->data;
    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].base = raft_malloc(16);
    memcpy((*bufs)[0].base, &c->count, 8);
    memcpy((uint8_t *)(*bufs)[0].base + 8, &c->sum, 8);
    (*bufs)[0].len = 16;
    *n = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    cfsm *c = fsm->data;
    memcpy(&c->count, buf->base, 8);
    memcpy(&c->sum, (uint8_t *)buf->base + 8, 8);
    raft_free(buf->base);
    return 0;
}

/* Fixture: 3 servers with counter FSMs, bootstrapped and started. */
typedef struct fx {
    struct raft_fixture f; /* libraft's fixture */
    cfsm fsm[3];           /* one FSM per server */
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    struct raft_configuration conf;
    unsigned i;
    assert_int_equal(raft_fixture_initialize(&x->f), 0);
    for (i = 0; i < 3; i++) {
        x->fsm[i].fsm.version = 1;
        x->fsm[i].fsm.data = &x->fsm[i];
        x->fsm[i].fsm.apply = fsm_apply;
        x->fsm[i].fsm.snapshot = fsm_snapshot;
        x->fsm[i].fsm.restore = fsm_restore;
        assert_int_equal(raft_fixture_grow(&x->f, &x->fsm[i].fsm), 0);
    }
    assert_int_equal(raft_fixture_configuration(&x->f, 3, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&x->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&x->f), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    raft_fixture_close(&x->f);
    free(x);
    return 0;
}

static struct raft_apply reqs[64];
static int applied_ok;
static void on_apply(struct raft_apply *req, int status, void *result)
{
    if (status == 0)
        applied_ok++;
}

static void propose(fx *x, unsigned leader, int k, uint64_t v)
{
    struct raft_buffer b;
    b.len = 8;
    b.base = raft_malloc(8);
    memcpy(b.base, &v, 8);
    assert_int_equal(raft_apply(raft_fixture_get(&x->f, leader), &reqs[k], &b, 1, on_apply), 0);
}

static void test_counter_roundtrip(void **state)
{
    fx *x = *state;
    struct raft *l;
    int k;
    unsigned i;

    raft_fixture_elect(&x->f, 0);
    l = raft_fixture_get(&x->f, 0);
    applied_ok = 0;
    for (k = 0; k < 20; k++)
        propose(x, 0, k, (uint64_t)k + 1);
    assert_true(raft_fixture_step_until_applied(&x->f, 3, raft_last_index(l), 10000));
    assert_int_equal(applied_ok, 20);
    for (i = 0; i < 3; i++) {
        assert_int_equal(x->fsm[i].count, 20);
        assert_int_equal(x->fsm[i].sum, 210);
    }
}

/* The 0.15 hazard probe: follower 2's disk is slow; the leader commits with
 * follower 1 and tells follower 2 the commit index in the next heartbeat.
 * Does follower 2 apply entries it has not persisted yet? And does the
 * leader (slow disk too, second run) count itself before persisting? */
static void probe(fx *x, unsigned slow, const char *who, unsigned *max_ahead)
{
    unsigned window = 0; /* most entries in memory but not yet on disk */
    int k, steps;
    raft_fixture_set_disk_latency(&x->f, slow, 400);
    for (k = 0; k < 5; k++)
        propose(x, 0, k, 1);
    *max_ahead = 0;
    for (steps = 0; steps < 20000; steps++) {
        struct raft *r = raft_fixture_get(&x->f, slow);
        if (r->last_applied > r->last_stored &&
            r->last_applied - r->last_stored > *max_ahead)
            *max_ahead = (unsigned)(r->last_applied - r->last_stored);
        if (r->commit_index > r->last_stored &&
            r->commit_index - r->last_stored > *max_ahead)
            *max_ahead = (unsigned)(r->commit_index - r->last_stored);
        if (raft_last_index(r) > r->last_stored &&
            raft_last_index(r) - r->last_stored > window)
            window = (unsigned)(raft_last_index(r) - r->last_stored);
        raft_fixture_step(&x->f);
        if (x->fsm[0].count >= 5 && x->fsm[1].count >= 5 && x->fsm[2].count >= 5 &&
            r->last_stored >= raft_last_index(r))
            break;
    }
    /* The probe only means something if the window was really open. */
    assert_true(window > 0);
    printf("# libraft 0.15 probe (%s with 400 ms disk, %u entries unpersisted at once): commit/applied index ran ahead of "
           "the locally persisted log by up to %u entries%s\n", who, window, *max_ahead,
           *max_ahead ? " — entries applied before they were durable on this server" : "");
}

static void test_probe_unpersisted_follower(void **state)
{
    fx *x = *state;
    unsigned ahead;
    raft_fixture_elect(&x->f, 0);
    probe(x, 2, "follower", &ahead);
    assert_int_equal(ahead, 0); /* holds on 0.15 in this scenario: a regression guard */
    /* Every replica still converges. */
    assert_int_equal(x->fsm[2].count, 5);
}

static void test_probe_unpersisted_leader(void **state)
{
    fx *x = *state;
    unsigned ahead;
    raft_fixture_elect(&x->f, 0);
    probe(x, 0, "leader", &ahead);
    assert_int_equal(ahead, 0);
    assert_int_equal(x->fsm[0].count, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counter_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_unpersisted_follower, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_unpersisted_leader, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
