/*
 * rio_group.c — the multi-raft driver: one struct raft per group over the
 * hub's raft_io, with propose/leader helpers. See rio.h.
 *
 * Floor: the top of the folder. It keeps its list of groups in the hub's
 * rio_driver slot and names there the function rio_hub_destroy calls first
 * (close_all), so the hub never calls this file by name.
 */
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rio_int.h"

struct rio_group {
    rio_hub *hub;            /* owning hub */
    uint32_t gid;            /* group id */
    struct raft raft;        /* the consensus core (raft.data points back here) */
    struct raft_io io;       /* our backend for it */
    bool started;            /* raft_start succeeded */
    bool closed;             /* raft_close's callback fired */
    struct rio_group *next;  /* hub's list (rio_driver.groups) */
};

/* One proposal in flight. */
typedef struct proposal {
    struct raft_apply req; /* raft's request (req.data → this) */
    rio_apply_fn cb;       /* caller's callback */
    void *arg;             /* its argument */
} proposal;

static void close_all(rio_hub *h);

static int raft_to_herald(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case RAFT_NOMEM:
        return HERALD_ENOMEM;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
        return HERALD_ENOT_LEADER;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return HERALD_ESHUTDOWN;
    case RAFT_IOERR:
    case RAFT_NOSPACE:
    case RAFT_CORRUPT:
        return HERALD_ESTORAGE;
    case RAFT_CANTBOOTSTRAP:
        return HERALD_EEXISTS;
    case RAFT_INVALID:
    case RAFT_BADID:
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return HERALD_EINVAL;
    default:
        return HERALD_EINTERNAL;
    }
}

int rio_group_add(rio_hub *h, const rio_group_config *cfg, rio_group **out)
{
    rio_driver *d;
    rio_group *g;
    int rc;

    if (!h || !cfg || !cfg->fsm)
        return HERALD_EINVAL;
    g = calloc(1, sizeof *g);
    if (!g)
        return HERALD_ENOMEM;
    g->hub = h;
    g->gid = cfg->group_id;
    if ((rc = rio_io_init(&g->io, h, cfg->group_id)) != 0)
        goto fail_alloc;
    rio_io_set_expand(&g->io, cfg->snapshot_expand, cfg->fsm);
    rc = raft_init(&g->raft, &g->io, cfg->fsm, rio_hub_node_id(h), rio_hub_address(h));
    if (rc != 0) {
        log_error("rio.group", "group %u: raft_init: %s", cfg->group_id, raft_strerror(rc));
        rc = raft_to_herald(rc);
        goto fail_io;
    }
    g->raft.data = g;
    raft_set_election_timeout(&g->raft, cfg->election_timeout ? cfg->election_timeout : 1000);
    raft_set_heartbeat_timeout(&g->raft, cfg->heartbeat_timeout ? cfg->heartbeat_timeout : 100);
    raft_set_snapshot_threshold(&g->raft,
                                cfg->snapshot_threshold ? cfg->snapshot_threshold : 1024);
    raft_set_snapshot_trailing(&g->raft, cfg->snapshot_trailing ? cfg->snapshot_trailing : 128);
    raft_set_pre_vote(&g->raft, true);
    d = rio_hub_driver(h);
    g->next = d->groups;
    d->groups = g;
    d->close = close_all;
    *out = g;
    return 0;

fail_io:
    rio_io_fini(&g->io);
fail_alloc:
    free(g);
    return rc;
}

int rio_group_bootstrap(rio_group *g, const rio_peer *peers, unsigned n)
{
    struct raft_configuration conf;
    unsigned i;
    int rc = 0;

    if (n == 0)
        return HERALD_EINVAL;
    raft_configuration_init(&conf);
    for (i = 0; i < n && rc == 0; i++)
        rc = raft_configuration_add(&conf, peers[i].id, peers[i].url, RAFT_VOTER);
    if (rc == 0)
        rc = raft_bootstrap(&g->raft, &conf);
    raft_configuration_close(&conf);
    return raft_to_herald(rc);
}

int rio_group_start(rio_group *g)
{
    int rc = raft_start(&g->raft);
    if (rc != 0) {
        log_error("rio.group", "group %u: raft_start: %s (%s)", g->gid, raft_strerror(rc),
                  raft_errmsg(&g->raft));
        return raft_to_herald(rc);
    }
    g->started = true;
    return 0;
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    proposal *p = req->data;
    p->cb(p->arg, raft_to_herald(status), result);
    free(p);
}

int rio_group_propose(rio_group *g, const void *data, size_t len, rio_apply_fn cb, void *arg)
{
    struct raft_buffer buf;
    proposal *p;
    int rc;

    if (!g->started || g->closed)
        return HERALD_ESHUTDOWN;
    if (raft_state(&g->raft) != RAFT_LEADER)
        return HERALD_ENOT_LEADER;
    p = calloc(1, sizeof *p);
    if (!p)
        return HERALD_ENOMEM;
    buf.len = len;
    buf.base = raft_malloc(len ? len : 1);
    if (!buf.base) {
        free(p);
        return HERALD_ENOMEM;
    }
    if (len)
        memcpy(buf.base, data, len);
    p->req.data = p;
    p->cb = cb;
    p->arg = arg;
    rc = raft_apply(&g->raft, &p->req, &buf, 1, on_applied);
    if (rc != 0) {
        /* raft_apply takes the buffer only when it returns 0 (raft.h); on
         * every error (NOTLEADER, NOMEM while appending to the in-memory
         * log, an io->append failure, which 0.15 undoes with logDiscard
         * without freeing) it is still ours. */
        raft_free(buf.base);
        free(p);
        return raft_to_herald(rc);
    }
    return 0;
}

bool rio_group_is_leader(rio_group *g)
{
    return g->started && !g->closed && raft_state(&g->raft) == RAFT_LEADER;
}

void rio_group_leader(rio_group *g, uint64_t *id, const char **url)
{
    raft_id lid = 0;
    const char *addr = NULL;

    if (g->started && !g->closed)
        raft_leader(&g->raft, &lid, &addr);
    *id = lid;
    *url = addr;
}

struct raft *rio_group_raft(rio_group *g)
{
    return &g->raft;
}

uint32_t rio_group_id(const rio_group *g)
{
    return g->gid;
}

static void on_raft_closed(struct raft *r)
{
    rio_group *g = r->data;
    g->closed = true;
}

/* rio_driver.close: closes every group and runs the loop until all have
 * closed, then frees them (rio_hub_destroy, before the transport and the
 * store stop). */
static void close_all(rio_hub *h)
{
    rio_driver *d = rio_hub_driver(h);
    rio_group *g, *next;
    bool waiting;

    for (g = d->groups; g; g = g->next)
        raft_close(&g->raft, on_raft_closed);
    do {
        waiting = false;
        for (g = d->groups; g; g = g->next)
            waiting |= !g->closed;
        if (waiting)
            ev_run(rio_hub_loop(h), EVRUN_ONCE);
    } while (waiting);
    for (g = d->groups; g; g = next) {
        next = g->next;
        free(g);
    }
    d->groups = NULL;
}
