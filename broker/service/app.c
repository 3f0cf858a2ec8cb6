/* app.c — app messages and announcements (APP): the state machine decides
 * (APP_MARK, with the tenants: recipients from the directory and the tag
 * index, invalid ids, the duplicate window, the frequency cap), then the
 * message goes out as APP_DELIVER commands — one per recipient into the
 * app's 1:1 conversation with them (send), or one read-diffused announce
 * conversation holding every recipient (announce) — and the answer lists
 * who was reached. Every step is idempotent: a retry of the same app and
 * message id within the window replays the decision and the deliveries
 * dedup by cmid. Loop thread. */
#include "svc_int.h"

#include <herald/error.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"

#define APP_ID_MAX 100u  /* "app:" + id must stay a user id */
#define APP_MSG_ID_MAX 100u /* id + "." + generation must stay a cmid */
#define APP_SLOT_ALL UINT32_MAX /* an announce delivery: every recipient */

/* One outcome of APP_MARK, copied. */
typedef struct app_rcpt {
    char id[TOKEN_ID_MAX + 1]; /* user, department or tag */
    uint32_t status;           /* APP_* */
    bool ok;                   /* APP_SENT: its delivery is stored */
    char why[160];             /* APP_SENT, not stored: "CODE: text" of the failure */
} app_rcpt;

typedef struct app_job {
    svc_req *rq;                   /* the admin who asked (ref held) */
    uint64_t rid;              /* request to answer */
    bool announce;             /* op announce */
    char app[APP_ID_MAX + 1];  /* app id */
    char id[TOKEN_ID_MAX + 1]; /* message id */
    char conv[TOKEN_ID_MAX + 1]; /* announce: its conversation */
    herald_buf text;           /* the body */
    app_rcpt *r;               /* outcomes */
    uint32_t n;
    bool dup;                  /* a duplicate within the window */
    uint32_t outstanding;      /* deliveries not yet applied */
    uint32_t stored;           /* deliveries stored */
} app_job;

static void job_free(app_job *j)
{
    if (!j)
        return;
    req_release(j->rq);
    herald_buf_free(&j->text);
    free(j->r);
    free(j);
}

/* "PREFIX" + 16 hex digits of a keyed hash of the parts (NUL-separated). */
static void derive_id(char *out, size_t outlen, const char *prefix, const char *const *parts,
                      size_t n)
{
    uint8_t h[8];
    char hex[17];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    for (size_t i = 0; i < n; i++)
        crypto_generichash_update(&st, (const uint8_t *)parts[i], strlen(parts[i]) + 1);
    crypto_generichash_final(&st, h, sizeof h);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(out, outlen, "%s%s", prefix, hex);
}

static void app_marked(step *st, apply_result *res);
static void app_delivered(step *st, apply_result *res);

void app_start(svc_req *rq, herald_frame *f)
{
    bool announce = herald_str_eq(f->op, "announce");
    herald_str ten = herald_str_z(rq->sess->tenant);
    store_tenant t;
    char gen[TOKEN_ID_MAX + 1];
    app_job *job;
    herald_buf b = {0};
    step *p;
    cmd k;
    int rc;

    if (callback_op(rq, f)) /* callback, events, redeliver: callback.c */
        return;
    if (app_registry_op(f->op)) {
        app_registry(rq, f);
        return;
    }
    if (!announce && !herald_str_eq(f->op, "send")) {
        req_error(rq, HERALD_EINVAL,
                  "op must be send, announce, create, list, login, user_token, callback, "
                  "events or redeliver", f->rid);
        return;
    }
    if (!token_id_valid(f->app.ptr, f->app.len) || f->app.len > APP_ID_MAX) {
        req_error(rq, HERALD_EINVAL, "invalid app id (up to 100 of A-Z a-z 0-9 . _ @ : -)",
                        f->rid);
        return;
    }
    if (f->body.len == 0) {
        req_error(rq, HERALD_EINVAL, "a text is required", f->rid);
        return;
    }
    if (f->cmid.len && (!token_id_valid(f->cmid.ptr, f->cmid.len) ||
                        f->cmid.len > APP_MSG_ID_MAX)) {
        req_error(rq, HERALD_EINVAL, "invalid message id (up to 100 id characters)",
                        f->rid);
        return;
    }
    if (f->window > APP_DEDUP_MAX) {
        req_error(rq, HERALD_EINVAL, "the duplicate window is at most 14,400 s", f->rid);
        return;
    }
    rc = store_tenant_get(svc_meta(rq->s), ten, &t);
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        return;
    }
    if (f->cmid.len) {
        snprintf(gen, sizeof gen, "%.*s", (int)f->cmid.len, f->cmid.ptr);
    } else {
        uint8_t rnd[8];
        randombytes_buf(rnd, sizeof rnd);
        memcpy(gen, "am-", 3);
        sodium_bin2hex(gen + 3, sizeof gen - 3, rnd, sizeof rnd);
    }
    job = calloc(1, sizeof *job);
    if (!job || herald_buf_append(&job->text, f->body.ptr, f->body.len) != 0) {
        if (job)
            herald_buf_free(&job->text);
        free(job);
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
        return;
    }
    job->announce = announce;
    job->rid = f->rid;
    snprintf(job->app, sizeof job->app, "%.*s", (int)f->app.len, f->app.ptr);
    snprintf(job->id, sizeof job->id, "%s", gen);
    /* The decision (recipients, duplicates, frequency) is the meta group's:
     * the directory, the tags and the counters live there. */
    k = (cmd){.op = CMD_APP_MARK, .tenant = ten, .user = herald_str_z(rq->sess->user), .admin = true,
              .target = f->app, .cmid = herald_str_z(gen),
              .kind = herald_str_z(announce ? "announce" : "send"), .members = f->members,
              .n_members = f->n_members, .depts = f->depts, .n_depts = f->n_depts,
              .tags = f->tags, .n_tags = f->n_tags,
              .win = f->window ? f->window : t.app_dedup, .cap = t.app_freq,
              .ts = session_now_ms()};
    rc = cmd_encode(&k, &b);
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        herald_buf_free(&job->text);
        free(job);
        return;
    }
    req_hold(rq);
    job->rq = rq;
    p = svc_step_buf(rq, f->rid, CMD_APP_MARK, &b, gen, 0, app_marked);
    if (!p) {
        job_free(job);
        return;
    }
    p->job = job;
}

