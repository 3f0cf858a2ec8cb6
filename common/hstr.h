/*
 * hstr.h — small helpers over herald_str (a pointer and a length, not
 * NUL-terminated; include/herald/protocol.h).
 *
 * Threads: none of its own; pure functions.
 */
#ifndef HERALD_COMMON_HSTR_H
#define HERALD_COMMON_HSTR_H

#include <herald/protocol.h>
#include <stddef.h>

/* Byte order, then the shorter first (a qsort/bsearch comparator over
 * herald_str elements). */
int hstr_cmp(const void *a, const void *b);

/* A malloc'd, NUL-terminated copy of p[0..n) as a herald_str the caller
 * frees (free(s.ptr)); {NULL, 0} when out of memory. */
herald_str hstr_dup(const char *p, size_t n);

#endif
