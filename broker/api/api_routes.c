/* api_routes.c — the open API's route table, and the translations between
 * its JSON and Herald frames. See api_int.h. */
#include "api_int.h"

#include <herald/error.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FS(field) offsetof(herald_frame, field)
#define NONE SIZE_MAX
#define LIST_MAX 1000u /* entries of one list parameter (the service caps lower) */

#define P(n, t, r, off, doc) {n, t, r, off, 0, doc}
#define PL(n, r, field, doc) {n, AP_LIST, r, FS(field), FS(n_##field), doc}
#define PF(n, bit, doc) {n, AP_FLAG, false, FS(flags), bit, doc}
#define END {NULL, 0, false, 0, 0, NULL}

static const api_param p_token[] = {
    P("tenant", AP_STR, true, NONE, "tenant id, as `herald --admin app create` printed it"),
    P("app", AP_STR, true, NONE, "app id"),
    P("secret", AP_STR, true, NONE, "the app's secret (64 hex characters)"),
    {"scopes", AP_LIST, false, NONE, 0, "the app's scopes (as printed; not checked)"},
    END};
static const api_param p_user_token[] = {
    P("userid", AP_STR, true, NONE, "the user the token is for"),
    P("ttl", AP_U64, false, NONE, "seconds it is valid, 60..2592000 (default 86400)"),
    P("admin", AP_BOOL, false, NONE, "with the tenant-admin role (tenant admins only)"),
    END};
static const api_param p_app_create[] = {
    P("app", AP_STR, true, FS(app), "app id (up to 100 of A-Z a-z 0-9 . _ @ : -)"),
    {"scopes", AP_LIST, false, NONE, 0,
     "message, directory, contact, transfer, conversation, user_token"},
    P("name", AP_STR, false, NONE, "display name"),
    END};
static const api_param p_app_list[] = {
    P("after", AP_STR, false, NONE, "list after this app id"),
    P("limit", AP_U64, false, NONE, "apps per page, 1..1000 (default 100)"),
    END};
static const api_param p_app_callback[] = {
    P("app", AP_STR, true, FS(app), "app id"),
    P("url", AP_STR0, true, NONE, "where events are POSTed (\"\" removes the callback)"),
    P("all", AP_BOOL, false, NONE, "every conversation of the tenant, not only the app's"),
    {"events", AP_LIST, false, NONE, 0,
     "the event types it gets (message, recall, receipt, urgent.escalate, message.offline, "
     "directory.user, directory.dept, contact.add, tag.add, tag.remove, transfer, "
     "transfer.done); absent or empty: every type"},
    END};
static const api_param p_app_events[] = {
    P("app", AP_STR, true, FS(app), "app id"),
    P("failed", AP_BOOL, false, NONE, "only events whose retries ran out"),
    P("limit", AP_U64, false, NONE, "events per page, 1..200"),
    P("after", AP_STR, false, NONE, "list after this event id"),
    END};
static const api_param p_app_redeliver[] = {
    P("app", AP_STR, true, FS(app), "app id"),
    P("id", AP_STR, false, NONE, "the event to send again"),
    P("failed", AP_BOOL, false, NONE, "every failed event"),
    END};
static const api_param p_message_send[] = {
    PL("touser", false, members, "users, \"u1|u2\" or an array; \"@all\" = every employee"),
    PL("toparty", false, depts, "departments (with their sub-departments)"),
    PL("totag", false, tags, "tags"),
    P("agentid", AP_STR, true, FS(app), "the app sending"),
    P("msgtype", AP_STR, true, NONE, "text or markdown"),
    P("text", AP_OBJ, false, NONE, "{\"content\": \"…\"} for msgtype text"),
    P("markdown", AP_OBJ, false, NONE, "{\"content\": \"…\"} for msgtype markdown"),
    P("msgid", AP_STR, false, FS(cmid), "message id: the same id again within the window is "
                                          "a duplicate (default: derived from the content when "
                                          "enable_duplicate_check is 1, else new)"),
    P("enable_duplicate_check", AP_U32, false, NONE, "1: repeated content is a duplicate"),
    P("duplicate_check_interval", AP_U32, false, FS(window),
      "duplicate window, seconds (≤ 14400; default the tenant's)"),
    P("announce", AP_BOOL, false, NONE, "one announcement conversation for every recipient"),
    P("safe", AP_U32, false, NONE, "accepted for WeCom compatibility; must be 0"),
    END};
