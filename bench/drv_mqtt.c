/*
 * drv_mqtt.c — herald-bench driver for MQTT 3.1.1 brokers (libmosquitto 2.0),
 * QoS 0: Mosquitto, or NATS's MQTT listener.
 *
 * One mosquitto client per member (clean session, TCP_NODELAY): member 0
 * publishes on topic cfg->group, members 1..M-1 subscribe to it. All clients
 * are driven from the bench's libev loop (mosquitto_socket + loop_read /
 * loop_write / loop_misc; no libmosquitto threads), so every callback and
 * bench_deliver() runs on the loop thread. The run starts once the publisher
 * has its CONNACK and every subscriber its SUBACK.
 *
 * With --env FILE (a Herald dev.env or cluster.env): Herald's own MQTT
 * listener (HERALD_MQTT in the file, or --url). Member i connects as user
 * bench-i with a token minted from HERALD_SECRET as its password; before
 * that, bench-0 (admin) creates the conversation cfg->group with every
 * member over Herald's protocol (libherald, HERALD_GATEWAY), as the herald
 * driver does; the topic is conv/<group>. A QoS 0 publish is a durable SEND
 * there (stored before it is pushed).
 */
#include <errno.h>
#include <herald/client.h>
#include <herald/token.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

typedef struct mdrv mdrv;

/* One member client. */
typedef struct mmember {
    mdrv *d;                 /* owner */
    int idx;                 /* member index; 0 = publisher */
    struct mosquitto *mosq;  /* the client */
    ev_io rio;               /* readable */
    ev_io wio;               /* writable while libmosquitto has queued output */
    bool connected;          /* CONNACK accepted */
    bool subscribed;         /* receivers: SUBACK received */
    bool dead;               /* connection lost; watchers stopped */
} mmember;

/* The driver state. */
struct mdrv {
    bench *b;                /* the run */
    const bench_config *cfg; /* its parameters */
    struct ev_loop *loop;    /* cfg->loop */
    mmember *m;              /* members[] */
    int created;             /* clients created (for cleanup) */
    int connected;           /* CONNACKs received */
    int subscribed;          /* SUBACKs received */
    int lost;                /* connections lost */
    bool ready;              /* bench_ready() called */
    ev_timer misc;           /* keepalive housekeeping, every second */
    char topic[160];         /* the topic: cfg->group, or conv/<group> on Herald */
    bool herald;             /* Herald's MQTT listener (--env) */
    char gateway[300];       /* Herald: HERALD_GATEWAY (HOST:PORT) */
    char tenant[129];        /* Herald: HERALD_TENANT */
    uint8_t secret[HERALD_TOKEN_SECRET_LEN]; /* Herald: HERALD_SECRET */
};

static void mm_lost(mmember *m, int rc)
{
    if (m->dead)
        return;
    m->dead = true;
    m->d->lost++;
    ev_io_stop(m->d->loop, &m->rio);
    ev_io_stop(m->d->loop, &m->wio);
    if (m->d->lost <= 5)
        fprintf(stderr, "herald-bench: mqtt: member %d lost its connection: %s\n", m->idx,
                mosquitto_strerror(rc));
}

/* Starts or stops write interest after libmosquitto queued or wrote output. */
static void mm_sync_write(mmember *m)
{
    if (m->dead)
        return;
    if (mosquitto_want_write(m->mosq))
        ev_io_start(m->d->loop, &m->wio);
    else
        ev_io_stop(m->d->loop, &m->wio);
}

static void mm_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    mmember *m = w->data;
    (void)loop;
    (void)revents;
    /* loop_read handles one packet per call: read until the socket is dry
     * (bounded, the loop is level-triggered and comes back). */
    for (int i = 0; i < 64 && !m->dead; i++) {
        int rc;
        errno = 0;
        rc = mosquitto_loop_read(m->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            mm_lost(m, rc);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
    }
    mm_sync_write(m);
}

static void mm_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    mmember *m = w->data;
    int rc = mosquitto_loop_write(m->mosq, 1);
    (void)loop;
    (void)revents;
    if (rc != MOSQ_ERR_SUCCESS) {
        mm_lost(m, rc);
        return;
    }
    mm_sync_write(m);
}

static void on_misc(struct ev_loop *loop, ev_timer *w, int revents)
{
    mdrv *d = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < d->created; i++) {
        if (d->m[i].dead)
            continue;
        mosquitto_loop_misc(d->m[i].mosq);
        mm_sync_write(&d->m[i]);
    }
}

