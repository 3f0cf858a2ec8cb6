/*
 * drv_herald.c — herald-bench driver for Herald's gateway protocol.
 *
 * M member connections on the bench loop, each authenticated as its own user
 * (bench-0 .. bench-M-1) with a token minted from the tenant secret of a
 * dev.env or cluster.env file; bench-0 (admin) creates the conversation once
 * every connection is WELCOMEd, and the run starts on CONV_RESULT. Sends are
 * SEND frames from bench-0 (request id = attempt << 40 | index + 1, acked
 * after the fsync'd group commit, or in a cluster after the raft commit on a
 * majority); deliveries are DELIVER frames (bench-0's own echo is not
 * counted).
 *
 * Announcements (read-diffused, any size) are created by bench-0 alone
 * before the other members connect: the creation's system message lists
 * every member, and pushing it to 10,000 online members would be 10,000 ×
 * ~130 kB of set-up traffic. Members connecting later start live (no sync),
 * so they see only the run's messages either way.
 *
 * Before connecting, set-up asks the gateway for STATUS (libherald, blocking)
 * and records its "mode" (dev | cluster) as "target" in the JSON; the
 * durable scenario refuses anything but a cluster. Verify (failover) pages
 * through HISTORY of the conversation.
 *
 * --transport ws: every connection dials the env file's HERALD_WS
 * (ws://HOST:PORT/ws), sends the HTTP Upgrade, waits for 101, and from then
 * on each Herald frame is one masked binary WebSocket message (the server's
 * are unmasked); everything above the framing is the same.
 *
 * Conns (BENCH_CONNS): every member connects and authenticates
 * (HELLO with its own token, WELCOME back) and nothing else happens: no
 * conversation, no sends; bench_ready() once every member is WELCOMEd.
 * At most cfg->window handshakes are in flight (a connection is opened when
 * an earlier one is WELCOMEd): 10,000 HELLOs at once are a reconnect storm,
 * not idle connections (measured: the gateway then lost its peers' heartbeats
 * and answered HELLOs with UNAVAILABLE, no quorum).
 */
#include <errno.h>
#include <fcntl.h>
#include <herald/client.h>
#include <herald/error.h>
#include <herald/protocol.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "token.h"

/* Request ids: sends carry attempt << RID_ATTEMPT_SHIFT | (index + 1); other
 * requests have RID_OTHER set. */
#define RID_ATTEMPT_SHIFT 40
#define RID_INDEX_MASK ((1ull << RID_ATTEMPT_SHIFT) - 1)
#define RID_OTHER (1ull << 63)
#define RID_CONV (RID_OTHER | 1u)
#define RID_HISTORY (RID_OTHER | 2u)
/* Messages asked for per HISTORY page (the server's maximum). */
#define HISTORY_PAGE 1000u

typedef struct hdrv hdrv;

/* One client connection. */
typedef struct hconn {
    hdrv *d;           /* owner */
    int fd;            /* socket */
    int idx;           /* member index; 0 = sender */
    ev_io rio;         /* readable */
    ev_io wio;         /* writable while tx is stuck */
    herald_buf rx;     /* received bytes */
    herald_buf tx;     /* bytes to send */
    size_t tx_off;     /* bytes of tx already sent */
    bool welcomed;     /* WELCOME received */
    bool upgrading;    /* ws: the 101 has not come yet */
    herald_frame hello; /* ws: the HELLO sent once upgraded (token in hello_tok) */
    char hello_tok[TOKEN_TEXT_MAX];
} hconn;

/* The driver state. */
struct hdrv {
    bench *b;               /* the run */
    const bench_config *cfg; /* its parameters */
    struct ev_loop *loop;   /* cfg->loop */
    char host[256];         /* gateway host */
    uint16_t port;          /* gateway port */
    uint16_t ws_port;       /* HERALD_WS port (0: none in the env file) */
    char tenant[256];       /* tenant */
    uint8_t secret[TOKEN_SECRET_LEN]; /* tenant secret */
    hconn *conns;           /* members[] connections */
    int opened;             /* connections opened so far */
    int welcomed;           /* connections past WELCOME */
    bool conv_ready;        /* CONV_RESULT received */
    const char *kind;       /* conversation kind created */
    bool create_first;      /* create with bench-0 alone, then connect the rest */
    char target[16];        /* STATUS "mode": dev | cluster | unknown */
    uint32_t conv_group;    /* CONV_RESULT: the conversation's shard group */
    uint32_t conv_leader;   /* CONV_RESULT: its leader node at creation (cluster) */
    uint64_t hist_after;    /* verify: next HISTORY page starts after this seq */
    uint32_t hist_pages;    /* verify: pages read */
    bool verifying;         /* verify: a HISTORY request is out */
};

