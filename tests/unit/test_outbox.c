/*
 * test_outbox.c — the event-callback outbox in the state machine and the
 * store: which commands record which events (ids from the store's own
 * sequence, time = the command's ts, in the same transaction), nothing
 * for rejected or duplicate commands, message bodies not copied, APP_CALLBACK (set, validate, remove),
 * the OUTBOX progress commands (ack, skip, retry, fail, requeue, prune,
 * late reports of a deposed leader), the age limit, re-apply of the same
 * index, and determinism (two stores fed the same commands are equal);
 * OFFLINE: message.offline events from the reports, checked against the
 * store (members only, not the sender, no apps, sorted, once each;
 * nothing for a missing or recalled message), malformed reports refused.
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
#include "fixture.h"
#include "outbox.h"
#include "store.h"
#include "store_snap.h"
#include "token.h"

#define TEN "acme"
#define T0 1800000000000ull
#define TOKEN "0123456789abcdef0123456789abcdef"
#define SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static int setup(void **state)
{
    fx *f = fx_new("outbox");
    f->keep_log = true; /* for the replay (deterministic) */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

static int run_r(fx *f, cmd *k, apply_result *keep)
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

static int run(fx *f, cmd *k) { return run_r(f, k, NULL); }

/* Collected events. */
typedef struct got {
    uint32_t n;
    uint64_t seq[64], ts[64];
    char type[64][40], conv[64][140], data[64][512];
} got;

static int collect(const store_event *e, void *arg)
{
    got *g = arg;
    if (g->n < 64) {
        g->seq[g->n] = e->seq;
        g->ts[g->n] = e->ts;
        snprintf(g->type[g->n], sizeof g->type[0], "%s", e->type);
        snprintf(g->conv[g->n], sizeof g->conv[0], "%s", e->conv);
        snprintf(g->data[g->n], sizeof g->data[0], "%s", e->data);
    }
    g->n++;
    return 0;
}

static got events_after(fx *f, uint64_t after)
{
    got g;
    memset(&g, 0, sizeof g);
    assert_int_equal(store_outbox_scan(f->st, after, 1000, collect, &g), 0);
    return g;
}

static void world(fx *f)
{
    char hex[TOKEN_SECRET_HEX + 1];
    herald_str mem[2] = {herald_str_z("alice"), herald_str_z("bob")};
    cmd k = {.op = CMD_TENANT_CREATE};
    fx_secret_hex(hex);
    k.secret = herald_str_z(hex);
    assert_int_equal(run(f, &k), 0);
    k = (cmd){.op = CMD_CONV_CREATE, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
              .kind = herald_str_z("group"), .members = mem, .n_members = 2};
    assert_int_equal(run(f, &k), 0);
}

static void send(fx *f, const char *cmid, const char *body, uint64_t ts)
{
    cmd k = {.op = CMD_SEND, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
             .cmid = herald_str_z(cmid), .body = herald_str_z(body), .ts = ts};
    assert_int_equal(run(f, &k), 0);
}

