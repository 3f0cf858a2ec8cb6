/*
 * herald-bench — open-loop fan-out and throughput benchmark for Herald.
 *
 * One process, one libev loop: M member connections (each authenticated as
 * its own user), one of which sends. Sends are scheduled at a fixed rate
 * (open loop: a late loop never lowers the offered load); each message body
 * carries its scheduled send time, and latency is measured from that time to
 * each delivery (so coordinated omission is not hidden). Results go to stdout
 * as one JSON object.
 *
 *   herald-bench --env var/dev.env --scenario fanout [--members 500]
 *                [--rate 100] [--payload 256] [--duration 10] [--drain 5]
 *   herald-bench --env var/dev.env --scenario throughput [--window 256]
 *                [--duration 10]
 *
 * fanout: a conversation of M members (customer_group when M > 200);
 *   p50/p99/p999/max over every delivery, last_* over the latency to the
 *   last member of each message (the number a user of a big group feels).
 * throughput: acked sends/s from one connection with W requests in flight to
 *   a 2-member conversation (acks come only after the group commit's fsync).
 */
#include <errno.h>
#include <fcntl.h>
#include <ev.h>
#include <herald/error.h>
#include <herald/protocol.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "hist.h"
#include "token.h"

#define BODY_HDR 16u /* scheduled ns (8) + message index (8) */

typedef struct bench bench;

/* One client connection. */
typedef struct bconn {
    bench *b;          /* owner */
    int fd;            /* socket */
    int idx;           /* member index; 0 = sender */
    ev_io rio;         /* readable */
    ev_io wio;         /* writable while tx is stuck */
    herald_buf rx;     /* received bytes */
    herald_buf tx;     /* bytes to send */
    size_t tx_off;     /* bytes of tx already sent */
    bool welcomed;     /* WELCOME received */
} bconn;

struct bench {
    struct ev_loop *loop;   /* the loop */
    char host[256];         /* gateway host */
    uint16_t port;          /* gateway port */
    char tenant[256];       /* tenant */
    uint8_t secret[TOKEN_SECRET_LEN]; /* tenant secret */
    const char *scenario;   /* fanout | throughput */
    int members;            /* conversation size */
    double rate;            /* msgs/s (fanout) */
    uint32_t payload;       /* body bytes */
    double duration;        /* seconds of sending */
    double drain;           /* seconds to wait for stragglers */
    uint32_t window;        /* throughput: requests in flight */
    char conv[64];          /* conversation id */
    bconn *conns;           /* members[] connections */
    int welcomed;           /* connections past WELCOME */
    bool conv_ready;        /* CONV_RESULT received */
    /* run state */
    uint64_t t0_ns;         /* first scheduled send */
    uint64_t total;         /* messages to send */
    uint64_t sent;          /* sent so far */
    uint64_t acked;         /* ACKs received */
    uint64_t errors;        /* ERROR frames received */
    uint64_t delivered;     /* deliveries counted (receivers only) */
    uint32_t *per_msg;      /* deliveries per message */
    uint64_t *last_ns;      /* latest delivery latency per message */
    uint64_t inflight;      /* throughput: outstanding sends */
    uint64_t *sent_at;      /* throughput: send time per rid */
    hist all;               /* every delivery latency, µs */
    hist last;              /* latency to the last member, µs */
    hist ack;               /* send → ack latency, µs */
    ev_timer tick;          /* send pacing */
    ev_timer stop;          /* end of drain */
    ev_timer deadline;      /* set-up deadline */
    uint64_t end_send_ns;   /* when sending stopped */
    int phase;              /* 0 setup, 1 sending, 2 draining */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "herald-bench: %s\n", what);
    exit(1);
}

static int fcntl_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void conn_flush(bconn *c)
{
    while (c->tx_off < c->tx.len) {
        ssize_t n = send(c->fd, c->tx.data + c->tx_off, c->tx.len - c->tx_off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            die("send failed");
        }
        c->tx_off += (size_t)n;
    }
    if (c->tx_off == c->tx.len) {
        c->tx.len = c->tx_off = 0;
        ev_io_stop(c->b->loop, &c->wio);
    } else {
        ev_io_start(c->b->loop, &c->wio);
    }
}

