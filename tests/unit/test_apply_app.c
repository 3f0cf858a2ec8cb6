/*
 * test_apply_app.c — the state machine's app messages (APP_MARK,
 * APP_DELIVER) and customer transfers (TRANSFER_MARK, TRANSFER_DUE,
 * CONV_HANDOVER, TRANSFER_DONE): good and bad input, duplicates, the
 * frequency cap, the waiting period, the 90-day protection, the taker
 * limit, idempotence on re-apply (the same index skipped, the same content
 * again harmless) and determinism (two stores fed the same commands have
 * equal digests).
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
#include "store.h"
#include "store_snap.h"
#include "token.h"

#define TEN "acme"
#define T0 1800000000000ull /* ms: some day in 2027 */
#define DAY 86400000ull

/* Every test keeps its command log, to replay it elsewhere. */
static int setup(void **state)
{
    fx *f = fx_new("app");
    f->keep_log = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* Applies one command (tenant and ts filled in); keeps the result in *keep
 * (caller frees) or frees it. Returns the result code. */
static int run(fx *f, cmd *k, apply_result *keep)
{
    apply_result r;
    int rc;
    if (!k->tenant.len)
        k->tenant = herald_str_z(TEN);
    if (!k->ts)
        k->ts = T0;
    fx_apply(f, k, &r);
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
    cmd k = {.op = CMD_TENANT_CREATE, .freq = 2, .dedup_s = 60};
    store_tenant t;
    fx_secret_hex(hex);
    k.secret = herald_str_z(hex);
    assert_int_equal(run(f, &k, NULL), 0);
    assert_int_equal(store_tenant_get(f->st, herald_str_z(TEN), &t), 0);
    assert_int_equal(t.app_freq, 2);
    assert_int_equal(t.app_dedup, 60);
    assert_int_equal(t.customer_limit, CUSTOMER_LIMIT_DEFAULT);
    assert_int_equal(t.transfer_wait, TRANSFER_WAIT_DEFAULT);
}

static void dept(fx *f, const char *id, const char *parent)
{
    cmd k = {.op = CMD_DIR_DEPT, .user = herald_str_z("admin"), .admin = true,
             .dept = herald_str_z(id), .parent = herald_str_z(parent)};
    assert_int_equal(run(f, &k, NULL), 0);
}

static void user(fx *f, const char *id, const char *kind, const char *d)
{
    cmd k = {.op = CMD_DIR_USER, .user = herald_str_z("admin"), .admin = true,
             .target = herald_str_z(id), .kind = herald_str_z(kind), .dept = herald_str_z(d)};
    assert_int_equal(run(f, &k, NULL), 0);
}

/* The directory: eng > backend; alice (backend), bob (eng), carol (no
 * department), cust (external, tagged vip). */
static void directory(fx *f)
{
    herald_str vip = herald_str_z("vip");
    cmd k = {.op = CMD_TAG, .user = herald_str_z("admin"), .admin = true,
             .target = herald_str_z("cust"), .kind = herald_str_z("add"), .members = &vip,
             .n_members = 1};
    tenant(f);
    dept(f, "eng", NULL);
    dept(f, "backend", "eng");
    user(f, "alice", "internal", "backend");
    user(f, "bob", "internal", "eng");
    user(f, "carol", "internal", NULL);
    user(f, "cust", "external", NULL);
    assert_int_equal(run(f, &k, NULL), 0);
}

/* Status of subject id in r (0 when absent). */
static uint32_t status_of(const apply_result *r, const char *id)
{
    for (uint32_t i = 0; i < r->n_mass; i++)
        if (strcmp(r->mass[i].customer, id) == 0)
            return r->mass[i].status;
    return 0;
}

static cmd app_mark(const char *app, const char *id, herald_str *users, uint32_t n,
                    uint64_t ts)
{
    return (cmd){.op = CMD_APP_MARK, .user = herald_str_z("admin"), .admin = true,
                 .target = herald_str_z(app), .cmid = herald_str_z(id),
                 .kind = herald_str_z("send"), .members = users, .n_members = n, .win = 60,
                 .cap = 2, .ts = ts};
}

static void test_app_mark(void **state)
{
    fx *f = *state;
    herald_str users[] = {herald_str_z("alice"), herald_str_z("ghost"), herald_str_z("bad id")};
    herald_str depts[] = {herald_str_z("eng"), herald_str_z("nowhere")};
    herald_str tags[] = {herald_str_z("vip"), herald_str_z("none")};
    herald_str all = herald_str_z("@all"), many[1001];
    apply_result r;
    cmd k;

    directory(f);
    /* Bad input. */
    k = app_mark("hr", "m1", users, 1, T0);
    k.admin = false;
    assert_int_equal(run(f, &k, NULL), HERALD_EFORBIDDEN);
    k = app_mark("hr", "m1", users, 1, T0);
    k.kind = herald_str_z("shout");
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    k = app_mark("hr", "m1", NULL, 0, T0);
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    k = app_mark("hr", "m1", users, 1, T0);
    k.win = APP_DEDUP_MAX + 1;
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    for (int i = 0; i < 1001; i++)
        many[i] = herald_str_z("alice");
    k = app_mark("hr", "m1", many, 1001, T0);
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    k = app_mark("bad app", "m1", users, 1, T0);
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);

    /* Users, departments (with sub-departments), tags; invalid ones listed. */
    k = app_mark("hr", "m1", users, 3, T0);
    k.depts = depts;
    k.n_depts = 2;
    k.tags = tags;
    k.n_tags = 2;
    assert_int_equal(run(f, &k, &r), 0);
    assert_false(r.dup);
    assert_int_equal(r.ts, T0);
    assert_int_equal(r.n_mass, 7);
    assert_int_equal(status_of(&r, "alice"), APP_SENT);
    assert_int_equal(status_of(&r, "bob"), APP_SENT);
    assert_int_equal(status_of(&r, "cust"), APP_SENT);
    assert_int_equal(status_of(&r, "carol"), 0);
    assert_int_equal(status_of(&r, "ghost"), APP_BAD_USER);
    assert_int_equal(status_of(&r, "bad id"), APP_BAD_USER);
    assert_int_equal(status_of(&r, "nowhere"), APP_BAD_DEPT);
    assert_int_equal(status_of(&r, "none"), APP_BAD_TAG);
    apply_result_free(&r);

    /* The same message id within the window: the first outcome, nothing
     * charged (alice stays at 1 of 2 this minute). */
    k = app_mark("hr", "m1", users, 1, T0 + 30000);
    assert_int_equal(run(f, &k, &r), 0);
    assert_true(r.dup);
    assert_int_equal(r.ts, T0);
    assert_int_equal(r.n_mass, 7);
    apply_result_free(&r);
    /* The frequency cap (2 per minute here): second fits, third limited. */
    k = app_mark("hr", "m2", users, 1, T0 + 31000);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(status_of(&r, "alice"), APP_SENT);
    apply_result_free(&r);
    k = app_mark("hr", "m3", users, 1, T0 + 32000);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(status_of(&r, "alice"), APP_LIMITED);
    apply_result_free(&r);
    /* Another app has its own cap; the next minute starts again. */
    k = app_mark("it", "m3", users, 1, T0 + 33000);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(status_of(&r, "alice"), APP_SENT);
    apply_result_free(&r);
    k = app_mark("hr", "m4", users, 1, T0 + 60000);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(status_of(&r, "alice"), APP_SENT);
    apply_result_free(&r);
    /* After the window the id is a new message (a new generation). */
    k = app_mark("hr", "m1", users, 1, T0 + 61000);
    assert_int_equal(run(f, &k, &r), 0);
    assert_false(r.dup);
    assert_int_equal(r.ts, T0 + 61000);
    assert_int_equal(status_of(&r, "alice"), APP_SENT); /* 2 of 2 this minute */
    apply_result_free(&r);
    /* @all: every employee, not the customer. */
    k = app_mark("news", "a1", &all, 1, T0 + 62000);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.n_mass, 3);
    assert_int_equal(status_of(&r, "carol"), APP_SENT);
    assert_int_equal(status_of(&r, "cust"), 0);
    apply_result_free(&r);
}

