/*
 * test_events.c — the push events of applied commands (events_emit), from
 * their results alone: real commands applied on a temporary store, each
 * result fed to a recording sink. Every DELIVER carries exactly the message
 * store_history returns for its seq (field by field), to the result's
 * targets with their pointer-log seqs; SEND (a duplicate: nothing),
 * APP_DELIVER, RECALL, CONV_CREATE/ADD/REMOVE (and a duplicate
 * CONV_CREATE), CONV_HANDOVER, READ (RECEIPT to the other members), DND,
 * REMIND and its escalation (with the urgent.escalate log line); errors
 * and skipped commands give nothing.
 */
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apply.h"
#include "cmd.h"
#include "events.h"
#include "fixture.h"
#include "log.h"
#include "store.h"
#include "token.h"

#define TEN "acme"
#define MAXU 8

/* One recorded event: a push (frame copied) or a dnd change. */
typedef struct rec_ev {
    bool dnd;                  /* dnd hook, else push */
    uint32_t group;            /* push: the entry's group */
    uint64_t index;            /* push: the entry's index */
    char tenant[64];           /* tenant */
    char user[64];             /* dnd: the user; push: frame.user */
    uint64_t until;            /* dnd */
    uint32_t type;             /* frame type */
    uint32_t n;                /* recipients */
    char users[MAXU][32];      /* their ids */
    bool has_prevs;            /* prevs passed */
    uint64_t prevs[MAXU];      /* their prevs */
    char conv[64];             /* frame.conv */
    char op[16];               /* frame.op */
    char members[128];         /* frame.members, comma-joined */
    uint64_t seq;              /* frame.seq */
    uint32_t count;            /* frame.count */
    herald_msg msg;            /* frame.msg, strings pointing below */
    char m_conv[64], m_from[64], m_body[256], m_corp[64], m_title[64];
} rec_ev;

typedef struct rec {
    rec_ev v[16]; /* events in order */
    uint32_t n;   /* how many */
} rec;

static void cp(char *dst, size_t cap, herald_str s)
{
    assert_true(s.len < cap);
    if (s.len)
        memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
}

/* A copy of s in dst (its pointer NULL when s had none). */
static herald_str cps(char *dst, size_t cap, herald_str s)
{
    cp(dst, cap, s);
    return (herald_str){.ptr = s.ptr ? dst : NULL, .len = s.len};
}

static void on_push(void *ctx, uint32_t group, uint64_t index, const char *tenant,
                    const char *const *users, const uint64_t *prevs, uint32_t n,
                    const herald_frame *f)
{
    rec *r = ctx;
    rec_ev *e;
    assert_true(r->n < sizeof r->v / sizeof r->v[0]);
    assert_true(n <= MAXU);
    e = &r->v[r->n++];
    memset(e, 0, sizeof *e);
    e->group = group;
    e->index = index;
    cp(e->tenant, sizeof e->tenant, herald_str_z(tenant));
    e->type = f->type;
    e->n = n;
    for (uint32_t i = 0; i < n; i++) {
        cp(e->users[i], sizeof e->users[i], herald_str_z(users[i]));
        if (prevs)
            e->prevs[i] = prevs[i];
    }
    e->has_prevs = prevs != NULL;
    cp(e->user, sizeof e->user, f->user);
    cp(e->conv, sizeof e->conv, f->conv);
    cp(e->op, sizeof e->op, f->op);
    for (uint32_t i = 0; i < f->n_members; i++) {
        size_t at = strlen(e->members);
        snprintf(e->members + at, sizeof e->members - at, "%s%.*s", i ? "," : "",
                 (int)f->members[i].len, f->members[i].ptr);
    }
    e->seq = f->seq;
    e->count = f->count;
    e->msg = f->msg;
    e->msg.conv = cps(e->m_conv, sizeof e->m_conv, f->msg.conv);
    e->msg.from = cps(e->m_from, sizeof e->m_from, f->msg.from);
    e->msg.body = cps(e->m_body, sizeof e->m_body, f->msg.body);
    e->msg.id_corp = cps(e->m_corp, sizeof e->m_corp, f->msg.id_corp);
    e->msg.id_title = cps(e->m_title, sizeof e->m_title, f->msg.id_title);
}

