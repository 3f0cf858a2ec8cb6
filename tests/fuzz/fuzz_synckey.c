/* fuzz_synckey.c — a client's saved sync key (a file the user can edit):
 * load, and on success save and load again to the same key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "synckey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    synckey a = {0}, b = {0};
    herald_buf buf = {0};
    if (sk_load(&a, data, size) == 0) {
        if (sk_save(&a, &buf) != 0 || sk_load(&b, buf.data, buf.len) != 0)
            abort();
        if (a.n_groups != b.n_groups || a.n_convs != b.n_convs)
            abort();
        for (uint32_t i = 0; i < a.n_convs; i++)
            if (strcmp(a.convs[i].conv, b.convs[i].conv) != 0 || a.convs[i].seq != b.convs[i].seq)
                abort();
    }
    sk_free(&a);
    sk_free(&b);
    herald_buf_free(&buf);
    return 0;
}
