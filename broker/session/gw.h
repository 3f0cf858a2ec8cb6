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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apply.h"
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
    size_t queue_bytes;    /* dev mode: bytes one group's writer may have queued (0 none) */
    uint64_t byte_rate;    /* sustained frame bytes/s per connection (burst 2× or two
                              frame caps); excess gets RATE_LIMITED */
    const char *tls_cert;  /* PEM file: certificate (+ chain) then key; set: the client
                              port speaks TLS only (gw_tls.h). NULL/"": plain TCP */
} gw_config;

/* Fills the defaults: 127.0.0.1:7400, 1 MiB frames, 2000 req/s burst 4000,
 * 8 MiB output, hello 10 s, idle 90 s, heartbeat 30 s, 10,000 conns. */
void gw_config_defaults(gw_config *cfg);

struct json_w;
typedef struct conn conn;

/* Cluster mode: how the gateway core reaches state machines and sessions
 * that live in other processes. All hooks run on the loop thread; any may be
 * NULL (then the dev-mode behaviour applies). The same core runs
 *   - in `heraldd dev`: no backend; stores with writer threads, local
 *     sessions;
 *   - in `heraldd node`: stores replicated by raft (submit/leads), pushes
 *     published to gateways (push/dnd), no client listener (listen "");
 *     requests arrive from gateways as virtual connections (gw_vconn_*);
 *   - in `heraldd gateway`: no stores (n = 0); every client frame goes to
 *     `forward`, events come back through gw_deliver / gw_dnd_local. */
typedef struct gw_backend {
    void *ctx;
    /* Takes *cmd on success (0) and later calls gw_applied(g, cookie, res)
     * exactly once; on error *cmd is untouched. */
    int (*submit)(void *ctx, uint32_t group, herald_buf *cmd, void *cookie);
    /* True when this process leads the group (it runs its periodic
     * commands, e.g. urgent reminders). */
    bool (*leads)(void *ctx, uint32_t group);
    /* Hands a frame for users of tenant (useqs: DELIVER only, else NULL) to
     * the gateways instead of local sessions; group and index name the
     * applied entry that produced it. */
    void (*push)(void *ctx, uint32_t group, uint64_t index, const char *tenant,
                 const char *const *users, const uint64_t *useqs, uint32_t n,
                 const herald_frame *f);
    /* A user's do-not-disturb changed (until 0: off). */
    void (*dnd)(void *ctx, const char *tenant, const char *user, uint64_t until);
    /* Front-end mode: an authenticated-or-HELLO client frame (payload =
     * the frame's bytes after the length header) to be served elsewhere. */
    void (*forward)(void *ctx, conn *c, const herald_frame *f, const uint8_t *payload,
                    size_t len);
    /* The node id leading a group (0 unknown), for conversation info. */
    uint32_t (*leader)(void *ctx, uint32_t group);
    /* Writes the STATUS document (admin status) instead of the dev one. */
    void (*status)(void *ctx, struct json_w *w);
} gw_backend;

/* Creates the gateway over n open stores, one per shard group (stores[i]
 * holds group i; stores[0] also holds the tenants), starts a writer thread
 * per store, binds and listens. Conversations are routed by
 * herald_slot(tenant, conv) mod n. 0, HERALD_EINVAL (bad listen address or
 * store groups not 0..n-1), HERALD_EIO (bind/listen failed; errno kept),
 * HERALD_ENOMEM. */
int gw_create(const gw_config *cfg, struct ev_loop *loop, store *const *stores, uint32_t n,
              gw **out);

/* gw_create with a backend (copied; NULL = dev mode). cfg->listen "" (or
 * NULL) opens no client listener (node mode); n may be 0 when
 * backend->forward is set (front-end mode). */
int gw_create_ex(const gw_config *cfg, struct ev_loop *loop, store *const *stores, uint32_t n,
                 const gw_backend *backend, gw **out);

/* Backends report a submitted command's outcome (replies to the requester). */
void gw_applied(gw *g, void *cookie, apply_result *res);
/* A command was applied (and this process is the one to tell clients):
 * produces its push events (messages, receipts, reminders, DND). */
void gw_events(gw *g, const uint8_t *cmd, size_t len, const apply_result *res);
/* Delivers a frame to this process's sessions of each user (DELIVER: msg.useq
 * from useqs[i], SILENT added for sessions in do-not-disturb). */
void gw_deliver(gw *g, const char *tenant, const char *const *users, const uint64_t *useqs,
                uint32_t n, const herald_frame *f);
/* Sets the do-not-disturb end of this process's sessions of a user. */
void gw_dnd_local(gw *g, const char *tenant, const char *user, uint64_t until);

/* Node mode: the cluster's slot → group map (HERALD_SLOTS bytes, from the
 * meta group) replaces the formula for this gateway core's routing. Every
 * entry must be < the number of groups (else HERALD_EINVAL, map ignored). */
int gw_set_slotmap(gw *g, const uint8_t *map);

/* Virtual connections (node mode): a request from a gateway, run through
 * the same handlers as a socket client. Frames the handlers send collect in
 * the connection's output; when the request and everything it submitted
 * are done, done(arg, c) runs once with c still valid (read c's output and
 * session), then c is freed. */
conn *gw_vconn_open(gw *g, const char *tenant, const char *user, bool admin,
                    uint64_t dnd_until, void (*done)(void *arg, conn *c), void *arg);
/* Runs one decoded frame on c, then releases the opener's reference. */
void gw_vconn_run(conn *c, herald_frame *f);
/* Output and session of a finished virtual connection (inside done). */
const herald_buf *gw_vconn_output(const conn *c);
bool gw_vconn_closed(const conn *c);
bool gw_vconn_session(const conn *c, const char **tenant, const char **user, bool *admin,
                      uint64_t *dnd_until);

/* The bound TCP port (useful with port 0). */
uint16_t gw_port(const gw *g);

/* Stops accepting, commits and acknowledges everything queued, flushes and
 * closes every connection, stops the writer. Then frees. NULL-safe. */
void gw_destroy(gw *g);

#endif
