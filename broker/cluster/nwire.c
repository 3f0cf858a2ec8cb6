/*
 * nwire.c — gateway/node messages; see nwire.h.
 *
 * Each message is one msgpack map driven by a field table (mptab), like the
 * client frames (wire.c) and the commands (cmd.c): short keys, zero/empty
 * fields omitted, unknown keys skipped. What the tables cannot say (kinds,
 * caps, prevs matching users) is checked by one validator per message, run
 * by the encoder (HERALD_EINVAL) and the decoder (HERALD_EPROTOCOL) alike,
 * so anything decoded re-encodes and anything encoded decodes.
 *
 * apply_result holds C strings and arrays in an arena, which mptab cannot
 * map directly: it travels through a mirror (nw_res_w) of herald_strs and
 * malloc'd arrays, copied into a fresh arena on decode.
 */
#include "nwire.h"

#include <herald/error.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "mptab.h"

/* Nesting: requests, replies and events hold arrays of scalars, a result
 * holds arrays of maps. */
#define NW_DEPTH_ARRAYS 2u
#define NW_DEPTH_RESULT 3u

/* Entries per array of an apply_result (targets, reminders, mass outcomes):
 * each is about one user, and a fan-out reaches at most an announcement's
 * 100,000 members. */
#define NW_MAX_RESULT_ITEMS NW_MAX_USERS

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))
#define F(T, k, kind, member) {k, kind, offsetof(T, member), 0, NULL, 0, 0}
#define FA(T, k, kind, member, count) \
    {k, kind, offsetof(T, member), offsetof(T, count), NULL, 0, 0}

/* Packs base as one map onto out; on failure out is as it was. */
static int encode_map(const mpt_field *tab, size_t ntab, const void *base, herald_buf *out)
{
    size_t start = out->len;
    mpt_sink sink = {.b = out};
    msgpack_packer pk;

    msgpack_packer_init(&pk, &sink, mpt_sink_write);
    mpt_encode(&pk, tab, ntab, base, NULL);
    if (sink.failed) {
        out->len = start;
        return HERALD_ENOMEM;
    }
    return 0;
}

/* ---- request ------------------------------------------------------------- */

static const mpt_field request_fields[] = {
    F(nw_request, "k", MPT_U32, kind),      F(nw_request, "from", MPT_U32, from),
    F(nw_request, "ten", MPT_STR, tenant),  F(nw_request, "user", MPT_STR, user),
    F(nw_request, "adm", MPT_BOOL, admin),  F(nw_request, "dnd", MPT_U64, dnd_until),
    F(nw_request, "fr", MPT_BODY, frame),   F(nw_request, "g", MPT_U32, group),
    F(nw_request, "cmd", MPT_BODY, cmd),    F(nw_request, "tok", MPT_STR, token),
    F(nw_request, "ep", MPT_U64, epoch),    F(nw_request, "sf", MPT_U64, seq_from),
    F(nw_request, "sl", MPT_U64, seq_to),
    FA(nw_request, "rch", MPT_U64S, reach, n_reach),
    F(nw_request, "gw", MPT_U32, gw),
    FA(nw_request, "oc", MPT_STRS, oconvs, n_oconvs),
    FA(nw_request, "os", MPT_U64S, oseqs, n_oseqs),
    FA(nw_request, "on", MPT_U64S, ocounts, n_ocounts),
    FA(nw_request, "us", MPT_STRS, users, n_users),
};

/* NW_OFFLINE's lists agree with each other and stay within the caps (and
 * any other kind has none). */
static bool offline_valid(const nw_request *r)
{
    uint64_t sum = 0;
    if (r->kind != NW_OFFLINE)
        return r->n_oconvs == 0 && r->n_oseqs == 0 && r->n_ocounts == 0 && r->n_users == 0;
    if (r->n_oconvs == 0 || r->n_oconvs > NW_MAX_OFFLINE || r->n_oseqs != r->n_oconvs ||
        r->n_ocounts != r->n_oconvs || r->n_users > NW_MAX_USERS || !r->gw || !r->tenant.len ||
        !r->oconvs || !r->oseqs || !r->ocounts || (r->n_users && !r->users))
        return false;
    for (uint32_t i = 0; i < r->n_ocounts; i++)
        if ((sum += r->ocounts[i]) > r->n_users)
            return false;
    return sum == r->n_users;
}

