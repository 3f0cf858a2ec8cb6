/* evpub.c — see evpub.h. */
#include "evpub.h"

#include <ev.h>
#include <herald/error.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pubsub.h"

#define EVPUB_RING_DEFAULT 65536u
#define EVPUB_RING_BYTES_DEFAULT ((size_t)64 << 20)
#define EVPUB_BATCH_DEFAULT ((size_t)256 << 10)
#define EVPUB_HEAD_S 0.1      /* a HEAD marker after new events, this often */
#define EVPUB_HEAD_IDLE_S 1.0 /* and this often when nothing happens */

typedef struct ring_slot {
    uint64_t pubseq;       /* 0: empty */
    uint8_t *data;         /* encoded event (owned) */
    size_t len;
} ring_slot;

struct evpub {
    struct ev_loop *loop;
    ps_pub *pub;
    uint32_t node_id;
    uint64_t epoch;
    uint64_t next_seq;     /* pubseq of the next event */
    herald_buf batch;      /* events of this loop iteration */
    size_t batch_bytes;
    ring_slot *ring;       /* index = pubseq % cap */
    uint32_t cap;
    size_t ring_bytes, ring_max;
    uint64_t oldest;       /* lowest pubseq still in the ring (0: none) */
    ev_prepare flush_w;
    ev_timer head_w;       /* HEAD markers: the newest pubseq, repeated */
    uint64_t head_sent;    /* pubseq of the last HEAD */
    ev_tstamp head_at;     /* when it went out */
    evpub_stats st;
};

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    evpub_flush(w->data);
}

/* A HEAD marker after new events, and now and then anyway: a gateway that
 * lost the newest batch learns from it that events are missing. */
static void on_head(struct ev_loop *loop, ev_timer *w, int revents)
{
    evpub *p = w->data;
    uint64_t last = p->next_seq - 1;
    ev_tstamp now = ev_now(loop);
    nw_event e = {.kind = NW_EV_HEAD, .node = p->node_id, .epoch = p->epoch, .pubseq = last};
    herald_buf b = {0}, batch = {0};
    (void)revents;
    if (!last || (last == p->head_sent && now - p->head_at < EVPUB_HEAD_IDLE_S))
        return;
    evpub_flush(p); /* after the events it speaks of */
    if (nw_event_encode(&e, &b) == 0 && nw_batch_add(&batch, b.data, b.len) == 0 &&
        ps_publish(p->pub, batch.data, batch.len) == 0) {
        p->head_sent = last;
        p->head_at = now;
    }
    herald_buf_free(&b);
    herald_buf_free(&batch);
}

int evpub_create(struct ev_loop *loop, const evpub_config *cfg, evpub **out)
{
    evpub *p = calloc(1, sizeof *p);
    int rc;

    *out = NULL;
    if (!p)
        return HERALD_ENOMEM;
    p->loop = loop;
    p->node_id = cfg->node_id;
    p->cap = cfg->ring ? cfg->ring : EVPUB_RING_DEFAULT;
    p->ring_max = cfg->ring_bytes ? cfg->ring_bytes : EVPUB_RING_BYTES_DEFAULT;
    p->batch_bytes = cfg->batch_bytes ? cfg->batch_bytes : EVPUB_BATCH_DEFAULT;
    p->ring = calloc(p->cap, sizeof *p->ring);
    if (!p->ring) {
        free(p);
        return HERALD_ENOMEM;
    }
    /* A new stream per start: a gateway tells a restarted node's events
     * from the old ones and does not ask for what died with the process. */
    do
        randombytes_buf(&p->epoch, sizeof p->epoch);
    while (p->epoch == 0);
    p->next_seq = 1;
    p->st.epoch = p->epoch;
    rc = ps_pub_create(cfg->url, cfg->sendbuf, cfg->tls, &p->pub);
    if (rc) {
        free(p->ring);
        free(p);
        return rc;
    }
    ev_prepare_init(&p->flush_w, on_prepare);
    p->flush_w.data = p;
    ev_prepare_start(loop, &p->flush_w);
    ev_timer_init(&p->head_w, on_head, EVPUB_HEAD_S, EVPUB_HEAD_S);
    p->head_w.data = p;
    ev_timer_start(loop, &p->head_w);
    *out = p;
    return 0;
}

