/* callback.c — the APP ops of event callbacks (tenant admins): callback
 * (set or remove an app's callback URL; a new token and secret each time),
 * events (the app's events: pending, delivered, failed, with attempts),
 * redeliver (failed events sent again). Arguments: one JSON object in the
 * frame's body (cbargs.h); answer: APP_RESULT whose body is one JSON
 * object. Loop thread. */
#include "svc_int.h"

#include <herald/error.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbargs.h"
#include "json.h"
#include "log.h"
#include "outbox.h"

#define CB_APP_ID_MAX 100u

/* APP_RESULT {app, body = the JSON in b}. */
static void reply_json(svc_req *rq, uint64_t rid, const char *app, herald_buf *b)
{
    herald_frame r = {.type = HERALD_FT_APP_RESULT, .rid = rid, .app = herald_str_z(app),
                      .body = {.ptr = (const char *)b->data, .len = (uint32_t)b->len}};
    req_send(rq, &r);
}

/* ---- callback ------------------------------------------------------------------- */

/* "event_types": the names of the types an app gets (types 0: all of them,
 * and "all_types": true — so are types added later). */
static void put_types(json_w *w, uint32_t types)
{
    json_key(w, "all_types");
    json_bool(w, types == 0);
    json_key(w, "event_types");
    json_arr(w);
    for (uint32_t i = 0; i < OB_TYPES_N; i++)
        if (!types || (types & (1u << i)))
            json_strz(w, ob_type_names[i]);
    json_arr_end(w);
}

typedef struct cb_set {
    char app[CB_APP_ID_MAX + 1];
    char url[CBARGS_URL_MAX + 1];
    char token[33];
    char secret[65];
    bool all;
    uint32_t types; /* ob_type_bit mask; 0: every type */
} cb_set;

static void callback_set(step *st, apply_result *res)
{
    cb_set *c = st->job;
    herald_buf b = {0};
    json_w w;

    if (res->err) {
        step_error(st, res);
        free(c);
        return;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "app");
    json_strz(&w, c->app);
    json_key(&w, "url");
    json_strz(&w, c->url);
    json_key(&w, "token");
    json_strz(&w, c->url[0] ? c->token : "");
    json_key(&w, "secret");
    json_strz(&w, c->url[0] ? c->secret : "");
    json_key(&w, "all");
    json_bool(&w, c->all);
    put_types(&w, c->types);
    json_obj_end(&w);
    if (json_done(&w) == 0)
        reply_json(st->rq, st->rid, c->app, &b);
    else
        req_error(st->rq, HERALD_ENOMEM, NULL, st->rid);
    herald_buf_free(&b);
    free(c);
}

static void op_callback(svc_req *rq, herald_frame *f, const cbargs *a, const char *app)
{
    cb_set *c = calloc(1, sizeof *c);
    uint8_t tok[16], sec[32];
    herald_str types[OB_TYPES_N];
    step *st;
    cmd k;

    if (!c) {
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
        return;
    }
    if (a->url[0] && strncmp(a->url, "https://", 8) != 0 && strncmp(a->url, "http://", 7) != 0) {
        req_error(rq, HERALD_EINVAL, "callback: url must start with https:// (or http://)",
                  f->rid);
        free(c);
        return;
    }
    snprintf(c->app, sizeof c->app, "%s", app);
    memcpy(c->url, a->url, sizeof c->url);
    c->all = a->all;
    c->types = a->types;
    /* Drawn here, carried in the command: every replica stores the same. */
    randombytes_buf(tok, sizeof tok);
    randombytes_buf(sec, sizeof sec);
    sodium_bin2hex(c->token, sizeof c->token, tok, sizeof tok);
    sodium_bin2hex(c->secret, sizeof c->secret, sec, sizeof sec);
    k = req_cmd(rq, CMD_APP_CALLBACK);
    k.admin = true;
    k.target = herald_str_z(c->app);
    k.name = herald_str_z(c->url);
    k.cmid = herald_str_z(c->token);
    k.secret = herald_str_z(c->secret);
    k.flags = c->all ? CMD_CB_ALL : 0;
    for (uint32_t i = 0; i < OB_TYPES_N; i++)
        if (c->types & (1u << i))
            types[k.n_tags++] = herald_str_z(ob_type_names[i]);
    k.tags = k.n_tags ? types : NULL;
    k.ts = session_now_ms();
    st = svc_step(rq, f->rid, &k, 0, callback_set);
    if (!st) {
        free(c);
        return;
    }
    st->job = c;
}

