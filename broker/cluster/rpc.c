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
#include <sys/eventfd.h>
#include <unistd.h>

#include "hmap.h"
#include "log.h"
#include "sockclose.h"

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
        sock_close(s->sock, "rpc server socket", 0);
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
    sock_close(s->sock, "rpc server socket", 0);
    free(s);
}

/* ------------------------------------------------------------------------ */

/* A client talks to its server over RPC_LANES sockets, one pipe each, and
 * keeps at most RPC_LANE_INFLIGHT requests on the wire per lane: nng's raw
 * REP queues at most 64 replies per pipe and silently frees the rest, so a
 * burst of answers (a group commit acknowledging hundreds of sends at once)
 * must never find more than that waiting. Requests beyond the lanes' room
 * wait here, in order, within RPC_WAIT_MAX; their deadline runs from
 * rpc_send, and one that expires still waiting was never sent (HERALD_EIO:
 * safe to retry). A request with a key (rpc_send_keyed) always takes the
 * lane of its key, so requests with one key reach the server in the order
 * sent (one pipe, in order); one without takes any lane with room. Each
 * lane has its own wait queue, and one more holds the keyless requests: a
 * freed lane takes the older of its own queue's head and the keyless one's.
 *
 * nng's own send queue of a lane holds at most RPC_LANE_QUEUED messages
 * (raw REQ keeps what it cannot write yet there, pipe or no pipe): when it
 * is full a send says NNG_EAGAIN, the request goes back to the head of its
 * wait queue and the lane waits for NNG_OPT_SENDFD. So while the server is
 * down or unreachable the requests wait here, where their deadline ends
 * them as never sent, instead of in nng, which would write every one of
 * them to the server when it comes back — long after their callers gave up
 * — and so overflow the 64 replies its REP pipe queues, losing the answers
 * of the fresh requests sent behind them.
 *
 * A request that was sent and timed out still holds its lane's slot (a
 * "ghost": its caller has had HERALD_ETIMEOUT and hears no more): its
 * answer may yet come, and the server queues it on the same pipe as the
 * answers of what is sent next. The ghost goes when that late answer
 * arrives, when the lane's pipe closes (nng's pipe event, relayed to the
 * loop through an eventfd: the server's queue for that pipe is gone too),
 * or after RPC_GHOST_S (an answer that never comes). */
#define RPC_LANES 4u
#define RPC_LANE_INFLIGHT 48u
#define RPC_LANE_QUEUED 8u
#define RPC_WAIT_MAX 16384u
#define RPC_GHOST_S 10.0
#define RPC_ANY RPC_LANES /* wq index of the keyless requests */

typedef struct rpc_req {
    rpc_client *c;
    uint32_t id;
    ev_timer timer;   /* deadline, or 0 s to report a send failure */
    int fail;         /* status to report when the timer fires */
    int lane;         /* the lane it went out on; -1 while waiting */
    int want;         /* its key's lane, or RPC_ANY */
    uint64_t seq;     /* rpc_send order (which waited longer) */
    nng_msg *msg;     /* while waiting: the message to send */
    struct rpc_req *wprev, *wnext; /* its wait queue (wq[want]) */
    bool ghost;       /* sent, timed out, reported: holds its slot (above) */
    rpc_done_fn done;
    void *arg;
} rpc_req;

/* A lane's pipe-closed signal: nng's thread writes efd, the loop reads it.
 * It outlives its lane when a close is abandoned (sock_close), as nng may
 * still call in then. */
typedef struct lane_sig {
    int efd;
} lane_sig;

typedef struct rpc_lane {
    rpc_client *c;
    nng_socket sock;   /* raw REQ0 dialer: one pipe */
    ev_io rw;
    ev_io ww;          /* SENDFD readable: nng's send queue has room again */
    bool full;         /* the last send said NNG_EAGAIN; ww runs */
    uint32_t inflight; /* requests sent on it and not finished (ghosts too) */
    lane_sig *sig;     /* its pipe closed */
    ev_io pw;          /* sig->efd readable */
} rpc_lane;

