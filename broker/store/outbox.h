/*
 * outbox.h — the event-callback outbox of a store: replicated records in
 * the meta database, written by the state machine (apply_outbox.c) in the
 * same transaction as the command that caused them, read here.
 *
 * Layout (meta database; every kind is a length-prefixed id, so nothing
 * collides with the other meta records):
 *   "oe" seq(8)            → event: ts u64, tenant str, type str, conv str,
 *                            data str (a JSON object)
 *   "os"                   → state: last seq u64, events held u64, events
 *                            dropped unacknowledged (cap or age) u64
 *   "oc" ten app           → an app's progress in this group: cursor u64
 *                            (every event ≤ it is done for the app),
 *                            delivered u64, failed (total) u64, failed now u32
 *   "or" ten app seq(8)    → an event being retried (the head of the app's
 *                            stream, or a requeued failed one): state u8
 *                            (OB_*), attempts u32, next attempt ms u64, first
 *                            attempt ms u64, last error str, then the event
 *                            (ts, type, conv, data) so it outlives pruning
 *   "of" ten app seq(8)    → an event given up on (OB_FAILED), the same
 *                            record: kept apart so that the deliverer's look
 *                            at "or" stays small however many failed
 *   "cb" ten app           → (group 0) an app's callback: url str, token str,
 *                            secret str (hex), flags u32 (CMD_CB_ALL), set
 *                            at ms u64, then (absent in records written
 *                            before types existed: every type) the event
 *                            types it wants u32 (ob_type_bit; 0: every type)
 * Event ids are "GROUP-SEQ": seq comes from the store's own sequence, so
 * every replica gives an event the same id.
 *
 * Reads take a short read transaction each (any thread). Records from disk
 * are decoded with bounds checks: a corrupt one is HERALD_ESTORAGE.
 */
#ifndef HERALD_STORE_OUTBOX_H
#define HERALD_STORE_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "keys.h"
#include "store.h"

#define OUTBOX_CAP 100000u                     /* events one group holds */
#define OUTBOX_AGE_MS (7ull * 24 * 3600 * 1000) /* … and for how long */
#define OUTBOX_FAILED_CAP 10000u               /* failed events kept per app per group */
#define OUTBOX_TYPE_MAX 31u                    /* bytes of an event type */
#define OUTBOX_ERR_MAX 200u                    /* bytes of a last error kept */
#define OUTBOX_URL_MAX 1024u                   /* bytes of a callback URL */

/* Retry record states. */
#define OB_RETRYING 0u /* the head of the app's stream, failing; next at next_ms */
#define OB_FAILED 1u   /* given up: visible, re-deliverable */
#define OB_REQUEUED 2u /* failed, then "redeliver": to be sent again */

/* One event. Strings are NUL-terminated; data is malloc'd (store_event_free). */
typedef struct store_event {
    uint32_t group;                  /* the store's group (its id's first part) */
    uint64_t seq;                    /* outbox sequence (its id's second part) */
    uint64_t ts;                     /* the causing command's commit time, ms */
    char tenant[TOKEN_ID_MAX_STORE + 1];
    char type[OUTBOX_TYPE_MAX + 1];  /* "message", "receipt", … */
    char conv[TOKEN_ID_MAX_STORE + 1]; /* "" for tenant-level events */
    char *data;                      /* JSON object text */
    size_t data_len;
} store_event;
void store_event_free(store_event *e); /* frees data; NULL-safe */

typedef struct store_outbox_state {
    uint64_t last_seq;  /* the newest event's seq (0: none yet) */
    uint64_t held;      /* events in the outbox now */
    uint64_t dropped;   /* events removed before every app had them */
} store_outbox_state;

typedef struct store_ob_cursor {
    uint64_t cursor;     /* every event ≤ it is done for the app */
    uint64_t delivered;  /* events acknowledged by the app (2xx) */
    uint64_t failed;     /* events given up on, in all */
    uint32_t failed_now; /* … of which kept now (re-deliverable) */
} store_ob_cursor;

