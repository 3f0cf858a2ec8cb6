/*
 * test_rio_store.c — conformance of rio's raft_io, storage side (LMDB),
 * driven through the raw struct raft_io like libraft would: append/load
 * round trip, callbacks in order and never inside the call, term and vote
 * persisted, truncate as a barrier then append, restart loads exactly,
 * snapshot put with trailing deletion and install, snapshot get, group
 * isolation, bootstrap only on pristine groups, group commit (appends
 * from many groups in one loop iteration → one LMDB transaction), a tiny
 * map that must grow (MDB_MAP_FULL → grow → retry) while many groups append,
 * and compaction: a snapshot's trailing deletion really removes the entries
 * from LMDB, so a small map is enough for a long-running log.
 */
#include <ev.h>
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "rio.h"

enum { MAXG = 8, MAXREQ = 320 };

/* Fixture: one hub, raw ios for groups. */
typedef struct fx {
    char dir[64];                        /* data dir */
    struct ev_loop *loop;                /* loop */
    rio_hub *hub;                        /* hub */
    struct raft_io io[MAXG];             /* raw ios, index = gid */
    bool open[MAXG];                     /* io initialized */
    struct raft_io_append req[MAXREQ];   /* append requests */
    int status[MAXREQ];                  /* their statuses (-1: pending) */
    int order[MAXREQ];                   /* completion order */
    int ndone;                           /* completions so far */
    bool in_call;                        /* inside an io method */
    int cb_in_call;                      /* callbacks fired inside a call */
    int closed;                          /* close callbacks */
} fx;

static fx *g_fx;

static void hub_open_map(fx *f, size_t map_size)
{
    rio_hub_config cfg = {.node_id = 1, .listen_url = "tcp://127.0.0.1:0", .data_dir = f->dir,
                          .map_size = map_size};
    assert_int_equal(rio_hub_create(f->loop, &cfg, &f->hub), 0);
}

static void hub_open(fx *f)
{
    hub_open_map(f, 64u << 20);
}

static void io_open(fx *f, uint32_t gid)
{
    assert_int_equal(rio_io_init(&f->io[gid], f->hub, gid), 0);
    assert_int_equal(f->io[gid].init(&f->io[gid], 1, rio_hub_address(f->hub)), 0);
    f->open[gid] = true;
}

static void on_close(struct raft_io *io)
{
    g_fx->closed++;
}

static void on_tmo(struct ev_loop *loop, ev_timer *w, int revents) {}

/* Runs the loop until *flag ≥ want or 20 s pass. */
static void run_until(fx *f, int *flag, int want)
{
    ev_timer t;
    ev_tstamp end = ev_time() + 20;
    ev_timer_init(&t, on_tmo, 0.01, 0.01);
    ev_timer_start(f->loop, &t);
    while (*flag < want && ev_time() < end)
        ev_run(f->loop, EVRUN_ONCE);
    ev_timer_stop(f->loop, &t);
    assert_true(*flag >= want);
}

static void ios_close(fx *f)
{
    int want = 0, g;
    f->closed = 0;
    for (g = 0; g < MAXG; g++)
        if (f->open[g]) {
            f->in_call = true;
            f->io[g].close(&f->io[g], on_close);
            f->in_call = false;
            f->open[g] = false;
            want++;
        }
    assert_int_equal(f->closed, 0); /* never inside the call */
    run_until(f, &f->closed, want);
}

