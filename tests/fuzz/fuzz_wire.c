/*
 * fuzz_wire.c — libFuzzer target for the frame codec.
 *
 * The input is treated as a byte stream: herald_frame_peek on it, then
 * herald_frame_decode on the payload (after a complete header) and on the
 * whole input as a bare payload. Every frame that decodes is re-encoded,
 * decoded again, and compared field by field; a mismatch aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <herald/error.h>
#include <herald/protocol.h>

/* Small caps so the fuzzer reaches the limits quickly. */
static const herald_limits fuzz_limits = {.max_frame = 4096, .max_depth = 6};

static int str_same(herald_str a, herald_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int msg_same(const herald_msg *a, const herald_msg *b)
{
    return str_same(a->conv, b->conv) && a->seq == b->seq && str_same(a->from, b->from) &&
           a->ts == b->ts && str_same(a->body, b->body) && a->flags == b->flags &&
           a->kind == b->kind && a->group == b->group && a->pos == b->pos;
}

static int strs_same(const herald_str *a, uint32_t na, const herald_str *b, uint32_t nb)
{
    if (na != nb)
        return 0;
    for (uint32_t i = 0; i < na; i++)
        if (!str_same(a[i], b[i]))
            return 0;
    return 1;
}

/* Field-by-field equality of two decoded frames ("m" only for DELIVER,
 * since only DELIVER encodes it). */
static int frame_same(const herald_frame *a, const herald_frame *b)
{
    if (a->type != b->type || a->rid != b->rid || a->ref != b->ref ||
        !str_same(a->token, b->token) || a->version != b->version ||
        !str_same(a->user, b->user) || !str_same(a->tenant, b->tenant) ||
        a->admin != b->admin || a->hb_ms != b->hb_ms || a->max_frame != b->max_frame ||
        !str_same(a->conv, b->conv) || !str_same(a->cmid, b->cmid) ||
        !str_same(a->body, b->body) || a->flags != b->flags || a->seq != b->seq ||
        a->ts != b->ts || a->dup != b->dup || a->code != b->code ||
        !str_same(a->text, b->text) || a->after != b->after || a->limit != b->limit ||
        a->more != b->more || !str_same(a->op, b->op) || !str_same(a->kind, b->kind) ||
        !str_same(a->owner, b->owner) || a->cap != b->cap || a->count != b->count)
        return 0;
    if (a->type == HERALD_FT_DELIVER && !msg_same(&a->msg, &b->msg))
        return 0;
    if (!strs_same(a->members, a->n_members, b->members, b->n_members) ||
        !strs_same(a->read, a->n_read, b->read, b->n_read) ||
        !strs_same(a->unread, a->n_unread, b->unread, b->n_unread))
        return 0;
    if (a->n_msgs != b->n_msgs || a->n_sync_groups != b->n_sync_groups ||
        a->n_sync_convs != b->n_sync_convs)
        return 0;
    for (uint32_t i = 0; i < a->n_msgs; i++)
        if (!msg_same(&a->msgs[i], &b->msgs[i]))
            return 0;
    for (uint32_t i = 0; i < a->n_sync_groups; i++)
        if (a->sync_groups[i].group != b->sync_groups[i].group ||
            a->sync_groups[i].pos != b->sync_groups[i].pos)
            return 0;
    for (uint32_t i = 0; i < a->n_sync_convs; i++)
        if (!str_same(a->sync_convs[i].conv, b->sync_convs[i].conv) ||
            a->sync_convs[i].seq != b->sync_convs[i].seq)
            return 0;
    /* App messages and transfers (frames 35..38). */
    if (!str_same(a->app, b->app) || a->window != b->window ||
        !strs_same(a->depts, a->n_depts, b->depts, b->n_depts) ||
        !strs_same(a->tags, a->n_tags, b->tags, b->n_tags) ||
        !strs_same(a->limited, a->n_limited, b->limited, b->n_limited) ||
        !strs_same(a->bad_users, a->n_bad_users, b->bad_users, b->n_bad_users) ||
        !strs_same(a->bad_depts, a->n_bad_depts, b->bad_depts, b->n_bad_depts) ||
        !strs_same(a->bad_tags, a->n_bad_tags, b->bad_tags, b->n_bad_tags) ||
        !strs_same(a->groups, a->n_groups, b->groups, b->n_groups) ||
        !strs_same(a->statuses, a->n_statuses, b->statuses, b->n_statuses) ||
        !strs_same(a->reasons, a->n_reasons, b->reasons, b->n_reasons) ||
        !strs_same(a->texts, a->n_texts, b->texts, b->n_texts) ||
        !str_same(a->corp, b->corp) ||
        !strs_same(a->unreached, a->n_unreached, b->unreached, b->n_unreached) ||
        a->n_times != b->n_times)
        return 0;
    for (uint32_t i = 0; i < a->n_times; i++)
        if (a->times[i] != b->times[i])
            return 0;
    return 1;
}

/* True when s is absent or lies wholly inside p[0..n). */
static int str_inside(herald_str s, const uint8_t *p, size_t n)
{
    const uint8_t *q = (const uint8_t *)s.ptr;
    return s.len == 0 || (q >= p && q <= p + n && s.len <= (size_t)(p + n - q));
}

/* Decoded strings point into the payload, never elsewhere (a sample of the
 * fields: the frame's strings, array entries, messages). */
static int strings_inside(const herald_frame *f, const uint8_t *p, size_t n)
{
    if (!str_inside(f->token, p, n) || !str_inside(f->conv, p, n) ||
        !str_inside(f->body, p, n) || !str_inside(f->text, p, n) ||
        !str_inside(f->msg.body, p, n) || !str_inside(f->msg.conv, p, n))
        return 0;
    for (uint32_t i = 0; i < f->n_members; i++)
        if (!str_inside(f->members[i], p, n))
            return 0;
    for (uint32_t i = 0; i < f->n_msgs; i++)
        if (!str_inside(f->msgs[i].body, p, n) || !str_inside(f->msgs[i].from, p, n))
            return 0;
    for (uint32_t i = 0; i < f->n_sync_convs; i++)
        if (!str_inside(f->sync_convs[i].conv, p, n))
            return 0;
    return 1;
}

/* Decodes one payload; on success checks encode → peek → decode. */
static void check_payload(const uint8_t *p, size_t n)
{
    herald_frame f, g;
    herald_buf buf = {0};
    size_t flen = 0;
    int rc;

    rc = herald_frame_decode(p, n, &fuzz_limits, &f);
    if (rc != 0) {
        static const herald_frame zero;
        if (memcmp(&f, &zero, sizeof f) != 0)
            abort(); /* *out must be left empty on error */
        return;
    }
    if (f.type == 0 || f.type >= HERALD_FT_COUNT_ || !strings_inside(&f, p, n))
        abort();
    rc = herald_frame_encode(&f, &buf);
    if (rc != 0)
        abort();
    /* The re-encoding may be longer than the input (a short "body" str
     * becomes a bin with a longer header), so its own length is the cap. */
    if (herald_frame_peek(buf.data, buf.len, (uint32_t)buf.len, &flen) != 0 || flen != buf.len)
        abort();
    rc = herald_frame_decode(buf.data + HERALD_FRAME_HEADER, buf.len - HERALD_FRAME_HEADER,
                             &(herald_limits){.max_frame = (uint32_t)buf.len}, &g);
    if (rc != 0 || !frame_same(&f, &g))
        abort();
    herald_frame_release(&g);
    herald_frame_release(&f);
    herald_buf_free(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t flen = 0;

    if (herald_frame_peek(data, size, fuzz_limits.max_frame, &flen) == 0 && flen > 0) {
        if (flen < HERALD_FRAME_HEADER + 1 || flen > size)
            abort();
        check_payload(data + HERALD_FRAME_HEADER, flen - HERALD_FRAME_HEADER);
    }
    check_payload(data, size);
    return 0;
}
