/*
 * hmap.h — an open-addressing hash map from byte-string keys to pointers.
 *
 * Keys are copied into the map; values are borrowed (the map never frees
 * them). Linear probing with backward-shift deletion (no tombstones), load
 * factor ≤ 0.5, SipHash-free: keyed FNV-1a mixed with a per-map seed so
 * peer-chosen ids cannot be aimed at one bucket cheaply.
 *
 * Thread safety: none; one owner thread (the loop thread).
 */
#ifndef HERALD_COMMON_HMAP_H
#define HERALD_COMMON_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmap hmap;

/* 0 or HERALD_ENOMEM. */
int hmap_create(hmap **out);
/* Frees the map and its key copies (not the values). NULL-safe. */
void hmap_destroy(hmap *m);

/* The value stored under key, or NULL. */
void *hmap_get(const hmap *m, const void *key, size_t klen);
/* Inserts or replaces. 0 or HERALD_ENOMEM (map unchanged). */
int hmap_put(hmap *m, const void *key, size_t klen, void *val);
/* Removes key; returns its value or NULL when absent. */
void *hmap_del(hmap *m, const void *key, size_t klen);
/* Number of keys. */
size_t hmap_count(const hmap *m);

/* Iteration: i from 0; returns the next slot index ≥ i holding a key, or
 * (size_t)-1 at the end. Do not modify the map while iterating. */
size_t hmap_next(const hmap *m, size_t i, const void **key, size_t *klen,
                 void **val);

#endif
