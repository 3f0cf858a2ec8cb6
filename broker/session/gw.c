/* gw.c — gateway lifecycle, listener and presence. See gw.h. */
#include "gw_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <herald/error.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "route.h"
#include "slots.h"

void gw_config_defaults(gw_config *cfg)
{
    *cfg = (gw_config){
        .listen = "127.0.0.1:7400",
        .max_frame = HERALD_FRAME_MAX_DEFAULT,
        .rate = 2000,
        .burst = 4000,
        .out_cap = 8u << 20,
        .hello_ms = 10000,
        .idle_ms = 90000,
        .hb_ms = 30000,
        .max_conns = 10000,
        .queue_bytes = 64u << 20,
        .byte_rate = 16u << 20,
    };
}

uint64_t gw_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* Splits "host:port" (host may be [v6]) and binds a listening socket. */
static int listen_on(const char *addr, int *fd_out, uint16_t *port_out)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    const char *port;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = -1, one = 1, rc;
    size_t hl;

    if (!colon || colon == addr)
        return HERALD_EINVAL;
    hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        addr++;
        hl -= 2;
    }
    if (hl >= sizeof host)
        return HERALD_EINVAL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    port = colon + 1;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return HERALD_EINVAL;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail_addr;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 512) != 0)
        goto fail_sock;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        goto fail_sock;
    *port_out = ntohs(ss.ss_family == AF_INET6
                          ? ((struct sockaddr_in6 *)&ss)->sin6_port
                          : ((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(res);
    *fd_out = fd;
    return 0;

fail_sock:
    rc = errno;
    close(fd);
    errno = rc;
fail_addr:
    freeaddrinfo(res);
    return HERALD_EIO;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    gw *g = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char host[INET6_ADDRSTRLEN] = "?", peer[64];
        int fd = accept4(g->lfd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors or memory: the listener stays readable,
                 * so pause accepting instead of spinning. */
                log_warn("gw.accept", "accept failed: %s; pausing accepts for 100 ms",
                         strerror(errno));
                ev_io_stop(g->loop, &g->accept_w);
                ev_timer_set(&g->accept_pause, 0.1, 0.0);
                ev_timer_start(g->loop, &g->accept_pause);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                log_warn("gw.accept", "accept failed: %s", strerror(errno));
            }
            return;
        }
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            snprintf(peer, sizeof peer, "%s:%u", host, ntohs(a->sin_port));
        } else {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            snprintf(peer, sizeof peer, "[%s]:%u", host, ntohs(a->sin6_port));
        }
        conn_accept(g, fd, peer);
    }
}

static void on_accept_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    gw *g = w->data;
    (void)revents;
    if (!g->stopping)
        ev_io_start(loop, &g->accept_w);
}

static void on_remind(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    fanout_remind_tick(w->data);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush_all(w->data);
}

uint32_t gw_conv_group(gw *g, herald_str tenant, herald_str conv)
{
    return route_conv_group(tenant, conv, g->nshards, g->has_slotmap ? g->slotmap : NULL);
}

shard *gw_shard(gw *g, herald_str tenant, herald_str conv)
{
    return &g->shards[gw_conv_group(g, tenant, conv)];
}

int gw_set_slotmap(gw *g, const uint8_t *map)
{
    for (uint32_t i = 0; i < HERALD_SLOTS; i++)
        if (map[i] >= g->nshards)
            return HERALD_EINVAL;
    memcpy(g->slotmap, map, HERALD_SLOTS);
    g->has_slotmap = true;
    return 0;
}

int gw_submit(gw *g, uint32_t i, herald_buf *cmd, void *cookie)
{
    if (g->be.submit)
        return g->be.submit(g->be.ctx, i, cmd, cookie);
    return writer_submit(g->shards[i].wr, cmd, cookie);
}

void gw_applied(gw *g, void *cookie, apply_result *res) { fanout_done(g, cookie, res); }

/* Dev mode: the writer reports a durable command: reply, then push. */
static void on_written(void *arg, void *cookie, const uint8_t *cmd, size_t len,
                       apply_result *res)
{
    gw *g = arg;
    fanout_done(g, cookie, res);
    gw_events(g, cmd, len, res);
}

store *gw_meta(gw *g) { return g->shards[0].st; }

static void stop_writers(gw *g)
{
    for (uint32_t i = 0; i < g->nshards; i++) {
        writer_destroy(g->shards[i].wr);
        g->shards[i].wr = NULL;
    }
}

int gw_create(const gw_config *cfg, struct ev_loop *loop, store *const *stores, uint32_t n,
              gw **out)
{
    return gw_create_ex(cfg, loop, stores, n, NULL, out);
}

