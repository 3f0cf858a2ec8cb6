/* framing_tcp.c — Herald's own framing on the client port: a 4-byte
 * big-endian length, then the msgpack map (framing.h). The wire bytes are
 * exactly herald_frame_encode's; no per-connection state. */
#include "tier_int.h"

#include <herald/error.h>

static size_t tcp_input(conn *c, void *st, uint8_t *p, size_t len)
{
    uint32_t max_frame = conn_config(c)->max_frame;
    size_t off = 0;
    (void)st;

    while (conn_reading(c)) {
        size_t flen = 0;
        int rc = herald_frame_peek(p + off, len - off, max_frame, &flen);
        if (rc) {
            conn_fail(c, rc, rc == HERALD_ETOO_BIG ? "frame exceeds the size limit"
                                                   : "empty frame");
            break;
        }
        if (flen == 0)
            break; /* a partial frame: it comes back with more bytes */
        off += flen;
        if (conn_dispatch(c, p + off - flen + HERALD_FRAME_HEADER, flen - HERALD_FRAME_HEADER))
            break;
    }
    return off;
}

static int tcp_encode(conn *c, void *st, const herald_frame *f, herald_buf *out)
{
    (void)c;
    (void)st;
    return herald_frame_encode(f, out);
}

static int tcp_put_deliver(conn *c, void *st, deliver_tpl *t, uint32_t flags, uint64_t prev,
                           herald_buf *out)
{
    (void)c;
    (void)st;
    return deliver_tpl_put(t, flags, prev, out);
}

static int tcp_reframe(conn *c, void *st, const uint8_t *p, size_t n, herald_buf *out)
{
    (void)c;
    (void)st;
    return herald_buf_append(out, p, n) ? HERALD_ENOMEM : 0;
}

static int tcp_close(conn *c, void *st, int code, const char *text, herald_buf *out)
{
    herald_frame f;
    (void)c;
    (void)st;
    if (code == 0)
        return 0; /* a normal end: the last reply said it all */
    f = herald_frame_error(code, text, 0);
    return herald_frame_encode(&f, out);
}

static int tcp_refuse(int code, const char *text, herald_buf *out)
{
    herald_frame f = herald_frame_error(code, text, 0);
    return herald_frame_encode(&f, out);
}

const framing_ops framing_tcp = {
    .name = "tcp",
    .input = tcp_input,
    .encode = tcp_encode,
    .put_deliver = tcp_put_deliver,
    .reframe = tcp_reframe,
    .close = tcp_close,
    .refuse = tcp_refuse,
};
