/*
 * front.c — `heraldd gateway`: holds client connections and forwards each
 * frame to the node leading the frame's group.
 *
 * The connections (framing, frame cap, rate limit, output cap, hello and
 * idle timers, presence) are the session tier's (session/tier.h); this
 * file is the tier's frame handler — a transport to the request service on
 * the nodes — plus the subscriber for the nodes' events.
 *
 * Routing: a cached leader per group, learned from every node reply (each
 * carries the node's leader table) and from NOT_LEADER hints. A frame goes
 * to its group's cached leader, else round-robin. NOT_LEADER → retry at the
 * hint; no leader / node unreachable / request not sent → retry elsewhere
 * after a short pause, within gateway.retry_ms. A timeout on a request that
 * may have run is retried only when repeating it is harmless (reads, SEND
 * with a cmid — the store answers a repeated cmid with the original seq —
 * READ, DND, PING); otherwise the client gets UNAVAILABLE ("outcome
 * unknown") and decides.
 */
#include <ev.h>
#include <herald/error.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cluster.h"
#include "drain.h"
#include "route.h"
#include "tier.h"
#include "log.h"
#include "obs.h"
#include "slots.h"
#include "nwire.h"
#include "evsub.h"
#include "offrep.h"
#include "peers.h"
#include "pubsub.h"
#include "rpc.h"
#include "shutdown.h"
#include "token.h"

#define FRONT_MAX_MSG (64u << 20)
#define FRONT_PAUSE_S 0.05

typedef struct front {
    gateway_config *cfg;
    struct ev_loop *loop;
    tier *t;
    ps_sub *sub;
    rpc_client *rpc[NODECFG_MAX_MEMBERS];
    uint32_t ngroups;
    uint32_t leader[NW_MAX_GROUPS]; /* node id per group, 0 unknown */
    uint32_t rr;                    /* round-robin cursor */
    evsub *events;                  /* ordering and gap repair of the nodes' streams */
    clink *tls;                     /* the links' TLS (NULL: cluster.plaintext) */
    peers *peers;                   /* which nodes answer; no majority = no quorum */
    uint64_t inflight;              /* bytes of writes forwarded, not answered yet */
    uint64_t busy;                  /* writes refused for gateway.forward_bytes */
    uint64_t forwarded;             /* client frames forwarded to the nodes */
    uint64_t attempts;              /* requests sent to a node (retries included) */
    obs *obs;                       /* /metrics, /healthz, /readyz (NULL: off) */
    api *api;                       /* the open API on the same port (NULL: off) */
    drain drain;                    /* SIGTERM: /readyz 503 for gateway.drain_ms, then stop */
    offrep *off;                    /* offline reports of what the sessions were pushed */
    uint64_t seen[NW_MAX_GROUPS];   /* per group: the raft index of the newest event
                                       handed to the sessions (what a HELLO or SYNC
                                       asks the serving node's replicas to reach) */
} front;

typedef struct freq {
    front *fr;
    conn *c;             /* requester (ref held), or NULL for an open API call */
    api_done_fn done;    /* open API call: its answer (c NULL) */
    void *done_arg;
    herald_buf req;      /* encoded nw_request */
    uint32_t group;
    uint32_t key;        /* rpc lane key: a conversation's requests keep their order */
    uint64_t rid;
    uint32_t ftype;
    bool repeatable;     /* harmless to run twice */
    bool read_only;      /* changes nothing wherever it runs */
    bool maybe_ran;      /* a write reached a node and got no answer: it may have run */
    uint32_t target;     /* member index tried last */
    ev_tstamp deadline;
    ev_timer pause;
} freq;

/* The rpc lane key of a conversation request (its slot + 1; 0: not about
 * one conversation): one session's pipelined SENDs to a conversation reach
 * its leader, and so its raft log, in the order sent. */
static uint32_t conv_key(const herald_frame *f, const char *tenant, uint32_t group)
{
    if (!tenant[0] || !f->conv.len || group == 0)
        return 0;
    return herald_slot(herald_str_z(tenant), f->conv) + 1;
}

static int member_index(const front *fr, uint32_t id)
{
    for (uint32_t i = 0; i < fr->cfg->n_members; i++)
        if (fr->cfg->member[i].id == id)
            return (int)i;
    return -1;
}

/* An open API call's requester is there until it is answered. */
static bool freq_open(const freq *q)
{
    return q->c ? conn_open(q->c) : q->done != NULL;
}

