/*
 * fuzz_http.c — libFuzzer target for the HTTP/1.1 request head parser
 * (broker/http/http_proto.h) that every heraldd process's HTTP server runs
 * on untrusted bytes.
 *
 * The input is fed whole, then as a growing prefix in chunks whose size
 * comes from the first byte (as a socket would deliver it), under a small
 * head cap so the fuzzer reaches it. Checked: only the documented statuses
 * come out; PARTIAL only while under the cap; an accepted head ends within
 * the cap and the input with a blank line; path and query lie inside the
 * input, the path starts with '/' and holds no '?'; a prefix never
 * accepts a head the whole input parses differently (the parser is
 * deterministic over the same head). A failed check aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_proto.h"

#define FUZZ_HEAD_MAX 1024u

static void check(int ok)
{
    if (!ok)
        abort();
}

static int parse(const uint8_t *data, size_t size, size_t cap, http_req *rq)
{
    int st = http_req_parse(data, size, cap, rq);
    check(st == HTTP_PARTIAL || st == HTTP_OK || st == 400 || st == 431 || st == 501 ||
          st == 505);
    check(strcmp(http_reason(st == HTTP_PARTIAL ? 200 : st), "Unknown") != 0);
    if (st == HTTP_PARTIAL)
        check(size < cap);
    if (st == HTTP_OK) {
        const char *base = (const char *)data;
        check(rq->head_len >= 4 && rq->head_len <= size && rq->head_len <= cap);
        check(memcmp(data + rq->head_len - 4, "\r\n\r\n", 4) == 0);
        check(rq->path >= base && rq->path + rq->path_len <= base + rq->head_len);
        check(rq->path_len >= 1 && rq->path[0] == '/');
        check(memchr(rq->path, '?', rq->path_len) == NULL);
        if (rq->query)
            check(rq->query >= base && rq->query + rq->query_len <= base + rq->head_len);
        if (rq->ctype)
            check(rq->ctype >= base && rq->ctype + rq->ctype_len <= base + rq->head_len);
        check(strcmp(http_method_name(rq->method), "") != 0);
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_req whole, part;
    int st_whole = parse(data, size, FUZZ_HEAD_MAX, &whole);
    size_t step = size ? (size_t)(data[0] % 64) + 1 : 1;

    parse(data, size, 8192, &part);
    for (size_t n = 0; n <= size; n += step) {
        int st = parse(data, n, FUZZ_HEAD_MAX, &part);
        if (st != HTTP_PARTIAL) {
            /* The first prefix that decides decides like the whole input. */
            check(st == st_whole || (st == 431 && st_whole == 431));
            if (st == HTTP_OK)
                check(part.head_len == whole.head_len &&
                      part.content_length == whole.content_length &&
                      part.keep_alive == whole.keep_alive);
            break;
        }
    }
    return 0;
}
