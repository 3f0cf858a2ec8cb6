/* test_evsub.c — a gateway's ordering and gap repair of event streams
 * (evsub), and the node's ring that answers the repairs (evpub_replay).
 * Deterministic: batches are built by hand, fetches are recorded, answers
 * are handed in by the test; timeouts run a real libev loop briefly. */
#include <ev.h>
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "evpub.h"
#include "evsub.h"
#include "nwire.h"

#define MAXEV 512

typedef struct tx {
    uint64_t got[MAXEV];     /* pubseqs delivered, in order */
    uint32_t n;
    uint32_t fetches;
    uint64_t f_from, f_to, f_epoch;
    uint32_t f_node;
    herald_buf enc[MAXEV + 1]; /* encoded events by pubseq (stream 1) */
} tx;

static void on_deliver(void *arg, const nw_event *e)
{
    tx *t = arg;
    if (t->n < MAXEV)
        t->got[t->n++] = e->pubseq;
}

static int on_fetch(void *arg, uint32_t node, uint64_t epoch, uint64_t from, uint64_t to)
{
    tx *t = arg;
    t->fetches++;
    t->f_node = node;
    t->f_epoch = epoch;
    t->f_from = from;
    t->f_to = to;
    return 0;
}

/* The encoding of event seq of (node 7, epoch ep). */
static herald_buf *enc(tx *t, uint64_t ep, uint64_t seq)
{
    static herald_str user = {.ptr = "u", .len = 1};
    nw_event e = {.kind = NW_EV_DND, .node = 7, .epoch = ep, .pubseq = seq,
                  .tenant = {.ptr = "t", .len = 1}, .n_users = 1, .users = &user};
    herald_buf *b = &t->enc[seq];
    b->len = 0;
    assert_int_equal(nw_event_encode(&e, b), 0);
    return b;
}

/* Feeds one live batch holding the given seqs (0-terminated). */
static void feed(evsub *s, tx *t, uint64_t ep, const uint64_t *seqs)
{
    herald_buf batch = {0};
    for (; *seqs; seqs++) {
        herald_buf *b = enc(t, ep, *seqs);
        assert_int_equal(nw_batch_add(&batch, b->data, b->len), 0);
    }
    evsub_batch(s, batch.data, batch.len);
    herald_buf_free(&batch);
}

/* Answers the fetch last asked for with the events from..to. */
static void answer(evsub *s, tx *t, uint64_t ep, uint64_t from, uint64_t to)
{
    herald_str v[MAXEV];
    uint32_t n = 0;
    for (uint64_t q = from; q <= to; q++) {
        herald_buf *b = enc(t, ep, q);
        v[n++] = (herald_str){.ptr = (const char *)b->data, .len = (uint32_t)b->len};
    }
    evsub_replayed(s, 7, ep, t->f_from, t->f_to, 0, v, n);
}

static void in_order(const tx *t, uint64_t first, uint32_t n)
{
    assert_int_equal(t->n, n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(t->got[i], first + i);
}

static void tx_free(tx *t)
{
    for (int i = 0; i <= MAXEV; i++)
        herald_buf_free(&t->enc[i]);
}

static void test_gap_repaired_in_order(void **state)
{
    tx *t = calloc(1, sizeof *t);
    evsub *s;
    evsub_stats st;
    (void)state;
    assert_int_equal(evsub_create(EV_DEFAULT, &(evsub_config){0}, on_deliver, on_fetch, t, &s), 0);
    feed(s, t, 9, (uint64_t[]){5, 6, 0});          /* first contact: starts at 5 */
    feed(s, t, 9, (uint64_t[]){9, 10, 0});         /* 7, 8 dropped by nng */
    in_order(t, 5, 2);
    assert_int_equal(t->fetches, 1);
    assert_int_equal(t->f_from, 7);
    assert_int_equal(t->f_to, 8);
    feed(s, t, 9, (uint64_t[]){11, 0});            /* still held behind the hole */
    assert_int_equal(t->n, 2);
    answer(s, t, 9, 7, 8);
    in_order(t, 5, 7);                             /* 5..11, in order */
    feed(s, t, 9, (uint64_t[]){10, 11, 12, 0});    /* repeats dropped, 12 goes on */
    in_order(t, 5, 8);
    evsub_stats_get(s, &st);
    assert_int_equal(st.gaps, 1);
    assert_int_equal(st.repaired, 2);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.dups, 2);
    evsub_destroy(s);
    tx_free(t);
    free(t);
}

