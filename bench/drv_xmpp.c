/*
 * drv_xmpp.c — herald-bench driver for an XMPP server's multi-user chat
 * (XEP-0045; written against ejabberd's mod_muc) with libstrophe 0.12.
 *
 * Member i logs in as bench-i@XMPP_DOMAIN with password XMPP_PASSWORD (the
 * users must exist: bench/compare.sh registers them when it starts
 * ejabberd), SASL over a plaintext loopback stream (TLS off on both sides),
 * and joins room <group>@conference.XMPP_DOMAIN as nick m<i>, asking for no
 * history. Member 0 joins first: it creates the room and submits the empty
 * owner form (an instant room, XEP-0045 10.1.2), then the other members
 * connect and join. Sending starts once every member has got its own
 * presence back from the room (the server's word that it is an occupant).
 *
 * Sends are groupchat messages from member 0 whose <body/> is the bench body
 * in base64 (XMPP bodies are text: 256 bytes become 344 characters); the
 * room reflects each one to every occupant (member 0's own copy is not
 * counted). No acks: fan-out only.
 *
 * libstrophe has its own select() loop, not a libev one: the bench loop runs
 * it without blocking (xmpp_run_once(ctx, 0)) every POLL_S and right after
 * each send, which adds up to POLL_S to a delivery's latency, like the core's
 * own 1 ms send pacing. select() limits the descriptors to FD_SETSIZE, so
 * MAX_MEMBERS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "bench.h"

#define XMPP_DOMAIN "localhost"
#define XMPP_MUC_SERVICE "conference." XMPP_DOMAIN
#define XMPP_PASSWORD "bench"
#define MUC_NS "http://jabber.org/protocol/muc"
#define MUC_OWNER_NS "http://jabber.org/protocol/muc#owner"
/* Seconds between two runs of libstrophe's loop. */
#define POLL_S 0.001
/* select() and FD_SETSIZE (1024), with room for the process's other fds. */
#define MAX_MEMBERS 900

typedef struct xdrv xdrv;

/* One member connection. */
typedef struct xmember {
    xdrv *d;                 /* owner */
    int idx;                 /* member index; 0 = sender */
    xmpp_conn_t *conn;       /* the stream */
    char nick_jid[330];      /* room@service/m<i>: its occupant JID */
    bool connected;          /* logged in and bound */
    bool joined;             /* its own presence came back from the room */
} xmember;

/* The driver state. */
struct xdrv {
    bench *b;                /* the run */
    const bench_config *cfg; /* its parameters */
    xmpp_ctx_t *ctx;         /* libstrophe context of every member */
    xmember *m;              /* members[] */
    char room[300];          /* room@service */
    int connected;           /* members logged in */
    int joined;              /* members in the room */
    bool room_ready;         /* the instant room is configured */
    bool started;            /* bench_ready() was called */
    bool closing;            /* close(): disconnects are expected */
    ev_timer poll;           /* runs libstrophe's loop */
    uint64_t bad_bodies;     /* groupchat bodies that were not ours */
};

static void open_member(xdrv *d, int i);

/* Joins the room (presence to room/nick with the MUC element, no history). */
static void join_room(xmember *m)
{
    xmpp_ctx_t *ctx = m->d->ctx;
    xmpp_stanza_t *p = xmpp_presence_new(ctx), *x = xmpp_stanza_new(ctx),
                  *h = xmpp_stanza_new(ctx);

    xmpp_stanza_set_to(p, m->nick_jid);
    xmpp_stanza_set_name(x, "x");
    xmpp_stanza_set_ns(x, MUC_NS);
    xmpp_stanza_set_name(h, "history");
    xmpp_stanza_set_attribute(h, "maxstanzas", "0");
    xmpp_stanza_add_child(x, h);
    xmpp_stanza_add_child(p, x);
    xmpp_send(m->conn, p);
    xmpp_stanza_release(h);
    xmpp_stanza_release(x);
    xmpp_stanza_release(p);
}

/* The owner form's answer: the room is unlocked; now the other members. */
static int on_room_config(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    xdrv *d = ud;
    const char *type = xmpp_stanza_get_type(st);
    (void)conn;

    if (type && strcmp(type, "error") == 0) {
        fprintf(stderr, "herald-bench: xmpp: configuring room %s failed\n", d->room);
        exit(1);
    }
    d->room_ready = true;
    for (int i = 1; i < d->cfg->members; i++)
        open_member(d, i);
    return 0;
}

/* Submits the empty owner form: an instant room with the service defaults. */
static void configure_room(xdrv *d)
{
    xmpp_ctx_t *ctx = d->ctx;
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "set", "hb-room-config"), *q = xmpp_stanza_new(ctx),
                  *x = xmpp_stanza_new(ctx);

    xmpp_stanza_set_to(iq, d->room);
    xmpp_stanza_set_name(q, "query");
    xmpp_stanza_set_ns(q, MUC_OWNER_NS);
    xmpp_stanza_set_name(x, "x");
    xmpp_stanza_set_ns(x, "jabber:x:data");
    xmpp_stanza_set_type(x, "submit");
    xmpp_stanza_add_child(q, x);
    xmpp_stanza_add_child(iq, q);
    xmpp_id_handler_add(d->m[0].conn, on_room_config, "hb-room-config", d);
    xmpp_send(d->m[0].conn, iq);
    xmpp_stanza_release(x);
    xmpp_stanza_release(q);
    xmpp_stanza_release(iq);
}

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    xmember *m = ud;
    xdrv *d = m->d;
    const char *from = xmpp_stanza_get_from(st), *type = xmpp_stanza_get_type(st);
    (void)conn;

    if (!from || strcmp(from, m->nick_jid) != 0)
        return 1; /* another occupant's presence */
    if (type && strcmp(type, "error") == 0) {
        char *text = NULL;
        size_t len = 0;
        xmpp_stanza_to_text(st, &text, &len);
        fprintf(stderr, "herald-bench: xmpp: member %d could not join %s: %.*s\n", m->idx,
                d->room, (int)(len > 400 ? 400 : len), text ? text : "");
        exit(1);
    }
    if (type && strcmp(type, "unavailable") == 0) {
        if (!d->closing)
            fprintf(stderr, "herald-bench: xmpp: member %d left the room\n", m->idx);
        return 1;
    }
    if (m->joined)
        return 1;
    m->joined = true;
    d->joined++;
    if (m->idx == 0) {
        configure_room(d);
    } else if (d->joined == d->cfg->members && !d->started) {
        d->started = true;
        bench_ready(d->b);
    }
    return 1;
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    xmember *m = ud;
    xdrv *d = m->d;
    xmpp_stanza_t *body;
    char *text;
    unsigned char *raw = NULL;
    size_t rlen = 0;
    (void)conn;

    if (m->idx == 0)
        return 1; /* the sender's own copy */
    body = xmpp_stanza_get_child_by_name(st, "body");
    if (!body)
        return 1; /* the room subject and other bodiless messages */
    text = xmpp_stanza_get_text(body);
    if (!text)
        return 1;
    xmpp_base64_decode_bin(d->ctx, text, strlen(text), &raw, &rlen);
    if (raw && rlen >= BENCH_BODY_HDR)
        bench_deliver(d->b, m->idx, raw, rlen);
    else
        d->bad_bodies++;
    xmpp_free(d->ctx, raw);
    xmpp_free(d->ctx, text);
    return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                    xmpp_stream_error_t *serr, void *ud)
{
    xmember *m = ud;
    xdrv *d = m->d;
    (void)serr;

    if (ev == XMPP_CONN_CONNECT) {
        m->connected = true;
        d->connected++;
        xmpp_handler_add(conn, on_presence, NULL, "presence", NULL, m);
        xmpp_handler_add(conn, on_message, NULL, "message", "groupchat", m);
        join_room(m);
        return;
    }
    if (d->closing)
        return;
    fprintf(stderr, "herald-bench: xmpp: member %d %s (error %d)%s\n", m->idx,
            m->connected ? "was disconnected" : "could not log in", error,
            m->connected ? "" : ": is the server up, and are the bench-N users registered?");
    exit(1);
}

static void open_member(xdrv *d, int i)
{
    xmember *m = &d->m[i];
    char jid[160];

    m->d = d;
    m->idx = i;
    snprintf(m->nick_jid, sizeof m->nick_jid, "%s/m%d", d->room, i);
    snprintf(jid, sizeof jid, "bench-%d@%s/hb", i, XMPP_DOMAIN);
    m->conn = xmpp_conn_new(d->ctx);
    if (!m->conn)
        bench_die("xmpp: out of memory");
    xmpp_conn_set_flags(m->conn, XMPP_CONN_FLAG_DISABLE_TLS | XMPP_CONN_FLAG_DISABLE_SM);
    xmpp_conn_set_jid(m->conn, jid);
    xmpp_conn_set_pass(m->conn, XMPP_PASSWORD);
    if (xmpp_connect_client(m->conn, d->cfg->host, d->cfg->port, on_conn, m) != XMPP_EOK) {
        fprintf(stderr, "herald-bench: xmpp: member %d: connect to %s:%u failed\n", i,
                d->cfg->host, d->cfg->port);
        exit(1);
    }
}

