/*
 * cbargs.h — the arguments of the APP ops callback, events and redeliver:
 * one JSON object (the frame's body), checked completely before anything
 * is done with it. Unknown fields, wrong types and values out of range
 * are refused with a clear text.
 *
 *   callback   {"url": "https://…" ("" removes it), "all": bool,
 *               "events": ["message", "message.offline", …] (the types it
 *               wants; absent or []: every type)}
 *   events     {"failed": bool, "limit": 1..200 (default 50), "after": "G-SEQ"}
 *   redeliver  {"id": "G-SEQ"} or {"failed": true}
 *
 * Thread safety: reentrant.
 */
#ifndef HERALD_SERVICE_CBARGS_H
#define HERALD_SERVICE_CBARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CBARGS_LIMIT_MAX 200u
#define CBARGS_LIMIT_DEFAULT 50u
#define CBARGS_URL_MAX 1024u

typedef enum cbargs_op { CBARGS_CALLBACK, CBARGS_EVENTS, CBARGS_REDELIVER } cbargs_op;

typedef struct cbargs {
    char url[CBARGS_URL_MAX + 1]; /* callback */
    bool all;                     /* callback */
    uint32_t types;               /* callback: ob_type_bit of each of "events"; 0: every type */
    bool failed;                  /* events: failed ones only; redeliver: every failed one */
    uint32_t limit;               /* events */
    bool has_after, has_id;
    uint32_t group;               /* events "after" / redeliver "id": G */
    uint64_t seq;                 /* … SEQ */
} cbargs;

/* Parses p[0..n) (not NUL-terminated) for op into *out. 0, or
 * HERALD_EINVAL with why (NUL-terminated) filled. */
int cbargs_parse(cbargs_op op, const char *p, size_t n, cbargs *out, char *why, size_t whylen);

/* Parses "G-SEQ". 0 or HERALD_EINVAL. */
int cbargs_event_id(const char *s, uint32_t *group, uint64_t *seq);

#endif
