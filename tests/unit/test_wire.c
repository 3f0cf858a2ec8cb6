/* test_wire.c — frame codec: buffers, peek, round trips of every frame type,
 * and the decoder's rejections (truncation, bombs, types, required keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <herald/error.h>
#include <herald/protocol.h>
#include <msgpack.h>

#include "deliver.h"

/* ---- helpers ------------------------------------------------------------- */

static void assert_str(herald_str a, herald_str b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void assert_msg(const herald_msg *a, const herald_msg *b)
{
    assert_str(a->conv, b->conv);
    assert_int_equal(a->seq, b->seq);
    assert_str(a->from, b->from);
    assert_int_equal(a->ts, b->ts);
    assert_str(a->body, b->body);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->group, b->group);
    assert_int_equal(a->pos, b->pos);
    assert_int_equal(a->prev, b->prev);
}

static void assert_strs(const herald_str *a, uint32_t na, const herald_str *b, uint32_t nb)
{
    assert_int_equal(na, nb);
    for (uint32_t i = 0; i < na; i++)
        assert_str(a[i], b[i]);
}

/* Every field of two frames is equal ("m" only for DELIVER). */
static void assert_frame(const herald_frame *a, const herald_frame *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->rid, b->rid);
    assert_int_equal(a->ref, b->ref);
    assert_str(a->token, b->token);
    assert_int_equal(a->version, b->version);
    assert_str(a->user, b->user);
    assert_str(a->tenant, b->tenant);
    assert_int_equal(a->admin, b->admin);
    assert_int_equal(a->hb_ms, b->hb_ms);
    assert_int_equal(a->max_frame, b->max_frame);
    assert_str(a->conv, b->conv);
    assert_str(a->cmid, b->cmid);
    assert_str(a->body, b->body);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->ts, b->ts);
    assert_int_equal(a->dup, b->dup);
    assert_int_equal(a->code, b->code);
    assert_str(a->text, b->text);
    assert_int_equal(a->after, b->after);
    assert_int_equal(a->limit, b->limit);
    assert_int_equal(a->more, b->more);
    assert_str(a->op, b->op);
    assert_str(a->kind, b->kind);
    assert_str(a->owner, b->owner);
    assert_int_equal(a->cap, b->cap);
    assert_int_equal(a->count, b->count);
    if (a->type == HERALD_FT_DELIVER)
        assert_msg(&a->msg, &b->msg);
    assert_strs(a->members, a->n_members, b->members, b->n_members);
    assert_strs(a->read, a->n_read, b->read, b->n_read);
    assert_strs(a->unread, a->n_unread, b->unread, b->n_unread);
    assert_int_equal(a->n_msgs, b->n_msgs);
    for (uint32_t i = 0; i < a->n_msgs; i++)
        assert_msg(&a->msgs[i], &b->msgs[i]);
    assert_int_equal(a->n_sync_groups, b->n_sync_groups);
    for (uint32_t i = 0; i < a->n_sync_groups; i++) {
        assert_int_equal(a->sync_groups[i].group, b->sync_groups[i].group);
        assert_int_equal(a->sync_groups[i].pos, b->sync_groups[i].pos);
    }
    assert_int_equal(a->n_sync_convs, b->n_sync_convs);
    for (uint32_t i = 0; i < a->n_sync_convs; i++) {
        assert_str(a->sync_convs[i].conv, b->sync_convs[i].conv);
        assert_int_equal(a->sync_convs[i].seq, b->sync_convs[i].seq);
    }
    assert_str(a->app, b->app);
    assert_int_equal(a->window, b->window);
    assert_strs(a->depts, a->n_depts, b->depts, b->n_depts);
    assert_strs(a->tags, a->n_tags, b->tags, b->n_tags);
    assert_strs(a->limited, a->n_limited, b->limited, b->n_limited);
    assert_strs(a->bad_users, a->n_bad_users, b->bad_users, b->n_bad_users);
    assert_strs(a->bad_depts, a->n_bad_depts, b->bad_depts, b->n_bad_depts);
    assert_strs(a->bad_tags, a->n_bad_tags, b->bad_tags, b->n_bad_tags);
    assert_strs(a->groups, a->n_groups, b->groups, b->n_groups);
    assert_strs(a->statuses, a->n_statuses, b->statuses, b->n_statuses);
    assert_strs(a->reasons, a->n_reasons, b->reasons, b->n_reasons);
    assert_strs(a->texts, a->n_texts, b->texts, b->n_texts);
    assert_int_equal(a->n_times, b->n_times);
    for (uint32_t i = 0; i < a->n_times; i++)
        assert_int_equal(a->times[i], b->times[i]);
}

