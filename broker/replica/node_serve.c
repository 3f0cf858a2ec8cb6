/* node_serve.c — requests to `heraldd node` from gateways (client frames,
 * run by the request service) and from nodes (forwarded proposals, status,
 * event replays). See node.c. */
#include "node_int.h"

/* ------------------------------------------------------------------------
 * Requests from gateways and nodes. */

/* A client frame forwarded by a gateway, run by the request service: the
 * reply sink collects the frames it answers with, and the session as it is
 * at the end (HELLO starts it, DND changes it) goes back with them. */
typedef struct nreq {
    node *n;
    rpc_call *call;
    session sess;               /* the gateway's session, verified here */
    herald_buf out;             /* the reply frames, encoded back to back */
    uint32_t off[NW_MAX_FRAMES + 1]; /* where each starts in out */
    uint32_t nf;
    bool close;                 /* the gateway closes the client after them */
    char origin[32];            /* "gateway N", for logs */
} nreq;

/* Encodes r and answers call with it (dropped when it cannot be encoded:
 * the caller's deadline covers that). */
static void send_reply(rpc_call *call, const nw_reply *r)
{
    herald_buf b = {0};
    if (nw_reply_encode(r, &b) == 0)
        rpc_reply(call, b.data, b.len);
    else
        rpc_drop(call);
    herald_buf_free(&b);
}

static void reply_status(node *n, rpc_call *call, int status, uint32_t hint)
{
    nw_reply r = {.status = status, .hint = hint};
    fill_leaders(n, &r);
    send_reply(call, &r);
}

static int nreq_send(void *ctx, const herald_frame *f)
{
    nreq *q = ctx;
    size_t at = q->out.len;
    if (q->close || q->nf >= NW_MAX_FRAMES)
        return HERALD_ECLOSED;
    if (herald_frame_encode(f, &q->out) != 0)
        return HERALD_ENOMEM;
    q->off[q->nf++] = (uint32_t)at;
    return 0;
}

static void nreq_fail(void *ctx, int code, const char *text)
{
    nreq *q = ctx;
    herald_frame f = herald_frame_error(code, text, 0);
    nreq_send(q, &f);
    q->close = true;
}

/* The request is over: its frames and session go back to the gateway. */
static void nreq_done(void *ctx)
{
    nreq *q = ctx;
    herald_str *fv = calloc(q->nf + 1, sizeof *fv);
    nw_reply r = {.frames = fv, .n_frames = fv ? q->nf : 0, .close = q->close,
                  .status = fv ? 0 : HERALD_ENOMEM};

    q->off[q->nf] = (uint32_t)q->out.len;
    for (uint32_t i = 0; fv && i < q->nf; i++)
        fv[i] = (herald_str){.ptr = (const char *)q->out.data + q->off[i],
                             .len = q->off[i + 1] - q->off[i]};
    if (q->sess.authed) {
        r.authed = true;
        r.tenant = herald_str_z(q->sess.tenant);
        r.user = herald_str_z(q->sess.user);
        r.admin = q->sess.admin;
        r.dnd_until = q->sess.dnd_until;
    }
    fill_leaders(q->n, &r);
    send_reply(q->call, &r);
    free(fv);
    herald_buf_free(&q->out);
    free(q);
}

/* ------------------------------------------------------------------------
 * Reach: a HELLO or SYNC names, per group, the newest entry whose event the
 * gateway has pushed. The position it reads (WELCOME) or the answer it
 * gives (SYNC_RESULT) comes from this node's replicas, which may trail the
 * group's leader: the frame waits until they applied that far, at most
 * node.reach_wait_ms, then the client is told to retry. */

struct nreach {
    node *n;
    nreach *next;           /* n->reach_head */
    rpc_call *call;         /* answered when it runs or gives up */
    herald_buf req;         /* the request (decoded again when it runs) */
    ev_timer timer;         /* the wait's bound */
    ev_tstamp since;        /* parked at */
    uint32_t n_reach;       /* the request's reach, kept so each re-check is a */
    uint64_t reach[NW_MAX_GROUPS]; /* comparison, not a decode */
};

