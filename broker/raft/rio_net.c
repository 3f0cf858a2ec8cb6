/*
 * rio_net.c — the raft transport over nng.
 *
 * Why PUSH0/PULL0: raft messages are one-way and raft tolerates loss,
 * duplication and reordering of whole messages, so the transport needs no
 * request/reply pairing (REQ resends and load-balances — wrong for raft)
 * and no reply path (every raft reply is itself a message to the sender's
 * address). Each node listens on one PULL0 socket; each peer gets one PUSH0
 * socket dialing that peer's listener (one TCP connection per direction,
 * reconnected by nng). Sends are non-blocking: a full or unconnected pipe
 * fails the send (RAFT_NOCONNECTION) instead of queueing stale traffic.
 *
 * Batching: messages are encoded at send() into the peer's outbox; an
 * ev_prepare watcher (end of loop iteration) turns each outbox into nng
 * messages (split at RIO_BATCH_SOFT bytes) and fires the send callbacks, so
 * everything one iteration produces for one peer — heartbeats of all groups
 * included — costs one nng message.
 *
 * Receive: one nng aio; its callback (nng thread) only queues the message
 * and ev_async_sends; decoding and dispatch happen on the loop thread.
 *
 * Floor: below the hub (rio_hub.c), which gets the frames through the
 * rio_net_recv_fn it registered; above the snapshot streams (rio_snap.c),
 * which it owns and which send through the rio_snap_out it fills in.
 */
#include <herald/error.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clink.h"
#include "hmap.h"
#include "log.h"
#include "sockclose.h"
#include "rio_int.h"

#define RIO_BATCH_SOFT ((size_t)256 << 10) /* start a new nng message past this */
#define RIO_BAD_LOG_MAX 16                 /* bad frames logged before going quiet */
#define RIO_CLOSE_QUIET 0.25               /* s at close for messages in flight to land */

/* A send request waiting for its batch to be flushed. */
typedef struct nreq {
    struct nreq *next; /* link */
    rio_net_cb cb;     /* completion */
    void *arg;         /* its argument */
    int sent_status;   /* status reported when the frame went out (RAFT_TOOBIG: cut) */
} nreq;

/* One future nng message. */
typedef struct nbatch {
    struct nbatch *next; /* link */
    rio_buf buf;         /* encoded frame */
    nreq *head, *tail;   /* requests in it, in order */
    size_t nmsgs;        /* raft messages in it */
} nbatch;

/* A destination node. */
typedef struct npeer {
    char *url;              /* its listen URL (owned) */
    nng_socket sock;        /* PUSH0 dialer */
    bool ok;                /* socket open and dial started */
    nbatch *head, *tail;    /* outbox */
    struct npeer *dirty;    /* next peer with a non-empty outbox */
    bool in_dirty;          /* on the dirty list */
} npeer;

/* A received nng message waiting for the loop thread. */
typedef struct rxn {
    struct rxn *next; /* link */
    nng_msg *msg;     /* owned */
} rxn;

struct rio_net {
    struct ev_loop *loop;   /* loop thread's loop */
    uint64_t self_id;       /* sender id written in every frame */
    char *url;              /* our address written in every frame (owned) */
    size_t max_msg;         /* RECVMAXSZ, and the largest frame we send */
    const clink *tls;       /* the links' TLS (NULL: plaintext) */
    rio_net_recv_fn fn;     /* frame consumer (the hub) */
    void *fn_arg;           /* its argument */
    nng_socket pull;        /* listener */
    nng_aio *raio;          /* receive aio */
    atomic_int npipes;      /* connections to the listener (nng's pipe callbacks) */
    pthread_mutex_t mu;     /* guards rx_head/rx_tail */
    rxn *rx_head, *rx_tail; /* received, not yet decoded (mu) */
    ev_async wake;          /* nng thread → loop: rx non-empty */
    ev_prepare prep;        /* end of iteration: flush outboxes */
    ev_idle kick;           /* keeps the loop from blocking while outboxes are full */
    hmap *peers;            /* url → npeer */
    npeer *dirty;           /* peers with queued messages */
    unsigned bad_logged;    /* bad frames logged so far */
    unsigned toobig_logged; /* oversized messages logged so far */
    ev_tstamp toobig_last;  /* when the last one was logged */
    rio_stats st;           /* transport counters (loop thread) */
    rio_snaps *snaps;       /* streamed snapshots, both directions (rio_snap.c) */
};

