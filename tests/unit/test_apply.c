/*
 * test_apply.c — the store and its state machine: caps, seqs, dedup,
 * idempotent re-apply, per-command rollback, history paging, sync (pointer
 * logs and read diffusion), receipts, cursors, reopen, and map growth under
 * MDB_MAP_FULL with everything acknowledged still there.
 */
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apply.h"
#include "cmd.h"
#include "fixture.h"
#include "slots.h"
#include "store.h"
#include "token.h"

#define TEN "acme"

static int setup(void **state)
{
    *state = fx_new("apply");
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* The text of the last result run() saw. */
static char last_errmsg[sizeof(((apply_result *)0)->errmsg)];

/* Applies one command; returns its result code, fills *seq if given. */
static int run(fx *f, cmd *k, uint64_t *seq, apply_result *keep)
{
    apply_result r;
    int rc;
    k->tenant = herald_str_z(TEN);
    if (!k->ts)
        k->ts = 1000;
    fx_apply(f, k, &r);
    rc = r.err;
    memcpy(last_errmsg, r.errmsg, sizeof last_errmsg);
    if (seq)
        *seq = r.seq;
    if (keep)
        *keep = r;
    else
        apply_result_free(&r);
    return rc;
}

static void tenant(fx *f, uint32_t cap)
{
    char hex[TOKEN_SECRET_HEX + 1];
    cmd k = {.op = CMD_TENANT_CREATE, .cap = cap};
    fx_secret_hex(hex);
    k.secret = herald_str_z(hex);
    assert_int_equal(run(f, &k, NULL, NULL), 0);
}

static int create(fx *f, const char *actor, bool admin, const char *conv, const char *kind,
                  const char *const *mem, uint32_t n)
{
    herald_str mv[600];
    cmd k = {.op = CMD_CONV_CREATE, .user = herald_str_z(actor), .admin = admin,
             .conv = herald_str_z(conv), .kind = herald_str_z(kind)};
    for (uint32_t i = 0; i < n; i++)
        mv[i] = herald_str_z(mem[i]);
    k.members = mv;
    k.n_members = n;
    return run(f, &k, NULL, NULL);
}

static int send_msg(fx *f, const char *user, const char *conv, const char *cmid,
                    const char *body, uint64_t *seq)
{
    cmd k = {.op = CMD_SEND, .user = herald_str_z(user), .conv = herald_str_z(conv),
             .cmid = herald_str_z(cmid), .body = herald_str_z(body)};
    return run(f, &k, seq, NULL);
}

static void test_caps_and_kinds(void **state)
{
    fx *f = *state;
    static char names[600][16];
    static const char *mem[600];
    for (int i = 0; i < 600; i++) {
        snprintf(names[i], sizeof names[i], "u%d", i);
        mem[i] = names[i];
    }
    tenant(f, 0);
    assert_int_equal(create(f, "u0", false, "s1", "single", mem, 2), 0);
    assert_int_equal(create(f, "u0", false, "s2", "single", mem, 3), HERALD_EINVAL);
    assert_int_equal(create(f, "u5", false, "s3", "single", mem, 2), HERALD_EINVAL); /* creator joins: 3 */
    assert_int_equal(create(f, "u0", false, "s1", "group", mem, 2), HERALD_EEXISTS);
    assert_int_equal(create(f, "u0", false, "x", "party", mem, 2), HERALD_EINVAL);
    assert_int_equal(create(f, "u0", false, "g200", "group", mem, 200), 0);
    assert_int_equal(create(f, "u0", false, "g201", "group", mem, 201), HERALD_ECAP_EXCEEDED);
    assert_string_equal(last_errmsg, "groups hold at most 200 members"); /* the cap, named */
    assert_int_equal(create(f, "u0", false, "c500", "customer_group", mem, 500), 0);
    assert_int_equal(create(f, "u0", false, "c501", "customer_group", mem, 501), HERALD_ECAP_EXCEEDED);
    assert_string_equal(last_errmsg, "customer groups hold at most 500 members");
    assert_int_equal(create(f, "admin", true, "a600", "announce", mem, 600), 0);
    {
        store_conv sc;
        assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("a600"), &sc), 0);
        assert_int_equal(sc.count, 600); /* the admin did not join */
        assert_string_equal(sc.owner, "admin");
        assert_int_equal(sc.kind, CONV_ANNOUNCE);
        assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("g201"), &sc),
                         HERALD_ENOT_FOUND);
    }
    /* add: only the owner or an admin; caps hold. */
    {
        herald_str extra = herald_str_z("u250");
        cmd k = {.op = CMD_CONV_ADD, .user = herald_str_z("u1"), .conv = herald_str_z("g200"),
                 .members = &extra, .n_members = 1};
        assert_int_equal(run(f, &k, NULL, NULL), HERALD_EFORBIDDEN);
        k.user = herald_str_z("u0");
        assert_int_equal(run(f, &k, NULL, NULL), HERALD_ECAP_EXCEEDED);
        assert_string_equal(last_errmsg, "groups hold at most 200 members");
        k.conv = herald_str_z("s1");
        assert_int_equal(run(f, &k, NULL, NULL), HERALD_EINVAL);
    }
}