static void freq_free(freq *q)
{
    if (q->c && q->ftype == HERALD_FT_HELLO && conn_held(q->c))
        conn_hold_end(q->c, false); /* no answer: not a session */
    ev_timer_stop(q->fr->loop, &q->pause);
    if (!q->read_only)
        q->fr->inflight -= q->req.len;
    if (q->c)
        conn_unref(q->c);
    else if (q->done)
        q->done(q->done_arg, HERALD_ESHUTDOWN, "the gateway is shutting down", NULL, 0);
    herald_buf_free(&q->req);
    free(q);
}

static void freq_fail(freq *q, int code, const char *why)
{
    if (!q->c && q->done) {
        q->done(q->done_arg, code, why, NULL, 0);
        q->done = NULL;
    } else if (q->c && conn_open(q->c)) {
        conn_send_error(q->c, code, why, q->rid);
    }
    freq_free(q);
}

static void freq_send(freq *q);

/* The node tried last is no leader this request can use: forget the group's
 * leader and try the next node. */
static void forget_leader(freq *q)
{
    q->fr->leader[q->group] = 0;
    q->fr->rr = q->target + 1;
}

static void freq_pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    freq_send(w->data);
}

/* Tries again after a pause (another node, or the same once it knows a
 * leader), or gives up at the deadline. */
static void freq_later(freq *q, const char *why)
{
    if (!peers_quorum(q->fr->peers)) {
        /* Retrying cannot help until nodes come back: say so now — and
         * "not applied" only when no try can have run. */
        char text[200];
        uint32_t n = q->fr->cfg->n_members;
        snprintf(text, sizeof text,
                 "no quorum: %u of %u nodes reachable, a majority (%u) is needed; %s",
                 peers_reachable(q->fr->peers), n, n / 2 + 1,
                 q->maybe_ran ? "the outcome is unknown (retry with the same cmid)"
                              : "not applied, retry later");
        freq_fail(q, HERALD_EUNAVAILABLE, text);
        return;
    }
    if (ev_now(q->fr->loop) >= q->deadline) {
        char text[200];
        snprintf(text, sizeof text, "%s; %s", why,
                 q->maybe_ran ? "the outcome is unknown (retry with the same cmid)"
                              : "not applied");
        freq_fail(q, HERALD_EUNAVAILABLE, text);
        return;
    }
    ev_timer_set(&q->pause, FRONT_PAUSE_S, 0.0);
    ev_timer_start(q->fr->loop, &q->pause);
}

static void learn_leaders(front *fr, const nw_reply *r)
{
    for (uint32_t i = 0; i < r->n_leaders && i < fr->ngroups; i++)
        if (r->leaders[i])
            fr->leader[i] = r->leaders[i];
}

/* An open API call's answer: the node's frames, in one buffer. */
static void api_reply(freq *q, const nw_reply *r)
{
    herald_buf b = {0};
    int rc = 0;
    for (uint32_t i = 0; i < r->n_frames && rc == 0; i++)
        rc = herald_buf_append(&b, r->frames[i].ptr, r->frames[i].len);
    if (rc)
        q->done(q->done_arg, HERALD_ENOMEM, NULL, NULL, 0);
    else
        q->done(q->done_arg, 0, NULL, b.data, b.len);
    q->done = NULL;
    herald_buf_free(&b);
}

/* The node's answer: its frames go to the client as they are. */
static void deliver_reply(freq *q, const nw_reply *r)
{
    conn *c = q->c;
    session *s;

    if (!c) {
        api_reply(q, r);
        return;
    }
    s = conn_session(c);
    if (r->authed && !s->authed && r->tenant.len <= TOKEN_ID_MAX &&
        r->user.len <= TOKEN_ID_MAX) {
        /* HELLO accepted by the node: this connection is now that session.
         * It is in presence already when the token's claim was this user. */
        bool same = conn_held(c) && herald_str_eq(r->tenant, s->tenant) &&
                    herald_str_eq(r->user, s->user);
        if (!same) {
            conn_hold_end(c, false);
            memcpy(s->tenant, r->tenant.ptr, r->tenant.len);
            s->tenant[r->tenant.len] = '\0';
            memcpy(s->user, r->user.ptr, r->user.len);
            s->user[r->user.len] = '\0';
        }
        s->admin = r->admin;
        s->dnd_until = r->dnd_until;
        if (conn_start(c) != 0) {
            conn_fail(c, HERALD_ENOMEM, "out of memory");
            return;
        }
    }
    for (uint32_t i = 0; i < r->n_frames; i++)
        if (conn_send_raw(c, r->frames[i].ptr, r->frames[i].len) != 0)
            return;
    /* After the WELCOME: what was pushed meanwhile (the client drops what
     * its position already covers). */
    conn_hold_end(c, s->authed);
    if (r->close)
        conn_close_after_flush(c);
}

