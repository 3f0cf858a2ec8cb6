/* cbdeliver.c — the event-callback deliverer: on every group this process
 * leads, each app with a callback gets its events by HTTP POST, at least
 * once, in order (one event of an app in flight at a time), signed
 * (cbsign.h). Progress is replicated: every outcome is an OUTBOX command
 * to the event's group (ack, retry with the next attempt's time, fail,
 * skip past events that are not the app's), so a new leader resumes from
 * the first event not acknowledged and with the same retry state; an
 * event sent again carries the same id.
 *
 * Every CBD_POLL_S the deliverer reloads the callbacks (meta group) and
 * looks, per idle app, at the groups it leads: a requeued failed event
 * first, else the head of the app's stream (the first event after its
 * cursor that is the app's), waiting for its retry time if it failed
 * before. Every CBD_PRUNE_S it prunes, per group it leads, the events
 * every app is past (OUTBOX prune). Loop thread. */
#include "svc_int.h"

#include <herald/error.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbhttp.h"
#include "cbsign.h"
#include "json.h"
#include "log.h"
#include "outbox.h"

#define CBD_POLL_S 0.05      /* looks for work this often */
#define CBD_KICK_S 0.001     /* after a commit with events, looks this soon */
#define CBD_ACKS_MAX 64u     /* an app's acknowledgements proposed, not committed */
#define CBD_RELOAD_S 0.5     /* reloads the callbacks this often */
#define CBD_PRUNE_S 2.0      /* prunes this often */
#define CBD_SKIP_S 2.0       /* moves an idle app's cursor at most this often */
#define CBD_SCAN_MAX 4096u   /* events looked at per look */
#define CBD_APPS_MAX 10000u  /* callbacks handled */
/* Events younger than this are never pruned: an app whose callback was
 * set a moment ago may not be known here yet (the meta group's replica on
 * this node lags, or it was not reloaded yet), and it wants them. */
#define CBD_PRUNE_GRACE_MS 10000u

typedef struct cbd_app {
    store_callback cb;       /* the callback (reloaded) */
    bool seen;               /* found by the last reload */
    bool busy;               /* a POST, or an OUTBOX command other than a
                                first-attempt ack, is in flight */
    bool ready;              /* listed in cbd.ready */
    uint32_t acks;           /* pipelined acks proposed, not committed yet */
    uint32_t rr;             /* the group to look at first next time */
    ev_tstamp *skip_at;      /* per group: last skip proposed */
    uint64_t *seen_to;       /* per group: events up to here were looked at
                                and are not the app's (this leader's memory;
                                a new leader looks once more) */
    uint64_t *acked_to;      /* per group: the receiver answered 2xx for the
                                app's events up to here; their acks may not
                                be committed yet (this leader's memory) */
} cbd_app;

/* One event in flight. */
typedef struct cbd_job {
    cbd *d;
    cbd_app *app;
    uint32_t group;
    uint64_t seq;
    uint32_t attempts;       /* made before this one */
    bool redelivery;         /* a requeued failed event */
    bool pipelined;          /* an ack the app does not wait for */
} cbd_job;

struct cbd {
    svc *s;
    svc_cb_config cfg;
    cbhttp *http;
    ev_timer poll;
    ev_timer kick;           /* one-shot: apps whose outcome was just recorded */
    cbd_app **ready;         /* those apps (CBD_APPS_MAX slots) */
    uint32_t n_ready;
    bool all_ready;          /* events were recorded: the kick looks at every app */
    ev_tstamp reload_at, prune_at;
    cbd_app **apps;
    uint32_t n_apps;
    bool *prune_busy;        /* per group */
    svc_cb_stats st;
};

/* ---- the callbacks ----------------------------------------------------------- */

static cbd_app *app_find(cbd *d, const char *tenant, const char *app)
{
    for (uint32_t i = 0; i < d->n_apps; i++)
        if (strcmp(d->apps[i]->cb.tenant, tenant) == 0 && strcmp(d->apps[i]->cb.app, app) == 0)
            return d->apps[i];
    return NULL;
}