static void events_of_commands(void **state)
{
    fx *f = *state;
    got g;
    char bin[3] = {'\xff', 'A', '\0'};
    herald_str tags = herald_str_z("vip");
    cmd k;

    world(f); /* the create's system message: event 1 */
    send(f, "c1", "hello", T0 + 5);
    send(f, "c1", "hello", T0 + 6); /* a duplicate: no event */
    send(f, "c2", bin, T0 + 7);     /* not UTF-8 (base64 when sent) */
    k = (cmd){.op = CMD_SEND, .user = herald_str_z("mallory"), .conv = herald_str_z("g1"),
              .cmid = herald_str_z("c3"), .body = herald_str_z("x")};
    assert_int_equal(run(f, &k), HERALD_ENOT_MEMBER); /* rejected: no event */
    k = (cmd){.op = CMD_READ, .user = herald_str_z("bob"), .conv = herald_str_z("g1"), .seq = 2,
              .ts = T0 + 8};
    assert_int_equal(run(f, &k), 0);
    k.ts = T0 + 9; /* the cursor does not move: no event */
    assert_int_equal(run(f, &k), 0);
    k = (cmd){.op = CMD_RECALL, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
              .seq = 2, .win = 3600, .ts = T0 + 10};
    assert_int_equal(run(f, &k), 0);
    k = (cmd){.op = CMD_DIR_USER, .user = herald_str_z("admin"), .admin = true,
              .target = herald_str_z("carol"), .kind = herald_str_z("internal"),
              .name = herald_str_z("Carol"), .ts = T0 + 11};
    assert_int_equal(run(f, &k), 0);
    k = (cmd){.op = CMD_TAG, .user = herald_str_z("admin"), .admin = true,
              .target = herald_str_z("cust"), .kind = herald_str_z("add"), .members = &tags,
              .n_members = 1, .ts = T0 + 12};
    assert_int_equal(run(f, &k), 0);

    g = events_after(f, 0);
    assert_int_equal(g.n, 7);
    for (uint32_t i = 0; i < g.n; i++) {
        assert_int_equal(g.seq[i], i + 1);
        /* Every type recorded is one an app can subscribe to. */
        assert_int_not_equal(ob_type_bit(g.type[i], strlen(g.type[i])), 0);
    }
    assert_string_equal(g.type[0], "message");
    assert_non_null(strstr(g.data[0], "\"kind\":\"system\""));
    assert_string_equal(g.type[1], "message");
    assert_int_equal(g.ts[1], T0 + 5);
    assert_string_equal(g.conv[1], "g1");
    assert_non_null(strstr(g.data[1], "\"seq\":2,\"from\":\"alice\",\"kind\":\"text\""));
    /* The body stays in the message record (read when sent): small events. */
    assert_null(strstr(g.data[1], "hello"));
    assert_null(strstr(g.data[2], "body"));
    assert_string_equal(g.type[2], "message");
    assert_string_equal(g.type[3], "receipt");
    assert_non_null(strstr(g.data[3], "\"user\":\"bob\",\"seq\":2"));
    assert_string_equal(g.type[4], "recall");
    assert_non_null(strstr(g.data[4], "\"seq\":2,\"by\":\"alice\""));
    assert_string_equal(g.type[5], "directory.user");
    assert_string_equal(g.conv[5], "");
    assert_non_null(strstr(g.data[5], "\"user\":\"carol\""));
    assert_string_equal(g.type[6], "tag.add");
    assert_non_null(strstr(g.data[6], "\"tags\":[\"vip\"]"));
    {
        store_outbox_state st;
        assert_int_equal(store_outbox_state_get(f->st, &st), 0);
        assert_int_equal(st.last_seq, 7);
        assert_int_equal(st.held, 7);
        assert_int_equal(st.dropped, 0);
    }
}

static void offline_reports(void **state)
{
    fx *f = *state;
    herald_str carol = herald_str_z("carol");
    herald_str convs[4] = {herald_str_z("g1"), herald_str_z("g1"), herald_str_z("nope"),
                           herald_str_z("g1")};
    uint64_t seqs[4] = {3, 99, 3, 3}, counts[4] = {6, 1, 1, 0};
    herald_str users[8] = {herald_str_z("carol"), herald_str_z("bob"), herald_str_z("carol"),
                           herald_str_z("alice"), herald_str_z("mallory"), herald_str_z("app:x"),
                           herald_str_z("bob"), herald_str_z("bob")};
    apply_result r;
    got g;
    cmd k;

    world(f); /* event 1 */
    k = (cmd){.op = CMD_CONV_ADD, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
              .members = &carol, .n_members = 1, .ts = T0 + 1};
    assert_int_equal(run(f, &k), 0); /* seq 2, event 2 */
    send(f, "c1", "hello", T0 + 2);  /* seq 3, event 3 */
    k = (cmd){.op = CMD_OFFLINE, .n_oconvs = 4, .oconvs = convs, .n_oseqs = 4, .oseqs = seqs,
              .n_ocounts = 4, .ocounts = counts, .n_members = 8, .members = users,
              .ts = T0 + 3};
    assert_int_equal(run_r(f, &k, &r), 0);
    assert_int_equal(r.seq, 1);     /* one event */
    assert_int_equal(r.ignored, 6); /* carol again, alice, mallory, app:x, seq 99, nope */
    assert_null(r.msg);             /* nothing to push */
    apply_result_free(&r);
    g = events_after(f, 3);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.type[0], "message.offline");
    assert_string_equal(g.conv[0], "g1");
    assert_int_equal(g.ts[0], T0 + 3);
    assert_string_equal(g.data[0],
                        "{\"conv\":\"g1\",\"seq\":3,\"from\":\"alice\",\"users\":[\"bob\",\"carol\"]}");

    /* Counts that do not add up: refused, nothing recorded. */
    counts[0] = 7;
    assert_int_equal(run(f, &k), HERALD_EINVAL);
    counts[0] = 5;
    assert_int_equal(run(f, &k), HERALD_EINVAL);
    k.n_oseqs = 3;
    counts[0] = 6;
    assert_int_equal(run(f, &k), HERALD_EINVAL);
    k.n_oseqs = 4;
    assert_int_equal(events_after(f, 4).n, 0);

    /* A recalled message: no event. */
    {
        cmd rc = {.op = CMD_RECALL, .user = herald_str_z("alice"), .conv = herald_str_z("g1"),
                  .seq = 3, .win = 3600, .ts = T0 + 4};
        assert_int_equal(run(f, &rc), 0); /* event 5: recall */
    }
    k.ts = T0 + 5;
    assert_int_equal(run_r(f, &k, &r), 0);
    assert_int_equal(r.seq, 0);
    apply_result_free(&r);
    g = events_after(f, 4);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.type[0], "recall");
}