/* ---- receive ------------------------------------------------------------ */

static void on_recv(void *arg)
{
    rio_net *n = arg;
    int rv = nng_aio_result(n->raio);

    if (rv == 0) {
        nng_msg *m = nng_aio_get_msg(n->raio);
        rxn *x = malloc(sizeof *x);
        if (x) {
            x->next = NULL;
            x->msg = m;
            pthread_mutex_lock(&n->mu);
            if (n->rx_tail)
                n->rx_tail->next = x;
            else
                n->rx_head = x;
            n->rx_tail = x;
            pthread_mutex_unlock(&n->mu);
            ev_async_send(n->loop, &n->wake);
        } else {
            nng_msg_free(m); /* raft recovers from a lost message */
        }
    } else if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
        return;
    }
    nng_recv_aio(n->pull, n->raio);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    rio_net *n = w->data;
    rxn *x, *next;

    pthread_mutex_lock(&n->mu);
    x = n->rx_head;
    n->rx_head = n->rx_tail = NULL;
    pthread_mutex_unlock(&n->mu);
    for (; x; x = next) {
        rio_frame f;
        int rc;
        next = x->next;
        n->st.frames_recv++;
        rc = rio_frame_decode(nng_msg_body(x->msg), nng_msg_len(x->msg), &f);
        if (rc != 0) {
            n->st.frames_bad++;
            if (n->bad_logged < RIO_BAD_LOG_MAX) {
                n->bad_logged++;
                log_warn("rio.badframe", "raft transport: rejected a %zu-byte frame: %s",
                         nng_msg_len(x->msg), herald_strerror(rc));
            }
        } else {
            size_t i;
            for (i = 0; i < f.n; i++) {
                rio_rec *r = &f.recs[i];
                if (r->xtype == RIO_REC_SNAP_ACK)
                    rio_snaps_on_ack(n->snaps, f.sender_addr, r->gid, &r->ack);
                else if (r->xtype == RIO_REC_SNAP_CHUNK)
                    rio_snaps_on_chunk(n->snaps, f.sender_id, f.sender_addr, r);
                if (r->xtype) /* consumed here, or turned into an InstallSnapshot */
                    rio_rec_release(r);
            }
            n->fn(n->fn_arg, &f); /* chunk data pointed into x->msg: freed only now */
        }
        nng_msg_free(x->msg);
        free(x);
    }
}

/* ---- send --------------------------------------------------------------- */

static void peer_close(npeer *p)
{
    if (p->ok)
        sock_close(p->sock, "raft peer socket", 0);
    p->ok = false;
}

static npeer *peer_get(rio_net *n, const char *url)
{
    size_t len = strlen(url);
    npeer *p = hmap_get(n->peers, url, len);
    int rv;

    if (p)
        return p;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->url = strdup(url);
    if (!p->url || hmap_put(n->peers, url, len, p) != 0) {
        free(p->url);
        free(p);
        return NULL;
    }
    rv = nng_push0_open(&p->sock);
    if (rv == 0) {
        p->ok = true;
        nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, 20);
        nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, 500);
        nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, 64);
        rv = clink_dial(p->sock, url, n->tls, NULL); /* any cluster certificate */
    }
    if (rv != 0) {
        log_warn("rio.dial", "raft transport: cannot dial %s: %s", url, nng_strerror(rv));
        peer_close(p); /* sends to it fail until the hub is restarted */
    }
    return p;
}