static int reload_one(const store_callback *cb, void *arg)
{
    cbd *d = arg;
    cbd_app *a = app_find(d, cb->tenant, cb->app);
    if (!a) {
        cbd_app **v;
        if (d->n_apps >= CBD_APPS_MAX)
            return 1;
        v = realloc(d->apps, (d->n_apps + 1) * sizeof *v);
        if (!v)
            return HERALD_ENOMEM;
        d->apps = v;
        a = calloc(1, sizeof *a);
        if (a) {
            a->skip_at = calloc(d->s->nshards, sizeof *a->skip_at);
            a->seen_to = calloc(d->s->nshards, sizeof *a->seen_to);
            a->acked_to = calloc(d->s->nshards, sizeof *a->acked_to);
        }
        if (!a || !a->skip_at || !a->seen_to || !a->acked_to) {
            if (a) {
                free(a->skip_at);
                free(a->seen_to);
                free(a->acked_to);
            }
            free(a);
            return HERALD_ENOMEM;
        }
        d->apps[d->n_apps++] = a;
        log_info("callback.app", "app %s of %s: events go to %s (%s)", cb->app, cb->tenant,
                 cb->url, cb->all ? "every conversation" : "its conversations");
    }
    if (a->cb.all != cb->all || a->cb.types != cb->types ||
        a->cb.set_ms != cb->set_ms) /* set again: look again */
        memset(a->seen_to, 0, d->s->nshards * sizeof *a->seen_to);
    a->cb = *cb;
    a->seen = true;
    return 0;
}

static void reload(cbd *d)
{
    uint32_t keep = 0;
    int rc;
    for (uint32_t i = 0; i < d->n_apps; i++)
        d->apps[i]->seen = false;
    rc = store_callbacks(svc_meta(d->s), reload_one, d);
    if (rc) {
        log_warn("callback.reload", "reading the callbacks failed: %s", herald_err_name(rc));
        return;
    }
    for (uint32_t i = 0; i < d->n_apps; i++) {
        cbd_app *a = d->apps[i];
        if (a->seen || a->busy || a->acks) {
            d->apps[keep++] = a;
            continue;
        }
        log_info("callback.app", "app %s of %s: callback removed", a->cb.app, a->cb.tenant);
        if (a->ready) /* no longer looked at by the kick */
            for (uint32_t k = 0; k < d->n_ready; k++)
                if (d->ready[k] == a)
                    d->ready[k] = d->ready[--d->n_ready];
        free(a->skip_at);
        free(a->seen_to);
        free(a->acked_to);
        free(a);
    }
    d->n_apps = keep;
}

/* ---- which events are an app's ------------------------------------------------- */

/* A message the app itself sent is not sent back to it. */
static bool from_app(const store_event *e, const char *app)
{
    json_t *j;
    const char *from;
    char self[TOKEN_ID_MAX + 8];
    bool r = false;
    if (strcmp(e->type, "message") != 0)
        return false;
    j = json_loadb(e->data, e->data_len, 0, NULL);
    from = j ? json_string_value(json_object_get(j, "from")) : NULL;
    snprintf(self, sizeof self, "app:%s", app);
    r = from && strcmp(from, self) == 0;
    json_decref(j);
    return r;
}

bool cbd_wants(store *st, const store_callback *cb, const store_event *e)
{
    char member[TOKEN_ID_MAX + 8];
    if (strcmp(e->tenant, cb->tenant) != 0 || e->ts < cb->set_ms)
        return false;
    if (cb->types && !(cb->types & ob_type_bit(e->type, strlen(e->type))))
        return false;
    if (from_app(e, cb->app))
        return false;
    if (cb->all || !e->conv[0])
        return true; /* tenant-level events go to every app of the tenant */
    snprintf(member, sizeof member, "app:%s", cb->app);
    return store_member_check(st, herald_str_z(e->tenant), herald_str_z(e->conv),
                              herald_str_z(member)) == 0;
}

/* ---- outcomes: OUTBOX commands ----------------------------------------------------- */

/* The kick runs after delay (s), or sooner when it is set already. */
static void kick_arm(cbd *d, ev_tstamp delay)
{
    if (d->s->stopping)
        return;
    if (ev_is_active(&d->kick)) {
        if (ev_timer_remaining(d->s->loop, &d->kick) <= delay)
            return;
        ev_timer_stop(d->s->loop, &d->kick);
    }
    ev_timer_set(&d->kick, delay, 0.);
    ev_timer_start(d->s->loop, &d->kick);
}

