/* ws_proto.c — see ws_proto.h. */
#include "ws_proto.h"

#include <herald/error.h>
#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <string.h>

#include "http_proto.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static bool key_ok(const char *k, size_t n)
{
    unsigned char raw[18];
    size_t olen = 0;
    if (n != 24)
        return false;
    if (mbedtls_base64_decode(raw, sizeof raw, &olen, (const unsigned char *)k, n) != 0)
        return false;
    return olen == 16;
}

int ws_http_parse(const uint8_t *p, size_t len, ws_http_req *out)
{
    const char *s = (const char *)p;
    size_t end = http_head_end(p, len < WS_HTTP_MAX ? len : WS_HTTP_MAX);
    size_t i, line_end, plen;
    const char *path;
    bool host = false, upgrade = false, connection = false, version = false, bad_version = false;
    int keys = 0;

    memset(out, 0, sizeof *out);
    if (!end)
        return len >= WS_HTTP_MAX ? 431 : WS_HTTP_PARTIAL;
    out->head_len = end;
    /* Request line: GET SP path SP HTTP/1.1 CRLF. */
    for (line_end = 0; s[line_end] != '\r'; line_end++)
        ;
    if (s[line_end + 1] != '\n' || line_end < 4 || memcmp(s, "GET ", 4) != 0)
        return 400;
    path = s + 4;
    for (plen = 0; 4 + plen < line_end && path[plen] != ' '; plen++)
        ;
    if (4 + plen + 1 + 8 != line_end || memcmp(path + plen + 1, "HTTP/1.1", 8) != 0)
        return 400;
    if (plen == 0 || path[0] != '/')
        return 400;
    {
        size_t q = 0;
        while (q < plen && path[q] != '?')
            q++;
        if (q != strlen(WS_PATH) || memcmp(path, WS_PATH, q) != 0)
            return 404;
    }
    /* Headers: Name ":" OWS value OWS CRLF, up to the blank line. */
    i = line_end + 2;
    while (i < end - 2) {
        size_t ls = i, le = i, colon, vs, ve;
        while (s[le] != '\r')
            le++;
        if (s[le + 1] != '\n')
            return 400;
        i = le + 2;
        for (colon = ls; colon < le && s[colon] != ':'; colon++)
            if (http_is_sp(s[colon]) || (unsigned char)s[colon] < 0x21 || s[colon] == 0x7f)
                return 400; /* folded lines, spaces in names, control bytes */
        if (colon == le || colon == ls)
            return 400;
        vs = colon + 1;
        while (vs < le && http_is_sp(s[vs]))
            vs++;
        ve = le;
        while (ve > vs && http_is_sp(s[ve - 1]))
            ve--;
        for (size_t k = vs; k < ve; k++)
            if ((unsigned char)s[k] < 0x20 && s[k] != '\t')
                return 400;
        if (http_ieq(s + ls, colon - ls, "host")) {
            host = ve > vs;
        } else if (http_ieq(s + ls, colon - ls, "upgrade")) {
            upgrade = upgrade || http_has_token(s + vs, ve - vs, "websocket");
        } else if (http_ieq(s + ls, colon - ls, "connection")) {
            connection = connection || http_has_token(s + vs, ve - vs, "upgrade");
        } else if (http_ieq(s + ls, colon - ls, "sec-websocket-version")) {
            if (ve - vs == 2 && memcmp(s + vs, "13", 2) == 0)
                version = true;
            else
                bad_version = true;
        } else if (http_ieq(s + ls, colon - ls, "sec-websocket-key")) {
            keys++;
            out->key = s + vs;
            out->key_len = ve - vs;
        } else if (http_ieq(s + ls, colon - ls, "origin")) {
            if (out->origin)
                return 400; /* two origins: which one is true? */
            out->origin = s + vs;
            out->origin_len = ve - vs;
        } else if (http_ieq(s + ls, colon - ls, "sec-websocket-protocol")) {
            out->herald_proto = out->herald_proto || http_has_token(s + vs, ve - vs, WS_SUBPROTOCOL);
        }
    }
    if (!host || !upgrade || !connection || keys != 1 || !key_ok(out->key, out->key_len))
        return 400;
    if (bad_version || !version)
        return 426;
    return WS_HTTP_OK;
}