/* A known kind, and a group that indexes a leader table. */
static bool request_valid(const nw_request *r)
{
    if (r->kind < NW_CLIENT || r->kind > NW_OFFLINE || r->group >= NW_MAX_GROUPS ||
        r->n_reach > NW_MAX_GROUPS || (r->n_reach && !r->reach) || !offline_valid(r))
        return false;
    return r->kind != NW_REPLAY || (r->seq_from >= 1 && r->seq_to >= r->seq_from);
}

int nw_request_encode(const nw_request *r, herald_buf *out)
{
    if (!request_valid(r))
        return HERALD_EINVAL;
    return encode_map(request_fields, NFIELDS(request_fields), r, out);
}

void nw_request_release(nw_request *r)
{
    if (!r)
        return;
    mpt_free(request_fields, NFIELDS(request_fields), r);
    memset(r, 0, sizeof *r);
}

int nw_request_decode(const uint8_t *p, size_t n, nw_request *out)
{
    int rc = mpt_decode_bytes(p, n, NW_DEPTH_ARRAYS, request_fields, NFIELDS(request_fields),
                              out, sizeof *out, NULL);
    if (rc)
        return rc;
    if (!request_valid(out)) {
        nw_request_release(out);
        return HERALD_EPROTOCOL;
    }
    return 0;
}

/* ---- reply --------------------------------------------------------------- */

static const mpt_field reply_fields[] = {
    F(nw_reply, "st", MPT_I32, status),
    F(nw_reply, "hint", MPT_U32, hint),
    FA(nw_reply, "frs", MPT_BINS, frames, n_frames),
    F(nw_reply, "res", MPT_BODY, result),
    F(nw_reply, "auth", MPT_BOOL, authed),
    F(nw_reply, "ten", MPT_STR, tenant),
    F(nw_reply, "user", MPT_STR, user),
    F(nw_reply, "adm", MPT_BOOL, admin),
    F(nw_reply, "dnd", MPT_U64, dnd_until),
    F(nw_reply, "cls", MPT_BOOL, close),
    {"ldr", MPT_U32A, offsetof(nw_reply, leaders), offsetof(nw_reply, n_leaders), NULL, 0,
     NW_MAX_GROUPS},
    F(nw_reply, "json", MPT_STR, json),
    FA(nw_reply, "prog", MPT_U64S, prog, n_prog),
};

static bool reply_valid(const nw_reply *r)
{
    return r->n_frames <= NW_MAX_FRAMES && (r->n_frames == 0 || r->frames) &&
           r->n_leaders <= NW_MAX_GROUPS && r->n_prog <= NW_MAX_PROG && r->n_prog % 4 == 0 &&
           (r->n_prog == 0 || r->prog);
}

int nw_reply_encode(const nw_reply *r, herald_buf *out)
{
    if (!reply_valid(r))
        return HERALD_EINVAL;
    return encode_map(reply_fields, NFIELDS(reply_fields), r, out);
}

void nw_reply_release(nw_reply *r)
{
    if (!r)
        return;
    mpt_free(reply_fields, NFIELDS(reply_fields), r);
    memset(r, 0, sizeof *r);
}

int nw_reply_decode(const uint8_t *p, size_t n, nw_reply *out)
{
    int rc = mpt_decode_bytes(p, n, NW_DEPTH_ARRAYS, reply_fields, NFIELDS(reply_fields), out,
                              sizeof *out, NULL);
    if (rc)
        return rc;
    if (!reply_valid(out)) {
        nw_reply_release(out);
        return HERALD_EPROTOCOL;
    }
    return 0;
}

/* ---- event --------------------------------------------------------------- */

