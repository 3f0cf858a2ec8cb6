/* transfer.c — customer transfer (TRANSFER), WeCom-style: in service a
 * customer waits for the tenant's period (default 24 h, it may object)
 * before the taker takes over; a resigned employee's customers move at once.
 *
 * The steps are commands in their own groups, each idempotent (see
 * apply_transfer.c): TRANSFER_MARK (meta) decides; for each customer that
 * is taking over, CONV_HANDOVER (the conversation's group) passes the
 * conversation on and TRANSFER_DONE (meta) moves the contact. Customer
 * groups are handed over directly (CONV_HANDOVER). Takeovers that come due
 * later are found by transfer_tick (meta-group leader only), which proposes
 * TRANSFER_DUE and runs the same steps with no requester; unfinished steps
 * come due again, so nothing depends on this process surviving. Loop thread. */
#include "svc_int.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"

#define XFER_PER_CALL 100u /* customers (and groups) per call */

/* One customer (or customer group) of a transfer. */
typedef struct xfer_ent {
    char tenant[TOKEN_ID_MAX + 1]; /* its tenant */
    char id[TOKEN_ID_MAX + 1];     /* customer or group id */
    char from[TOKEN_ID_MAX + 1];   /* giving it up */
    char to[TOKEN_ID_MAX + 1];     /* taking over */
    char conv[TOKEN_ID_MAX + 1];   /* customer: its conversation */
    bool group;                    /* a customer group */
    uint32_t status;               /* XFER_* */
    uint32_t why;                  /* XFER_WHY_* from TRANSFER_MARK (0: none) */
    int err;                       /* group: the handover's error (0: none) */
    char errmsg[128];              /* group: its text */
    uint64_t at;                   /* takeover time (waiting) */
} xfer_ent;

typedef struct xfer_job {
    svc *s;               /* the service */
    svc_req *rq;          /* the requester (ref held); NULL for the tick's */
    uint64_t rid;     /* request to answer */
    bool resigned;    /* no wait; the old owner leaves groups */
    xfer_ent *e;      /* customers first, then groups */
    uint32_t n;       /* entries */
    uint32_t n_cust;  /* customers among them */
    uint32_t outstanding; /* steps submitted, not yet applied */
    uint32_t limit;   /* the tenant's customer limit (for the at-limit text) */
} xfer_job;

static void job_free(xfer_job *j)
{
    if (!j)
        return;
    if (j->rq)
        req_release(j->rq);
    free(j->e);
    free(j);
}

static const char *status_name(uint32_t st)
{
    switch (st) {
    case XFER_DONE: return "done";
    case XFER_REFUSED: return "refused";
    case XFER_AT_LIMIT: return "taker_at_limit";
    case XFER_NO_RECORD: return "no_record";
    default: return "waiting"; /* WAITING, or MOVING with a step still to redo */
    }
}

/* Why e has its status: a machine-readable reason and the same in words
 * (text, cap bytes). Both empty for done. */
static void reason_of(const xfer_job *j, const xfer_ent *e, const char **reason, char *text,
                      size_t cap)
{
    const char *r = "", *t = "";
    text[0] = '\0';
    switch (e->status) {
    case XFER_DONE:
        break;
    case XFER_WAITING:
        r = "customer_may_object";
        t = "the customer may object until the takeover time";
        break;
    case XFER_MOVING:
        r = "taking_over";
        t = "the takeover is under way";
        break;
    case XFER_AT_LIMIT:
        r = "taker_at_limit";
        snprintf(text, cap, "%s owns the tenant's limit of %u customers", e->to, j->limit);
        break;
    case XFER_NO_RECORD:
        r = "not_owner";
        if (e->err)
            t = e->errmsg[0] ? e->errmsg : herald_strerror(e->err);
        else
            snprintf(text, cap, "%s does not own %s %s", e->from, e->group ? "group" : "customer",
                     e->id);
        break;
    case XFER_REFUSED:
        if (e->err == HERALD_ECAP_EXCEEDED) {
            r = "member_cap_exceeded";
        } else if (e->err) {
            r = herald_err_name(e->err);
        } else {
            static const char *const why[][2] = {
                [XFER_WHY_OBJECTED] = {"customer_refused",
                                       "the customer objected to the transfer"},
                [XFER_WHY_PENDING] = {"transfer_pending",
                                      "another transfer of the customer is waiting"},
                [XFER_WHY_SERVED] = {"taker_serves", "the taker serves the customer already"},
                [XFER_WHY_PROTECTED] = {"protected_90_days",
                                        "transferred twice in service within 90 days"},
            };
            bool known = e->why < sizeof why / sizeof why[0] && why[e->why][0];
            r = known ? why[e->why][0] : "refused";
            t = known ? why[e->why][1] : "the transfer was refused";
        }
        if (e->err)
            t = e->errmsg[0] ? e->errmsg : herald_strerror(e->err);
        break;
    default:
        break;
    }
    if (t[0])
        snprintf(text, cap, "%s", t);
    *reason = r;
}

