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

/* CONV create without a kind is INVAL naming the kinds (not PROTOCOL);
 * reserved ids are INVAL; the connection stays usable. */
static void test_conv_create_errors(void **state)
{
    it_rx rx = {0};
    herald_frame f = {.type = HERALD_FT_CONV, .rid = 8, .op = herald_str_z("create")}, r;
    herald_str mem[1] = {herald_str_z("bob")};
    int fd = login("carol", false, &rx);
    (void)state;
    f.members = mem;
    f.n_members = 1;
    assert_true(it_raw_send_frame(fd, &f));
    assert_int_equal(it_raw_recv_frame(fd, &rx, &r), 0);
    assert_int_equal(r.type, HERALD_FT_ERROR);
    assert_int_equal(r.code, HERALD_EINVAL);
    assert_int_equal(r.ref, 8);
    assert_true(herald_str_eq(r.text, "kind required: single, group, customer_group or announce"));
    herald_frame_release(&r);
    f.kind = herald_str_z("group");
    f.conv = herald_str_z("ec-0123456789abcdef");
    f.rid = 9;
    assert_true(it_raw_send_frame(fd, &f));
    assert_int_equal(it_raw_recv_frame(fd, &rx, &r), 0);
    assert_int_equal(r.type, HERALD_FT_ERROR);
    assert_int_equal(r.code, HERALD_EINVAL);
    assert_non_null(memmem(r.text.ptr, r.text.len, "reserved", 8));
    herald_frame_release(&r);
    f.conv = herald_str_z("fine");
    f.rid = 10;
    assert_true(it_raw_send_frame(fd, &f));
    recv_type(fd, &rx, HERALD_FT_CONV_RESULT, &r);
    herald_frame_release(&r);
    close(fd);
    herald_buf_free(&rx.buf);
}

/* The shard group of a conversation (CONV info). */
static uint32_t conv_group(int fd, it_rx *rx, const char *id)
{
    herald_frame f = {.type = HERALD_FT_CONV, .rid = 6, .op = herald_str_z("info"),
                      .conv = herald_str_z(id)}, r;
    uint32_t g;
    assert_true(it_raw_send_frame(fd, &f));
    recv_type(fd, rx, HERALD_FT_CONV_RESULT, &r);
    g = r.group;
    herald_frame_release(&r);
    return g;
}

/* Receives the next frame and checks its length against the advertised cap
 * (it_raw_recv_frame refuses frames over the default 1 MiB cap with TOO_BIG). */
static void recv_under_cap(int fd, it_rx *rx, uint32_t type, herald_frame *r)
{
    for (int i = 0; i < 100; i++) {
        int rc = it_raw_recv_frame(fd, rx, r);
        if (rc)
            fail_msg("frame type %u: receive failed with %s (over the 1 MiB cap?)", type,
                     herald_err_name(rc));
        assert_true(rx->last - HERALD_FRAME_HEADER <= HERALD_FRAME_MAX_DEFAULT);
        if (r->type == type)
            return;
        if (r->type == HERALD_FT_ERROR)
            fail_msg("unexpected ERROR %u: %.*s", r->code, (int)r->text.len, r->text.ptr);
        herald_frame_release(r);
    }
    fail_msg("frame type %u never came", type);
}

/* The largest SEND frame the cap admits, with 128-byte ids everywhere: the
 * server either refuses it (the body leaves no room for the delivery's
 * envelope) or every frame carrying it (DELIVER, HISTORY_RESULT,
 * SYNC_RESULT) stays under WELCOME's max_frame. */