static void freq_done(void *arg, int status, const uint8_t *p, size_t len)
{
    freq *q = arg;
    front *fr = q->fr;
    nw_reply r;

    if (!freq_open(q)) {
        freq_free(q); /* the client left */
        return;
    }
    if (status == HERALD_ESHUTDOWN) {
        freq_fail(q, HERALD_ESHUTDOWN, "the gateway is shutting down");
        return;
    }
    if (status) {
        /* Not sent, or no answer: that node is no leader we can use now. */
        peers_failed(fr->peers, q->target);
        forget_leader(q);
        if (status == HERALD_ETIMEOUT && !q->read_only)
            q->maybe_ran = true; /* sent; it may run there yet */
        if (status == HERALD_ETIMEOUT && !q->repeatable) {
            freq_fail(q, HERALD_EUNAVAILABLE,
                      "the cluster did not answer in time; the outcome is unknown");
            return;
        }
        freq_later(q, "no node of the cluster answered");
        return;
    }
    peers_answered(fr->peers, q->target);
    if (nw_reply_decode(p, len, &r) != 0) {
        freq_fail(q, HERALD_EINTERNAL, "malformed reply from a node");
        return;
    }
    learn_leaders(fr, &r);
    switch (r.status) {
    case 0:
        deliver_reply(q, &r);
        freq_free(q);
        break;
    case HERALD_ENOT_LEADER:
        if (r.hint && r.hint != fr->cfg->member[q->target].id && member_index(fr, r.hint) >= 0) {
            fr->leader[q->group] = r.hint;
            freq_send(q); /* straight to the hinted leader */
        } else {
            forget_leader(q);
            freq_later(q, "no leader for this shard group");
        }
        break;
    case HERALD_EUNAVAILABLE:
    case HERALD_ESHUTDOWN:
        /* Not run there (no leader yet, or that node is stopping). */
        forget_leader(q);
        freq_later(q, "no leader for this shard group");
        break;
    default:
        freq_fail(q, r.status, NULL);
        break;
    }
    nw_reply_release(&r);
}

static void freq_send(freq *q)
{
    front *fr = q->fr;
    int idx = fr->leader[q->group] ? member_index(fr, fr->leader[q->group]) : -1;
    int rc;

    if (!freq_open(q)) {
        freq_free(q);
        return;
    }
    if (idx >= 0 && !peers_up(fr->peers, (uint32_t)idx))
        idx = -1; /* a cached leader that stopped answering */
    /* No leader known: try the members in turn, reachable ones first; a
     * conversation's requests all start at the same one (its key), so
     * their NOT_LEADER answers, in order on one lane, re-send them in
     * order. */
    for (uint32_t k = 0, first = q->key ? q->key : fr->rr++; idx < 0 && k < fr->cfg->n_members;
         k++) {
        uint32_t i = (first + k) % fr->cfg->n_members;
        if (peers_up(fr->peers, i) || k + 1 == fr->cfg->n_members)
            idx = (int)i;
    }
    q->target = (uint32_t)idx;
    fr->attempts++;
    rc = rpc_send_keyed(fr->rpc[idx], q->key, q->req.data, q->req.len,
                        fr->cfg->request_timeout_ms, freq_done, q);
    if (rc)
        freq_fail(q, rc, NULL);
}

/* Frames whose repetition after an unknown outcome changes nothing. */
static bool repeatable(const herald_frame *f)
{
    switch (f->type) {
    case HERALD_FT_SEND:
        return f->cmid.len > 0; /* the store answers a repeated cmid */
    case HERALD_FT_HELLO:
    case HERALD_FT_SYNC:
    case HERALD_FT_HISTORY:
    case HERALD_FT_READ:
    case HERALD_FT_RECEIPTS:
    case HERALD_FT_DND:
    case HERALD_FT_STATUS:
        return true;
    case HERALD_FT_CONV:
        return herald_str_eq(f->op, "info");
    default:
        return false;
    }
}

