/*
 * it_protocol.c — raw-frame integration tests against a real heraldd dev:
 * authentication, malformed and oversized frames, limits (rate, output
 * buffer, idle), and that the server keeps serving everyone else.
 */
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static it_server srv;

/* Each test starts its own server with the limits it exercises. */
static int setup_default(void **state)
{
    (void)state;
    it_server_start(&srv, NULL);
    return 0;
}

static int setup_rate(void **state)
{
    (void)state;
    it_server_start(&srv, "--rate 50");
    return 0;
}

static int setup_slow(void **state)
{
    (void)state;
    it_server_start(&srv, "--out-cap 131072");
    return 0;
}

static int setup_idle(void **state)
{
    (void)state;
    it_server_start(&srv, "--idle-ms 1000");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    it_server_destroy(&srv);
    return 0;
}

/* Connects and authenticates as user; returns fd. */
static int login_rcvbuf(const char *user, bool admin, it_rx *rx, int rcvbuf)
{
    char tok[TOKEN_TEXT_MAX];
    herald_frame f = {.type = HERALD_FT_HELLO, .version = 1}, r;
    int fd = it_raw_connect_rcvbuf(&srv, rcvbuf);

    it_token(&srv, user, admin, 3600, tok, sizeof tok);
    f.token = herald_str_z(tok);
    assert_true(it_raw_send_frame(fd, &f));
    assert_int_equal(it_raw_recv_frame(fd, rx, &r), 0);
    assert_int_equal(r.type, HERALD_FT_WELCOME);
    assert_true(herald_str_eq(r.user, user));
    herald_frame_release(&r);
    return fd;
}

static int login(const char *user, bool admin, it_rx *rx)
{
    return login_rcvbuf(user, admin, rx, 0);
}

/* Expects an ERROR with code, then the connection closed. */
static void expect_error_close(int fd, it_rx *rx, int code)
{
    herald_frame r;
    int rc = it_raw_recv_frame(fd, rx, &r);
    assert_int_equal(rc, 0);
    assert_int_equal(r.type, HERALD_FT_ERROR);
    assert_int_equal(r.code, code);
    herald_frame_release(&r);
    rc = it_raw_recv_frame(fd, rx, &r);
    assert_int_equal(rc, HERALD_ECLOSED);
}

/* Receives frames until one of `type` (skipping pushes); returns it. */
static void recv_type(int fd, it_rx *rx, uint32_t type, herald_frame *r)
{
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(it_raw_recv_frame(fd, rx, r), 0);
        if (r->type == type)
            return;
        if (r->type == HERALD_FT_ERROR)
            fail_msg("unexpected ERROR %u: %.*s", r->code, (int)r->text.len,
                     r->text.ptr);
        herald_frame_release(r);
    }
    fail_msg("frame type %u never came", type);
}

/* A working client round trip proves the server still serves others. */
static void assert_serving(void)
{
    it_rx rx = {0};
    herald_frame p = {.type = HERALD_FT_PING, .rid = 77}, r;
    int fd = login("probe", false, &rx);
    assert_true(it_raw_send_frame(fd, &p));
    recv_type(fd, &rx, HERALD_FT_PONG, &r);
    assert_int_equal(r.rid, 77);
    herald_frame_release(&r);
    close(fd);
    herald_buf_free(&rx.buf);
}

static void test_bad_tokens(void **state)
{
    struct {
        const char *what; /* case */
        int code;         /* expected error */
    } cases[] = {{"garbage", HERALD_EUNAUTHORIZED},
                 {"expired", HERALD_EEXPIRED},
                 {"foreign", HERALD_EUNAUTHORIZED},
                 {"tampered", HERALD_EUNAUTHORIZED}};
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char tok[TOKEN_TEXT_MAX];
        it_rx rx = {0};
        herald_frame f = {.type = HERALD_FT_HELLO};
        int fd = it_raw_connect(&srv);
        if (i == 0) {
            snprintf(tok, sizeof tok, "not-a-token");
        } else if (i == 1) {
            it_token(&srv, "alice", false, -10, tok, sizeof tok);
        } else if (i == 2) {
            /* Same tenant name, another secret: tenant B's token for A. */
            it_server other = srv;
            token_secret_generate(other.secret);
            it_token(&other, "alice", false, 3600, tok, sizeof tok);
        } else {
            it_token(&srv, "alice", false, 3600, tok, sizeof tok);
            tok[3] = tok[3] == 'A' ? 'B' : 'A';
        }
        f.token = herald_str_z(tok);
        assert_true(it_raw_send_frame(fd, &f));
        expect_error_close(fd, &rx, cases[i].code);
        close(fd);
        herald_buf_free(&rx.buf);
    }
    assert_serving();
}

