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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpcheck.h"
#include "mptab.h"

herald_frame herald_frame_error(int code, const char *text, uint64_t ref)
{
    return (herald_frame){.type = HERALD_FT_ERROR, .code = (uint32_t)code,
                          .text = herald_str_z(text ? text : herald_strerror(code)), .ref = ref};
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

#define M(k, kind, member) {k, kind, offsetof(herald_msg, member), 0, NULL, 0, 0}
static const mpt_field msg_fields[] = {
    M("conv", MPT_STR, conv), M("seq", MPT_U64, seq),     M("from", MPT_STR, from),
    M("ts", MPT_U64, ts),     M("body", MPT_BODY, body),  M("mk", MPT_U32, kind),
    M("g", MPT_U32, group),   M("pos", MPT_U64, pos),     M("idc", MPT_STR, id_corp),
    M("idt", MPT_STR, id_title),
    /* Last, and in this order: what differs per recipient of one DELIVER
     * (deliver.h shares the bytes before them). */
    M("flags", MPT_U32, flags), M("pv", MPT_U64, prev),
};
#undef M

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* Index of every frame key in frame_fields; the table below is indexed by
 * these (designated initializers), so the required-key masks cannot drift
 * from the table order. */
enum frame_key {
    K_T, K_RID, K_REF, K_TOK, K_V, K_USER, K_TEN, K_ADMIN, K_HB, K_MAXF,
    K_CONV, K_CMID, K_BODY, K_FLAGS, K_SEQ, K_TS, K_DUP, K_CODE, K_MSG, K_AFTER,
    K_LIMIT, K_MORE, K_OP, K_KIND, K_OWNER, K_CAP, K_CNT, K_M, K_MEM, K_READ,
    K_UNREAD, K_MSGS, K_SG, K_SC, K_NR, K_NU, K_AID, K_NAME, K_TITLE, K_DEPT, K_PARENT,
    K_GRP, K_LDR, K_APP, K_WIN, K_DPS, K_TGS, K_LIM, K_IU, K_IP, K_ITG, K_CGS, K_STS, K_ATS,
    K_RSN, K_RTX, K_CORP, K_UNR, K_CVK, K_CVN, K_CVU,
    K_COUNT_
};
_Static_assert(K_COUNT_ <= 64, "the seen/required masks are 64-bit");

#define F(i, k, kind, member) [i] = {k, kind, offsetof(herald_frame, member), 0, NULL, 0, 0}
#define FA(i, k, kind, member, count)                                         \
    [i] = {k, kind, offsetof(herald_frame, member), offsetof(herald_frame, count), NULL, 0, 0}

static const mpt_field frame_fields[K_COUNT_] = {
    F(K_T, "t", MPT_U32, type),             F(K_RID, "rid", MPT_U64, rid),
    F(K_REF, "ref", MPT_U64, ref),          F(K_TOK, "tok", MPT_STR, token),
    F(K_V, "v", MPT_U32, version),          F(K_USER, "user", MPT_STR, user),
    F(K_TEN, "ten", MPT_STR, tenant),       F(K_ADMIN, "admin", MPT_BOOL, admin),
    F(K_HB, "hb", MPT_U32, hb_ms),          F(K_MAXF, "maxf", MPT_U32, max_frame),
    F(K_CONV, "conv", MPT_STR, conv),       F(K_CMID, "cmid", MPT_STR, cmid),
    F(K_BODY, "body", MPT_BODY, body),      F(K_FLAGS, "flags", MPT_U32, flags),
    F(K_SEQ, "seq", MPT_U64, seq),          F(K_TS, "ts", MPT_U64, ts),
    F(K_DUP, "dup", MPT_BOOL, dup),         F(K_CODE, "code", MPT_U32, code),
    F(K_MSG, "msg", MPT_STR, text),         F(K_AFTER, "after", MPT_U64, after),
    F(K_LIMIT, "limit", MPT_U32, limit),    F(K_MORE, "more", MPT_BOOL, more),
    F(K_OP, "op", MPT_STR, op),             F(K_KIND, "kind", MPT_STR, kind),
    F(K_OWNER, "owner", MPT_STR, owner),    F(K_CAP, "cap", MPT_U32, cap),
    F(K_CNT, "cnt", MPT_U32, count),
    [K_M] = {"m", MPT_MAP, offsetof(herald_frame, msg), 0, msg_fields, NFIELDS(msg_fields), 0},
    FA(K_MEM, "mem", MPT_STRS, members, n_members),
    FA(K_READ, "read", MPT_STRS, read, n_read),
    FA(K_UNREAD, "unread", MPT_STRS, unread, n_unread),
    [K_MSGS] = {"msgs", MPT_MAPS, offsetof(herald_frame, msgs), offsetof(herald_frame, n_msgs),
                msg_fields, NFIELDS(msg_fields), sizeof(herald_msg)},
    FA(K_SG, "sg", MPT_SG, sync_groups, n_sync_groups),
    FA(K_SC, "sc", MPT_SC, sync_convs, n_sync_convs),
    F(K_NR, "nr", MPT_U32, n_read_total),   F(K_NU, "nu", MPT_U32, n_unread_total),
    F(K_AID, "aid", MPT_STR, after_id),
    F(K_NAME, "name", MPT_STR, name),       F(K_TITLE, "title", MPT_STR, title),
    F(K_DEPT, "dept", MPT_STR, dept),       F(K_PARENT, "parent", MPT_STR, parent),
    F(K_GRP, "grp", MPT_U32, group),        F(K_LDR, "ldr", MPT_U32, leader),
    F(K_APP, "app", MPT_STR, app),          F(K_WIN, "win", MPT_U32, window),
    FA(K_DPS, "dps", MPT_STRS, depts, n_depts),
    FA(K_TGS, "tgs", MPT_STRS, tags, n_tags),
    FA(K_LIM, "lim", MPT_STRS, limited, n_limited),
    FA(K_IU, "iu", MPT_STRS, bad_users, n_bad_users),
    FA(K_IP, "ip", MPT_STRS, bad_depts, n_bad_depts),
    FA(K_ITG, "itg", MPT_STRS, bad_tags, n_bad_tags),
    FA(K_CGS, "cgs", MPT_STRS, groups, n_groups),
    FA(K_STS, "sts", MPT_STRS, statuses, n_statuses),
    FA(K_ATS, "ats", MPT_U64S, times, n_times),
    FA(K_RSN, "rsn", MPT_STRS, reasons, n_reasons),
    FA(K_RTX, "rtx", MPT_STRS, texts, n_texts),
    F(K_CORP, "corp", MPT_STR, corp),
    FA(K_UNR, "unr", MPT_STRS, unreached, n_unreached),
    FA(K_CVK, "cvk", MPT_STRS, conv_kinds, n_conv_kinds),
    FA(K_CVN, "cvn", MPT_U64S, conv_counts, n_conv_counts),
    FA(K_CVU, "cvu", MPT_U64S, conv_unread, n_conv_unread),
};
#undef F
#undef FA

/* Required keys per frame type: the starred keys of the table in
 * protocol.h ("t" is checked for every frame). A required key must carry a
 * non-default value: zero and "" mean absent on this wire (the encoder
 * omits them), so accepting {"t": READ, "conv": "c", "seq": 0} would admit
 * a frame that does not survive a re-encoding. */
#define BIT(k) (1ull << (k))
static const uint64_t required[HERALD_FT_COUNT_] = {
    [HERALD_FT_HELLO] = BIT(K_TOK),
    [HERALD_FT_SEND] = BIT(K_CONV),
    [HERALD_FT_ERROR] = BIT(K_CODE),
    [HERALD_FT_DELIVER] = BIT(K_M),
    [HERALD_FT_HISTORY] = BIT(K_CONV),
    [HERALD_FT_READ] = BIT(K_CONV) | BIT(K_SEQ),
    [HERALD_FT_RECEIPT] = BIT(K_CONV) | BIT(K_USER) | BIT(K_SEQ),
    [HERALD_FT_RECEIPTS] = BIT(K_CONV) | BIT(K_SEQ),
    [HERALD_FT_RECALL] = BIT(K_CONV) | BIT(K_SEQ),
    [HERALD_FT_DND] = BIT(K_OP),
    [HERALD_FT_URGENT] = BIT(K_OP) | BIT(K_CONV) | BIT(K_SEQ),
    [HERALD_FT_REMIND] = BIT(K_OP) | BIT(K_CONV) | BIT(K_SEQ),
    [HERALD_FT_DIR] = BIT(K_OP),
    [HERALD_FT_CONTACT] = BIT(K_OP) | BIT(K_CONV),
    [HERALD_FT_TAG] = BIT(K_OP) | BIT(K_USER),
    [HERALD_FT_MASS] = BIT(K_OP),
    [HERALD_FT_CONV] = BIT(K_OP),
    [HERALD_FT_APP] = BIT(K_OP), /* app: required by the ops that name one */
    [HERALD_FT_TRANSFER] = BIT(K_OP),
};

/* True when key k of a decoded frame holds a non-default value; `seen` has
 * a bit per key present in the map (used for kinds whose presence is the key
 * itself: the "m" map, arrays, bools). */
static bool key_set(const herald_frame *f, enum frame_key k, uint64_t seen)
{
    const char *at = (const char *)f + frame_fields[k].off;
    uint64_t u64;
    uint32_t u32;

    switch (frame_fields[k].kind) {
    case MPT_STR:
    case MPT_BODY:
        return ((const herald_str *)at)->len != 0;
    case MPT_U64:
        memcpy(&u64, at, sizeof u64);
        return u64 != 0;
    case MPT_U32:
        memcpy(&u32, at, sizeof u32);
        return u32 != 0;
    default:
        return (seen & BIT(k)) != 0;
    }
}

/* True when every required key of f's (known) type is set. */
static bool required_present(const herald_frame *f, uint64_t seen)
{
    for (unsigned k = 0; k < K_COUNT_; k++)
        if ((required[f->type] & BIT(k)) && !key_set(f, (enum frame_key)k, seen))
            return false;
    return true;
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
    mpt_free(frame_fields, NFIELDS(frame_fields), f);
    memset(f, 0, sizeof *f);
}

/* The "m" message is only encoded for DELIVER. */
static bool skip_frame_field(const mpt_field *fd, const void *base)
{
    return fd->kind == MPT_MAP && ((const herald_frame *)base)->type != HERALD_FT_DELIVER;
}

int herald_frame_decode(const uint8_t *payload, size_t len, const herald_limits *lim,
                        herald_frame *out)
{
    uint32_t max_frame = lim && lim->max_frame ? lim->max_frame : HERALD_FRAME_MAX_DEFAULT;
    uint32_t max_depth = lim && lim->max_depth ? lim->max_depth : HERALD_DEPTH_MAX_DEFAULT;
    uint64_t seen = 0;
    int rc;

    memset(out, 0, sizeof *out);
    if (len > max_frame)
        return HERALD_ETOO_BIG;
    if (len == 0 || payload[0] < 0x80 || (payload[0] > 0x8f && payload[0] != 0xde &&
                                          payload[0] != 0xdf))
        return HERALD_EPROTOCOL; /* not a map */
    rc = mpt_decode_bytes(payload, len, max_depth, frame_fields, NFIELDS(frame_fields), out,
                          sizeof *out, &seen);
    if (rc)
        return rc;
    if (out->type == 0 || out->type >= HERALD_FT_COUNT_ || !required_present(out, seen)) {
        herald_frame_release(out);
        return HERALD_EPROTOCOL;
    }
    return 0;
}

int herald_frame_encode(const herald_frame *f, herald_buf *out)
{
    size_t start = out->len;
    mpt_sink sink = {.b = out};
    msgpack_packer pk;
    uint32_t n;
    static const uint8_t zero[HERALD_FRAME_HEADER];

    if (f->type == 0 || f->type >= HERALD_FT_COUNT_)
        return HERALD_EINVAL;
    if (herald_buf_append(out, zero, sizeof zero) != 0)
        return HERALD_ENOMEM;
    msgpack_packer_init(&pk, &sink, mpt_sink_write);
    mpt_encode(&pk, frame_fields, NFIELDS(frame_fields), f, skip_frame_field);
    if (sink.failed || out->len - start - HERALD_FRAME_HEADER > UINT32_MAX) {
        out->len = start;
        return HERALD_ENOMEM;
    }
    n = (uint32_t)(out->len - start - HERALD_FRAME_HEADER);
    mpt_put_be32(out->data + start, n);
    return 0;
}
