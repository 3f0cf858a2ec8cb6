/* events.c — the push events of an applied command, from its result; see
 * events.h. */
#include "events.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "hmap.h"
#include "log.h"
#include "token.h"

#define CHAIN_CAP_DEFAULT 1000000u

struct events_chain {
    hmap *m;        /* "tenant\0user" → (void *)(uintptr_t) last position */
    uint32_t cap;   /* forget everything at this many */
    uint64_t term;  /* leadership term the chain belongs to */
    /* Every message after `base` went through this chain: a recipient it
     * does not hold had none of them, so its previous position is at most
     * base. Set by the first message after a (re)start or a term change
     * (its pos - 1); raised to the current message's pos when the chain
     * forgets in the middle of one. */
    uint64_t base;
    bool base_set;
};

int events_chain_new(uint32_t cap, events_chain **out)
{
    events_chain *c = calloc(1, sizeof *c);
    if (!c || hmap_create(&c->m) != 0) {
        free(c);
        return HERALD_ENOMEM;
    }
    c->cap = cap ? cap : CHAIN_CAP_DEFAULT;
    *out = c;
    return 0;
}

void events_chain_free(events_chain *c)
{
    if (!c)
        return;
    hmap_destroy(c->m);
    free(c);
}

/* Forgets every recipient (a fresh map; on ENOMEM the old one is emptied
 * key by key). at: the position processed when it forgets (what it knew
 * up to there is gone), or 0 for a new term (the next message sets base). */
static void chain_forget(events_chain *c, uint64_t at)
{
    hmap *n;
    if (!c)
        return;
    c->base = at;
    c->base_set = at != 0;
    if (hmap_create(&n) == 0) {
        hmap_destroy(c->m);
        c->m = n;
        return;
    }
    for (;;) {
        const void *k;
        size_t kl;
        void *v;
        if (hmap_next(c->m, 0, &k, &kl, &v) == (size_t)-1)
            break;
        char key[2 * (TOKEN_ID_MAX + 1)];
        memcpy(key, k, kl < sizeof key ? kl : sizeof key);
        hmap_del(c->m, key, kl);
    }
}

void events_chain_term(events_chain *c, uint64_t term)
{
    if (c && term != c->term) {
        chain_forget(c, 0);
        c->term = term;
    }
}

uint32_t events_chain_count(const events_chain *c) { return c ? (uint32_t)hmap_count(c->m) : 0; }

/* The previous position of (tenant, user) and the chain advanced to pos:
 * what it holds for the user, else base (at most pos - 1). Without a
 * chain the answer is pos - 1. */
static uint64_t chain_step(events_chain *c, const char *tenant, const char *user, uint64_t pos)
{
    char key[2 * (TOKEN_ID_MAX + 1)];
    size_t tl = strlen(tenant), ul = strlen(user);
    uint64_t prev = pos - 1;
    void *v;

    if (!c || tl + 1 + ul > sizeof key)
        return prev;
    if (!c->base_set) {
        c->base = pos - 1;
        c->base_set = true;
    }
    memcpy(key, tenant, tl);
    key[tl] = '\0';
    memcpy(key + tl + 1, user, ul);
    v = hmap_get(c->m, key, tl + 1 + ul);
    if (!v && hmap_count(c->m) >= c->cap)
        chain_forget(c, pos);
    if (v && (uint64_t)(uintptr_t)v < pos)
        prev = (uint64_t)(uintptr_t)v;
    else if (!v && c->base < prev)
        prev = c->base;
    if (hmap_put(c->m, key, tl + 1 + ul, (void *)(uintptr_t)pos) != 0) {
        /* Not remembered: from here on nobody's previous is below pos. */
        hmap_del(c->m, key, tl + 1 + ul);
        c->base = pos;
    }
    return prev;
}

/* An id of the result as the events name it: at most TOKEN_ID_MAX bytes
 * (longer ones are never valid ids). Returns false when s was cut. */
static bool id_copy(char dst[TOKEN_ID_MAX + 1], const char *s)
{
    return snprintf(dst, TOKEN_ID_MAX + 1, "%s", s ? s : "") <= (int)TOKEN_ID_MAX;
}

static void push(const events_sink *sink, const apply_result *res, const char *tenant,
                 const char *const *users, const uint64_t *prevs, uint32_t n,
                 const herald_frame *f)
{
    if (sink->push)
        sink->push(sink->ctx, res->group, res->index, tenant, users, prevs, n, f);
}

/* Splits targets into the parallel arrays push() takes (owned by caller);
 * prevs (DELIVER of a message at pos, with chain) from the chain. */
static int split_targets(const apply_result *res, events_chain *chain, const char *tenant,
                         uint64_t pos, const char ***users, uint64_t **prevs)
{
    *users = malloc((res->n_targets + 1) * sizeof **users);
    *prevs = malloc((res->n_targets + 1) * sizeof **prevs);
    if (!*users || !*prevs) {
        free(*users);
        free(*prevs);
        *users = NULL;
        *prevs = NULL;
        return HERALD_ENOMEM;
    }
    for (uint32_t i = 0; i < res->n_targets; i++) {
        (*users)[i] = res->targets[i].user;
        (*prevs)[i] = pos ? chain_step(chain, tenant, res->targets[i].user, pos) : 0;
    }
    return 0;
}

