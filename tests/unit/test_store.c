/*
 * test_store.c — the LMDB store below the state machine: tenants, kind
 * names, membership changes and joined seqs, pointer writes counted in the
 * databases themselves (none for read diffusion), conversations whose cap
 * makes them read-diffused, corrupted records (an error, never a crash),
 * over-long keys, and map growth while reader threads keep reading.
 */
#include <herald/error.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "apply.h"
#include "cmd.h"
#include "fixture.h"
#include "store.h"
#include "store_int.h"
#include "token.h"

#define TEN "acme"

static int setup(void **state)
{
    *state = fx_new("store");
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* Applies one command (tenant and ts filled in); returns its result code.
 * keep (optional) receives the result, to be freed by the caller. */
static int run(fx *f, cmd *k, uint64_t *seq, apply_result *keep)
{
    apply_result r;
    int rc;
    if (!k->tenant.ptr)
        k->tenant = herald_str_z(TEN);
    if (!k->ts)
        k->ts = 1000;
    fx_apply(f, k, &r);
    rc = r.err;
    if (seq)
        *seq = r.seq;
    if (keep)
        *keep = r;
    else
        apply_result_free(&r);
    return rc;
}

static int tenant_named(fx *f, const char *ten, uint32_t cap, const char *hex_in)
{
    char hex[TOKEN_SECRET_HEX + 1];
    cmd k = {.op = CMD_TENANT_CREATE, .cap = cap, .tenant = herald_str_z(ten)};
    fx_secret_hex(hex);
    k.secret = herald_str_z(hex_in ? hex_in : hex);
    return run(f, &k, NULL, NULL);
}

static int create(fx *f, const char *actor, bool admin, const char *conv, const char *kind,
                  const char *const *mem, uint32_t n)
{
    herald_str *mv = calloc(n + 1, sizeof *mv);
    cmd k = {.op = CMD_CONV_CREATE, .user = herald_str_z(actor), .admin = admin,
             .conv = herald_str_z(conv), .kind = herald_str_z(kind)};
    int rc;
    assert_non_null(mv);
    for (uint32_t i = 0; i < n; i++)
        mv[i] = herald_str_z(mem[i]);
    k.members = mv;
    k.n_members = n;
    rc = run(f, &k, NULL, NULL);
    free(mv);
    return rc;
}

static int send_msg(fx *f, const char *user, const char *conv, const char *body,
                    apply_result *keep)
{
    cmd k = {.op = CMD_SEND, .user = herald_str_z(user), .conv = herald_str_z(conv),
             .body = herald_str_z(body)};
    return run(f, &k, NULL, keep);
}

/* Entries of one named database. */
static size_t entries(fx *f, MDB_dbi dbi)
{
    MDB_txn *txn;
    MDB_stat st;
    assert_int_equal(mdb_txn_begin(f->st->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* Overwrites one record directly, as a damaged disk would. */
static void poke(fx *f, MDB_dbi dbi, kbuf *k, const void *p, size_t n)
{
    MDB_txn *txn;
    MDB_val kv = kb_val(k), v = {.mv_size = n, .mv_data = (void *)p};
    assert_int_equal(mdb_txn_begin(f->st->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_put(txn, dbi, &kv, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_int_equal(conv_kind_parse(herald_str_z("single")), CONV_SINGLE);
    assert_int_equal(conv_kind_parse(herald_str_z("group")), CONV_GROUP);
    assert_int_equal(conv_kind_parse(herald_str_z("customer_group")), CONV_CUSTOMER_GROUP);
    assert_int_equal(conv_kind_parse(herald_str_z("announce")), CONV_ANNOUNCE);
    assert_int_equal(conv_kind_parse(herald_str_z("groups")), 0);
    assert_int_equal(conv_kind_parse(herald_str_z("")), 0);
    assert_int_equal(conv_kind_parse((herald_str){0}), 0);
    for (int k = CONV_SINGLE; k <= CONV_ANNOUNCE; k++)
        assert_int_equal(conv_kind_parse(herald_str_z(conv_kind_name(k))), k);
    assert_string_equal(conv_kind_name(99), "unknown");
}

/* Length-prefixed ids never run into each other; seqs sort numerically. */
static void test_keys(void **state)
{
    kbuf a = {0}, b = {0};
    uint8_t big[300];
    (void)state;
    kb_id(&a, herald_str_z("ab"));
    kb_id(&a, herald_str_z("c"));
    kb_id(&b, herald_str_z("a"));
    kb_id(&b, herald_str_z("bc"));
    assert_int_equal(a.n, b.n);
    assert_memory_not_equal(a.b, b.b, a.n);
    a.n = b.n = 0;
    kb_u64(&a, 255);
    kb_u64(&b, 256);
    assert_true(memcmp(a.b, b.b, 8) < 0);
    assert_int_equal(be64(b.b), 256);
    memset(big, 'x', sizeof big);
    a.n = 0;
    kb_id(&a, (herald_str){.ptr = (const char *)big, .len = 256});
    assert_true(a.over); /* a 1-byte length cannot hold it */
    a = (kbuf){0};
    for (int i = 0; i < 3; i++)
        kb_id(&a, (herald_str){.ptr = (const char *)big, .len = 200});
    assert_true(a.over); /* past KEY_MAX */
    assert_true(a.n <= KEY_MAX);
}

static void test_tenant(void **state)
{
    fx *f = *state;
    store_tenant t;
    char hex[TOKEN_SECRET_HEX + 1];
    uint8_t sec[TOKEN_SECRET_LEN];
    token_secret_generate(sec);
    token_secret_to_hex(sec, hex);
    assert_int_equal(tenant_named(f, TEN, 300, hex), 0);
    assert_int_equal(tenant_named(f, TEN, 0, NULL), HERALD_EEXISTS);
    assert_int_equal(tenant_named(f, "bad tenant", 0, NULL), HERALD_EINVAL);
    assert_int_equal(tenant_named(f, "t2", 0, "abc"), HERALD_EINVAL);
    hex[5] = 'z';
    assert_int_equal(tenant_named(f, "t3", 0, hex), HERALD_EINVAL);
    assert_int_equal(store_tenant_get(f->st, herald_str_z(TEN), &t), 0);
    assert_memory_equal(t.secret, sec, sizeof sec);
    assert_int_equal(t.group_cap, 300);
    assert_int_equal(t.recall_window, RECALL_WINDOW_DEFAULT);
    assert_string_equal(t.corp, TEN); /* no display name: the id */
    assert_int_equal(store_tenant_get(f->st, herald_str_z("t2"), &t), HERALD_ENOT_FOUND);
    assert_int_equal(store_tenant_get(f->st, herald_str_z("nope"), &t), HERALD_ENOT_FOUND);
}

/* Adds get a joined seq at their system message; sync of a new member
 * starts there; a removed member learns the removal and then nothing. */
static void test_membership(void **state)
{
    fx *f = *state;
    const char *mem[] = {"b", "c"};
    herald_str d = herald_str_z("d"), bm = herald_str_z("b");
    store_strs l;
    store_sync_out so;
    apply_result r;
    uint64_t seq;
    assert_int_equal(tenant_named(f, TEN, 0, NULL), 0);
    assert_int_equal(create(f, "a", false, "g", "group", mem, 2), 0);
    assert_int_equal(send_msg(f, "b", "g", "before d", NULL), 0); /* seq 2 */
    {
        cmd k = {.op = CMD_CONV_ADD, .user = herald_str_z("c"), .conv = herald_str_z("g"),
                 .members = &d, .n_members = 1};
        assert_int_equal(run(f, &k, NULL, NULL), HERALD_EFORBIDDEN); /* not the owner */
        k.user = herald_str_z("a");
        assert_int_equal(run(f, &k, &seq, &r), 0);
        assert_int_equal(seq, 3);
        assert_int_equal(r.n_targets, 4); /* d included: it sees its own add */
        apply_result_free(&r);
        assert_int_equal(run(f, &k, &seq, NULL), 0); /* already a member: no-op */
        assert_int_equal(seq, 0);
    }
    assert_int_equal(store_members(f->st, herald_str_z(TEN), herald_str_z("g"), &l), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.v[0], "a");
    assert_string_equal(l.v[3], "d");
    store_strs_free(&l);
    assert_int_equal(store_members(f->st, herald_str_z(TEN), herald_str_z("x"), &l),
                     HERALD_ENOT_FOUND);
    /* d's sync starts with the add. */
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), d, 0, 0, 0, &so), 0);
    assert_int_equal(so.msgs.n, 1);
    assert_int_equal(so.msgs.v[0].seq, 3);
    assert_int_equal(so.msgs.v[0].kind, HERALD_MK_SYSTEM);
    assert_non_null(strstr(so.msgs.v[0].body.ptr, "\"event\":\"add\""));
    assert_int_equal(so.pos, 3);
    store_sync_free(&so);
    /* ... but any current member may read the whole history. */
    {
        store_msgs m;
        assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z("g"), 0, 0, 0,
                                       &m), 0);
        assert_int_equal(m.n, 3);
        store_msgs_free(&m);
    }
    /* Removing someone else takes the owner; leaving does not. */
    {
        cmd k = {.op = CMD_CONV_REMOVE, .user = herald_str_z("c"), .conv = herald_str_z("g"),
                 .members = &bm, .n_members = 1};
        assert_int_equal(run(f, &k, NULL, NULL), HERALD_EFORBIDDEN);
        k.user = herald_str_z("a");
        assert_int_equal(run(f, &k, &seq, &r), 0);
        assert_int_equal(seq, 4);
        assert_int_equal(r.n_targets, 4); /* b too: it learns it was removed */
        apply_result_free(&r);
        assert_int_equal(run(f, &k, NULL, NULL), HERALD_ENOT_MEMBER);
        k.user = herald_str_z("d");
        k.members = &d;
        assert_int_equal(run(f, &k, &seq, NULL), 0); /* d leaves */
        assert_int_equal(seq, 5);
        k.user = herald_str_z("c");
        k.members = &(herald_str){.ptr = "a", .len = 1};
        assert_int_equal(run(f, &k, NULL, NULL), HERALD_EFORBIDDEN);
    }
    assert_int_equal(store_member_check(f->st, herald_str_z(TEN), herald_str_z("g"), bm),
                     HERALD_ENOT_MEMBER);
    assert_int_equal(send_msg(f, "b", "g", "after", NULL), HERALD_ENOT_MEMBER);
    assert_int_equal(send_msg(f, "c", "g", "after b", NULL), 0); /* seq 6 */
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), bm, 0, 0, 0, &so), 0);
    assert_int_equal(so.msgs.v[so.msgs.n - 1].seq, 4); /* the removal, nothing after */
    store_sync_free(&so);
    {
        store_conv sc;
        assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("g"), &sc), 0);
        assert_int_equal(sc.count, 2);
        assert_int_equal(sc.max_seq, 6);
        assert_string_equal(sc.owner, "a");
    }
}

