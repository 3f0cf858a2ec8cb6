/* client.c — libherald; see include/herald/client.h. */
#include <herald/client.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "synckey.h"

#define CLIENT_TIMEOUT_DEFAULT 10000
#define CLIENT_FRAME_MAX_DEFAULT (16u << 20)
#define CLIENT_READ_CHUNK 65536u

/* A queued event and the key position it carries. */
typedef struct qevent {
    struct qevent *next; /* FIFO link */
    herald_event *ev;    /* owned */
} qevent;

struct herald_client {
    int fd;                 /* socket; -1 once broken */
    int timeout_ms;         /* per-request deadline */
    uint32_t max_frame;     /* largest frame accepted */
    herald_buf rx;          /* received bytes */
    size_t hold;            /* bytes of the frame last returned (consumed next) */
    uint64_t next_rid;      /* request ids */
    char user[130];         /* from WELCOME */
    char tenant[130];       /* from WELCOME */
    bool admin;             /* from WELCOME */
    char errtext[256];      /* server's last error text */
    synckey recv;           /* position of everything received (dedup, gaps) */
    synckey out;            /* position of everything handed out (saved) */
    qevent *qhead, *qtail;  /* events not yet handed out */
    bool need_sync;         /* a gap was seen */
    uint32_t hb_ms;         /* send something at least this often (WELCOME) */
    uint64_t last_tx;       /* when we last sent a frame (monotonic ms) */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- events ----------------------------------------------------------------- */

void herald_event_free(herald_event *ev) { free(ev); }

/* Copies n bytes to *at (NUL-terminated), advancing *at. */
static const char *put_bytes(char **at, const char *p, size_t n)
{
    char *d = *at;
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    *at += n + 1;
    return d;
}

/* One allocation holding the event and its strings. */
/* Bytes needed to copy a message's strings (each NUL-terminated). */
static size_t msg_strings_len(const herald_msg *m)
{
    return (size_t)m->conv.len + m->from.len + m->body.len + m->id_corp.len + m->id_title.len + 5;
}

/* Copies m's strings to *at; dst gets m with pointers into the copy. */
static void copy_msg_strings(herald_msg *dst, const herald_msg *m, char **at)
{
    *dst = *m;
    dst->conv.ptr = put_bytes(at, m->conv.ptr, m->conv.len);
    dst->from.ptr = put_bytes(at, m->from.ptr, m->from.len);
    dst->body.ptr = put_bytes(at, m->body.ptr, m->body.len);
    dst->id_corp.ptr = put_bytes(at, m->id_corp.ptr, m->id_corp.len);
    dst->id_title.ptr = put_bytes(at, m->id_title.ptr, m->id_title.len);
}

static herald_event *event_msg(const herald_msg *m)
{
    herald_event *ev = calloc(1, sizeof(herald_event) + msg_strings_len(m));
    char *at;
    if (!ev)
        return NULL;
    at = (char *)(ev + 1);
    ev->type = HERALD_EV_MSG;
    copy_msg_strings(&ev->msg, m, &at);
    return ev;
}

static herald_event *event_receipt(const herald_frame *f)
{
    herald_event *ev = calloc(1, sizeof *ev + f->conv.len + f->user.len + 2);
    char *at;
    if (!ev)
        return NULL;
    at = (char *)(ev + 1);
    ev->type = HERALD_EV_RECEIPT;
    ev->conv = put_bytes(&at, f->conv.ptr, f->conv.len);
    ev->user = put_bytes(&at, f->user.ptr, f->user.len);
    ev->seq = f->seq;
    return ev;
}

static int enqueue(herald_client *c, herald_event *ev)
{
    qevent *q;
    if (!ev)
        return HERALD_ENOMEM;
    q = calloc(1, sizeof *q);
    if (!q) {
        free(ev);
        return HERALD_ENOMEM;
    }
    q->ev = ev;
    if (c->qtail)
        c->qtail->next = q;
    else
        c->qhead = q;
    c->qtail = q;
    return 0;
}

/* Position of a message in a key: its group's useq, or its conversation's seq. */
static uint64_t *key_slot(synckey *k, const herald_msg *m)
{
    return m->useq ? sk_group(k, m->group) : sk_conv_at(k, m->conv.ptr, m->conv.len);
}

/* Filters a message against the receive key: queue it (next in line), drop
 * it (seen), or note a gap. in_sync: from SYNC_RESULT (no gap possible:
 * the server answered from our key, so anything newer is accepted). */
static int accept_msg(herald_client *c, const herald_msg *m, bool in_sync)
{
    uint64_t pos = m->useq ? m->useq : m->seq;
    uint64_t *slot = key_slot(&c->recv, m);
    if (!slot)
        return HERALD_ENOMEM;
    if (pos <= *slot)
        return 0; /* duplicate */
    if (pos != *slot + 1 && !in_sync) {
        c->need_sync = true; /* a gap: SYNC fetches it with what is missing */
        return 0;
    }
    *slot = pos;
    return enqueue(c, event_msg(m));
}

static int on_push(herald_client *c, const herald_frame *f)
{
    herald_event *ev;
    if (f->type == HERALD_FT_DELIVER)
        return accept_msg(c, &f->msg, false);
    ev = event_receipt(f);
    if (ev && f->type == HERALD_FT_REMIND) {
        ev->type = herald_str_eq(f->op, "escalate") ? HERALD_EV_ESCALATE : HERALD_EV_REMIND;
        ev->count = f->count;
    }
    return enqueue(c, ev);
}

/* Frames pushed by the server without a request. */
static bool is_push(uint32_t type)
{
    return type == HERALD_FT_DELIVER || type == HERALD_FT_RECEIPT || type == HERALD_FT_REMIND;
}

/* ---- socket I/O -------------------------------------------------------------- */

static int broken(herald_client *c, int rc)
{
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
            int64_t left = (int64_t)(deadline - now_ms());
            if (left <= 0)
                return broken(c, HERALD_ETIMEOUT);
            poll(&pf, 1, (int)left);
            continue;
        }
        return broken(c, errno == EPIPE || errno == ECONNRESET ? HERALD_ECLOSED : HERALD_EIO);
    }
    return 0;
}

