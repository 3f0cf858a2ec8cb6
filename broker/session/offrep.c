/* offrep.c — the session tier's offline reports; see offrep.h. */
#include "offrep.h"

#include <ev.h>
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "hstr.h"
#include "log.h"
#include "prom.h"
#include "session.h"

/* The messages of one (group, tenant) gathered since the last flush. */
typedef struct ob {
    uint32_t group;
    char *tenant;
    uint32_t n, cap;
    herald_str *convs;      /* strings owned */
    uint64_t *seqs;
    uint64_t *counts;
    uint32_t n_users, cap_users;
    herald_str *users;      /* strings owned */
} ob;

struct offrep {
    struct ev_loop *loop;
    tier *t;
    offrep_send_fn send;
    void *arg;
    ev_timer flush_w;
    double batch_s;         /* flush_w's delay */
    ob *b[OFFREP_MAX_BATCHES];
    uint32_t nb;
    uint64_t reports;       /* messages reported */
    uint64_t users;         /* … their users not here */
    uint64_t dropped;       /* messages not reported (bounds, memory, send failed) */
    uint64_t stale;         /* pushes too late after their commit to report */
    uint64_t batches;       /* batches handed on */
};

static void ob_free(ob *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; i < b->n; i++)
        free((char *)b->convs[i].ptr);
    for (uint32_t i = 0; i < b->n_users; i++)
        free((char *)b->users[i].ptr);
    free(b->convs);
    free(b->seqs);
    free(b->counts);
    free(b->users);
    free(b->tenant);
    free(b);
}

static void drop(offrep *o, uint64_t n)
{
    o->dropped += n;
    if (o->dropped == n || o->dropped / 1000 != (o->dropped - n) / 1000)
        log_warn("offline.drop", "%llu offline reports dropped so far (bounds, memory or "
                 "the leader out of reach): their recipients get no message.offline",
                 (unsigned long long)o->dropped);
}

/* Hands batch i on and forgets it (the last batch takes its place). */
static void send_batch(offrep *o, uint32_t i)
{
    ob *b = o->b[i];
    offrep_batch v = {.group = b->group, .tenant = b->tenant, .n = b->n, .convs = b->convs,
                      .seqs = b->seqs, .counts = b->counts, .n_users = b->n_users,
                      .users = b->users};
    if (o->send(o->arg, &v) == 0)
        o->batches++;
    else
        drop(o, b->n);
    ob_free(b);
    o->b[i] = o->b[--o->nb];
    o->b[o->nb] = NULL;
}

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    offrep *o = w->data;
    (void)loop;
    (void)revents;
    while (o->nb)
        send_batch(o, o->nb - 1);
    ev_timer_stop(o->loop, &o->flush_w);
}

int offrep_create(struct ev_loop *loop, tier *t, uint32_t batch_ms, offrep_send_fn send,
                  void *arg, offrep **out)
{
    offrep *o = calloc(1, sizeof *o);
    double s = (batch_ms < 10 ? 10 : batch_ms) / 1000.0;
    if (!o)
        return HERALD_ENOMEM;
    *o = (offrep){.loop = loop, .t = t, .send = send, .arg = arg, .batch_s = s};
    /* Armed by the first report after a flush: an idle tier wakes no one. */
    ev_timer_init(&o->flush_w, flush_cb, s, 0.0);
    o->flush_w.data = o;
    *out = o;
    return 0;
}

void offrep_destroy(offrep *o)
{
    if (!o)
        return;
    ev_timer_stop(o->loop, &o->flush_w);
    for (uint32_t i = 0; i < o->nb; i++)
        ob_free(o->b[i]);
    free(o);
}