static void test_send_dedup_idempotent(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b"};
    uint64_t s1, s2, s3;
    herald_buf b = {0};
    apply_result r;
    const uint8_t *p;
    size_t len;
    tenant(f, 0);
    assert_int_equal(create(f, "a", false, "c", "group", mem, 2), 0);
    assert_int_equal(send_msg(f, "a", "c", "m1", "one", &s1), 0);
    assert_int_equal(send_msg(f, "a", "c", "m2", "two", &s2), 0);
    assert_int_equal(s1, 2);
    assert_int_equal(s2, 3);
    /* Same cmid: the original seq, nothing written. */
    {
        cmd k = {.op = CMD_SEND, .user = herald_str_z("a"), .conv = herald_str_z("c"),
                 .cmid = herald_str_z("m1"), .body = herald_str_z("again")};
        assert_int_equal(run(f, &k, &s3, &r), 0);
        assert_true(r.dup);
        assert_int_equal(s3, s1);
        assert_int_equal(r.n_targets, 0);
        apply_result_free(&r);
    }
    /* The same cmid from another sender is another message. */
    assert_int_equal(send_msg(f, "b", "c", "m1", "b's", &s3), 0);
    assert_int_equal(s3, 4);
    assert_int_equal(send_msg(f, "z", "c", "q", "x", NULL), HERALD_ENOT_MEMBER);
    assert_int_equal(send_msg(f, "a", "nope", "q", "x", NULL), HERALD_ENOT_FOUND);
    /* Re-applying an index at or below the applied index is skipped. */
    {
        cmd k = {.op = CMD_SEND, .tenant = herald_str_z(TEN), .user = herald_str_z("a"),
                 .conv = herald_str_z("c"), .body = herald_str_z("replayed"), .ts = 5};
        assert_int_equal(cmd_encode(&k, &b), 0);
        p = b.data;
        len = b.len;
        assert_int_equal(apply_batch(f->st, &p, &len, 1, f->next - 1, &r), 0);
        assert_true(r.skipped);
        apply_result_free(&r);
        herald_buf_free(&b);
    }
    {
        store_conv sc;
        assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("c"), &sc), 0);
        assert_int_equal(sc.max_seq, 4);
    }
}

/* A rejected command in the middle of a batch leaves no trace; the others
 * apply; targets carry per-user sequences. */