static const char body_bytes[] = {'h', 'i', 0, (char)0xff, '\n'};
static herald_str members[] = {{"alice", 5}, {"bob", 3}, {"carol", 5}};
static herald_str unread[] = {{"dave", 4}};
static herald_sync_group groups[] = {{1, 10}, {7, UINT64_MAX}, {UINT32_MAX, 1}};
static herald_sync_conv convs[] = {{{"ann", 3}, 5}, {{"news", 4}, 1ull << 40}};
static herald_msg msgs[] = {
    {{"c1", 2}, 1, {"alice", 5}, 1700000000000ull, {body_bytes, 5}, 1, 0, 3, 99,
     {"Acme", 4}, {"Sales lead", 10}, 97},
    {{"c1", 2}, 2, {"bob", 3}, 1700000000001ull, {"x", 1}, 0, 1, 3, 100, {0}, {0}, 0},
    {{0}, 0, {0}, 0, {0}, 0, 0, 0, 0, {0}, {0}, 0}, /* an empty message map */
};

/* A frame of `type` with every field set to a non-default value. */
static uint64_t times[] = {0, 1, UINT64_MAX};

static herald_frame full_frame(uint32_t type)
{
    herald_frame f = {
        .type = type, .rid = 1ull << 50, .ref = 77,
        .token = {"tok.mac", 7}, .version = HERALD_PROTOCOL_VERSION,
        .user = {"alice", 5}, .tenant = {"acme", 4}, .admin = true,
        .hb_ms = 30000, .max_frame = 1u << 20, .conv = {"c1", 2},
        .cmid = {"cm-1", 4}, .body = {body_bytes, 5}, .flags = HERALD_MSGF_SILENT,
        .seq = UINT64_MAX, .ts = 1700000000000ull, .dup = true, .code = HERALD_ENOT_MEMBER,
        .text = {"not a member", 12}, .after = 3, .limit = 100, .more = true,
        .op = {"create", 6}, .kind = {"group", 5}, .owner = {"alice", 5},
        .cap = 500, .count = 3, .msg = msgs[0],
        .n_members = 3, .members = members, .n_read = 2, .read = members,
        .n_unread = 1, .unread = unread, .n_msgs = 3, .msgs = msgs,
        .n_sync_groups = 3, .sync_groups = groups, .n_sync_convs = 2, .sync_convs = convs,
        .app = {"hr", 2}, .window = 1800, .n_depts = 2, .depts = members, .n_tags = 1,
        .tags = unread, .n_limited = 1, .limited = unread, .n_bad_users = 3,
        .bad_users = members, .n_bad_depts = 2, .bad_depts = members, .n_bad_tags = 1,
        .bad_tags = unread, .n_groups = 2, .groups = members, .n_statuses = 3,
        .statuses = members, .n_times = 3, .times = times, .n_reasons = 3, .reasons = members,
        .n_texts = 1, .texts = unread,
    };
    return f;
}

/* Encodes f, checks the header and peek, decodes into *out. */
static int encode_decode(const herald_frame *f, herald_buf *buf, herald_frame *out)
{
    size_t flen = 0;
    uint32_t n;
    assert_int_equal(herald_frame_encode(f, buf), 0);
    assert_true(buf->len > HERALD_FRAME_HEADER);
    n = (uint32_t)buf->data[0] << 24 | (uint32_t)buf->data[1] << 16 |
        (uint32_t)buf->data[2] << 8 | buf->data[3];
    assert_int_equal(n, buf->len - HERALD_FRAME_HEADER);
    assert_int_equal(herald_frame_peek(buf->data, buf->len, 0, &flen), 0);
    assert_int_equal(flen, buf->len);
    return herald_frame_decode(buf->data + HERALD_FRAME_HEADER, n, NULL, out);
}

