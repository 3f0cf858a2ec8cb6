/* http_srv.c — see http_srv.h. */
#include "http_srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <herald/error.h>
#include <herald/protocol.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "srv_tls.h"
#include "tcplisten.h"

#define HTTP_READ_CHUNK 4096u

typedef struct hconn hconn;

struct http_srv {
    http_srv_config cfg;   /* limits (defaults filled) */
    char listen[272];      /* owned copy of cfg.listen */
    struct ev_loop *loop;  /* the loop everything runs on */
    http_handler h;        /* where requests go */
    int lfd;               /* listening socket */
    uint16_t port;         /* bound port */
    ev_io accept_w;        /* readable on lfd */
    ev_timer accept_pause; /* resumes accepting after EMFILE and the like */
    hconn *all;            /* open connections */
    gw_tls *tls;           /* HTTPS (cfg.tls_cert), NULL: plain HTTP */
    http_srv_stats st;     /* counters */
};

/* A connection is also the exchange of its one request in the handler. */
struct hconn {
    http_srv *s;           /* owner; NULL once the server is gone */
    int fd;                /* socket; -1 once closed */
    int refs;              /* 1 while open + 1 while a request is with the handler */
    char peer[64];         /* "ip:port" for logs */
    ev_io rio, wio;        /* readable / writable */
    gw_tls_session *tls;   /* HTTPS: the session (NULL: plain) */
    bool tls_want_write;   /* the handshake waits for the socket to take bytes */
    ev_timer timer;        /* request, idle or write deadline */
    herald_buf in;         /* received, not yet answered */
    herald_buf out;        /* response bytes not yet written */
    size_t out_off;        /* bytes of out written */
    size_t req_len;        /* bytes of in the request with the handler occupies */
    bool busy;             /* a request is with the handler */
    bool head_only;        /* that request is HEAD */
    bool keep;             /* keep the connection after the response */
    bool reparse;          /* look at the buffered input from the timer (no
                              recursion through pipelined requests) */
    hconn *next, *prev;    /* s->all */
};

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void parse_next(hconn *c);

int http_status_code(int status)
{
    switch (status) {
    case 400: return HERALD_EPROTOCOL;
    case 404: return HERALD_ENOT_FOUND;
    case 405:
    case 415:
    case 501:
    case 505: return HERALD_EUNSUPPORTED;
    case 408: return HERALD_ETIMEOUT;
    case 413:
    case 431: return HERALD_ETOO_BIG;
    case 429: return HERALD_ERATE_LIMITED;
    case 503: return HERALD_EBUSY;
    default: return status >= 500 ? HERALD_EINTERNAL : HERALD_EINVAL;
    }
}

static void conn_unref(hconn *c)
{
    if (--c->refs > 0)
        return;
    herald_buf_free(&c->in);
    herald_buf_free(&c->out);
    free(c);
}

static void conn_close(hconn *c, const char *why)
{
    http_srv *s = c->s;
    if (c->fd < 0)
        return;
    log_debug("http.close", "http %s: %s", c->peer, why);
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->timer);
    gw_tls_session_free(c->tls); /* close_notify, best effort */
    c->tls = NULL;
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->st.conns--;
    conn_unref(c);
}

static void set_timer(hconn *c, uint32_t ms)
{
    ev_timer_stop(c->s->loop, &c->timer);
    ev_timer_set(&c->timer, ms / 1000.0, 0.0);
    ev_timer_start(c->s->loop, &c->timer);
}

/* Writes what the socket takes; once all is out, keeps the connection for
 * the next request or closes it. */
static void flush(hconn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n;
        if (c->tls) {
            n = gw_tls_write(c->tls, c->out.data + c->out_off, c->out.len - c->out_off);
            if (n == GW_TLS_AGAIN) {
                ev_io_start(c->s->loop, &c->wio);
                return;
            }
            if (n < 0) {
                conn_close(c, "TLS write failed");
                return;
            }
            c->out_off += (size_t)n;
            continue;
        }
        n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(c->s->loop, &c->wio);
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            conn_close(c, "write failed");
            return;
        }
        c->out_off += (size_t)n;
    }
    ev_io_stop(c->s->loop, &c->wio);
    herald_buf_free(&c->out);
    c->out_off = 0;
    if (!c->keep) {
        /* Half-close so the peer reads the whole answer, then close (TLS:
         * close_notify first, in conn_close). */
        if (!c->tls)
            shutdown(c->fd, SHUT_WR);
        conn_close(c, "answered");
        return;
    }
    /* The next request (pipelined bytes, or the next read) is looked at
     * from the loop, not from inside the handler's reply. */
    c->reparse = true;
    set_timer(c, 0);
}