static cmd deliver(const char *conv, const char *kind, herald_str *to, uint32_t n,
                   const char *cmid)
{
    return (cmd){.op = CMD_APP_DELIVER, .user = herald_str_z("app:hr"), .admin = true,
                 .conv = herald_str_z(conv), .kind = herald_str_z(kind), .members = to,
                 .n_members = n, .cmid = herald_str_z(cmid), .body = herald_str_z("hi")};
}

static void test_app_deliver(void **state)
{
    fx *f = *state;
    herald_str to[] = {herald_str_z("alice"), herald_str_z("bob"), herald_str_z("carol")};
    store_conv sc;
    store_strs mem;
    apply_result r;
    cmd k;

    tenant(f);
    k = deliver("ap-1", "single", to, 1, "m1.1");
    k.admin = false;
    assert_int_equal(run(f, &k, NULL), HERALD_EFORBIDDEN);
    k = deliver("ap-1", "single", to, 2, "m1.1");
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    k = deliver("ap-1", "group", to, 1, "m1.1");
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    k = deliver("ap-1", "single", to, 1, ""); /* the cmid is required */
    assert_int_equal(run(f, &k, NULL), HERALD_EPROTOCOL);
    k = deliver("ap-1", "single", to, 1, "bad cmid");
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    /* First delivery creates the conversation (no system message). */
    k = deliver("ap-1", "single", to, 1, "m1.1");
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.seq, 1);
    assert_false(r.dup);
    assert_int_equal(r.n_targets, 2);
    apply_result_free(&r);
    assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("ap-1"), &sc), 0);
    assert_int_equal(sc.kind, CONV_SINGLE);
    assert_string_equal(sc.owner, "app:hr");
    assert_int_equal(sc.count, 2);
    /* The same cmid again: the original seq, nothing written. */
    k = deliver("ap-1", "single", to, 1, "m1.1");
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.seq, 1);
    assert_true(r.dup);
    apply_result_free(&r);
    k = deliver("ap-1", "single", to, 1, "m2.1");
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.seq, 2);
    apply_result_free(&r);
    /* Someone else's conversation id. */
    k = deliver("ap-1", "single", to, 1, "m3.1");
    k.user = herald_str_z("app:it");
    assert_int_equal(run(f, &k, NULL), HERALD_EEXISTS);
    /* An announcement: one read-diffused conversation for everyone. */
    k = deliver("an-1", "announce", to, 3, "a1.1");
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.seq, 1);
    apply_result_free(&r);
    assert_int_equal(store_members(f->st, herald_str_z(TEN), herald_str_z("an-1"), &mem), 0);
    assert_int_equal(mem.n, 4);
    store_strs_free(&mem);
    assert_int_equal(store_member_check(f->st, herald_str_z(TEN), herald_str_z("an-1"),
                                        herald_str_z("carol")),
                     0);
}

