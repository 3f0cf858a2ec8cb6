/* node_status.c — the admin status document of `heraldd node`: nodes,
 * groups, leaders, replicas and their lag, raft and event counters. */
#include "node_int.h"

/* ------------------------------------------------------------------------
 * Status. */

/* (group, node, match, commit) for every replica of the groups led here;
 * *out is malloc'd. */
uint32_t progress_of(node *n, uint64_t **out)
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

void status_json(node *n, json_w *w)
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
        /* HELLO / SYNC that waited for a replica here to apply what a
         * gateway had pushed, and those told to retry after the bound. */
        json_key(w, "reach");
        json_obj(w);
        json_key(w, "waits");
        json_u64(w, n->reach_waits);
        json_key(w, "timeouts");
        json_u64(w, n->reach_timeouts);
        json_key(w, "wait_ms_total");
        json_u64(w, n->reach_wait_ms_sum);
        json_key(w, "wait_ms_max");
        json_u64(w, n->reach_wait_ms_max);
        json_obj_end(w);
    }
    json_obj_end(w);
    free(own);
}

void be_status(void *ctx, json_w *w) { status_json(ctx, w); }

