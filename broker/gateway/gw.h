/*
 * gw.h — the client-facing gateway: libev, TCP, msgpack frames.
 *
 * It authenticates connections (HMAC tokens; the tenant comes only from the
 * verified token), turns requests into commands for the store's writer
 * (group commit; acks are sent only after the batch is durable), answers
 * reads from short LMDB read transactions, and pushes committed messages and
 * receipts to every online session of each member (multi-device).
 *
 * Per-connection limits protect the server: frame cap (checked before any
 * allocation), request rate (token bucket; excess requests get
 * RATE_LIMITED), output buffer cap (a client that does not read is
 * disconnected with SLOW_CONSUMER; memory never grows without bound), a hello
 * deadline and an idle timeout.
 *
 * Threads: everything runs on the loop thread passed to gw_create; the store's
 * writer thread hands results back through ev_async.
 */
#ifndef HERALD_GW_H
#define HERALD_GW_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct ev_loop;
typedef struct gw gw;

typedef struct gw_config {
    const char *listen;    /* "HOST:PORT" (port 0 = pick a free one) */
    uint32_t max_frame;    /* frame payload cap, bytes */
    uint32_t rate;         /* sustained requests/s per connection */
    uint32_t burst;        /* token-bucket depth, requests */
    size_t out_cap;        /* output buffer cap per connection, bytes */
    uint32_t hello_ms;     /* time allowed between accept and HELLO */
    uint32_t idle_ms;      /* close after this long without a frame */
    uint32_t hb_ms;        /* heartbeat interval advertised in WELCOME */
    uint32_t max_conns;    /* connection cap; more are refused with BUSY */
} gw_config;

/* Fills the defaults: 127.0.0.1:7400, 1 MiB frames, 2000 req/s burst 4000,
 * 8 MiB output, hello 10 s, idle 90 s, heartbeat 30 s, 10,000 conns. */
void gw_config_defaults(gw_config *cfg);

/* Creates the gateway over n open stores, one per shard group (stores[i]
 * holds group i; stores[0] also holds the tenants), starts a writer thread
 * per store, binds and listens. Conversations are routed by
 * herald_slot(tenant, conv) mod n. 0, HERALD_EINVAL (bad listen address or
 * store groups not 0..n-1), HERALD_EIO (bind/listen failed; errno kept),
 * HERALD_ENOMEM. */
int gw_create(const gw_config *cfg, struct ev_loop *loop, store *const *stores, uint32_t n,
              gw **out);

/* The bound TCP port (useful with port 0). */
uint16_t gw_port(const gw *g);

/* Stops accepting, commits and acknowledges everything queued, flushes and
 * closes every connection, stops the writer. Then frees. NULL-safe. */
void gw_destroy(gw *g);

#endif