static int send_frame(herald_client *c, const herald_frame *f, uint64_t deadline)
{
    herald_buf b = {0};
    int rc = herald_frame_encode(f, &b);
    if (rc == 0)
        rc = send_all(c, b.data, b.len, deadline);
    herald_buf_free(&b);
    if (rc == 0)
        c->last_tx = now_ms();
    return rc;
}

/* Receives one frame into *f (valid until the next receive). deadline 0 =
 * only what is buffered or readable now. */
static int recv_frame(herald_client *c, uint64_t deadline, bool block, herald_frame *f)
{
    if (c->hold) {
        herald_buf_consume(&c->rx, c->hold);
        c->hold = 0;
    }
    for (;;) {
        size_t flen = 0;
        ssize_t n;
        int rc;
        if (c->fd < 0)
            return HERALD_ECLOSED;
        rc = herald_frame_peek(c->rx.data, c->rx.len, c->max_frame, &flen);
        if (rc)
            return broken(c, rc);
        if (flen) {
            herald_limits lim = {.max_frame = c->max_frame};
            rc = herald_frame_decode(c->rx.data + HERALD_FRAME_HEADER,
                                     flen - HERALD_FRAME_HEADER, &lim, f);
            if (rc)
                return broken(c, rc);
            c->hold = flen;
            return 0;
        }
        {
            struct pollfd pf = {.fd = c->fd, .events = POLLIN};
            int64_t left = block ? (int64_t)(deadline - now_ms()) : 0;
            if (left < 0)
                left = 0;
            rc = poll(&pf, 1, (int)left);
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc == 0)
                return HERALD_ETIMEOUT;
        }
        if (herald_buf_reserve(&c->rx, CLIENT_READ_CHUNK) != 0)
            return broken(c, HERALD_ENOMEM);
        n = recv(c->fd, c->rx.data + c->rx.len, CLIENT_READ_CHUNK, 0);
        if (n == 0)
            return broken(c, HERALD_ECLOSED);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return broken(c, HERALD_EIO);
        }
        c->rx.len += (size_t)n;
    }
}

static void keep_error(herald_client *c, const herald_frame *f)
{
    snprintf(c->errtext, sizeof c->errtext, "%.*s", (int)f->text.len,
             f->text.ptr ? f->text.ptr : "");
}

