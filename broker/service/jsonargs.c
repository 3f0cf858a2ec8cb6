/* jsonargs.c — the JSON arguments and answers of the APP management ops
 * (one object in, one object out, carried in the frame's body). */
#include "svc_int.h"

#include <herald/error.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define ARGS_MAX (64u << 10) /* bytes of arguments: they are small */

json_t *req_args(svc_req *rq, const herald_frame *f, const char *const *known)
{
    json_error_t e;
    json_t *o;
    const char *k;
    json_t *v;
    char why[256];

    if (f->body.len == 0)
        return json_object();
    if (f->body.len > ARGS_MAX) {
        req_error(rq, HERALD_ETOO_BIG, "the arguments are at most 64 KiB of JSON", f->rid);
        return NULL;
    }
    o = json_loadb(f->body.ptr, f->body.len, JSON_REJECT_DUPLICATES, &e);
    if (!o) {
        snprintf(why, sizeof why, "the arguments are not valid JSON: %s (at byte %d)", e.text,
                 e.position);
        req_error(rq, HERALD_EINVAL, why, f->rid);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        req_error(rq, HERALD_EINVAL, "the arguments must be a JSON object", f->rid);
        return NULL;
    }
    json_object_foreach(o, k, v) {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(known[i], k) == 0;
        if (!ok) {
            snprintf(why, sizeof why, "unknown field \"%.64s\"", k);
            json_decref(o);
            req_error(rq, HERALD_EINVAL, why, f->rid);
            return NULL;
        }
    }
    return o;
}

void req_send_doc(svc_req *rq, uint64_t rid, herald_str app, const herald_buf *doc)
{
    herald_frame r = {.type = HERALD_FT_APP_RESULT, .rid = rid, .app = app,
                      .body = {.ptr = (const char *)doc->data, .len = (uint32_t)doc->len}};
    req_send(rq, &r);
}
