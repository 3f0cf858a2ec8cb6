/*
 * hist.h — a log-linear latency histogram (HdrHistogram-style) with bounded
 * relative error: values are bucketed by power of two, each power split into
 * HIST_SUB linear sub-buckets, so a bucket's width is at most 1/HIST_SUB of
 * its value (HIST_SUB = 128 → ≤ 0.8 % error). Fixed memory, O(1) record.
 *
 * Thread safety: none; one owner.
 */
#ifndef HERALD_COMMON_HIST_H
#define HERALD_COMMON_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

typedef struct hist {
    uint64_t counts[HIST_BUCKETS]; /* per bucket */
    uint64_t total;                /* values recorded */
    uint64_t min;                  /* smallest value (UINT64_MAX if none) */
    uint64_t max;                  /* largest value */
    double sum;                    /* for the mean */
} hist;

void hist_init(hist *h);
void hist_record(hist *h, uint64_t v);
/* Adds every count of src to dst. */
void hist_merge(hist *dst, const hist *src);
/* The value at quantile q in [0,1] (upper edge of its bucket, clamped to
 * max): 0 when empty. */
uint64_t hist_quantile(const hist *h, double q);
double hist_mean(const hist *h);

#endif