/* DELIVER of the stored message to every target. A message id that was not
 * a valid id (cut) names no message the events could carry. */
static void push_message(const events_sink *sink, events_chain *chain, const char *tenant,
                         bool ids_whole, const apply_result *res)
{
    herald_frame d = {.type = HERALD_FT_DELIVER};
    const char **users = NULL;
    uint64_t *prevs = NULL;
    uint64_t pos = res->msg ? res->msg->pos : 0;

    if (!res->msg || !ids_whole || !pos) {
        /* The chain still moves: the next push shows the gap. */
        for (uint32_t i = 0; pos && i < res->n_targets; i++)
            chain_step(chain, tenant, res->targets[i].user, pos);
        /* Committed, but not pushed: clients get it through SYNC. */
        log_error("events.push", "%s/%s seq %llu not pushed: %s", tenant,
                  res->conv ? res->conv : "", (unsigned long long)res->seq,
                  !ids_whole ? "an id longer than an id can be"
                  : res->msg ? "no group position" : "no message in the result");
        return;
    }
    if (split_targets(res, chain, tenant, pos, &users, &prevs) != 0) {
        /* Not pushed (out of memory): forget it all, this message included. */
        chain_forget(chain, pos);
        return;
    }
    d.msg = *res->msg;
    d.msg.group = res->group;
    push(sink, res, tenant, users, prevs, res->n_targets, &d);
    free(users);
    free(prevs);
}

/* RECEIPT (the reader's cursor) to each target. */
static void push_receipt(const events_sink *sink, const char *tenant, const char *conv,
                         const char *reader, const apply_result *res)
{
    herald_frame r = {.type = HERALD_FT_RECEIPT, .conv = herald_str_z(conv),
                      .user = herald_str_z(reader), .seq = res->seq};
    const char **users = NULL;
    uint64_t *prevs = NULL;
    if (split_targets(res, NULL, tenant, 0, &users, &prevs) == 0)
        push(sink, res, tenant, users, NULL, res->n_targets, &r);
    free(users);
    free(prevs);
}

/* Splits a comma list of ids (ids hold no comma) into v (≤ cap). */
static uint32_t split_ids(const char *list, herald_str *v, uint32_t cap)
{
    uint32_t n = 0;
    const char *p = list ? list : "";
    while (*p && n < cap) {
        size_t len = strcspn(p, ",");
        if (len)
            v[n++] = (herald_str){.ptr = p, .len = (uint32_t)len};
        p += len + (p[len] == ',');
    }
    return n;
}

/* REMIND / escalation events produced by CMD_REMIND. */
static void push_reminders(const events_sink *sink, const apply_result *res)
{
    for (uint32_t i = 0; i < res->n_reminders; i++) {
        const apply_remind *r = &res->reminders[i];
        herald_frame f = {.type = HERALD_FT_REMIND, .conv = herald_str_z(r->conv),
                          .seq = r->seq, .count = r->count,
                          .op = herald_str_z(r->escalate ? "escalate" : "remind"),
                          .user = herald_str_z(r->user)};
        const char *to = r->user;
        herald_str *pv = NULL;
        if (r->escalate) {
            /* The hook point for SMS / phone escalation. */
            size_t commas = 1;
            for (const char *q = r->pending ? r->pending : ""; *q; q++)
                commas += *q == ',';
            log_warn("urgent.escalate", "tenant=%s conv=%s seq=%llu sender=%s pending=%s",
                     r->tenant, r->conv, (unsigned long long)r->seq, r->user,
                     r->pending ? r->pending : "");
            pv = calloc(commas, sizeof *pv);
            if (!pv) {
                log_error("urgent.escalate", "out of memory: escalation of %s/%llu not pushed",
                          r->conv, (unsigned long long)r->seq);
                continue;
            }
            f.members = pv;
            f.n_members = split_ids(r->pending, pv, (uint32_t)commas);
        }
        push(sink, res, r->tenant, &to, NULL, 1, &f);
        free(pv);
    }
}

void events_emit(const apply_result *res, events_chain *chain, const events_sink *sink)
{
    char tenant[TOKEN_ID_MAX + 1], conv[TOKEN_ID_MAX + 1], user[TOKEN_ID_MAX + 1];
    bool whole;

    if (res->err || res->skipped)
        return;
    if (res->op == CMD_REMIND) {
        push_reminders(sink, res);
        return;
    }
    whole = id_copy(tenant, res->tenant);
    whole = id_copy(conv, res->conv) && whole;
    id_copy(user, res->user);
    switch (res->op) {
    case CMD_SEND:
        if (!res->dup)
            push_message(sink, chain, tenant, whole, res);
        break;
    case CMD_APP_DELIVER:
        if (!res->dup && res->seq)
            push_message(sink, chain, tenant, whole, res);
        break;
    case CMD_CONV_HANDOVER:
    case CMD_RECALL: /* seq 0: it was a tombstone already */
    case CMD_CONV_CREATE:
    case CMD_CONV_ADD:
    case CMD_CONV_REMOVE:
        if (res->seq)
            push_message(sink, chain, tenant, whole, res);
        break;
    case CMD_READ:
        push_receipt(sink, tenant, conv, user, res);
        break;
    case CMD_DND:
        /* Every session of the user switches at once. */
        if (sink->dnd)
            sink->dnd(sink->ctx, tenant, user, res->seq);
        break;
    default:
        break;
    }
}
