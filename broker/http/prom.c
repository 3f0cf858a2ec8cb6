/* prom.c — see prom.h. */
#include "prom.h"

#include <herald/error.h>
#include <stdio.h>
#include <string.h>

const double prom_hist_bounds[PROM_HIST_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0,
};

static void put(prom_w *w, const void *p, size_t n)
{
    if (!w->err && herald_buf_append(w->b, p, n) != 0)
        w->err = HERALD_ENOMEM;
}

static void puts_(prom_w *w, const char *s) { put(w, s, strlen(s)); }

/* HELP text: backslash and newline escaped; label values also '"'. */
static void escaped(prom_w *w, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            puts_(w, "\\\\");
        else if (*s == '\n')
            puts_(w, "\\n");
        else if (quote && *s == '"')
            puts_(w, "\\\"");
        else
            put(w, s, 1);
    }
}

void prom_family(prom_w *w, const char *name, const char *type, const char *help)
{
    puts_(w, "# HELP ");
    puts_(w, name);
    puts_(w, " ");
    escaped(w, help, 0);
    puts_(w, "\n# TYPE ");
    puts_(w, name);
    puts_(w, " ");
    puts_(w, type);
    puts_(w, "\n");
}

static void head(prom_w *w, const char *name, const char *suffix, const prom_label *l, size_t nl,
                 const char *le)
{
    puts_(w, name);
    if (suffix)
        puts_(w, suffix);
    if (nl || le) {
        puts_(w, "{");
        for (size_t i = 0; i < nl; i++) {
            if (i)
                puts_(w, ",");
            puts_(w, l[i].k);
            puts_(w, "=\"");
            escaped(w, l[i].v ? l[i].v : "", 1);
            puts_(w, "\"");
        }
        if (le) {
            puts_(w, nl ? ",le=\"" : "le=\"");
            puts_(w, le);
            puts_(w, "\"");
        }
        puts_(w, "}");
    }
    puts_(w, " ");
}

void prom_u64(prom_w *w, const char *name, const prom_label *l, size_t nl, uint64_t v)
{
    char num[32];
    head(w, name, NULL, l, nl, NULL);
    snprintf(num, sizeof num, "%llu\n", (unsigned long long)v);
    puts_(w, num);
}

void prom_one(prom_w *w, const char *name, const char *type, uint64_t v, const char *help)
{
    prom_family(w, name, type, help);
    prom_u64(w, name, NULL, 0, v);
}

void prom_f64(prom_w *w, const char *name, const prom_label *l, size_t nl, double v)
{
    char num[40];
    head(w, name, NULL, l, nl, NULL);
    snprintf(num, sizeof num, "%.17g\n", v);
    puts_(w, num);
}

void prom_hist_init(prom_hist *h)
{
    for (unsigned i = 0; i <= PROM_HIST_BUCKETS; i++)
        atomic_init(&h->le[i], 0);
    atomic_init(&h->count, 0);
    atomic_init(&h->sum_ns, 0);
}

void prom_hist_observe_ns(prom_hist *h, uint64_t ns)
{
    unsigned i = 0;
    while (i < PROM_HIST_BUCKETS && (double)ns > prom_hist_bounds[i] * 1e9)
        i++;
    atomic_fetch_add_explicit(&h->le[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void prom_hist_write(prom_w *w, const char *name, const prom_label *l, size_t nl,
                     const prom_hist *h)
{
    uint64_t cum = 0;
    char num[40];
    for (unsigned i = 0; i <= PROM_HIST_BUCKETS; i++) {
        char le[24];
        cum += atomic_load_explicit(&h->le[i], memory_order_relaxed);
        if (i < PROM_HIST_BUCKETS)
            snprintf(le, sizeof le, "%g", prom_hist_bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        head(w, name, "_bucket", l, nl, le);
        snprintf(num, sizeof num, "%llu\n", (unsigned long long)cum);
        puts_(w, num);
    }
    head(w, name, "_sum", l, nl, NULL);
    snprintf(num, sizeof num, "%.9f\n",
             (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    puts_(w, num);
    /* _count is the +Inf bucket, so the two always agree. */
    head(w, name, "_count", l, nl, NULL);
    snprintf(num, sizeof num, "%llu\n", (unsigned long long)cum);
    puts_(w, num);
}
