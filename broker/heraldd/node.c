/*
 * node.c — `heraldd node`: a raft replica of every group plus the gateway
 * core, serving gateways.
 *
 * Data layout under node.data:
 *   raft/        the rio hub's LMDB env (log, term, vote, snapshots of all groups)
 *   groups/gN/   the store of group N (0 = meta), opened without fsync: the
 *                raft log is the durability, restored from snapshots
 *   tenant-NAME.env  HERALD_TENANT / HERALD_SECRET once the tenant exists
 *
 * Request flow: a gateway sends NW_CLIENT to the node it believes leads the
 * frame's group. A node that does not lead it answers NOT_LEADER with its
 * hint. Otherwise the frame runs on a virtual connection through the same
 * handlers as `heraldd dev`; commands go to raft: proposed here when this
 * node leads their group, else forwarded (NW_PROPOSE) to the leader, which
 * answers with the encoded apply_result. The reply carries every frame the
 * handlers produced. The leader of a group publishes the push events of
 * each entry it applies.
 *
 * Exactly-once: a command is retried only when it surely was not proposed
 * (NOT_LEADER before proposing, not sent). When the outcome is unknown
 * (timeout, leadership lost after proposing) the client gets UNAVAILABLE
 * and retries with the same cmid; the store's dedup table answers a second
 * SEND of it with the original seq.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <herald/error.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "cmd.h"
#include "fsm.h"
#include "gw_int.h"
#include "json.h"
#include "log.h"
#include "nwire.h"
#include "evpub.h"
#include "rio.h"
#include "rpc.h"
#include "slots.h"
#include "token.h"

#define NODE_MAX_MSG (64u << 20)
#define NODE_RETRY_S 0.05   /* between tries while no leader is known */
#define NODE_PEER_UP_S 3.0  /* a peer answered a ping this recently: up */
#define NODE_TENANTS_MAX 16

typedef struct node node;

typedef struct nwait nwait;

typedef struct ngroup {
    node *n;
    uint32_t id;
    store *st;
    struct raft_fsm fsm;
    bool fsm_ready;
    rio_group *rg;
    nwait *waiting;         /* forwarded results waiting for this replica */
} ngroup;

typedef struct npeer {
    const node_member *m;   /* cfg.member[i] */
    rpc_client *rpc;        /* NULL for this node */
    ev_tstamp last_seen;    /* last status reply */
    bool ping_busy;
    uint64_t *prog;         /* its last replica progress report (nw_reply.prog) */
    uint32_t n_prog;
} npeer;

struct node {
    node_config *cfg;
    struct ev_loop *loop;
    rio_hub *hub;
    uint32_t ngroups;       /* meta + shard groups */
    ngroup *groups;
    store **stores;
    gw *g;
    rpc_server *srv;
    evpub *pub;             /* committed events to the gateways */
    npeer peers[NODECFG_MAX_MEMBERS];
    struct nprop *props;    /* proposals without an outcome yet */
    ev_timer tick;          /* 1 s: slot map, tenants, env files, peer pings */
    bool tenant_busy;
    bool slot_busy;         /* SLOTMAP proposed */
    bool slot_ok;           /* the slot map is loaded: requests are served */
    bool slot_bad;          /* the stored map does not fit cluster.groups */
    uint8_t slotmap[HERALD_SLOTS];
    bool stopping;
    ev_tstamp started;
};

/* ------------------------------------------------------------------------
 * Leadership and peers. */

static npeer *peer_by_id(node *n, uint64_t id)
{
    for (uint32_t i = 0; i < n->cfg->n_members; i++)
        if (n->peers[i].m->id == id)
            return &n->peers[i];
    return NULL;
}

static uint32_t leader_of(node *n, uint32_t group)
{
    uint64_t id = 0;
    const char *url = NULL;
    if (group >= n->ngroups)
        return 0;
    rio_group_leader(n->groups[group].rg, &id, &url);
    return (uint32_t)id;
}

static uint32_t be_leader(void *ctx, uint32_t group) { return leader_of(ctx, group); }

static bool be_leads(void *ctx, uint32_t group)
{
    node *n = ctx;
    return group < n->ngroups && rio_group_is_leader(n->groups[group].rg);
}

static void fill_leaders(node *n, nw_reply *r)
{
    r->n_leaders = n->ngroups < NW_MAX_GROUPS ? n->ngroups : NW_MAX_GROUPS;
    for (uint32_t i = 0; i < r->n_leaders; i++)
        r->leaders[i] = leader_of(n, i);
}

/* ------------------------------------------------------------------------
 * Proposing to a local raft group. The FSM hands raft an entry's result
 * before the batch holding it commits (fsm.h), and libraft runs the propose
 * callback right then: the callback is deferred until the commit, so no
 * reply and no store read ever sees an entry that is not committed. */

typedef struct ncommit {
    ngroup *ng;             /* the group proposed to */
    rio_apply_fn cb;        /* the proposer's callback */
    void *arg;              /* its argument */
    void *result;           /* the FSM's result (valid until after done) */
} ncommit;

