/*
 * rio_snap.c — InstallSnapshot streamed in chunks over the raft transport
 * (see rio.h, "Large snapshots", for the protocol).
 *
 * Sender: one stream per (peer, group). It borrows raft's message (the
 * snapshot data stays raft's until the send callback), asks the receiver
 * where it stands (a probe: an empty chunk at offset 0), then keeps at most
 * SNAP_WINDOW bytes sent and not acknowledged, resending from the
 * acknowledged offset when acknowledgements stop, and gives up after
 * SNAP_STALL seconds without progress.
 *
 * Receiver: one assembly per group, the bytes received contiguously from
 * offset 0 in one raft_malloc'd buffer grown as they arrive (the snapshot
 * raft is handed is one buffer anyway). A chunk that does not continue the
 * assembly is answered with a REWIND; the last chunk is verified (length,
 * hash) before the whole becomes a raft InstallSnapshot message.
 *
 * Floor: below the transport (rio_net.c), which owns the streams, hands
 * them what it receives and flushes them; the chunks and acks go out
 * through the rio_snap_out the transport filled in, never by name.
 */
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rio_int.h"

#define SNAP_CHUNK ((size_t)1 << 20)    /* data bytes per chunk (fewer to fit max_msg) */
#define SNAP_WINDOW ((uint64_t)8 << 20) /* bytes sent and not yet acknowledged */
#define SNAP_RESEND 1.0                 /* s without progress: resend from the acked offset */
#define SNAP_STALL 15.0                 /* s without progress: the send fails */
#define SNAP_IDLE 60.0                  /* s a partial assembly is kept without a chunk */
#define SNAP_TIMER 0.1                  /* period of the resend / expiry check */

/* A snapshot being sent. */
typedef struct sstream {
    struct sstream *next;    /* link */
    char *url;               /* destination (owned) */
    uint32_t gid;            /* group */
    struct raft_message msg; /* raft's InstallSnapshot (conf, data borrowed until cb) */
    uint64_t hash;           /* rio_hash64 of the data */
    size_t chunk;            /* data bytes per chunk */
    uint64_t acked;          /* the receiver has [0, acked) */
    uint64_t send_off;       /* next offset to send */
    bool probed;             /* the receiver told us its offset */
    bool done;               /* finished: cb(status) at the next flush */
    int status;              /* completion status when done */
    ev_tstamp progress;      /* start, or the last acknowledgement that advanced */
    ev_tstamp sent;          /* last chunk sent */
    uint64_t rewind_at;      /* offset of the last rewind honoured */
    ev_tstamp rewind_time;   /* when */
    rio_snap_cb cb;          /* raft's completion */
    void *arg;               /* its argument */
} sstream;

/* A snapshot being received. */
typedef struct rasm {
    struct rasm *next;      /* link */
    uint32_t gid;           /* group */
    bool active;            /* assembling the stream identified below */
    raft_id sender;         /* identity: sending node, */
    raft_index last_index;  /* snapshot index and term, */
    raft_term last_term;
    raft_term term;         /* the sender's term (a lower one never replaces it) */
    uint64_t total;         /* data size */
    uint64_t hash;          /* and hash */
    uint8_t *buf;           /* bytes [0, have) (raft_malloc) */
    uint64_t have;          /* received contiguously */
    uint64_t cap;           /* allocated */
    ev_tstamp last;         /* last chunk */
    raft_id done_sender;    /* the last stream completed here (late duplicates of it */
    raft_index done_index;  /*  are answered COMPLETE) */
    uint64_t done_hash;
} rasm;

struct rio_snaps {
    struct ev_loop *loop; /* loop thread's loop */
    rio_snap_out out;     /* where the chunks and acks go (the transport's outboxes) */
    sstream *streams;     /* streams, running and finished */
    rasm *asms;           /* assemblies, one per group that received a chunk */
    ev_timer timer;       /* resends and expiry, while anything runs */
    uint64_t n_streams;   /* rio_stats.snap_streams */
    uint64_t n_resumed;   /* rio_stats.snap_resumed */
    uint64_t n_installed; /* rio_stats.snap_installed */
    uint64_t n_bad;       /* rio_stats.snap_bad */
};

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

int rio_snaps_create(struct ev_loop *loop, const rio_snap_out *port, rio_snaps **out)
{
    rio_snaps *s = calloc(1, sizeof *s);
    if (!s)
        return HERALD_ENOMEM;
    s->loop = loop;
    s->out = *port;
    ev_timer_init(&s->timer, on_timer, SNAP_TIMER, SNAP_TIMER);
    s->timer.data = s;
    *out = s;
    return 0;
}