/* Decodes raw payload bytes (no header). */
static int decode_raw(const void *p, size_t n, herald_frame *out)
{
    return herald_frame_decode(p, n, NULL, out);
}

static int frame_is_zero(const herald_frame *f)
{
    static const herald_frame zero;
    return memcmp(f, &zero, sizeof zero) == 0;
}

/* ---- buffers and helpers -------------------------------------------------- */

static void test_buf(void **state)
{
    herald_buf b = {0};
    (void)state;
    assert_int_equal(herald_buf_append(&b, "hello", 5), 0);
    assert_int_equal(herald_buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, 5);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(herald_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10005);
    herald_buf_consume(&b, 3);
    assert_int_equal(b.len, 10002);
    assert_memory_equal(b.data, "lo0123", 6);
    herald_buf_consume(&b, 100000);
    assert_int_equal(b.len, 0);
    assert_int_equal(herald_buf_reserve(&b, SIZE_MAX), HERALD_ENOMEM);
    herald_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    herald_buf_free(NULL);
}

static void test_str_helpers(void **state)
{
    herald_str s = herald_str_z("abc"), none = herald_str_z(NULL);
    (void)state;
    assert_int_equal(s.len, 3);
    assert_true(herald_str_eq(s, "abc"));
    assert_false(herald_str_eq(s, "ab"));
    assert_false(herald_str_eq(s, "abcd"));
    assert_false(herald_str_eq(s, NULL));
    assert_null(none.ptr);
    assert_int_equal(none.len, 0);
    assert_true(herald_str_eq(none, NULL));
    assert_false(herald_str_eq(none, "x"));
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(herald_frame_type_name(HERALD_FT_HELLO), "HELLO");
    assert_string_equal(herald_frame_type_name(HERALD_FT_RECEIPTS_RESULT), "RECEIPTS_RESULT");
    assert_string_equal(herald_frame_type_name(HERALD_FT_PONG), "PONG");
    assert_string_equal(herald_frame_type_name(0), "UNKNOWN");
    assert_string_equal(herald_frame_type_name(HERALD_FT_COUNT_), "UNKNOWN");
    assert_string_equal(herald_frame_type_name(UINT32_MAX), "UNKNOWN");
}

static void test_error_strings(void **state)
{
    (void)state;
    assert_string_equal(herald_err_name(HERALD_EOK), "OK");
    assert_string_equal(herald_err_name(HERALD_ENOT_FOUND), "NOT_FOUND");
    assert_string_equal(herald_err_name(HERALD_EINTERNAL), "INTERNAL");
    assert_string_equal(herald_err_name(-1), "UNKNOWN");
    assert_string_equal(herald_err_name(HERALD_E_COUNT_), "UNKNOWN");
    assert_string_equal(herald_err_name(1 << 30), "UNKNOWN");
    assert_string_equal(herald_strerror(HERALD_ETOO_BIG), "frame exceeds the size limit");
    assert_string_equal(herald_strerror(-5), "unknown error");
    for (int i = 0; i < HERALD_E_COUNT_; i++) {
        assert_string_not_equal(herald_err_name(i), "UNKNOWN");
        assert_string_not_equal(herald_strerror(i), "unknown error");
    }
}

/* ---- peek ------------------------------------------------------------------ */

static void test_peek(void **state)
{
    uint8_t b[16] = {0, 0, 0, 3, 0x81, 0xa1, 't'};
    size_t flen = 99;
    (void)state;
    for (size_t n = 0; n < 4; n++) { /* partial header */
        assert_int_equal(herald_frame_peek(b, n, 0, &flen), 0);
        assert_int_equal(flen, 0);
    }
    flen = 99;
    assert_int_equal(herald_frame_peek(b, 6, 0, &flen), 0); /* partial payload */
    assert_int_equal(flen, 0);
    assert_int_equal(herald_frame_peek(b, 7, 0, &flen), 0);
    assert_int_equal(flen, 7);
    assert_int_equal(herald_frame_peek(b, 16, 0, &flen), 0); /* next frame follows */
    assert_int_equal(flen, 7);
    assert_int_equal(herald_frame_peek(b, 7, 3, &flen), 0);  /* exactly at cap */
    assert_int_equal(flen, 7);
    assert_int_equal(herald_frame_peek(b, 7, 2, &flen), HERALD_ETOO_BIG);
    assert_int_equal(flen, 0);
    memcpy(b, "\0\0\0\0", 4);
    assert_int_equal(herald_frame_peek(b, 7, 0, &flen), HERALD_EPROTOCOL);
    memcpy(b, "\xff\xff\xff\xff", 4); /* oversized, judged from the header alone */
    assert_int_equal(herald_frame_peek(b, 4, 0, &flen), HERALD_ETOO_BIG);
    memcpy(b, "\x00\x10\x00\x01", 4); /* default cap + 1 */
    assert_int_equal(herald_frame_peek(b, 4, 0, &flen), HERALD_ETOO_BIG);
    memcpy(b, "\x00\x10\x00\x00", 4); /* default cap */
    assert_int_equal(herald_frame_peek(b, 4, 0, &flen), 0);
    assert_int_equal(flen, 0);
}