/* ---- customer transfer ------------------------------------------------------- */

static void contact(fx *f, const char *employee, const char *customer, const char *conv)
{
    herald_str mem[2] = {herald_str_z(employee), herald_str_z(customer)};
    herald_str ext = herald_str_z(customer);
    cmd k = {.op = CMD_CONV_CREATE, .user = herald_str_z("admin"), .admin = true,
             .conv = herald_str_z(conv), .kind = herald_str_z("single"), .members = mem,
             .n_members = 2, .external = &ext, .n_external = 1};
    assert_int_equal(run(f, &k, NULL), 0);
    k = (cmd){.op = CMD_CONTACT_ADD, .user = herald_str_z("admin"), .admin = true,
              .target = herald_str_z(employee), .name = herald_str_z(customer),
              .conv = herald_str_z(conv)};
    assert_int_equal(run(f, &k, NULL), 0);
}

static cmd mark(const char *from, const char *to, herald_str *cust, uint32_t n, uint64_t ts)
{
    return (cmd){.op = CMD_TRANSFER_MARK, .user = herald_str_z("admin"), .admin = true,
                 .target = herald_str_z(from), .name = herald_str_z(to), .members = cust,
                 .n_members = n, .cap = 10, .win = 86400, .ts = ts};
}

/* Runs a takeover that is MOVING: handover then done (as the gateway does). */
static void take_over(fx *f, const char *from, const char *to, const char *cust,
                      const char *conv, uint64_t ts)
{
    herald_str c1 = herald_str_z(cust);
    apply_result r;
    cmd k = {.op = CMD_CONV_HANDOVER, .user = herald_str_z("admin"), .admin = true,
             .conv = herald_str_z(conv), .target = herald_str_z(from),
             .name = herald_str_z(to), .ts = ts};
    assert_int_equal(run(f, &k, NULL), 0);
    k = (cmd){.op = CMD_TRANSFER_DONE, .user = herald_str_z("admin"), .admin = true,
              .target = herald_str_z(from), .name = herald_str_z(to), .members = &c1,
              .n_members = 1, .conv = herald_str_z(conv), .ts = ts};
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(status_of(&r, cust), XFER_DONE);
    apply_result_free(&r);
}

