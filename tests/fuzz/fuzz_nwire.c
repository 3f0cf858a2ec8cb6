/* fuzz_nwire.c — the gateway/node message decoders (bytes from another
 * process on the network): the input is decoded as each of the four
 * messages; every success must re-encode, decode again to the same values,
 * and re-encode to the same bytes. */
#include <herald/error.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nwire.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

static int same(herald_str a, herald_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Two C strings equal (NULL equals only NULL). */
static int same_z(const char *a, const char *b)
{
    return (!a || !b) ? a == b : strcmp(a, b) == 0;
}

static int same_buf(const herald_buf *a, const herald_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* NW_OFFLINE's lists (and the sending gateway). */
static int same_offline(const nw_request *a, const nw_request *b)
{
    if (a->gw != b->gw || a->n_oconvs != b->n_oconvs || a->n_oseqs != b->n_oseqs ||
        a->n_ocounts != b->n_ocounts || a->n_users != b->n_users)
        return 0;
    for (uint32_t i = 0; i < a->n_oconvs; i++)
        if (!same(a->oconvs[i], b->oconvs[i]))
            return 0;
    for (uint32_t i = 0; i < a->n_users; i++)
        if (!same(a->users[i], b->users[i]))
            return 0;
    return (a->n_oseqs == 0 || memcmp(a->oseqs, b->oseqs, a->n_oseqs * sizeof *a->oseqs) == 0) &&
           (a->n_ocounts == 0 ||
            memcmp(a->ocounts, b->ocounts, a->n_ocounts * sizeof *a->ocounts) == 0);
}

static int same_request(const nw_request *a, const nw_request *b)
{
    return a->kind == b->kind && a->from == b->from && same(a->tenant, b->tenant) &&
           same(a->user, b->user) && a->admin == b->admin && a->dnd_until == b->dnd_until &&
           same(a->frame, b->frame) && a->group == b->group && same(a->cmd, b->cmd) &&
           same(a->token, b->token) && a->n_reach == b->n_reach &&
           (a->n_reach == 0 || memcmp(a->reach, b->reach, a->n_reach * sizeof *a->reach) == 0) &&
           same_offline(a, b);
}

static int same_reply(const nw_reply *a, const nw_reply *b)
{
    if (a->status != b->status || a->hint != b->hint || a->n_frames != b->n_frames ||
        !same(a->result, b->result) || a->authed != b->authed || !same(a->tenant, b->tenant) ||
        !same(a->user, b->user) || a->admin != b->admin || a->dnd_until != b->dnd_until ||
        a->close != b->close || a->n_leaders != b->n_leaders || !same(a->json, b->json))
        return 0;
    for (uint32_t i = 0; i < a->n_frames; i++)
        if (!same(a->frames[i], b->frames[i]))
            return 0;
    return memcmp(a->leaders, b->leaders, a->n_leaders * sizeof a->leaders[0]) == 0;
}

static int same_event(const nw_event *a, const nw_event *b)
{
    if (a->kind != b->kind || a->node != b->node || a->pubseq != b->pubseq ||
        !same(a->tenant, b->tenant) || a->n_users != b->n_users || a->n_prevs != b->n_prevs ||
        !same(a->frame, b->frame) || a->until != b->until || a->group != b->group ||
        a->index != b->index)
        return 0;
    for (uint32_t i = 0; i < a->n_users; i++)
        if (!same(a->users[i], b->users[i]))
            return 0;
    return a->n_prevs == 0 || memcmp(a->prevs, b->prevs, a->n_prevs * sizeof a->prevs[0]) == 0;
}

static int same_result(const apply_result *a, const apply_result *b)
{
    if (a->err != b->err || strcmp(a->errmsg, b->errmsg) != 0 || a->op != b->op ||
        a->index != b->index || a->skipped != b->skipped || a->seq != b->seq ||
        a->ts != b->ts || a->dup != b->dup || a->conv_kind != b->conv_kind ||
        a->group != b->group || a->n_targets != b->n_targets ||
        a->n_reminders != b->n_reminders || a->n_mass != b->n_mass)
        return 0;
    for (uint32_t i = 0; i < a->n_targets; i++)
        if (!same_z(a->targets[i].user, b->targets[i].user))
            return 0;
    for (uint32_t i = 0; i < a->n_reminders; i++) {
        const apply_remind *x = &a->reminders[i], *y = &b->reminders[i];
        if (!same_z(x->tenant, y->tenant) || !same_z(x->conv, y->conv) || x->seq != y->seq ||
            !same_z(x->user, y->user) || !same_z(x->pending, y->pending) ||
            x->count != y->count || x->escalate != y->escalate)
            return 0;
    }
    for (uint32_t i = 0; i < a->n_mass; i++) {
        const apply_mass *x = &a->mass[i], *y = &b->mass[i];
        if (!same_z(x->customer, y->customer) || !same_z(x->owner, y->owner) ||
            !same_z(x->conv, y->conv) || x->status != y->status)
            return 0;
    }
    if ((a->xfer == NULL) != (b->xfer == NULL))
        return 0;
    for (uint32_t i = 0; a->xfer && i < a->n_mass; i++)
        if (!same_z(a->xfer[i].tenant, b->xfer[i].tenant) ||
            !same_z(a->xfer[i].from, b->xfer[i].from) || a->xfer[i].at != b->xfer[i].at)
            return 0;
    return 1;
}

/* Decode → encode → decode → compare → encode → same bytes, for one type. */
#define ROUND_TRIP(T, enc, dec, rel, same_fn)                                      \
    do {                                                                           \
        T a_, b_;                                                                  \
        herald_buf e1_ = {0}, e2_ = {0};                                           \
        if (dec(data, size, &a_) == 0) {                                           \
            check(enc(&a_, &e1_) == 0);                                            \
            check(dec(e1_.data, e1_.len, &b_) == 0);                               \
            check(same_fn(&a_, &b_));                                              \
            check(enc(&b_, &e2_) == 0);                                            \
            check(same_buf(&e1_, &e2_));                                           \
            rel(&b_);                                                              \
            rel(&a_);                                                              \
            herald_buf_free(&e1_);                                                 \
            herald_buf_free(&e2_);                                                 \
        }                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ROUND_TRIP(nw_request, nw_request_encode, nw_request_decode, nw_request_release,
               same_request);
    ROUND_TRIP(nw_reply, nw_reply_encode, nw_reply_decode, nw_reply_release, same_reply);
    ROUND_TRIP(nw_event, nw_event_encode, nw_event_decode, nw_event_release, same_event);
    ROUND_TRIP(apply_result, nw_result_encode, nw_result_decode, apply_result_free,
               same_result);
    {
        /* The input as an event batch: every framed event stays inside it,
         * and a walk ends at the end or with EPROTOCOL, never past it. */
        size_t off = 0, len = 0, walked = 0;
        const uint8_t *ev = NULL;
        int rc;
        while ((rc = nw_batch_next(data, size, &off, &ev, &len)) == 0) {
            if (ev < data || len == 0 || ev + len > data + size || off > size)
                abort();
            walked += 4 + len;
        }
        if (rc != HERALD_ENOT_FOUND && rc != HERALD_EPROTOCOL)
            abort();
        if (rc == HERALD_ENOT_FOUND && walked != size)
            abort();
    }
    return 0;
}