/* a is looked at by the kick. */
static void make_ready(cbd *d, cbd_app *a)
{
    if (d->s->stopping || a->busy || !a->seen || a->acks >= CBD_ACKS_MAX)
        return;
    if (!a->ready && d->n_ready < CBD_APPS_MAX) {
        a->ready = true;
        d->ready[d->n_ready++] = a;
    }
    kick_arm(d, 0.);
}

/* A job's OUTBOX command is answered (ok) or could not be proposed. A
 * pipelined ack that did not commit leaves the replicated cursor behind
 * what this leader sent: the app's stream goes back to that cursor, and
 * what followed it is sent again (the same ids). */
static void job_end(cbd_job *j, bool ok)
{
    cbd_app *a = j->app;
    if (j->pipelined) {
        a->acks--;
        if (!ok)
            a->acked_to[j->group] = 0;
    } else {
        a->busy = false;
    }
    free(j);
}

static void outcome_done(step *st, apply_result *res)
{
    cbd_job *j = st->job;
    cbd *d = j->d;
    cbd_app *a = j->app;
    if (res->err && res->err != HERALD_ENOT_FOUND)
        log_warn("callback.progress", "app %s: recording event %u-%llu failed: %s (sent again)",
                 a->cb.app, j->group, (unsigned long long)j->seq, herald_err_name(res->err));
    job_end(j, !res->err || res->err == HERALD_ENOT_FOUND);
    /* The app's next event goes out at once, not at the next poll: an
     * app's stream moves at one POST plus one commit per event, not one
     * poll. From the loop, not from inside this completion. */
    if (!res->err)
        make_ready(d, a);
}

/* Proposes OUTBOX kind for the job; frees it when that cannot be done. */
static void propose(cbd_job *j, const char *kind, uint32_t attempts, uint64_t next_ms,
                    const char *err)
{
    cbd *d = j->d;
    cmd k = {.op = CMD_OUTBOX, .tenant = herald_str_z(j->app->cb.tenant),
             .target = herald_str_z(j->app->cb.app), .kind = herald_str_z(kind), .seq = j->seq,
             .cap = attempts, .win = next_ms, .name = herald_str_z(err),
             .flags = j->redelivery ? CMD_OB_REDELIVERY : 0, .ts = session_now_ms()};
    step *st = d->s->stopping ? NULL : svc_own_step(d->s, &k, j->group, outcome_done);
    if (!st) {
        job_end(j, false); /* looked at again next time: sent again */
        return;
    }
    st->job = j;
}

static void http_done(void *arg, cbhttp_req *r)
{
    cbd *d = arg;
    cbd_job *j = r->cookie;
    uint32_t attempts = j->attempts + 1;

    d->st.attempts++;
    if (r->status >= 200 && r->status <= 299) {
        cbd_app *a = j->app;
        /* Acknowledged: the app's next event goes out now, while the ack
         * commits (an app's stream then moves at one POST per event, not
         * one POST plus one commit). Its order is kept: one POST at a
         * time, the next only after this one's 2xx. A redelivery's ack is
         * waited for. */
        bool pipelined = !j->redelivery && !d->s->stopping;
        d->st.delivered++;
        if (pipelined) {
            if (a->acked_to[j->group] < j->seq)
                a->acked_to[j->group] = j->seq;
            a->acks++;
            a->busy = false;
            j->pipelined = true;
        }
        propose(j, "ack", attempts, 0, "");
        if (pipelined)
            make_ready(d, a);
    } else if (d->s->stopping) {
        j->app->busy = false;
        free(j);
    } else {
        d->st.failures++;
        if (attempts >= d->cfg.max_attempts) {
            d->st.gave_up++;
            log_warn("callback.failed", "app %s: event %u-%llu given up after %u attempts: %s "
                     "(kept; `herald --admin app redeliver` sends it again)",
                     j->app->cb.app, j->group, (unsigned long long)j->seq, attempts, r->err);
            propose(j, "fail", attempts, 0, r->err);
        } else {
            uint64_t next = session_now_ms() + cb_backoff_ms(attempts, d->cfg.backoff_ms);
            log_debug("callback.retry", "app %s: event %u-%llu attempt %u: %s", j->app->cb.app,
                      j->group, (unsigned long long)j->seq, attempts, r->err);
            propose(j, "retry", attempts, next, r->err);
        }
    }
    cbhttp_req_free(r);
}

