/* alloc_wrap.c — see alloc_wrap.h. */
#include "alloc_wrap.h"

#include <stddef.h>

long alloc_fail_after = -1;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static int should_fail(void)
{
    if (alloc_fail_after < 0)
        return 0;
    if (alloc_fail_after == 0)
        return 1;
    alloc_fail_after--;
    return 0;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { return should_fail() ? NULL : __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