static void conn_send(bconn *c, const herald_frame *f)
{
    if (herald_frame_encode(f, &c->tx) != 0)
        die("encode failed");
    conn_flush(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush(w->data);
}

static void create_conv(bench *b)
{
    herald_str *mv = calloc((size_t)b->members, sizeof *mv);
    char **names = calloc((size_t)b->members, sizeof *names);
    herald_frame f = {.type = HERALD_FT_CONV, .rid = 1, .op = herald_str_z("create"),
                      .conv = herald_str_z(b->conv)};
    if (!mv || !names)
        die("out of memory");
    for (int i = 0; i < b->members; i++) {
        names[i] = malloc(32);
        snprintf(names[i], 32, "bench-%d", i);
        mv[i] = herald_str_z(names[i]);
    }
    f.kind = herald_str_z(b->members > 200 ? "customer_group" : "group");
    f.members = mv;
    f.n_members = (uint32_t)b->members;
    conn_send(&b->conns[0], &f);
    for (int i = 0; i < b->members; i++)
        free(names[i]);
    free(names);
    free(mv);
}

static void send_one(bench *b, uint64_t idx, uint64_t sched_ns)
{
    static uint8_t body[1 << 20];
    herald_frame f = {.type = HERALD_FT_SEND, .rid = idx + 1,
                      .conv = herald_str_z(b->conv),
                      .body = {.ptr = (const char *)body, .len = b->payload}};
    put_u64(body, sched_ns);
    put_u64(body + 8, idx);
    conn_send(&b->conns[0], &f);
    b->sent++;
}

static void finish(bench *b);

/* Sending is over: stop the pacing timer and give stragglers `drain` s. */
static void begin_drain(bench *b, uint64_t now)
{
    if (b->phase != 1)
        return;
    b->phase = 2;
    b->end_send_ns = now;
    ev_timer_stop(b->loop, &b->tick);
    ev_timer_set(&b->stop, b->drain, 0);
    ev_timer_start(b->loop, &b->stop);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench *b = w->data;
    uint64_t now = now_ns();
    (void)revents;

    if (strcmp(b->scenario, "fanout") == 0) {
        double period = 1e9 / b->rate;
        /* Send everything whose scheduled time has come (open loop). */
        while (b->sent < b->total) {
            uint64_t sched = b->t0_ns + (uint64_t)(period * (double)b->sent);
            if (sched > now)
                break;
            send_one(b, b->sent, sched);
        }
        if (b->sent == b->total)
            begin_drain(b, now);
        return;
    }
    /* throughput: keep the window full until the duration is over. */
    if (now - b->t0_ns >= (uint64_t)(b->duration * 1e9)) {
        begin_drain(b, now);
        return;
    }
    while (b->inflight < b->window && b->sent < b->total) {
        b->sent_at[b->sent] = now;
        send_one(b, b->sent, now);
        b->inflight++;
    }
}

static void start_sending(bench *b)
{
    b->phase = 1;
    ev_timer_stop(b->loop, &b->deadline);
    b->t0_ns = now_ns();
    ev_timer_init(&b->tick, on_tick, 0.0, 0.001);
    b->tick.data = b;
    ev_timer_start(b->loop, &b->tick);
}

static void on_frame(bconn *c, herald_frame *f)
{
    bench *b = c->b;
    switch (f->type) {
    case HERALD_FT_WELCOME:
        c->welcomed = true;
        if (++b->welcomed == b->members)
            create_conv(b);
        break;
    case HERALD_FT_CONV_RESULT:
        b->conv_ready = true;
        start_sending(b);
        break;
    case HERALD_FT_ACK:
        b->acked++;
        if (b->inflight)
            b->inflight--;
        if (b->sent_at && f->rid >= 1 && f->rid <= b->total)
            hist_record(&b->ack, (now_ns() - b->sent_at[f->rid - 1]) / 1000u);
        if (strcmp(b->scenario, "throughput") == 0 && b->phase == 1)
            on_tick(b->loop, &b->tick, 0);
        break;
    case HERALD_FT_DELIVER: {
        const herald_msg *m = &f->msg;
        uint64_t sched, idx, lat;
        if (c->idx == 0 || m->kind != HERALD_MK_TEXT || m->body.len < BODY_HDR)
            break;
        sched = get_u64((const uint8_t *)m->body.ptr);
        idx = get_u64((const uint8_t *)m->body.ptr + 8);
        if (idx >= b->total)
            break;
        lat = now_ns() - sched;
        hist_record(&b->all, lat / 1000u);
        b->delivered++;
        b->per_msg[idx]++;
        if (lat > b->last_ns[idx])
            b->last_ns[idx] = lat;
        break;
    }
    case HERALD_FT_ERROR:
        b->errors++;
        if (b->inflight)
            b->inflight--;
        if (b->phase == 0 || b->errors < 5)
            fprintf(stderr, "herald-bench: conn %d: ERROR %s: %.*s\n", c->idx,
                    herald_err_name((int)f->code), (int)f->text.len, f->text.ptr);
        if (b->phase == 0)
            exit(1);
        break;
    default:
        break;
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    bconn *c = w->data;
    size_t off = 0;
    ssize_t n;
    (void)loop;
    (void)revents;

    if (herald_buf_reserve(&c->rx, 1 << 16) != 0)
        die("out of memory");
    n = recv(c->fd, c->rx.data + c->rx.len, 1 << 16, 0);
    if (n == 0)
        die("gateway closed a connection");
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        die("recv failed");
    }
    c->rx.len += (size_t)n;
    for (;;) {
        size_t flen = 0;
        herald_frame f;
        if (herald_frame_peek(c->rx.data + off, c->rx.len - off, 0, &flen) != 0)
            die("bad frame from gateway");
        if (!flen)
            break;
        if (herald_frame_decode(c->rx.data + off + HERALD_FRAME_HEADER,
                                flen - HERALD_FRAME_HEADER, NULL, &f) != 0)
            die("undecodable frame from gateway");
        on_frame(c, &f);
        herald_frame_release(&f);
        off += flen;
    }
    herald_buf_consume(&c->rx, off);
}

static void open_conn(bench *b, int idx)
{
    bconn *c = &b->conns[idx];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(b->port)};
    char user[32], tok[TOKEN_TEXT_MAX];
    token_claims cl = {.expires = (uint64_t)time(NULL) + 86400, .admin = true};
    herald_frame f = {.type = HERALD_FT_HELLO, .version = HERALD_PROTOCOL_VERSION};
    int one = 1;

    c->b = b;
    c->idx = idx;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || inet_pton(AF_INET, b->host, &a.sin_addr) != 1)
        die("socket / address");
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect failed (is the gateway running?)");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl_nonblock(c->fd) != 0)
        die("fcntl");
    snprintf(user, sizeof user, "bench-%d", idx);
    snprintf(cl.tenant, sizeof cl.tenant, "%.128s", b->tenant);
    snprintf(cl.user, sizeof cl.user, "%s", user);
    cl.admin = idx == 0; /* the sender creates the conversation */
    if (token_mint(b->secret, &cl, tok, sizeof tok) != 0)
        die("token_mint");
    f.token = herald_str_z(tok);
    ev_io_init(&c->rio, on_read, c->fd, EV_READ);
    ev_io_init(&c->wio, on_write, c->fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    ev_io_start(b->loop, &c->rio);
    conn_send(c, &f);
}

