/* fuzz_cbargs.c — the callback ops' JSON arguments (cbargs.h), for each op:
 * any bytes give 0 or INVAL with a reason, never a crash; what parses
 * stays within its bounds. */
#include <herald/error.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cbargs.h"
#include "outbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int op = CBARGS_CALLBACK; op <= CBARGS_REDELIVER; op++) {
        cbargs a;
        char why[200];
        int rc = cbargs_parse((cbargs_op)op, (const char *)data, size, &a, why, sizeof why);
        if (rc != 0 && (rc != HERALD_EINVAL || why[0] == '\0'))
            abort();
        if (rc == 0 && (strlen(a.url) > CBARGS_URL_MAX || a.limit < 1 ||
                        a.limit > CBARGS_LIMIT_MAX || a.group > 255 ||
                        (a.types >> OB_TYPES_N) != 0))
            abort();
    }
    return 0;
}