static const mpt_field event_fields[] = {
    F(nw_event, "k", MPT_U32, kind),
    F(nw_event, "node", MPT_U32, node),
    F(nw_event, "ep", MPT_U64, epoch),
    F(nw_event, "ps", MPT_U64, pubseq),
    F(nw_event, "ten", MPT_STR, tenant),
    FA(nw_event, "us", MPT_STRS, users, n_users),
    FA(nw_event, "pv", MPT_U64S, prevs, n_prevs),
    F(nw_event, "fr", MPT_BODY, frame),
    F(nw_event, "until", MPT_U64, until),
    F(nw_event, "g", MPT_U32, group),
    F(nw_event, "ix", MPT_U64, index),
};

/* A known kind; users within the cap; prevs absent or one per user; a DND
 * event names its user. */
static bool event_valid(const nw_event *e)
{
    if (e->kind != NW_EV_FRAME && e->kind != NW_EV_DND && e->kind != NW_EV_HEAD)
        return false;
    if (e->kind == NW_EV_HEAD)
        return e->n_users == 0 && e->n_prevs == 0;
    if (e->group >= NW_MAX_GROUPS)
        return false;
    if (e->n_users > NW_MAX_USERS || (e->n_users && !e->users) ||
        (e->n_prevs && (e->n_prevs != e->n_users || !e->prevs)))
        return false;
    return e->kind != NW_EV_DND || e->n_users > 0;
}

int nw_event_encode(const nw_event *e, herald_buf *out)
{
    if (!event_valid(e))
        return HERALD_EINVAL;
    return encode_map(event_fields, NFIELDS(event_fields), e, out);
}

void nw_event_release(nw_event *e)
{
    if (!e)
        return;
    mpt_free(event_fields, NFIELDS(event_fields), e);
    memset(e, 0, sizeof *e);
}

int nw_event_decode(const uint8_t *p, size_t n, nw_event *out)
{
    int rc = mpt_decode_bytes(p, n, NW_DEPTH_ARRAYS, event_fields, NFIELDS(event_fields), out,
                              sizeof *out, NULL);
    if (rc)
        return rc;
    if (!event_valid(out)) {
        nw_event_release(out);
        return HERALD_EPROTOCOL;
    }
    return 0;
}

/* ---- apply_result -------------------------------------------------------- */

/* Wire mirrors of apply_remind / apply_mass / apply_result. Targets travel
 * flat as [user, 0, …] (herald_sync_conv's {str, u64} pair; the number is
 * unused). */
typedef struct nw_remind_w {
    herald_str tenant;  /* apply_remind.tenant */
    herald_str conv;    /* .conv */
    uint64_t seq;       /* .seq */
    herald_str user;    /* .user */
    herald_str pending; /* .pending (absent: NULL) */
    uint32_t count;     /* .count */
    bool escalate;      /* .escalate */
} nw_remind_w;

typedef struct nw_mass_w {
    herald_str customer; /* apply_mass.customer */
    herald_str owner;    /* .owner (absent: NULL) */
    herald_str conv;     /* .conv (absent: NULL) */
    uint32_t status;     /* .status */
    herald_str xten;     /* apply_xfer.tenant (results with xfer) */
    herald_str xfrom;    /* apply_xfer.from (absent: NULL) */
    uint64_t xat;        /* apply_xfer.at */
} nw_mass_w;

typedef struct nw_res_w {
    int32_t err;                /* apply_result.err */
    herald_str errmsg;          /* .errmsg, < sizeof errmsg bytes */
    uint32_t op;                /* .op */
    uint64_t index;             /* .index */
    bool skipped;               /* .skipped */
    uint64_t seq;               /* .seq */
    uint64_t ts;                /* .ts */
    bool dup;                   /* .dup */
    uint64_t ignored;           /* .ignored */
    int32_t conv_kind;          /* .conv_kind */
    uint32_t group;             /* .group */
    uint32_t n_targets;         /* .n_targets */
    herald_sync_conv *targets;  /* {user, 0} pairs (malloc'd) */
    uint32_t n_reminders;       /* .n_reminders */
    nw_remind_w *reminders;     /* malloc'd */
    uint32_t n_mass;            /* .n_mass */
    nw_mass_w *mass;            /* malloc'd */
    bool xfer;                  /* .xfer present (TRANSFER_*): one per mass entry */
} nw_res_w;