static void open_conn(hdrv *d, int idx);
static void ws_frames(hconn *c);

static int fcntl_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void conn_flush(hconn *c)
{
    while (c->tx_off < c->tx.len) {
        ssize_t n = send(c->fd, c->tx.data + c->tx_off, c->tx.len - c->tx_off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            bench_die("send failed");
        }
        c->tx_off += (size_t)n;
    }
    if (c->tx_off == c->tx.len) {
        c->tx.len = c->tx_off = 0;
        ev_io_stop(c->d->loop, &c->wio);
    } else {
        ev_io_start(c->d->loop, &c->wio);
    }
}

static void conn_send(hconn *c, const herald_frame *f)
{
    size_t start = c->tx.len;
    if (herald_frame_encode(f, &c->tx) != 0)
        bench_die("encode failed");
    if (c->d->cfg->ws) {
        /* The 4-byte length becomes a masked binary frame's header; the
         * mask is zero, so the payload goes as it is. */
        uint8_t *p;
        uint32_t len = (uint32_t)(c->tx.len - start - HERALD_FRAME_HEADER);
        uint8_t h[14];
        size_t hl;
        h[0] = 0x82;
        if (len < 126) {
            h[1] = 0x80 | (uint8_t)len;
            hl = 2;
        } else if (len <= 0xffff) {
            h[1] = 0x80 | 126;
            h[2] = (uint8_t)(len >> 8);
            h[3] = (uint8_t)len;
            hl = 4;
        } else {
            h[1] = 0x80 | 127;
            for (int i = 0; i < 8; i++)
                h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
            hl = 10;
        }
        memset(h + hl, 0, 4);
        hl += 4;
        if (herald_buf_reserve(&c->tx, hl) != 0)
            bench_die("out of memory");
        p = c->tx.data + start;
        memmove(p + hl, p + HERALD_FRAME_HEADER, len);
        memcpy(p, h, hl);
        c->tx.len = start + hl + len;
    }
    conn_flush(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush(w->data);
}

static void create_conv(hdrv *d)
{
    int members = d->cfg->members;
    herald_str *mv = calloc((size_t)members, sizeof *mv);
    char **names = calloc((size_t)members, sizeof *names);
    herald_frame f = {.type = HERALD_FT_CONV, .rid = 1, .op = herald_str_z("create"),
                      .conv = herald_str_z(d->cfg->group)};
    if (!mv || !names)
        bench_die("out of memory");
    for (int i = 0; i < members; i++) {
        names[i] = malloc(32);
        if (!names[i])
            bench_die("out of memory");
        snprintf(names[i], 32, "bench-%d", i);
        mv[i] = herald_str_z(names[i]);
    }
    f.rid = RID_CONV;
    f.kind = herald_str_z(d->kind);
    f.members = mv;
    f.n_members = (uint32_t)members;
    conn_send(&d->conns[0], &f);
    for (int i = 0; i < members; i++)
        free(names[i]);
    free(names);
    free(mv);
}

static int hdrv_publish(void *drv, const uint8_t *body, size_t len, uint64_t idx)
{
    hdrv *d = drv;
    herald_frame f = {.type = HERALD_FT_SEND, .rid = (idx + 1) & RID_INDEX_MASK,
                      .conv = herald_str_z(d->cfg->group),
                      .body = {.ptr = (const char *)body, .len = len}};
    conn_send(&d->conns[0], &f);
    return 0;
}

/* A SEND with cmid "<conv>.<idx>": the same for every attempt, so the store
 * keeps one copy and answers retries with dup = true. */
static int hdrv_publish_once(void *drv, const uint8_t *body, size_t len, uint64_t idx,
                             uint32_t attempt)
{
    hdrv *d = drv;
    char cmid[160];
    herald_frame f = {.type = HERALD_FT_SEND,
                      .rid = (uint64_t)attempt << RID_ATTEMPT_SHIFT | ((idx + 1) & RID_INDEX_MASK),
                      .conv = herald_str_z(d->cfg->group),
                      .body = {.ptr = (const char *)body, .len = len}};
    if (attempt >= (1u << (63 - RID_ATTEMPT_SHIFT)))
        return -1;
    snprintf(cmid, sizeof cmid, "%s.%llu", d->cfg->group, (unsigned long long)idx);
    f.cmid = herald_str_z(cmid);
    conn_send(&d->conns[0], &f);
    return 0;
}

static void history_next(hdrv *d)
{
    herald_frame f = {.type = HERALD_FT_HISTORY, .rid = RID_HISTORY,
                      .conv = herald_str_z(d->cfg->group), .after = d->hist_after,
                      .limit = HISTORY_PAGE};
    d->verifying = true;
    conn_send(&d->conns[0], &f);
}

static void hdrv_verify(void *drv)
{
    hdrv *d = drv;
    d->hist_after = 0;
    history_next(d);
}

static void on_history(hdrv *d, const herald_frame *f)
{
    for (uint32_t i = 0; i < f->n_msgs; i++) {
        const herald_msg *m = &f->msgs[i];
        if (m->seq > d->hist_after)
            d->hist_after = m->seq;
        if (m->kind == HERALD_MK_TEXT && m->body.len >= BENCH_BODY_HDR)
            bench_stored(d->b, m->body.ptr, m->body.len);
    }
    d->hist_pages++;
    if (f->more && f->n_msgs > 0) {
        history_next(d);
        return;
    }
    d->verifying = false;
    bench_verified(d->b, true);
}

/* Splits a send's request id into index and attempt; false for other ids. */
static bool rid_send(uint64_t rid, uint64_t *idx, uint32_t *attempt)
{
    if (rid & RID_OTHER || (rid & RID_INDEX_MASK) == 0)
        return false;
    *idx = (rid & RID_INDEX_MASK) - 1;
    *attempt = (uint32_t)(rid >> RID_ATTEMPT_SHIFT);
    return true;
}

static void on_frame(hconn *c, herald_frame *f)
{
    hdrv *d = c->d;
    switch (f->type) {
    case HERALD_FT_WELCOME:
        c->welcomed = true;
        d->welcomed++;
        if (d->cfg->mode == BENCH_CONNS) {
            if (d->opened < d->cfg->members)
                open_conn(d, d->opened);
            if (d->welcomed == d->cfg->members)
                bench_ready(d->b);
        } else if (d->create_first) {
            if (c->idx == 0)
                create_conv(d);
            else if (d->welcomed == d->cfg->members)
                bench_ready(d->b);
        } else if (d->welcomed == d->cfg->members) {
            create_conv(d);
        }
        break;
    case HERALD_FT_CONV_RESULT:
        if (f->rid != RID_CONV || d->conv_ready)
            break;
        d->conv_ready = true;
        d->conv_group = f->group;
        d->conv_leader = f->leader;
        if (!d->create_first) {
            bench_ready(d->b);
            break;
        }
        /* The conversation exists: now the other members. */
        for (int i = 1; i < d->cfg->members; i++)
            open_conn(d, i);
        break;
    case HERALD_FT_ACK: {
        uint64_t idx;
        uint32_t attempt;
        if (rid_send(f->rid, &idx, &attempt))
            bench_ack(d->b, idx, attempt, f->seq, f->dup);
        break;
    }
    case HERALD_FT_HISTORY_RESULT:
        if (f->rid == RID_HISTORY && d->verifying)
            on_history(d, f);
        break;
    case HERALD_FT_DELIVER: {
        const herald_msg *m = &f->msg;
        if (c->idx == 0 || m->kind != HERALD_MK_TEXT || m->body.len < BENCH_BODY_HDR)
            break;
        bench_deliver(d->b, c->idx, m->body.ptr, m->body.len);
        break;
    }
    case HERALD_FT_ERROR: {
        uint64_t idx = BENCH_NO_IDX;
        uint32_t attempt = 0;
        bool fatal;
        if (f->ref == RID_HISTORY && d->verifying) {
            fprintf(stderr, "herald-bench: HISTORY failed: %s: %.*s\n",
                    herald_err_name((int)f->code), (int)f->text.len, f->text.ptr);
            d->verifying = false;
            bench_verified(d->b, false);
            break;
        }
        rid_send(f->ref, &idx, &attempt);
        fatal = bench_error(d->b, idx, attempt);
        if (fatal || bench_errors(d->b) < 5)
            fprintf(stderr, "herald-bench: conn %d: ERROR %s: %.*s\n", c->idx,
                    herald_err_name((int)f->code), (int)f->text.len, f->text.ptr);
        if (fatal)
            exit(1);
        break;
    }
    default:
        break;
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    hconn *c = w->data;
    size_t off = 0;
    ssize_t n;
    (void)loop;
    (void)revents;

    /* 16 KiB a read: 10,000 members must not each hold a 64 KiB buffer. */
    if (herald_buf_reserve(&c->rx, 1 << 14) != 0)
        bench_die("out of memory");
    n = recv(c->fd, c->rx.data + c->rx.len, 1 << 14, 0);
    if (n == 0)
        bench_die("gateway closed a connection");
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        bench_die("recv failed");
    }
    c->rx.len += (size_t)n;
    if (c->d->cfg->ws) {
        ws_frames(c);
        return;
    }
    for (;;) {
        size_t flen = 0;
        herald_frame f;
        if (herald_frame_peek(c->rx.data + off, c->rx.len - off, 0, &flen) != 0)
            bench_die("bad frame from gateway");
        if (!flen)
            break;
        if (herald_frame_decode(c->rx.data + off + HERALD_FRAME_HEADER,
                                flen - HERALD_FRAME_HEADER, NULL, &f) != 0)
            bench_die("undecodable frame from gateway");
        on_frame(c, &f);
        herald_frame_release(&f);
        off += flen;
    }
    herald_buf_consume(&c->rx, off);
}

/* ws: the 101, then the server's frames (unmasked, one Herald frame per
 * binary message; the server does not fragment). */
static void ws_frames(hconn *c)
{
    size_t off = 0;
    if (c->upgrading) {
        const uint8_t *e = memmem(c->rx.data, c->rx.len, "\r\n\r\n", 4);
        if (!e)
            return;
        if (c->rx.len < 13 || memcmp(c->rx.data, "HTTP/1.1 101 ", 13) != 0)
            bench_die("the WebSocket handshake was refused");
        off = (size_t)(e - c->rx.data) + 4;
        c->upgrading = false;
        conn_send(c, &c->hello);
    }
    while (c->rx.len - off >= 2) {
        const uint8_t *p = c->rx.data + off;
        uint64_t len = p[1] & 0x7f;
        size_t hl = 2;
        herald_frame f;
        if (len == 126) {
            if (c->rx.len - off < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (len == 127) {
            if (c->rx.len - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            hl = 10;
        }
        if (c->rx.len - off - hl < len)
            break;
        if ((p[0] & 0x0f) == 0x8)
            bench_die("the gateway closed a WebSocket");
        if ((p[0] & 0x0f) == 0x2) {
            if (herald_frame_decode(p + hl, (size_t)len, NULL, &f) != 0)
                bench_die("undecodable frame from gateway");
            on_frame(c, &f);
            herald_frame_release(&f);
        }
        off += hl + (size_t)len;
    }
    herald_buf_consume(&c->rx, off);
}

static void open_conn(hdrv *d, int idx)
{
    hconn *c = &d->conns[idx];
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(d->cfg->ws ? d->ws_port : d->port)};
    char user[32], tok[TOKEN_TEXT_MAX];
    token_claims cl = {.expires = (uint64_t)time(NULL) + 86400, .admin = true};
    herald_frame f = {.type = HERALD_FT_HELLO, .version = HERALD_PROTOCOL_VERSION};
    int one = 1;

    c->d = d;
    c->idx = idx;
    d->opened++;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || inet_pton(AF_INET, d->host, &a.sin_addr) != 1)
        bench_die("socket / address");
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        bench_die("connect failed (is the gateway running?)");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl_nonblock(c->fd) != 0)
        bench_die("fcntl");
    snprintf(user, sizeof user, "bench-%d", idx);
    snprintf(cl.tenant, sizeof cl.tenant, "%.128s", d->tenant);
    snprintf(cl.user, sizeof cl.user, "%s", user);
    cl.admin = idx == 0; /* the sender creates the conversation */
    if (token_mint(d->secret, &cl, tok, sizeof tok) != 0)
        bench_die("token_mint");
    f.token = herald_str_z(tok);
    ev_io_init(&c->rio, on_read, c->fd, EV_READ);
    ev_io_init(&c->wio, on_write, c->fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    ev_io_start(d->loop, &c->rio);
    if (d->cfg->ws) {
        /* A fixed key is fine: the server checks its form, not its randomness. */
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET /ws HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         d->host, d->ws_port);
        memcpy(c->hello_tok, tok, sizeof tok);
        c->hello = f;
        c->hello.token = herald_str_z(c->hello_tok);
        c->upgrading = true;
        if (herald_buf_append(&c->tx, req, (size_t)n) != 0)
            bench_die("out of memory");
        conn_flush(c);
        return;
    }
    conn_send(c, &f);
}

/* Asks the gateway for STATUS with an admin token and records its "mode"
 * in d->target ("unknown" when the answer has none). Blocking: set-up only. */
static void query_target(hdrv *d)
{
    char addr[300], tok[TOKEN_TEXT_MAX], err[200] = "";
    token_claims cl = {.expires = (uint64_t)time(NULL) + 600, .admin = true};
    herald_client_opts o = {.timeout_ms = 5000, .errbuf = err, .errbuf_len = sizeof err};
    herald_client *hc = NULL;
    herald_buf js = {0};
    const char *p;
    int rc;

    snprintf(d->target, sizeof d->target, "unknown");
    snprintf(addr, sizeof addr, "%s:%u", d->host, d->port);
    snprintf(cl.tenant, sizeof cl.tenant, "%.128s", d->tenant);
    snprintf(cl.user, sizeof cl.user, "bench-status");
    if (token_mint(d->secret, &cl, tok, sizeof tok) != 0)
        bench_die("token_mint");
    rc = herald_client_connect(addr, tok, &o, &hc);
    if (rc == 0)
        rc = herald_client_status(hc, &js);
    if (rc != 0) {
        fprintf(stderr, "herald-bench: STATUS from %s failed: %s %s\n", addr, herald_err_name(rc),
                hc ? herald_client_last_error(hc) : err);
        goto close;
    }
    if (herald_buf_reserve(&js, 1) != 0)
        bench_die("out of memory");
    js.data[js.len] = '\0';
    /* {"mode":"cluster",...}: the writer emits no blanks; allow them anyway. */
    p = strstr((const char *)js.data, "\"mode\"");
    if (p) {
        p += 6;
        while (*p == ' ' || *p == ':')
            p++;
        if (*p == '"')
            snprintf(d->target, sizeof d->target, "%.*s", (int)strcspn(p + 1, "\""), p + 1);
    }
close:
    herald_buf_free(&js);
    herald_client_close(hc);
}

/* Reads HERALD_GATEWAY / HERALD_TENANT / HERALD_SECRET from a dev.env file. */
static void load_env(hdrv *d, const char *path)
{
    char line[256];
    FILE *f = fopen(path, "r");
    bool gw = false, ten = false, sec = false;
    if (!f)
        bench_die("cannot open --env file");
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "HERALD_GATEWAY=", 15) == 0) {
            char *colon = strrchr(line + 15, ':');
            if (!colon)
                bench_die("HERALD_GATEWAY needs HOST:PORT");
            *colon = '\0';
            snprintf(d->host, sizeof d->host, "%s", line + 15);
            d->port = (uint16_t)atoi(colon + 1);
            gw = true;
        } else if (strncmp(line, "HERALD_WS=ws://", 15) == 0) {
            char *colon = strrchr(line + 15, ':');
            if (colon)
                d->ws_port = (uint16_t)atoi(colon + 1);
        } else if (strncmp(line, "HERALD_TENANT=", 14) == 0) {
            snprintf(d->tenant, sizeof d->tenant, "%s", line + 14);
            ten = true;
        } else if (strncmp(line, "HERALD_SECRET=", 14) == 0) {
            sec = token_secret_from_hex(line + 14, d->secret) == 0;
        }
    }
    fclose(f);
    if (!gw || !ten || !sec)
        bench_die("--env file lacks HERALD_GATEWAY, HERALD_TENANT or HERALD_SECRET");
    if (d->cfg->ws && !d->ws_port)
        bench_die("--transport ws: the --env file has no HERALD_WS=ws://HOST:PORT/ws");
}