/* An answer to a range already given up must not give up a newer hole. */
static void test_stale_answer_keeps_new_hole(void **state)
{
    tx *t = calloc(1, sizeof *t);
    evsub *s;
    evsub_stats st;
    (void)state;
    assert_int_equal(evsub_create(EV_DEFAULT, &(evsub_config){0}, on_deliver, on_fetch, t, &s), 0);
    feed(s, t, 3, (uint64_t[]){1, 0});
    feed(s, t, 3, (uint64_t[]){3, 0});             /* hole: 2 */
    answer(s, t, 3, 2, 2);                         /* repaired */
    in_order(t, 1, 3);
    feed(s, t, 3, (uint64_t[]){6, 0});             /* hole: 4..5 */
    assert_int_equal(t->f_from, 4);
    assert_int_equal(t->f_to, 5);
    {
        /* A late answer to the first fetch (2..2), e.g. after a timeout. */
        herald_buf *b = enc(t, 3, 2);
        herald_str v = {.ptr = (const char *)b->data, .len = (uint32_t)b->len};
        evsub_replayed(s, 7, 3, 2, 2, 0, &v, 1);
    }
    evsub_stats_get(s, &st);
    assert_int_equal(st.lost, 0);                  /* 4..5 are still being fetched */
    answer(s, t, 3, 4, 5);
    in_order(t, 1, 6);
    evsub_destroy(s);
    tx_free(t);
    free(t);
}

/* What the node no longer has is skipped and counted; a new epoch restarts. */
static void test_lost_and_new_epoch(void **state)
{
    tx *t = calloc(1, sizeof *t);
    evsub *s;
    evsub_stats st;
    (void)state;
    assert_int_equal(evsub_create(EV_DEFAULT, &(evsub_config){0}, on_deliver, on_fetch, t, &s), 0);
    feed(s, t, 1, (uint64_t[]){1, 0});
    feed(s, t, 1, (uint64_t[]){5, 0});             /* hole 2..4 */
    answer(s, t, 1, 4, 4);                         /* the ring only had 4 */
    evsub_stats_get(s, &st);
    assert_int_equal(st.lost, 2);
    assert_int_equal(t->n, 3);                     /* 1, 4, 5 */
    assert_int_equal(t->got[1], 4);
    assert_int_equal(t->got[2], 5);
    feed(s, t, 2, (uint64_t[]){1, 2, 0});          /* the node restarted */
    assert_int_equal(t->n, 5);
    evsub_destroy(s);
    tx_free(t);
    free(t);
}

/* The newest events dropped: nothing after them shows the hole, the HEAD
 * marker does. */