static void test_batch_rollback(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b", "c"};
    cmd ks[3] = {
        {.op = CMD_SEND, .user = herald_str_z("a"), .conv = herald_str_z("g"), .body = herald_str_z("1")},
        {.op = CMD_CONV_ADD, .user = herald_str_z("b"), .conv = herald_str_z("g")}, /* no members: bad */
        {.op = CMD_SEND, .user = herald_str_z("b"), .conv = herald_str_z("g"), .body = herald_str_z("2")},
    };
    herald_str extra = herald_str_z("d");
    herald_buf bufs[3] = {{0}};
    const uint8_t *p[3];
    size_t len[3];
    apply_result r[3];
    tenant(f, 0);
    assert_int_equal(create(f, "a", false, "g", "group", mem, 3), 0);
    ks[1].members = &extra;
    ks[1].n_members = 1; /* b is not the owner: FORBIDDEN */
    for (int i = 0; i < 3; i++) {
        ks[i].tenant = herald_str_z(TEN);
        ks[i].ts = 7;
        assert_int_equal(cmd_encode(&ks[i], &bufs[i]), 0);
        p[i] = bufs[i].data;
        len[i] = bufs[i].len;
    }
    assert_int_equal(apply_batch(f->st, p, len, 3, f->next, r), 0);
    f->next += 3;
    assert_int_equal(r[0].err, 0);
    assert_int_equal(r[0].seq, 2);
    assert_int_equal(r[1].err, HERALD_EFORBIDDEN);
    assert_int_equal(r[2].err, 0);
    assert_int_equal(r[2].seq, 3);
    assert_int_equal(r[2].n_targets, 3);
    assert_non_null(r[2].msg);
    assert_int_equal(r[2].msg->pos, 3); /* create, msg 2, msg 3 */
    assert_int_equal(store_member_check(f->st, herald_str_z(TEN), herald_str_z("g"),
                                        herald_str_z("d")),
                     HERALD_ENOT_MEMBER);
    for (int i = 0; i < 3; i++) {
        apply_result_free(&r[i]);
        herald_buf_free(&bufs[i]);
    }
}

static void test_history_sync_receipts(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b", "c"};
    store_msgs m;
    store_sync_out so;
    store_receipts_out ro;
    uint64_t seq;
    char body[16];
    tenant(f, 0);
    assert_int_equal(create(f, "a", false, "g", "group", mem, 3), 0);
    for (int i = 0; i < 30; i++) {
        snprintf(body, sizeof body, "m%d", i);
        assert_int_equal(send_msg(f, "a", "g", NULL, body, &seq), 0);
    }
    /* History pages: after/limit/more. */
    assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z("g"), 0, 10, 0, &m), 0);
    assert_int_equal(m.n, 10);
    assert_true(m.more);
    assert_int_equal(m.v[0].seq, 1);
    assert_int_equal(m.v[0].kind, HERALD_MK_SYSTEM);
    store_msgs_free(&m);
    assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z("g"), 25, 10, 0, &m), 0);
    assert_int_equal(m.n, 6);
    assert_false(m.more);
    assert_int_equal(m.v[5].seq, 31);
    assert_memory_equal(m.v[5].body.ptr, "m29", 3);
    store_msgs_free(&m);
    /* A byte budget cuts a page but always returns at least one message. */
    assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z("g"), 0, 100, 1, &m), 0);
    assert_int_equal(m.n, 1);
    assert_true(m.more);
    store_msgs_free(&m);
    /* Sync from zero and from the middle. */
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("b"), 0, 0, 0, &so), 0);
    assert_int_equal(so.msgs.n, 31);
    assert_int_equal(so.pos, 31);
    assert_int_equal(so.msgs.v[30].pos, 31);
    store_sync_free(&so);
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("b"), 20, 5, 0, &so), 0);
    assert_int_equal(so.msgs.n, 5);
    assert_true(so.msgs.more);
    assert_int_equal(so.pos, 25);
    store_sync_free(&so);
    assert_int_equal(store_gpos(f->st), 31);
    /* Cursors: forward only, bounded by max seq; receipts from cursors. */
    {
        cmd k = {.op = CMD_READ, .user = herald_str_z("b"), .conv = herald_str_z("g"), .seq = 10};
        apply_result r;
        assert_int_equal(run(f, &k, &seq, &r), 0);
        assert_int_equal(seq, 10);
        assert_int_equal(r.n_targets, 2); /* a and c get a RECEIPT */
        apply_result_free(&r);
        k.seq = 5;
        assert_int_equal(run(f, &k, &seq, NULL), 0);
        assert_int_equal(seq, 10);
        k.seq = 99;
        assert_int_equal(run(f, &k, NULL, NULL), HERALD_EINVAL);
    }
    assert_int_equal(store_receipts(f->st, herald_str_z(TEN), herald_str_z("g"), 10,
                                    (herald_str){0}, 0, &ro), 0);
    assert_int_equal(ro.read.n, 2);
    assert_string_equal(ro.read.v[0], "a"); /* the sender */
    assert_string_equal(ro.read.v[1], "b");
    assert_int_equal(ro.unread.n, 1);
    assert_string_equal(ro.unread.v[0], "c");
    assert_int_equal(ro.n_read, 2);
    assert_int_equal(ro.n_unread, 1);
    assert_false(ro.more);
    store_receipts_free(&ro);
    assert_int_equal(store_receipts(f->st, herald_str_z(TEN), herald_str_z("g"), 0,
                                    (herald_str){0}, 0, &ro),
                     HERALD_EINVAL);
}

