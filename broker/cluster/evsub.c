/* evsub.c — see evsub.h. */
#include "evsub.h"

#include <ev.h>
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define EVSUB_STREAMS 16 /* publishers tracked (nodes of the cluster) */

typedef struct held {
    uint64_t seq;
    uint8_t *data;   /* encoded event (owned) */
    size_t len;
} held;

typedef struct stream {
    evsub *s;
    uint32_t node;   /* 0: slot unused */
    uint64_t epoch;
    uint64_t next;   /* pubseq to hand on next */
    held *h;         /* events behind a hole, increasing seq, from h[head] */
    uint32_t head, nh, caph;
    bool fetching;   /* a replay of [ask_from, ask_to] is on its way */
    bool replaying;  /* handing on a replay's events: no new asks meanwhile */
    uint64_t ask_from, ask_to;
    ev_timer repair; /* the asked range is given up when it fires */
} stream;

struct evsub {
    struct ev_loop *loop;
    evsub_config cfg;
    evsub_deliver_fn deliver;
    evsub_fetch_fn fetch;
    void *arg;
    stream st[EVSUB_STREAMS];
    evsub_stats stats;
};

static void on_repair_timeout(struct ev_loop *loop, ev_timer *w, int revents);

int evsub_create(struct ev_loop *loop, const evsub_config *cfg, evsub_deliver_fn deliver,
                 evsub_fetch_fn fetch, void *arg, evsub **out)
{
    evsub *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return HERALD_ENOMEM;
    s->loop = loop;
    s->cfg = *cfg;
    if (!s->cfg.repair_ms)
        s->cfg.repair_ms = 2000;
    if (!s->cfg.hold_max)
        s->cfg.hold_max = 100000;
    s->deliver = deliver;
    s->fetch = fetch;
    s->arg = arg;
    for (int i = 0; i < EVSUB_STREAMS; i++) {
        s->st[i].s = s;
        ev_timer_init(&s->st[i].repair, on_repair_timeout, s->cfg.repair_ms / 1000.0, 0.0);
        s->st[i].repair.data = &s->st[i];
    }
    *out = s;
    return 0;
}

static stream *stream_of(evsub *s, uint32_t node, bool create)
{
    stream *free_slot = NULL;
    for (int i = 0; i < EVSUB_STREAMS; i++) {
        if (s->st[i].node == node)
            return &s->st[i];
        if (!s->st[i].node && !free_slot)
            free_slot = &s->st[i];
    }
    if (!create || !free_slot)
        return NULL;
    free_slot->node = node;
    free_slot->epoch = 0;
    return free_slot;
}

static void held_clear(stream *t)
{
    for (uint32_t i = t->head; i < t->nh; i++)
        free(t->h[i].data);
    t->head = t->nh = 0;
}

static void hand_on(evsub *s, const nw_event *e)
{
    s->stats.delivered++;
    s->deliver(s->arg, e);
}

static void hand_on_raw(evsub *s, const uint8_t *p, size_t n)
{
    nw_event e;
    if (nw_event_decode(p, n, &e) != 0) {
        s->stats.bad++;
        return;
    }
    hand_on(s, &e);
    nw_event_release(&e);
}

/* Asks for next..to (the hole before the first held event, or up to a
 * HEAD marker's seq when nothing is held). */
static void ask_upto(stream *t, uint64_t to)
{
    evsub *s = t->s;
    if (t->fetching || t->replaying || to < t->next)
        return;
    s->stats.gaps++;
    t->fetching = true;
    t->ask_from = t->next;
    t->ask_to = to;
    ev_timer_stop(s->loop, &t->repair);
    ev_timer_set(&t->repair, s->cfg.repair_ms / 1000.0, 0.0);
    ev_timer_start(s->loop, &t->repair);
    log_debug("evsub.ask", "node %u: asking for %llu..%llu (%u held)", t->node,
              (unsigned long long)t->next, (unsigned long long)to, t->nh - t->head);
    if (s->fetch(s->arg, t->node, t->epoch, t->next, to) != 0)
        log_warn("evsub.fetch", "node %u: cannot ask for events %llu..%llu", t->node,
                 (unsigned long long)t->next, (unsigned long long)to);
}

static void ask(stream *t)
{
    if (t->head < t->nh)
        ask_upto(t, t->h[t->head].seq - 1);
}

/* Hands on held events that are next in line; asks for the next hole. */
static void drain(stream *t)
{
    evsub *s = t->s;
    while (t->head < t->nh && t->h[t->head].seq <= t->next) {
        held *x = &t->h[t->head++];
        if (x->seq == t->next) {
            hand_on_raw(s, x->data, x->len);
            t->next++;
        } else {
            s->stats.dups++;
        }
        free(x->data);
    }
    if (t->head == t->nh) {
        t->head = t->nh = 0;
        if (!t->fetching)
            ev_timer_stop(s->loop, &t->repair);
        return;
    }
    ask(t);
}

/* Events next..upto cannot be had: skip them (clamped to the hole before
 * the first held event), then go on with what is held. */
static void give_up_to(stream *t, uint64_t upto)
{
    evsub *s = t->s;
    if (t->head < t->nh && upto >= t->h[t->head].seq)
        upto = t->h[t->head].seq - 1;
    if (t->head == t->nh && upto == UINT64_MAX)
        return; /* nothing held: no hole to give up */
    if (upto >= t->next) {
        s->stats.lost += upto - t->next + 1;
        log_warn("evsub.lost", "node %u: events %llu..%llu lost (clients repair with SYNC)",
                 t->node, (unsigned long long)t->next, (unsigned long long)upto);
        t->next = upto + 1;
    }
    drain(t);
}