static const api_param p_conv_send[] = {
    P("conv", AP_STR, true, FS(conv), "conversation id"),
    P("text", AP_TEXT, true, NONE, "the message"),
    P("msgid", AP_STR, false, FS(cmid), "client message id: a retry with it is stored once"),
    PF("urgent", HERALD_MSGF_URGENT, "urgent (DING): reminders until confirmed"),
    END};
static const api_param p_conv_seq[] = {
    P("conv", AP_STR, true, FS(conv), "conversation id"),
    P("seq", AP_U64, true, FS(seq), "message sequence number"),
    END};
static const api_param p_history[] = {
    P("conv", AP_STR, true, FS(conv), "conversation id"),
    P("after", AP_U64, false, FS(after), "messages with a higher seq"),
    P("limit", AP_U32, false, FS(limit), "messages per page"),
    END};
static const api_param p_receipts[] = {
    P("conv", AP_STR, true, FS(conv), "conversation id"),
    P("seq", AP_U64, true, FS(seq), "the message"),
    P("after", AP_STR, false, FS(after_id), "unread page after this member"),
    P("limit", AP_U32, false, FS(limit), "names per page (≤ 1000)"),
    END};
static const api_param p_user_create[] = {
    P("userid", AP_STR, true, FS(user), "user id"),
    P("kind", AP_STR, true, FS(kind), "internal or external"),
    P("name", AP_STR, false, FS(name), "display name"),
    P("title", AP_STR, false, FS(title), "job title"),
    P("department", AP_STR, false, FS(dept), "department id"),
    END};
static const api_param p_user_get[] = {P("userid", AP_STR, true, FS(user), "user id"), END};
static const api_param p_dept_create[] = {
    P("id", AP_STR, true, FS(dept), "department id"),
    P("name", AP_STR, false, FS(name), "display name"),
    P("parentid", AP_STR, false, FS(parent), "parent department (absent: top level)"),
    END};
static const api_param p_dept_get[] = {
    P("id", AP_STR, false, FS(dept), "department id (absent: the top of the tree)"), END};
static const api_param p_conv_create[] = {
    P("conv", AP_STR, true, FS(conv), "conversation id"),
    P("kind", AP_STR, true, FS(kind), "single, group, customer_group or announce"),
    PL("members", false, members, "members besides the creator"),
    END};
static const api_param p_conv_get[] = {P("conv", AP_STR, true, FS(conv), "conversation id"),
                                       END};
static const api_param p_conv_members[] = {
    P("conv", AP_STR, true, FS(conv), "conversation id"),
    PL("members", true, members, "users"),
    END};
static const api_param p_conv_list[] = {
    P("after", AP_STR, false, FS(after_id), "the page after this cursor (next_after)"),
    P("limit", AP_U32, false, FS(limit), "conversations per page (≤ 200)"),
    END};
static const api_param p_contact_add[] = {
    P("userid", AP_STR, true, FS(user), "the employee owning the relationship"),
    P("external_userid", AP_STR, true, FS(conv), "the customer"),
    END};
static const api_param p_contact_list[] = {
    P("external_userid", AP_STR, true, FS(conv), "the customer"), END};
static const api_param p_tag_change[] = {
    P("external_userid", AP_STR, true, FS(user), "the customer"),
    PL("tags", true, members, "tag ids (≤ 100)"),
    END};
static const api_param p_tag_list[] = {
    P("external_userid", AP_STR, true, FS(user), "the customer"), END};
static const api_param p_mass_send[] = {
    PL("tags", true, members, "customers carrying any of these tags"),
    P("text", AP_TEXT, true, NONE, "the message"),
    P("msgid", AP_STR, false, FS(conv), "mass message id (absent: a new one)"),
    END};