static void test_announce_read_diffusion(void **state)
{
    fx *f = *state;
    const char *mem[] = {"e1", "e2"};
    store_sync_out so;
    apply_result r;
    tenant(f, 0);
    assert_int_equal(create(f, "boss", true, "news", "announce", mem, 2), 0);
    {
        cmd k = {.op = CMD_SEND, .user = herald_str_z("boss"), .admin = true,
                 .conv = herald_str_z("news"), .body = herald_str_z("hello")};
        assert_int_equal(run(f, &k, NULL, &r), 0);
        assert_int_equal(r.n_targets, 2); /* the members (boss is an admin) */
        assert_int_equal(r.msg->pos, 2);
        apply_result_free(&r);
    }
    assert_int_equal(send_msg(f, "e1", "news", NULL, "x", NULL), HERALD_EFORBIDDEN);
    /* From nothing: the join (the system message) and the message. */
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("e1"), 0, 0, 0, &so), 0);
    assert_int_equal(so.pos, 2);
    assert_int_equal(so.msgs.n, 2);
    store_sync_free(&so);
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("e1"), 1, 0, 0, &so), 0);
    assert_int_equal(so.msgs.n, 1);
    assert_int_equal(so.msgs.v[0].seq, 2);
    assert_int_equal(so.msgs.v[0].pos, 2);
    store_sync_free(&so);
}

/* Sync merges the user's conversations of the group by position: pages
 * of any size hand out every message once, in position order; a
 * conversation joined later starts at the join; others' are not seen; a
 * whole answer ends at the group's position. */
static void test_sync_merge(void **state)
{
    fx *f = *state;
    const char *m1[] = {"a", "b"}, *m2[] = {"a", "b", "c"}, *m3[] = {"a", "c"};
    uint64_t pos, seen[64] = {0};
    uint32_t got = 0;
    tenant(f, 0);
    assert_int_equal(create(f, "a", false, "g1", "group", m1, 2), 0); /* pos 1 */
    assert_int_equal(create(f, "a", false, "g2", "group", m2, 3), 0); /* pos 2 */
    assert_int_equal(create(f, "a", false, "g3", "group", m3, 2), 0); /* pos 3 */
    for (int i = 0; i < 12; i++) /* g1, g2, g3 in turn: pos 4 … 15 */
        assert_int_equal(send_msg(f, "a", i % 3 == 0 ? "g1" : i % 3 == 1 ? "g2" : "g3", NULL,
                                  "x", NULL),
                         0);
    {
        /* b joins g3 at pos 16 (its system message) and g3 goes on. */
        const char *add[] = {"b"};
        cmd k = {.op = CMD_CONV_ADD, .user = herald_str_z("a"), .conv = herald_str_z("g3"),
                 .members = NULL, .n_members = 1};
        herald_str hs[1] = {herald_str_z(add[0])};
        k.members = hs;
        assert_int_equal(run(f, &k, NULL, NULL), 0);
    }
    assert_int_equal(send_msg(f, "a", "g3", NULL, "y", NULL), 0); /* pos 17 */
    assert_int_equal(store_gpos(f->st), 17);
    for (uint32_t page = 1; page <= 5; page++) {
        memset(seen, 0, sizeof seen);
        got = 0;
        pos = 0;
        for (int round = 0; round < 40; round++) {
            store_sync_out so;
            assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("b"), pos, page,
                                        0, &so),
                             0);
            for (uint32_t i = 0; i < so.msgs.n; i++) {
                uint64_t p = so.msgs.v[i].pos;
                assert_true(p > pos && p < 64);
                assert_int_equal(seen[p], 0);
                seen[p] = 1;
                if (i)
                    assert_true(p > so.msgs.v[i - 1].pos);
                assert_true(herald_str_eq(so.msgs.v[i].conv, "g1") ||
                            herald_str_eq(so.msgs.v[i].conv, "g2") ||
                            (herald_str_eq(so.msgs.v[i].conv, "g3") && p >= 16));
                got++;
            }
            assert_true(so.pos >= pos);
            pos = so.pos;
            if (!so.msgs.more) {
                store_sync_free(&so);
                break;
            }
            store_sync_free(&so);
        }
        /* g1: 1 + 4, g2: 1 + 4, g3 from the join: 2. */
        assert_int_equal(got, 12);
        assert_int_equal(pos, 17);
    }
    {
        /* Nothing new: nothing, and the position stays the group's. */
        store_sync_out so;
        assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("b"), 17, 0, 0, &so),
                         0);
        assert_int_equal(so.msgs.n, 0);
        assert_int_equal(so.pos, 17);
        store_sync_free(&so);
    }
}