/* ---- sending ---------------------------------------------------------------------- */

static bool utf8_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t more;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            more = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= more)
            return false;
        for (size_t j = 1; j <= more; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += more + 1;
    }
    return true;
}

/* Base64 (standard alphabet, padded) of p[0..n), appended to out. */
static int b64_append(herald_buf *out, const uint8_t *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        if (herald_buf_append(out, q, 4) != 0)
            return HERALD_ENOMEM;
    }
    return 0;
}

static int append_z(herald_buf *b, const char *z) { return herald_buf_append(b, z, strlen(z)); }

/* A message event's data with the body of its message record spliced in:
 * ...,"recalled":bool,"encoding":"utf8"|"base64","body":"…"}. */
static int message_data(store *st, const store_event *e, herald_buf *out)
{
    store_msgs m = {0};
    const char *conv = e->conv;
    const char *seqp = strstr(e->data, "\"seq\":");
    uint64_t seq = seqp ? strtoull(seqp + 6, NULL, 10) : 0;
    herald_str body = {0};
    bool recalled = false, text;
    herald_buf esc = {0};
    json_w w;
    int rc;

    if (e->data_len < 2 || e->data[e->data_len - 1] != '}')
        return HERALD_ESTORAGE;
    if (seq && store_history(st, herald_str_z(e->tenant), herald_str_z(conv), seq - 1, 1, 0,
                             &m) == 0 &&
        m.n == 1 && m.v[0].seq == seq) {
        body = m.v[0].body;
        recalled = (m.v[0].flags & HERALD_MSGF_RECALLED) != 0;
    }
    text = utf8_ok((const uint8_t *)body.ptr, body.len);
    rc = herald_buf_append(out, e->data, e->data_len - 1);
    if (rc == 0)
        rc = append_z(out, recalled ? ",\"recalled\":true" : ",\"recalled\":false");
    if (rc == 0 && text) {
        json_init(&w, &esc);
        json_str(&w, body.ptr ? body.ptr : "", body.len);
        rc = json_done(&w) ? HERALD_ENOMEM : 0;
        if (rc == 0)
            rc = append_z(out, ",\"encoding\":\"utf8\",\"body\":");
        if (rc == 0)
            rc = herald_buf_append(out, esc.data, esc.len);
    } else if (rc == 0) {
        rc = append_z(out, ",\"encoding\":\"base64\",\"body\":\"");
        if (rc == 0)
            rc = b64_append(out, (const uint8_t *)body.ptr, body.len);
        if (rc == 0)
            rc = append_z(out, "\"");
    }
    if (rc == 0)
        rc = append_z(out, "}");
    herald_buf_free(&esc);
    store_msgs_free(&m);
    return rc ? HERALD_ENOMEM : 0;
}

/* The POST body: {"id","tenant","app","type","time","conv","data"}. */
static int body_of(store *st, const cbd_app *a, const store_event *e, herald_buf *out)
{
    json_w w;
    char id[48];
    herald_buf data = {0};
    snprintf(id, sizeof id, "%u-%llu", e->group, (unsigned long long)e->seq);
    json_init(&w, out);
    json_obj(&w);
    json_key(&w, "id");
    json_strz(&w, id);
    json_key(&w, "tenant");
    json_strz(&w, e->tenant);
    json_key(&w, "app");
    json_strz(&w, a->cb.app);
    json_key(&w, "type");
    json_strz(&w, e->type);
    json_key(&w, "time");
    json_u64(&w, e->ts);
    if (e->conv[0]) {
        json_key(&w, "conv");
        json_strz(&w, e->conv);
    }
    json_key(&w, "data");
    if (strcmp(e->type, "message") == 0 && message_data(st, e, &data) == 0)
        json_raw(&w, (const char *)data.data, data.len);
    else
        json_raw(&w, e->data, e->data_len);
    json_obj_end(&w);
    herald_buf_free(&data);
    return json_done(&w) ? HERALD_ENOMEM : 0;
}

