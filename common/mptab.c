/* mptab.c — see mptab.h. */
#include "mptab.h"

#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "mpcheck.h"

int mpt_sink_write(void *data, const char *p, size_t n)
{
    mpt_sink *s = data;
    if (s->failed || herald_buf_append(s->b, p, n) != 0) {
        s->failed = true;
        return -1;
    }
    return 0;
}

static bool present(const mpt_field *fd, const void *base);

/* ---- decoding ----------------------------------------------------------- */

static bool get_uint(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = o->via.u64;
    return true;
}

static bool get_str(const msgpack_object *o, herald_str *s, bool allow_bin)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        *s = (herald_str){.ptr = o->via.str.ptr, .len = o->via.str.size};
        return true;
    }
    if (allow_bin && o->type == MSGPACK_OBJECT_BIN) {
        *s = (herald_str){.ptr = o->via.bin.ptr, .len = o->via.bin.size};
        return true;
    }
    return false;
}

/* Allocates an array of n elements of size sz into the field. */
static void *alloc_array(const mpt_field *fd, void *base, uint32_t n, size_t sz)
{
    void *v = calloc(n, sz);
    if (!v)
        return NULL;
    *(void **)((char *)base + fd->off) = v;
    *(uint32_t *)((char *)base + fd->cnt) = n;
    return v;
}

static int decode_array(const mpt_field *fd, const msgpack_object *o, void *base)
{
    const msgpack_object *e = o->via.array.ptr;
    uint32_t n = o->via.array.size;
    uint64_t u;

    switch (fd->kind) {
    case MPT_STRS:
    case MPT_BINS: {
        herald_str *v = alloc_array(fd, base, n, sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        for (uint32_t i = 0; i < n; i++)
            if (!get_str(&e[i], &v[i], fd->kind == MPT_BINS))
                return HERALD_EPROTOCOL;
        return 0;
    }
    case MPT_U64S: {
        uint64_t *v = alloc_array(fd, base, n, sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        for (uint32_t i = 0; i < n; i++)
            if (!get_uint(&e[i], &v[i]))
                return HERALD_EPROTOCOL;
        return 0;
    }
    case MPT_U32A: {
        uint32_t *v = (uint32_t *)((char *)base + fd->off);
        if (n > fd->esize)
            return HERALD_EPROTOCOL;
        for (uint32_t i = 0; i < n; i++) {
            if (!get_uint(&e[i], &u) || u > UINT32_MAX)
                return HERALD_EPROTOCOL;
            v[i] = (uint32_t)u;
        }
        *(uint32_t *)((char *)base + fd->cnt) = n;
        return 0;
    }
    case MPT_MAPS: {
        char *v = alloc_array(fd, base, n, fd->esize);
        if (!v)
            return HERALD_ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
            int rc;
            if (e[i].type != MSGPACK_OBJECT_MAP)
                return HERALD_EPROTOCOL;
            rc = mpt_decode(&e[i], fd->sub, fd->nsub, v + i * fd->esize, NULL);
            if (rc)
                return rc;
        }
        return 0;
    }
    case MPT_SG: {
        herald_sync_group *v;
        if (n % 2)
            return HERALD_EPROTOCOL;
        v = alloc_array(fd, base, n / 2, sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        for (uint32_t i = 0; i < n / 2; i++) {
            if (!get_uint(&e[2 * i], &u) || u > UINT32_MAX ||
                !get_uint(&e[2 * i + 1], &v[i].pos))
                return HERALD_EPROTOCOL;
            v[i].group = (uint32_t)u;
        }
        return 0;
    }
    case MPT_SC: {
        herald_sync_conv *v;
        if (n % 2)
            return HERALD_EPROTOCOL;
        v = alloc_array(fd, base, n / 2, sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        for (uint32_t i = 0; i < n / 2; i++)
            if (!get_str(&e[2 * i], &v[i].conv, false) || !get_uint(&e[2 * i + 1], &v[i].seq))
                return HERALD_EPROTOCOL;
        return 0;
    }
    default:
        return HERALD_EPROTOCOL;
    }
}

/* Decodes one field from o into base. */
static int decode_field(const mpt_field *fd, const msgpack_object *o, void *base)
{
    char *at = (char *)base + fd->off;
    uint64_t u;

    switch (fd->kind) {
    case MPT_U64:
        if (!get_uint(o, &u))
            return HERALD_EPROTOCOL;
        memcpy(at, &u, sizeof u);
        return 0;
    case MPT_U32: {
        uint32_t v;
        if (!get_uint(o, &u) || u > UINT32_MAX)
            return HERALD_EPROTOCOL;
        v = (uint32_t)u;
        memcpy(at, &v, sizeof v);
        return 0;
    }
    case MPT_I32: {
        int32_t v;
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT32_MAX)
            v = (int32_t)o->via.u64;
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= INT32_MIN)
            v = (int32_t)o->via.i64;
        else
            return HERALD_EPROTOCOL;
        memcpy(at, &v, sizeof v);
        return 0;
    }
    case MPT_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return HERALD_EPROTOCOL;
        *(bool *)at = o->via.boolean;
        return 0;
    case MPT_STR:
    case MPT_BODY:
        return get_str(o, (herald_str *)at, fd->kind == MPT_BODY) ? 0 : HERALD_EPROTOCOL;
    case MPT_MAP:
        if (o->type != MSGPACK_OBJECT_MAP)
            return HERALD_EPROTOCOL;
        return mpt_decode(o, fd->sub, fd->nsub, at, NULL);
    default:
        /* Arrays: the key may appear once; empty arrays stay absent. */
        if (o->type != MSGPACK_OBJECT_ARRAY ||
            (fd->kind == MPT_U32A ? *(uint32_t *)((char *)base + fd->cnt) != 0
                                  : *(void **)at != NULL))
            return HERALD_EPROTOCOL;
        return o->via.array.size ? decode_array(fd, o, base) : 0;
    }
}

int mpt_decode(const msgpack_object *o, const mpt_field *tab, size_t ntab, void *base,
               uint64_t *seen)
{
    uint64_t appeared = 0; /* table entries whose key occurred */
    if (o->type != MSGPACK_OBJECT_MAP)
        return HERALD_EPROTOCOL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        herald_str k;
        size_t j;
        int rc;
        if (!get_str(&kv->key, &k, false))
            return HERALD_EPROTOCOL;
        for (j = 0; j < ntab; j++)
            if (k.len == strlen(tab[j].key) && memcmp(k.ptr, tab[j].key, k.len) == 0)
                break;
        if (j == ntab)
            continue; /* forward compatible */
        rc = decode_field(&tab[j], &kv->val, base);
        if (rc)
            return rc;
        if (j < 64)
            appeared |= 1ull << j;
    }
    /* Zero, false and empty mean absent (they are never encoded), so what
     * counts is each field's final value — a repeated key may overwrite a
     * value with zero — and a nested map counts when its key appeared:
     * decode(encode(x)) accepts exactly what decode accepted. */
    for (size_t j = 0; seen && j < ntab && j < 64; j++)
        if (tab[j].kind == MPT_MAP ? (appeared >> j) & 1 : present(&tab[j], base))
            *seen |= 1ull << j;
    return 0;
}