int gw_create_ex(const gw_config *cfg, struct ev_loop *loop, store *const *stores, uint32_t n,
                 const gw_backend *backend, gw **out)
{
    gw *g = calloc(1, sizeof *g);
    bool listening = cfg->listen && cfg->listen[0];
    int rc;

    if (!g)
        return HERALD_ENOMEM;
    if (backend)
        g->be = *backend;
    if (n == 0 && !g->be.forward) {
        free(g);
        return HERALD_EINVAL;
    }
    g->cfg = *cfg;
    if (!cfg->listen)
        g->cfg.listen = "";
    if (strlen(g->cfg.listen) >= sizeof g->listen_addr) {
        rc = HERALD_EINVAL;
        goto fail_alloc;
    }
    strcpy(g->listen_addr, g->cfg.listen);
    g->cfg.listen = g->listen_addr;
    if (listening && cfg->tls_cert && cfg->tls_cert[0]) {
        char err[512];
        if (gw_tls_create(cfg->tls_cert, &g->tls, err, sizeof err) != 0) {
            log_error("gw.tls", "gateway.tls_cert: %s", err);
            rc = HERALD_EINVAL;
            goto fail_alloc;
        }
    }
    /* Clients send at least every heartbeat; leave room for three before
     * the idle timeout closes them. */
    if (g->cfg.hb_ms > g->cfg.idle_ms / 3)
        g->cfg.hb_ms = g->cfg.idle_ms / 3 ? g->cfg.idle_ms / 3 : 1;
    g->loop = loop;
    g->lfd = -1;
    g->started = ev_now(loop);
    g->shards = calloc(n ? n : 1, sizeof *g->shards);
    if (!g->shards) {
        rc = HERALD_ENOMEM;
        goto fail_alloc;
    }
    g->nshards = n;
    rc = hmap_create(&g->presence);
    if (rc)
        goto fail_shards;
    for (uint32_t i = 0; i < n; i++) {
        if (store_group(stores[i]) != i) {
            rc = HERALD_EINVAL;
            goto fail_writer;
        }
        g->shards[i].st = stores[i];
        if (g->be.submit)
            continue; /* replicated: the backend applies */
        rc = writer_create(stores[i], loop, on_written, g, &g->shards[i].wr);
        if (rc == 0)
            writer_set_budget(g->shards[i].wr, g->cfg.queue_bytes);
        if (rc)
            goto fail_writer;
    }
    if (listening) {
        rc = listen_on(g->cfg.listen, &g->lfd, &g->port);
        if (rc)
            goto fail_writer;
        ev_io_init(&g->accept_w, on_accept, g->lfd, EV_READ);
        g->accept_w.data = g;
        ev_io_start(loop, &g->accept_w);
    }
    ev_timer_init(&g->accept_pause, on_accept_resume, 0.1, 0.0);
    g->accept_pause.data = g;
    ev_prepare_init(&g->flush_w, on_prepare);
    g->flush_w.data = g;
    ev_prepare_start(loop, &g->flush_w);
    ev_timer_init(&g->remind_w, on_remind, 1.0, 1.0);
    g->remind_w.data = g;
    if (n)
        ev_timer_start(loop, &g->remind_w);
    if (listening)
        log_info("gw.listen", "listening on %s (port %u, %s), %u shard groups", g->cfg.listen,
                 g->port, g->tls ? "TLS" : "plain TCP", n);
    *out = g;
    return 0;

fail_writer:
    stop_writers(g);
    hmap_destroy(g->presence);
fail_shards:
    free(g->shards);
fail_alloc:
    gw_tls_destroy(g->tls);
    free(g);
    return rc;
}

uint16_t gw_port(const gw *g) { return g->port; }

void gw_destroy(gw *g)
{
    if (!g)
        return;
    g->stopping = true;
    ev_io_stop(g->loop, &g->accept_w);
    ev_timer_stop(g->loop, &g->accept_pause);
    ev_timer_stop(g->loop, &g->remind_w);
    if (g->lfd >= 0)
        close(g->lfd);
    /* Commit what is queued; acks go out through fanout_done. */
    stop_writers(g);
    conn_flush_all(g);
    while (g->all_head)
        conn_close(g->all_head, "shutdown");
    ev_prepare_stop(g->loop, &g->flush_w);
    hmap_destroy(g->presence);
    gw_tls_destroy(g->tls);
    free(g->shards);
    free(g);
}

/* Presence key: tenant, NUL, user. */
static size_t presence_key(char *buf, const char *t, size_t tl, const char *u,
                           size_t ul)
{
    memcpy(buf, t, tl);
    buf[tl] = '\0';
    memcpy(buf + tl + 1, u, ul);
    return tl + 1 + ul;
}

conn *gw_presence_first(gw *g, const char *tenant, size_t tlen,
                        const char *user, size_t ulen)
{
    char key[2 * TOKEN_ID_MAX + 2];
    if (tlen > TOKEN_ID_MAX || ulen > TOKEN_ID_MAX)
        return NULL;
    return hmap_get(g->presence, key,
                    presence_key(key, tenant, tlen, user, ulen));
}

int gw_presence_add(gw *g, conn *c)
{
    char key[2 * TOKEN_ID_MAX + 2];
    size_t kl;
    conn *head;
    int rc;

    if (c->virt)
        return 0; /* a request from a gateway, not a session */
    kl = presence_key(key, c->tenant, strlen(c->tenant), c->user, strlen(c->user));
    head = hmap_get(g->presence, key, kl);
    rc = hmap_put(g->presence, key, kl, c);
    if (rc)
        return rc;
    c->u_prev = NULL;
    c->u_next = head;
    if (head)
        head->u_prev = c;
    return 0;
}

void gw_presence_del(gw *g, conn *c)
{
    char key[2 * TOKEN_ID_MAX + 2];
    size_t kl;

    if (c->virt)
        return;
    if (c->u_prev) {
        c->u_prev->u_next = c->u_next;
        if (c->u_next)
            c->u_next->u_prev = c->u_prev;
    } else {
        kl = presence_key(key, c->tenant, strlen(c->tenant), c->user,
                          strlen(c->user));
        if (c->u_next) {
            c->u_next->u_prev = NULL;
            /* Replacing an existing key cannot fail. */
            hmap_put(g->presence, key, kl, c->u_next);
        } else {
            hmap_del(g->presence, key, kl);
        }
    }
    c->u_next = c->u_prev = NULL;
}
