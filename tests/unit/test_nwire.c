/* test_nwire.c — gateway/node messages: round trips of every message with
 * every field set, omitted defaults, caps on both sides, truncation at every
 * length, wrong types, and apply_result through its own arena. Leaks show
 * under the ASan build (HERALD_SANITIZE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc_wrap.h"

#include <herald/error.h>
#include <msgpack.h>

#include "nwire.h"

/* ---- helpers ------------------------------------------------------------- */

static herald_str S(const char *z)
{
    return herald_str_z(z);
}

static void assert_str(herald_str a, herald_str b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.ptr, b.ptr, a.len);
}

/* Two C strings equal, NULL only equal to NULL. */
static void assert_cstr(const char *a, const char *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_string_equal(a, b);
}

/* A msgpack builder for hand-made (often malformed) inputs. */
typedef struct mk {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mk;

static void mk_init(mk *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mk_key(mk *m, const char *k)
{
    msgpack_pack_str(&m->pk, strlen(k));
    msgpack_pack_str_body(&m->pk, k, strlen(k));
}

static void mk_free(mk *m)
{
    msgpack_sbuffer_destroy(&m->sb);
}

static void assert_request(const nw_request *a, const nw_request *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->from, b->from);
    assert_str(a->tenant, b->tenant);
    assert_str(a->user, b->user);
    assert_int_equal(a->admin, b->admin);
    assert_int_equal(a->dnd_until, b->dnd_until);
    assert_str(a->frame, b->frame);
    assert_int_equal(a->group, b->group);
    assert_str(a->cmd, b->cmd);
}

static void assert_reply(const nw_reply *a, const nw_reply *b)
{
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->hint, b->hint);
    assert_int_equal(a->n_frames, b->n_frames);
    for (uint32_t i = 0; i < a->n_frames; i++)
        assert_str(a->frames[i], b->frames[i]);
    assert_str(a->result, b->result);
    assert_int_equal(a->authed, b->authed);
    assert_str(a->tenant, b->tenant);
    assert_str(a->user, b->user);
    assert_int_equal(a->admin, b->admin);
    assert_int_equal(a->dnd_until, b->dnd_until);
    assert_int_equal(a->close, b->close);
    assert_int_equal(a->n_leaders, b->n_leaders);
    for (uint32_t i = 0; i < a->n_leaders; i++)
        assert_int_equal(a->leaders[i], b->leaders[i]);
    assert_str(a->json, b->json);
}

static void assert_event(const nw_event *a, const nw_event *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->node, b->node);
    assert_int_equal(a->pubseq, b->pubseq);
    assert_str(a->tenant, b->tenant);
    assert_int_equal(a->n_users, b->n_users);
    for (uint32_t i = 0; i < a->n_users; i++)
        assert_str(a->users[i], b->users[i]);
    assert_int_equal(a->n_prevs, b->n_prevs);
    for (uint32_t i = 0; i < a->n_prevs; i++)
        assert_int_equal(a->prevs[i], b->prevs[i]);
    assert_str(a->frame, b->frame);
    assert_int_equal(a->until, b->until);
}

static void assert_result(const apply_result *a, const apply_result *b)
{
    assert_int_equal(a->err, b->err);
    assert_string_equal(a->errmsg, b->errmsg);
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->skipped, b->skipped);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->ts, b->ts);
    assert_int_equal(a->dup, b->dup);
    assert_int_equal(a->conv_kind, b->conv_kind);
    assert_int_equal(a->group, b->group);
    assert_int_equal(a->n_targets, b->n_targets);
    for (uint32_t i = 0; i < a->n_targets; i++) {
        assert_cstr(a->targets[i].user, b->targets[i].user);
    }
    assert_int_equal(a->n_reminders, b->n_reminders);
    for (uint32_t i = 0; i < a->n_reminders; i++) {
        const apply_remind *x = &a->reminders[i], *y = &b->reminders[i];
        assert_cstr(x->tenant, y->tenant);
        assert_cstr(x->conv, y->conv);
        assert_int_equal(x->seq, y->seq);
        assert_cstr(x->user, y->user);
        assert_cstr(x->pending, y->pending);
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->escalate, y->escalate);
    }
    assert_int_equal(a->n_mass, b->n_mass);
    for (uint32_t i = 0; i < a->n_mass; i++) {
        assert_cstr(a->mass[i].customer, b->mass[i].customer);
        assert_cstr(a->mass[i].owner, b->mass[i].owner);
        assert_cstr(a->mass[i].conv, b->mass[i].conv);
        assert_int_equal(a->mass[i].status, b->mass[i].status);
    }
}

/* Every prefix of an encoding is rejected and leaves the output zeroed. */
#define ASSERT_TRUNCATED(T, decode, buf)                                    \
    do {                                                                    \
        static const T zero_;                                               \
        for (size_t len_ = 0; len_ < (buf).len; len_++) {                   \
            T t_;                                                           \
            memset(&t_, 0xa5, sizeof t_);                                   \
            assert_int_equal(decode((buf).data, len_, &t_), HERALD_EPROTOCOL); \
            assert_memory_equal(&t_, &zero_, sizeof t_);                    \
        }                                                                   \
    } while (0)

