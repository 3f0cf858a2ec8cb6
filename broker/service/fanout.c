/* fanout.c — commit results become acks to the requester and pushes to every
 * online session of each recipient. Runs on the loop thread, called by the
 * writer only after the batch is durable. */
#include "gw_int.h"

#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"

void fanout_submit(conn *c, const herald_frame *req, uint32_t op,
                   herald_buf *cmdbuf, const char *conv)
{
    fanout_submit_to(c, req, op, cmdbuf, conv,
                     gw_shard(c->g, herald_str_z(c->tenant), herald_str_z(conv)));
}

pending *fanout_submit_to(conn *c, const herald_frame *req, uint32_t op, herald_buf *cmdbuf,
                          const char *conv, shard *sh)
{
    pending *p = calloc(1, sizeof *p);
    int rc;

    if (!p) {
        herald_buf_free(cmdbuf);
        conn_send_error(c, HERALD_ENOMEM, NULL, req->rid);
        return NULL;
    }
    p->c = c;
    p->rid = req->rid;
    p->ftype = req->type;
    p->op = op;
    snprintf(p->conv, sizeof p->conv, "%s", conv);
    conn_ref(c);
    rc = gw_submit(c->g, (uint32_t)(sh - c->g->shards), cmdbuf, p);
    if (rc) {
        herald_buf_free(cmdbuf);
        conn_send_error(c, rc,
                        rc == HERALD_EBUSY
                            ? "not applied: this group's write queue is full; retry later"
                            : NULL,
                        req->rid);
        conn_unref(c);
        free(p);
        return NULL;
    }
    return p;
}

void fanout_conv_info(conn *c, uint64_t rid, herald_str conv, bool check)
{
    herald_str ten = herald_str_z(c->tenant);
    uint32_t grp = gw_conv_group(c->g, ten, conv);
    store *st = c->g->shards[grp].st;
    store_conv sc;
    store_strs mem = {0};
    herald_str *mv = NULL;
    herald_frame r = {.type = HERALD_FT_CONV_RESULT, .rid = rid, .conv = conv};
    int rc = store_conv_get(st, ten, conv, &sc);

    if (rc == 0 && check && !c->admin)
        rc = store_member_check(st, ten, conv, herald_str_z(c->user));
    if (rc == 0)
        rc = store_members(st, ten, conv, &mem);
    if (rc == 0 && mem.n && !(mv = calloc(mem.n, sizeof *mv)))
        rc = HERALD_ENOMEM;
    if (rc) {
        conn_send_error(c, rc, NULL, rid);
        goto out;
    }
    for (uint32_t i = 0; i < mem.n; i++)
        mv[i] = herald_str_z(mem.v[i]);
    r.kind = herald_str_z(conv_kind_name(sc.kind));
    r.owner = herald_str_z(sc.owner);
    r.seq = sc.max_seq;
    r.ts = sc.created;
    r.cap = sc.cap;
    r.count = sc.count;
    r.group = grp;
    r.leader = c->g->be.leader ? c->g->be.leader(c->g->be.ctx, grp) : 0;
    r.n_members = mem.n;
    r.members = mv;
    conn_send(c, &r);
out:
    free(mv);
    store_strs_free(&mem);
}

/* Hands a frame for users of tenant to the sessions: published to the
 * gateways in cluster mode (named by res's group and index), delivered here
 * otherwise. */
static void push(gw *g, const apply_result *res, const char *tenant, const char *const *users,
                 const uint64_t *useqs, uint32_t n, const herald_frame *f)
{
    if (g->be.push)
        g->be.push(g->be.ctx, res->group, res->index, tenant, users, useqs, n, f);
    else
        gw_deliver(g, tenant, users, useqs, n, f);
}

