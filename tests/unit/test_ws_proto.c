/* test_ws_proto.c — the WebSocket parts of the session tier without a
 * socket (broker/session/ws_proto.h): the RFC 6455 accept key example, the
 * Upgrade parser's statuses, the Origin list, frame headers at the length
 * boundaries, the receive state machine (one-frame messages unmasked in
 * place, fragments reassembled across partial input, control frames
 * between fragments, the cap from the header before the payload), and the
 * close code table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <herald/error.h>

#include "ws_proto.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static int parse(const char *head, ws_http_req *rq)
{
    return ws_http_parse((const uint8_t *)head, strlen(head), rq);
}

static void test_accept_key(void **state)
{
    char out[29];
    (void)state;
    /* RFC 6455 section 1.3. */
    assert_int_equal(ws_accept_key(KEY, strlen(KEY), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_http(void **state)
{
    ws_http_req rq;
    const char *ok = "GET /ws?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n"
                     "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: https://a.example\r\n"
                     "Sec-WebSocket-Protocol: chat, herald\r\n\r\nrest";
    char big[WS_HTTP_MAX + 64];
    (void)state;

    assert_int_equal(parse(ok, &rq), WS_HTTP_OK);
    assert_int_equal(rq.head_len, strlen(ok) - 4);
    assert_int_equal(rq.key_len, 24);
    assert_memory_equal(rq.key, KEY, 24);
    assert_int_equal(rq.origin_len, strlen("https://a.example"));
    assert_true(rq.herald_proto);
    /* Every prefix short of the blank line is partial. */
    for (size_t n = 0; n < strlen(ok) - 4; n++)
        assert_int_equal(ws_http_parse((const uint8_t *)ok, n, &rq), WS_HTTP_PARTIAL);

    assert_int_equal(parse("GET /other HTTP/1.1\r\nHost: h\r\n\r\n", &rq), 404);
    assert_int_equal(parse("GET /wss HTTP/1.1\r\nHost: h\r\n\r\n", &rq), 404);
    assert_int_equal(parse("POST /ws HTTP/1.1\r\nHost: h\r\n\r\n", &rq), 400);
    assert_int_equal(parse("GET /ws HTTP/1.0\r\nHost: h\r\n\r\n", &rq), 400);
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nHost: h\r\n\r\n", &rq), 400);
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
                           "Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: "
                           "13\r\n\r\n",
                           &rq),
                     400);
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
                           "Upgrade\r\nSec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: "
                           "8\r\n\r\n",
                           &rq),
                     426);
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: "
                           "Upgrade\r\nSec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: "
                           "13\r\n\r\n",
                           &rq),
                     400); /* no Host */
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", &rq), 400);
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /ws HTTP/1.1\r\nX: ", 21);
    assert_int_equal(ws_http_parse((const uint8_t *)big, sizeof big, &rq), 431);
    assert_int_equal(ws_http_parse((const uint8_t *)big, WS_HTTP_MAX - 1, &rq),
                     WS_HTTP_PARTIAL);
}

static void test_origins(void **state)
{
    const char *list = "https://app.example, http://localhost:8080";
    (void)state;
    assert_true(ws_origin_allowed(list, "https://app.example", 19));
    assert_true(ws_origin_allowed(list, "HTTP://LOCALHOST:8080", 21));
    assert_false(ws_origin_allowed(list, "https://app.example.evil", 24));
    assert_false(ws_origin_allowed(list, "https://app.exampl", 18));
    assert_false(ws_origin_allowed(list, "", 0));
    assert_true(ws_origin_allowed("", "https://x", 9));
    assert_true(ws_origin_allowed(NULL, "https://x", 9));
}

