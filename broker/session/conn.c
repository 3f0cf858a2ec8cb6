/* conn.c — one client connection: socket I/O, limits, timers, and the
 * common path every framing hands its frames to (framing.h). */
#include "tier_int.h"

#include <errno.h>
#include <herald/error.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define CONN_READ_CHUNK 65536u /* = TIER_SCRATCH */
#define CONN_OUT_KEEP 4096u     /* output capacity kept once flushed */
#define CONN_LINGER_S 2.0 /* seconds a failed conn may take to drain */

static void on_read(struct ev_loop *loop, ev_io *w, int revents);

/* Depth of the byte bucket: twice the rate, and room for two whole frames. */
static double byte_burst(const tier *t)
{
    double b = 2.0 * (double)t->cfg.byte_rate, f = 2.0 * (t->cfg.max_frame + HERALD_FRAME_HEADER);
    return b > f ? b : f;
}
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

void conn_accept(tier_listener *l, int fd, const char *peer)
{
    tier *t = l->t;
    conn *c;
    int one = 1;

    if (t->stopping || t->nconns >= t->cfg.max_conns) {
        t->st.refused++;
        /* Refuse politely in the listener's framing (plain only: a TLS
         * client would read it as garbage), then close. */
        herald_buf b = {0};
        if (!t->tls && l->ops->refuse &&
            l->ops->refuse(HERALD_EBUSY, "too many connections", &b) == 0 &&
            write(fd, b.data, b.len) < 0)
            log_debug("gw.refuse", "write to %s failed", peer);
        herald_buf_free(&b);
        close(fd);
        log_warn("gw.refuse", "refused %s: connection cap %u", peer, t->cfg.max_conns);
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ops = l->ops;
    if (l->ops->conn_new && l->ops->conn_new(l->lst, c, &c->fst) != 0) {
        free(c);
        close(fd);
        return;
    }
    if (t->tls && gw_tls_session_new(t->tls, fd, &c->tls) != 0) {
        if (c->ops->conn_free)
            c->ops->conn_free(c->fst);
        free(c);
        close(fd);
        return;
    }
    c->t = t;
    c->l = l;
    c->fd = fd;
    c->refs = 1;
    c->id = ++t->next_conn_id;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    snprintf(c->label, sizeof c->label, "conn %llu %s", (unsigned long long)c->id, peer);
    c->tokens = t->cfg.burst;
    c->btokens = byte_burst(t);
    c->refill_at = ev_now(t->loop);
    c->last_rx = ev_now(t->loop);
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_timer_init(&c->timer, on_timer, t->cfg.hello_ms / 1000.0, 0.0);
    c->rio.data = c->wio.data = c->timer.data = c;
    ev_io_start(t->loop, &c->rio);
    ev_timer_start(t->loop, &c->timer);
    c->a_next = t->all_head;
    if (t->all_head)
        t->all_head->a_prev = c;
    t->all_head = c;
    t->nconns++;
    l->nconns++;
    l->accepted++;
    log_debug("gw.accept", "conn %llu from %s", (unsigned long long)c->id, peer);
}

void conn_ref(conn *c) { c->refs++; }

bool conn_open(const conn *c) { return c->fd >= 0; }

const char *conn_label(const conn *c) { return c->label; }

session *conn_session(conn *c) { return &c->sess; }

bool conn_held(const conn *c) { return c->held; }

const char *conn_token(const conn *c) { return c->token; }

int conn_keep_token(conn *c, const char *token, size_t len)
{
    char *k = strndup(token, len);
    if (!k)
        return HERALD_ENOMEM;
    free(c->token);
    c->token = k;
    return 0;
}

int conn_start(conn *c)
{
    if (!c->in_presence) {
        int rc = tier_presence_add(c->t, c);
        if (rc)
            return rc;
    }
    /* The hello deadline is over: from now on the idle timeout applies. */
    c->sess.authed = true;
    ev_timer_stop(c->t->loop, &c->timer);
    ev_timer_set(&c->timer, (c->idle_ms ? c->idle_ms : c->t->cfg.idle_ms) / 1000.0, 0.0);
    ev_timer_start(c->t->loop, &c->timer);
    return 0;
}

void conn_unref(conn *c)
{
    if (--c->refs > 0)
        return;
    herald_buf_free(&c->in);
    herald_buf_free(&c->out);
    herald_buf_free(&c->held_out);
    if (c->ops->conn_free)
        c->ops->conn_free(c->fst);
    free(c->token);
    free(c);
}

void conn_close(conn *c, const char *why)
{
    tier *t = c->t;

    if (c->fd < 0)
        return;
    log_info("gw.close", "conn %llu %s user=%s: %s", (unsigned long long)c->id,
             c->peer, c->sess.authed ? c->sess.user : "-", why);
    ev_io_stop(t->loop, &c->rio);
    ev_io_stop(t->loop, &c->wio);
    ev_timer_stop(t->loop, &c->timer);
    gw_tls_session_free(c->tls);
    c->tls = NULL;
    close(c->fd);
    c->fd = -1;
    if (c->in_presence)
        tier_presence_del(t, c);
    c->held = false;
    if (c->a_prev)
        c->a_prev->a_next = c->a_next;
    else
        t->all_head = c->a_next;
    if (c->a_next)
        c->a_next->a_prev = c->a_prev;
    /* Unlink from the flush list (singly linked; rare path). */
    if (c->in_flush) {
        conn **pp = &t->flush_head;
        while (*pp && *pp != c)
            pp = &(*pp)->f_next;
        if (*pp)
            *pp = c->f_next;
        c->in_flush = false;
    }
    t->nconns--;
    c->l->nconns--;
    /* Buffers stay until the last reference: a handler on the stack may
     * still read a frame that points into c->in. */
    conn_unref(c);
}

/* Writes as much queued output as the socket takes. Returns false when the
 * connection was closed. */
static bool conn_write_now(conn *c)
{
    if (c->tls_read_wants_write) {
        /* The handshake stalled on a full socket inside a read: go on there. */
        c->tls_read_wants_write = false;
        ev_feed_event(c->t->loop, &c->rio, EV_READ);
    }
    while (c->out_off < c->out.len) {
        ssize_t n;
        if (c->tls) {
            n = gw_tls_write(c->tls, c->out.data + c->out_off, c->out.len - c->out_off);
            if (n == GW_TLS_AGAIN)
                break;
            if (n < 0) {
                conn_close(c, "TLS write error");
                return false;
            }
            c->out_off += (size_t)n;
            continue;
        }
        n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c, "write error");
            return false;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out.len) {
        c->out.len = 0;
        c->out_off = 0;
        if (c->out.cap > CONN_OUT_KEEP)
            herald_buf_free(&c->out); /* a burst's buffer goes; idle ones hold little */
        ev_io_stop(c->t->loop, &c->wio);
        if (c->closing) {
            conn_close(c, "closed after error");
            return false;
        }
    } else {
        /* Compact once the written prefix dominates the buffer. */
        if (c->out_off > c->out.len / 2) {
            herald_buf_consume(&c->out, c->out_off);
            c->out_off = 0;
        }
        ev_io_start(c->t->loop, &c->wio);
    }
    return true;
}