static void callback_config(void **state)
{
    fx *f = *state;
    store_callback cb;
    cmd k = {.op = CMD_APP_CALLBACK, .user = herald_str_z("admin"), .admin = true,
             .target = herald_str_z("hr"), .name = herald_str_z("https://hr.example/cb"),
             .cmid = herald_str_z(TOKEN), .secret = herald_str_z(SECRET), .flags = CMD_CB_ALL,
             .ts = T0 + 1};

    assert_int_equal(run(f, &k), 0);
    assert_int_equal(store_callback_get(f->st, herald_str_z(TEN), herald_str_z("hr"), &cb), 0);
    assert_string_equal(cb.url, "https://hr.example/cb");
    assert_string_equal(cb.token, TOKEN);
    assert_string_equal(cb.secret, SECRET);
    assert_true(cb.all);
    assert_int_equal(cb.set_ms, T0 + 1);
    assert_int_equal(cb.types, 0); /* no types named: every type */
    {
        /* Named types: their bits; an unknown name is refused. */
        herald_str t[] = {herald_str_z("message.offline"), herald_str_z("recall")};
        char names[64];
        k.tags = t;
        k.n_tags = 2;
        assert_int_equal(run(f, &k), 0);
        assert_int_equal(store_callback_get(f->st, herald_str_z(TEN), herald_str_z("hr"), &cb),
                         0);
        assert_int_equal(cb.types, ob_type_bit("message.offline", 15) | ob_type_bit("recall", 6));
        ob_types_str(cb.types, names, sizeof names);
        assert_string_equal(names, "recall,message.offline");
        t[1] = herald_str_z("message.*");
        assert_int_equal(run(f, &k), HERALD_EINVAL);
        k.tags = NULL;
        k.n_tags = 0;
    }
    k.admin = false;
    assert_int_equal(run(f, &k), HERALD_EFORBIDDEN);
    k.admin = true;
    k.name = herald_str_z("ftp://x");
    assert_int_equal(run(f, &k), HERALD_EINVAL);
    k.name = herald_str_z("https://a b");
    assert_int_equal(run(f, &k), HERALD_EINVAL);
    k.name = herald_str_z("https://ok");
    k.secret = herald_str_z("short");
    assert_int_equal(run(f, &k), HERALD_EINVAL);
    k.name = herald_str_z("");
    assert_int_equal(run(f, &k), 0); /* removed */
    assert_int_equal(store_callback_get(f->st, herald_str_z(TEN), herald_str_z("hr"), &cb),
                     HERALD_ENOT_FOUND);
}

static int ob(fx *f, const char *kind, uint64_t seq, uint32_t attempts, uint64_t next,
              const char *err, uint32_t flags, apply_result *keep)
{
    cmd k = {.op = CMD_OUTBOX, .target = herald_str_z("hr"), .kind = herald_str_z(kind),
             .seq = seq, .cap = attempts, .win = next, .name = herald_str_z(err),
             .flags = flags, .ts = T0 + 100};
    return run_r(f, &k, keep);
}

typedef struct retries {
    uint32_t n;
    store_ob_retry r[8];
} retries;

static int keep_retry(const store_ob_retry *r, void *arg)
{
    retries *v = arg;
    if (v->n < 8) {
        v->r[v->n] = *r;
        v->r[v->n].ev.data = NULL;
    }
    v->n++;
    return 0;
}

/* The app's "or" records, then its "of" (failed) ones. */
static retries retries_of(fx *f)
{
    retries v;
    memset(&v, 0, sizeof v);
    assert_int_equal(store_ob_retries(f->st, herald_str_z(TEN), herald_str_z("hr"), false,
                                      keep_retry, &v), 0);
    assert_int_equal(store_ob_retries(f->st, herald_str_z(TEN), herald_str_z("hr"), true,
                                      keep_retry, &v), 0);
    return v;
}