static void hub_close(fx *f)
{
    ios_close(f);
    rio_hub_destroy(f->hub);
    f->hub = NULL;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/test_rio_store_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->loop = ev_loop_new(EVFLAG_AUTO);
    hub_open(f);
    g_fx = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    if (f->hub)
        hub_close(f);
    ev_loop_destroy(f->loop);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void on_append(struct raft_io_append *req, int status)
{
    fx *f = g_fx;
    int i = (int)(req - f->req);
    if (f->in_call)
        f->cb_in_call++;
    f->status[i] = status;
    f->order[f->ndone++] = i;
}

/* Entry i of a test log: payload of (i*37 % 300) bytes of value i. */
static struct raft_entry mk_entry(unsigned i, raft_term term)
{
    struct raft_entry e;
    size_t len = (i * 37u) % 300u;
    e.term = term;
    e.type = RAFT_COMMAND;
    e.buf.len = len;
    e.buf.base = raft_malloc(len ? len : 1);
    memset(e.buf.base, (int)(i & 0xff), len);
    e.batch = NULL;
    return e;
}

/* Appends entries [from, to] (values = index) for group gid as request r. */
static void append_range(fx *f, uint32_t gid, int r, unsigned from, unsigned to, raft_term term,
                         struct raft_entry *keep)
{
    unsigned i, n = to - from + 1;
    for (i = 0; i < n; i++)
        keep[i] = mk_entry(from + i, term);
    f->status[r] = -1;
    f->in_call = true;
    assert_int_equal(f->io[gid].append(&f->io[gid], &f->req[r], keep, n, on_append), 0);
    f->in_call = false;
}

static void free_entries(struct raft_entry *e, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++)
        raft_free(e[i].buf.base);
}

/* Loads gid and checks: term, vote, start index, and entries [start, last]
 * built by mk_entry with the given term. */
static void check_load(fx *f, uint32_t gid, raft_term term, raft_id vote, raft_index start,
                       raft_index last, raft_term eterm, raft_index snap_index)
{
    raft_term t;
    raft_id v;
    struct raft_snapshot *snap;
    raft_index si;
    struct raft_entry *ents;
    size_t n, i;

    assert_int_equal(f->io[gid].load(&f->io[gid], &t, &v, &snap, &si, &ents, &n), 0);
    assert_int_equal(t, term);
    assert_int_equal(v, vote);
    assert_int_equal(si, start);
    assert_int_equal(n, last >= start ? last - start + 1 : 0);
    for (i = 0; i < n; i++) {
        unsigned idx = (unsigned)(start + i);
        size_t len = (idx * 37u) % 300u;
        assert_int_equal(ents[i].term, eterm);
        assert_int_equal(ents[i].type, RAFT_COMMAND);
        assert_int_equal(ents[i].buf.len, len);
        if (len)
            assert_int_equal(((uint8_t *)ents[i].buf.base)[len - 1], idx & 0xff);
        assert_ptr_equal(ents[i].batch, ents[0].batch);
    }
    if (n) {
        raft_free(ents[0].batch);
        raft_free(ents);
    }
    if (snap_index) {
        assert_non_null(snap);
        assert_int_equal(snap->index, snap_index);
        raft_configuration_close(&snap->configuration);
        raft_free(snap->bufs[0].base);
        raft_free(snap->bufs);
        raft_free(snap);
    } else {
        assert_null(snap);
    }
}

static void test_append_load_roundtrip(void **state)
{
    fx *f = *state;
    struct raft_entry a[10], b[5];
    io_open(f, 1);
    check_load(f, 1, 0, 0, 1, 0, 0, 0);
    append_range(f, 1, 0, 1, 10, 2, a);
    append_range(f, 1, 1, 11, 15, 2, b);
    assert_int_equal(f->ndone, 0); /* deferred */
    run_until(f, &f->ndone, 2);
    assert_int_equal(f->cb_in_call, 0);
    assert_int_equal(f->order[0], 0); /* submission order */
    assert_int_equal(f->order[1], 1);
    assert_int_equal(f->status[0], 0);
    assert_int_equal(f->status[1], 0);
    free_entries(a, 10);
    free_entries(b, 5);
    check_load(f, 1, 0, 0, 1, 15, 2, 0);
    /* Restart: the same. */
    hub_close(f);
    hub_open(f);
    io_open(f, 1);
    check_load(f, 1, 0, 0, 1, 15, 2, 0);
}

static void test_term_vote_persisted(void **state)
{
    fx *f = *state;
    io_open(f, 2);
    assert_int_equal(f->io[2].set_term(&f->io[2], 7), 0);
    assert_int_equal(f->io[2].set_vote(&f->io[2], 3), 0);
    check_load(f, 2, 7, 3, 1, 0, 0, 0);
    hub_close(f);
    hub_open(f);
    io_open(f, 2);
    check_load(f, 2, 7, 3, 1, 0, 0, 0);
    /* A new term resets the vote. */
    assert_int_equal(f->io[2].set_term(&f->io[2], 8), 0);
    check_load(f, 2, 8, 0, 1, 0, 0, 0);
}