/* Frames that change nothing (their outcome is never "unknown"). */
static bool read_only(const herald_frame *f)
{
    switch (f->type) {
    case HERALD_FT_HELLO:
    case HERALD_FT_SYNC:
    case HERALD_FT_HISTORY:
    case HERALD_FT_RECEIPTS:
    case HERALD_FT_STATUS:
    case HERALD_FT_PING:
        return true;
    case HERALD_FT_CONV:
        return herald_str_eq(f->op, "info");
    case HERALD_FT_DIR:
        return herald_str_eq(f->op, "user.show") || herald_str_eq(f->op, "dept.show");
    case HERALD_FT_TAG:
    case HERALD_FT_CONTACT:
        return herald_str_eq(f->op, "list");
    case HERALD_FT_MASS:
    case HERALD_FT_URGENT:
    case HERALD_FT_DND:
        return herald_str_eq(f->op, "status");
    default:
        return false;
    }
}

static void freq_start(freq *q, const herald_frame *f, const char *tenant);

static void fwd(void *ctx, conn *c, herald_frame *f, const uint8_t *payload, size_t len)
{
    front *fr = ctx;
    const session *s = conn_session(c);
    freq *q = calloc(1, sizeof *q);
    nw_request r = {.kind = NW_CLIENT, .from = fr->cfg->id, .gw = fr->cfg->id,
                    .frame = {.ptr = (const char *)payload, .len = (uint32_t)len}};

    if (!q) {
        conn_send_error(c, HERALD_ENOMEM, NULL, f->rid);
        return;
    }
    if (s->authed) {
        r.tenant = herald_str_z(s->tenant);
        r.user = herald_str_z(s->user);
        r.admin = s->admin;
        r.dnd_until = s->dnd_until;
        r.token = herald_str_z(conn_token(c));
    } else if (f->type == HERALD_FT_HELLO && f->token.len && f->token.len <= TOKEN_TEXT_MAX) {
        /* Kept for the session this HELLO may start. */
        if (conn_keep_token(c, f->token.ptr, f->token.len) != 0) {
            free(q);
            conn_send_error(c, HERALD_ENOMEM, NULL, f->rid);
            return;
        }
    }
    if (f->type == HERALD_FT_HELLO || f->type == HERALD_FT_SYNC) {
        /* What the sessions were pushed so far must be in what it reads. */
        r.reach = fr->seen;
        r.n_reach = fr->ngroups < NW_MAX_GROUPS ? fr->ngroups : NW_MAX_GROUPS;
    }
    if (f->type == HERALD_FT_HELLO && !s->authed && !conn_held(c)) {
        /* Pushes from now on are kept for the session this HELLO may start
         * (everything earlier is within the reach above). */
        token_claims cl;
        if (token_peek(f->token.ptr, f->token.len, &cl) == 0 &&
            conn_hold_begin(c, cl.tenant, cl.user) != 0) {
            free(q);
            conn_send_error(c, HERALD_ENOMEM, NULL, f->rid);
            return;
        }
    }
    if (nw_request_encode(&r, &q->req) != 0) {
        conn_hold_end(c, false);
        free(q);
        conn_send_error(c, HERALD_ENOMEM, NULL, f->rid);
        return;
    }
    q->read_only = read_only(f);
    if (!q->read_only) {
        /* Backpressure: the nodes answer what is in flight within the
         * request timeout only while it stays bounded; beyond the budget a
         * write is refused before it goes anywhere. */
        if (fr->inflight && fr->inflight + q->req.len > fr->cfg->forward_bytes) {
            if (fr->busy++ % 1000 == 0)
                log_warn("front.busy", "%llu bytes of writes in flight (gateway.forward_bytes "
                         "%u): refusing with BUSY (%llu so far)",
                         (unsigned long long)fr->inflight, fr->cfg->forward_bytes,
                         (unsigned long long)fr->busy);
            herald_buf_free(&q->req);
            free(q);
            conn_send_error(c, HERALD_EBUSY,
                            "not applied: the gateway has too much in flight to the cluster; "
                            "retry later",
                            f->rid);
            return;
        }
        fr->inflight += q->req.len;
    }
    q->fr = fr;
    q->c = c;
    conn_ref(c);
    freq_start(q, f, s->authed ? s->tenant : "");
}

