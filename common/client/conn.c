/* conn.c — libherald's socket: dial, frame I/O, request/response matching.
 * See client_int.h. */
#include "client_int.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DIAL_HOST_MAX 256 /* bytes of a host name, NUL included */

uint64_t client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds from now to deadline for poll(): ≥ 0, ≤ INT_MAX. */
static int ms_left(uint64_t deadline)
{
    uint64_t now = client_now_ms();
    if (deadline <= now)
        return 0;
    return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* Splits "host:port" / "[v6]:port" into host (NUL-terminated) and port. */
static int split_addr(const char *addr, char host[DIAL_HOST_MAX], const char **port)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    size_t hl;

    if (!colon || colon == addr || colon[1] == '\0')
        return HERALD_EINVAL;
    hl = (size_t)(colon - addr);
    if (addr[0] == '[') {
        if (hl < 3 || addr[hl - 1] != ']')
            return HERALD_EINVAL;
        addr++;
        hl -= 2;
    }
    if (hl >= DIAL_HOST_MAX)
        return HERALD_EINVAL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    *port = colon + 1;
    return 0;
}

/* One connect attempt within timeout_ms. 0 and *fd_out, or an error. */
static int dial_one(const struct addrinfo *ai, int timeout_ms, int *fd_out)
{
    struct pollfd pf;
    int err = 0, one = 1, rc;
    socklen_t el = sizeof err;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return HERALD_EIO;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        rc = HERALD_EIO;
        goto close_fd;
    }
    pf = (struct pollfd){.fd = fd, .events = POLLOUT};
    do
        rc = poll(&pf, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        rc = HERALD_ETIMEOUT;
        goto close_fd;
    }
    if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
        rc = HERALD_EIO;
        goto close_fd;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd_out = fd;
    return 0;
close_fd:
    close(fd);
    return rc;
}

int client_dial(const char *addr, int timeout_ms, int *fd_out)
{
    char host[DIAL_HOST_MAX];
    const char *port;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    uint64_t deadline = client_now_ms() + (uint64_t)timeout_ms;
    int rc = split_addr(addr, host, &port);

    if (rc)
        return rc;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return HERALD_EINVAL;
    rc = HERALD_EIO;
    /* Every address shares the one deadline. */
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int left = ms_left(deadline);
        if (left == 0) {
            rc = HERALD_ETIMEOUT;
            break;
        }
        rc = dial_one(ai, left, fd_out);
        if (rc == 0)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

int client_open(herald_client *c, const char *addr, const char *ca_file, int timeout_ms)
{
    uint64_t deadline = client_now_ms() + (uint64_t)timeout_ms;
    bool tls = addr && strncmp(addr, "tls://", 6) == 0;
    char host[DIAL_HOST_MAX];
    const char *port;
    int rc;

    if (addr && strncmp(addr, "tcp://", 6) == 0)
        addr += 6;
    if (tls)
        addr += 6;
    rc = client_dial(addr, timeout_ms, &c->fd);
    if (rc || !tls)
        return rc;
    if (split_addr(addr, host, &port) != 0)
        return client_broken(c, HERALD_EINVAL);
    rc = client_tls_open(c->fd, host, ca_file, deadline, &c->tls, c->errtext, sizeof c->errtext);
    if (rc)
        client_broken(c, rc);
    return rc;
}

int client_broken(herald_client *c, int rc)
{
    client_tls_close(c->tls);
    c->tls = NULL;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    return rc;
}

static int send_all(herald_client *c, const uint8_t *p, size_t n, uint64_t deadline)
{
    while (n) {
        ssize_t w;
        if (c->fd < 0)
            return HERALD_ECLOSED;
        if (c->tls) {
            w = client_tls_send(c->tls, p, n);
            if (w > 0) {
                p += w;
                n -= (size_t)w;
                continue;
            }
            if (w == CLIENT_TLS_WANT_READ || w == CLIENT_TLS_WANT_WRITE) {
                struct pollfd pf = {.fd = c->fd,
                                    .events = w == CLIENT_TLS_WANT_READ ? POLLIN : POLLOUT};
                int left = ms_left(deadline);
                if (left == 0)
                    return client_broken(c, HERALD_ETIMEOUT);
                (void)poll(&pf, 1, left);
                continue;
            }
            return client_broken(c, HERALD_EIO);
        }
        w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
            int left = ms_left(deadline);
            if (left == 0)
                return client_broken(c, HERALD_ETIMEOUT);
            (void)poll(&pf, 1, left);
            continue;
        }
        return client_broken(c, errno == EPIPE || errno == ECONNRESET ? HERALD_ECLOSED
                                                                       : HERALD_EIO);
    }
    return 0;
}

