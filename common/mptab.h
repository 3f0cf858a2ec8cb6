/*
 * mptab.h — table-driven msgpack maps: one table per map shape (key, C
 * representation, offset) drives both decoding (with a type check per key,
 * unknown keys skipped) and encoding (fields at their zero value omitted).
 * Used by the wire codec (frames, messages) and the command codec.
 *
 * Decoding expects an object that passed mp_check (bounded) and was
 * unpacked by msgpack-c; strings point into the unpacked input buffer.
 * Arrays are malloc'd into the target; the owner frees them.
 *
 * Thread safety: reentrant.
 */
#ifndef HERALD_COMMON_MPTAB_H
#define HERALD_COMMON_MPTAB_H

#include <herald/protocol.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mpt_kind {
    MPT_U64,   /* uint64_t */
    MPT_U32,   /* uint32_t (values above UINT32_MAX rejected) */
    MPT_BOOL,  /* bool */
    MPT_STR,   /* herald_str from msgpack str */
    MPT_BODY,  /* herald_str from str or bin; encoded as bin */
    MPT_STRS,  /* array of str: herald_str* + uint32_t count */
    MPT_MAP,   /* one nested map described by `sub` */
    MPT_MAPS,  /* array of nested maps: element array + count */
    MPT_SG,    /* flat [group, pos, …]: herald_sync_group* + count */
    MPT_SC,    /* flat [conv, seq, …]: herald_sync_conv* + count */
    MPT_I32,   /* int32_t (or a 32-bit int); values outside int32 rejected */
    MPT_BINS,  /* array of bin (str accepted): herald_str* + count */
    MPT_U64S,  /* array of uint: uint64_t* + count */
    MPT_U32A,  /* array of uint into an inline uint32_t[esize] (not malloc'd)
                  + count; longer arrays and values above UINT32_MAX rejected */
} mpt_kind;

typedef struct mpt_field {
    const char *key;             /* wire key */
    mpt_kind kind;               /* C representation */
    size_t off;                  /* offset of the value (or array pointer) */
    size_t cnt;                  /* offset of the uint32_t count (arrays) */
    const struct mpt_field *sub; /* MAP/MAPS: nested table */
    size_t nsub;                 /* MAP/MAPS: nested table length */
    size_t esize;                /* MAPS: element size; U32A: capacity */
} mpt_field;

/* Maps the keys of map o onto base; unknown keys skipped; *seen (optional)
 * gets bit j for table entry j (tables have ≤ 64 entries). Returns 0,
 * HERALD_EPROTOCOL (wrong type, repeated array key), HERALD_ENOMEM. On error
 * arrays already allocated stay in base for the owner to free. */
int mpt_decode(const msgpack_object *o, const mpt_field *tab, size_t ntab, void *base,
               uint64_t *seen);

/* Decodes untrusted bytes p[0..n) holding exactly one map into base:
 * mp_check (depth ≤ max_depth, counts bounded by the bytes left) first, then
 * msgpack-c, then mpt_decode. On error everything base got is freed
 * (mpt_free) and base is zeroed. 0, HERALD_EPROTOCOL, HERALD_ENOMEM. */
int mpt_decode_bytes(const uint8_t *p, size_t n, unsigned max_depth, const mpt_field *tab,
                     size_t ntab, void *base, size_t base_size, uint64_t *seen);

/* Packs the present fields of base as one map. `skip` (optional) returns true
 * for fields to leave out. Errors surface through the packer's callback. */
void mpt_encode(msgpack_packer *pk, const mpt_field *tab, size_t ntab, const void *base,
                bool (*skip)(const mpt_field *f, const void *base));

/* Frees the arrays of base that tab describes (recursively) and zeroes them. */
void mpt_free(const mpt_field *tab, size_t ntab, void *base);

/* A msgpack_packer sink appending to a herald_buf with a sticky error flag
 * (msgpack-c's pack calls return the callback result; checking each one
 * would bury the encoder, so the flag is checked once at the end). */
typedef struct mpt_sink {
    herald_buf *b; /* destination */
    bool failed;   /* an append failed (ENOMEM) */
} mpt_sink;
int mpt_sink_write(void *data, const char *p, size_t n);

/* v big-endian into p[0..4): a frame's length prefix. */
static inline void mpt_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif
