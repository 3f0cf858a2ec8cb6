/* tier.c — the session tier's lifecycle, listeners, presence and delivery
 * to sessions. See tier.h. */
#include "tier_int.h"

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
#include "tcplisten.h"
#include "mqtt.h"

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
        .mqtt_sessions = 10000,
        .offline_batch_ms = 50,
    };
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    tier_listener *l = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char peer[64];
        int fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors or memory: the listener stays readable,
                 * so pause accepting instead of spinning. */
                log_warn("gw.accept", "accept failed: %s; pausing accepts for 100 ms",
                         strerror(errno));
                ev_io_stop(l->t->loop, &l->accept_w);
                ev_timer_set(&l->accept_pause, 0.1, 0.0);
                ev_timer_start(l->t->loop, &l->accept_pause);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                log_warn("gw.accept", "accept failed: %s", strerror(errno));
            }
            return;
        }
        tcp_peer_name(&ss, peer, sizeof peer);
        conn_accept(l, fd, peer);
    }
}

static void on_accept_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    tier_listener *l = w->data;
    (void)revents;
    if (!l->t->stopping)
        ev_io_start(loop, &l->accept_w);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush_all(w->data);
}

/* Adds a listener on addr with framing ops; *bound points at its owned
 * copy of addr. */
static int listener_add(tier *t, const char *addr, const framing_ops *ops, const char **bound)
{
    tier_listener *l = &t->ls[t->nls];
    int rc;

    if (t->nls == TIER_MAX_LISTENERS || strlen(addr) >= sizeof l->addr)
        return HERALD_EINVAL;
    *l = (tier_listener){.t = t, .ops = ops, .lfd = -1};
    strcpy(l->addr, addr);
    if (ops->listener_new) {
        rc = ops->listener_new(&t->cfg, &l->lst);
        if (rc)
            return rc;
    }
    rc = tcp_listen(l->addr, 512, &l->lfd, &l->port);
    if (rc) {
        if (ops->listener_free)
            ops->listener_free(l->lst);
        l->lst = NULL;
        return rc;
    }
    ev_io_init(&l->accept_w, on_accept, l->lfd, EV_READ);
    l->accept_w.data = l;
    ev_io_start(t->loop, &l->accept_w);
    ev_timer_init(&l->accept_pause, on_accept_resume, 0.1, 0.0);
    l->accept_pause.data = l;
    *bound = l->addr;
    t->nls++;
    if (ops == &framing_tcp)
        log_info("gw.listen", "listening on %s (port %u, %s)", l->addr, l->port,
                 t->tls ? "TLS" : "plain TCP");
    else
        log_info("gw.listen", "listening on %s (port %u, %s framing, %s)", l->addr, l->port,
                 ops->name, t->tls ? "TLS" : "plain");
    return 0;
}

/* Stops accepting on every listener (tier_destroy: first step). */
static void listeners_stop(tier *t)
{
    for (uint32_t i = 0; i < t->nls; i++) {
        ev_io_stop(t->loop, &t->ls[i].accept_w);
        ev_timer_stop(t->loop, &t->ls[i].accept_pause);
        if (t->ls[i].lfd >= 0)
            close(t->ls[i].lfd);
        t->ls[i].lfd = -1;
    }
}

/* After every connection is gone: the framings' listener states. */
static void listeners_free(tier *t)
{
    for (uint32_t i = 0; i < t->nls; i++)
        if (t->ls[i].ops->listener_free)
            t->ls[i].ops->listener_free(t->ls[i].lst);
    t->nls = 0;
}

int tier_create(const gw_config *cfg, struct ev_loop *loop, const tier_handler *h, tier **out)
{
    tier *t = calloc(1, sizeof *t);
    int rc;

    if (!t)
        return HERALD_ENOMEM;
    prom_hist_init(&t->st.push_lat);
    t->h = *h;
    t->cfg = *cfg;
    t->loop = loop;
    if (!cfg->listen) {
        rc = HERALD_EINVAL;
        goto fail_alloc;
    }
    if (cfg->ws_origins && cfg->ws_origins[0]) {
        t->ws_origins = strdup(cfg->ws_origins);
        if (!t->ws_origins) {
            rc = HERALD_ENOMEM;
            goto fail_alloc;
        }
    }
    t->cfg.ws_origins = t->ws_origins;
    if (cfg->tls_cert && cfg->tls_cert[0]) {
        char err[512];
        if (gw_tls_create(cfg->tls_cert, &t->tls, err, sizeof err) != 0) {
            log_error("gw.tls", "gateway.tls_cert: %s", err);
            rc = HERALD_EINVAL;
            goto fail_alloc;
        }
    }
    /* Clients send at least every heartbeat; leave room for three before
     * the idle timeout closes them. */
    if (t->cfg.hb_ms > t->cfg.idle_ms / 3)
        t->cfg.hb_ms = t->cfg.idle_ms / 3 ? t->cfg.idle_ms / 3 : 1;
    rc = hmap_create(&t->presence);
    if (rc)
        goto fail_alloc;
    rc = listener_add(t, cfg->listen, &framing_tcp, &t->cfg.listen);
    if (rc)
        goto fail_listeners;
    t->cfg.ws_listen = NULL;
    if (cfg->ws_listen && cfg->ws_listen[0]) {
        rc = listener_add(t, cfg->ws_listen, &framing_ws, &t->cfg.ws_listen);
        if (rc) {
            log_error("gw.listen", "gateway.ws_listen: cannot listen on %s", cfg->ws_listen);
            goto fail_listeners;
        }
    }
    t->cfg.mqtt_listen = NULL;
    if (cfg->mqtt_listen && cfg->mqtt_listen[0]) {
        rc = listener_add(t, cfg->mqtt_listen, &framing_mqtt, &t->cfg.mqtt_listen);
        if (rc) {
            log_error("gw.listen", "gateway.mqtt_listen %s: %s", cfg->mqtt_listen,
                      rc == HERALD_EIO ? strerror(errno) : herald_strerror(rc));
            goto fail_listeners;
        }
    }
    ev_prepare_init(&t->flush_w, on_prepare);
    t->flush_w.data = t;
    ev_prepare_start(loop, &t->flush_w);
    *out = t;
    return 0;

fail_listeners:
    listeners_stop(t);
    listeners_free(t);
    hmap_destroy(t->presence);
fail_alloc:
    gw_tls_destroy(t->tls);
    free(t->ws_origins);
    free(t);
    return rc;
}