static void on_dnd(void *ctx, const char *tenant, const char *user, uint64_t until)
{
    rec *r = ctx;
    rec_ev *e;
    assert_true(r->n < sizeof r->v / sizeof r->v[0]);
    e = &r->v[r->n++];
    memset(e, 0, sizeof *e);
    e->dnd = true;
    cp(e->tenant, sizeof e->tenant, herald_str_z(tenant));
    cp(e->user, sizeof e->user, herald_str_z(user));
    e->until = until;
}

/* The push chain under test, and a model of it: per (tenant, user) the
 * last position delivered (reset with the fixture). */
static events_chain *chain;
static struct {
    char key[128];
    uint64_t pos;
} model[64];
static uint32_t n_model;
static uint64_t model_base; /* the position before the chain's first message */
static bool model_base_set;

static int setup(void **state)
{
    *state = fx_new("events");
    n_model = 0;
    model_base_set = false;
    return events_chain_new(0, &chain);
}

static int teardown(void **state)
{
    fx_free(*state);
    events_chain_free(chain);
    chain = NULL;
    return 0;
}

/* Every DELIVER of ev says, for each recipient, the position of the
 * recipient's previous DELIVER in the group, or for its first the position
 * before the chain's first message. */
static void check_chain(const rec *ev)
{
    for (uint32_t i = 0; i < ev->n; i++) {
        const rec_ev *e = &ev->v[i];
        if (e->dnd || e->type != HERALD_FT_DELIVER)
            continue;
        assert_true(e->has_prevs);
        assert_true(e->msg.pos > 0);
        if (!model_base_set) {
            model_base = e->msg.pos - 1;
            model_base_set = true;
        }
        for (uint32_t u = 0; u < e->n; u++) {
            char key[128];
            uint32_t k;
            snprintf(key, sizeof key, "%s/%s", e->tenant, e->users[u]);
            for (k = 0; k < n_model && strcmp(model[k].key, key) != 0; k++)
                ;
            if (k == n_model) {
                assert_true(n_model < sizeof model / sizeof model[0]);
                snprintf(model[n_model].key, sizeof model[0].key, "%s", key);
                model[n_model++].pos = model_base;
            }
            assert_int_equal(e->prevs[u], model[k].pos);
            model[k].pos = e->msg.pos;
        }
    }
}

/* Fills in the tenant and ts when k has none. */
static void defaults(cmd *k)
{
    if (!k->tenant.len)
        k->tenant = herald_str_z(TEN);
    if (!k->ts)
        k->ts = 1000;
}

/* Applies k (the next index), emits its events into *ev (reset first);
 * keeps the result in *keep (caller frees) or frees it. Returns its code. */
static int run(fx *f, cmd *k, rec *ev, apply_result *keep)
{
    apply_result r;
    events_sink sink = {.ctx = ev, .push = on_push, .dnd = on_dnd};
    int rc;
    defaults(k);
    fx_apply(f, k, &r);
    ev->n = 0;
    events_emit(&r, chain, &sink);
    check_chain(ev);
    rc = r.err;
    if (keep)
        *keep = r;
    else
        apply_result_free(&r);
    return rc;
}

static void tenant(fx *f)
{
    char hex[TOKEN_SECRET_HEX + 1];
    cmd k = {.op = CMD_TENANT_CREATE};
    rec ev;
    fx_secret_hex(hex);
    k.secret = herald_str_z(hex);
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    assert_int_equal(ev.n, 0);
}

static cmd create_cmd(const char *actor, bool admin, const char *conv, const char *kind,
                      herald_str *mv, const char *const *mem, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        mv[i] = herald_str_z(mem[i]);
    return (cmd){.op = CMD_CONV_CREATE, .user = herald_str_z(actor), .admin = admin,
                 .conv = herald_str_z(conv), .kind = herald_str_z(kind), .members = mv,
                 .n_members = n};
}

