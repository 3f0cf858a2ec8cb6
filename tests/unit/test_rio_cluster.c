/*
 * test_rio_cluster.c — end to end over rio: 3 hubs in one process (3 data
 * dirs, 3 loopback addresses, one loop), each hosting 2 raft groups with a
 * counter FSM. Bootstrap, elect, commit 1000 entries per group, every
 * replica applies the same sequence; close and reopen every hub: state is
 * restored (snapshots + log) and commits continue; close one hub: the other
 * two keep committing. Prints commits/s.
 *
 * Also: a follower far behind catches up through AppendEntries cut under
 * max_msg; a snapshot 32 times max_msg is streamed in chunks and installed
 * on a replica that lost its disk; rio_group_propose frees the command on a raft_apply error other
 * than NOTLEADER (an io->append failure injected in the store).
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

#include "rio_int.h"

enum { NN = 3, NG = 2, WINDOW = 64 };

/* A counter FSM that also hashes the order of what it applied. */
typedef struct cfsm {
    struct raft_fsm fsm; /* raft's view (fsm.data → this) */
    uint64_t count;      /* commands applied */
    uint64_t sum;        /* sum of their values */
    uint64_t hash;       /* order-sensitive hash of the values */
    uint64_t snapshots;  /* snapshots taken */
    uint64_t restores;   /* snapshots restored */
} cfsm;

static size_t g_snap_pad; /* bytes of padding in every snapshot */
static size_t g_max_msg;  /* hubs' max_msg (0: default) */
static size_t g_cmd_pad;  /* bytes of padding in every proposed command */
static unsigned g_snap_threshold; /* groups' snapshot_threshold (0: 256) */

static uint64_t get64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    cfsm *c = fsm->data;
    uint64_t v;
    if (buf->len < 8)
        return RAFT_MALFORMED;
    v = get64(buf->base);
    c->count++;
    c->sum += v;
    c->hash = c->hash * 1000003u ^ v;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    cfsm *c = fsm->data;
    uint64_t *p;
    *bufs = raft_malloc(sizeof **bufs);
    p = raft_calloc(1, 24 + g_snap_pad);
    if (!*bufs || !p) {
        raft_free(*bufs);
        raft_free(p);
        return RAFT_NOMEM;
    }
    p[0] = c->count;
    p[1] = c->sum;
    p[2] = c->hash;
    (*bufs)[0].base = p;
    (*bufs)[0].len = 24 + g_snap_pad;
    *n = 1;
    c->snapshots++;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    cfsm *c = fsm->data;
    if (buf->len < 24)
        return RAFT_MALFORMED;
    c->count = get64(buf->base);
    c->sum = get64((uint8_t *)buf->base + 8);
    c->hash = get64((uint8_t *)buf->base + 16);
    c->restores++;
    raft_free(buf->base);
    return 0;
}

/* One node: a hub and its replicas. */
typedef struct node {
    char dir[64];         /* data dir */
    char url[64];         /* its address (bound port fixed after the first start) */
    rio_hub *hub;         /* NULL when down */
    cfsm fsm[NG];         /* replicas */
    rio_group *g[NG];     /* groups */
} node;

/* The cluster under test. */
typedef struct cl {
    struct ev_loop *loop; /* shared loop */
    node n[NN];           /* nodes */
    uint64_t acked[NG];   /* proposals acknowledged */
    unsigned inflight[NG]; /* proposals in flight */
    uint64_t failed;      /* proposals that failed (retried) */
    uint64_t next_val[NG]; /* next value proposed */
    uint64_t target[NG];  /* acked goal */
} cl;

static cl *C;

