/*
 * wire.c — frame codec for protocol v1 (include/herald/protocol.h).
 *
 * Both directions are driven by one table per map shape (frame, message):
 * key name, C type, offset. Decoding checks the frame cap, runs mp_check
 * (bounded walk: counts vs bytes left, depth) before msgpack-c allocates
 * anything, then maps keys through the table with a type check per key.
 */
#include <herald/error.h>
#include <herald/protocol.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mpcheck.h"

/* ---- buffers ------------------------------------------------------------ */

int herald_buf_reserve(herald_buf *b, size_t extra)
{
    size_t need, ncap;
    uint8_t *nd;
    if (extra > SIZE_MAX - b->len)
        return HERALD_ENOMEM;
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
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

bool herald_str_eq(herald_str s, const char *z)
{
    size_t n = z ? strlen(z) : 0;
    if (!s.ptr || !z)
        return !s.ptr && !z;
    return s.len == n && memcmp(s.ptr, z, n) == 0;
}

herald_str herald_str_z(const char *z)
{
    return z ? (herald_str){.ptr = z, .len = (uint32_t)strlen(z)} : (herald_str){0};
}

const char *herald_frame_type_name(uint32_t type)
{
    switch (type) {
#define HERALD_FT_NAME_(name, num) \
    case num:                      \
        return #name;
        HERALD_FRAME_TYPES(HERALD_FT_NAME_)
#undef HERALD_FT_NAME_
    default:
        return "UNKNOWN";
    }
}

/* ---- field tables ------------------------------------------------------- */

typedef enum fkind {
    FK_U64,   /* uint64_t */
    FK_U32,   /* uint32_t (values above UINT32_MAX rejected) */
    FK_BOOL,  /* bool */
    FK_STR,   /* herald_str from msgpack str */
    FK_BODY,  /* herald_str from str or bin; encoded as bin */
    FK_STRS,  /* array of str: herald_str* + uint32_t count */
    FK_MSG,   /* one message map: herald_msg */
    FK_MSGS,  /* array of message maps: herald_msg* + count */
    FK_SG,    /* flat [group, useq, …]: herald_sync_group* + count */
    FK_SC,    /* flat [conv, seq, …]: herald_sync_conv* + count */
} fkind;

typedef struct field {
    const char *key; /* wire key */
    fkind kind;      /* C representation */
    size_t off;      /* offset of the value (or array pointer) */
    size_t cnt;      /* offset of the uint32_t count for arrays */
} field;

#define F(k, kind, member) {k, kind, offsetof(herald_frame, member), 0}
#define FA(k, kind, member, count)                                            \
    {k, kind, offsetof(herald_frame, member), offsetof(herald_frame, count)}

static const field frame_fields[] = {
    F("t", FK_U32, type),          F("rid", FK_U64, rid),
    F("ref", FK_U64, ref),         F("tok", FK_STR, token),
    F("v", FK_U32, version),       F("user", FK_STR, user),
    F("ten", FK_STR, tenant),      F("admin", FK_BOOL, admin),
    F("hb", FK_U32, hb_ms),        F("maxf", FK_U32, max_frame),
    F("conv", FK_STR, conv),       F("cmid", FK_STR, cmid),
    F("body", FK_BODY, body),      F("flags", FK_U32, flags),
    F("seq", FK_U64, seq),         F("ts", FK_U64, ts),
    F("dup", FK_BOOL, dup),        F("code", FK_U32, code),
    F("msg", FK_STR, text),        F("after", FK_U64, after),
    F("limit", FK_U32, limit),     F("more", FK_BOOL, more),
    F("op", FK_STR, op),           F("kind", FK_STR, kind),
    F("owner", FK_STR, owner),     F("cap", FK_U32, cap),
    F("cnt", FK_U32, count),       F("m", FK_MSG, msg),
    FA("mem", FK_STRS, members, n_members),
    FA("read", FK_STRS, read, n_read),
    FA("unread", FK_STRS, unread, n_unread),
    FA("msgs", FK_MSGS, msgs, n_msgs),
    FA("sg", FK_SG, sync_groups, n_sync_groups),
    FA("sc", FK_SC, sync_convs, n_sync_convs),
};
#undef F
#undef FA

#define M(k, kind, member) {k, kind, offsetof(herald_msg, member), 0}
static const field msg_fields[] = {
    M("conv", FK_STR, conv), M("seq", FK_U64, seq),     M("from", FK_STR, from),
    M("ts", FK_U64, ts),     M("body", FK_BODY, body),  M("flags", FK_U32, flags),
    M("mk", FK_U32, kind),   M("g", FK_U32, group),     M("useq", FK_U64, useq),
};
#undef M

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* Indexes into frame_fields (same order as the table), for required keys. */
enum { K_T, K_RID, K_REF, K_TOK, K_V, K_USER, K_TEN, K_ADMIN, K_HB, K_MAXF, K_CONV,
       K_CMID, K_BODY, K_FLAGS, K_SEQ, K_TS, K_DUP, K_CODE, K_MSG, K_AFTER, K_LIMIT,
       K_MORE, K_OP, K_KIND, K_OWNER, K_CAP, K_CNT, K_M };
#define BIT(k) (1ull << (k))
static const uint64_t required[HERALD_FT_COUNT_] = {
    [HERALD_FT_HELLO] = BIT(K_TOK),
    [HERALD_FT_WELCOME] = BIT(K_USER) | BIT(K_TEN),
    [HERALD_FT_SEND] = BIT(K_CONV),
    [HERALD_FT_ACK] = BIT(K_CONV) | BIT(K_SEQ),
    [HERALD_FT_ERROR] = BIT(K_CODE),
    [HERALD_FT_DELIVER] = BIT(K_M),
    [HERALD_FT_HISTORY] = BIT(K_CONV),
    [HERALD_FT_READ] = BIT(K_CONV) | BIT(K_SEQ),
    [HERALD_FT_RECEIPT] = BIT(K_CONV) | BIT(K_USER) | BIT(K_SEQ),
    [HERALD_FT_RECEIPTS] = BIT(K_CONV) | BIT(K_SEQ),
    [HERALD_FT_CONV] = BIT(K_OP),
    [HERALD_FT_CONV_RESULT] = BIT(K_CONV),
};

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

static int decode_map(const msgpack_object *o, const field *tab, size_t ntab,
                      void *base, uint64_t *seen);

/* Decodes one table field from o into base. Arrays are malloc'd. */
static int decode_field(const field *fd, const msgpack_object *o, void *base)
{
    char *at = (char *)base + fd->off;
    uint32_t *cnt = fd->cnt ? (uint32_t *)((char *)base + fd->cnt) : NULL;
    uint64_t u;
    uint32_t n;

    switch (fd->kind) {
    case FK_U64:
        if (!get_uint(o, &u))
            return HERALD_EPROTOCOL;
        memcpy(at, &u, sizeof u);
        return 0;
    case FK_U32: {
        uint32_t v;
        if (!get_uint(o, &u) || u > UINT32_MAX)
            return HERALD_EPROTOCOL;
        v = (uint32_t)u;
        memcpy(at, &v, sizeof v);
        return 0;
    }
    case FK_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return HERALD_EPROTOCOL;
        *(bool *)at = o->via.boolean;
        return 0;
    case FK_STR:
    case FK_BODY:
        return get_str(o, (herald_str *)at, fd->kind == FK_BODY) ? 0 : HERALD_EPROTOCOL;
    case FK_MSG:
        if (o->type != MSGPACK_OBJECT_MAP)
            return HERALD_EPROTOCOL;
        return decode_map(o, msg_fields, NFIELDS(msg_fields), at, NULL);
    default:
        break;
    }
    /* Arrays. */
    if (o->type != MSGPACK_OBJECT_ARRAY || *(void **)at)
        return HERALD_EPROTOCOL; /* wrong type or the key repeated */
    n = o->via.array.size;
    if (n == 0)
        return 0;
    switch (fd->kind) {
    case FK_STRS: {
        herald_str *v = calloc(n, sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        *(herald_str **)at = v;
        *cnt = n;
        for (uint32_t i = 0; i < n; i++)
            if (!get_str(&o->via.array.ptr[i], &v[i], false))
                return HERALD_EPROTOCOL;
        return 0;
    }
    case FK_MSGS: {
        herald_msg *v = calloc(n, sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        *(herald_msg **)at = v;
        *cnt = n;
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object *e = &o->via.array.ptr[i];
            int rc;
            if (e->type != MSGPACK_OBJECT_MAP)
                return HERALD_EPROTOCOL;
            rc = decode_map(e, msg_fields, NFIELDS(msg_fields), &v[i], NULL);
            if (rc)
                return rc;
        }
        return 0;
    }
    case FK_SG: {
        herald_sync_group *v;
        if (n % 2)
            return HERALD_EPROTOCOL;
        v = calloc(n / 2, sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        *(herald_sync_group **)at = v;
        *cnt = n / 2;
        for (uint32_t i = 0; i < n / 2; i++) {
            if (!get_uint(&o->via.array.ptr[2 * i], &u) || u > UINT32_MAX)
                return HERALD_EPROTOCOL;
            v[i].group = (uint32_t)u;
            if (!get_uint(&o->via.array.ptr[2 * i + 1], &v[i].useq))
                return HERALD_EPROTOCOL;
        }
        return 0;
    }
    case FK_SC: {
        herald_sync_conv *v;
        if (n % 2)
            return HERALD_EPROTOCOL;
        v = calloc(n / 2, sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        *(herald_sync_conv **)at = v;
        *cnt = n / 2;
        for (uint32_t i = 0; i < n / 2; i++) {
            if (!get_str(&o->via.array.ptr[2 * i], &v[i].conv, false) ||
                !get_uint(&o->via.array.ptr[2 * i + 1], &v[i].seq))
                return HERALD_EPROTOCOL;
        }
        return 0;
    }
    default:
        return HERALD_EPROTOCOL;
    }
}

/* Maps the keys of map o onto base through tab; unknown keys are skipped.
 * `seen` (optional) gets a bit per table index found. */
static int decode_map(const msgpack_object *o, const field *tab, size_t ntab,
                      void *base, uint64_t *seen)
{
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
        if (seen)
            *seen |= 1ull << j;
    }
    return 0;
}

int herald_frame_peek(const uint8_t *data, size_t len, uint32_t max_frame,
                      size_t *frame_len)
{
    uint32_t n;
    *frame_len = 0;
    if (len < HERALD_FRAME_HEADER)
        return 0;
    n = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
    if (n == 0)
        return HERALD_EPROTOCOL;
    if (n > (max_frame ? max_frame : HERALD_FRAME_MAX_DEFAULT))
        return HERALD_ETOO_BIG;
    if (len - HERALD_FRAME_HEADER >= n)
        *frame_len = (size_t)n + HERALD_FRAME_HEADER;
    return 0;
}

void herald_frame_release(herald_frame *f)
{
    if (!f)
        return;
    free(f->members);
    free(f->read);
    free(f->unread);
    free(f->msgs);
    free(f->sync_groups);
    free(f->sync_convs);
    memset(f, 0, sizeof *f);
}

int herald_frame_decode(const uint8_t *payload, size_t len, const herald_limits *lim,
                        herald_frame *out)
{
    uint32_t max_frame = lim && lim->max_frame ? lim->max_frame : HERALD_FRAME_MAX_DEFAULT;
    uint32_t max_depth = lim && lim->max_depth ? lim->max_depth : HERALD_DEPTH_MAX_DEFAULT;
    msgpack_unpacked up;
    size_t off = 0;
    uint64_t seen = 0;
    int rc;

    memset(out, 0, sizeof *out);
    if (len > max_frame)
        return HERALD_ETOO_BIG;
    if (len == 0 || payload[0] < 0x80 || (payload[0] > 0x8f && payload[0] != 0xde &&
                                          payload[0] != 0xdf))
        return HERALD_EPROTOCOL; /* not a map */
    rc = mp_check(payload, len, max_depth);
    if (rc)
        return rc;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)payload, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len || up.data.type != MSGPACK_OBJECT_MAP) {
        rc = HERALD_EPROTOCOL;
        goto fail_unpacked;
    }
    rc = decode_map(&up.data, frame_fields, NFIELDS(frame_fields), out, &seen);
    if (rc)
        goto fail_unpacked;
    if (!(seen & BIT(K_T)) || out->type == 0 || out->type >= HERALD_FT_COUNT_ ||
        (seen & required[out->type]) != required[out->type]) {
        rc = HERALD_EPROTOCOL;
        goto fail_unpacked;
    }
    msgpack_unpacked_destroy(&up);
    return 0;

fail_unpacked:
    msgpack_unpacked_destroy(&up);
    herald_frame_release(out);
    return rc;
}

/* ---- encoding ----------------------------------------------------------- */

/* Packer target: the buffer and a sticky failure flag (msgpack-c's pack
 * calls return the callback's result, but checking each one would bury the
 * encoder; the flag is checked once at the end instead). */
typedef struct pack_sink {
    herald_buf *b; /* destination */
    bool failed;   /* an append failed (ENOMEM) */
} pack_sink;

/* msgpack_packer write callback. */
static int buf_write(void *data, const char *p, size_t n)
{
    pack_sink *s = data;
    if (s->failed || herald_buf_append(s->b, p, n) != 0) {
        s->failed = true;
        return -1;
    }
    return 0;
}

static void pack_str(msgpack_packer *pk, const char *p, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, p, n);
}