static void send_event(cbd *d, cbd_app *a, const store_event *e, uint32_t attempts,
                       bool redelivery)
{
    store *st = d->s->shards[e->group].st;
    cbhttp_req *r = calloc(1, sizeof *r);
    cbd_job *j = calloc(1, sizeof *j);
    uint64_t now_s = session_now_ms() / 1000u;
    char nonce[CB_NONCE_HEX], sig[CB_SIG_HEX];

    if (!r || !j || !(r->url = strdup(a->cb.url)) || body_of(st, a, e, &r->body) != 0 ||
        herald_buf_append(&r->body, "", 1) != 0) {
        cbhttp_req_free(r);
        free(j);
        return;
    }
    r->body.len--; /* NUL-terminated for curl's sake, not sent */
    *j = (cbd_job){.d = d, .app = a, .group = e->group, .seq = e->seq, .attempts = attempts,
                   .redelivery = redelivery};
    cb_nonce(nonce);
    cb_sign(a->cb.secret, a->cb.token, now_s, nonce, r->body.data, r->body.len, sig);
    snprintf(r->headers[0], sizeof r->headers[0], "X-Herald-Event-Id: %u-%llu", e->group,
             (unsigned long long)e->seq);
    snprintf(r->headers[1], sizeof r->headers[1], "X-Herald-Timestamp: %llu",
             (unsigned long long)now_s);
    snprintf(r->headers[2], sizeof r->headers[2], "X-Herald-Nonce: %s", nonce);
    snprintf(r->headers[3], sizeof r->headers[3], "X-Herald-Signature: %s", sig);
    r->n_headers = 4;
    r->timeout_ms = d->cfg.timeout_ms;
    r->cookie = j;
    if (cbhttp_post(d->http, r) != 0) {
        cbhttp_req_free(r);
        free(j);
        return;
    }
    a->busy = true;
}

static bool leads(const svc *s, uint32_t g)
{
    return !s->be.leads || s->be.leads(s->be.ctx, g);
}

/* What the app has to do in group g now. */
typedef struct look {
    cbd *d;
    cbd_app *a;
    store *st;
    uint64_t cursor;
    uint64_t acked;          /* the app's acked_to in this group */
    uint64_t now;
    bool acted;              /* something was sent */
    bool head_waiting;       /* the head failed and waits for its time */
    uint64_t scanned_to;     /* last seq looked at */
    uint32_t scanned;        /* events looked at */
} look;

static int retry_one(const store_ob_retry *r, void *arg)
{
    look *l = arg;
    if (r->state == OB_RETRYING && r->seq > l->cursor && r->seq > l->acked) {
        if (r->next_ms > l->now) {
            l->head_waiting = true;
            return 1;
        }
        send_event(l->d, l->a, &r->ev, r->attempts, false);
        l->acted = true;
        return 1;
    }
    if (r->state == OB_REQUEUED && r->next_ms <= l->now && !l->acted) {
        send_event(l->d, l->a, &r->ev, r->attempts, true);
        l->acted = true;
        return 1;
    }
    return 0;
}

static int event_one(const store_event *e, void *arg)
{
    look *l = arg;
    l->scanned_to = e->seq;
    l->scanned++;
    if (!cbd_wants(l->st, &l->a->cb, e))
        return 0;
    send_event(l->d, l->a, e, 0, false);
    l->acted = true;
    return 1;
}

static void skip_to(cbd *d, cbd_app *a, uint32_t g, uint64_t seq)
{
    cbd_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    *j = (cbd_job){.d = d, .app = a, .group = g, .seq = seq};
    a->busy = true;
    a->skip_at[g] = ev_now(d->s->loop);
    propose(j, "skip", 0, 0, "");
}

