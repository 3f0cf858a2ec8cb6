/* message.c — messages and per-user state: SEND, READ, RECALL, DND, URGENT
 * (DING status and confirm), and the urgent reminders tick. */
#include "svc_int.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The largest SEND body whose deliveries fit the frame cap. */
static uint32_t body_max(const svc_req *rq)
{
    uint32_t cap = rq->s->cfg.max_frame;
    return cap > 2 * HERALD_ENVELOPE_RESERVE ? cap - HERALD_ENVELOPE_RESERVE : cap / 2;
}


/* Sets CMD_KINDS_READ / CMD_EXTERNAL_NOW on a SEND or READ. */
static int mark_kinds(svc_req *rq, cmd *k)
{
    bool ext, scanned;
    int rc = conv_external_now(rq, k->conv, &ext, &scanned);
    if (rc == 0 && scanned)
        k->flags |= CMD_KINDS_READ | (ext ? CMD_EXTERNAL_NOW : 0);
    return rc;
}


/* SEND applied: ACK with the message's seq and commit time (dup: the
 * original's). */
static void send_done(step *st, apply_result *res)
{
    herald_frame a = {.type = HERALD_FT_ACK, .rid = st->rid, .conv = herald_str_z(st->conv),
                      .seq = res->seq, .ts = res->ts, .dup = res->dup};
    if (res->err)
        step_error(st, res);
    else
        req_send(st->rq, &a);
}

/* READ, RECALL, URGENT confirm applied: OK with the seq the state machine
 * settled on. */
static void ok_seq_done(step *st, apply_result *res)
{
    herald_frame ok = {.type = HERALD_FT_OK, .rid = st->rid, .seq = res->seq};
    if (res->err)
        step_error(st, res);
    else
        req_send(st->rq, &ok);
}

/* DND applied: OK with its end (0: off). The requesting session switches
 * now; the user's other sessions through the DND event. */
static void dnd_done(step *st, apply_result *res)
{
    herald_frame ok = {.type = HERALD_FT_OK, .rid = st->rid, .ts = res->seq,
                       .flags = res->seq ? 1u : 0u};
    if (res->err) {
        step_error(st, res);
        return;
    }
    st->rq->sess->dnd_until = res->seq;
    req_send(st->rq, &ok);
}

void on_send(svc_req *rq, herald_frame *f)
{
    cmd k = req_cmd(rq, CMD_SEND);

    if (!req_id_ok(rq, f, f->conv, "conversation"))
        return;
    if (f->cmid.len > TOKEN_ID_MAX) {
        req_error(rq, HERALD_EINVAL, "cmid longer than 128 bytes", f->rid);
        return;
    }
    if (f->body.len > body_max(rq)) {
        /* Its DELIVER, HISTORY_RESULT and SYNC_RESULT must fit the cap too. */
        char m[160];
        snprintf(m, sizeof m,
                 "a message body may be at most %u bytes (the frame cap %u less %u for the "
                 "envelope of its delivery), not %u",
                 body_max(rq), rq->s->cfg.max_frame, HERALD_ENVELOPE_RESERVE, f->body.len);
        req_error(rq, HERALD_ETOO_BIG, m, f->rid);
        return;
    }
    k.conv = f->conv;
    k.cmid = f->cmid;
    k.body = f->body;
    k.flags = f->flags & HERALD_MSGF_CLIENT_MASK;
    {
        /* Tenant settings (reminder schedule) and the certified identity
         * come from the broker's own records, never from the client. */
        store_tenant t;
        store_dir_user d;
        int rc = store_tenant_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), &t);
        if (rc == 0) {
            rc = store_dir_user_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant),
                                    herald_str_z(rq->sess->user), &d);
            if (rc == HERALD_ENOT_FOUND) {
                d = (store_dir_user){.kind = DIR_INTERNAL};
                rc = 0;
            }
        }
        if (rc) {
            req_error(rq, rc, NULL, f->rid);
            return;
        }
        if (k.flags & HERALD_MSGF_URGENT) {
            k.ivl = t.urgent_interval;
            k.max = t.urgent_max;
        }
        if (d.kind == DIR_INTERNAL) {
            k.corp = herald_str_z(t.corp);
            k.title = herald_str_z(d.title);
        }
        /* Identity stamps follow the members' kinds now, not at join. */
        rc = mark_kinds(rq, &k);
        if (rc) {
            req_error(rq, rc, NULL, f->rid);
            return;
        }
        svc_step(rq, f->rid, &k, req_conv_group(rq, k.conv), send_done);
    }
}

void on_read(svc_req *rq, herald_frame *f)
{
    cmd k = req_cmd(rq, CMD_READ);
    store_tenant t;
    int rc;

    if (!req_id_ok(rq, f, f->conv, "conversation"))
        return;
    /* Cursors move either way; the tenant's switch decides about events. */
    if (store_tenant_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), &t) == 0 && t.no_receipts)
        k.flags = CMD_TENANT_NO_RECEIPTS;
    k.conv = f->conv;
    k.seq = f->seq;
    /* Receipts follow the members' kinds now, not at join. */
    rc = mark_kinds(rq, &k);
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        return;
    }
    svc_step(rq, f->rid, &k, req_conv_group(rq, k.conv), ok_seq_done);
}