static void str_eq(herald_str a, herald_str b)
{
    assert_int_equal(a.len, b.len);
    assert_true(a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* e is one DELIVER of message seq of conv: its msg is what store_history
 * returns for that seq, field by field, and it goes to res's targets with
 * their prevs. */
static void expect_deliver(fx *f, const rec_ev *e, const apply_result *res, const char *conv,
                           uint64_t seq)
{
    store_msgs m;
    const herald_msg *h;
    assert_false(e->dnd);
    assert_int_equal(e->type, HERALD_FT_DELIVER);
    assert_string_equal(e->tenant, TEN);
    assert_int_equal(e->group, res->group);
    assert_int_equal(e->index, res->index);
    assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z(conv), seq - 1, 1, 0,
                                   &m),
                     0);
    assert_int_equal(m.n, 1);
    h = &m.v[0];
    assert_int_equal(h->seq, seq);
    str_eq(e->msg.conv, h->conv);
    assert_int_equal(e->msg.seq, h->seq);
    str_eq(e->msg.from, h->from);
    assert_int_equal(e->msg.ts, h->ts);
    str_eq(e->msg.body, h->body);
    assert_int_equal(e->msg.flags, h->flags);
    assert_int_equal(e->msg.kind, h->kind);
    assert_int_equal(e->msg.group, h->group);
    assert_int_equal(e->msg.pos, h->pos);
    str_eq(e->msg.id_corp, h->id_corp);
    str_eq(e->msg.id_title, h->id_title);
    store_msgs_free(&m);
    assert_true(e->has_prevs);
    assert_int_equal(e->n, res->n_targets);
    for (uint32_t i = 0; i < e->n; i++)
        assert_string_equal(e->users[i], res->targets[i].user);
}

static const char *const trio[] = {"alice", "bob", "carol"};

/* tenant + group g1 of alice (owner), bob, carol. */
static void group_g1(fx *f, rec *ev)
{
    herald_str mv[3];
    apply_result r;
    cmd k = create_cmd("alice", false, "g1", "group", mv, trio, 3);
    tenant(f);
    assert_int_equal(run(f, &k, ev, &r), 0);
    assert_int_equal(ev->n, 1);
    expect_deliver(f, &ev->v[0], &r, "g1", 1);
    assert_int_equal(ev->v[0].msg.kind, HERALD_MK_SYSTEM);
    assert_int_equal(ev->v[0].n, 3);
    /* In key order: length-prefixed ids, shorter first. */
    assert_string_equal(ev->v[0].users[0], "bob");
    assert_string_equal(ev->v[0].users[1], "alice");
    assert_string_equal(ev->v[0].users[2], "carol");
    assert_int_equal(ev->v[0].msg.pos, 1);
    assert_int_equal(ev->v[0].prevs[0], 0); /* the chain's first message: pos - 1 */
    apply_result_free(&r);
}

static void test_send(void **state)
{
    fx *f = *state;
    rec ev;
    apply_result r;
    cmd k = {.op = CMD_SEND, .user = herald_str_z("bob"), .conv = herald_str_z("g1"),
             .cmid = herald_str_z("c1"), .body = herald_str_z("hello"), .ts = 1500};

    group_g1(f, &ev);
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(r.seq, 2);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "g1", 2);
    assert_string_equal(ev.v[0].m_from, "bob");
    assert_string_equal(ev.v[0].m_body, "hello");
    assert_int_equal(ev.v[0].msg.ts, 1500);
    assert_int_equal(ev.v[0].msg.pos, 2);
    assert_int_equal(ev.v[0].prevs[0], 1); /* bob: the create */
    apply_result_free(&r);

    /* The same cmid again: a duplicate, no event. */
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_true(r.dup);
    assert_int_equal(ev.n, 0);
    apply_result_free(&r);

    /* An error gives nothing. */
    k = (cmd){.op = CMD_SEND, .user = herald_str_z("zed"), .conv = herald_str_z("g1"),
              .body = herald_str_z("x")};
    assert_int_equal(run(f, &k, &ev, NULL), HERALD_ENOT_MEMBER);
    assert_int_equal(ev.n, 0);

    /* Neither does a skipped one (an index applied already). */
    {
        events_sink sink = {.ctx = &ev, .push = on_push, .dnd = on_dnd};
        uint64_t next = f->next;
        k = (cmd){.op = CMD_SEND, .user = herald_str_z("bob"), .conv = herald_str_z("g1"),
                  .body = herald_str_z("again")};
        defaults(&k);
        f->next = 2;
        fx_apply(f, &k, &r);
        f->next = next;
        assert_true(r.skipped);
        ev.n = 0;
        events_emit(&r, chain, &sink);
        assert_int_equal(ev.n, 0);
        apply_result_free(&r);
    }
}

/* A new leadership term, or a chain at its cap, forgets: the next push
 * to each recipient says pos - 1 (the client SYNCs once); the same term
 * keeps the chain. */