static int hdrv_setup(bench *b, const bench_config *cfg, void **out)
{
    hdrv *d = calloc(1, sizeof *d);

    if (!d)
        return -1;
    d->b = b;
    d->cfg = cfg;
    d->loop = cfg->loop;
    if (herald_token_init() != 0)
        bench_die("libsodium init");
    load_env(d, cfg->env);
    query_target(d);
    if (cfg->need_cluster && strcmp(d->target, "cluster") != 0) {
        fprintf(stderr, "herald-bench: the %s scenario needs a cluster, but %s:%u says mode \"%s\"\n",
                cfg->scenario, d->host, d->port, d->target);
        exit(1);
    }
    d->kind = cfg->kind ? cfg->kind
              : cfg->members <= 200 ? "group"
              : cfg->members <= 500 ? "customer_group"
                                    : "announce";
    d->create_first = strcmp(d->kind, "announce") == 0 && cfg->mode != BENCH_CONNS;
    d->conns = calloc((size_t)cfg->members, sizeof *d->conns);
    if (!d->conns) {
        free(d);
        return -1;
    }
    for (int i = 0; i < (d->create_first ? 1
                         : cfg->mode == BENCH_CONNS && cfg->window < (uint32_t)cfg->members
                             ? (int)cfg->window
                             : cfg->members);
         i++)
        open_conn(d, i);
    *out = d;
    return 0;
}