static void maybe_ready(mdrv *d)
{
    if (d->ready || !d->m[0].connected || d->subscribed < d->cfg->members - 1)
        return;
    d->ready = true;
    bench_ready(d->b);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    mmember *m = obj;
    int src;

    if (rc != 0) {
        fprintf(stderr, "herald-bench: mqtt: member %d: CONNACK refused: %s\n", m->idx,
                mosquitto_connack_string(rc));
        exit(1);
    }
    m->connected = true;
    m->d->connected++;
    if (m->idx == 0) {
        maybe_ready(m->d);
        return;
    }
    src = mosquitto_subscribe(mosq, NULL, m->d->topic, 0);
    if (src != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "herald-bench: mqtt: subscribe: %s\n", mosquitto_strerror(src));
        exit(1);
    }
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
    mmember *m = obj;
    (void)mosq;
    (void)mid;
    if (n < 1 || granted[0] > 2) {
        fprintf(stderr, "herald-bench: mqtt: member %d: subscription refused\n", m->idx);
        exit(1);
    }
    if (!m->subscribed) {
        m->subscribed = true;
        m->d->subscribed++;
        maybe_ready(m->d);
    }
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    mmember *m = obj;
    (void)mosq;
    bench_deliver(m->d->b, m->idx, msg->payload, (size_t)msg->payloadlen);
}

static void mdrv_close(void *drv);

/* Herald: the env file's gateway, tenant, secret and MQTT listener (the
 * latter into host/port unless --url gave one). */
static void herald_env(mdrv *d, char *host, size_t hcap, uint16_t *port)
{
    char line[512];
    bool sec = false;
    FILE *f = fopen(d->cfg->env, "r");
    if (!f)
        bench_die("mqtt: cannot open --env file");
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "HERALD_GATEWAY=", 15) == 0)
            snprintf(d->gateway, sizeof d->gateway, "%.299s", line + 15);
        else if (strncmp(line, "HERALD_TENANT=", 14) == 0)
            snprintf(d->tenant, sizeof d->tenant, "%.128s", line + 14);
        else if (strncmp(line, "HERALD_SECRET=", 14) == 0)
            sec = herald_token_secret_from_hex(line + 14, d->secret) == 0;
        else if (strncmp(line, "HERALD_MQTT=", 12) == 0 && !*port) {
            char *colon = strrchr(line + 12, ':');
            if (!colon)
                bench_die("mqtt: HERALD_MQTT needs HOST:PORT");
            *colon = '\0';
            snprintf(host, hcap, "%.*s", (int)hcap - 1, line + 12);
            *port = (uint16_t)atoi(colon + 1);
        }
    }
    fclose(f);
    if (!d->gateway[0] || !d->tenant[0] || !sec)
        bench_die("mqtt: --env file lacks HERALD_GATEWAY, HERALD_TENANT or HERALD_SECRET");
    if (!*port)
        bench_die("mqtt: no MQTT listener: HERALD_MQTT missing from the --env file and no --url");
}

static void herald_token(mdrv *d, const char *user, bool admin, char *tok, size_t cap)
{
    if (herald_token_mint(d->secret, sizeof d->secret, d->tenant, user, 86400, admin, tok, cap) != 0)
        bench_die("mqtt: herald_token_mint");
}

/* bench-0 creates the conversation with every member (Herald's protocol). */
static void herald_conv(mdrv *d)
{
    int n = d->cfg->members, rc;
    char tok[HERALD_TOKEN_MAX], (*names)[32] = calloc((size_t)n, sizeof *names);
    const char **mv = calloc((size_t)n, sizeof *mv);
    const char *kind = d->cfg->kind ? d->cfg->kind
                       : n <= 200   ? "group"
                       : n <= 500   ? "customer_group"
                                    : "announce";
    herald_client *c = NULL;

    if (!names || !mv)
        bench_die("out of memory");
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "bench-%d", i);
        mv[i] = names[i];
    }
    herald_token(d, "bench-0", true, tok, sizeof tok);
    rc = herald_client_connect(d->gateway, tok, NULL, &c);
    if (rc == 0)
        rc = herald_client_conv_create(c, kind, d->cfg->group, mv, (uint32_t)n, NULL);
    if (rc) {
        fprintf(stderr, "herald-bench: mqtt: creating conversation %s at %s: %s %s\n",
                d->cfg->group, d->gateway, herald_strerror(rc), c ? herald_client_last_error(c) : "");
        exit(1);
    }
    herald_client_close(c);
    free(names);
    free(mv);
}

