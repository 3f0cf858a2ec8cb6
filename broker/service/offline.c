/* offline.c — who gets a `message.offline` event: the reports of the
 * session tiers (svc.h, svc_offline), aggregated per message on the
 * process that leads the message's group, then proposed as one OFFLINE
 * command per batch (apply_offline.c records the events).
 *
 * Presence is not replicated: each session tier (the dev process, or each
 * gateway of a cluster) says, for every message it pushed, which of its
 * recipients it had no session of. A user is offline when no tier had
 * them, so a message is decided when every live tier (svc_backend.gateways)
 * has reported — its users are the intersection of the reports — or when
 * callback.offline_wait_ms has passed since the first report: then the
 * intersection of the reports that came is taken (a live tier that missed
 * the event, or was slow, vouches for no one — a user online only there
 * is reported offline: a needless push rather than a missed one). A
 * decided message is
 * remembered for OFF_KEEP_S so a late or repeated report cannot decide it
 * again. Memory is bounded (OFF_MAX_PENDING messages); over it a report is
 * dropped and counted.
 *
 * What is aggregated lives in this process only: a leader that fails, or
 * is deposed, inside the window loses it (those recipients get no event:
 * a deposed leader proposes nothing, as its successor may be gathering the
 * same messages); once the OFFLINE command commits, its events are durable
 * like every other. The tick runs only while messages are held. */
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "hstr.h"
#include "log.h"
#include "svc_int.h"

#define OFF_MAX_PENDING 100000u /* messages being aggregated or remembered */
#define OFF_MAX_GATEWAYS 64u    /* reporting tiers per message */
#define OFF_BATCH_REPORTS 512u  /* reports in one OFFLINE command */
#define OFF_BATCH_USERS 20000u  /* users in one OFFLINE command (one report may
                                   hold more: it goes alone) */
#define OFF_REPORT_USERS 100000u /* users in one report from a tier */
#define OFF_KEEP_S 10.0         /* a decided message is remembered this long */
#define OFF_TICK_S 0.05         /* deadlines are looked at this often */

typedef struct off_msg off_msg;
struct off_msg {
    off_msg *prev, *next;   /* in agg->pend (deadline order) or agg->done */
    uint32_t group;         /* the message's shard group */
    uint64_t seq;           /* the message */
    char *key;              /* tenant NUL conv NUL seq (8 bytes): the map key */
    size_t klen;
    herald_str tenant, conv; /* point into key */
    ev_tstamp at;           /* deadline (pending), then when it is forgotten */
    bool decided;
    bool ready;             /* decided with users: in agg->ready */
    uint32_t n_gw;
    uint32_t gw[OFF_MAX_GATEWAYS]; /* the tiers that reported it */
    uint32_t n_users;
    herald_str *users;      /* not here on any tier that reported (strings owned) */
};

typedef struct off_list {
    off_msg *head, *tail;
} off_list;

struct off_agg {
    svc *s;
    hmap *map;              /* key → off_msg */
    off_list pend;          /* being aggregated, oldest deadline first */
    off_list done;          /* decided, remembered until `at` */
    off_msg **ready;        /* decided with users, not proposed yet */
    uint32_t n_ready, cap_ready;
    ev_timer tick;
    svc_offline_stats st;
};

static void list_push(off_list *l, off_msg *m)
{
    m->next = NULL;
    m->prev = l->tail;
    if (l->tail)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
}

static void list_unlink(off_list *l, off_msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        l->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        l->tail = m->prev;
    m->prev = m->next = NULL;
}

static void users_free(off_msg *m)
{
    for (uint32_t i = 0; i < m->n_users; i++)
        free((char *)m->users[i].ptr);
    free(m->users);
    m->users = NULL;
    m->n_users = 0;
}

static void msg_free(off_msg *m)
{
    users_free(m);
    free(m->key);
    free(m);
}

/* Decides m now: it goes to the done list, and to ready when someone was
 * offline everywhere. */
