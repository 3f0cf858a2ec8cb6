/*
 * test_rpc.c — rpc over nng on one libev loop: a server that answers in
 * bursts (as a group commit does: hundreds of replies at once) loses no
 * reply; requests past the lanes' room wait and are sent in order; one
 * that expires while waiting was never sent (HERALD_EIO); requests with
 * one key reach the server in the order sent; requests sent while no
 * server is up are not written to it when it comes (the answers of the
 * fresh ones behind them are not lost); requests that timed out on the
 * wire keep their slots until their late answer or their pipe's end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>
#include <herald/error.h>

#include "rpc.h"

#define N_REQ 600u

typedef struct srv_state {
    rpc_call *held[N_REQ];
    uint32_t n_held;
    uint32_t served;
    bool hold;       /* never answer */
    uint32_t arrived[N_REQ]; /* the 4-byte bodies (request indexes) in arrival order */
    uint32_t n_arrived;
    ev_timer commit; /* every 20 ms: answer everything held at once */
} srv_state;

typedef struct cli_state {
    uint32_t ok, eio, timeout, other;
    uint32_t order[N_REQ]; /* request index in reply order */
    uint32_t n_order;
    struct ev_loop *loop;
} cli_state;

typedef struct one {
    cli_state *cs;
    uint32_t idx;
} one;

static void answer_all(srv_state *s)
{
    for (uint32_t i = 0; i < s->n_held; i++) {
        rpc_reply(s->held[i], "ok", 2);
        s->served++;
    }
    s->n_held = 0;
}

static void on_request(void *arg, rpc_call *call, const uint8_t *p, size_t n)
{
    srv_state *s = arg;
    if (n == 4 && s->n_arrived < N_REQ)
        memcpy(&s->arrived[s->n_arrived++], p, 4);
    s->held[s->n_held++] = call;
}

static void on_commit(struct ev_loop *loop, ev_timer *w, int revents)
{
    srv_state *s = w->data;
    (void)loop;
    (void)revents;
    if (!s->hold)
        answer_all(s);
}

