/*
 * cbhttp.h — the callback deliverer's HTTP client: POSTs made by libcurl
 * (one multi handle) on a thread of its own, results handed back to the
 * loop thread through ev_async.
 *
 * The loop thread fills a cbhttp_req and posts it; the request is the
 * thread's until its done callback runs (on the loop thread), with
 * status (the HTTP status, 0 when none came) and err (curl's reason) set.
 * Nothing is retried here: the deliverer decides.
 *
 * Threads: cbhttp_create / cbhttp_post / cbhttp_destroy and the callback
 * on the loop thread; the transfers on the client's thread.
 */
#ifndef HERALD_SERVICE_CBHTTP_H
#define HERALD_SERVICE_CBHTTP_H

#include <herald/protocol.h>
#include <stdint.h>

struct ev_loop;
typedef struct cbhttp cbhttp;

typedef struct cbhttp_req {
    /* in (set by the poster) */
    char *url;                 /* malloc'd; freed by cbhttp_req_free */
    herald_buf body;           /* the JSON body */
    char headers[4][160];      /* "Name: value" lines besides Content-Type */
    uint32_t n_headers;
    uint32_t timeout_ms;       /* the whole transfer */
    void *cookie;              /* the poster's */
    /* out (set before done) */
    long status;               /* HTTP status; 0: none (refused, timed out …) */
    char err[160];             /* why, when status is not 2xx */
    /* private */
    void *easy;
    struct curl_slist *hl;
    struct cbhttp_req *next;
} cbhttp_req;

typedef void (*cbhttp_done_fn)(void *arg, cbhttp_req *req);

/* Starts the thread. 0, HERALD_ENOMEM, HERALD_EINTERNAL (curl or thread). */
int cbhttp_create(struct ev_loop *loop, cbhttp_done_fn done, void *arg, cbhttp **out);
/* Hands req over (0) or HERALD_ESHUTDOWN / HERALD_ENOMEM (req still the
 * caller's). */
int cbhttp_post(cbhttp *h, cbhttp_req *req);
/* Requests posted and not yet called back. */
uint32_t cbhttp_inflight(const cbhttp *h);
/* Stops the thread; requests still in flight are called back with status 0
 * and err "shutting down" before it returns. NULL-safe. */
void cbhttp_destroy(cbhttp *h);
/* Frees a request's url and body, and the request. NULL-safe. */
void cbhttp_req_free(cbhttp_req *r);

#endif
