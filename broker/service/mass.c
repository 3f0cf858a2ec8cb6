/* mass.c — mass messages to tagged customers (MASS): resolve the tags,
 * let the state machine decide customer by customer (MASS_MARK: limited to
 * one a day, owners and their 1:1 conversations), send through each owning
 * employee as an ordinary SEND with the mass id as cmid (a retry is
 * exactly-once), then answer with who was reached. Loop thread. */
#include "svc_int.h"

#include <herald/error.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "hstr.h"
#include "log.h"

/* One customer of a mass message. */
typedef struct mass_cust {
    char id[TOKEN_ID_MAX + 1]; /* customer */
    uint32_t status;           /* MASS_* from MASS_MARK */
    uint32_t sends;            /* messages submitted */
    uint32_t ok;               /* messages stored */
} mass_cust;

typedef struct mass_job {
    svc_req *rq;                   /* the admin who asked (ref held) */
    uint64_t rid;              /* request to answer */
    char id[TOKEN_ID_MAX + 1]; /* mass id (cmid of every send) */
    herald_buf text;           /* the body */
    mass_cust *cust;           /* customers, in MASS_MARK order */
    uint32_t n_cust;
    uint32_t outstanding;      /* sends not yet applied */
    uint32_t sent;             /* sends stored */
    herald_buf bad;            /* tags nobody carries (or malformed), each
                                  NUL-terminated, in request order */
    uint32_t n_bad;            /* how many */
} mass_job;

static void job_free(mass_job *j)
{
    if (!j)
        return;
    req_release(j->rq);
    herald_buf_free(&j->text);
    herald_buf_free(&j->bad);
    free(j->cust);
    free(j);
}

static void mass_marked(step *st, apply_result *res);
static void mass_sent(step *st, apply_result *res);

void mass_start(svc_req *rq, herald_frame *f)
{
    herald_str ten = herald_str_z(rq->sess->tenant);
    store_strs lists[TAGS_PER_CALL_MAX];
    herald_str *all = NULL;
    uint32_t n_lists = 0, n = 0, total = 0;
    char gen[TOKEN_ID_MAX + 1];
    mass_job *job = NULL;
    herald_buf b = {0}, bad = {0};
    uint32_t n_bad = 0;
    step *p;
    cmd k;
    int rc = 0;

    if (f->n_members == 0 || f->n_members > TAGS_PER_CALL_MAX || f->body.len == 0) {
        req_error(rq, HERALD_EINVAL, "1 to 100 tags and a text are required", f->rid);
        return;
    }
    if (f->conv.len && !token_id_valid(f->conv.ptr, f->conv.len)) {
        req_error(rq, HERALD_EINVAL, "invalid mass message id", f->rid);
        return;
    }
    if (f->conv.len) {
        snprintf(gen, sizeof gen, "%.*s", (int)f->conv.len, f->conv.ptr);
    } else {
        uint8_t rnd[8];
        randombytes_buf(rnd, sizeof rnd);
        memcpy(gen, "mass-", 5);
        sodium_bin2hex(gen + 5, sizeof gen - 5, rnd, sizeof rnd);
    }
    /* Customers carrying any of the tags, each once. */
    for (; n_lists < f->n_members && rc == 0; n_lists++) {
        herald_str tag = f->members[n_lists];
        lists[n_lists] = (store_strs){0};
        if (token_id_valid(tag.ptr, tag.len))
            rc = store_tagged(svc_meta(rq->s), ten, tag, &lists[n_lists]);
        if (rc)
            break;
        total += lists[n_lists].n;
        if (lists[n_lists].n == 0) {
            /* Nobody carries it (or it is no tag id): listed, like APP's. */
            if (herald_buf_append(&bad, tag.ptr, tag.len) != 0 ||
                herald_buf_append(&bad, "", 1) != 0)
                rc = HERALD_ENOMEM;
            n_bad++;
        }
    }
    if (rc == 0 && total == 0) {
        /* Nothing valid: say which tags were asked for. */
        char m[256];
        int at = snprintf(m, sizeof m, "no customer carries any of the tags:");
        for (uint32_t i = 0, off = 0; i < n_bad && at > 0 && (size_t)at < sizeof m; i++) {
            const char *t = (const char *)bad.data + off;
            at += snprintf(m + at, sizeof m - (size_t)at, "%s%s", i ? "," : " ", t);
            off += (uint32_t)strlen(t) + 1;
        }
        for (uint32_t i = 0; i < n_lists; i++)
            store_strs_free(&lists[i]);
        herald_buf_free(&bad);
        req_error(rq, HERALD_EINVAL, m, f->rid);
        return;
    }
    if (rc == 0 && total > MASS_CUSTOMERS_MAX * 4)
        rc = HERALD_EINVAL;
    if (rc == 0 && !(all = calloc(total + 1, sizeof *all)))
        rc = HERALD_ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < n_lists; i++)
        for (uint32_t j = 0; j < lists[i].n; j++)
            all[n++] = herald_str_z(lists[i].v[j]);
    if (rc == 0) {
        uint32_t u = 0;
        qsort(all, n, sizeof *all, hstr_cmp);
        for (uint32_t i = 0; i < n; i++)
            if (u == 0 || hstr_cmp(&all[u - 1], &all[i]) != 0)
                all[u++] = all[i];
        n = u;
        if (n > MASS_CUSTOMERS_MAX)
            rc = HERALD_EINVAL;
    }
    if (rc == 0 && !(job = calloc(1, sizeof *job)))
        rc = HERALD_ENOMEM;
    if (rc == 0 && herald_buf_append(&job->text, f->body.ptr, f->body.len) != 0)
        rc = HERALD_ENOMEM;
    if (rc == 0) {
        k = (cmd){.op = CMD_MASS_MARK, .tenant = ten, .user = herald_str_z(rq->sess->user),
                  .admin = true, .cmid = herald_str_z(gen), .members = all, .n_members = n,
                  .ts = session_now_ms()};
        rc = cmd_encode(&k, &b);
    }
    for (uint32_t i = 0; i < n_lists; i++)
        store_strs_free(&lists[i]);
    free(all);
    if (rc) {
        req_error(rq, rc, rc == HERALD_EINVAL ? "more than 10,000 customers" : NULL, f->rid);
        if (job)
            herald_buf_free(&job->text);
        free(job);
        herald_buf_free(&b);
        herald_buf_free(&bad);
        return;
    }
    job->bad = bad;
    job->n_bad = n_bad;
    req_hold(rq);
    job->rq = rq;
    job->rid = f->rid;
    snprintf(job->id, sizeof job->id, "%s", gen);
    /* Decisions and the once-a-day record live with the tenants. */
    p = svc_step_buf(rq, f->rid, CMD_MASS_MARK, &b, gen, 0, mass_marked);
    if (!p) {
        job_free(job);
        return;
    }
    p->job = job;
}