/* ---- fixtures ------------------------------------------------------------ */

static const uint8_t frame_bytes[] = {0, 0, 0, 3, 0x81, 0xa1, 't'};

static nw_request full_request(void)
{
    return (nw_request){
        .kind = NW_CLIENT, .from = 7, .tenant = S("acme"), .user = S("alice"),
        .admin = true, .dnd_until = 1700000000123ull,
        .frame = {.ptr = (const char *)frame_bytes, .len = sizeof frame_bytes},
        .group = NW_MAX_GROUPS - 1, .cmd = {.ptr = "\x81\xa2op\x05", .len = 5},
    };
}

static herald_str reply_frames[] = {
    {.ptr = "\0\0\0\1\x80", .len = 5},
    {.ptr = "\0\0\0\2\x81\x00", .len = 6},
};

static void full_reply(nw_reply *r, int32_t status)
{
    memset(r, 0, sizeof *r);
    r->status = status;
    r->hint = 3;
    r->n_frames = 2;
    r->frames = reply_frames;
    r->result = (herald_str){.ptr = "\x81\xa3" "err\x01", .len = 6};
    r->authed = true;
    r->tenant = S("acme");
    r->user = S("bob");
    r->admin = true;
    r->dnd_until = UINT64_MAX;
    r->close = true;
    r->n_leaders = NW_MAX_GROUPS;
    for (uint32_t g = 0; g < NW_MAX_GROUPS; g++)
        r->leaders[g] = g % 3 ? g * 1000003u : 0;
    r->json = S("{\"ok\":true}");
}

static herald_str event_users[] = {{.ptr = "alice", .len = 5}, {.ptr = "bob", .len = 3},
                                   {.ptr = "", .len = 0}};
static uint64_t event_useqs[] = {1, 0, UINT64_MAX};

static nw_event full_event(void)
{
    return (nw_event){
        .kind = NW_EV_FRAME, .node = 2, .pubseq = 99, .tenant = S("acme"), .n_users = 3,
        .users = event_users, .n_prevs = 3, .prevs = event_useqs,
        .frame = {.ptr = (const char *)frame_bytes, .len = sizeof frame_bytes},
        .until = 12345,
    };
}

static apply_target res_targets[] = {{"alice"}, {"bob"}, {""}};
static apply_remind res_reminders[] = {
    {"acme", "c1", 5, "bob", NULL, 1, false},
    {"acme", "c1", 5, "alice", "bob,carol", 3, true},
};
static apply_mass res_mass[] = {
    {"cust1", "emp1", "dm-1", MASS_SENT},
    {"cust2", NULL, NULL, MASS_NO_OWNER},
};

static apply_result full_result(void)
{
    apply_result r = {
        .err = HERALD_EFORBIDDEN, .op = 5, .index = 1ull << 40, .skipped = true,
        .seq = 77, .ts = 1700000000000ull, .dup = true, .conv_kind = -2, .group = 64,
        .n_targets = 3, .targets = res_targets, .n_reminders = 2, .reminders = res_reminders,
        .n_mass = 2, .mass = res_mass,
    };
    strcpy(r.errmsg, "not the owner");
    return r;
}

/* ---- round trips --------------------------------------------------------- */

/* TRANSFER_* results carry apply_xfer with their mass entries. */
static void test_result_xfer(void **state)
{
    static const apply_xfer xf[2] = {{.tenant = "t1", .from = "e1", .at = 1234},
                                     {.tenant = "t1", .from = NULL, .at = 0}};
    apply_result a = full_result(), b;
    herald_buf buf = {0};
    (void)state;

    a.xfer = (apply_xfer *)xf;
    assert_int_equal(nw_result_encode(&a, &buf), 0);
    assert_int_equal(nw_result_decode(buf.data, buf.len, &b), 0);
    assert_non_null(b.xfer);
    assert_string_equal(b.xfer[0].tenant, "t1");
    assert_string_equal(b.xfer[0].from, "e1");
    assert_int_equal(b.xfer[0].at, 1234);
    assert_null(b.xfer[1].from);
    apply_result_free(&b);
    a.xfer = NULL; /* without: none after decoding */
    buf.len = 0;
    assert_int_equal(nw_result_encode(&a, &buf), 0);
    assert_int_equal(nw_result_decode(buf.data, buf.len, &b), 0);
    assert_null(b.xfer);
    apply_result_free(&b);
    herald_buf_free(&buf);
}

static void test_request_roundtrip(void **state)
{
    nw_request a = full_request(), b;
    herald_buf buf = {0};
    (void)state;

    for (uint32_t kind = NW_CLIENT; kind <= NW_STATUS; kind++) {
        a.kind = kind;
        buf.len = 0;
        assert_int_equal(nw_request_encode(&a, &buf), 0);
        assert_int_equal(nw_request_decode(buf.data, buf.len, &b), 0);
        assert_request(&a, &b);
        nw_request_release(&b);
        nw_request_release(&b); /* twice is harmless */
        ASSERT_TRUNCATED(nw_request, nw_request_decode, buf);
    }
    herald_buf_free(&buf);
}