typedef struct store_ob_retry {
    uint64_t seq;        /* the event */
    uint32_t state;      /* OB_* */
    uint32_t attempts;   /* made so far */
    uint64_t next_ms;    /* OB_RETRYING: when the next one is due */
    uint64_t first_ms;   /* the first attempt */
    char last_error[OUTBOX_ERR_MAX + 1];
    store_event ev;      /* the event (group, seq, tenant filled too) */
} store_ob_retry;
void store_ob_retry_free(store_ob_retry *r); /* NULL-safe */

/* ---- event types --------------------------------------------------------
 * Every type the state machine records, each with a bit of its own for an
 * app's subscription (store_callback.types). The bits are stored: a type
 * keeps its bit forever, new types take the next ones. */
#define OB_TYPES_N 12u
extern const char *const ob_type_names[OB_TYPES_N]; /* bit i ↔ ob_type_names[i] */
/* The bit of type p[0..n) ("message", "message.offline", …), or 0 for a
 * name that is no event type. */
uint32_t ob_type_bit(const char *p, size_t n);
/* Writes the names of the types in mask, comma-separated, into out (at
 * most cap bytes, NUL-terminated; "" for 0). */
void ob_types_str(uint32_t mask, char *out, size_t cap);

typedef struct store_callback {
    char tenant[TOKEN_ID_MAX_STORE + 1];
    char app[TOKEN_ID_MAX_STORE + 1];
    char url[OUTBOX_URL_MAX + 1];
    char token[65];
    char secret[65];     /* hex; the HMAC key is these characters */
    bool all;            /* every event of the tenant (CMD_CB_ALL) */
    uint32_t types;      /* the event types it wants (ob_type_bit); 0: every type */
    uint64_t set_ms;     /* when it was set: earlier events are not its */
} store_callback;

/* ---- keys and records (apply_outbox.c writes, this file reads) ---------- */
void key_ob_event(kbuf *k, uint64_t seq);
void key_ob_state(kbuf *k);
void key_ob_cursor(kbuf *k, herald_str ten, herald_str app);
/* "or" (failed false) or "of" (failed true) record of (ten, app, seq);
 * prefix true: the prefix of all of the app's (seq ignored). */
void key_ob_retry(kbuf *k, bool failed, herald_str ten, herald_str app, uint64_t seq,
                  bool prefix);
void key_callback(kbuf *k, herald_str ten, herald_str app);

/* Decoders of records from disk. 0 or HERALD_ESTORAGE (HERALD_ENOMEM for
 * the data copy). */
int ob_event_decode(MDB_val v, store_event *out);
int ob_state_decode(MDB_val v, store_outbox_state *out);
int ob_cursor_decode(MDB_val v, store_ob_cursor *out);
int ob_retry_decode(MDB_val v, store_ob_retry *out);
int callback_decode(MDB_val v, store_callback *out);

/* ---- reads --------------------------------------------------------------- */

/* The outbox's state (zeros when it never held anything). 0, ESTORAGE. */
int store_outbox_state_get(store *s, store_outbox_state *out);

/* Calls fn for each event with seq > after, ascending, at most max of them,
 * until fn returns non-zero (returned; 1 is a plain stop). The event is
 * valid during the call only. 0, ESTORAGE, ENOMEM, or fn's code. */
typedef int (*store_event_fn)(const store_event *e, void *arg);
int store_outbox_scan(store *s, uint64_t after, uint32_t max, store_event_fn fn, void *arg);

/* An app's cursor record in this group (zeros when absent). 0, ESTORAGE. */
int store_ob_cursor_get(store *s, herald_str ten, herald_str app, store_ob_cursor *out);

/* Calls fn for each retry record ("or"; failed: the failed ones, "of") of
 * the app, in seq order, until non-zero. */
typedef int (*store_retry_fn)(const store_ob_retry *r, void *arg);
int store_ob_retries(store *s, herald_str ten, herald_str app, bool failed, store_retry_fn fn,
                     void *arg);

/* An app's callback (group 0 store). 0, ENOT_FOUND, ESTORAGE. */
int store_callback_get(store *meta, herald_str ten, herald_str app, store_callback *out);
/* Every callback of every tenant, in (tenant, app) order, until fn returns
 * non-zero. */
typedef int (*store_callback_fn)(const store_callback *cb, void *arg);
int store_callbacks(store *meta, store_callback_fn fn, void *arg);

#endif