const gw_config *tier_config(const tier *t) { return &t->cfg; }

uint16_t tier_port(const tier *t) { return t->ls[0].port; }

uint16_t tier_listener_port(const tier *t, const char *framing)
{
    for (uint32_t i = 0; i < t->nls; i++)
        if (strcmp(t->ls[i].ops->name, framing) == 0)
            return t->ls[i].port;
    return 0;
}

bool tier_tls(const tier *t) { return t->tls != NULL; }

void tier_counts(const tier *t, uint64_t *conns, uint64_t *users)
{
    *conns = t->nconns;
    *users = hmap_count(t->presence);
}

void tier_destroy(tier *t)
{
    if (!t)
        return;
    t->stopping = true;
    listeners_stop(t);
    conn_flush_all(t);
    while (t->all_head)
        conn_close(t->all_head, "shutdown");
    ev_prepare_stop(t->loop, &t->flush_w);
    hmap_destroy(t->presence);
    listeners_free(t); /* framing states of connections still referenced are their own */
    gw_tls_destroy(t->tls);
    free(t->ws_origins);
    free(t);
}

void tier_deliver(tier *t, const char *tenant, const char *const *users, const uint64_t *prevs,
                  uint32_t n, const herald_frame *f)
{
    size_t tlen = strlen(tenant);
    uint64_t now = session_now_ms();
    bool deliver = f->type == HERALD_FT_DELIVER;
    deliver_tpl tpl;
    herald_frame d = *f;

    t->st.events++;
    /* A DELIVER is encoded once; each session gets the shared bytes and
     * its own flags and pv. */
    if (deliver && deliver_tpl_init(&tpl, f) != 0) {
        log_warn("gw.deliver", "out of memory encoding a push of %.*s/%llu: left to SYNC",
                 (int)f->msg.conv.len, f->msg.conv.ptr ? f->msg.conv.ptr : "",
                 (unsigned long long)f->msg.seq);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        conn *c = tier_presence_first(t, tenant, tlen, users[i], strlen(users[i]));
        /* Without a chain the safe claim: anything before may be missing. */
        uint64_t prev = prevs ? prevs[i] : f->msg.pos ? f->msg.pos - 1 : 0;
        while (c) {
            conn *next = c->u_next; /* conn_send may close c */
            uint32_t flags = f->msg.flags;
            if (!deliver) {
                if (c->held)
                    conn_hold_push(c, f); /* its HELLO's answer is on the way */
                else
                    conn_send(c, f);
                c = next;
                continue;
            }
            if (f->msg.pos && f->msg.group < TIER_MAX_GROUPS) {
                /* A group's positions only grow: an older one (a deposed
                 * leader's late push) was pushed already or comes by SYNC. */
                if (f->msg.pos <= c->last_pos[f->msg.group]) {
                    c = next;
                    continue;
                }
                c->last_pos[f->msg.group] = f->msg.pos;
            }
            if (session_silenced(&c->sess, flags, now))
                flags |= HERALD_MSGF_SILENT;
            t->st.pushes++;
            if (f->msg.ts && f->msg.ts <= now)
                prom_hist_observe_ns(&t->st.push_lat, (now - f->msg.ts) * 1000000u);
            if (c->held) {
                d.msg.flags = flags;
                d.msg.prev = prev;
                conn_hold_push(c, &d);
            } else {
                conn_send_deliver(c, &tpl, flags, prev);
            }
            c = next;
        }
    }
    if (deliver)
        deliver_tpl_free(&tpl);
}

bool tier_online(tier *t, const char *tenant, const char *user)
{
    return tier_presence_first(t, tenant, strlen(tenant), user, strlen(user)) != NULL;
}

void tier_dnd(tier *t, const char *tenant, const char *user, uint64_t until)
{
    conn *s = tier_presence_first(t, tenant, strlen(tenant), user, strlen(user));
    for (; s; s = s->u_next)
        s->sess.dnd_until = until;
}