static const char *msg_type_name(int type)
{
    switch (type) {
    case RAFT_IO_APPEND_ENTRIES:
        return "AppendEntries";
    case RAFT_IO_INSTALL_SNAPSHOT:
        return "InstallSnapshot";
    default:
        return "message";
    }
}

/* Logs a refused oversized message: the first few, then one per 10 s (raft
 * retries a snapshot send every install_snapshot_timeout). */
static void log_toobig(rio_net *n, uint32_t gid, const struct raft_message *m, size_t need)
{
    ev_tstamp now = ev_now(n->loop);

    if (n->toobig_logged >= RIO_BAD_LOG_MAX && now - n->toobig_last < 10.0)
        return;
    n->toobig_logged++;
    n->toobig_last = now;
    if (need == SIZE_MAX)
        log_error("rio.toobig", "raft group %u: %s to %s cannot be encoded (a field over 4 GiB)",
                  gid, msg_type_name(m->type), m->server_address);
    else
        log_error("rio.toobig",
                  "raft group %u: %s to %s is %zu bytes, over the %zu-byte message limit "
                  "(raft max_msg); not sent (%llu refused so far)",
                  gid, msg_type_name(m->type), m->server_address, need, n->max_msg,
                  (unsigned long long)n->st.msgs_toobig);
}

/* An AppendEntries over the cap is cut to the entries that fit: raft's
 * follower answers with its last stored index, and the leader continues
 * from there (see rio.h, "Large AppendEntries"). Returns the message to
 * encode (m, or *cut) and sets *need to its size. */
static const struct raft_message *ae_cut(rio_net *n, const struct raft_message *m, size_t limit,
                                         struct raft_message *cut, size_t *need)
{
    size_t budget = limit < RIO_APPEND_MAX ? limit : RIO_APPEND_MAX;
    unsigned k;

    if (m->type != RAFT_IO_APPEND_ENTRIES || *need <= budget)
        return m;
    k = rio_ae_fit(m, budget);
    if (k == 0) /* a first entry over RIO_APPEND_MAX goes alone if the cap allows */
        k = rio_ae_fit(m, limit);
    if (k == 0)
        return m; /* its first entry alone is over the cap: refused below */
    *cut = *m;
    cut->append_entries.n_entries = k;
    *need = rio_msg_size(cut);
    n->st.appends_cut++;
    return cut;
}

typedef int (*enc_fn)(rio_buf *b, uint32_t gid, const void *what);
static int enc_msg(rio_buf *b, uint32_t gid, const void *w) { return rio_msg_encode(b, gid, w); }
static int enc_chunk(rio_buf *b, uint32_t gid, const void *w) { return rio_chunk_encode(b, gid, w); }
static int enc_ack(rio_buf *b, uint32_t gid, const void *w) { return rio_ack_encode(b, gid, w); }

/* Encodes one record of `need` bytes (≤ max_msg − frame header) into the
 * outbox of url; r (NULL: no completion) joins its batch. 0, HERALD_ENOMEM,
 * HERALD_EINVAL. */
static int enqueue(rio_net *n, const char *url, uint32_t gid, size_t need, enc_fn enc,
                   const void *what, nreq *r)
{
    npeer *p = peer_get(n, url);
    nbatch *b;
    int rc;

    if (!p)
        return HERALD_ENOMEM;
    b = p->tail;
    /* A new frame past the soft size, or when this record would push this
     * one past max_msg (one big message must not fail the small ones with
     * it). */
    if (!b || b->buf.len >= RIO_BATCH_SOFT || b->buf.len > n->max_msg - need) {
        b = calloc(1, sizeof *b);
        if (!b)
            return HERALD_ENOMEM;
        if (rio_frame_begin(&b->buf, n->self_id, n->url) != 0) {
            free(b);
            return HERALD_ENOMEM;
        }
        if (p->tail)
            p->tail->next = b;
        else
            p->head = b;
        p->tail = b;
    }
    if ((rc = enc(&b->buf, gid, what)) != 0)
        return rc;
    if (r) {
        if (b->tail)
            b->tail->next = r;
        else
            b->head = r;
        b->tail = r;
    }
    b->nmsgs++;
    if (!p->in_dirty) {
        p->in_dirty = true;
        p->dirty = n->dirty;
        n->dirty = p;
    }
    ev_idle_start(n->loop, &n->kick);
    return 0;
}

