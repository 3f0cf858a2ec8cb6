/*
 * test_apply_txn.c — the incremental batch (apply_begin / apply_next /
 * apply_commit / apply_abort, broker/state/apply.c).
 *
 * A scripted mix of commands (tenant, conversations of every fan-out mode,
 * sends with big bodies, a duplicate cmid, reads, a recall, membership
 * changes, rejected and undecodable commands, re-applied indexes) goes
 * through apply_batch one command at a time on one store and through ONE
 * incremental batch on another: every result and the store digests must be
 * equal. Then the same with a tiny initial map, so that MDB_MAP_FULL hits
 * in the middle of the batch (and at commit) and everything is applied
 * again after growing: results identical, the map grew. Also: nothing is
 * visible before the commit, abort leaves the store as it was, and a
 * command that cannot fit (map at its ceiling) is refused alone while the
 * batch keeps the others.
 */
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apply.h"
#include "cmd.h"
#include "store.h"
#include "store_snap.h"

#define TEN "acme"
#define SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define N_CMDS 120u

/* The script: encoded commands and their indexes. */
typedef struct script {
    herald_buf b[N_CMDS];   /* encoded commands */
    uint64_t index[N_CMDS]; /* raft index of each */
    uint32_t n;             /* how many */
} script;

static char big[6000]; /* a body that fills pages quickly */

static void add(script *s, cmd *k, uint64_t index)
{
    assert_true(s->n < N_CMDS);
    if (!k->tenant.ptr)
        k->tenant = herald_str_z(TEN);
    if (!k->ts)
        k->ts = 1000 + s->n;
    assert_int_equal(cmd_encode(k, &s->b[s->n]), 0);
    s->index[s->n++] = index;
}

static void add_raw(script *s, const void *p, size_t len, uint64_t index)
{
    assert_true(s->n < N_CMDS);
    assert_int_equal(herald_buf_append(&s->b[s->n], p, len), 0);
    s->index[s->n++] = index;
}

