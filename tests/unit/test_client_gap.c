/*
 * test_client_gap.c — libherald's delivery logic against a scripted fake
 * server on 127.0.0.1: duplicates dropped, a gap triggers SYNC which fills
 * it in order, pushes arriving during a request are queued, server ERRORs
 * map to codes, a saved key syncs at connect, an oversized frame and a
 * closed socket are reported, and a silent server times out.
 */
#include <arpa/inet.h>
#include <herald/client.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

/* A fake server: one connection, a script run by a thread. */
typedef struct fake {
    int lfd;              /* listener */
    int fd;               /* accepted connection */
    char addr[32];        /* "127.0.0.1:port" */
    herald_buf rx;        /* received bytes */
    size_t last;          /* bytes of the frame returned last */
    void (*script)(struct fake *f); /* what to do */
    pthread_t th;         /* runs script */
    int failures;         /* expectations that did not hold */
} fake;

static void fk_send(fake *f, const herald_frame *fr)
{
    herald_buf b = {0};
    assert_int_equal(herald_frame_encode(fr, &b), 0);
    if (write(f->fd, b.data, b.len) != (ssize_t)b.len)
        f->failures++;
    herald_buf_free(&b);
}

/* Receives one frame (valid until the next call); false on EOF. */
static bool fk_recv(fake *f, herald_frame *fr)
{
    if (f->last) {
        herald_buf_consume(&f->rx, f->last);
        f->last = 0;
    }
    for (;;) {
        size_t flen = 0;
        ssize_t n;
        if (herald_frame_peek(f->rx.data, f->rx.len, 0, &flen) != 0)
            return false;
        if (flen) {
            f->last = flen;
            return herald_frame_decode(f->rx.data + 4, flen - 4, NULL, fr) == 0;
        }
        herald_buf_reserve(&f->rx, 4096);
        n = read(f->fd, f->rx.data + f->rx.len, 4096);
        if (n <= 0)
            return false;
        f->rx.len += (size_t)n;
    }
}

static void *fk_main(void *p)
{
    fake *f = p;
    f->fd = accept(f->lfd, NULL, NULL);
    if (f->fd >= 0) {
        f->script(f);
        close(f->fd);
    }
    return NULL;
}

static void fk_start(fake *f, void (*script)(fake *))
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof a;
    memset(f, 0, sizeof *f);
    f->script = script;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 1), 0);
    getsockname(f->lfd, (struct sockaddr *)&a, &al);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%u", ntohs(a.sin_port));
    pthread_create(&f->th, NULL, fk_main, f);
}

static void fk_join(fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
    herald_buf_free(&f->rx);
    assert_int_equal(f->failures, 0);
}

/* HELLO → WELCOME at position {0: useq}. */
static void fk_welcome(fake *f, uint64_t useq)
{
    herald_frame h, w = {.type = HERALD_FT_WELCOME, .user = herald_str_z("bob"),
                         .tenant = herald_str_z("t"), .version = 1};
    herald_sync_group g = {.group = 0, .useq = useq};
    if (!fk_recv(f, &h) || h.type != HERALD_FT_HELLO) {
        f->failures++;
        return;
    }
    w.rid = h.rid;
    herald_frame_release(&h);
    w.sync_groups = &g;
    w.n_sync_groups = 1;
    fk_send(f, &w);
}

static herald_msg msg(uint64_t seq, uint64_t useq)
{
    return (herald_msg){.conv = herald_str_z("c"), .seq = seq, .from = herald_str_z("al"),
                        .body = herald_str_z("x"), .useq = useq};
}

static void fk_deliver(fake *f, uint64_t seq, uint64_t useq)
{
    herald_frame d = {.type = HERALD_FT_DELIVER, .msg = msg(seq, useq)};
    fk_send(f, &d);
}

/* Answers one SYNC from useq `from` with messages from+1..to. */
static void fk_sync(fake *f, uint64_t from, uint64_t to)
{
    herald_frame s, r = {.type = HERALD_FT_SYNC_RESULT};
    herald_msg v[16];
    herald_sync_group g = {.group = 0, .useq = to};
    if (!fk_recv(f, &s) || s.type != HERALD_FT_SYNC || s.n_sync_groups != 1 ||
        s.sync_groups[0].useq != from) {
        f->failures++;
        herald_frame_release(&s);
        return;
    }
    r.rid = s.rid;
    herald_frame_release(&s);
    for (uint64_t u = from + 1; u <= to; u++)
        v[u - from - 1] = msg(u + 10, u);
    r.msgs = v;
    r.n_msgs = (uint32_t)(to - from);
    r.sync_groups = &g;
    r.n_sync_groups = 1;
    fk_send(f, &r);
}

static void script_gap(fake *f)
{
    fk_welcome(f, 0);
    fk_deliver(f, 11, 1);
    fk_deliver(f, 11, 1); /* duplicate */
    fk_deliver(f, 14, 4); /* gap: 2 and 3 missing */
    fk_sync(f, 1, 4);
    fk_deliver(f, 14, 4); /* late duplicate */
    fk_deliver(f, 15, 5);
    {
        herald_frame x;
        fk_recv(f, &x); /* wait for the client to close */
    }
}

