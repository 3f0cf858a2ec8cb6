/* node_groups.c — what the rest of the node builds on: its peers, who leads
 * each group as far as this node knows, and proposing to a group with the
 * callback run after the entry's LMDB commit. See node.c. */
#include "node_int.h"

npeer *peer_by_id(node *n, uint64_t id)
{
    for (uint32_t i = 0; i < n->cfg->n_members; i++)
        if (n->peers[i].m->id == id)
            return &n->peers[i];
    return NULL;
}

uint32_t leader_of(node *n, uint32_t group)
{
    uint64_t id = 0;
    const char *url = NULL;
    if (group >= n->ngroups)
        return 0;
    rio_group_leader(n->groups[group].rg, &id, &url);
    return (uint32_t)id;
}

uint32_t be_leader(void *ctx, uint32_t group) { return leader_of(ctx, group); }

bool be_leads(void *ctx, uint32_t group)
{
    node *n = ctx;
    return group < n->ngroups && rio_group_is_leader(n->groups[group].rg);
}

void fill_leaders(node *n, nw_reply *r)
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
    size_t bytes;           /* the command's size (ng->inflight_bytes) */
    rio_apply_fn cb;        /* the proposer's callback */
    void *arg;              /* its argument */
    void *result;           /* the FSM's result (valid until after done) */
} ncommit;

/* The batch holding the entry committed (or was lost: outcome unknown). */
static void commit_done(void *arg, int status)
{
    ncommit *c = arg;
    c->ng->inflight_bytes -= c->bytes;
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
    c->ng->inflight_bytes -= c->bytes;
    c->cb(c->arg, status, result);
    free(c);
}

/* rio_group_propose whose cb runs after the entry's commit (same contract).
 * Bounded in bytes per group (node.queue_bytes): past it HERALD_EBUSY and
 * nothing is proposed — the client hears "not applied, retry later", never
 * "outcome unknown" for load alone. */
int group_propose(ngroup *ng, const void *data, size_t len, rio_apply_fn cb, void *arg)
{
    ncommit *c;
    int rc;
    if (ng->inflight_bytes && ng->inflight_bytes + len > ng->n->cfg->queue_bytes) {
        if (ng->busy++ % 1000 == 0)
            log_warn("node.busy", "group %u: %zu bytes proposed and not committed yet: "
                     "refusing with BUSY (%llu so far)", ng->id, ng->inflight_bytes,
                     (unsigned long long)ng->busy);
        return HERALD_EBUSY;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        return HERALD_ENOMEM;
    *c = (ncommit){.ng = ng, .cb = cb, .arg = arg, .bytes = len};
    rc = rio_group_propose(ng->rg, data, len, commit_wait, c);
    if (rc)
        free(c);
    else
        ng->inflight_bytes += len;
    return rc;
}