void conn_flush_all(tier *t)
{
    while (t->flush_head) {
        conn *c = t->flush_head;
        t->flush_head = c->f_next;
        c->in_flush = false;
        if (c->fd >= 0)
            conn_write_now(c);
    }
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_write_now(w->data);
}

/* After appending to c->out: enforces the output cap and schedules the
 * flush. backlog = bytes pending before the append. */
static int conn_queued(conn *c, size_t backlog)
{
    /* The cap bounds the backlog: one frame larger than the cap still goes
     * out when nothing else is queued. */
    if (backlog > 0 && c->out.len - c->out_off > c->t->cfg.out_cap) {
        /* The client is not reading. Nothing more is queued for it (memory
         * stays bounded by the cap plus one frame); the reason follows what
         * is already queued and the socket closes after a short linger.
         * Nothing acknowledged is lost: the messages are stored and come
         * back with SYNC on the next connection. */
        log_warn("gw.slow", "conn %llu %s user=%s: %zu bytes queued > cap %zu",
                 (unsigned long long)c->id, c->peer, c->sess.user,
                 c->out.len - c->out_off, c->t->cfg.out_cap);
        conn_fail(c, HERALD_ESLOW_CONSUMER, "output buffer limit exceeded");
        return HERALD_ECLOSED;
    }
    if (!c->in_flush) {
        c->in_flush = true;
        c->f_next = c->t->flush_head;
        c->t->flush_head = c;
    }
    return 0;
}