/* Sends APP_RESULT (or the clear no) and frees the job. */
static void job_finish(app_job *j)
{
    herald_str *sv = calloc((size_t)j->n * 1 + 1, sizeof *sv);
    herald_frame r = {.type = HERALD_FT_APP_RESULT, .rid = j->rid, .app = herald_str_z(j->app),
                      .cmid = herald_str_z(j->id), .dup = j->dup, .count = j->stored,
                      .conv = herald_str_z(j->announce && j->stored ? j->conv : NULL)};
    static const uint32_t order[] = {APP_SENT, APP_LIMITED, APP_BAD_USER, APP_BAD_DEPT,
                                     APP_BAD_TAG};
    herald_str *lists[5];
    uint32_t counts[5] = {0}, at = 0, n_unr = 0;
    char (*unr)[TOKEN_ID_MAX + 168] = calloc((size_t)j->n + 1, sizeof *unr);
    herald_str *unrv = calloc((size_t)j->n + 1, sizeof *unrv);

    if (!sv || !unr || !unrv) {
        req_error(j->rq, HERALD_ENOMEM, NULL, j->rid);
        free(sv);
        free(unr);
        free(unrv);
        job_free(j);
        return;
    }
    /* Every recipient the delivery failed for, with the reason. */
    for (uint32_t i = 0; i < j->n; i++)
        if (j->r[i].status == APP_SENT && !j->r[i].ok) {
            snprintf(unr[n_unr], sizeof unr[n_unr], "%s: %s", j->r[i].id,
                     j->r[i].why[0] ? j->r[i].why : "UNAVAILABLE: not delivered");
            unrv[n_unr] = herald_str_z(unr[n_unr]);
            n_unr++;
        }
    r.unreached = unrv;
    r.n_unreached = n_unr;
    for (int l = 0; l < 5; l++) {
        lists[l] = sv + at;
        for (uint32_t i = 0; i < j->n; i++)
            if (j->r[i].status == order[l] && (order[l] != APP_SENT || j->r[i].ok))
                sv[at + counts[l]++] = herald_str_z(j->r[i].id);
        at += counts[l];
    }
    r.members = lists[0];
    r.n_members = counts[0];
    r.limited = lists[1];
    r.n_limited = counts[1];
    r.bad_users = lists[2];
    r.n_bad_users = counts[2];
    r.bad_depts = lists[3];
    r.n_bad_depts = counts[3];
    r.bad_tags = lists[4];
    r.n_bad_tags = counts[4];
    req_send(j->rq, &r);
    free(sv);
    free(unr);
    free(unrv);
    job_free(j);
}

/* The clear no when nobody can get it: everyone over the frequency cap
 * (RATE_LIMITED) or no valid recipient at all (INVAL). */
static bool refuse(svc *s, app_job *j, uint32_t n_sent)
{
    char msg[200];
    uint32_t limited = 0;
    store_tenant t = {.app_freq = APP_FREQ_DEFAULT};
    if (n_sent)
        return false;
    for (uint32_t i = 0; i < j->n; i++)
        limited += j->r[i].status == APP_LIMITED;
    (void)store_tenant_get(svc_meta(s), herald_str_z(j->rq->sess->tenant), &t);
    if (limited)
        snprintf(msg, sizeof msg,
                 "frequency cap: every recipient already got %u messages from app %s this "
                 "minute; try again later",
                 t.app_freq, j->app);
    else
        snprintf(msg, sizeof msg, "no valid recipient (users must be in the directory; "
                                  "departments must exist; tags must be on someone)");
    req_error(j->rq, limited ? HERALD_ERATE_LIMITED : HERALD_EINVAL, msg, j->rid);
    job_free(j);
    return true;
}