static void script_build(script *s)
{
    static const char *const users[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"};
    herald_str mv[8];
    uint64_t ix = 1;
    memset(big, 'b', sizeof big - 1);
    for (int i = 0; i < 8; i++)
        mv[i] = herald_str_z(users[i]);
    memset(s, 0, sizeof *s);
    add(s, &(cmd){.op = CMD_TENANT_CREATE, .secret = herald_str_z(SECRET)}, ix++);
    add(s, &(cmd){.op = CMD_CONV_CREATE, .user = herald_str_z("u0"), .conv = herald_str_z("g"),
                  .kind = herald_str_z("group"), .members = mv, .n_members = 6}, ix++);
    add(s, &(cmd){.op = CMD_CONV_CREATE, .user = herald_str_z("u0"), .conv = herald_str_z("s"),
                  .kind = herald_str_z("single"), .members = mv, .n_members = 2}, ix++);
    add(s, &(cmd){.op = CMD_CONV_CREATE, .user = herald_str_z("u0"), .conv = herald_str_z("a"),
                  .kind = herald_str_z("announce"), .members = mv, .n_members = 8}, ix++);
    /* Already exists: rejected. */
    add(s, &(cmd){.op = CMD_CONV_CREATE, .user = herald_str_z("u0"), .conv = herald_str_z("g"),
                  .kind = herald_str_z("group"), .members = mv, .n_members = 2}, ix++);
    for (uint32_t i = 0; i < 80; i++) {
        char cmid[16];
        const char *conv = i % 5 == 4 ? "s" : i % 7 == 6 ? "a" : "g";
        snprintf(cmid, sizeof cmid, "c%u", i);
        add(s, &(cmd){.op = CMD_SEND, .user = herald_str_z(users[i % 2]),
                      .conv = herald_str_z(conv), .cmid = herald_str_z(cmid),
                      .body = herald_str_z(big)}, ix++);
        if (i == 10) /* the same cmid again: dup, original seq */
            add(s, &(cmd){.op = CMD_SEND, .user = herald_str_z(users[i % 2]),
                          .conv = herald_str_z(conv), .cmid = herald_str_z(cmid),
                          .body = herald_str_z("again")}, ix++);
        if (i == 20) /* not a member: rejected */
            add(s, &(cmd){.op = CMD_SEND, .user = herald_str_z("u7"), .conv = herald_str_z("g"),
                          .body = herald_str_z("x")}, ix++);
        if (i == 30)
            add(s, &(cmd){.op = CMD_READ, .user = herald_str_z("u2"), .conv = herald_str_z("g"),
                          .seq = 5}, ix++);
        if (i == 40)
            add(s, &(cmd){.op = CMD_RECALL, .user = herald_str_z("u0"), .conv = herald_str_z("g"),
                          .seq = 3, .ts = 1000 + s->n}, ix++);
        if (i == 50)
            add(s, &(cmd){.op = CMD_CONV_ADD, .user = herald_str_z("u0"), .conv = herald_str_z("g"),
                          .members = mv + 6, .n_members = 2}, ix++);
        if (i == 55) {
            static const uint8_t junk[3] = {0xc1, 0x00, 0xff};
            add_raw(s, junk, sizeof junk, ix++);
        }
        if (i == 60)
            add(s, &(cmd){.op = CMD_CONV_REMOVE, .user = herald_str_z("u0"),
                          .conv = herald_str_z("g"), .members = mv + 3, .n_members = 1}, ix++);
        if (i == 70) { /* raft re-applies two entries after a restart: skipped */
            ix -= 2;
            add(s, &(cmd){.op = CMD_SEND, .user = herald_str_z("u0"), .conv = herald_str_z("g"),
                          .body = herald_str_z("replayed")}, ix++);
            add(s, &(cmd){.op = CMD_SEND, .user = herald_str_z("u0"), .conv = herald_str_z("g"),
                          .body = herald_str_z("replayed")}, ix++);
        }
    }
}

static void script_free(script *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        herald_buf_free(&s->b[i]);
}

typedef struct tstore {
    char dir[64]; /* data dir */
    store *st;    /* the store */
} tstore;

static void ts_open(tstore *t, size_t map_size, size_t map_max)
{
    store_config cfg = {.dir = t->dir, .map_size = map_size, .map_max = map_max,
                        .no_sync = true};
    snprintf(t->dir, sizeof t->dir, "/tmp/herald-txn-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    assert_int_equal(store_open(&cfg, &t->st), 0);
}

static void ts_close(tstore *t)
{
    char rm[128];
    store_close(t->st);
    snprintf(rm, sizeof rm, "rm -rf '%s'", t->dir);
    assert_int_equal(system(rm), 0);
}

/* The reference: apply_batch, one command per transaction. */
static void run_one_by_one(store *st, const script *s, apply_result *res)
{
    for (uint32_t i = 0; i < s->n; i++) {
        const uint8_t *p = s->b[i].data;
        size_t len = s->b[i].len;
        assert_int_equal(apply_batch(st, &p, &len, 1, s->index[i], &res[i]), 0);
    }
}

/* Every command in one incremental batch. */
static void run_batched(store *st, const script *s, apply_result *res)
{
    apply_txn *t;
    uint64_t before = store_applied(st);
    assert_int_equal(apply_begin(st, &t), 0);
    for (uint32_t i = 0; i < s->n; i++)
        assert_int_equal(apply_next(t, s->b[i].data, s->b[i].len, s->index[i], &res[i]), 0);
    assert_int_equal(apply_count(t), s->n);
    assert_true(apply_bytes(t) > 0);
    /* Nothing visible to readers before the commit. */
    assert_int_equal(store_applied(st), before);
    assert_int_equal(apply_commit(t), 0);
}

static void same_result(const apply_result *a, const apply_result *b)
{
    assert_int_equal(a->err, b->err);
    assert_string_equal(a->errmsg, b->errmsg);
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->skipped, b->skipped);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->ts, b->ts);
    assert_int_equal(a->dup, b->dup);
    assert_int_equal(a->group, b->group);
    assert_int_equal(a->n_targets, b->n_targets);
    for (uint32_t i = 0; i < a->n_targets; i++) {
        assert_string_equal(a->targets[i].user, b->targets[i].user);
    }
    assert_int_equal(a->n_reminders, b->n_reminders);
    assert_int_equal(a->n_mass, b->n_mass);
}

static void same_store(store *a, store *b)
{
    uint8_t da[STORE_SNAP_DIGEST_LEN], db[STORE_SNAP_DIGEST_LEN];
    uint64_t ia, ib;
    assert_int_equal(store_digest(a, da, &ia), 0);
    assert_int_equal(store_digest(b, db, &ib), 0);
    assert_int_equal(ia, ib);
    assert_memory_equal(da, db, sizeof da);
}

/* Checks a few results are what the script means (not only equal). */
static void sane(const script *s, const apply_result *r)
{
    uint32_t skipped = 0, dups = 0, rejected = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        skipped += r[i].skipped;
        dups += r[i].dup;
        rejected += r[i].err != 0;
    }
    assert_int_equal(skipped, 2);
    assert_int_equal(dups, 1);
    assert_true(rejected >= 3); /* exists, not a member, undecodable */
}

