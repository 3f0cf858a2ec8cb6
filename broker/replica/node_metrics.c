/* node_metrics.c — a node's Prometheus families and readiness (node_int.h:
 * node_metrics, node_ready), and the store families dev shares
 * (node_metrics.h). Loop thread. */
#include "node_int.h"
#include "node_metrics.h"
#include "outbox.h"

#define SVC_GROUPS_METRICS_MAX 65u

void store_metrics(prom_w *w, store *const *stores, uint32_t n)
{
    char id[16];
    prom_label l = {"group", id};
    prom_family(w, "herald_store_map_size_bytes", "gauge",
                "LMDB map size of a group store (grows by doubling when full)");
    for (uint32_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%u", i);
        prom_u64(w, "herald_store_map_size_bytes", &l, 1, store_map_size(stores[i]));
    }
    prom_family(w, "herald_store_map_used_bytes", "gauge",
                "Bytes of a group store's LMDB map in use (high-water mark of its pages)");
    for (uint32_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%u", i);
        prom_u64(w, "herald_store_map_used_bytes", &l, 1, store_map_used(stores[i]));
    }
    prom_family(w, "herald_store_applied_index", "gauge",
                "Last command index applied to a group store");
    for (uint32_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%u", i);
        prom_u64(w, "herald_store_applied_index", &l, 1, store_applied(stores[i]));
    }
}

static void offline_metrics(prom_w *w, const svc *s);

void callback_metrics(prom_w *w, const svc *s, store *const *stores, uint32_t n)
{
    char id[16];
    prom_label l = {"group", id};
    store_outbox_state os[SVC_GROUPS_METRICS_MAX];
    svc_cb_stats cs = {0};
    uint32_t m = n < SVC_GROUPS_METRICS_MAX ? n : SVC_GROUPS_METRICS_MAX;

    for (uint32_t i = 0; i < m; i++)
        if (store_outbox_state_get(stores[i], &os[i]) != 0)
            memset(&os[i], 0, sizeof os[i]);
    prom_family(w, "herald_callback_queue_depth", "gauge",
                "Events in a group's callback outbox: not yet delivered to every app that "
                "wants them (pruned every few seconds once they are)");
    for (uint32_t i = 0; i < m; i++) {
        snprintf(id, sizeof id, "%u", i);
        prom_u64(w, "herald_callback_queue_depth", &l, 1, os[i].held);
    }
    prom_family(w, "herald_callback_outbox_dropped_total", "counter",
                "Events removed from a group's outbox at its cap (100,000) or age limit (7 "
                "days) before every app acknowledged them");
    for (uint32_t i = 0; i < m; i++) {
        snprintf(id, sizeof id, "%u", i);
        prom_u64(w, "herald_callback_outbox_dropped_total", &l, 1, os[i].dropped);
    }
    if (s)
        svc_cb_stats_get(s, &cs);
    prom_one(w, "herald_callback_attempts_total", "counter", cs.attempts,
             "Callback POSTs finished by this process (groups it leads)");
    prom_one(w, "herald_callback_failures_total", "counter", cs.failures,
             "Callback POSTs answered non-2xx, timed out or refused");
    prom_one(w, "herald_callback_delivered_total", "counter", cs.delivered,
             "Callback POSTs acknowledged with 2xx");
    prom_one(w, "herald_callback_gave_up_total", "counter", cs.gave_up,
             "Events marked failed after their last attempt (re-deliverable)");
    prom_one(w, "herald_callback_inflight", "gauge", cs.inflight, "Callback POSTs in flight");
    offline_metrics(w, s);
}