static const mpt_field remind_fields[] = {
    F(nw_remind_w, "ten", MPT_STR, tenant), F(nw_remind_w, "conv", MPT_STR, conv),
    F(nw_remind_w, "seq", MPT_U64, seq),    F(nw_remind_w, "user", MPT_STR, user),
    F(nw_remind_w, "pend", MPT_STR, pending), F(nw_remind_w, "cnt", MPT_U32, count),
    F(nw_remind_w, "esc", MPT_BOOL, escalate),
};

static const mpt_field mass_fields[] = {
    F(nw_mass_w, "cust", MPT_STR, customer), F(nw_mass_w, "own", MPT_STR, owner),
    F(nw_mass_w, "conv", MPT_STR, conv),     F(nw_mass_w, "st", MPT_U32, status),
    F(nw_mass_w, "xt", MPT_STR, xten),       F(nw_mass_w, "xf", MPT_STR, xfrom),
    F(nw_mass_w, "xa", MPT_U64, xat),
};

static const mpt_field result_fields[] = {
    F(nw_res_w, "err", MPT_I32, err),
    F(nw_res_w, "em", MPT_STR, errmsg),
    F(nw_res_w, "op", MPT_U32, op),
    F(nw_res_w, "ix", MPT_U64, index),
    F(nw_res_w, "skip", MPT_BOOL, skipped),
    F(nw_res_w, "seq", MPT_U64, seq),
    F(nw_res_w, "ts", MPT_U64, ts),
    F(nw_res_w, "dup", MPT_BOOL, dup),
    F(nw_res_w, "ign", MPT_U64, ignored),
    F(nw_res_w, "ck", MPT_I32, conv_kind),
    F(nw_res_w, "g", MPT_U32, group),
    FA(nw_res_w, "tg", MPT_SC, targets, n_targets),
    {"rm", MPT_MAPS, offsetof(nw_res_w, reminders), offsetof(nw_res_w, n_reminders),
     remind_fields, NFIELDS(remind_fields), sizeof(nw_remind_w)},
    {"ms", MPT_MAPS, offsetof(nw_res_w, mass), offsetof(nw_res_w, n_mass), mass_fields,
     NFIELDS(mass_fields), sizeof(nw_mass_w)},
    F(nw_res_w, "xfer", MPT_BOOL, xfer),
};

#undef F
#undef FA

_Static_assert(sizeof(int) == sizeof(int32_t), "err and conv_kind travel as int32");

/* A C string as a herald_str ({NULL, 0} for NULL). */
static herald_str cstr(const char *z)
{
    size_t n = z ? strlen(z) : 0;
    return (herald_str){.ptr = z, .len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n};
}

int nw_result_encode(const apply_result *r, herald_buf *out)
{
    nw_res_w w = {
        .err = r->err,
        .errmsg = {.ptr = r->errmsg, .len = (uint32_t)strnlen(r->errmsg, sizeof r->errmsg - 1)},
        .op = r->op,
        .index = r->index,
        .skipped = r->skipped,
        .seq = r->seq,
        .ts = r->ts,
        .dup = r->dup,
        .ignored = r->ignored,
        .conv_kind = r->conv_kind,
        .group = r->group,
    };
    int rc = HERALD_ENOMEM;

    if (r->n_targets > NW_MAX_RESULT_ITEMS || r->n_reminders > NW_MAX_RESULT_ITEMS ||
        r->n_mass > NW_MAX_RESULT_ITEMS || (r->n_targets && !r->targets) ||
        (r->n_reminders && !r->reminders) || (r->n_mass && !r->mass))
        return HERALD_EINVAL;
    if (r->n_targets) {
        w.targets = calloc(r->n_targets, sizeof *w.targets);
        if (!w.targets)
            goto out;
        w.n_targets = r->n_targets;
        for (uint32_t i = 0; i < r->n_targets; i++)
            w.targets[i] = (herald_sync_conv){.conv = cstr(r->targets[i].user)};
    }
    if (r->n_reminders) {
        w.reminders = calloc(r->n_reminders, sizeof *w.reminders);
        if (!w.reminders)
            goto out;
        w.n_reminders = r->n_reminders;
        for (uint32_t i = 0; i < r->n_reminders; i++) {
            const apply_remind *m = &r->reminders[i];
            w.reminders[i] = (nw_remind_w){
                .tenant = cstr(m->tenant), .conv = cstr(m->conv), .seq = m->seq,
                .user = cstr(m->user), .pending = cstr(m->pending), .count = m->count,
                .escalate = m->escalate,
            };
        }
    }
    if (r->n_mass) {
        w.mass = calloc(r->n_mass, sizeof *w.mass);
        if (!w.mass)
            goto out;
        w.n_mass = r->n_mass;
        for (uint32_t i = 0; i < r->n_mass; i++) {
            w.mass[i] = (nw_mass_w){.customer = cstr(r->mass[i].customer),
                                    .owner = cstr(r->mass[i].owner),
                                    .conv = cstr(r->mass[i].conv),
                                    .status = r->mass[i].status};
            if (r->xfer) {
                w.mass[i].xten = cstr(r->xfer[i].tenant);
                w.mass[i].xfrom = cstr(r->xfer[i].from);
                w.mass[i].xat = r->xfer[i].at;
            }
        }
        w.xfer = r->xfer != NULL;
    }
    rc = encode_map(result_fields, NFIELDS(result_fields), &w, out);
out:
    free(w.targets);
    free(w.reminders);
    free(w.mass);
    return rc;
}