static void owners_are(fx *f, const char *cust, const char *want)
{
    store_strs o, cv;
    assert_int_equal(store_contacts(f->st, herald_str_z(TEN), herald_str_z(cust), &o, &cv), 0);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.v[0], want);
    store_strs_free(&o);
    store_strs_free(&cv);
}

static int send_as(fx *f, const char *who, const char *conv, const char *text)
{
    cmd k = {.op = CMD_SEND, .user = herald_str_z(who), .conv = herald_str_z(conv),
             .body = herald_str_z(text)};
    return run(f, &k, NULL);
}

static void test_transfer_in_service(void **state)
{
    fx *f = *state;
    herald_str c1[] = {herald_str_z("cust1"), herald_str_z("nobody")}, many[101];
    herald_str only = herald_str_z("cust1");
    apply_result r;
    store_msgs h;
    cmd k;

    tenant(f);
    contact(f, "e1", "cust1", "ec1");
    contact(f, "e1", "cust2", "ec2");
    assert_int_equal(send_as(f, "cust1", "ec1", "hello e1"), 0);
    /* Bad input. */
    k = mark("e1", "e2", c1, 1, T0);
    k.admin = false;
    assert_int_equal(run(f, &k, NULL), HERALD_EFORBIDDEN);
    k = mark("e1", "e1", c1, 1, T0);
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    for (int i = 0; i < 101; i++)
        many[i] = only;
    k = mark("e1", "e2", many, 101, T0);
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    k = mark("e1", "e2", NULL, 0, T0);
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);

    /* In service: waiting for the period; no record for a stranger. */
    k = mark("e1", "e2", c1, 2, T0);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.n_mass, 2);
    assert_int_equal(r.mass[0].status, XFER_WAITING);
    assert_int_equal(r.xfer[0].at, T0 + DAY);
    assert_int_equal(r.mass[1].status, XFER_NO_RECORD);
    apply_result_free(&r);
    /* Asking again reports the same; another taker is refused. */
    k = mark("e1", "e2", c1, 1, T0 + 1000);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_WAITING);
    assert_int_equal(r.xfer[0].at, T0 + DAY);
    apply_result_free(&r);
    k = mark("e1", "e3", c1, 1, T0 + 1000);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_REFUSED | XFER_WHY_PENDING << XFER_WHY_SHIFT);
    apply_result_free(&r);
    assert_int_equal(store_transfer_next(f->st), T0 + DAY);
    /* Not due yet: nothing moves. Due: it starts moving. */
    k = (cmd){.op = CMD_TRANSFER_DUE, .ts = T0 + DAY - 1};
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.n_mass, 0);
    apply_result_free(&r);
    assert_int_equal(send_as(f, "e1", "ec1", "still mine"), 0);
    k = (cmd){.op = CMD_TRANSFER_DUE, .ts = T0 + DAY};
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.n_mass, 1);
    assert_int_equal(r.mass[0].status, XFER_MOVING);
    assert_string_equal(r.xfer[0].tenant, TEN);
    assert_string_equal(r.mass[0].customer, "cust1");
    assert_string_equal(r.xfer[0].from, "e1");
    assert_string_equal(r.mass[0].owner, "e2");
    assert_string_equal(r.mass[0].conv, "ec1");
    apply_result_free(&r);
    /* Unfinished, it comes due again a retry interval later. */
    assert_int_equal(store_transfer_next(f->st), T0 + DAY + 60000);
    take_over(f, "e1", "e2", "cust1", "ec1", T0 + DAY + 5);
    assert_int_equal(store_transfer_next(f->st), 0);
    owners_are(f, "cust1", "e2");
    /* The conversation continues with e2; e1 can no longer send. */
    assert_int_equal(send_as(f, "e1", "ec1", "too late"), HERALD_ENOT_MEMBER);
    assert_int_equal(send_as(f, "e2", "ec1", "hello, I am e2"), 0);
    assert_int_equal(store_member_check(f->st, herald_str_z(TEN), herald_str_z("ec1"),
                                        herald_str_z("e2")),
                     0);
    assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z("ec1"), 0, 0, 0, &h),
                     0);
    assert_int_equal(h.n, 5); /* create, hello e1, still mine, transfer, hello e2 */
    assert_string_equal(h.v[1].body.ptr, "hello e1");
    store_msgs_free(&h);
    /* Re-applying the steps is harmless; asking again reports done. */
    take_over(f, "e1", "e2", "cust1", "ec1", T0 + DAY + 6);
    owners_are(f, "cust1", "e2");
    k = mark("e1", "e2", c1, 1, T0 + DAY + 7);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_DONE);
    apply_result_free(&r);

    /* Back to e1 (a second in-service transfer), then a third is refused
     * for 90 days. */
    k = mark("e2", "e1", c1, 1, T0 + 2 * DAY);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_WAITING);
    apply_result_free(&r);
    k = (cmd){.op = CMD_TRANSFER_DUE, .ts = T0 + 3 * DAY};
    assert_int_equal(run(f, &k, NULL), 0);
    take_over(f, "e2", "e1", "cust1", "ec1", T0 + 3 * DAY);
    owners_are(f, "cust1", "e1");
    k = mark("e1", "e2", c1, 1, T0 + 4 * DAY);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_REFUSED | XFER_WHY_PROTECTED << XFER_WHY_SHIFT);
    apply_result_free(&r);
    /* A resigned transfer is not an in-service one. */
    k = mark("e1", "e2", c1, 1, T0 + 4 * DAY);
    k.flags = CMD_XFER_RESIGNED;
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_MOVING);
    assert_int_equal(r.xfer[0].at, T0 + 4 * DAY);
    apply_result_free(&r);
    take_over(f, "e1", "e2", "cust1", "ec1", T0 + 4 * DAY);
    owners_are(f, "cust1", "e2");
    /* 90 days after the first takeover only one counts: allowed again. */
    k = mark("e2", "e1", c1, 1, T0 + 92 * DAY);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_WAITING);
    apply_result_free(&r);
}