static int decide(off_agg *g, off_msg *m)
{
    list_unlink(&g->pend, m);
    m->decided = true;
    m->at = ev_now(g->s->loop) + OFF_KEEP_S;
    list_push(&g->done, m);
    if (!m->n_users)
        return 0;
    if (g->n_ready == g->cap_ready) {
        uint32_t nc = g->cap_ready ? g->cap_ready * 2 : 64;
        off_msg **v = realloc(g->ready, nc * sizeof *v);
        if (!v) {
            users_free(m);
            g->st.dropped++;
            return HERALD_ENOMEM;
        }
        g->ready = v;
        g->cap_ready = nc;
    }
    m->ready = true;
    g->ready[g->n_ready++] = m;
    return 0;
}

/* OFFLINE's outcome: what apply recorded and ignored. */
static void offline_applied(step *st, apply_result *res)
{
    off_agg *g = st->job;
    if (res->err) {
        g->st.failed++;
        log_warn("offline.apply", "an OFFLINE command of group %u was refused: %s", st->group,
                 res->errmsg);
        return;
    }
    g->st.events += res->seq;
    g->st.ignored += res->ignored;
}

static int ready_order(const void *a, const void *b)
{
    const off_msg *x = *(off_msg *const *)a, *y = *(off_msg *const *)b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    return hstr_cmp(&x->tenant, &y->tenant);
}

/* Proposes ready[from, to): one group, one tenant, within the batch caps. */
static void propose(off_agg *g, uint32_t from, uint32_t to)
{
    off_msg **r = g->ready + from;
    uint32_t n = to - from, nu = 0, at = 0;
    herald_str *convs = calloc(n, sizeof *convs), *users;
    uint64_t *seqs = calloc(n, sizeof *seqs), *counts = calloc(n, sizeof *counts);
    /* Deposed meanwhile: the new leader gathers the reports the gateways
     * send it now; proposing these too could record a second event. */
    bool leads = !g->s->be.leads || g->s->be.leads(g->s->be.ctx, r[0]->group);
    step *st = NULL;
    cmd k;

    for (uint32_t i = 0; i < n; i++)
        nu += r[i]->n_users;
    users = calloc(nu, sizeof *users);
    if (leads && convs && seqs && counts && users) {
        for (uint32_t i = 0; i < n; i++) {
            convs[i] = r[i]->conv;
            seqs[i] = r[i]->seq;
            counts[i] = r[i]->n_users;
            memcpy(users + at, r[i]->users, r[i]->n_users * sizeof *users);
            at += r[i]->n_users;
        }
        k = (cmd){.op = CMD_OFFLINE, .tenant = r[0]->tenant, .n_oconvs = n, .oconvs = convs,
                  .n_oseqs = n, .oseqs = seqs, .n_ocounts = n, .ocounts = counts,
                  .n_members = nu, .members = users, .ts = session_now_ms()};
        st = g->s->stopping ? NULL : svc_own_step(g->s, &k, r[0]->group, offline_applied);
    }
    if (st) {
        st->job = g;
        g->st.proposed++;
    } else {
        g->st.dropped += n;
        if (g->st.dropped == n || g->st.dropped % 1000 < n)
            log_warn("offline.propose", "group %u: an OFFLINE command of %u messages was not "
                     "proposed (%s): those recipients get no message.offline (%llu so far)",
                     r[0]->group, n, leads ? "not submitted" : "no longer the group's leader",
                     (unsigned long long)g->st.dropped);
    }
    for (uint32_t i = 0; i < n; i++) {
        r[i]->ready = false;
        users_free(r[i]); /* the command holds its copy now */
    }
    free(convs);
    free(seqs);
    free(counts);
    free(users);
}

/* Every decided message with users, as few commands as the caps allow. */
static void flush(off_agg *g)
{
    uint32_t i = 0;
    if (!g->n_ready)
        return;
    qsort(g->ready, g->n_ready, sizeof *g->ready, ready_order);
    while (i < g->n_ready) {
        uint32_t j = i + 1, users = g->ready[i]->n_users;
        while (j < g->n_ready && ready_order(&g->ready[i], &g->ready[j]) == 0 &&
               j - i < OFF_BATCH_REPORTS && users + g->ready[j]->n_users <= OFF_BATCH_USERS)
            users += g->ready[j++]->n_users;
        propose(g, i, j);
        i = j;
    }
    g->n_ready = 0;
}

