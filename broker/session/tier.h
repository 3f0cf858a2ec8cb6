/*
 * tier.h — the session tier: its listeners (the client port with Herald's
 * TCP framing, and optionally WebSocket; each plain or TLS), connections,
 * per-connection limits, presence of the users online, and delivery of
 * pushes to their sessions. It knows nothing of what a request means: every
 * decoded frame of a connection goes to the tier's handler, which is the
 * request service in `heraldd dev` and the forwarder to the nodes in
 * `heraldd gateway`.
 *
 * Limits, enforced before a frame reaches the handler: frame cap (checked
 * before any allocation), request rate and byte rate (token buckets; excess
 * gets RATE_LIMITED "not applied"), output cap (a client that does not read
 * is disconnected with SLOW_CONSUMER: memory never grows without bound), a
 * HELLO deadline and an idle timeout, a connection cap. The tier itself
 * answers PING, and closes a connection whose first frame is not HELLO.
 *
 * Threads: everything runs on the loop thread given to tier_create.
 */
#ifndef HERALD_TIER_H
#define HERALD_TIER_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"

struct ev_loop;
typedef struct tier tier;
typedef struct conn conn;

/* The gateway.* settings: the tier's limits, and the ones the request
 * service shares (max_frame, hb_ms, queue_bytes). */
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
    const char *tls_cert;  /* PEM file: certificate (+ chain) then key; set: every
                              listener speaks TLS only (http/srv_tls.h). NULL/"": plain */
    const char *ws_listen; /* WebSocket "HOST:PORT" (HTTP Upgrade on /ws; wss://
                              when tls_cert is set). NULL/"": no WebSocket listener */
    const char *ws_origins; /* comma-separated Origin allow-list for WebSocket
                               handshakes that send Origin; NULL/"": any */
    const char *mqtt_listen; /* "HOST:PORT" of the MQTT 3.1.1 listener (mqtt.h); NULL/"": none.
                                With tls_cert it speaks MQTT over TLS only */
    uint32_t mqtt_sessions;  /* persistent MQTT sessions kept (mqtt_sess.h) */
    uint32_t offline_batch_ms; /* offline reports are handed on this often
                                  (offrep.h; 0: 200) */
} gw_config;

/* Fills the defaults: 127.0.0.1:7400, 1 MiB frames, 2000 req/s burst 4000,
 * 8 MiB output, hello 10 s, idle 90 s, heartbeat 30 s, 10,000 conns, no
 * WebSocket listener (heraldd's config table sets gateway.ws_listen), no
 * MQTT listener (gateway.mqtt_listen), 10,000 persistent MQTT sessions. */
void gw_config_defaults(gw_config *cfg);

/* What the tier hands every frame to: HELLO, and any frame of an
 * authenticated connection but PING, whatever the listener's framing. f
 * (decoded, valid during the call) and payload (its msgpack map, as after
 * the TCP length header) belong to the tier; the handler takes a reference
 * (conn_ref) to answer later. */
typedef struct tier_handler {
    void *ctx;
    void (*frame)(void *ctx, conn *c, herald_frame *f, const uint8_t *payload, size_t len);
} tier_handler;

/* Binds and listens on cfg->listen, and cfg->ws_listen when set (the
 * heartbeat is clamped to a third of the idle timeout). The connection cap
 * counts the connections of every listener. 0, HERALD_EINVAL (bad address,
 * TLS material or Origin list), HERALD_EIO (bind/listen failed; errno
 * kept), HERALD_ENOMEM. */
int tier_create(const gw_config *cfg, struct ev_loop *loop, const tier_handler *h, tier **out);

/* The settings in force (after clamping). */
const gw_config *tier_config(const tier *t);
/* The bound TCP port of the client port (useful with port 0). */
uint16_t tier_port(const tier *t);
/* The bound port of the listener whose framing is named `framing` ("tcp",
 * "ws"), or 0 when there is none. */
uint16_t tier_listener_port(const tier *t, const char *framing);
/* True when the listeners speak TLS (gateway.tls_cert). */
bool tier_tls(const tier *t);
/* Open connections and distinct users online. */
void tier_counts(const tier *t, uint64_t *conns, uint64_t *users);
/* Appends the tier's metric families (Prometheus text, http/prom.h):
 * connections by transport, frames received by type, errors sent by code,
 * pushes and their latency from commit to queued (tier_metrics.c). */
struct prom_w;
void tier_metrics(const tier *t, struct prom_w *w);

/* Hands a frame to this process's sessions of each user of tenant.
 * DELIVER: msg.prev from prevs[i] (NULL: pos - 1), a position not newer
 * than the last one pushed to that session for that group is dropped (a deposed
 * leader may publish what its successor does too), and SILENT is added for
 * sessions in do-not-disturb. A connection whose HELLO is being answered
 * keeps its pushes until then (conn_hold_begin). */
void tier_deliver(tier *t, const char *tenant, const char *const *users, const uint64_t *prevs,
                  uint32_t n, const herald_frame *f);
/* True when user of tenant has a session in this process (one whose
 * HELLO is being answered counts: it gets what is pushed meanwhile). */
bool tier_online(tier *t, const char *tenant, const char *user);
/* Sets the do-not-disturb end of this process's sessions of a user. */
void tier_dnd(tier *t, const char *tenant, const char *user, uint64_t until);

/* Stops accepting, writes what is queued, closes every connection, frees.
 * NULL-safe. */
void tier_destroy(tier *t);

/* ---- a connection, for the handler ---------------------------------------
 * A conn stays valid while the handler holds a reference; once closed,
 * sends return HERALD_ECLOSED and nothing else happens. */

void conn_ref(conn *c);
void conn_unref(conn *c);
/* True while replies to c can still be queued. */
bool conn_open(const conn *c);
/* "conn N ip:port", for logs. */
const char *conn_label(const conn *c);
/* The session the connection runs as (filled by the handler at HELLO). */
session *conn_session(conn *c);
/* The session is established (c's session filled and authed): c enters
 * presence and the idle timeout replaces the HELLO deadline. 0 or
 * HERALD_ENOMEM. */
int conn_start(conn *c);

/* Queues a frame; over the output cap the connection is closed with
 * SLOW_CONSUMER. 0, or HERALD_ECLOSED when the conn is (now) closed. */
int conn_send(conn *c, const herald_frame *f);
/* Queues already-encoded frames (length headers included); same cap. */
int conn_send_raw(conn *c, const void *p, size_t n);
/* Sends ERROR(code, text or the code's text, ref). */
int conn_send_error(conn *c, int code, const char *text, uint64_t ref);
/* Sends ERROR and closes after flushing (bounded by a short linger). */
void conn_fail(conn *c, int code, const char *text);
/* Closes once what is queued is written (bounded by a short linger). */
void conn_close_after_flush(conn *c);

/* Gateway process, HELLO forwarded: puts c in presence as (tenant, user),
 * the token's unverified claim, and keeps what is pushed to it until
 * conn_hold_end. 0 or HERALD_ENOMEM. */
int conn_hold_begin(conn *c, const char *tenant, const char *user);
/* True between conn_hold_begin and conn_hold_end. */
bool conn_held(const conn *c);
/* The HELLO's answer is in: keep (c's session was started as the claimed
 * user; the kept pushes follow what was just queued) or drop (not that
 * session: out of presence, kept pushes discarded). */
void conn_hold_end(conn *c, bool keep);
/* Gateway process: the session's token, forwarded with every request so
 * the node verifies it (copied; NULL when none was kept). */
int conn_keep_token(conn *c, const char *token, size_t len);
const char *conn_token(const conn *c);

#endif
