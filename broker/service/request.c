/* request.c — what every handler builds on: replies through the sink,
 * submitted steps and their completions, routing to the service's stores.
 * See svc_int.h. */
#include "svc_int.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "route.h"
#include "slots.h"

void req_hold(svc_req *rq) { rq->refs++; }

void req_release(svc_req *rq)
{
    if (--rq->refs > 0)
        return;
    if (rq->sink.done)
        rq->sink.done(rq->sink.ctx);
    free(rq);
}

bool req_open(const svc_req *rq) { return !rq->closed; }

int req_send(svc_req *rq, const herald_frame *f)
{
    int rc;
    if (rq->closed)
        return HERALD_ECLOSED;
    rc = rq->sink.send(rq->sink.ctx, f);
    if (rc == HERALD_ECLOSED)
        rq->closed = true;
    return rc;
}

int req_error(svc_req *rq, int code, const char *text, uint64_t ref)
{
    herald_frame f = herald_frame_error(code, text, ref);
    return req_send(rq, &f);
}

void req_fail(svc_req *rq, int code, const char *text)
{
    if (rq->closed)
        return;
    rq->closed = true;
    rq->sink.fail(rq->sink.ctx, code, text);
}

cmd req_cmd(const svc_req *rq, uint32_t op)
{
    return (cmd){.op = op,
                 .tenant = herald_str_z(rq->sess->tenant),
                 .user = herald_str_z(rq->sess->user),
                 .admin = rq->admin,
                 .ts = session_now_ms()};
}

/* Message bytes a HISTORY/SYNC answer may carry so the frame stays under the
 * frame cap (the rest of the frame is small; 1/8 is left for it). */
size_t req_reply_budget(const svc_req *rq)
{
    return rq->s->cfg.max_frame - rq->s->cfg.max_frame / 8;
}

uint32_t req_conv_group(const svc_req *rq, herald_str conv)
{
    return svc_conv_group(rq->s, herald_str_z(rq->sess->tenant), conv);
}

bool req_id_ok(svc_req *rq, const herald_frame *f, herald_str id, const char *what)
{
    char msg[96];
    if (id.ptr && token_id_valid(id.ptr, id.len))
        return true;
    snprintf(msg, sizeof msg, "invalid %s id", what);
    req_error(rq, HERALD_EINVAL, msg, f->rid);
    return false;
}

/* A step's outcome: its done, then the requester's hold goes. */
static void step_applied(void *arg, apply_result *res)
{
    step *st = arg;
    svc_req *rq = st->rq;
    st->done(st, res);
    free(st);
    if (rq)
        req_release(rq);
}

void step_error(const step *st, const apply_result *res)
{
    if (st->rq)
        req_error(st->rq, res->err, res->errmsg[0] ? res->errmsg : NULL, st->rid);
}

static step *step_submit(svc *s, svc_req *rq, uint64_t rid, uint32_t op, herald_buf *cmdbuf,
                         const char *conv, uint32_t group, step_fn done)
{
    step *st = calloc(1, sizeof *st);
    int rc;

    if (!st) {
        herald_buf_free(cmdbuf);
        if (rq)
            req_error(rq, HERALD_ENOMEM, NULL, rid);
        return NULL;
    }
    *st = (step){.rq = rq, .rid = rid, .op = op, .group = group, .done = done};
    snprintf(st->conv, sizeof st->conv, "%s", conv ? conv : "");
    if (rq)
        req_hold(rq);
    rc = svc_submit(s, group, cmdbuf, step_applied, st);
    if (rc) {
        herald_buf_free(cmdbuf);
        if (rq) {
            req_error(rq, rc,
                      rc == HERALD_EBUSY
                          ? "not applied: this group's write queue is full; retry later"
                          : NULL,
                      rid);
            req_release(rq);
        }
        free(st);
        return NULL;
    }
    return st;
}

step *svc_step_buf(svc_req *rq, uint64_t rid, uint32_t op, herald_buf *cmdbuf, const char *conv,
                   uint32_t group, step_fn done)
{
    return step_submit(rq->s, rq, rid, op, cmdbuf, conv, group, done);
}

static step *step_cmd(svc *s, svc_req *rq, uint64_t rid, const cmd *k, uint32_t group,
                      step_fn done)
{
    herald_buf b = {0};
    char conv[TOKEN_ID_MAX + 1] = "";
    int rc = cmd_encode(k, &b);

    if (rc) {
        if (rq)
            req_error(rq, rc, NULL, rid);
        return NULL;
    }
    if (k->conv.ptr && k->conv.len <= TOKEN_ID_MAX) {
        memcpy(conv, k->conv.ptr, k->conv.len);
        conv[k->conv.len] = '\0';
    }
    return step_submit(s, rq, rid, k->op, &b, conv, group, done);
}

step *svc_step(svc_req *rq, uint64_t rid, const cmd *k, uint32_t group, step_fn done)
{
    return step_cmd(rq->s, rq, rid, k, group, done);
}

step *svc_own_step(svc *s, const cmd *k, uint32_t group, step_fn done)
{
    return step_cmd(s, NULL, 0, k, group, done);
}

/* What travels with a submitted command until its outcome is known. */
typedef struct pending {
    void (*done)(void *arg, apply_result *res);
    void *arg;
} pending;

uint32_t svc_conv_group(const svc *s, herald_str tenant, herald_str conv)
{
    return route_conv_group(tenant, conv, s->nshards, s->has_slotmap ? s->slotmap : NULL);
}

store *svc_conv_store(const svc *s, herald_str tenant, herald_str conv)
{
    return s->shards[svc_conv_group(s, tenant, conv)].st;
}

store *svc_meta(const svc *s) { return s->shards[0].st; }

int svc_set_slotmap(svc *s, const uint8_t *map)
{
    for (uint32_t i = 0; i < HERALD_SLOTS; i++)
        if (map[i] >= s->nshards)
            return HERALD_EINVAL;
    memcpy(s->slotmap, map, HERALD_SLOTS);
    s->has_slotmap = true;
    return 0;
}

int svc_submit(svc *s, uint32_t group, herald_buf *cmdbuf,
               void (*done)(void *arg, apply_result *res), void *arg)
{
    pending *p;
    int rc;

    if (group >= s->nshards)
        return HERALD_EINVAL;
    p = malloc(sizeof *p);
    if (!p)
        return HERALD_ENOMEM;
    p->done = done;
    p->arg = arg;
    rc = s->be.submit(s->be.ctx, group, cmdbuf, p);
    if (rc)
        free(p);
    return rc;
}

void svc_applied(svc *s, void *cookie, apply_result *res)
{
    pending *p = cookie;
    (void)s;
    p->done(p->arg, res);
    free(p);
}