static const api_param p_mass_result[] = {
    P("msgid", AP_STR, true, FS(conv), "mass message id"), END};
static const api_param p_transfer[] = {
    P("handover_userid", AP_STR, true, FS(user), "the current owner"),
    P("takeover_userid", AP_STR, true, FS(owner), "the employee taking over"),
    PL("external_userid", false, members, "customers (≤ 100)"),
    PL("chat_id_list", false, groups, "customer groups (≤ 100)"),
    END};
static const api_param p_dnd_on[] = {
    P("until", AP_U64, false, FS(ts), "ms since the epoch (absent: until turned off)"), END};
static const api_param p_none[] = {END};

#define R(m, path, ft, op, mode, tag, sum, params)                                            \
    {HTTP_##m, path, HERALD_FT_##ft, op, 0, mode, false, tag, sum, params}

const api_route_def api_routes[] = {
    {HTTP_POST, "/api/v1/token", HERALD_FT_APP, "login", 0, AM_ARGS, true, "credentials",
     "An access token (2 h) for the app credentials `herald --admin app create` printed: the "
     "body is that JSON object",
     p_token},
    R(POST, "/api/v1/user/token", APP, "user_token", AM_ARGS, "credentials",
      "A client token for a user, so an app server logs its users in (admin, or scope "
      "user_token)",
      p_user_token),
    R(POST, "/api/v1/app/create", APP, "create", AM_ARGS, "apps",
      "Registers an app; the answer carries its secret, shown once (admin)", p_app_create),
    R(GET, "/api/v1/app/list", APP, "list", AM_ARGS, "apps", "The tenant's apps (admin)",
      p_app_list),
    R(POST, "/api/v1/app/callback", APP, "callback", AM_ARGS, "callbacks",
      "Sets an app's event callback: URL, and a new token and secret for the signatures (admin)",
      p_app_callback),
    R(GET, "/api/v1/app/events", APP, "events", AM_ARGS, "callbacks",
      "An app's callback deliveries: pending, delivered, failed (admin)", p_app_events),
    R(POST, "/api/v1/app/redeliver", APP, "redeliver", AM_ARGS, "callbacks",
      "Queues failed events of an app again (admin)", p_app_redeliver),
    {HTTP_POST, "/api/v1/message/send", HERALD_FT_APP, "send", 0, AM_SEND, false, "messages",
     "An app message (or an announcement) to users, departments and tags, in WeCom's shape",
     p_message_send},
    R(POST, "/api/v1/conversation/send", SEND, NULL, AM_FRAME, "messages",
      "A message into a conversation, as the token's user", p_conv_send),
    R(POST, "/api/v1/message/recall", RECALL, NULL, AM_FRAME, "messages",
      "Takes a message back", p_conv_seq),
    R(GET, "/api/v1/message/history", HISTORY, NULL, AM_FRAME, "messages",
      "A conversation's messages, oldest first", p_history),
    R(POST, "/api/v1/message/read", READ, NULL, AM_FRAME, "messages",
      "Moves the token's user's read cursor", p_conv_seq),
    R(GET, "/api/v1/message/receipts", RECEIPTS, NULL, AM_FRAME, "messages",
      "Who has and has not read a message", p_receipts),
    R(GET, "/api/v1/message/urgent", URGENT, "status", AM_FRAME, "messages",
      "An urgent message's confirmations", p_conv_seq),
    R(POST, "/api/v1/message/urgent/confirm", URGENT, "confirm", AM_FRAME, "messages",
      "Confirms an urgent message (the token's user)", p_conv_seq),
    R(POST, "/api/v1/user/create", DIR, "user.add", AM_FRAME, "directory",
      "Adds or updates a user in the directory", p_user_create),
    R(GET, "/api/v1/user/get", DIR, "user.show", AM_FRAME, "directory", "A user's card",
      p_user_get),
    R(POST, "/api/v1/department/create", DIR, "dept.add", AM_FRAME, "directory",
      "Adds or updates a department", p_dept_create),
    R(GET, "/api/v1/department/get", DIR, "dept.list", AM_FRAME, "directory",
      "A department with its sub-departments and users (no id: the top level)", p_dept_get),
    R(POST, "/api/v1/conversation/create", CONV, "create", AM_FRAME, "conversations",
      "Creates a conversation", p_conv_create),
    R(GET, "/api/v1/conversation/get", CONV, "info", AM_FRAME, "conversations",
      "A conversation and its members", p_conv_get),
    R(POST, "/api/v1/conversation/members/add", CONV, "add", AM_FRAME, "conversations",
      "Adds members", p_conv_members),
    R(POST, "/api/v1/conversation/members/remove", CONV, "remove", AM_FRAME, "conversations",
      "Removes members", p_conv_members),
    R(GET, "/api/v1/conversation/list", CONV, "list", AM_FRAME, "conversations",
      "The token's user's conversations, newest activity first", p_conv_list),
    R(POST, "/api/v1/externalcontact/add", CONTACT, "add", AM_FRAME, "contacts",
      "Records that an employee owns a customer relationship (their 1:1 conversation)",
      p_contact_add),
    R(GET, "/api/v1/externalcontact/list", CONTACT, "list", AM_FRAME, "contacts",
      "The employees owning a customer", p_contact_list),
    R(POST, "/api/v1/externalcontact/tag/add", TAG, "add", AM_FRAME, "contacts",
      "Tags a customer", p_tag_change),
    R(POST, "/api/v1/externalcontact/tag/remove", TAG, "remove", AM_FRAME, "contacts",
      "Removes tags of a customer", p_tag_change),
    R(GET, "/api/v1/externalcontact/tag/list", TAG, "list", AM_FRAME, "contacts",
      "A customer's tags", p_tag_list),
    R(POST, "/api/v1/externalcontact/mass/send", MASS, "send", AM_FRAME, "contacts",
      "A mass message to tagged customers (one per customer per day)", p_mass_send),
    R(GET, "/api/v1/externalcontact/mass/result", MASS, "status", AM_FRAME, "contacts",
      "Who a mass message reached", p_mass_result),
    R(POST, "/api/v1/externalcontact/transfer_customer", TRANSFER, "start", AM_FRAME,
      "transfer",
      "Transfers customers of an employee in service (they may object); again: the status",
      p_transfer),
    {HTTP_POST, "/api/v1/externalcontact/resigned/transfer_customer", HERALD_FT_TRANSFER,
     "start", 1, AM_FRAME, false, "transfer",
     "Transfers the customers of an employee who resigned (at once); again: the status",
     p_transfer},
    R(POST, "/api/v1/externalcontact/transfer_refuse", TRANSFER, "refuse", AM_FRAME, "transfer",
      "The token's customer objects to its waiting transfer", p_none),
    R(POST, "/api/v1/dnd/on", DND, "on", AM_FRAME, "dnd", "Do-not-disturb on (the token's user)",
      p_dnd_on),
    R(POST, "/api/v1/dnd/off", DND, "off", AM_FRAME, "dnd", "Do-not-disturb off", p_none),
    R(GET, "/api/v1/dnd/get", DND, "status", AM_FRAME, "dnd", "The do-not-disturb state",
      p_none),
    R(GET, "/api/v1/cluster", STATUS, NULL, AM_DOC, "operations",
      "Nodes, groups, leaders, commit and replica lag (admin)", p_none),
    {HTTP_GET, "/api/v1/openapi.json", 0, NULL, 0, AM_LOCAL, true, "operations",
     "This API as an OpenAPI 3 document", p_none},
};
const size_t api_routes_len = sizeof api_routes / sizeof api_routes[0];

const api_route_def *api_find(http_method m, const char *path, size_t len, bool *other_method)
{
    *other_method = false;
    for (size_t i = 0; i < api_routes_len; i++) {
        const api_route_def *r = &api_routes[i];
        if (strlen(r->path) != len || memcmp(r->path, path, len) != 0)
            continue;
        if (r->method == m || (m == HTTP_HEAD && r->method == HTTP_GET))
            return r;
        *other_method = true;
    }
    return NULL;
}

/* ---- JSON / query → frame ------------------------------------------------ */

static int bad(char *why, size_t whylen, const char *fmt, const char *name)
{
    snprintf(why, whylen, fmt, name);
    return 400;
}

/* An integer parameter: a JSON integer, or decimal digits from a query. */
static int get_uint(json_t *v, bool from_query, uint64_t max, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || (uint64_t)i > max)
            return -1;
        *out = (uint64_t)i;
        return 0;
    }
    if (from_query && json_is_string(v)) {
        const char *s = json_string_value(v);
        uint64_t x = 0;
        if (!*s || strlen(s) > 20)
            return -1;
        for (; *s; s++) {
            if (*s < '0' || *s > '9' || x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
                return -1;
            x = x * 10 + (uint64_t)(*s - '0');
        }
        if (x > max)
            return -1;
        *out = x;
        return 0;
    }
    return -1;
}

