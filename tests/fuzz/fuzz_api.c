/*
 * fuzz_api.c — libFuzzer target for the open API's input side
 * (broker/api/api_int.h): a query string (api_query) or a JSON body parsed
 * as the server does (jansson, duplicates refused) and built into a route's
 * request frame (api_build), then encoded.
 *
 * Input: byte 0 picks the route, byte 1 bit 0 whether the rest is a query
 * string (a GET's parameters) or a JSON body. Checked: a build answers 0 or
 * 400 (500 only for memory), with a reason on 400; a built frame encodes
 * and decodes back to the same type and op; a query object holds strings
 * only. A failed check aborts.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const api_route_def *r;
    json_t *args;
    char why[256] = "";
    api_built b;
    int st;
    bool query;

    if (size < 2)
        return 0;
    r = &api_routes[data[0] % api_routes_len];
    query = data[1] & 1;
    data += 2;
    size -= 2;
    if (query) {
        const char *k;
        json_t *v;
        args = api_query((const char *)data, size, why, sizeof why);
        if (!args)
            return 0;
        json_object_foreach(args, k, v)
            check(json_is_string(v));
    } else {
        json_error_t e;
        args = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &e);
        if (!args)
            return 0;
        if (!json_is_object(args)) {
            json_decref(args);
            return 0;
        }
    }
    st = api_build(r, args, query, &b, why, sizeof why);
    check(st == 0 || st == 400 || st == 500);
    if (st == 400)
        check(why[0] != '\0');
    if (st == 0 && r->ftype) {
        herald_buf enc = {0};
        herald_limits lim = {.max_frame = 64u << 20};
        herald_frame f;
        if (herald_frame_encode(&b.f, &enc) == 0) {
            check(herald_frame_decode(enc.data + HERALD_FRAME_HEADER,
                                      enc.len - HERALD_FRAME_HEADER, &lim, &f) == 0);
            check(f.type == r->ftype);
            check(herald_str_eq(f.op, r->op ? r->op : "") || (!r->op && f.op.len == 0) ||
                  r->mode == AM_SEND /* picks send or announce */);
            herald_frame_release(&f);
        }
        herald_buf_free(&enc);
    }
    api_built_free(&b);
    json_decref(args);
    return 0;
}
