/*
 * test_rio_net.c — conformance of rio's transport and codec: every raft
 * message type, with entries of several sizes, crosses two hubs on
 * 127.0.0.1 intact (sender id and address included); many messages to one
 * peer in one iteration share one nng message; malformed frames (garbage,
 * every truncation of a valid frame, lying counts) are rejected without
 * crashing and the hub keeps working; messages for unknown groups are
 * dropped. InstallSnapshots over max_msg are streamed in chunks and arrive
 * whole and intact, exactly once; a cancelled stream resumes where the
 * receiver stands; a chunk stream whose hash does not match is discarded.
 */
#include <ev.h>
#include <herald/error.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rio_int.h"

enum { GID = 7, MAXMSG = 64 };

/* Fixture: hubs A (id 1) and B (id 2), a raw io for GID on each. */
typedef struct fx {
    char dir[2][64];                 /* data dirs */
    struct ev_loop *loop;            /* loop */
    rio_hub *hub[2];                 /* hubs */
    struct raft_io io[2];            /* ios */
    struct raft_message got[MAXMSG]; /* received on B (raft-owned parts kept) */
    int ngot;                        /* how many */
    struct raft_io_send req[MAXMSG]; /* send requests on A */
    int sent;                        /* send callbacks */
    int send_status;                 /* OR of their statuses */
    int last_status;                 /* status of the last one */
    int closed;                      /* close callbacks */
} fx;

static fx *F;

static void on_recv(struct raft_io *io, struct raft_message *m)
{
    if (F->ngot < MAXMSG) {
        F->got[F->ngot] = *m;
        F->got[F->ngot].server_address = strdup(m->server_address);
        F->ngot++;
    } else {
        rio_msg_release(m);
    }
}

static void on_tick(struct raft_io *io) {}
static void on_tmo(struct ev_loop *loop, ev_timer *w, int revents) {}
static void on_close(struct raft_io *io) { F->closed++; }

static void on_sent(struct raft_io_send *req, int status)
{
    F->sent++;
    F->send_status |= status;
    F->last_status = status;
}

static bool run_until(fx *f, int *flag, int want, double secs)
{
    ev_timer t;
    ev_tstamp end = ev_time() + secs;
    ev_timer_init(&t, on_tmo, 0.01, 0.01);
    ev_timer_start(f->loop, &t);
    while (*flag < want && ev_time() < end)
        ev_run(f->loop, EVRUN_ONCE);
    ev_timer_stop(f->loop, &t);
    return *flag >= want;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    int i;
    f->loop = ev_loop_new(EVFLAG_AUTO);
    for (i = 0; i < 2; i++) {
        rio_hub_config cfg = {.node_id = (uint64_t)i + 1, .listen_url = "tcp://127.0.0.1:0",
                              .data_dir = f->dir[i], .map_size = 32u << 20,
                              .max_msg = 4u << 20};
        snprintf(f->dir[i], sizeof f->dir[i], "/tmp/test_rio_net%d_XXXXXX", i);
        assert_non_null(mkdtemp(f->dir[i]));
        assert_int_equal(rio_hub_create(f->loop, &cfg, &f->hub[i]), 0);
        assert_int_equal(rio_io_init(&f->io[i], f->hub[i], GID), 0);
        assert_int_equal(f->io[i].init(&f->io[i], (raft_id)i + 1, rio_hub_address(f->hub[i])), 0);
        assert_int_equal(f->io[i].start(&f->io[i], 100, on_tick, on_recv), 0);
    }
    F = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    int i;
    for (i = 0; i < f->ngot; i++) {
        free((char *)f->got[i].server_address);
        rio_msg_release(&f->got[i]);
    }
    f->closed = 0;
    for (i = 0; i < 2; i++)
        f->io[i].close(&f->io[i], on_close);
    assert_true(run_until(f, &f->closed, 2, 5));
    for (i = 0; i < 2; i++) {
        rio_hub_destroy(f->hub[i]);
        snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir[i]);
        assert_int_equal(system(cmd), 0);
    }
    ev_loop_destroy(f->loop);
    free(f);
    return 0;
}

