/*
 * prom.h — the Prometheus text exposition format 0.0.4: a writer for metric
 * families (HELP and TYPE lines, samples with escaped label values) and a
 * fixed-bucket latency histogram that any thread may record into.
 *
 * Why not common/hist.c: Prometheus wants cumulative counts at fixed `le`
 * bounds, exact and cheap to read while another thread records (the raft
 * log writer); hist.c is a 59 KB single-owner log-linear histogram made for
 * percentiles. prom_hist is 20 atomic counters.
 *
 * Threads: a prom_w belongs to its caller. prom_hist_observe may run on any
 * thread concurrently with prom_hist_write (relaxed atomics: a scrape may
 * see a sample in _count a moment before its bucket — Prometheus tolerates
 * this).
 */
#ifndef HERALD_HTTP_PROM_H
#define HERALD_HTTP_PROM_H

#include <herald/protocol.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes into b; the first allocation failure sticks in err (HERALD_ENOMEM)
 * and later calls do nothing. */
typedef struct prom_w {
    herald_buf *b; /* output (borrowed) */
    int err;       /* 0 or HERALD_ENOMEM */
} prom_w;

typedef struct prom_label {
    const char *k; /* label name: [a-zA-Z_][a-zA-Z0-9_]* (the caller's constant) */
    const char *v; /* value: any bytes, escaped on output */
} prom_label;

/* "# HELP name help\n# TYPE name type\n"; type is counter, gauge,
 * histogram or untyped. */
void prom_family(prom_w *w, const char *name, const char *type, const char *help);
/* One sample line: name{labels} value. */
void prom_u64(prom_w *w, const char *name, const prom_label *l, size_t nl, uint64_t v);
void prom_f64(prom_w *w, const char *name, const prom_label *l, size_t nl, double v);
/* A family of one unlabelled sample: prom_family, then prom_u64. */
void prom_one(prom_w *w, const char *name, const char *type, uint64_t v, const char *help);

#define PROM_HIST_BUCKETS 16u /* finite bounds; +Inf on top */

typedef struct prom_hist {
    _Atomic uint64_t le[PROM_HIST_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
    _Atomic uint64_t count;  /* observations */
    _Atomic uint64_t sum_ns; /* their sum, nanoseconds */
} prom_hist;

/* The bounds, seconds: 100 µs, 250 µs, 500 µs, 1 ms ... 5 s, 10 s. */
extern const double prom_hist_bounds[PROM_HIST_BUCKETS];

/* Zero it (or zero-initialise). */
void prom_hist_init(prom_hist *h);
/* One observation of ns nanoseconds. Any thread. */
void prom_hist_observe_ns(prom_hist *h, uint64_t ns);
/* name_bucket{l..., le="..."} (cumulative), name_sum (seconds), name_count;
 * the caller wrote the family line (type histogram). */
void prom_hist_write(prom_w *w, const char *name, const prom_label *l, size_t nl,
                     const prom_hist *h);

#endif
