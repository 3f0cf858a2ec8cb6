/* fuzz_cmd.c — the replicated-command decoder (bytes from disk / the raft
 * log): decode, and on success re-encode, decode again and compare. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static int same(herald_str a, herald_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cmd a, b;
    herald_buf buf = {0};
    if (cmd_decode(data, size, &a) != 0)
        return 0;
    if (cmd_encode(&a, &buf) != 0)
        abort();
    if (cmd_decode(buf.data, buf.len, &b) != 0)
        abort();
    if (a.op != b.op || !same(a.tenant, b.tenant) || !same(a.user, b.user) ||
        !same(a.conv, b.conv) || !same(a.body, b.body) || a.seq != b.seq || a.ts != b.ts ||
        a.n_members != b.n_members)
        abort();
    for (uint32_t i = 0; i < a.n_members; i++)
        if (!same(a.members[i], b.members[i]))
            abort();
    cmd_release(&b);
    cmd_release(&a);
    herald_buf_free(&buf);
    return 0;
}
