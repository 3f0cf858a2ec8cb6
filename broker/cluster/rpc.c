/* rpc.c — see rpc.h. Raw REQ0/REP0 sockets, RECVFD watchers, our own ids. */
#include "rpc.h"

#include <ev.h>
#include <herald/error.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "log.h"

#define RPC_RECV_BATCH 256 /* messages taken per readable event */
#define RPC_ID_BIT 0x80000000u

struct rpc_server {
    struct ev_loop *loop;
    nng_socket sock;  /* raw REP0 listener */
    ev_io rw;         /* RECVFD readable */
    rpc_serve_fn fn;
    void *arg;
};

struct rpc_call {
    nng_socket sock;  /* the server's socket (a handle: safe after close) */
    nng_msg *msg;     /* the request, kept for its routing header */
};

static void server_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    rpc_server *s = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < RPC_RECV_BATCH; i++) {
        nng_msg *m;
        rpc_call *call;
        if (nng_recvmsg(s->sock, &m, NNG_FLAG_NONBLOCK) != 0)
            return;
        call = malloc(sizeof *call);
        if (!call) {
            nng_msg_free(m); /* the client's deadline covers it */
            continue;
        }
        call->sock = s->sock;
        call->msg = m;
        s->fn(s->arg, call, nng_msg_body(m), nng_msg_len(m));
    }
}

int rpc_server_create(struct ev_loop *loop, const char *url, size_t max_msg, const clink *tls,
                      rpc_serve_fn fn, void *arg, rpc_server **out)
{
    rpc_server *s = calloc(1, sizeof *s);
    int fd, rv;

    *out = NULL;
    if (!s)
        return HERALD_ENOMEM;
    s->loop = loop;
    s->fn = fn;
    s->arg = arg;
    if (nng_rep0_open_raw(&s->sock) != 0) {
        free(s);
        return HERALD_EIO;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, max_msg);
    nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, 1024);
    nng_socket_set_int(s->sock, NNG_OPT_SENDBUF, 1024);
    rv = clink_listen(s->sock, url, tls, NULL);
    if (rv == 0)
        rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &fd);
    if (rv != 0) {
        log_error("rpc.listen", "%s: %s", url, nng_strerror(rv));
        nng_close(s->sock);
        free(s);
        return HERALD_EIO;
    }
    ev_io_init(&s->rw, server_readable, fd, EV_READ);
    s->rw.data = s;
    ev_io_start(loop, &s->rw);
    *out = s;
    return 0;
}

void rpc_reply(rpc_call *call, const void *p, size_t n)
{
    nng_msg *m = call->msg;
    nng_msg_clear(m); /* the body goes, the header (backtrace) stays */
    if (nng_msg_append(m, p, n) != 0 || nng_sendmsg(call->sock, m, NNG_FLAG_NONBLOCK) != 0)
        nng_msg_free(m);
    free(call);
}

void rpc_drop(rpc_call *call)
{
    nng_msg_free(call->msg);
    free(call);
}

void rpc_server_destroy(rpc_server *s)
{
    if (!s)
        return;
    ev_io_stop(s->loop, &s->rw);
    nng_close(s->sock);
    free(s);
}

/* ------------------------------------------------------------------------ */

typedef struct rpc_req {
    rpc_client *c;
    uint32_t id;
    ev_timer timer;   /* deadline, or 0 s to report a send failure */
    int fail;         /* status to report when the timer fires */
    rpc_done_fn done;
    void *arg;
} rpc_req;

struct rpc_client {
    struct ev_loop *loop;
    nng_socket sock; /* raw REQ0 dialer */
    ev_io rw;
    hmap *pending;   /* id (4 bytes) → rpc_req */
    uint32_t next_id;
    bool closing;    /* rpc_client_destroy in progress */
};

static void req_finish(rpc_req *r, int status, const uint8_t *p, size_t n)
{
    rpc_client *c = r->c;
    ev_timer_stop(c->loop, &r->timer);
    hmap_del(c->pending, &r->id, sizeof r->id);
    r->done(r->arg, status, p, n);
    free(r);
}

static void req_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    rpc_req *r = w->data;
    (void)loop;
    (void)revents;
    req_finish(r, r->fail ? r->fail : HERALD_ETIMEOUT, NULL, 0);
}