static void progress(void **state)
{
    fx *f = *state;
    store_ob_cursor c;
    retries v;
    apply_result r;

    world(f);
    send(f, "c1", "one", T0 + 1);
    send(f, "c2", "two", T0 + 2);
    send(f, "c3", "three", T0 + 3); /* events 1 (system) .. 4 */
    /* The head: event 1 acknowledged. */
    assert_int_equal(ob(f, "ack", 1, 1, 0, "", 0, NULL), 0);
    assert_int_equal(store_ob_cursor_get(f->st, herald_str_z(TEN), herald_str_z("hr"), &c), 0);
    assert_int_equal(c.cursor, 1);
    assert_int_equal(c.delivered, 1);
    /* A deposed leader's late ack of it: a duplicate, nothing moves. */
    assert_int_equal(ob(f, "ack", 1, 1, 0, "", 0, &r), 0);
    assert_true(r.dup);
    apply_result_free(&r);
    /* Event 2 fails twice (retry), then gives up. */
    assert_int_equal(ob(f, "retry", 2, 1, T0 + 2000, "HTTP 500", 0, NULL), 0);
    assert_int_equal(ob(f, "retry", 2, 2, T0 + 4000, "timeout", 0, NULL), 0);
    v = retries_of(f);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.r[0].seq, 2);
    assert_int_equal(v.r[0].state, OB_RETRYING);
    assert_int_equal(v.r[0].attempts, 2);
    assert_int_equal(v.r[0].next_ms, T0 + 4000);
    assert_string_equal(v.r[0].last_error, "timeout");
    assert_string_equal(v.r[0].ev.type, "message");
    assert_int_equal(ob(f, "fail", 2, 3, 0, "refused", 0, NULL), 0);
    assert_int_equal(store_ob_cursor_get(f->st, herald_str_z(TEN), herald_str_z("hr"), &c), 0);
    assert_int_equal(c.cursor, 2);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.failed_now, 1);
    v = retries_of(f);
    assert_int_equal(v.r[0].state, OB_FAILED);
    /* skip past 3, ack 4. */
    assert_int_equal(ob(f, "skip", 3, 0, 0, "", 0, NULL), 0);
    assert_int_equal(ob(f, "ack", 4, 1, 0, "", 0, NULL), 0);
    assert_int_equal(store_ob_cursor_get(f->st, herald_str_z(TEN), herald_str_z("hr"), &c), 0);
    assert_int_equal(c.cursor, 4);
    assert_int_equal(c.delivered, 2);
    /* Prune everything: the failed event's copy survives in its record. */
    assert_int_equal(ob(f, "prune", 4, 0, 0, "", 0, &r), 0);
    assert_int_equal(r.seq, 4);
    apply_result_free(&r);
    assert_int_equal(events_after(f, 0).n, 0);
    /* Requeue: unknown id is NOT_FOUND; the failed one comes back. */
    assert_int_equal(ob(f, "requeue", 3, 0, 0, "", 0, NULL), HERALD_ENOT_FOUND);
    assert_int_equal(ob(f, "requeue", 0, 0, 0, "", CMD_OB_ALL, &r), 0);
    assert_int_equal(r.seq, 1);
    apply_result_free(&r);
    v = retries_of(f);
    assert_int_equal(v.r[0].state, OB_REQUEUED);
    assert_int_equal(v.r[0].attempts, 0);
    /* A redelivery that gives up again is failed again (not counted twice). */
    assert_int_equal(ob(f, "fail", 2, 3, 0, "gone", CMD_OB_REDELIVERY, NULL), 0);
    v = retries_of(f);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.r[0].state, OB_FAILED);
    assert_string_equal(v.r[0].last_error, "gone");
    assert_int_equal(store_ob_cursor_get(f->st, herald_str_z(TEN), herald_str_z("hr"), &c), 0);
    assert_int_equal(c.failed, 1);
    assert_int_equal(ob(f, "requeue", 2, 0, 0, "", 0, &r), 0);
    assert_int_equal(r.seq, 1);
    apply_result_free(&r);
    /* A redelivery failing keeps it requeued; then acked, it is gone. */
    assert_int_equal(ob(f, "retry", 2, 1, T0 + 9000, "HTTP 503", CMD_OB_REDELIVERY, NULL), 0);
    assert_int_equal(retries_of(f).r[0].state, OB_REQUEUED);
    assert_int_equal(ob(f, "ack", 2, 2, 0, "", CMD_OB_REDELIVERY, NULL), 0);
    assert_int_equal(retries_of(f).n, 0);
    assert_int_equal(store_ob_cursor_get(f->st, herald_str_z(TEN), herald_str_z("hr"), &c), 0);
    assert_int_equal(c.delivered, 3);
    assert_int_equal(c.failed_now, 0);
    assert_int_equal(c.cursor, 4);
    /* Bad kinds and ids. */
    assert_int_equal(ob(f, "explode", 1, 0, 0, "", 0, NULL), HERALD_EINVAL);
    {
        cmd k = {.op = CMD_OUTBOX, .target = herald_str_z("bad id"), .kind = herald_str_z("ack"),
                 .seq = 9};
        assert_int_equal(run(f, &k), HERALD_EINVAL);
    }
}