/* One look at app a in group g; true when the app became busy. */
static bool look_at(cbd *d, cbd_app *a, uint32_t g)
{
    store *st = d->s->shards[g].st;
    store_ob_cursor cur;
    look l = {.d = d, .a = a, .st = st, .now = session_now_ms()};
    herald_str ten = herald_str_z(a->cb.tenant), app = herald_str_z(a->cb.app);

    if (store_ob_cursor_get(st, ten, app, &cur) != 0)
        return false;
    l.cursor = cur.cursor;
    if (a->acked_to[g] <= cur.cursor)
        a->acked_to[g] = 0; /* committed: the cursor says it all */
    l.acked = a->acked_to[g];
    if (store_ob_retries(st, ten, app, false, retry_one, &l) != 0 || l.acted)
        return a->busy;
    if (l.head_waiting)
        return false;
    {
        uint64_t from = a->seen_to[g] > cur.cursor ? a->seen_to[g] : cur.cursor;
        if (from < l.acked)
            from = l.acked;
        l.scanned_to = from;
        if (store_outbox_scan(st, from, CBD_SCAN_MAX, event_one, &l) != 0)
            return false;
        if (l.acted)
            return a->busy;
        a->seen_to[g] = l.scanned_to;
    }
    /* None of the events looked at is the app's: its cursor moves past
     * them (at once when there are more, else now and then). */
    if (l.scanned_to > cur.cursor && !a->acks &&
        (l.scanned == CBD_SCAN_MAX || ev_now(d->s->loop) - a->skip_at[g] >= CBD_SKIP_S)) {
        skip_to(d, a, g, l.scanned_to);
        return a->busy;
    }
    return false;
}


/* ---- pruning ------------------------------------------------------------------------ */

static void prune_done(step *st, apply_result *res)
{
    cbd *d = st->job;
    (void)res;
    d->prune_busy[st->group] = false;
}

/* The oldest event (seq, time), and the last one before the grace
 * horizon. */
typedef struct first_ev {
    uint64_t seq, ts;
    uint64_t horizon;   /* ms */
    uint64_t before;    /* last seq with ts < horizon (0: none) */
} first_ev;

static int first_one(const store_event *e, void *arg)
{
    first_ev *f = arg;
    if (!f->seq) {
        f->seq = e->seq;
        f->ts = e->ts;
    }
    if (e->ts >= f->horizon)
        return 1;
    f->before = e->seq;
    return 0;
}

/* Per group led: OUTBOX prune up to the smallest cursor of every app (the
 * whole outbox when there is none) but never the last CBD_PRUNE_GRACE_MS
 * of events, or when the oldest event is past the age limit. */
static void prune(cbd *d)
{
    for (uint32_t g = 0; g < d->s->nshards; g++) {
        store *st = d->s->shards[g].st;
        store_outbox_state os;
        first_ev first = {0};
        uint64_t upto, now = session_now_ms();
        cmd k;
        step *p;
        if (d->prune_busy[g] || !leads(d->s, g) || store_outbox_state_get(st, &os) != 0 ||
            os.held == 0)
            continue;
        upto = os.last_seq;
        for (uint32_t i = 0; i < d->n_apps; i++) {
            store_ob_cursor c;
            if (store_ob_cursor_get(st, herald_str_z(d->apps[i]->cb.tenant),
                                    herald_str_z(d->apps[i]->cb.app), &c) != 0)
                upto = 0;
            else if (c.cursor < upto)
                upto = c.cursor;
        }
        first.horizon = now > CBD_PRUNE_GRACE_MS ? now - CBD_PRUNE_GRACE_MS : 0;
        if (store_outbox_scan(st, 0, OUTBOX_CAP, first_one, &first) != 0 || first.seq == 0)
            continue;
        if (upto > first.before)
            upto = first.before;
        if (upto < first.seq && first.ts + OUTBOX_AGE_MS >= now)
            continue; /* nothing to remove */
        k = (cmd){.op = CMD_OUTBOX, .kind = herald_str_z("prune"), .seq = upto, .ts = now};
        p = svc_own_step(d->s, &k, g, prune_done);
        if (p) {
            p->job = d;
            d->prune_busy[g] = true;
        }
    }
}

/* ---- the timer ---------------------------------------------------------------------- */

/* The groups led, from the one after the last served, until the app is
 * busy. */