/* Sends m from A to B (destination filled in). */
static void send_ab(fx *f, struct raft_message *m)
{
    int before = f->sent;
    rio_buf b = {0};
    m->server_id = 2;
    m->server_address = rio_hub_address(f->hub[1]);
    /* rio_msg_size (used to keep frames under max_msg) is exact. */
    assert_int_equal(rio_msg_encode(&b, 7, m), 0);
    assert_int_equal(rio_msg_size(m), b.len);
    rio_buf_free(&b);
    assert_int_equal(f->io[0].send(&f->io[0], &f->req[before], m, on_sent), 0);
    assert_int_equal(f->sent, before); /* never inside the call */
}

static void test_every_type_roundtrip(void **state)
{
    fx *f = *state;
    static const size_t sizes[] = {0, 1, 1000, 200000};
    struct raft_entry ents[4];
    struct raft_message m[6];
    uint8_t *payload[4];
    rio_stats st;
    int i, tries = 0;
    unsigned k;

    for (k = 0; k < 4; k++) {
        payload[k] = malloc(sizes[k] + 1);
        memset(payload[k], 'a' + (int)k, sizes[k]);
        ents[k].term = 3 + k;
        ents[k].type = k == 3 ? RAFT_CHANGE : RAFT_COMMAND;
        ents[k].buf.base = payload[k];
        ents[k].buf.len = sizes[k];
        ents[k].batch = NULL;
    }
    memset(m, 0, sizeof m);
    m[0].type = RAFT_IO_APPEND_ENTRIES;
    m[0].append_entries = (struct raft_append_entries){.term = 9, .prev_log_index = 41,
        .prev_log_term = 8, .leader_commit = 40, .entries = ents, .n_entries = 4};
    m[1].type = RAFT_IO_APPEND_ENTRIES_RESULT;
    m[1].append_entries_result = (struct raft_append_entries_result){.term = 9, .rejected = 5,
        .last_log_index = 45};
    m[2].type = RAFT_IO_REQUEST_VOTE;
    m[2].request_vote = (struct raft_request_vote){.term = 10, .candidate_id = 1,
        .last_log_index = 45, .last_log_term = 9, .disrupt_leader = true, .pre_vote = true};
    m[3].type = RAFT_IO_REQUEST_VOTE_RESULT;
    m[3].request_vote_result = (struct raft_request_vote_result){.term = 10, .vote_granted = true,
        .pre_vote = raft_tribool_true};
    m[4].type = RAFT_IO_INSTALL_SNAPSHOT;
    m[4].install_snapshot.term = 11;
    m[4].install_snapshot.last_index = 100;
    m[4].install_snapshot.last_term = 10;
    m[4].install_snapshot.conf_index = 1;
    raft_configuration_init(&m[4].install_snapshot.conf);
    assert_int_equal(raft_configuration_add(&m[4].install_snapshot.conf, 1, "tcp://a:1", RAFT_VOTER), 0);
    assert_int_equal(raft_configuration_add(&m[4].install_snapshot.conf, 2, "tcp://b:2", RAFT_SPARE), 0);
    m[4].install_snapshot.data.base = payload[2];
    m[4].install_snapshot.data.len = sizes[2];
    m[5].type = RAFT_IO_TIMEOUT_NOW;
    m[5].timeout_now = (struct raft_timeout_now){.term = 12, .last_log_index = 46, .last_log_term = 11};

    /* The first message dials; retry until the pipe is up. */
    while (f->ngot == 0 && tries++ < 200) {
        struct raft_message hb = m[1];
        int want = f->sent + 1;
        f->send_status = 0;
        send_ab(f, &hb);
        assert_true(run_until(f, &f->sent, want, 2));
        run_until(f, &f->ngot, 1, 0.02);
    }
    assert_int_equal(f->ngot, 1);
    assert_int_equal(f->got[0].type, RAFT_IO_APPEND_ENTRIES_RESULT);

    /* All six in one iteration → one nng message. */
    rio_hub_stats(f->hub[0], &st);
    f->send_status = 0;
    for (i = 0; i < 6; i++)
        send_ab(f, &m[i]);
    assert_true(run_until(f, &f->ngot, 7, 5));
    assert_int_equal(f->send_status, 0);
    {
        rio_stats st2;
        rio_hub_stats(f->hub[0], &st2);
        assert_int_equal(st2.frames_sent - st.frames_sent, 1);
        assert_int_equal(st2.msgs_sent - st.msgs_sent, 6);
    }
    for (i = 0; i < 6; i++) {
        struct raft_message *g = &f->got[i + 1];
        assert_int_equal(g->type, m[i].type);
        assert_int_equal(g->server_id, 1);
        assert_string_equal(g->server_address, rio_hub_address(f->hub[0]));
    }
    {
        struct raft_append_entries *ae = &f->got[1].append_entries;
        assert_int_equal(ae->term, 9);
        assert_int_equal(ae->prev_log_index, 41);
        assert_int_equal(ae->prev_log_term, 8);
        assert_int_equal(ae->leader_commit, 40);
        assert_int_equal(ae->n_entries, 4);
        for (k = 0; k < 4; k++) {
            assert_int_equal(ae->entries[k].term, 3 + k);
            assert_int_equal(ae->entries[k].type, ents[k].type);
            assert_int_equal(ae->entries[k].buf.len, sizes[k]);
            if (sizes[k])
                assert_memory_equal(ae->entries[k].buf.base, payload[k], sizes[k]);
            assert_non_null(ae->entries[k].batch);
        }
    }
    assert_memory_equal(&f->got[2].append_entries_result, &m[1].append_entries_result,
                        sizeof m[1].append_entries_result);
    assert_int_equal(f->got[3].request_vote.term, 10);
    assert_int_equal(f->got[3].request_vote.candidate_id, 1);
    assert_int_equal(f->got[3].request_vote.last_log_index, 45);
    assert_int_equal(f->got[3].request_vote.last_log_term, 9);
    assert_true(f->got[3].request_vote.disrupt_leader);
    assert_true(f->got[3].request_vote.pre_vote);
    assert_int_equal(f->got[4].request_vote_result.term, 10);
    assert_true(f->got[4].request_vote_result.vote_granted);
    assert_int_equal(f->got[4].request_vote_result.pre_vote, raft_tribool_true);
    {
        struct raft_install_snapshot *is = &f->got[5].install_snapshot;
        assert_int_equal(is->term, 11);
        assert_int_equal(is->last_index, 100);
        assert_int_equal(is->last_term, 10);
        assert_int_equal(is->conf_index, 1);
        assert_int_equal(is->conf.n, 2);
        assert_int_equal(is->conf.servers[1].id, 2);
        assert_int_equal(is->conf.servers[1].role, RAFT_SPARE);
        assert_string_equal(is->conf.servers[1].address, "tcp://b:2");
        assert_int_equal(is->data.len, sizes[2]);
        assert_memory_equal(is->data.base, payload[2], sizes[2]);
    }
    assert_memory_equal(&f->got[6].timeout_now, &m[5].timeout_now, sizeof m[5].timeout_now);

    /* A message for a group B does not host is dropped, not delivered. */
    {
        struct raft_io other;
        struct raft_io_send req;
        struct raft_message hb = m[1];
        rio_stats b0, b1;
        rio_hub_stats(f->hub[1], &b0);
        assert_int_equal(rio_io_init(&other, f->hub[0], GID + 1), 0);
        hb.server_id = 2;
        hb.server_address = rio_hub_address(f->hub[1]);
        assert_int_equal(other.send(&other, &req, &hb, on_sent), 0);
        f->closed = 0;
        other.close(&other, on_close); /* waits for the send callback */
        assert_true(run_until(f, &f->closed, 1, 5));
        do {
            run_until(f, &f->closed, 2, 0.02);
            rio_hub_stats(f->hub[1], &b1);
        } while (b1.msgs_orphan == b0.msgs_orphan && tries++ < 400);
        assert_int_equal(b1.msgs_orphan - b0.msgs_orphan, 1);
    }
    raft_configuration_close(&m[4].install_snapshot.conf);
    for (k = 0; k < 4; k++)
        free(payload[k]);
}