void gw_deliver(gw *g, const char *tenant, const char *const *users, const uint64_t *useqs,
                uint32_t n, const herald_frame *f)
{
    size_t tlen = strlen(tenant);
    uint64_t now = gw_now_ms();
    bool deliver = f->type == HERALD_FT_DELIVER;
    herald_frame d = *f;

    for (uint32_t i = 0; i < n; i++) {
        conn *c = gw_presence_first(g, tenant, tlen, users[i], strlen(users[i]));
        if (deliver && useqs)
            d.msg.useq = useqs[i];
        while (c) {
            conn *next = c->u_next; /* conn_send may close c */
            if (deliver && d.msg.useq && d.msg.group < GW_MAX_GROUPS) {
                /* Pointer-log seqs only grow: an older one was pushed already. */
                if (d.msg.useq <= c->last_useq[d.msg.group]) {
                    c = next;
                    continue;
                }
                c->last_useq[d.msg.group] = d.msg.useq;
            }
            if (deliver) {
                d.msg.flags = f->msg.flags;
                if (conn_silenced(c, d.msg.flags, now))
                    d.msg.flags |= HERALD_MSGF_SILENT;
            }
            if (c->held)
                conn_hold_push(c, &d); /* its HELLO's answer is on the way */
            else
                conn_send(c, &d);
            c = next;
        }
    }
}

void gw_dnd_local(gw *g, const char *tenant, const char *user, uint64_t until)
{
    conn *s = gw_presence_first(g, tenant, strlen(tenant), user, strlen(user));
    for (; s; s = s->u_next)
        s->dnd_until = until;
}

/* Splits targets into the parallel arrays push() takes (owned by caller). */
static int split_targets(const apply_result *res, const char ***users, uint64_t **useqs)
{
    *users = malloc((res->n_targets + 1) * sizeof **users);
    *useqs = malloc((res->n_targets + 1) * sizeof **useqs);
    if (!*users || !*useqs) {
        free(*users);
        free(*useqs);
        return HERALD_ENOMEM;
    }
    for (uint32_t i = 0; i < res->n_targets; i++) {
        (*users)[i] = res->targets[i].user;
        (*useqs)[i] = res->targets[i].useq;
    }
    return 0;
}

/* Pushes message seq of conv to every target. The message is read back
 * from the store once (one short read transaction), so user messages and
 * system messages take the same path. */
static void push_message(gw *g, const char *tenant, const char *conv, const apply_result *res)
{
    herald_str ten = herald_str_z(tenant);
    store_msgs m = {0};
    herald_frame d = {.type = HERALD_FT_DELIVER};
    const char **users = NULL;
    uint64_t *useqs = NULL;
    int rc = res->group < g->nshards
                 ? store_history(g->shards[res->group].st, ten, herald_str_z(conv), res->seq - 1,
                                 1, 0, &m)
                 : HERALD_EINTERNAL;

    if (rc || m.n != 1) {
        /* Committed but unreadable now: clients get it through SYNC. */
        log_error("gw.push", "cannot read back %s/%s seq %llu: %s", tenant, conv,
                  (unsigned long long)res->seq, herald_err_name(rc));
        goto out;
    }
    if (split_targets(res, &users, &useqs) != 0)
        goto out;
    d.msg = m.v[0];
    d.msg.group = res->group;
    push(g, res, tenant, users, useqs, res->n_targets, &d);
out:
    free(users);
    free(useqs);
    store_msgs_free(&m);
}

/* Sends RECEIPT (reader's cursor) to each target. */
static void push_receipt(gw *g, const char *tenant, const char *conv, const char *reader,
                         const apply_result *res)
{
    herald_frame r = {.type = HERALD_FT_RECEIPT, .conv = herald_str_z(conv),
                      .user = herald_str_z(reader), .seq = res->seq};
    const char **users = NULL;
    uint64_t *useqs = NULL;
    if (split_targets(res, &users, &useqs) == 0)
        push(g, res, tenant, users, NULL, res->n_targets, &r);
    free(users);
    free(useqs);
}