static void test_head_finds_tail(void **state)
{
    tx *t = calloc(1, sizeof *t);
    evsub *s;
    herald_buf batch = {0}, b = {0};
    nw_event h = {.kind = NW_EV_HEAD, .node = 7, .epoch = 5, .pubseq = 4};
    (void)state;
    assert_int_equal(evsub_create(EV_DEFAULT, &(evsub_config){0}, on_deliver, on_fetch, t, &s), 0);
    feed(s, t, 5, (uint64_t[]){1, 2, 0});
    assert_int_equal(nw_event_encode(&h, &b), 0);
    assert_int_equal(nw_batch_add(&batch, b.data, b.len), 0);
    evsub_batch(s, batch.data, batch.len);
    assert_int_equal(t->fetches, 1);
    assert_int_equal(t->f_from, 3);
    assert_int_equal(t->f_to, 4);
    answer(s, t, 5, 3, 4);
    in_order(t, 1, 4);
    evsub_batch(s, batch.data, batch.len);         /* nothing missing now */
    assert_int_equal(t->fetches, 1);
    evsub_destroy(s);
    herald_buf_free(&b);
    herald_buf_free(&batch);
    tx_free(t);
    free(t);
}

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* No answer within repair_ms: the hole is given up, held events go on. */
static void test_repair_timeout(void **state)
{
    tx *t = calloc(1, sizeof *t);
    struct ev_loop *loop = ev_loop_new(0);
    evsub *s;
    ev_timer stop;
    evsub_stats st;
    (void)state;
    assert_int_equal(
        evsub_create(loop, &(evsub_config){.repair_ms = 20}, on_deliver, on_fetch, t, &s), 0);
    feed(s, t, 4, (uint64_t[]){1, 0});
    feed(s, t, 4, (uint64_t[]){3, 4, 0});
    assert_int_equal(t->n, 1);
    ev_timer_init(&stop, stop_loop, 0.2, 0.0);
    ev_timer_start(loop, &stop);
    ev_run(loop, 0);
    evsub_stats_get(s, &st);
    assert_int_equal(st.lost, 1);
    assert_int_equal(t->n, 3);
    evsub_destroy(s);
    ev_loop_destroy(loop);
    tx_free(t);
    free(t);
}

/* Garbage in a batch is counted, never delivered. */
static void test_bad_batches(void **state)
{
    tx *t = calloc(1, sizeof *t);
    evsub *s;
    evsub_stats st;
    uint8_t junk[] = {0, 0, 0, 9, 1, 2, 3};
    uint8_t zero[] = {0, 0, 0, 0};
    (void)state;
    assert_int_equal(evsub_create(EV_DEFAULT, &(evsub_config){0}, on_deliver, on_fetch, t, &s), 0);
    evsub_batch(s, junk, sizeof junk);
    evsub_batch(s, zero, sizeof zero);
    evsub_stats_get(s, &st);
    assert_int_equal(st.bad, 2);
    assert_int_equal(t->n, 0);
    evsub_destroy(s);
    free(t);
}

/* The node side: the ring answers replays, drops the oldest when full. */
static void test_ring_replay(void **state)
{
    evpub *p;
    evpub_config c = {.url = "inproc://test-evpub", .node_id = 2, .ring = 16};
    evpub_stats st;
    herald_str v[32];
    uint32_t n;
    herald_str user = {.ptr = "u", .len = 1};
    (void)state;
    assert_int_equal(evpub_create(EV_DEFAULT, &c, &p), 0);
    evpub_stats_get(p, &st);
    for (int i = 0; i < 20; i++) {
        nw_event e = {.kind = NW_EV_DND, .tenant = {.ptr = "t", .len = 1}, .n_users = 1,
                      .users = &user};
        assert_int_equal(evpub_add(p, &e), 0);
        assert_int_equal(e.pubseq, (uint64_t)i + 1);
        assert_int_equal(e.epoch, st.epoch);
    }
    assert_int_equal(evpub_replay(p, st.epoch, 10, 12, v, 32, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(evpub_replay(p, st.epoch, 1, 6, v, 32, &n), 0); /* 1..4 gone */
    assert_int_equal(n, 2);
    {
        nw_event e;
        assert_int_equal(nw_event_decode((const uint8_t *)v[0].ptr, v[0].len, &e), 0);
        assert_int_equal(e.pubseq, 5);
        nw_event_release(&e);
    }
    assert_int_equal(evpub_replay(p, st.epoch, 1, 4, v, 32, &n), HERALD_ENOT_FOUND);
    assert_int_equal(evpub_replay(p, st.epoch + 1, 10, 12, v, 32, &n), HERALD_ENOT_FOUND);
    assert_int_equal(evpub_replay(p, st.epoch, 21, 30, v, 32, &n), HERALD_ENOT_FOUND);
    evpub_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gap_repaired_in_order),
        cmocka_unit_test(test_stale_answer_keeps_new_hole),
        cmocka_unit_test(test_lost_and_new_epoch),
        cmocka_unit_test(test_repair_timeout),
        cmocka_unit_test(test_head_finds_tail),
        cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_ring_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