/* The common part of a forwarded request, once encoded and admitted. */
static void freq_start(freq *q, const herald_frame *f, const char *tenant)
{
    front *fr = q->fr;

    fr->forwarded++;
    q->rid = f->rid;
    q->ftype = f->type;
    q->repeatable = repeatable(f);
    q->group = route_frame_group(f, tenant, fr->ngroups, NULL);
    q->key = conv_key(f, tenant, q->group);
    q->deadline = ev_now(fr->loop) + fr->cfg->retry_ms / 1000.0;
    if (f->type == HERALD_FT_HELLO) {
        /* Answered before the connection's HELLO deadline closes it. */
        ev_tstamp hello = ev_now(fr->loop) + fr->cfg->gw.hello_ms / 1000.0 - 0.5;
        if (hello < q->deadline)
            q->deadline = hello;
    }
    ev_timer_init(&q->pause, freq_pause_cb, FRONT_PAUSE_S, 0.0);
    q->pause.data = q;
    freq_send(q);
}

/* The open API's backend (api.h): one call forwarded like a client frame,
 * as the token's holder (the node verifies the token; api.c checked its
 * expiry claim, which the node's MAC check vouches for). */
static void front_api(void *ctx, const char *token, herald_frame *f, const uint8_t *payload,
                      size_t len, api_done_fn done, void *arg)
{
    front *fr = ctx;
    freq *q = calloc(1, sizeof *q);
    token_claims cl = {0};
    nw_request r = {.kind = NW_CLIENT, .from = fr->cfg->id, .gw = fr->cfg->id,
                    .frame = {.ptr = (const char *)payload, .len = (uint32_t)len}};

    if (!q) {
        done(arg, HERALD_ENOMEM, NULL, NULL, 0);
        return;
    }
    if (token) {
        if (token_peek(token, strlen(token), &cl) != 0) {
            free(q);
            done(arg, HERALD_EUNAUTHORIZED, "invalid token", NULL, 0);
            return;
        }
        r.tenant = herald_str_z(cl.tenant);
        r.user = herald_str_z(cl.user);
        r.admin = cl.admin;
        r.token = herald_str_z(token);
    }
    if (nw_request_encode(&r, &q->req) != 0) {
        herald_buf_free(&q->req);
        free(q);
        done(arg, HERALD_ENOMEM, NULL, NULL, 0);
        return;
    }
    q->read_only = read_only(f);
    if (!q->read_only) {
        if (fr->inflight && fr->inflight + q->req.len > fr->cfg->forward_bytes) {
            fr->busy++;
            herald_buf_free(&q->req);
            free(q);
            done(arg, HERALD_EBUSY,
                 "not applied: the gateway has too much in flight to the cluster; retry later",
                 NULL, 0);
            return;
        }
        fr->inflight += q->req.len;
    }
    q->fr = fr;
    q->done = done;
    q->done_arg = arg;
    freq_start(q, f, cl.tenant);
}

/* ------------------------------------------------------------------------
 * Offline reports: to the leader of their group, on the request path (a
 * NOT_LEADER answer re-sends to the hint, no node answering retries
 * elsewhere until gateway.retry_ms); repeating one is harmless (the leader
 * takes one report per gateway and message). */

typedef struct foff {
    front *fr;
    uint32_t n;          /* messages in it */
} foff;

static void offline_done(void *arg, int status, const char *why, const uint8_t *p, size_t len)
{
    foff *x = arg;
    (void)p;
    (void)len;
    if (status) {
        offrep_lost(x->fr->off, x->n);
        log_debug("front.offline", "offline reports of %u messages not taken: %s", x->n,
                  why ? why : herald_strerror(status));
    }
    free(x);
}

static int offline_send(void *ctx, const offrep_batch *b)
{
    front *fr = ctx;
    nw_request r = {.kind = NW_OFFLINE, .from = fr->cfg->id, .gw = fr->cfg->id,
                    .group = b->group, .tenant = herald_str_z(b->tenant),
                    .n_oconvs = b->n, .oconvs = (herald_str *)b->convs, .n_oseqs = b->n,
                    .oseqs = (uint64_t *)b->seqs, .n_ocounts = b->n,
                    .ocounts = (uint64_t *)b->counts, .n_users = b->n_users,
                    .users = (herald_str *)b->users};
    freq *q = calloc(1, sizeof *q);
    foff *x = calloc(1, sizeof *x);

    if (!q || !x || b->group >= fr->ngroups || nw_request_encode(&r, &q->req) != 0) {
        if (q)
            herald_buf_free(&q->req);
        free(q);
        free(x);
        return HERALD_ENOMEM;
    }
    if (fr->inflight && fr->inflight + q->req.len > fr->cfg->forward_bytes) {
        /* The clients' writes come first. */
        herald_buf_free(&q->req);
        free(q);
        free(x);
        return HERALD_EBUSY;
    }
    fr->inflight += q->req.len;
    *x = (foff){.fr = fr, .n = b->n};
    *q = (freq){.fr = fr, .done = offline_done, .done_arg = x, .req = q->req,
                .group = b->group, .ftype = 0, .repeatable = true,
                .deadline = ev_now(fr->loop) + fr->cfg->retry_ms / 1000.0};
    ev_timer_init(&q->pause, freq_pause_cb, FRONT_PAUSE_S, 0.0);
    q->pause.data = q;
    freq_send(q);
    return 0;
}