/* Entries in every database of the store. */
static size_t all_entries(fx *f)
{
    size_t n = 0;
    for (size_t i = 0; i < STORE_NDBS; i++) {
        MDB_dbi d;
        memcpy(&d, (const char *)&f->st->db + store_db_names[i].off, sizeof d);
        n += entries(f, d);
    }
    return n;
}

/* A message costs the same records whatever the member count: its record,
 * its position and its callback event (the outbox, pruned once every app
 * has it); the group's position, the outbox state and the conversation
 * record are rewritten in place. */
static void test_write_counts(void **state)
{
    fx *f = *state;
    enum { N = 500 };
    static char names[N][12];
    static const char *mem[N];
    store_sync_out so;
    size_t before;
    apply_result r;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "m%03d", i);
        mem[i] = names[i];
    }
    assert_int_equal(tenant_named(f, TEN, 2000, NULL), 0);
    assert_int_equal(create(f, "m000", false, "two", "group", mem, 2), 0);
    assert_int_equal(create(f, "m000", false, "big", "customer_group", mem, N), 0);
    assert_int_equal(create(f, "boss", true, "news", "announce", mem, N), 0);
    before = all_entries(f);
    assert_int_equal(send_msg(f, "m001", "two", "c1", &r), 0);
    assert_int_equal(r.n_targets, 2);
    assert_int_equal(r.msg->pos, 4);
    apply_result_free(&r);
    assert_int_equal(all_entries(f), before + 3);
    assert_int_equal(send_msg(f, "m005", "big", "c2", &r), 0);
    assert_int_equal(r.n_targets, N);
    assert_int_equal(r.msg->pos, 5);
    apply_result_free(&r);
    assert_int_equal(all_entries(f), before + 6);
    {
        cmd k = {.op = CMD_SEND, .user = herald_str_z("boss"), .admin = true,
                 .conv = herald_str_z("news"), .body = herald_str_z("n")};
        assert_int_equal(run(f, &k, NULL, &r), 0);
        assert_int_equal(r.n_targets, N);
        apply_result_free(&r);
    }
    assert_int_equal(all_entries(f), before + 9);
    /* The last member sees both of its conversations from their creation. */
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("m499"), 0, 0, 0, &so), 0);
    assert_int_equal(so.msgs.n, 4); /* big: create + msg; news: create + msg */
    assert_int_equal(so.msgs.v[0].pos, 2);
    assert_int_equal(so.msgs.v[3].pos, 6);
    assert_int_equal(so.pos, 6);
    store_sync_free(&so);
    assert_int_equal(store_gpos(f->st), 6);
    /* READ in an announcement: the cursor moves, no receipt events. */
    {
        cmd k = {.op = CMD_READ, .user = herald_str_z("m002"), .conv = herald_str_z("news"),
                 .seq = 2};
        uint64_t seq;
        assert_int_equal(run(f, &k, &seq, &r), 0);
        assert_int_equal(seq, 2);
        assert_int_equal(r.n_targets, 0);
        apply_result_free(&r);
        k.seq = 3;
        assert_int_equal(run(f, &k, NULL, NULL), HERALD_EINVAL); /* beyond max (2) */
        k.seq = 1;
        assert_int_equal(run(f, &k, &seq, NULL), 0);
        assert_int_equal(seq, 2); /* never backwards */
    }
}