/* Sends req (rid assigned here) and waits for a frame of type `want` with the
 * same rid; pushes arriving meanwhile are queued. On 0 the caller owns *resp
 * (release it; its strings are valid until the next call on c). */
static int request(herald_client *c, herald_frame *req, uint32_t want, herald_frame *resp)
{
    uint64_t deadline = now_ms() + (uint64_t)c->timeout_ms;
    int rc;

    c->errtext[0] = '\0';
    req->rid = ++c->next_rid;
    rc = send_frame(c, req, deadline);
    if (rc)
        return rc;
    for (;;) {
        rc = recv_frame(c, deadline, true, resp);
        if (rc)
            return rc == HERALD_ETIMEOUT ? broken(c, rc) : rc;
        if (is_push(resp->type)) {
            rc = on_push(c, resp);
            herald_frame_release(resp);
            if (rc)
                return rc;
            continue;
        }
        if (resp->type == HERALD_FT_ERROR) {
            uint64_t ref = resp->ref;
            keep_error(c, resp);
            rc = resp->code ? (int)resp->code : HERALD_EINTERNAL;
            herald_frame_release(resp);
            if (ref == req->rid)
                return rc;
            if (ref == 0)
                return broken(c, rc); /* connection-level: the server closes */
            continue;                 /* an older request's error */
        }
        if (resp->rid == req->rid && resp->type == want)
            return 0;
        herald_frame_release(resp); /* a stale answer */
    }
}

/* ---- connect / close ----------------------------------------------------------- */

static int dial(const char *addr, int timeout_ms, int *fd_out)
{
    char host[256];
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL, *ai;
    int rc = HERALD_EIO, one = 1;
    size_t hl;

    if (!colon || colon == addr || (hl = (size_t)(colon - addr)) >= sizeof host)
        return HERALD_EINVAL;
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        memcpy(host, addr + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return HERALD_EINVAL;
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd pf;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int err = 0;
        socklen_t el = sizeof err;
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(fd);
            continue;
        }
        pf = (struct pollfd){.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            rc = poll(&pf, 1, 0) == 0 ? HERALD_ETIMEOUT : HERALD_EIO;
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        *fd_out = fd;
        rc = 0;
        break;
    }
    freeaddrinfo(res);
    return rc;
}

static void copy_str(char *dst, size_t cap, herald_str s)
{
    snprintf(dst, cap, "%.*s", (int)s.len, s.ptr ? s.ptr : "");
}

int herald_client_connect(const char *addr, const char *token, const herald_client_opts *opts,
                          herald_client **out)
{
    herald_client *c = calloc(1, sizeof *c);
    herald_frame hello = {.type = HERALD_FT_HELLO, .version = HERALD_PROTOCOL_VERSION}, w;
    int rc;

    if (!c)
        return HERALD_ENOMEM;
    c->fd = -1;
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : CLIENT_TIMEOUT_DEFAULT;
    c->max_frame = opts && opts->max_frame ? opts->max_frame : CLIENT_FRAME_MAX_DEFAULT;
    if (!token || !*token) {
        rc = HERALD_EUNAUTHORIZED;
        goto fail;
    }
    if (opts && opts->sync_key) {
        rc = sk_load(&c->recv, opts->sync_key, opts->sync_key_len);
        if (rc)
            goto fail;
    }
    rc = dial(addr, c->timeout_ms, &c->fd);
    if (rc)
        goto fail;
    hello.token = herald_str_z(token);
    rc = request(c, &hello, HERALD_FT_WELCOME, &w);
    if (rc)
        goto fail;
    copy_str(c->user, sizeof c->user, w.user);
    copy_str(c->tenant, sizeof c->tenant, w.tenant);
    c->admin = w.admin;
    c->hb_ms = w.hb_ms ? w.hb_ms : 30000;
    if (!(opts && opts->sync_key))
        rc = sk_from_frame(&c->recv, &w);
    herald_frame_release(&w);
    if (rc == 0)
        rc = sk_copy(&c->out, &c->recv);
    if (rc == 0 && opts && opts->sync_key)
        rc = herald_client_sync(c);
    if (rc)
        goto fail;
    *out = c;
    return 0;
fail:
    herald_client_close(c);
    return rc;
}