static void xfer_applied(step *st, apply_result *res);

/* Submits one step of j (k) to group gi; slot = its entry. */
static void xfer_submit(xfer_job *j, const cmd *k, uint32_t gi, uint32_t slot)
{
    step *p = j->rq ? svc_step(j->rq, j->rid, k, gi, xfer_applied)
                    : svc_own_step(j->s, k, gi, xfer_applied);
    if (!p) {
        if (!j->rq)
            log_warn("transfer.step", "cannot submit %s: it is retried when due again",
                     cmd_op_name(k->op));
        return;
    }
    p->job = j;
    p->slot = slot;
    j->outstanding++;
}

/* The actor of the steps: the requester, or the tenant's own bookkeeping. */
static cmd step_cmd(const xfer_job *j, const xfer_ent *e, uint32_t op)
{
    return (cmd){.op = op, .tenant = herald_str_z(e->tenant),
                 .user = herald_str_z(j->rq ? j->rq->sess->user : "herald"), .admin = true,
                 .target = herald_str_z(e->from), .name = herald_str_z(e->to),
                 .flags = j->resigned ? CMD_XFER_RESIGNED : 0, .ts = session_now_ms()};
}

/* Hands a conversation over (a customer's, or a group). */
static void handover(svc *s, xfer_job *j, uint32_t slot)
{
    xfer_ent *e = &j->e[slot];
    const char *conv = e->group ? e->id : e->conv;
    cmd k = step_cmd(j, e, CMD_CONV_HANDOVER);
    k.conv = herald_str_z(conv);
    xfer_submit(j, &k, svc_conv_group(s, k.tenant, k.conv), slot);
}

static void finish(xfer_job *j)
{
    herald_frame r = {.type = HERALD_FT_TRANSFER_RESULT, .rid = j->rid, .count = j->n_cust};
    herald_str *ids = NULL;
    uint64_t *at = NULL;
    char (*texts)[320] = NULL; /* two ids and some words */

    if (!j->rq) {
        job_free(j);
        return;
    }
    ids = calloc((size_t)j->n * 4 + 1, sizeof *ids);
    at = calloc((size_t)j->n + 1, sizeof *at);
    texts = calloc((size_t)j->n + 1, sizeof *texts);
    if (!ids || !at || !texts) {
        req_error(j->rq, HERALD_ENOMEM, NULL, j->rid);
    } else {
        for (uint32_t i = 0; i < j->n; i++) {
            const char *reason;
            reason_of(j, &j->e[i], &reason, texts[i], sizeof texts[i]);
            ids[i] = herald_str_z(j->e[i].id);
            ids[j->n + i] = herald_str_z(status_name(j->e[i].status));
            ids[2 * j->n + i] = herald_str_z(reason);
            ids[3 * j->n + i] = herald_str_z(texts[i]);
            at[i] = j->e[i].status == XFER_WAITING || j->e[i].status == XFER_MOVING
                        ? j->e[i].at
                        : 0;
        }
        r.members = ids;
        r.n_members = j->n;
        r.statuses = ids + j->n;
        r.n_statuses = j->n;
        r.reasons = ids + 2 * j->n;
        r.n_reasons = j->n;
        r.texts = ids + 3 * j->n;
        r.n_texts = j->n;
        r.times = at;
        r.n_times = j->n;
        req_send(j->rq, &r);
    }
    free(ids);
    free(at);
    free(texts);
    job_free(j);
}

/* Copies the outcomes of TRANSFER_MARK / TRANSFER_DUE into the job and
 * starts the takeover of those MOVING. */
