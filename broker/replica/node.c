/*
 * node.c — `heraldd node`: a raft replica of every group plus the request
 * service, serving gateways.
 *
 * Data layout under node.data:
 *   raft/        the rio hub's LMDB env (log, term, vote, snapshots of all groups)
 *   groups/gN/   the store of group N (0 = meta), opened without fsync: the
 *                raft log is the durability, restored from snapshots
 *   tenant-NAME.env  HERALD_TENANT / HERALD_SECRET once the tenant exists
 *
 * Request flow: a gateway sends NW_CLIENT to the node it believes leads the
 * frame's group. A node that does not lead it answers NOT_LEADER with its
 * hint. Otherwise the request service runs it (the same handlers as
 * `heraldd dev`, the reply sink collecting frames); commands go to raft: proposed here when this
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
#include "node_int.h"
#include "envfile.h"
#include "shutdown.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Events to gateways. */

static void publish(node *n, nw_event *e)
{
    if (evpub_add(n->pub, e) != 0)
        log_warn("node.publish", "an event was not published (gateways see the gap)");
}

static void ev_push(void *ctx, uint32_t group, uint64_t index, const char *tenant,
                    const char *const *users, const uint64_t *prevs, uint32_t nu,
                    const herald_frame *f)
{
    node *n = ctx;
    herald_buf fb = {0};
    herald_str *uv = calloc(nu + 1, sizeof *uv);
    nw_event e = {.kind = NW_EV_FRAME, .tenant = herald_str_z(tenant), .n_users = nu,
                  .n_prevs = prevs ? nu : 0, .prevs = (uint64_t *)prevs, .group = group,
                  .index = index};

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

static void ev_dnd(void *ctx, const char *tenant, const char *user, uint64_t until)
{
    node *n = ctx;
    herald_str u = herald_str_z(user);
    nw_event e = {.kind = NW_EV_DND, .tenant = herald_str_z(tenant), .n_users = 1,
                  .users = &u, .until = until};
    publish(n, &e);
}


/* FSM hook, after the entry's commit: the leader tells the gateways about
 * what it applied. */
static void on_applied(void *arg, uint32_t group, uint64_t index, const uint8_t *cmdp,
                       size_t len, const apply_result *res)
{
    ngroup *ng = arg;
    (void)group;
    (void)index;
    if (ng->n->s && ng->rg && rio_group_is_leader(ng->rg)) {
        events_sink sink = {.ctx = ng->n, .push = ev_push, .dnd = ev_dnd};
        /* Another leader may have pushed in between: a new term, a new chain. */
        events_chain_term(ng->chain, rio_group_raft(ng->rg)->current_term);
        events_emit(res, ng->chain, &sink);
        if (res->outbox_events)
            svc_outbox_written(ng->n->s, ng->id);
    }
    if (ng->waiting)
        wait_release(ng, false);
    reach_applied(ng->n);
    if (ng->id == 0 && res->op == CMD_SLOTMAP && !res->err)
        slotmap_tick(ng->n);
}

/* ------------------------------------------------------------------------
 * Housekeeping: tenants, env files, peer liveness. */


static void tenant_created(void *arg, int status, void *result)
{
    node *n = arg;
    const apply_result *res = result;
    n->tenant_busy = false;
    if (status || (res && res->err && res->err != HERALD_EEXISTS))
        log_warn("node.tenant", "creating a tenant failed: %s",
                 herald_err_name(status ? status : res->err));
}

/* Writes DATA/tenant-NAME.env (envfile.h) unless it exists. */
static void write_tenant_env(node *n, const char *name, const store_tenant *t)
{
    char file[TOKEN_ID_MAX + 16], path[PATH_MAX], hex[TOKEN_SECRET_HEX + 1], text[256];
    struct stat sb;

    snprintf(file, sizeof file, "tenant-%.*s.env", (int)TOKEN_ID_MAX, name);
    if (snprintf(path, sizeof path, "%s/%s", n->cfg->data, file) >= (int)sizeof path ||
        stat(path, &sb) == 0)
        return;
    token_secret_to_hex(t->secret, hex);
    snprintf(text, sizeof text, "HERALD_TENANT=%.*s\nHERALD_SECRET=%s\n", (int)TOKEN_ID_MAX, name,
             hex);
    if (envfile_write(n->cfg->data, file, text) == 0)
        log_info("node.tenant", "tenant %s ready (%s)", name, path);
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
 * writes it: slot s → group route_slot_group's formula for cluster.groups. */
void slotmap_tick(node *n)
{
    store *meta = n->groups[0].st;
    int rc;

    if (n->slot_ok || n->slot_bad)
        return;
    rc = store_slotmap_get(meta, n->slotmap);
    if (rc == 0) {
        if (svc_set_slotmap(n->s, n->slotmap) != 0) {
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
            map[s] = (uint8_t)route_slot_group(s, n->ngroups);
        if (cmd_encode(&c, &b) == 0 &&
            group_propose(&n->groups[0], b.data, b.len, slotmap_proposed, n) == 0)
            n->slot_busy = true;
        herald_buf_free(&b);
    }
}

static void tenants_tick(node *n)
{
    char names[TENANTCFG_MAX][TOKEN_ID_MAX + 1];
    int k = tenantcfg_split(n->cfg->tenants, names);
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
    node *n = w->data;
    char who[32];
    (void)revents;
    snprintf(who, sizeof who, "node %u", n->cfg->id);
    log_info("node.signal", "signal %d: shutting down (budget %u s)", w->signum,
             n->cfg->shutdown_s);
    shutdown_begin(n->cfg->shutdown_s, who);
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
    svc_config svcc = {.max_frame = cfg->max_frame, .hb_ms = SVC_HB_MS_DEFAULT,
                       .cb = {.on = true, .max_attempts = cfg->cb.max_attempts,
                              .backoff_ms = cfg->cb.backoff_ms,
                              .timeout_ms = cfg->cb.timeout_ms,
                              .offline_wait_ms = cfg->cb.offline_wait_ms}};
    svc_backend be = {.ctx = n, .submit = be_submit, .leads = be_leads, .status = be_status,
                      .leader = be_leader, .gateways = be_gateways};
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
    if (!cfg->plaintext) {
        char err[512];
        if (clink_create(cfg->tls_ca, cfg->tls_cert, &n->tls, err, sizeof err) != 0) {
            fprintf(stderr, "heraldd: cluster.tls_ca / cluster.tls_cert: %s\n", err);
            goto out;
        }
    }
    /* Peers: rpc clients for forwarding and liveness. */
    for (uint32_t i = 0; i < cfg->n_members; i++) {
        char peer[32];
        n->peers[i].m = &cfg->member[i];
        rpeers[i] = (rio_peer){.id = cfg->member[i].id, .url = cfg->member[i].raft_url};
        snprintf(peer, sizeof peer, "node-%u", cfg->member[i].id);
        if (i != cfg->self && rpc_client_create(loop, cfg->member[i].req_url, NODE_MAX_MSG,
                                                n->tls, peer, &n->peers[i].rpc)) {
            fprintf(stderr, "heraldd: cluster.members: cannot dial %s\n", cfg->member[i].req_url);
            goto out;
        }
    }
    /* The request service over the replicated stores. */
    if (svc_create(&svcc, loop, n->stores, n->ngroups, &be, &n->s) != 0) {
        fprintf(stderr, "heraldd: cannot create the request service\n");
        goto out;
    }
    evc = (evpub_config){.url = self->pub_url, .node_id = cfg->id,
                         .sendbuf = cfg->events_sendbuf, .ring = cfg->events_ring,
                         .tls = n->tls};
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
    hc.tls = n->tls;
    prom_hist_init(&n->commit_lat);
    hc.commit_observe = node_commit_observe;
    hc.commit_arg = &n->commit_lat;
    if (rio_hub_create(loop, &hc, &n->hub) != 0) {
        fprintf(stderr, "heraldd: cannot start raft on %s (data %s)\n", self->raft_url, path);
        goto out;
    }
    for (uint32_t i = 0; i < n->ngroups; i++) {
        ngroup *ng = &n->groups[i];
        fsm_config fc = {.st = ng->st, .group = i, .applied = on_applied, .arg = ng,
                         .loop = loop, .log_bytes = (size_t)cfg->raft_log_bytes,
                         .snapshot_threshold = cfg->snapshot_threshold,
                         .snapshot_trailing = cfg->snapshot_trailing};
        rio_group_config rc_ = {.group_id = i, .fsm = &ng->fsm,
                                .election_timeout = cfg->election_ms,
                                .heartbeat_timeout = cfg->heartbeat_ms,
                                .snapshot_threshold = cfg->snapshot_threshold,
                                .snapshot_trailing = cfg->snapshot_trailing,
                                .snapshot_expand = fsm_snapshot_expand};
        int r;
        if (events_chain_new(cfg->chain_users, &ng->chain) != 0 || fsm_init(&ng->fsm, &fc) != 0)
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
    n->groups_ready = true;
    if (cfg->http_listen[0]) {
        obs_source os = {.ctx = n, .process = "node", .metrics = node_metrics,
                         .ready = node_ready};
        os.tls_cert = cfg->http_tls ? cfg->tls_cert : NULL; /* the node's cluster certificate */
        if (obs_create(cfg->http_listen, loop, &os, &n->obs) != 0) {
            fprintf(stderr, "heraldd: node.http_listen: cannot listen on %s\n",
                    cfg->http_listen);
            goto out;
        }
    }
    if (rpc_server_create(loop, self->req_url, NODE_MAX_MSG, n->tls, on_request, n, &n->srv) !=
        0) {
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
    sigterm.data = sigint.data = n;
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    log_info("node.ready",
             "node %u ready: raft %s, requests %s, events %s (%s), HTTP port %u, %u groups, "
             "data %s", cfg->id, self->raft_url, self->req_url, self->pub_url,
             n->tls ? "mutual TLS" : "plaintext", n->obs ? obs_port(n->obs) : 0, n->ngroups,
             cfg->data);
    ev_run(loop, 0);
    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sigint);
    ev_timer_stop(loop, &n->tick);
    rc = 0;
out:
    n->stopping = true;
    obs_destroy(n->obs);
    n->obs = NULL;
    n->groups_ready = false;
    reach_stop(n);
    /* What the last iteration applied: committed, hooks and deferred
     * replies run while the groups and the core still exist. */
    for (uint32_t i = 0; n->groups && i < n->ngroups; i++)
        if (n->groups[i].fsm_ready)
            fsm_flush(&n->groups[i].fsm);
    rpc_server_destroy(n->srv);
    /* Groups close first (pending proposals fail with SHUTDOWN and reach
     * the request service), then the service, then the peers. */
    rio_hub_destroy(n->hub);
    for (uint32_t i = 0; i < cfg->n_members; i++) {
        rpc_client_destroy(n->peers[i].rpc);
        free(n->peers[i].prog);
    }
    for (uint32_t i = 0; n->groups && i < n->ngroups; i++)
        wait_release(&n->groups[i], true);
    while (n->props) /* waiting for a leader: tell their requesters */
        prop_finish_err(n->props, HERALD_ESHUTDOWN, "the node is shutting down");
    svc_destroy(n->s);
    evpub_destroy(n->pub);
    for (uint32_t i = 0; n->groups && i < n->ngroups; i++) {
        if (n->groups[i].fsm_ready)
            fsm_fini(&n->groups[i].fsm);
        events_chain_free(n->groups[i].chain);
    }
    for (uint32_t i = 0; i < opened; i++)
        store_close(n->stores[i]);
    free(n->groups);
    free(n->stores);
    clink_destroy(n->tls);
    log_info("node.stop", "node %u stopped (%lu ms after the signal)", cfg->id,
             shutdown_elapsed_ms());
    return rc;
}