static void on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    xdrv *d = w->data;
    (void)loop;
    (void)revents;
    xmpp_run_once(d->ctx, 0);
}

static void xdrv_close(void *drv);

static int xdrv_setup(bench *b, const bench_config *cfg, void **out)
{
    xdrv *d;

    if (cfg->members > MAX_MEMBERS) {
        fprintf(stderr, "herald-bench: xmpp: at most %d members (libstrophe uses select())\n",
                MAX_MEMBERS);
        return -1;
    }
    d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->b = b;
    d->cfg = cfg;
    xmpp_initialize();
    d->ctx = xmpp_ctx_new(NULL, NULL);
    d->m = calloc((size_t)cfg->members, sizeof *d->m);
    if (!d->ctx || !d->m) {
        xdrv_close(d);
        return -1;
    }
    snprintf(d->room, sizeof d->room, "%s@%s", cfg->group, XMPP_MUC_SERVICE);
    ev_timer_init(&d->poll, on_poll, 0.0, POLL_S);
    d->poll.data = d;
    ev_timer_start(cfg->loop, &d->poll);
    open_member(d, 0);
    *out = d;
    return 0;
}

static int xdrv_publish(void *drv, const uint8_t *body, size_t len, uint64_t idx)
{
    xdrv *d = drv;
    char *b64 = xmpp_base64_encode(d->ctx, body, len);
    xmpp_stanza_t *msg;
    (void)idx;

    if (!b64)
        return -1;
    msg = xmpp_message_new(d->ctx, "groupchat", d->room, NULL);
    if (!msg || xmpp_message_set_body(msg, b64) != XMPP_EOK) {
        xmpp_free(d->ctx, b64);
        if (msg)
            xmpp_stanza_release(msg);
        return -1;
    }
    xmpp_send(d->m[0].conn, msg);
    xmpp_stanza_release(msg);
    xmpp_free(d->ctx, b64);
    xmpp_run_once(d->ctx, 0); /* write it now, not at the next poll */
    return 0;
}

static void xdrv_status(void *drv, char *buf, size_t size)
{
    xdrv *d = drv;
    snprintf(buf, size, "%d/%d logged in, %d/%d in room %s (%s)", d->connected,
             d->cfg->members, d->joined, d->cfg->members, d->room,
             d->room_ready ? "configured" : "not configured");
}

static void xdrv_report(void *drv, char *buf, size_t size)
{
    xdrv *d = drv;
    snprintf(buf, size, ",\"room\":\"%s\",\"occupants\":%d,\"bad_bodies\":%llu", d->room,
             d->joined, (unsigned long long)d->bad_bodies);
}

static void xdrv_close(void *drv)
{
    xdrv *d = drv;

    if (!d)
        return;
    d->closing = true;
    ev_timer_stop(d->cfg->loop, &d->poll);
    for (int i = 0; d->m && i < d->cfg->members; i++)
        if (d->m[i].conn && d->m[i].connected)
            xmpp_disconnect(d->m[i].conn);
    /* Let the closing stanzas out: bounded, at most ~1 s. */
    for (int n = 0; d->ctx && n < 100; n++) {
        bool open = false;
        for (int i = 0; d->m && i < d->cfg->members && !open; i++)
            open = d->m[i].conn && !xmpp_conn_is_disconnected(d->m[i].conn);
        if (!open)
            break;
        xmpp_run_once(d->ctx, 10);
    }
    for (int i = 0; d->m && i < d->cfg->members; i++)
        if (d->m[i].conn)
            xmpp_conn_release(d->m[i].conn);
    if (d->ctx)
        xmpp_ctx_free(d->ctx);
    xmpp_shutdown();
    free(d->m);
    free(d);
}

const bench_driver bench_drv_xmpp = {
    .name = "xmpp",
    .throughput = false,
    .durability = "memory only: MUC messages not stored (history off, no MAM); users and rooms in mnesia",
    .setup = xdrv_setup,
    .publish = xdrv_publish,
    .status = xdrv_status,
    .report = xdrv_report,
    .close = xdrv_close,
};
