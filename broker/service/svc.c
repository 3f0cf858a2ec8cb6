/* svc.c — the request service's stores, command submission to the
 * backend, routing and the periodic ticks. See svc.h. */
#include "svc_int.h"

#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "route.h"
#include "slots.h"

/* What travels with a submitted command until its outcome is known. */
typedef struct pending {
    void (*done)(void *arg, apply_result *res);
    void *arg;
} pending;

uint32_t svc_conv_group(const svc *s, herald_str tenant, herald_str conv)
{
    return route_conv_group(tenant, conv, s->nshards, s->has_slotmap ? s->slotmap : NULL);
}

store *svc_conv_store(const svc *s, herald_str tenant, herald_str conv)
{
    return s->shards[svc_conv_group(s, tenant, conv)].st;
}

store *svc_meta(const svc *s) { return s->shards[0].st; }

int svc_set_slotmap(svc *s, const uint8_t *map)
{
    for (uint32_t i = 0; i < HERALD_SLOTS; i++)
        if (map[i] >= s->nshards)
            return HERALD_EINVAL;
    memcpy(s->slotmap, map, HERALD_SLOTS);
    s->has_slotmap = true;
    return 0;
}

int svc_submit(svc *s, uint32_t group, herald_buf *cmdbuf,
               void (*done)(void *arg, apply_result *res), void *arg)
{
    pending *p;
    int rc;

    if (group >= s->nshards)
        return HERALD_EINVAL;
    p = malloc(sizeof *p);
    if (!p)
        return HERALD_ENOMEM;
    p->done = done;
    p->arg = arg;
    rc = s->be.submit(s->be.ctx, group, cmdbuf, p);
    if (rc)
        free(p);
    return rc;
}

void svc_applied(svc *s, void *cookie, apply_result *res)
{
    pending *p = cookie;
    (void)s;
    p->done(p->arg, res);
    free(p);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    svc *s = w->data;
    (void)loop;
    (void)revents;
    remind_tick(s);
    transfer_tick(s);
}

int svc_create(const svc_config *cfg, struct ev_loop *loop, store *const *stores, uint32_t n,
               const svc_backend *be, svc **out)
{
    svc *s;
    int rc;

    if (n == 0 || n > SVC_MAX_GROUPS || !be || !be->submit || !be->status)
        return HERALD_EINVAL;
    s = calloc(1, sizeof *s);
    if (!s)
        return HERALD_ENOMEM;
    s->be = *be;
    s->cfg = *cfg;
    s->loop = loop;
    s->shards = calloc(n, sizeof *s->shards);
    if (!s->shards) {
        rc = HERALD_ENOMEM;
        goto fail_alloc;
    }
    s->nshards = n;
    for (uint32_t i = 0; i < n; i++) {
        if (store_group(stores[i]) != i) {
            rc = HERALD_EINVAL;
            goto fail_shards;
        }
        s->shards[i].st = stores[i];
    }
    ev_timer_init(&s->tick_w, on_tick, 1.0, 1.0);
    s->tick_w.data = s;
    ev_timer_start(loop, &s->tick_w);
    *out = s;
    return 0;

fail_shards:
    free(s->shards);
fail_alloc:
    free(s);
    return rc;
}

void svc_destroy(svc *s)
{
    if (!s)
        return;
    s->stopping = true;
    ev_timer_stop(s->loop, &s->tick_w);
    free(s->shards);
    free(s);
}
