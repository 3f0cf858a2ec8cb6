/*
 * mqtt_sess.h — MQTT persistent sessions ("clean session = 0") of one
 * session tier: per (tenant, user, client id) what a reconnecting client
 * resumes from.
 *
 * A session holds the Herald sync key up to which every message was handled
 * (pushed at QoS 0, acknowledged by PUBACK at QoS 1, or matching no
 * subscription), the subscriptions, and what makes a QoS 1 PUBLISH
 * exactly-once in the store: a numbering of the client's publishes (the
 * cmid of the SEND) and the packet ids of its recent publishes with their
 * numbers, so a DUP resend (even after a reconnect) reuses its number and
 * Herald's cmid dedup returns the first copy's seq instead of storing it
 * twice, while a packet id reused after its PUBACK is a new message.
 *
 * The table lives in the memory of the process that holds the listener
 * (the gateway; `heraldd dev`): bounded by `max` sessions (the oldest
 * offline session is forgotten first; when every session is online a new
 * one is refused), lost when that process restarts. A client whose session
 * was forgotten starts a new one (CONNACK session present = 0).
 *
 * Loop thread only; the table owns its sessions.
 */
#ifndef HERALD_MQTT_SESS_H
#define HERALD_MQTT_SESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "token.h"

#define MQTT_SUBS_MAX 64u     /* subscriptions per session */
#define MQTT_RECENT 256u      /* packet ids of the latest publishes remembered */
#define MQTT_GROUPS_MAX 65u   /* = TIER_MAX_GROUPS */
#define MQTT_CONV_MAX TOKEN_ID_MAX

/* Subscription kinds: one conversation, or every conversation of the user. */
enum { MQTT_SUB_CONV = 1, MQTT_SUB_ALL = 2 };

typedef struct mqtt_sub {
    uint8_t kind;                 /* MQTT_SUB_CONV or MQTT_SUB_ALL */
    uint8_t qos;                  /* granted: 0 or 1 */
    bool json;                    /* the json/conv/ form: a JSON envelope */
    uint16_t flen;                /* bytes of filter */
    uint16_t conv_off;            /* MQTT_SUB_CONV: where the conversation id starts in filter */
    char filter[MQTT_CONV_MAX + 16]; /* the filter as subscribed, NUL-terminated
                                        (UNSUBSCRIBE names it exactly) */
} mqtt_sub;

typedef struct mqtt_psess {
    char *key;                /* "tenant\0user\0client id" */
    size_t klen;              /* its bytes */
    bool persistent;          /* in the table (clean session 0) */
    bool has_key;             /* sync key below is set */
    uint64_t epoch;           /* creation time (µs) + randomness: names its cmids */
    uint64_t next_n;          /* number of the next new publish */
    uint32_t recent_head;     /* next slot of recent[] */
    struct {
        uint16_t pid;         /* packet id (0 = empty slot) */
        uint64_t n;           /* the publish number it carried */
    } recent[MQTT_RECENT];
    uint64_t key_pos[MQTT_GROUPS_MAX]; /* the sync key: group → position handled */
    uint32_t nsubs;           /* subscriptions in subs[] (≤ MQTT_SUBS_MAX) */
    uint32_t subs_cap;        /* entries allocated */
    mqtt_sub *subs;           /* the subscriptions (grown by mqtt_sess_subscribe) */
    void *owner;              /* the connection using it (NULL: offline) */
    struct mqtt_psess *o_prev, *o_next; /* offline list, oldest first */
} mqtt_psess;

typedef struct mqtt_table mqtt_table;

/* 0, HERALD_ENOMEM. max ≥ 1. */
int mqtt_table_create(uint32_t max, mqtt_table **out);
/* Frees every session (online ones too: call after closing connections). NULL-safe. */
void mqtt_table_destroy(mqtt_table *t);
/* Sessions held. */
uint32_t mqtt_table_count(const mqtt_table *t);

/* The session for (tenant, user, client id). persistent: find or create it
 * in the table (*existed says which); else a private session, and a kept
 * one of that id is discarded (clean session 1). owner becomes its owner; a previous owner is returned in *taken_from (to be disconnected,
 * [MQTT-3.1.4-2]) and must not touch it again. 0, HERALD_ENOMEM, HERALD_EBUSY
 * (the table is full of online sessions). */
int mqtt_sess_open(mqtt_table *t, const char *tenant, const char *user, const char *client_id,
                   size_t cid_len, bool persistent, void *owner, mqtt_psess **out,
                   bool *existed, void **taken_from);
/* The owner goes away: a persistent session stays (offline), a private one
 * is freed. NULL-safe. */
void mqtt_sess_close(mqtt_table *t, mqtt_psess *s, void *owner);

/* A publish with packet id pid: its number. dup: the one it carried last
 * time when still remembered, else a new one; !dup: always a new one. */
uint64_t mqtt_sess_pub_number(mqtt_psess *s, uint16_t pid, bool dup);

/* Adds or replaces (same filter, [MQTT-3.8.4-3]) a subscription. 0,
 * HERALD_ENOMEM, HERALD_ETOO_BIG (MQTT_SUBS_MAX reached). */
int mqtt_sess_subscribe(mqtt_psess *s, const mqtt_sub *sub);
/* Removes the subscription with exactly this filter (absent: nothing). */
void mqtt_sess_unsubscribe(mqtt_psess *s, const char *filter, size_t len);

#endif