static int get_bool(json_t *v, bool from_query, bool *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (from_query && json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "1") || !strcmp(s, "true"))
            *out = true;
        else if (!strcmp(s, "0") || !strcmp(s, "false"))
            *out = false;
        else
            return -1;
        return 0;
    }
    return -1;
}

static herald_str jstr(json_t *v)
{
    return (herald_str){.ptr = json_string_value(v), .len = (uint32_t)json_string_length(v)};
}

/* A list: an array of strings, or "a|b|c" (WeCom's form; also from a
 * query). The strings of "a|b" are copied into one block kept in *keep. */
static int get_list(json_t *v, herald_str **out, uint32_t *n, char **keep)
{
    *out = NULL;
    *n = 0;
    if (json_is_array(v)) {
        size_t i, cnt = json_array_size(v);
        json_t *e;
        if (cnt > LIST_MAX)
            return -1;
        if (cnt == 0)
            return 0;
        *out = calloc(cnt, sizeof **out);
        if (!*out)
            return -2;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e) || json_string_length(e) == 0)
                return -1;
            (*out)[i] = jstr(e);
        }
        *n = (uint32_t)cnt;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v), cnt = 1;
        char *copy;
        if (len == 0)
            return 0;
        for (size_t i = 0; i < len; i++)
            cnt += s[i] == '|';
        if (cnt > LIST_MAX)
            return -1;
        copy = malloc(len + 1);
        *out = calloc(cnt, sizeof **out);
        if (!copy || !*out) {
            free(copy);
            return -2;
        }
        memcpy(copy, s, len + 1);
        *keep = copy;
        for (size_t i = 0, start = 0; i <= len; i++) {
            if (i == len || copy[i] == '|') {
                if (i == start)
                    return -1; /* an empty entry */
                (*out)[(*n)++] = (herald_str){.ptr = copy + start, .len = (uint32_t)(i - start)};
                start = i + 1;
            }
        }
        return 0;
    }
    return -1;
}