/* The tick runs only while messages are held: an idle process sleeps. It
 * keeps no loop running on its own (ev_unref while active). */
static void tick_arm(off_agg *g)
{
    if (ev_is_active(&g->tick))
        return;
    ev_timer_start(g->s->loop, &g->tick);
    ev_unref(g->s->loop);
}

static void tick_disarm(off_agg *g)
{
    if (!ev_is_active(&g->tick))
        return;
    ev_ref(g->s->loop);
    ev_timer_stop(g->s->loop, &g->tick);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    off_agg *g = w->data;
    ev_tstamp now = ev_now(loop);
    (void)revents;

    while (g->pend.head && g->pend.head->at <= now) {
        g->st.timed_out++;
        decide(g, g->pend.head);
    }
    while (g->done.head && g->done.head->at <= now) {
        off_msg *m = g->done.head;
        list_unlink(&g->done, m);
        hmap_del(g->map, m->key, m->klen);
        msg_free(m);
    }
    flush(g);
    if (!g->pend.head && !g->done.head)
        tick_disarm(g);
}

int off_create(svc *s, off_agg **out)
{
    off_agg *g = calloc(1, sizeof *g);
    if (!g)
        return HERALD_ENOMEM;
    g->s = s;
    if (hmap_create(&g->map) != 0) {
        free(g);
        return HERALD_ENOMEM;
    }
    ev_timer_init(&g->tick, on_tick, OFF_TICK_S, OFF_TICK_S);
    g->tick.data = g;
    *out = g;
    return 0;
}

void off_destroy(off_agg *g)
{
    off_list *ls[2];
    if (!g)
        return;
    tick_disarm(g);
    ls[0] = &g->pend;
    ls[1] = &g->done;
    for (int i = 0; i < 2; i++)
        while (ls[i]->head) {
            off_msg *m = ls[i]->head;
            list_unlink(ls[i], m);
            msg_free(m);
        }
    hmap_destroy(g->map);
    free(g->ready);
    free(g);
}

void off_stats(const off_agg *g, svc_offline_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!g)
        return;
    *out = g->st;
    out->pending = (uint32_t)hmap_count(g->map);
}

/* The message of report i: found, or new (NULL with *rc set when it
 * cannot be held). */
static off_msg *msg_of(off_agg *g, const svc_offline_report *r, uint32_t i, int *rc)
{
    size_t kl = (size_t)r->tenant.len + 1 + r->convs[i].len + 1 + 8;
    char key[2 * TOKEN_ID_MAX + 10];
    off_msg *m;

    memcpy(key, r->tenant.ptr, r->tenant.len);
    key[r->tenant.len] = '\0';
    memcpy(key + r->tenant.len + 1, r->convs[i].ptr, r->convs[i].len);
    key[r->tenant.len + 1 + r->convs[i].len] = '\0';
    for (int b = 0; b < 8; b++)
        key[kl - 8 + b] = (char)(r->seqs[i] >> (56 - 8 * b));
    m = hmap_get(g->map, key, kl);
    if (m)
        return m;
    if (hmap_count(g->map) >= OFF_MAX_PENDING) {
        *rc = HERALD_EBUSY;
        return NULL;
    }
    m = calloc(1, sizeof *m);
    if (!m || !(m->key = malloc(kl)) || hmap_put(g->map, key, kl, m) != 0) {
        if (m)
            free(m->key);
        free(m);
        *rc = HERALD_ENOMEM;
        return NULL;
    }
    memcpy(m->key, key, kl);
    m->klen = kl;
    m->tenant = (herald_str){.ptr = m->key, .len = r->tenant.len};
    m->conv = (herald_str){.ptr = m->key + r->tenant.len + 1, .len = r->convs[i].len};
    m->group = r->group;
    m->seq = r->seqs[i];
    m->at = ev_now(g->s->loop) + g->s->cfg.cb.offline_wait_ms / 1000.0;
    list_push(&g->pend, m);
    tick_arm(g);
    return m;
}