static herald_str off_convs[2] = {{.ptr = "g1", .len = 2}, {.ptr = "g2", .len = 2}};
static uint64_t off_seqs[2] = {7, UINT64_MAX};
static uint64_t off_counts[2] = {2, 0};
static herald_str off_users[2] = {{.ptr = "bob", .len = 3}, {.ptr = "carol", .len = 5}};

static nw_request offline_request(void)
{
    return (nw_request){.kind = NW_OFFLINE, .from = 2, .gw = 2, .group = 3,
                        .tenant = S("acme"), .n_oconvs = 2, .oconvs = off_convs,
                        .n_oseqs = 2, .oseqs = off_seqs, .n_ocounts = 2,
                        .ocounts = off_counts, .n_users = 2, .users = off_users};
}

/* NW_OFFLINE: the lists survive the round trip; lists that disagree, a
 * sender that is no gateway, lists on another kind are refused both ways. */
static void test_request_offline(void **state)
{
    nw_request a = offline_request(), b;
    herald_buf buf = {0};
    uint64_t big[2] = {1, UINT64_MAX};
    mk m;
    (void)state;

    assert_int_equal(nw_request_encode(&a, &buf), 0);
    assert_int_equal(nw_request_decode(buf.data, buf.len, &b), 0);
    assert_request(&a, &b);
    assert_int_equal(b.gw, 2);
    assert_int_equal(b.n_oconvs, 2);
    assert_int_equal(b.n_users, 2);
    for (uint32_t i = 0; i < 2; i++) {
        assert_str(b.oconvs[i], off_convs[i]);
        assert_int_equal(b.oseqs[i], off_seqs[i]);
        assert_int_equal(b.ocounts[i], off_counts[i]);
        assert_str(b.users[i], off_users[i]);
    }
    nw_request_release(&b);
    ASSERT_TRUNCATED(nw_request, nw_request_decode, buf);

    a.n_oseqs = 1;
    assert_int_equal(nw_request_encode(&a, &buf), HERALD_EINVAL);
    a = offline_request();
    a.n_users = 1; /* counts add up to 2 */
    assert_int_equal(nw_request_encode(&a, &buf), HERALD_EINVAL);
    a = offline_request();
    a.ocounts = big; /* a sum that would wrap */
    assert_int_equal(nw_request_encode(&a, &buf), HERALD_EINVAL);
    a = offline_request();
    a.gw = 0;
    assert_int_equal(nw_request_encode(&a, &buf), HERALD_EINVAL);
    a = offline_request();
    a.n_oconvs = a.n_oseqs = a.n_ocounts = a.n_users = 0;
    assert_int_equal(nw_request_encode(&a, &buf), HERALD_EINVAL);
    a = offline_request();
    a.kind = NW_STATUS;
    assert_int_equal(nw_request_encode(&a, &buf), HERALD_EINVAL);

    /* Decoding: more messages than NW_MAX_OFFLINE; seqs that disagree. */
    mk_init(&m);
    msgpack_pack_map(&m.pk, 6);
    mk_key(&m, "k");
    msgpack_pack_uint32(&m.pk, NW_OFFLINE);
    mk_key(&m, "gw");
    msgpack_pack_uint32(&m.pk, 1);
    mk_key(&m, "ten");
    msgpack_pack_str(&m.pk, 1);
    msgpack_pack_str_body(&m.pk, "t", 1);
    mk_key(&m, "oc");
    msgpack_pack_array(&m.pk, NW_MAX_OFFLINE + 1);
    for (uint32_t i = 0; i < NW_MAX_OFFLINE + 1; i++) {
        msgpack_pack_str(&m.pk, 1);
        msgpack_pack_str_body(&m.pk, "c", 1);
    }
    mk_key(&m, "os");
    msgpack_pack_array(&m.pk, NW_MAX_OFFLINE + 1);
    for (uint32_t i = 0; i < NW_MAX_OFFLINE + 1; i++)
        msgpack_pack_uint32(&m.pk, i + 1);
    mk_key(&m, "on");
    msgpack_pack_array(&m.pk, NW_MAX_OFFLINE + 1);
    for (uint32_t i = 0; i < NW_MAX_OFFLINE + 1; i++)
        msgpack_pack_uint32(&m.pk, 0);
    assert_int_equal(nw_request_decode((uint8_t *)m.sb.data, m.sb.size, &b), HERALD_EPROTOCOL);
    mk_free(&m);
    herald_buf_free(&buf);
}

static void test_reply_roundtrip(void **state)
{
    static const int32_t statuses[] = {0, HERALD_ENOT_LEADER, -1, INT32_MIN, INT32_MAX};
    nw_reply a, b;
    herald_buf buf = {0};
    (void)state;

    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        full_reply(&a, statuses[i]);
        buf.len = 0;
        assert_int_equal(nw_reply_encode(&a, &buf), 0);
        assert_int_equal(nw_reply_decode(buf.data, buf.len, &b), 0);
        assert_reply(&a, &b);
        nw_reply_release(&b);
        ASSERT_TRUNCATED(nw_reply, nw_reply_decode, buf);
    }
    herald_buf_free(&buf);
}