int rio_net_send(rio_net *n, uint32_t gid, const struct raft_message *m, rio_net_cb cb, void *arg)
{
    struct raft_message cut;
    nreq *r = NULL;
    size_t need, hdr, limit;
    int sent_status = 0;
    int rc;

    if (!m->server_address || strlen(m->server_address) > RIO_ADDR_MAX)
        return RAFT_MALFORMED;
    /* Every frame must fit max_msg (the peers' RECVMAXSZ: nng drops the
     * connection on a bigger one). An AppendEntries is cut to what fits; a
     * message that cannot fit even alone is refused here, loudly; raft
     * gives up this send and retries later. */
    need = rio_msg_size(m);
    hdr = RIO_FRAME_HDR_MIN + strlen(n->url);
    limit = n->max_msg > hdr ? n->max_msg - hdr : 0;
    if (ae_cut(n, m, limit, &cut, &need) == &cut) {
        m = &cut;
        sent_status = RAFT_TOOBIG; /* the leader re-probes from the follower's answer */
    }
    if (m->type == RAFT_IO_INSTALL_SNAPSHOT && need > (limit < RIO_SNAP_SINGLE_MAX ? limit : RIO_SNAP_SINGLE_MAX))
        return rio_snaps_send(n->snaps, gid, m, limit, cb, arg);
    if (need > limit) {
        n->st.msgs_toobig++;
        log_toobig(n, gid, m, need);
        return RAFT_TOOBIG;
    }
    r = malloc(sizeof *r);
    if (!r)
        return RAFT_NOMEM;
    r->next = NULL;
    r->cb = cb;
    r->arg = arg;
    r->sent_status = sent_status;
    rc = enqueue(n, m->server_address, gid, need, enc_msg, m, r);
    if (rc != 0) {
        free(r);
        return rc == HERALD_ENOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
    }
    return 0;
}

/* rio_snap_out.put_chunk / put_ack: the snapshot streams' records, into
 * url's outbox now, sent with the next flush, no completion. 0,
 * HERALD_ENOMEM, HERALD_EINVAL. */
static int put_chunk(void *arg, const char *url, uint32_t gid, const rio_chunk *c)
{
    rio_net *n = arg;

    n->st.snap_chunks++;
    n->st.snap_bytes += c->len;
    return enqueue(n, url, gid, rio_chunk_size(c), enc_chunk, c, NULL);
}

static int put_ack(void *arg, const char *url, uint32_t gid, const rio_sack *a)
{
    rio_net *n = arg;

    return enqueue(n, url, gid, rio_ack_size(), enc_ack, a, NULL);
}

void rio_net_cancel(rio_net *n, uint32_t gid)
{
    rio_snaps_cancel(n->snaps, gid);
}

/* Hands one batch to nng; returns the status for its requests. */
static int send_batch(rio_net *n, npeer *p, nbatch *b)
{
    nng_msg *msg;
    int rv;

    if (!p->ok)
        return RAFT_NOCONNECTION;
    if (b->buf.len > n->max_msg)
        return RAFT_TOOBIG;
    if (nng_msg_alloc(&msg, b->buf.len) != 0)
        return RAFT_NOMEM;
    memcpy(nng_msg_body(msg), b->buf.data, b->buf.len);
    rv = nng_sendmsg(p->sock, msg, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        nng_msg_free(msg); /* ownership passes only on success */
        return RAFT_NOCONNECTION;
    }
    return 0;
}

