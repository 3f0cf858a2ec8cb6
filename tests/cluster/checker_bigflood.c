/*
 * checker_bigflood.c — `herald-checker bigflood`: several connections
 * pipeline SENDs of about a frame cap each (1 MiB by default) as fast as
 * they can, then every answer is checked against what is stored.
 *
 *   herald-checker bigflood [--conns N (6)] [--secs S (8)] [--bytes B (0)]
 *                           [--window W (32)] [--grace S (30)] [--env FILE]
 *
 * Set-up (libherald): conversation bf-RUN-I for each connection I, with its
 * sender bf-sI and an offline member bf-peer; its shard group is noted.
 *
 * Flood: connection I is a raw client socket (HELLO with a token minted like
 * the CLI's, then SEND frames built with the public codec), up to W SENDs in
 * flight, for S seconds; every SEND has its own cmid and is never retried.
 * The body is B bytes (0: the largest the server takes, WELCOME's max_frame
 * less HERALD_ENVELOPE_RESERVE): a 64-byte marker "bigflood RUN cI kK"
 * then bytes that differ per connection; its hash (64-bit, over the whole
 * body) is kept. Each SEND ends up as one of
 *   acked      ACK (seq kept)
 *   refused    an ERROR that says nothing was applied: BUSY, RATE_LIMITED,
 *              TOO_BIG, STORAGE, NOT_LEADER, SHUTDOWN, a refusal of the
 *              request itself (INVAL, FORBIDDEN, …), or any text with "not
 *              applied"; also a frame the socket never took whole
 *   unknown    UNAVAILABLE / INTERNAL / TIMEOUT / NOMEM without "not
 *              applied" (outcome unknown), or no answer before the
 *              connection closed or the grace period ended
 * The pushes the gateway sends each sender (its own messages) are read and
 * dropped, so the connection never becomes a slow consumer by our doing.
 *
 * Check (libherald, HISTORY from seq 0 as a tenant admin who is no member,
 * so no pushes compete with the answers): every acked SEND is stored at its
 * acked seq with the same length and hash; no refused SEND is stored; no
 * marker twice; nothing foreign. Unknown ones may be either way: how many
 * were stored is reported. What was proposed before its answer may still
 * commit afterwards, and a replica may lag the ack: the read is repeated
 * every 2 s until two reads agree and nothing acked is missing (5 reads at
 * most), and the last one counts. Prints
 *   "bigflood: sent N, acked A (stored S), refused R (stored X), unknown U
 *    (stored K), lost L, bad B, duplicated D"
 * then one JSON line with every count (by error code too), the groups and
 * the acked bytes. Exit 0 when A > 0 and L = B = D = X = 0 (and nothing
 * foreign); 1 when the check failed; 2 usage or set-up.
 */
#include "checker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BF_CONNS_MAX 32u
#define BF_MARK_LEN 64u           /* bytes of the marker at the start of a body */
#define BF_IN_CAP (16u << 20)     /* largest frame accepted from the server */
#define BF_READ_CHUNK (256u << 10)
#define BF_HELLO_MS 15000u        /* connect + HELLO → WELCOME */
#define BF_VERIFY_TRIES 5         /* read-backs at most */
#define BF_SETTLE_MS 2000u        /* between two read-backs */

static const char usage[] =
    "usage: herald-checker bigflood [--conns N (6)] [--secs S (8)] [--bytes B (0 = max)]\n"
    "         [--window W (32)] [--grace S (30)] [--env FILE]\n";

enum { BF_SENT = 1, BF_ACKED, BF_REFUSED, BF_UNKNOWN, BF_UNSENT, BF_UNANSWERED };

typedef struct bf_rec {
    uint8_t state;     /* BF_* */
    uint8_t found;     /* times seen in the history (verification) */
    uint8_t answer;    /* index + 1 into bf_run.answers (0: none, or no room) */
    uint16_t code;     /* ERROR code (refused / unknown) */
    uint32_t len;      /* body bytes */
    uint64_t seq;      /* acked: the seq */
    uint64_t hash;     /* of the body */
} bf_rec;

typedef struct bf_run bf_run;

typedef struct bf_conn {
    bf_run *r;
    uint32_t idx;
    pthread_t tid;
    char user[32];
    char conv[CK_ID_MAX + 1];
    uint32_t group;
    ck_env env;
    uint8_t *block;          /* body bytes after the marker (this connection's) */
    bf_rec *rec;             /* indexed by k; rid = k + 1 */
    size_t n_rec, cap_rec;
    uint64_t delivers;       /* pushes read and dropped */
    uint64_t connects, closes;
    uint64_t dup_acks;       /* ACK with dup (never expected: cmids are unique) */
    char last_close[160];
} bf_conn;