/* An announcement of 5,000: counts over everyone, unread names in pages
 * that cover every unread member exactly once. */
static void test_receipts_paged(void **state)
{
    fx *f = *state;
    enum { N = 5000 };
    static char names[N][16];
    static const char *mem[N];
    static herald_str mv[N];
    static unsigned char seen[N];
    store_receipts_out ro;
    char after[200] = "";
    uint32_t pages = 0, unread = 0;
    uint64_t seq;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "e%d", i);
        mem[i] = names[i];
        mv[i] = herald_str_z(names[i]);
    }
    tenant(f, 0);
    {
        cmd k = {.op = CMD_CONV_CREATE, .user = herald_str_z("boss"), .admin = true,
                 .conv = herald_str_z("all"), .kind = herald_str_z("announce"),
                 .members = mv, .n_members = N};
        assert_int_equal(run(f, &k, NULL, NULL), 0);
    }
    {
        cmd k = {.op = CMD_SEND, .user = herald_str_z("boss"), .admin = true,
                 .conv = herald_str_z("all"), .body = herald_str_z("news")};
        assert_int_equal(run(f, &k, &seq, NULL), 0);
    }
    for (int i = 0; i < N; i += 10) { /* every tenth reads */
        cmd k = {.op = CMD_READ, .user = herald_str_z(mem[i]), .conv = herald_str_z("all"),
                 .seq = seq};
        assert_int_equal(run(f, &k, NULL, NULL), 0);
    }
    do {
        assert_int_equal(store_receipts(f->st, herald_str_z(TEN), herald_str_z("all"), seq,
                                        herald_str_z(after[0] ? after : NULL), 700, &ro), 0);
        assert_int_equal(ro.n_read, N / 10);
        assert_int_equal(ro.n_unread, N - N / 10);
        assert_int_equal(ro.read.n, 0); /* large: counts only */
        assert_true(ro.unread.n <= 700);
        for (uint32_t i = 0; i < ro.unread.n; i++) {
            int id = atoi(ro.unread.v[i] + 1);
            assert_int_not_equal(id % 10, 0);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            unread++;
        }
        snprintf(after, sizeof after, "%s", ro.more ? ro.next : "");
        pages++;
        store_receipts_free(&ro);
    } while (after[0] && pages < 100);
    assert_int_equal(unread, N - N / 10);
    assert_int_equal(pages, (N - N / 10 + 699) / 700);
}

/* Recall: sender within the window, owner any time, tombstone + event. */
static void test_recall(void **state)
{
    fx *f = *state;
    const char *mem[] = {"own", "s", "o"};
    uint64_t s1, s2, ev;
    store_msgs m;
    tenant(f, 0);
    assert_int_equal(create(f, "own", false, "g", "group", mem, 3), 0);
    {
        cmd k = {.op = CMD_SEND, .user = herald_str_z("s"), .conv = herald_str_z("g"),
                 .body = herald_str_z("secret"), .ts = 1000};
        assert_int_equal(run(f, &k, &s1, NULL), 0);
        k.ts = 2000;
        assert_int_equal(run(f, &k, &s2, NULL), 0);
    }
    {
        cmd r = {.op = CMD_RECALL, .user = herald_str_z("o"), .conv = herald_str_z("g"), .seq = s1,
                 .ts = 1500};
        assert_int_equal(run(f, &r, NULL, NULL), HERALD_EFORBIDDEN); /* not the sender */
        r.user = herald_str_z("s");
        r.ts = 1000 + 86400u * 1000u + 1;
        assert_int_equal(run(f, &r, NULL, NULL), HERALD_EFORBIDDEN); /* window passed */
        r.win = 7 * 86400;                                          /* tenant allows a week */
        assert_int_equal(run(f, &r, &ev, NULL), 0);
        assert_int_equal(ev, s2 + 1);
        r.seq = s2;
        r.user = herald_str_z("own");
        r.win = 0;
        r.ts = 99999999;
        assert_int_equal(run(f, &r, NULL, NULL), 0); /* the owner, any time */
        r.seq = 1;
        assert_int_equal(run(f, &r, NULL, NULL), HERALD_EINVAL); /* system message */
    }
    assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z("g"), s1 - 1, 10, 0, &m), 0);
    assert_int_equal(m.v[0].seq, s1);
    assert_true(m.v[0].flags & HERALD_MSGF_RECALLED);
    assert_int_equal(m.v[0].body.len, 0);
    assert_int_equal(m.v[2].kind, HERALD_MK_SYSTEM);
    store_msgs_free(&m);
}

