/* mqtt_sess.c — MQTT persistent sessions of a tier. See mqtt_sess.h. */
#include "mqtt_sess.h"

#include <herald/error.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "hmap.h"

struct mqtt_table {
    hmap *map;                /* key → mqtt_psess (persistent ones) */
    uint32_t max;             /* sessions kept at most */
    mqtt_psess *off_head;     /* offline sessions, oldest first */
    mqtt_psess *off_tail;     /* newest offline session */
};

int mqtt_table_create(uint32_t max, mqtt_table **out)
{
    mqtt_table *t = calloc(1, sizeof *t);
    int rc;
    if (!t)
        return HERALD_ENOMEM;
    rc = hmap_create(&t->map);
    if (rc) {
        free(t);
        return rc;
    }
    t->max = max ? max : 1;
    *out = t;
    return 0;
}

static void sess_free(mqtt_psess *s)
{
    if (!s)
        return;
    free(s->subs);
    free(s->key);
    free(s);
}

void mqtt_table_destroy(mqtt_table *t)
{
    const void *k;
    size_t kl, i = 0;
    void *v;

    if (!t)
        return;
    while ((i = hmap_next(t->map, i, &k, &kl, &v)) != (size_t)-1) {
        mqtt_psess *s = v;
        if (s->owner)
            s->persistent = false; /* its connection frees it (mqtt_sess_close) */
        else
            sess_free(s);
        i++;
    }
    hmap_destroy(t->map);
    free(t);
}

uint32_t mqtt_table_count(const mqtt_table *t) { return (uint32_t)hmap_count(t->map); }

static void off_unlink(mqtt_table *t, mqtt_psess *s)
{
    if (s->o_prev)
        s->o_prev->o_next = s->o_next;
    else if (t->off_head == s)
        t->off_head = s->o_next;
    if (s->o_next)
        s->o_next->o_prev = s->o_prev;
    else if (t->off_tail == s)
        t->off_tail = s->o_prev;
    s->o_prev = s->o_next = NULL;
}

/* Drops a persistent session from the table (it must be offline). */
static void forget(mqtt_table *t, mqtt_psess *s)
{
    off_unlink(t, s);
    hmap_del(t->map, s->key, s->klen);
    sess_free(s);
}

static mqtt_psess *sess_new(const char *key, size_t klen)
{
    mqtt_psess *s = calloc(1, sizeof *s);
    struct timeval tv;
    if (!s)
        return NULL;
    s->key = malloc(klen);
    if (!s->key) {
        free(s);
        return NULL;
    }
    memcpy(s->key, key, klen);
    s->klen = klen;
    gettimeofday(&tv, NULL);
    /* Names this session's cmids apart from an earlier session of the same
     * client id (forgotten, or clean): microseconds and 16 random bits. */
    s->epoch = ((uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec) << 16 |
               (randombytes_random() & 0xffffu);
    s->next_n = 1;
    return s;
}

int mqtt_sess_open(mqtt_table *t, const char *tenant, const char *user, const char *client_id,
                   size_t cid_len, bool persistent, void *owner, mqtt_psess **out,
                   bool *existed, void **taken_from)
{
    char key[2 * (TOKEN_ID_MAX + 1) + 256];
    size_t tl = strlen(tenant), ul = strlen(user), klen = tl + ul + 2 + cid_len;
    mqtt_psess *s;

    *existed = false;
    *taken_from = NULL;
    if (tl > TOKEN_ID_MAX || ul > TOKEN_ID_MAX || cid_len > 255)
        return HERALD_EINVAL;
    memcpy(key, tenant, tl + 1);
    memcpy(key + tl + 1, user, ul + 1);
    memcpy(key + tl + ul + 2, client_id, cid_len);
    s = hmap_get(t->map, key, klen);
    if (s && !persistent) {
        /* Clean session: whatever was kept for this id ends [MQTT-3.1.2-6]. */
        *taken_from = s->owner;
        if (s->owner) {
            /* Online: out of the table, freed when its connection closes. */
            hmap_del(t->map, s->key, s->klen);
            s->persistent = false;
        } else {
            forget(t, s);
        }
        s = NULL;
    }
    if (s) {
        *existed = true;
        *taken_from = s->owner;
        off_unlink(t, s);
        s->owner = owner;
        *out = s;
        return 0;
    }
    if (persistent && hmap_count(t->map) >= t->max) {
        if (!t->off_head)
            return HERALD_EBUSY;
        forget(t, t->off_head); /* the oldest offline session goes first */
    }
    s = sess_new(key, klen);
    if (!s)
        return HERALD_ENOMEM;
    s->persistent = persistent;
    s->owner = owner;
    if (persistent && hmap_put(t->map, s->key, s->klen, s) != 0) {
        sess_free(s);
        return HERALD_ENOMEM;
    }
    *out = s;
    return 0;
}

void mqtt_sess_close(mqtt_table *t, mqtt_psess *s, void *owner)
{
    if (!s || s->owner != owner)
        return; /* taken over by a newer connection: not ours any more */
    s->owner = NULL;
    if (!s->persistent) {
        sess_free(s);
        return;
    }
    s->o_prev = t->off_tail;
    s->o_next = NULL;
    if (t->off_tail)
        t->off_tail->o_next = s;
    else
        t->off_head = s;
    t->off_tail = s;
}

uint64_t mqtt_sess_pub_number(mqtt_psess *s, uint16_t pid, bool dup)
{
    uint64_t n;
    if (dup) {
        /* Newest first: a packet id reused after its PUBACK is the newer entry. */
        for (uint32_t i = 1; i <= MQTT_RECENT; i++) {
            uint32_t k = (s->recent_head + MQTT_RECENT - i) % MQTT_RECENT;
            if (s->recent[k].pid == pid)
                return s->recent[k].n;
        }
    }
    n = s->next_n++;
    s->recent[s->recent_head].pid = pid;
    s->recent[s->recent_head].n = n;
    s->recent_head = (s->recent_head + 1) % MQTT_RECENT;
    return n;
}

int mqtt_sess_subscribe(mqtt_psess *s, const mqtt_sub *sub)
{
    for (uint32_t i = 0; i < s->nsubs; i++)
        if (s->subs[i].flen == sub->flen && memcmp(s->subs[i].filter, sub->filter, sub->flen) == 0) {
            s->subs[i] = *sub; /* the same filter replaces the old one */
            return 0;
        }
    if (s->nsubs == MQTT_SUBS_MAX)
        return HERALD_ETOO_BIG;
    if (s->nsubs == s->subs_cap) {
        uint32_t cap = s->subs_cap ? s->subs_cap * 2 : 4;
        mqtt_sub *n = realloc(s->subs, cap * sizeof *n);
        if (!n)
            return HERALD_ENOMEM;
        s->subs = n;
        s->subs_cap = cap;
    }
    s->subs[s->nsubs++] = *sub;
    return 0;
}

void mqtt_sess_unsubscribe(mqtt_psess *s, const char *filter, size_t len)
{
    for (uint32_t i = 0; i < s->nsubs; i++)
        if (s->subs[i].flen == len && memcmp(s->subs[i].filter, filter, len) == 0) {
            s->subs[i] = s->subs[--s->nsubs];
            return;
        }
}
