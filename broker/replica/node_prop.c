/* node_prop.c — proposals of `heraldd node`: proposed here when this node
 * leads the group, else forwarded to the leader (NW_PROPOSE); a forwarded
 * result waits until this replica applied the entry. See node.c. */
#include "node_int.h"

/* ------------------------------------------------------------------------
 * Proposals: local when leading, forwarded otherwise. */


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

void prop_finish_err(nprop *p, int code, const char *why)
{
    apply_result res = {.err = code};
    snprintf(res.errmsg, sizeof res.errmsg, "%s", why);
    svc_applied(p->n->s, p->cookie, &res);
    prop_free(p);
}

static void prop_local_done(void *arg, int status, void *result)
{
    nprop *p = arg;
    if (status == 0 && result) {
        svc_applied(p->n->s, p->cookie, result);
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

void wait_release(ngroup *ng, bool all)
{
    uint64_t applied = store_applied(ng->st);
    ev_tstamp now = ev_now(ng->n->loop);
    nwait **pp = &ng->waiting;
    while (*pp) {
        nwait *w = *pp;
        if (all || w->res.index <= applied || now >= w->p->deadline) {
            *pp = w->next;
            svc_applied(ng->n->s, w->p->cookie, &w->res);
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
        svc_applied(p->n->s, p->cookie, res);
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
        prop_finish_err(p, code,
                        code == HERALD_EINTERNAL ? "undecodable result"
                        : code == HERALD_EBUSY
                            ? "not applied: the group leader's proposal queue is full; retry later"
                            : "");
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
            prop_finish_err(p, rc,
                            rc == HERALD_EBUSY
                                ? "not applied: this group's proposal queue is full; retry later"
                                : "");
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
int be_submit(void *ctx, uint32_t group, herald_buf *cmdbuf, void *cookie)
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