/* ---- round trips ---------------------------------------------------------- */

/* Every frame type with every field set survives encode → decode, and the
 * decoded strings point into the payload. */
static void test_round_trip_full(void **state)
{
    (void)state;
    for (uint32_t t = 1; t < HERALD_FT_COUNT_; t++) {
        herald_frame in = full_frame(t), out;
        herald_buf buf = {0};
        assert_int_equal(encode_decode(&in, &buf, &out), 0);
        assert_frame(&in, &out);
        assert_true((const uint8_t *)out.user.ptr > buf.data &&
                    (const uint8_t *)out.user.ptr < buf.data + buf.len);
        assert_true((const uint8_t *)out.body.ptr > buf.data &&
                    (const uint8_t *)out.body.ptr < buf.data + buf.len);
        assert_true((const uint8_t *)out.msgs[0].body.ptr > buf.data &&
                    (const uint8_t *)out.msgs[0].body.ptr < buf.data + buf.len);
        herald_frame_release(&out);
        assert_true(frame_is_zero(&out));
        herald_buf_free(&buf);
    }
}

/* Minimal frames (only the required keys) round-trip too, and absent
 * fields stay absent. */
static void test_round_trip_minimal(void **state)
{
    (void)state;
    for (uint32_t t = 1; t < HERALD_FT_COUNT_; t++) {
        herald_frame in = {.type = t}, out;
        herald_buf buf = {0};
        in.token = herald_str_z("t");
        in.conv = herald_str_z("c");
        in.code = HERALD_EPROTOCOL;
        in.user = herald_str_z("u");
        in.seq = 1;
        in.op = herald_str_z("info");
        in.app = herald_str_z("a");
        assert_int_equal(encode_decode(&in, &buf, &out), 0);
        assert_frame(&in, &out);
        assert_null(out.members);
        assert_null(out.msgs);
        assert_null(out.body.ptr);
        herald_frame_release(&out);
        herald_buf_free(&buf);
    }
}

/* Zero/false/empty fields are omitted: a PING with only a type is {t: 18}. */
static void test_encode_omits_defaults(void **state)
{
    herald_frame f = {.type = HERALD_FT_PING, .conv = {"", 0}, .user = {"x", 0}};
    herald_buf buf = {0};
    static const uint8_t want[] = {0, 0, 0, 4, 0x81, 0xa1, 't', 18};
    (void)state;
    assert_int_equal(herald_frame_encode(&f, &buf), 0);
    assert_int_equal(buf.len, sizeof want);
    assert_memory_equal(buf.data, want, sizeof want);
    herald_buf_free(&buf);
}

/* Frames append to what the buffer holds; errors leave its length. */
static void test_encode_appends_and_rejects(void **state)
{
    herald_frame a = {.type = HERALD_FT_PING, .rid = 1}, b = {.type = HERALD_FT_PONG, .rid = 2};
    herald_frame bad = {.type = 0}, bad2 = {.type = HERALD_FT_COUNT_}, out;
    herald_buf buf = {0};
    size_t flen;
    (void)state;
    assert_int_equal(herald_frame_encode(&a, &buf), 0);
    assert_int_equal(herald_frame_encode(&b, &buf), 0);
    assert_int_equal(herald_frame_encode(&bad, &buf), HERALD_EINVAL);
    assert_int_equal(herald_frame_encode(&bad2, &buf), HERALD_EINVAL);
    assert_int_equal(herald_frame_peek(buf.data, buf.len, 0, &flen), 0);
    assert_int_equal(herald_frame_decode(buf.data + 4, flen - 4, NULL, &out), 0);
    assert_int_equal(out.rid, 1);
    herald_buf_consume(&buf, flen);
    assert_int_equal(herald_frame_peek(buf.data, buf.len, 0, &flen), 0);
    assert_int_equal(flen, buf.len);
    assert_int_equal(herald_frame_decode(buf.data + 4, flen - 4, NULL, &out), 0);
    assert_int_equal(out.type, HERALD_FT_PONG);
    assert_int_equal(out.rid, 2);
    herald_buf_free(&buf);
}

