/*
 * test_authz.c — the authorization table as a matrix: every verb × every
 * role against an expected table written out here (allowed and refused,
 * and the "own things only" cells both ways, over a real store with a
 * directory and a contact); reserved conversation ids; and the state
 * machine side of server-derived ids (CONV_CREATE with CMD_CONV_EXPECT) and
 * of current member kinds (CMD_KINDS_READ / CMD_EXTERNAL_NOW).
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
#include "authz.h"
#include "cmd.h"
#include "fixture.h"
#include "store.h"
#include "token.h"

#define TEN "acme"

static char last_errmsg[sizeof(((apply_result *)0)->errmsg)];

/* Applies one command; its result code, *dup if given. */
static int run(fx *f, cmd *k, bool *dup)
{
    apply_result r;
    int rc;
    k->tenant = herald_str_z(TEN);
    if (!k->ts)
        k->ts = 1000;
    fx_apply(f, k, &r);
    memcpy(last_errmsg, r.errmsg, sizeof last_errmsg);
    if (dup)
        *dup = r.dup;
    rc = r.err;
    apply_result_free(&r);
    return rc;
}

static void user(fx *f, const char *id, const char *kind)
{
    cmd k = {.op = CMD_DIR_USER, .user = herald_str_z("admin"), .admin = true,
             .target = herald_str_z(id), .kind = herald_str_z(kind)};
    assert_int_equal(run(f, &k, NULL), 0);
}

/* CONV_CREATE by admin of conv (kind, members; ext = the external ones). */
static int create(fx *f, const char *conv, const char *kind, const char *const *mem, uint32_t n,
                  const char *ext, uint32_t flags, bool *dup)
{
    herald_str m[8], e = herald_str_z(ext);
    cmd k = {.op = CMD_CONV_CREATE, .user = herald_str_z("admin"), .admin = true,
             .conv = herald_str_z(conv), .kind = herald_str_z(kind), .members = m,
             .n_members = n, .external = ext ? &e : NULL, .n_external = ext ? 1 : 0,
             .flags = flags};
    for (uint32_t i = 0; i < n; i++)
        m[i] = herald_str_z(mem[i]);
    return run(f, &k, dup);
}