/* A data dir of store format 1 (per-user pointer logs, no format record)
 * is refused at open; the fixture's new store is format 2. */
static void test_format(void **state)
{
    fx *f = *state;
    char dir[256];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi d;
    store *s = NULL;
    snprintf(dir, sizeof dir, "%s-v1", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "uevt", MDB_CREATE, &d), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    assert_int_equal(store_open(&(store_config){.dir = dir, .no_sync = true}, &s),
                     HERALD_ESTORAGE);
    assert_null(s);
    {
        char cmdl[600];
        snprintf(cmdl, sizeof cmdl, "rm -rf '%s'", dir);
        assert_int_equal(system(cmdl), 0);
    }
    assert_int_equal(store_gpos(f->st), 0);
    store_close(f->st);
    fx_open(f, 0, 0);
    assert_int_equal(store_gpos(f->st), 0);
}

/* Turns the fixture's store back into what format 1 wrote: no format or
 * group position, no positions, a pointer log, read-diffused memberships
 * marked 0x80. */
static void make_format1(fx *f)
{
    MDB_txn *txn;
    MDB_dbi d;
    MDB_cursor *cur;
    MDB_val k, v;
    assert_int_equal(mdb_txn_begin(f->st->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_del(txn, f->st->db.meta, &(MDB_val){6, "format"}, NULL), 0);
    assert_int_equal(mdb_del(txn, f->st->db.meta, &(MDB_val){4, "gpos"}, NULL), 0);
    assert_int_equal(mdb_drop(txn, f->st->db.mpos, 0), 0);
    assert_int_equal(mdb_dbi_open(txn, "uevt", MDB_CREATE, &d), 0);
    assert_int_equal(mdb_put(txn, d, &(MDB_val){3, "key"}, &(MDB_val){3, "ptr"}, 0), 0);
    assert_int_equal(mdb_cursor_open(txn, f->st->db.memberof, &cur), 0);
    assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    {
        uint8_t b = (uint8_t)(*(const uint8_t *)v.mv_data | 0x80u);
        assert_int_equal(mdb_cursor_put(cur, &k, &(MDB_val){1, &b}, MDB_CURRENT), 0);
    }
    mdb_cursor_close(cur);
    assert_int_equal(mdb_txn_commit(txn), 0);
    store_close(f->st);
    f->st = NULL;
}

/* heraldd upgrade-data's step: format 1 is refused, upgraded in place
 * (positions in key order, the pointer logs gone), then syncs as if
 * written by format 2; a second run leaves it alone. */
static void test_upgrade(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b"};
    store_upgrade_report rep;
    store_sync_out so;
    store *s = NULL;
    assert_int_equal(tenant_named(f, TEN, 0, NULL), 0);
    assert_int_equal(create(f, "a", false, "h", "group", mem, 2), 0);
    assert_int_equal(create(f, "a", false, "g", "group", mem, 2), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(send_msg(f, "a", "h", "x", NULL), 0);
        assert_int_equal(send_msg(f, "a", "g", "y", NULL), 0);
    }
    make_format1(f);
    assert_int_equal(store_open(&(store_config){.dir = f->dir, .no_sync = true}, &s),
                     HERALD_ESTORAGE);
    assert_int_equal(store_upgrade(f->dir, &rep), 0);
    assert_false(rep.already);
    assert_int_equal(rep.messages, 8);
    assert_true(rep.applied > 0);
    fx_open(f, 0, 0);
    assert_int_equal(store_gpos(f->st), 8);
    /* Key order: all of g (1..4), then all of h (5..8). */
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("b"), 0, 0, 0, &so), 0);
    assert_int_equal(so.msgs.n, 8);
    assert_true(herald_str_eq(so.msgs.v[0].conv, "g"));
    assert_int_equal(so.msgs.v[0].pos, 1);
    assert_true(herald_str_eq(so.msgs.v[7].conv, "h"));
    assert_int_equal(so.msgs.v[7].seq, 4);
    assert_int_equal(so.pos, 8);
    store_sync_free(&so);
    assert_int_equal(send_msg(f, "b", "h", "z", NULL), 0);
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("a"), 8, 0, 0, &so), 0);
    assert_int_equal(so.msgs.n, 1);
    assert_int_equal(so.msgs.v[0].pos, 9);
    store_sync_free(&so);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_upgrade(f->dir, &rep), 0);
    assert_true(rep.already);
    fx_open(f, 0, 0);
}

