/*
 * ws.c — the WebSocket framing (RFC 6455) of the session tier (framing.h).
 *
 * A connection starts in HTTP: the head of a GET /ws Upgrade request
 * (ws_proto.c parses it, at most WS_HTTP_MAX bytes) is answered with 101
 * and the accept key, or with 400 / 403 (Origin not in gateway.ws_origins)
 * / 404 / 426 / 431 and a close. From then on each binary message carries
 * exactly one Herald frame: the msgpack map of the TCP framing without its
 * 4-byte length. Fragmented messages are reassembled in the connection's
 * state, the total checked against the frame cap before each fragment is
 * waited for or copied; a message that fits in one frame is unmasked in
 * place and dispatched without a copy. Text messages are refused (close
 * 1003). Pings are answered with pongs and count as traffic for the idle
 * timeout; the server sends no pings of its own: clients send Herald PING
 * at WELCOME's heartbeat, as on TCP.
 *
 * Outgoing frames are encoded as on TCP and their 4-byte length rewritten
 * into a WebSocket header in place (2, 4 or 10 bytes), so DELIVER templates
 * and forwarded node replies cost one small move at most.
 *
 * Threads: the tier's loop thread.
 */
#include "tier_int.h"
#include "ws_proto.h"
#include "http_proto.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* One connection's WebSocket state. */
typedef struct ws_conn {
    bool upgraded;   /* the 101 went out: frames from now on */
    bool close_sent; /* our Close frame is queued: nothing follows it */
    ws_rx rx;        /* frames to messages (fragments reassembled) */
    int last_error;  /* the code of the last frame queued when it was an ERROR,
                        else 0: a normal end right after it (the gateway
                        forwarding a node's refusal) closes with its code */
} ws_conn;

/* The code of an ERROR frame's payload, or 0 for any other frame. The
 * encoder writes "t" first, so other frames are told apart by 3 bytes and
 * only ERRORs (rare, small) are decoded. */
static int error_code_of(const uint8_t *p, size_t n)
{
    herald_frame f;
    int code = 0;
    if (n < 4 || p[1] != 0xa1 || p[2] != 't' || p[3] != HERALD_FT_ERROR)
        return 0;
    if (herald_frame_decode(p, n, NULL, &f) == 0) {
        code = f.type == HERALD_FT_ERROR ? (int)f.code : 0;
        herald_frame_release(&f);
    }
    return code;
}