/* ------------------------------------------------------------------------
 * Events from the nodes. */

/* An event, in order: to this gateway's sessions of its users. */
static void on_event(void *arg, const nw_event *e)
{
    front *fr = arg;
    char tenant[TOKEN_ID_MAX + 1];
    char **users = NULL;

    if (e->kind == NW_EV_FRAME && e->group < NW_MAX_GROUPS && e->index > fr->seen[e->group])
        fr->seen[e->group] = e->index;
    if (e->tenant.len > TOKEN_ID_MAX || e->n_users == 0)
        return;
    memcpy(tenant, e->tenant.ptr, e->tenant.len);
    tenant[e->tenant.len] = '\0';
    users = calloc(e->n_users, sizeof *users);
    if (!users)
        return;
    for (uint32_t i = 0; i < e->n_users; i++) {
        if (e->users[i].len > TOKEN_ID_MAX || !(users[i] = malloc(e->users[i].len + 1)))
            goto out;
        memcpy(users[i], e->users[i].ptr, e->users[i].len);
        users[i][e->users[i].len] = '\0';
    }
    if (e->kind == NW_EV_DND) {
        tier_dnd(fr->t, tenant, users[0], e->until);
    } else if (e->kind == NW_EV_FRAME && e->frame.len > HERALD_FRAME_HEADER) {
        herald_limits lim = {.max_frame = fr->cfg->gw.max_frame};
        herald_frame f;
        if (herald_frame_decode((const uint8_t *)e->frame.ptr + HERALD_FRAME_HEADER,
                                e->frame.len - HERALD_FRAME_HEADER, &lim, &f) == 0) {
            tier_deliver(fr->t, tenant, (const char *const *)users,
                       e->n_prevs == e->n_users ? e->prevs : NULL, e->n_users, &f);
            offrep_note(fr->off, tenant, (const char *const *)users, e->n_users, &f);
            herald_frame_release(&f);
        }
    }
out:
    for (uint32_t i = 0; i < e->n_users; i++)
        free(users[i]);
    free(users);
}

/* One PUB message: a batch of events from one node. */
static void on_batch(void *arg, const uint8_t *p, size_t len)
{
    front *fr = arg;
    evsub_batch(fr->events, p, len);
}

/* Gap repair: pull the missed events from the node that published them. */
typedef struct frepl {
    front *fr;
    uint32_t node;
    uint64_t epoch, from, to;
} frepl;

static void replay_done(void *arg, int status, const uint8_t *p, size_t len)
{
    frepl *x = arg;
    nw_reply r;
    if (status == 0 && nw_reply_decode(p, len, &r) == 0) {
        evsub_replayed(x->fr->events, x->node, x->epoch, x->from, x->to, r.status, r.frames,
                       r.n_frames);
        nw_reply_release(&r);
    } else if (status != HERALD_ESHUTDOWN) {
        evsub_replayed(x->fr->events, x->node, x->epoch, x->from, x->to,
                       status ? status : HERALD_EPROTOCOL, NULL, 0);
    }
    free(x);
}

static int fetch_events(void *arg, uint32_t node, uint64_t epoch, uint64_t from, uint64_t to)
{
    front *fr = arg;
    int mi = member_index(fr, node);
    nw_request q = {.kind = NW_REPLAY, .from = fr->cfg->id, .gw = fr->cfg->id, .epoch = epoch,
                    .seq_from = from, .seq_to = to};
    herald_buf b = {0};
    frepl *x;
    int rc;

    if (mi < 0 || !(x = calloc(1, sizeof *x)))
        return HERALD_EINVAL;
    *x = (frepl){.fr = fr, .node = node, .epoch = epoch, .from = from, .to = to};
    rc = nw_request_encode(&q, &b);
    if (rc == 0)
        rc = rpc_send(fr->rpc[mi], b.data, b.len, fr->cfg->request_timeout_ms, replay_done, x);
    herald_buf_free(&b);
    if (rc)
        free(x);
    return rc;
}