static void test_event_roundtrip(void **state)
{
    nw_event a = full_event(), b;
    herald_buf buf = {0};
    (void)state;

    assert_int_equal(nw_event_encode(&a, &buf), 0);
    assert_int_equal(nw_event_decode(buf.data, buf.len, &b), 0);
    assert_event(&a, &b);
    nw_event_release(&b);
    ASSERT_TRUNCATED(nw_event, nw_event_decode, buf);

    /* A DND event: one user, no prevs. */
    a = (nw_event){.kind = NW_EV_DND, .node = 1, .pubseq = 2, .tenant = S("t"),
                   .n_users = 1, .users = event_users, .until = 5};
    buf.len = 0;
    assert_int_equal(nw_event_encode(&a, &buf), 0);
    assert_int_equal(nw_event_decode(buf.data, buf.len, &b), 0);
    assert_event(&a, &b);
    assert_null(b.prevs);
    nw_event_release(&b);
    herald_buf_free(&buf);
}

static void test_result_roundtrip(void **state)
{
    apply_result a = full_result(), b, c;
    herald_buf buf = {0}, buf2 = {0};
    (void)state;

    assert_int_equal(nw_result_encode(&a, &buf), 0);
    assert_int_equal(nw_result_decode(buf.data, buf.len, &b), 0);
    assert_non_null(b.arena);
    assert_result(&a, &b);
    /* Decoded strings are C strings in the result's arena, not in buf. */
    assert_true((const uint8_t *)b.targets[0].user < buf.data ||
                (const uint8_t *)b.targets[0].user >= buf.data + buf.len);
    /* And it re-encodes to the same bytes. */
    assert_int_equal(nw_result_encode(&b, &buf2), 0);
    assert_int_equal(buf.len, buf2.len);
    assert_memory_equal(buf.data, buf2.data, buf.len);
    herald_buf_free(&buf2);
    ASSERT_TRUNCATED(apply_result, nw_result_decode, buf);
    apply_result_free(&b);
    assert_null(b.arena);

    /* A 127-byte errmsg (the most that fits) survives. */
    memset(a.errmsg, 'x', sizeof a.errmsg - 1);
    buf.len = 0;
    assert_int_equal(nw_result_encode(&a, &buf), 0);
    assert_int_equal(nw_result_decode(buf.data, buf.len, &c), 0);
    assert_int_equal(strlen(c.errmsg), sizeof c.errmsg - 1);
    apply_result_free(&c);
    herald_buf_free(&buf);
}

/* ---- defaults omitted ------------------------------------------------------ */

static void test_defaults_omitted(void **state)
{
    nw_request rq = {.kind = NW_STATUS, .tenant = {.ptr = "", .len = 0}}, rq2;
    nw_reply rp = {0}, rp2;
    nw_event ev = {.kind = NW_EV_FRAME}, ev2;
    apply_result r = {0}, r2;
    herald_buf buf = {0};
    static const uint8_t status_only[] = {0x81, 0xa1, 'k', NW_STATUS};
    (void)state;

    assert_int_equal(nw_request_encode(&rq, &buf), 0);
    assert_int_equal(buf.len, sizeof status_only);
    assert_memory_equal(buf.data, status_only, sizeof status_only);
    assert_int_equal(nw_request_decode(buf.data, buf.len, &rq2), 0);
    assert_int_equal(rq2.kind, NW_STATUS);
    assert_null(rq2.tenant.ptr);
    nw_request_release(&rq2);

    buf.len = 0;
    assert_int_equal(nw_reply_encode(&rp, &buf), 0);
    assert_int_equal(buf.len, 1);
    assert_int_equal(buf.data[0], 0x80);
    assert_int_equal(nw_reply_decode(buf.data, buf.len, &rp2), 0);
    assert_int_equal(rp2.n_leaders, 0);
    assert_null(rp2.frames);
    nw_reply_release(&rp2);

    buf.len = 0;
    assert_int_equal(nw_event_encode(&ev, &buf), 0);
    assert_int_equal(buf.len, 4);
    assert_int_equal(nw_event_decode(buf.data, buf.len, &ev2), 0);
    assert_null(ev2.users);
    nw_event_release(&ev2);

    buf.len = 0;
    assert_int_equal(nw_result_encode(&r, &buf), 0);
    assert_int_equal(buf.len, 1);
    assert_int_equal(buf.data[0], 0x80);
    assert_int_equal(nw_result_decode(buf.data, buf.len, &r2), 0);
    assert_int_equal(r2.errmsg[0], '\0');
    assert_null(r2.targets);
    apply_result_free(&r2);

    /* Empty optional strings come back NULL, required ones "". */
    {
        apply_remind rm = {.tenant = "", .conv = "c", .user = "u", .pending = ""};
        apply_mass ms = {.customer = "", .owner = "", .conv = "", .status = MASS_LIMITED};
        r = (apply_result){.n_reminders = 1, .reminders = &rm, .n_mass = 1, .mass = &ms};
        buf.len = 0;
        assert_int_equal(nw_result_encode(&r, &buf), 0);
        assert_int_equal(nw_result_decode(buf.data, buf.len, &r2), 0);
        assert_string_equal(r2.reminders[0].tenant, "");
        assert_null(r2.reminders[0].pending);
        assert_string_equal(r2.mass[0].customer, "");
        assert_null(r2.mass[0].owner);
        assert_null(r2.mass[0].conv);
        apply_result_free(&r2);
    }
    herald_buf_free(&buf);
}

