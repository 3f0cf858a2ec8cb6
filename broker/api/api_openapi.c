/* api_openapi.c — the OpenAPI 3 document of the route table (GET
 * /api/v1/openapi.json): one operation per route, its parameters (query
 * for GET, a JSON body for POST), bearer authentication and the error
 * shape. See api_int.h. */
#include "api_int.h"

#include <herald/error.h>
#include <string.h>

static const char *schema_type(uint8_t t)
{
    switch (t) {
    case AP_U64:
    case AP_U32:
        return "integer";
    case AP_FLAG:
    case AP_BOOL:
        return "boolean";
    case AP_OBJ:
        return "object";
    case AP_LIST:
        return "array";
    default:
        return "string";
    }
}

static void schema(json_w *w, uint8_t t)
{
    json_obj(w);
    json_key(w, "type");
    json_strz(w, schema_type(t));
    if (t == AP_LIST) {
        json_key(w, "items");
        json_obj(w);
        json_key(w, "type");
        json_strz(w, "string");
        json_obj_end(w);
    } else if (t == AP_U64 || t == AP_U32) {
        json_key(w, "minimum");
        json_u64(w, 0);
    } else if (t == AP_OBJ) {
        json_key(w, "properties");
        json_obj(w);
        json_key(w, "content");
        json_obj(w);
        json_key(w, "type");
        json_strz(w, "string");
        json_obj_end(w);
        json_obj_end(w);
        json_key(w, "additionalProperties");
        json_bool(w, false);
    }
    json_obj_end(w);
}

static void response(json_w *w, const char *code, const char *desc, const char *ref)
{
    json_key(w, code);
    json_obj(w);
    json_key(w, "description");
    json_strz(w, desc);
    json_key(w, "content");
    json_obj(w);
    json_key(w, "application/json");
    json_obj(w);
    json_key(w, "schema");
    json_obj(w);
    json_key(w, "$ref");
    json_strz(w, ref);
    json_obj_end(w);
    json_obj_end(w);
    json_obj_end(w);
    json_obj_end(w);
}

static void operation(json_w *w, const api_route_def *r)
{
    bool get = r->method == HTTP_GET;
    json_obj(w);
    json_key(w, "operationId");
    {
        char id[128];
        size_t n = 0;
        for (const char *p = r->path + strlen("/api/v1/"); *p && n + 1 < sizeof id; p++)
            id[n++] = (*p == '/' || *p == '.') ? '_' : *p;
        id[n] = '\0';
        json_strz(w, id);
    }
    json_key(w, "summary");
    json_strz(w, r->summary);
    json_key(w, "tags");
    json_arr(w);
    json_strz(w, r->tag);
    json_arr_end(w);
    if (r->no_auth) {
        json_key(w, "security");
        json_arr(w);
        json_arr_end(w);
    }
    if (get) {
        json_key(w, "parameters");
        json_arr(w);
        for (const api_param *p = r->params; p->name; p++) {
            json_obj(w);
            json_key(w, "name");
            json_strz(w, p->name);
            json_key(w, "in");
            json_strz(w, "query");
            json_key(w, "required");
            json_bool(w, p->required);
            json_key(w, "description");
            json_strz(w, p->doc);
            json_key(w, "schema");
            schema(w, p->type == AP_LIST ? AP_STR : p->type);
            json_obj_end(w);
        }
        json_arr_end(w);
    } else {
        json_key(w, "requestBody");
        json_obj(w);
        json_key(w, "required");
        json_bool(w, r->params[0].name != NULL);
        json_key(w, "content");
        json_obj(w);
        json_key(w, "application/json");
        json_obj(w);
        json_key(w, "schema");
        json_obj(w);
        json_key(w, "type");
        json_strz(w, "object");
        json_key(w, "additionalProperties");
        json_bool(w, false);
        json_key(w, "properties");
        json_obj(w);
        for (const api_param *p = r->params; p->name; p++) {
            json_key(w, p->name);
            schema(w, p->type);
        }
        json_obj_end(w);
        json_key(w, "required");
        json_arr(w);
        for (const api_param *p = r->params; p->name; p++)
            if (p->required)
                json_strz(w, p->name);
        json_arr_end(w);
        json_obj_end(w);
        json_obj_end(w);
        json_obj_end(w);
        json_obj_end(w);
    }
    json_key(w, "responses");
    json_obj(w);
    response(w, "200", "errcode 0 and the answer's fields", "#/components/schemas/Ok");
    response(w, "default", "errcode (the Herald error code) and errmsg",
             "#/components/schemas/Error");
    json_obj_end(w);
    json_obj_end(w);
}

int api_openapi(herald_buf *out)
{
    json_w w;
    json_init(&w, out);
    json_obj(&w);
    json_key(&w, "openapi");
    json_strz(&w, "3.0.3");
    json_key(&w, "info");
    json_obj(&w);
    json_key(&w, "title");
    json_strz(&w, "Herald open API");
    json_key(&w, "version");
    json_strz(&w, HERALD_VERSION);
    json_key(&w, "description");
    json_strz(&w, "HTTP+JSON for enterprise apps: every call runs through Herald's request "
                  "service as the bearer token's holder. Errors: HTTP 4xx/5xx with "
                  "{\"errcode\": Herald error code, \"errmsg\": text}.");
    json_obj_end(&w);
    json_key(&w, "security");
    json_arr(&w);
    json_obj(&w);
    json_key(&w, "bearer");
    json_arr(&w);
    json_arr_end(&w);
    json_obj_end(&w);
    json_arr_end(&w);
    json_key(&w, "paths");
    json_obj(&w);
    for (size_t i = 0; i < api_routes_len; i++) {
        const api_route_def *r = &api_routes[i];
        /* Routes sharing a path (none today) would share one path item. */
        json_key(&w, r->path);
        json_obj(&w);
        json_key(&w, r->method == HTTP_GET ? "get" : "post");
        operation(&w, r);
        json_obj_end(&w);
    }
    json_obj_end(&w);
    json_key(&w, "components");
    json_obj(&w);
    json_key(&w, "securitySchemes");
    json_obj(&w);
    json_key(&w, "bearer");
    json_obj(&w);
    json_key(&w, "type");
    json_strz(&w, "http");
    json_key(&w, "scheme");
    json_strz(&w, "bearer");
    json_obj_end(&w);
    json_obj_end(&w);
    json_key(&w, "schemas");
    json_obj(&w);
    for (int k = 0; k < 2; k++) {
        json_key(&w, k ? "Error" : "Ok");
        json_obj(&w);
        json_key(&w, "type");
        json_strz(&w, "object");
        json_key(&w, "required");
        json_arr(&w);
        json_strz(&w, "errcode");
        json_strz(&w, "errmsg");
        json_arr_end(&w);
        json_key(&w, "properties");
        json_obj(&w);
        json_key(&w, "errcode");
        json_obj(&w);
        json_key(&w, "type");
        json_strz(&w, "integer");
        json_obj_end(&w);
        json_key(&w, "errmsg");
        json_obj(&w);
        json_key(&w, "type");
        json_strz(&w, "string");
        json_obj_end(&w);
        json_obj_end(&w);
        json_obj_end(&w);
    }
    json_obj_end(&w);
    json_obj_end(&w);
    json_obj_end(&w);
    return json_done(&w);
}
