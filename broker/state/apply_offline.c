/* apply_offline.c — OFFLINE: the session tier's reports of recipients it had
 * no session of when a message was pushed, recorded as `message.offline`
 * callback events (the hook for vendor push).
 *
 * Who was online is not replicated state, so it is never decided here: the
 * command carries the answer (the proposer aggregated what every gateway
 * said, service/offline.c) and apply only checks it against the store, the
 * same way on every replica. Per report (conv, seq, users) one event
 * {conv, seq, from, users} tied to the conversation, so an app gets it when
 * it gets that conversation's messages. Ignored, and counted in the result:
 * reports of a message that does not exist (or was recalled), and users who
 * are not members of the conversation, the sender, listed twice, or apps
 * ("app:ID" members: they hear of their conversations by callback, there is
 * no one to push to). */
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "apply_ops.h"
#include "hstr.h"
#include "json.h"

/* Users in one report: more than a conversation can hold is no report. */
#define OFFLINE_MAX_USERS 100000u

static bool is_app(herald_str u) { return u.len > 4 && memcmp(u.ptr, "app:", 4) == 0; }

static bool is_member(actx *x, herald_str conv, herald_str user, int *rc)
{
    kbuf k;
    MDB_val kv, v;
    int r;

    key_member(&k, x->c->tenant, conv, user);
    if (k.over)
        return false;
    kv = kb_val(&k);
    r = mdb_get(x->txn, x->s->db.member, &kv, &v);
    if (r == 0)
        return true;
    if (r != MDB_NOTFOUND)
        *rc = aw_fatal(x, r);
    return false;
}

/* One report: its event, or nothing (*ignored counts the users left out). */
static int report(actx *x, herald_str conv, uint64_t seq, const herald_str *users, uint32_t n,
                  uint64_t *recorded, uint64_t *ignored)
{
    const herald_msg *m;
    herald_str *v = NULL;
    herald_buf b = {0};
    json_w w;
    uint32_t kept = 0;
    int rc = 0;

    if (!aw_id_ok(conv) || n == 0 || n > OFFLINE_MAX_USERS)
        goto ignore_all;
    rc = aw_load_msg(x, conv, seq);
    m = x->r->msg;
    x->r->msg = NULL; /* no push comes of it */
    if (rc)
        return rc;
    if (!m || (m->flags & HERALD_MSGF_RECALLED))
        goto ignore_all;
    /* Sorted, so duplicates are neighbours and the event's list is the
     * same whatever order the gateways reported in. */
    v = malloc(n * sizeof *v);
    if (!v)
        return HERALD_ENOMEM;
    memcpy(v, users, n * sizeof *v);
    qsort(v, n, sizeof *v, hstr_cmp);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if ((kept && hstr_cmp(&v[kept - 1], &v[i]) == 0) || !aw_id_ok(v[i]) ||
            hstr_cmp(&v[i], &m->from) == 0 || is_app(v[i]) ||
            !is_member(x, conv, v[i], &rc))
            continue;
        v[kept++] = v[i];
    }
    if (rc)
        goto out;
    *ignored += n - kept;
    if (!kept)
        goto out;
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "conv");
    json_str(&w, conv.ptr, conv.len);
    json_key(&w, "seq");
    json_u64(&w, seq);
    json_key(&w, "from");
    json_str(&w, m->from.ptr ? m->from.ptr : "", m->from.len);
    json_key(&w, "users");
    json_arr(&w);
    for (uint32_t i = 0; i < kept; i++)
        json_str(&w, v[i].ptr, v[i].len);
    json_arr_end(&w);
    json_obj_end(&w);
    rc = json_done(&w) ? HERALD_ENOMEM
                       : aw_event(x, x->c->tenant, "message.offline", conv, &b);
    if (rc == 0)
        (*recorded)++;
out:
    herald_buf_free(&b);
    free(v);
    return rc;
ignore_all:
    *ignored += n;
    return 0;
}

int op_offline(actx *x)
{
    const cmd *c = x->c;
    uint64_t at = 0, recorded = 0, ignored = 0;
    int rc = 0;

    if (!aw_id_ok(c->tenant))
        return aw_reject(x, HERALD_EINVAL, "invalid tenant id");
    if (c->n_oseqs != c->n_oconvs || c->n_ocounts != c->n_oconvs)
        return aw_reject(x, HERALD_EINVAL, "reports: as many conversations, seqs and counts");
    for (uint32_t i = 0; i < c->n_oconvs; i++) {
        if (c->ocounts[i] > c->n_members - at)
            return aw_reject(x, HERALD_EINVAL, "reports: more users counted than listed");
        at += c->ocounts[i];
    }
    if (at != c->n_members)
        return aw_reject(x, HERALD_EINVAL, "reports: fewer users counted than listed");
    at = 0;
    for (uint32_t i = 0; i < c->n_oconvs && rc == 0; i++) {
        rc = report(x, c->oconvs[i], c->oseqs[i], c->members + at, (uint32_t)c->ocounts[i],
                    &recorded, &ignored);
        at += c->ocounts[i];
    }
    if (rc)
        return rc;
    x->r->seq = recorded;
    x->r->ignored = ignored;
    return 0;
}