/* The conversation list: newest activity first (ties by id), pages that
 * cover every conversation once, last message with a cut preview, member
 * and unread counts, conversations left not listed. */
static void test_conv_list(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b"};
    char id[8], big[300];
    store_convlist l;
    store_conv_entry cur;
    uint32_t seen = 0;
    assert_int_equal(tenant_named(f, TEN, 0, NULL), 0);
    for (int i = 0; i < 7; i++) {
        cmd k = {.op = CMD_CONV_CREATE, .user = herald_str_z("a"), .kind = herald_str_z("group"),
                 .ts = 1000 + (uint64_t)i};
        herald_str mv[2] = {herald_str_z(mem[0]), herald_str_z(mem[1])};
        snprintf(id, sizeof id, "c%d", i);
        k.conv = herald_str_z(id);
        k.members = mv;
        k.n_members = 2;
        assert_int_equal(run(f, &k, NULL, NULL), 0);
    }
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    {
        cmd k = {.op = CMD_SEND, .user = herald_str_z("a"), .conv = herald_str_z("c2"),
                 .body = herald_str_z(big), .ts = 5000};
        assert_int_equal(run(f, &k, NULL, NULL), 0);
        k.conv = herald_str_z("c5");
        k.user = herald_str_z("b");
        k.body = herald_str_z("mine");
        k.ts = 4000;
        assert_int_equal(run(f, &k, NULL, NULL), 0);
    }
    {
        /* b leaves c6: not listed for b any more. */
        herald_str bm = herald_str_z("b");
        cmd k = {.op = CMD_CONV_REMOVE, .user = herald_str_z("b"), .conv = herald_str_z("c6"),
                 .members = &bm, .n_members = 1, .ts = 6000};
        assert_int_equal(run(f, &k, NULL, NULL), 0);
    }
    assert_int_equal(store_convs(f->st, herald_str_z(TEN), herald_str_z("b"), NULL, 0, &l), 0);
    assert_int_equal(l.n, 6);
    assert_false(l.more);
    assert_true(herald_str_eq(l.v[0].last.conv, "c2"));
    assert_int_equal(l.v[0].last.seq, 2);
    assert_int_equal(l.v[0].last.body.len, STORE_PREVIEW_MAX);
    assert_int_equal(l.v[0].unread, 2);
    assert_int_equal(l.v[0].count, 2);
    assert_int_equal(l.v[0].kind, CONV_GROUP);
    assert_true(herald_str_eq(l.v[1].last.conv, "c5"));
    assert_int_equal(l.v[1].unread, 0); /* b wrote the last one */
    assert_true(herald_str_eq(l.v[2].last.conv, "c4"));
    assert_true(herald_str_eq(l.v[5].last.conv, "c0"));
    store_convlist_free(&l);
    /* Pages of 2: c2 c5 | c4 c3 | c1 c0, each once. */
    for (int page = 0; page < 5; page++) {
        assert_int_equal(store_convs(f->st, herald_str_z(TEN), herald_str_z("b"),
                                     page ? &cur : NULL, 2, &l),
                         0);
        seen += l.n;
        if (!l.more) {
            store_convlist_free(&l);
            break;
        }
        assert_int_equal(l.n, 2);
        cur = l.v[1];
        snprintf(id, sizeof id, "%.*s", (int)cur.last.conv.len, cur.last.conv.ptr);
        cur.last.conv = herald_str_z(id);
        store_convlist_free(&l);
    }
    assert_int_equal(seen, 6);
    /* a is still in c6. */
    assert_int_equal(store_convs(f->st, herald_str_z(TEN), herald_str_z("a"), NULL, 0, &l), 0);
    assert_int_equal(l.n, 7);
    assert_true(herald_str_eq(l.v[0].last.conv, "c6")); /* the removal, at 6000 */
    store_convlist_free(&l);
}