void fanout_remind_tick(gw *g)
{
    uint64_t now = gw_now_ms();
    for (uint32_t i = 0; i < g->nshards; i++) {
        shard *sh = &g->shards[i];
        uint64_t due;
        cmd k = {.op = CMD_REMIND, .ts = now};
        herald_buf b = {0};
        pending *p;
        if (sh->remind_busy || g->stopping || (g->be.leads && !g->be.leads(g->be.ctx, i)))
            continue;
        due = store_remind_next(sh->st);
        if (!due || due > now)
            continue;
        p = calloc(1, sizeof *p);
        if (!p || cmd_encode(&k, &b) != 0) {
            free(p);
            herald_buf_free(&b);
            continue;
        }
        p->op = CMD_REMIND;
        p->shard = i;
        if (gw_submit(g, i, &b, p) != 0) {
            herald_buf_free(&b);
            free(p);
            continue;
        }
        sh->remind_busy = true;
    }
    transfer_tick(g);
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

/* Sends REMIND / escalation events produced by CMD_REMIND. */
static void push_reminders(gw *g, const apply_result *res)
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
        push(g, res, r->tenant, &to, NULL, 1, &f);
        free(pv);
    }
}

void gw_events(gw *g, const uint8_t *cmdp, size_t len, const apply_result *res)
{
    cmd k;
    char tenant[TOKEN_ID_MAX + 1], conv[TOKEN_ID_MAX + 1], user[TOKEN_ID_MAX + 1];

    if (res->err || res->skipped)
        return;
    if (res->op == CMD_REMIND) {
        push_reminders(g, res);
        return;
    }
    if (cmd_decode(cmdp, len, &k) != 0)
        return;
    snprintf(tenant, sizeof tenant, "%.*s", (int)k.tenant.len, k.tenant.ptr ? k.tenant.ptr : "");
    snprintf(conv, sizeof conv, "%.*s", (int)k.conv.len, k.conv.ptr ? k.conv.ptr : "");
    snprintf(user, sizeof user, "%.*s", (int)k.user.len, k.user.ptr ? k.user.ptr : "");
    switch (k.op) {
    case CMD_SEND:
        if (!res->dup)
            push_message(g, tenant, conv, res);
        break;
    case CMD_APP_DELIVER:
        if (!res->dup && res->seq)
            push_message(g, tenant, conv, res);
        break;
    case CMD_CONV_HANDOVER:
    case CMD_RECALL: /* seq 0: it was a tombstone already */
    case CMD_CONV_CREATE:
    case CMD_CONV_ADD:
    case CMD_CONV_REMOVE:
        if (res->seq)
            push_message(g, tenant, conv, res);
        break;
    case CMD_READ:
        push_receipt(g, tenant, conv, user, res);
        break;
    case CMD_DND:
        /* Every session of the user switches at once. */
        if (g->be.dnd)
            g->be.dnd(g->be.ctx, tenant, user, res->seq);
        else
            gw_dnd_local(g, tenant, user, res->seq);
        break;
    default:
        break;
    }
    cmd_release(&k);
}