static void pack_key(msgpack_packer *pk, const char *k) { pack_str(pk, k, strlen(k)); }

/* True when the field holds a non-default value (and so is encoded). */
static bool field_present(const field *fd, const void *base)
{
    const char *at = (const char *)base + fd->off;
    switch (fd->kind) {
    case FK_U64: {
        uint64_t v;
        memcpy(&v, at, sizeof v);
        return v != 0;
    }
    case FK_U32: {
        uint32_t v;
        memcpy(&v, at, sizeof v);
        return v != 0;
    }
    case FK_BOOL:
        return *(const bool *)at;
    case FK_STR:
    case FK_BODY:
        return ((const herald_str *)at)->ptr && ((const herald_str *)at)->len;
    case FK_MSG:
        return true; /* only for DELIVER; checked by the caller */
    default:
        return *(const uint32_t *)((const char *)base + fd->cnt) != 0;
    }
}

static void encode_map(msgpack_packer *pk, const field *tab, size_t ntab,
                       const void *base, uint32_t type);

static void encode_field(msgpack_packer *pk, const field *fd, const void *base)
{
    const char *at = (const char *)base + fd->off;
    uint32_t n = fd->cnt ? *(const uint32_t *)((const char *)base + fd->cnt) : 0;

    pack_key(pk, fd->key);
    switch (fd->kind) {
    case FK_U64: {
        uint64_t v;
        memcpy(&v, at, sizeof v);
        msgpack_pack_uint64(pk, v);
        break;
    }
    case FK_U32: {
        uint32_t v;
        memcpy(&v, at, sizeof v);
        msgpack_pack_uint32(pk, v);
        break;
    }
    case FK_BOOL:
        msgpack_pack_true(pk);
        break;
    case FK_STR: {
        const herald_str *s = (const herald_str *)at;
        pack_str(pk, s->ptr, s->len);
        break;
    }
    case FK_BODY: {
        const herald_str *s = (const herald_str *)at;
        msgpack_pack_bin(pk, s->len);
        msgpack_pack_bin_body(pk, s->ptr, s->len);
        break;
    }
    case FK_MSG:
        encode_map(pk, msg_fields, NFIELDS(msg_fields), at, 0);
        break;
    case FK_STRS: {
        const herald_str *v = *(herald_str *const *)at;
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            pack_str(pk, v[i].ptr ? v[i].ptr : "", v[i].len);
        break;
    }
    case FK_MSGS: {
        const herald_msg *v = *(herald_msg *const *)at;
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            encode_map(pk, msg_fields, NFIELDS(msg_fields), &v[i], 0);
        break;
    }
    case FK_SG: {
        const herald_sync_group *v = *(herald_sync_group *const *)at;
        msgpack_pack_array(pk, 2 * n);
        for (uint32_t i = 0; i < n; i++) {
            msgpack_pack_uint32(pk, v[i].group);
            msgpack_pack_uint64(pk, v[i].useq);
        }
        break;
    }
    case FK_SC: {
        const herald_sync_conv *v = *(herald_sync_conv *const *)at;
        msgpack_pack_array(pk, 2 * n);
        for (uint32_t i = 0; i < n; i++) {
            pack_str(pk, v[i].conv.ptr ? v[i].conv.ptr : "", v[i].conv.len);
            msgpack_pack_uint64(pk, v[i].seq);
        }
        break;
    }
    }
}

