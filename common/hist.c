/* hist.c — see hist.h. */
#include "hist.h"

#include <string.h>

void hist_init(hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

/* Bucket index. Values below 2*HIST_SUB map 1:1. Above, with s the shift
 * that leaves v >> s in [HIST_SUB, 2*HIST_SUB), the index is
 * s*HIST_SUB + (v >> s): runs for consecutive s are contiguous. */
static unsigned bucket_of(uint64_t v)
{
    unsigned msb, s;
    if (v < 2u * HIST_SUB)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    s = msb - HIST_SUB_BITS;
    return s * HIST_SUB + (unsigned)(v >> s);
}

/* Largest value that falls in bucket b. */
static uint64_t bucket_top(unsigned b)
{
    unsigned s;
    uint64_t sub;
    if (b < 2u * HIST_SUB)
        return b;
    s = b / HIST_SUB - 1u;
    sub = b - (uint64_t)s * HIST_SUB;
    return ((sub + 1u) << s) - 1u;
}

void hist_record(hist *h, uint64_t v)
{
    h->counts[bucket_of(v)]++;
    h->total++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void hist_merge(hist *dst, const hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_quantile(const hist *h, double q)
{
    uint64_t rank, seen = 0;
    if (!h->total)
        return 0;
    if (q <= 0)
        return h->min;
    rank = (uint64_t)(q * (double)h->total + 0.999999);
    if (rank == 0)
        rank = 1;
    if (rank > h->total)
        rank = h->total;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            uint64_t top = bucket_top(b);
            return top > h->max ? h->max : top;
        }
    }
    return h->max;
}

double hist_mean(const hist *h) { return h->total ? h->sum / (double)h->total : 0.0; }