/* A decoded string usable as a C string: no NUL inside. */
static bool cstr_ok(herald_str s)
{
    return s.len == 0 || memchr(s.ptr, '\0', s.len) == NULL;
}

/* Caps, errmsg fits, and no string holds a NUL. */
static bool result_valid(const nw_res_w *w)
{
    if (w->n_targets > NW_MAX_RESULT_ITEMS || w->n_reminders > NW_MAX_RESULT_ITEMS ||
        w->n_mass > NW_MAX_RESULT_ITEMS || w->errmsg.len >= sizeof(((apply_result *)0)->errmsg) ||
        !cstr_ok(w->errmsg))
        return false;
    for (uint32_t i = 0; i < w->n_targets; i++)
        if (!cstr_ok(w->targets[i].conv))
            return false;
    for (uint32_t i = 0; i < w->n_reminders; i++) {
        const nw_remind_w *m = &w->reminders[i];
        if (!cstr_ok(m->tenant) || !cstr_ok(m->conv) || !cstr_ok(m->user) ||
            !cstr_ok(m->pending))
            return false;
    }
    for (uint32_t i = 0; i < w->n_mass; i++) {
        const nw_mass_w *m = &w->mass[i];
        if (!cstr_ok(m->customer) || !cstr_ok(m->owner) || !cstr_ok(m->conv) ||
            !cstr_ok(m->xten) || !cstr_ok(m->xfrom))
            return false;
    }
    return true;
}

/* Copies s into arena a as a C string. Empty means absent on this wire (the
 * encoder omits it), so an empty s gives NULL for the fields the store may
 * leave NULL (`optional`) and "" for the others. Sets *fail on ENOMEM. */
static const char *adup(arena *a, herald_str s, bool optional, bool *fail)
{
    char *d;
    if (s.len == 0 && optional)
        return NULL;
    d = arena_dup(a, s.len ? s.ptr : "", s.len);
    if (!d)
        *fail = true;
    return d;
}

