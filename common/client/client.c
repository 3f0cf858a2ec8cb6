/* client.c — libherald: connect/close and the messaging requests. See
 * include/herald/client.h; the socket is in conn.c, delivery in events.c. */
#include "client_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMID_RANDOM_BYTES 16 /* a generated cmid: 128 random bits as hex */

/* A required id argument: non-NULL, non-empty (the wire omits empty
 * strings, and a missing required key makes the server drop the connection). */
static bool given(const char *s) { return s && *s; }

/* ---- connect / close ------------------------------------------------------------- */

static void copy_id(char *dst, size_t cap, herald_str s)
{
    snprintf(dst, cap, "%.*s", (int)s.len, s.ptr ? s.ptr : "");
}

/* HELLO → WELCOME, then the starting position. */
static int handshake(herald_client *c, const char *token, bool have_key)
{
    herald_frame hello = {.type = HERALD_FT_HELLO, .version = HERALD_PROTOCOL_VERSION,
                          .token = herald_str_z(token)}, w;
    int rc = client_request(c, &hello, HERALD_FT_WELCOME, &w);

    if (rc)
        return rc;
    copy_id(c->user, sizeof c->user, w.user);
    copy_id(c->tenant, sizeof c->tenant, w.tenant);
    c->admin = w.admin;
    c->srv_max_frame = w.max_frame;
    c->hb_ms = w.hb_ms ? w.hb_ms : CLIENT_HB_DEFAULT_MS;
    if (c->hb_ms < CLIENT_HB_MIN_MS)
        c->hb_ms = CLIENT_HB_MIN_MS;
    /* Without a saved key: start live at the server's current position. */
    if (!have_key) {
        rc = sk_from_frame(&c->recv, &w);
        if (rc == HERALD_EINVAL)
            rc = HERALD_EPROTOCOL;
    }
    herald_frame_release(&w);
    return rc;
}

int herald_client_connect(const char *addr, const char *token, const herald_client_opts *opts,
                          herald_client **out)
{
    herald_client *c;
    bool have_key = opts && opts->sync_key;
    int rc;

    *out = NULL;
    if (opts && opts->errbuf && opts->errbuf_len)
        opts->errbuf[0] = '\0';
    if (!given(token))
        return HERALD_EUNAUTHORIZED;
    c = calloc(1, sizeof *c);
    if (!c)
        return HERALD_ENOMEM;
    c->fd = -1;
    c->on_push = client_on_push;
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : CLIENT_TIMEOUT_DEFAULT;
    c->max_frame = opts && opts->max_frame ? opts->max_frame : CLIENT_FRAME_MAX_DEFAULT;
    if (have_key) {
        rc = sk_load(&c->recv, opts->sync_key, opts->sync_key_len);
        if (rc)
            goto close_client;
    }
    rc = client_open(c, addr, opts ? opts->ca_file : NULL, c->timeout_ms);
    if (rc)
        goto close_client;
    rc = handshake(c, token, have_key);
    if (rc == 0)
        rc = sk_copy(&c->out, &c->recv);
    /* With a saved key: what was missed comes first, queued as events. */
    if (rc == 0 && have_key)
        rc = herald_client_sync(c);
    if (rc)
        goto close_client;
    *out = c;
    return 0;
close_client:
    if (opts && opts->errbuf && opts->errbuf_len)
        snprintf(opts->errbuf, opts->errbuf_len, "%s", c->errtext);
    herald_client_close(c);
    return rc;
}

void herald_client_close(herald_client *c)
{
    if (!c)
        return;
    client_broken(c, 0);
    client_queue_free(c);
    herald_buf_free(&c->rx);
    sk_free(&c->recv);
    sk_free(&c->out);
    sk_free(&c->want);
    free(c);
}

const char *herald_client_user(const herald_client *c) { return c->user; }
void herald_client_stats_get(const herald_client *c, herald_client_stats *out) { *out = c->st; }
const char *herald_client_tenant(const herald_client *c) { return c->tenant; }
bool herald_client_is_admin(const herald_client *c) { return c->admin; }
const char *herald_client_last_error(const herald_client *c) { return c->errtext; }
int herald_client_fd(const herald_client *c) { return c->fd; }

/* ---- messages ---------------------------------------------------------------------- */

