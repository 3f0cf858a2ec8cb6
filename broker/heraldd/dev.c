/* dev.c — see dev.h. */
#include "dev.h"

#include <ev.h>
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "events.h"
#include "node_metrics.h"
#include "offrep.h"
#include "prom.h"
#include "svc.h"
#include "writer.h"

#define DEV_MAX_GROUPS 64u

struct dev {
    struct ev_loop *loop;
    tier *t;                     /* client connections */
    svc *s;                      /* the request service */
    store *st[DEV_MAX_GROUPS];   /* borrowed */
    writer *wr[DEV_MAX_GROUPS];  /* one group-commit writer per store */
    events_chain *chain[DEV_MAX_GROUPS]; /* each group's push chain */
    offrep *off;                 /* who of the pushes' recipients had no session here */
    uint32_t n;
    ev_tstamp started;           /* for uptime */
};

/* ---- the backend: writers ------------------------------------------------ */

static int be_submit(void *ctx, uint32_t group, herald_buf *cmd, void *cookie)
{
    dev *d = ctx;
    return group < d->n ? writer_submit(d->wr[group], cmd, cookie) : HERALD_EINVAL;
}

static void ev_push(void *ctx, uint32_t group, uint64_t index, const char *tenant,
                    const char *const *users, const uint64_t *prevs, uint32_t n,
                    const herald_frame *f)
{
    dev *d = ctx;
    (void)group;
    (void)index;
    tier_deliver(d->t, tenant, users, prevs, n, f);
    offrep_note(d->off, tenant, users, n, f);
}

/* This process is the only session tier: its reports go straight to the
 * service, which decides each message at once. */
static int off_send(void *ctx, const offrep_batch *b)
{
    dev *d = ctx;
    svc_offline_report r = {.gateway = 0, .group = b->group, .tenant = herald_str_z(b->tenant),
                            .n = b->n, .convs = b->convs, .seqs = b->seqs, .counts = b->counts,
                            .n_users = b->n_users, .users = b->users};
    return svc_offline(d->s, &r);
}

static void ev_dnd(void *ctx, const char *tenant, const char *user, uint64_t until)
{
    dev *d = ctx;
    tier_dnd(d->t, tenant, user, until);
}

/* A batch is durable: the requester's answer, then the pushes. */
static void on_written(void *arg, void *cookie, const uint8_t *cmd, size_t len,
                       apply_result *res)
{
    dev *d = arg;
    events_sink sink = {.ctx = d, .push = ev_push, .dnd = ev_dnd};
    (void)cmd;
    (void)len;
    svc_applied(d->s, cookie, res);
    if (res->outbox_events)
        svc_outbox_written(d->s, res->group);
    events_emit(res, res->group < d->n ? d->chain[res->group] : NULL, &sink);
}

static void be_status(void *ctx, json_w *w)
{
    dev *d = ctx;
    uint64_t conns, users;

    tier_counts(d->t, &conns, &users);
    json_obj(w);
    json_key(w, "mode");
    json_strz(w, "dev");
    json_key(w, "version");
    json_strz(w, HERALD_VERSION);
    json_key(w, "uptime_s");
    json_u64(w, (uint64_t)(ev_now(d->loop) - d->started));
    json_key(w, "connections");
    json_u64(w, conns);
    json_key(w, "users_online");
    json_u64(w, users);
    json_key(w, "groups");
    json_arr(w);
    for (uint32_t i = 0; i < d->n; i++) {
        json_obj(w);
        json_key(w, "group");
        json_u64(w, i);
        json_key(w, "applied");
        json_u64(w, store_applied(d->st[i]));
        json_key(w, "map_bytes");
        json_u64(w, store_map_size(d->st[i]));
        json_key(w, "pending");
        json_u64(w, writer_pending(d->wr[i]));
        json_key(w, "batches");
        json_u64(w, writer_batches(d->wr[i]));
        json_obj_end(w);
    }
    json_arr_end(w);
    json_obj_end(w);
}

/* ---- the transport: a connection is the reply sink ----------------------- */

static int sink_send(void *ctx, const herald_frame *f) { return conn_send(ctx, f); }
static void sink_fail(void *ctx, int code, const char *text) { conn_fail(ctx, code, text); }
static int sink_started(void *ctx) { return conn_start(ctx); }
static void sink_done(void *ctx) { conn_unref(ctx); }

static void on_frame(void *ctx, conn *c, herald_frame *f, const uint8_t *payload, size_t len)
{
    dev *d = ctx;
    svc_sink sink = {.ctx = c, .send = sink_send, .fail = sink_fail, .started = sink_started,
                     .done = sink_done, .origin = conn_label(c)};
    (void)payload;
    (void)len;
    conn_ref(c); /* until sink_done */
    svc_request(d->s, conn_session(c), f, &sink);
}

/* ---- the open API: a request whose sink collects the reply frames ------- */

typedef struct dev_call {
    session sess;
    herald_buf out;   /* whole wire frames */
    bool failed;      /* allocation failed */
    api_done_fn done;
    void *arg;
} dev_call;

static int call_send(void *ctx, const herald_frame *f)
{
    dev_call *c = ctx;
    if (!c->failed && herald_frame_encode(f, &c->out) != 0)
        c->failed = true;
    return 0;
}

static void call_fail(void *ctx, int code, const char *text)
{
    herald_frame e = herald_frame_error(code, text, 0);
    call_send(ctx, &e);
}

