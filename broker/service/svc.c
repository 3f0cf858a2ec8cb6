/* svc.c — the request service's entry point: one dispatch table and the
 * authorization check in front of every handler; its lifecycle and the
 * periodic ticks. See svc.h. */
#include "svc_int.h"

#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "json.h"
#include "log.h"

/* The handlers, one per request frame type, each in its topic's file. */
typedef void (*svc_handler)(svc_req *rq, herald_frame *f);
void on_hello(svc_req *rq, herald_frame *f);      /* sync.c */
void on_sync(svc_req *rq, herald_frame *f);       /* sync.c */
void on_send(svc_req *rq, herald_frame *f);       /* message.c */
void on_read(svc_req *rq, herald_frame *f);       /* message.c */
void on_recall(svc_req *rq, herald_frame *f);     /* message.c */
void on_dnd(svc_req *rq, herald_frame *f);        /* message.c */
void on_urgent(svc_req *rq, herald_frame *f);     /* message.c */
void on_conv(svc_req *rq, herald_frame *f);       /* conv.c */
void on_history(svc_req *rq, herald_frame *f);    /* conv.c */
void on_receipts(svc_req *rq, herald_frame *f);   /* conv.c */
void on_dir(svc_req *rq, herald_frame *f);        /* directory.c */
void on_contact(svc_req *rq, herald_frame *f);    /* directory.c */
void on_tag(svc_req *rq, herald_frame *f);        /* directory.c */
void mass_start(svc_req *rq, herald_frame *f);    /* mass.c (MASS send) */
void mass_status(svc_req *rq, herald_frame *f);   /* mass.c (MASS status) */
void app_start(svc_req *rq, herald_frame *f);     /* app.c (APP) */
void transfer_start(svc_req *rq, herald_frame *f); /* transfer.c (TRANSFER) */

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

/* Request frames a client may send, by type. */
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
    if (!rq->sess->authed && f->type == HERALD_FT_APP && herald_str_eq(f->op, "login")) {
        /* An app's credentials for an access token: no session yet. */
        app_registry(rq, f);
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
        bool as_admin;
        int rc = authz_check_as(svc_meta(rq->s), ten, user, role, f, &as_admin, why, sizeof why);
        if (rc) {
            req_error(rq, rc, rc == HERALD_EFORBIDDEN ? why : NULL, f->rid);
            return;
        }
        rq->admin = rq->sess->admin || as_admin;
    }
    h(rq, f);
}

void svc_request(svc *s, session *sess, herald_frame *f, const svc_sink *sink)
{
    svc_req *rq = calloc(1, sizeof *rq);

    if (!rq) {
        herald_frame e = herald_frame_error(HERALD_ENOMEM, NULL, f->rid);
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

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    svc *s = w->data;
    (void)loop;
    (void)revents;
    remind_tick(s);
    transfer_tick(s);
}

int svc_create(const svc_config *cfg, struct ev_loop *loop, store *const *stores, uint32_t n,
               const svc_backend *be, svc **out)
{
    svc *s;
    int rc;

    if (n == 0 || n > SVC_MAX_GROUPS || !be || !be->submit || !be->status)
        return HERALD_EINVAL;
    s = calloc(1, sizeof *s);
    if (!s)
        return HERALD_ENOMEM;
    s->be = *be;
    s->cfg = *cfg;
    s->loop = loop;
    s->shards = calloc(n, sizeof *s->shards);
    if (!s->shards) {
        rc = HERALD_ENOMEM;
        goto fail_alloc;
    }
    s->nshards = n;
    for (uint32_t i = 0; i < n; i++) {
        if (store_group(stores[i]) != i) {
            rc = HERALD_EINVAL;
            goto fail_shards;
        }
        s->shards[i].st = stores[i];
    }
    if (!s->cfg.cb.offline_wait_ms)
        s->cfg.cb.offline_wait_ms = 1000;
    if ((rc = off_create(s, &s->off)) != 0)
        goto fail_shards;
    if (cfg->cb.on && (rc = cbd_create(s, &s->cb)) != 0) {
        off_destroy(s->off);
        goto fail_shards;
    }
    ev_timer_init(&s->tick_w, on_tick, 1.0, 1.0);
    s->tick_w.data = s;
    ev_timer_start(loop, &s->tick_w);
    *out = s;
    return 0;

fail_shards:
    free(s->shards);
fail_alloc:
    free(s);
    return rc;
}

void svc_cb_stats_get(const svc *s, svc_cb_stats *out) { cbd_stats(s->cb, out); }

void svc_outbox_written(svc *s, uint32_t group)
{
    if (s->cb)
        cbd_written(s->cb, group);
}

void svc_destroy(svc *s)
{
    if (!s)
        return;
    s->stopping = true;
    ev_timer_stop(s->loop, &s->tick_w);
    cbd_destroy(s->cb);
    off_destroy(s->off);
    free(s->shards);
    free(s);
}