struct rpc_client {
    struct ev_loop *loop;
    rpc_lane lane[RPC_LANES];
    uint32_t nlanes;   /* lanes opened */
    uint32_t rr;       /* next lane to try */
    hmap *pending;     /* id (4 bytes) → rpc_req */
    struct {
        rpc_req *head, *tail;
    } wq[RPC_LANES + 1]; /* waiting: per lane, then the keyless ones */
    uint32_t nwait;     /* in all of wq */
    uint64_t next_seq;  /* rpc_send order */
    uint32_t next_id;
    uint32_t nghosts;  /* in pending */
    bool closing;      /* rpc_client_destroy in progress */
};

static void wait_unlink(rpc_client *c, rpc_req *r)
{
    if (r->wprev)
        r->wprev->wnext = r->wnext;
    else
        c->wq[r->want].head = r->wnext;
    if (r->wnext)
        r->wnext->wprev = r->wprev;
    else
        c->wq[r->want].tail = r->wprev;
    r->wprev = r->wnext = NULL;
    c->nwait--;
}

/* Back at the head of its queue: r was the oldest there (rpc_send only
 * sends directly when its queue is empty; pump takes heads). */
static void wait_prepend(rpc_client *c, rpc_req *r)
{
    r->wprev = NULL;
    r->wnext = c->wq[r->want].head;
    if (r->wnext)
        r->wnext->wprev = r;
    else
        c->wq[r->want].tail = r;
    c->wq[r->want].head = r;
    c->nwait++;
}

static void wait_append(rpc_client *c, rpc_req *r)
{
    r->wprev = c->wq[r->want].tail; /* in line behind the others */
    if (r->wprev)
        r->wprev->wnext = r;
    else
        c->wq[r->want].head = r;
    c->wq[r->want].tail = r;
    c->nwait++;
}

static bool lane_room(const rpc_client *c, uint32_t i)
{
    return !c->lane[i].full && c->lane[i].inflight < RPC_LANE_INFLIGHT;
}

/* A lane with room, or -1. */
static int lane_free(rpc_client *c)
{
    for (uint32_t k = 0; k < c->nlanes; k++) {
        uint32_t i = (c->rr + k) % c->nlanes;
        if (lane_room(c, i)) {
            c->rr = i + 1;
            return (int)i;
        }
    }
    return -1;
}

/* The lane r may go out on now, or -1: its key's lane when it has room and
 * nothing of that lane waits; any lane with room when it has no key and no
 * keyless request waits. */
static int lane_for(rpc_client *c, const rpc_req *r)
{
    if (r->want != (int)RPC_ANY)
        return !c->wq[r->want].head && lane_room(c, (uint32_t)r->want) ? r->want : -1;
    return c->wq[RPC_ANY].head ? -1 : lane_free(c);
}

typedef enum { SENT, FULL, FAILED } send_rc;

/* Puts r's message on lane i. SENT: on the lane (in flight). FULL: nng's
 * queue has no room; r keeps its message and the lane waits for room.
 * FAILED: the message is gone (the socket is closing). */
static send_rc lane_send(rpc_client *c, rpc_req *r, int i)
{
    rpc_lane *l = &c->lane[i];
    int rv = nng_sendmsg(l->sock, r->msg, NNG_FLAG_NONBLOCK);
    if (rv == NNG_EAGAIN) {
        l->full = true;
        ev_io_start(c->loop, &l->ww);
        return FULL;
    }
    if (rv != 0) {
        nng_msg_free(r->msg);
        r->msg = NULL;
        return FAILED;
    }
    r->msg = NULL; /* nng's now */
    r->lane = i;
    l->inflight++;
    return SENT;
}

/* Reports r as never sent, from the loop (its timer, due now). */
static void fail_soon(rpc_client *c, rpc_req *r)
{
    r->fail = HERALD_EIO;
    ev_timer_stop(c->loop, &r->timer);
    ev_timer_set(&r->timer, 0.0, 0.0);
    ev_timer_start(c->loop, &r->timer);
}

