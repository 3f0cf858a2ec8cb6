/*
 * http_srv.h — a small, bounded HTTP/1.1 server on a libev loop: the
 * operators' endpoints (/metrics, /healthz, /readyz) of every heraldd
 * process today, and the server the open platform's /api/v1/ routes will
 * be mounted on.
 *
 * Bounds, all enforced before anything is allocated for them: the request
 * head (head_max: 431), the body (body_max, from Content-Length: 413;
 * chunked bodies 501), a whole request must arrive within req_ms of its
 * first byte or it gets 408 and the connection closes (slowloris), an idle
 * keep-alive connection closes after idle_ms, a response not taken by the
 * peer within req_ms is dropped with the connection, and at most max_conns
 * connections are open (more get 503 and are closed). Keep-alive is
 * HTTP/1.1's default; pipelined requests are answered one at a time, in
 * order: the server stops reading while a request is with the handler or
 * a response is being written, so one connection holds at most one request
 * and one response.
 *
 * Plain HTTP, or HTTPS only when tls_cert is set (TLS 1.2 with mbedTLS, the
 * handshake inside the first reads; a refused connection over the cap is
 * closed without an answer then).
 *
 * Errors answered by the server itself, and by http_reply_error, carry a
 * JSON body {"errcode":N,"errmsg":"..."} where N is the Herald error code
 * (include/herald/error.h) of the status: 400 PROTOCOL, 404 NOT_FOUND, 405
 * and 501 and 505 UNSUPPORTED, 408 TIMEOUT, 413 and 431 TOO_BIG, 503 BUSY
 * (or what the caller passes).
 *
 * Threads: every call and callback on the loop thread given to
 * http_srv_create.
 */
#ifndef HERALD_HTTP_SRV_H
#define HERALD_HTTP_SRV_H

#include <stddef.h>
#include <stdint.h>

#include "http_proto.h"

struct ev_loop;
typedef struct http_srv http_srv;
/* One request being answered (the connection it came on). */
typedef struct http_exchange http_exchange;

typedef struct http_srv_config {
    const char *listen;  /* "HOST:PORT" (port 0 = a free one) */
    uint32_t max_conns;  /* open connections (0 → 64) */
    uint32_t head_max;   /* request head bytes (0 → 8192) */
    uint32_t body_max;   /* request body bytes (0 → 1 MiB) */
    uint32_t req_ms;     /* first byte → whole request; response write (0 → 10000) */
    uint32_t idle_ms;    /* keep-alive idle (0 → 30000) */
    const char *tls_cert; /* PEM certificate (+ chain) then key: HTTPS only
                             (srv_tls.h); NULL/"": plain HTTP */
} http_srv_config;

/* The handler gets every well-formed request: rq (its pointers) and
 * body[0..n) stay valid until it replies. It must call http_reply (or
 * http_reply_error) exactly once for x, now or later on the loop thread;
 * x stays valid until then even if the peer goes away (the reply is then
 * dropped). */
typedef struct http_handler {
    void *ctx;
    void (*request)(void *ctx, http_exchange *x, const http_req *rq, const uint8_t *body,
                    size_t n);
} http_handler;

typedef struct http_srv_stats {
    uint64_t conns;     /* open connections */
    uint64_t accepted;  /* connections accepted */
    uint64_t refused;   /* refused at the cap */
    uint64_t requests;  /* requests handed to the handler */
    uint64_t rejected;  /* requests answered by the server (400, 408, 413, 431, 501, 505) */
} http_srv_stats;

/* Binds cfg->listen and starts accepting. 0, HERALD_EINVAL (bad address),
 * HERALD_EIO (bind/listen failed; errno kept), HERALD_ENOMEM. */
int http_srv_create(const http_srv_config *cfg, struct ev_loop *loop, const http_handler *h,
                    http_srv **out);
/* The bound port. */
uint16_t http_srv_port(const http_srv *s);
void http_srv_stats_get(const http_srv *s, http_srv_stats *out);
/* Closes the listener and every connection; exchanges not answered yet
 * stay valid until answered. NULL-safe. */
void http_srv_destroy(http_srv *s);

/* Answers x: status, Content-Type, body[0..n) (copied; not sent for HEAD).
 * Adds Content-Length, Connection and Cache-Control: no-store. 0 or
 * HERALD_ENOMEM (the connection is closed). x is invalid afterwards. */
int http_reply(http_exchange *x, int status, const char *ctype, const void *body, size_t n);
/* http_reply with more header lines: headers is "" or lines of
 * "Name: value\r\n" (at most 1 KiB in all), the server's own text — never
 * bytes from a request. */
int http_reply_headers(http_exchange *x, int status, const char *ctype, const void *body,
                       size_t n, const char *headers);
/* Answers 301 Moved Permanently to location, a path of this server
 * ("/…", at most 256 bytes, no CR or LF). x is invalid afterwards. */
int http_reply_redirect(http_exchange *x, const char *location);
/* Answers with {"errcode":code,"errmsg":msg}, application/json. */
int http_reply_error(http_exchange *x, int status, int code, const char *msg);
/* The Herald error code the server uses for an HTTP status. */
int http_status_code(int status);

#endif