/* Reopen: everything committed is there and indexes continue. */
static void test_reopen(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b"};
    uint64_t seq, applied;
    store_conv sc;
    tenant(f, 0);
    assert_int_equal(create(f, "a", false, "c", "group", mem, 2), 0);
    assert_int_equal(send_msg(f, "a", "c", "k", "v", &seq), 0);
    applied = store_applied(f->st);
    store_close(f->st);
    fx_open(f, 0, 0);
    assert_int_equal(store_applied(f->st), applied);
    assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("c"), &sc), 0);
    assert_int_equal(sc.max_seq, seq);
    assert_int_equal(send_msg(f, "a", "c", "k", "v", &seq), 0); /* dedup survives */
    assert_int_equal(seq, 2);
}

/* A tiny map forces MDB_MAP_FULL many times: batches are retried after
 * growth, every message stays, and reopening finds them all. */
static void test_map_growth(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b"};
    static char body[2048];
    uint64_t seq = 0;
    store_msgs m;
    uint64_t got = 0, after = 0;
    store_close(f->st);
    fx_open(f, 256 * 1024, 0);
    memset(body, 'x', sizeof body - 1);
    tenant(f, 0);
    assert_int_equal(create(f, "a", false, "c", "group", mem, 2), 0);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(send_msg(f, "a", "c", NULL, body, &seq), 0);
    assert_int_equal(seq, 2001);
    store_close(f->st);
    fx_open(f, 256 * 1024, 0);
    do {
        assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z("c"), after, 1000, 0, &m), 0);
        for (uint32_t i = 0; i < m.n; i++)
            assert_int_equal(m.v[i].seq, ++after);
        got += m.n;
        bool more = m.more;
        store_msgs_free(&m);
        if (!more)
            break;
    } while (1);
    assert_int_equal(got, 2001);
}

/* SLOTMAP: written once; the same map again is a no-op, another refused. */
static void test_slotmap(void **state)
{
    fx *f = *state;
    uint8_t map[HERALD_SLOTS], got[HERALD_SLOTS];
    cmd k = {.op = CMD_SLOTMAP, .body = {.ptr = (const char *)map, .len = HERALD_SLOTS}};

    assert_int_equal(store_slotmap_get(f->st, got), HERALD_ENOT_FOUND);
    for (uint32_t i = 0; i < HERALD_SLOTS; i++)
        map[i] = (uint8_t)(1 + i % 8);
    k.body.len = HERALD_SLOTS - 1;
    assert_int_equal(run(f, &k, NULL, NULL), HERALD_EINVAL);
    k.body.len = HERALD_SLOTS;
    map[7] = 0;
    assert_int_equal(run(f, &k, NULL, NULL), HERALD_EINVAL);
    map[7] = 8;
    assert_int_equal(run(f, &k, NULL, NULL), 0);
    assert_int_equal(store_slotmap_get(f->st, got), 0);
    assert_memory_equal(got, map, HERALD_SLOTS);
    assert_int_equal(run(f, &k, NULL, NULL), 0);
    map[0] = 2;
    assert_int_equal(run(f, &k, NULL, NULL), HERALD_EEXISTS);
    assert_int_equal(store_slotmap_get(f->st, got), 0);
    assert_int_equal(got[0], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_caps_and_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_dedup_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_sync_receipts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_announce_read_diffusion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipts_paged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slotmap, setup, teardown),
    };
    herald_token_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