static void test_truncate_then_append(void **state)
{
    fx *f = *state;
    struct raft_entry a[20], b[5];
    io_open(f, 1);
    check_load(f, 1, 0, 0, 1, 0, 0, 0);
    append_range(f, 1, 0, 1, 20, 1, a);
    /* Truncate while the append is in flight: a barrier after it. */
    assert_int_equal(f->io[1].truncate(&f->io[1], 11), 0);
    append_range(f, 1, 1, 11, 15, 1, b); /* re-appended at 11.. */
    run_until(f, &f->ndone, 2);
    assert_int_equal(f->status[0], 0);
    assert_int_equal(f->status[1], 0);
    free_entries(a, 20);
    free_entries(b, 5);
    check_load(f, 1, 0, 0, 1, 15, 1, 0);
    hub_close(f);
    hub_open(f);
    io_open(f, 1);
    check_load(f, 1, 0, 0, 1, 15, 1, 0);
}

static void on_snap_put(struct raft_io_snapshot_put *req, int status)
{
    g_fx->status[MAXREQ - 1] = status;
    g_fx->ndone++;
}

static struct raft_snapshot *got_snap;
static void on_snap_get(struct raft_io_snapshot_get *req, struct raft_snapshot *s, int status)
{
    g_fx->status[MAXREQ - 2] = status;
    got_snap = s;
    g_fx->ndone++;
}

static void put_snapshot(fx *f, uint32_t gid, raft_index index, unsigned trailing, const char *data)
{
    static struct raft_io_snapshot_put put;
    struct raft_snapshot s;
    struct raft_buffer bufs[2];
    int before = f->ndone;

    memset(&s, 0, sizeof s);
    s.index = index;
    s.term = 1;
    raft_configuration_init(&s.configuration);
    assert_int_equal(raft_configuration_add(&s.configuration, 1, "tcp://127.0.0.1:1", RAFT_VOTER), 0);
    assert_int_equal(raft_configuration_add(&s.configuration, 2, "tcp://127.0.0.1:2", RAFT_STANDBY), 0);
    s.configuration_index = 1;
    bufs[0].base = (void *)data; /* two buffers: stored concatenated */
    bufs[0].len = 3;
    bufs[1].base = (void *)(data + 3);
    bufs[1].len = strlen(data) - 3;
    s.bufs = bufs;
    s.n_bufs = 2;
    f->in_call = true;
    assert_int_equal(f->io[gid].snapshot_put(&f->io[gid], trailing, &put, &s, on_snap_put), 0);
    f->in_call = false;
    assert_int_equal(f->ndone, before);
    run_until(f, &f->ndone, before + 1);
    assert_int_equal(f->status[MAXREQ - 1], 0);
    raft_configuration_close(&s.configuration);
}

static void test_snapshot_trailing_and_get(void **state)
{
    fx *f = *state;
    static struct raft_io_snapshot_get get;
    struct raft_entry a[100];
    int before;

    io_open(f, 3);
    check_load(f, 3, 0, 0, 1, 0, 0, 0);
    append_range(f, 3, 0, 1, 100, 1, a);
    run_until(f, &f->ndone, 1);
    free_entries(a, 100);
    /* Snapshot at 80 keeping 10 trailing: entries 1..70 go. */
    put_snapshot(f, 3, 80, 10, "hello snapshot");
    check_load(f, 3, 0, 0, 71, 100, 1, 80);
    before = f->ndone;
    assert_int_equal(f->io[3].snapshot_get(&f->io[3], &get, on_snap_get), 0);
    assert_int_equal(f->ndone, before);
    run_until(f, &f->ndone, before + 1);
    assert_int_equal(f->status[MAXREQ - 2], 0);
    assert_non_null(got_snap);
    assert_int_equal(got_snap->index, 80);
    assert_int_equal(got_snap->configuration.n, 2);
    assert_int_equal(got_snap->configuration.servers[1].role, RAFT_STANDBY);
    assert_string_equal(got_snap->configuration.servers[1].address, "tcp://127.0.0.1:2");
    assert_int_equal(got_snap->n_bufs, 1);
    assert_int_equal(got_snap->bufs[0].len, 14);
    assert_memory_equal(got_snap->bufs[0].base, "hello snapshot", 14);
    raft_configuration_close(&got_snap->configuration);
    raft_free(got_snap->bufs[0].base);
    raft_free(got_snap->bufs);
    raft_free(got_snap);
    /* Restart loads snapshot + trailing entries. */
    hub_close(f);
    hub_open(f);
    io_open(f, 3);
    check_load(f, 3, 0, 0, 71, 100, 1, 80);
    /* Installing a snapshot (trailing 0) replaces the whole log; the next
     * append goes right after it. */
    put_snapshot(f, 3, 500, 0, "installed");
    check_load(f, 3, 0, 0, 501, 0, 0, 500);
    append_range(f, 3, 5, 501, 505, 1, a);
    run_until(f, &f->ndone, f->ndone + 1);
    free_entries(a, 5);
    check_load(f, 3, 0, 0, 501, 505, 1, 500);
}

