/*
 * api.h — the open API: HTTP+JSON under /api/v1/ for enterprise apps (HR,
 * CRM, approvals), and the admin console's static files under /console/,
 * mounted on a process's HTTP server (http/obs.h). Every API call becomes
 * one Herald request frame and runs through the same request service as
 * the wire protocol — in `heraldd dev` directly, in `heraldd gateway`
 * forwarded to the node leading its group — as the holder of the call's
 * bearer token, with the same authorization table; the reply frames come
 * back as one JSON object.
 *
 * Credentials: `POST /api/v1/token` takes what `herald --admin app create`
 * printed and answers an access token (two hours); every other call sends
 * `Authorization: Bearer TOKEN` (or `?access_token=`): an app's access
 * token, a tenant admin's token or a user's token (from POST
 * /api/v1/user/token) — each scoped to its tenant and its role.
 *
 * Answers: 200 with {"errcode":0,"errmsg":"ok",…}; errors 4xx/5xx with
 * {"errcode":N,"errmsg":"…"} where N is the Herald error code
 * (include/herald/error.h). Bodies are JSON objects with known fields
 * only; a body over the server's cap is refused from its Content-Length
 * before it is read (413). Calls are rate-limited per token subject (app
 * or user): api_config.rate per second, burst api_config.burst (429
 * RATE_LIMITED).
 *
 * The route table (api_routes.c) is the one description of the API: the
 * router, the OpenAPI 3 document (GET /api/v1/openapi.json, api_openapi.c)
 * and the README's endpoint table come from it.
 *
 * Threads: the loop thread of the HTTP server, for everything.
 */
#ifndef HERALD_API_H
#define HERALD_API_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_srv.h"

struct ev_loop;
struct prom_w;
typedef struct api api;

/* The outcome of one request: 0 and the reply frames (frames[0..n): whole
 * wire frames, length headers included, as herald_frame_encode writes
 * them; borrowed for the call), or a Herald error code and its text (the
 * request did not run, or its outcome is unknown: text says which). */
typedef void (*api_done_fn)(void *arg, int code, const char *text, const uint8_t *frames,
                            size_t n);

typedef struct api_backend {
    void *ctx;
    /* Runs frame f (read during the call; payload[0..len): its msgpack map,
     * no length header) as
     * the holder of token (NULL: no session; only APP login runs so), and
     * calls done(arg, …) exactly once, now or later, on the loop thread.
     * token is verified by whoever runs the request (signature, tenant,
     * expiry). */
    void (*request)(void *ctx, const char *token, herald_frame *f, const uint8_t *payload,
                    size_t len, api_done_fn done, void *arg);
} api_backend;

typedef struct api_config {
    uint32_t rate;           /* sustained calls/s per token subject (0 → 100) */
    uint32_t burst;          /* bucket depth (0 → 2 × rate) */
    const char *console_dir; /* directory of the console's files; NULL/"": none */
    uint32_t max_frame;      /* the clients' frame cap: bigger requests are 413 */
} api_config;

/* 0, HERALD_EINVAL (console_dir set but not a directory), HERALD_ENOMEM. */
int api_create(const api_config *cfg, struct ev_loop *loop, const api_backend *be, api **out);
/* Takes the request when its path is under /api/ or /console (true), and
 * answers it then (now or later); false: not the API's. */
bool api_route(api *a, http_exchange *x, const http_req *rq, const uint8_t *body, size_t n);
/* Appends the API's metric families: calls by route and status, rate
 * limited calls, calls in flight. */
void api_metrics(const api *a, struct prom_w *w);
/* Calls in flight keep a reference: the api is freed when the last one is
 * answered. NULL-safe. */
void api_destroy(api *a);

#endif