static void serve_client(node *n, rpc_call *call, const nw_request *q, const uint8_t *p,
                         size_t len);

/* The first group whose replica here has not applied q->reach yet (+1), or
 * 0 when every one has; *applied / *want describe it. */
static uint32_t reach_behind(node *n, const uint64_t *reach, uint32_t n_reach,
                             uint64_t *applied, uint64_t *want)
{
    for (uint32_t g = 0; g < n_reach && g < n->ngroups; g++) {
        uint64_t a = store_applied(n->groups[g].st);
        if (a < reach[g]) {
            *applied = a;
            *want = reach[g];
            return g + 1;
        }
    }
    return 0;
}

static void reach_unlink(nreach *w)
{
    nreach **pp = &w->n->reach_head;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    ev_timer_stop(w->n->loop, &w->timer);
}

static void reach_free(nreach *w)
{
    herald_buf_free(&w->req);
    free(w);
}

/* The bound passed: the client gets UNAVAILABLE for its frame (its
 * connection stays; libherald retries with backoff). */
static void reach_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    nreach *w = t->data;
    node *n = w->n;
    herald_limits lim = {.max_frame = n->cfg->max_frame};
    nw_request q;
    herald_frame f;
    uint64_t applied = 0, want = 0;
    uint32_t g = 0;
    (void)loop;
    (void)revents;

    reach_unlink(w);
    n->reach_timeouts++;
    if (nw_request_decode(w->req.data, w->req.len, &q) != 0) {
        reply_status(n, w->call, HERALD_EINTERNAL, 0);
        reach_free(w);
        return;
    }
    g = reach_behind(n, w->reach, w->n_reach, &applied, &want);
    if (g == 0) { /* caught up at the last moment */
        serve_client(n, w->call, &q, w->req.data, w->req.len);
    } else if (herald_frame_decode((const uint8_t *)q.frame.ptr, q.frame.len, &lim, &f) == 0) {
        char text[160];
        herald_frame e;
        herald_buf fb = {0};
        herald_str fs;
        nw_reply r = {0};
        snprintf(text, sizeof text,
                 "this node's replica of group %u is behind what was pushed (applied %llu of "
                 "%llu); retry",
                 g - 1, (unsigned long long)applied, (unsigned long long)want);
        log_warn("node.reach", "%s for %s of %.*s/%.*s after %u ms (%llu so far)",
                 text, herald_frame_type_name(f.type), (int)q.tenant.len,
                 q.tenant.ptr ? q.tenant.ptr : "", (int)q.user.len, q.user.ptr ? q.user.ptr : "",
                 n->cfg->reach_wait_ms, (unsigned long long)n->reach_timeouts);
        e = herald_frame_error(HERALD_EUNAVAILABLE, text, f.rid);
        if (herald_frame_encode(&e, &fb) == 0) {
            fs = (herald_str){.ptr = (const char *)fb.data, .len = (uint32_t)fb.len};
            r.frames = &fs;
            r.n_frames = 1;
        } else {
            r.status = HERALD_ENOMEM;
        }
        fill_leaders(n, &r);
        send_reply(w->call, &r);
        herald_buf_free(&fb);
        herald_frame_release(&f);
    } else {
        reply_status(n, w->call, HERALD_EPROTOCOL, 0);
    }
    nw_request_release(&q);
    reach_free(w);
}

/* Parks call until the replicas reach what q names (p, len: q's bytes). */
static void reach_park(node *n, rpc_call *call, const nw_request *q, const uint8_t *p,
                       size_t len)
{
    nreach *w = calloc(1, sizeof *w);
    if (!w || herald_buf_append(&w->req, p, len) != 0) {
        free(w);
        reply_status(n, call, HERALD_ENOMEM, 0);
        return;
    }
    w->n = n;
    w->call = call;
    w->since = ev_now(n->loop);
    w->n_reach = q->n_reach; /* ≤ NW_MAX_GROUPS (the decoder checks) */
    memcpy(w->reach, q->reach, q->n_reach * sizeof *w->reach);
    ev_timer_init(&w->timer, reach_timeout_cb, n->cfg->reach_wait_ms / 1000.0, 0.0);
    w->timer.data = w;
    ev_timer_start(n->loop, &w->timer);
    w->next = n->reach_head;
    n->reach_head = w;
    n->reach_waits++;
}