int client_send_frame(herald_client *c, const herald_frame *f, uint64_t deadline)
{
    herald_buf b = {0};
    int rc;

    if (c->fd < 0)
        return HERALD_ECLOSED;
    rc = herald_frame_encode(f, &b);
    if (rc == 0 && c->srv_max_frame && b.len - HERALD_FRAME_HEADER > c->srv_max_frame)
        rc = HERALD_ETOO_BIG; /* the server would answer TOO_BIG and close */
    if (rc == 0)
        rc = send_all(c, b.data, b.len, deadline);
    herald_buf_free(&b);
    if (rc == 0)
        c->last_tx = client_now_ms();
    return rc;
}

int client_recv_frame(herald_client *c, uint64_t deadline, bool block, herald_frame *f)
{
    if (c->hold) {
        herald_buf_consume(&c->rx, c->hold);
        c->hold = 0;
    }
    short want = POLLIN;
    for (;;) {
        size_t flen = 0;
        ssize_t n;
        int rc;
        if (c->fd < 0)
            return HERALD_ECLOSED;
        /* The cap is checked on the header, before the body is buffered. */
        rc = herald_frame_peek(c->rx.data, c->rx.len, c->max_frame, &flen);
        if (rc)
            return client_broken(c, rc);
        if (flen) {
            herald_limits lim = {.max_frame = c->max_frame};
            rc = herald_frame_decode(c->rx.data + HERALD_FRAME_HEADER,
                                     flen - HERALD_FRAME_HEADER, &lim, f);
            if (rc)
                return client_broken(c, rc);
            c->hold = flen;
            return 0;
        }
        if (!(c->tls && client_tls_pending(c->tls))) {
            struct pollfd pf = {.fd = c->fd, .events = want};
            rc = poll(&pf, 1, block ? ms_left(deadline) : 0);
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc == 0)
                return HERALD_ETIMEOUT;
        }
        want = POLLIN;
        if (herald_buf_reserve(&c->rx, CLIENT_READ_CHUNK) != 0)
            return client_broken(c, HERALD_ENOMEM);
        if (c->tls) {
            n = client_tls_recv(c->tls, c->rx.data + c->rx.len, CLIENT_READ_CHUNK);
            if (n == CLIENT_TLS_WANT_READ)
                continue;
            if (n == CLIENT_TLS_WANT_WRITE) {
                want = POLLOUT;
                continue;
            }
            if (n == CLIENT_TLS_ERROR)
                return client_broken(c, HERALD_EIO);
        } else {
            n = recv(c->fd, c->rx.data + c->rx.len, CLIENT_READ_CHUNK, 0);
        }
        if (n == 0)
            return client_broken(c, HERALD_ECLOSED);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return client_broken(c, errno == ECONNRESET ? HERALD_ECLOSED : HERALD_EIO);
        }
        c->rx.len += (size_t)n;
    }
}

void client_keep_error(herald_client *c, const herald_frame *f)
{
    snprintf(c->errtext, sizeof c->errtext, "%.*s", (int)f->text.len,
             f->text.ptr ? f->text.ptr : "");
}

int client_request(herald_client *c, herald_frame *req, uint32_t want, herald_frame *resp)
{
    return client_request_within(c, req, want, resp, c->timeout_ms);
}

bool client_is_push(uint32_t type)
{
    return type == HERALD_FT_DELIVER || type == HERALD_FT_RECEIPT || type == HERALD_FT_REMIND;
}

int client_request_within(herald_client *c, herald_frame *req, uint32_t want,
                          herald_frame *resp, int timeout_ms)
{
    uint64_t deadline = client_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int rc;

    c->errtext[0] = '\0';
    req->rid = ++c->next_rid;
    rc = client_send_frame(c, req, deadline);
    if (rc)
        return rc;
    for (;;) {
        rc = client_recv_frame(c, deadline, true, resp);
        if (rc)
            return rc == HERALD_ETIMEOUT ? client_broken(c, rc) : rc;
        if (client_is_push(resp->type)) {
            rc = c->on_push ? c->on_push(c, resp) : 0;
            herald_frame_release(resp);
            if (rc)
                return rc;
            continue;
        }
        if (resp->type == HERALD_FT_ERROR) {
            uint64_t ref = resp->ref;
            if (ref != req->rid && ref != 0) {
                herald_frame_release(resp); /* an older request's error: not ours */
                continue;
            }
            client_keep_error(c, resp);
            rc = resp->code ? (int)resp->code : HERALD_EINTERNAL;
            herald_frame_release(resp);
            /* ref 0: connection-level (auth, idle, shutdown): the server closes. */
            return ref == req->rid ? rc : client_broken(c, rc);
        }
        if (resp->rid == req->rid) {
            if (resp->type == want)
                return 0;
            /* Our rid on the wrong answer: the peer does not speak the protocol. */
            snprintf(c->errtext, sizeof c->errtext, "expected %s, got %s",
                     herald_frame_type_name(want), herald_frame_type_name(resp->type));
            herald_frame_release(resp);
            return client_broken(c, HERALD_EPROTOCOL);
        }
        herald_frame_release(resp); /* a stale answer (an older request, a heartbeat PONG) */
    }
}
