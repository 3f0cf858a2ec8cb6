/* tier_metrics.c — the session tier's counters as Prometheus families
 * (tier.h: tier_metrics). Loop thread. */
#include <herald/error.h>
#include <stdio.h>
#include <string.h>

#include "prom.h"
#include "tier_int.h"

void tier_metrics(const tier *t, prom_w *w)
{
    uint64_t conns, users;

    tier_counts(t, &conns, &users);
    prom_family(w, "herald_gateway_connections", "gauge",
                "Open client connections by transport (the listener's framing)");
    for (uint32_t i = 0; i < t->nls; i++) {
        prom_label l = {"transport", t->ls[i].ops->name};
        prom_u64(w, "herald_gateway_connections", &l, 1, t->ls[i].nconns);
    }
    prom_family(w, "herald_gateway_connections_accepted_total", "counter",
                "Client connections accepted by transport");
    for (uint32_t i = 0; i < t->nls; i++) {
        prom_label l = {"transport", t->ls[i].ops->name};
        prom_u64(w, "herald_gateway_connections_accepted_total", &l, 1, t->ls[i].accepted);
    }
    prom_one(w, "herald_gateway_connections_refused_total", "counter", t->st.refused,
             "Client connections refused at gateway.max_conns or while stopping");
    prom_one(w, "herald_gateway_users_online", "gauge", users,
             "Distinct users with a session here");
    prom_family(w, "herald_gateway_frames_received_total", "counter",
                "Client frames received and decoded, by frame type");
    for (uint32_t i = 0; i < HERALD_FT_COUNT_; i++) {
        const char *name = herald_frame_type_name(i);
        prom_label l = {"type", name};
        if (strcmp(name, "UNKNOWN") == 0 || (!t->st.frames[i] && i != HERALD_FT_HELLO && i != HERALD_FT_SEND))
            continue; /* types never seen are left out, HELLO and SEND always there */
        prom_u64(w, "herald_gateway_frames_received_total", &l, 1, t->st.frames[i]);
    }
    prom_one(w, "herald_gateway_frames_refused_total", "counter", t->st.bad_frames,
             "Client frames refused before decoding (over gateway.max_frame, malformed)");
    prom_family(w, "herald_gateway_errors_sent_total", "counter",
                "ERROR frames and closing errors sent to clients by this process, by code");
    for (int i = 1; i < HERALD_E_COUNT_; i++) {
        prom_label l = {"code", herald_err_name(i)};
        if (!t->st.errors[i])
            continue;
        prom_u64(w, "herald_gateway_errors_sent_total", &l, 1, t->st.errors[i]);
    }
    prom_one(w, "herald_gateway_events_total", "counter", t->st.events,
             "Pushes handed to the session tier before fan-out to sessions");
    prom_one(w, "herald_gateway_deliveries_total", "counter", t->st.pushes,
             "DELIVER copies queued for sessions (one per online session of a recipient)");
    prom_family(w, "herald_gateway_delivery_latency_seconds", "histogram",
                "From a message's commit time (its ts, ms resolution) to its DELIVER being "
                "queued for a session");
    prom_hist_write(w, "herald_gateway_delivery_latency_seconds", NULL, 0, &t->st.push_lat);
}
