/* cbargs.c — the callback ops' JSON arguments; see cbargs.h. */
#include "cbargs.h"

#include <herald/error.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "outbox.h"

int cbargs_event_id(const char *s, uint32_t *group, uint64_t *seq)
{
    uint64_t g = 0, q = 0;
    size_t i = 0, digits = 0;
    for (; s[i] >= '0' && s[i] <= '9' && digits < 6; i++, digits++)
        g = g * 10 + (uint64_t)(s[i] - '0');
    if (!digits || s[i] != '-' || g > 255)
        return HERALD_EINVAL;
    i++;
    for (digits = 0; s[i] >= '0' && s[i] <= '9' && digits < 19; i++, digits++)
        q = q * 10 + (uint64_t)(s[i] - '0');
    if (!digits || s[i] != '\0' || q == 0)
        return HERALD_EINVAL;
    *group = (uint32_t)g;
    *seq = q;
    return 0;
}

static int fail(char *why, size_t whylen, const char *fmt, const char *a)
{
    snprintf(why, whylen, fmt, a);
    return HERALD_EINVAL;
}

int cbargs_parse(cbargs_op op, const char *p, size_t n, cbargs *out, char *why, size_t whylen)
{
    static const char *const names[] = {"callback", "events", "redeliver"};
    json_error_t jerr;
    json_t *root, *v;
    const char *key;
    int rc = 0;

    memset(out, 0, sizeof *out);
    out->limit = CBARGS_LIMIT_DEFAULT;
    why[0] = '\0';
    if (n == 0)
        p = "{}", n = 2;
    root = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(why, whylen, "the arguments must be one JSON object: %s", jerr.text);
        return HERALD_EINVAL;
    }
    if (!json_is_object(root)) {
        rc = fail(why, whylen, "the arguments must be one JSON object, not %s",
                  json_is_array(root) ? "an array" : "a scalar");
        json_decref(root);
        return rc;
    }
    json_object_foreach(root, key, v) {
        bool known = false;
        if (op == CBARGS_CALLBACK && strcmp(key, "url") == 0) {
            const char *u = json_string_value(v);
            known = true;
            if (!u) {
                rc = fail(why, whylen, "%s: url must be a string", names[op]);
            } else if (json_string_length(v) > CBARGS_URL_MAX) {
                rc = fail(why, whylen, "%s: url is longer than 1024 bytes", names[op]);
            } else if (strlen(u) != json_string_length(v)) {
                rc = fail(why, whylen, "%s: url holds a NUL byte", names[op]);
            } else {
                memcpy(out->url, u, strlen(u) + 1);
                out->has_id = true; /* url given */
            }
        } else if (op == CBARGS_CALLBACK && strcmp(key, "events") == 0) {
            size_t i;
            json_t *t;
            known = true;
            if (!json_is_array(v))
                rc = fail(why, whylen, "events must be an array of event types%s", "");
            json_array_foreach(v, i, t) { /* (no elements when not an array) */
                const char *s = json_string_value(t);
                uint32_t bit = s ? ob_type_bit(s, json_string_length(t)) : 0;
                if (!bit) {
                    char all[256];
                    ob_types_str((1u << OB_TYPES_N) - 1, all, sizeof all);
                    snprintf(why, whylen, "events: %s%.40s%s is no event type (one of: %s)",
                             s ? "\"" : "", s ? s : "a non-string", s ? "\"" : "", all);
                    rc = HERALD_EINVAL;
                    break;
                }
                out->types |= bit;
            }
        } else if ((op == CBARGS_CALLBACK && strcmp(key, "all") == 0) ||
                   (op != CBARGS_CALLBACK && strcmp(key, "failed") == 0)) {
            known = true;
            if (!json_is_boolean(v))
                rc = fail(why, whylen, "%s must be true or false", key);
            else if (op == CBARGS_CALLBACK)
                out->all = json_is_true(v);
            else
                out->failed = json_is_true(v);
        } else if (op == CBARGS_EVENTS && strcmp(key, "limit") == 0) {
            known = true;
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > CBARGS_LIMIT_MAX)
                rc = fail(why, whylen, "limit must be an integer from 1 to 200%s", "");
            else
                out->limit = (uint32_t)json_integer_value(v);
        } else if ((op == CBARGS_EVENTS && strcmp(key, "after") == 0) ||
                   (op == CBARGS_REDELIVER && strcmp(key, "id") == 0)) {
            const char *s = json_string_value(v);
            known = true;
            if (!s || strlen(s) != json_string_length(v) ||
                cbargs_event_id(s, &out->group, &out->seq) != 0)
                rc = fail(why, whylen, "%s must be an event id \"GROUP-SEQ\" (e.g. \"1-42\")",
                          key);
            else if (op == CBARGS_EVENTS)
                out->has_after = true;
            else
                out->has_id = true;
        }
        if (!known) {
            snprintf(why, whylen, "%s: unknown field \"%.60s\"", names[op], key);
            rc = HERALD_EINVAL;
        }
        if (rc)
            break;
    }
    json_decref(root);
    if (rc)
        return rc;
    if (op == CBARGS_CALLBACK && !out->has_id)
        return fail(why, whylen, "callback: url is required (\"\" removes the callback)%s", "");
    if (op == CBARGS_CALLBACK)
        out->has_id = false;
    if (op == CBARGS_REDELIVER && out->has_id == out->failed)
        return fail(why, whylen, "redeliver: either id or \"failed\": true%s", "");
    return 0;
}