static void test_transfer_limit_refuse(void **state)
{
    fx *f = *state;
    herald_str c2 = herald_str_z("cust2"), c3 = herald_str_z("cust3");
    apply_result r;
    cmd k;

    tenant(f);
    contact(f, "e1", "cust2", "ec2");
    contact(f, "e1", "cust3", "ec3");
    contact(f, "e2", "cust9", "ec9");
    /* e2 owns one customer; a limit of 2 takes one more, then it is full
     * (the waiting one counts). */
    k = mark("e1", "e2", &c2, 1, T0);
    k.cap = 2;
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_WAITING);
    apply_result_free(&r);
    k = mark("e1", "e2", &c3, 1, T0);
    k.cap = 2;
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_AT_LIMIT);
    apply_result_free(&r);
    /* The customer objects: refused, the reservation goes. */
    k = (cmd){.op = CMD_TRANSFER_MARK, .user = herald_str_z("cust3"), .kind = herald_str_z("refuse")};
    assert_int_equal(run(f, &k, NULL), HERALD_ENOT_FOUND);
    k = (cmd){.op = CMD_TRANSFER_MARK, .user = herald_str_z("cust2"), .kind = herald_str_z("refuse")};
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_REFUSED | XFER_WHY_OBJECTED << XFER_WHY_SHIFT);
    apply_result_free(&r);
    assert_int_equal(run(f, &k, &r), 0); /* again: the same answer */
    assert_int_equal(r.mass[0].status, XFER_REFUSED | XFER_WHY_OBJECTED << XFER_WHY_SHIFT);
    apply_result_free(&r);
    assert_int_equal(store_transfer_next(f->st), 0);
    k = (cmd){.op = CMD_TRANSFER_DUE, .ts = T0 + 2 * DAY};
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.n_mass, 0);
    apply_result_free(&r);
    owners_are(f, "cust2", "e1");
    k = mark("e1", "e2", &c3, 1, T0 + 1);
    k.cap = 2;
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_WAITING);
    apply_result_free(&r);
    /* A takeover step out of order is refused, not applied. */
    k = (cmd){.op = CMD_TRANSFER_DONE, .user = herald_str_z("admin"), .admin = true,
              .target = herald_str_z("e1"), .name = herald_str_z("e2"), .members = &c3,
              .n_members = 1, .conv = herald_str_z("ec3")};
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
    owners_are(f, "cust3", "e1");

    /* A refused transfer stays refused: running it again (or to another
     * taker) reports the objection and schedules nothing. */
    k = mark("e1", "e2", &c2, 1, T0 + 2 * DAY);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(XFER_STATUS(r.mass[0].status), XFER_REFUSED);
    assert_int_equal(XFER_WHY(r.mass[0].status), XFER_WHY_OBJECTED);
    apply_result_free(&r);
    k = mark("e1", "e3", &c2, 1, T0 + 3 * DAY);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_REFUSED | XFER_WHY_OBJECTED << XFER_WHY_SHIFT);
    apply_result_free(&r);
    assert_int_equal(store_transfer_next(f->st), T0 + 1 + DAY); /* cust3's only */
    owners_are(f, "cust2", "e1");
    /* 90 days after the objection a new transfer may be proposed. */
    k = mark("e1", "e3", &c2, 1, T0 + 91 * DAY);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_WAITING);
    apply_result_free(&r);
}