/* Queues a response; keep says whether the connection stays for more. */
static int respond(hconn *c, int status, const char *ctype, const void *body, size_t n,
                   bool head_only, bool keep, const char *headers)
{
    char hdr[2048];
    int hl = snprintf(hdr, sizeof hdr,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nConnection: %s\r\n%s\r\n",
                      status, http_reason(status), ctype, n, keep ? "keep-alive" : "close",
                      headers ? headers : "");
    c->keep = keep;
    if (hl < 0 || (size_t)hl >= sizeof hdr || herald_buf_append(&c->out, hdr, (size_t)hl) != 0 ||
        (!head_only && n && herald_buf_append(&c->out, body, n) != 0)) {
        conn_close(c, "out of memory");
        return HERALD_ENOMEM;
    }
    ev_io_stop(c->s->loop, &c->rio); /* one response at a time */
    set_timer(c, c->s->cfg.req_ms);  /* the peer must take it within this */
    flush(c);
    return 0;
}

static int error_body(herald_buf *b, int code, const char *msg)
{
    json_w w;
    json_init(&w, b);
    json_obj(&w);
    json_key(&w, "errcode");
    json_u64(&w, (uint64_t)code);
    json_key(&w, "errmsg");
    json_strz(&w, msg);
    json_obj_end(&w);
    return json_done(&w);
}

/* The server's own refusal of a request: answered, then closed. */
static void reject(hconn *c, int status, const char *msg)
{
    herald_buf b = {0};
    c->s->st.rejected++;
    log_info("http.reject", "http %s: %d %s", c->peer, status, msg);
    if (error_body(&b, http_status_code(status), msg) != 0) {
        herald_buf_free(&b);
        conn_close(c, "out of memory");
        return;
    }
    herald_buf_consume(&c->in, c->in.len); /* nothing after it is read */
    respond(c, status, "application/json", b.data, b.len, false, false, NULL);
    herald_buf_free(&b);
}

int http_reply_headers(http_exchange *x, int status, const char *ctype, const void *body,
                       size_t n, const char *headers)
{
    hconn *c = (hconn *)x;
    int rc = 0;
    c->busy = false;
    if (c->fd >= 0) {
        herald_buf_consume(&c->in, c->req_len);
        c->req_len = 0;
        rc = respond(c, status, ctype, body, n, c->head_only, c->keep, headers);
    }
    conn_unref(c); /* the handler's reference */
    return rc;
}

int http_reply(http_exchange *x, int status, const char *ctype, const void *body, size_t n)
{
    return http_reply_headers(x, status, ctype, body, n, NULL);
}

int http_reply_redirect(http_exchange *x, const char *location)
{
    /* Only a path of this server: nothing from the request is echoed. */
    char h[300];
    if (!location || location[0] != '/' || strlen(location) > 256 ||
        strpbrk(location, "\r\n") != NULL)
        return http_reply_error(x, 500, HERALD_EINTERNAL, "bad redirect");
    snprintf(h, sizeof h, "Location: %s\r\n", location);
    return http_reply_headers(x, 301, "text/html; charset=utf-8", "", 0, h);
}

int http_reply_error(http_exchange *x, int status, int code, const char *msg)
{
    herald_buf b = {0};
    int rc = error_body(&b, code, msg);
    if (rc == 0)
        rc = http_reply(x, status, "application/json", b.data, b.len);
    else
        http_reply(x, 500, "text/plain", "", 0);
    herald_buf_free(&b);
    return rc;
}

/* Looks at the buffered input: a whole request goes to the handler; a
 * partial one waits (reading resumes); a bad one is refused. */
