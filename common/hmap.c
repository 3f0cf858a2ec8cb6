/* hmap.c — see hmap.h. */
#include "hmap.h"

#include <herald/error.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct hslot {
    uint64_t hash; /* full hash of key; 0 marks an empty slot */
    char *key;     /* malloc'd copy */
    size_t klen;   /* key bytes */
    void *val;     /* borrowed value */
} hslot;

struct hmap {
    hslot *slots;  /* capacity entries */
    size_t cap;    /* power of two */
    size_t count;  /* keys stored */
    uint64_t seed; /* per-map hash seed */
};

static uint64_t hash_key(uint64_t seed, const void *key, size_t klen)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

int hmap_create(hmap **out)
{
    hmap *m = calloc(1, sizeof *m);
    if (!m)
        return HERALD_ENOMEM;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return HERALD_ENOMEM;
    }
    randombytes_buf(&m->seed, sizeof m->seed);
    *out = m;
    return 0;
}

void hmap_destroy(hmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static size_t find(const hmap *m, uint64_t h, const void *key, size_t klen)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const hslot *s = &m->slots[i];
        if (s->hash == 0)
            return i;
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)
            return i;
    }
}

void *hmap_get(const hmap *m, const void *key, size_t klen)
{
    uint64_t h = hash_key(m->seed, key, klen);
    const hslot *s = &m->slots[find(m, h, key, klen)];
    return s->hash ? s->val : NULL;
}

static int grow(hmap *m)
{
    size_t ncap = m->cap * 2;
    hslot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return HERALD_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        hslot *s = &m->slots[i];
        if (!s->hash)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].hash)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int hmap_put(hmap *m, const void *key, size_t klen, void *val)
{
    uint64_t h = hash_key(m->seed, key, klen);
    size_t i = find(m, h, key, klen);
    char *copy;

    if (m->slots[i].hash) {
        m->slots[i].val = val;
        return 0;
    }
    if ((m->count + 1) * 2 > m->cap) {
        if (grow(m) != 0)
            return HERALD_ENOMEM;
        i = find(m, h, key, klen);
    }
    copy = malloc(klen ? klen : 1);
    if (!copy)
        return HERALD_ENOMEM;
    memcpy(copy, key, klen);
    m->slots[i] = (hslot){.hash = h, .key = copy, .klen = klen, .val = val};
    m->count++;
    return 0;
}

void *hmap_del(hmap *m, const void *key, size_t klen)
{
    uint64_t h = hash_key(m->seed, key, klen);
    size_t mask = m->cap - 1;
    size_t i = find(m, h, key, klen);
    void *val;

    if (!m->slots[i].hash)
        return NULL;
    val = m->slots[i].val;
    free(m->slots[i].key);
    /* Backward-shift: pull later members of the probe run into the hole. */
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        hslot *s = &m->slots[j];
        if (!s->hash)
            break;
        size_t home = s->hash & mask;
        /* s may move to i only if i lies cyclically in [home, j). */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = *s;
            i = j;
        }
    }
    m->slots[i] = (hslot){0};
    m->count--;
    return val;
}

size_t hmap_count(const hmap *m) { return m->count; }

size_t hmap_next(const hmap *m, size_t i, const void **key, size_t *klen,
                 void **val)
{
    for (; i < m->cap; i++) {
        if (m->slots[i].hash) {
            *key = m->slots[i].key;
            *klen = m->slots[i].klen;
            *val = m->slots[i].val;
            return i;
        }
    }
    return (size_t)-1;
}
