/*
 * http_proto.h — the pure part of Herald's HTTP/1.1 server: the request head
 * parser. No sockets: http_srv.c drives it from a connection's input, and
 * tests/fuzz/fuzz_http.c feeds it arbitrary bytes.
 *
 * Bounded: the head is looked for only within the first `head_max` bytes
 * (the caller's cap; 431 past it), at most HTTP_MAX_HEADERS header lines are
 * accepted, and a Content-Length is parsed without overflow and returned
 * for the caller to check against its body cap before it allocates or
 * waits for anything. Transfer-Encoding (chunked bodies) is refused: every
 * body the server takes has a declared length.
 *
 * A separate parser from the WebSocket one (session/ws_proto.c): that one
 * accepts exactly one Upgrade request and lives in the session tier; this
 * one serves any method and path, keep-alive and bodies, and is used by
 * processes that have no session tier (nodes).
 *
 * Threads: reentrant, no global state.
 */
#ifndef HERALD_HTTP_PROTO_H
#define HERALD_HTTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64u   /* header lines accepted in one request */
#define HTTP_METHOD_MAX 16u    /* bytes of a method token */

typedef enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_PATCH,
    HTTP_OTHER, /* a well-formed token we do not know (answered 405 or 501) */
} http_method;

/* A parsed request head; pointers into the parsed buffer, valid as long as
 * it is and unchanged. */
typedef struct http_req {
    size_t head_len;        /* bytes of the head, blank line included */
    http_method method;     /* the method */
    const char *path;       /* origin-form path, starts with '/', no query */
    size_t path_len;
    const char *query;      /* after '?', NULL when none */
    size_t query_len;
    bool http10;            /* HTTP/1.0 (close after the answer unless keep-alive) */
    bool keep_alive;        /* the connection may carry another request */
    uint64_t content_length; /* declared body bytes (0 when absent) */
    const char *ctype;      /* Content-Type value, NULL when absent */
    size_t ctype_len;
    const char *auth;       /* Authorization value, NULL when absent (twice: 400) */
    size_t auth_len;
} http_req;

#define HTTP_PARTIAL 0 /* no blank line yet within the cap: wait for more */
#define HTTP_OK 200    /* *out filled */

/* The lexical pieces of an HTTP/1.1 head, shared with the WebSocket
 * handshake parser (session/ws_proto.c). */
/* a[0..n) equals b[0..n), ASCII letters in any case. */
bool http_ieq_n(const char *a, const char *b, size_t n);
/* a[0..alen) equals the NUL-terminated b, ASCII letters in any case. */
bool http_ieq(const char *a, size_t alen, const char *b);
/* SP or HTAB. */
bool http_is_sp(char c);
/* True when the comma-separated list v[0..n) holds token tok (any case). */
bool http_has_token(const char *v, size_t n, const char *tok);
/* Index just past the first "\r\n\r\n" within p[0..len), or 0. */
size_t http_head_end(const uint8_t *p, size_t len);

/* Parses the head of p[0..len), looking for its end within the first
 * head_max bytes. Returns HTTP_PARTIAL, HTTP_OK, or the status to answer
 * (and close) with: 400 (malformed request line, header line, Host missing
 * on 1.1, bad or conflicting Content-Length, a target not in origin form,
 * control bytes), 431 (no blank line within head_max bytes, or more than
 * HTTP_MAX_HEADERS headers), 501 (Transfer-Encoding), 505 (a version other
 * than HTTP/1.0 and HTTP/1.1). Never reads past len. */
int http_req_parse(const uint8_t *p, size_t len, size_t head_max, http_req *out);

/* The reason phrase of a status (200, 400, 404, 405, 408, 413, 431, 500,
 * 501, 503, 505 and the others http_srv sends); "Unknown" otherwise. */
const char *http_reason(int status);

/* The method's name ("GET", ...; "?" for HTTP_OTHER). */
const char *http_method_name(http_method m);

#endif
