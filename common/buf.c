/* buf.c — herald_buf, the growable byte buffer every encoder writes into
 * (include/herald/protocol.h). */
#include <herald/error.h>
#include <herald/protocol.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int herald_buf_reserve(herald_buf *b, size_t extra)
{
    size_t need, ncap;
    uint8_t *nd;
    /* No object may exceed PTRDIFF_MAX bytes; fail before asking realloc. */
    if (extra > (size_t)PTRDIFF_MAX || b->len > (size_t)PTRDIFF_MAX - extra)
        return HERALD_ENOMEM;
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > (size_t)PTRDIFF_MAX / 2 ? need : ncap * 2;
    nd = realloc(b->data, ncap);
    if (!nd)
        return HERALD_ENOMEM;
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int herald_buf_append(herald_buf *b, const void *p, size_t n)
{
    if (herald_buf_reserve(b, n) != 0)
        return HERALD_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void herald_buf_consume(herald_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void herald_buf_free(herald_buf *b)
{
    if (!b)
        return;
    free(b->data);
    *b = (herald_buf){0};
}