static void test_chain_forgets(void **state)
{
    fx *f = *state;
    rec ev;
    events_chain *small;
    apply_result r;
    cmd k = {.op = CMD_SEND, .user = herald_str_z("bob"), .conv = herald_str_z("g1"),
             .body = herald_str_z("a")};
    group_g1(f, &ev); /* pos 1 */
    events_chain_term(chain, 0); /* the same term: kept */
    assert_int_equal(run(f, &k, &ev, NULL), 0); /* pos 2, prev 1 */
    assert_int_equal(ev.v[0].prevs[0], 1);
    events_chain_term(chain, 2);
    assert_int_equal(events_chain_count(chain), 0);
    n_model = 0; /* the model forgets too */
    model_base_set = false;
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    assert_int_equal(ev.v[0].msg.pos, 3);
    assert_int_equal(ev.v[0].prevs[0], 2);
    assert_int_equal(events_chain_count(chain), 3);
    {
        /* dave's first push since the chain began at 3: nothing of his
         * after 2 went by, so pv 2 (not 3): a client at 2 takes it. */
        static const char *const duo[] = {"bob", "dave"};
        herald_str mv[2];
        cmd c2 = create_cmd("bob", false, "g2", "group", mv, duo, 2);
        assert_int_equal(run(f, &c2, &ev, NULL), 0);
        assert_int_equal(ev.v[0].msg.pos, 4);
        for (uint32_t u = 0; u < ev.v[0].n; u++)
            assert_int_equal(ev.v[0].prevs[u], strcmp(ev.v[0].users[u], "dave") == 0 ? 2 : 3);
    }
    /* A chain of at most 2 for three recipients stays within 2; every
     * message goes to all three, so the true previous is pos - 1 whether
     * remembered or not. */
    assert_int_equal(events_chain_new(2, &small), 0);
    defaults(&k);
    for (int i = 0; i < 3; i++) {
        events_sink sink = {.ctx = &ev, .push = on_push, .dnd = on_dnd};
        fx_apply(f, &k, &r);
        ev.n = 0;
        events_emit(&r, small, &sink);
        assert_int_equal(ev.n, 1);
        for (uint32_t u = 0; u < ev.v[0].n; u++)
            assert_int_equal(ev.v[0].prevs[u], ev.v[0].msg.pos - 1);
        assert_true(events_chain_count(small) <= 2);
        apply_result_free(&r);
    }
    events_chain_free(small);
}

/* A text message where customers listen carries the certified identity. */
static void test_send_identity(void **state)
{
    fx *f = *state;
    static const char *const pair[] = {"alice", "cust"};
    herald_str mv[2], ext = herald_str_z("cust");
    rec ev;
    apply_result r;
    cmd k = create_cmd("admin", true, "x1", "group", mv, pair, 2);

    tenant(f);
    k.external = &ext;
    k.n_external = 1;
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    k = (cmd){.op = CMD_SEND, .user = herald_str_z("alice"), .conv = herald_str_z("x1"),
              .body = herald_str_z("offer"), .corp = herald_str_z("Acme Corp"),
              .title = herald_str_z("Sales")};
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "x1", 2);
    assert_string_equal(ev.v[0].m_corp, "Acme Corp");
    assert_string_equal(ev.v[0].m_title, "Sales");
    apply_result_free(&r);
}

static void test_read_receipt(void **state)
{
    fx *f = *state;
    rec ev;
    apply_result r;
    cmd k = {.op = CMD_SEND, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
             .body = herald_str_z("hi")};

    group_g1(f, &ev);
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    k = (cmd){.op = CMD_READ, .user = herald_str_z("bob"), .conv = herald_str_z("g1"), .seq = 2};
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.v[0].type, HERALD_FT_RECEIPT);
    assert_string_equal(ev.v[0].tenant, TEN);
    assert_string_equal(ev.v[0].conv, "g1");
    assert_string_equal(ev.v[0].user, "bob");
    assert_int_equal(ev.v[0].seq, 2);
    assert_false(ev.v[0].has_prevs);
    assert_int_equal(ev.v[0].group, r.group);
    assert_int_equal(ev.v[0].index, r.index);
    assert_int_equal(ev.v[0].n, r.n_targets);
    assert_int_equal(ev.v[0].n, 2);
    for (uint32_t i = 0; i < ev.v[0].n; i++)
        assert_string_equal(ev.v[0].users[i], r.targets[i].user);
    assert_string_equal(ev.v[0].users[0], "alice");
    assert_string_equal(ev.v[0].users[1], "carol");
    apply_result_free(&r);

    /* The cursor does not move: a RECEIPT to nobody (as before). */
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.v[0].type, HERALD_FT_RECEIPT);
    assert_int_equal(ev.v[0].n, 0);
    apply_result_free(&r);
}