/* The "missed" record of a finished mass message applied (nobody waits). */
static void missed_marked(step *st, apply_result *res)
{
    if (res->err)
        log_warn("gw.bookkeeping", "%s failed: %s", cmd_op_name(st->op),
                 herald_err_name(res->err));
}

/* Sends MASS_RESULT and frees the job. */
static void job_finish(mass_job *j)
{
    herald_str *sv = calloc((size_t)j->n_cust + j->n_bad + 1, sizeof *sv);
    herald_frame r = {.type = HERALD_FT_MASS_RESULT, .rid = j->rid, .conv = herald_str_z(j->id),
                      .count = j->sent};
    uint32_t n[3] = {0, 0, 0}, at = 0;
    herald_str *lists[3];
    herald_buf missed = {0};
    cmd k;

    if (!sv) {
        req_error(j->rq, HERALD_ENOMEM, NULL, j->rid);
        job_free(j);
        return;
    }
    /* Reached: at least one send stored. Limited. Missed: the rest. */
    for (int pass = 0; pass < 3; pass++) {
        lists[pass] = sv + at;
        for (uint32_t i = 0; i < j->n_cust; i++) {
            const mass_cust *m = &j->cust[i];
            int kind = m->status == MASS_LIMITED ? 1 : m->ok ? 0 : 2;
            if (kind == pass)
                sv[at + n[pass]++] = herald_str_z(m->id);
        }
        at += n[pass];
    }
    r.read = lists[0];
    r.n_read = n[0];
    r.unread = lists[1];
    r.n_unread = n[1];
    r.members = lists[2];
    r.n_members = n[2];
    r.bad_tags = sv + at;
    r.n_bad_tags = j->n_bad;
    for (uint32_t i = 0, off = 0; i < j->n_bad; i++) {
        sv[at + i] = herald_str_z((const char *)j->bad.data + off);
        off += sv[at + i].len + 1;
    }
    req_send(j->rq, &r);
    /* Record the failed sends as not reached (MASS_MARK "missed"). */
    {
        uint32_t nf = 0;
        for (uint32_t i = 0; i < j->n_cust; i++)
            nf += j->cust[i].status == MASS_SENT && !j->cust[i].ok;
        if (nf && req_open(j->rq)) {
            k = (cmd){.op = CMD_MASS_MARK, .tenant = herald_str_z(j->rq->sess->tenant),
                      .user = herald_str_z(j->rq->sess->user), .admin = true,
                      .cmid = herald_str_z(j->id), .kind = herald_str_z("missed"),
                      .members = lists[2], .n_members = n[2], .ts = session_now_ms()};
            /* Bookkeeping: the answer went out above. */
            if (cmd_encode(&k, &missed) == 0)
                svc_step_buf(j->rq, j->rid, CMD_MASS_MARK, &missed, j->id, 0, missed_marked);
            herald_buf_free(&missed);
        }
    }
    free(sv);
    job_free(j);
}