/* Fills out (zeroed, arena attached) from the validated mirror w. */
static int result_fill(const nw_res_w *w, apply_result *out)
{
    arena *a = out->arena;
    bool fail = false;

    out->err = w->err;
    memcpy(out->errmsg, w->errmsg.ptr ? w->errmsg.ptr : "", w->errmsg.ptr ? w->errmsg.len : 0);
    out->op = w->op;
    out->index = w->index;
    out->skipped = w->skipped;
    out->seq = w->seq;
    out->ts = w->ts;
    out->dup = w->dup;
    out->ignored = w->ignored;
    out->conv_kind = w->conv_kind;
    out->group = w->group;
    if (w->n_targets) {
        out->targets = arena_alloc(a, (size_t)w->n_targets * sizeof *out->targets);
        if (!out->targets)
            return HERALD_ENOMEM;
        out->n_targets = w->n_targets;
        for (uint32_t i = 0; i < w->n_targets; i++)
            out->targets[i].user = adup(a, w->targets[i].conv, false, &fail);
    }
    if (w->n_reminders) {
        out->reminders = arena_alloc(a, (size_t)w->n_reminders * sizeof *out->reminders);
        if (!out->reminders)
            return HERALD_ENOMEM;
        out->n_reminders = w->n_reminders;
        for (uint32_t i = 0; i < w->n_reminders; i++) {
            const nw_remind_w *m = &w->reminders[i];
            out->reminders[i] = (apply_remind){
                .tenant = adup(a, m->tenant, false, &fail),
                .conv = adup(a, m->conv, false, &fail),
                .seq = m->seq,
                .user = adup(a, m->user, false, &fail),
                .pending = adup(a, m->pending, true, &fail),
                .count = m->count,
                .escalate = m->escalate,
            };
        }
    }
    if (w->n_mass) {
        out->mass = arena_alloc(a, (size_t)w->n_mass * sizeof *out->mass);
        if (!out->mass)
            return HERALD_ENOMEM;
        out->n_mass = w->n_mass;
        for (uint32_t i = 0; i < w->n_mass; i++)
            out->mass[i] = (apply_mass){
                .customer = adup(a, w->mass[i].customer, false, &fail),
                .owner = adup(a, w->mass[i].owner, true, &fail),
                .conv = adup(a, w->mass[i].conv, true, &fail),
                .status = w->mass[i].status,
            };
        if (w->xfer) {
            out->xfer = arena_alloc(a, (size_t)w->n_mass * sizeof *out->xfer);
            if (!out->xfer)
                return HERALD_ENOMEM;
            for (uint32_t i = 0; i < w->n_mass; i++)
                out->xfer[i] = (apply_xfer){
                    .tenant = adup(a, w->mass[i].xten, false, &fail),
                    .from = adup(a, w->mass[i].xfrom, true, &fail),
                    .at = w->mass[i].xat,
                };
        }
    }
    return fail ? HERALD_ENOMEM : 0;
}

int nw_result_decode(const uint8_t *p, size_t n, apply_result *out)
{
    nw_res_w w;
    int rc;

    memset(out, 0, sizeof *out);
    rc = mpt_decode_bytes(p, n, NW_DEPTH_RESULT, result_fields, NFIELDS(result_fields), &w,
                          sizeof w, NULL);
    if (rc)
        return rc;
    if (!result_valid(&w)) {
        rc = HERALD_EPROTOCOL;
        goto out_wire;
    }
    out->arena = calloc(1, sizeof(arena));
    if (!out->arena) {
        rc = HERALD_ENOMEM;
        goto out_wire;
    }
    rc = result_fill(&w, out);
    if (rc)
        apply_result_free(out);
out_wire:
    mpt_free(result_fields, NFIELDS(result_fields), &w);
    return rc;
}

/* ---- event batches -------------------------------------------------------- */

int nw_batch_add(herald_buf *batch, const void *ev, size_t len)
{
    uint8_t h[4];
    if (len == 0 || len > UINT32_MAX)
        return HERALD_EINVAL;
    h[0] = (uint8_t)(len >> 24);
    h[1] = (uint8_t)(len >> 16);
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
    if (herald_buf_reserve(batch, 4 + len) != 0)
        return HERALD_ENOMEM;
    herald_buf_append(batch, h, 4);
    herald_buf_append(batch, ev, len);
    return 0;
}

int nw_batch_next(const uint8_t *p, size_t n, size_t *off, const uint8_t **ev, size_t *len)
{
    size_t o = *off, l;
    if (o == n)
        return HERALD_ENOT_FOUND;
    if (o > n || n - o < 4)
        return HERALD_EPROTOCOL;
    l = ((size_t)p[o] << 24) | ((size_t)p[o + 1] << 16) | ((size_t)p[o + 2] << 8) | p[o + 3];
    if (l == 0 || l > n - o - 4)
        return HERALD_EPROTOCOL;
    *ev = p + o + 4;
    *len = l;
    *off = o + 4 + l;
    return 0;
}