/* GET /metrics: the session tier's families and the forwarder's. */
static void front_metrics(void *ctx, prom_w *w)
{
    front *fr = ctx;
    evsub_stats es;
    char id[16];

    tier_metrics(fr->t, w);
    offrep_metrics(fr->off, w);
    if (fr->api)
        api_metrics(fr->api, w);
    prom_one(w, "herald_gateway_requests_forwarded_total", "counter", fr->forwarded,
             "Client frames forwarded to the nodes");
    prom_one(w, "herald_gateway_forward_attempts_total", "counter", fr->attempts,
             "Requests sent to a node, retries at another node included");
    prom_one(w, "herald_gateway_forward_busy_total", "counter", fr->busy,
             "Writes refused with BUSY at gateway.forward_bytes");
    prom_one(w, "herald_gateway_forward_inflight_bytes", "gauge", fr->inflight,
             "Bytes of writes forwarded and not answered yet");
    prom_family(w, "herald_gateway_node_up", "gauge",
                "1 when the node answered within the last 5 s and its last request did not fail");
    for (uint32_t i = 0; i < fr->cfg->n_members; i++) {
        prom_label l = {"node", id};
        snprintf(id, sizeof id, "%u", fr->cfg->member[i].id);
        prom_u64(w, "herald_gateway_node_up", &l, 1, peers_up(fr->peers, i) ? 1 : 0);
    }
    prom_one(w, "herald_gateway_nodes_reachable", "gauge", peers_fresh(fr->peers),
             "Nodes that answered within the last 5 s");
    prom_family(w, "herald_gateway_group_leader", "gauge",
                "The node this gateway sends a group's requests to (0: unknown)");
    for (uint32_t g = 0; g < fr->ngroups && g < NW_MAX_GROUPS; g++) {
        prom_label l = {"group", id};
        snprintf(id, sizeof id, "%u", g);
        prom_u64(w, "herald_gateway_group_leader", &l, 1, fr->leader[g]);
    }
    evsub_stats_get(fr->events, &es);
    prom_one(w, "herald_gateway_stream_events_total", "counter", es.delivered,
             "Events from the nodes' streams handed on in order");
    prom_one(w, "herald_gateway_stream_gaps_total", "counter", es.gaps,
             "Holes detected in the nodes' event streams");
    prom_one(w, "herald_gateway_stream_repaired_total", "counter", es.repaired,
             "Events recovered by replay after a gap");
    prom_one(w, "herald_gateway_stream_lost_total", "counter", es.lost,
             "Events given up after a gap (clients get them with SYNC)");
    prom_one(w, "herald_gateway_stream_duplicates_total", "counter", es.dups,
             "Duplicate events dropped");
    prom_one(w, "herald_gateway_stream_bad_total", "counter", es.bad,
             "Undecodable event batches or events");
}

static bool front_route(void *ctx, http_exchange *x, const http_req *rq, const uint8_t *body,
                        size_t n)
{
    return api_route(ctx, x, rq, body, n);
}

/* GET /readyz: a majority of the nodes answered lately. */
static bool front_ready(void *ctx, char *why, size_t whylen)
{
    front *fr = ctx;
    uint32_t n = peers_count(fr->peers), up = peers_fresh(fr->peers);
    if (drain_active(&fr->drain)) {
        snprintf(why, whylen, "draining: the gateway is stopping");
        return false;
    }
    if (up >= n / 2 + 1)
        return true;
    snprintf(why, whylen, "no majority of nodes reachable (%u of %u answered within 5 s)", up, n);
    return false;
}