/* Sends every outbox and fires the callbacks; callbacks may queue more, so
 * repeat a few times. */
static void flush(rio_net *n)
{
    int round;

    rio_snaps_flush(n->snaps);
    for (round = 0; round < 4 && n->dirty; round++) {
        npeer *p = n->dirty;
        n->dirty = NULL;
        while (p) {
            npeer *pnext = p->dirty;
            nbatch *b = p->head;
            p->head = p->tail = NULL;
            p->dirty = NULL;
            p->in_dirty = false;
            while (b) {
                nbatch *bnext = b->next;
                int status = send_batch(n, p, b);
                nreq *r, *rnext;
                if (status == 0) {
                    n->st.frames_sent++;
                    n->st.msgs_sent += b->nmsgs;
                } else {
                    n->st.send_fails += b->nmsgs;
                }
                for (r = b->head; r; r = rnext) {
                    rnext = r->next;
                    if (r->cb)
                        r->cb(r->arg, status ? status : r->sent_status);
                    free(r);
                }
                rio_buf_free(&b->buf);
                free(b);
                b = bnext;
            }
            p = pnext;
        }
    }
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    flush(w->data);
}

static void on_kick(struct ev_loop *loop, ev_idle *w, int revents)
{
    ev_idle_stop(loop, w); /* only there to make the poll not block */
}

/* ---- lifecycle ---------------------------------------------------------- */

/* nng thread: counts the listener's connections (ADD_PRE is the first event
 * of every pipe that gets a REM_POST). */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    rio_net *n = arg;

    (void)p;
    if (ev == NNG_PIPE_EV_ADD_PRE)
        atomic_fetch_add(&n->npipes, 1);
    else if (ev == NNG_PIPE_EV_REM_POST)
        atomic_fetch_sub(&n->npipes, 1);
}

/* Listens; when url ends in ":0" (any port), rewrites it with the bound
 * port so it can be advertised. */
static int listen_on(rio_net *n, const char *url)
{
    size_t len = strlen(url);
    int rv, port = 0;

    rv = clink_listen(n->pull, url, n->tls, &port);
    if (rv != 0) {
        log_error("rio.listen", "raft transport: listen %s: %s", url, nng_strerror(rv));
        return HERALD_EIO;
    }
    if (len >= 2 && strcmp(url + len - 2, ":0") == 0 && port > 0) {
        char *u = malloc(len + 8);
        if (!u)
            return HERALD_ENOMEM;
        snprintf(u, len + 8, "%.*s%d", (int)(len - 1), url, port);
        n->url = u;
    } else {
        n->url = strdup(url);
        if (!n->url)
            return HERALD_ENOMEM;
    }
    return 0;
}