static void test_batched_equals_one_by_one(void **state)
{
    script s;
    tstore a, b;
    apply_result *ra = calloc(N_CMDS, sizeof *ra), *rb = calloc(N_CMDS, sizeof *rb);
    (void)state;

    assert_non_null(ra);
    assert_non_null(rb);
    script_build(&s);
    ts_open(&a, 0, 0);
    ts_open(&b, 0, 0);
    run_one_by_one(a.st, &s, ra);
    run_batched(b.st, &s, rb);
    sane(&s, ra);
    for (uint32_t i = 0; i < s.n; i++)
        same_result(&ra[i], &rb[i]);
    same_store(a.st, b.st);
    print_message("%u commands: one transaction == %u transactions (results, digest)\n", s.n,
                  s.n);
    for (uint32_t i = 0; i < s.n; i++) {
        apply_result_free(&ra[i]);
        apply_result_free(&rb[i]);
    }
    /* apply_batch of many is the same code: same store again. */
    {
        tstore c;
        const uint8_t *p[N_CMDS];
        size_t len[N_CMDS];
        uint32_t k = 0;
        ts_open(&c, 0, 0);
        /* apply_batch numbers consecutively: up to the re-applied pair. */
        while (k < s.n && s.index[k] == k + 1u) {
            p[k] = s.b[k].data;
            len[k] = s.b[k].len;
            k++;
        }
        assert_int_equal(apply_batch(c.st, p, len, k, 1, rb), 0);
        for (uint32_t i = 0; i < k; i++)
            apply_result_free(&rb[i]);
        for (uint32_t i = k; i < s.n; i++) {
            p[i] = s.b[i].data;
            len[i] = s.b[i].len;
            assert_int_equal(apply_batch(c.st, &p[i], &len[i], 1, s.index[i], &rb[i]), 0);
            apply_result_free(&rb[i]);
        }
        same_store(a.st, c.st);
        ts_close(&c);
    }
    ts_close(&a);
    ts_close(&b);
    script_free(&s);
    free(ra);
    free(rb);
}

/* A 64 KiB map: MDB_MAP_FULL many times in the middle of the batch; each
 * time everything is applied again after growing. */
static void test_map_full_mid_batch(void **state)
{
    script s;
    tstore a, b;
    apply_result *ra = calloc(N_CMDS, sizeof *ra), *rb = calloc(N_CMDS, sizeof *rb);
    size_t first;
    (void)state;

    assert_non_null(ra);
    assert_non_null(rb);
    script_build(&s);
    ts_open(&a, 0, 0);
    ts_open(&b, 64u << 10, 0);
    first = store_map_size(b.st);
    run_one_by_one(a.st, &s, ra);
    run_batched(b.st, &s, rb);
    assert_true(store_map_size(b.st) >= first * 8); /* grew at least three times */
    for (uint32_t i = 0; i < s.n; i++)
        same_result(&ra[i], &rb[i]);
    same_store(a.st, b.st);
    print_message("map %zu -> %zu bytes inside one batch of %u commands: results identical\n",
                  first, store_map_size(b.st), s.n);
    for (uint32_t i = 0; i < s.n; i++) {
        apply_result_free(&ra[i]);
        apply_result_free(&rb[i]);
    }
    ts_close(&a);
    ts_close(&b);
    script_free(&s);
    free(ra);
    free(rb);
}

/* Abort: the store is as before, results zeroed. A command that cannot fit
 * (map at its ceiling): refused alone, the batch keeps the others. */
static void test_abort_and_refused(void **state)
{
    script s;
    tstore a;
    apply_txn *t;
    apply_result r[8];
    uint8_t d0[STORE_SNAP_DIGEST_LEN], d1[STORE_SNAP_DIGEST_LEN];
    uint64_t i0, i1;
    char *huge = malloc(1u << 20);
    herald_buf hb = {0};
    (void)state;

    assert_non_null(huge);
    script_build(&s);
    ts_open(&a, 256u << 10, 256u << 10);
    assert_int_equal(store_digest(a.st, d0, &i0), 0);
    assert_int_equal(apply_begin(a.st, &t), 0);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(apply_next(t, s.b[i].data, s.b[i].len, s.index[i], &r[i]), 0);
    assert_int_equal(r[1].err, 0);
    apply_abort(t);
    apply_abort(NULL);
    for (uint32_t i = 0; i < 4; i++)
        assert_null(r[i].arena);
    assert_int_equal(store_digest(a.st, d1, &i1), 0);
    assert_int_equal(i1, i0);
    assert_memory_equal(d0, d1, sizeof d0);

    memset(huge, 'h', (1u << 20) - 1);
    huge[(1u << 20) - 1] = '\0';
    {
        cmd k = {.op = CMD_SEND, .tenant = herald_str_z(TEN), .user = herald_str_z("u0"),
                 .conv = herald_str_z("g"), .body = herald_str_z(huge), .ts = 9};
        assert_int_equal(cmd_encode(&k, &hb), 0);
    }
    assert_int_equal(apply_begin(a.st, &t), 0);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(apply_next(t, s.b[i].data, s.b[i].len, s.index[i], &r[i]), 0);
    assert_int_equal(apply_next(t, hb.data, hb.len, 4, &r[3]), HERALD_ESTORAGE);
    assert_null(r[3].arena);
    assert_int_equal(apply_count(t), 3);
    assert_int_equal(apply_next(t, s.b[3].data, s.b[3].len, 4, &r[3]), 0);
    assert_int_equal(apply_commit(t), 0);
    assert_int_equal(store_applied(a.st), 4);
    assert_int_equal(r[1].err, 0);
    assert_int_equal(r[1].seq, 1);
    for (uint32_t i = 0; i < 4; i++)
        apply_result_free(&r[i]);
    herald_buf_free(&hb);
    free(huge);
    ts_close(&a);
    script_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_equals_one_by_one),
        cmocka_unit_test(test_map_full_mid_batch),
        cmocka_unit_test(test_abort_and_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
