/* sync.c — HELLO (the session and its position) and SYNC (what a client
 * missed, from its sync key), over every shard group. */
#include "svc_int.h"

#include <sodium.h>

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* A sync (or the current position) over every shard group. */
typedef struct multi_sync {
    store_sync_out *outs;  /* one per shard (owned) */
    herald_buf msgs;       /* herald_msg array, strings in outs[i] arenas */
    herald_buf sg;         /* herald_sync_group array */
    bool more;             /* a limit cut the answer */
} multi_sync;

static void ms_free(multi_sync *ms, uint32_t n)
{
    for (uint32_t i = 0; ms->outs && i < n; i++)
        store_sync_free(&ms->outs[i]);
    free(ms->outs);
    herald_buf_free(&ms->msgs);
    herald_buf_free(&ms->sg);
}

/* key NULL: the user's current position (WELCOME). Otherwise everything
 * after the key, at most `limit` messages and about the frame budget in
 * all; groups not reached keep the key's position and `more` is set. */
static int sync_all(svc_req *rq, const herald_frame *key, uint32_t limit, multi_sync *ms)
{
    svc *s = rq->s;
    herald_str ten = herald_str_z(rq->sess->tenant), user = herald_str_z(rq->sess->user);
    size_t budget = req_reply_budget(rq), used = 0;
    int rc = 0;

    memset(ms, 0, sizeof *ms);
    if (limit == 0 || limit > 1000)
        limit = limit ? 1000 : 500;
    ms->outs = calloc(s->nshards, sizeof *ms->outs);
    if (!ms->outs)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < s->nshards && rc == 0; i++) {
        store_sync_out *o = &ms->outs[i];
        herald_sync_group pos = {.group = i};
        for (uint32_t k = 0; key && k < key->n_sync_groups; k++)
            if (key->sync_groups[k].group == i)
                pos.pos = key->sync_groups[k].pos;
        if (key && (limit == 0 || used >= budget)) {
            ms->more = true; /* not reached: the group keeps the client's position */
        } else {
            if (!key) {
                pos.pos = store_gpos(s->shards[i].st);
                if (herald_buf_append(&ms->sg, &pos, sizeof pos) != 0)
                    rc = HERALD_ENOMEM;
                continue;
            }
            rc = store_sync(s->shards[i].st, ten, user, pos.pos, limit, budget - used, o);
            if (rc)
                break;
            pos.pos = o->pos;
            for (uint32_t m = 0; m < o->msgs.n; m++) {
                const herald_msg *hm = &o->msgs.v[m];
                used += hm->body.len + hm->conv.len + hm->from.len + 64;
            }
            limit -= o->msgs.n <= limit ? o->msgs.n : limit;
            ms->more |= o->msgs.more;
            if (herald_buf_append(&ms->msgs, o->msgs.v, o->msgs.n * sizeof(herald_msg)) != 0)
                rc = HERALD_ENOMEM;
        }
        if (rc == 0 && herald_buf_append(&ms->sg, &pos, sizeof pos) != 0)
            rc = HERALD_ENOMEM;
    }
    if (rc)
        ms_free(ms, s->nshards);
    return rc;
}

/* Fills a reply's msgs / sg / more from ms and sends it. */
static void send_multi(svc_req *rq, herald_frame *reply, const multi_sync *ms)
{
    uint64_t now = session_now_ms();
    reply->n_msgs = (uint32_t)(ms->msgs.len / sizeof(herald_msg));
    reply->msgs = (herald_msg *)ms->msgs.data;
    for (uint32_t i = 0; i < reply->n_msgs; i++)
        if (session_silenced(rq->sess, reply->msgs[i].flags, now))
            reply->msgs[i].flags |= HERALD_MSGF_SILENT;
    reply->n_sync_groups = (uint32_t)(ms->sg.len / sizeof(herald_sync_group));
    reply->sync_groups = (herald_sync_group *)ms->sg.data;
    reply->more = ms->more;
    req_send(rq, reply);
}