#define BF_ANSWERS_MAX 32u

/* One distinct ERROR answer (code and text, digits folded to '#'). */
typedef struct bf_answer {
    uint16_t code;
    uint8_t state;           /* BF_REFUSED / BF_UNKNOWN */
    char text[160];
    uint64_t n, stored;
} bf_answer;

struct bf_run {
    char runid[48];
    uint32_t n_conns, window;
    uint64_t secs, grace_s, bytes;
    uint64_t start_ms, end_ms, hard_end_ms;
    uint32_t body_len;       /* fixed once the first WELCOME is in */
    pthread_mutex_t mu;      /* body_len and answers */
    bf_answer answers[BF_ANSWERS_MAX];
    uint32_t n_answers;
    bf_conn conns[BF_CONNS_MAX];
};

/* The index + 1 of answer (code, state, text) in r->answers, added when
 * new; 0 when there is no room. */
static uint8_t answer_of(bf_run *r, uint16_t code, uint8_t state, const char *text)
{
    char t[160];
    uint8_t idx = 0;
    size_t i;
    for (i = 0; text[i] && i + 1 < sizeof t; i++)
        t[i] = text[i] >= '0' && text[i] <= '9' ? '#' : text[i];
    t[i] = '\0';
    pthread_mutex_lock(&r->mu);
    for (uint32_t j = 0; j < r->n_answers && !idx; j++)
        if (r->answers[j].code == code && r->answers[j].state == state &&
            strcmp(r->answers[j].text, t) == 0)
            idx = (uint8_t)(j + 1);
    if (!idx && r->n_answers < BF_ANSWERS_MAX) {
        bf_answer *a = &r->answers[r->n_answers++];
        a->code = code;
        a->state = state;
        memcpy(a->text, t, sizeof t);
        idx = (uint8_t)r->n_answers;
    }
    if (idx)
        r->answers[idx - 1].n++;
    pthread_mutex_unlock(&r->mu);
    return idx;
}

/* 64-bit hash of a byte string (multiply-mix over 8-byte words). */
static uint64_t bf_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0x84222325cbf29ce4ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    return h;
}

static void bf_marker(const bf_run *r, uint32_t idx, uint64_t k, uint8_t out[BF_MARK_LEN])
{
    char m[BF_MARK_LEN + 1];
    int n = snprintf(m, sizeof m, "bigflood %s c%u k%" PRIu64 " ", r->runid, idx, k);
    memset(out, '.', BF_MARK_LEN);
    memcpy(out, m, n > 0 && n < (int)BF_MARK_LEN ? (size_t)n : BF_MARK_LEN);
}

/* ------------------------------------------------------------------------
 * One raw client connection. */