/* Sync: a limit cuts the answer and the position stops there; a
 * byte budget cuts too but never returns nothing. */
static void test_sync_limits(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b"};
    store_sync_out so;
    uint64_t pos = 0, got = 0;
    assert_int_equal(tenant_named(f, TEN, 0, NULL), 0);
    assert_int_equal(create(f, "a", false, "g", "group", mem, 2), 0);
    for (int i = 0; i < 25; i++)
        assert_int_equal(send_msg(f, "a", "g", "0123456789012345678901234567890123456789",
                                  NULL), 0);
    do {
        assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("b"), pos, 7, 0, &so), 0);
        assert_true(so.msgs.n <= 7);
        for (uint32_t i = 0; i < so.msgs.n; i++)
            assert_int_equal(so.msgs.v[i].pos, pos + 1 + i);
        got += so.msgs.n;
        pos = so.pos;
        bool more = so.msgs.more;
        store_sync_free(&so);
        if (!more)
            break;
    } while (got < 100);
    assert_int_equal(got, 26);
    assert_int_equal(pos, 26);
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("b"), 3, 0, 1,
                                &so), 0);
    assert_int_equal(so.msgs.n, 1);
    assert_true(so.msgs.more);
    assert_int_equal(so.pos, 4);
    store_sync_free(&so);
    /* A user with nothing: empty answer, the group's position. */
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("zz"), 0, 0, 0,
                                &so), 0);
    assert_int_equal(so.msgs.n, 0);
    assert_int_equal(so.pos, 26);
    assert_false(so.msgs.more);
    store_sync_free(&so);
}