static void age_limit(void **state)
{
    fx *f = *state;
    store_outbox_state st;
    apply_result r;
    cmd k;

    world(f);
    send(f, "c1", "old", T0 + 1);
    send(f, "c2", "new", T0 + OUTBOX_AGE_MS);
    /* Nobody is past anything (seq 0), but event 1 and 2 are older than
     * the limit at this time. */
    k = (cmd){.op = CMD_OUTBOX, .kind = herald_str_z("prune"), .seq = 0,
              .ts = T0 + OUTBOX_AGE_MS + 2};
    assert_int_equal(run_r(f, &k, &r), 0);
    assert_int_equal(r.seq, 2);
    apply_result_free(&r);
    assert_int_equal(store_outbox_state_get(f->st, &st), 0);
    assert_int_equal(st.held, 1);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(events_after(f, 0).seq[0], 3);
}

/* Failed events are kept up to OUTBOX_FAILED_CAP per app and group: the
 * oldest goes first. */
static void failed_cap(void **state)
{
    fx *f = *state;
    store_ob_cursor c;
    retries v;
    uint32_t n = OUTBOX_FAILED_CAP + 2;

    f->keep_log = false; /* more commands than the log holds */
    world(f); /* event 1 */
    for (uint32_t i = 0; i < n; i++) {
        char cmid[16];
        snprintf(cmid, sizeof cmid, "c%u", i);
        send(f, cmid, "x", T0 + i);
    }
    assert_int_equal(ob(f, "ack", 1, 1, 0, "", 0, NULL), 0);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(ob(f, "fail", i + 2, 1, 0, "HTTP 500", 0, NULL), 0);
    assert_int_equal(store_ob_cursor_get(f->st, herald_str_z(TEN), herald_str_z("hr"), &c), 0);
    assert_int_equal(c.failed, n);
    assert_int_equal(c.failed_now, OUTBOX_FAILED_CAP);
    memset(&v, 0, sizeof v);
    assert_int_equal(store_ob_retries(f->st, herald_str_z(TEN), herald_str_z("hr"), true,
                                      keep_retry, &v), 0);
    assert_int_equal(v.n, OUTBOX_FAILED_CAP);
    assert_int_equal(v.r[0].seq, 4); /* 2 and 3 were forgotten */
}

/* Re-applying an index does nothing; a second store fed the same commands
 * (with the same ts) is the same byte for byte. */
static void deterministic(void **state)
{
    fx *f = *state, *g = fx_new("outbox2");
    uint8_t d1[STORE_SNAP_DIGEST_LEN], d2[STORE_SNAP_DIGEST_LEN];
    apply_result rs[1];

    world(f);
    send(f, "c1", "one", T0 + 1);
    assert_int_equal(ob(f, "retry", 1, 1, T0 + 50, "x", 0, NULL), 0);
    {
        const uint8_t *c = f->log[f->n_log - 1].data;
        size_t len = f->log[f->n_log - 1].len;
        assert_int_equal(apply_batch(f->st, &c, &len, 1, f->next - 1, rs), 0);
        assert_true(rs[0].skipped);
        apply_result_free(&rs[0]);
    }
    for (uint32_t i = 0; i < f->n_log; i++) {
        const uint8_t *c = f->log[i].data;
        size_t len = f->log[i].len;
        assert_int_equal(apply_batch(g->st, &c, &len, 1, i + 1, rs), 0);
        apply_result_free(&rs[0]);
    }
    assert_int_equal(store_digest(f->st, d1, NULL), 0);
    assert_int_equal(store_digest(g->st, d2, NULL), 0);
    assert_memory_equal(d1, d2, sizeof d1);
    fx_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(events_of_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(offline_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(callback_config, setup, teardown),
        cmocka_unit_test_setup_teardown(progress, setup, teardown),
        cmocka_unit_test_setup_teardown(age_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(deterministic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