static void client_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    rpc_client *c = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < RPC_RECV_BATCH; i++) {
        nng_msg *m;
        uint32_t id;
        rpc_req *r;
        if (nng_recvmsg(c->sock, &m, NNG_FLAG_NONBLOCK) != 0)
            return;
        /* Raw REQ: the header is the request id we put there. */
        if (nng_msg_header_len(m) == 4 && nng_msg_header_trim_u32(m, &id) == 0 &&
            (id & RPC_ID_BIT) && (r = hmap_get(c->pending, &id, sizeof id)) != NULL)
            req_finish(r, 0, nng_msg_body(m), nng_msg_len(m));
        /* else: a late reply after its deadline; dropped */
        nng_msg_free(m);
    }
}

int rpc_client_create(struct ev_loop *loop, const char *url, size_t max_msg, const clink *tls,
                      const char *peer, rpc_client **out)
{
    rpc_client *c = calloc(1, sizeof *c);
    int fd, rv;

    *out = NULL;
    if (!c)
        return HERALD_ENOMEM;
    c->loop = loop;
    if (hmap_create(&c->pending) != 0) {
        free(c);
        return HERALD_ENOMEM;
    }
    if (nng_req0_open_raw(&c->sock) != 0) {
        hmap_destroy(c->pending);
        free(c);
        return HERALD_EIO;
    }
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, max_msg);
    nng_socket_set_int(c->sock, NNG_OPT_SENDBUF, 1024);
    nng_socket_set_int(c->sock, NNG_OPT_RECVBUF, 1024);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 500);
    rv = clink_dial(c->sock, url, tls, peer);
    if (rv == 0)
        rv = nng_socket_get_int(c->sock, NNG_OPT_RECVFD, &fd);
    if (rv != 0) {
        log_error("rpc.dial", "%s: %s", url, nng_strerror(rv));
        nng_close(c->sock);
        hmap_destroy(c->pending);
        free(c);
        return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? HERALD_EINVAL : HERALD_EIO;
    }
    c->next_id = (uint32_t)rand();
    ev_io_init(&c->rw, client_readable, fd, EV_READ);
    c->rw.data = c;
    ev_io_start(loop, &c->rw);
    *out = c;
    return 0;
}

int rpc_send(rpc_client *c, const void *p, size_t n, unsigned timeout_ms, rpc_done_fn done,
             void *arg)
{
    rpc_req *r;
    nng_msg *m = NULL;

    if (c->closing)
        return HERALD_ESHUTDOWN;
    if (!(r = calloc(1, sizeof *r)))
        return HERALD_ENOMEM;
    do
        r->id = (c->next_id++ & ~RPC_ID_BIT) | RPC_ID_BIT;
    while (hmap_get(c->pending, &r->id, sizeof r->id));
    r->c = c;
    r->done = done;
    r->arg = arg;
    if (hmap_put(c->pending, &r->id, sizeof r->id, r) != 0) {
        free(r);
        return HERALD_ENOMEM;
    }
    ev_timer_init(&r->timer, req_timeout, timeout_ms / 1000.0, 0.0);
    r->timer.data = r;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, p, n) != 0 ||
        nng_msg_header_append_u32(m, r->id) != 0 ||
        nng_sendmsg(c->sock, m, NNG_FLAG_NONBLOCK) != 0) {
        /* Not sent (no peer yet, queue full): report it from the loop. */
        if (m)
            nng_msg_free(m);
        r->fail = HERALD_EIO;
        ev_timer_set(&r->timer, 0.0, 0.0);
    }
    ev_timer_start(c->loop, &r->timer);
    return 0;
}

size_t rpc_inflight(const rpc_client *c) { return hmap_count(c->pending); }

void rpc_client_destroy(rpc_client *c)
{
    const void *k;
    size_t kl, i;
    void *v;

    if (!c)
        return;
    ev_io_stop(c->loop, &c->rw);
    nng_close(c->sock);
    /* hmap_next walks slots; finishing removes, so restart from 0 each time. */
    c->closing = true;
    while ((i = hmap_next(c->pending, 0, &k, &kl, &v)) != (size_t)-1)
        req_finish(v, HERALD_ESHUTDOWN, NULL, 0);
    hmap_destroy(c->pending);
    free(c);
}