static void on_done(void *arg, int status, const uint8_t *p, size_t n)
{
    one *o = arg;
    cli_state *cs = o->cs;
    if (status == 0 && n == 2 && memcmp(p, "ok", 2) == 0) {
        cs->ok++;
        cs->order[cs->n_order++] = o->idx;
    } else if (status == HERALD_EIO) {
        cs->eio++;
    } else if (status == HERALD_ETIMEOUT) {
        cs->timeout++;
    } else {
        cs->other++;
    }
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    (void)w;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until done() saw want answers or 10 s passed. */
static void run_until(struct ev_loop *loop, cli_state *cs, uint32_t want)
{
    ev_timer t;
    for (int i = 0; i < 1000 && cs->ok + cs->eio + cs->timeout + cs->other < want; i++) {
        ev_timer_init(&t, tick, 0.01, 0.0);
        ev_timer_start(loop, &t);
        ev_run(loop, 0);
        ev_timer_stop(loop, &t);
    }
}

/* Runs the loop for about s seconds. */
static void run_for(struct ev_loop *loop, double s)
{
    ev_timer t;
    ev_timer_init(&t, tick, s, 0.0);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

/* A server and a client on url, and N_REQ requests sent at once with
 * this deadline. */
static void start(struct ev_loop *loop, const char *url, srv_state *ss, cli_state *cs, one *os,
                  unsigned timeout_ms, rpc_server **srv, rpc_client **cli)
{
    assert_int_equal(rpc_server_create(loop, url, 1 << 20, NULL, on_request, ss, srv), 0);
    assert_int_equal(rpc_client_create(loop, url, 1 << 20, NULL, NULL, cli), 0);
    for (uint32_t i = 0; i < N_REQ; i++) {
        os[i] = (one){.cs = cs, .idx = i};
        assert_int_equal(rpc_send(*cli, "q", 1, timeout_ms, on_done, &os[i]), 0);
    }
    assert_int_equal(rpc_inflight(*cli), N_REQ);
}

/* 600 requests at once; the server answers all it holds every 20 ms (a
 * group commit): bursts of well over 64 replies. */
static void test_burst_of_replies(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    static srv_state ss;
    static cli_state cs;
    static one os[N_REQ];
    rpc_server *srv;
    rpc_client *cli;
    (void)state;
    memset(&ss, 0, sizeof ss);
    memset(&cs, 0, sizeof cs);
    ev_timer_init(&ss.commit, on_commit, 0.02, 0.02);
    ss.commit.data = &ss;
    ev_timer_start(loop, &ss.commit);
    start(loop, "inproc://test-rpc-burst", &ss, &cs, os, 10000, &srv, &cli);
    run_until(loop, &cs, N_REQ);
    assert_int_equal(cs.ok, N_REQ);
    assert_int_equal(cs.timeout + cs.eio + cs.other, 0);
    assert_int_equal(ss.served, N_REQ);
    assert_int_equal(rpc_inflight(cli), 0);
    ev_timer_stop(loop, &ss.commit);
    rpc_client_destroy(cli);
    rpc_server_destroy(srv);
    ev_loop_destroy(loop);
}

/* A server that holds everything: the lanes fill, the rest waits; at the
 * deadline the sent ones time out and the waiting ones were never sent. */
static void test_waiting_expire_unsent(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    static srv_state ss;
    static cli_state cs;
    static one os[N_REQ];
    rpc_server *srv;
    rpc_client *cli;
    (void)state;
    memset(&ss, 0, sizeof ss);
    memset(&cs, 0, sizeof cs);
    ss.hold = true;
    start(loop, "inproc://test-rpc-hold", &ss, &cs, os, 300, &srv, &cli);
    run_until(loop, &cs, N_REQ);
    assert_int_equal(cs.ok, 0);
    assert_true(cs.timeout > 0 && cs.timeout <= 4 * 48); /* on the wire */
    assert_int_equal(cs.timeout + cs.eio, N_REQ);        /* the rest: never sent */
    assert_true(ss.n_held <= 4 * 48);
    for (uint32_t i = 0; i < ss.n_held; i++)
        rpc_drop(ss.held[i]);
    rpc_client_destroy(cli);
    rpc_server_destroy(srv);
    ev_loop_destroy(loop);
}

/* 600 requests at once, under three keys and none (every fourth): the
 * lanes fill and the rest waits; the server sees each key's requests in
 * the order they were sent, and answers them all. */
static void test_keyed_order(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    static srv_state ss;
    static cli_state cs;
    static one os[N_REQ];
    uint32_t last[4] = {0, 0, 0, 0}, seen[4] = {0, 0, 0, 0};
    rpc_server *srv;
    rpc_client *cli;
    (void)state;
    memset(&ss, 0, sizeof ss);
    memset(&cs, 0, sizeof cs);
    ev_timer_init(&ss.commit, on_commit, 0.02, 0.02);
    ss.commit.data = &ss;
    ev_timer_start(loop, &ss.commit);
    assert_int_equal(rpc_server_create(loop, "inproc://test-rpc-keyed", 1 << 20, NULL, on_request,
                                       &ss, &srv), 0);
    assert_int_equal(rpc_client_create(loop, "inproc://test-rpc-keyed", 1 << 20, NULL, NULL, &cli),
                     0);
    for (uint32_t i = 0; i < N_REQ; i++) {
        uint32_t key = i % 4 == 3 ? 0 : 1000003u * (i % 4 + 1);
        os[i] = (one){.cs = &cs, .idx = i};
        assert_int_equal(rpc_send_keyed(cli, key, &i, 4, 10000, on_done, &os[i]), 0);
    }
    run_until(loop, &cs, N_REQ);
    assert_int_equal(cs.ok, N_REQ);
    assert_int_equal(ss.n_arrived, N_REQ);
    for (uint32_t k = 0; k < N_REQ; k++) {
        uint32_t i = ss.arrived[k], g = i % 4;
        if (g == 3)
            continue; /* keyless: any order */
        if (seen[g]++)
            assert_true(i > last[g]);
        last[g] = i;
    }
    assert_int_equal(seen[0] + seen[1] + seen[2], N_REQ / 4 * 3);
    ev_timer_stop(loop, &ss.commit);
    rpc_client_destroy(cli);
    rpc_server_destroy(srv);
    ev_loop_destroy(loop);
}

/* No server yet: 600 requests with a 200 ms deadline all end, almost all
 * as never sent (nng holds at most a few per lane). Then the server comes
 * up: it sees at most those few stale ones, and 600 fresh requests sent
 * at once all get their answers (the stale ones did not fill the 64
 * replies the server's pipe queues). */
static void test_server_late(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    static srv_state ss;
    static cli_state cs;
    static one os[N_REQ];
    const char *url = "inproc://test-rpc-late";
    rpc_server *srv;
    rpc_client *cli;
    (void)state;
    memset(&ss, 0, sizeof ss);
    memset(&cs, 0, sizeof cs);
    assert_int_equal(rpc_client_create(loop, url, 1 << 20, NULL, NULL, &cli), 0);
    for (uint32_t i = 0; i < N_REQ; i++) {
        os[i] = (one){.cs = &cs, .idx = i};
        assert_int_equal(rpc_send(cli, &i, 4, 200, on_done, &os[i]), 0);
    }
    run_until(loop, &cs, N_REQ);
    assert_int_equal(cs.ok + cs.other, 0);
    assert_int_equal(cs.eio + cs.timeout, N_REQ);
    assert_true(cs.timeout <= 4 * 8); /* the few nng held */
    assert_int_equal(rpc_inflight(cli), 0);

    memset(&cs, 0, sizeof cs);
    ev_timer_init(&ss.commit, on_commit, 0.02, 0.02);
    ss.commit.data = &ss;
    ev_timer_start(loop, &ss.commit);
    assert_int_equal(rpc_server_create(loop, url, 1 << 20, NULL, on_request, &ss, &srv), 0);
    for (uint32_t i = 0; i < N_REQ; i++) {
        os[i] = (one){.cs = &cs, .idx = i};
        assert_int_equal(rpc_send(cli, &i, 4, 10000, on_done, &os[i]), 0);
    }
    run_until(loop, &cs, N_REQ);
    assert_int_equal(cs.ok, N_REQ);
    assert_int_equal(cs.timeout + cs.eio + cs.other, 0);
    /* What the server answered beyond the fresh ones: the stale few. */
    assert_true(ss.served >= N_REQ && ss.served - N_REQ <= 4 * 8);
    ev_timer_stop(loop, &ss.commit);
    rpc_client_destroy(cli);
    rpc_server_destroy(srv);
    ev_loop_destroy(loop);
}

/* A server that holds everything and a client whose N_REQ requests (300
 * ms deadline) all end: those on the wire became ghosts. Returns how many
 * the server holds. */
static uint32_t stalled(struct ev_loop *loop, const char *url, srv_state *ss, cli_state *cs,
                        one *os, rpc_server **srv, rpc_client **cli)
{
    memset(ss, 0, sizeof *ss);
    memset(cs, 0, sizeof *cs);
    ss->hold = true;
    start(loop, url, ss, cs, os, 300, srv, cli);
    run_until(loop, cs, N_REQ);
    assert_int_equal(cs->timeout + cs->eio, N_REQ);
    assert_true(ss->n_held > 0 && ss->n_held <= 4 * 48);
    assert_int_equal(rpc_inflight(*cli), 0); /* ghosts are not the callers' */
    memset(cs, 0, sizeof *cs);
    return ss->n_held;
}

/* N_REQ fresh requests with deadline ms. */
static void send_fresh(rpc_client *cli, cli_state *cs, one *fresh, unsigned ms)
{
    for (uint32_t i = 0; i < N_REQ; i++) {
        fresh[i] = (one){.cs = cs, .idx = i};
        assert_int_equal(rpc_send(cli, "q", 1, ms, on_done, &fresh[i]), 0);
    }
}

/* A server that stalls past the deadlines, then answers everything at
 * once: the timed-out requests on the wire keep their slots (ghosts), so
 * the fresh requests sent meanwhile wait in the client instead of joining
 * the stalled ones on the server, and the burst of late answers loses
 * none of the fresh ones. */
static void test_stall_then_burst(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    static srv_state ss;
    static cli_state cs;
    static one os[N_REQ], fresh[N_REQ];
    rpc_server *srv;
    rpc_client *cli;
    uint32_t stale;
    (void)state;
    stale = stalled(loop, "inproc://test-rpc-stall", &ss, &cs, os, &srv, &cli);
    ev_timer_init(&ss.commit, on_commit, 0.02, 0.02);
    ss.commit.data = &ss;
    ev_timer_start(loop, &ss.commit);
    send_fresh(cli, &cs, fresh, 10000);
    run_for(loop, 0.2);
    assert_int_equal(ss.n_held, stale); /* the fresh wait behind the ghosts */
    ss.hold = false;                    /* the stall ends: one burst */
    run_until(loop, &cs, N_REQ);
    assert_int_equal(cs.ok, N_REQ);
    assert_int_equal(cs.timeout + cs.eio + cs.other, 0);
    assert_int_equal(ss.served, stale + N_REQ);
    ev_timer_stop(loop, &ss.commit);
    rpc_client_destroy(cli);
    rpc_server_destroy(srv);
    ev_loop_destroy(loop);
}

/* Ghosts go with their pipe: a server that stalled and then went away
 * took its queued answers with it; a new one on the same address answers
 * fresh requests at once, not after the ghosts' own expiry. */
static void test_ghosts_go_with_the_pipe(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    static srv_state ss;
    static cli_state cs;
    static one os[N_REQ], fresh[N_REQ];
    const char *url = "inproc://test-rpc-ghost-pipe";
    rpc_server *srv;
    rpc_client *cli;
    ev_tstamp t0;
    (void)state;
    stalled(loop, url, &ss, &cs, os, &srv, &cli);
    for (uint32_t i = 0; i < ss.n_held; i++)
        rpc_drop(ss.held[i]);
    rpc_server_destroy(srv); /* the pipes close */

    memset(&ss, 0, sizeof ss);
    memset(&cs, 0, sizeof cs);
    ev_timer_init(&ss.commit, on_commit, 0.02, 0.02);
    ss.commit.data = &ss;
    ev_timer_start(loop, &ss.commit);
    assert_int_equal(rpc_server_create(loop, url, 1 << 20, NULL, on_request, &ss, &srv), 0);
    ev_now_update(loop);
    t0 = ev_now(loop);
    send_fresh(cli, &cs, fresh, 20000);
    run_until(loop, &cs, N_REQ);
    assert_int_equal(cs.ok, N_REQ);
    ev_now_update(loop);
    assert_true(ev_now(loop) - t0 < 5.0); /* the ghosts' expiry is 10 s */
    ev_timer_stop(loop, &ss.commit);
    rpc_client_destroy(cli);
    rpc_server_destroy(srv);
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_of_replies),
        cmocka_unit_test(test_waiting_expire_unsent),
        cmocka_unit_test(test_keyed_order),
        cmocka_unit_test(test_server_late),
        cmocka_unit_test(test_stall_then_burst),
        cmocka_unit_test(test_ghosts_go_with_the_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
