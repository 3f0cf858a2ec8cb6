/* legacy_events.c — see legacy_events.h. */
#include "legacy_events.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "token.h"

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
static void push_message(store *st, const lev_sink *k, const char *tenant, const char *conv,
                         const apply_result *res)
{
    herald_str ten = herald_str_z(tenant);
    store_msgs m = {0};
    herald_frame d = {.type = HERALD_FT_DELIVER};
    const char **users = NULL;
    uint64_t *useqs = NULL;
    int rc = store_history(st, ten, herald_str_z(conv), res->seq - 1, 1, 0, &m);

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
    k->push(k->ctx, res->group, res->index, tenant, users, useqs, res->n_targets, &d);
out:
    free(users);
    free(useqs);
    store_msgs_free(&m);
}

/* Sends RECEIPT (reader's cursor) to each target. */
static void push_receipt(const lev_sink *k, const char *tenant, const char *conv, const char *reader,
                         const apply_result *res)
{
    herald_frame r = {.type = HERALD_FT_RECEIPT, .conv = herald_str_z(conv),
                      .user = herald_str_z(reader), .seq = res->seq};
    const char **users = NULL;
    uint64_t *useqs = NULL;
    if (split_targets(res, &users, &useqs) == 0)
        k->push(k->ctx, res->group, res->index, tenant, users, NULL, res->n_targets, &r);
    free(users);
    free(useqs);
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
static void push_reminders(const lev_sink *k, const apply_result *res)
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
        k->push(k->ctx, res->group, res->index, r->tenant, &to, NULL, 1, &f);
        free(pv);
    }
}

void lev_emit(store *st, const uint8_t *cmdp, size_t len, const apply_result *res,
              const lev_sink *sink)
{
    cmd k;
    char tenant[TOKEN_ID_MAX + 1], conv[TOKEN_ID_MAX + 1], user[TOKEN_ID_MAX + 1];

    if (res->err || res->skipped)
        return;
    if (res->op == CMD_REMIND) {
        push_reminders(sink, res);
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
            push_message(st, sink, tenant, conv, res);
        break;
    case CMD_APP_DELIVER:
        if (!res->dup && res->seq)
            push_message(st, sink, tenant, conv, res);
        break;
    case CMD_CONV_HANDOVER:
    case CMD_RECALL: /* seq 0: it was a tombstone already */
    case CMD_CONV_CREATE:
    case CMD_CONV_ADD:
    case CMD_CONV_REMOVE:
        if (res->seq)
            push_message(st, sink, tenant, conv, res);
        break;
    case CMD_READ:
        push_receipt(sink, tenant, conv, user, res);
        break;
    case CMD_DND:
        /* Every session of the user switches at once. */
        sink->dnd(sink->ctx, tenant, user, res->seq);
        break;
    default:
        break;
    }
    cmd_release(&k);
}