/* "body" may arrive as str; unknown keys (of any shape) are skipped. */
static void test_body_str_and_unknown_keys(void **state)
{
    /* {"t":3,"conv":"c","body":"hi","zz":[1,{"a":nil}],"x":{}} */
    static const uint8_t p[] = {0x85, 0xa1, 't', 0x03, 0xa4, 'c', 'o', 'n', 'v', 0xa1, 'c',
                                0xa4, 'b', 'o', 'd', 'y', 0xa2, 'h', 'i', 0xa2, 'z', 'z',
                                0x92, 0x01, 0x81, 0xa1, 'a', 0xc0, 0xa1, 'x', 0x80};
    herald_frame f;
    (void)state;
    assert_int_equal(decode_raw(p, sizeof p, &f), 0);
    assert_int_equal(f.type, HERALD_FT_SEND);
    assert_true(herald_str_eq(f.conv, "c"));
    assert_true(herald_str_eq(f.body, "hi"));
    assert_ptr_equal(f.body.ptr, (const char *)p + 17);
    herald_frame_release(&f);
}

/* Big integers in every width decode (msgpack-c picks the shortest). */
static void test_integer_widths(void **state)
{
    static const uint64_t vals[] = {1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
                                    (uint64_t)UINT32_MAX + 1, UINT64_MAX};
    (void)state;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        herald_frame in = {.type = HERALD_FT_OK, .rid = vals[i], .seq = vals[i]}, out;
        herald_buf buf = {0};
        assert_int_equal(encode_decode(&in, &buf, &out), 0);
        assert_int_equal(out.rid, vals[i]);
        assert_int_equal(out.seq, vals[i]);
        herald_buf_free(&buf);
    }
}

/* ---- rejections ----------------------------------------------------------- */

#define EXPECT(rc, ...)                                                       \
    do {                                                                      \
        static const uint8_t p_[] = {__VA_ARGS__};                            \
        herald_frame f_;                                                      \
        memset(&f_, 0xa5, sizeof f_);                                         \
        assert_int_equal(decode_raw(p_, sizeof p_, &f_), rc);                 \
        if (rc)                                                               \
            assert_true(frame_is_zero(&f_));                                  \
        herald_frame_release(&f_);                                            \
    } while (0)

/* A full frame cut at every length is rejected and leaves *out zeroed. */
static void test_truncated_everywhere(void **state)
{
    herald_frame in = full_frame(HERALD_FT_SYNC_RESULT), out;
    herald_buf buf = {0};
    (void)state;
    assert_int_equal(herald_frame_encode(&in, &buf), 0);
    for (size_t n = 0; n < buf.len - HERALD_FRAME_HEADER; n++) {
        memset(&out, 0xa5, sizeof out);
        assert_int_equal(herald_frame_decode(buf.data + 4, n, NULL, &out), HERALD_EPROTOCOL);
        assert_true(frame_is_zero(&out));
    }
    herald_buf_free(&buf);
}

static void test_trailing_and_not_map(void **state)
{
    (void)state;
    EXPECT(0, 0x81, 0xa1, 't', 0x12);
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0x12, 0x00);     /* trailing byte */
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0x12, 0x80);     /* two maps */
    EXPECT(HERALD_EPROTOCOL, 0x12);                            /* scalar */
    EXPECT(HERALD_EPROTOCOL, 0x91, 0x12);                      /* array */
    EXPECT(HERALD_EPROTOCOL, 0xa1, 't');                       /* string */
    EXPECT(HERALD_EPROTOCOL, 0x80);                            /* no "t" */
    EXPECT(HERALD_EPROTOCOL, 0x81, 0x01, 0x12);                /* non-str key */
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xc4, 0x01, 't', 0x12);     /* bin key */
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0xd4, 0x00, 0x12); /* ext */
    EXPECT(HERALD_EPROTOCOL, 0xc1);
    {
        herald_frame f;
        assert_int_equal(decode_raw(NULL, 0, &f), HERALD_EPROTOCOL);
    }
}

