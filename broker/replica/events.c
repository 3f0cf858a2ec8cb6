/* events.c — the push events of an applied command, from its result; see
 * events.h. */
#include "events.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "token.h"

/* An id of the result as the events name it: at most TOKEN_ID_MAX bytes
 * (longer ones are never valid ids). Returns false when s was cut. */
static bool id_copy(char dst[TOKEN_ID_MAX + 1], const char *s)
{
    return snprintf(dst, TOKEN_ID_MAX + 1, "%s", s ? s : "") <= (int)TOKEN_ID_MAX;
}

static void push(const events_sink *sink, const apply_result *res, const char *tenant,
                 const char *const *users, const uint64_t *useqs, uint32_t n,
                 const herald_frame *f)
{
    if (sink->push)
        sink->push(sink->ctx, res->group, res->index, tenant, users, useqs, n, f);
}

/* Splits targets into the parallel arrays push() takes (owned by caller). */
static int split_targets(const apply_result *res, const char ***users, uint64_t **useqs)
{
    *users = malloc((res->n_targets + 1) * sizeof **users);
    *useqs = malloc((res->n_targets + 1) * sizeof **useqs);
    if (!*users || !*useqs) {
        free(*users);
        free(*useqs);
        *users = NULL;
        *useqs = NULL;
        return HERALD_ENOMEM;
    }
    for (uint32_t i = 0; i < res->n_targets; i++) {
        (*users)[i] = res->targets[i].user;
        (*useqs)[i] = res->targets[i].useq;
    }
    return 0;
}

/* DELIVER of the stored message to every target. A message id that was not
 * a valid id (cut) names no message the events could carry. */
static void push_message(const events_sink *sink, const char *tenant, bool ids_whole,
                         const apply_result *res)
{
    herald_frame d = {.type = HERALD_FT_DELIVER};
    const char **users = NULL;
    uint64_t *useqs = NULL;

    if (!res->msg || !ids_whole) {
        /* Committed, but not pushed: clients get it through SYNC. */
        log_error("events.push", "%s/%s seq %llu not pushed: %s", tenant,
                  res->conv ? res->conv : "", (unsigned long long)res->seq,
                  ids_whole ? "no message in the result" : "an id longer than an id can be");
        return;
    }
    if (split_targets(res, &users, &useqs) != 0)
        return;
    d.msg = *res->msg;
    d.msg.group = res->group;
    push(sink, res, tenant, users, useqs, res->n_targets, &d);
    free(users);
    free(useqs);
}

/* RECEIPT (the reader's cursor) to each target. */
static void push_receipt(const events_sink *sink, const char *tenant, const char *conv,
                         const char *reader, const apply_result *res)
{
    herald_frame r = {.type = HERALD_FT_RECEIPT, .conv = herald_str_z(conv),
                      .user = herald_str_z(reader), .seq = res->seq};
    const char **users = NULL;
    uint64_t *useqs = NULL;
    if (split_targets(res, &users, &useqs) == 0)
        push(sink, res, tenant, users, NULL, res->n_targets, &r);
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

void events_emit(const apply_result *res, const events_sink *sink)
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
            push_message(sink, tenant, whole, res);
        break;
    case CMD_APP_DELIVER:
        if (!res->dup && res->seq)
            push_message(sink, tenant, whole, res);
        break;
    case CMD_CONV_HANDOVER:
    case CMD_RECALL: /* seq 0: it was a tombstone already */
    case CMD_CONV_CREATE:
    case CMD_CONV_ADD:
    case CMD_CONV_REMOVE:
        if (res->seq)
            push_message(sink, tenant, whole, res);
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