static void test_group_isolation(void **state)
{
    fx *f = *state;
    struct raft_entry a[10], b[3];
    io_open(f, 4);
    io_open(f, 5);
    check_load(f, 4, 0, 0, 1, 0, 0, 0);
    check_load(f, 5, 0, 0, 1, 0, 0, 0);
    append_range(f, 4, 0, 1, 10, 3, a);
    append_range(f, 5, 1, 1, 3, 4, b);
    assert_int_equal(f->io[4].set_term(&f->io[4], 9), 0);
    run_until(f, &f->ndone, 2);
    free_entries(a, 10);
    free_entries(b, 3);
    check_load(f, 4, 9, 0, 1, 10, 3, 0);
    check_load(f, 5, 0, 0, 1, 3, 4, 0);
    /* Truncating one group leaves the other alone. */
    assert_int_equal(f->io[5].truncate(&f->io[5], 1), 0);
    append_range(f, 4, 2, 11, 11, 3, a);
    run_until(f, &f->ndone, 3);
    free_entries(a, 1);
    check_load(f, 4, 9, 0, 1, 11, 3, 0);
    check_load(f, 5, 0, 0, 1, 0, 0, 0);
    /* Two ios for one gid on one hub are refused. */
    {
        struct raft_io dup;
        assert_int_equal(rio_io_init(&dup, f->hub, 4), HERALD_EEXISTS);
    }
}

static void test_group_commit(void **state)
{
    fx *f = *state;
    enum { M = 6, N = 20 };
    struct raft_entry e[M][N];
    rio_stats before, after;
    int g, i;

    for (g = 1; g <= M; g++) {
        io_open(f, (uint32_t)g);
        check_load(f, (uint32_t)g, 0, 0, 1, 0, 0, 0);
    }
    rio_hub_stats(f->hub, &before);
    /* N appends from each of M groups in one loop iteration. */
    for (i = 0; i < N; i++)
        for (g = 1; g <= M; g++) {
            e[g - 1][i] = mk_entry((unsigned)i + 1, 1);
            f->status[(g - 1) * N + i] = -1;
            assert_int_equal(f->io[g].append(&f->io[g], &f->req[(g - 1) * N + i], &e[g - 1][i], 1,
                                             on_append), 0);
        }
    run_until(f, &f->ndone, M * N);
    rio_hub_stats(f->hub, &after);
    assert_int_equal(after.txns - before.txns, 1);
    assert_int_equal(after.appends - before.appends, M * N);
    for (i = 0; i < M * N; i++) {
        assert_int_equal(f->status[i], 0);
        assert_int_equal(f->order[i], (i % M) * N + i / M); /* submission order */
    }
    for (g = 1; g <= M; g++) {
        free_entries(e[g - 1], N);
        check_load(f, (uint32_t)g, 0, 0, 1, N, 1, 0);
    }
}