void herald_client_close(herald_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    while (c->qhead) {
        qevent *n = c->qhead->next;
        free(c->qhead->ev);
        free(c->qhead);
        c->qhead = n;
    }
    herald_buf_free(&c->rx);
    sk_free(&c->recv);
    sk_free(&c->out);
    free(c);
}

const char *herald_client_user(const herald_client *c) { return c->user; }
const char *herald_client_tenant(const herald_client *c) { return c->tenant; }
bool herald_client_is_admin(const herald_client *c) { return c->admin; }
const char *herald_client_last_error(const herald_client *c) { return c->errtext; }
int herald_client_fd(const herald_client *c) { return c->fd; }

/* ---- requests ---------------------------------------------------------------- */

int herald_client_send(herald_client *c, const char *conv, const char *cmid, const void *body,
                       size_t len, uint32_t flags, herald_ack *ack)
{
    herald_frame f = {.type = HERALD_FT_SEND, .conv = herald_str_z(conv),
                      .body = {.ptr = body, .len = (uint32_t)len}, .flags = flags}, r;
    char gen[33];
    int rc;

    if (len > UINT32_MAX)
        return HERALD_ETOO_BIG;
    if (!cmid) {
        uint8_t rnd[16];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(gen, sizeof gen, rnd, sizeof rnd);
        cmid = gen;
    }
    f.cmid = herald_str_z(cmid);
    rc = request(c, &f, HERALD_FT_ACK, &r);
    if (rc)
        return rc;
    if (ack)
        *ack = (herald_ack){.seq = r.seq, .ts = r.ts, .dup = r.dup};
    herald_frame_release(&r);
    return 0;
}