static void node_up(cl *c, int i, bool first)
{
    node *n = &c->n[i];
    rio_hub_config cfg = {.node_id = (uint64_t)i + 1, .listen_url = n->url, .data_dir = n->dir,
                          .map_size = 256u << 20, .tick_ms = 20, .max_msg = g_max_msg};
    int g;

    assert_int_equal(rio_hub_create(c->loop, &cfg, &n->hub), 0);
    if (first)
        snprintf(n->url, sizeof n->url, "%s", rio_hub_address(n->hub));
    for (g = 0; g < NG; g++) {
        rio_group_config gc = {.group_id = 100 + (uint32_t)g, .fsm = &n->fsm[g].fsm,
                               .election_timeout = 800, .heartbeat_timeout = 80,
                               .snapshot_threshold = g_snap_threshold ? g_snap_threshold : 256,
                               .snapshot_trailing = 64};
        memset(&n->fsm[g], 0, sizeof n->fsm[g]);
        n->fsm[g].fsm.version = 1;
        n->fsm[g].fsm.data = &n->fsm[g];
        n->fsm[g].fsm.apply = fsm_apply;
        n->fsm[g].fsm.snapshot = fsm_snapshot;
        n->fsm[g].fsm.restore = fsm_restore;
        assert_int_equal(rio_group_add(n->hub, &gc, &n->g[g]), 0);
    }
}

static void node_down(cl *c, int i)
{
    rio_hub_destroy(c->n[i].hub);
    c->n[i].hub = NULL;
}

/* Starts the groups of node i (restarted, already bootstrapped). */
static void start_node(cl *c, int i)
{
    int g;
    for (g = 0; g < NG; g++)
        assert_int_equal(rio_group_start(c->n[i].g[g]), 0);
}

static void start_all(cl *c, bool bootstrap)
{
    rio_peer peers[NN];
    int i, g;
    for (i = 0; i < NN; i++) {
        peers[i].id = (uint64_t)i + 1;
        peers[i].url = c->n[i].url;
    }
    for (i = 0; i < NN; i++)
        for (g = 0; g < NG; g++) {
            if (bootstrap)
                assert_int_equal(rio_group_bootstrap(c->n[i].g[g], peers, NN), 0);
            else
                assert_int_equal(rio_group_bootstrap(c->n[i].g[g], peers, NN), HERALD_EEXISTS);
            assert_int_equal(rio_group_start(c->n[i].g[g]), 0);
        }
}

static rio_group *leader_of(cl *c, int g)
{
    int i;
    for (i = 0; i < NN; i++)
        if (c->n[i].hub && rio_group_is_leader(c->n[i].g[g]))
            return c->n[i].g[g];
    return NULL;
}

static void on_applied(void *arg, int status, void *result)
{
    int g = (int)(uintptr_t)arg;
    C->inflight[g]--;
    if (status == 0)
        C->acked[g]++;
    else
        C->failed++;
}

/* Keeps WINDOW proposals in flight per group until its target is acked. */
static void pump(cl *c)
{
    static uint8_t cmd[8 + (1u << 20)]; /* value + padding (g_cmd_pad) */
    int g;
    for (g = 0; g < NG; g++) {
        rio_group *l = leader_of(c, g);
        if (!l)
            continue;
        while (c->inflight[g] < WINDOW && c->acked[g] + c->inflight[g] < c->target[g]) {
            uint64_t v = ++c->next_val[g];
            memcpy(cmd, &v, sizeof v);
            if (rio_group_propose(l, cmd, sizeof v + g_cmd_pad, on_applied,
                                  (void *)(uintptr_t)g) != 0) {
                c->next_val[g]--;
                break;
            }
            c->inflight[g]++;
        }
    }
}

static void on_tmo(struct ev_loop *loop, ev_timer *w, int revents) {}

typedef bool (*cond_fn)(cl *c);

/* Runs the loop (pumping proposals) until cond holds or `secs` pass. */
static bool run_until(cl *c, cond_fn cond, double secs)
{
    ev_timer t;
    ev_tstamp end = ev_time() + secs;
    bool ok;
    ev_timer_init(&t, on_tmo, 0.005, 0.005);
    ev_timer_start(c->loop, &t);
    while (!(ok = cond(c)) && ev_time() < end) {
        pump(c);
        ev_run(c->loop, EVRUN_ONCE);
    }
    ev_timer_stop(c->loop, &t);
    return ok;
}

static bool have_leaders(cl *c)
{
    int g;
    for (g = 0; g < NG; g++)
        if (!leader_of(c, g))
            return false;
    return true;
}

static bool all_acked(cl *c)
{
    int g;
    for (g = 0; g < NG; g++)
        if (c->acked[g] < c->target[g] || c->inflight[g] > 0)
            return false;
    return true;
}