static void give_up(stream *t) { give_up_to(t, UINT64_MAX); }

static void on_repair_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    stream *t = w->data;
    (void)loop;
    (void)revents;
    log_warn("evsub.timeout", "node %u: no replay within %u ms", t->node, t->s->cfg.repair_ms);
    t->fetching = false;
    give_up_to(t, t->ask_to);
}

static void hold(stream *t, const uint8_t *p, size_t n, uint64_t seq)
{
    evsub *s = t->s;
    uint8_t *copy;
    if (t->nh > t->head && seq <= t->h[t->nh - 1].seq) {
        s->stats.dups++; /* live traffic arrives in order: an older one is a repeat */
        return;
    }
    if (t->nh - t->head >= s->cfg.hold_max) {
        give_up(t); /* too far behind: stop waiting for the hole */
        if (seq == t->next) {
            hand_on_raw(s, p, n);
            t->next++;
            drain(t);
            return;
        }
    }
    if (t->nh == t->caph) {
        if (t->head > 0) {
            memmove(t->h, t->h + t->head, (t->nh - t->head) * sizeof *t->h);
            t->nh -= t->head;
            t->head = 0;
        } else {
            uint32_t nc = t->caph ? t->caph * 2 : 64;
            held *nh = realloc(t->h, nc * sizeof *nh);
            if (!nh) {
                s->stats.lost++;
                return;
            }
            t->h = nh;
            t->caph = nc;
        }
    }
    copy = malloc(n);
    if (!copy) {
        s->stats.lost++;
        return;
    }
    memcpy(copy, p, n);
    t->h[t->nh++] = (held){.seq = seq, .data = copy, .len = n};
}

/* A new stream of this node (first contact, or it restarted): drop what was
 * held for the old one and expect `next` first. */
static void restart(stream *t, uint64_t epoch, uint64_t next)
{
    held_clear(t);
    t->fetching = false;
    ev_timer_stop(t->s->loop, &t->repair);
    t->epoch = epoch;
    t->next = next;
}

/* One event from the live stream or from a replay. */
static void process(evsub *s, const uint8_t *p, size_t n, bool replay)
{
    nw_event e;
    stream *t;

    if (nw_event_decode(p, n, &e) != 0) {
        s->stats.bad++;
        return;
    }
    t = e.node && e.epoch && e.pubseq ? stream_of(s, e.node, !replay) : NULL;
    if (e.kind == NW_EV_HEAD) {
        /* The newest pubseq of the stream: a tail we never got? */
        if (!t || replay)
            goto out;
        if (t->epoch != e.epoch)
            restart(t, e.epoch, e.pubseq + 1); /* history before we listened is not ours */
        else if (t->head == t->nh) {
            ask_upto(t, e.pubseq);
        }
        goto out;
    }
    if (!t) {
        if (!replay)
            hand_on(s, &e); /* unsequenced or too many publishers: as it comes */
        goto out;
    }
    if (t->epoch != e.epoch) {
        if (replay)
            goto out; /* an answer about a stream that is over */
        /* First event of this node, or it restarted: start over from here. */
        restart(t, e.epoch, e.pubseq);
    }
    if (e.pubseq < t->next) {
        s->stats.dups++;
    } else if (e.pubseq == t->next) {
        if (replay)
            s->stats.repaired++;
        hand_on(s, &e);
        t->next++;
        drain(t);
    } else if (replay) {
        /* The node no longer had the ones before this. */
        log_warn("evsub.replay", "node %u: replay starts at %llu, wanted %llu", t->node,
                 (unsigned long long)e.pubseq, (unsigned long long)t->next);
        s->stats.lost += e.pubseq - t->next;
        t->next = e.pubseq;
        s->stats.repaired++;
        hand_on(s, &e);
        t->next++;
        drain(t);
    } else {
        hold(t, p, n, e.pubseq);
        ask(t);
    }
out:
    nw_event_release(&e);
}

void evsub_batch(evsub *s, const uint8_t *p, size_t n)
{
    size_t off = 0, len;
    const uint8_t *ev;
    int rc;
    while ((rc = nw_batch_next(p, n, &off, &ev, &len)) == 0)
        process(s, ev, len, false);
    if (rc != HERALD_ENOT_FOUND)
        s->stats.bad++;
}

void evsub_replayed(evsub *s, uint32_t node, uint64_t epoch, uint64_t from, uint64_t to,
                    int status, const herald_str *events, uint32_t n)
{
    stream *t = stream_of(s, node, false);
    bool current;

    if (!t || t->epoch != epoch)
        return;
    /* Else a late answer to a range already given up. */
    current = t->fetching && from == t->ask_from && to == t->ask_to;
    if (current) {
        t->fetching = false;
        ev_timer_stop(s->loop, &t->repair);
    }
    if (status)
        log_warn("evsub.replay", "node %u: replay failed: %s", node, herald_err_name(status));
    t->replaying = true;
    for (uint32_t i = 0; status == 0 && i < n; i++)
        process(s, (const uint8_t *)events[i].ptr, events[i].len, true);
    t->replaying = false;
    if (!current || t->epoch != epoch)
        return;
    /* What the answer did not bring of the asked range is gone; a hole
     * after it (newer losses) is asked for next. */
    if (t->next <= t->ask_to)
        give_up_to(t, t->ask_to);
    else
        drain(t);
}

void evsub_stats_get(const evsub *s, evsub_stats *out) { *out = s->stats; }

void evsub_destroy(evsub *s)
{
    if (!s)
        return;
    for (int i = 0; i < EVSUB_STREAMS; i++) {
        ev_timer_stop(s->loop, &s->st[i].repair);
        held_clear(&s->st[i]);
        free(s->st[i].h);
    }
    free(s);
}