/* Encodes a valid frame with one message of each kind into b. */
static void build_frame(rio_buf *b)
{
    struct raft_entry e[2] = {{.term = 1, .type = RAFT_COMMAND, .buf = {"abc", 3}},
                              {.term = 2, .type = RAFT_BARRIER, .buf = {NULL, 0}}};
    struct raft_message m;
    memset(&m, 0, sizeof m);
    assert_int_equal(rio_frame_begin(b, 5, "tcp://127.0.0.1:9"), 0);
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.append_entries.term = 2;
    m.append_entries.entries = e;
    m.append_entries.n_entries = 2;
    assert_int_equal(rio_msg_encode(b, 1, &m), 0);
    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_INSTALL_SNAPSHOT;
    raft_configuration_init(&m.install_snapshot.conf);
    assert_int_equal(raft_configuration_add(&m.install_snapshot.conf, 1, "x", RAFT_VOTER), 0);
    m.install_snapshot.data.base = "snap";
    m.install_snapshot.data.len = 4;
    assert_int_equal(rio_msg_encode(b, 2, &m), 0);
    raft_configuration_close(&m.install_snapshot.conf);
    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_REQUEST_VOTE;
    assert_int_equal(rio_msg_encode(b, 3, &m), 0);
}

static void test_decoder_rejects_malformed(void **state)
{
    rio_buf b = {0};
    rio_frame fr;
    size_t n;
    uint8_t *copy;

    (void)state;
    build_frame(&b);
    assert_int_equal(rio_frame_decode(b.data, b.len, &fr), 0);
    assert_int_equal(fr.n, 3);
    assert_int_equal(fr.sender_id, 5);
    assert_int_equal(fr.recs[0].msg.append_entries.n_entries, 2);
    assert_int_equal(fr.recs[1].gid, 2);
    rio_frame_free(&fr);
    /* Every strict prefix is rejected, except those ending on a record
     * boundary, which decode to fewer records. */
    for (n = 0; n < b.len; n++) {
        int rc;
        copy = malloc(n ? n : 1);
        memcpy(copy, b.data, n);
        rc = rio_frame_decode(copy, n, &fr);
        if (rc == 0) {
            assert_true(fr.n < 3);
            rio_frame_free(&fr);
        } else {
            assert_int_equal(rc, HERALD_EPROTOCOL);
        }
        free(copy);
    }
    /* A lying entry count (2 → 0x7fffffff) is caught before allocating. */
    copy = malloc(b.len);
    memcpy(copy, b.data, b.len);
    {
        size_t off = 14 + strlen("tcp://127.0.0.1:9") + 9 + 32;
        rio_put32(copy + off, 0x7fffffffu);
        assert_int_equal(rio_frame_decode(copy, b.len, &fr), HERALD_EPROTOCOL);
        /* Bad magic. */
        memcpy(copy, b.data, b.len);
        copy[0] ^= 1;
        assert_int_equal(rio_frame_decode(copy, b.len, &fr), HERALD_EPROTOCOL);
        /* Unknown entry type. */
        memcpy(copy, b.data, b.len);
        copy[off + 4 + 8] = 9;
        assert_int_equal(rio_frame_decode(copy, b.len, &fr), HERALD_EPROTOCOL);
    }
    free(copy);
    rio_buf_free(&b);
}