/* ---- caps and validation --------------------------------------------------- */

static void test_encode_caps(void **state)
{
    nw_request rq = full_request();
    nw_reply rp;
    nw_event ev = full_event();
    apply_result r = full_result();
    herald_buf buf = {0};
    (void)state;

    rq.kind = 0;
    assert_int_equal(nw_request_encode(&rq, &buf), HERALD_EINVAL);
    rq.kind = NW_STATUS + 1;
    assert_int_equal(nw_request_encode(&rq, &buf), HERALD_EINVAL);
    rq = full_request();
    rq.group = NW_MAX_GROUPS;
    assert_int_equal(nw_request_encode(&rq, &buf), HERALD_EINVAL);

    full_reply(&rp, 0);
    rp.n_leaders = NW_MAX_GROUPS + 1;
    assert_int_equal(nw_reply_encode(&rp, &buf), HERALD_EINVAL);
    full_reply(&rp, 0);
    rp.n_frames = NW_MAX_FRAMES + 1;
    assert_int_equal(nw_reply_encode(&rp, &buf), HERALD_EINVAL);
    rp.n_frames = 1;
    rp.frames = NULL;
    assert_int_equal(nw_reply_encode(&rp, &buf), HERALD_EINVAL);

    ev.kind = 0;
    assert_int_equal(nw_event_encode(&ev, &buf), HERALD_EINVAL);
    ev = full_event();
    ev.n_users = NW_MAX_USERS + 1;
    assert_int_equal(nw_event_encode(&ev, &buf), HERALD_EINVAL);
    ev = full_event();
    ev.n_prevs = 2; /* neither 0 nor n_users */
    assert_int_equal(nw_event_encode(&ev, &buf), HERALD_EINVAL);
    ev = (nw_event){.kind = NW_EV_DND, .until = 1}; /* whose DND? */
    assert_int_equal(nw_event_encode(&ev, &buf), HERALD_EINVAL);

    r.n_targets = NW_MAX_USERS + 1;
    assert_int_equal(nw_result_encode(&r, &buf), HERALD_EINVAL);
    r = full_result();
    r.n_mass = 1;
    r.mass = NULL;
    assert_int_equal(nw_result_encode(&r, &buf), HERALD_EINVAL);

    assert_int_equal(buf.len, 0); /* nothing appended by a rejected encode */
    herald_buf_free(&buf);
}

/* {"k": 1, key: [n elements made by elem]} */
static void pack_array_msg(mk *m, const char *key, uint32_t n, int elem)
{
    msgpack_pack_map(&m->pk, 2);
    mk_key(m, "k");
    msgpack_pack_uint32(&m->pk, 1);
    mk_key(m, key);
    msgpack_pack_array(&m->pk, n);
    for (uint32_t i = 0; i < n; i++) {
        if (elem == 's') {
            msgpack_pack_str(&m->pk, 0);
        } else if (elem == 'b') {
            msgpack_pack_bin(&m->pk, 0);
        } else {
            msgpack_pack_uint32(&m->pk, i);
        }
    }
}