/* Runs every parked request whose replicas caught up. */
static void reach_kick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    node *n = t->data;
    nreach *ready = NULL, **pp = &n->reach_head;
    (void)loop;
    (void)revents;

    while (*pp) {
        nreach *w = *pp;
        uint64_t a, b;
        if (reach_behind(n, w->reach, w->n_reach, &a, &b) == 0) {
            *pp = w->next;
            ev_timer_stop(n->loop, &w->timer);
            w->next = ready;
            ready = w;
        } else {
            pp = &w->next;
        }
    }
    while (ready) { /* serving may park nothing new: every group is reached */
        nreach *w = ready;
        nw_request q;
        uint64_t waited = (uint64_t)((ev_now(n->loop) - w->since) * 1000.0);
        ready = w->next;
        n->reach_wait_ms_sum += waited;
        if (waited > n->reach_wait_ms_max)
            n->reach_wait_ms_max = waited;
        if (nw_request_decode(w->req.data, w->req.len, &q) == 0) {
            serve_client(n, w->call, &q, w->req.data, w->req.len);
            nw_request_release(&q);
        } else {
            reply_status(n, w->call, HERALD_EPROTOCOL, 0);
        }
        reach_free(w);
    }
}

void reach_applied(node *n)
{
    if (!n->reach_head || ev_is_active(&n->reach_kick))
        return;
    if (!n->reach_kick.data) {
        ev_timer_init(&n->reach_kick, reach_kick_cb, 0.0, 0.0);
        n->reach_kick.data = n;
    }
    ev_timer_set(&n->reach_kick, 0.0, 0.0);
    ev_timer_start(n->loop, &n->reach_kick);
}

void reach_stop(node *n)
{
    if (n->reach_kick.data)
        ev_timer_stop(n->loop, &n->reach_kick);
    while (n->reach_head) {
        nreach *w = n->reach_head;
        n->reach_head = w->next;
        ev_timer_stop(n->loop, &w->timer);
        reply_status(n, w->call, HERALD_ESHUTDOWN, 0);
        reach_free(w);
    }
}