static void finish(bench *b)
{
    double secs = (double)(b->end_send_ns - b->t0_ns) / 1e9;
    uint64_t receivers = (uint64_t)(b->members - 1);
    uint64_t expected = b->sent * receivers;
    uint64_t complete = 0;

    for (uint64_t i = 0; i < b->sent; i++) {
        if (b->per_msg[i] == receivers) {
            hist_record(&b->last, b->last_ns[i] / 1000u);
            complete++;
        }
    }
    if (secs <= 0)
        secs = 1e-9;
    printf("{\"system\":\"herald\",\"scenario\":\"%s\",\"members\":%d,\"rate\":%.0f,"
           "\"payload\":%u,\"duration_s\":%.2f,"
           "\"p50_us\":%llu,\"p99_us\":%llu,\"p999_us\":%llu,\"max_us\":%llu,"
           "\"last_p50_us\":%llu,\"last_p99_us\":%llu,\"last_max_us\":%llu,"
           "\"ack_p50_us\":%llu,\"ack_p99_us\":%llu,"
           "\"sent\":%llu,\"acked\":%llu,\"errors\":%llu,\"expected\":%llu,"
           "\"delivered\":%llu,\"lost\":%llu,\"deliveries_per_s\":%.0f,"
           "\"acked_per_s\":%.0f}\n",
           b->scenario, b->members, strcmp(b->scenario, "fanout") == 0 ? b->rate : 0.0,
           b->payload, secs,
           (unsigned long long)hist_quantile(&b->all, 0.5),
           (unsigned long long)hist_quantile(&b->all, 0.99),
           (unsigned long long)hist_quantile(&b->all, 0.999),
           (unsigned long long)b->all.max,
           (unsigned long long)hist_quantile(&b->last, 0.5),
           (unsigned long long)hist_quantile(&b->last, 0.99),
           (unsigned long long)b->last.max,
           (unsigned long long)hist_quantile(&b->ack, 0.5),
           (unsigned long long)hist_quantile(&b->ack, 0.99),
           (unsigned long long)b->sent, (unsigned long long)b->acked,
           (unsigned long long)b->errors, (unsigned long long)expected,
           (unsigned long long)b->delivered,
           (unsigned long long)(expected - (b->delivered < expected ? b->delivered : expected)),
           (double)b->delivered / secs, (double)b->acked / secs);
    fflush(stdout);
    (void)complete;
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench *b = w->data;
    (void)loop;
    (void)revents;
    fprintf(stderr, "herald-bench: set-up did not finish (%d/%d welcomed, conv %s)\n",
            b->welcomed, b->members, b->conv_ready ? "ready" : "not ready");
    exit(1);
}