static void asm_reset(rasm *a)
{
    raft_free(a->buf);
    a->buf = NULL;
    a->have = a->cap = 0;
    a->active = false;
}

static void stream_free(sstream *t)
{
    free(t->url);
    free(t);
}

void rio_snaps_destroy(rio_snaps *s)
{
    sstream *t, *tn;
    rasm *a, *an;

    if (!s)
        return;
    ev_timer_stop(s->loop, &s->timer);
    for (t = s->streams; t; t = tn) {
        tn = t->next;
        if (t->cb)
            t->cb(t->arg, t->done ? t->status : RAFT_CANCELED);
        stream_free(t);
    }
    for (a = s->asms; a; a = an) {
        an = a->next;
        asm_reset(a);
        free(a);
    }
    free(s);
}

void rio_snaps_stats(const rio_snaps *s, rio_stats *st)
{
    if (!s)
        return;
    st->snap_streams = s->n_streams;
    st->snap_resumed = s->n_resumed;
    st->snap_installed = s->n_installed;
    st->snap_bad = s->n_bad;
}

static void finish(sstream *t, int status)
{
    if (!t->done) {
        t->done = true;
        t->status = status;
    }
}

static void timer_on(rio_snaps *s)
{
    if (!ev_is_active(&s->timer))
        ev_timer_again(s->loop, &s->timer);
}

/* ---- sender ------------------------------------------------------------- */

static void chunk_meta(const sstream *t, rio_chunk *c)
{
    const struct raft_install_snapshot *is = &t->msg.install_snapshot;
    memset(c, 0, sizeof *c);
    c->term = is->term;
    c->last_index = is->last_index;
    c->last_term = is->last_term;
    c->conf_index = is->conf_index;
    c->conf = is->conf; /* shallow: encoding only reads it */
    c->total = is->data.len;
    c->hash = t->hash;
}

static int send_chunk(rio_snaps *s, sstream *t, uint64_t off, size_t len)
{
    rio_chunk c;
    chunk_meta(t, &c);
    c.offset = off;
    c.data = (const uint8_t *)t->msg.install_snapshot.data.base + off;
    c.len = (uint32_t)len;
    return s->out.put_chunk(s->out.arg, t->url, t->gid, &c);
}

/* Sends what the window allows (only the probe until the receiver answered). */
static void pump(rio_snaps *s, sstream *t, ev_tstamp now)
{
    uint64_t total = t->msg.install_snapshot.data.len;

    if (t->done)
        return;
    if (!t->probed) {
        if (t->sent == 0 || now - t->sent >= SNAP_RESEND) {
            if (send_chunk(s, t, 0, 0) == 0)
                t->sent = now;
        }
        return;
    }
    while (t->send_off < total && t->send_off - t->acked < SNAP_WINDOW) {
        uint64_t len = total - t->send_off;
        if (len > t->chunk)
            len = t->chunk;
        if (send_chunk(s, t, t->send_off, (size_t)len) != 0)
            break; /* out of memory: the resend timer tries again */
        t->send_off += len;
        t->sent = now;
    }
}

int rio_snaps_send(rio_snaps *s, uint32_t gid, const struct raft_message *m, size_t limit,
                   rio_snap_cb cb, void *arg)
{
    const struct raft_install_snapshot *is = &m->install_snapshot;
    sstream *t, *old;
    rio_chunk probe;
    size_t ovh;
    ev_tstamp now;

    if (!s) /* the transport is closing */
        return RAFT_CANCELED;
    now = ev_now(s->loop);
    if (is->data.len > RIO_SNAP_TOTAL_MAX)
        return RAFT_TOOBIG;
    t = calloc(1, sizeof *t);
    if (!t)
        return RAFT_NOMEM;
    t->url = strdup(m->server_address);
    if (!t->url) {
        free(t);
        return RAFT_NOMEM;
    }
    t->gid = gid;
    t->msg = *m;
    t->cb = cb;
    t->arg = arg;
    chunk_meta(t, &probe);
    ovh = rio_chunk_size(&probe);
    if (ovh >= limit) {
        stream_free(t);
        return RAFT_TOOBIG;
    }
    t->chunk = limit - ovh < SNAP_CHUNK ? limit - ovh : SNAP_CHUNK;
    /* A newer snapshot send to the same peer and group replaces the old
     * one (raft retried after its install timeout); the receiver keeps its
     * assembly, so a resend of the same snapshot resumes where it was. */
    for (old = s->streams; old; old = old->next)
        if (!old->done && old->gid == gid && strcmp(old->url, t->url) == 0)
            finish(old, RAFT_CANCELED);
    t->hash = rio_hash64(is->data.base, is->data.len);
    t->progress = now;
    t->next = s->streams;
    s->streams = t;
    s->n_streams++;
    pump(s, t, now);
    timer_on(s);
    return 0;
}