static void test_recall_and_membership(void **state)
{
    fx *f = *state;
    herald_str dave = herald_str_z("dave"), carol = herald_str_z("carol");
    rec ev;
    apply_result r;
    cmd k = {.op = CMD_SEND, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
             .body = herald_str_z("oops")};

    group_g1(f, &ev);
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    /* RECALL: a system message (seq 3) to everyone. */
    k = (cmd){.op = CMD_RECALL, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
              .seq = 2};
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(r.seq, 3);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "g1", 3);
    assert_int_equal(ev.v[0].msg.kind, HERALD_MK_SYSTEM);
    apply_result_free(&r);
    /* Again: a tombstone already, seq 0, nothing. */
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(r.seq, 0);
    assert_int_equal(ev.n, 0);
    apply_result_free(&r);

    /* CONV_ADD: the new member gets it too. */
    k = (cmd){.op = CMD_CONV_ADD, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
              .members = &dave, .n_members = 1};
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "g1", 4);
    assert_int_equal(ev.v[0].n, 4);
    apply_result_free(&r);
    /* Already a member: no message, no event. */
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(r.seq, 0);
    assert_int_equal(ev.n, 0);
    apply_result_free(&r);

    /* CONV_REMOVE: the removed member learns it too. */
    k = (cmd){.op = CMD_CONV_REMOVE, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
              .members = &carol, .n_members = 1};
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "g1", 5);
    assert_int_equal(ev.v[0].n, 4);
    assert_string_equal(ev.v[0].users[3], "carol");
    apply_result_free(&r);
}

static void test_app_deliver(void **state)
{
    fx *f = *state;
    herald_str to = herald_str_z("alice");
    rec ev;
    apply_result r;
    cmd k = {.op = CMD_APP_DELIVER, .user = herald_str_z("app:hr"), .admin = true,
             .conv = herald_str_z("ap1"), .kind = herald_str_z("single"), .members = &to,
             .n_members = 1, .cmid = herald_str_z("m1"), .body = herald_str_z("payday")};

    tenant(f);
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(r.seq, 1);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "ap1", 1);
    assert_string_equal(ev.v[0].m_from, "app:hr");
    assert_int_equal(ev.v[0].n, 2);
    apply_result_free(&r);
    /* The same cmid: a duplicate, nothing. */
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_true(r.dup);
    assert_int_equal(ev.n, 0);
    apply_result_free(&r);
}

/* CONV_HANDOVER's system message, and a duplicate CONV_CREATE (server-
 * derived id asked again): it pushes the conversation's last message to
 * nobody, as gw_events always did. */
static void test_handover_and_expected_create(void **state)
{
    fx *f = *state;
    static const char *const pair[] = {"alice", "cust"};
    herald_str mv[2];
    rec ev;
    apply_result r;
    cmd k = create_cmd("admin", true, "s1", "single", mv, pair, 2);

    tenant(f);
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    k = (cmd){.op = CMD_CONV_HANDOVER, .user = herald_str_z("admin"), .admin = true,
              .conv = herald_str_z("s1"), .target = herald_str_z("alice"),
              .name = herald_str_z("bob")};
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(r.seq, 2);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "s1", 2);
    assert_int_equal(ev.v[0].n, 3); /* bob, alice (leaving), cust */
    apply_result_free(&r);
    /* Handed over already: seq 0, nothing. */
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(r.seq, 0);
    assert_int_equal(ev.n, 0);
    apply_result_free(&r);

    k = create_cmd("admin", true, "e1", "group", mv, pair, 2);
    k.flags = CMD_CONV_EXPECT;
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_false(r.dup);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "e1", 1);
    apply_result_free(&r);
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_true(r.dup);
    assert_int_equal(r.seq, 1);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "e1", 1);
    assert_int_equal(ev.v[0].n, 0);
    apply_result_free(&r);
}