void herald_msglist_free(herald_msglist *l)
{
    if (!l)
        return;
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Deep-copies n messages into one allocation. */
static int copy_msgs(const herald_msg *src, uint32_t n, herald_msglist *out)
{
    size_t need = (size_t)n * sizeof(herald_msg);
    char *at;
    for (uint32_t i = 0; i < n; i++)
        need += msg_strings_len(&src[i]);
    out->v = malloc(need ? need : 1);
    if (!out->v)
        return HERALD_ENOMEM;
    out->n = n;
    at = (char *)(out->v + n);
    for (uint32_t i = 0; i < n; i++)
        copy_msg_strings(&out->v[i], &src[i], &at);
    return 0;
}

int herald_client_history(herald_client *c, const char *conv, uint64_t after, uint32_t limit,
                          herald_msglist *out)
{
    herald_frame f = {.type = HERALD_FT_HISTORY, .conv = herald_str_z(conv), .after = after,
                      .limit = limit}, r;
    int rc = request(c, &f, HERALD_FT_HISTORY_RESULT, &r);
    memset(out, 0, sizeof *out);
    if (rc)
        return rc;
    rc = copy_msgs(r.msgs, r.n_msgs, out);
    out->more = r.more;
    herald_frame_release(&r);
    return rc;
}

int herald_client_read(herald_client *c, const char *conv, uint64_t seq, uint64_t *cursor)
{
    herald_frame f = {.type = HERALD_FT_READ, .conv = herald_str_z(conv), .seq = seq}, r;
    int rc = request(c, &f, HERALD_FT_OK, &r);
    if (rc)
        return rc;
    if (cursor)
        *cursor = r.seq;
    herald_frame_release(&r);
    return 0;
}

int herald_client_recall(herald_client *c, const char *conv, uint64_t seq, uint64_t *event_seq)
{
    herald_frame f = {.type = HERALD_FT_RECALL, .conv = herald_str_z(conv), .seq = seq}, r;
    int rc = request(c, &f, HERALD_FT_OK, &r);
    if (rc)
        return rc;
    if (event_seq)
        *event_seq = r.seq;
    herald_frame_release(&r);
    return 0;
}

int herald_client_dnd(herald_client *c, const char *op, uint64_t until_ms, uint64_t *until)
{
    herald_frame f = {.type = HERALD_FT_DND, .op = herald_str_z(op), .ts = until_ms}, r;
    int rc = request(c, &f, HERALD_FT_OK, &r);
    if (rc)
        return rc;
    if (until)
        *until = r.flags & 1 ? r.ts : 0;
    herald_frame_release(&r);
    return 0;
}

void herald_strlist_free(herald_strlist *l)
{
    if (!l)
        return;
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int copy_strs(const herald_str *src, uint32_t n, herald_strlist *out)
{
    size_t need = (size_t)n * sizeof(char *) + 1;
    char *at;
    for (uint32_t i = 0; i < n; i++)
        need += src[i].len + 1;
    out->v = malloc(need);
    if (!out->v)
        return HERALD_ENOMEM;
    out->n = n;
    at = (char *)(out->v + n);
    for (uint32_t i = 0; i < n; i++)
        out->v[i] = (char *)put_bytes(&at, src[i].ptr, src[i].len);
    return 0;
}

void herald_receipts_free(herald_receipts *r)
{
    if (!r)
        return;
    herald_strlist_free(&r->read);
    herald_strlist_free(&r->unread);
    free(r->next);
    memset(r, 0, sizeof *r);
}

int herald_client_receipts_page(herald_client *c, const char *conv, uint64_t seq,
                                const char *after, uint32_t limit, herald_receipts *out)
{
    herald_frame f = {.type = HERALD_FT_RECEIPTS, .conv = herald_str_z(conv), .seq = seq,
                      .after_id = herald_str_z(after), .limit = limit}, r;
    int rc = request(c, &f, HERALD_FT_RECEIPTS_RESULT, &r);
    memset(out, 0, sizeof *out);
    if (rc)
        return rc;
    out->n_read = r.n_read_total;
    out->n_unread = r.n_unread_total;
    out->more = r.more;
    rc = copy_strs(r.read, r.n_read, &out->read);
    if (rc == 0)
        rc = copy_strs(r.unread, r.n_unread, &out->unread);
    if (rc == 0 && r.more && !(out->next = strndup(r.after_id.ptr ? r.after_id.ptr : "",
                                                   r.after_id.len)))
        rc = HERALD_ENOMEM;
    if (rc)
        herald_receipts_free(out);
    herald_frame_release(&r);
    return rc;
}

int herald_client_receipts(herald_client *c, const char *conv, uint64_t seq,
                           herald_strlist *read, herald_strlist *unread)
{
    herald_receipts r;
    int rc = herald_client_receipts_page(c, conv, seq, NULL, 0, &r);
    memset(read, 0, sizeof *read);
    memset(unread, 0, sizeof *unread);
    if (rc)
        return rc;
    *read = r.read;
    *unread = r.unread;
    free(r.next);
    return 0;
}

void herald_conv_info_free(herald_conv_info *i)
{
    if (!i)
        return;
    free(i->id);
    free(i->kind);
    free(i->owner);
    herald_strlist_free(&i->members);
    memset(i, 0, sizeof *i);
}

static char *dup_str(herald_str s) { return strndup(s.ptr ? s.ptr : "", s.len); }

static int conv_op(herald_client *c, const char *op, const char *kind, const char *id,
                   const char *const *members, uint32_t n, herald_conv_info *out)
{
    herald_frame f = {.type = HERALD_FT_CONV, .op = herald_str_z(op),
                      .kind = herald_str_z(kind), .conv = herald_str_z(id)}, r;
    herald_str *mv = n ? calloc(n, sizeof *mv) : NULL;
    int rc;

    if (out)
        memset(out, 0, sizeof *out);
    if (n && !mv)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        mv[i] = herald_str_z(members[i]);
    f.members = mv;
    f.n_members = n;
    rc = request(c, &f, HERALD_FT_CONV_RESULT, &r);
    free(mv);
    if (rc)
        return rc;
    if (out) {
        out->id = dup_str(r.conv);
        out->kind = dup_str(r.kind);
        out->owner = dup_str(r.owner);
        out->max_seq = r.seq;
        out->created = r.ts;
        out->cap = r.cap;
        out->count = r.count;
        rc = copy_strs(r.members, r.n_members, &out->members);
        if (rc == 0 && (!out->id || !out->kind || !out->owner))
            rc = HERALD_ENOMEM;
        if (rc)
            herald_conv_info_free(out);
    }
    herald_frame_release(&r);
    return rc;
}

int herald_client_conv_create(herald_client *c, const char *kind, const char *id,
                              const char *const *members, uint32_t n, herald_conv_info *out)
{
    return conv_op(c, "create", kind, id, members, n, out);
}

int herald_client_conv_add(herald_client *c, const char *conv, const char *const *members,
                           uint32_t n, herald_conv_info *out)
{
    return conv_op(c, "add", NULL, conv, members, n, out);
}

int herald_client_conv_remove(herald_client *c, const char *conv, const char *const *members,
                              uint32_t n, herald_conv_info *out)
{
    return conv_op(c, "remove", NULL, conv, members, n, out);
}

int herald_client_conv_info(herald_client *c, const char *conv, herald_conv_info *out)
{
    return conv_op(c, "info", NULL, conv, NULL, 0, out);
}

int herald_client_ping(herald_client *c, uint64_t *rtt_us)
{
    struct timespec a, b;
    herald_frame f = {.type = HERALD_FT_PING}, r;
    int rc;
    clock_gettime(CLOCK_MONOTONIC, &a);
    rc = request(c, &f, HERALD_FT_PONG, &r);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (rc)
        return rc;
    herald_frame_release(&r);
    if (rtt_us)
        *rtt_us = (uint64_t)((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000);
    return 0;
}

/* ---- sync and events --------------------------------------------------------------- */

int herald_client_sync(herald_client *c)
{
    for (int round = 0; round < 100000; round++) {
        herald_frame f = {.type = HERALD_FT_SYNC}, r;
        synckey next = {0};
        bool more;
        int rc = sk_to_frame(&c->recv, &f);
        if (rc)
            return rc;
        rc = request(c, &f, HERALD_FT_SYNC_RESULT, &r);
        sk_frame_release(&f);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < r.n_msgs && rc == 0; i++)
            rc = accept_msg(c, &r.msgs[i], true);
        /* The server's position is authoritative for what it covered; keep
         * our own entries it did not mention. */
        if (rc == 0)
            rc = sk_from_frame(&next, &r);
        for (uint32_t i = 0; rc == 0 && i < next.n_groups; i++) {
            uint64_t *p = sk_group(&c->recv, next.groups[i].group);
            if (!p)
                rc = HERALD_ENOMEM;
            else if (next.groups[i].useq > *p)
                *p = next.groups[i].useq;
        }
        for (uint32_t i = 0; rc == 0 && i < next.n_convs; i++) {
            uint64_t *p = sk_conv_at(&c->recv, next.convs[i].conv, strlen(next.convs[i].conv));
            if (!p)
                rc = HERALD_ENOMEM;
            else if (next.convs[i].seq > *p)
                *p = next.convs[i].seq;
        }
        sk_free(&next);
        more = r.more;
        herald_frame_release(&r);
        if (rc)
            return rc;
        if (!more) {
            c->need_sync = false;
            return 0;
        }
    }
    return HERALD_EINTERNAL;
}

/* Hands out the first queued event, advancing the saved key. */
static int pop_event(herald_client *c, herald_event **ev)
{
    qevent *q = c->qhead;
    c->qhead = q->next;
    if (!c->qhead)
        c->qtail = NULL;
    *ev = q->ev;
    free(q);
    if ((*ev)->type == HERALD_EV_MSG) {
        uint64_t *slot = key_slot(&c->out, &(*ev)->msg);
        uint64_t pos = (*ev)->msg.useq ? (*ev)->msg.useq : (*ev)->msg.seq;
        if (slot && pos > *slot)
            *slot = pos;
    }
    return 0;
}

int herald_client_next_event(herald_client *c, int timeout_ms, herald_event **ev)
{
    uint64_t deadline = now_ms() + (timeout_ms > 0 ? (uint64_t)timeout_ms : 0);
    *ev = NULL;
    for (;;) {
        herald_frame f;
        int rc;
        if (c->need_sync && !c->qhead) {
            rc = herald_client_sync(c);
            if (rc)
                return rc;
        }
        if (c->qhead)
            return pop_event(c, ev);
        if (timeout_ms < 0)
            deadline = now_ms() + 3600000u;
        /* Keep the connection alive while waiting: the server closes one
         * that sends nothing for a few heartbeat intervals. */
        if (now_ms() >= c->last_tx + c->hb_ms) {
            herald_frame ping = {.type = HERALD_FT_PING};
            rc = send_frame(c, &ping, now_ms() + (uint64_t)c->timeout_ms);
            if (rc)
                return rc;
        }
        {
            uint64_t wake = c->last_tx + c->hb_ms;
            rc = recv_frame(c, wake < deadline ? wake : deadline, timeout_ms != 0, &f);
        }
        if (rc == HERALD_ETIMEOUT && now_ms() < deadline && timeout_ms != 0)
            continue; /* time to ping */
        if (rc)
            return rc;
        if (is_push(f.type)) {
            rc = on_push(c, &f);
        } else if (f.type == HERALD_FT_ERROR) {
            keep_error(c, &f);
            rc = f.code ? (int)f.code : HERALD_EINTERNAL;
            if (f.ref == 0)
                broken(c, rc);
        }
        herald_frame_release(&f);
        if (rc)
            return rc;
    }
}

int herald_client_sync_key(herald_client *c, herald_buf *out) { return sk_save(&c->out, out); }

int herald_client_confirm(herald_client *c, const char *conv, uint64_t seq, uint64_t *seq_out)
{
    herald_frame f = {.type = HERALD_FT_URGENT, .op = herald_str_z("confirm"),
                      .conv = herald_str_z(conv), .seq = seq}, r;
    int rc = request(c, &f, HERALD_FT_OK, &r);
    if (rc)
        return rc;
    if (seq_out)
        *seq_out = r.seq;
    herald_frame_release(&r);
    return 0;
}

int herald_client_urgent_status(herald_client *c, const char *conv, uint64_t seq,
                                herald_strlist *confirmed, herald_strlist *pending)
{
    herald_frame f = {.type = HERALD_FT_URGENT, .op = herald_str_z("status"),
                      .conv = herald_str_z(conv), .seq = seq}, r;
    int rc = request(c, &f, HERALD_FT_URGENT_RESULT, &r);
    memset(confirmed, 0, sizeof *confirmed);
    memset(pending, 0, sizeof *pending);
    if (rc)
        return rc;
    rc = copy_strs(r.read, r.n_read, confirmed);
    if (rc == 0)
        rc = copy_strs(r.unread, r.n_unread, pending);
    if (rc)
        herald_strlist_free(confirmed);
    herald_frame_release(&r);
    return rc;
}

void herald_dir_entry_free(herald_dir_entry *e)
{
    if (!e)
        return;
    free(e->user);
    free(e->dept);
    free(e->kind);
    free(e->name);
    free(e->title);
    free(e->parent);
    memset(e, 0, sizeof *e);
}

int herald_client_dir(herald_client *c, const char *op, const herald_dir_entry *in,
                      herald_dir_entry *out)
{
    herald_frame f = {.type = HERALD_FT_DIR, .op = herald_str_z(op),
                      .user = herald_str_z(in->user), .dept = herald_str_z(in->dept),
                      .kind = herald_str_z(in->kind), .name = herald_str_z(in->name),
                      .title = herald_str_z(in->title), .parent = herald_str_z(in->parent)}, r;
    int rc = request(c, &f, HERALD_FT_DIR_RESULT, &r);
    if (out)
        memset(out, 0, sizeof *out);
    if (rc)
        return rc;
    if (out) {
        herald_str *fields[] = {&r.user, &r.dept, &r.kind, &r.name, &r.title, &r.parent};
        char **dst[] = {&out->user, &out->dept, &out->kind, &out->name, &out->title, &out->parent};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0] && rc == 0; i++)
            if (!(*dst[i] = dup_str(*fields[i])))
                rc = HERALD_ENOMEM;
        if (rc)
            herald_dir_entry_free(out);
    }
    herald_frame_release(&r);
    return rc;
}