static void parse_next(hconn *c)
{
    http_srv *s = c->s;
    http_req rq;
    int st;

    if (c->fd < 0 || c->busy)
        return;
    st = http_req_parse(c->in.data, c->in.len, s->cfg.head_max, &rq);
    if (st == HTTP_PARTIAL) {
        ev_io_start(s->loop, &c->rio);
        /* A request under way must finish within req_ms of its first byte;
         * an empty connection may idle. */
        if (c->in.len == 0)
            set_timer(c, s->cfg.idle_ms);
        else if (!ev_is_active(&c->timer))
            set_timer(c, s->cfg.req_ms);
        return;
    }
    if (st != HTTP_OK) {
        reject(c, st, st == 431   ? "request head too large"
                      : st == 501 ? "Transfer-Encoding is not supported; send Content-Length"
                      : st == 505 ? "only HTTP/1.0 and HTTP/1.1"
                                  : "malformed request");
        return;
    }
    if (rq.content_length > s->cfg.body_max) {
        reject(c, 413, "request body too large");
        return;
    }
    if (c->in.len - rq.head_len < rq.content_length) {
        ev_io_start(s->loop, &c->rio); /* the body is on its way (timer runs) */
        if (!ev_is_active(&c->timer))
            set_timer(c, s->cfg.req_ms);
        return;
    }
    ev_io_stop(s->loop, &c->rio);
    ev_timer_stop(s->loop, &c->timer);
    c->busy = true;
    c->head_only = rq.method == HTTP_HEAD;
    c->keep = rq.keep_alive;
    c->req_len = rq.head_len + (size_t)rq.content_length;
    c->refs++;
    s->st.requests++;
    s->h.request(s->h.ctx, (http_exchange *)c, &rq, c->in.data + rq.head_len,
                 (size_t)rq.content_length);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    hconn *c = w->data;
    http_srv *s = c->s;
    size_t room, cap = (size_t)s->cfg.head_max + s->cfg.body_max + HTTP_READ_CHUNK;
    bool was_empty = c->in.len == 0;
    ssize_t n;
    (void)loop;
    (void)revents;

    /* The parser refuses a head past head_max and a body past body_max
     * before this could be reached; the cap is a backstop. */
    room = c->in.len < cap ? cap - c->in.len : 0;
    if (room > HTTP_READ_CHUNK)
        room = HTTP_READ_CHUNK;
    if (room == 0 || herald_buf_reserve(&c->in, room) != 0) {
        conn_close(c, room ? "out of memory" : "input cap");
        return;
    }
    if (c->tls) {
        n = gw_tls_read(c->tls, c->in.data + c->in.len, room);
        if (n == GW_TLS_WANT_WRITE) {
            /* The handshake writes first: read again once it could. */
            c->tls_want_write = true;
            ev_io_start(s->loop, &c->wio);
            return;
        }
        if (n == GW_TLS_AGAIN)
            return;
        if (n <= 0) {
            conn_close(c, n == 0 ? "peer closed" : gw_tls_last_error(c->tls));
            return;
        }
        c->in.len += (size_t)n;
        /* Decrypted bytes the socket will not signal again. */
        while (gw_tls_pending(c->tls) && c->in.len < cap &&
               herald_buf_reserve(&c->in, HTTP_READ_CHUNK) == 0) {
            n = gw_tls_read(c->tls, c->in.data + c->in.len, HTTP_READ_CHUNK);
            if (n <= 0)
                break;
            c->in.len += (size_t)n;
        }
    } else {
        n = recv(c->fd, c->in.data + c->in.len, room, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            conn_close(c, n == 0 ? "peer closed" : "read failed");
            return;
        }
        c->in.len += (size_t)n;
    }
    if (was_empty)
        set_timer(c, s->cfg.req_ms); /* a new request began: it has req_ms */
    parse_next(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    hconn *c = w->data;
    (void)revents;
    if (c->tls_want_write) {
        c->tls_want_write = false;
        if (!c->out.len)
            ev_io_stop(loop, &c->wio);
        on_read(loop, &c->rio, EV_READ);
        if (c->fd < 0 || !c->out.len)
            return;
    }
    flush(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    hconn *c = w->data;
    (void)loop;
    (void)revents;
    if (c->busy)
        return; /* the handler owes an answer; it re-arms the timer */
    if (c->reparse) {
        c->reparse = false;
        ev_timer_stop(c->s->loop, &c->timer);
        parse_next(c);
    } else if (c->out.len)
        conn_close(c, "response not taken in time");
    else if (c->in.len)
        reject(c, 408, "request not received in time");
    else
        conn_close(c, "idle");
}

static void accept_one(http_srv *s, int fd, const char *peer)
{
    hconn *c;
    int one = 1;

    if (s->st.conns >= s->cfg.max_conns && s->tls) {
        s->st.refused++;
        close(fd); /* no TLS session for it: closed without a word */
        log_warn("http.refuse", "refused %s: connection cap %u", peer, s->cfg.max_conns);
        return;
    }
    if (s->st.conns >= s->cfg.max_conns) {
        static const char busy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            "Content-Length: 49\r\nConnection: close\r\n\r\n"
            "{\"errcode\":22,\"errmsg\":\"too many connections\"}\r\n";
        s->st.refused++;
        if (write(fd, busy, sizeof busy - 1) < 0)
            log_debug("http.refuse", "write to %s failed", peer);
        close(fd);
        log_warn("http.refuse", "refused %s: connection cap %u", peer, s->cfg.max_conns);
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s->tls && gw_tls_session_new(s->tls, fd, &c->tls) != 0) {
        free(c);
        close(fd);
        return;
    }
    c->s = s;
    c->fd = fd;
    c->refs = 1;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_timer_init(&c->timer, on_timer, s->cfg.idle_ms / 1000.0, 0.0);
    c->rio.data = c->wio.data = c->timer.data = c;
    ev_io_start(s->loop, &c->rio);
    ev_timer_start(s->loop, &c->timer);
    c->next = s->all;
    if (s->all)
        s->all->prev = c;
    s->all = c;
    s->st.conns++;
    s->st.accepted++;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    http_srv *s = w->data;
    (void)revents;
    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char peer[64];
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("http.accept", "accept failed: %s; pausing accepts for 100 ms",
                         strerror(errno));
                ev_io_stop(loop, &s->accept_w);
                ev_timer_set(&s->accept_pause, 0.1, 0.0);
                ev_timer_start(loop, &s->accept_pause);
            }
            return;
        }
        tcp_peer_name(&ss, peer, sizeof peer);
        accept_one(s, fd, peer);
    }
}