static void test_dnd(void **state)
{
    fx *f = *state;
    rec ev;
    cmd k = {.op = CMD_DND, .user = herald_str_z("alice"), .flags = 1, .seq = 5000};

    tenant(f);
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    assert_int_equal(ev.n, 1);
    assert_true(ev.v[0].dnd);
    assert_string_equal(ev.v[0].tenant, TEN);
    assert_string_equal(ev.v[0].user, "alice");
    assert_int_equal(ev.v[0].until, 5000);
    k = (cmd){.op = CMD_DND, .user = herald_str_z("alice"), .flags = 1};
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.v[0].until, UINT64_MAX);
    k = (cmd){.op = CMD_DND, .user = herald_str_z("alice")};
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    assert_int_equal(ev.n, 1);
    assert_true(ev.v[0].dnd);
    assert_int_equal(ev.v[0].until, 0);
    /* Refused: nothing. */
    k = (cmd){.op = CMD_DND, .user = herald_str_z("alice"), .flags = 1, .seq = 10, .ts = 1000};
    assert_int_equal(run(f, &k, &ev, NULL), HERALD_EINVAL);
    assert_int_equal(ev.n, 0);
}

static void test_remind_and_escalate(void **state)
{
    fx *f = *state;
    rec ev;
    apply_result r;
    FILE *logf = tmpfile();
    char line[1024];
    bool logged = false;
    cmd k = {.op = CMD_SEND, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
             .body = herald_str_z("now!"), .flags = HERALD_MSGF_URGENT, .ivl = 1, .max = 1,
             .ts = 1000};

    assert_non_null(logf);
    group_g1(f, &ev);
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(ev.n, 1);
    expect_deliver(f, &ev.v[0], &r, "g1", 2);
    assert_true(ev.v[0].msg.flags & HERALD_MSGF_URGENT);
    apply_result_free(&r);

    /* Due: a reminder to each pending recipient. */
    k = (cmd){.op = CMD_REMIND, .ts = 2000};
    assert_int_equal(run(f, &k, &ev, &r), 0);
    assert_int_equal(r.n_reminders, 2);
    assert_int_equal(ev.n, 2);
    for (uint32_t i = 0; i < 2; i++) {
        rec_ev *e = &ev.v[i];
        assert_false(e->dnd);
        assert_int_equal(e->type, HERALD_FT_REMIND);
        assert_string_equal(e->tenant, TEN);
        assert_string_equal(e->conv, "g1");
        assert_string_equal(e->op, "remind");
        assert_int_equal(e->seq, 2);
        assert_int_equal(e->count, 1);
        assert_int_equal(e->n, 1);
        assert_false(e->has_prevs);
        assert_string_equal(e->users[0], r.reminders[i].user);
        assert_string_equal(e->user, r.reminders[i].user);
        assert_string_equal(e->members, "");
        assert_int_equal(e->group, r.group);
        assert_int_equal(e->index, r.index);
    }
    assert_string_equal(ev.v[0].users[0], "bob");
    assert_string_equal(ev.v[1].users[0], "carol");
    apply_result_free(&r);

    /* bob confirms; the reminders ran out: the sender hears who is pending. */
    k = (cmd){.op = CMD_CONFIRM, .user = herald_str_z("bob"), .conv = herald_str_z("g1"),
              .seq = 2, .ts = 2500};
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    assert_int_equal(ev.n, 0);
    k = (cmd){.op = CMD_REMIND, .ts = 3000};
    log_set_sink(logf);
    assert_int_equal(run(f, &k, &ev, &r), 0);
    log_set_sink(stderr);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.v[0].type, HERALD_FT_REMIND);
    assert_string_equal(ev.v[0].op, "escalate");
    assert_string_equal(ev.v[0].users[0], "alice");
    assert_string_equal(ev.v[0].user, "alice");
    assert_string_equal(ev.v[0].members, "carol");
    assert_int_equal(ev.v[0].seq, 2);
    assert_int_equal(ev.v[0].count, 1);
    apply_result_free(&r);
    rewind(logf);
    while (fgets(line, sizeof line, logf))
        logged |= strstr(line, "\"id\":\"urgent.escalate\"") &&
                  strstr(line, "tenant=acme conv=g1 seq=2 sender=alice pending=carol");
    fclose(logf);
    assert_true(logged);
}

/* Commands without push events give none. */
static void test_quiet_ops(void **state)
{
    fx *f = *state;
    rec ev;
    cmd k = {.op = CMD_DIR_USER, .user = herald_str_z("admin"), .admin = true,
             .target = herald_str_z("alice"), .kind = herald_str_z("internal")};
    tenant(f);
    assert_int_equal(run(f, &k, &ev, NULL), 0);
    assert_int_equal(ev.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_forgets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_receipt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recall_and_membership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_deliver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handover_and_expected_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dnd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remind_and_escalate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiet_ops, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
