/*
 * rpc.h — request/reply between Herald processes over nng, driven by a
 * libev loop with no extra threads.
 *
 * Both ends use nng's raw REQ0/REP0 sockets and NNG_OPT_RECVFD in an ev_io
 * watcher, so every receive, send and callback happens on the loop thread
 * (nng's own threads never call back into us). A client talks to one
 * target over a few REQ sockets (lanes, one pipe each) with our own request
 * ids and per-call deadlines; raw mode never resends, so a request reaches
 * the server at most once — retrying is the caller's decision. A lane keeps
 * at most 48 requests on the wire: nng's raw REP queues at most 64 replies
 * per pipe and frees the rest without a word, so more in flight would lose
 * answers in a burst. A request that timed out on the wire keeps its place
 * among those 48 until its late answer comes or its connection closes (its
 * caller has had HERALD_ETIMEOUT). Requests past the lanes' room wait in
 * the client, in order (bounded: then HERALD_EBUSY); nng itself holds at
 * most 8 per lane, so what waits while the server is down ends as never
 * sent.
 *
 * Threads: everything on the loop thread given at creation.
 * Errors: Herald codes.
 */
#ifndef HERALD_NODE_RPC_H
#define HERALD_NODE_RPC_H

#include <herald/protocol.h>
#include <stddef.h>
#include <stdint.h>

#include "clink.h"

struct ev_loop;
typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;
typedef struct rpc_client rpc_client;

/* A request arrived: p[0..n) is valid during the call only. The handler
 * must eventually answer it exactly once with rpc_reply or rpc_drop. */
typedef void (*rpc_serve_fn)(void *arg, rpc_call *call, const uint8_t *p, size_t n);

/* Listens on url (e.g. tcp://127.0.0.1:7411; with tls, its tls+tcp form:
 * only peers with a certificate of the cluster CA get through, clink.h).
 * max_msg caps received messages. 0, HERALD_EIO (listen failed),
 * HERALD_ENOMEM. */
int rpc_server_create(struct ev_loop *loop, const char *url, size_t max_msg, const clink *tls,
                      rpc_serve_fn fn, void *arg, rpc_server **out);

/* Answers and frees call. A reply that cannot be sent (the client went
 * away, the server is closed) is dropped: the client's deadline covers it. */
void rpc_reply(rpc_call *call, const void *p, size_t n);
/* Frees call without an answer. */
void rpc_drop(rpc_call *call);

/* Stops listening and frees. Calls not yet answered stay valid (answer or
 * drop them; their replies go nowhere). NULL-safe. */
void rpc_server_destroy(rpc_server *s);

/* The reply of one request: status 0 with p[0..n) (valid during the call
 * only), or HERALD_ETIMEOUT (no reply before the deadline), HERALD_EIO (could
 * not be sent), HERALD_ESHUTDOWN (client destroyed). */
typedef void (*rpc_done_fn)(void *arg, int status, const uint8_t *p, size_t n);

/* Dials url in the background (reconnecting as needed); with tls the
 * server's certificate must name `peer` ("node-N"). 0, HERALD_EINVAL,
 * HERALD_ENOMEM, HERALD_EIO. */
int rpc_client_create(struct ev_loop *loop, const char *url, size_t max_msg, const clink *tls,
                      const char *peer, rpc_client **out);

/* Sends p[0..n) with a deadline (waiting for a lane counts: a request
 * still waiting at its deadline ends with HERALD_EIO, never sent). 0: done
 * runs exactly once, later, never from inside this call. Otherwise
 * HERALD_EBUSY (too many waiting), HERALD_ENOMEM or HERALD_ESHUTDOWN
 * (during rpc_client_destroy) and done never runs. */
int rpc_send(rpc_client *c, const void *p, size_t n, unsigned timeout_ms, rpc_done_fn done,
             void *arg);
/* As rpc_send; requests with the same key (not 0) go out on one lane and so
 * reach the server in the order sent (what the server does with them
 * concurrently is its own). key 0: any lane, as rpc_send. */
int rpc_send_keyed(rpc_client *c, uint32_t key, const void *p, size_t n, unsigned timeout_ms,
                   rpc_done_fn done, void *arg);

/* Requests without an answer yet (sent or waiting). */
size_t rpc_inflight(const rpc_client *c);

/* Calls every pending done with HERALD_ESHUTDOWN, closes, frees.
 * NULL-safe. */
void rpc_client_destroy(rpc_client *c);

#endif