int mpt_decode_bytes(const uint8_t *p, size_t n, unsigned max_depth, const mpt_field *tab,
                     size_t ntab, void *base, size_t base_size, uint64_t *seen)
{
    msgpack_unpacked up;
    size_t off = 0;
    int rc;

    memset(base, 0, base_size);
    if (n == 0 || mp_check(p, n, max_depth) != 0)
        return HERALD_EPROTOCOL;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)p, n, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != n)
        rc = HERALD_EPROTOCOL;
    else
        rc = mpt_decode(&up.data, tab, ntab, base, seen);
    msgpack_unpacked_destroy(&up);
    if (rc) {
        mpt_free(tab, ntab, base);
        memset(base, 0, base_size);
    }
    return rc;
}

void mpt_free(const mpt_field *tab, size_t ntab, void *base)
{
    for (size_t j = 0; j < ntab; j++) {
        const mpt_field *fd = &tab[j];
        void **arr = (void **)((char *)base + fd->off);
        switch (fd->kind) {
        case MPT_MAP:
            mpt_free(fd->sub, fd->nsub, (char *)base + fd->off);
            break;
        case MPT_MAPS:
            if (*arr) {
                uint32_t n = *(uint32_t *)((char *)base + fd->cnt);
                for (uint32_t i = 0; i < n; i++)
                    mpt_free(fd->sub, fd->nsub, (char *)*arr + i * fd->esize);
            }
            /* fall through */
        case MPT_STRS:
        case MPT_BINS:
        case MPT_U64S:
        case MPT_SG:
        case MPT_SC:
            free(*arr);
            *arr = NULL;
            *(uint32_t *)((char *)base + fd->cnt) = 0;
            break;
        default:
            break;
        }
    }
}

/* ---- encoding ----------------------------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *p, size_t n)
{
    if (!p)
        n = 0; /* an absent string is empty, whatever its length says */
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, p ? p : "", n);
}