/* Every running replica of every group applied the same sequence, at
 * least the acked entries. */
static bool replicas_equal(cl *c)
{
    int g, i, first;
    for (g = 0; g < NG; g++) {
        first = -1;
        for (i = 0; i < NN; i++) {
            cfsm *f;
            if (!c->n[i].hub)
                continue;
            f = &c->n[i].fsm[g];
            if (f->count < c->acked[g])
                return false;
            if (first < 0) {
                first = i;
                continue;
            }
            if (f->count != c->n[first].fsm[g].count || f->hash != c->n[first].fsm[g].hash ||
                f->sum != c->n[first].fsm[g].sum)
                return false;
        }
    }
    return true;
}

static void set_targets(cl *c, uint64_t more)
{
    int g;
    for (g = 0; g < NG; g++)
        c->target[g] = c->acked[g] + more;
}

static int setup(void **state)
{
    cl *c = calloc(1, sizeof *c);
    int i;
    c->loop = ev_loop_new(EVFLAG_AUTO);
    for (i = 0; i < NN; i++) {
        snprintf(c->n[i].dir, sizeof c->n[i].dir, "/tmp/test_rio_cl%d_XXXXXX", i);
        assert_non_null(mkdtemp(c->n[i].dir));
        snprintf(c->n[i].url, sizeof c->n[i].url, "tcp://127.0.0.1:0");
    }
    C = c;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    cl *c = *state;
    char cmd[128];
    int i;
    for (i = 0; i < NN; i++) {
        if (c->n[i].hub)
            node_down(c, i);
        snprintf(cmd, sizeof cmd, "rm -rf %s", c->n[i].dir);
        assert_int_equal(system(cmd), 0);
    }
    ev_loop_destroy(c->loop);
    free(c);
    g_snap_pad = 0;
    g_max_msg = 0;
    g_cmd_pad = 0;
    g_snap_threshold = 0;
    raft_heap_set_default();
    return 0;
}

static void print_stats(cl *c, const char *when)
{
    int i;
    for (i = 0; i < NN; i++) {
        rio_stats s;
        if (!c->n[i].hub)
            continue;
        rio_hub_stats(c->n[i].hub, &s);
        printf("# %s node %d: txns %llu appends %llu entries %llu sync %llu | frames %llu msgs %llu"
               " (%.1f msgs/frame) fails %llu | recv frames %llu msgs %llu bad %llu orphan %llu\n",
               when, i + 1, (unsigned long long)s.txns, (unsigned long long)s.appends,
               (unsigned long long)s.entries, (unsigned long long)s.sync_txns,
               (unsigned long long)s.frames_sent, (unsigned long long)s.msgs_sent,
               s.frames_sent ? (double)s.msgs_sent / (double)s.frames_sent : 0.0,
               (unsigned long long)s.send_fails, (unsigned long long)s.frames_recv,
               (unsigned long long)s.msgs_recv, (unsigned long long)s.frames_bad,
               (unsigned long long)s.msgs_orphan);
    }
}

static void test_cluster(void **state)
{
    cl *c = *state;
    double t0, dt;
    int i, g;

    for (i = 0; i < NN; i++)
        node_up(c, i, true);
    start_all(c, true);
    assert_true(run_until(c, have_leaders, 20));

    /* 1000 commits per group. */
    set_targets(c, 1000);
    t0 = ev_time();
    assert_true(run_until(c, all_acked, 90));
    dt = ev_time() - t0;
    printf("# %d groups x 1000 commits, 3 replicas, window %d: %.2f s, %.0f commits/s"
           " (failed+retried %llu)\n", NG, WINDOW, dt, NG * 1000 / dt,
           (unsigned long long)c->failed);
    assert_true(run_until(c, replicas_equal, 20));
    print_stats(c, "run");
    for (g = 0; g < NG; g++)
        assert_true(c->n[0].fsm[g].snapshots + c->n[1].fsm[g].snapshots +
                    c->n[2].fsm[g].snapshots > 0);

    /* Close and reopen every hub: state restored, commits continue. */
    {
        uint64_t count[NG], hash[NG];
        for (g = 0; g < NG; g++) {
            count[g] = c->n[0].fsm[g].count;
            hash[g] = c->n[0].fsm[g].hash;
        }
        for (i = 0; i < NN; i++)
            node_down(c, i);
        for (i = 0; i < NN; i++)
            node_up(c, i, false);
        start_all(c, false);
        assert_true(run_until(c, have_leaders, 20));
        assert_true(run_until(c, replicas_equal, 20));
        for (g = 0; g < NG; g++) /* the snapshot was restored at start */
            assert_true(c->n[0].fsm[g].restores + c->n[1].fsm[g].restores +
                        c->n[2].fsm[g].restores > 0);
        set_targets(c, 200);
        assert_true(run_until(c, all_acked, 60));
        assert_true(run_until(c, replicas_equal, 20));
        for (g = 0; g < NG; g++) {
            /* Nothing lost, nothing applied twice (no proposal was retried). */
            if (c->failed == 0)
                assert_int_equal(c->n[0].fsm[g].count, count[g] + 200);
            assert_true(c->n[0].fsm[g].count >= count[g] + 200);
            assert_true(c->n[0].fsm[g].hash != hash[g]);
        }
    }

    /* Close one hub: the other two keep committing. */
    node_down(c, 0);
    set_targets(c, 200);
    assert_true(run_until(c, all_acked, 60));
    assert_true(run_until(c, replicas_equal, 20));
    print_stats(c, "after kill");
}


static uint64_t toobig_total(cl *c)
{
    uint64_t t = 0;
    int i;
    for (i = 0; i < NN; i++)
        if (c->n[i].hub) {
            rio_stats s;
            rio_hub_stats(c->n[i].hub, &s);
            t += s.msgs_toobig;
        }
    return t;
}

static uint64_t cut_total(cl *c)
{
    uint64_t t = 0;
    int i;
    for (i = 0; i < NN; i++)
        if (c->n[i].hub) {
            rio_stats s;
            rio_hub_stats(c->n[i].hub, &s);
            t += s.appends_cut;
        }
    return t;
}

static bool node3_caught_up(cl *c)
{
    int g;
    for (g = 0; g < NG; g++)
        if (c->n[2].fsm[g].restores == 0)
            return false;
    return replicas_equal(c);
}

static bool node3_knows_leaders(cl *c)
{
    int g;
    for (g = 0; g < NG; g++) {
        uint64_t id;
        const char *url;
        rio_group_leader(c->n[2].g[g], &id, &url);
        if (id == 0)
            return false;
    }
    return true;
}

/* Catch-up far above the transport cap: node 3 is down while 250 entries
 * of 64 KiB per group (16 MiB, 62 x max_msg 256 KiB) are committed by the
 * other two; the log is kept (no snapshot), so the leader must replicate
 * it to node 3 with AppendEntries whose entries together exceed max_msg
 * (more than the 64 frames nng queues for a disconnected peer, so node 3
 * cannot catch up from stale queued traffic alone). Node 3 catches up, no
 * message is refused as too big, and the group keeps committing with all
 * three. RIO_CATCHUP_ENTRY (bytes, ≤ 1 MiB) and RIO_CATCHUP_MAXMSG (0: the
 * hub default, 64 MiB) rescale it by hand, e.g. to 250 x 1 MiB. */