int herald_client_send(herald_client *c, const char *conv, const char *cmid, const void *body,
                       size_t len, uint32_t flags, herald_ack *ack)
{
    herald_frame f = {.type = HERALD_FT_SEND, .conv = herald_str_z(conv),
                      .body = {.ptr = body, .len = (uint32_t)len},
                      .flags = flags & HERALD_MSGF_CLIENT_MASK}, r;
    char gen[2 * CMID_RANDOM_BYTES + 1];
    int rc;

    if (ack)
        memset(ack, 0, sizeof *ack);
    if (!given(conv) || (len && !body))
        return HERALD_EINVAL;
    if (len > UINT32_MAX)
        return HERALD_ETOO_BIG;
    if (!cmid) {
        uint8_t rnd[CMID_RANDOM_BYTES];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(gen, sizeof gen, rnd, sizeof rnd);
        cmid = gen;
    }
    f.cmid = herald_str_z(cmid);
    rc = client_request(c, &f, HERALD_FT_ACK, &r);
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

int herald_client_history(herald_client *c, const char *conv, uint64_t after, uint32_t limit,
                          herald_msglist *out)
{
    herald_frame f = {.type = HERALD_FT_HISTORY, .conv = herald_str_z(conv), .after = after,
                      .limit = limit}, r;
    int rc;

    memset(out, 0, sizeof *out);
    if (!given(conv))
        return HERALD_EINVAL;
    rc = client_request(c, &f, HERALD_FT_HISTORY_RESULT, &r);
    if (rc)
        return rc;
    rc = client_copy_msgs(r.msgs, r.n_msgs, out);
    out->more = rc == 0 && r.more;
    herald_frame_release(&r);
    return rc;
}

void herald_convlist_free(herald_convlist *l)
{
    if (!l)
        return;
    herald_msglist_free(&l->last);
    for (uint32_t i = 0; l->kinds && i < l->n; i++)
        free(l->kinds[i]);
    free(l->kinds);
    free(l->counts);
    free(l->unread);
    free(l->cursor);
    memset(l, 0, sizeof *l);
}

int herald_client_conv_list(herald_client *c, const char *cursor, uint32_t limit,
                            herald_convlist *out)
{
    herald_frame f = {.type = HERALD_FT_CONV, .op = herald_str_z("list"),
                      .after_id = herald_str_z(cursor), .limit = limit}, r;
    uint32_t n;
    int rc;

    memset(out, 0, sizeof *out);
    rc = client_request(c, &f, HERALD_FT_CONV_RESULT, &r);
    if (rc)
        return rc;
    n = r.n_msgs;
    if (r.n_conv_kinds != n || r.n_conv_counts != n || r.n_conv_unread != n ||
        (r.more && !r.after_id.len)) {
        herald_frame_release(&r);
        return HERALD_EPROTOCOL;
    }
    rc = client_copy_msgs(r.msgs, n, &out->last);
    out->kinds = calloc(n + 1, sizeof *out->kinds);
    out->counts = calloc(n + 1, sizeof *out->counts);
    out->unread = calloc(n + 1, sizeof *out->unread);
    if (rc == 0 && (!out->kinds || !out->counts || !out->unread))
        rc = HERALD_ENOMEM;
    out->n = n;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        out->kinds[i] = client_dup_str(r.conv_kinds[i]);
        out->counts[i] = r.conv_counts[i] > UINT32_MAX ? UINT32_MAX : (uint32_t)r.conv_counts[i];
        out->unread[i] = r.conv_unread[i];
        if (!out->kinds[i])
            rc = HERALD_ENOMEM;
    }
    if (rc == 0 && r.more && !(out->cursor = client_dup_str(r.after_id)))
        rc = HERALD_ENOMEM;
    herald_frame_release(&r);
    if (rc)
        herald_convlist_free(out);
    return rc;
}

/* A request answered by OK whose "seq" is the result: READ, RECALL, URGENT
 * confirm. op may be NULL. */
static int seq_request(herald_client *c, uint32_t type, const char *op, const char *conv,
                       uint64_t seq, uint64_t *out)
{
    herald_frame f = {.type = type, .op = herald_str_z(op), .conv = herald_str_z(conv),
                      .seq = seq}, r;
    int rc;

    if (out)
        *out = 0;
    if (!given(conv) || seq == 0)
        return HERALD_EINVAL;
    rc = client_request(c, &f, HERALD_FT_OK, &r);
    if (rc)
        return rc;
    if (out)
        *out = r.seq;
    herald_frame_release(&r);
    return 0;
}