static void test_decode_caps(void **state)
{
    mk m;
    nw_reply rp;
    nw_event ev;
    apply_result r;
    (void)state;

    /* Leaders: 65 fit, 66 do not. */
    mk_init(&m);
    pack_array_msg(&m, "ldr", NW_MAX_GROUPS, 'u');
    assert_int_equal(nw_reply_decode((uint8_t *)m.sb.data, m.sb.size, &rp), 0);
    assert_int_equal(rp.n_leaders, NW_MAX_GROUPS);
    assert_int_equal(rp.leaders[NW_MAX_GROUPS - 1], NW_MAX_GROUPS - 1);
    nw_reply_release(&rp);
    mk_free(&m);
    mk_init(&m);
    pack_array_msg(&m, "ldr", NW_MAX_GROUPS + 1, 'u');
    assert_int_equal(nw_reply_decode((uint8_t *)m.sb.data, m.sb.size, &rp), HERALD_EPROTOCOL);
    mk_free(&m);

    /* Frames over the cap. */
    mk_init(&m);
    pack_array_msg(&m, "frs", NW_MAX_FRAMES + 1, 'b');
    assert_int_equal(nw_reply_decode((uint8_t *)m.sb.data, m.sb.size, &rp), HERALD_EPROTOCOL);
    mk_free(&m);
    mk_init(&m);
    pack_array_msg(&m, "frs", NW_MAX_FRAMES, 'b');
    assert_int_equal(nw_reply_decode((uint8_t *)m.sb.data, m.sb.size, &rp), 0);
    assert_int_equal(rp.n_frames, NW_MAX_FRAMES);
    nw_reply_release(&rp);
    mk_free(&m);

    /* Users over the cap. */
    mk_init(&m);
    pack_array_msg(&m, "us", NW_MAX_USERS + 1, 's');
    assert_int_equal(nw_event_decode((uint8_t *)m.sb.data, m.sb.size, &ev), HERALD_EPROTOCOL);
    mk_free(&m);
    mk_init(&m);
    pack_array_msg(&m, "us", NW_MAX_USERS, 's');
    assert_int_equal(nw_event_decode((uint8_t *)m.sb.data, m.sb.size, &ev), 0);
    assert_int_equal(ev.n_users, NW_MAX_USERS);
    nw_event_release(&ev);
    mk_free(&m);

    /* prevs without matching users. */
    mk_init(&m);
    pack_array_msg(&m, "pv", 2, 'u');
    assert_int_equal(nw_event_decode((uint8_t *)m.sb.data, m.sb.size, &ev), HERALD_EPROTOCOL);
    mk_free(&m);

    /* Targets over the cap ([user, pos] pairs). */
    mk_init(&m);
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "tg");
    msgpack_pack_array(&m.pk, 2 * (NW_MAX_USERS + 1));
    for (uint32_t i = 0; i < NW_MAX_USERS + 1; i++) {
        msgpack_pack_str(&m.pk, 0);
        msgpack_pack_uint32(&m.pk, i);
    }
    assert_int_equal(nw_result_decode((uint8_t *)m.sb.data, m.sb.size, &r), HERALD_EPROTOCOL);
    assert_null(r.arena);
    mk_free(&m);

    /* A count far beyond the bytes present allocates nothing: array32 of
     * 2^32-1 leaders in a 10-byte message. */
    {
        static const uint8_t bomb[] = {0x81, 0xa3, 'l', 'd', 'r', 0xdd, 0xff, 0xff, 0xff, 0xff};
        assert_int_equal(nw_reply_decode(bomb, sizeof bomb, &rp), HERALD_EPROTOCOL);
    }
}

/* Decodes m with every decoder expecting EPROTOCOL from `which`. */
static void expect_bad(mk *m, char which)
{
    nw_request rq;
    nw_reply rp;
    nw_event ev;
    apply_result r;
    const uint8_t *p = (const uint8_t *)m->sb.data;
    size_t n = m->sb.size;
    switch (which) {
    case 'q':
        assert_int_equal(nw_request_decode(p, n, &rq), HERALD_EPROTOCOL);
        break;
    case 'p':
        assert_int_equal(nw_reply_decode(p, n, &rp), HERALD_EPROTOCOL);
        break;
    case 'e':
        assert_int_equal(nw_event_decode(p, n, &ev), HERALD_EPROTOCOL);
        break;
    default:
        assert_int_equal(nw_result_decode(p, n, &r), HERALD_EPROTOCOL);
        assert_null(r.arena);
        break;
    }
    mk_free(m);
    mk_init(m);
}

