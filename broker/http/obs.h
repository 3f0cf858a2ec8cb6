/*
 * obs.h — the operators' HTTP endpoints of a heraldd process, on http_srv:
 *
 *   GET /metrics   Prometheus text format 0.0.4: the process's families
 *                  (obs_source.metrics) and the HTTP server's own
 *   GET /healthz   200 "ok" while the loop runs (answered from the loop)
 *   GET /readyz    200 "ok" when obs_source.ready says so, else 503 with
 *                  {"errcode":24,"errmsg":REASON}
 *
 * HEAD works wherever GET does. A known path with another method gets 405,
 * any other path 404, both with {"errcode":N,"errmsg":"..."}.
 *
 * Threads: the loop thread; the source's callbacks run on it.
 */
#ifndef HERALD_HTTP_OBS_H
#define HERALD_HTTP_OBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_srv.h"
#include "prom.h"

struct ev_loop;
typedef struct obs obs;

typedef struct obs_source {
    void *ctx;
    const char *process; /* "dev", "node", "gateway": herald_build_info's label */
    /* Appends the process's metric families. */
    void (*metrics)(void *ctx, prom_w *w);
    /* True when the process serves; else false with a reason in why. */
    bool (*ready)(void *ctx, char *why, size_t whylen);
    /* Every other path first goes here (the open API, api.h): true when
     * taken (and answered, now or later). NULL: 404 for every other path. */
    bool (*route)(void *ctx, http_exchange *x, const http_req *rq, const uint8_t *body,
                  size_t n);
    void *route_ctx;
    const char *tls_cert; /* set: the port speaks HTTPS only with it (http_srv.h) */
} obs_source;

/* Listens on listen ("HOST:PORT", port 0 = a free one). 0, HERALD_EINVAL,
 * HERALD_EIO (errno kept), HERALD_ENOMEM. */
int obs_create(const char *listen, struct ev_loop *loop, const obs_source *src, obs **out);
/* The bound port. */
uint16_t obs_port(const obs *o);
/* NULL-safe. */
void obs_destroy(obs *o);

#endif