/* True when the field holds a non-default value (and so is encoded). */
static bool present(const mpt_field *fd, const void *base)
{
    const char *at = (const char *)base + fd->off;
    switch (fd->kind) {
    case MPT_U64: {
        uint64_t v;
        memcpy(&v, at, sizeof v);
        return v != 0;
    }
    case MPT_U32: {
        uint32_t v;
        memcpy(&v, at, sizeof v);
        return v != 0;
    }
    case MPT_I32: {
        int32_t v;
        memcpy(&v, at, sizeof v);
        return v != 0;
    }
    case MPT_BOOL:
        return *(const bool *)at;
    case MPT_STR:
    case MPT_BODY:
        return ((const herald_str *)at)->ptr && ((const herald_str *)at)->len;
    case MPT_MAP:
        return true;
    default:
        return *(const uint32_t *)((const char *)base + fd->cnt) != 0;
    }
}

static void encode_field(msgpack_packer *pk, const mpt_field *fd, const void *base)
{
    const char *at = (const char *)base + fd->off;
    const void *arr = fd->cnt && fd->kind != MPT_U32A ? *(void *const *)at : NULL;
    uint32_t n = fd->cnt ? *(const uint32_t *)((const char *)base + fd->cnt) : 0;

    pack_str(pk, fd->key, strlen(fd->key));
    switch (fd->kind) {
    case MPT_U64: {
        uint64_t v;
        memcpy(&v, at, sizeof v);
        msgpack_pack_uint64(pk, v);
        break;
    }
    case MPT_U32: {
        uint32_t v;
        memcpy(&v, at, sizeof v);
        msgpack_pack_uint32(pk, v);
        break;
    }
    case MPT_I32: {
        int32_t v;
        memcpy(&v, at, sizeof v);
        msgpack_pack_int32(pk, v);
        break;
    }
    case MPT_BOOL:
        msgpack_pack_true(pk);
        break;
    case MPT_STR:
        pack_str(pk, ((const herald_str *)at)->ptr, ((const herald_str *)at)->len);
        break;
    case MPT_BODY:
        msgpack_pack_bin(pk, ((const herald_str *)at)->len);
        msgpack_pack_bin_body(pk, ((const herald_str *)at)->ptr, ((const herald_str *)at)->len);
        break;
    case MPT_MAP:
        mpt_encode(pk, fd->sub, fd->nsub, at, NULL);
        break;
    case MPT_STRS:
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            pack_str(pk, ((const herald_str *)arr)[i].ptr, ((const herald_str *)arr)[i].len);
        break;
    case MPT_BINS:
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            const herald_str *b = &((const herald_str *)arr)[i];
            msgpack_pack_bin(pk, b->ptr ? b->len : 0);
            msgpack_pack_bin_body(pk, b->ptr ? b->ptr : "", b->ptr ? b->len : 0);
        }
        break;
    case MPT_U64S:
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            msgpack_pack_uint64(pk, ((const uint64_t *)arr)[i]);
        break;
    case MPT_U32A:
        /* The owner keeps n ≤ capacity; never read past the array. */
        if (n > fd->esize)
            n = (uint32_t)fd->esize;
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            msgpack_pack_uint32(pk, ((const uint32_t *)at)[i]);
        break;
    case MPT_MAPS:
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            mpt_encode(pk, fd->sub, fd->nsub, (const char *)arr + i * fd->esize, NULL);
        break;
    case MPT_SG:
        msgpack_pack_array(pk, 2 * n);
        for (uint32_t i = 0; i < n; i++) {
            msgpack_pack_uint32(pk, ((const herald_sync_group *)arr)[i].group);
            msgpack_pack_uint64(pk, ((const herald_sync_group *)arr)[i].pos);
        }
        break;
    case MPT_SC:
        msgpack_pack_array(pk, 2 * n);
        for (uint32_t i = 0; i < n; i++) {
            const herald_sync_conv *c = &((const herald_sync_conv *)arr)[i];
            pack_str(pk, c->conv.ptr, c->conv.len);
            msgpack_pack_uint64(pk, c->seq);
        }
        break;
    }
}

void mpt_encode(msgpack_packer *pk, const mpt_field *tab, size_t ntab, const void *base,
                bool (*skip)(const mpt_field *f, const void *base))
{
    uint32_t n = 0;
    for (size_t i = 0; i < ntab; i++)
        if (present(&tab[i], base) && !(skip && skip(&tab[i], base)))
            n++;
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < ntab; i++)
        if (present(&tab[i], base) && !(skip && skip(&tab[i], base)))
            encode_field(pk, &tab[i], base);
}