/* The first report's users become m's. */
static int users_set(off_msg *m, const herald_str *u, uint32_t n)
{
    m->users = n ? calloc(n, sizeof *m->users) : NULL;
    if (n && !m->users)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        char *p = malloc(u[i].len + 1);
        if (!p)
            return HERALD_ENOMEM; /* m->n_users so far are freed with m */
        memcpy(p, u[i].ptr, u[i].len);
        p[u[i].len] = '\0';
        m->users[m->n_users++] = (herald_str){.ptr = p, .len = u[i].len};
    }
    return 0;
}

/* A later report: m keeps the users it names too (not here either). */
static int users_keep(off_msg *m, const herald_str *u, uint32_t n)
{
    herald_str *v;
    uint32_t kept = 0;

    if (!m->n_users)
        return 0;
    v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return HERALD_ENOMEM;
    memcpy(v, u, n * sizeof *v);
    qsort(v, n, sizeof *v, hstr_cmp);
    for (uint32_t i = 0; i < m->n_users; i++) {
        if (n && bsearch(&m->users[i], v, n, sizeof *v, hstr_cmp))
            m->users[kept++] = m->users[i];
        else
            free((char *)m->users[i].ptr);
    }
    m->n_users = kept;
    free(v);
    return 0;
}

/* True when every live tier has reported m. */
static bool complete(const off_msg *m, const uint32_t *live, uint32_t n_live)
{
    for (uint32_t i = 0; i < n_live; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < m->n_gw && !seen; j++)
            seen = m->gw[j] == live[i];
        if (!seen)
            return false;
    }
    return true;
}

int svc_offline(svc *s, const svc_offline_report *r)
{
    off_agg *g = s->off;
    uint32_t live[OFF_MAX_GATEWAYS], n_live = 0;
    uint64_t at = 0;
    int rc = 0;

    if (!g || r->group >= s->nshards || !token_id_valid(r->tenant.ptr, r->tenant.len) ||
        r->n_users > OFF_REPORT_USERS)
        return HERALD_EINVAL;
    for (uint32_t i = 0; i < r->n; i++) {
        if (r->counts[i] > r->n_users - at || !r->convs[i].len ||
            r->convs[i].len > TOKEN_ID_MAX)
            return HERALD_EINVAL;
        at += r->counts[i];
    }
    if (at != r->n_users)
        return HERALD_EINVAL;
    if (s->be.leads && !s->be.leads(s->be.ctx, r->group))
        return HERALD_ENOT_LEADER;
    if (s->be.gateways)
        n_live = s->be.gateways(s->be.ctx, live, OFF_MAX_GATEWAYS);
    else
        live[n_live++] = r->gateway; /* one tier: its report is the whole answer */
    g->st.reports++;
    at = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        const herald_str *u = r->users + at;
        uint32_t n = (uint32_t)r->counts[i];
        bool reported = false;
        off_msg *m;
        at += n;
        g->st.messages++;
        if (!(m = msg_of(g, r, i, &rc))) {
            g->st.dropped++;
            continue;
        }
        for (uint32_t j = 0; j < m->n_gw && !reported; j++)
            reported = m->gw[j] == r->gateway;
        if (m->decided || reported || m->n_gw == OFF_MAX_GATEWAYS) {
            g->st.late++; /* decided already, or a repeated report */
            continue;
        }
        rc = m->n_gw ? users_keep(m, u, n) : users_set(m, u, n);
        m->gw[m->n_gw++] = r->gateway;
        if (rc) {
            users_free(m); /* no event rather than a wrong one */
            g->st.dropped++;
        }
        if (complete(m, live, n_live))
            decide(g, m);
    }
    flush(g);
    return 0;
}

void svc_offline_stats_get(const svc *s, svc_offline_stats *out) { off_stats(s->off, out); }