void fanout_done(gw *g, void *cookie, apply_result *res)
{
    pending *p = cookie;
    conn *c = p->c;
    bool open;

    if (!c && p->xfer) {
        /* The gateway's own transfer steps (takeovers that came due). */
        transfer_step(g, p, res);
        free(p);
        return;
    }
    if (!c) {
        /* The gateway's own command (reminders; gw_events pushes them). */
        if (res->err)
            log_error("urgent.remind", "REMIND failed on shard %u: %s", p->shard,
                      herald_err_name(res->err));
        g->shards[p->shard].remind_busy = false;
        free(p);
        return;
    }
    open = conn_open(c);
    if (p->quiet) {
        if (res->err)
            log_warn("gw.bookkeeping", "%s failed: %s", cmd_op_name(p->op),
                     herald_err_name(res->err));
        goto out;
    }
    if (p->app) {
        /* Steps of an app message; app.c owns the job. */
        if (p->op == CMD_APP_MARK)
            app_marked(g, p, res);
        else
            app_delivered(g, p, res);
        goto out;
    }
    if (p->xfer) {
        /* Steps of a customer transfer; transfer.c owns the job. */
        transfer_step(g, p, res);
        goto out;
    }
    if (p->job) {
        /* Steps of a mass message; mass.c owns the job. */
        if (p->op == CMD_MASS_MARK)
            mass_marked(g, p, res);
        else
            mass_sent(g, p, res);
        goto out;
    }
    if (p->then == CMD_CONTACT_ADD && res->err == 0) {
        /* Step 2 of a contact: record the relationship with the tenants. */
        cmd k = {.op = CMD_CONTACT_ADD, .tenant = herald_str_z(c->tenant),
                 .user = herald_str_z(c->user), .admin = c->admin, .ts = gw_now_ms(),
                 .target = herald_str_z(p->a), .name = herald_str_z(p->b),
                 .conv = herald_str_z(p->conv)};
        herald_buf b = {0};
        herald_frame req = {.type = HERALD_FT_CONTACT, .rid = p->rid};
        if (cmd_encode(&k, &b) == 0)
            fanout_submit_to(c, &req, CMD_CONTACT_ADD, &b, p->conv, &g->shards[0]);
        else if (open)
            conn_send_error(c, HERALD_ENOMEM, NULL, p->rid);
        goto out;
    }

    if (res->err) {
        if (open)
            conn_send_error(c, res->err, res->errmsg[0] ? res->errmsg : NULL, p->rid);
        goto out;
    }
    switch (p->op) {
    case CMD_SEND: {
        herald_frame a = {.type = HERALD_FT_ACK, .rid = p->rid,
                          .conv = herald_str_z(p->conv), .seq = res->seq,
                          .ts = res->ts, .dup = res->dup};
        if (open)
            conn_send(c, &a);
        break;
    }
    case CMD_READ: {
        herald_frame ok = {.type = HERALD_FT_OK, .rid = p->rid, .seq = res->seq};
        if (open)
            conn_send(c, &ok);
        break;
    }
    case CMD_RECALL: {
        herald_frame ok = {.type = HERALD_FT_OK, .rid = p->rid, .seq = res->seq};
        if (open)
            conn_send(c, &ok);
        break;
    }
    case CMD_DND: {
        /* Every session of the user switches at once. */
        herald_frame ok = {.type = HERALD_FT_OK, .rid = p->rid, .ts = res->seq,
                           .flags = res->seq ? 1u : 0u};
        c->dnd_until = res->seq; /* the sessions switch through gw_events */
        if (open)
            conn_send(c, &ok);
        break;
    }
    case CMD_CONTACT_ADD: {
        herald_frame r = {.type = HERALD_FT_CONTACT_RESULT, .rid = p->rid,
                          .conv = herald_str_z(p->conv)};
        if (open)
            conn_send(c, &r);
        break;
    }
    case CMD_TAG:
        if (open)
            handle_tags_of(c, p->rid, herald_str_z(p->conv));
        break;
    case CMD_DIR_USER:
    case CMD_DIR_DEPT:
        if (open)
            handle_dir_done(c, p->rid, p->op, p->conv);
        break;
    case CMD_CONFIRM: {
        herald_frame ok = {.type = HERALD_FT_OK, .rid = p->rid, .seq = res->seq};
        if (open)
            conn_send(c, &ok);
        break;
    }
    case CMD_CONV_CREATE:
    case CMD_CONV_ADD:
    case CMD_CONV_REMOVE:
        if (open)
            fanout_conv_info(c, p->rid, herald_str_z(p->conv), false);
        break;
    default:
        log_error("gw.done", "unexpected op %u", p->op);
        break;
    }
out:
    conn_unref(c);
    free(p);
}