/* Records read back from a damaged store give HERALD_ESTORAGE; a command
 * that meets one fails its batch (nothing committed), and a damaged
 * applied index is never taken for 0. */
static void test_corrupt_records(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b"};
    static const uint8_t junk[] = {9, 0, 0, 0, 200, 'x'};
    store_conv sc;
    store_msgs m;
    store_sync_out so;
    kbuf k;
    uint64_t applied;
    assert_int_equal(tenant_named(f, TEN, 0, NULL), 0);
    assert_int_equal(create(f, "a", false, "g", "group", mem, 2), 0);
    assert_int_equal(create(f, "a", false, "h", "group", mem, 2), 0);
    assert_int_equal(send_msg(f, "a", "g", "fine", NULL), 0);

    key_msg(&k, herald_str_z(TEN), herald_str_z("g"), 2);
    poke(f, f->st->db.msg, &k, junk, sizeof junk);
    assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z("g"), 0, 0, 0, &m),
                     HERALD_ESTORAGE);
    assert_int_equal(store_sync(f->st, herald_str_z(TEN), herald_str_z("b"), 0, 0, 0,
                                &so), HERALD_ESTORAGE);
    {
        store_receipts_out ro;
        assert_int_equal(store_receipts(f->st, herald_str_z(TEN), herald_str_z("g"), 2,
                                        (herald_str){0}, 0, &ro), HERALD_ESTORAGE);
    }

    key_conv(&k, herald_str_z(TEN), herald_str_z("h"));
    poke(f, f->st->db.conv, &k, junk, sizeof junk);
    assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("h"), &sc),
                     HERALD_ESTORAGE);
    applied = store_applied(f->st);
    {
        cmd c = {.op = CMD_SEND, .tenant = herald_str_z(TEN), .user = herald_str_z("a"),
                 .conv = herald_str_z("h"), .body = herald_str_z("x"), .ts = 1};
        herald_buf b = {0};
        const uint8_t *p;
        size_t len;
        apply_result r;
        assert_int_equal(cmd_encode(&c, &b), 0);
        p = b.data;
        len = b.len;
        assert_int_equal(apply_batch(f->st, &p, &len, 1, f->next, &r), HERALD_ESTORAGE);
        assert_int_equal(store_applied(f->st), applied);

        key_member(&k, herald_str_z(TEN), herald_str_z("g"), herald_str_z("a"));
        poke(f, f->st->db.member, &k, junk, 1); /* too short for role + joined */
        assert_int_equal(store_member_check(f->st, herald_str_z(TEN), herald_str_z("g"),
                                            herald_str_z("a")), HERALD_ESTORAGE);

        poke(f, f->st->db.meta, &(kbuf){.b = "applied", .n = 7}, junk, 3);
        assert_int_equal(apply_batch(f->st, &p, &len, 1, f->next, &r), HERALD_ESTORAGE);
        herald_buf_free(&b);
    }
}