/* A refused transfer does not stop a resigned one (the customer has no say
 * there). */
static void test_transfer_refused_resigned(void **state)
{
    fx *f = *state;
    herald_str c2 = herald_str_z("cust2");
    apply_result r;
    cmd k;

    tenant(f);
    contact(f, "e1", "cust2", "ec2");
    k = mark("e1", "e2", &c2, 1, T0);
    assert_int_equal(run(f, &k, NULL), 0);
    k = (cmd){.op = CMD_TRANSFER_MARK, .user = herald_str_z("cust2"), .kind = herald_str_z("refuse")};
    assert_int_equal(run(f, &k, NULL), 0);
    k = mark("e1", "e2", &c2, 1, T0 + 5);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(XFER_STATUS(r.mass[0].status), XFER_REFUSED);
    apply_result_free(&r);
    k = mark("e1", "e2", &c2, 1, T0 + 6);
    k.flags = CMD_XFER_RESIGNED;
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.mass[0].status, XFER_MOVING);
    apply_result_free(&r);
    take_over(f, "e1", "e2", "cust2", "ec2", T0 + 7);
    owners_are(f, "cust2", "e2");
}

static void test_group_handover(void **state)
{
    fx *f = *state;
    herald_str mem[] = {herald_str_z("e1"), herald_str_z("cust1"), herald_str_z("x")};
    store_conv sc;
    apply_result r;
    cmd k = {.op = CMD_CONV_CREATE, .user = herald_str_z("e1"), .conv = herald_str_z("g1"),
             .kind = herald_str_z("customer_group"), .members = mem, .n_members = 3};

    tenant(f);
    assert_int_equal(run(f, &k, NULL), 0);
    k = (cmd){.op = CMD_CONV_HANDOVER, .user = herald_str_z("admin"), .admin = true,
              .conv = herald_str_z("g1"), .target = herald_str_z("e9"), .name = herald_str_z("e2")};
    assert_int_equal(run(f, &k, NULL), HERALD_ENOT_FOUND); /* not e9's */
    k.target = herald_str_z("e1");
    k.admin = false;
    assert_int_equal(run(f, &k, NULL), HERALD_EFORBIDDEN);
    k.admin = true;
    assert_int_equal(run(f, &k, &r), 0);
    assert_true(r.seq > 0);
    apply_result_free(&r);
    assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("g1"), &sc), 0);
    assert_string_equal(sc.owner, "e2");
    assert_int_equal(sc.count, 4);
    /* In service the old owner stays a member; again: nothing to do. */
    assert_int_equal(send_as(f, "e1", "g1", "still here"), 0);
    assert_int_equal(run(f, &k, &r), 0);
    assert_int_equal(r.seq, 0);
    apply_result_free(&r);
    /* Resigned: the old owner leaves. */
    k.flags = CMD_XFER_RESIGNED;
    assert_int_equal(run(f, &k, &r), 0);
    assert_true(r.seq > 0);
    apply_result_free(&r);
    assert_int_equal(send_as(f, "e1", "g1", "gone"), HERALD_ENOT_MEMBER);
    assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("g1"), &sc), 0);
    assert_int_equal(sc.count, 3);
    /* Only customer conversations and groups. */
    k = (cmd){.op = CMD_CONV_CREATE, .user = herald_str_z("e1"), .conv = herald_str_z("team"),
              .kind = herald_str_z("group"), .members = mem, .n_members = 1};
    assert_int_equal(run(f, &k, NULL), 0);
    k = (cmd){.op = CMD_CONV_HANDOVER, .user = herald_str_z("admin"), .admin = true,
              .conv = herald_str_z("team"), .target = herald_str_z("e1"),
              .name = herald_str_z("e2")};
    assert_int_equal(run(f, &k, NULL), HERALD_EINVAL);
}