static const char *hdrv_durability(void *drv)
{
    hdrv *d = drv;
    if (strcmp(d->target, "cluster") == 0)
        return "fsync'd raft log, R3: ack after the commit on 2 of 3 nodes and apply";
    if (strcmp(d->target, "dev") == 0)
        return "fsync'd LMDB group commit, 1 node: ack after the fsync";
    return NULL;
}

static void hdrv_status(void *drv, char *buf, size_t size)
{
    hdrv *d = drv;
    snprintf(buf, size, "%d/%d welcomed, conv %s", d->welcomed, d->cfg->members,
             d->conv_ready ? "ready" : "not ready");
}

static void hdrv_report(void *drv, char *buf, size_t size)
{
    hdrv *d = drv;
    snprintf(buf, size,
             ",\"target\":\"%s\",\"transport\":\"%s\",\"kind\":\"%s\",\"conv\":\"%s\","
             "\"conv_group\":%u,\"conv_leader_at_create\":%u",
             d->target, d->cfg->ws ? "ws" : "tcp", d->kind, d->cfg->group, d->conv_group, d->conv_leader);
}

static void hdrv_close(void *drv)
{
    hdrv *d = drv;
    if (!d)
        return;
    for (int i = 0; i < d->opened; i++) {
        hconn *c = &d->conns[i];
        ev_io_stop(d->loop, &c->rio);
        ev_io_stop(d->loop, &c->wio);
        close(c->fd);
        herald_buf_free(&c->rx);
        herald_buf_free(&c->tx);
    }
    free(d->conns);
    free(d);
}

const bench_driver bench_drv_herald = {
    .name = "herald",
    .throughput = true,
    .conns = true,
    .durability = "fsync'd store (dev: LMDB group commit; cluster: raft log, R3)",
    .durability_of = hdrv_durability,
    .setup = hdrv_setup,
    .publish = hdrv_publish,
    .publish_once = hdrv_publish_once,
    .verify = hdrv_verify,
    .status = hdrv_status,
    .report = hdrv_report,
    .close = hdrv_close,
};