void rio_snaps_cancel(rio_snaps *s, uint32_t gid)
{
    sstream *t;
    rasm *a;

    if (!s)
        return;
    for (t = s->streams; t; t = t->next)
        if (t->gid == gid)
            finish(t, RAFT_CANCELED);
    for (a = s->asms; a; a = a->next)
        if (a->gid == gid)
            asm_reset(a);
}

void rio_snaps_flush(rio_snaps *s)
{
    sstream **pp, *t, *done = NULL;

    if (!s)
        return;
    /* Unlink first: a callback may start a new stream. */
    for (pp = &s->streams; (t = *pp);) {
        if (t->done) {
            *pp = t->next;
            t->next = done;
            done = t;
        } else {
            pp = &t->next;
        }
    }
    while ((t = done)) {
        done = t->next;
        if (t->cb)
            t->cb(t->arg, t->status);
        stream_free(t);
    }
}

void rio_snaps_on_ack(rio_snaps *s, const char *from_url, uint32_t gid, const rio_sack *a)
{
    ev_tstamp now = ev_now(s->loop);
    sstream *t;

    for (t = s->streams; t; t = t->next)
        if (!t->done && t->gid == gid && t->msg.install_snapshot.last_index == a->last_index &&
            t->msg.install_snapshot.last_term == a->last_term && t->hash == a->hash &&
            strcmp(t->url, from_url) == 0)
            break;
    if (!t || a->have > t->msg.install_snapshot.data.len)
        return; /* a finished or replaced stream, or nonsense */
    if (a->flags & RIO_ACK_COMPLETE) {
        t->acked = t->send_off = a->have;
        finish(t, 0);
        return;
    }
    if (a->flags & RIO_ACK_REWIND) {
        /* The rest of the window reports the same gap: honour it once. */
        if (t->probed && a->have == t->rewind_at && now - t->rewind_time < SNAP_RESEND)
            return;
        t->rewind_at = a->have;
        t->rewind_time = now;
        t->probed = true;
        t->acked = t->send_off = a->have;
        t->progress = now;
    } else if (!t->probed) {
        t->probed = true;
        t->acked = t->send_off = a->have;
        t->progress = now;
        if (a->have > 0)
            s->n_resumed++;
    } else if (a->have > t->acked) {
        t->acked = a->have;
        t->progress = now;
        if (t->send_off < t->acked)
            t->send_off = t->acked;
    }
    pump(s, t, now);
}

/* ---- receiver ----------------------------------------------------------- */

static rasm *asm_get(rio_snaps *s, uint32_t gid)
{
    rasm *a;
    for (a = s->asms; a; a = a->next)
        if (a->gid == gid)
            return a;
    a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->gid = gid;
    a->next = s->asms;
    s->asms = a;
    return a;
}

/* Makes room for `more` bytes after a->have (doubling, never past total). */
static int asm_grow(rasm *a, uint64_t more)
{
    uint64_t want = a->have + more, cap;
    void *p;

    if (want <= a->cap)
        return 0;
    cap = a->cap ? a->cap * 2 : SNAP_CHUNK;
    if (cap < want)
        cap = want;
    if (cap > a->total)
        cap = a->total;
    p = raft_realloc(a->buf, (size_t)cap);
    if (!p)
        return HERALD_ENOMEM;
    a->buf = p;
    a->cap = cap;
    return 0;
}

/* Turns the complete assembly and the last chunk's metadata into a raft
 * InstallSnapshot in rec. */
static int hand_over(rasm *a, rio_rec *rec)
{
    struct raft_install_snapshot *is = &rec->msg.install_snapshot;
    rio_chunk *c = &rec->chunk;

    if (a->total == 0 && !(a->buf = raft_malloc(1)))
        return HERALD_ENOMEM;
    memset(is, 0, sizeof *is);
    is->term = c->term;
    is->last_index = c->last_index;
    is->last_term = c->last_term;
    is->conf_index = c->conf_index;
    is->conf = c->conf; /* moved */
    raft_configuration_init(&c->conf);
    is->data.base = a->buf;
    is->data.len = (size_t)a->total;
    rec->msg.type = RAFT_IO_INSTALL_SNAPSHOT;
    rec->xtype = 0;
    a->buf = NULL;
    a->have = a->cap = 0;
    a->active = false;
    return 0;
}