static void decided(svc *s, xfer_job *j, const apply_result *res)
{
    if (!j->e) {
        /* TRANSFER_DUE: the job is the outcomes. */
        j->e = calloc(res->n_mass + 1, sizeof *j->e);
        if (!j->e)
            return;
        j->n = j->n_cust = res->n_mass;
    }
    for (uint32_t i = 0; i < res->n_mass && i < j->n_cust; i++) {
        const apply_mass *m = &res->mass[i];
        const apply_xfer *xf = res->xfer ? &res->xfer[i] : NULL;
        xfer_ent *e = &j->e[i];
        snprintf(e->id, sizeof e->id, "%s", m->customer);
        if (xf && xf->tenant)
            snprintf(e->tenant, sizeof e->tenant, "%s", xf->tenant);
        if (xf && xf->from)
            snprintf(e->from, sizeof e->from, "%s", xf->from);
        if (m->owner) /* else the request's (never copied onto itself) */
            snprintf(e->to, sizeof e->to, "%s", m->owner);
        snprintf(e->conv, sizeof e->conv, "%s", m->conv ? m->conv : "");
        e->status = XFER_STATUS(m->status);
        e->why = XFER_WHY(m->status);
        if (xf) {
            e->at = xf->at;
        } else if (e->status == XFER_WAITING || e->status == XFER_MOVING) {
            /* Applied on another node: read the record back (the local
             * replica has applied it before the result came). */
            store_transfer t;
            if (store_transfer_get(svc_meta(s), herald_str_z(e->tenant), herald_str_z(e->id),
                                   &t) == 0)
                e->at = t.at;
        }
        if (e->status == XFER_MOVING && e->conv[0])
            handover(s, j, i);
    }
}

/* One step of a transfer applied: the next step, or the outcome. */
static void xfer_applied(step *st, apply_result *res)
{
    xfer_job *j = st->job;
    svc *s = j->s;
    xfer_ent *e = st->slot < j->n ? &j->e[st->slot] : NULL;

    switch (st->op) {
    case CMD_TRANSFER_DUE:
        s->shards[0].xfer_busy = false;
        /* fall through */
    case CMD_TRANSFER_MARK:
        if (res->err) {
            if (j->rq)
                req_error(j->rq, res->err, res->errmsg[0] ? res->errmsg : NULL, j->rid);
            else
                log_error("transfer.due", "TRANSFER_DUE failed: %s", herald_err_name(res->err));
            j->outstanding--;
            if (j->outstanding == 0)
                job_free(j);
            return;
        }
        decided(s, j, res);
        break;
    case CMD_CONV_HANDOVER:
        if (e && e->group) {
            e->status = res->err == 0                       ? XFER_DONE
                        : res->err == HERALD_ENOT_FOUND     ? XFER_NO_RECORD
                                                            : XFER_REFUSED;
            e->err = res->err;
            snprintf(e->errmsg, sizeof e->errmsg, "%s", res->errmsg);
            if (res->err && res->err != HERALD_ENOT_FOUND)
                log_warn("transfer.group", "group %s %s → %s: %s", e->id, e->from, e->to,
                         res->errmsg);
        } else if (e && res->err == 0) {
            /* The conversation is the taker's: now the contact. */
            cmd k = step_cmd(j, e, CMD_TRANSFER_DONE);
            herald_str cust = herald_str_z(e->id);
            k.members = &cust;
            k.n_members = 1;
            k.conv = herald_str_z(e->conv);
            xfer_submit(j, &k, 0, st->slot);
        } else if (e) {
            log_warn("transfer.handover", "%s/%s %s → %s: %s; retried when due", e->tenant,
                     e->id, e->from, e->to, herald_err_name(res->err));
        }
        break;
    case CMD_TRANSFER_DONE:
        if (e && res->err == 0)
            e->status = XFER_DONE;
        else if (e)
            log_warn("transfer.done", "%s/%s: %s; retried when due", e->tenant, e->id,
                     herald_err_name(res->err));
        if (e && res->err == 0)
            log_info("transfer.done", "tenant=%s customer=%s from=%s to=%s", e->tenant, e->id,
                     e->from, e->to);
        break;
    default:
        break;
    }
    if (--j->outstanding == 0)
        finish(j);
}

