/*
 * json.h — a small JSON writer into a herald_buf: objects, arrays, strings
 * (control characters, quotes and backslashes escaped; invalid UTF-8 becomes
 * U+FFFD), unsigned integers, booleans. Commas are placed automatically.
 *
 * Thread safety: one writer per json_w.
 */
#ifndef HERALD_COMMON_JSON_H
#define HERALD_COMMON_JSON_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stdint.h>

#define JSON_DEPTH_MAX 16

typedef struct json_w {
    herald_buf *b;                 /* output */
    int depth;                     /* open containers */
    bool first[JSON_DEPTH_MAX];    /* nothing written yet at this depth */
    bool after_key;                /* a key was written; the value comes next */
    bool failed;                   /* an allocation failed or depth overflowed */
} json_w;

void json_init(json_w *w, herald_buf *b);
void json_obj(json_w *w);          /* { */
void json_obj_end(json_w *w);      /* } */
void json_arr(json_w *w);          /* [ */
void json_arr_end(json_w *w);      /* ] */
void json_key(json_w *w, const char *k);
void json_str(json_w *w, const char *p, size_t n);
void json_strz(json_w *w, const char *z);
void json_u64(json_w *w, uint64_t v);
void json_bool(json_w *w, bool v);
/* 0, or HERALD_ENOMEM when anything failed. */
int json_done(const json_w *w);

#endif