static int raw_dial(const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int fd = -1, one = 1;
    size_t hl;

    if (strncmp(addr, "tls://", 6) == 0 || !colon)
        return -1;
    hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        return -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

typedef struct bf_sock {
    int fd;
    herald_buf in;
    herald_buf out;
    size_t out_off;
    uint64_t out_k;          /* the SEND in out (valid while out has bytes) */
    bool out_is_send;
    uint32_t inflight;
    uint32_t maxf;           /* WELCOME's max_frame */
} bf_sock;

static void sock_close(bf_sock *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    herald_buf_free(&s->in);
    herald_buf_free(&s->out);
    s->out_off = 0;
    s->out_is_send = false;
    s->inflight = 0;
}

/* Reads whatever is there into s->in. 1 bytes came, 0 nothing (EAGAIN),
 * -1 closed or failed. */
static int sock_read(bf_sock *s)
{
    ssize_t n;
    if (herald_buf_reserve(&s->in, BF_READ_CHUNK) != 0)
        return -1;
    n = recv(s->fd, s->in.data + s->in.len, BF_READ_CHUNK, 0);
    if (n > 0) {
        s->in.len += (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return -1;
}

/* The next whole frame of s->in decoded into *f (released by the caller);
 * 1 one came, 0 need more, -1 garbage. *flen gets its size to consume. */
static int sock_frame(bf_sock *s, herald_frame *f, size_t *flen)
{
    herald_limits lim = {.max_frame = BF_IN_CAP};
    if (herald_frame_peek(s->in.data, s->in.len, BF_IN_CAP, flen) != 0)
        return -1;
    if (*flen == 0)
        return 0;
    if (herald_frame_decode(s->in.data + HERALD_FRAME_HEADER, *flen - HERALD_FRAME_HEADER, &lim,
                            f) != 0)
        return -1;
    return 1;
}

/* Connects and says HELLO; 0 with s->maxf, else -1 with why in err. */
static int sock_open(bf_conn *c, bf_sock *s, char *err, size_t errlen)
{
    char tok[TOKEN_TEXT_MAX];
    token_claims cl = {.admin = false};
    herald_frame hello = {.type = HERALD_FT_HELLO, .version = HERALD_PROTOCOL_VERSION};
    uint64_t deadline = ck_now_ms() + BF_HELLO_MS;
    int flags;

    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (ck_env_load(&c->env, err, errlen) != 0)
        return -1;
    snprintf(cl.tenant, sizeof cl.tenant, "%s", c->env.tenant);
    snprintf(cl.user, sizeof cl.user, "%s", c->user);
    cl.expires = (uint64_t)time(NULL) + CK_TOKEN_TTL_S;
    if (token_mint(c->env.secret, &cl, tok, sizeof tok) != 0) {
        snprintf(err, errlen, "cannot mint a token");
        return -1;
    }
    s->fd = raw_dial(c->env.gateway);
    if (s->fd < 0) {
        snprintf(err, errlen, "cannot connect to %.200s%s", c->env.gateway,
                 strncmp(c->env.gateway, "tls://", 6) == 0 ? " (bigflood speaks plain TCP)" : "");
        return -1;
    }
    hello.token = herald_str_z(tok);
    if (herald_frame_encode(&hello, &s->out) != 0 ||
        send(s->fd, s->out.data, s->out.len, MSG_NOSIGNAL) != (ssize_t)s->out.len) {
        snprintf(err, errlen, "HELLO not sent");
        sock_close(s);
        return -1;
    }
    s->out.len = 0;
    flags = fcntl(s->fd, F_GETFL);
    fcntl(s->fd, F_SETFL, flags | O_NONBLOCK);
    while (ck_now_ms() < deadline) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        herald_frame f;
        size_t flen;
        int rc;
        if (poll(&p, 1, 100) < 0 && errno != EINTR)
            break;
        if (sock_read(s) < 0) {
            snprintf(err, errlen, "closed before WELCOME");
            sock_close(s);
            return -1;
        }
        while ((rc = sock_frame(s, &f, &flen)) == 1) {
            uint32_t type = f.type, maxf = f.max_frame, code = f.code;
            char text[128];
            snprintf(text, sizeof text, "%.*s", (int)f.text.len, f.text.ptr ? f.text.ptr : "");
            herald_frame_release(&f);
            herald_buf_consume(&s->in, flen);
            if (type == HERALD_FT_WELCOME) {
                s->maxf = maxf ? maxf : HERALD_FRAME_MAX_DEFAULT;
                return 0;
            }
            if (type == HERALD_FT_ERROR) {
                snprintf(err, errlen, "HELLO: %s: %s", herald_err_name((int)code), text);
                sock_close(s);
                return -1;
            }
        }
        if (rc < 0)
            break;
    }
    snprintf(err, errlen, "no WELCOME within %u ms", BF_HELLO_MS);
    sock_close(s);
    return -1;
}

static bf_rec *rec_new(bf_conn *c)
{
    if (c->n_rec == c->cap_rec) {
        size_t cap = c->cap_rec ? c->cap_rec * 2 : 1024;
        bf_rec *v = realloc(c->rec, cap * sizeof *v);
        if (!v)
            return NULL;
        c->rec = v;
        c->cap_rec = cap;
    }
    memset(&c->rec[c->n_rec], 0, sizeof c->rec[0]);
    return &c->rec[c->n_rec++];
}

/* Codes that mean the request did not run (whatever the text says). */
static bool refusal_code(int code)
{
    switch (code) {
    case HERALD_EUNAVAILABLE:
    case HERALD_EINTERNAL:
    case HERALD_ETIMEOUT:
    case HERALD_ENOMEM:
        return false;
    default:
        return true;
    }
}

/* Handles one frame from the server. */
static void on_frame(bf_conn *c, bf_sock *s, const herald_frame *f)
{
    uint64_t id = f->type == HERALD_FT_ERROR ? f->ref : f->rid;
    bf_rec *rec = id >= 1 && id <= c->n_rec ? &c->rec[id - 1] : NULL;

    switch (f->type) {
    case HERALD_FT_DELIVER:
        c->delivers++;
        return;
    case HERALD_FT_ACK:
        if (!rec || rec->state != BF_SENT)
            return;
        rec->state = BF_ACKED;
        rec->seq = f->seq;
        c->dup_acks += f->dup;
        s->inflight--;
        return;
    case HERALD_FT_ERROR:
        if (!rec) {
            snprintf(c->last_close, sizeof c->last_close, "ERROR %s: %.*s",
                     herald_err_name((int)f->code), (int)f->text.len,
                     f->text.ptr ? f->text.ptr : "");
            return;
        }
        if (rec->state != BF_SENT)
            return;
        rec->code = (uint16_t)f->code;
        {
            char text[256];
            snprintf(text, sizeof text, "%.*s", (int)f->text.len, f->text.ptr ? f->text.ptr : "");
            rec->state = refusal_code((int)f->code) || strstr(text, "not applied") ? BF_REFUSED
                                                                                  : BF_UNKNOWN;
            rec->answer = answer_of(c->r, rec->code, rec->state, text);
        }
        s->inflight--;
        return;
    default:
        return;
    }
}

/* Everything this socket had in flight: no answer will come. */
static void sock_lost(bf_conn *c, bf_sock *s)
{
    for (size_t k = 0; k < c->n_rec; k++)
        if (c->rec[k].state == BF_SENT)
            c->rec[k].state = BF_UNANSWERED;
    /* A SEND the socket never took whole cannot have been read. */
    if (s->out_is_send && s->out_off < s->out.len && s->out_k < c->n_rec &&
        c->rec[s->out_k].state == BF_UNANSWERED)
        c->rec[s->out_k].state = BF_UNSENT;
    sock_close(s);
}

/* Builds SEND k into s->out (the body in scratch). */
static int queue_send(bf_conn *c, bf_sock *s, uint8_t *scratch)
{
    bf_run *r = c->r;
    uint64_t k = c->n_rec;
    char cmid[CK_ID_MAX + 1];
    herald_frame f = {.type = HERALD_FT_SEND};
    bf_rec *rec = rec_new(c);

    if (!rec)
        return -1;
    bf_marker(r, c->idx, k, scratch);
    memcpy(scratch + BF_MARK_LEN, c->block, r->body_len - BF_MARK_LEN);
    rec->len = r->body_len;
    rec->hash = bf_hash(scratch, r->body_len);
    snprintf(cmid, sizeof cmid, "%s.%u.%" PRIu64, r->runid, c->idx, k);
    f.rid = k + 1;
    f.conv = herald_str_z(c->conv);
    f.cmid = herald_str_z(cmid);
    f.body = (herald_str){.ptr = (const char *)scratch, .len = r->body_len};
    s->out.len = 0;
    s->out_off = 0;
    if (herald_frame_encode(&f, &s->out) != 0) {
        c->n_rec--;
        return -1;
    }
    rec->state = BF_SENT;
    s->out_k = k;
    s->out_is_send = true;
    s->inflight++;
    return 0;
}

static void *conn_main(void *arg)
{
    bf_conn *c = arg;
    bf_run *r = c->r;
    bf_sock s = {.fd = -1};
    uint8_t *scratch = NULL;
    uint64_t backoff = 0;
    char err[256] = "";

    for (;;) {
        uint64_t now = ck_now_ms();
        bool sending = now < r->end_ms;
        struct pollfd p;
        int prc;

        if (s.fd < 0) {
            if (!sending)
                break;
            c->connects++;
            if (sock_open(c, &s, err, sizeof err) != 0) {
                fprintf(stderr, "bigflood: conn %u: %s (retrying)\n", c->idx, err);
                ck_sleep_ms(ck_backoff_next(&backoff));
                continue;
            }
            backoff = 0;
            pthread_mutex_lock(&r->mu);
            if (!r->body_len) {
                uint64_t most = s.maxf > HERALD_ENVELOPE_RESERVE ? s.maxf - HERALD_ENVELOPE_RESERVE
                                                                 : 0;
                r->body_len = (uint32_t)(r->bytes && r->bytes < most ? r->bytes : most);
                if (r->body_len < BF_MARK_LEN)
                    r->body_len = BF_MARK_LEN;
            }
            pthread_mutex_unlock(&r->mu);
            if (!scratch && !(scratch = malloc(r->body_len)))
                break;
            if (!c->block) {
                uint64_t x = 0x9e3779b97f4a7c15ull * (c->idx + 1);
                c->block = malloc(r->body_len);
                if (!c->block)
                    break;
                for (uint32_t i = 0; i < r->body_len; i++) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    c->block[i] = (uint8_t)x;
                }
            }
        }
        if (!sending && s.inflight == 0 && s.out_off >= s.out.len)
            break;
        if (now >= r->hard_end_ms) {
            sock_lost(c, &s);
            break;
        }
        if (s.out_off >= s.out.len && sending && s.inflight < r->window &&
            queue_send(c, &s, scratch) != 0)
            break;
        p = (struct pollfd){.fd = s.fd, .events = POLLIN | (s.out_off < s.out.len ? POLLOUT : 0)};
        prc = poll(&p, 1, 50);
        if (prc < 0 && errno != EINTR)
            break;
        if (p.revents & POLLOUT) {
            ssize_t n = send(s.fd, s.out.data + s.out_off, s.out.len - s.out_off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                s.out_off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(c->last_close, sizeof c->last_close, "send: %s", strerror(errno));
                c->closes++;
                sock_lost(c, &s);
                continue;
            }
            if (s.out_off >= s.out.len)
                s.out_is_send = false;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            int rd = sock_read(&s), fr;
            herald_frame f;
            size_t flen;
            while ((fr = sock_frame(&s, &f, &flen)) == 1) {
                on_frame(c, &s, &f);
                herald_frame_release(&f);
                herald_buf_consume(&s.in, flen);
            }
            if (fr < 0 || rd < 0) {
                if (!c->last_close[0] || rd < 0)
                    snprintf(c->last_close + strlen(c->last_close),
                             sizeof c->last_close - strlen(c->last_close), "%s%s",
                             c->last_close[0] ? "; " : "",
                             fr < 0 ? "garbage from the server" : "connection closed");
                c->closes++;
                sock_lost(c, &s);
            }
        }
    }
    if (s.fd >= 0)
        sock_lost(c, &s);
    free(scratch);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Set-up and verification (libherald). */

static int create_conv(bf_run *r, bf_conn *c, uint64_t deadline)
{
    herald_client *h = NULL;
    const char *members[2] = {c->user, "bf-peer"};
    herald_conv_info info;
    int rc;

    if (ck_connect_retry(&c->env, c->user, deadline, "bigflood setup", &h) != 0)
        return 2;
    rc = herald_client_conv_create(h, "group", c->conv, members, 2, &info);
    if (rc == 0) {
        c->group = info.group;
        herald_conv_info_free(&info);
    } else {
        fprintf(stderr, "bigflood: create %s: %s: %s\n", c->conv, herald_err_name(rc),
                herald_client_last_error(h));
    }
    herald_client_close(h);
    (void)r;
    return rc ? 2 : 0;
}

typedef struct bf_tally {
    uint64_t stored_acked, stored_refused, stored_unknown, lost, bad, dups, foreign;
} bf_tally;

/* Reads connection c's conversation back and marks what it finds. 0, or -1
 * when the reads failed. */
static int verify_conv(bf_run *r, bf_conn *c, bf_tally *t, int report)
{
    herald_client *h = NULL;
    ck_env env = c->env;
    uint64_t after = 0;
    char prefix[64];
    int n_prefix = snprintf(prefix, sizeof prefix, "bigflood %s c%u k", r->runid, c->idx);

    for (size_t k = 0; k < c->n_rec; k++)
        c->rec[k].found = 0;
    /* As a tenant admin who is no member: no pushes compete with the reads. */
    env.timeout_ms = 30000;
    env.admin = true;
    if (ck_connect_retry(&env, "bf-admin", ck_now_ms() + 60000, "bigflood verify", &h) != 0)
        return -1;
    for (;;) {
        herald_msglist l = {0};
        int rc = herald_client_history(h, c->conv, after, 0, &l);
        if (rc) {
            fprintf(stderr, "bigflood: history %s after %" PRIu64 ": %s: %s\n", c->conv, after,
                    herald_err_name(rc), herald_client_last_error(h));
            herald_client_close(h);
            return -1;
        }
        for (uint32_t i = 0; i < l.n; i++) {
            const herald_msg *m = &l.v[i];
            char mk[BF_MARK_LEN + 1];
            unsigned long long k;
            bf_rec *rec;
            after = m->seq;
            if (m->kind == HERALD_MK_SYSTEM)
                continue;
            snprintf(mk, sizeof mk, "%.*s", (int)(m->body.len < BF_MARK_LEN ? m->body.len : BF_MARK_LEN),
                     m->body.ptr ? m->body.ptr : "");
            if (strncmp(mk, prefix, (size_t)n_prefix) != 0 ||
                sscanf(mk + n_prefix, "%llu", &k) != 1 || k >= c->n_rec) {
                t->foreign++;
                if (report)
                    fprintf(stderr, "bigflood: %s seq %" PRIu64 ": not one of ours (%.40s)\n",
                            c->conv, m->seq, mk);
                continue;
            }
            rec = &c->rec[k];
            if (!rec->found && rec->answer)
                r->answers[rec->answer - 1].stored++;
            if (rec->found++) {
                t->dups++;
                if (report)
                    fprintf(stderr, "bigflood: %s: k%llu stored twice (again at seq %" PRIu64 ")\n",
                            c->conv, k, m->seq);
                continue;
            }
            switch (rec->state) {
            case BF_ACKED:
                t->stored_acked++;
                if (m->seq != rec->seq || m->body.len != rec->len ||
                    bf_hash((const uint8_t *)m->body.ptr, m->body.len) != rec->hash) {
                    t->bad++;
                    if (report)
                        fprintf(stderr,
                                "bigflood: %s: k%llu acked at seq %" PRIu64 " (%u bytes), "
                                "stored at seq %" PRIu64 " (%u bytes%s)\n",
                                c->conv, k, rec->seq, rec->len, m->seq, m->body.len,
                                m->body.len == rec->len ? ", other bytes" : "");
                }
                break;
            case BF_REFUSED:
            case BF_UNSENT:
                t->stored_refused++;
                if (report)
                    fprintf(stderr, "bigflood: %s: k%llu was refused (%s) but is stored at seq %"
                                    PRIu64 "\n",
                            c->conv, k, rec->state == BF_UNSENT ? "never sent whole"
                                                                : herald_err_name(rec->code),
                            m->seq);
                break;
            default:
                t->stored_unknown++;
                break;
            }
        }
        bool more = l.more && l.n > 0;
        herald_msglist_free(&l);
        if (!more)
            break;
    }
    herald_client_close(h);
    for (size_t k = 0; k < c->n_rec; k++)
        if (c->rec[k].state == BF_ACKED && !c->rec[k].found) {
            t->lost++;
            if (report)
                fprintf(stderr, "bigflood: %s: k%zu acked at seq %" PRIu64 " is not stored\n",
                        c->conv, k, c->rec[k].seq);
        }
    return 0;
}

int ck_bigflood_main(int argc, char **argv)
{
    const char *o_conns = "6", *o_secs = "8", *o_bytes = "0", *o_window = "32", *o_grace = "30",
               *o_env = NULL;
    ck_opt opts[] = {{"--conns", &o_conns},   {"--secs", &o_secs},   {"--bytes", &o_bytes},
                     {"--window", &o_window}, {"--grace", &o_grace}, {"--env", &o_env},
                     {NULL, NULL}};
    uint64_t conns, window;
    bf_run *r = calloc(1, sizeof *r);
    bf_tally t = {0};
    uint32_t started = 0;
    uint64_t sent = 0, acked = 0, refused = 0, unknown = 0, unanswered = 0, unsent = 0;
    uint64_t by_code[HERALD_E_COUNT_ + 1] = {0}, delivers = 0, closes = 0, dup_acks = 0;
    char err[256];
    int rc = 2, tries = 0;
    ck_env env0 = {.timeout_ms = 20000};
    char runid[sizeof r->runid];

    if (!r)
        return 2;
    pthread_mutex_init(&r->mu, NULL);
    if (ck_parse_opts(argc, argv, opts, usage) ||
        ck_parse_num("--conns", o_conns, 1, BF_CONNS_MAX, &conns) ||
        ck_parse_num("--secs", o_secs, 1, 3600, &r->secs) ||
        ck_parse_num("--bytes", o_bytes, 0, 1u << 30, &r->bytes) ||
        ck_parse_num("--window", o_window, 1, 100000, &window) ||
        ck_parse_num("--grace", o_grace, 1, 3600, &r->grace_s))
        goto out;
    r->n_conns = (uint32_t)conns;
    r->window = (uint32_t)window;
    snprintf(r->runid, sizeof r->runid, "%lx%lx", (unsigned long)time(NULL) & 0xffffff,
             (unsigned long)getpid() & 0xffff);
    snprintf(env0.file, sizeof env0.file, "%s", o_env ? o_env : "");
    memcpy(runid, r->runid, sizeof runid);
    for (uint32_t i = 0; i < r->n_conns; i++) {
        bf_conn *c = &r->conns[i];
        c->r = r;
        c->idx = i;
        c->env = env0;
        snprintf(c->user, sizeof c->user, "bf-s%u", i);
        snprintf(c->conv, sizeof c->conv, "bf-%s-%u", runid, i);
        if (ck_env_load(&c->env, err, sizeof err) != 0) {
            fprintf(stderr, "bigflood: %s\n", err);
            goto out;
        }
        if (create_conv(r, c, ck_now_ms() + 60000) != 0)
            goto out;
    }
    fprintf(stderr, "bigflood: run %s, %u connections, %u in flight each, %" PRIu64 " s\n",
            r->runid, r->n_conns, r->window, r->secs);
    printf("flood start\n");
    fflush(stdout);
    r->start_ms = ck_now_ms();
    r->end_ms = r->start_ms + r->secs * 1000u;
    r->hard_end_ms = r->end_ms + r->grace_s * 1000u;
    for (uint32_t i = 0; i < r->n_conns; i++, started++)
        if (pthread_create(&r->conns[i].tid, NULL, conn_main, &r->conns[i]) != 0)
            break;
    for (uint32_t i = 0; i < started; i++)
        pthread_join(r->conns[i].tid, NULL);
    printf("flood end after %.1f s\n", (double)(ck_now_ms() - r->start_ms) / 1000.0);
    fflush(stdout);
    if (started < r->n_conns) {
        fprintf(stderr, "bigflood: could not start every connection\n");
        goto out;
    }

    for (uint32_t i = 0; i < r->n_conns; i++) {
        bf_conn *c = &r->conns[i];
        uint64_t ca = 0, cr = 0, cu = 0;
        for (size_t k = 0; k < c->n_rec; k++) {
            bf_rec *x = &c->rec[k];
            sent++;
            switch (x->state) {
            case BF_ACKED: acked++; ca++; break;
            case BF_REFUSED: refused++; cr++; by_code[x->code < HERALD_E_COUNT_ ? x->code : HERALD_E_COUNT_]++; break;
            case BF_UNSENT: refused++; cr++; unsent++; break;
            case BF_UNKNOWN: unknown++; cu++; by_code[x->code < HERALD_E_COUNT_ ? x->code : HERALD_E_COUNT_]++; break;
            default: unknown++; cu++; unanswered++; break;
            }
        }
        delivers += c->delivers;
        closes += c->closes;
        dup_acks += c->dup_acks;
        fprintf(stderr,
                "bigflood: conn %u %s (group %u): sent %zu, acked %" PRIu64 ", refused %" PRIu64
                ", unknown %" PRIu64 ", %" PRIu64 " pushes read, %" PRIu64 " connects%s%s\n",
                i, c->conv, c->group, c->n_rec, ca, cr, cu, c->delivers, c->connects,
                c->last_close[0] ? ", last close: " : "", c->last_close);
    }

    /* Read everything back until two reads agree: what was proposed before
     * an answer may still commit after it (and a replica may lag the ack). */
    {
        uint64_t prev = UINT64_MAX;
        for (tries = 1; tries <= BF_VERIFY_TRIES; tries++) {
            int failed = 0;
            uint64_t total;
            memset(&t, 0, sizeof t);
            for (uint32_t j = 0; j < r->n_answers; j++)
                r->answers[j].stored = 0;
            for (uint32_t i = 0; i < r->n_conns && !failed; i++)
                failed = verify_conv(r, &r->conns[i], &t, 0) != 0;
            if (failed) {
                fprintf(stderr, "bigflood: the read-back failed\n");
                goto out;
            }
            total = t.stored_acked + t.stored_refused + t.stored_unknown + t.foreign + t.dups;
            fprintf(stderr, "bigflood: read-back %d: %" PRIu64 " of ours stored, %" PRIu64
                            " acked missing\n", tries, total, t.lost);
            if ((total == prev && t.lost == 0) || tries == BF_VERIFY_TRIES)
                break;
            prev = total;
            ck_sleep_ms(BF_SETTLE_MS);
        }
    }
    if (t.lost || t.bad || t.dups || t.stored_refused || t.foreign) {
        /* Once more, printing each finding. */
        bf_tally t2 = {0};
        for (uint32_t j = 0; j < r->n_answers; j++)
            r->answers[j].stored = 0;
        for (uint32_t i = 0; i < r->n_conns; i++)
            verify_conv(r, &r->conns[i], &t2, 1);
    }
    for (uint32_t j = 0; j < r->n_answers; j++)
        fprintf(stderr, "bigflood: answer %s (%s) x%" PRIu64 ", %" PRIu64 " of them stored: %s\n",
                herald_err_name(r->answers[j].code),
                r->answers[j].state == BF_REFUSED ? "refused" : "outcome unknown",
                r->answers[j].n, r->answers[j].stored, r->answers[j].text);

    printf("bigflood: sent %" PRIu64 ", acked %" PRIu64 " (stored %" PRIu64 "), refused %" PRIu64
           " (stored %" PRIu64 "), unknown %" PRIu64 " (stored %" PRIu64 "), lost %" PRIu64
           ", bad %" PRIu64 ", duplicated %" PRIu64 "\n",
           sent, acked, t.stored_acked, refused, t.stored_refused, unknown, t.stored_unknown,
           t.lost, t.bad, t.dups);
    {
        uint64_t acked_bytes = acked * r->body_len;
        uint32_t groups[BF_CONNS_MAX], ng = 0;
        printf("{\"run\":\"%s\",\"conns\":%u,\"window\":%u,\"secs\":%" PRIu64
               ",\"body_bytes\":%u,\"sent\":%" PRIu64 ",\"acked\":%" PRIu64
               ",\"acked_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64 ",\"stored_acked\":%" PRIu64 ",\"refused\":%" PRIu64
               ",\"stored_refused\":%" PRIu64 ",\"unknown\":%" PRIu64 ",\"stored_unknown\":%" PRIu64
               ",\"unanswered\":%" PRIu64 ",\"unsent\":%" PRIu64 ",\"lost\":%" PRIu64
               ",\"bad\":%" PRIu64 ",\"duplicated\":%" PRIu64 ",\"foreign\":%" PRIu64
               ",\"dup_acks\":%" PRIu64 ",\"pushes\":%" PRIu64 ",\"closes\":%" PRIu64
               ",\"verify_tries\":%d,\"codes\":{",
               r->runid, r->n_conns, r->window, r->secs, r->body_len, sent, acked, acked_bytes,
               (t.stored_acked + t.stored_refused + t.stored_unknown) * r->body_len,
               t.stored_acked, refused, t.stored_refused, unknown, t.stored_unknown, unanswered,
               unsent, t.lost, t.bad, t.dups, t.foreign, dup_acks, delivers, closes,
               tries > BF_VERIFY_TRIES ? BF_VERIFY_TRIES : tries);
        for (int code = 0, first = 1; code <= HERALD_E_COUNT_; code++)
            if (by_code[code]) {
                printf("%s\"%s\":%" PRIu64, first ? "" : ",",
                       code < HERALD_E_COUNT_ ? herald_err_name(code) : "OTHER", by_code[code]);
                first = 0;
            }
        printf("},\"answers\":[");
        for (uint32_t j = 0; j < r->n_answers; j++) {
            const bf_answer *a = &r->answers[j];
            printf("%s{\"code\":\"%s\",\"as\":\"%s\",\"n\":%" PRIu64 ",\"stored\":%" PRIu64
                   ",\"text\":\"",
                   j ? "," : "", herald_err_name(a->code),
                   a->state == BF_REFUSED ? "refused" : "unknown", a->n, a->stored);
            for (const char *q = a->text; *q; q++)
                if (*q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
                    putchar(*q);
            printf("\"}");
        }
        printf("],\"groups\":[");
        for (uint32_t i = 0; i < r->n_conns; i++) {
            bool seen = false;
            for (uint32_t j = 0; j < ng; j++)
                seen |= groups[j] == r->conns[i].group;
            if (!seen)
                groups[ng++] = r->conns[i].group;
        }
        for (uint32_t j = 0; j < ng; j++)
            printf("%s%u", j ? "," : "", groups[j]);
        printf("]}\n");
    }
    rc = acked > 0 && t.stored_acked == acked && !t.lost && !t.bad && !t.dups &&
                 !t.stored_refused && !t.foreign
             ? 0
             : 1;
out:
    for (uint32_t i = 0; i < BF_CONNS_MAX; i++) {
        free(r->conns[i].rec);
        free(r->conns[i].block);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
    return rc;
}