static void serve_client(node *n, rpc_call *call, const nw_request *q, const uint8_t *p,
                         size_t len)
{
    herald_limits lim = {.max_frame = n->cfg->max_frame};
    herald_frame f;
    char tenant[TOKEN_ID_MAX + 1] = "", user[TOKEN_ID_MAX + 1] = "";
    uint32_t grp, lid;
    uint64_t applied, want;
    bool admin = false;
    nreq *r;
    svc_sink sink = {.send = nreq_send, .fail = nreq_fail, .done = nreq_done};

    if (herald_frame_decode((const uint8_t *)q->frame.ptr, q->frame.len, &lim, &f) != 0) {
        reply_status(n, call, HERALD_EPROTOCOL, 0);
        return;
    }
    if (q->tenant.len || q->user.len || q->token.len) {
        /* A session: who it is comes from its token, verified here with the
         * tenant's secret — the gateway's word for it is not enough. */
        token_claims cl;
        store_tenant t;
        int rc = token_peek(q->token.ptr, q->token.len, &cl);
        if (rc == 0)
            rc = store_tenant_get(n->groups[0].st, herald_str_z(cl.tenant), &t);
        if (rc == 0) /* expiry was checked at HELLO; the session outlives it */
            rc = token_verify(t.secret, q->token.ptr, q->token.len, 0, &cl);
        if (rc || !herald_str_eq(q->tenant, cl.tenant) || !herald_str_eq(q->user, cl.user)) {
            log_warn("node.auth",
                     "request from gateway %u for %.*s/%.*s without a valid token: refused",
                     q->from, (int)(q->tenant.len < 64 ? q->tenant.len : 64),
                     q->tenant.ptr ? q->tenant.ptr : "",
                     (int)(q->user.len < 64 ? q->user.len : 64), q->user.ptr ? q->user.ptr : "");
            reply_status(n, call, HERALD_EUNAUTHORIZED, 0);
            herald_frame_release(&f);
            return;
        }
        snprintf(tenant, sizeof tenant, "%s", cl.tenant);
        snprintf(user, sizeof user, "%s", cl.user);
        admin = cl.admin;
    }
    if (!n->slot_ok) {
        /* Routing needs the meta group's slot map first. */
        reply_status(n, call, HERALD_EUNAVAILABLE, 0);
        herald_frame_release(&f);
        return;
    }
    /* Reads come from the leader's replica, writes start there. */
    grp = route_frame_group(&f, tenant, n->ngroups, n->slotmap);
    if (!be_leads(n, grp)) {
        lid = leader_of(n, grp);
        reply_status(n, call, lid && lid != n->cfg->id ? HERALD_ENOT_LEADER : HERALD_EUNAVAILABLE,
                     lid);
        herald_frame_release(&f);
        return;
    }
    if (reach_behind(n, q->reach, q->n_reach, &applied, &want)) {
        herald_frame_release(&f);
        reach_park(n, call, q, p, len);
        return;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        reply_status(n, call, HERALD_ENOMEM, 0);
        herald_frame_release(&f);
        return;
    }
    r->n = n;
    r->call = call;
    if (tenant[0] && user[0]) {
        strcpy(r->sess.tenant, tenant);
        strcpy(r->sess.user, user);
        r->sess.admin = admin;
        r->sess.dnd_until = q->dnd_until;
        r->sess.authed = true;
    }
    snprintf(r->origin, sizeof r->origin, "gateway %u", q->from);
    sink.ctx = r;
    sink.origin = r->origin;
    svc_request(n->s, &r->sess, &f, &sink); /* may reply right away (nreq_done) */
    herald_frame_release(&f);
}

typedef struct nfwd {
    node *n;
    rpc_call *call;
} nfwd;

static void serve_propose_done(void *arg, int status, void *result)
{
    nfwd *x = arg;
    nw_reply r = {.status = status};
    herald_buf rb = {0};

    if (status == 0 && result && nw_result_encode(result, &rb) != 0)
        r.status = HERALD_ENOMEM;
    else if (status == HERALD_ENOT_LEADER)
        r.status = HERALD_EUNAVAILABLE; /* proposed, then lost: outcome unknown */
    r.result = (herald_str){.ptr = (const char *)rb.data, .len = (uint32_t)rb.len};
    fill_leaders(x->n, &r);
    send_reply(x->call, &r);
    herald_buf_free(&rb);
    free(x);
}

static void serve_propose(node *n, rpc_call *call, const nw_request *q)
{
    nfwd *x;
    int rc;

    if (q->group >= n->ngroups) {
        reply_status(n, call, HERALD_EINVAL, 0);
        return;
    }
    if (!be_leads(n, q->group)) {
        reply_status(n, call, HERALD_ENOT_LEADER, leader_of(n, q->group));
        return;
    }
    x = calloc(1, sizeof *x);
    if (!x) {
        reply_status(n, call, HERALD_ENOMEM, 0);
        return;
    }
    x->n = n;
    x->call = call;
    rc = group_propose(&n->groups[q->group], q->cmd.ptr, q->cmd.len, serve_propose_done, x);
    if (rc) {
        free(x);
        reply_status(n, call, rc, leader_of(n, q->group));
    }
}

/* ------------------------------------------------------------------------
 * Gateways: which are live (message.offline waits for each one's report). */