static void on_accept_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    http_srv *s = w->data;
    (void)revents;
    ev_io_start(loop, &s->accept_w);
}

int http_srv_create(const http_srv_config *cfg, struct ev_loop *loop, const http_handler *h,
                    http_srv **out)
{
    http_srv *s;
    int rc;

    if (!cfg->listen || strlen(cfg->listen) >= sizeof s->listen)
        return HERALD_EINVAL;
    s = calloc(1, sizeof *s);
    if (!s)
        return HERALD_ENOMEM;
    s->cfg = *cfg;
    snprintf(s->listen, sizeof s->listen, "%s", cfg->listen);
    s->cfg.listen = s->listen;
    if (!s->cfg.max_conns)
        s->cfg.max_conns = 64;
    if (!s->cfg.head_max)
        s->cfg.head_max = 8192;
    if (!s->cfg.body_max)
        s->cfg.body_max = 1u << 20;
    if (!s->cfg.req_ms)
        s->cfg.req_ms = 10000;
    if (!s->cfg.idle_ms)
        s->cfg.idle_ms = 30000;
    s->loop = loop;
    s->h = *h;
    if (cfg->tls_cert && cfg->tls_cert[0]) {
        char err[256];
        rc = gw_tls_create(cfg->tls_cert, &s->tls, err, sizeof err);
        if (rc) {
            log_error("http.tls", "%s: %s", cfg->tls_cert, err);
            free(s);
            return rc;
        }
    }
    s->cfg.tls_cert = NULL;
    rc = tcp_listen(s->listen, 64, &s->lfd, &s->port);
    if (rc) {
        gw_tls_destroy(s->tls);
        free(s);
        return rc;
    }
    ev_io_init(&s->accept_w, on_accept, s->lfd, EV_READ);
    ev_timer_init(&s->accept_pause, on_accept_resume, 0.1, 0.0);
    s->accept_w.data = s->accept_pause.data = s;
    ev_io_start(loop, &s->accept_w);
    *out = s;
    return 0;
}

uint16_t http_srv_port(const http_srv *s) { return s->port; }

void http_srv_stats_get(const http_srv *s, http_srv_stats *out) { *out = s->st; }

void http_srv_destroy(http_srv *s)
{
    if (!s)
        return;
    ev_io_stop(s->loop, &s->accept_w);
    ev_timer_stop(s->loop, &s->accept_pause);
    close(s->lfd);
    while (s->all)
        conn_close(s->all, "server stopping");
    gw_tls_destroy(s->tls);
    free(s);
}