/* A token's claims, verified with its tenant's secret (and the expiry
 * when now is not 0). */
static int verify(svc *s, const char *tok, size_t len, uint64_t now, token_claims *cl)
{
    store_tenant t;
    int rc = token_peek(tok, len, cl);
    if (rc == 0)
        rc = store_tenant_get(svc_meta(s), herald_str_z(cl->tenant), &t);
    if (rc == HERALD_ENOT_FOUND)
        rc = HERALD_EUNAUTHORIZED;
    if (rc == 0)
        rc = token_verify(t.secret, tok, len, now, cl);
    sodium_memzero(&t, sizeof t);
    return rc;
}

int svc_session_of(svc *s, const char *tok, size_t len, uint64_t now, session *out)
{
    token_claims cl;
    int rc = verify(s, tok, len, now, &cl);

    *out = (session){0};
    if (rc)
        return rc;
    strcpy(out->tenant, cl.tenant);
    strcpy(out->user, cl.user);
    out->admin = cl.admin;
    rc = store_dnd_get(svc_meta(s), herald_str_z(out->tenant), herald_str_z(out->user),
                       &out->dnd_until);
    out->authed = rc == 0;
    return rc;
}

void on_hello(svc_req *rq, herald_frame *f)
{
    token_claims cl;
    multi_sync pos;
    herald_frame w = {0};
    int rc;

    if (rq->sess->authed) {
        req_error(rq, HERALD_EPROTOCOL, "duplicate HELLO", f->rid);
        return;
    }
    if (f->version > HERALD_PROTOCOL_VERSION) {
        req_fail(rq, HERALD_EUNSUPPORTED, "protocol version not supported");
        return;
    }
    rc = verify(rq->s, f->token.ptr, f->token.len, (uint64_t)time(NULL), &cl);
    if (rc) {
        log_info("gw.auth", "%s: %s", rq->sink.origin ? rq->sink.origin : "-",
                 herald_err_name(rc));
        req_fail(rq, rc, rc == HERALD_EEXPIRED ? "token expired" : "invalid token");
        return;
    }
    strcpy(rq->sess->tenant, cl.tenant);
    strcpy(rq->sess->user, cl.user);
    rq->sess->admin = cl.admin;
    rq->sess->authed = true;
    /* Start the session before reading the position: anything committed
     * after the read is pushed, anything before is covered by it. */
    if (rq->sink.started && (rc = rq->sink.started(rq->sink.ctx)) != 0) {
        *rq->sess = (session){0};
        req_fail(rq, rc, herald_strerror(rc));
        return;
    }
    rc = store_dnd_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), herald_str_z(rq->sess->user),
                       &rq->sess->dnd_until);
    if (rc == 0)
        rc = sync_all(rq, NULL, 0, &pos);
    if (rc) {
        req_fail(rq, rc, "cannot read sync position");
        return;
    }
    w.user = herald_str_z(rq->sess->user);
    w.tenant = herald_str_z(rq->sess->tenant);
    w.admin = rq->sess->admin;
    w.hb_ms = rq->s->cfg.hb_ms;
    w.max_frame = rq->s->cfg.max_frame;
    w.version = HERALD_PROTOCOL_VERSION;
    w.type = HERALD_FT_WELCOME;
    w.rid = f->rid;
    send_multi(rq, &w, &pos);
    ms_free(&pos, rq->s->nshards);
    log_debug("gw.hello", "%s is %s/%s", rq->sink.origin ? rq->sink.origin : "-",
              rq->sess->tenant, rq->sess->user);
}


void on_sync(svc_req *rq, herald_frame *f)
{
    multi_sync ms;
    herald_frame r = {.type = HERALD_FT_SYNC_RESULT, .rid = f->rid};
    int rc = sync_all(rq, f, f->limit, &ms);

    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        return;
    }
    send_multi(rq, &r, &ms);
    ms_free(&ms, rq->s->nshards);
}