static void test_wrong_types(void **state)
{
    mk m;
    (void)state;
    mk_init(&m);

    /* Request: kind missing, as a string, unknown; group too big. */
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "from");
    msgpack_pack_uint32(&m.pk, 1);
    expect_bad(&m, 'q');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "k");
    mk_key(&m, "1");
    expect_bad(&m, 'q');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "k");
    msgpack_pack_uint32(&m.pk, 9);
    expect_bad(&m, 'q');
    msgpack_pack_map(&m.pk, 2);
    mk_key(&m, "k");
    msgpack_pack_uint32(&m.pk, NW_PROPOSE);
    mk_key(&m, "g");
    msgpack_pack_uint32(&m.pk, NW_MAX_GROUPS);
    expect_bad(&m, 'q');
    msgpack_pack_map(&m.pk, 2);
    mk_key(&m, "k");
    msgpack_pack_uint32(&m.pk, NW_CLIENT);
    mk_key(&m, "adm");
    msgpack_pack_uint32(&m.pk, 1); /* bool expected */
    expect_bad(&m, 'q');
    msgpack_pack_array(&m.pk, 0); /* not a map */
    expect_bad(&m, 'q');

    /* Reply: status out of int32 range on both sides, or a string; a leader
     * above UINT32_MAX; a frame that is a number. */
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "st");
    msgpack_pack_uint64(&m.pk, (uint64_t)INT32_MAX + 1);
    expect_bad(&m, 'p');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "st");
    msgpack_pack_int64(&m.pk, (int64_t)INT32_MIN - 1);
    expect_bad(&m, 'p');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "st");
    mk_key(&m, "x");
    expect_bad(&m, 'p');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "ldr");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_uint64(&m.pk, (uint64_t)UINT32_MAX + 1);
    expect_bad(&m, 'p');
    msgpack_pack_map(&m.pk, 2); /* a repeated array key */
    mk_key(&m, "ldr");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_uint32(&m.pk, 1);
    mk_key(&m, "ldr");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_uint32(&m.pk, 2);
    expect_bad(&m, 'p');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "frs");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_uint32(&m.pk, 1);
    expect_bad(&m, 'p');

    /* Event: unknown kind; a HEAD with users; a pos that is a string; DND
     * without a user. */
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "k");
    msgpack_pack_uint32(&m.pk, NW_EV_HEAD + 1);
    expect_bad(&m, 'e');
    msgpack_pack_map(&m.pk, 2);
    mk_key(&m, "k");
    msgpack_pack_uint32(&m.pk, NW_EV_HEAD);
    mk_key(&m, "us");
    msgpack_pack_array(&m.pk, 1);
    mk_key(&m, "a");
    expect_bad(&m, 'e');
    msgpack_pack_map(&m.pk, 3);
    mk_key(&m, "k");
    msgpack_pack_uint32(&m.pk, NW_EV_FRAME);
    mk_key(&m, "us");
    msgpack_pack_array(&m.pk, 1);
    mk_key(&m, "a");
    mk_key(&m, "pv");
    msgpack_pack_array(&m.pk, 1);
    mk_key(&m, "1");
    expect_bad(&m, 'e');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "k");
    msgpack_pack_uint32(&m.pk, NW_EV_DND);
    expect_bad(&m, 'e');

    /* Result: errmsg too long; a NUL inside a string; odd target list; a
     * reminder that is not a map; a negative op. */
    {
        char em[129];
        memset(em, 'e', sizeof em);
        msgpack_pack_map(&m.pk, 1);
        mk_key(&m, "em");
        msgpack_pack_str(&m.pk, 128);
        msgpack_pack_str_body(&m.pk, em, 128);
        expect_bad(&m, 'r');
    }
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "tg");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_str(&m.pk, 3);
    msgpack_pack_str_body(&m.pk, "a\0b", 3);
    msgpack_pack_uint32(&m.pk, 1);
    expect_bad(&m, 'r');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "ms");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "own");
    msgpack_pack_str(&m.pk, 2);
    msgpack_pack_str_body(&m.pk, "\0x", 2);
    expect_bad(&m, 'r');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "tg");
    msgpack_pack_array(&m.pk, 1);
    mk_key(&m, "a");
    expect_bad(&m, 'r');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "rm");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_uint32(&m.pk, 1);
    expect_bad(&m, 'r');
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "op");
    msgpack_pack_int32(&m.pk, -1);
    expect_bad(&m, 'r');
    /* Too deep for a result: a map inside a reminder. */
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "rm");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_map(&m.pk, 1);
    mk_key(&m, "x");
    msgpack_pack_array(&m.pk, 0);
    expect_bad(&m, 'r');
    mk_free(&m);
}

/* Unknown keys are skipped (forward compatibility). */
static void test_unknown_keys(void **state)
{
    mk m;
    nw_request rq;
    (void)state;
    mk_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mk_key(&m, "future");
    msgpack_pack_uint32(&m.pk, 42);
    mk_key(&m, "k");
    msgpack_pack_uint32(&m.pk, NW_PROPOSE);
    assert_int_equal(nw_request_decode((uint8_t *)m.sb.data, m.sb.size, &rq), 0);
    assert_int_equal(rq.kind, NW_PROPOSE);
    nw_request_release(&rq);
    mk_free(&m);
}

/* ---- allocation failure --------------------------------------------------- */

/* Allocation failures: alloc_wrap.h (alloc_fail_after). */

/* Runs encode, then decode, failing the n-th allocation for n = 0, 1, …
 * until each succeeds: every failure is ENOMEM, leaves the buffer as it was
 * or the output zeroed, and leaks nothing (ASan). */
#define ALLOC_FAIL(T, enc, dec, rel, src)                                      \
    do {                                                                       \
        static const T zero_;                                                  \
        herald_buf e_ = {0};                                                   \
        T d_;                                                                  \
        int rc_;                                                               \
        for (long n_ = 0;; n_++) {                                             \
            assert_true(n_ < 1000);                                            \
            herald_buf_free(&e_);                                              \
            alloc_fail_after = n_;                                                   \
            rc_ = enc(src, &e_);                                               \
            alloc_fail_after = -1;                                                   \
            if (rc_ == 0) {                                                    \
                assert_true(n_ > 0); /* the buffer did allocate: wrap works */ \
                break;                                                         \
            }                                                                  \
            assert_int_equal(rc_, HERALD_ENOMEM);                              \
            assert_int_equal(e_.len, 0);                                       \
        }                                                                      \
        for (long n_ = 0;; n_++) {                                             \
            assert_true(n_ < 1000);                                            \
            alloc_fail_after = n_;                                                   \
            rc_ = dec(e_.data, e_.len, &d_);                                   \
            alloc_fail_after = -1;                                                   \
            if (rc_ == 0)                                                      \
                break;                                                         \
            assert_int_equal(rc_, HERALD_ENOMEM);                              \
            assert_memory_equal(&d_, &zero_, sizeof d_);                       \
        }                                                                      \
        rel(&d_);                                                              \
        herald_buf_free(&e_);                                                  \
    } while (0)

