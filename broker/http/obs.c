/* obs.c — see obs.h. */
#include "obs.h"

#include <ev.h>
#include <herald/error.h>
#include <herald/protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_srv.h"
#include "json.h"

struct obs {
    obs_source src;       /* the process's metrics and readiness */
    struct ev_loop *loop; /* its loop */
    http_srv *srv;        /* the server */
    ev_tstamp started;    /* for herald_process_uptime_seconds */
    uint64_t scrapes;     /* /metrics answered */
};

static bool path_is(const http_req *rq, const char *p)
{
    return rq->path_len == strlen(p) && memcmp(rq->path, p, rq->path_len) == 0;
}

static void server_metrics(obs *o, prom_w *w)
{
    http_srv_stats st;
    prom_label l = {"process", o->src.process};
    http_srv_stats_get(o->srv, &st);
    prom_family(w, "herald_build_info", "gauge", "Version of this heraldd process (always 1)");
    {
        prom_label bl[2] = {{"version", HERALD_VERSION}, l};
        prom_u64(w, "herald_build_info", bl, 2, 1);
    }
    prom_family(w, "herald_process_uptime_seconds", "gauge", "Seconds since the process started");
    prom_f64(w, "herald_process_uptime_seconds", NULL, 0, ev_now(o->loop) - o->started);
    prom_one(w, "herald_http_connections", "gauge", st.conns,
             "Open connections of the HTTP server");
    prom_one(w, "herald_http_connections_refused_total", "counter", st.refused,
             "HTTP connections refused at the connection cap");
    prom_one(w, "herald_http_requests_total", "counter", st.requests,
             "HTTP requests handed to the routes");
    prom_one(w, "herald_http_rejected_total", "counter", st.rejected,
             "HTTP requests refused by the server (malformed, too large, too slow)");
    prom_one(w, "herald_http_scrapes_total", "counter", o->scrapes,
             "GET /metrics answered");
}

static void on_request(void *ctx, http_exchange *x, const http_req *rq, const uint8_t *body,
                       size_t n)
{
    obs *o = ctx;
    bool get = rq->method == HTTP_GET || rq->method == HTTP_HEAD;
    (void)body;
    (void)n;

    if (!path_is(rq, "/metrics") && !path_is(rq, "/healthz") && !path_is(rq, "/readyz")) {
        if (!o->src.route || !o->src.route(o->src.route_ctx, x, rq, body, n))
            http_reply_error(x, 404, HERALD_ENOT_FOUND, "no such path");
        return;
    }
    if (!get) {
        http_reply_error(x, 405, HERALD_EUNSUPPORTED, "method not allowed: use GET or HEAD");
        return;
    }
    if (path_is(rq, "/healthz")) {
        http_reply(x, 200, "text/plain; charset=utf-8", "ok\n", 3);
    } else if (path_is(rq, "/readyz")) {
        char why[256] = "";
        if (o->src.ready(o->src.ctx, why, sizeof why))
            http_reply(x, 200, "text/plain; charset=utf-8", "ok\n", 3);
        else
            http_reply_error(x, 503, HERALD_EUNAVAILABLE, why[0] ? why : "not ready");
    } else {
        herald_buf b = {0};
        prom_w w = {.b = &b};
        o->src.metrics(o->src.ctx, &w);
        server_metrics(o, &w);
        o->scrapes++;
        if (w.err)
            http_reply_error(x, 500, HERALD_ENOMEM, "out of memory");
        else
            http_reply(x, 200, PROM_CONTENT_TYPE, b.data, b.len);
        herald_buf_free(&b);
    }
}

int obs_create(const char *listen, struct ev_loop *loop, const obs_source *src, obs **out)
{
    http_srv_config hc = {.listen = listen, .tls_cert = src->tls_cert};
    http_handler h;
    obs *o = calloc(1, sizeof *o);
    int rc;

    if (!o)
        return HERALD_ENOMEM;
    o->src = *src;
    o->loop = loop;
    o->started = ev_now(loop);
    h = (http_handler){.ctx = o, .request = on_request};
    rc = http_srv_create(&hc, loop, &h, &o->srv);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

uint16_t obs_port(const obs *o) { return http_srv_port(o->srv); }

void obs_destroy(obs *o)
{
    if (!o)
        return;
    http_srv_destroy(o->srv);
    free(o);
}