static void test_headers(void **state)
{
    const uint64_t lens[] = {0, 125, 126, 65535, 65536, 1ull << 40};
    const size_t want[] = {2, 2, 4, 4, 10, 10};
    (void)state;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t h[10];
        ws_frame_hdr fh;
        size_t n = ws_frame_header(h, WS_OP_BINARY, lens[i]);
        assert_int_equal(n, want[i]);
        assert_int_equal(ws_frame_parse(h, n, &fh), (int)n);
        assert_true(fh.len == lens[i] && fh.fin && !fh.masked);
        assert_int_equal(ws_frame_parse(h, n - 1, &fh), WS_FRAME_PARTIAL);
    }
    {
        /* Not the minimal length encoding; RSV bits; a long ping. */
        const uint8_t nonmin[] = {0x82, 126, 0, 5};
        const uint8_t rsv[] = {0xc2, 0};
        const uint8_t ping[] = {0x89, 126, 0, 200};
        ws_frame_hdr fh;
        assert_int_equal(ws_frame_parse(nonmin, sizeof nonmin, &fh), WS_FRAME_EPROTO);
        assert_int_equal(ws_frame_parse(rsv, sizeof rsv, &fh), WS_FRAME_EPROTO);
        assert_int_equal(ws_frame_parse(ping, sizeof ping, &fh), WS_FRAME_EPROTO);
    }
}

/* Appends a masked client frame. */
static size_t client_frame(uint8_t *out, uint8_t op, bool fin, const void *p, size_t n)
{
    const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t h = ws_frame_header(out, op, n);
    out[0] = (uint8_t)((fin ? 0x80 : 0) | op);
    out[1] |= 0x80;
    memcpy(out + h, mask, 4);
    for (size_t i = 0; i < n; i++)
        out[h + 4 + i] = ((const uint8_t *)p)[i] ^ mask[i & 3];
    return h + 4 + n;
}