static void test_garbage_over_the_wire(void **state)
{
    fx *f = *state;
    nng_socket s;
    rio_buf b = {0};
    rio_stats st;
    int i, sent = 0, tries = 0;
    uint8_t junk[512];

    assert_int_equal(nng_push0_open(&s), 0);
    assert_int_equal(nng_dial(s, rio_hub_address(f->hub[1]), NULL, 0), 0);
    for (i = 0; i < (int)sizeof junk; i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    assert_int_equal(nng_send(s, junk, sizeof junk, 0), 0);
    assert_int_equal(nng_send(s, junk, 3, 0), 0);
    build_frame(&b);
    assert_int_equal(nng_send(s, b.data, b.len - 1, 0), 0); /* truncated */
    sent = 3;
    do {
        int dummy = 0;
        run_until(f, &dummy, 1, 0.02);
        rio_hub_stats(f->hub[1], &st);
    } while (st.frames_bad < (uint64_t)sent && tries++ < 250);
    assert_int_equal(st.frames_bad, sent);
    /* A valid frame from a stranger for our group still gets through. */
    rio_buf_free(&b);
    {
        struct raft_message m;
        memset(&m, 0, sizeof m);
        m.type = RAFT_IO_TIMEOUT_NOW;
        m.timeout_now.term = 77;
        assert_int_equal(rio_frame_begin(&b, 9, "tcp://127.0.0.1:1"), 0);
        assert_int_equal(rio_msg_encode(&b, GID, &m), 0);
        assert_int_equal(nng_send(s, b.data, b.len, 0), 0);
    }
    assert_true(run_until(f, &f->ngot, 1, 5));
    assert_int_equal(f->got[0].type, RAFT_IO_TIMEOUT_NOW);
    assert_int_equal(f->got[0].timeout_now.term, 77);
    assert_int_equal(f->got[0].server_id, 9);
    rio_buf_free(&b);
    nng_close(s);
}

/* An InstallSnapshot of `len` bytes of data from A to B. */
static void make_snap(fx *f, struct raft_message *m, uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    memset(m, 0, sizeof *m);
    m->type = RAFT_IO_INSTALL_SNAPSHOT;
    m->server_id = 2;
    m->server_address = rio_hub_address(f->hub[1]);
    m->install_snapshot.term = 3;
    m->install_snapshot.last_index = 4321;
    m->install_snapshot.last_term = 2;
    m->install_snapshot.conf_index = 17;
    raft_configuration_init(&m->install_snapshot.conf);
    assert_int_equal(raft_configuration_add(&m->install_snapshot.conf, 1, "tcp://a:1", RAFT_VOTER), 0);
    assert_int_equal(raft_configuration_add(&m->install_snapshot.conf, 2, "tcp://b:2", RAFT_VOTER), 0);
    m->install_snapshot.data.base = data;
    m->install_snapshot.data.len = len;
}

static void check_snap(const struct raft_message *got, const struct raft_message *m)
{
    assert_int_equal(got->type, RAFT_IO_INSTALL_SNAPSHOT);
    assert_int_equal(got->server_id, 1);
    assert_int_equal(got->install_snapshot.term, 3);
    assert_int_equal(got->install_snapshot.last_index, 4321);
    assert_int_equal(got->install_snapshot.last_term, 2);
    assert_int_equal(got->install_snapshot.conf_index, 17);
    assert_int_equal(got->install_snapshot.conf.n, 2);
    assert_string_equal(got->install_snapshot.conf.servers[1].address, "tcp://b:2");
    assert_int_equal(got->install_snapshot.data.len, m->install_snapshot.data.len);
    assert_memory_equal(got->install_snapshot.data.base, m->install_snapshot.data.base,
                        m->install_snapshot.data.len);
}

/* 24 MiB (6 x max_msg): streamed, arrives once, intact; the send completes
 * with 0 only after it was handed over, never inside the call. */
static void test_snapshot_streamed(void **state)
{
    fx *f = *state;
    const size_t len = 24u << 20;
    uint8_t *data = malloc(len);
    struct raft_message m;
    rio_stats a, b;

    make_snap(f, &m, data, len);
    assert_int_equal(f->io[0].send(&f->io[0], &f->req[0], &m, on_sent), 0);
    assert_int_equal(f->sent, 0);
    assert_true(run_until(f, &f->sent, 1, 30));
    assert_int_equal(f->last_status, 0);
    assert_int_equal(f->ngot, 1); /* handed to raft before the sender hears COMPLETE */
    check_snap(&f->got[0], &m);
    run_until(f, &f->ngot, 2, 0.3); /* no second copy */
    assert_int_equal(f->ngot, 1);
    rio_hub_stats(f->hub[0], &a);
    rio_hub_stats(f->hub[1], &b);
    printf("# %zu-byte snapshot, max_msg 4 MiB: %llu chunks, %llu bytes sent\n", len,
           (unsigned long long)a.snap_chunks, (unsigned long long)a.snap_bytes);
    assert_int_equal(a.snap_streams, 1);
    assert_int_equal(a.snap_resumed, 0);
    assert_true(a.snap_chunks >= 24);
    assert_true(a.snap_bytes >= len);
    assert_int_equal(b.snap_installed, 1);
    assert_int_equal(a.msgs_toobig, 0);
    raft_configuration_close(&m.install_snapshot.conf);
    free(data);
}

/* A stream cancelled half way (raft gave up, the group closed, …): the next
 * send of the same snapshot asks the receiver where it stands and sends
 * only the rest. */
static void test_snapshot_stream_resumes(void **state)
{
    fx *f = *state;
    const size_t len = 24u << 20;
    uint8_t *data = malloc(len);
    struct raft_message m;
    rio_stats a;
    uint64_t first;
    int tries = 0;

    make_snap(f, &m, data, len);
    assert_int_equal(f->io[0].send(&f->io[0], &f->req[0], &m, on_sent), 0);
    do {
        int dummy = 0;
        run_until(f, &dummy, 1, 0.001);
        rio_hub_stats(f->hub[0], &a);
    } while (a.snap_bytes < (12u << 20) && f->sent == 0 && tries++ < 20000);
    assert_int_equal(f->sent, 0);
    rio_net_cancel(rio_hub_net(f->hub[0]), GID);
    assert_int_equal(f->sent, 0); /* not inside the call either */
    assert_true(run_until(f, &f->sent, 1, 5));
    assert_int_equal(f->last_status, RAFT_CANCELED);
    rio_hub_stats(f->hub[0], &a);
    first = a.snap_bytes;
    assert_int_equal(f->ngot, 0);

    assert_int_equal(f->io[0].send(&f->io[0], &f->req[1], &m, on_sent), 0);
    assert_true(run_until(f, &f->sent, 2, 30));
    assert_int_equal(f->last_status, 0);
    assert_int_equal(f->ngot, 1);
    check_snap(&f->got[0], &m);
    rio_hub_stats(f->hub[0], &a);
    printf("# resumed: %llu bytes before the cancel, %llu after (of %zu)\n",
           (unsigned long long)first, (unsigned long long)(a.snap_bytes - first), len);
    assert_int_equal(a.snap_streams, 2);
    assert_int_equal(a.snap_resumed, 1);
    assert_true(a.snap_bytes - first < len - (2u << 20)); /* not from the start */
    raft_configuration_close(&m.install_snapshot.conf);
    free(data);
}

/* A chunk stream whose bytes do not match its hash is discarded, not given
 * to raft; the same bytes with the right hash are. */
static void test_snapshot_chunk_verified(void **state)
{
    fx *f = *state;
    static uint8_t data[3000];
    nng_socket s;
    rio_buf b = {0};
    rio_chunk c;
    rio_stats st;
    int k, tries = 0;

    memset(&c, 0, sizeof c);
    for (k = 0; k < (int)sizeof data; k++)
        data[k] = (uint8_t)k;
    c.term = 3;
    c.last_index = 99;
    c.last_term = 2;
    c.conf_index = 1;
    raft_configuration_init(&c.conf);
    assert_int_equal(raft_configuration_add(&c.conf, 9, "tcp://127.0.0.1:1", RAFT_VOTER), 0);
    c.total = sizeof data;
    c.data = data;
    c.len = sizeof data;
    assert_int_equal(nng_push0_open(&s), 0);
    assert_int_equal(nng_dial(s, rio_hub_address(f->hub[1]), NULL, 0), 0);
    for (k = 0; k < 2; k++) {
        c.hash = rio_hash64(data, sizeof data) ^ (k == 0 ? 1u : 0u);
        assert_int_equal(rio_frame_begin(&b, 9, "tcp://127.0.0.1:1"), 0);
        assert_int_equal(rio_chunk_encode(&b, GID, &c), 0);
        assert_int_equal(rio_chunk_size(&c), b.len - 14 - strlen("tcp://127.0.0.1:1"));
        assert_int_equal(nng_send(s, b.data, b.len, 0), 0);
        rio_buf_free(&b);
        if (k == 0) {
            do {
                int dummy = 0;
                run_until(f, &dummy, 1, 0.02);
                rio_hub_stats(f->hub[1], &st);
            } while (st.snap_bad == 0 && tries++ < 250);
            assert_int_equal(st.snap_bad, 1);
            assert_int_equal(f->ngot, 0);
        }
    }
    assert_true(run_until(f, &f->ngot, 1, 5));
    assert_int_equal(f->got[0].type, RAFT_IO_INSTALL_SNAPSHOT);
    assert_int_equal(f->got[0].install_snapshot.data.len, sizeof data);
    assert_memory_equal(f->got[0].install_snapshot.data.base, data, sizeof data);
    rio_hub_stats(f->hub[1], &st);
    assert_int_equal(st.snap_installed, 1);
    raft_configuration_close(&c.conf);
    nng_close(s);
}

/* Sends one chunk record from node `from` (address tcp://127.0.0.1:1) to B. */
static void push_chunk(nng_socket s, raft_id from, const rio_chunk *c)
{
    rio_buf b = {0};
    assert_int_equal(rio_frame_begin(&b, from, "tcp://127.0.0.1:1"), 0);
    assert_int_equal(rio_chunk_encode(&b, GID, c), 0);
    assert_int_equal(nng_send(s, b.data, b.len, 0), 0);
    rio_buf_free(&b);
}

/* A deposed leader (lower term) cannot replace the assembly of the current
 * one: its complete, valid stream is ignored, the current one completes. */
static void test_snapshot_lower_term_ignored(void **state)
{
    fx *f = *state;
    static uint8_t data[3000];
    nng_socket s;
    rio_chunk c;
    rio_stats st;
    int k;

    memset(&c, 0, sizeof c);
    for (k = 0; k < (int)sizeof data; k++)
        data[k] = (uint8_t)(k * 7);
    c.last_index = 99;
    c.last_term = 2;
    c.conf_index = 1;
    raft_configuration_init(&c.conf);
    assert_int_equal(raft_configuration_add(&c.conf, 9, "tcp://127.0.0.1:1", RAFT_VOTER), 0);
    c.total = sizeof data;
    c.hash = rio_hash64(data, sizeof data);
    assert_int_equal(nng_push0_open(&s), 0);
    assert_int_equal(nng_dial(s, rio_hub_address(f->hub[1]), NULL, 0), 0);
    c.term = 5; /* the current leader, node 9: the first 1000 bytes */
    c.data = data;
    c.len = 1000;
    push_chunk(s, 9, &c);
    c.term = 4; /* the old leader, node 8: everything */
    c.len = sizeof data;
    push_chunk(s, 8, &c);
    run_until(f, &f->ngot, 1, 0.3);
    assert_int_equal(f->ngot, 0);
    c.term = 5; /* node 9 goes on */
    c.offset = 1000;
    c.data = data + 1000;
    c.len = sizeof data - 1000;
    push_chunk(s, 9, &c);
    assert_true(run_until(f, &f->ngot, 1, 5));
    assert_int_equal(f->got[0].server_id, 9);
    assert_int_equal(f->got[0].install_snapshot.term, 5);
    assert_memory_equal(f->got[0].install_snapshot.data.base, data, sizeof data);
    rio_hub_stats(f->hub[1], &st);
    assert_int_equal(st.snap_installed, 1);
    raft_configuration_close(&c.conf);
    nng_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_type_roundtrip, setup, teardown),
        cmocka_unit_test(test_decoder_rejects_malformed),
        cmocka_unit_test_setup_teardown(test_garbage_over_the_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_streamed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_stream_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_chunk_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_lower_term_ignored, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