/* Every test's command log replayed into a fresh store gives the same
 * digest; replaying the same indexes again is skipped (idempotent). */
static void replay_equal(fx *f)
{
    char dir[64];
    store_config cfg = {.no_sync = true};
    store *other;
    uint8_t d1[STORE_SNAP_DIGEST_LEN], d2[STORE_SNAP_DIGEST_LEN];
    uint64_t a1, a2;
    snprintf(dir, sizeof dir, "/tmp/herald-app2-XXXXXX");
    assert_non_null(mkdtemp(dir));
    cfg.dir = dir;
    assert_int_equal(store_open(&cfg, &other), 0);
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < f->n_log; i++) {
            const uint8_t *p = f->log[i].data;
            size_t len = f->log[i].len;
            apply_result r;
            assert_int_equal(apply_batch(other, &p, &len, 1, i + 1, &r), 0);
            assert_int_equal(r.skipped, pass == 1);
            apply_result_free(&r);
        }
    /* ... and the original store skips them too. */
    {
        const uint8_t *p = f->log[0].data;
        size_t len = f->log[0].len;
        apply_result r;
        assert_int_equal(apply_batch(f->st, &p, &len, 1, 1, &r), 0);
        assert_true(r.skipped);
        apply_result_free(&r);
    }
    assert_int_equal(store_digest(f->st, d1, &a1), 0);
    assert_int_equal(store_digest(other, d2, &a2), 0);
    assert_int_equal(a1, a2);
    assert_memory_equal(d1, d2, sizeof d1);
    store_close(other);
    {
        char rm[128];
        snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
        assert_int_equal(system(rm), 0);
    }
}

static void test_determinism(void **state)
{
    fx *f = *state;
    void (*tests[])(void **) = {test_app_mark, test_app_deliver, test_transfer_in_service,
                                test_transfer_limit_refuse, test_group_handover};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        void *st;
        fx *g;
        setup(&st);
        g = st;
        tests[i](&st);
        replay_equal(g);
        teardown(&st);
    }
    (void)f;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_app_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_deliver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_in_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_limit_refuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_refused_resigned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
    };
    herald_token_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
