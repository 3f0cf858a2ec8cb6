/*
 * it_client.c — libherald against a real heraldd dev: send/push round trip,
 * multi-device delivery, reconnect catch-up with no gap or duplicate while
 * messages keep coming, kill -9 and restart with every acknowledged message
 * intact, announcements (read diffusion), duplicate cmid, caps.
 */
#include <herald/client.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static it_server srv;

static int setup(void **state)
{
    (void)state;
    it_server_start(&srv, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    it_server_destroy(&srv);
    return 0;
}

static herald_client *connect_as(const char *user, bool admin, const herald_buf *key)
{
    char tok[TOKEN_TEXT_MAX];
    herald_client_opts o = {.timeout_ms = 5000};
    herald_client *c = NULL;
    int rc;
    if (key) {
        o.sync_key = key->data;
        o.sync_key_len = key->len;
    }
    it_token(&srv, user, admin, 3600, tok, sizeof tok);
    rc = herald_client_connect(srv.addr, tok, &o, &c);
    if (rc)
        fail_msg("connect %s: %s", user, herald_err_name(rc));
    return c;
}

static void create(herald_client *c, const char *kind, const char *id,
                   const char *const *mem, uint32_t n)
{
    int rc = herald_client_conv_create(c, kind, id, mem, n, NULL);
    if (rc)
        fail_msg("create %s: %s: %s", id, herald_err_name(rc), herald_client_last_error(c));
}

static uint64_t send_text(herald_client *c, const char *conv, const char *text)
{
    herald_ack a;
    int rc = herald_client_send(c, conv, NULL, text, strlen(text), 0, &a);
    if (rc)
        fail_msg("send: %s: %s", herald_err_name(rc), herald_client_last_error(c));
    return a.seq;
}

/* Next message event of conv (receipts and other convs skipped). */
static herald_event *next_msg(herald_client *c, const char *conv, int timeout_ms)
{
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    while (it_now_ms() < deadline) {
        herald_event *ev;
        int rc = herald_client_next_event(c, 200, &ev);
        if (rc == HERALD_ETIMEOUT)
            continue;
        if (rc)
            fail_msg("next_event: %s", herald_err_name(rc));
        if (ev->type == HERALD_EV_MSG && herald_str_eq(ev->msg.conv, conv))
            return ev;
        herald_event_free(ev);
    }
    return NULL;
}

static void test_multi_device(void **state)
{
    const char *mem[] = {"ann", "ben"};
    herald_client *ann = connect_as("ann", false, NULL);
    herald_client *ben1 = connect_as("ben", false, NULL);
    herald_client *ben2 = connect_as("ben", false, NULL);
    herald_client *ann2 = connect_as("ann", false, NULL);
    herald_client *devs[] = {ben1, ben2, ann2};
    uint64_t seq;
    (void)state;
    create(ann, "single", "md-1", mem, 2);
    seq = send_text(ann, "md-1", "to every device");
    for (size_t i = 0; i < 3; i++) {
        herald_event *ev;
        /* The create system message comes first, then ours. */
        do {
            ev = next_msg(devs[i], "md-1", 5000);
            assert_non_null(ev);
            if (ev->msg.kind == HERALD_MK_TEXT)
                break;
            herald_event_free(ev);
        } while (1);
        assert_int_equal(ev->msg.seq, seq);
        assert_true(herald_str_eq(ev->msg.from, "ann"));
        assert_int_equal(ev->msg.body.len, strlen("to every device"));
        assert_memory_equal(ev->msg.body.ptr, "to every device", ev->msg.body.len);
        herald_event_free(ev);
    }
    herald_client_close(ann);
    herald_client_close(ann2);
    herald_client_close(ben1);
    herald_client_close(ben2);
}

/* Bob reads some, goes offline, misses some, reconnects with his key while
 * Alice keeps sending: he sees every message once, in order. */
static void test_reconnect_catch_up(void **state)
{
    enum { BEFORE = 20, OFFLINE = 150, DURING = 100 };
    const char *mem[] = {"alice", "bob", "carl"};
    herald_client *alice = connect_as("alice", false, NULL);
    herald_client *bob = connect_as("bob", false, NULL);
    herald_buf key = {0};
    uint64_t expect = 2; /* seq 1: the create system message */
    uint64_t last_sent = 0;
    char text[64];
    (void)state;
    create(alice, "group", "cu-1", mem, 3);
    {
        herald_event *ev = next_msg(bob, "cu-1", 5000); /* the system message */
        assert_non_null(ev);
        assert_int_equal(ev->msg.seq, 1);
        herald_event_free(ev);
    }
    for (int i = 0; i < BEFORE; i++) {
        snprintf(text, sizeof text, "m%d", i);
        last_sent = send_text(alice, "cu-1", text);
    }
    for (int i = 0; i < BEFORE; i++) {
        herald_event *ev = next_msg(bob, "cu-1", 5000);
        assert_non_null(ev);
        assert_int_equal(ev->msg.seq, expect);
        expect++;
        herald_event_free(ev);
    }
    assert_int_equal(herald_client_sync_key(bob, &key), 0);
    herald_client_close(bob);
    for (int i = 0; i < OFFLINE; i++) {
        snprintf(text, sizeof text, "off%d", i);
        last_sent = send_text(alice, "cu-1", text);
    }
    bob = connect_as("bob", false, &key);
    /* Interleave: one send, one receive, so pushes race the catch-up. */
    for (int i = 0; i < DURING; i++) {
        herald_event *ev;
        snprintf(text, sizeof text, "live%d", i);
        last_sent = send_text(alice, "cu-1", text);
        ev = next_msg(bob, "cu-1", 5000);
        assert_non_null(ev);
        assert_int_equal(ev->msg.seq, expect);
        expect++;
        herald_event_free(ev);
    }
    while (expect <= last_sent) {
        herald_event *ev = next_msg(bob, "cu-1", 5000);
        assert_non_null(ev);
        assert_int_equal(ev->msg.seq, expect);
        expect++;
        herald_event_free(ev);
    }
    /* And nothing more: no duplicates. */
    {
        herald_event *ev;
        assert_int_equal(herald_client_next_event(bob, 300, &ev), HERALD_ETIMEOUT);
    }
    print_message("%llu messages, 0 lost, 0 duplicated, 0 gaps\n",
                  (unsigned long long)(last_sent - 1));
    herald_buf_free(&key);
    herald_client_close(alice);
    herald_client_close(bob);
}

/* kill -9 while sending: everything acknowledged survives, seqs gap-free,
 * and retrying an unacknowledged cmid is exactly-once. */
static void test_kill9_restart(void **state)
{
    enum { N = 300 };
    const char *mem[] = {"kim", "lee"};
    herald_client *kim = connect_as("kim", false, NULL);
    herald_msglist h;
    uint64_t acked = 0, after = 0, total = 0;
    (void)state;
    create(kim, "group", "k9", mem, 2);
    for (int i = 0; i < N; i++) {
        char cmid[32];
        snprintf(cmid, sizeof cmid, "k9-%d", i);
        if (herald_client_send(kim, "k9", cmid, cmid, strlen(cmid), 0, NULL) == 0)
            acked = (uint64_t)i + 1;
    }
    it_server_kill9(&srv);
    herald_client_close(kim);
    it_server_restart(&srv);
    kim = connect_as("kim", false, NULL);
    /* A retry with a cmid already stored is answered with its seq. */
    {
        herald_ack a;
        assert_int_equal(herald_client_send(kim, "k9", "k9-5", "again", 5, 0, &a), 0);
        assert_true(a.dup);
        assert_int_equal(a.seq, 7); /* seq 1 is the system message */
    }
    do {
        assert_int_equal(herald_client_history(kim, "k9", after, 1000, &h), 0);
        for (uint32_t i = 0; i < h.n; i++) {
            assert_int_equal(h.v[i].seq, after + 1);
            after = h.v[i].seq;
            total++;
        }
        bool more = h.more;
        herald_msglist_free(&h);
        if (!more)
            break;
    } while (1);
    assert_int_equal(acked, N);
    assert_int_equal(total, N + 1);
    print_message("%llu acked, 0 lost, 0 duplicated, 0 gaps\n", (unsigned long long)acked);
    herald_client_close(kim);
}

/* kill -9 at an arbitrary moment while sends are in flight; after the
 * restart the client retries the unacknowledged send with the same cmid:
 * every cmid ends up in history exactly once (exactly-once across a crash),
 * and seqs stay gap-free. */
static void test_kill9_in_flight_retry(void **state)
{
    enum { N = 2000 };
    const char *mem[] = {"ivy", "jon"};
    herald_client *ivy = connect_as("ivy", false, NULL);
    herald_msglist h;
    static unsigned char seen[N];
    uint64_t after = 0;
    int acked = 0, failed_at = -1;
    pid_t killer;
    (void)state;
    create(ivy, "group", "k9b", mem, 2);
    killer = fork();
    assert_true(killer >= 0);
    if (killer == 0) {
        struct timespec ts = {0, 150 * 1000000L};
        nanosleep(&ts, NULL);
        kill(srv.pid, SIGKILL);
        _exit(0);
    }
    for (int i = 0; i < N; i++) {
        char cmid[32];
        snprintf(cmid, sizeof cmid, "%d", i);
        if (herald_client_send(ivy, "k9b", cmid, cmid, strlen(cmid), 0, NULL) != 0) {
            failed_at = i;
            break;
        }
        acked++;
    }
    waitpid(killer, NULL, 0);
    assert_true(failed_at >= 0); /* the kill landed mid-stream */
    {
        int st;
        waitpid(srv.pid, &st, 0);
        srv.pid = 0;
    }
    herald_client_close(ivy);
    it_server_restart(&srv);
    ivy = connect_as("ivy", false, NULL);
    /* Retry the one in flight, then send the rest. */
    for (int i = failed_at; i < N; i++) {
        char cmid[32];
        herald_ack a;
        snprintf(cmid, sizeof cmid, "%d", i);
        assert_int_equal(herald_client_send(ivy, "k9b", cmid, cmid, strlen(cmid), 0, &a), 0);
        if (i > failed_at)
            assert_false(a.dup);
    }
    for (;;) {
        bool more;
        assert_int_equal(herald_client_history(ivy, "k9b", after, 1000, &h), 0);
        for (uint32_t i = 0; i < h.n; i++) {
            assert_int_equal(h.v[i].seq, after + 1);
            after = h.v[i].seq;
            if (h.v[i].kind == HERALD_MK_TEXT) {
                int id = atoi(h.v[i].body.ptr);
                assert_true(id >= 0 && id < N);
                assert_int_equal(seen[id], 0); /* exactly once */
                seen[id] = 1;
            }
        }
        more = h.more;
        herald_msglist_free(&h);
        if (!more)
            break;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    print_message("%d acked before the kill, 1 in flight retried, %d sent after; "
                  "%d in history, 0 lost, 0 duplicated, 0 gaps\n",
                  acked, N - failed_at - 1, N);
    herald_client_close(ivy);
}

static void test_announce(void **state)
{
    const char *mem[] = {"boss", "e1", "e2", "e3"};
    herald_client *admin = connect_as("boss", true, NULL);
    herald_client *e1 = connect_as("e1", false, NULL);
    herald_client *e2 = connect_as("e2", false, NULL);
    herald_buf key = {0};
    herald_event *ev;
    herald_ack a;
    herald_strlist rd, un;
    (void)state;
    create(admin, "announce", "news", mem, 4);
    /* Members cannot post; the owner can. */
    assert_int_equal(herald_client_send(e1, "news", NULL, "x", 1, 0, &a), HERALD_EFORBIDDEN);
    send_text(admin, "news", "all hands at 10");
    ev = next_msg(e1, "news", 5000);
    assert_non_null(ev);
    if (ev->msg.kind == HERALD_MK_SYSTEM) {
        herald_event_free(ev);
        ev = next_msg(e1, "news", 5000);
        assert_non_null(ev);
    }
    assert_true(ev->msg.pos > 0); /* a position in its group, like every message */
    assert_int_equal(ev->msg.seq, 2);
    herald_event_free(ev);
    /* e2 goes offline, misses two, and catches up through its key. */
    while (herald_client_next_event(e2, 300, &ev) == 0)
        herald_event_free(ev);
    assert_int_equal(herald_client_sync_key(e2, &key), 0);
    herald_client_close(e2);
    send_text(admin, "news", "lunch moved");
    send_text(admin, "news", "offsite friday");
    e2 = connect_as("e2", false, &key);
    ev = next_msg(e2, "news", 5000);
    assert_non_null(ev);
    assert_int_equal(ev->msg.seq, 3);
    herald_event_free(ev);
    ev = next_msg(e2, "news", 5000);
    assert_non_null(ev);
    assert_int_equal(ev->msg.seq, 4);
    herald_event_free(ev);
    /* Receipts come from cursors. */
    assert_int_equal(herald_client_read(e1, "news", 4, NULL), 0);
    assert_int_equal(herald_client_receipts(admin, "news", 4, &rd, &un), 0);
    assert_int_equal(rd.n, 2); /* boss (sender) and e1 */
    assert_int_equal(un.n, 2); /* e2, e3 */
    herald_strlist_free(&rd);
    herald_strlist_free(&un);
    herald_buf_free(&key);
    herald_client_close(admin);
    herald_client_close(e1);
    herald_client_close(e2);
}

static void test_membership_events(void **state)
{
    const char *mem[] = {"own", "m1"};
    const char *add[] = {"m2"};
    herald_client *own = connect_as("own", false, NULL);
    herald_client *m2 = connect_as("m2", false, NULL);
    herald_conv_info info;
    herald_event *ev;
    (void)state;
    create(own, "group", "mem-1", mem, 2);
    send_text(own, "mem-1", "before m2 joined");
    assert_int_equal(herald_client_conv_add(own, "mem-1", add, 1, &info), 0);
    assert_int_equal(info.count, 3);
    herald_conv_info_free(&info);
    ev = next_msg(m2, "mem-1", 5000);
    assert_non_null(ev);
    assert_int_equal(ev->msg.kind, HERALD_MK_SYSTEM);
    assert_non_null(strstr(ev->msg.body.ptr, "\"event\":\"add\""));
    herald_event_free(ev);
    /* m2 leaves by itself. */
    assert_int_equal(herald_client_conv_remove(m2, "mem-1", (const char *[]){"m2"}, 1, NULL), 0);
    assert_int_equal(herald_client_send(m2, "mem-1", NULL, "x", 1, 0, NULL), HERALD_ENOT_MEMBER);
    herald_client_close(own);
    herald_client_close(m2);
}

/* Conversations spread over every shard group: a user offline misses
 * messages in all of them and catches up with one key (a position per
 * group), each conversation in order, nothing twice. */
static void test_many_groups_catch_up(void **state)
{
    enum { CONVS = 16, EACH = 40 }; /* 640 > one SYNC answer (500) */
    const char *mem[] = {"gus", "hal"};
    herald_client *gus = connect_as("gus", false, NULL);
    herald_client *hal = connect_as("hal", false, NULL);
    herald_buf key = {0};
    uint64_t next[CONVS];
    char id[16];
    herald_event *ev;
    int got = 0;
    (void)state;
    for (int i = 0; i < CONVS; i++) {
        snprintf(id, sizeof id, "mg-%d", i);
        create(gus, "single", id, mem, 2);
        next[i] = 2; /* seq 1: the create system message, seen live below */
    }
    while (herald_client_next_event(hal, 500, &ev) == 0)
        herald_event_free(ev);
    assert_int_equal(herald_client_sync_key(hal, &key), 0);
    herald_client_close(hal);
    for (int k = 0; k < EACH; k++)
        for (int i = 0; i < CONVS; i++) {
            snprintf(id, sizeof id, "mg-%d", i);
            send_text(gus, id, "x");
        }
    hal = connect_as("hal", false, &key);
    while (got < CONVS * EACH) {
        int i;
        int rc = herald_client_next_event(hal, 5000, &ev);
        if (rc)
            fail_msg("after %d events: %s", got, herald_err_name(rc));
        assert_int_equal(ev->type, HERALD_EV_MSG);
        i = atoi(ev->msg.conv.ptr + 3);
        assert_int_equal(ev->msg.seq, next[i]);
        next[i]++;
        got++;
        herald_event_free(ev);
    }
    assert_int_equal(herald_client_next_event(hal, 300, &ev), HERALD_ETIMEOUT);
    print_message("%d messages over %d conversations and every group, 0 lost, 0 duplicated\n",
                  got, CONVS);
    herald_buf_free(&key);
    herald_client_close(gus);
    herald_client_close(hal);
}

/* Tenant isolation: the same user and conversation ids in two tenants are
 * two different things; a user of A can never read, send to, receive from
 * or query B's conversations, and a token signed by A's secret claiming B
 * is rejected. */
static void test_tenant_isolation(void **state)
{
    it_server b;
    char tok[TOKEN_TEXT_MAX];
    const char *mem[] = {"alice", "bob"};
    herald_client *a_alice, *b_alice, *b_bob, *bad = NULL;
    herald_msglist h;
    herald_strlist rd, un;
    herald_conv_info info;
    herald_event *ev;
    uint64_t seq;
    (void)state;
    it_server_destroy(&srv);
    it_server_start(&srv, "--tenants demo,acme");
    it_server_as_tenant(&srv, "acme", &b);
    a_alice = connect_as("alice", false, NULL);
    create(a_alice, "group", "secret-room", mem, 2);
    seq = send_text(a_alice, "secret-room", "demo's plans");
    {
        /* acme's alice and bob: same ids, other tenant. */
        herald_client_opts o = {.timeout_ms = 5000};
        it_token(&b, "alice", false, 3600, tok, sizeof tok);
        assert_int_equal(herald_client_connect(b.addr, tok, &o, &b_alice), 0);
        it_token(&b, "bob", false, 3600, tok, sizeof tok);
        assert_int_equal(herald_client_connect(b.addr, tok, &o, &b_bob), 0);
    }
    assert_string_equal(herald_client_tenant(b_alice), "acme");
    assert_int_equal(herald_client_history(b_alice, "secret-room", 0, 10, &h), HERALD_ENOT_FOUND);
    assert_int_equal(herald_client_send(b_alice, "secret-room", NULL, "x", 1, 0, NULL),
                     HERALD_ENOT_FOUND);
    assert_int_equal(herald_client_receipts(b_alice, "secret-room", seq, &rd, &un),
                     HERALD_ENOT_FOUND);
    assert_int_equal(herald_client_conv_info(b_alice, "secret-room", &info), HERALD_ENOT_FOUND);
    assert_int_equal(herald_client_read(b_alice, "secret-room", seq, NULL), HERALD_ENOT_FOUND);
    /* acme may use the same conversation id: it is its own. */
    create(b_alice, "group", "secret-room", mem, 2);
    assert_int_equal(herald_client_history(b_alice, "secret-room", 0, 10, &h), 0);
    assert_int_equal(h.n, 1); /* only acme's create message */
    herald_msglist_free(&h);
    /* demo's new messages never reach acme's bob. */
    send_text(a_alice, "secret-room", "more plans");
    while (herald_client_next_event(b_bob, 500, &ev) == 0) {
        if (ev->type == HERALD_EV_MSG)
            assert_false(ev->msg.body.len == 10 && memcmp(ev->msg.body.ptr, "more plans", 10) == 0);
        herald_event_free(ev);
    }
    /* A token for acme signed with demo's secret. */
    {
        it_server forged = srv;
        herald_client_opts o = {.timeout_ms = 5000};
        snprintf(forged.tenant, sizeof forged.tenant, "acme");
        it_token(&forged, "alice", true, 3600, tok, sizeof tok);
        assert_int_equal(herald_client_connect(srv.addr, tok, &o, &bad), HERALD_EUNAUTHORIZED);
        assert_null(bad);
    }
    herald_client_close(a_alice);
    herald_client_close(b_alice);
    herald_client_close(b_bob);
}

/* A client waiting for events keeps an idle-limited connection alive with
 * heartbeats (the server advertises idle/3). */
static void test_heartbeat(void **state)
{
    herald_client *c;
    herald_event *ev;
    (void)state;
    it_server_destroy(&srv);
    it_server_start(&srv, "--idle-ms 900");
    c = connect_as("hb", false, NULL);
    assert_int_equal(herald_client_next_event(c, 3000, &ev), HERALD_ETIMEOUT);
    assert_int_equal(herald_client_ping(c, NULL), 0);
    herald_client_close(c);
}

/* A new device (no sync key) lists its conversations page by page and
 * pages each one's history: every message, once; a bad cursor is INVAL. */
static void test_new_device_lists(void **state)
{
    const char *mem[] = {"nd-a", "nd-b"};
    herald_client *a = connect_as("nd-a", false, NULL), *b;
    char id[16], *cursor = NULL;
    uint32_t convs = 0, msgs = 0, pages = 0;
    herald_convlist l;
    (void)state;
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "nd-%d", i);
        create(a, "group", id, mem, 2);
        for (int k = 0; k < i; k++)
            send_text(a, id, "m");
    }
    b = connect_as("nd-b", false, NULL);
    do {
        assert_int_equal(herald_client_conv_list(b, cursor, 2, &l), 0);
        free(cursor);
        cursor = l.cursor ? strdup(l.cursor) : NULL;
        pages++;
        for (uint32_t i = 0; i < l.n; i++) {
            uint64_t after = 0;
            bool more = true;
            assert_string_equal(l.kinds[i], "group");
            assert_int_equal(l.counts[i], 2);
            assert_int_equal(l.unread[i], l.last.v[i].seq);
            while (more) {
                herald_msglist h;
                char cid[64];
                snprintf(cid, sizeof cid, "%.*s", (int)l.last.v[i].conv.len,
                         l.last.v[i].conv.ptr);
                assert_int_equal(herald_client_history(b, cid, after, 2, &h), 0);
                for (uint32_t k = 0; k < h.n; k++) {
                    assert_int_equal(h.v[k].seq, after + 1);
                    after = h.v[k].seq;
                    msgs++;
                }
                more = h.more && h.n;
                herald_msglist_free(&h);
            }
            assert_int_equal(after, l.last.v[i].seq);
            convs++;
        }
        herald_convlist_free(&l);
    } while (cursor && pages < 10);
    assert_int_equal(convs, 5);
    assert_int_equal(pages, 3);
    assert_int_equal(msgs, 5 + 0 + 1 + 2 + 3 + 4); /* a create each, and the sends */
    assert_int_equal(herald_client_conv_list(b, "not a cursor", 2, &l), HERALD_EINVAL);
    herald_client_close(a);
    herald_client_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_multi_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_catch_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_in_flight_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_announce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_groups_catch_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_device_lists, setup, teardown),
    };
    herald_token_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