static herald_client *connect_fake(fake *f, const herald_buf *key)
{
    herald_client *c = NULL;
    herald_client_opts o = {.timeout_ms = 2000};
    if (key) {
        o.sync_key = key->data;
        o.sync_key_len = key->len;
    }
    assert_int_equal(herald_client_connect(f->addr, "tok", &o, &c), 0);
    return c;
}

static void test_dup_and_gap(void **state)
{
    fake f;
    herald_client *c;
    uint64_t want[] = {1, 2, 3, 4, 5};
    herald_buf key = {0};
    (void)state;
    fk_start(&f, script_gap);
    c = connect_fake(&f, NULL);
    for (size_t i = 0; i < 5; i++) {
        herald_event *ev;
        assert_int_equal(herald_client_next_event(c, 2000, &ev), 0);
        assert_int_equal(ev->type, HERALD_EV_MSG);
        assert_int_equal(ev->msg.useq, want[i]);
        herald_event_free(ev);
    }
    {
        herald_event *ev;
        assert_int_equal(herald_client_next_event(c, 200, &ev), HERALD_ETIMEOUT);
    }
    assert_int_equal(herald_client_sync_key(c, &key), 0);
    herald_client_close(c);
    fk_join(&f);
    herald_buf_free(&key);
}

static void script_saved_key(fake *f)
{
    fk_welcome(f, 9);
    fk_sync(f, 3, 5); /* the client's saved key says 3 */
    fk_deliver(f, 16, 6);
    {
        herald_frame x;
        fk_recv(f, &x);
    }
}

static void test_saved_key_syncs_first(void **state)
{
    fake f;
    herald_client *c;
    herald_buf key = {0};
    herald_frame kf = {.type = HERALD_FT_SYNC};
    herald_sync_group g = {.group = 0, .useq = 3};
    (void)state;
    kf.sync_groups = &g;
    kf.n_sync_groups = 1;
    assert_int_equal(herald_frame_encode(&kf, &key), 0);
    fk_start(&f, script_saved_key);
    c = connect_fake(&f, &key);
    for (uint64_t u = 4; u <= 6; u++) {
        herald_event *ev;
        assert_int_equal(herald_client_next_event(c, 2000, &ev), 0);
        assert_int_equal(ev->msg.useq, u);
        herald_event_free(ev);
    }
    herald_client_close(c);
    fk_join(&f);
    herald_buf_free(&key);
}

static void script_push_during_request(fake *f)
{
    herald_frame s, e = {.type = HERALD_FT_ERROR, .code = HERALD_ENOT_MEMBER,
                         .text = herald_str_z("not a member")};
    fk_welcome(f, 0);
    if (!fk_recv(f, &s) || s.type != HERALD_FT_SEND) {
        f->failures++;
        return;
    }
    e.ref = s.rid;
    herald_frame_release(&s);
    fk_deliver(f, 11, 1); /* a push before the answer */
    fk_send(f, &e);
    {
        herald_frame x;
        fk_recv(f, &x);
    }
}

static void test_push_during_request_and_error(void **state)
{
    fake f;
    herald_client *c;
    herald_event *ev;
    (void)state;
    fk_start(&f, script_push_during_request);
    c = connect_fake(&f, NULL);
    assert_int_equal(herald_client_send(c, "c", NULL, "x", 1, 0, NULL), HERALD_ENOT_MEMBER);
    assert_string_equal(herald_client_last_error(c), "not a member");
    assert_int_equal(herald_client_next_event(c, 0, &ev), 0);
    assert_int_equal(ev->msg.useq, 1);
    herald_event_free(ev);
    herald_client_close(c);
    fk_join(&f);
}

static void script_oversized(fake *f)
{
    static const uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};
    fk_welcome(f, 0);
    if (write(f->fd, big, 4) != 4)
        f->failures++;
    {
        herald_frame x;
        fk_recv(f, &x);
    }
}

static void test_oversized_and_closed(void **state)
{
    fake f;
    herald_client *c;
    herald_event *ev;
    (void)state;
    fk_start(&f, script_oversized);
    c = connect_fake(&f, NULL);
    assert_int_equal(herald_client_next_event(c, 2000, &ev), HERALD_ETOO_BIG);
    assert_int_equal(herald_client_ping(c, NULL), HERALD_ECLOSED);
    herald_client_close(c);
    fk_join(&f);
}

static void script_silent(fake *f)
{
    herald_frame x;
    fk_welcome(f, 0);
    fk_recv(f, &x); /* the PING, never answered */
    fk_recv(f, &x);
}

static void test_timeout(void **state)
{
    fake f;
    herald_client *c = NULL;
    herald_client_opts o = {.timeout_ms = 300};
    (void)state;
    fk_start(&f, script_silent);
    assert_int_equal(herald_client_connect(f.addr, "tok", &o, &c), 0);
    assert_int_equal(herald_client_ping(c, NULL), HERALD_ETIMEOUT);
    herald_client_close(c);
    fk_join(&f);
}

static void test_bad_key_bytes(void **state)
{
    herald_client *c = NULL;
    herald_client_opts o = {.sync_key = (const uint8_t *)"garbage", .sync_key_len = 7};
    (void)state;
    assert_int_equal(herald_client_connect("127.0.0.1:1", "tok", &o, &c), HERALD_EINVAL);
    assert_null(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dup_and_gap),
        cmocka_unit_test(test_saved_key_syncs_first),
        cmocka_unit_test(test_push_during_request_and_error),
        cmocka_unit_test(test_oversized_and_closed),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_bad_key_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