static void test_frames_under_cap(void **state)
{
    char a[129], b[129], conv[129];
    it_rx rxa = {0}, rxb = {0};
    herald_frame f = {.type = HERALD_FT_SEND, .rid = 20}, r;
    herald_buf enc = {0};
    char *body = malloc(HERALD_FRAME_MAX_DEFAULT);
    uint32_t len = HERALD_FRAME_MAX_DEFAULT, refused_at = 0;
    int fa, fb;
    (void)state;
    memset(a, 'a', 128);
    memset(b, 'b', 128);
    memset(conv, 'c', 128); /* its group must not be the first (see below) */
    a[128] = b[128] = conv[128] = '\0';
    assert_non_null(body);
    memset(body, 'x', HERALD_FRAME_MAX_DEFAULT);
    fa = login(a, false, &rxa);
    fb = login(b, false, &rxb);
    {
        const char *const mem[] = {b};
        /* A conversation whose group is not the lowest, so others sync first. */
        for (char ch = 'c'; ch <= 'z'; ch++) {
            memset(conv, ch, 128);
            make_conv(fa, &rxa, conv, mem, 1);
            if (conv_group(fa, &rxa, conv) > 1)
                break;
        }
    }
    f.conv = herald_str_z(conv);
    f.cmid = herald_str_z(b); /* 128 bytes too */
    /* Largest body whose SEND frame is within the cap. */
    for (;; len--) {
        f.body = (herald_str){.ptr = body, .len = len};
        enc.len = 0;
        assert_int_equal(herald_frame_encode(&f, &enc), 0);
        if (enc.len - HERALD_FRAME_HEADER <= HERALD_FRAME_MAX_DEFAULT)
            break;
    }
    /* Downwards until the server takes it; every refusal is a clear TOO_BIG. */
    for (int tries = 0;; tries++) {
        f.body.len = len;
        f.rid = 100 + (uint64_t)tries;
        assert_true(it_raw_send_frame(fa, &f));
        for (;;) { /* the sender's own session gets the push too */
            int rc = it_raw_recv_frame(fa, &rxa, &r);
            if (rc)
                fail_msg("sender: receive failed with %s (a frame over the cap?)",
                         herald_err_name(rc));
            if (r.type != HERALD_FT_DELIVER)
                break;
            herald_frame_release(&r);
        }
        if (r.type == HERALD_FT_ACK) {
            herald_frame_release(&r);
            break;
        }
        assert_int_equal(r.type, HERALD_FT_ERROR);
        assert_int_equal(r.code, HERALD_ETOO_BIG);
        assert_non_null(memmem(r.text.ptr, r.text.len, "envelope", 8));
        herald_frame_release(&r);
        if (!refused_at)
            refused_at = len;
        len -= 1024;
        assert_true(tries < 64);
    }
    print_message("largest SEND frame body %u refused, %u taken\n", refused_at, len);
    for (int i = 0;; i++) { /* the create message first */
        recv_under_cap(fb, &rxb, HERALD_FT_DELIVER, &r);
        if (r.msg.body.len == len)
            break;
        herald_frame_release(&r);
        assert_true(i < 4);
    }
    herald_frame_release(&r);
    {
        herald_frame h = {.type = HERALD_FT_HISTORY, .rid = 30, .conv = herald_str_z(conv)};
        assert_true(it_raw_send_frame(fb, &h));
        recv_under_cap(fb, &rxb, HERALD_FT_HISTORY_RESULT, &r);
        assert_true(r.n_msgs >= 1);
        herald_frame_release(&r);
    }
    /* 100 kB messages in other conversations (other groups, before and
     * after the big one's): a SYNC from scratch pages them around it. */
    for (int i = 0, below = 0; below < 8; i++) {
        char id[16];
        const char *const mem[] = {b};
        assert_true(i < 200);
        herald_frame sm = {.type = HERALD_FT_SEND, .rid = 40 + (uint64_t)i,
                           .body = {.ptr = body, .len = 100000}};
        snprintf(id, sizeof id, "small%d", i);
        make_conv(fa, &rxa, id, mem, 1);
        sm.conv = herald_str_z(id);
        assert_true(it_raw_send_frame(fa, &sm));
        recv_under_cap(fa, &rxa, HERALD_FT_ACK, &r);
        herald_frame_release(&r);
        below += conv_group(fa, &rxa, id) < conv_group(fa, &rxa, conv);
    }
    {
        herald_frame y = {.type = HERALD_FT_SYNC, .rid = 31};
        uint32_t got = 0;
        bool big = false;
        for (int page = 0; page < 40; page++) {
            herald_sync_group *sg;
            bool more;
            assert_true(it_raw_send_frame(fb, &y));
            recv_under_cap(fb, &rxb, HERALD_FT_SYNC_RESULT, &r);
            got += r.n_msgs;
            print_message("sync page %d: %u messages, %zu bytes\n", page, r.n_msgs, rxb.last);
            for (uint32_t m = 0; m < r.n_msgs; m++)
                big |= r.msgs[m].body.len == len;
            more = r.more;
            /* The next page starts at the answer's key. */
            sg = calloc(r.n_sync_groups + 1, sizeof *sg);
            memcpy(sg, r.sync_groups, r.n_sync_groups * sizeof *sg);
            free(y.sync_groups);
            y.sync_groups = sg;
            y.n_sync_groups = r.n_sync_groups;
            herald_frame_release(&r);
            if (!more)
                break;
        }
        free(y.sync_groups);
        assert_true(big);
        assert_true(got >= 1 + 8 + 8); /* create messages, the 100 kB ones, the big one */
    }
    herald_buf_free(&enc);
    free(body);
    close(fa);
    close(fb);
    herald_buf_free(&rxa.buf);
    herald_buf_free(&rxb.buf);
    assert_serving();
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
        cmocka_unit_test_setup_teardown(test_conv_create_errors, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_frames_under_cap, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup_rate, teardown),
        cmocka_unit_test_setup_teardown(test_slow_consumer, setup_slow, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup_idle, teardown),
    };
    herald_token_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