/* ---- events ---------------------------------------------------------------------- */

typedef struct ev_list {
    svc_req *rq;
    const store_callback *cb;
    const cbargs *a;
    store *st;
    uint32_t group;
    store_ob_cursor cur;
    store_ob_retry *rv;      /* the group's retry records (copies, no event data) */
    size_t n_rv, cap_rv;
    json_w *w;
    uint32_t listed;
    bool more;
    uint64_t pending;
    uint64_t first;          /* the outbox's first event (UINT64_MAX: empty) */
    int err;
} ev_list;

static int keep_retry(const store_ob_retry *r, void *arg)
{
    ev_list *l = arg;
    if (l->n_rv == l->cap_rv) {
        size_t nc = l->cap_rv ? l->cap_rv * 2 : 32;
        store_ob_retry *v = realloc(l->rv, nc * sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        l->rv = v;
        l->cap_rv = nc;
    }
    l->rv[l->n_rv] = *r;
    l->rv[l->n_rv].ev.data = NULL; /* not kept */
    l->rv[l->n_rv].ev.data_len = 0;
    l->n_rv++;
    return 0;
}

static const store_ob_retry *retry_of(const ev_list *l, uint64_t seq)
{
    for (size_t i = 0; i < l->n_rv; i++)
        if (l->rv[i].seq == seq)
            return &l->rv[i];
    return NULL;
}

static bool after_ok(const ev_list *l, uint64_t seq)
{
    return !l->a->has_after || l->group > l->a->group ||
           (l->group == l->a->group && seq > l->a->seq);
}

static void put_event(ev_list *l, const store_event *e, const store_ob_retry *r,
                      const char *state)
{
    json_w *w = l->w;
    char id[48];
    snprintf(id, sizeof id, "%u-%llu", e->group, (unsigned long long)e->seq);
    json_obj(w);
    json_key(w, "id");
    json_strz(w, id);
    json_key(w, "type");
    json_strz(w, e->type);
    json_key(w, "time");
    json_u64(w, e->ts);
    json_key(w, "conv");
    json_strz(w, e->conv);
    json_key(w, "attempts");
    json_u64(w, r ? r->attempts : 0);
    json_key(w, "next_attempt");
    if (r && r->state != OB_FAILED && r->next_ms)
        json_u64(w, r->next_ms);
    else
        json_raw(w, "null", 4);
    json_key(w, "last_error");
    json_strz(w, r ? r->last_error : "");
    json_key(w, "state");
    json_strz(w, state);
    json_obj_end(w);
}

/* Lists (or counts beyond the page) one outbox event. */
static int list_one(const store_event *e, void *arg)
{
    ev_list *l = arg;
    const store_ob_retry *r;
    const char *state;
    if (!cbd_wants(l->st, l->cb, e))
        return 0;
    r = retry_of(l, e->seq);
    if (r && r->state == OB_FAILED)
        state = "failed";
    else if (e->seq <= l->cur.cursor && !(r && r->state == OB_REQUEUED))
        state = "delivered";
    else
        state = "pending";
    if (strcmp(state, "pending") == 0)
        l->pending++;
    if (l->a->failed || !after_ok(l, e->seq))
        return 0;
    if (l->listed == l->a->limit) {
        l->more = true;
        return 0;
    }
    put_event(l, e, r, state);
    l->listed++;
    return 0;
}

/* The first event the group's outbox holds. */
static int first_seq(const store_event *e, void *arg)
{
    *(uint64_t *)arg = e->seq;
    return 1;
}

/* The full list: failed events the outbox no longer holds (pruned once
 * every app's cursor passed them; the failed record keeps a copy) come
 * first, in their place by seq. */
static int list_pruned_failed(const store_ob_retry *r, void *arg)
{
    ev_list *l = arg;
    if (r->state != OB_FAILED || r->seq >= l->first || !after_ok(l, r->seq))
        return 0;
    if (l->listed == l->a->limit) {
        l->more = true;
        return 1;
    }
    put_event(l, &r->ev, r, "failed");
    l->listed++;
    return 0;
}

/* Lists the failed ones (events: {"failed": true}). */
static int list_failed(const store_ob_retry *r, void *arg)
{
    ev_list *l = arg;
    if (!after_ok(l, r->seq))
        return 0;
    if (l->listed == l->a->limit) {
        l->more = true;
        return 1;
    }
    put_event(l, &r->ev, r, r->state == OB_FAILED ? "failed" : "pending");
    l->listed++;
    return 0;
}

static void op_events(svc_req *rq, herald_frame *f, const cbargs *a, const char *app)
{
    svc *s = rq->s;
    herald_str ten = herald_str_z(rq->sess->tenant), appz = herald_str_z(app);
    store_callback cb;
    herald_buf b = {0}, evs = {0};
    json_w w, we;
    uint64_t delivered = 0, failed = 0, pending = 0;
    bool more = false;
    uint32_t listed = 0;
    int rc = store_callback_get(svc_meta(s), ten, appz, &cb);

    if (rc) {
        req_error(rq, rc, rc == HERALD_ENOT_FOUND ? "this app has no callback" : NULL, f->rid);
        return;
    }
    json_init(&we, &evs);
    json_arr(&we);
    for (uint32_t g = 0; g < s->nshards && rc == 0; g++) {
        ev_list l = {.rq = rq, .cb = &cb, .a = a, .st = s->shards[g].st, .group = g, .w = &we,
                     .listed = listed};
        if (a->has_after && g < a->group && a->failed)
            continue;
        rc = store_ob_cursor_get(l.st, ten, appz, &l.cur);
        if (rc == 0)
            rc = store_ob_retries(l.st, ten, appz, false, keep_retry, &l);
        if (rc == 0)
            rc = store_ob_retries(l.st, ten, appz, true, keep_retry, &l);
        if (rc == 0 && a->failed && !more)
            rc = store_ob_retries(l.st, ten, appz, true, list_failed, &l);
        l.first = UINT64_MAX;
        if (rc == 0 && !a->failed)
            rc = store_outbox_scan(l.st, 0, 1, first_seq, &l.first);
        if (rc == 0 && !a->failed && !more)
            rc = store_ob_retries(l.st, ten, appz, true, list_pruned_failed, &l);
        if (rc == 0)
            rc = store_outbox_scan(l.st, 0, OUTBOX_CAP, list_one, &l);
        delivered += l.cur.delivered;
        failed += l.cur.failed_now;
        pending += l.pending;
        for (size_t i = 0; i < l.n_rv; i++) /* requeued ones whose event was pruned */
            if (l.rv[i].state == OB_REQUEUED && l.rv[i].seq <= l.cur.cursor)
                pending++;
        more = more || l.more;
        listed = l.listed;
        free(l.rv);
    }
    json_arr_end(&we);
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        herald_buf_free(&evs);
        return;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "app");
    json_strz(&w, app);
    json_key(&w, "url");
    json_strz(&w, cb.url);
    json_key(&w, "all");
    json_bool(&w, cb.all);
    put_types(&w, cb.types);
    json_key(&w, "pending");
    json_u64(&w, pending);
    json_key(&w, "delivered");
    json_u64(&w, delivered);
    json_key(&w, "failed");
    json_u64(&w, failed);
    json_key(&w, "events");
    if (json_done(&we) == 0)
        json_raw(&w, (const char *)evs.data, evs.len);
    else
        w.failed = true;
    json_key(&w, "more");
    json_bool(&w, more);
    json_obj_end(&w);
    if (json_done(&w) == 0)
        reply_json(rq, f->rid, app, &b);
    else
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
    herald_buf_free(&b);
    herald_buf_free(&evs);
}