static void call_done(void *ctx)
{
    dev_call *c = ctx;
    if (c->failed)
        c->done(c->arg, HERALD_ENOMEM, NULL, NULL, 0);
    else
        c->done(c->arg, 0, NULL, c->out.data, c->out.len);
    herald_buf_free(&c->out);
    free(c);
}

void dev_api_request(void *ctx, const char *token, herald_frame *f, const uint8_t *payload,
                     size_t len, api_done_fn done, void *arg)
{
    dev *d = ctx;
    dev_call *c = calloc(1, sizeof *c);
    svc_sink sink = {.send = call_send, .fail = call_fail, .done = call_done,
                     .origin = "http api"};
    int rc;

    (void)payload;
    (void)len;
    if (!c) {
        done(arg, HERALD_ENOMEM, NULL, NULL, 0);
        return;
    }
    c->done = done;
    c->arg = arg;
    if (token) {
        rc = svc_session_of(d->s, token, strlen(token), (uint64_t)time(NULL), &c->sess);
        if (rc) {
            free(c);
            done(arg, rc, rc == HERALD_EEXPIRED ? "token expired" : "invalid token", NULL, 0);
            return;
        }
    }
    sink.ctx = c;
    svc_request(d->s, &c->sess, f, &sink);
}

static void stop_writers(dev *d)
{
    for (uint32_t i = 0; i < d->n; i++) {
        writer_destroy(d->wr[i]);
        d->wr[i] = NULL;
        events_chain_free(d->chain[i]);
        d->chain[i] = NULL;
    }
}

int dev_start(const gw_config *cfg, const svc_cb_config *cb, struct ev_loop *loop,
              store *const *stores, uint32_t n, dev **out)
{
    dev *d;
    svc_config sc = {.max_frame = cfg->max_frame, .hb_ms = cfg->hb_ms, .cb = *cb};
    svc_backend be;
    tier_handler h;
    int rc;

    if (n == 0 || n > DEV_MAX_GROUPS)
        return HERALD_EINVAL;
    d = calloc(1, sizeof *d);
    if (!d)
        return HERALD_ENOMEM;
    d->loop = loop;
    d->n = n;
    d->started = ev_now(loop);
    be = (svc_backend){.ctx = d, .submit = be_submit, .status = be_status};
    h = (tier_handler){.ctx = d, .frame = on_frame};
    for (uint32_t i = 0; i < n; i++) {
        d->st[i] = stores[i];
        rc = events_chain_new(0, &d->chain[i]);
        if (rc)
            goto fail;
        rc = writer_create(stores[i], loop, on_written, d, &d->wr[i]);
        if (rc)
            goto fail;
        writer_set_budget(d->wr[i], cfg->queue_bytes);
    }
    rc = tier_create(cfg, loop, &h, &d->t);
    if (rc)
        goto fail;
    /* WELCOME advertises the heartbeat the tier enforces. */
    sc.hb_ms = tier_config(d->t)->hb_ms;
    rc = svc_create(&sc, loop, stores, n, &be, &d->s);
    if (rc)
        goto fail;
    rc = offrep_create(loop, d->t, cfg->offline_batch_ms, off_send, d, &d->off);
    if (rc)
        goto fail;
    *out = d;
    return 0;

fail:
    svc_destroy(d->s);
    tier_destroy(d->t);
    stop_writers(d);
    free(d);
    return rc;
}

uint16_t dev_port(const dev *d) { return tier_port(d->t); }

uint16_t dev_ws_port(const dev *d) { return tier_listener_port(d->t, "ws"); }

bool dev_tls(const dev *d) { return tier_tls(d->t); }

uint16_t dev_mqtt_port(const dev *d) { return tier_listener_port(d->t, "mqtt"); }

void dev_metrics(void *ctx, prom_w *w)
{
    dev *d = ctx;
    char id[16];
    tier_metrics(d->t, w);
    offrep_metrics(d->off, w);
    store_metrics(w, d->st, d->n);
    callback_metrics(w, d->s, d->st, d->n);
    prom_family(w, "herald_writer_queued_bytes", "gauge",
                "Bytes of commands queued for a group's writer, not committed yet");
    for (uint32_t i = 0; i < d->n; i++) {
        prom_label l = {"group", id};
        snprintf(id, sizeof id, "%u", i);
        prom_u64(w, "herald_writer_queued_bytes", &l, 1, writer_pending(d->wr[i]));
    }
    prom_family(w, "herald_writer_batches_total", "counter",
                "Group commits (one LMDB transaction and fsync each) of a group's writer");
    for (uint32_t i = 0; i < d->n; i++) {
        prom_label l = {"group", id};
        snprintf(id, sizeof id, "%u", i);
        prom_u64(w, "herald_writer_batches_total", &l, 1, writer_batches(d->wr[i]));
    }
}

bool dev_ready(void *ctx, char *why, size_t whylen)
{
    /* One process: serving whenever its loop runs. */
    (void)ctx;
    (void)why;
    (void)whylen;
    return true;
}

void dev_stop(dev *d)
{
    if (!d)
        return;
    /* Commit what is queued; the answers reach the connections still open. */
    stop_writers(d);
    offrep_destroy(d->off); /* what the last pushes reported goes with it */
    d->off = NULL;
    svc_destroy(d->s);
    tier_destroy(d->t);
    free(d);
}