int conn_send(conn *c, const herald_frame *f)
{
    size_t backlog;
    int rc;

    if (!conn_open(c) || c->closing)
        return HERALD_ECLOSED; /* closing: only the reason goes out */
    backlog = c->out.len - c->out_off;
    rc = c->ops->encode(c, c->fst, f, &c->out);
    if (rc)
        return rc;
    if (f->type == HERALD_FT_ERROR && f->code < HERALD_E_COUNT_)
        c->t->st.errors[f->code]++;
    return conn_queued(c, backlog);
}

int conn_send_deliver(conn *c, deliver_tpl *t, uint32_t flags, uint64_t prev)
{
    size_t backlog;
    int rc;

    if (!conn_open(c) || c->closing)
        return HERALD_ECLOSED;
    backlog = c->out.len - c->out_off;
    rc = c->ops->put_deliver(c, c->fst, t, flags, prev, &c->out);
    if (rc)
        return rc;
    return conn_queued(c, backlog);
}

int conn_send_raw(conn *c, const void *p, size_t n)
{
    size_t backlog;
    int rc;

    if (!conn_open(c) || c->closing)
        return HERALD_ECLOSED;
    backlog = c->out.len - c->out_off;
    rc = c->ops->reframe(c, c->fst, p, n, &c->out);
    if (rc)
        return rc;
    return conn_queued(c, backlog);
}

int conn_queue_wire(conn *c, const void *p, size_t n)
{
    size_t backlog;

    if (!conn_open(c) || c->closing)
        return HERALD_ECLOSED;
    backlog = c->out.len - c->out_off;
    if (herald_buf_append(&c->out, p, n) != 0)
        return HERALD_ENOMEM;
    return conn_queued(c, backlog);
}

int conn_hold_begin(conn *c, const char *tenant, const char *user)
{
    int rc;
    snprintf(c->sess.tenant, sizeof c->sess.tenant, "%s", tenant);
    snprintf(c->sess.user, sizeof c->sess.user, "%s", user);
    rc = tier_presence_add(c->t, c);
    if (rc) {
        c->sess.tenant[0] = c->sess.user[0] = '\0';
        return rc;
    }
    c->held = true;
    c->held_over = false;
    return 0;
}

/* Kept in Herald's TCP encoding whatever the framing: conn_hold_end hands
 * them to conn_send_raw, where the framing's reframe translates them. */
void conn_hold_push(conn *c, const herald_frame *f)
{
    if (c->held_over)
        return;
    if (c->held_out.len > c->t->cfg.out_cap || herald_frame_encode(f, &c->held_out) != 0) {
        c->held_over = true; /* SYNC from the session's key brings them back */
        herald_buf_free(&c->held_out);
    }
}

void conn_hold_end(conn *c, bool keep)
{
    bool over = c->held_over;
    herald_buf kept = c->held_out;

    if (!c->held)
        return;
    c->held = false;
    c->held_over = false;
    c->held_out = (herald_buf){0};
    if (!keep) {
        tier_presence_del(c->t, c);
        c->sess.tenant[0] = c->sess.user[0] = '\0';
    } else if (over) {
        log_warn("gw.hold", "conn %llu %s user=%s: pushes during login over %zu bytes",
                 (unsigned long long)c->id, c->peer, c->sess.user, c->t->cfg.out_cap);
        conn_fail(c, HERALD_EUNAVAILABLE,
                  "too many messages arrived while logging in; reconnect with the sync key");
    } else if (kept.len) {
        conn_send_raw(c, kept.data, kept.len);
    }
    herald_buf_free(&kept);
}

/* Stops reading and closes once the output is written (or the linger
 * expires); with_close: the framing's normal end goes out first. */
static void close_after_flush(conn *c, bool with_close)
{
    if (!conn_open(c) || c->closing)
        return;
    if (with_close && c->ops->close(c, c->fst, 0, NULL, &c->out) != 0) {
        conn_close(c, "out of memory");
        return;
    }
    c->closing = true;
    ev_io_stop(c->t->loop, &c->rio);
    ev_timer_stop(c->t->loop, &c->timer);
    ev_timer_set(&c->timer, CONN_LINGER_S, 0.0);
    ev_timer_start(c->t->loop, &c->timer);
    conn_write_now(c);
}

void conn_close_after_flush(conn *c) { close_after_flush(c, true); }

void conn_close_quiet(conn *c) { close_after_flush(c, false); }

int conn_send_error(conn *c, int code, const char *text, uint64_t ref)
{
    herald_frame f = herald_frame_error(code, text, ref);
    return conn_send(c, &f);
}