int herald_client_contact_add(herald_client *c, const char *employee, const char *customer,
                              char *conv_out, size_t conv_len)
{
    herald_frame f = {.type = HERALD_FT_CONTACT, .op = herald_str_z("add"),
                      .user = herald_str_z(employee), .conv = herald_str_z(customer)}, r;
    int rc = request(c, &f, HERALD_FT_CONTACT_RESULT, &r);
    if (rc)
        return rc;
    if (conv_out && conv_len)
        snprintf(conv_out, conv_len, "%.*s", (int)r.conv.len, r.conv.ptr ? r.conv.ptr : "");
    herald_frame_release(&r);
    return 0;
}

int herald_client_contact_list(herald_client *c, const char *customer, herald_strlist *owners)
{
    herald_frame f = {.type = HERALD_FT_CONTACT, .op = herald_str_z("list"),
                      .conv = herald_str_z(customer)}, r;
    int rc = request(c, &f, HERALD_FT_CONTACT_RESULT, &r);
    memset(owners, 0, sizeof *owners);
    if (rc)
        return rc;
    rc = copy_strs(r.members, r.n_members, owners);
    herald_frame_release(&r);
    return rc;
}

int herald_client_status(herald_client *c, herald_buf *out)
{
    herald_frame f = {.type = HERALD_FT_STATUS}, r;
    int rc = request(c, &f, HERALD_FT_STATUS_RESULT, &r);
    if (rc)
        return rc;
    rc = herald_buf_append(out, r.body.ptr, r.body.len);
    herald_frame_release(&r);
    return rc;
}

