/* fuzz_cmd.c — the replicated-command decoder (bytes from disk / the raft
 * log): decode, and on success re-encode, decode again and compare every
 * field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static int same(herald_str a, herald_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int same_list(const herald_str *a, uint32_t na, const herald_str *b, uint32_t nb)
{
    if (na != nb)
        return 0;
    for (uint32_t i = 0; i < na; i++)
        if (!same(a[i], b[i]))
            return 0;
    return 1;
}

static int same_u64s(const uint64_t *a, uint32_t na, const uint64_t *b, uint32_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static int same_cmd(const cmd *a, const cmd *b)
{
    return a->op == b->op && a->admin == b->admin && a->flags == b->flags &&
           a->cap == b->cap && a->seq == b->seq && a->win == b->win && a->ivl == b->ivl &&
           a->max == b->max && a->ts == b->ts && same(a->tenant, b->tenant) &&
           same(a->user, b->user) && same(a->conv, b->conv) && same(a->cmid, b->cmid) &&
           same(a->body, b->body) && same(a->kind, b->kind) && same(a->secret, b->secret) &&
           same(a->target, b->target) && same(a->name, b->name) &&
           same(a->title, b->title) && same(a->dept, b->dept) &&
           same(a->parent, b->parent) && same(a->corp, b->corp) &&
           same_list(a->members, a->n_members, b->members, b->n_members) &&
           same_list(a->external, a->n_external, b->external, b->n_external) &&
           same_list(a->depts, a->n_depts, b->depts, b->n_depts) &&
           same_list(a->tags, a->n_tags, b->tags, b->n_tags) && a->dedup_s == b->dedup_s &&
           a->freq == b->freq && a->climit == b->climit && a->xwait == b->xwait &&
           same_list(a->oconvs, a->n_oconvs, b->oconvs, b->n_oconvs) &&
           same_u64s(a->oseqs, a->n_oseqs, b->oseqs, b->n_oseqs) &&
           same_u64s(a->ocounts, a->n_ocounts, b->ocounts, b->n_ocounts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cmd a, b;
    herald_buf buf = {0};
    if (cmd_decode(data, size, &a) != 0)
        return 0;
    if (cmd_encode(&a, &buf) != 0)
        abort();
    if (cmd_decode(buf.data, buf.len, &b) != 0)
        abort();
    if (!same_cmd(&a, &b))
        abort();
    cmd_release(&b);
    cmd_release(&a);
    herald_buf_free(&buf);
    return 0;
}