void on_recall(svc_req *rq, herald_frame *f)
{
    cmd k = req_cmd(rq, CMD_RECALL);
    store_tenant t;
    int rc;

    if (!req_id_ok(rq, f, f->conv, "conversation"))
        return;
    /* The window is the tenant's setting, carried in the command. */
    rc = store_tenant_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), &t);
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        return;
    }
    k.conv = f->conv;
    k.seq = f->seq;
    k.win = t.recall_window;
    svc_step(rq, f->rid, &k, req_conv_group(rq, k.conv), ok_seq_done);
}

void on_dnd(svc_req *rq, herald_frame *f)
{
    cmd k = req_cmd(rq, CMD_DND);

    if (herald_str_eq(f->op, "status")) {
        /* From the store (kept with the tenants), not the session's copy:
         * a request of the open API has no session that saw the change. */
        herald_frame ok = {.type = HERALD_FT_OK, .rid = f->rid};
        uint64_t until = 0;
        int rc = store_dnd_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant),
                               herald_str_z(rq->sess->user), &until);
        if (rc) {
            req_error(rq, rc, NULL, f->rid);
            return;
        }
        if (until > session_now_ms()) {
            ok.ts = until;
            ok.flags = 1;
        }
        req_send(rq, &ok);
        return;
    }
    if (herald_str_eq(f->op, "on")) {
        k.flags = 1;
        k.seq = f->ts;
    } else if (!herald_str_eq(f->op, "off")) {
        req_error(rq, HERALD_EINVAL, "op must be on, off or status", f->rid);
        return;
    }
    /* User state lives with the tenants (group 0). */
    svc_step(rq, f->rid, &k, 0, dnd_done);
}

void on_urgent(svc_req *rq, herald_frame *f)
{
    if (!req_id_ok(rq, f, f->conv, "conversation"))
        return;
    if (herald_str_eq(f->op, "confirm")) {
        cmd k = req_cmd(rq, CMD_CONFIRM);
        k.conv = f->conv;
        k.seq = f->seq;
        svc_step(rq, f->rid, &k, req_conv_group(rq, k.conv), ok_seq_done);
    } else if (herald_str_eq(f->op, "status")) {
        store_strs ok = {0}, pend = {0};
        herald_frame r = {.type = HERALD_FT_URGENT_RESULT, .rid = f->rid, .conv = f->conv,
                          .seq = f->seq};
        herald_str *sv;
        int rc;
        if (!conv_may_read(rq, f))
            return;
        rc = store_urgent_status(svc_conv_store(rq->s, herald_str_z(rq->sess->tenant), f->conv),
                                 herald_str_z(rq->sess->tenant), f->conv, f->seq, &ok, &pend);
        sv = rc ? NULL : calloc((size_t)ok.n + pend.n + 1, sizeof *sv);
        if (!rc && !sv)
            rc = HERALD_ENOMEM;
        if (rc) {
            req_error(rq, rc, NULL, f->rid);
        } else {
            for (uint32_t i = 0; i < ok.n; i++)
                sv[i] = herald_str_z(ok.v[i]);
            for (uint32_t i = 0; i < pend.n; i++)
                sv[ok.n + i] = herald_str_z(pend.v[i]);
            r.read = sv;
            r.n_read = ok.n;
            r.unread = sv + ok.n;
            r.n_unread = pend.n;
            req_send(rq, &r);
        }
        free(sv);
        store_strs_free(&ok);
        store_strs_free(&pend);
    } else {
        req_error(rq, HERALD_EINVAL, "op must be confirm or status", f->rid);
    }
}


/* A REMIND finished (its events went out with it): the group may get the
 * next one. */
static void remind_done(step *st, apply_result *res)
{
    svc *s = st->job;
    if (res->err)
        log_error("urgent.remind", "REMIND failed on shard %u: %s", st->group,
                  herald_err_name(res->err));
    s->shards[st->group].remind_busy = false;
}

void remind_tick(svc *s)
{
    uint64_t now = session_now_ms();
    for (uint32_t i = 0; i < s->nshards; i++) {
        shard *sh = &s->shards[i];
        cmd k = {.op = CMD_REMIND, .ts = now};
        uint64_t due;
        step *st;
        if (sh->remind_busy || s->stopping || (s->be.leads && !s->be.leads(s->be.ctx, i)))
            continue;
        due = store_remind_next(sh->st);
        if (!due || due > now)
            continue;
        st = svc_own_step(s, &k, i, remind_done);
        if (!st)
            continue;
        st->job = s;
        sh->remind_busy = true;
    }
}