static void test_catchup_over_max_msg(void **state)
{
    cl *c = *state;
    const unsigned n_behind = 250;
    uint64_t cut0;
    double t0, dt;
    const char *ev_entry = getenv("RIO_CATCHUP_ENTRY"), *ev_max = getenv("RIO_CATCHUP_MAXMSG");
    int i, g;

    g_max_msg = ev_max ? strtoul(ev_max, NULL, 0) : 256u << 10;
    g_cmd_pad = (ev_entry ? strtoul(ev_entry, NULL, 0) : 64u << 10) - 8;
    assert_true(g_cmd_pad <= 1u << 20);
    g_snap_threshold = 4096;
    for (i = 0; i < NN; i++)
        node_up(c, i, true);
    start_all(c, true);
    assert_true(run_until(c, have_leaders, 20));
    set_targets(c, 10);
    assert_true(run_until(c, all_acked, 30));
    assert_true(run_until(c, replicas_equal, 20));

    node_down(c, 2);
    set_targets(c, n_behind);
    assert_true(run_until(c, all_acked, 100));
    for (g = 0; g < NG; g++)
        assert_int_equal(c->n[0].fsm[g].snapshots + c->n[1].fsm[g].snapshots, 0);

    cut0 = cut_total(c);
    node_up(c, 2, false);
    start_node(c, 2);
    t0 = ev_time();
    i = run_until(c, replicas_equal, 60);
    dt = ev_time() - t0;
    printf("# catch-up: %d groups x %u entries of %zu bytes (%.1f MiB per group, max_msg %zu):"
           " %s in %.2f s; %llu AppendEntries cut to fit, %llu messages refused as too big\n",
           NG, n_behind, 8 + g_cmd_pad, n_behind * (8.0 + (double)g_cmd_pad) / 1048576.0,
           g_max_msg ? g_max_msg : (size_t)64 << 20, i ? "caught up" : "NOT caught up", dt,
           (unsigned long long)(cut_total(c) - cut0), (unsigned long long)toobig_total(c));
    print_stats(c, "catch-up");
    assert_true(i);
    assert_int_equal(toobig_total(c), 0);
    assert_true(cut_total(c) > cut0); /* the catch-up went through cut batches */

    /* And it keeps replicating with all three. */
    set_targets(c, 50);
    assert_true(run_until(c, all_acked, 30));
    assert_true(run_until(c, replicas_equal, 20));
}

static void snap_totals(cl *c, rio_stats *t)
{
    int i;
    memset(t, 0, sizeof *t);
    for (i = 0; i < NN; i++)
        if (c->n[i].hub) {
            rio_stats s;
            rio_hub_stats(c->n[i].hub, &s);
            t->snap_streams += s.snap_streams;
            t->snap_resumed += s.snap_resumed;
            t->snap_chunks += s.snap_chunks;
            t->snap_bytes += s.snap_bytes;
            t->snap_installed += s.snap_installed;
            t->snap_bad += s.snap_bad;
        }
}

/* Node 3 loses its disk and needs a snapshot of 8 MiB, 32 times max_msg
 * (256 KiB): the leader streams it in chunks, node 3 reassembles and
 * verifies it, raft installs it, and node 3 applies the same state as the
 * others; nothing is refused as too big, and the heartbeats kept flowing
 * meanwhile (node 3 knows both leaders). RIO_SNAP_PAD (bytes) and
 * RIO_SNAP_MAXMSG (0: the hub default, 64 MiB) rescale it by hand. */
static void test_snapshot_over_max_msg(void **state)
{
    cl *c = *state;
    rio_stats st;
    double t0, dt;
    size_t cap;
    const char *ev_pad = getenv("RIO_SNAP_PAD"), *ev_max = getenv("RIO_SNAP_MAXMSG");
    int i, g;

    g_snap_pad = ev_pad ? strtoul(ev_pad, NULL, 0) : 8u << 20;
    g_max_msg = ev_max ? strtoul(ev_max, NULL, 0) : 256u << 10;
    for (i = 0; i < NN; i++)
        node_up(c, i, true);
    start_all(c, true);
    assert_true(run_until(c, have_leaders, 20));
    set_targets(c, 50);
    assert_true(run_until(c, all_acked, 30));
    assert_true(run_until(c, replicas_equal, 20));

    node_down(c, 2);
    set_targets(c, 700); /* > threshold + trailing: node 3's next entry is gone */
    assert_true(run_until(c, all_acked, 60));
    for (g = 0; g < NG; g++)
        assert_true(c->n[0].fsm[g].snapshots + c->n[1].fsm[g].snapshots > 0);

    /* Node 3 comes back with an empty disk, so it cannot catch up from
     * stale AppendEntries still queued in nng for it: it needs the
     * snapshot. */
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s/*", c->n[2].dir);
        assert_int_equal(system(cmd), 0);
    }
    node_up(c, 2, false);
    start_node(c, 2);
    t0 = ev_time();
    i = run_until(c, node3_caught_up, 60);
    dt = ev_time() - t0;
    snap_totals(c, &st);
    cap = g_max_msg ? g_max_msg : (size_t)64 << 20;
    printf("# snapshot of %zu bytes (%.1f x max_msg %zu): %s in %.2f s; %llu streams, %llu"
           " chunks, %.1f MiB sent, %llu installed, %llu discarded; %llu refused as too big\n",
           24 + g_snap_pad, (24.0 + (double)g_snap_pad) / (double)cap, cap,
           i ? "installed" : "NOT installed", dt, (unsigned long long)st.snap_streams,
           (unsigned long long)st.snap_chunks, (double)st.snap_bytes / 1048576.0,
           (unsigned long long)st.snap_installed, (unsigned long long)st.snap_bad,
           (unsigned long long)toobig_total(c));
    assert_true(i);
    assert_int_equal(toobig_total(c), 0);
    assert_true(st.snap_installed >= NG);
    assert_true(run_until(c, node3_knows_leaders, 10));

    /* It keeps up afterwards. */
    set_targets(c, 20);
    assert_true(run_until(c, all_acked, 30));
    assert_true(run_until(c, replicas_equal, 20));
}