/* The batch holding the entry committed (or was lost: outcome unknown). */
static void commit_done(void *arg, int status)
{
    ncommit *c = arg;
    if (status == 0)
        c->cb(c->arg, 0, c->result);
    else
        c->cb(c->arg, status == HERALD_ESHUTDOWN ? status : HERALD_EUNAVAILABLE, NULL);
    free(c);
}

static void commit_wait(void *arg, int status, void *result)
{
    ncommit *c = arg;
    if (status == 0 && result) {
        c->result = result;
        if (fsm_defer(&c->ng->fsm, commit_done, c) == 0)
            return;
        status = HERALD_EUNAVAILABLE; /* cannot wait for the commit */
        result = NULL;
    }
    c->cb(c->arg, status, result);
    free(c);
}

/* rio_group_propose whose cb runs after the entry's commit (same contract). */
static int group_propose(ngroup *ng, const void *data, size_t len, rio_apply_fn cb, void *arg)
{
    ncommit *c = calloc(1, sizeof *c);
    int rc;
    if (!c)
        return HERALD_ENOMEM;
    *c = (ncommit){.ng = ng, .cb = cb, .arg = arg};
    rc = rio_group_propose(ng->rg, data, len, commit_wait, c);
    if (rc)
        free(c);
    return rc;
}

/* ------------------------------------------------------------------------
 * Proposals: local when leading, forwarded otherwise. */

typedef struct nprop {
    node *n;
    struct nprop *next, *prev; /* n->props */
    uint32_t group;
    void *cookie;           /* gw's pending request */
    herald_buf cmd;         /* owned */
    ev_timer retry;         /* next try while no leader is known */
    ev_tstamp deadline;
} nprop;

static void prop_try(nprop *p);

/* Unlinks and frees p (its outcome has been reported). */
static void prop_free(nprop *p)
{
    node *n = p->n;
    ev_timer_stop(n->loop, &p->retry);
    if (p->prev)
        p->prev->next = p->next;
    else
        n->props = p->next;
    if (p->next)
        p->next->prev = p->prev;
    herald_buf_free(&p->cmd);
    free(p);
}

static void prop_finish_err(nprop *p, int code, const char *why)
{
    apply_result res = {.err = code};
    snprintf(res.errmsg, sizeof res.errmsg, "%s", why);
    gw_applied(p->n->g, p->cookie, &res);
    prop_free(p);
}

static void prop_local_done(void *arg, int status, void *result)
{
    nprop *p = arg;
    if (status == 0 && result) {
        gw_applied(p->n->g, p->cookie, result);
        prop_free(p);
        return;
    }
    /* Proposed, then leadership was lost: the entry may still commit. */
    prop_finish_err(p, status == HERALD_ESHUTDOWN ? HERALD_ESHUTDOWN : HERALD_EUNAVAILABLE,
                    "leadership changed while committing; the outcome is unknown, retry");
}

static void prop_later(nprop *p)
{
    if (ev_now(p->n->loop) >= p->deadline || p->n->stopping) {
        prop_finish_err(p, HERALD_EUNAVAILABLE, "no leader reachable for this shard group");
        return;
    }
    ev_timer_set(&p->retry, NODE_RETRY_S, 0.0);
    ev_timer_start(p->n->loop, &p->retry);
}

static void prop_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    prop_try(w->data);
}

/* A result the leader sent back is handed on once this node's replica has
 * applied the entry too: the handlers read their answer (conversation
 * info, tags, directory entries) from the local store right after. Bounded
 * by the request deadline; then it goes on regardless. */
struct nwait {
    nwait *next;
    nprop *p;
    apply_result res;
};