int front_run(gateway_config *cfg)
{
    front fr = {.cfg = cfg, .loop = EV_DEFAULT, .ngroups = cfg->groups + 1};
    tier_handler h = {.ctx = &fr, .frame = fwd};
    gw_config gc;
    const char *urls[NODECFG_MAX_MEMBERS], *peer_names[NODECFG_MAX_MEMBERS];
    char peer_buf[NODECFG_MAX_MEMBERS][32];
    char who[32];
    int rc = 1;

    gwlimits_config(&cfg->gw, &gc);
    if (!cfg->plaintext) {
        char err[512];
        if (clink_create(cfg->tls_ca, cfg->tls_cert, &fr.tls, err, sizeof err) != 0) {
            fprintf(stderr, "heraldd: cluster.tls_ca / cluster.tls_cert: %s\n", err);
            goto out;
        }
    }
    for (uint32_t i = 0; i < cfg->n_members; i++) {
        urls[i] = cfg->member[i].pub_url;
        snprintf(peer_buf[i], sizeof peer_buf[i], "node-%u", cfg->member[i].id);
        peer_names[i] = peer_buf[i];
        if (rpc_client_create(fr.loop, cfg->member[i].req_url, FRONT_MAX_MSG, fr.tls, peer_names[i],
                              &fr.rpc[i]) != 0) {
            fprintf(stderr, "heraldd: cluster.members: cannot dial %s\n", cfg->member[i].req_url);
            goto out;
        }
    }
    if (peers_create(fr.loop, fr.rpc, cfg->n_members, cfg->request_timeout_ms, cfg->id,
                     &fr.peers) != 0)
        goto out;
    {
        evsub_config ec = {.repair_ms = cfg->events_repair_ms};
        if (evsub_create(fr.loop, &ec, on_event, fetch_events, &fr, &fr.events) != 0)
            goto out;
    }
    if (ps_sub_create(fr.loop, urls, peer_names, cfg->n_members, FRONT_MAX_MSG, cfg->events_recvbuf,
                      fr.tls, on_batch, &fr, &fr.sub) != 0) {
        fprintf(stderr, "heraldd: cluster.members: cannot subscribe to the nodes' events\n");
        goto out;
    }
    if (tier_create(&gc, fr.loop, &h, &fr.t) != 0) {
        fprintf(stderr, "heraldd: gateway.listen / gateway.ws_listen: cannot listen on %s%s%s\n",
                cfg->gw.listen, cfg->gw.ws_listen[0] ? " / " : "", cfg->gw.ws_listen);
        goto out;
    }
    if (offrep_create(fr.loop, fr.t, gc.offline_batch_ms, offline_send, &fr, &fr.off) != 0)
        goto out;
    if (cfg->gw.http_tls && !cfg->gw.tls_cert[0]) {
        fprintf(stderr, "heraldd: gateway.http_tls needs gateway.tls_cert\n");
        goto out;
    }
    if (cfg->gw.http_listen[0]) {
        obs_source os = {.ctx = &fr, .process = "gateway", .metrics = front_metrics,
                         .ready = front_ready, .route = front_route};
        api_config ac = {.rate = cfg->gw.api_rate, .burst = cfg->gw.api_burst,
                         .console_dir = cfg->gw.console_dir, .max_frame = gc.max_frame};
        api_backend ab = {.ctx = &fr, .request = front_api};
        os.tls_cert = cfg->gw.http_tls ? cfg->gw.tls_cert : NULL;
        if (api_create(&ac, fr.loop, &ab, &fr.api) != 0) {
            fprintf(stderr, "heraldd: gateway.console_dir: %s is not a directory\n",
                    cfg->gw.console_dir);
            goto out;
        }
        os.route_ctx = fr.api;
        if (obs_create(cfg->gw.http_listen, fr.loop, &os, &fr.obs) != 0) {
            fprintf(stderr, "heraldd: gateway.http_listen: cannot listen on %s\n",
                    cfg->gw.http_listen);
            goto out;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(who, sizeof who, "gateway %u", cfg->id);
    drain_start(&fr.drain, fr.loop, cfg->gw.drain_ms, who);
    log_info("front.ready", "gateway %u ready on %s (port %u), WebSocket port %u, HTTP port %u, "
             "%u nodes, %u groups", cfg->id, cfg->gw.listen, tier_port(fr.t),
             tier_listener_port(fr.t, "ws"), fr.obs ? obs_port(fr.obs) : 0, cfg->n_members,
             fr.ngroups);
    ev_run(fr.loop, 0);
    drain_stop(&fr.drain);
    rc = 0;
out:
    obs_destroy(fr.obs);
    api_destroy(fr.api);
    /* Requests in flight finish with SHUTDOWN, then the sessions close. */
    for (uint32_t i = 0; i < cfg->n_members; i++)
        rpc_client_destroy(fr.rpc[i]);
    peers_destroy(fr.peers); /* after the clients: their probes have finished */
    offrep_destroy(fr.off);
    ps_sub_destroy(fr.sub);
    tier_destroy(fr.t);
    if (fr.events) {
        evsub_stats es;
        evsub_stats_get(fr.events, &es);
        log_info("front.stop",
                 "gateway %u stopped: events %llu delivered, %llu gaps, %llu repaired, %llu lost",
                 cfg->id, (unsigned long long)es.delivered, (unsigned long long)es.gaps,
                 (unsigned long long)es.repaired, (unsigned long long)es.lost);
    }
    evsub_destroy(fr.events);
    clink_destroy(fr.tls);
    return rc;
}