/* Reads HERALD_GATEWAY / HERALD_TENANT / HERALD_SECRET from a dev.env file. */
static void load_env(bench *b, const char *path)
{
    char line[256];
    FILE *f = fopen(path, "r");
    bool gw = false, ten = false, sec = false;
    if (!f)
        die("cannot open --env file");
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "HERALD_GATEWAY=", 15) == 0) {
            char *colon = strrchr(line + 15, ':');
            if (!colon)
                die("HERALD_GATEWAY needs HOST:PORT");
            *colon = '\0';
            snprintf(b->host, sizeof b->host, "%s", line + 15);
            b->port = (uint16_t)atoi(colon + 1);
            gw = true;
        } else if (strncmp(line, "HERALD_TENANT=", 14) == 0) {
            snprintf(b->tenant, sizeof b->tenant, "%s", line + 14);
            ten = true;
        } else if (strncmp(line, "HERALD_SECRET=", 14) == 0) {
            sec = token_secret_from_hex(line + 14, b->secret) == 0;
        }
    }
    fclose(f);
    if (!gw || !ten || !sec)
        die("--env file lacks HERALD_GATEWAY, HERALD_TENANT or HERALD_SECRET");
}

static double num_arg(const char *name, const char *v, double min, double max)
{
    char *end;
    double d = v ? strtod(v, &end) : 0;
    if (!v || *end || d < min || d > max) {
        fprintf(stderr, "herald-bench: %s must be a number in [%g, %g]\n", name, min, max);
        exit(2);
    }
    return d;
}

int main(int argc, char **argv)
{
    static bench b;
    const char *env = NULL;
    uint8_t rnd[6];

    b.scenario = "fanout";
    b.members = 500;
    b.rate = 100;
    b.payload = 256;
    b.duration = 10;
    b.drain = 5;
    b.window = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--env") == 0 && v)
            env = v;
        else if (strcmp(a, "--scenario") == 0 && v)
            b.scenario = v;
        else if (strcmp(a, "--members") == 0)
            b.members = (int)num_arg(a, v, 2, 2000);
        else if (strcmp(a, "--rate") == 0)
            b.rate = num_arg(a, v, 1, 1e6);
        else if (strcmp(a, "--payload") == 0)
            b.payload = (uint32_t)num_arg(a, v, BODY_HDR, 1 << 19);
        else if (strcmp(a, "--duration") == 0)
            b.duration = num_arg(a, v, 0.1, 3600);
        else if (strcmp(a, "--drain") == 0)
            b.drain = num_arg(a, v, 0.1, 600);
        else if (strcmp(a, "--window") == 0)
            b.window = (uint32_t)num_arg(a, v, 1, 65536);
        else {
            fprintf(stderr,
                    "usage: herald-bench --env FILE [--scenario fanout|throughput]\n"
                    "         [--members M] [--rate R] [--payload BYTES] [--duration S]\n"
                    "         [--drain S] [--window W]\n");
            return 2;
        }
        i++;
    }
    if (!env)
        die("--env FILE (a dev.env or cluster.env) is required");
    if (strcmp(b.scenario, "fanout") != 0 && strcmp(b.scenario, "throughput") != 0)
        die("--scenario must be fanout or throughput");
    if (strcmp(b.scenario, "throughput") == 0) {
        b.members = 2;
        b.drain = b.drain > 2 ? 2 : b.drain;
    }
    if (herald_token_init() != 0)
        die("libsodium init");
    load_env(&b, env);
    signal(SIGPIPE, SIG_IGN);
    randombytes_buf(rnd, sizeof rnd);
    snprintf(b.conv, sizeof b.conv, "bench-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5]);
    b.total = strcmp(b.scenario, "fanout") == 0
                  ? (uint64_t)(b.rate * b.duration + 0.5)
                  : (uint64_t)(b.duration * 2e6); /* cap; the clock ends it */
    b.per_msg = calloc(b.total, sizeof *b.per_msg);
    b.last_ns = calloc(b.total, sizeof *b.last_ns);
    if (strcmp(b.scenario, "throughput") == 0)
        b.sent_at = calloc(b.total, sizeof *b.sent_at);
    b.conns = calloc((size_t)b.members, sizeof *b.conns);
    if (!b.per_msg || !b.last_ns || !b.conns ||
        (strcmp(b.scenario, "throughput") == 0 && !b.sent_at))
        die("out of memory");
    hist_init(&b.all);
    hist_init(&b.last);
    hist_init(&b.ack);
    b.loop = EV_DEFAULT;
    ev_timer_init(&b.stop, on_stop, 0, 0);
    b.stop.data = &b;
    ev_timer_init(&b.deadline, on_deadline, 30.0, 0);
    b.deadline.data = &b;
    ev_timer_start(b.loop, &b.deadline);
    for (int i = 0; i < b.members; i++)
        open_conn(&b, i);
    ev_run(b.loop, 0);
    finish(&b);
    return b.sent == 0 ? 1 : 0;
}