static void test_bootstrap_pristine_only(void **state)
{
    fx *f = *state;
    struct raft_configuration c;
    raft_term t;
    raft_id v;
    struct raft_snapshot *snap;
    raft_index si;
    struct raft_entry *ents;
    size_t n;

    io_open(f, 6);
    raft_configuration_init(&c);
    assert_int_equal(raft_configuration_add(&c, 1, "tcp://127.0.0.1:1", RAFT_VOTER), 0);
    assert_int_equal(f->io[6].bootstrap(&f->io[6], &c), 0);
    assert_int_equal(f->io[6].bootstrap(&f->io[6], &c), RAFT_CANTBOOTSTRAP);
    assert_int_equal(f->io[6].load(&f->io[6], &t, &v, &snap, &si, &ents, &n), 0);
    assert_int_equal(t, 1);
    assert_int_equal(si, 1);
    assert_int_equal(n, 1);
    assert_int_equal(ents[0].type, RAFT_CHANGE);
    raft_free(ents[0].batch);
    raft_free(ents);
    /* Recover appends a configuration entry at 2. */
    assert_int_equal(f->io[6].recover(&f->io[6], &c), 0);
    assert_int_equal(f->io[6].load(&f->io[6], &t, &v, &snap, &si, &ents, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ents[1].type, RAFT_CHANGE);
    raft_free(ents[0].batch);
    raft_free(ents);
    raft_configuration_close(&c);
}


/* Counts the group's entries in the rlog db and its first index, straight
 * from LMDB (the hub must be closed: one env per process). */
static void count_rlog(fx *f, uint32_t gid, size_t *count, uint64_t *first, size_t *map_size)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val k, v;
    MDB_envinfo info;
    uint8_t kb[12] = {0};
    int rc;

    *count = 0;
    *first = 0;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY, 0644), 0);
    mdb_env_info(env, &info);
    *map_size = info.me_mapsize;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "rlog", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    kb[0] = (uint8_t)(gid >> 24);
    kb[1] = (uint8_t)(gid >> 16);
    kb[2] = (uint8_t)(gid >> 8);
    kb[3] = (uint8_t)gid;
    k.mv_data = kb;
    k.mv_size = sizeof kb;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data;
        uint64_t idx = 0;
        int i;
        if (k.mv_size != 12 || memcmp(p, kb, 4) != 0)
            break;
        for (i = 4; i < 12; i++)
            idx = idx << 8 | p[i];
        if ((*count)++ == 0)
            *first = idx;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

/* Appends from M groups into a 1 MiB map: the map must grow several times
 * (MDB_MAP_FULL → abort → grow → retry) while the writer commits big
 * batches and the loop thread writes terms; every callback fires in
 * submission order with status 0, and all data is there after a restart
 * with the same tiny map (which grows again for new appends). */
static void test_tiny_map_grows(void **state)
{
    fx *f = *state;
    enum { M = 6, ROUNDS = 50, N = 100 };
    static struct raft_entry e[M * ROUNDS][N];
    rio_stats st;
    int g, r, i, want = 0;

    hub_close(f);
    hub_open_map(f, 1u << 20);
    for (g = 1; g <= M; g++)
        io_open(f, (uint32_t)g);
    for (r = 0; r < ROUNDS; r++) {
        for (g = 1; g <= M; g++) {
            int q = r * M + (g - 1);
            append_range(f, (uint32_t)g, q, (unsigned)(r * N + 1), (unsigned)((r + 1) * N),
                         1, e[q]);
            want++;
        }
        /* A synchronous write from the loop thread now and then, racing the
         * writer's growth. */
        if (r % 7 == 0)
            assert_int_equal(f->io[1].set_term(&f->io[1], (raft_term)(r + 2)), 0);
        /* Sometimes several rounds share one batch, sometimes not. */
        if (r % 3 == 2)
            run_until(f, &f->ndone, want - M);
    }
    run_until(f, &f->ndone, want);
    assert_int_equal(f->cb_in_call, 0);
    for (i = 0; i < want; i++) {
        assert_int_equal(f->status[i], 0);
        assert_int_equal(f->order[i], i); /* submission order */
        free_entries(e[i], N);
    }
    rio_hub_stats(f->hub, &st);
    printf("# tiny map: %llu grows, map now %llu bytes, %llu txns, %llu entries\n",
           (unsigned long long)st.map_grows, (unsigned long long)st.map_size,
           (unsigned long long)st.txns, (unsigned long long)st.entries);
    assert_true(st.map_grows >= 2);
    assert_true(st.map_size > (1u << 20));
    assert_int_equal(st.store_errs, 0);
    assert_int_equal(st.entries, (uint64_t)want * N);
    for (g = 1; g <= M; g++)
        check_load(f, (uint32_t)g, g == 1 ? (raft_term)(49 + 2) : 0, 0, 1, ROUNDS * N, 1, 0);

    /* Restart with the same small map: everything is there; new appends
     * grow it again. */
    hub_close(f);
    hub_open_map(f, 1u << 20);
    for (g = 1; g <= M; g++) {
        io_open(f, (uint32_t)g);
        check_load(f, (uint32_t)g, g == 1 ? (raft_term)(49 + 2) : 0, 0, 1, ROUNDS * N, 1, 0);
    }
    f->ndone = 0;
    for (g = 1; g <= M; g++)
        append_range(f, (uint32_t)g, g - 1, ROUNDS * N + 1, ROUNDS * N + N, 1, e[g - 1]);
    run_until(f, &f->ndone, M);
    for (g = 1; g <= M; g++) {
        assert_int_equal(f->status[g - 1], 0);
        free_entries(e[g - 1], N);
        check_load(f, (uint32_t)g, g == 1 ? (raft_term)(49 + 2) : 0, 0, 1, ROUNDS * N + N, 1, 0);
    }
}