int herald_client_read(herald_client *c, const char *conv, uint64_t seq, uint64_t *cursor)
{
    return seq_request(c, HERALD_FT_READ, NULL, conv, seq, cursor);
}

int herald_client_recall(herald_client *c, const char *conv, uint64_t seq, uint64_t *event_seq)
{
    return seq_request(c, HERALD_FT_RECALL, NULL, conv, seq, event_seq);
}

int herald_client_confirm(herald_client *c, const char *conv, uint64_t seq, uint64_t *seq_out)
{
    return seq_request(c, HERALD_FT_URGENT, "confirm", conv, seq, seq_out);
}

int herald_client_dnd(herald_client *c, const char *op, uint64_t until_ms, uint64_t *until)
{
    herald_frame f = {.type = HERALD_FT_DND, .op = herald_str_z(op), .ts = until_ms}, r;
    int rc;

    if (until)
        *until = 0;
    if (!given(op))
        return HERALD_EINVAL;
    rc = client_request(c, &f, HERALD_FT_OK, &r);
    if (rc)
        return rc;
    if (until)
        *until = r.flags & 1 ? (r.ts ? r.ts : UINT64_MAX) : 0;
    herald_frame_release(&r);
    return 0;
}

/* ---- receipts ------------------------------------------------------------------------ */

void herald_strlist_free(herald_strlist *l)
{
    if (!l)
        return;
    free(l->v);
    memset(l, 0, sizeof *l);
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
    int rc;

    memset(out, 0, sizeof *out);
    if (!given(conv) || seq == 0)
        return HERALD_EINVAL;
    rc = client_request(c, &f, HERALD_FT_RECEIPTS_RESULT, &r);
    if (rc)
        return rc;
    out->n_read = r.n_read_total;
    out->n_unread = r.n_unread_total;
    out->more = r.more;
    rc = client_copy_strs(r.read, r.n_read, &out->read);
    if (rc == 0)
        rc = client_copy_strs(r.unread, r.n_unread, &out->unread);
    if (rc == 0 && r.more && !(out->next = client_dup_str(r.after_id)))
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

/* ---- conversations ---------------------------------------------------------------- */

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

/* Fills *out from a CONV_RESULT. 0 or HERALD_ENOMEM (*out freed). */
static int conv_info_from(const herald_frame *r, herald_conv_info *out)
{
    int rc;
    out->id = client_dup_str(r->conv);
    out->kind = client_dup_str(r->kind);
    out->owner = client_dup_str(r->owner);
    out->max_seq = r->seq;
    out->created = r->ts;
    out->cap = r->cap;
    out->count = r->count;
    out->group = r->group;
    out->leader = r->leader;
    rc = client_copy_strs(r->members, r->n_members, &out->members);
    if (rc == 0 && (!out->id || !out->kind || !out->owner))
        rc = HERALD_ENOMEM;
    if (rc)
        herald_conv_info_free(out);
    return rc;
}

static int conv_op(herald_client *c, const char *op, const char *kind, const char *id,
                   const char *const *members, uint32_t n, herald_conv_info *out)
{
    herald_frame f = {.type = HERALD_FT_CONV, .op = herald_str_z(op),
                      .kind = herald_str_z(kind), .conv = herald_str_z(id)}, r;
    herald_str *mv = NULL;
    bool create = strcmp(op, "create") == 0;
    int rc;

    if (out)
        memset(out, 0, sizeof *out);
    if ((create ? !given(kind) : !given(id)) || (n && !members))
        return HERALD_EINVAL;
    if (n) {
        mv = calloc(n, sizeof *mv);
        if (!mv)
            return HERALD_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!given(members[i])) {
            rc = HERALD_EINVAL;
            goto free_members;
        }
        mv[i] = herald_str_z(members[i]);
    }
    f.members = mv;
    f.n_members = n;
    rc = client_request(c, &f, HERALD_FT_CONV_RESULT, &r);
    if (rc)
        goto free_members;
    if (out)
        rc = conv_info_from(&r, out);
    herald_frame_release(&r);
free_members:
    free(mv);
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

    if (rtt_us)
        *rtt_us = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    rc = client_request(c, &f, HERALD_FT_PONG, &r);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (rc)
        return rc;
    herald_frame_release(&r);
    if (rtt_us)
        *rtt_us = (uint64_t)((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000);
    return 0;
}