/* The batch of (group, tenant), made when missing (NULL at the bound). */
static ob *batch_of(offrep *o, uint32_t group, const char *tenant)
{
    ob *b;
    for (uint32_t i = 0; i < o->nb; i++)
        if (o->b[i]->group == group && strcmp(o->b[i]->tenant, tenant) == 0)
            return o->b[i];
    if (o->nb == OFFREP_MAX_BATCHES || !(b = calloc(1, sizeof *b)))
        return NULL;
    b->group = group;
    if (!(b->tenant = strdup(tenant))) {
        free(b);
        return NULL;
    }
    o->b[o->nb++] = b;
    if (!ev_is_active(&o->flush_w)) {
        /* Set every time: a timer that expired keeps what was left of its
         * delay (nothing), and would fire at once. */
        ev_timer_set(&o->flush_w, o->batch_s, 0.0);
        ev_timer_start(o->loop, &o->flush_w);
    }
    return b;
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t esize)
{
    uint32_t nc;
    void *np;
    if (need <= *cap)
        return 0;
    nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    if (!(np = realloc(*p, (size_t)nc * esize)))
        return HERALD_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

/* Room for one message more in b (its three arrays grow together; after a
 * failure the ones grown already are merely larger than b->cap). */
static int reserve(ob *b)
{
    uint32_t nc = b->cap ? b->cap * 2 : 16;
    void *p;
    if (b->n < b->cap)
        return 0;
    if (!(p = realloc(b->convs, nc * sizeof *b->convs)))
        return HERALD_ENOMEM;
    b->convs = p;
    if (!(p = realloc(b->seqs, nc * sizeof *b->seqs)))
        return HERALD_ENOMEM;
    b->seqs = p;
    if (!(p = realloc(b->counts, nc * sizeof *b->counts)))
        return HERALD_ENOMEM;
    b->counts = p;
    b->cap = nc;
    return 0;
}

void offrep_note(offrep *o, const char *tenant, const char *const *users, uint32_t n,
                 const herald_frame *f)
{
    const herald_msg *m = &f->msg;
    uint32_t ucap, start, away = 0;
    ob *b;

    if (!o || f->type != HERALD_FT_DELIVER || !m->seq || !m->conv.len ||
        (m->flags & HERALD_MSGF_RECALLED))
        return;
    if (m->ts && m->ts + OFFREP_STALE_MS < session_now_ms()) {
        o->stale++;
        return;
    }
    o->reports++;
    b = batch_of(o, m->group, tenant);
    if (b && (b->n == OFFREP_MAX_REPORTS || b->n_users + n > OFFREP_MAX_USERS)) {
        /* Full: it goes now, the message starts the next one. */
        for (uint32_t i = 0; i < o->nb; i++)
            if (o->b[i] == b)
                send_batch(o, i);
        b = batch_of(o, m->group, tenant);
    }
    if (!b || n > OFFREP_MAX_USERS) {
        drop(o, 1);
        return;
    }
    if (reserve(b) != 0) {
        drop(o, 1);
        return;
    }
    ucap = b->cap_users;
    start = b->n_users;
    for (uint32_t i = 0; i < n; i++) {
        herald_str u;
        if ((m->from.len == strlen(users[i]) && memcmp(m->from.ptr, users[i], m->from.len) == 0) ||
            tier_online(o->t, tenant, users[i]))
            continue;
        if (grow((void **)&b->users, &ucap, b->n_users + 1, sizeof *b->users) ||
            !(u = hstr_dup(users[i], strlen(users[i]))).ptr)
            goto undo;
        b->cap_users = ucap;
        b->users[b->n_users++] = u;
        away++;
    }
    b->convs[b->n] = hstr_dup(m->conv.ptr, m->conv.len);
    if (!b->convs[b->n].ptr)
        goto undo;
    b->seqs[b->n] = m->seq;
    b->counts[b->n] = away;
    b->n++;
    o->users += away;
    return;
undo:
    b->cap_users = ucap;
    while (b->n_users > start)
        free((char *)b->users[--b->n_users].ptr);
    drop(o, 1);
}

void offrep_lost(offrep *o, uint32_t n)
{
    if (o)
        drop(o, n);
}

void offrep_metrics(const offrep *o, prom_w *w)
{
    if (!o)
        return;
    prom_one(w, "herald_offline_reports_total", "counter", o->reports,
             "Messages this session tier pushed and reported for message.offline");
    prom_one(w, "herald_offline_report_users_total", "counter", o->users,
             "Recipients of them this tier had no session of");
    prom_one(w, "herald_offline_reports_dropped_total", "counter", o->dropped,
             "Reports dropped (batch bounds, memory, the group's leader not reached)");
    prom_one(w, "herald_offline_reports_stale_total", "counter", o->stale,
             "Pushes not reported: they came over 5 s after the message's commit (a replay)");
    prom_one(w, "herald_offline_report_batches_total", "counter", o->batches,
             "Report batches handed to the group's leader");
}
