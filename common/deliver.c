/* deliver.c — see deliver.h. */
#include "deliver.h"

#include <herald/error.h>
#include <msgpack.h>
#include <string.h>

#include "mptab.h"

/* The two per-recipient keys, encoded as the codec encodes them. */
static int encode_tail(uint32_t flags, uint64_t prev, herald_buf *out)
{
    mpt_sink sink = {.b = out};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sink, mpt_sink_write);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "flags", 5);
    msgpack_pack_uint32(&pk, flags);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "pv", 2);
    msgpack_pack_uint64(&pk, prev);
    return sink.failed ? HERALD_ENOMEM : 0;
}

int deliver_tpl_init(deliver_tpl *t, const herald_frame *f)
{
    herald_buf tail = {0};
    herald_frame x = *f;
    int rc;

    memset(t, 0, sizeof *t);
    t->f = *f;
    /* Placeholders that are never zero, so both keys are written. */
    x.msg.flags = UINT32_MAX;
    x.msg.prev = UINT64_MAX;
    rc = herald_frame_encode(&x, &t->enc);
    if (rc == 0)
        rc = encode_tail(UINT32_MAX, UINT64_MAX, &tail);
    if (rc) {
        herald_buf_free(&tail);
        herald_buf_free(&t->enc);
        return rc;
    }
    if (f->type == HERALD_FT_DELIVER && t->enc.len >= HERALD_FRAME_HEADER + tail.len &&
        memcmp(t->enc.data + t->enc.len - tail.len, tail.data, tail.len) == 0) {
        t->shared = t->enc.len - HERALD_FRAME_HEADER - tail.len;
        t->fast = true;
    }
    herald_buf_free(&tail);
    return 0;
}

int deliver_tpl_put(deliver_tpl *t, uint32_t flags, uint64_t prev, herald_buf *out)
{
    size_t start = out->len;
    uint32_t n;
    static const uint8_t zero[HERALD_FRAME_HEADER];

    if (!t->fast) {
        herald_frame x = t->f;
        x.msg.flags = flags;
        x.msg.prev = prev;
        return herald_frame_encode(&x, out);
    }
    if (herald_buf_append(out, zero, sizeof zero) != 0 ||
        herald_buf_append(out, t->enc.data + HERALD_FRAME_HEADER, t->shared) != 0 ||
        encode_tail(flags, prev, out) != 0) {
        out->len = start;
        return HERALD_ENOMEM;
    }
    n = (uint32_t)(out->len - start - HERALD_FRAME_HEADER);
    mpt_put_be32(out->data + start, n);
    return 0;
}

void deliver_tpl_free(deliver_tpl *t)
{
    herald_buf_free(&t->enc);
    memset(t, 0, sizeof *t);
}