int rio_net_open(struct ev_loop *loop, const char *url, uint64_t self_id, size_t max_msg,
                 const struct clink *tls, rio_net_recv_fn fn, void *arg, rio_net **out)
{
    rio_snap_out port = {.put_chunk = put_chunk, .put_ack = put_ack};
    rio_net *n;
    int rc = HERALD_ENOMEM;

    if (strlen(url) > RIO_ADDR_MAX - 8)
        return HERALD_EINVAL;
    n = calloc(1, sizeof *n);
    if (!n)
        return HERALD_ENOMEM;
    n->loop = loop;
    n->self_id = self_id;
    n->max_msg = max_msg;
    n->tls = tls;
    n->fn = fn;
    n->fn_arg = arg;
    if (hmap_create(&n->peers) != 0)
        goto fail_alloc;
    port.arg = n;
    if (rio_snaps_create(loop, &port, &n->snaps) != 0)
        goto fail_hmap;
    rc = HERALD_EIO;
    if (nng_pull0_open(&n->pull) != 0)
        goto fail_peers;
    nng_socket_set_size(n->pull, NNG_OPT_RECVMAXSZ, max_msg);
    nng_socket_set_int(n->pull, NNG_OPT_RECVBUF, 128);
    atomic_init(&n->npipes, 0);
    nng_pipe_notify(n->pull, NNG_PIPE_EV_ADD_PRE, on_pipe, n);
    nng_pipe_notify(n->pull, NNG_PIPE_EV_REM_POST, on_pipe, n);
    if ((rc = listen_on(n, url)) != 0)
        goto fail_pull;
    rc = HERALD_ENOMEM;
    if (nng_aio_alloc(&n->raio, on_recv, n) != 0)
        goto fail_url;
    pthread_mutex_init(&n->mu, NULL);
    ev_async_init(&n->wake, on_wake);
    n->wake.data = n;
    ev_async_start(loop, &n->wake);
    ev_prepare_init(&n->prep, on_prepare);
    n->prep.data = n;
    ev_prepare_start(loop, &n->prep);
    ev_idle_init(&n->kick, on_kick);
    nng_recv_aio(n->pull, n->raio);
    *out = n;
    return 0;

fail_url:
    free(n->url);
fail_pull:
    sock_close(n->pull, "raft listener", 0);
fail_peers:
    rio_snaps_destroy(n->snaps);
fail_hmap:
    hmap_destroy(n->peers);
fail_alloc:
    free(n);
    return rc;
}

void rio_net_close(rio_net *n)
{
    size_t i = 0;
    const void *k;
    size_t kl;
    void *v;
    rxn *x, *next;

    if (!n)
        return;
    rio_snaps_destroy(n->snaps); /* streams still running fail (RAFT_CANCELED) */
    n->snaps = NULL;
    flush(n);
    nng_aio_stop(n->raio);
    /* nng 1.5.2's TCP transport can lose the completion of a connection's
     * receive when the connection is closed while a message is arriving on
     * it (fixed in nng 1.6.0); nng_close then waits for that receive
     * forever, and so does every later close in the process. With our
     * receive stopped, PULL0 keeps the next message of each connection and
     * reads nothing more from it: a short quiet period lets the messages in
     * flight land, so the close finds no connection in the middle of one;
     * sock_close bounds what is left. */
    if (atomic_load(&n->npipes) > 0)
        ev_sleep(RIO_CLOSE_QUIET);
    sock_close(n->pull, "raft listener", 0);
    nng_aio_free(n->raio);
    while ((i = hmap_next(n->peers, i, &k, &kl, &v)) != (size_t)-1) {
        npeer *p = v;
        peer_close(p);
        free(p->url);
        free(p);
        i++;
    }
    hmap_destroy(n->peers);
    for (x = n->rx_head; x; x = next) {
        next = x->next;
        nng_msg_free(x->msg);
        free(x);
    }
    ev_idle_stop(n->loop, &n->kick);
    ev_prepare_stop(n->loop, &n->prep);
    ev_async_stop(n->loop, &n->wake);
    pthread_mutex_destroy(&n->mu);
    free(n->url);
    free(n);
}

const char *rio_net_url(const rio_net *n)
{
    return n->url;
}

void rio_net_stats(const rio_net *n, rio_stats *st)
{
    st->frames_sent = n->st.frames_sent;
    st->msgs_sent = n->st.msgs_sent;
    st->send_fails = n->st.send_fails;
    st->frames_recv = n->st.frames_recv;
    st->msgs_recv = n->st.msgs_recv;
    st->frames_bad = n->st.frames_bad;
    st->msgs_orphan = n->st.msgs_orphan;
    st->msgs_toobig = n->st.msgs_toobig;
    st->appends_cut = n->st.appends_cut;
    st->snap_chunks = n->st.snap_chunks;
    st->snap_bytes = n->st.snap_bytes;
    rio_snaps_stats(n->snaps, st);
}

void rio_net_count(rio_net *n, uint64_t delivered, uint64_t orphaned)
{
    n->st.msgs_recv += delivered;
    n->st.msgs_orphan += orphaned;
}
