/*
 * fuzz_rio_msg.c — libFuzzer target for the raft transport decoder
 * (rio_frame_decode): any input either decodes or is rejected, never reads
 * out of bounds, never leaks; a decoded frame re-encodes and decodes again
 * to the same records.
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
    for (i = 0; i < f.n; i++)
        if (rio_msg_encode(&b, f.recs[i].gid, &f.recs[i].msg) != 0)
            abort(); /* whatever decodes must encode */
    if (rio_frame_decode(b.data, b.len, &g) != 0 || g.n != f.n || g.sender_id != f.sender_id)
        abort();
    for (i = 0; i < f.n; i++)
        if (g.recs[i].gid != f.recs[i].gid || g.recs[i].msg.type != f.recs[i].msg.type)
            abort();
    rio_frame_free(&g);
out:
    rio_buf_free(&b);
    rio_frame_free(&f);
    return 0;
}