static void test_bombs(void **state)
{
    uint8_t deep[64];
    herald_frame f;
    herald_limits lim = {.max_depth = 3};
    (void)state;
    /* {"t": 18, "zz": [ … ]} with a 4-byte array32 count */
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x12, 0xa2, 'z', 'z', 0xdd, 0xff, 0xff, 0xff, 0xff);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x12, 0xa3, 'm', 'e', 'm', 0xdd, 0x7f, 0xff, 0xff,
           0xff, 0xa0);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x12, 0xa2, 'z', 'z', 0xdf, 0xff, 0xff, 0xff, 0xff);
    EXPECT(HERALD_EPROTOCOL, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 't', 0x12);
    EXPECT(HERALD_EPROTOCOL, 0xde, 0xff, 0xff, 0xa1, 't', 0x12);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x12, 0xa2, 'z', 'z', 0xdb, 0xff, 0xff, 0xff, 0xff);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x12, 0xa2, 'z', 'z', 0xc6, 0x00, 0x00, 0x01, 0x00);
    /* depth bomb: {"t":18,"zz":[[[[…]]]]} 60 levels under an unknown key */
    memcpy(deep, "\x82\xa1t\x12\xa2zz", 7);
    memset(deep + 7, 0x91, 56);
    deep[63] = 0x01;
    assert_int_equal(decode_raw(deep, sizeof deep, &f), HERALD_EPROTOCOL);
    assert_true(frame_is_zero(&f));
    /* at the configured cap: map(1) + 2 arrays = depth 3 */
    memset(deep + 7, 0x91, 2);
    deep[9] = 0x01;
    assert_int_equal(herald_frame_decode(deep, 10, &lim, &f), 0);
    herald_frame_release(&f);
    lim.max_depth = 2;
    assert_int_equal(herald_frame_decode(deep, 10, &lim, &f), HERALD_EPROTOCOL);
}

static void test_size_cap(void **state)
{
    static const uint8_t p[] = {0x81, 0xa1, 't', 0x12};
    herald_limits lim = {.max_frame = 3};
    herald_frame f;
    (void)state;
    assert_int_equal(herald_frame_decode(p, sizeof p, &lim, &f), HERALD_ETOO_BIG);
    assert_true(frame_is_zero(&f));
    lim.max_frame = 4;
    assert_int_equal(herald_frame_decode(p, sizeof p, &lim, &f), 0);
}