static void wait_release(ngroup *ng, bool all)
{
    uint64_t applied = store_applied(ng->st);
    ev_tstamp now = ev_now(ng->n->loop);
    nwait **pp = &ng->waiting;
    while (*pp) {
        nwait *w = *pp;
        if (all || w->res.index <= applied || now >= w->p->deadline) {
            *pp = w->next;
            gw_applied(ng->n->g, w->p->cookie, &w->res);
            apply_result_free(&w->res);
            prop_free(w->p);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

static void wait_applied(nprop *p, apply_result *res)
{
    ngroup *ng = &p->n->groups[p->group];
    nwait *w;
    if (res->index <= store_applied(ng->st) || !(w = calloc(1, sizeof *w))) {
        gw_applied(p->n->g, p->cookie, res);
        apply_result_free(res);
        prop_free(p);
        return;
    }
    w->p = p;
    w->res = *res;
    w->next = ng->waiting;
    ng->waiting = w;
}

static void prop_forward_done(void *arg, int status, const uint8_t *b, size_t len)
{
    nprop *p = arg;
    nw_reply r;
    apply_result res;

    if (status == HERALD_EIO) { /* not sent: safe to try again */
        prop_later(p);
        return;
    }
    if (status) {
        prop_finish_err(p, HERALD_EUNAVAILABLE,
                        "the leader did not answer in time; the outcome is unknown, retry");
        return;
    }
    if (nw_reply_decode(b, len, &r) != 0) {
        prop_finish_err(p, HERALD_EINTERNAL, "malformed reply from the leader");
        return;
    }
    if (r.status == HERALD_ENOT_LEADER || r.status == HERALD_EUNAVAILABLE) {
        nw_reply_release(&r); /* not proposed there: try again */
        prop_later(p);
        return;
    }
    if (r.status != 0 || nw_result_decode((const uint8_t *)r.result.ptr, r.result.len, &res)) {
        int code = r.status ? r.status : HERALD_EINTERNAL;
        nw_reply_release(&r);
        prop_finish_err(p, code, code == HERALD_EINTERNAL ? "undecodable result" : "");
        return;
    }
    nw_reply_release(&r);
    wait_applied(p, &res);
}

static void prop_try(nprop *p)
{
    node *n = p->n;
    ngroup *ng = &n->groups[p->group];
    uint32_t lid;
    npeer *peer;

    if (n->stopping) {
        prop_finish_err(p, HERALD_ESHUTDOWN, "the node is shutting down");
        return;
    }
    if (rio_group_is_leader(ng->rg)) {
        int rc = group_propose(ng, p->cmd.data, p->cmd.len, prop_local_done, p);
        if (rc == 0)
            return;
        if (rc != HERALD_ENOT_LEADER) {
            prop_finish_err(p, rc, "");
            return;
        }
    }
    lid = leader_of(n, p->group);
    peer = lid && lid != n->cfg->id ? peer_by_id(n, lid) : NULL;
    if (peer && peer->rpc) {
        nw_request q = {.kind = NW_PROPOSE, .from = n->cfg->id, .group = p->group,
                        .cmd = {.ptr = (const char *)p->cmd.data, .len = (uint32_t)p->cmd.len}};
        herald_buf b = {0};
        unsigned left = (unsigned)((p->deadline - ev_now(n->loop)) * 1000.0);
        int rc = nw_request_encode(&q, &b);
        if (rc == 0)
            rc = rpc_send(peer->rpc, b.data, b.len, left ? left : 1, prop_forward_done, p);
        herald_buf_free(&b);
        if (rc == 0)
            return;
    }
    prop_later(p);
}

/* gw backend: submit. */
static int be_submit(void *ctx, uint32_t group, herald_buf *cmdbuf, void *cookie)
{
    node *n = ctx;
    nprop *p;

    if (group >= n->ngroups)
        return HERALD_EINVAL;
    if (n->stopping)
        return HERALD_ESHUTDOWN;
    p = calloc(1, sizeof *p);
    if (!p)
        return HERALD_ENOMEM;
    p->n = n;
    p->group = group;
    p->cookie = cookie;
    p->cmd = *cmdbuf;
    *cmdbuf = (herald_buf){0};
    p->deadline = ev_now(n->loop) + n->cfg->request_timeout_ms / 1000.0;
    ev_timer_init(&p->retry, prop_retry_cb, NODE_RETRY_S, 0.0);
    p->retry.data = p;
    p->next = n->props;
    if (n->props)
        n->props->prev = p;
    n->props = p;
    prop_try(p);
    return 0;
}

/* ------------------------------------------------------------------------
 * Events to gateways. */

static void publish(node *n, nw_event *e)
{
    if (evpub_add(n->pub, e) != 0)
        log_warn("node.publish", "an event was not published (gateways see the gap)");
}

static void be_push(void *ctx, const char *tenant, const char *const *users,
                    const uint64_t *useqs, uint32_t nu, const herald_frame *f)
{
    node *n = ctx;
    herald_buf fb = {0};
    herald_str *uv = calloc(nu + 1, sizeof *uv);
    nw_event e = {.kind = NW_EV_FRAME, .tenant = herald_str_z(tenant), .n_users = nu,
                  .n_useqs = useqs ? nu : 0, .useqs = (uint64_t *)useqs};

    if (!uv || herald_frame_encode(f, &fb) != 0) {
        log_error("node.publish", "out of memory building an event");
        goto out;
    }
    for (uint32_t i = 0; i < nu; i++)
        uv[i] = herald_str_z(users[i]);
    e.users = uv;
    e.frame = (herald_str){.ptr = (const char *)fb.data, .len = (uint32_t)fb.len};
    publish(n, &e);
out:
    free(uv);
    herald_buf_free(&fb);
}

static void be_dnd(void *ctx, const char *tenant, const char *user, uint64_t until)
{
    node *n = ctx;
    herald_str u = herald_str_z(user);
    nw_event e = {.kind = NW_EV_DND, .tenant = herald_str_z(tenant), .n_users = 1,
                  .users = &u, .until = until};
    publish(n, &e);
}

static void slotmap_tick(node *n);

/* FSM hook, after the entry's commit: the leader tells the gateways about
 * what it applied (push_message reads the message back from the store). */
static void on_applied(void *arg, uint32_t group, uint64_t index, const uint8_t *cmdp,
                       size_t len, const apply_result *res)
{
    ngroup *ng = arg;
    (void)group;
    (void)index;
    if (ng->n->g && ng->rg && rio_group_is_leader(ng->rg))
        gw_events(ng->n->g, cmdp, len, res);
    if (ng->waiting)
        wait_release(ng, false);
    if (ng->id == 0 && res->op == CMD_SLOTMAP && !res->err)
        slotmap_tick(ng->n);
}

/* ------------------------------------------------------------------------
 * Status. */

/* (group, node, match, commit) for every replica of the groups led here;
 * *out is malloc'd. */
static uint32_t progress_of(node *n, uint64_t **out)
{
    uint32_t k = 0;
    uint64_t *v = malloc(NW_MAX_PROG * sizeof *v);
    *out = v;
    if (!v)
        return 0;
    for (uint32_t gi = 0; gi < n->ngroups; gi++) {
        struct raft *r = rio_group_raft(n->groups[gi].rg);
        if (!rio_group_is_leader(n->groups[gi].rg))
            continue;
        for (unsigned i = 0; i < r->configuration.n && k + 4 <= NW_MAX_PROG; i++) {
            uint64_t id = r->configuration.servers[i].id;
            v[k++] = gi;
            v[k++] = id;
            v[k++] = id == n->cfg->id ? r->last_applied : r->leader_state.progress[i].match_index;
            v[k++] = r->commit_index;
        }
    }
    return k;
}

static void replicas_json(json_w *w, const uint64_t *v, uint32_t nv, uint32_t group)
{
    json_key(w, "replicas");
    json_arr(w);
    for (uint32_t i = 0; i + 4 <= nv; i += 4) {
        if (v[i] != group)
            continue;
        json_obj(w);
        json_key(w, "node");
        json_u64(w, v[i + 1]);
        json_key(w, "match");
        json_u64(w, v[i + 2]);
        json_key(w, "lag");
        json_u64(w, v[i + 3] > v[i + 2] ? v[i + 3] - v[i + 2] : 0);
        json_obj_end(w);
    }
    json_arr_end(w);
}

static void status_json(node *n, json_w *w)
{
    ev_tstamp now = ev_now(n->loop);
    uint64_t *own = NULL;
    uint32_t n_own = progress_of(n, &own);
    json_obj(w);
    json_key(w, "mode");
    json_strz(w, "cluster");
    json_key(w, "version");
    json_strz(w, HERALD_VERSION);
    json_key(w, "node");
    json_u64(w, n->cfg->id);
    json_key(w, "uptime_s");
    json_u64(w, (uint64_t)(now - n->started));
    json_key(w, "nodes");
    json_arr(w);
    for (uint32_t i = 0; i < n->cfg->n_members; i++) {
        npeer *p = &n->peers[i];
        bool self = p->rpc == NULL;
        char addr[200];
        snprintf(addr, sizeof addr, "%s:%u", p->m->host, p->m->port);
        json_obj(w);
        json_key(w, "id");
        json_u64(w, p->m->id);
        json_key(w, "address");
        json_strz(w, addr);
        json_key(w, "up");
        json_bool(w, self || (p->last_seen > 0 && now - p->last_seen < NODE_PEER_UP_S));
        if (!self && p->last_seen > 0) {
            json_key(w, "last_seen_ms_ago");
            json_u64(w, (uint64_t)((now - p->last_seen) * 1000.0));
        }
        json_obj_end(w);
    }
    json_arr_end(w);
    json_key(w, "groups");
    json_arr(w);
    for (uint32_t gi = 0; gi < n->ngroups; gi++) {
        struct raft *r = rio_group_raft(n->groups[gi].rg);
        bool lead = rio_group_is_leader(n->groups[gi].rg);
        json_obj(w);
        json_key(w, "group");
        json_u64(w, gi);
        json_key(w, "role");
        json_strz(w, gi == 0 ? "meta" : "shard");
        json_key(w, "leader");
        json_u64(w, leader_of(n, gi));
        json_key(w, "term");
        json_u64(w, r->current_term);
        json_key(w, "commit");
        json_u64(w, r->commit_index);
        json_key(w, "applied");
        json_u64(w, r->last_applied);
        json_key(w, "store_applied");
        json_u64(w, store_applied(n->groups[gi].st));
        if (lead) {
            /* The leader knows each replica's match index. */
            replicas_json(w, own, n_own, gi);
        } else {
            /* Else the leader's last report (pinged every second). */
            npeer *lp = peer_by_id(n, leader_of(n, gi));
            if (lp && lp->n_prog)
                replicas_json(w, lp->prog, lp->n_prog, gi);
        }
        json_obj_end(w);
    }
    json_arr_end(w);
    {
        rio_stats rs;
        evpub_stats es;
        rio_hub_stats(n->hub, &rs);
        evpub_stats_get(n->pub, &es);
        json_key(w, "raft");
        json_obj(w);
        json_key(w, "txns");
        json_u64(w, rs.txns);
        json_key(w, "entries");
        json_u64(w, rs.entries);
        json_key(w, "frames_sent");
        json_u64(w, rs.frames_sent);
        json_key(w, "msgs_sent");
        json_u64(w, rs.msgs_sent);
        json_obj_end(w);
        json_key(w, "events");
        json_obj(w);
        json_key(w, "published");
        json_u64(w, es.events);
        json_key(w, "batches");
        json_u64(w, es.batches);
        json_key(w, "batches_refused");
        json_u64(w, es.failed);
        json_key(w, "replays");
        json_u64(w, es.replays);
        json_obj_end(w);
    }
    json_obj_end(w);
    free(own);
}

static void be_status(void *ctx, json_w *w) { status_json(ctx, w); }

/* ------------------------------------------------------------------------
 * Requests from gateways and nodes. */

typedef struct nreq {
    node *n;
    rpc_call *call;
} nreq;

static void reply_status(node *n, rpc_call *call, int status, uint32_t hint)
{
    nw_reply r = {.status = status, .hint = hint};
    herald_buf b = {0};
    fill_leaders(n, &r);
    if (nw_reply_encode(&r, &b) == 0)
        rpc_reply(call, b.data, b.len);
    else
        rpc_drop(call);
    herald_buf_free(&b);
}

/* A virtual connection finished: every frame it produced goes back. */
static void vconn_done(void *arg, conn *c)
{
    nreq *q = arg;
    const herald_buf *out = gw_vconn_output(c);
    nw_reply r = {0};
    herald_buf b = {0};
    herald_str *fv = NULL;
    uint32_t nf = 0;
    size_t off = 0;

    /* Split the output into frames (4-byte big-endian length + payload). */
    while (off + HERALD_FRAME_HEADER <= out->len) {
        const uint8_t *h = out->data + off;
        size_t fl = HERALD_FRAME_HEADER + (((size_t)h[0] << 24) | ((size_t)h[1] << 16) |
                                           ((size_t)h[2] << 8) | h[3]);
        herald_str *nv;
        if (off + fl > out->len || nf >= NW_MAX_FRAMES)
            break;
        nv = realloc(fv, (nf + 1) * sizeof *fv);
        if (!nv)
            break;
        fv = nv;
        fv[nf++] = (herald_str){.ptr = (const char *)h, .len = (uint32_t)fl};
        off += fl;
    }
    r.frames = fv;
    r.n_frames = nf;
    r.close = gw_vconn_closed(c);
    {
        const char *t, *u;
        bool admin;
        uint64_t dnd;
        if (gw_vconn_session(c, &t, &u, &admin, &dnd)) {
            r.authed = true;
            r.tenant = herald_str_z(t);
            r.user = herald_str_z(u);
            r.admin = admin;
            r.dnd_until = dnd;
        }
    }
    fill_leaders(q->n, &r);
    if (nw_reply_encode(&r, &b) == 0)
        rpc_reply(q->call, b.data, b.len);
    else
        rpc_drop(q->call);
    herald_buf_free(&b);
    free(fv);
    free(q);
}

static void serve_client(node *n, rpc_call *call, const nw_request *q)
{
    herald_limits lim = {.max_frame = n->cfg->max_frame};
    herald_frame f;
    char tenant[TOKEN_ID_MAX + 1] = "", user[TOKEN_ID_MAX + 1] = "";
    uint32_t grp, lid;
    nreq *r;
    conn *c;

    if (herald_frame_decode((const uint8_t *)q->frame.ptr, q->frame.len, &lim, &f) != 0) {
        reply_status(n, call, HERALD_EPROTOCOL, 0);
        return;
    }
    if (q->tenant.len <= TOKEN_ID_MAX && q->user.len <= TOKEN_ID_MAX) {
        snprintf(tenant, sizeof tenant, "%.*s", (int)q->tenant.len, q->tenant.ptr ? q->tenant.ptr : "");
        snprintf(user, sizeof user, "%.*s", (int)q->user.len, q->user.ptr ? q->user.ptr : "");
    }
    if (!n->slot_ok) {
        /* Routing needs the meta group's slot map first. */
        reply_status(n, call, HERALD_EUNAVAILABLE, 0);
        herald_frame_release(&f);
        return;
    }
    /* Reads come from the leader's replica, writes start there. */
    grp = cluster_frame_group(&f, tenant, n->ngroups, n->slotmap);
    if (!be_leads(n, grp)) {
        lid = leader_of(n, grp);
        reply_status(n, call, lid && lid != n->cfg->id ? HERALD_ENOT_LEADER : HERALD_EUNAVAILABLE,
                     lid);
        herald_frame_release(&f);
        return;
    }
    r = calloc(1, sizeof *r);
    c = r ? gw_vconn_open(n->g, tenant, user, q->admin, q->dnd_until, vconn_done, r) : NULL;
    if (!c) {
        free(r);
        reply_status(n, call, HERALD_ENOMEM, 0);
        herald_frame_release(&f);
        return;
    }
    r->n = n;
    r->call = call;
    gw_vconn_run(c, &f); /* may reply right away (vconn_done) */
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
    herald_buf rb = {0}, b = {0};

    if (status == 0 && result && nw_result_encode(result, &rb) != 0)
        r.status = HERALD_ENOMEM;
    else if (status == HERALD_ENOT_LEADER)
        r.status = HERALD_EUNAVAILABLE; /* proposed, then lost: outcome unknown */
    r.result = (herald_str){.ptr = (const char *)rb.data, .len = (uint32_t)rb.len};
    fill_leaders(x->n, &r);
    if (nw_reply_encode(&r, &b) == 0)
        rpc_reply(x->call, b.data, b.len);
    else
        rpc_drop(x->call);
    herald_buf_free(&rb);
    herald_buf_free(&b);
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

static void serve_status(node *n, rpc_call *call)
{
    herald_buf js = {0}, b = {0};
    json_w w;
    nw_reply r = {0};

    json_init(&w, &js);
    status_json(n, &w);
    if (json_done(&w) == 0)
        r.json = (herald_str){.ptr = (const char *)js.data, .len = (uint32_t)js.len};
    r.n_prog = progress_of(n, &r.prog);
    fill_leaders(n, &r);
    if (nw_reply_encode(&r, &b) == 0)
        rpc_reply(call, b.data, b.len);
    else
        rpc_drop(call);
    free(r.prog);
    herald_buf_free(&js);
    herald_buf_free(&b);
}

/* Gap repair: events a gateway missed, from the ring. */
static void serve_replay(node *n, rpc_call *call, const nw_request *q)
{
    herald_str *fv = malloc(NW_MAX_FRAMES * sizeof *fv);
    nw_reply r = {0};
    herald_buf b = {0};
    uint32_t nf = 0;

    if (!fv) {
        reply_status(n, call, HERALD_ENOMEM, 0);
        return;
    }
    r.status = evpub_replay(n->pub, q->epoch, q->seq_from, q->seq_to, fv, NW_MAX_FRAMES, &nf);
    r.frames = fv;
    r.n_frames = nf;
    if (nw_reply_encode(&r, &b) == 0)
        rpc_reply(call, b.data, b.len);
    else
        rpc_drop(call);
    herald_buf_free(&b);
    free(fv);
}

static void on_request(void *arg, rpc_call *call, const uint8_t *p, size_t len)
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
    switch (q.kind) {
    case NW_CLIENT:
        serve_client(n, call, &q);
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

/* ------------------------------------------------------------------------
 * Housekeeping: tenants, env files, peer liveness. */

static int split_tenants(const char *list, char out[][TOKEN_ID_MAX + 1])
{
    int k = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len && k < NODE_TENANTS_MAX && token_id_valid(p, len)) {
            memcpy(out[k], p, len);
            out[k++][len] = '\0';
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return k;
}

static void tenant_created(void *arg, int status, void *result)
{
    node *n = arg;
    const apply_result *res = result;
    n->tenant_busy = false;
    if (status || (res && res->err && res->err != HERALD_EEXISTS))
        log_warn("node.tenant", "creating a tenant failed: %s",
                 herald_err_name(status ? status : res->err));
}

/* Writes DATA/tenant-NAME.env (0600, atomically) unless it exists. */
static void write_tenant_env(node *n, const char *name, const store_tenant *t)
{
    char path[PATH_MAX], tmp[PATH_MAX], hex[TOKEN_SECRET_HEX + 1];
    struct stat sb;
    FILE *f;
    int fd;

    if (snprintf(path, sizeof path, "%s/tenant-%s.env", n->cfg->data, name) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/.tenant-%s.tmp", n->cfg->data, name) >= (int)sizeof tmp ||
        stat(path, &sb) == 0)
        return;
    token_secret_to_hex(t->secret, hex);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        if (fd >= 0)
            close(fd);
        return;
    }
    fprintf(f, "HERALD_TENANT=%s\nHERALD_SECRET=%s\n", name, hex);
    if (fflush(f) == 0 && fsync(fileno(f)) == 0) {
        fclose(f);
        if (rename(tmp, path) != 0)
            unlink(tmp);
        else
            log_info("node.tenant", "tenant %s ready (%s)", name, path);
        return;
    }
    fclose(f);
    unlink(tmp);
}

static void slotmap_proposed(void *arg, int status, void *result)
{
    node *n = arg;
    const apply_result *res = result;
    n->slot_busy = false;
    if (status || (res && res->err))
        log_warn("node.slots", "writing the slot map failed: %s",
                 herald_err_name(status ? status : res->err));
}

/* Loads the slot map from the meta group, or (meta leader, first start)
 * writes it: slot s → group gw_group_of's formula for cluster.groups. */
static void slotmap_tick(node *n)
{
    store *meta = n->groups[0].st;
    int rc;

    if (n->slot_ok || n->slot_bad)
        return;
    rc = store_slotmap_get(meta, n->slotmap);
    if (rc == 0) {
        if (gw_set_slotmap(n->g, n->slotmap) != 0) {
            n->slot_bad = true;
            log_error("node.slots", "cluster.groups: the cluster's slot map names groups beyond "
                      "the %u configured; requests are refused (resharding is not supported)",
                      n->cfg->groups);
            return;
        }
        n->slot_ok = true;
        log_info("node.slots", "slot map loaded: %u slots over %u shard groups", HERALD_SLOTS,
                 n->cfg->groups);
        return;
    }
    if (rc == HERALD_ENOT_FOUND && !n->slot_busy && be_leads(n, 0)) {
        uint8_t map[HERALD_SLOTS];
        herald_buf b = {0};
        cmd c = {.op = CMD_SLOTMAP, .body = {.ptr = (const char *)map, .len = HERALD_SLOTS}};
        for (uint32_t s = 0; s < HERALD_SLOTS; s++)
            map[s] = (uint8_t)gw_slot_group(s, n->ngroups);
        if (cmd_encode(&c, &b) == 0 &&
            group_propose(&n->groups[0], b.data, b.len, slotmap_proposed, n) == 0)
            n->slot_busy = true;
        herald_buf_free(&b);
    }
}

static void tenants_tick(node *n)
{
    char names[NODE_TENANTS_MAX][TOKEN_ID_MAX + 1];
    int k = split_tenants(n->cfg->tenants, names);
    store *meta = n->groups[0].st;

    for (int i = 0; i < k; i++) {
        store_tenant t;
        int rc = store_tenant_get(meta, herald_str_z(names[i]), &t);
        if (rc == 0) {
            write_tenant_env(n, names[i], &t);
            continue;
        }
        if (rc != HERALD_ENOT_FOUND || n->tenant_busy || !be_leads(n, 0))
            continue;
        {
            uint8_t secret[TOKEN_SECRET_LEN];
            char hex[TOKEN_SECRET_HEX + 1];
            herald_buf b = {0};
            cmd c;
            token_secret_generate(secret);
            token_secret_to_hex(secret, hex);
            c = tenantcfg_command(&n->cfg->tenant, names[i], hex);
            if (cmd_encode(&c, &b) == 0 &&
                group_propose(&n->groups[0], b.data, b.len, tenant_created, n) == 0) {
                n->tenant_busy = true;
                log_info("node.tenant", "creating tenant %s", names[i]);
            }
            herald_buf_free(&b);
        }
    }
}

static void ping_done(void *arg, int status, const uint8_t *p, size_t len)
{
    npeer *peer = arg;
    nw_reply r;
    peer->ping_busy = false;
    if (status != 0 || nw_reply_decode(p, len, &r) != 0)
        return;
    peer->last_seen = ev_time();
    free(peer->prog);
    peer->prog = r.prog; /* keep the array; the rest goes */
    peer->n_prog = r.n_prog;
    r.prog = NULL;
    r.n_prog = 0;
    nw_reply_release(&r);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    node *n = w->data;
    (void)loop;
    (void)revents;
    slotmap_tick(n);
    tenants_tick(n);
    for (uint32_t i = 0; i < n->ngroups; i++) /* deadlines of parked results */
        if (n->groups[i].waiting)
            wait_release(&n->groups[i], false);
    for (uint32_t i = 0; i < n->cfg->n_members; i++) {
        npeer *p = &n->peers[i];
        nw_request q = {.kind = NW_STATUS, .from = n->cfg->id};
        herald_buf b = {0};
        if (!p->rpc || p->ping_busy)
            continue;
        if (nw_request_encode(&q, &b) == 0 &&
            rpc_send(p->rpc, b.data, b.len, 1000, ping_done, p) == 0)
            p->ping_busy = true;
        herald_buf_free(&b);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    log_info("node.signal", "signal %d: shutting down", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

/* ------------------------------------------------------------------------ */

static int mkdirs(const char *a, const char *b)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s%s", a, b) >= (int)sizeof path)
        return -1;
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int node_run(node_config *cfg)
{
    node nd = {0}, *n = &nd;
    struct ev_loop *loop = EV_DEFAULT;
    gw_config gc;
    gw_backend be = {.ctx = n, .submit = be_submit, .leads = be_leads, .push = be_push,
                     .dnd = be_dnd, .status = be_status, .leader = be_leader};
    rio_hub_config hc = {0};
    evpub_config evc;
    rio_peer rpeers[NODECFG_MAX_MEMBERS];
    const node_member *self = &cfg->member[cfg->self];
    ev_signal sigterm, sigint;
    char path[PATH_MAX];
    uint32_t opened = 0;
    int rc = 1;

    n->cfg = cfg;
    n->loop = loop;
    n->started = ev_now(loop);
    n->ngroups = cfg->groups + 1;
    if (herald_token_init() != 0) {
        fprintf(stderr, "heraldd: libsodium failed to initialise\n");
        return 1;
    }
    if (mkdirs(cfg->data, "") || mkdirs(cfg->data, "/groups") || mkdirs(cfg->data, "/raft")) {
        fprintf(stderr, "heraldd: node.data: cannot create %s: %s\n", cfg->data,
                strerror(errno));
        return 1;
    }
    n->groups = calloc(n->ngroups, sizeof *n->groups);
    n->stores = calloc(n->ngroups, sizeof *n->stores);
    if (!n->groups || !n->stores)
        goto out;
    for (; opened < n->ngroups; opened++) {
        store_config sc = {.map_size = (size_t)cfg->map_size, .no_sync = true, .group = opened};
        snprintf(path, sizeof path, "%s/groups/g%u", cfg->data, opened);
        sc.dir = path;
        if (store_open(&sc, &n->stores[opened]) != 0) {
            fprintf(stderr, "heraldd: cannot open the store in %s\n", path);
            goto out;
        }
        n->groups[opened].n = n;
        n->groups[opened].id = opened;
        n->groups[opened].st = n->stores[opened];
    }
    /* Peers: rpc clients for forwarding and liveness. */
    for (uint32_t i = 0; i < cfg->n_members; i++) {
        n->peers[i].m = &cfg->member[i];
        rpeers[i] = (rio_peer){.id = cfg->member[i].id, .url = cfg->member[i].raft_url};
        if (i != cfg->self &&
            rpc_client_create(loop, cfg->member[i].req_url, NODE_MAX_MSG, &n->peers[i].rpc)) {
            fprintf(stderr, "heraldd: cluster.members: cannot dial %s\n", cfg->member[i].req_url);
            goto out;
        }
    }
    /* The gateway core over the replicated stores (no client listener). */
    gc = (gw_config){0};
    gw_config_defaults(&gc);
    gc.listen = "";
    gc.max_frame = cfg->max_frame;
    if (gw_create_ex(&gc, loop, n->stores, n->ngroups, &be, &n->g) != 0) {
        fprintf(stderr, "heraldd: cannot create the gateway core\n");
        goto out;
    }
    evc = (evpub_config){.url = self->pub_url, .node_id = cfg->id,
                         .sendbuf = cfg->events_sendbuf, .ring = cfg->events_ring};
    if (evpub_create(loop, &evc, &n->pub) != 0) {
        fprintf(stderr, "heraldd: cluster.members: cannot listen on %s (publish)\n",
                self->pub_url);
        goto out;
    }
    snprintf(path, sizeof path, "%s/raft", cfg->data);
    hc.node_id = cfg->id;
    hc.listen_url = self->raft_url;
    hc.data_dir = path;
    hc.map_size = (size_t)cfg->raft_map_size;
    if (rio_hub_create(loop, &hc, &n->hub) != 0) {
        fprintf(stderr, "heraldd: cannot start raft on %s (data %s)\n", self->raft_url, path);
        goto out;
    }
    for (uint32_t i = 0; i < n->ngroups; i++) {
        ngroup *ng = &n->groups[i];
        fsm_config fc = {.st = ng->st, .group = i, .applied = on_applied, .arg = ng,
                         .loop = loop};
        rio_group_config rc_ = {.group_id = i, .fsm = &ng->fsm,
                                .election_timeout = cfg->election_ms,
                                .heartbeat_timeout = cfg->heartbeat_ms,
                                .snapshot_threshold = cfg->snapshot_threshold,
                                .snapshot_trailing = cfg->snapshot_trailing};
        int r;
        if (fsm_init(&ng->fsm, &fc) != 0)
            goto out;
        ng->fsm_ready = true;
        if (rio_group_add(n->hub, &rc_, &ng->rg) != 0) {
            fprintf(stderr, "heraldd: cannot create raft group %u\n", i);
            goto out;
        }
        fsm_bind(&ng->fsm, rio_group_raft(ng->rg));
        r = rio_group_bootstrap(ng->rg, rpeers, cfg->n_members);
        if (r != 0 && r != HERALD_EEXISTS) {
            fprintf(stderr, "heraldd: cannot bootstrap raft group %u: %s\n", i,
                    herald_strerror(r));
            goto out;
        }
        if (rio_group_start(ng->rg) != 0) {
            fprintf(stderr, "heraldd: cannot start raft group %u\n", i);
            goto out;
        }
    }
    if (rpc_server_create(loop, self->req_url, NODE_MAX_MSG, on_request, n, &n->srv) != 0) {
        fprintf(stderr, "heraldd: cluster.members: cannot listen on %s (requests)\n",
                self->req_url);
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    ev_timer_init(&n->tick, on_tick, 0.2, 1.0);
    n->tick.data = n;
    ev_timer_start(loop, &n->tick);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    log_info("node.ready", "node %u ready: raft %s, requests %s, events %s, %u groups, data %s",
             cfg->id, self->raft_url, self->req_url, self->pub_url, n->ngroups, cfg->data);
    ev_run(loop, 0);
    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sigint);
    ev_timer_stop(loop, &n->tick);
    rc = 0;
out:
    n->stopping = true;
    /* What the last iteration applied: committed, hooks and deferred
     * replies run while the groups and the core still exist. */
    for (uint32_t i = 0; n->groups && i < n->ngroups; i++)
        if (n->groups[i].fsm_ready)
            fsm_flush(&n->groups[i].fsm);
    rpc_server_destroy(n->srv);
    /* Groups close first (pending proposals fail with SHUTDOWN and reach
     * the gateway core), then the core, then the peers. */
    rio_hub_destroy(n->hub);
    for (uint32_t i = 0; i < cfg->n_members; i++) {
        rpc_client_destroy(n->peers[i].rpc);
        free(n->peers[i].prog);
    }
    for (uint32_t i = 0; n->groups && i < n->ngroups; i++)
        wait_release(&n->groups[i], true);
    while (n->props) /* waiting for a leader: tell their requesters */
        prop_finish_err(n->props, HERALD_ESHUTDOWN, "the node is shutting down");
    gw_destroy(n->g);
    evpub_destroy(n->pub);
    for (uint32_t i = 0; n->groups && i < n->ngroups; i++)
        if (n->groups[i].fsm_ready)
            fsm_fini(&n->groups[i].fsm);
    for (uint32_t i = 0; i < opened; i++)
        store_close(n->stores[i]);
    free(n->groups);
    free(n->stores);
    log_info("node.stop", "node %u stopped", cfg->id);
    return rc;
}