/* Ids at their limits: a dedup key that cannot fit is refused, not
 * truncated into someone else's key. */
static void test_long_ids(void **state)
{
    fx *f = *state;
    char ten[129], user[129], conv[129], cmid[129];
    const char *mem[2];
    apply_result r;
    memset(ten, 't', 128);
    memset(user, 'u', 128);
    memset(conv, 'c', 128);
    memset(cmid, 'm', 128);
    ten[128] = user[128] = conv[128] = cmid[128] = '\0';
    assert_int_equal(tenant_named(f, ten, 0, NULL), 0);
    mem[0] = user;
    mem[1] = "v";
    {
        herald_str mv[2] = {herald_str_z(mem[0]), herald_str_z(mem[1])};
        cmd k = {.op = CMD_CONV_CREATE, .tenant = herald_str_z(ten), .user = herald_str_z(user),
                 .conv = herald_str_z(conv), .kind = herald_str_z("single"), .members = mv,
                 .n_members = 2};
        assert_int_equal(run(f, &k, NULL, NULL), 0);
    }
    {
        cmd k = {.op = CMD_SEND, .tenant = herald_str_z(ten), .user = herald_str_z(user),
                 .conv = herald_str_z(conv), .cmid = herald_str_z(cmid),
                 .body = herald_str_z("x")};
        assert_int_equal(run(f, &k, NULL, &r), HERALD_EINVAL);
        assert_int_equal(r.seq, 0);
        apply_result_free(&r);
        k.cmid = herald_str_z("short");
        assert_int_equal(run(f, &k, NULL, &r), 0);
        assert_int_equal(r.seq, 2);
        assert_int_equal(r.n_targets, 2);
        apply_result_free(&r);
        assert_int_equal(run(f, &k, NULL, &r), 0);
        assert_true(r.dup);
        assert_int_equal(r.seq, 2);
        apply_result_free(&r);
    }
}

/* Readers on other threads while the writer grows the map again and
 * again: every read succeeds, every batch commits, all of it is there
 * after reopening. */
typedef struct reader_arg {
    store *st;           /* shared store */
    _Atomic int *stop;   /* set by the main thread */
    unsigned long reads; /* reads done (this thread's) */
    int failures;        /* unexpected errors (this thread's) */
} reader_arg;

static void *reader_main(void *p)
{
    reader_arg *a = p;
    while (!atomic_load(a->stop)) {
        store_msgs m;
        store_conv sc;
        int rc = store_history(a->st, herald_str_z(TEN), herald_str_z("c"), 0, 50, 0, &m);
        if (rc == 0)
            store_msgs_free(&m);
        else if (rc != HERALD_ENOT_FOUND)
            a->failures++;
        rc = store_conv_get(a->st, herald_str_z(TEN), herald_str_z("c"), &sc);
        if (rc != 0 && rc != HERALD_ENOT_FOUND)
            a->failures++;
        a->reads++;
    }
    return NULL;
}

