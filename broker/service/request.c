/* request.c — the service's entry point: one dispatch table, the
 * authorization check, the reply sink and submitted steps. See svc.h. */
#include "svc_int.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "json.h"
#include "log.h"

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
    herald_frame f = {.type = HERALD_FT_ERROR, .code = (uint32_t)code,
                      .text = herald_str_z(text ? text : herald_strerror(code)),
                      .ref = ref};
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
                 .admin = rq->sess->admin,
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

/* STATUS (tenant admin): the broker's state as one JSON document, written
 * by the backend (it knows the process). */
static void on_status(svc_req *rq, herald_frame *f)
{
    herald_buf b = {0};
    herald_frame r = {.type = HERALD_FT_STATUS_RESULT, .rid = f->rid};
    json_w w;

    json_init(&w, &b);
    rq->s->be.status(rq->s->be.ctx, &w);
    if (json_done(&w) != 0) {
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
    } else {
        r.body = (herald_str){.ptr = (const char *)b.data, .len = (uint32_t)b.len};
        req_send(rq, &r);
    }
    herald_buf_free(&b);
}

static void on_mass(svc_req *rq, herald_frame *f)
{
    if (herald_str_eq(f->op, "send"))
        mass_start(rq, f);
    else if (herald_str_eq(f->op, "status"))
        mass_status(rq, f);
    else
        req_error(rq, HERALD_EINVAL, "op must be send or status", f->rid);
}

/* Request frames a client may send, by type. PING is the transport's. */
static const svc_handler handlers[HERALD_FT_COUNT_] = {
    [HERALD_FT_HELLO] = on_hello,          [HERALD_FT_SEND] = on_send,
    [HERALD_FT_SYNC] = on_sync,            [HERALD_FT_HISTORY] = on_history,
    [HERALD_FT_READ] = on_read,            [HERALD_FT_RECEIPTS] = on_receipts,
    [HERALD_FT_CONV] = on_conv,            [HERALD_FT_RECALL] = on_recall,
    [HERALD_FT_DND] = on_dnd,              [HERALD_FT_URGENT] = on_urgent,
    [HERALD_FT_DIR] = on_dir,              [HERALD_FT_CONTACT] = on_contact,
    [HERALD_FT_STATUS] = on_status,        [HERALD_FT_TAG] = on_tag,
    [HERALD_FT_MASS] = on_mass,            [HERALD_FT_APP] = app_start,
    [HERALD_FT_TRANSFER] = transfer_start,
};

static void dispatch(svc_req *rq, herald_frame *f)
{
    svc_handler h = f->type < HERALD_FT_COUNT_ ? handlers[f->type] : NULL;

    if (f->type == HERALD_FT_PING) {
        herald_frame r = {.type = HERALD_FT_PONG, .rid = f->rid};
        req_send(rq, &r);
        return;
    }
    if (!rq->sess->authed && f->type != HERALD_FT_HELLO) {
        req_fail(rq, HERALD_EUNAUTHORIZED, "HELLO required first");
        return;
    }
    if (!h) {
        req_error(rq, HERALD_EUNSUPPORTED, "frame type not accepted from clients", f->rid);
        return;
    }
    if (f->type != HERALD_FT_HELLO) {
        /* The one place that decides who may do what (authz.c). */
        char why[256];
        herald_str ten = herald_str_z(rq->sess->tenant), user = herald_str_z(rq->sess->user);
        authz_role role = authz_role_of(svc_meta(rq->s), ten, user, rq->sess->admin);
        int rc = authz_check(svc_meta(rq->s), ten, user, role, f, why, sizeof why);
        if (rc) {
            req_error(rq, rc, rc == HERALD_EFORBIDDEN ? why : NULL, f->rid);
            return;
        }
    }
    h(rq, f);
}

void svc_request(svc *s, session *sess, herald_frame *f, const svc_sink *sink)
{
    svc_req *rq = calloc(1, sizeof *rq);

    if (!rq) {
        herald_frame e = {.type = HERALD_FT_ERROR, .code = HERALD_ENOMEM,
                          .text = herald_str_z(herald_strerror(HERALD_ENOMEM)), .ref = f->rid};
        sink->send(sink->ctx, &e);
        if (sink->done)
            sink->done(sink->ctx);
        return;
    }
    rq->s = s;
    rq->sess = sess;
    rq->sink = *sink;
    rq->refs = 1;
    dispatch(rq, f);
    req_release(rq);
}