/* raft allocations of exactly PROPOSAL_LEN bytes still alive (the commands
 * proposed through rio_group_propose). */
enum { PROPOSAL_LEN = 777, TRACK_MAX = 4096 };
static void *tracked[TRACK_MAX];
static int n_tracked;

static void track(void *p, size_t n)
{
    if (p && n == PROPOSAL_LEN && n_tracked < TRACK_MAX)
        tracked[n_tracked++] = p;
}
static void untrack(void *p)
{
    int i;
    for (i = 0; i < n_tracked; i++)
        if (tracked[i] == p) {
            tracked[i] = tracked[--n_tracked];
            return;
        }
}
static void *th_malloc(void *d, size_t n)
{
    void *p = malloc(n);
    track(p, n);
    return p;
}
static void th_free(void *d, void *p)
{
    untrack(p);
    free(p);
}
static void *th_calloc(void *d, size_t m, size_t n)
{
    return calloc(m, n);
}
static void *th_realloc(void *d, void *p, size_t n)
{
    void *q;
    untrack(p);
    q = realloc(p, n);
    track(q, n);
    return q;
}
static void *th_aligned_alloc(void *d, size_t a, size_t n)
{
    return aligned_alloc(a, n);
}
static void th_aligned_free(void *d, size_t a, void *p)
{
    free(p);
}

/* A raft_apply error after the command reached raft's log (an io->append
 * failure, injected) must not leak the command, and the group keeps
 * working. */
static void test_propose_error_frees(void **state)
{
    cl *c = *state;
    struct raft_heap heap = {NULL, th_malloc, th_free, th_calloc, th_realloc,
                             th_aligned_alloc, th_aligned_free};
    uint8_t cmd[PROPOSAL_LEN];
    rio_peer self;
    int g, live;

    raft_heap_set(&heap);
    node_up(c, 0, true);
    self.id = 1;
    self.url = c->n[0].url;
    for (g = 0; g < NG; g++) {
        assert_int_equal(rio_group_bootstrap(c->n[0].g[g], &self, 1), 0);
        assert_int_equal(rio_group_start(c->n[0].g[g]), 0);
    }
    assert_true(run_until(c, have_leaders, 10));
    memset(cmd, 7, sizeof cmd);

    c->inflight[0]++;
    assert_int_equal(rio_group_propose(c->n[0].g[0], cmd, sizeof cmd, on_applied, (void *)0), 0);
    c->target[0] = 1;
    assert_true(run_until(c, all_acked, 10));

    live = n_tracked;
    rio_store_inject_fail(rio_hub_store(c->n[0].hub), 1);
    assert_int_equal(rio_group_propose(c->n[0].g[0], cmd, sizeof cmd, on_applied, (void *)0),
                     HERALD_ENOMEM);
    assert_int_equal(n_tracked, live); /* the command was freed */

    c->inflight[0]++;
    assert_int_equal(rio_group_propose(c->n[0].g[0], cmd, sizeof cmd, on_applied, (void *)0), 0);
    c->target[0] = 2;
    assert_true(run_until(c, all_acked, 10));
    assert_int_equal(c->n[0].fsm[0].count, 2);
    node_down(c, 0);
    raft_heap_set_default();
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines show even when it is cut short */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catchup_over_max_msg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_over_max_msg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_propose_error_frees, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
