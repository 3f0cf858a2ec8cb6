/*
 * api_int.h — the open API's route table and its two translations: JSON
 * (or a query string) into one request frame, and the reply frame into
 * one JSON object. Floors: api.c (HTTP, credentials, rate limits, the
 * console's files) → api_openapi.c (the document) → api_routes.c (the
 * table, the builders and renderers). Loop thread only.
 */
#ifndef HERALD_API_INT_H
#define HERALD_API_INT_H

#include <herald/protocol.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_proto.h"
#include "json.h"

/* How a parameter reaches the frame. */
typedef enum api_ptype {
    AP_STR,   /* string → herald_str field (a required one must not be empty) */
    AP_STR0,  /* string that may be empty even when required (a callback's
                 url: "" removes it) → as AP_STR */
    AP_U64,   /* non-negative integer → uint64_t field */
    AP_U32,   /* non-negative integer ≤ 2^32 − 1 → uint32_t field */
    AP_LIST,  /* array of strings, or one string "a|b|c" → herald_str array + count */
    AP_TEXT,  /* string → the frame's body */
    AP_FLAG,  /* true/false → sets bit `bit` of the uint32_t field */
    AP_BOOL,  /* true/false, an argument of a JSON-argument op */
    AP_OBJ,   /* {"content": "…"} (message/send's text) → the body */
} api_ptype;

/* Where the answer comes from. */
typedef enum api_mode {
    AM_FRAME, /* the reply frame, field by field */
    AM_ARGS,  /* APP management: the parameters (but app) are the op's JSON
                 arguments; the answer is the reply's JSON document */
    AM_DOC,   /* the reply's JSON document (STATUS) */
    AM_SEND,  /* WeCom's message/send */
    AM_LOCAL, /* answered by the API itself (the OpenAPI document) */
} api_mode;

typedef struct api_param {
    const char *name;   /* JSON key / query parameter */
    uint8_t type;       /* api_ptype */
    bool required;
    size_t off;         /* offset of the frame field (SIZE_MAX: none) */
    size_t noff;        /* AP_LIST: offset of its count; AP_FLAG: the bit */
    const char *doc;    /* for the OpenAPI document */
} api_param;

typedef struct api_route_def {
    http_method method;   /* HTTP_GET (query) or HTTP_POST (JSON body) */
    const char *path;     /* "/api/v1/…" */
    uint32_t ftype;       /* request frame type */
    const char *op;       /* its op, NULL when none */
    uint32_t flags;       /* frame flags always set (resigned transfer) */
    uint8_t mode;         /* api_mode */
    bool no_auth;         /* no bearer token (POST /token, the document) */
    const char *tag;      /* OpenAPI tag: "credentials", "messages", … */
    const char *summary;  /* one line */
    const api_param *params; /* NULL-terminated by name */
} api_route_def;

extern const api_route_def api_routes[];
extern const size_t api_routes_len;

/* The route of (method, path), or NULL; *other_method when the path exists
 * with another method. */
const api_route_def *api_find(http_method m, const char *path, size_t len, bool *other_method);

/* A request frame being built, and what its strings point into besides
 * the arguments' JSON (which must outlive it too). */
typedef struct api_built {
    herald_frame f;    /* the frame */
    char *argbuf;      /* AM_ARGS: the op's JSON arguments (f.body) */
    char *copies[4];   /* "a|b" lists, split */
    uint32_t ncopies;
    char idbuf[64];    /* a message id the API chose */
} api_built;

/* Builds r's request frame from args (a JSON object: the body, or the query
 * string's parameters as strings when from_query). 0, or an HTTP status
 * (400; 500 out of memory) with the reason in why; either way free b with
 * api_built_free. */
int api_build(const api_route_def *r, json_t *args, bool from_query, api_built *b, char *why,
              size_t whylen);
void api_built_free(api_built *b);

/* Writes the answer's fields (after "errcode" and "errmsg") from reply
 * frame rf of route r. 0 or HERALD_EINVAL (a document that is not a JSON
 * object). */
int api_render(const api_route_def *r, const herald_frame *rf, json_w *w);

/* The query string as a JSON object of strings (repeated keys: the last;
 * %XX and '+' decoded). NULL with why on a malformed one. */
json_t *api_query(const char *q, size_t n, char *why, size_t whylen);

/* api_openapi.c: the OpenAPI 3 document of the table. */
int api_openapi(herald_buf *out);

#endif