/* The string arrays a frame may own after api_build. */
static herald_str **list_field(herald_frame *f, size_t off)
{
    return (herald_str **)((char *)f + off);
}

void api_built_free(api_built *b)
{
    static const size_t lists[] = {FS(members), FS(depts), FS(tags), FS(groups)};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        free(*list_field(&b->f, lists[i]));
        *list_field(&b->f, lists[i]) = NULL;
    }
    for (uint32_t i = 0; i < b->ncopies; i++)
        free(b->copies[i]);
    b->ncopies = 0;
    free(b->argbuf);
    b->argbuf = NULL;
}

/* message/send's defaults: the body from text/markdown, the op, a message
 * id from the content when duplicates are checked. */
static int finish_send(json_t *args, herald_frame *f, char *why, size_t whylen, char *idbuf,
                       size_t idlen)
{
    json_t *mt = json_object_get(args, "msgtype"), *dup = json_object_get(args, "enable_duplicate_check"),
           *ann = json_object_get(args, "announce"), *safe = json_object_get(args, "safe");
    const char *type = json_string_value(mt);
    json_t *obj, *content;

    if (!type || (strcmp(type, "text") != 0 && strcmp(type, "markdown") != 0))
        return bad(why, whylen, "msgtype must be text or markdown%s", "");
    obj = json_object_get(args, type);
    content = json_is_object(obj) ? json_object_get(obj, "content") : NULL;
    if (!json_is_string(content) || json_string_length(content) == 0 ||
        json_object_size(obj) != 1)
        return bad(why, whylen, "%s needs {\"content\": \"…\"} and nothing else", type);
    if (json_object_get(args, strcmp(type, "text") == 0 ? "markdown" : "text"))
        return bad(why, whylen, "only the object of msgtype %s may be sent", type);
    if (safe && json_integer_value(safe) != 0)
        return bad(why, whylen, "safe (confidential) messages are not supported%s", "");
    f->body = jstr(content);
    f->op = herald_str_z(ann && json_is_true(ann) ? "announce" : "send");
    if (f->n_members + f->n_depts + f->n_tags == 0)
        return bad(why, whylen, "no recipients: touser, toparty or totag%s", "");
    if (!f->cmid.len) {
        /* WeCom: with duplicate checking the same content to the same
         * recipients within the window is one message; without it every
         * call is new. */
        unsigned char h[32];
        crypto_hash_sha256_state st;
        bool check = dup && json_integer_value(dup) == 1;
        if (check) {
            crypto_hash_sha256_init(&st);
            for (int k = 0; k < 3; k++) {
                static const size_t offs[3][2] = {{FS(members), FS(n_members)},
                                                  {FS(depts), FS(n_depts)},
                                                  {FS(tags), FS(n_tags)}};
                herald_str *v = *list_field(f, offs[k][0]);
                uint32_t n = *(uint32_t *)((char *)f + offs[k][1]);
                for (uint32_t i = 0; i < n; i++) {
                    crypto_hash_sha256_update(&st, (const unsigned char *)v[i].ptr, v[i].len);
                    crypto_hash_sha256_update(&st, (const unsigned char *)"|", 1);
                }
                crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
            }
            crypto_hash_sha256_update(&st, (const unsigned char *)f->op.ptr, f->op.len);
            crypto_hash_sha256_update(&st, (const unsigned char *)f->body.ptr, f->body.len);
            crypto_hash_sha256_final(&st, h);
        } else {
            randombytes_buf(h, sizeof h);
        }
        snprintf(idbuf, idlen, "%s", check ? "dc-" : "m-");
        sodium_bin2hex(idbuf + strlen(idbuf), idlen - strlen(idbuf), h, 16);
        f->cmid = herald_str_z(idbuf);
    }
    return 0;
}

