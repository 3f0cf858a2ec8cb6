/*
 * keys.h — store internals: key builders, record encoding, result arenas.
 *
 * Keys are byte strings built from 1-byte length-prefixed ids and big-endian
 * integers, so LMDB's byte order is the logical order (seqs ascend) and one id
 * can never run into the next. Records are a small tagged-free binary layout
 * (u8/u32/u64 big-endian, str = u32 length + bytes) read back with bounds
 * checks: a corrupted record gives HERALD_ESTORAGE, never a crash.
 */
#ifndef HERALD_STORE_KEYS_H
#define HERALD_STORE_KEYS_H

#include <herald/protocol.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_MAX 511u /* LMDB's default max key size */

/* A key under construction. */
typedef struct kbuf {
    uint8_t b[KEY_MAX]; /* bytes */
    size_t n;           /* length */
    bool over;          /* an append did not fit */
} kbuf;

void kb_id(kbuf *k, herald_str id);    /* 1-byte length + bytes (len ≤ 255) */
void kb_u64(kbuf *k, uint64_t v);      /* 8 bytes big-endian */
void kb_u32(kbuf *k, uint32_t v);      /* 4 bytes big-endian */
MDB_val kb_val(kbuf *k);               /* view of the key */

/* A record being written. */
typedef struct rbuf {
    herald_buf b;   /* bytes */
    bool failed;    /* allocation failed */
} rbuf;

void rb_u8(rbuf *r, uint8_t v);
void rb_u32(rbuf *r, uint32_t v);
void rb_u64(rbuf *r, uint64_t v);
void rb_str(rbuf *r, herald_str s);
void rb_free(rbuf *r);

/* A record being read; every getter fails once the record is short. */
typedef struct rcur {
    const uint8_t *p; /* next byte */
    size_t left;      /* bytes left */
    bool bad;         /* a read ran past the end */
} rcur;

rcur rc_of(MDB_val v);
uint8_t rc_u8(rcur *c);
uint32_t rc_u32(rcur *c);
uint64_t rc_u64(rcur *c);
herald_str rc_str(rcur *c); /* points into the record (valid in the txn) */

/* Big-endian helpers for fixed-size values. */
uint64_t be64(const uint8_t *p);
void put_be64(uint8_t *p, uint64_t v);

/* A bump arena: results that outlive a read transaction are copied here. */
typedef struct arena_chunk arena_chunk;
typedef struct arena {
    arena_chunk *head; /* newest chunk */
} arena;
/* Copies n bytes (+ NUL) into the arena; NULL on ENOMEM. */
char *arena_dup(arena *a, const void *p, size_t n);
/* Raw zeroed allocation; NULL on ENOMEM. */
void *arena_alloc(arena *a, size_t n);
void arena_free(arena *a);

#endif