static void test_request_before_hello(void **state)
{
    it_rx rx = {0};
    herald_frame f = {.type = HERALD_FT_SEND, .conv = herald_str_z("x"),
                      .body = herald_str_z("hi")};
    int fd = it_raw_connect(&srv);
    (void)state;
    assert_true(it_raw_send_frame(fd, &f));
    expect_error_close(fd, &rx, HERALD_EUNAUTHORIZED);
    close(fd);
    herald_buf_free(&rx.buf);
}

static void test_malformed_frames(void **state)
{
    static const struct {
        const char *what;   /* case */
        const char *bytes;  /* raw bytes after login */
        size_t len;
        int code;           /* expected ERROR code */
    } cases[] = {
        {"oversized header", "\x7f\xff\xff\xff", 4, HERALD_ETOO_BIG},
        {"zero length", "\x00\x00\x00\x00", 4, HERALD_EPROTOCOL},
        {"not a map", "\x00\x00\x00\x01\x01", 5, HERALD_EPROTOCOL},
        {"array count bomb", "\x00\x00\x00\x05\xdd\xff\xff\xff\xff", 9, HERALD_EPROTOCOL},
        {"map count bomb", "\x00\x00\x00\x05\xdf\x7f\xff\xff\xff", 9, HERALD_EPROTOCOL},
        {"depth bomb",
         "\x00\x00\x00\x14\x81\xa1t\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x01",
         24, HERALD_EPROTOCOL},
        {"wrong type", "\x00\x00\x00\x05\x81\xa1t\xa1x", 9, HERALD_EPROTOCOL},
        {"unknown type", "\x00\x00\x00\x05\x81\xa1t\xcc\xc8", 9, HERALD_EPROTOCOL},
        {"truncated map", "\x00\x00\x00\x03\x82\xa1t", 7, HERALD_EPROTOCOL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        it_rx rx = {0};
        int fd = login("mallory", false, &rx);
        print_message("case: %s\n", cases[i].what);
        assert_true(it_raw_send(fd, cases[i].bytes, cases[i].len));
        expect_error_close(fd, &rx, cases[i].code);
        close(fd);
        herald_buf_free(&rx.buf);
        assert_serving();
    }
}

/* Creates a group conv through raw frames as admin. */
static void make_conv(int fd, it_rx *rx, const char *id, const char *const *members,
                      uint32_t n)
{
    herald_str mv[16];
    herald_frame f = {.type = HERALD_FT_CONV, .rid = 5, .op = herald_str_z("create"),
                      .kind = herald_str_z("group"), .conv = herald_str_z(id)}, r;
    for (uint32_t i = 0; i < n; i++)
        mv[i] = herald_str_z(members[i]);
    f.members = mv;
    f.n_members = n;
    assert_true(it_raw_send_frame(fd, &f));
    recv_type(fd, rx, HERALD_FT_CONV_RESULT, &r);
    assert_true(herald_str_eq(r.conv, id));
    herald_frame_release(&r);
}

static void test_rate_limit(void **state)
{
    it_rx rx = {0};
    const char *mem[] = {"rita", "sam"};
    int fd = login("rita", false, &rx);
    int acks = 0, limited = 0;
    (void)state;
    make_conv(fd, &rx, "rate-conv", mem, 2);
    /* 50 req/s, burst 100: 300 back-to-back sends must hit the limit. */
    for (int i = 0; i < 300; i++) {
        herald_frame f = {.type = HERALD_FT_SEND, .rid = (uint64_t)(100 + i),
                          .conv = herald_str_z("rate-conv"), .body = herald_str_z("x")};
        assert_true(it_raw_send_frame(fd, &f));
    }
    while (acks + limited < 300) {
        herald_frame r;
        assert_int_equal(it_raw_recv_frame(fd, &rx, &r), 0);
        if (r.type == HERALD_FT_ACK)
            acks++;
        else if (r.type == HERALD_FT_ERROR) {
            assert_int_equal(r.code, HERALD_ERATE_LIMITED);
            assert_true(r.ref >= 100);
            limited++;
        }
        herald_frame_release(&r);
    }
    assert_true(acks >= 50);
    assert_true(limited > 0);
    close(fd);
    herald_buf_free(&rx.buf);
    assert_serving();
}

static void test_slow_consumer(void **state)
{
    it_rx rs = {0}, rr = {0};
    const char *mem[] = {"sid", "sloth"};
    int sender = login("sid", false, &rs);
    int sloth = login_rcvbuf("sloth", false, &rr, 4096); /* never reads */
    static char body[16384];
    int acked = 0;
    uint64_t last_seq = 0;
    (void)state;
    memset(body, 'z', sizeof body);
    make_conv(sender, &rs, "slow-conv", mem, 2);
    /* 128 KiB output cap: 600 × 16 KiB pushes cannot all be queued (the
     * sloth's receive window is 4 KiB; the kernel's send buffer takes a few
     * MiB at most). */
    for (int i = 0; i < 600; i++) {
        herald_frame f = {.type = HERALD_FT_SEND, .rid = (uint64_t)(i + 1),
                          .conv = herald_str_z("slow-conv"),
                          .body = {.ptr = body, .len = sizeof body}}, r;
        assert_true(it_raw_send_frame(sender, &f));
        recv_type(sender, &rs, HERALD_FT_ACK, &r);
        acked++;
        last_seq = r.seq;
        herald_frame_release(&r);
    }
    assert_int_equal(acked, 600);
    /* The sloth was cut off (the server logs SLOW_CONSUMER and sends it
     * as an ERROR frame, best effort: a peer that does not read may never
     * see it once the linger expires). What it reads is whole frames, any
     * ERROR is SLOW_CONSUMER, and then the connection is closed. */
    {
        herald_frame r;
        int rc;
        for (int i = 0; i < 100000; i++) {
            rc = it_raw_recv_frame(sloth, &rr, &r);
            if (rc)
                break;
            if (r.type == HERALD_FT_ERROR)
                assert_int_equal(r.code, HERALD_ESLOW_CONSUMER);
            else
                assert_int_equal(r.type, HERALD_FT_DELIVER);
            herald_frame_release(&r);
        }
        assert_int_equal(rc, HERALD_ECLOSED);
    }
    close(sloth);
    herald_buf_free(&rr.buf);
    /* Nothing acknowledged was lost: history (paged: each answer fits in
     * one frame) has every message, gap-free. */
    {
        uint64_t after = 0;
        bool more = true;
        for (int page = 0; more && page < 1000; page++) {
            herald_frame h = {.type = HERALD_FT_HISTORY, .rid = 9,
                              .conv = herald_str_z("slow-conv"), .after = after,
                              .limit = 1000}, r;
            assert_true(it_raw_send_frame(sender, &h));
            recv_type(sender, &rs, HERALD_FT_HISTORY_RESULT, &r);
            assert_true(r.n_msgs > 0 || !r.more);
            for (uint32_t i = 0; i < r.n_msgs; i++)
                assert_int_equal(r.msgs[i].seq, ++after);
            more = r.more;
            herald_frame_release(&r);
        }
        /* seq 1 is the create system message. */
        assert_int_equal(after, last_seq);
    }
    close(sender);
    herald_buf_free(&rs.buf);
    assert_serving();
}

static void test_idle_timeout(void **state)
{
    it_rx rx = {0};
    int fd = login("idler", false, &rx);
    uint64_t t0 = it_now_ms();
    (void)state;
    expect_error_close(fd, &rx, HERALD_EIDLE);
    assert_true(it_now_ms() - t0 < 4000);
    close(fd);
    herald_buf_free(&rx.buf);
}

static void test_unsupported_frame(void **state)
{
    it_rx rx = {0};
    herald_frame f = {.type = HERALD_FT_ACK, .rid = 3}, r;
    int fd = login("odd", false, &rx);
    (void)state;
    assert_true(it_raw_send_frame(fd, &f));
    assert_int_equal(it_raw_recv_frame(fd, &rx, &r), 0);
    assert_int_equal(r.type, HERALD_FT_ERROR);
    assert_int_equal(r.code, HERALD_EUNSUPPORTED);
    assert_int_equal(r.ref, 3);
    herald_frame_release(&r);
    assert_serving();
    close(fd);
    herald_buf_free(&rx.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_tokens, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_request_before_hello, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_frames, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_frame, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup_rate, teardown),
        cmocka_unit_test_setup_teardown(test_slow_consumer, setup_slow, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup_idle, teardown),
    };
    herald_token_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