/* The message.offline aggregator of the groups this process leads. */
static void offline_metrics(prom_w *w, const svc *s)
{
    svc_offline_stats os = {0};
    if (s)
        svc_offline_stats_get(s, &os);
    prom_one(w, "herald_offline_reports_taken_total", "counter", os.reports,
             "Offline report batches from the session tiers taken by this group leader");
    prom_one(w, "herald_offline_messages_total", "counter", os.messages,
             "Messages in them (one per tier and message)");
    prom_one(w, "herald_offline_late_total", "counter", os.late,
             "Reports of a message decided already, or repeated by one tier (ignored)");
    prom_one(w, "herald_offline_timed_out_total", "counter", os.timed_out,
             "Messages decided at callback.offline_wait_ms because a live tier did not report");
    prom_one(w, "herald_offline_dropped_total", "counter", os.dropped,
             "Messages given up by the aggregator (memory bound, submit failed)");
    prom_one(w, "herald_offline_commands_total", "counter", os.proposed,
             "OFFLINE commands proposed");
    prom_one(w, "herald_offline_events_total", "counter", os.events,
             "message.offline events they recorded");
    prom_one(w, "herald_offline_ignored_total", "counter", os.ignored,
             "Reported users apply left out (message gone or recalled, not a member)");
    prom_one(w, "herald_offline_pending", "gauge", os.pending,
             "Messages the aggregator holds (being decided, or remembered after)");
}

/* One gauge per group from f(group). */
static void per_group(node *n, prom_w *w, const char *name, const char *help,
                      uint64_t (*f)(node *, uint32_t))
{
    char id[16];
    prom_label l = {"group", id};
    prom_family(w, name, "gauge", help);
    for (uint32_t gi = 0; gi < n->ngroups; gi++) {
        snprintf(id, sizeof id, "%u", gi);
        prom_u64(w, name, &l, 1, f(n, gi));
    }
}

static uint64_t g_term(node *n, uint32_t g) { return rio_group_raft(n->groups[g].rg)->current_term; }
static uint64_t g_commit(node *n, uint32_t g) { return rio_group_raft(n->groups[g].rg)->commit_index; }
static uint64_t g_applied(node *n, uint32_t g) { return rio_group_raft(n->groups[g].rg)->last_applied; }
static uint64_t g_leads(node *n, uint32_t g) { return rio_group_is_leader(n->groups[g].rg); }
static uint64_t g_leader(node *n, uint32_t g) { return leader_of(n, g); }

