/*
 * fuzz_ws.c — libFuzzer target for the WebSocket side of the session tier
 * (broker/session/ws_proto.h): the HTTP Upgrade parser and the receive
 * state machine that turns client frames into messages.
 *
 * The input is an HTTP head; whatever follows a head that parses (or the
 * whole input when none does) is a stream of client frames fed to ws_rx in
 * chunks whose sizes come from the input's first byte, as a socket would
 * deliver them. Checked: the parser never claims more than it was given or
 * more than WS_HTTP_MAX; an accepted request has a 24-byte key whose accept
 * key is 28 characters; every message is at most the cap; no call consumes
 * more than it was given; a frame header written by ws_frame_header parses
 * back to the same length. A failed check aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <herald/error.h>

#include "ws_proto.h"

#define FUZZ_MAX_MSG 4096u /* small cap so the fuzzer reaches it */

static void check(int ok)
{
    if (!ok)
        abort();
}

static void http(const uint8_t *data, size_t size, size_t *body)
{
    ws_http_req rq;
    int st = ws_http_parse(data, size, &rq);
    *body = 0;
    check(st == WS_HTTP_PARTIAL || st == WS_HTTP_OK || st == 400 || st == 404 || st == 426 ||
          st == 431);
    if (st == WS_HTTP_PARTIAL) {
        check(size < WS_HTTP_MAX);
        return;
    }
    if (st == 431)
        return;
    check(rq.head_len > 0 && rq.head_len <= size && rq.head_len <= WS_HTTP_MAX);
    if (st == WS_HTTP_OK) {
        char acc[29];
        check(rq.key_len == 24 && rq.key >= (const char *)data &&
              rq.key + rq.key_len <= (const char *)data + rq.head_len);
        check(ws_accept_key(rq.key, rq.key_len, acc) == 0 && strlen(acc) == 28);
        if (rq.origin) {
            check(rq.origin + rq.origin_len <= (const char *)data + rq.head_len);
            (void)ws_origin_allowed("https://a.example, http://localhost:8080", rq.origin,
                                    rq.origin_len);
            check(ws_origin_allowed("", rq.origin, rq.origin_len));
        }
        *body = rq.head_len;
    }
}

static void frames(uint8_t *p, size_t len, size_t chunk)
{
    ws_rx rx = {0};
    size_t have = 0, off = 0;
    /* Bytes arrive `chunk` at a time; unconsumed ones stay, as in conn.c. */
    while (off < len) {
        ws_ev ev;
        size_t used;
        have = have + chunk < len - off ? have + chunk : len - off;
        used = ws_rx_next(&rx, p + off, have, FUZZ_MAX_MSG, &ev);
        check(used <= have);
        if (ev.kind == WS_EV_ERROR) {
            check(used == 0 && ev.why && (ev.herald_code == HERALD_EPROTOCOL ||
                                          ev.herald_code == HERALD_EUNSUPPORTED ||
                                          ev.herald_code == HERALD_ETOO_BIG ||
                                          ev.herald_code == HERALD_ENOMEM));
            check(ws_close_code(ev.herald_code) >= 1000);
            break;
        }
        if (ev.kind == WS_EV_NONE) {
            check(used == 0);
            if (have == len - off)
                break; /* the rest is a partial frame */
            continue;
        }
        check(used > 0);
        if (ev.kind == WS_EV_MESSAGE)
            check(ev.n <= FUZZ_MAX_MSG && (ev.n == 0 || ev.p));
        if (ev.kind == WS_EV_PING || ev.kind == WS_EV_PONG)
            check(ev.n <= WS_CONTROL_MAX);
        if (ev.kind == WS_EV_CLOSE)
            check(ws_close_code_valid(ev.code));
        if (ev.kind == WS_EV_MESSAGE) { /* every payload byte is readable (ASan) */
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < ev.n; i++)
                sink ^= ev.p[i];
            (void)sink;
        }
        check(rx.msg.len <= FUZZ_MAX_MSG);
        off += used;
        have -= used;
    }
    ws_rx_free(&rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;
    size_t body, chunk;

    if (size == 0)
        return 0;
    /* Header round trip for a length taken from the input. */
    {
        uint8_t h[10 + 4];
        uint64_t n = 0;
        ws_frame_hdr fh;
        for (size_t i = 0; i < size && i < 8; i++)
            n = n << 8 | data[i];
        n &= 0x7fffffffffffffffull;
        size_t hl = ws_frame_header(h, WS_OP_BINARY, n);
        check(hl == ws_frame_header_len(n));
        check(ws_frame_parse(h, hl, &fh) == (int)hl && fh.len == n && fh.fin && !fh.masked &&
              fh.opcode == WS_OP_BINARY);
    }
    {
        char r[64];
        size_t k = size < sizeof r ? size : sizeof r;
        memcpy(r, data, k);
        check(ws_utf8_prefix(r, k, 10) <= 10 || k <= 10);
    }
    chunk = 1 + data[0] % 64;
    copy = malloc(size); /* ws_rx unmasks in place */
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    http(copy, size - 1, &body);
    frames(copy + body, size - 1 - body, chunk);
    free(copy);
    return 0;
}