/* Snapshots with trailing entries compact the log in LMDB: after many
 * rounds of append + snapshot, only the trailing entries and the ones after
 * the snapshot are left in rlog, the map (1 MiB, far less than what was
 * appended) did not have to grow much since freed pages are reused, and a
 * restart loads snapshot + tail. */
static void test_snapshot_compacts_log(void **state)
{
    fx *f = *state;
    enum { ROUNDS = 60, N = 500, TRAIL = 50 };
    static struct raft_entry e[N];
    size_t count, map_size;
    uint64_t first;
    raft_index last = 0, snap = 0;
    rio_stats st;
    int r;

    hub_close(f);
    hub_open_map(f, 1u << 20);
    io_open(f, 7);
    for (r = 0; r < ROUNDS; r++) {
        int before = f->ndone;
        append_range(f, 7, 0, (unsigned)last + 1, (unsigned)(last + N), 1, e);
        run_until(f, &f->ndone, before + 1);
        assert_int_equal(f->status[0], 0);
        free_entries(e, N);
        last += N;
        snap = last - 20; /* like raft: a snapshot a little behind the tail */
        put_snapshot(f, 7, snap, TRAIL, "compacted state");
    }
    check_load(f, 7, 0, 0, snap - TRAIL + 1, last, 1, snap);
    rio_hub_stats(f->hub, &st);
    hub_close(f);
    count_rlog(f, 7, &count, &first, &map_size);
    (void)map_size;
    printf("# compaction: %u entries appended, %zu left in rlog from %llu, map %llu bytes"
           " (%llu grows)\n", ROUNDS * N, count, (unsigned long long)first,
           (unsigned long long)st.map_size, (unsigned long long)st.map_grows);
    assert_int_equal(first, snap - TRAIL + 1);
    assert_int_equal(count, last - (snap - TRAIL));
    /* ~4.5 MB of payload went through the 1 MiB map without growing it:
     * deleted entries' pages are reused, and the file stays small. */
    assert_int_equal(st.map_grows, 0);
    assert_int_equal(st.map_size, 1u << 20);
    {
        char path[96];
        struct stat sb;
        snprintf(path, sizeof path, "%s/data.mdb", f->dir);
        assert_int_equal(stat(path, &sb), 0);
        printf("# compaction: data.mdb is %lld bytes\n", (long long)sb.st_size);
        assert_true(sb.st_size <= (1 << 20));
    }
    hub_open_map(f, 1u << 20);
    io_open(f, 7);
    check_load(f, 7, 0, 0, snap - TRAIL + 1, last, 1, snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_load_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term_vote_persisted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_then_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_trailing_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_pristine_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiny_map_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_compacts_log, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