static int mdrv_setup(bench *b, const bench_config *cfg, void **out)
{
    mdrv *d = calloc(1, sizeof *d);
    char id[160]; /* "<group>-<member>" */
    char hhost[256] = "";
    uint16_t hport = 0;
    const char *host;
    uint16_t port;

    if (!d)
        return -1;
    d->b = b;
    d->cfg = cfg;
    d->loop = cfg->loop;
    host = cfg->host;
    port = cfg->port;
    snprintf(d->topic, sizeof d->topic, "%s", cfg->group);
    if (cfg->env) {
        d->herald = true;
        hport = port;
        herald_env(d, hhost, sizeof hhost, &hport);
        if (!port) {
            host = hhost;
            port = hport;
        }
        snprintf(d->topic, sizeof d->topic, "conv/%s", cfg->group);
        herald_conv(d);
    }
    mosquitto_lib_init();
    d->m = calloc((size_t)cfg->members, sizeof *d->m);
    if (!d->m)
        goto fail;
    for (int i = 0; i < cfg->members; i++) {
        mmember *m = &d->m[i];
        int rc;
        m->d = d;
        m->idx = i;
        snprintf(id, sizeof id, "%s-%d", cfg->group, i);
        m->mosq = mosquitto_new(id, true, m);
        if (!m->mosq) {
            fprintf(stderr, "herald-bench: mqtt: mosquitto_new failed\n");
            goto fail;
        }
        d->created++;
        mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        if (d->herald) {
            char user[32], tok[HERALD_TOKEN_MAX];
            snprintf(user, sizeof user, "bench-%d", i);
            herald_token(d, user, false, tok, sizeof tok);
            if (mosquitto_username_pw_set(m->mosq, user, tok) != MOSQ_ERR_SUCCESS)
                goto fail;
        }
        mosquitto_connect_callback_set(m->mosq, on_connect);
        mosquitto_subscribe_callback_set(m->mosq, on_subscribe);
        mosquitto_message_callback_set(m->mosq, on_message);
        /* Blocking TCP connect; the CONNECT packet is written here too. */
        rc = mosquitto_connect(m->mosq, host, port, 60);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "herald-bench: mqtt: connect %s:%u: %s\n", host, port,
                    mosquitto_strerror(rc));
            goto fail;
        }
        ev_io_init(&m->rio, mm_on_read, mosquitto_socket(m->mosq), EV_READ);
        ev_io_init(&m->wio, mm_on_write, mosquitto_socket(m->mosq), EV_WRITE);
        m->rio.data = m->wio.data = m;
        ev_io_start(d->loop, &m->rio);
        mm_sync_write(m);
    }
    ev_timer_init(&d->misc, on_misc, 1.0, 1.0);
    d->misc.data = d;
    ev_timer_start(d->loop, &d->misc);
    *out = d;
    return 0;
fail:
    mdrv_close(d);
    return -1;
}

static int mdrv_publish(void *drv, const uint8_t *body, size_t len, uint64_t idx)
{
    mdrv *d = drv;
    mmember *m = &d->m[0];
    int rc;
    (void)idx;

    if (m->dead)
        return -1;
    /* Outside a callback, libmosquitto writes the packet right away. */
    rc = mosquitto_publish(m->mosq, NULL, d->topic, (int)len, body, 0, false);
    mm_sync_write(m);
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

static void mdrv_status(void *drv, char *buf, size_t size)
{
    mdrv *d = drv;
    snprintf(buf, size, "%d/%d connected, %d/%d subscribed, %d lost", d->connected,
             d->cfg->members, d->subscribed, d->cfg->members - 1, d->lost);
}

static void mdrv_close(void *drv)
{
    mdrv *d = drv;
    if (!d)
        return;
    ev_timer_stop(d->loop, &d->misc);
    for (int i = 0; i < d->created; i++) {
        mmember *m = &d->m[i];
        ev_io_stop(d->loop, &m->rio);
        ev_io_stop(d->loop, &m->wio);
        if (!m->dead)
            mosquitto_disconnect(m->mosq);
        mosquitto_destroy(m->mosq);
    }
    if (d->lost)
        fprintf(stderr, "herald-bench: mqtt: %d connections were lost during the run\n", d->lost);
    mosquitto_lib_cleanup();
    free(d->m);
    free(d);
}

static const char *mdrv_durability(void *drv)
{
    const mdrv *d = drv;
    return d->herald ? "QoS 0 publish = a Herald SEND: stored (durable) before it is pushed" : NULL;
}

const bench_driver bench_drv_mqtt = {
    .name = "mqtt",
    .throughput = false,
    .durability = "memory only: QoS 0, nothing stored",
    .durability_of = mdrv_durability,
    .setup = mdrv_setup,
    .publish = mdrv_publish,
    .status = mdrv_status,
    .close = mdrv_close,
};