static void test_wrong_types(void **state)
{
    (void)state;
    /* t as str, negative, bool, > u32 */
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0xa1, '1');
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0xff);
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0xc3);
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0xcf, 0, 0, 0, 1, 0, 0, 0, 18);
    /* rid as float / str */
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x12, 0xa3, 'r', 'i', 'd', 0xca, 0, 0, 0, 0);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x12, 0xa3, 'r', 'i', 'd', 0xa1, '1');
    /* rid nil */
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x12, 0xa3, 'r', 'i', 'd', 0xc0);
    /* conv as bin (only body takes bin) */
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x03, 0xa4, 'c', 'o', 'n', 'v', 0xc4, 0x01, 'c');
    /* admin as 1 */
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x02, 0xa5, 'a', 'd', 'm', 'i', 'n', 0x01);
    /* hb (u32) above UINT32_MAX */
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x02, 0xa2, 'h', 'b', 0xcf, 0, 0, 0, 1, 0, 0, 0,
           0);
    /* mem as str; mem element not str */
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x10, 0xa3, 'm', 'e', 'm', 0xa1, 'a');
    EXPECT(HERALD_EPROTOCOL, 0x83, 0xa1, 't', 0x10, 0xa2, 'o', 'p', 0xa1, 'x', 0xa3, 'm', 'e',
           'm', 0x92, 0xa1, 'a', 0x01);
    /* m not a map; msgs element not a map; message key wrong type */
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 'm', 0x91, 0x01);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x06, 0xa1, 'm', 0x91, 0x01);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x08, 0xa4, 'm', 's', 'g', 's', 0x92, 0x80, 0x01);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x06, 0xa1, 'm', 0x81, 0xa3, 's', 'e', 'q', 0xa1,
           '1');
    /* sg odd length; sg group > u32; sg pos str; sc conv not str; sc seq str */
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x07, 0xa2, 's', 'g', 0x93, 1, 2, 3);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x07, 0xa2, 's', 'g', 0x92, 0xcf, 0, 0, 0, 1, 0, 0,
           0, 0, 1);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x07, 0xa2, 's', 'g', 0x92, 1, 0xa1, '1');
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x07, 0xa2, 's', 'c', 0x92, 1, 1);
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x07, 0xa2, 's', 'c', 0x92, 0xa1, 'c', 0xa1, '1');
    EXPECT(HERALD_EPROTOCOL, 0x82, 0xa1, 't', 0x07, 0xa2, 's', 'c', 0x91, 0xa1, 'c');
    /* an array key given twice (would leak the first array) */
    EXPECT(HERALD_EPROTOCOL, 0x83, 0xa1, 't', 0x07, 0xa2, 's', 'g', 0x92, 1, 2, 0xa2, 's', 'g',
           0x92, 3, 4);
    /* the good versions of the above */
    EXPECT(0, 0x82, 0xa1, 't', 0x07, 0xa2, 's', 'g', 0x92, 1, 2);
    EXPECT(0, 0x82, 0xa1, 't', 0x07, 0xa2, 's', 'c', 0x92, 0xa1, 'c', 2);
    EXPECT(0, 0x82, 0xa1, 't', 0x07, 0xa2, 's', 'g', 0x90);
}

static void test_unknown_type(void **state)
{
    (void)state;
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0x00);
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', HERALD_FT_COUNT_);
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0x7f);
    EXPECT(HERALD_EPROTOCOL, 0x81, 0xa1, 't', 0xce, 0xff, 0xff, 0xff, 0xff);
    /* unknown type that also carries arrays: no leak on the error path */
    EXPECT(HERALD_EPROTOCOL, 0x83, 0xa1, 't', 0x63, 0xa3, 'm', 'e', 'm', 0x91, 0xa1, 'a', 0xa2,
           's', 'g', 0x92, 1, 2);
}

/* Each required key of the protocol table, removed, makes decode fail. */
static void test_missing_required(void **state)
{
    static const struct {
        uint32_t type;   /* frame type */
        const char *key; /* required key to drop */
    } req[] = {
        {HERALD_FT_HELLO, "tok"},     {HERALD_FT_SEND, "conv"},     {HERALD_FT_ERROR, "code"},
        {HERALD_FT_DELIVER, "m"},     {HERALD_FT_HISTORY, "conv"},  {HERALD_FT_READ, "conv"},
        {HERALD_FT_READ, "seq"},      {HERALD_FT_RECEIPT, "conv"},  {HERALD_FT_RECEIPT, "user"},
        {HERALD_FT_RECEIPT, "seq"},   {HERALD_FT_RECEIPTS, "conv"}, {HERALD_FT_RECEIPTS, "seq"},
        {HERALD_FT_CONV, "op"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        herald_frame in = {.type = req[i].type}, out;
        herald_buf buf = {0};
        in.token = herald_str_z(strcmp(req[i].key, "tok") ? "t" : NULL);
        in.conv = herald_str_z(strcmp(req[i].key, "conv") ? "c" : NULL);
        in.code = strcmp(req[i].key, "code") ? 1 : 0;
        in.user = herald_str_z(strcmp(req[i].key, "user") ? "u" : NULL);
        in.seq = strcmp(req[i].key, "seq") ? 1 : 0;
        in.op = herald_str_z(strcmp(req[i].key, "op") ? "add" : NULL);
        if (strcmp(req[i].key, "m") == 0)
            in.type = HERALD_FT_DELIVER; /* "m" is always encoded for DELIVER */
        assert_int_equal(herald_frame_encode(&in, &buf), 0);
        if (strcmp(req[i].key, "m") == 0) {
            /* DELIVER without "m": hand-made */
            static const uint8_t p[] = {0x81, 0xa1, 't', 0x06};
            assert_int_equal(decode_raw(p, sizeof p, &out), HERALD_EPROTOCOL);
        } else {
            assert_int_equal(herald_frame_decode(buf.data + 4, buf.len - 4, NULL, &out),
                             HERALD_EPROTOCOL);
        }
        assert_true(frame_is_zero(&out));
        herald_buf_free(&buf);
    }
}

/* A frame built by msgpack-c directly (not our encoder) decodes. */
static void test_foreign_encoder(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    herald_frame f;
    (void)state;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "t", 1);
    msgpack_pack_uint8(&pk, HERALD_FT_HISTORY);
    msgpack_pack_str_with_body(&pk, "conv", 4);
    msgpack_pack_str_with_body(&pk, "room:1", 6);
    msgpack_pack_str_with_body(&pk, "after", 5);
    msgpack_pack_uint64(&pk, 42);
    msgpack_pack_str_with_body(&pk, "limit", 5);
    msgpack_pack_uint16(&pk, 50);
    assert_int_equal(decode_raw(sb.data, sb.size, &f), 0);
    assert_int_equal(f.type, HERALD_FT_HISTORY);
    assert_true(herald_str_eq(f.conv, "room:1"));
    assert_int_equal(f.after, 42);
    assert_int_equal(f.limit, 50);
    herald_frame_release(&f);
    msgpack_sbuffer_destroy(&sb);
}