static void gateway_seen(node *n, uint32_t id)
{
    ev_tstamp now = ev_now(n->loop);
    uint32_t oldest = 0;
    for (uint32_t i = 0; i < n->n_gws; i++) {
        if (n->gws[i].id == id) {
            n->gws[i].last = now;
            return;
        }
        if (n->gws[i].last < n->gws[oldest].last)
            oldest = i;
    }
    if (n->n_gws < NODE_MAX_GATEWAYS)
        oldest = n->n_gws++;
    n->gws[oldest] = (ngw){.id = id, .last = now};
}

uint32_t be_gateways(void *ctx, uint32_t *ids, uint32_t cap)
{
    node *n = ctx;
    ev_tstamp now = ev_now(n->loop);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n->n_gws && k < cap; i++)
        if (now - n->gws[i].last < NODE_GW_LIVE_S)
            ids[k++] = n->gws[i].id;
    return k;
}

/* A gateway's offline reports, for the aggregator of a group led here. */
static void serve_offline(node *n, rpc_call *call, const nw_request *q)
{
    svc_offline_report r = {.gateway = q->gw, .group = q->group, .tenant = q->tenant,
                            .n = q->n_oconvs, .convs = q->oconvs, .seqs = q->oseqs,
                            .counts = q->ocounts, .n_users = q->n_users, .users = q->users};
    int rc;

    if (q->group >= n->ngroups) {
        reply_status(n, call, HERALD_EINVAL, 0);
        return;
    }
    rc = svc_offline(n->s, &r);
    if (rc == HERALD_ENOT_LEADER) {
        uint32_t lid = leader_of(n, q->group);
        reply_status(n, call, lid && lid != n->cfg->id ? HERALD_ENOT_LEADER : HERALD_EUNAVAILABLE,
                     lid);
        return;
    }
    reply_status(n, call, rc, 0);
}

static void serve_status(node *n, rpc_call *call)
{
    herald_buf js = {0};
    json_w w;
    nw_reply r = {0};

    json_init(&w, &js);
    status_json(n, &w);
    if (json_done(&w) == 0)
        r.json = (herald_str){.ptr = (const char *)js.data, .len = (uint32_t)js.len};
    r.n_prog = progress_of(n, &r.prog);
    fill_leaders(n, &r);
    send_reply(call, &r);
    free(r.prog);
    herald_buf_free(&js);
}

/* Gap repair: events a gateway missed, from the ring. */
static void serve_replay(node *n, rpc_call *call, const nw_request *q)
{
    herald_str *fv = malloc(NW_MAX_FRAMES * sizeof *fv);
    nw_reply r = {0};
    uint32_t nf = 0;

    if (!fv) {
        reply_status(n, call, HERALD_ENOMEM, 0);
        return;
    }
    r.status = evpub_replay(n->pub, q->epoch, q->seq_from, q->seq_to, fv, NW_MAX_FRAMES, &nf);
    r.frames = fv;
    r.n_frames = nf;
    send_reply(call, &r);
    free(fv);
}

void on_request(void *arg, rpc_call *call, const uint8_t *p, size_t len)
{
    node *n = arg;
    nw_request q;

    if (n->stopping) {
        reply_status(n, call, HERALD_ESHUTDOWN, 0);
        return;
    }
    if (nw_request_decode(p, len, &q) != 0) {
        log_warn("node.request", "malformed request (%zu bytes) dropped", len);
        reply_status(n, call, HERALD_EPROTOCOL, 0);
        return;
    }
    /* Mutual TLS vouches for the sender being a cluster process; the id is
     * its word, only used to tell gateways apart. */
    if (q.gw)
        gateway_seen(n, q.gw);
    switch (q.kind) {
    case NW_OFFLINE:
        serve_offline(n, call, &q);
        break;
    case NW_CLIENT:
        serve_client(n, call, &q, p, len);
        break;
    case NW_PROPOSE:
        serve_propose(n, call, &q);
        break;
    case NW_STATUS:
        serve_status(n, call);
        break;
    case NW_REPLAY:
        serve_replay(n, call, &q);
        break;
    default:
        reply_status(n, call, HERALD_EUNSUPPORTED, 0);
        break;
    }
    nw_request_release(&q);
}