static void app_work(cbd *d, cbd_app *a)
{
    if (!a->seen)
        return;
    for (uint32_t n = 0; n < d->s->nshards && !a->busy && a->acks < CBD_ACKS_MAX; n++) {
        uint32_t g = (a->rr + n) % d->s->nshards;
        if (!leads(d->s, g)) {
            a->seen_to[g] = 0;
            a->acked_to[g] = 0;
            continue;
        }
        if (look_at(d, a, g)) {
            a->rr = (g + 1) % d->s->nshards;
            break;
        }
    }
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    cbd *d = w->data;
    (void)loop;
    (void)revents;
    if (d->all_ready) {
        d->all_ready = false;
        for (uint32_t i = 0; i < d->n_apps && !d->s->stopping; i++)
            app_work(d, d->apps[i]);
    }
    while (d->n_ready && !d->s->stopping) {
        cbd_app *a = d->ready[--d->n_ready];
        a->ready = false;
        app_work(d, a);
    }
}

static void on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    cbd *d = w->data;
    ev_tstamp now = ev_now(loop);
    (void)revents;
    if (d->s->stopping)
        return;
    if (now >= d->reload_at) {
        reload(d);
        d->reload_at = now + CBD_RELOAD_S;
    }
    for (uint32_t i = 0; i < d->n_apps; i++)
        app_work(d, d->apps[i]);
    if (now >= d->prune_at) {
        prune(d);
        d->prune_at = now + CBD_PRUNE_S;
    }
}

int cbd_create(svc *s, cbd **out)
{
    cbd *d = calloc(1, sizeof *d);
    int rc;
    *out = NULL;
    if (!d)
        return HERALD_ENOMEM;
    d->s = s;
    d->cfg = s->cfg.cb;
    if (!d->cfg.max_attempts)
        d->cfg.max_attempts = CB_ATTEMPTS_DEFAULT;
    if (!d->cfg.backoff_ms)
        d->cfg.backoff_ms = CB_BACKOFF_DEFAULT_MS;
    if (!d->cfg.timeout_ms)
        d->cfg.timeout_ms = CB_TIMEOUT_DEFAULT_MS;
    d->prune_busy = calloc(s->nshards, sizeof *d->prune_busy);
    d->ready = calloc(CBD_APPS_MAX, sizeof *d->ready);
    if (!d->prune_busy || !d->ready) {
        free(d->prune_busy);
        free(d->ready);
        free(d);
        return HERALD_ENOMEM;
    }
    rc = cbhttp_create(s->loop, http_done, d, &d->http);
    if (rc) {
        free(d->prune_busy);
        free(d->ready);
        free(d);
        return rc;
    }
    ev_timer_init(&d->kick, on_kick, 0., 0.);
    d->kick.data = d;
    ev_timer_init(&d->poll, on_poll, CBD_POLL_S, CBD_POLL_S);
    d->poll.data = d;
    ev_timer_start(s->loop, &d->poll);
    ev_unref(s->loop);
    log_info("callback.start", "event callbacks: %u attempts, first retry after %u ms, "
             "%u ms per POST", d->cfg.max_attempts, d->cfg.backoff_ms, d->cfg.timeout_ms);
    *out = d;
    return 0;
}

void cbd_written(cbd *d, uint32_t group)
{
    (void)group; /* app_work looks at every group led, this one among them */
    /* Commits come in bursts: one look at the apps per CBD_KICK_S, and
     * nothing per app on the commit's path. */
    d->all_ready = true;
    kick_arm(d, CBD_KICK_S);
}

void cbd_stats(const cbd *d, svc_cb_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!d)
        return;
    *out = d->st;
    out->inflight = cbhttp_inflight(d->http);
    out->apps = d->n_apps;
}

void cbd_destroy(cbd *d)
{
    if (!d)
        return;
    ev_ref(d->s->loop);
    ev_timer_stop(d->s->loop, &d->poll);
    ev_timer_stop(d->s->loop, &d->kick);
    cbhttp_destroy(d->http); /* callbacks run: jobs end (stopping) */
    for (uint32_t i = 0; i < d->n_apps; i++) {
        free(d->apps[i]->skip_at);
        free(d->apps[i]->seen_to);
        free(d->apps[i]->acked_to);
        free(d->apps[i]);
    }
    free(d->apps);
    free(d->prune_busy);
    free(d->ready);
    free(d);
}