/* ---- redeliver ------------------------------------------------------------------------ */

typedef struct redo {
    char app[CB_APP_ID_MAX + 1];
    uint32_t outstanding;
    uint64_t requeued;
    int err;                 /* the first rejection (one id) */
    char why[128];
    bool answered;           /* the requester got an ERROR already */
} redo;

static void redo_done(step *st, apply_result *res)
{
    redo *r = st->job;
    if (res->err) {
        if (!r->err) {
            r->err = res->err;
            snprintf(r->why, sizeof r->why, "%s", res->errmsg);
        }
    } else {
        r->requeued += res->seq;
    }
    if (--r->outstanding)
        return;
    if (r->answered) {
        /* told already (a submit failed); the rest completed anyway */
    } else if (r->err) {
        req_error(st->rq, r->err, r->why[0] ? r->why : NULL, st->rid);
    } else {
        herald_buf b = {0};
        json_w w;
        json_init(&w, &b);
        json_obj(&w);
        json_key(&w, "app");
        json_strz(&w, r->app);
        json_key(&w, "requeued");
        json_u64(&w, r->requeued);
        json_obj_end(&w);
        if (json_done(&w) == 0)
            reply_json(st->rq, st->rid, r->app, &b);
        herald_buf_free(&b);
    }
    free(r);
}