int herald_client_tags(herald_client *c, const char *op, const char *customer,
                       const char *const *tags, uint32_t n, herald_strlist *out)
{
    herald_frame f = {.type = HERALD_FT_TAG, .op = herald_str_z(op),
                      .user = herald_str_z(customer)}, r;
    herald_str *tv = n ? calloc(n, sizeof *tv) : NULL;
    int rc;
    if (out)
        memset(out, 0, sizeof *out);
    if (n && !tv)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        tv[i] = herald_str_z(tags[i]);
    f.members = tv;
    f.n_members = n;
    rc = request(c, &f, HERALD_FT_TAG_RESULT, &r);
    free(tv);
    if (rc)
        return rc;
    if (out)
        rc = copy_strs(r.members, r.n_members, out);
    herald_frame_release(&r);
    return rc;
}

void herald_mass_free(herald_mass *m)
{
    if (!m)
        return;
    free(m->id);
    herald_strlist_free(&m->reached);
    herald_strlist_free(&m->limited);
    herald_strlist_free(&m->missed);
    memset(m, 0, sizeof *m);
}

static int mass_request(herald_client *c, herald_frame *f, herald_mass *out)
{
    herald_frame r;
    int rc;
    memset(out, 0, sizeof *out);
    c->timeout_ms = c->timeout_ms < 60000 ? 60000 : c->timeout_ms; /* fan-out takes a while */
    rc = request(c, f, HERALD_FT_MASS_RESULT, &r);
    if (rc)
        return rc;
    out->sent = r.count;
    out->id = dup_str(r.conv);
    rc = out->id ? 0 : HERALD_ENOMEM;
    if (rc == 0)
        rc = copy_strs(r.read, r.n_read, &out->reached);
    if (rc == 0)
        rc = copy_strs(r.unread, r.n_unread, &out->limited);
    if (rc == 0)
        rc = copy_strs(r.members, r.n_members, &out->missed);
    if (rc)
        herald_mass_free(out);
    herald_frame_release(&r);
    return rc;
}

int herald_client_mass_send(herald_client *c, const char *id, const char *const *tags,
                            uint32_t n_tags, const char *text, herald_mass *out)
{
    herald_frame f = {.type = HERALD_FT_MASS, .op = herald_str_z("send"),
                      .conv = herald_str_z(id), .body = herald_str_z(text)};
    herald_str *tv = n_tags ? calloc(n_tags, sizeof *tv) : NULL;
    int rc;
    if (n_tags && !tv)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < n_tags; i++)
        tv[i] = herald_str_z(tags[i]);
    f.members = tv;
    f.n_members = n_tags;
    rc = mass_request(c, &f, out);
    free(tv);
    return rc;
}

int herald_client_mass_status(herald_client *c, const char *id, herald_mass *out)
{
    herald_frame f = {.type = HERALD_FT_MASS, .op = herald_str_z("status"),
                      .conv = herald_str_z(id)};
    return mass_request(c, &f, out);
}