/* One DELIVER encoded once: every recipient's frame decodes as the frame
 * with its flags and pv, and is byte for byte herald_frame_encode's when
 * both are set; the shared encoding is used (fast). */
static void test_deliver_template(void **state)
{
    herald_frame f = {.type = HERALD_FT_DELIVER, .msg = msgs[0]};
    deliver_tpl t;
    static const struct {
        uint32_t flags;
        uint64_t prev;
    } each[] = {{0, 0}, {HERALD_MSGF_SILENT, 96}, {7, UINT64_MAX}, {1, 1}};
    (void)state;
    assert_int_equal(deliver_tpl_init(&t, &f), 0);
    assert_true(t.fast);
    for (size_t i = 0; i < sizeof each / sizeof each[0]; i++) {
        herald_buf got = {0}, want = {0};
        herald_frame x = f, back;
        x.msg.flags = each[i].flags;
        x.msg.prev = each[i].prev;
        assert_int_equal(deliver_tpl_put(&t, each[i].flags, each[i].prev, &got), 0);
        assert_int_equal(herald_frame_encode(&x, &want), 0);
        if (each[i].flags && each[i].prev) {
            assert_int_equal(got.len, want.len);
            assert_memory_equal(got.data, want.data, got.len);
        }
        assert_int_equal(decode_raw(got.data + HERALD_FRAME_HEADER, got.len - HERALD_FRAME_HEADER,
                                    &back),
                         0);
        assert_int_equal(back.type, HERALD_FT_DELIVER);
        assert_msg(&back.msg, &x.msg);
        herald_frame_release(&back);
        herald_buf_free(&got);
        herald_buf_free(&want);
    }
    deliver_tpl_free(&t);
    /* Another frame type has no template fast path, and stays right. */
    {
        herald_frame r = {.type = HERALD_FT_RECEIPT, .conv = herald_str_z("c1"), .seq = 3};
        herald_buf got = {0};
        assert_int_equal(deliver_tpl_init(&t, &r), 0);
        assert_false(t.fast);
        assert_int_equal(deliver_tpl_put(&t, 0, 0, &got), 0);
        assert_true(got.len > HERALD_FRAME_HEADER);
        herald_buf_free(&got);
        deliver_tpl_free(&t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_deliver_template),
        cmocka_unit_test(test_str_helpers),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_error_strings),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_round_trip_full),
        cmocka_unit_test(test_round_trip_minimal),
        cmocka_unit_test(test_encode_omits_defaults),
        cmocka_unit_test(test_encode_appends_and_rejects),
        cmocka_unit_test(test_body_str_and_unknown_keys),
        cmocka_unit_test(test_integer_widths),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_trailing_and_not_map),
        cmocka_unit_test(test_bombs),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_foreign_encoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