void transfer_start(svc_req *rq, herald_frame *f)
{
    bool refuse = herald_str_eq(f->op, "refuse");
    herald_str ten = herald_str_z(rq->sess->tenant);
    store_tenant t;
    xfer_job *j;
    int rc;

    if (!refuse && !herald_str_eq(f->op, "start")) {
        req_error(rq, HERALD_EINVAL, "op must be start or refuse", f->rid);
        return;
    }
    if (!refuse) {
        store_dir_user d;
        if (!token_id_valid(f->user.ptr, f->user.len) ||
            !token_id_valid(f->owner.ptr, f->owner.len)) {
            req_error(rq, HERALD_EINVAL, "from and to must be employee ids", f->rid);
            return;
        }
        if (f->n_members + f->n_groups == 0 || f->n_members > XFER_PER_CALL ||
            f->n_groups > XFER_PER_CALL) {
            req_error(rq, HERALD_EINVAL, "1 to 100 customers and up to 100 groups per call",
                            f->rid);
            return;
        }
        for (uint32_t i = 0; i < f->n_members; i++)
            if (!token_id_valid(f->members[i].ptr, f->members[i].len)) {
                req_error(rq, HERALD_EINVAL, "invalid customer id", f->rid);
                return;
            }
        for (uint32_t i = 0; i < f->n_groups; i++)
            if (!token_id_valid(f->groups[i].ptr, f->groups[i].len)) {
                req_error(rq, HERALD_EINVAL, "invalid group id", f->rid);
                return;
            }
        if (herald_str_eq(f->user, "") || (f->user.len == f->owner.len &&
                                            memcmp(f->user.ptr, f->owner.ptr, f->user.len) == 0)) {
            req_error(rq, HERALD_EINVAL, "from and to are the same employee", f->rid);
            return;
        }
        /* The taker must be an employee in the directory. */
        rc = store_dir_user_get(svc_meta(rq->s), ten, f->owner, &d);
        if (rc == 0 && d.kind == DIR_EXTERNAL) {
            char m[200];
            snprintf(m, sizeof m, "the taker must be an employee: %.*s is an external user",
                     (int)f->owner.len, f->owner.ptr);
            req_error(rq, HERALD_EINVAL, m, f->rid);
            return;
        }
        if (rc == HERALD_ENOT_FOUND) {
            char m[200];
            snprintf(m, sizeof m,
                     "the taker must be an employee: no user %.*s in the directory",
                     (int)f->owner.len, f->owner.ptr);
            req_error(rq, HERALD_ENOT_FOUND, m, f->rid);
            return;
        }
        if (rc) {
            req_error(rq, rc, NULL, f->rid);
            return;
        }
    }
    rc = store_tenant_get(svc_meta(rq->s), ten, &t);
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        return;
    }
    j = calloc(1, sizeof *j);
    if (j)
        j->e = calloc(refuse ? 2 : (size_t)f->n_members + f->n_groups + 1, sizeof *j->e);
    if (!j || !j->e) {
        if (j)
            free(j->e);
        free(j);
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
        return;
    }
    req_hold(rq);
    j->s = rq->s;
    j->rq = rq;
    j->rid = f->rid;
    j->limit = t.customer_limit ? t.customer_limit : CUSTOMER_LIMIT_DEFAULT;
    j->resigned = !refuse && (f->flags & CMD_XFER_RESIGNED);
    j->n_cust = refuse ? 1 : f->n_members;
    j->n = refuse ? 1 : f->n_members + f->n_groups;
    for (uint32_t i = 0; i < j->n; i++) {
        xfer_ent *e = &j->e[i];
        herald_str id = refuse ? herald_str_z(rq->sess->user)
                        : i < f->n_members ? f->members[i]
                                           : f->groups[i - f->n_members];
        snprintf(e->tenant, sizeof e->tenant, "%s", rq->sess->tenant);
        snprintf(e->id, sizeof e->id, "%.*s", (int)id.len, id.ptr);
        if (!refuse) {
            snprintf(e->from, sizeof e->from, "%.*s", (int)f->user.len, f->user.ptr);
            snprintf(e->to, sizeof e->to, "%.*s", (int)f->owner.len, f->owner.ptr);
        }
        e->group = i >= j->n_cust;
        e->status = XFER_NO_RECORD;
    }
    /* Hold one step so the answer cannot go before everything is submitted. */
    j->outstanding++;
    if (j->n_cust) {
        cmd k = {.op = CMD_TRANSFER_MARK, .tenant = ten, .user = herald_str_z(rq->sess->user),
                 .admin = rq->admin, .ts = session_now_ms()};
        if (refuse) {
            k.kind = herald_str_z("refuse");
        } else {
            k.target = f->user;
            k.name = f->owner;
            k.members = f->members;
            k.n_members = f->n_members;
            k.flags = j->resigned ? CMD_XFER_RESIGNED : 0;
            k.cap = t.customer_limit;
            k.win = t.transfer_wait;
        }
        xfer_submit(j, &k, 0, UINT32_MAX);
    }
    for (uint32_t i = j->n_cust; i < j->n; i++)
        handover(rq->s, j, i);
    if (--j->outstanding == 0)
        finish(j);
}

void transfer_tick(svc *s)
{
    uint64_t now = session_now_ms(), due;
    xfer_job *j;
    cmd k = {.op = CMD_TRANSFER_DUE, .ts = now};

    if (s->nshards == 0 || s->stopping || s->shards[0].xfer_busy ||
        (s->be.leads && !s->be.leads(s->be.ctx, 0)))
        return;
    due = store_transfer_next(s->shards[0].st);
    if (!due || due > now)
        return;
    j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->s = s;
    xfer_submit(j, &k, 0, UINT32_MAX);
    if (j->outstanding == 0) {
        free(j);
        return;
    }
    s->shards[0].xfer_busy = true;
}