/* Takes r off its wait queue and puts it on lane i (a request due now is
 * not worth sending: its timer reports "not sent"; one nng has no room
 * for goes back to the head of its queue). */
static void send_waiting(rpc_client *c, rpc_req *r, int i)
{
    wait_unlink(c, r);
    if (ev_timer_remaining(c->loop, &r->timer) < 0.001) {
        /* Due now: not worth sending; its timer says "not sent". */
        nng_msg_free(r->msg);
        r->msg = NULL;
        r->fail = HERALD_EIO;
        return;
    }
    switch (lane_send(c, r, i)) {
    case SENT:
        break;
    case FULL:
        wait_prepend(c, r);
        break;
    case FAILED:
        fail_soon(c, r);
        break;
    }
}

/* The next request lane i should take: the older of its own queue's head
 * and the keyless queue's; NULL when neither waits. */
static rpc_req *next_for(rpc_client *c, uint32_t i)
{
    rpc_req *a = c->wq[i].head, *b = c->wq[RPC_ANY].head;
    if (!a || !b)
        return a ? a : b;
    return a->seq < b->seq ? a : b;
}

/* Sends waiting requests while a lane has room. */
static void pump(rpc_client *c)
{
    bool more = true;
    while (more && c->nwait && !c->closing) {
        more = false;
        for (uint32_t i = 0; i < c->nlanes && !c->closing; i++) {
            rpc_req *r;
            if (!lane_room(c, i) || !(r = next_for(c, i)))
                continue;
            more = true;
            send_waiting(c, r, (int)i);
        }
    }
}

/* r leaves the books: its timer, the pending map, its lane's count. */
static void req_unlist(rpc_req *r)
{
    rpc_client *c = r->c;
    ev_timer_stop(c->loop, &r->timer);
    hmap_del(c->pending, &r->id, sizeof r->id);
    if (r->lane >= 0)
        c->lane[r->lane].inflight--;
}

static void req_finish(rpc_req *r, int status, const uint8_t *p, size_t n)
{
    rpc_client *c = r->c;
    req_unlist(r);
    if (r->lane < 0) {
        if (r->msg) {
            wait_unlink(c, r); /* never sent */
            nng_msg_free(r->msg);
            r->msg = NULL;
        }
        if (status == HERALD_ETIMEOUT)
            status = HERALD_EIO;
    }
    r->done(r->arg, status, p, n);
    free(r);
    pump(c);
}

/* A ghost goes: its slot is free again. */
static void ghost_free(rpc_req *r, bool pump_after)
{
    rpc_client *c = r->c;
    req_unlist(r);
    c->nghosts--;
    free(r);
    if (pump_after)
        pump(c);
}

static void req_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    rpc_req *r = w->data;
    rpc_client *c = r->c;
    (void)revents;
    if (r->ghost) {
        ghost_free(r, true); /* its answer never came */
        return;
    }
    if (r->lane < 0 || r->fail) {
        req_finish(r, r->fail ? r->fail : HERALD_ETIMEOUT, NULL, 0);
        return;
    }
    /* Sent and unanswered: the caller hears now, the slot stays taken. */
    r->ghost = true;
    c->nghosts++;
    ev_timer_set(&r->timer, RPC_GHOST_S, 0.0);
    ev_timer_start(loop, &r->timer);
    r->done(r->arg, HERALD_ETIMEOUT, NULL, 0);
    r->done = NULL;
}

/* Lane i's pipe closed: its ghosts' answers will never come. */
static void release_ghosts(rpc_client *c, uint32_t lane)
{
    const void *k;
    size_t kl, at = 0, n = 0;
    void *v;
    rpc_req **dead;

    if (!c->nghosts || !(dead = malloc(c->nghosts * sizeof *dead)))
        return; /* (out of memory: their timers free them) */
    while ((at = hmap_next(c->pending, at, &k, &kl, &v)) != (size_t)-1) {
        rpc_req *r = v;
        if (r->ghost && r->lane == (int)lane && n < c->nghosts)
            dead[n++] = r;
        at++;
    }
    for (size_t i = 0; i < n; i++)
        ghost_free(dead[i], false);
    free(dead);
    pump(c);
}

