/*
 * json.h — a small JSON writer into a herald_buf or a FILE*: objects,
 * arrays, strings (control characters, quotes and backslashes escaped;
 * invalid UTF-8 — bad lead or continuation bytes, truncation, overlong
 * forms, surrogates, beyond U+10FFFF — becomes U+FFFD, one per bad byte),
 * integers, booleans. Commas and colons are placed automatically; a failure
 * (allocation, write, nesting beyond JSON_DEPTH_MAX) is sticky and reported
 * once by json_done, so callers write a whole document without checking
 * each call.
 *
 * Thread safety: one writer per json_w; no global state.
 */
#ifndef HERALD_COMMON_JSON_H
#define HERALD_COMMON_JSON_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 16

typedef struct json_w {
    herald_buf *b;                 /* output buffer (appended to), or NULL */
    FILE *f;                       /* output stream when b is NULL (not owned) */
    int depth;                     /* open containers */
    bool first[JSON_DEPTH_MAX];    /* nothing written yet at this depth */
    bool after_key;                /* a key was written; the value comes next */
    bool failed;                   /* an allocation or write failed, or depth overflowed */
} json_w;

/* Starts a document appended to b (the caller owns b). */
void json_init(json_w *w, herald_buf *b);
/* Starts a document written to f (not closed; the caller flushes). */
void json_init_file(json_w *w, FILE *f);
void json_obj(json_w *w);          /* { */
void json_obj_end(json_w *w);      /* } */
void json_arr(json_w *w);          /* [ */
void json_arr_end(json_w *w);      /* ] */
void json_key(json_w *w, const char *k);           /* "k": (inside an object) */
void json_str(json_w *w, const char *p, size_t n); /* n bytes, any content */
void json_strz(json_w *w, const char *z);          /* NUL-terminated; NULL = "" */
/* A value that is JSON text already (n ≥ 1 bytes; the caller vouches for it). */
void json_raw(json_w *w, const char *p, size_t n);
void json_u64(json_w *w, uint64_t v);
void json_i64(json_w *w, int64_t v);
void json_bool(json_w *w, bool v);
/* 0, or HERALD_ENOMEM (buffer) / HERALD_EIO (stream) when anything failed. */
int json_done(const json_w *w);

#endif