/* An Origin list entry must look like an origin: scheme "://" host. */
static int ws_listener_new(const gw_config *cfg, void **lst)
{
    const char *p = cfg->ws_origins;
    *lst = NULL;
    while (p && *p) {
        size_t n = strcspn(p, ","), s = 0, e = n;
        while (s < e && (p[s] == ' ' || p[s] == '\t'))
            s++;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
            e--;
        if (e == s || !memmem(p + s, e - s, "://", 3) || p[e - 1] == '/') {
            log_error("gw.ws", "gateway.ws_origins: '%.*s' is not an origin "
                      "(scheme://host[:port], no path), e.g. https://app.example.com",
                      (int)(e - s), p + s);
            return HERALD_EINVAL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int ws_conn_new(void *lst, conn *c, void **st)
{
    (void)lst;
    (void)c;
    *st = calloc(1, sizeof(ws_conn));
    return *st ? 0 : HERALD_ENOMEM;
}

static void ws_conn_free(void *st)
{
    ws_conn *w = st;
    if (!w)
        return;
    ws_rx_free(&w->rx);
    free(w);
}

/* Appends an HTTP response with a plain-text body. */
static int http_response(herald_buf *out, int status, const char *extra, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, http_reason(status), strlen(body) + 1, extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof head)
        return HERALD_EINTERNAL;
    if (herald_buf_append(out, head, (size_t)n) || herald_buf_append(out, body, strlen(body)) ||
        herald_buf_append(out, "\n", 1))
        return HERALD_ENOMEM;
    return 0;
}

/* Answers a refused handshake and closes after it is written. */
static void refuse_http(conn *c, int status, const char *why)
{
    herald_buf b = {0};
    const char *extra = status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL;
    log_info("gw.ws", "%s: WebSocket handshake refused: %d %s", conn_label(c), status, why);
    if (http_response(&b, status, extra, why) == 0)
        conn_queue_wire(c, b.data, b.len);
    herald_buf_free(&b);
    conn_close_quiet(c);
}

/* The HTTP head: 0 while partial, else the bytes it took (all of them when
 * refused). */
static size_t handshake(conn *c, ws_conn *w, const uint8_t *p, size_t len)
{
    ws_http_req rq;
    char accept[29], resp[256];
    int st = ws_http_parse(p, len, &rq), n;
    const char *why;

    if (st == WS_HTTP_PARTIAL)
        return 0;
    if (st == WS_HTTP_OK && rq.origin &&
        !ws_origin_allowed(conn_config(c)->ws_origins, rq.origin, rq.origin_len))
        st = 403;
    if (st == WS_HTTP_OK && ws_accept_key(rq.key, rq.key_len, accept) != 0)
        st = 500;
    if (st != WS_HTTP_OK) {
        switch (st) {
        case 403: why = "Origin not allowed (gateway.ws_origins)"; break;
        case 404: why = "not found: the WebSocket endpoint is " WS_PATH; break;
        case 426: why = "WebSocket version 13 required"; break;
        case 431: why = "request head too large"; break;
        case 500: why = "internal error"; break;
        default: why = "bad WebSocket handshake: GET " WS_PATH " HTTP/1.1 with Host, "
                       "Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Key and "
                       "Sec-WebSocket-Version: 13"; break;
        }
        refuse_http(c, st, why);
        return len;
    }
    n = snprintf(resp, sizeof resp,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                 accept, rq.herald_proto ? "Sec-WebSocket-Protocol: " WS_SUBPROTOCOL "\r\n" : "");
    if (conn_queue_wire(c, resp, (size_t)n) != 0) {
        conn_close(c, "out of memory");
        return len;
    }
    w->upgraded = true;
    log_debug("gw.ws", "%s: WebSocket upgraded%s", conn_label(c),
              rq.origin ? " (browser origin allowed)" : "");
    return rq.head_len;
}

/* Queues a control frame (pong, close) of at most 125 bytes. */
static int queue_control(conn *c, uint8_t op, const uint8_t *p, size_t n)
{
    uint8_t f[2 + WS_CONTROL_MAX];
    size_t h = ws_frame_header(f, op, n);
    memcpy(f + h, p, n);
    return conn_queue_wire(c, f, h + n);
}

static size_t ws_input(conn *c, void *st, uint8_t *p, size_t len)
{
    ws_conn *w = st;
    uint32_t max_frame = conn_config(c)->max_frame;
    size_t off = 0;

    if (!w->upgraded) {
        off = handshake(c, w, p, len);
        if (!w->upgraded)
            return off;
    }
    while (conn_reading(c) && off < len) {
        ws_ev ev;
        size_t used = ws_rx_next(&w->rx, p + off, len - off, max_frame, &ev);
        off += used;
        switch (ev.kind) {
        case WS_EV_NONE:
            return off;
        case WS_EV_ERROR:
            conn_fail(c, ev.herald_code, ev.why);
            return off;
        case WS_EV_MESSAGE:
            conn_dispatch(c, ev.p, ev.n);
            break;
        case WS_EV_PING:
            conn_touch(c);
            queue_control(c, WS_OP_PONG, ev.p, ev.n);
            break;
        case WS_EV_PONG:
            conn_touch(c);
            break;
        case WS_EV_CLOSE: {
            /* Echo the peer's code, then end. */
            uint8_t code[2] = {(uint8_t)(ev.code >> 8), (uint8_t)ev.code};
            log_debug("gw.ws", "%s: the peer closed (%u)", conn_label(c), ev.code);
            queue_control(c, WS_OP_CLOSE, code, 2);
            w->close_sent = true;
            conn_close_quiet(c);
            return off;
        }
        case WS_EV_FRAGMENT:
            break;
        }
    }
    return off;
}

/* out[start..) holds one TCP-framed Herald frame (4-byte length + map):
 * rewrites the length into a binary frame's WebSocket header. 0 or
 * HERALD_ENOMEM (out back to start). */
static int retag(herald_buf *out, size_t start)
{
    uint8_t hdr[10];
    const uint8_t *b = out->data + start;
    uint32_t len = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    size_t h = ws_frame_header(hdr, WS_OP_BINARY, len);

    if (h == 10) {
        if (herald_buf_reserve(out, 6) != 0) {
            out->len = start;
            return HERALD_ENOMEM;
        }
        memmove(out->data + start + 10, out->data + start + 4, len);
        out->len += 6;
    } else if (h == 2) {
        memmove(out->data + start + 2, out->data + start + 4, len);
        out->len -= 2;
    }
    memcpy(out->data + start, hdr, h);
    return 0;
}

static int ws_encode(conn *c, void *st, const herald_frame *f, herald_buf *out)
{
    ws_conn *w = st;
    size_t start = out->len;
    int rc;
    (void)c;
    if (!w->upgraded || w->close_sent)
        return HERALD_ECLOSED;
    rc = herald_frame_encode(f, out);
    if (rc)
        return rc;
    w->last_error = f->type == HERALD_FT_ERROR ? (int)f->code : 0;
    return retag(out, start);
}

static int ws_put_deliver(conn *c, void *st, deliver_tpl *t, uint32_t flags, uint64_t prev,
                          herald_buf *out)
{
    ws_conn *w = st;
    size_t start = out->len;
    int rc;
    (void)c;
    if (!w->upgraded || w->close_sent)
        return HERALD_ECLOSED;
    rc = deliver_tpl_put(t, flags, prev, out);
    if (rc)
        return rc;
    w->last_error = 0;
    return retag(out, start);
}

static int ws_reframe(conn *c, void *st, const uint8_t *p, size_t n, herald_buf *out)
{
    ws_conn *w = st;
    size_t start = out->len, off = 0;
    (void)c;
    if (!w->upgraded || w->close_sent)
        return HERALD_ECLOSED;
    while (off < n) {
        uint8_t hdr[10];
        uint32_t len;
        size_t h;
        if (n - off < HERALD_FRAME_HEADER)
            goto bad;
        len = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 | (uint32_t)p[off + 2] << 8 |
              p[off + 3];
        if (n - off - HERALD_FRAME_HEADER < len)
            goto bad;
        h = ws_frame_header(hdr, WS_OP_BINARY, len);
        if (herald_buf_append(out, hdr, h) ||
            herald_buf_append(out, p + off + HERALD_FRAME_HEADER, len)) {
            out->len = start;
            return HERALD_ENOMEM;
        }
        w->last_error = error_code_of(p + off + HERALD_FRAME_HEADER, len);
        off += HERALD_FRAME_HEADER + len;
    }
    return 0;
bad:
    out->len = start;
    return HERALD_EPROTOCOL;
}

static int ws_close(conn *c, void *st, int code, const char *text, herald_buf *out)
{
    ws_conn *w = st;
    uint8_t f[2 + WS_CONTROL_MAX];
    char reason[256]; /* "NAME: text", cut to WS_CLOSE_REASON_MAX below */
    size_t h, rlen = 0, start = out->len;
    uint16_t wc = ws_close_code(code);
    (void)c;

    if (!w->upgraded) {
        /* Still in HTTP: an error status instead of frames. */
        int status = code == HERALD_EUNAUTHORIZED ? 408
                     : code == HERALD_EBUSY || code == HERALD_ESHUTDOWN ||
                             code == HERALD_EUNAVAILABLE
                         ? 503
                         : code == 0 ? 0 : 400;
        return status ? http_response(out, status, NULL, text ? text : herald_strerror(code)) : 0;
    }
    if (w->close_sent)
        return 0;
    if (code == 0 && w->last_error) {
        /* The handler's last reply was an ERROR: close with its code. */
        wc = ws_close_code(w->last_error);
        rlen = ws_utf8_prefix(herald_err_name(w->last_error),
                              strlen(herald_err_name(w->last_error)), WS_CLOSE_REASON_MAX);
        memcpy(reason, herald_err_name(w->last_error), rlen);
    }
    if (code) {
        /* The Herald ERROR first, for clients that read the reason there. */
        herald_frame e = herald_frame_error(code, text, 0);
        int rc = herald_frame_encode(&e, out);
        if (rc == 0)
            rc = retag(out, start);
        if (rc)
            return rc;
        /* Then the close reason "NAME: text", cut at 123 bytes. */
        int k = snprintf(reason, sizeof reason, "%s: %s", herald_err_name(code),
                         text ? text : herald_strerror(code));
        if (k > 0)
            rlen = ws_utf8_prefix(reason, (size_t)k < sizeof reason ? (size_t)k : sizeof reason - 1,
                                  WS_CLOSE_REASON_MAX);
    }
    h = ws_frame_header(f, WS_OP_CLOSE, 2 + rlen);
    f[h] = (uint8_t)(wc >> 8);
    f[h + 1] = (uint8_t)wc;
    memcpy(f + h + 2, reason, rlen);
    if (herald_buf_append(out, f, h + 2 + rlen) != 0) {
        out->len = start;
        return HERALD_ENOMEM;
    }
    w->close_sent = true;
    return 0;
}

static int ws_refuse(int code, const char *text, herald_buf *out)
{
    char body[160];
    snprintf(body, sizeof body, "%s: %s", herald_err_name(code), text);
    return http_response(out, 503, "Retry-After: 5\r\n", body);
}

const framing_ops framing_ws = {
    .name = "ws",
    .listener_new = ws_listener_new,
    .conn_new = ws_conn_new,
    .conn_free = ws_conn_free,
    .input = ws_input,
    .encode = ws_encode,
    .put_deliver = ws_put_deliver,
    .reframe = ws_reframe,
    .close = ws_close,
    .refuse = ws_refuse,
};