/* Drops the oldest events until the ring fits its byte budget plus n. */
static void ring_make_room(evpub *p, size_t n)
{
    while (p->oldest && p->ring_bytes + n > p->ring_max && p->oldest < p->next_seq) {
        ring_slot *s = &p->ring[p->oldest % p->cap];
        if (s->pubseq == p->oldest) {
            p->ring_bytes -= s->len;
            free(s->data);
            memset(s, 0, sizeof *s);
        }
        p->oldest++;
    }
    if (p->oldest == p->next_seq)
        p->oldest = 0;
}

int evpub_add(evpub *p, nw_event *e)
{
    herald_buf b = {0};
    ring_slot *s;
    int rc;

    e->node = p->node_id;
    e->epoch = p->epoch;
    e->pubseq = p->next_seq;
    rc = nw_event_encode(e, &b);
    if (rc == 0)
        rc = nw_batch_add(&p->batch, b.data, b.len);
    if (rc) {
        herald_buf_free(&b);
        return rc;
    }
    /* Into the ring (the slot of pubseq - cap, if any, goes). */
    ring_make_room(p, b.len);
    s = &p->ring[e->pubseq % p->cap];
    if (s->pubseq) {
        p->ring_bytes -= s->len;
        free(s->data);
        if (p->oldest && p->oldest <= s->pubseq)
            p->oldest = s->pubseq + 1;
    }
    s->pubseq = e->pubseq;
    s->data = b.data; /* the ring owns the encoding now */
    s->len = b.len;
    p->ring_bytes += b.len;
    if (!p->oldest)
        p->oldest = e->pubseq;
    p->next_seq++;
    p->st.events++;
    if (p->batch.len >= p->batch_bytes)
        evpub_flush(p);
    return 0;
}

void evpub_flush(evpub *p)
{
    if (!p->batch.len)
        return;
    if (ps_publish(p->pub, p->batch.data, p->batch.len) != 0)
        p->st.failed++; /* the ring still has them: gateways repair */
    else
        p->st.batches++;
    p->batch.len = 0;
}

int evpub_replay(evpub *p, uint64_t epoch, uint64_t from, uint64_t to, herald_str *frames,
                 uint32_t cap, uint32_t *n)
{
    *n = 0;
    if (epoch != p->epoch || !p->oldest || to < p->oldest || from >= p->next_seq)
        return HERALD_ENOT_FOUND;
    if (from < p->oldest)
        from = p->oldest; /* the older ones are gone: the receiver sees where it starts */
    if (to >= p->next_seq)
        to = p->next_seq - 1;
    for (uint64_t q = from; q <= to && *n < cap; q++) {
        const ring_slot *s = &p->ring[q % p->cap];
        if (s->pubseq != q)
            break;
        frames[(*n)++] = (herald_str){.ptr = (const char *)s->data, .len = (uint32_t)s->len};
    }
    p->st.replays++;
    return *n ? 0 : HERALD_ENOT_FOUND;
}

void evpub_stats_get(const evpub *p, evpub_stats *out) { *out = p->st; }

void evpub_destroy(evpub *p)
{
    if (!p)
        return;
    evpub_flush(p);
    ev_prepare_stop(p->loop, &p->flush_w);
    ev_timer_stop(p->loop, &p->head_w);
    ps_pub_destroy(p->pub);
    for (uint32_t i = 0; i < p->cap; i++)
        free(p->ring[i].data);
    free(p->ring);
    herald_buf_free(&p->batch);
    free(p);
}
