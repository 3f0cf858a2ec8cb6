/* hstr.c — see hstr.h. */
#include "hstr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int hstr_cmp(const void *a, const void *b)
{
    const herald_str *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int d = n ? memcmp(x->ptr, y->ptr, n) : 0;
    return d ? d : (x->len > y->len) - (x->len < y->len);
}

herald_str hstr_dup(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return (herald_str){0};
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return (herald_str){.ptr = d, .len = (uint32_t)n};
}
