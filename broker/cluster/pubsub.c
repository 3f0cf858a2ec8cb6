/* pubsub.c — see pubsub.h. */
#include "pubsub.h"

#include <ev.h>
#include <herald/error.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdlib.h>

#include "log.h"
#include "sockclose.h"

#define PS_SENDBUF 8192 /* nng's maximum per-pipe queue */
#define PS_RECV_BATCH 512

struct ps_pub {
    nng_socket sock;
    uint64_t sent, failed;
};

int ps_pub_create(const char *url, uint32_t sendbuf, const clink *tls, ps_pub **out)
{
    ps_pub *p = calloc(1, sizeof *p);
    int rv;

    *out = NULL;
    if (!p)
        return HERALD_ENOMEM;
    if (nng_pub0_open(&p->sock) != 0) {
        free(p);
        return HERALD_EIO;
    }
    nng_socket_set_int(p->sock, NNG_OPT_SENDBUF,
                       sendbuf && sendbuf <= PS_SENDBUF ? (int)sendbuf : PS_SENDBUF);
    rv = clink_listen(p->sock, url, tls, NULL);
    if (rv != 0) {
        log_error("pubsub.listen", "%s: %s", url, nng_strerror(rv));
        sock_close(p->sock, "pub socket", 0);
        free(p);
        return HERALD_EIO;
    }
    *out = p;
    return 0;
}

int ps_publish(ps_pub *p, const void *data, size_t n)
{
    nng_msg *m;
    int rv;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, data, n) != 0) {
        p->failed++;
        return HERALD_ENOMEM;
    }
    rv = nng_sendmsg(p->sock, m, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        nng_msg_free(m); /* ownership passes only on success */
        p->failed++;
        return HERALD_EIO;
    }
    p->sent++;
    return 0;
}

void ps_pub_stats(const ps_pub *p, uint64_t *sent, uint64_t *failed)
{
    *sent = p->sent;
    *failed = p->failed;
}

void ps_pub_destroy(ps_pub *p)
{
    if (!p)
        return;
    sock_close(p->sock, "pub socket", 0);
    free(p);
}

struct ps_sub {
    struct ev_loop *loop;
    nng_socket sock;
    ev_io rw;
    ps_recv_fn fn;
    void *arg;
};

static void sub_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    ps_sub *s = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < PS_RECV_BATCH; i++) {
        nng_msg *m;
        if (nng_recvmsg(s->sock, &m, NNG_FLAG_NONBLOCK) != 0)
            return;
        s->fn(s->arg, nng_msg_body(m), nng_msg_len(m));
        nng_msg_free(m);
    }
}

int ps_sub_create(struct ev_loop *loop, const char *const *urls, const char *const *peers,
                  unsigned n, size_t max_msg, uint32_t recvbuf, const clink *tls, ps_recv_fn fn,
                  void *arg, ps_sub **out)
{
    ps_sub *s = calloc(1, sizeof *s);
    int fd, rv;

    *out = NULL;
    if (!s)
        return HERALD_ENOMEM;
    s->loop = loop;
    s->fn = fn;
    s->arg = arg;
    if (nng_sub0_open(&s->sock) != 0) {
        free(s);
        return HERALD_EIO;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, max_msg);
    nng_socket_set_int(s->sock, NNG_OPT_RECVBUF,
                       recvbuf && recvbuf <= PS_SENDBUF ? (int)recvbuf : PS_SENDBUF);
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 500);
    rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    for (unsigned i = 0; rv == 0 && i < n; i++)
        rv = clink_dial(s->sock, urls[i], tls, peers ? peers[i] : NULL);
    if (rv == 0)
        rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &fd);
    if (rv != 0) {
        log_error("pubsub.dial", "%s", nng_strerror(rv));
        sock_close(s->sock, "sub socket", 0);
        free(s);
        return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? HERALD_EINVAL : HERALD_EIO;
    }
    ev_io_init(&s->rw, sub_readable, fd, EV_READ);
    s->rw.data = s;
    ev_io_start(loop, &s->rw);
    *out = s;
    return 0;
}

void ps_sub_destroy(ps_sub *s)
{
    if (!s)
        return;
    ev_io_stop(s->loop, &s->rw);
    sock_close(s->sock, "sub socket", 0);
    free(s);
}