void node_metrics(void *ctx, prom_w *w)
{
    node *n = ctx;
    ev_tstamp now = ev_now(n->loop);
    uint64_t *own = NULL;
    uint32_t n_own;
    rio_stats rs;
    evpub_stats es;
    char gid[16], nid[16];

    if (!n->groups_ready)
        return; /* still starting: the server's own families only */
    per_group(n, w, "herald_raft_term", "Current raft term of a group on this node", g_term);
    per_group(n, w, "herald_raft_commit_index", "Raft commit index of a group on this node",
              g_commit);
    per_group(n, w, "herald_raft_applied_index", "Last raft index applied by this replica",
              g_applied);
    per_group(n, w, "herald_raft_leader", "1 when this node leads the group", g_leads);
    per_group(n, w, "herald_raft_leader_id", "The group's leader as this node knows it (0: none)",
              g_leader);
    /* Replica lag: the leader's view (here for the groups led here, else
     * the leader's last report, pinged every second). */
    n_own = progress_of(n, &own);
    prom_family(w, "herald_raft_replica_lag", "gauge",
                "Entries a replica is behind the leader's commit index, as the leader knows it");
    for (uint32_t gi = 0; gi < n->ngroups; gi++) {
        const uint64_t *v = own;
        uint32_t nv = n_own;
        if (!rio_group_is_leader(n->groups[gi].rg)) {
            npeer *lp = peer_by_id(n, leader_of(n, gi));
            v = lp ? lp->prog : NULL;
            nv = lp ? lp->n_prog : 0;
        }
        for (uint32_t i = 0; v && i + 4 <= nv; i += 4) {
            prom_label l[2] = {{"group", gid}, {"node", nid}};
            if (v[i] != gi)
                continue;
            snprintf(gid, sizeof gid, "%u", gi);
            snprintf(nid, sizeof nid, "%llu", (unsigned long long)v[i + 1]);
            prom_u64(w, "herald_raft_replica_lag", l, 2,
                     v[i + 3] > v[i + 2] ? v[i + 3] - v[i + 2] : 0);
        }
    }
    free(own);
    rio_hub_stats(n->hub, &rs);
    prom_one(w, "herald_raft_log_commits_total", "counter", rs.txns,
             "Group commits of the raft log writer (one LMDB transaction and fsync each)");
    prom_one(w, "herald_raft_log_entries_total", "counter", rs.entries,
             "Raft log entries made durable");
    prom_one(w, "herald_raft_log_errors_total", "counter", rs.store_errs,
             "Raft log writer batches that failed");
    prom_family(w, "herald_raft_log_commit_seconds", "histogram",
                "Time of one raft log group commit: LMDB writes, commit and fsync");
    prom_hist_write(w, "herald_raft_log_commit_seconds", NULL, 0, &n->commit_lat);
    prom_one(w, "herald_raft_log_map_size_bytes", "gauge", rs.map_size,
             "LMDB map size of the raft log");
    prom_one(w, "herald_raft_messages_sent_total", "counter", rs.msgs_sent,
             "Raft messages sent");
    prom_one(w, "herald_raft_messages_received_total", "counter", rs.msgs_recv,
             "Raft messages received");
    store_metrics(w, n->stores, n->ngroups);
    callback_metrics(w, n->s, n->stores, n->ngroups);
    evpub_stats_get(n->pub, &es);
    prom_one(w, "herald_node_events_published_total", "counter", es.events,
             "Push events published to gateways");
    prom_one(w, "herald_node_event_batches_refused_total", "counter", es.failed,
             "Event batches nng refused (the gateways repair the gap)");
    prom_one(w, "herald_node_event_replays_total", "counter", es.replays,
             "Gap repair pulls served");
    prom_one(w, "herald_node_reach_waits_total", "counter", n->reach_waits,
             "HELLO / SYNC that waited for this node's replicas to apply what was pushed");
    prom_one(w, "herald_node_reach_timeouts_total", "counter", n->reach_timeouts,
             "Of those, told to retry after the bound");
    prom_family(w, "herald_node_peer_up", "gauge", "1 when the other node answered lately");
    for (uint32_t i = 0; i < n->cfg->n_members; i++) {
        npeer *p = &n->peers[i];
        prom_label l = {"node", nid};
        if (!p->rpc)
            continue; /* this node */
        snprintf(nid, sizeof nid, "%u", p->m->id);
        prom_u64(w, "herald_node_peer_up", &l, 1,
                 p->last_seen > 0 && now - p->last_seen < NODE_PEER_UP_S);
    }
}

bool node_ready(void *ctx, char *why, size_t whylen)
{
    node *n = ctx;
    ev_tstamp now = ev_now(n->loop);
    uint32_t up = 1; /* this node */
    if (!n->groups_ready) {
        snprintf(why, whylen, "starting: the raft groups are not started yet");
        return false;
    }
    for (uint32_t i = 0; i < n->cfg->n_members; i++)
        up += n->peers[i].rpc && n->peers[i].last_seen > 0 &&
              now - n->peers[i].last_seen < NODE_PEER_UP_S;
    if (up < n->cfg->n_members / 2 + 1) {
        snprintf(why, whylen, "no quorum: %u of %u nodes reachable", up, n->cfg->n_members);
        return false;
    }
    for (uint32_t gi = 0; gi < n->ngroups; gi++)
        if (!leader_of(n, gi)) {
            snprintf(why, whylen, "group %u (%s) has no known leader", gi,
                     gi == 0 ? "meta" : "shard");
            return false;
        }
    if (!n->slot_ok) {
        snprintf(why, whylen, "the slot map is not loaded yet (meta group)");
        return false;
    }
    return true;
}

void node_commit_observe(void *arg, uint64_t ns) { prom_hist_observe_ns(arg, ns); }