/* nng's thread: a pipe of the lane was removed. */
static void pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    lane_sig *sig = arg;
    uint64_t one = 1;
    (void)p;
    (void)ev;
    if (write(sig->efd, &one, sizeof one) < 0) {
        /* the counter is full: the loop has a wake-up pending anyway */
    }
}

static void lane_pipe_gone(struct ev_loop *loop, ev_io *w, int revents)
{
    rpc_lane *l = w->data;
    uint64_t v;
    (void)loop;
    (void)revents;
    if (read(l->sig->efd, &v, sizeof v) == (ssize_t)sizeof v)
        release_ghosts(l->c, (uint32_t)(l - l->c->lane));
}

/* nng's send queue of a lane has room again: the waiting go out. */
static void lane_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    rpc_lane *l = w->data;
    (void)revents;
    ev_io_stop(loop, w);
    l->full = false;
    pump(l->c);
}

static void client_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    rpc_lane *l = w->data;
    rpc_client *c = l->c;
    (void)loop;
    (void)revents;
    for (int i = 0; i < RPC_RECV_BATCH; i++) {
        nng_msg *m;
        uint32_t id;
        rpc_req *r;
        if (nng_recvmsg(l->sock, &m, NNG_FLAG_NONBLOCK) != 0)
            return;
        /* Raw REQ: the header is the request id we put there. */
        if (nng_msg_header_len(m) == 4 && nng_msg_header_trim_u32(m, &id) == 0 &&
            (id & RPC_ID_BIT) && (r = hmap_get(c->pending, &id, sizeof id)) != NULL) {
            if (r->ghost)
                ghost_free(r, true); /* late: its caller heard ETIMEOUT */
            else
                req_finish(r, 0, nng_msg_body(m), nng_msg_len(m));
        }
        /* else: not ours, or a ghost gone already; dropped */
        nng_msg_free(m);
    }
}

static void close_lanes(rpc_client *c)
{
    for (uint32_t i = 0; i < c->nlanes; i++) {
        rpc_lane *l = &c->lane[i];
        ev_io_stop(c->loop, &l->rw);
        ev_io_stop(c->loop, &l->ww);
        ev_io_stop(c->loop, &l->pw);
        nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
        if (sock_close(l->sock, "rpc client socket", 0) == 0 && l->sig) {
            close(l->sig->efd);
            free(l->sig);
        } /* else abandoned: nng may still call in; the signal stays */
        l->sig = NULL;
    }
    c->nlanes = 0;
}

int rpc_client_create(struct ev_loop *loop, const char *url, size_t max_msg, const clink *tls,
                      const char *peer, rpc_client **out)
{
    rpc_client *c = calloc(1, sizeof *c);
    int fd, wfd, rv = 0;

    *out = NULL;
    if (!c)
        return HERALD_ENOMEM;
    c->loop = loop;
    if (hmap_create(&c->pending) != 0) {
        free(c);
        return HERALD_ENOMEM;
    }
    for (uint32_t i = 0; i < RPC_LANES && rv == 0; i++) {
        rpc_lane *l = &c->lane[i];
        if (nng_req0_open_raw(&l->sock) != 0) {
            rv = NNG_ENOMEM;
            break;
        }
        c->nlanes++;
        l->c = c;
        /* Before the dial: no pipe comes and goes unseen. */
        if (!(l->sig = malloc(sizeof *l->sig))) {
            rv = NNG_ENOMEM;
            break;
        }
        if ((l->sig->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
            free(l->sig);
            l->sig = NULL;
            rv = NNG_ENOMEM;
            break;
        }
        if ((rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, pipe_removed, l->sig)) != 0)
            break;
        ev_io_init(&l->pw, lane_pipe_gone, l->sig->efd, EV_READ);
        l->pw.data = l;
        ev_io_start(loop, &l->pw);
        nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, max_msg);
        nng_socket_set_int(l->sock, NNG_OPT_SENDBUF, (int)RPC_LANE_QUEUED);
        nng_socket_set_int(l->sock, NNG_OPT_RECVBUF, 1024);
        nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, 20);
        nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT, 500);
        rv = clink_dial(l->sock, url, tls, peer);
        if (rv == 0)
            rv = nng_socket_get_int(l->sock, NNG_OPT_RECVFD, &fd);
        if (rv == 0)
            rv = nng_socket_get_int(l->sock, NNG_OPT_SENDFD, &wfd);
        if (rv == 0) {
            ev_io_init(&l->rw, client_readable, fd, EV_READ);
            l->rw.data = l;
            ev_io_start(loop, &l->rw);
            ev_io_init(&l->ww, lane_writable, wfd, EV_READ); /* nng: readable = may send */
            l->ww.data = l;
        }
    }
    if (rv != 0) {
        log_error("rpc.dial", "%s: %s", url, nng_strerror(rv));
        close_lanes(c);
        hmap_destroy(c->pending);
        free(c);
        return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? HERALD_EINVAL
               : rv == NNG_ENOMEM                       ? HERALD_ENOMEM
                                                        : HERALD_EIO;
    }
    c->next_id = (uint32_t)rand();
    *out = c;
    return 0;
}

