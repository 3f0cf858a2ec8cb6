/*
 * framing.h — how a listener of the session tier turns bytes into Herald
 * frames and back. The tier has several listeners (the client port, and
 * optional ones such as WebSocket); each has one framing, an ops table with
 * designated initializers. conn.c owns the socket, TLS, buffers, timers and
 * every limit; the framing only translates:
 *
 *   bytes in  → ops->input   → conn_dispatch (one payload = one msgpack map)
 *                              → the common path: frame cap, decode, rate
 *                                limits, PING, HELLO-first, the tier handler
 *   frame out → ops->encode / ops->put_deliver / ops->reframe → c's output
 *   ending    → ops->close (conn_fail, conn_close_after_flush): the reason
 *
 * A framing may keep per-connection state (ops->conn_new: a pointer the
 * conn holds and hands back to every op) and per-listener state
 * (ops->listener_new: parsed options, e.g. an Origin list). It may answer
 * protocol-level packets itself (a WebSocket ping, an MQTT PINGREQ) with
 * conn_queue_wire, mark the connection alive with conn_touch, and translate
 * a foreign protocol in both directions: a translator builds a herald_frame
 * from its packet and hands it over with conn_dispatch_frame, and turns
 * every outgoing frame into its own packets in encode / reframe.
 *
 * The Herald TCP framing (framing_tcp) is the reference: 4-byte big-endian
 * length + msgpack map, exactly the bytes of herald_frame_encode.
 *
 * Ownership: ops tables are static and outlive every tier. The listener
 * state belongs to the tier (listener_free at tier_destroy); the connection
 * state belongs to the conn (conn_free when its last reference goes, so a
 * handler holding a reference never sees it freed). Buffers passed to ops
 * are borrowed for the call.
 *
 * Threads: every op, and every function below, runs on the tier's loop
 * thread only; nothing here locks.
 */
#ifndef HERALD_SESSION_FRAMING_H
#define HERALD_SESSION_FRAMING_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver.h"
#include "tier.h"

typedef struct framing_ops {
    const char *name; /* "tcp", "ws": logs and tier_listener_port */

    /* Per-listener state from the tier's configuration (NULL: none kept).
     * 0, HERALD_EINVAL (bad option: log why) or HERALD_ENOMEM. May be NULL. */
    int (*listener_new)(const gw_config *cfg, void **lst);
    void (*listener_free)(void *lst); /* NULL-safe; may be NULL */

    /* Per-connection state at accept (*st may stay NULL). 0 or
     * HERALD_ENOMEM (the connection is dropped). May be NULL. */
    int (*conn_new)(void *lst, conn *c, void **st);
    void (*conn_free)(void *st); /* at the conn's last unref; may be NULL */

    /* Bytes received (plaintext, after TLS). p[0..len) is writable: the
     * framing may rewrite it in place (unmasking). It calls conn_dispatch
     * for each whole Herald frame and returns how many bytes it consumed;
     * the rest (a partial unit) comes back with more bytes appended. It
     * stops once conn_reading(c) is false. Over-long units are refused
     * with conn_fail before anything is allocated for them; conn.c keeps
     * at most cfg.max_frame + a read chunk of unconsumed input. */
    size_t (*input)(conn *c, void *st, uint8_t *p, size_t len);

    /* Appends f for the wire. 0, HERALD_ENOMEM, HERALD_EINVAL. */
    int (*encode)(conn *c, void *st, const herald_frame *f, herald_buf *out);
    /* Appends one recipient's copy of a DELIVER template. 0 or
     * HERALD_ENOMEM (out as it was). */
    int (*put_deliver)(conn *c, void *st, deliver_tpl *t, uint32_t flags, uint64_t prev,
                       herald_buf *out);
    /* Appends already-encoded Herald TCP frames (p[0..n): whole frames,
     * length headers included), e.g. a node's replies forwarded by the
     * gateway. 0, HERALD_ENOMEM, HERALD_EPROTOCOL (not whole frames). */
    int (*reframe)(conn *c, void *st, const uint8_t *p, size_t n, herald_buf *out);

    /* Appends what ends the conversation for Herald error `code` with
     * reason `text` (NULL: the code's own text): on TCP the ERROR frame; on
     * WebSocket that ERROR in a binary message and a Close frame with a
     * mapped code. code 0 is a normal end after the last reply (the handler
     * answered already): nothing on TCP, Close 1000 on WebSocket. The
     * socket closes once this is written (bounded by a short linger).
     * 0 or HERALD_ENOMEM. */
    int (*close)(conn *c, void *st, int code, const char *text, herald_buf *out);

    /* Bytes for a socket refused at accept (connection cap, shutdown)
     * before any state exists; only sent on a plain (non-TLS) listener.
     * 0 or HERALD_ENOMEM. May be NULL: closed without a word. */
    int (*refuse)(int code, const char *text, herald_buf *out);
} framing_ops;

/* Herald's own TCP framing: 4-byte length + msgpack map. */
extern const framing_ops framing_tcp;
/* WebSocket (RFC 6455), ws.c: HTTP Upgrade on /ws, one binary message per
 * Herald frame (the map without the length prefix). */
extern const framing_ops framing_ws;

/* ---- for framings: the common path and the connection's output --------- */

/* The listener state of c's listener (listener_new's result). */
void *conn_listener_state(const conn *c);
/* The tier's settings (max_frame, hb_ms, ...). */
const gw_config *conn_config(const conn *c);

/* One Herald frame's payload (the msgpack map, no length header) received
 * on c: checked against the frame cap, decoded, rate-limited, PING
 * answered, HELLO-first enforced, handed to the tier handler. payload is
 * borrowed for the call. 0 while c still reads, HERALD_ECLOSED once it is
 * closing or closed (the framing stops consuming). */
int conn_dispatch(conn *c, const uint8_t *payload, size_t len);
/* The same for a frame a translator built: encoded once, then as
 * conn_dispatch (the handler gets both forms). 0, HERALD_ECLOSED,
 * HERALD_ENOMEM, HERALD_EINVAL (the frame does not encode). */
int conn_dispatch_frame(conn *c, const herald_frame *f);
/* True while c reads and dispatches (not closing, not closed). */
bool conn_reading(const conn *c);
/* Counts as traffic for the idle timeout (a protocol-level ping). */
void conn_touch(conn *c);
/* This connection's idle timeout from now on (a protocol's own keep-alive,
 * e.g. MQTT's × 1.5); 0: the tier's gateway.idle_ms. */
void conn_set_idle_ms(conn *c, uint32_t ms);
/* Queues protocol bytes as they are (a handshake answer, a pong), under
 * the same output cap as frames. 0 or HERALD_ECLOSED / HERALD_ENOMEM. */
int conn_queue_wire(conn *c, const void *p, size_t n);
/* Ends c after flushing what is queued, without ops->close (a refused
 * HTTP handshake already said why in its answer). */
void conn_close_quiet(conn *c);

#endif