/* Encodes the present fields of base. For frames, "m" only for DELIVER. */
static void encode_map(msgpack_packer *pk, const field *tab, size_t ntab,
                       const void *base, uint32_t type)
{
    uint32_t n = 0;
    for (size_t i = 0; i < ntab; i++)
        if (field_present(&tab[i], base) && (tab[i].kind != FK_MSG || type == HERALD_FT_DELIVER))
            n++;
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < ntab; i++)
        if (field_present(&tab[i], base) && (tab[i].kind != FK_MSG || type == HERALD_FT_DELIVER))
            encode_field(pk, &tab[i], base);
}

int herald_frame_encode(const herald_frame *f, herald_buf *out)
{
    size_t start = out->len;
    pack_sink sink = {.b = out};
    msgpack_packer pk;
    uint32_t n;
    static const uint8_t zero[HERALD_FRAME_HEADER];

    if (f->type == 0 || f->type >= HERALD_FT_COUNT_)
        return HERALD_EINVAL;
    if (herald_buf_append(out, zero, sizeof zero) != 0)
        return HERALD_ENOMEM;
    msgpack_packer_init(&pk, &sink, buf_write);
    encode_map(&pk, frame_fields, NFIELDS(frame_fields), f, f->type);
    if (sink.failed || out->len - start - HERALD_FRAME_HEADER > UINT32_MAX) {
        out->len = start;
        return HERALD_ENOMEM;
    }
    n = (uint32_t)(out->len - start - HERALD_FRAME_HEADER);
    out->data[start] = (uint8_t)(n >> 24);
    out->data[start + 1] = (uint8_t)(n >> 16);
    out->data[start + 2] = (uint8_t)(n >> 8);
    out->data[start + 3] = (uint8_t)n;
    return 0;
}
