/* events.c — libherald's delivery path: pushed frames are filtered against
 * the sync key (duplicates dropped, gaps repaired by SYNC), queued in arrival
 * order and handed out by herald_client_next_event. See client_int.h.
 *
 * Two keys: `recv` covers everything accepted into the queue (it decides
 * duplicate / next / gap); `out` covers only what the application has taken
 * (it is what herald_client_sync_key saves), so a key saved with events still
 * queued makes the next connection fetch them again — exactly once overall. */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- copies of server data ------------------------------------------------------ */

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

/* Bytes needed to copy a message's strings (each NUL-terminated). */
static size_t msg_strings_len(const herald_msg *m)
{
    return (size_t)m->conv.len + m->from.len + m->body.len + m->id_corp.len +
           m->id_title.len + 5;
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

char *client_dup_str(herald_str s) { return strndup(s.ptr ? s.ptr : "", s.len); }

int client_copy_strs(const herald_str *src, uint32_t n, herald_strlist *out)
{
    size_t need = (size_t)n * sizeof(char *) + 1;
    char *at;

    memset(out, 0, sizeof *out);
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

int client_copy_msgs(const herald_msg *src, uint32_t n, herald_msglist *out)
{
    size_t need = (size_t)n * sizeof(herald_msg);
    char *at;

    memset(out, 0, sizeof *out);
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

/* ---- events and the queue -------------------------------------------------------- */

void herald_event_free(herald_event *ev) { free(ev); }

/* One allocation holding the event and its strings. */
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

/* RECEIPT / REMIND / ESCALATE: conv, user, seq, count (and the pending
 * members of an escalation). */
static herald_event *event_notice(const herald_frame *f, int type)
{
    size_t need = sizeof(herald_event) + (size_t)f->conv.len + f->user.len + 2;
    uint32_t np = type == HERALD_EV_ESCALATE ? f->n_members : 0;
    herald_event *ev;
    const char **pv;
    char *at;

    need += np * sizeof(char *);
    for (uint32_t i = 0; i < np; i++)
        need += f->members[i].len + 1;
    ev = calloc(1, need);
    if (!ev)
        return NULL;
    pv = (const char **)(ev + 1);
    at = (char *)(pv + np);
    ev->type = type;
    ev->conv = put_bytes(&at, f->conv.ptr, f->conv.len);
    ev->user = put_bytes(&at, f->user.ptr, f->user.len);
    for (uint32_t i = 0; i < np; i++)
        pv[i] = put_bytes(&at, f->members[i].ptr, f->members[i].len);
    ev->pending = pv;
    ev->n_pending = np;
    ev->seq = f->seq;
    ev->count = f->count;
    return ev;
}

/* GAP: the oldest open group and the position a push proved. */
static herald_event *event_gap(uint32_t group, uint64_t pos)
{
    herald_event *ev = calloc(1, sizeof *ev + 2);
    char *at;
    if (!ev)
        return NULL;
    at = (char *)(ev + 1);
    ev->type = HERALD_EV_GAP;
    ev->conv = put_bytes(&at, "", 0);
    ev->user = put_bytes(&at, "", 0);
    ev->group = group;
    ev->seq = pos;
    return ev;
}

/* Appends ev (taking it; NULL = its allocation failed). */
static int enqueue(herald_client *c, herald_event *ev)
{
    client_qevent *q;
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

void client_queue_free(herald_client *c)
{
    while (c->qhead) {
        client_qevent *n = c->qhead->next;
        free(c->qhead->ev);
        free(c->qhead);
        c->qhead = n;
    }
    c->qtail = NULL;
}

/* ---- the sync key filter ------------------------------------------------------------ */

/* Filters a message against the receive key: queue it (next in line), drop
 * it (seen), or note a gap (dropped; the SYNC that follows returns it with
 * the missing ones). A push is next in line when its pv (the position of
 * the user's previous message in its group, or a bound of it) is covered by
 * the key. in_sync: from a SYNC_RESULT, which answers from our own key in
 * position order, so anything newer is next. */
static int accept_msg(herald_client *c, const herald_msg *m, bool in_sync)
{
    uint64_t *slot;
    int rc;

    if (!m->pos || m->conv.len == 0 || memchr(m->conv.ptr, '\0', m->conv.len))
        return 0; /* no position to key it by: not deliverable exactly once */
    slot = sk_group(&c->recv, m->group);
    if (!slot)
        return HERALD_ENOMEM;
    if (m->pos <= *slot)
        return 0; /* duplicate */
    if (!in_sync && m->prev > *slot) {
        /* Dropped; the gap stays open until SYNC has returned up to pos. */
        uint64_t *w = sk_group(&c->want, m->group);
        if (!w)
            return HERALD_ENOMEM;
        if (m->pos > *w)
            *w = m->pos;
        c->st.gaps++;
        if (!c->need_sync) {
            c->need_sync = true;
            c->resync_at = 0;
            if (!c->gap_since)
                c->gap_since = client_now_ms();
        }
        return 0;
    }
    rc = enqueue(c, event_msg(m));
    if (rc == 0)
        *slot = m->pos; /* only once queued: a failed copy is fetched again */
    return rc;
}

int client_on_push(herald_client *c, const herald_frame *f)
{
    switch (f->type) {
    case HERALD_FT_DELIVER:
        return accept_msg(c, &f->msg, false);
    case HERALD_FT_RECEIPT:
        return enqueue(c, event_notice(f, HERALD_EV_RECEIPT));
    case HERALD_FT_REMIND:
        return enqueue(c, event_notice(f, herald_str_eq(f->op, "escalate") ? HERALD_EV_ESCALATE
                                                                           : HERALD_EV_REMIND));
    default:
        return 0;
    }
}

/* Raises k's entries to the positions in a SYNC_RESULT (never lowers: the
 * server's key is authoritative for what it covered; entries it did not
 * mention are kept). */
static int merge_key(synckey *k, const herald_frame *r)
{
    synckey next = {0};
    int rc = sk_from_frame(&next, r);

    if (rc == HERALD_EINVAL)
        rc = HERALD_EPROTOCOL; /* the server sent an unusable conversation id */

    for (uint32_t i = 0; rc == 0 && i < next.n_groups; i++) {
        uint64_t *p = sk_group(k, next.groups[i].group);
        if (!p)
            rc = HERALD_ENOMEM;
        else if (next.groups[i].pos > *p)
            *p = next.groups[i].pos;
    }
    sk_free(&next);
    return rc;
}

/* The first group where a push proved more than recv holds: true with the
 * group and the wanted position. */
static bool gap_open(const herald_client *c, uint32_t *group, uint64_t *pos)
{
    const synckey *w = &c->want, *k = &c->recv;
    for (uint32_t i = 0; i < w->n_groups; i++) {
        uint64_t have = 0;
        for (uint32_t j = 0; j < k->n_groups; j++)
            if (k->groups[j].group == w->groups[i].group)
                have = k->groups[j].pos;
        if (w->groups[i].pos > have) {
            *group = w->groups[i].group;
            *pos = w->groups[i].pos;
            return true;
        }
    }
    return false;
}

/* After a SYNC (answered or refused): closes the gap when everything the
 * pushes proved is in, else schedules the next try with backoff. */
static void gap_after_sync(herald_client *c)
{
    uint32_t g;
    uint64_t pos;
    if (!gap_open(c, &g, &pos)) {
        c->need_sync = false;
        c->gap_since = 0;
        c->resync_at = 0;
        c->resync_ms = 0;
        c->gap_reported = false;
        return;
    }
    c->need_sync = true;
    if (!c->gap_since)
        c->gap_since = client_now_ms();
    /* The first retry goes at once (most often the push simply overtook
     * the answer); then 20 ms, doubling up to 1 s. */
    c->resync_at = client_now_ms() + c->resync_ms;
    c->resync_ms = c->resync_ms ? c->resync_ms * 2 : CLIENT_RESYNC_MIN_MS;
    if (c->resync_ms > CLIENT_RESYNC_MAX_MS)
        c->resync_ms = CLIENT_RESYNC_MAX_MS;
    c->st.sync_retries++;
}

/* Queues HERALD_EV_GAP once when the open gap outlived the request timeout. */
static int gap_report(herald_client *c)
{
    uint32_t g;
    uint64_t pos;
    int rc;
    if (!c->need_sync || c->gap_reported || !c->gap_since ||
        client_now_ms() < c->gap_since + (uint64_t)c->timeout_ms || !gap_open(c, &g, &pos))
        return 0;
    rc = enqueue(c, event_gap(g, pos));
    if (rc == 0) {
        c->gap_reported = true;
        c->st.gaps_unfilled++;
    }
    return rc;
}

int herald_client_sync(herald_client *c)
{
    for (int round = 0; round < CLIENT_SYNC_ROUNDS_MAX; round++) {
        herald_frame f = {.type = HERALD_FT_SYNC}, r;
        bool more;
        int rc = sk_to_frame(&c->recv, &f);
        if (rc)
            return rc;
        rc = client_request(c, &f, HERALD_FT_SYNC_RESULT, &r);
        sk_frame_release(&f);
        c->st.syncs++;
        if (rc)
            return rc;
        for (uint32_t i = 0; i < r.n_msgs && rc == 0; i++)
            rc = accept_msg(c, &r.msgs[i], true);
        if (rc == 0)
            rc = merge_key(&c->recv, &r);
        more = r.more && r.n_msgs > 0; /* "more" with nothing in it cannot progress */
        herald_frame_release(&r);
        if (rc)
            return rc;
        if (!more) {
            gap_after_sync(c);
            return 0;
        }
    }
    return HERALD_EINTERNAL;
}

/* Hands out the first queued event, advancing the saved key past it. */
static int pop_event(herald_client *c, herald_event **ev)
{
    client_qevent *q = c->qhead;

    if (q->ev->type == HERALD_EV_MSG) {
        /* The slot first: on ENOMEM the event stays queued. */
        uint64_t *slot = sk_group(&c->out, q->ev->msg.group);
        uint64_t pos = q->ev->msg.pos;
        if (!slot)
            return HERALD_ENOMEM;
        if (pos > *slot)
            *slot = pos;
    }
    c->qhead = q->next;
    if (!c->qhead)
        c->qtail = NULL;
    *ev = q->ev;
    free(q);
    return 0;
}

/* Sends a heartbeat PING when nothing was sent for hb_ms: the server closes
 * a connection that stays silent for a few intervals. */
static int heartbeat(herald_client *c)
{
    herald_frame ping = {.type = HERALD_FT_PING};
    if (client_now_ms() < c->last_tx + c->hb_ms)
        return 0;
    return client_send_frame(c, &ping, client_now_ms() + (uint64_t)c->timeout_ms);
}

/* Handles a frame read while waiting for events. */
static int on_idle_frame(herald_client *c, const herald_frame *f)
{
    if (client_is_push(f->type))
        return client_on_push(c, f);
    if (f->type == HERALD_FT_ERROR && f->ref == 0) {
        /* Connection-level (idle timeout, shutdown, …): the server closes. */
        client_keep_error(c, f);
        return client_broken(c, f->code ? (int)f->code : HERALD_EINTERNAL);
    }
    return 0; /* a heartbeat PONG, or an answer nobody waits for */
}

int herald_client_next_event(herald_client *c, int timeout_ms, herald_event **ev)
{
    uint64_t start = client_now_ms();
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms;

    *ev = NULL;
    for (;;) {
        herald_frame f;
        uint64_t wake;
        int rc;
        if (c->need_sync && !c->qhead && client_now_ms() >= c->resync_at) {
            rc = herald_client_sync(c);
            if (rc && c->fd < 0)
                return rc; /* the connection broke */
            if (rc)
                gap_after_sync(c); /* refused (e.g. UNAVAILABLE): try again later */
        }
        rc = gap_report(c);
        if (rc)
            return rc;
        if (c->qhead)
            return pop_event(c, ev);
        rc = heartbeat(c);
        if (rc)
            return rc;
        wake = c->last_tx + c->hb_ms;
        if (c->need_sync && c->resync_at < wake)
            wake = c->resync_at;
        rc = client_recv_frame(c, wake < deadline ? wake : deadline, timeout_ms != 0, &f);
        if (rc == HERALD_ETIMEOUT) {
            if (timeout_ms != 0 && client_now_ms() < deadline)
                continue; /* woke up to ping */
            return rc;
        }
        if (rc)
            return rc;
        rc = on_idle_frame(c, &f);
        herald_frame_release(&f);
        if (rc)
            return rc;
    }
}

int herald_client_sync_key(herald_client *c, herald_buf *out) { return sk_save(&c->out, out); }