static void test_rx(void **state)
{
    uint8_t buf[1024];
    size_t len = 0, off = 0, used;
    ws_rx rx = {0};
    ws_ev ev;
    (void)state;

    /* A fragmented message with a ping between its fragments, then a
     * one-frame message, then a close. */
    len += client_frame(buf + len, WS_OP_BINARY, false, "hel", 3);
    len += client_frame(buf + len, WS_OP_PING, true, "p", 1);
    len += client_frame(buf + len, WS_OP_CONT, false, "lo ", 3);
    len += client_frame(buf + len, WS_OP_CONT, true, "world", 5);
    len += client_frame(buf + len, WS_OP_BINARY, true, "one", 3);
    len += client_frame(buf + len, WS_OP_CLOSE, true, "\x03\xe9", 2);

    /* Byte by byte first: nothing is consumed before a frame is whole. */
    assert_int_equal(ws_rx_next(&rx, buf, 1, 100, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_NONE);
    used = ws_rx_next(&rx, buf + off, len - off, 100, &ev);
    assert_int_equal(ev.kind, WS_EV_FRAGMENT);
    off += used;
    used = ws_rx_next(&rx, buf + off, len - off, 100, &ev);
    assert_int_equal(ev.kind, WS_EV_PING);
    assert_int_equal(ev.n, 1);
    assert_memory_equal(ev.p, "p", 1);
    off += used;
    off += ws_rx_next(&rx, buf + off, len - off, 100, &ev);
    assert_int_equal(ev.kind, WS_EV_FRAGMENT);
    off += ws_rx_next(&rx, buf + off, len - off, 100, &ev);
    assert_int_equal(ev.kind, WS_EV_MESSAGE);
    assert_int_equal(ev.n, 11);
    assert_memory_equal(ev.p, "hello world", 11);
    used = ws_rx_next(&rx, buf + off, len - off, 100, &ev);
    assert_int_equal(ev.kind, WS_EV_MESSAGE);
    assert_int_equal(ev.n, 3);
    assert_memory_equal(ev.p, "one", 3);
    assert_ptr_equal(ev.p, buf + off + 6); /* unmasked in place, no copy */
    assert_null(rx.msg.data);              /* the reassembly buffer went */
    off += used;
    off += ws_rx_next(&rx, buf + off, len - off, 100, &ev);
    assert_int_equal(ev.kind, WS_EV_CLOSE);
    assert_int_equal(ev.code, 1001);
    assert_int_equal(off, len);
    ws_rx_free(&rx);
}

static void test_rx_refusals(void **state)
{
    uint8_t buf[256];
    size_t len;
    ws_rx rx = {0};
    ws_ev ev;
    (void)state;

    /* Over the cap: refused from the header alone. */
    len = ws_frame_header(buf, WS_OP_BINARY, 1u << 20);
    buf[1] |= 0x80;
    memset(buf + len, 0, 4);
    len += 4;
    assert_int_equal(ws_rx_next(&rx, buf, len, 65536, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_ERROR);
    assert_int_equal(ev.herald_code, HERALD_ETOO_BIG);

    /* Fragments whose total passes the cap. */
    len = client_frame(buf, WS_OP_BINARY, false, "0123456789", 10);
    assert_int_equal(ws_rx_next(&rx, buf, len, 16, &ev), len);
    len = client_frame(buf, WS_OP_CONT, true, "0123456789", 10);
    assert_int_equal(ws_rx_next(&rx, buf, 6, 16, &ev), 0); /* the header alone suffices */
    assert_int_equal(ev.kind, WS_EV_ERROR);
    assert_int_equal(ev.herald_code, HERALD_ETOO_BIG);
    ws_rx_free(&rx);

    len = client_frame(buf, WS_OP_TEXT, true, "hi", 2);
    assert_int_equal(ws_rx_next(&rx, buf, len, 100, &ev), 0);
    assert_int_equal(ev.herald_code, HERALD_EUNSUPPORTED);
    len = client_frame(buf, WS_OP_CONT, true, "hi", 2);
    assert_int_equal(ws_rx_next(&rx, buf, len, 100, &ev), 0);
    assert_int_equal(ev.herald_code, HERALD_EPROTOCOL);
    len = ws_frame_header(buf, WS_OP_BINARY, 0); /* unmasked */
    assert_int_equal(ws_rx_next(&rx, buf, len, 100, &ev), 0);
    assert_int_equal(ev.herald_code, HERALD_EPROTOCOL);
    len = client_frame(buf, WS_OP_CLOSE, true, "\x03\xed", 2); /* 1005 may not be sent */
    assert_int_equal(ws_rx_next(&rx, buf, len, 100, &ev), 0);
    assert_int_equal(ev.herald_code, HERALD_EPROTOCOL);
    ws_rx_free(&rx);
}

static void test_close_codes(void **state)
{
    (void)state;
    assert_int_equal(ws_close_code(0), 1000);
    assert_int_equal(ws_close_code(HERALD_ETOO_BIG), 1009);
    assert_int_equal(ws_close_code(HERALD_EPROTOCOL), 1002);
    assert_int_equal(ws_close_code(HERALD_EUNSUPPORTED), 1003);
    assert_int_equal(ws_close_code(HERALD_ESLOW_CONSUMER), 1008);
    assert_int_equal(ws_close_code(HERALD_EIDLE), 1001);
    assert_int_equal(ws_close_code(HERALD_ESHUTDOWN), 1001);
    assert_int_equal(ws_close_code(HERALD_EINTERNAL), 1011);
    assert_int_equal(ws_close_code(HERALD_EBUSY), 1013);
    assert_int_equal(ws_close_code(HERALD_EUNAUTHORIZED), 4003);
    assert_int_equal(ws_close_code(HERALD_EEXPIRED), 4004);
    for (int c = 0; c < HERALD_E_COUNT_; c++)
        assert_true(ws_close_code_valid(ws_close_code(c)));
    /* A cut never splits a UTF-8 sequence: "é" is 2 bytes. */
    assert_int_equal(ws_utf8_prefix("ab\xc3\xa9", 4, 3), 2);
    assert_int_equal(ws_utf8_prefix("abc", 3, 3), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key), cmocka_unit_test(test_http),
        cmocka_unit_test(test_origins),    cmocka_unit_test(test_headers),
        cmocka_unit_test(test_rx),         cmocka_unit_test(test_rx_refusals),
        cmocka_unit_test(test_close_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