int ws_accept_key(const char *key, size_t key_len, char out[29])
{
    unsigned char digest[20];
    size_t olen = 0;
    mbedtls_sha1_context sha;
    int rc;

    mbedtls_sha1_init(&sha);
    rc = mbedtls_sha1_starts_ret(&sha);
    if (rc == 0)
        rc = mbedtls_sha1_update_ret(&sha, (const unsigned char *)key, key_len);
    if (rc == 0)
        rc = mbedtls_sha1_update_ret(&sha, (const unsigned char *)WS_GUID, strlen(WS_GUID));
    if (rc == 0)
        rc = mbedtls_sha1_finish_ret(&sha, digest);
    mbedtls_sha1_free(&sha);
    if (rc != 0 || mbedtls_base64_encode((unsigned char *)out, 29, &olen, digest, 20) != 0)
        return -1;
    out[olen] = '\0';
    return 0;
}

bool ws_origin_allowed(const char *list, const char *origin, size_t len)
{
    const char *p = list;
    if (!list || !*list)
        return true;
    while (*p) {
        size_t n = strcspn(p, ","), s = 0, e = n;
        while (s < e && http_is_sp(p[s]))
            s++;
        while (e > s && http_is_sp(p[e - 1]))
            e--;
        if (e - s == len && len > 0 && http_ieq_n(p + s, origin, len))
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

int ws_frame_parse(const uint8_t *p, size_t len, ws_frame_hdr *h)
{
    size_t need = 2;
    uint64_t plen;

    if (len < 2)
        return WS_FRAME_PARTIAL;
    h->fin = (p[0] & 0x80) != 0;
    h->opcode = p[0] & 0x0f;
    h->masked = (p[1] & 0x80) != 0;
    if (p[0] & 0x70)
        return WS_FRAME_EPROTO; /* no extension was negotiated */
    switch (h->opcode) {
    case WS_OP_CONT:
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        break;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!h->fin || (p[1] & 0x7f) > WS_CONTROL_MAX)
            return WS_FRAME_EPROTO;
        break;
    default:
        return WS_FRAME_EPROTO;
    }
    plen = p[1] & 0x7f;
    if (plen == 126)
        need += 2;
    else if (plen == 127)
        need += 8;
    if (h->masked)
        need += 4;
    if (len < need)
        return WS_FRAME_PARTIAL;
    if (plen == 126) {
        plen = (uint64_t)p[2] << 8 | p[3];
        if (plen < 126)
            return WS_FRAME_EPROTO; /* not the minimal encoding */
    } else if (plen == 127) {
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | p[2 + i];
        if (plen >> 63 || plen < 65536)
            return WS_FRAME_EPROTO;
    }
    if (h->masked)
        memcpy(h->mask, p + need - 4, 4);
    else
        memset(h->mask, 0, 4);
    h->len = plen;
    h->hdr_len = need;
    return (int)need;
}

size_t ws_frame_header_len(uint64_t len) { return len < 126 ? 2 : len <= 0xffff ? 4 : 10; }

size_t ws_frame_header(uint8_t out[10], uint8_t opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off)
{
    size_t i = 0;
    unsigned k = (unsigned)(off & 3);
    /* Bytes up to a word boundary of the key, then 4 at a time. */
    while (i < n && k != 0) {
        p[i++] ^= mask[k];
        k = (k + 1) & 3;
    }
    if (n - i >= 4) {
        uint32_t m;
        memcpy(&m, mask, 4);
        for (; n - i >= 4; i += 4) {
            uint32_t w;
            memcpy(&w, p + i, 4);
            w ^= m;
            memcpy(p + i, &w, 4);
        }
    }
    for (k = 0; i < n; i++, k++)
        p[i] ^= mask[k];
}

static size_t rx_error(ws_ev *ev, int code, const char *why)
{
    ev->kind = WS_EV_ERROR;
    ev->herald_code = code;
    ev->why = why;
    return 0;
}

size_t ws_rx_next(ws_rx *rx, uint8_t *p, size_t len, uint32_t max, ws_ev *ev)
{
    ws_frame_hdr h;
    uint8_t *pl;
    size_t n;
    int rc;

    memset(ev, 0, sizeof *ev);
    if (rx->msg_out) {
        rx->msg_out = false;
        herald_buf_free(&rx->msg);
    }
    rc = ws_frame_parse(p, len, &h);
    if (rc == WS_FRAME_PARTIAL)
        return 0;
    if (rc < 0)
        return rx_error(ev, HERALD_EPROTOCOL, "malformed WebSocket frame header");
    if (!h.masked)
        return rx_error(ev, HERALD_EPROTOCOL, "client WebSocket frames must be masked");
    if (h.opcode == WS_OP_TEXT)
        return rx_error(ev, HERALD_EUNSUPPORTED,
                        "text messages are not accepted: one Herald frame per binary message");
    if (h.opcode == WS_OP_CONT && !rx->in_msg)
        return rx_error(ev, HERALD_EPROTOCOL, "a continuation frame without a message");
    if (h.opcode == WS_OP_BINARY && rx->in_msg)
        return rx_error(ev, HERALD_EPROTOCOL, "a new message inside a fragmented one");
    /* The cap, before the payload is waited for or copied. */
    if ((h.opcode == WS_OP_BINARY || h.opcode == WS_OP_CONT) &&
        (h.len > max || (rx->in_msg && rx->msg.len + h.len > max)))
        return rx_error(ev, HERALD_ETOO_BIG, "message exceeds the frame size limit");
    if (len - h.hdr_len < h.len)
        return 0; /* the payload is not all here */
    pl = p + h.hdr_len;
    n = (size_t)h.len;
    ws_unmask(pl, n, h.mask, 0);
    ev->p = pl;
    ev->n = n;
    switch (h.opcode) {
    case WS_OP_PING:
        ev->kind = WS_EV_PING;
        break;
    case WS_OP_PONG:
        ev->kind = WS_EV_PONG;
        break;
    case WS_OP_CLOSE:
        ev->kind = WS_EV_CLOSE;
        ev->code = 1000;
        if (n == 1)
            return rx_error(ev, HERALD_EPROTOCOL, "malformed WebSocket Close frame");
        if (n >= 2) {
            ev->code = (uint16_t)(pl[0] << 8 | pl[1]);
            if (!ws_close_code_valid(ev->code))
                return rx_error(ev, HERALD_EPROTOCOL, "invalid WebSocket close code");
        }
        break;
    case WS_OP_BINARY:
        if (h.fin) {
            ev->kind = WS_EV_MESSAGE; /* the common case: no copy */
            break;
        }
        rx->in_msg = true;
        /* fallthrough */
    default: /* WS_OP_CONT, or the first fragment */
        if (herald_buf_append(&rx->msg, pl, n) != 0)
            return rx_error(ev, HERALD_ENOMEM, "out of memory");
        ev->kind = WS_EV_FRAGMENT;
        ev->p = NULL;
        ev->n = 0;
        if (h.fin && h.opcode == WS_OP_CONT) {
            rx->in_msg = false;
            rx->msg_out = true;
            ev->kind = WS_EV_MESSAGE;
            ev->p = rx->msg.data ? rx->msg.data : pl; /* an empty message */
            ev->n = rx->msg.len;
        }
        break;
    }
    return h.hdr_len + n;
}

void ws_rx_free(ws_rx *rx)
{
    herald_buf_free(&rx->msg);
    *rx = (ws_rx){0};
}

uint16_t ws_close_code(int code)
{
    switch (code) {
    case 0:
        return 1000;
    case HERALD_ETOO_BIG:
        return 1009;
    case HERALD_EPROTOCOL:
        return 1002;
    case HERALD_EUNSUPPORTED:
        return 1003;
    case HERALD_ESLOW_CONSUMER:
        return 1008;
    case HERALD_EIDLE:
    case HERALD_ESHUTDOWN:
        return 1001;
    case HERALD_ENOMEM:
    case HERALD_EINTERNAL:
        return 1011;
    case HERALD_EBUSY:
    case HERALD_EUNAVAILABLE:
        return 1013;
    default:
        return code > 0 && code < 1000 ? (uint16_t)(4000 + code) : 1011;
    }
}

bool ws_close_code_valid(uint16_t c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

size_t ws_utf8_prefix(const char *s, size_t n, size_t max)
{
    size_t k;
    if (n <= max)
        return n;
    k = max;
    /* Back off continuation bytes so the cut lands before a lead byte. */
    while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
        k--;
    return k;
}