void rio_snaps_on_chunk(rio_snaps *s, raft_id from, const char *from_url, rio_rec *rec)
{
    const rio_chunk *c = &rec->chunk;
    rio_sack k = {.last_index = c->last_index, .last_term = c->last_term, .hash = c->hash};
    rasm *a = asm_get(s, rec->gid);
    bool same;

    if (!a)
        return; /* no memory for the bookkeeping: the sender resends later */
    same = a->active && a->sender == from && a->last_index == c->last_index &&
           a->last_term == c->last_term && a->total == c->total && a->hash == c->hash;
    if (!same && c->offset > 0 && a->done_sender == from && a->done_index == c->last_index &&
        a->done_hash == c->hash) {
        k.have = c->total; /* a late resend of what was already handed over */
        k.flags = RIO_ACK_COMPLETE;
        goto reply;
    }
    if (!same && a->active && c->term < a->term)
        return; /* a deposed leader's stream: let it stall, do not thrash the new one */
    if (!same) {
        if (c->offset != 0) { /* not the start of a stream we know: from 0, please */
            k.flags = RIO_ACK_REWIND;
            goto reply;
        }
        asm_reset(a); /* a newer snapshot, or another leader's, replaces the old */
        a->active = true;
        a->sender = from;
        a->last_index = c->last_index;
        a->last_term = c->last_term;
        a->total = c->total;
        a->hash = c->hash;
        a->term = c->term;
    }
    if (c->term > a->term)
        a->term = c->term;
    a->last = ev_now(s->loop);
    timer_on(s);
    if (c->offset > a->have) {
        k.have = a->have;
        k.flags = RIO_ACK_REWIND;
        goto reply;
    }
    if (c->offset + c->len > a->have) {
        uint64_t skip = a->have - c->offset, more = c->len - skip;
        if (asm_grow(a, more) != 0) {
            log_warn("rio.snapmem", "raft group %u: no memory to receive a %llu-byte snapshot",
                     rec->gid, (unsigned long long)a->total);
            s->n_bad++;
            asm_reset(a);
            return;
        }
        memcpy(a->buf + a->have, c->data + skip, (size_t)more);
        a->have += more;
    }
    k.have = a->have;
    if (a->have == a->total) {
        if (rio_hash64(a->buf, (size_t)a->total) != a->hash) {
            log_error("rio.snapbad", "raft group %u: snapshot %llu from %s: hash mismatch over "
                      "%llu bytes; receiving it again", rec->gid,
                      (unsigned long long)c->last_index, from_url,
                      (unsigned long long)a->total);
            s->n_bad++;
            asm_reset(a);
            k.have = 0;
            k.flags = RIO_ACK_REWIND;
            goto reply;
        }
        if (hand_over(a, rec) != 0) {
            s->n_bad++;
            asm_reset(a);
            return;
        }
        a->done_sender = from;
        a->done_index = c->last_index;
        a->done_hash = c->hash;
        s->n_installed++;
        k.flags = RIO_ACK_COMPLETE;
    }
reply:
    (void)s->out.put_ack(s->out.arg, from_url, rec->gid, &k); /* lost: the sender resends */
}

/* ---- timer -------------------------------------------------------------- */

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    rio_snaps *s = w->data;
    ev_tstamp now = ev_now(loop);
    bool busy = false;
    sstream *t;
    rasm *a;

    for (t = s->streams; t; t = t->next) {
        if (t->done)
            continue;
        if (now - t->progress >= SNAP_STALL) {
            log_warn("rio.snapstall", "raft group %u: snapshot stream to %s made no progress "
                     "for %.0f s at %llu of %zu bytes; raft will retry", t->gid, t->url,
                     SNAP_STALL, (unsigned long long)t->acked, t->msg.install_snapshot.data.len);
            finish(t, RAFT_NOCONNECTION);
            continue;
        }
        busy = true;
        if (t->probed && now - t->progress >= SNAP_RESEND && now - t->sent >= SNAP_RESEND)
            t->send_off = t->acked; /* chunks or acks lost: go again from what is known */
        pump(s, t, now);
    }
    for (a = s->asms; a; a = a->next) {
        if (!a->active)
            continue;
        if (now - a->last >= SNAP_IDLE) {
            s->n_bad++;
            asm_reset(a);
        } else {
            busy = true;
        }
    }
    if (!busy)
        ev_timer_stop(loop, w);
}