int api_build(const api_route_def *r, json_t *args, bool from_query, api_built *b, char *why,
              size_t whylen)
{
    json_t *jargs = r->mode == AM_ARGS ? json_object() : NULL;
    herald_frame *f = &b->f;
    const char *k, *missing = NULL;
    json_t *v;
    int st = 0;

    memset(b, 0, sizeof *b);
    f->type = r->ftype;
    f->op = herald_str_z(r->op);
    f->flags = r->flags;
    if (r->mode == AM_ARGS && !jargs)
        return 500;
    /* Every key must be a parameter of the route. */
    json_object_foreach(args, k, v) {
        bool known = false;
        for (const api_param *p = r->params; p->name && !known; p++)
            known = strcmp(p->name, k) == 0;
        if (!known) {
            st = bad(why, whylen, "unknown field \"%.64s\"", k);
            goto out;
        }
    }
    for (const api_param *p = r->params; p->name; p++) {
        uint64_t u;
        bool bv;
        v = json_object_get(args, p->name);
        if (!v || json_is_null(v)) {
            if (p->required && !missing)
                missing = p->name; /* reported after the type errors */
            continue;
        }
        switch (p->type) {
        case AP_STR:
        case AP_STR0:
        case AP_TEXT:
            if (!json_is_string(v)) {
                st = bad(why, whylen, "%s must be a string", p->name);
                goto out;
            }
            if (p->required && p->type != AP_STR0 && json_string_length(v) == 0) {
                st = bad(why, whylen, "%s must not be empty", p->name);
                goto out;
            }
            if (p->type == AP_TEXT)
                f->body = jstr(v);
            else if (p->off != NONE)
                *(herald_str *)((char *)f + p->off) = jstr(v);
            else if (jargs)
                json_object_set(jargs, p->name, v);
            break;
        case AP_U64:
        case AP_U32:
            if (get_uint(v, from_query, p->type == AP_U32 ? UINT32_MAX : UINT64_MAX, &u)) {
                st = bad(why, whylen, "%s must be a non-negative integer in range", p->name);
                goto out;
            }
            if (p->off == NONE) {
                if (jargs)
                    json_object_set_new(jargs, p->name, json_integer((json_int_t)u));
            } else if (p->type == AP_U32) {
                *(uint32_t *)((char *)f + p->off) = (uint32_t)u;
            } else {
                *(uint64_t *)((char *)f + p->off) = u;
            }
            break;
        case AP_BOOL:
        case AP_FLAG:
            if (get_bool(v, from_query, &bv)) {
                st = bad(why, whylen, "%s must be true or false", p->name);
                goto out;
            }
            if (p->type == AP_FLAG && bv)
                *(uint32_t *)((char *)f + p->off) |= (uint32_t)p->noff;
            else if (p->type == AP_BOOL && jargs)
                json_object_set_new(jargs, p->name, json_boolean(bv));
            break;
        case AP_LIST: {
            herald_str *lv = NULL;
            uint32_t ln = 0;
            char *copy = NULL;
            int lr;
            if (p->off == NONE) {
                /* An argument of a JSON-argument op: passed on as an array. */
                json_t *arr = json_is_array(v) ? json_incref(v) : NULL;
                if (!arr && json_is_string(v)) {
                    arr = json_array();
                    lr = get_list(v, &lv, &ln, &copy);
                    for (uint32_t i = 0; lr == 0 && i < ln; i++)
                        json_array_append_new(arr, json_stringn(lv[i].ptr, lv[i].len));
                    free(lv);
                    free(copy);
                    if (lr) {
                        json_decref(arr);
                        arr = NULL;
                    }
                }
                if (!arr) {
                    st = bad(why, whylen, "%s must be an array of strings or \"a|b\"", p->name);
                    goto out;
                }
                if (jargs)
                    json_object_set_new(jargs, p->name, arr);
                else
                    json_decref(arr);
                break;
            }
            lr = get_list(v, &lv, &ln, &copy);
            if (copy)
                b->copies[b->ncopies++] = copy; /* ≤ 4 list parameters per route */
            if (lr) {
                free(lv);
                st = lr == -2 ? 500
                              : bad(why, whylen, "%s must be an array of strings or \"a|b\" "
                                                 "(at most 1000, none empty)",
                                    p->name);
                goto out;
            }
            *list_field(f, p->off) = lv;
            *(uint32_t *)((char *)f + p->noff) = ln;
            if (p->required && ln == 0) {
                st = bad(why, whylen, "%s must not be empty", p->name);
                goto out;
            }
            break;
        }
        case AP_OBJ:
            if (!json_is_object(v)) {
                st = bad(why, whylen, "%s must be an object", p->name);
                goto out;
            }
            break;
        default:
            break;
        }
    }
    if (missing) {
        st = bad(why, whylen, "%s is required", missing);
        goto out;
    }
    if (r->mode == AM_SEND)
        st = finish_send(args, f, why, whylen, b->idbuf, sizeof b->idbuf);
    if (st == 0 && jargs) {
        b->argbuf = json_dumps(jargs, JSON_COMPACT);
        if (!b->argbuf)
            st = 500;
        else
            f->body = herald_str_z(b->argbuf);
    }
out:
    json_decref(jargs);
    return st;
}