void conn_fail(conn *c, int code, const char *text)
{
    if (!conn_open(c) || c->closing)
        return;
    log_info("gw.fail", "conn %llu %s: %s: %s", (unsigned long long)c->id,
             c->peer, herald_err_name(code), text);
    if (code > 0 && code < HERALD_E_COUNT_)
        c->t->st.errors[code]++;
    c->closing = true;
    ev_io_stop(c->t->loop, &c->rio);
    /* A peer that never reads must not hold the socket: hard close soon. */
    ev_timer_stop(c->t->loop, &c->timer);
    ev_timer_set(&c->timer, CONN_LINGER_S, 0.0);
    ev_timer_start(c->t->loop, &c->timer);
    if (c->ops->close(c, c->fst, code, text, &c->out) != 0) {
        conn_close(c, "out of memory");
        return;
    }
    conn_write_now(c);
}

/* Token buckets (requests and bytes); true when a request of `bytes` is
 * allowed. A refused one takes nothing. */
static bool rate_take(conn *c, size_t bytes)
{
    ev_tstamp now = ev_now(c->t->loop);
    double bmax = byte_burst(c->t);
    c->tokens += (now - c->refill_at) * c->t->cfg.rate;
    if (c->tokens > c->t->cfg.burst)
        c->tokens = c->t->cfg.burst;
    if (c->t->cfg.byte_rate) {
        c->btokens += (now - c->refill_at) * (double)c->t->cfg.byte_rate;
        if (c->btokens > bmax)
            c->btokens = bmax;
    }
    c->refill_at = now;
    if (c->tokens < 1.0 || (c->t->cfg.byte_rate && c->btokens < (double)bytes))
        return false;
    c->tokens -= 1.0;
    if (c->t->cfg.byte_rate)
        c->btokens -= (double)bytes;
    return true;
}

bool conn_reading(const conn *c) { return c->fd >= 0 && !c->closing; }

void conn_touch(conn *c) { c->last_rx = ev_now(c->t->loop); }

void conn_set_idle_ms(conn *c, uint32_t ms)
{
    c->idle_ms = ms;
    if (!conn_reading(c) || !c->sess.authed)
        return; /* conn_start applies it */
    ev_timer_stop(c->t->loop, &c->timer);
    ev_timer_set(&c->timer, ms ? ms / 1000.0 : c->t->cfg.idle_ms / 1000.0, 0.0);
    ev_timer_start(c->t->loop, &c->timer);
}

void *conn_listener_state(const conn *c) { return c->l->lst; }

const gw_config *conn_config(const conn *c) { return &c->t->cfg; }

/* The common path of every framing: cap, decode, limits, PING, HELLO
 * first, then the handler. */
int conn_dispatch(conn *c, const uint8_t *payload, size_t len)
{
    herald_limits lim = {.max_frame = c->t->cfg.max_frame};
    size_t bytes = len + HERALD_FRAME_HEADER; /* what the byte rate counts */
    herald_frame f;
    int rc;

    if (!conn_reading(c))
        return HERALD_ECLOSED;
    if (len > c->t->cfg.max_frame) {
        c->t->st.bad_frames++;
        conn_fail(c, HERALD_ETOO_BIG, "frame exceeds the size limit");
        return HERALD_ECLOSED;
    }
    rc = herald_frame_decode(payload, len, &lim, &f);
    if (rc) {
        c->t->st.bad_frames++;
        conn_fail(c, rc, "malformed frame");
        return HERALD_ECLOSED;
    }
    c->last_rx = ev_now(c->t->loop);
    if (f.type < HERALD_FT_COUNT_)
        c->t->st.frames[f.type]++;
    if (c->sess.authed && f.type != HERALD_FT_PING && !rate_take(c, bytes)) {
        conn_send_error(c, HERALD_ERATE_LIMITED,
                        c->tokens < 1.0 ? "request rate limit exceeded; not applied"
                                        : "byte rate limit exceeded; not applied",
                        f.rid);
    } else if (f.type == HERALD_FT_PING) {
        herald_frame pong = {.type = HERALD_FT_PONG, .rid = f.rid};
        conn_send(c, &pong);
    } else if (!c->sess.authed && f.type != HERALD_FT_HELLO) {
        conn_fail(c, HERALD_EUNAUTHORIZED, "HELLO required first");
    } else {
        c->t->h.frame(c->t->h.ctx, c, &f, payload, len);
    }
    herald_frame_release(&f);
    return conn_reading(c) ? 0 : HERALD_ECLOSED;
}

