/* fuzz_record.c — store records read back from disk (a corrupted or
 * hostile data file must give HERALD_ESTORAGE, never a crash): message and
 * conversation records, and the cursor primitives under both. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MDB_val v = {.mv_size = size, .mv_data = (void *)data};
    arena a = {0};
    herald_msg m;
    store_conv sc;
    if (msg_decode(v, herald_str_z("c"), 1, &a, &m) == 0) {
        /* Decoded strings are copies of exactly the recorded bytes. */
        if (m.from.len > size || m.body.len > size)
            abort();
    }
    arena_free(&a);
    if (conv_decode(v, &sc) == 0 && strlen(sc.owner) >= sizeof sc.owner)
        abort();
    return 0;
}