static void op_redeliver(svc_req *rq, herald_frame *f, const cbargs *a, const char *app)
{
    svc *s = rq->s;
    redo *r;
    store_callback cb;
    int rc = store_callback_get(svc_meta(s), herald_str_z(rq->sess->tenant), herald_str_z(app),
                                &cb);

    if (rc) {
        req_error(rq, rc, rc == HERALD_ENOT_FOUND ? "this app has no callback" : NULL, f->rid);
        return;
    }
    if (a->has_id && a->group >= s->nshards) {
        req_error(rq, HERALD_ENOT_FOUND, "no such event (its group does not exist)", f->rid);
        return;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
        return;
    }
    snprintf(r->app, sizeof r->app, "%s", app);
    /* One step per group concerned; the count guards the answer. */
    r->outstanding = 1;
    for (uint32_t g = 0; g < s->nshards; g++) {
        cmd k;
        step *st;
        if (a->has_id && g != a->group)
            continue;
        k = req_cmd(rq, CMD_OUTBOX);
        k.kind = herald_str_z("requeue");
        k.target = herald_str_z(r->app);
        k.seq = a->has_id ? a->seq : 0;
        k.flags = a->has_id ? 0 : CMD_OB_ALL;
        k.ts = session_now_ms();
        st = svc_step(rq, f->rid, &k, g, redo_done);
        if (!st) {
            /* rq got the ERROR; what was submitted still completes. */
            r->answered = true;
            break;
        }
        st->job = r;
        r->outstanding++;
    }
    if (--r->outstanding == 0) /* nothing was submitted: rq has its ERROR */
        free(r);
}

/* ---- dispatch -------------------------------------------------------------------------- */

bool callback_op(svc_req *rq, herald_frame *f)
{
    static const struct {
        const char *name;
        cbargs_op op;
    } ops[] = {{"callback", CBARGS_CALLBACK}, {"events", CBARGS_EVENTS},
               {"redeliver", CBARGS_REDELIVER}};
    char app[CB_APP_ID_MAX + 1], why[200];
    cbargs a;

    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (!herald_str_eq(f->op, ops[i].name))
            continue;
        if (!token_id_valid(f->app.ptr, f->app.len) || f->app.len > CB_APP_ID_MAX) {
            req_error(rq, HERALD_EINVAL, "invalid app id (up to 100 of A-Z a-z 0-9 . _ @ : -)",
                      f->rid);
            return true;
        }
        snprintf(app, sizeof app, "%.*s", (int)f->app.len, f->app.ptr);
        if (cbargs_parse(ops[i].op, f->body.ptr, f->body.len, &a, why, sizeof why) != 0) {
            req_error(rq, HERALD_EINVAL, why, f->rid);
            return true;
        }
        if (ops[i].op == CBARGS_CALLBACK)
            op_callback(rq, f, &a, app);
        else if (ops[i].op == CBARGS_EVENTS)
            op_events(rq, f, &a, app);
        else
            op_redeliver(rq, f, &a, app);
        return true;
    }
    return false;
}
