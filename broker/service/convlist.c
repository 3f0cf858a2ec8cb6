/* convlist.c — CONV op "list": the requester's conversations over every
 * shard group, the newest activity first, one page per request. */
#include "svc_int.h"

#include <herald/error.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONVS_PAGE_DEFAULT 50u
#define CONVS_PAGE_MAX 200u

/* Cursor "TS:ID": the last entry of the page before (its last message's
 * time, its id). false when s is not one. */
static bool parse_cursor(herald_str s, store_conv_entry *at, char *id, size_t cap)
{
    const char *colon = s.ptr ? memchr(s.ptr, ':', s.len) : NULL;
    size_t idlen;
    uint64_t ts = 0;
    if (!colon || colon == s.ptr)
        return false;
    for (const char *p = s.ptr; p < colon; p++) {
        if (*p < '0' || *p > '9' || ts > (UINT64_MAX - 9) / 10)
            return false;
        ts = ts * 10 + (uint64_t)(*p - '0');
    }
    idlen = s.len - (size_t)(colon + 1 - s.ptr);
    if (idlen == 0 || idlen >= cap)
        return false;
    memcpy(id, colon + 1, idlen);
    id[idlen] = '\0';
    memset(at, 0, sizeof *at);
    at->last.ts = ts;
    at->last.conv = (herald_str){.ptr = id, .len = (uint32_t)idlen};
    return true;
}

static int cmp_ptrs(const void *a, const void *b)
{
    return store_conv_entry_cmp(*(store_conv_entry *const *)a, *(store_conv_entry *const *)b);
}

void conv_list(svc_req *rq, const herald_frame *f)
{
    svc *s = rq->s;
    herald_str ten = herald_str_z(rq->sess->tenant), user = herald_str_z(rq->sess->user);
    store_conv_entry after, **all = NULL;
    store_convlist *lists = NULL;
    herald_frame r = {.type = HERALD_FT_CONV_RESULT, .rid = f->rid, .op = herald_str_z("list")};
    char id[TOKEN_ID_MAX + 1], next[TOKEN_ID_MAX + 32];
    uint32_t limit = f->limit ? f->limit : CONVS_PAGE_DEFAULT, n = 0, take = 0;
    size_t budget = req_reply_budget(rq), used = 64;
    bool more = false, cursor = f->after_id.len > 0;
    int rc = 0;

    if (limit > CONVS_PAGE_MAX)
        limit = CONVS_PAGE_MAX;
    if (cursor && !parse_cursor(f->after_id, &after, id, sizeof id)) {
        req_error(rq, HERALD_EINVAL, "aid: not a cursor from an earlier page", f->rid);
        return;
    }
    lists = calloc(s->nshards, sizeof *lists);
    if (!lists) {
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
        return;
    }
    for (uint32_t i = 0; i < s->nshards && rc == 0; i++) {
        rc = store_convs(s->shards[i].st, ten, user, cursor ? &after : NULL, limit, &lists[i]);
        n += lists[i].n;
        more |= lists[i].more;
    }
    if (rc)
        goto out;
    /* Merge the groups' pages; the page is the first `limit` that fit. */
    all = calloc(n + 1, sizeof *all);
    r.msgs = calloc(n + 1, sizeof *r.msgs);
    r.conv_kinds = calloc(n + 1, sizeof *r.conv_kinds);
    r.conv_counts = calloc(n + 1, sizeof *r.conv_counts);
    r.conv_unread = calloc(n + 1, sizeof *r.conv_unread);
    if (!all || !r.msgs || !r.conv_kinds || !r.conv_counts || !r.conv_unread) {
        rc = HERALD_ENOMEM;
        goto out;
    }
    n = 0;
    for (uint32_t i = 0; i < s->nshards; i++)
        for (uint32_t k = 0; k < lists[i].n; k++)
            all[n++] = &lists[i].v[k];
    qsort(all, n, sizeof *all, cmp_ptrs);
    for (take = 0; take < n && take < limit; take++) {
        const store_conv_entry *e = all[take];
        size_t sz = e->last.conv.len + e->last.from.len + e->last.body.len + 96;
        if (take && used + sz > budget)
            break;
        used += sz;
        r.msgs[take] = e->last;
        r.conv_kinds[take] = herald_str_z(conv_kind_name(e->kind));
        r.conv_counts[take] = e->count;
        r.conv_unread[take] = e->unread;
    }
    more |= take < n;
    r.n_msgs = r.n_conv_kinds = r.n_conv_counts = r.n_conv_unread = take;
    if (more && take) {
        const herald_msg *last = &r.msgs[take - 1];
        snprintf(next, sizeof next, "%" PRIu64 ":%.*s", last->ts, (int)last->conv.len,
                 last->conv.ptr);
        r.after_id = herald_str_z(next);
        r.more = true;
    }
    req_send(rq, &r);
out:
    if (rc)
        req_error(rq, rc, NULL, f->rid);
    free(all);
    free(r.msgs);
    free(r.conv_kinds);
    free(r.conv_counts);
    free(r.conv_unread);
    for (uint32_t i = 0; lists && i < s->nshards; i++)
        store_convlist_free(&lists[i]);
    free(lists);
}