static void test_alloc_failures(void **state)
{
    nw_request rq = full_request();
    nw_reply rp;
    nw_event ev = full_event();
    apply_result r = full_result();
    (void)state;

    full_reply(&rp, -3);
    ALLOC_FAIL(nw_request, nw_request_encode, nw_request_decode, nw_request_release, &rq);
    ALLOC_FAIL(nw_reply, nw_reply_encode, nw_reply_decode, nw_reply_release, &rp);
    ALLOC_FAIL(nw_event, nw_event_encode, nw_event_decode, nw_event_release, &ev);
    ALLOC_FAIL(apply_result, nw_result_encode, nw_result_decode, apply_result_free, &r);
}

/* ---- seed corpus ---------------------------------------------------------- */

/* Writes buf to dir/name. */
static void write_seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[1024];
    FILE *f;
    assert_true(snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* With HERALD_NWIRE_SEEDS=DIR, writes the fuzz seed corpus
 * (tests/fuzz/corpus/nwire) from valid encodings; otherwise only checks
 * that they encode. */
static void test_seed_corpus(void **state)
{
    const char *dir = getenv("HERALD_NWIRE_SEEDS");
    herald_buf b = {0};
    nw_request rq;
    nw_reply rp;
    nw_event ev;
    apply_result r;
    (void)state;

#define SEED(name, call)                                        \
    do {                                                        \
        b.len = 0;                                              \
        assert_int_equal(call, 0);                              \
        if (dir)                                                \
            write_seed(dir, name, b.data, b.len);               \
    } while (0)

    rq = full_request();
    SEED("seed-request-client", nw_request_encode(&rq, &b));
    rq = (nw_request){.kind = NW_PROPOSE, .from = 2, .group = 3,
                      .cmd = {.ptr = "\x82\xa2op\x05\xa3ten\xa1t", .len = 10}};
    SEED("seed-request-propose", nw_request_encode(&rq, &b));
    rq = (nw_request){.kind = NW_STATUS, .from = 9};
    SEED("seed-request-status", nw_request_encode(&rq, &b));
    rq = offline_request();
    SEED("seed-request-offline", nw_request_encode(&rq, &b));

    full_reply(&rp, -7);
    SEED("seed-reply-full", nw_reply_encode(&rp, &b));
    rp = (nw_reply){.status = HERALD_ENOT_LEADER, .hint = 2, .n_leaders = 3,
                    .leaders = {1, 2, 0}};
    SEED("seed-reply-not-leader", nw_reply_encode(&rp, &b));
    rp = (nw_reply){.json = S("{\"node\":1,\"groups\":[]}")};
    SEED("seed-reply-status", nw_reply_encode(&rp, &b));

    ev = full_event();
    SEED("seed-event-deliver", nw_event_encode(&ev, &b));
    ev = (nw_event){.kind = NW_EV_DND, .node = 1, .pubseq = 8, .tenant = S("acme"),
                    .n_users = 1, .users = event_users, .until = 1700000000000ull};
    SEED("seed-event-dnd", nw_event_encode(&ev, &b));
    ev = (nw_event){.kind = NW_EV_FRAME, .node = 3, .pubseq = 1, .tenant = S("acme"),
                    .n_users = 2, .users = event_users,
                    .frame = {.ptr = (const char *)frame_bytes, .len = sizeof frame_bytes}};
    SEED("seed-event-receipt", nw_event_encode(&ev, &b));

    r = full_result();
    SEED("seed-result-full", nw_result_encode(&r, &b));
    r = (apply_result){.op = 5, .index = 12, .seq = 3, .ts = 1700000000000ull,
                       .conv_kind = 1, .group = 1, .n_targets = 2, .targets = res_targets};
    SEED("seed-result-send", nw_result_encode(&r, &b));
    r = (apply_result){.err = HERALD_ENOT_MEMBER, .op = 5, .index = 13};
    strcpy(r.errmsg, "not a member");
    SEED("seed-result-error", nw_result_encode(&r, &b));
    r = (apply_result){.op = 15, .index = 14, .n_mass = 2, .mass = res_mass};
    SEED("seed-result-mass", nw_result_encode(&r, &b));
#undef SEED
    herald_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_roundtrip), cmocka_unit_test(test_request_offline),
        cmocka_unit_test(test_reply_roundtrip),
        cmocka_unit_test(test_event_roundtrip),   cmocka_unit_test(test_result_roundtrip),
        cmocka_unit_test(test_result_xfer),
        cmocka_unit_test(test_defaults_omitted),  cmocka_unit_test(test_encode_caps),
        cmocka_unit_test(test_decode_caps),       cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_unknown_keys),      cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_seed_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
