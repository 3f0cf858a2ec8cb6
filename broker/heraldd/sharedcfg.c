/* sharedcfg.c — see sharedcfg.h. */
#include "sharedcfg.h"

#include <stdio.h>
#include <string.h>

cmd tenantcfg_command(const tenant_defaults *d, const char *name, const char *hex)
{
    return (cmd){.op = CMD_TENANT_CREATE, .tenant = herald_str_z(name),
                 .secret = herald_str_z(hex), .win = d->recall_window,
                 .ivl = d->urgent_interval, .max = d->urgent_max,
                 .flags = d->receipts ? 0 : CMD_TENANT_NO_RECEIPTS,
                 .dedup_s = d->app_dedup, .freq = d->app_freq,
                 .climit = d->customer_limit, .xwait = d->transfer_wait,
                 .corp = herald_str_z(d->display_name[0] ? d->display_name : NULL)};
}

void gwlimits_config(gw_limits *l, gw_config *g)
{
    const char *colon = strrchr(l->listen, ':');
    if (colon && strcmp(colon, ":0") == 0 && strcmp(l->ws_listen, GWLIMITS_WS_DEFAULT) == 0)
        snprintf(l->ws_listen, sizeof l->ws_listen, "%.*s:0", (int)(colon - l->listen),
                 l->listen);
    if (colon && strcmp(colon, ":0") == 0 && strcmp(l->http_listen, GWLIMITS_HTTP_DEFAULT) == 0)
        snprintf(l->http_listen, sizeof l->http_listen, "%.*s:0", (int)(colon - l->listen),
                 l->listen);
    /* The same for MQTT: a test's gateway on a free port never takes 1883. */
    if (colon && strcmp(colon, ":0") == 0 && strcmp(l->mqtt_listen, GWLIMITS_MQTT_DEFAULT) == 0)
        snprintf(l->mqtt_listen, sizeof l->mqtt_listen, "%.*s:0", (int)(colon - l->listen),
                 l->listen);
    gw_config_defaults(g);
    g->listen = l->listen;
    g->max_frame = l->max_frame;
    g->rate = l->rate;
    g->burst = l->rate * 2;
    g->out_cap = (size_t)l->out_cap;
    g->hello_ms = l->hello_ms;
    g->idle_ms = l->idle_ms;
    g->max_conns = l->max_conns;
    g->tls_cert = l->tls_cert;
    g->byte_rate = l->byte_rate;
    g->ws_listen = l->ws_listen;
    g->ws_origins = l->ws_origins;
    g->mqtt_listen = l->mqtt_listen;
    g->mqtt_sessions = l->mqtt_sessions;
    g->offline_batch_ms = l->offline_batch_ms;
}

int tenantcfg_split(const char *list, char out[][TOKEN_ID_MAX + 1])
{
    int n = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (n == TENANTCFG_MAX || !token_id_valid(p, len))
            return 0;
        memcpy(out[n], p, len);
        out[n++][len] = '\0';
        p += len;
        if (*p == ',')
            p++;
    }
    return n;
}