int conn_dispatch_frame(conn *c, const herald_frame *f)
{
    herald_buf b = {0};
    int rc = herald_frame_encode(f, &b);
    if (rc == 0)
        rc = conn_dispatch(c, b.data + HERALD_FRAME_HEADER, b.len - HERALD_FRAME_HEADER);
    herald_buf_free(&b);
    return rc;
}

/* Reads from the socket (or its TLS session) into dst: > 0 bytes, 0 peer
 * closed, -1 nothing now (or closed here: check c->fd). */
static ssize_t conn_recv(conn *c, uint8_t *dst, size_t cap)
{
    ssize_t n;
    if (c->tls) {
        n = gw_tls_read(c->tls, dst, cap);
        if (n == GW_TLS_AGAIN)
            return -1;
        if (n == GW_TLS_WANT_WRITE) {
            c->tls_read_wants_write = true;
            ev_io_start(c->t->loop, &c->wio);
            return -1;
        }
        if (n == GW_TLS_ERROR) {
            char why[128];
            snprintf(why, sizeof why, "TLS: %s", gw_tls_last_error(c->tls));
            conn_close(c, why);
            return -1;
        }
        return n;
    }
    for (;;) {
        n = recv(c->fd, dst, cap, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_close(c, "read error");
        return -1;
    }
}

/* Reads go into the tier's scratch buffer; only a partial frame left at
 * the end is kept in c->in, so an idle connection holds no read buffer. */
static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = w->data;
    (void)loop;
    (void)revents;

    conn_ref(c); /* handlers may close c; keep the struct until we return */
    for (int round = 0; round < 4 && c->fd >= 0 && !c->closing; round++) {
        bool direct = c->in.len == 0;
        uint8_t *dst;
        ssize_t n;
        /* Never buffer more than one frame cap plus a read chunk. */
        if (c->in.len > (size_t)c->t->cfg.max_frame + HERALD_FRAME_HEADER + CONN_READ_CHUNK) {
            conn_fail(c, HERALD_ETOO_BIG, "input buffer limit exceeded");
            break;
        }
        if (!direct && herald_buf_reserve(&c->in, CONN_READ_CHUNK) != 0) {
            conn_close(c, "out of memory");
            break;
        }
        dst = direct ? c->t->scratch : c->in.data + c->in.len;
        n = conn_recv(c, dst, CONN_READ_CHUNK);
        if (n == 0) {
            conn_close(c, "peer closed");
            break;
        }
        if (n < 0)
            break;
        if (direct) {
            size_t used = c->ops->input(c, c->fst, dst, (size_t)n);
            if (c->fd >= 0 && used < (size_t)n &&
                herald_buf_append(&c->in, dst + used, (size_t)n - used) != 0) {
                conn_close(c, "out of memory");
                break;
            }
        } else {
            size_t used;
            c->in.len += (size_t)n;
            used = c->ops->input(c, c->fst, c->in.data, c->in.len);
            if (c->fd >= 0 && used)
                herald_buf_consume(&c->in, used);
            if (c->in.len == 0)
                herald_buf_free(&c->in); /* a big frame's buffer goes */
        }
        if ((size_t)n < CONN_READ_CHUNK && !(c->tls && gw_tls_pending(c->tls)))
            break;
    }
    /* Decrypted bytes left in the TLS session: the socket will not say so. */
    if (c->fd >= 0 && !c->closing && c->tls && gw_tls_pending(c->tls))
        ev_feed_event(c->t->loop, &c->rio, EV_READ);
    conn_unref(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn *c = w->data;
    ev_tstamp idle = (c->idle_ms ? c->idle_ms : c->t->cfg.idle_ms) / 1000.0;
    ev_tstamp left;
    (void)revents;

    if (c->closing) {
        conn_close(c, "linger expired");
        return;
    }
    if (!c->sess.authed && c->held) {
        /* The HELLO came; the cluster did not answer it. */
        conn_fail(c, HERALD_EUNAVAILABLE, "the cluster did not answer the HELLO in time");
        return;
    }
    if (!c->sess.authed) {
        conn_fail(c, HERALD_EUNAUTHORIZED, "no HELLO before the deadline");
        return;
    }
    left = c->last_rx + idle - ev_now(loop);
    if (left <= 0) {
        conn_fail(c, HERALD_EIDLE, "idle timeout");
        return;
    }
    ev_timer_set(w, left, 0.0);
    ev_timer_start(loop, w);
}
