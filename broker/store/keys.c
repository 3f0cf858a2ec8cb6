/* keys.c — see keys.h. */
#include "keys.h"

#include <herald/error.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void kb_raw(kbuf *k, const void *p, size_t n)
{
    if (k->over || n > KEY_MAX - k->n) {
        k->over = true;
        return;
    }
    memcpy(k->b + k->n, p, n);
    k->n += n;
}

void kb_id(kbuf *k, herald_str id)
{
    uint8_t l = (uint8_t)id.len;
    if (id.len > 255) {
        k->over = true;
        return;
    }
    kb_raw(k, &l, 1);
    kb_raw(k, id.ptr, id.len);
}

void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void kb_u64(kbuf *k, uint64_t v)
{
    uint8_t b[8];
    put_be64(b, v);
    kb_raw(k, b, 8);
}

void kb_u32(kbuf *k, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    kb_raw(k, b, 4);
}

MDB_val kb_val(kbuf *k) { return (MDB_val){.mv_size = k->n, .mv_data = k->b}; }

static void rb_raw(rbuf *r, const void *p, size_t n)
{
    if (!r->failed && herald_buf_append(&r->b, p, n) != 0)
        r->failed = true;
}

void rb_u8(rbuf *r, uint8_t v) { rb_raw(r, &v, 1); }

void rb_u32(rbuf *r, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    rb_raw(r, b, 4);
}

void rb_u64(rbuf *r, uint64_t v)
{
    uint8_t b[8];
    put_be64(b, v);
    rb_raw(r, b, 8);
}

void rb_str(rbuf *r, herald_str s)
{
    rb_u32(r, s.len);
    if (s.len)
        rb_raw(r, s.ptr, s.len);
}

void rb_free(rbuf *r) { herald_buf_free(&r->b); }

rcur rc_of(MDB_val v) { return (rcur){.p = v.mv_data, .left = v.mv_size}; }

static const uint8_t *rc_take(rcur *c, size_t n)
{
    const uint8_t *p;
    if (c->bad || n > c->left) {
        c->bad = true;
        return NULL;
    }
    p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

uint8_t rc_u8(rcur *c)
{
    const uint8_t *p = rc_take(c, 1);
    return p ? p[0] : 0;
}

uint32_t rc_u32(rcur *c)
{
    const uint8_t *p = rc_take(c, 4);
    return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t rc_u64(rcur *c)
{
    const uint8_t *p = rc_take(c, 8);
    return p ? be64(p) : 0;
}

herald_str rc_str(rcur *c)
{
    uint32_t n = rc_u32(c);
    const uint8_t *p = rc_take(c, n);
    return p ? (herald_str){.ptr = (const char *)p, .len = n} : (herald_str){0};
}

struct arena_chunk {
    arena_chunk *next; /* older chunk */
    size_t used;       /* bytes used in data */
    size_t cap;        /* bytes of data */
    max_align_t data[]; /* storage */
};

void *arena_alloc(arena *a, size_t n)
{
    arena_chunk *c = a->head;
    size_t need = (n + 15) & ~(size_t)15;
    void *p;
    if (need < n || need > SIZE_MAX - sizeof *c)
        return NULL;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > 16384 ? need : 16384;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    p = (char *)c->data + c->used;
    c->used += need;
    memset(p, 0, n);
    return p;
}

char *arena_dup(arena *a, const void *p, size_t n)
{
    char *d = arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

void arena_free(arena *a)
{
    while (a->head) {
        arena_chunk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}