/* The store (f->st): the tenant, a directory and a contact. */
static int setup(void **state)
{
    fx *f = fx_new("authz");
    char hex[TOKEN_SECRET_HEX + 1];
    cmd k = {.op = CMD_TENANT_CREATE};
    static const char *const pair[] = {"alice", "cust1"};

    fx_secret_hex(hex);
    k.secret = herald_str_z(hex);
    assert_int_equal(run(f, &k, NULL), 0);
    user(f, "alice", "internal");
    user(f, "bob", "internal");
    user(f, "cust1", "external");
    user(f, "cust2", "external");
    /* alice owns cust1 */
    assert_int_equal(create(f, "c1", "single", pair, 2, "cust1", 0, NULL), 0);
    k = (cmd){.op = CMD_CONTACT_ADD, .user = herald_str_z("admin"), .admin = true,
              .target = herald_str_z("alice"), .name = herald_str_z("cust1"),
              .conv = herald_str_z("c1")};
    assert_int_equal(run(f, &k, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* The actor of each role in the fixture. */
static const char *const actor[AUTHZ_ROLE_COUNT_] = {"admin", "alice", "cust1", "app:hr"};

/* One row of the expected matrix: 'y' allowed, 'n' refused, for admin,
 * employee, external, app; the frame is built by prep (own / other). */
typedef struct row {
    uint32_t type;
    const char *op;
    const char *want; /* 4 chars */
} row;

static const row expected[] = {
    {HERALD_FT_PING, NULL, "yyyy"},          {HERALD_FT_SEND, NULL, "yyyy"},
    {HERALD_FT_SYNC, NULL, "yyyy"},          {HERALD_FT_HISTORY, NULL, "yyyy"},
    {HERALD_FT_READ, NULL, "yyyy"},          {HERALD_FT_RECEIPTS, NULL, "yyny"},
    {HERALD_FT_RECALL, NULL, "yyyy"},        {HERALD_FT_DND, "on", "yyyy"},
    {HERALD_FT_DND, "off", "yyyy"},          {HERALD_FT_DND, "status", "yyyy"},
    {HERALD_FT_URGENT, "confirm", "yyyy"},   {HERALD_FT_URGENT, "status", "yynn"},
    {HERALD_FT_CONV, "create", "yyon"},      {HERALD_FT_CONV, "add", "yynn"},
    {HERALD_FT_CONV, "remove", "yyon"},      {HERALD_FT_CONV, "info", "yyyy"},
    {HERALD_FT_CONV, "list", "yyyy"},
    {HERALD_FT_DIR, "user.add", "ynnn"},     {HERALD_FT_DIR, "dept.add", "ynnn"},
    {HERALD_FT_DIR, "user.show", "yyon"},    {HERALD_FT_DIR, "dept.show", "yynn"},
    {HERALD_FT_DIR, "dept.list", "yynn"},
    {HERALD_FT_CONTACT, "add", "ynnn"},      {HERALD_FT_CONTACT, "list", "yyon"},
    {HERALD_FT_TAG, "add", "ynnn"},          {HERALD_FT_TAG, "remove", "ynnn"},
    {HERALD_FT_TAG, "list", "yynn"},         {HERALD_FT_MASS, "send", "ynnn"},
    {HERALD_FT_MASS, "status", "ynnn"},      {HERALD_FT_APP, "send", "ynnn"},
    {HERALD_FT_APP, "announce", "ynnn"},     {HERALD_FT_TRANSFER, "start", "ynnn"},
    {HERALD_FT_TRANSFER, "refuse", "nnyn"},  {HERALD_FT_STATUS, NULL, "ynnn"},
    {HERALD_FT_APP, "create", "ynnn"},       {HERALD_FT_APP, "list", "ynnn"},
    {HERALD_FT_APP, "user_token", "ynnn"},   {HERALD_FT_APP, "callback", "ynnn"},
    {HERALD_FT_APP, "events", "ynnn"},       {HERALD_FT_APP, "redeliver", "ynnn"},
};

/* A frame for the row; own: aimed at the actor's own things (for the 'o'
 * cells), else at someone else's. */
static herald_frame frame(const row *r, const char *who, bool own, herald_str *mem)
{
    herald_frame f = {.type = r->type, .op = herald_str_z(r->op), .conv = herald_str_z("c1"),
                      .user = herald_str_z("cust2")};
    if (r->type == HERALD_FT_CONV) {
        mem[0] = herald_str_z(own ? (strcmp(r->op, "create") == 0 ? "cust2" : who) : "alice");
        f.members = mem;
        f.n_members = 1;
    } else if (r->type == HERALD_FT_DIR) {
        f.user = herald_str_z(own ? "alice" : "cust2"); /* the owner's card, or a stranger */
    } else if (r->type == HERALD_FT_CONTACT) {
        f.conv = herald_str_z(own ? who : "cust2");
    }
    return f;
}

static void test_matrix(void **state)
{
    fx *f = *state;
    herald_str ten = herald_str_z(TEN);
    char msg[256];
    uint32_t cells = 0;

    /* Every verb of the table is in the expected matrix and the other way round. */
    assert_int_equal(authz_table_len, sizeof expected / sizeof expected[0]);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const row *r = &expected[i];
        assert_non_null(authz_find(r->type, herald_str_z(r->op)));
        for (int role = 0; role < AUTHZ_ROLE_COUNT_; role++) {
            herald_str who = herald_str_z(actor[role]), mem[1];
            char w = r->want[role];
            assert_int_equal(authz_role_of(f->st, ten, who, role == AUTHZ_ADMIN), role);
            for (int own = 0; own < 2; own++) {
                herald_frame fr = frame(r, actor[role], own, mem);
                bool allow = w == 'y' || (w == 'o' && own);
                int rc = authz_check(f->st, ten, who, (authz_role)role, &fr, msg, sizeof msg);
                if (rc != (allow ? 0 : HERALD_EFORBIDDEN))
                    fail_msg("%s %s as %s (%s): rc %d", herald_frame_type_name(r->type),
                             r->op ? r->op : "", authz_role_name((authz_role)role),
                             own ? "own" : "other", rc);
                if (!allow)
                    assert_non_null(strstr(msg, authz_role_name((authz_role)role)));
                cells++;
            }
        }
    }
    assert_int_equal(cells, 2 * AUTHZ_ROLE_COUNT_ * authz_table_len);
    /* A customer creating a group with an employee in it is refused. */
    {
        herald_str mem[2] = {herald_str_z("cust2"), herald_str_z("bob")};
        herald_frame fr = {.type = HERALD_FT_CONV, .op = herald_str_z("create"), .members = mem,
                           .n_members = 2};
        assert_int_equal(authz_check(f->st, ten, herald_str_z("cust1"), AUTHZ_EXTERNAL, &fr, msg,
                                     sizeof msg),
                         HERALD_EFORBIDDEN);
    }
    /* An op the table does not know is left to the handler (INVAL there). */
    {
        herald_frame fr = {.type = HERALD_FT_TAG, .op = herald_str_z("frobnicate")};
        assert_null(authz_find(fr.type, fr.op));
        assert_int_equal(authz_check(f->st, ten, herald_str_z("cust1"), AUTHZ_EXTERNAL, &fr, msg,
                                     sizeof msg),
                         0);
    }
    /* The role follows the directory now. */
    user(f, "bob", "external");
    assert_int_equal(authz_role_of(f->st, ten, herald_str_z("bob"), false), AUTHZ_EXTERNAL);
    assert_int_equal(authz_role_of(f->st, ten, herald_str_z("nobody"), false), AUTHZ_EMPLOYEE);
}

/* A registered app runs the verbs of its scopes as the tenant's admin, and
 * nothing else; app messages as itself only. */
static void test_scopes(void **state)
{
    fx *f = *state;
    herald_str ten = herald_str_z(TEN), hr = herald_str_z("app:hr");
    char msg[256], sha[65];
    bool as_admin = true;
    cmd k = {.op = CMD_APP_CREATE, .user = herald_str_z("admin"), .admin = true,
             .target = herald_str_z("hr"), .flags = APP_SCOPE_DIRECTORY | APP_SCOPE_MESSAGE};
    herald_frame dir = {.type = HERALD_FT_DIR, .op = herald_str_z("user.add")},
                 contact = {.type = HERALD_FT_CONTACT, .op = herald_str_z("add")},
                 own = {.type = HERALD_FT_APP, .op = herald_str_z("send"), .app = herald_str_z("hr")},
                 other = {.type = HERALD_FT_APP, .op = herald_str_z("send"),
                          .app = herald_str_z("crm")};

    /* Unregistered: no scopes. */
    assert_int_equal(authz_check_as(f->st, ten, hr, AUTHZ_APP, &dir, &as_admin, msg, sizeof msg),
                     HERALD_EFORBIDDEN);
    assert_false(as_admin);
    memset(sha, 'a', 64);
    sha[64] = '\0';
    k.secret = herald_str_z(sha);
    assert_int_equal(run(f, &k, NULL), 0);
    assert_int_equal(run(f, &k, NULL), HERALD_EEXISTS);
    assert_int_equal(authz_check_as(f->st, ten, hr, AUTHZ_APP, &dir, &as_admin, msg, sizeof msg), 0);
    assert_true(as_admin);
    assert_int_equal(authz_check_as(f->st, ten, hr, AUTHZ_APP, &own, &as_admin, msg, sizeof msg), 0);
    assert_true(as_admin);
    assert_int_equal(authz_check_as(f->st, ten, hr, AUTHZ_APP, &other, &as_admin, msg, sizeof msg),
                     HERALD_EFORBIDDEN);
    assert_int_equal(authz_check_as(f->st, ten, hr, AUTHZ_APP, &contact, &as_admin, msg,
                                    sizeof msg),
                     HERALD_EFORBIDDEN);
    assert_false(as_admin);
    /* A non-admin cannot register one. */
    k.admin = false;
    k.target = herald_str_z("x");
    assert_int_equal(run(f, &k, NULL), HERALD_EFORBIDDEN);
    assert_int_equal(authz_scope_bit("user_token", 10), APP_SCOPE_USER_TOKEN);
    assert_int_equal(authz_scope_bit("bogus", 5), 0);
    assert_string_equal(authz_scope_name(APP_SCOPE_CONTACT), "contact");
}

static void test_reserved(void **state)
{
    (void)state;
    assert_true(authz_reserved_conv(herald_str_z("ec-5ad866aa5675544e")));
    assert_true(authz_reserved_conv(herald_str_z("ap-x")));
    assert_true(authz_reserved_conv(herald_str_z("an-x")));
    assert_false(authz_reserved_conv(herald_str_z("ec")));
    assert_false(authz_reserved_conv(herald_str_z("team")));
    assert_false(authz_reserved_conv(herald_str_z("xec-1")));
    assert_false(authz_reserved_conv((herald_str){0}));
}

/* A derived id someone squatted (data from before ids were reserved) is
 * never taken as the conversation asked for. */
static void test_conv_expect(void **state)
{
    fx *f = *state;
    static const char *const squat[] = {"alice", "cust2", "mallory"};
    static const char *const pair[] = {"alice", "cust2"};
    static const char *const other[] = {"bob", "cust2"};
    bool dup = false;

    assert_int_equal(create(f, "ec-1", "group", squat, 3, "cust2", 0, NULL), 0);
    assert_int_equal(create(f, "ec-1", "single", pair, 2, "cust2", CMD_CONV_EXPECT, &dup),
                     HERALD_EEXISTS);
    assert_string_equal(last_errmsg, "the conversation id is taken by a different conversation");
    /* The same kind, other members. */
    assert_int_equal(create(f, "ec-2", "single", other, 2, "cust2", 0, NULL), 0);
    assert_int_equal(create(f, "ec-2", "single", pair, 2, "cust2", CMD_CONV_EXPECT, &dup),
                     HERALD_EEXISTS);
    /* Exactly the one asked for: a duplicate, nothing written. */
    assert_int_equal(create(f, "ec-3", "single", pair, 2, "cust2", CMD_CONV_EXPECT, &dup), 0);
    assert_false(dup);
    assert_int_equal(create(f, "ec-3", "single", pair, 2, "cust2", CMD_CONV_EXPECT, &dup), 0);
    assert_true(dup);
    {
        store_conv sc;
        assert_int_equal(store_conv_get(f->st, herald_str_z(TEN), herald_str_z("ec-3"), &sc), 0);
        assert_int_equal(sc.max_seq, 1); /* one create message only */
    }
    /* Without the flag an existing id stays EXISTS. */
    assert_int_equal(create(f, "ec-3", "single", pair, 2, "cust2", 0, NULL), HERALD_EEXISTS);
}

/* An app's 1:1 conversation whose id holds someone else than the
 * recipient (made under the app's own user id before ids were reserved):
 * delivery is refused with EXISTS, never stored where the recipient is not. */
static void test_app_conv_expect(void **state)
{
    fx *f = *state;
    herald_str bob = herald_str_z("bob"), alice = herald_str_z("alice");
    cmd k = {.op = CMD_CONV_CREATE, .user = herald_str_z("app:hr"),
             .conv = herald_str_z("ap-1"), .kind = herald_str_z("single"), .members = &alice,
             .n_members = 1};
    assert_int_equal(run(f, &k, NULL), 0); /* app:hr + alice */
    k = (cmd){.op = CMD_APP_DELIVER, .user = herald_str_z("app:hr"), .admin = true,
              .conv = herald_str_z("ap-1"), .kind = herald_str_z("single"), .members = &bob,
              .n_members = 1, .cmid = herald_str_z("m1.1"), .body = herald_str_z("pay")};
    assert_int_equal(run(f, &k, NULL), HERALD_EEXISTS);
    assert_string_equal(last_errmsg, "the conversation belongs to something else");
    k.members = &alice;
    assert_int_equal(run(f, &k, NULL), 0); /* the right recipient: delivered */
}

/* SEND by alice into conv with the given flags; true when the stored
 * message carries a certified identity. */
static bool certified(fx *f, const char *conv, uint32_t flags)
{
    store_msgs m = {0};
    bool id;
    cmd k = {.op = CMD_SEND, .user = herald_str_z("alice"), .conv = herald_str_z(conv),
             .body = herald_str_z("hi"), .corp = herald_str_z("Acme"),
             .title = herald_str_z("Manager"), .flags = flags};
    assert_int_equal(run(f, &k, NULL), 0);
    assert_int_equal(store_history(f->st, herald_str_z(TEN), herald_str_z(conv), 0, 1000, 0, &m),
                     0);
    id = m.v[m.n - 1].id_corp.len != 0;
    assert_int_equal(m.v[m.n - 1].flags & CMD_KIND_BITS, 0); /* never stored */
    store_msgs_free(&m);
    return id;
}

static void test_kinds_now(void **state)
{
    fx *f = *state;
    static const char *const team[] = {"alice", "bob"};
    /* Joined when all were internal; with customers at join. */
    assert_int_equal(create(f, "team", "group", team, 2, NULL, 0, NULL), 0);
    assert_false(certified(f, "team", 0));
    assert_true(certified(f, "team", CMD_KINDS_READ | CMD_EXTERNAL_NOW));
    assert_false(certified(f, "team", CMD_KINDS_READ));
    /* c1 was created with cust1 external: the gateway's reading wins. */
    assert_true(certified(f, "c1", 0));
    assert_false(certified(f, "c1", CMD_KINDS_READ));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conv_expect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_conv_expect, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