/* Submits one APP_DELIVER for the job. */
static void deliver(svc *s, app_job *j, const char *conv, const herald_str *to, uint32_t n,
                    uint32_t slot, uint64_t generation)
{
    char sender[TOKEN_ID_MAX + 1], dcmid[TOKEN_ID_MAX + 32];
    herald_buf b = {0};
    step *p;
    cmd k;

    snprintf(sender, sizeof sender, "app:%s", j->app);
    /* Unique per generation: a message id reused after its window is a new
     * message, a retry within it is the same one. */
    snprintf(dcmid, sizeof dcmid, "%s.%llu", j->id, (unsigned long long)generation);
    k = (cmd){.op = CMD_APP_DELIVER, .tenant = herald_str_z(j->rq->sess->tenant),
              .user = herald_str_z(sender), .admin = true, .conv = herald_str_z(conv),
              .kind = herald_str_z(j->announce ? "announce" : "single"),
              .members = (herald_str *)to, .n_members = n, .cmid = herald_str_z(dcmid),
              .body = {.ptr = (const char *)j->text.data, .len = (uint32_t)j->text.len},
              .ts = session_now_ms()};
    if (cmd_encode(&k, &b) != 0)
        return;
    p = svc_step_buf(j->rq, j->rid, CMD_APP_DELIVER, &b, conv,
                     svc_conv_group(s, k.tenant, k.conv), app_delivered);
    if (!p)
        return;
    p->job = j;
    p->slot = slot;
    j->outstanding++;
}

/* APP_MARK applied: one APP_DELIVER per recipient it let through (one for
 * all of an announcement). */
static void app_marked(step *st, apply_result *res)
{
    app_job *j = st->job;
    svc *s = j->rq->s;
    uint32_t n_sent = 0;

    if (res->err) {
        req_error(j->rq, res->err, res->errmsg[0] ? res->errmsg : NULL, j->rid);
        job_free(j);
        return;
    }
    j->dup = res->dup;
    j->r = calloc(res->n_mass + 1, sizeof *j->r);
    if (!j->r) {
        req_error(j->rq, HERALD_ENOMEM, NULL, j->rid);
        job_free(j);
        return;
    }
    for (uint32_t i = 0; i < res->n_mass; i++) {
        app_rcpt *r = &j->r[j->n++];
        snprintf(r->id, sizeof r->id, "%s", res->mass[i].customer);
        r->status = res->mass[i].status;
        n_sent += r->status == APP_SENT;
    }
    if (refuse(s, j, n_sent))
        return;
    if (!req_open(j->rq)) {
        /* The asker is gone; a retry with the same id completes it. */
        job_free(j);
        return;
    }
    if (j->announce) {
        char gtxt[24];
        const char *parts[3] = {j->app, j->id, gtxt};
        herald_str *to = calloc(n_sent, sizeof *to);
        uint32_t n = 0;
        if (!to) {
            req_error(j->rq, HERALD_ENOMEM, NULL, j->rid);
            job_free(j);
            return;
        }
        snprintf(gtxt, sizeof gtxt, "%llu", (unsigned long long)res->ts);
        derive_id(j->conv, sizeof j->conv, "an-", parts, 3);
        for (uint32_t i = 0; i < j->n; i++)
            if (j->r[i].status == APP_SENT)
                to[n++] = herald_str_z(j->r[i].id);
        deliver(s, j, j->conv, to, n, APP_SLOT_ALL, res->ts);
        free(to);
    } else {
        for (uint32_t i = 0; i < j->n; i++) {
            char conv[TOKEN_ID_MAX + 1];
            const char *parts[2] = {j->app, j->r[i].id};
            herald_str to = herald_str_z(j->r[i].id);
            if (j->r[i].status != APP_SENT)
                continue;
            derive_id(conv, sizeof conv, "ap-", parts, 2);
            deliver(s, j, conv, &to, 1, i, res->ts);
        }
    }
    if (j->outstanding == 0)
        job_finish(j);
}

/* One APP_DELIVER applied (its push is the replica layer's event). */
static void app_delivered(step *st, apply_result *res)
{
    app_job *j = st->job;
    if (res->err == 0) {
        if (st->slot == APP_SLOT_ALL) {
            for (uint32_t i = 0; i < j->n; i++)
                j->r[i].ok = j->r[i].status == APP_SENT;
        } else {
            j->r[st->slot].ok = true;
        }
        j->stored++;
    } else {
        char why[sizeof j->r[0].why];
        snprintf(why, sizeof why, "%s: %s", herald_err_name(res->err),
                 res->errmsg[0] ? res->errmsg : herald_strerror(res->err));
        log_warn("app.deliver", "app %s message %s to %s: %s", j->app, j->id,
                 st->slot == APP_SLOT_ALL ? j->conv : j->r[st->slot].id, why);
        for (uint32_t i = 0; i < j->n; i++)
            if (st->slot == APP_SLOT_ALL ? j->r[i].status == APP_SENT : i == st->slot)
                snprintf(j->r[i].why, sizeof j->r[i].why, "%s", why);
    }
    if (--j->outstanding == 0)
        job_finish(j);
}
