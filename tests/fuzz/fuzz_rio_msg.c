/*
 * fuzz_rio_msg.c — libFuzzer target for the raft transport decoder
 * (rio_frame_decode): any input either decodes or is rejected, never reads
 * out of bounds, never leaks; a decoded frame re-encodes and decodes again
 * to the same records (raft messages, and the transport's snapshot chunks
 * and acks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rio_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rio_frame f, g;
    rio_buf b = {0};
    size_t i;

    if (rio_frame_decode(data, size, &f) != 0)
        return 0;
    if (rio_frame_begin(&b, f.sender_id, f.sender_addr) != 0)
        goto out;
    for (i = 0; i < f.n; i++) {
        const rio_rec *r = &f.recs[i];
        int rc = r->xtype == RIO_REC_SNAP_CHUNK ? rio_chunk_encode(&b, r->gid, &r->chunk)
                 : r->xtype == RIO_REC_SNAP_ACK ? rio_ack_encode(&b, r->gid, &r->ack)
                                                : rio_msg_encode(&b, r->gid, &r->msg);
        if (rc != 0)
            abort(); /* whatever decodes must encode */
    }
    if (rio_frame_decode(b.data, b.len, &g) != 0 || g.n != f.n || g.sender_id != f.sender_id)
        abort();
    for (i = 0; i < f.n; i++)
        if (g.recs[i].gid != f.recs[i].gid || g.recs[i].msg.type != f.recs[i].msg.type ||
            g.recs[i].xtype != f.recs[i].xtype)
            abort();
        else if (g.recs[i].xtype == RIO_REC_SNAP_CHUNK) {
            const rio_chunk *x = &f.recs[i].chunk, *y = &g.recs[i].chunk;
            if (x->offset != y->offset || x->total != y->total || x->hash != y->hash ||
                x->len != y->len || (x->len && memcmp(x->data, y->data, x->len) != 0) ||
                x->conf.n != y->conf.n)
                abort();
        } else if (g.recs[i].xtype == RIO_REC_SNAP_ACK &&
                   memcmp(&f.recs[i].ack, &g.recs[i].ack, sizeof f.recs[i].ack) != 0)
            abort();
    rio_frame_free(&g);
out:
    rio_buf_free(&b);
    rio_frame_free(&f);
    return 0;
}