static void test_growth_with_readers(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b", "c"};
    static char body[3000];
    _Atomic int stop = 0;
    reader_arg ra[2] = {{0}};
    pthread_t th[2];
    size_t first;
    store_msgs m;
    uint64_t after = 0, got = 0;
    store_close(f->st);
    fx_open(f, 256 * 1024, 0);
    first = store_map_size(f->st);
    memset(body, 'y', sizeof body - 1);
    assert_int_equal(tenant_named(f, TEN, 0, NULL), 0);
    for (int i = 0; i < 2; i++) {
        ra[i].st = f->st;
        ra[i].stop = &stop;
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &ra[i]), 0);
    }
    assert_int_equal(create(f, "a", false, "c", "group", mem, 3), 0);
    for (int b = 0; b < 60; b++) { /* batches of 20 sends */
        herald_buf bufs[20] = {{0}};
        const uint8_t *p[20];
        size_t len[20];
        apply_result r[20];
        for (int i = 0; i < 20; i++) {
            cmd k = {.op = CMD_SEND, .tenant = herald_str_z(TEN), .user = herald_str_z("b"),
                     .conv = herald_str_z("c"), .body = herald_str_z(body), .ts = 5};
            assert_int_equal(cmd_encode(&k, &bufs[i]), 0);
            p[i] = bufs[i].data;
            len[i] = bufs[i].len;
        }
        assert_int_equal(apply_batch(f->st, p, len, 20, f->next, r), 0);
        f->next += 20;
        for (int i = 0; i < 20; i++) {
            assert_int_equal(r[i].err, 0);
            assert_int_equal(r[i].seq, 2 + (uint64_t)b * 20 + (uint64_t)i);
            apply_result_free(&r[i]);
            herald_buf_free(&bufs[i]);
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ra[i].failures, 0);
        assert_true(ra[i].reads > 0);
    }
    assert_true(store_map_size(f->st) >= first * 8); /* at least three doublings */
    print_message("map %zu -> %zu bytes, %lu reads meanwhile\n", first, store_map_size(f->st),
                  ra[0].reads + ra[1].reads);
    store_close(f->st);
    fx_open(f, 256 * 1024, 0);
    for (;;) {
        bool more;
        assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z("c"), after, 1000,
                                       0, &m), 0);
        for (uint32_t i = 0; i < m.n; i++)
            assert_int_equal(m.v[i].seq, ++after);
        got += m.n;
        more = m.more;
        store_msgs_free(&m);
        if (!more)
            break;
    }
    assert_int_equal(got, 1 + 60 * 20);
}

/* At the growth ceiling a batch fails as a whole and nothing of it is
 * acknowledged or visible. */
static void test_map_ceiling(void **state)
{
    fx *f = *state;
    const char *mem[] = {"a", "b"};
    static char body[4000];
    int rc = 0;
    uint64_t applied = 0, last_ok = 0;
    store_conv sc;
    store_close(f->st);
    fx_open(f, 256 * 1024, 512 * 1024);
    memset(body, 'z', sizeof body - 1);
    assert_int_equal(tenant_named(f, TEN, 0, NULL), 0);
    assert_int_equal(create(f, "a", false, "c", "group", mem, 2), 0);
    for (int i = 0; i < 1000; i++) {
        cmd k = {.op = CMD_SEND, .tenant = herald_str_z(TEN), .user = herald_str_z("a"),
                 .conv = herald_str_z("c"), .body = herald_str_z(body), .ts = 5};
        herald_buf b = {0};
        const uint8_t *p;
        size_t len;
        apply_result r;
        assert_int_equal(cmd_encode(&k, &b), 0);
        p = b.data;
        len = b.len;
        applied = store_applied(f->st);
        rc = apply_batch(f->st, &p, &len, 1, f->next, &r);
        herald_buf_free(&b);
        if (rc)
            break;
        f->next++;
        last_ok = r.seq;
        apply_result_free(&r);
    }
    assert_int_equal(rc, HERALD_ESTORAGE);
    assert_int_equal(store_applied(f->st), applied);
    assert_int_equal(store_map_size(f->st), 512 * 1024);
    assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("c"), &sc), 0);
    assert_int_equal(sc.max_seq, last_ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_keys),
        cmocka_unit_test_setup_teardown(test_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conv_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_growth_with_readers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_ceiling, setup, teardown),
    };
    herald_token_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