int rpc_send(rpc_client *c, const void *p, size_t n, unsigned timeout_ms, rpc_done_fn done,
             void *arg)
{
    return rpc_send_keyed(c, 0, p, n, timeout_ms, done, arg);
}

int rpc_send_keyed(rpc_client *c, uint32_t key, const void *p, size_t n, unsigned timeout_ms,
                   rpc_done_fn done, void *arg)
{
    rpc_req *r;
    nng_msg *m = NULL;
    int lane;

    if (c->closing)
        return HERALD_ESHUTDOWN;
    if (c->nwait >= RPC_WAIT_MAX)
        return HERALD_EBUSY;
    if (!(r = calloc(1, sizeof *r)))
        return HERALD_ENOMEM;
    do
        r->id = (c->next_id++ & ~RPC_ID_BIT) | RPC_ID_BIT;
    while (hmap_get(c->pending, &r->id, sizeof r->id));
    r->c = c;
    r->done = done;
    r->arg = arg;
    r->lane = -1;
    r->want = key && c->nlanes ? (int)(key % c->nlanes) : (int)RPC_ANY;
    r->seq = c->next_seq++;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, p, n) != 0 ||
        nng_msg_header_append_u32(m, r->id) != 0 ||
        hmap_put(c->pending, &r->id, sizeof r->id, r) != 0) {
        if (m)
            nng_msg_free(m);
        free(r);
        return HERALD_ENOMEM;
    }
    r->msg = m;
    ev_timer_init(&r->timer, req_timeout, timeout_ms / 1000.0, 0.0);
    r->timer.data = r;
    ev_timer_start(c->loop, &r->timer);
    lane = lane_for(c, r);
    if (lane < 0) {
        wait_append(c, r);
        return 0;
    }
    switch (lane_send(c, r, lane)) {
    case SENT:
        break;
    case FULL: /* its queue was empty (lane_for): it waits first in line */
        wait_append(c, r);
        break;
    case FAILED:
        fail_soon(c, r);
        break;
    }
    return 0;
}

size_t rpc_inflight(const rpc_client *c) { return hmap_count(c->pending) - c->nghosts; }

void rpc_client_destroy(rpc_client *c)
{
    const void *k;
    size_t kl, i;
    void *v;

    if (!c)
        return;
    close_lanes(c);
    /* hmap_next walks slots; finishing removes, so restart from 0 each time. */
    c->closing = true;
    while ((i = hmap_next(c->pending, 0, &k, &kl, &v)) != (size_t)-1) {
        rpc_req *r = v;
        if (r->ghost)
            ghost_free(r, false);
        else
            req_finish(r, HERALD_ESHUTDOWN, NULL, 0);
    }
    hmap_destroy(c->pending);
    free(c);
}