/* MASS_MARK applied: one SEND per customer it let through. */
static void mass_marked(step *st, apply_result *res)
{
    mass_job *j = st->job;
    svc_req *rq = j->rq;
    svc *s = rq->s;

    if (res->err) {
        req_error(rq, res->err, res->errmsg[0] ? res->errmsg : NULL, j->rid);
        job_free(j);
        return;
    }
    j->cust = calloc(res->n_mass + 1, sizeof *j->cust);
    if (!j->cust) {
        req_error(rq, HERALD_ENOMEM, NULL, j->rid);
        job_free(j);
        return;
    }
    for (uint32_t i = 0; i < res->n_mass; i++) {
        const apply_mass *m = &res->mass[i];
        mass_cust *mc;
        store_tenant t;
        store_dir_user d;
        cmd k;
        herald_buf b = {0};
        step *sp;
        /* Outcomes of one customer are consecutive. */
        if (j->n_cust == 0 || strcmp(j->cust[j->n_cust - 1].id, m->customer) != 0) {
            mc = &j->cust[j->n_cust++];
            snprintf(mc->id, sizeof mc->id, "%s", m->customer);
            mc->status = m->status;
        }
        mc = &j->cust[j->n_cust - 1];
        if (m->status != MASS_SENT)
            continue;
        /* An ordinary SEND by the owning employee, certified like any. */
        k = (cmd){.op = CMD_SEND, .tenant = herald_str_z(rq->sess->tenant), .user = herald_str_z(m->owner),
                  .conv = herald_str_z(m->conv), .cmid = herald_str_z(j->id),
                  .body = {.ptr = (const char *)j->text.data, .len = (uint32_t)j->text.len},
                  .ts = session_now_ms()};
        {
            int drc = store_dir_user_get(svc_meta(s), k.tenant, k.user, &d);
            if (store_tenant_get(svc_meta(s), k.tenant, &t) == 0 &&
                (drc != 0 || d.kind == DIR_INTERNAL)) {
                k.corp = herald_str_z(t.corp);
                k.title = herald_str_z(drc == 0 ? d.title : "");
            }
        }
        if (cmd_encode(&k, &b) != 0)
            continue;
        sp = svc_step_buf(rq, j->rid, CMD_SEND, &b, m->conv, svc_conv_group(s, k.tenant, k.conv),
                          mass_sent);
        if (!sp)
            continue;
        sp->job = j;
        sp->slot = j->n_cust - 1;
        mc->sends++;
        j->outstanding++;
    }
    if (j->outstanding == 0)
        job_finish(j);
}

/* One customer's SEND applied (its push is the replica layer's event). */
static void mass_sent(step *st, apply_result *res)
{
    mass_job *j = st->job;
    if (res->err == 0) {
        j->cust[st->slot].ok++;
        j->sent++;
    } else {
        log_warn("mass.send", "mass %s to %s: %s", j->id, j->cust[st->slot].id,
                 herald_err_name(res->err));
    }
    if (--j->outstanding == 0)
        job_finish(j);
}

void mass_status(svc_req *rq, herald_frame *f)
{
    store_strs by[3];
    herald_str *sv = NULL;
    herald_frame r = {.type = HERALD_FT_MASS_RESULT, .rid = f->rid, .conv = f->conv};
    uint32_t at = 0;
    int rc;

    if (!f->conv.len || !token_id_valid(f->conv.ptr, f->conv.len)) {
        req_error(rq, HERALD_EINVAL, "invalid mass message id", f->rid);
        return;
    }
    rc = store_mass_results(svc_meta(rq->s), herald_str_z(rq->sess->tenant), f->conv, &by[0], &by[1],
                            &by[2]);
    if (rc) {
        req_error(rq, rc, rc == HERALD_ENOT_FOUND ? "no such mass message" : NULL, f->rid);
        return;
    }
    sv = calloc(by[0].n + by[1].n + by[2].n + 1, sizeof *sv);
    if (!sv) {
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
        goto out;
    }
    for (int i = 0; i < 3; i++)
        for (uint32_t k = 0; k < by[i].n; k++)
            sv[at++] = herald_str_z(by[i].v[k]);
    r.read = sv;
    r.n_read = by[0].n;
    r.unread = sv + by[0].n;
    r.n_unread = by[1].n;
    r.members = sv + by[0].n + by[1].n;
    r.n_members = by[2].n;
    req_send(rq, &r);
out:
    free(sv);
    for (int i = 0; i < 3; i++)
        store_strs_free(&by[i]);
}
