/* appreg.c — the tenant's registered apps and their credentials: APP op
 * create (admin: a new app, its scopes and its secret, shown once), list
 * (admin), login (no session: the app's credentials for an access token)
 * and user_token (an admin, or an app with the user_token scope: a client
 * token for a user, so an app server logs its users in). Arguments and
 * answers are JSON objects in the frame's body (jsonargs.c). */
#include "svc_int.h"

#include <herald/error.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "json.h"
#include "log.h"
#include "outbox.h"

#define APP_ID_MAX 100u           /* "app:" + id must stay a user id */
#define ACCESS_TTL_S 7200u        /* an app's access token: two hours */
#define USER_TTL_DEFAULT_S 86400u /* a minted client token: a day unless asked */
#define USER_TTL_MAX_S (30u * 86400u)
#define LIST_DEFAULT 100u
#define LIST_MAX 1000u

bool app_registry_op(herald_str op)
{
    return herald_str_eq(op, "create") || herald_str_eq(op, "list") ||
           herald_str_eq(op, "login") || herald_str_eq(op, "user_token");
}

/* hex(SHA-256(secret bytes)) into out (65 bytes). */
static void secret_sha(const uint8_t secret[TOKEN_SECRET_LEN], char out[65])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, secret, TOKEN_SECRET_LEN);
    sodium_bin2hex(out, 65, h, sizeof h);
    sodium_memzero(h, sizeof h);
}

static bool app_id_ok(herald_str app)
{
    return app.len && app.len <= APP_ID_MAX && token_id_valid(app.ptr, app.len);
}

/* The scopes of a JSON array of names: 0 and *bits, or INVAL to rq. */
static int scopes_of(svc_req *rq, uint64_t rid, json_t *arr, uint32_t *bits)
{
    size_t i;
    json_t *v;
    char why[160];

    *bits = 0;
    if (!arr)
        return 0;
    if (!json_is_array(arr)) {
        req_error(rq, HERALD_EINVAL, "scopes must be an array of scope names", rid);
        return HERALD_EINVAL;
    }
    json_array_foreach(arr, i, v) {
        uint32_t b = json_is_string(v) ? authz_scope_bit(json_string_value(v),
                                                         json_string_length(v))
                                       : 0;
        if (!b) {
            snprintf(why, sizeof why,
                     "unknown scope %s%.40s%s (message, directory, contact, transfer, "
                     "conversation, user_token)",
                     json_is_string(v) ? "\"" : "", json_is_string(v) ? json_string_value(v) : "",
                     json_is_string(v) ? "\"" : "(not a string)");
            req_error(rq, HERALD_EINVAL, why, rid);
            return HERALD_EINVAL;
        }
        *bits |= b;
    }
    return 0;
}

static void write_scopes(json_w *w, uint32_t bits)
{
    json_key(w, "scopes");
    json_arr(w);
    for (uint32_t b = 1; b <= APP_SCOPE_ALL_; b <<= 1)
        if (bits & b)
            json_strz(w, authz_scope_name(b));
    json_arr_end(w);
}

/* ---- create ------------------------------------------------------------- */

static void created(step *st, apply_result *res)
{
    svc_req *rq = st->rq;
    herald_buf doc = {0};
    json_w w;

    if (res->err) {
        step_error(st, res);
        goto out;
    }
    json_init(&w, &doc);
    json_obj(&w);
    json_key(&w, "tenant");
    json_strz(&w, rq->sess->tenant);
    json_key(&w, "app");
    json_strz(&w, st->conv);
    json_key(&w, "secret");
    json_strz(&w, st->a);
    json_obj_end(&w);
    if (json_done(&w))
        req_error(rq, HERALD_ENOMEM, NULL, st->rid);
    else
        req_send_doc(rq, st->rid, herald_str_z(st->conv), &doc);
    log_info("app.create", "%s/%s registered by %s", rq->sess->tenant, st->conv,
             rq->sess->user);
out:
    sodium_memzero(st->a, sizeof st->a);
    herald_buf_free(&doc);
}

static void app_create(svc_req *rq, herald_frame *f)
{
    static const char *const known[] = {"scopes", "name", NULL};
    json_t *args = req_args(rq, f, known), *name;
    uint8_t secret[TOKEN_SECRET_LEN];
    char hex[TOKEN_SECRET_HEX + 1], sha[65];
    cmd k;
    step *st;
    uint32_t scopes;

    if (!args)
        return;
    name = json_object_get(args, "name");
    if (name && (!json_is_string(name) || json_string_length(name) > 128)) {
        req_error(rq, HERALD_EINVAL, "name must be a string of at most 128 bytes", f->rid);
        goto out;
    }
    if (scopes_of(rq, f->rid, json_object_get(args, "scopes"), &scopes))
        goto out;
    randombytes_buf(secret, sizeof secret);
    token_secret_to_hex(secret, hex);
    secret_sha(secret, sha);
    sodium_memzero(secret, sizeof secret);
    k = req_cmd(rq, CMD_APP_CREATE);
    k.target = f->app;
    k.flags = scopes;
    k.secret = herald_str_z(sha);
    k.name = name ? herald_str_z(json_string_value(name)) : f->app;
    st = svc_step(rq, f->rid, &k, 0, created);
    if (st) {
        snprintf(st->conv, sizeof st->conv, "%.*s", (int)f->app.len, f->app.ptr);
        memcpy(st->a, hex, sizeof hex); /* shown once, in the answer */
    }
    sodium_memzero(hex, sizeof hex);
out:
    json_decref(args);
}

/* ---- list --------------------------------------------------------------- */

typedef struct list_ctx {
    json_w *w;
    store *meta;
    herald_str tenant;
} list_ctx;

static int list_one(void *ctx, herald_str id, const store_app *a)
{
    list_ctx *lc = ctx;
    json_w *w = lc->w;
    store_callback cb;
    json_obj(w);
    json_key(w, "app");
    json_str(w, id.ptr, id.len);
    json_key(w, "name");
    json_strz(w, a->name);
    write_scopes(w, a->scopes);
    json_key(w, "created");
    json_u64(w, a->created);
    if (store_callback_get(lc->meta, lc->tenant, id, &cb) == 0 && cb.url[0]) {
        json_key(w, "callback_url");
        json_strz(w, cb.url);
    }
    json_obj_end(w);
    return 0;
}

static void app_list(svc_req *rq, herald_frame *f)
{
    static const char *const known[] = {"after", "limit", NULL};
    json_t *args = req_args(rq, f, known), *after, *limit;
    herald_buf doc = {0};
    list_ctx lc;
    json_w w;
    bool more = false;
    uint64_t lim = LIST_DEFAULT;
    int rc;

    if (!args)
        return;
    after = json_object_get(args, "after");
    limit = json_object_get(args, "limit");
    if ((after && !json_is_string(after)) ||
        (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
                   json_integer_value(limit) > LIST_MAX))) {
        req_error(rq, HERALD_EINVAL, "after must be an app id and limit 1..1000", f->rid);
        goto out;
    }
    if (limit)
        lim = (uint64_t)json_integer_value(limit);
    json_init(&w, &doc);
    lc = (list_ctx){.w = &w, .meta = svc_meta(rq->s), .tenant = herald_str_z(rq->sess->tenant)};
    json_obj(&w);
    json_key(&w, "apps");
    json_arr(&w);
    rc = store_app_each(svc_meta(rq->s), herald_str_z(rq->sess->tenant),
                        after ? herald_str_z(json_string_value(after)) : herald_str_z(""),
                        (uint32_t)lim, list_one, &lc, &more);
    json_arr_end(&w);
    json_key(&w, "more");
    json_bool(&w, more);
    json_obj_end(&w);
    if (rc == 0)
        rc = json_done(&w);
    if (rc)
        req_error(rq, rc, NULL, f->rid);
    else
        req_send_doc(rq, f->rid, f->app, &doc);
out:
    herald_buf_free(&doc);
    json_decref(args);
}

/* ---- tokens ------------------------------------------------------------- */

/* Mints a token for (tenant, user) and answers {key: token, expires_in}. */
static void send_token(svc_req *rq, uint64_t rid, const char *tenant, const char *user,
                       bool admin, uint64_t ttl, const char *key, herald_str app)
{
    token_claims cl = {.expires = (uint64_t)time(NULL) + ttl, .admin = admin};
    char tok[TOKEN_TEXT_MAX + 1];
    store_tenant t;
    herald_buf doc = {0};
    json_w w;
    int rc = store_tenant_get(svc_meta(rq->s), herald_str_z(tenant), &t);

    snprintf(cl.tenant, sizeof cl.tenant, "%s", tenant);
    snprintf(cl.user, sizeof cl.user, "%s", user);
    if (rc == 0)
        rc = token_mint(t.secret, &cl, tok, sizeof tok);
    sodium_memzero(&t, sizeof t);
    if (rc) {
        req_error(rq, rc == HERALD_ENOT_FOUND ? HERALD_EUNAUTHORIZED : rc, NULL, rid);
        return;
    }
    json_init(&w, &doc);
    json_obj(&w);
    json_key(&w, key);
    json_strz(&w, tok);
    json_key(&w, "expires_in");
    json_u64(&w, ttl);
    json_obj_end(&w);
    sodium_memzero(tok, sizeof tok);
    if (json_done(&w))
        req_error(rq, HERALD_ENOMEM, NULL, rid);
    else
        req_send_doc(rq, rid, app, &doc);
    sodium_memzero(doc.data, doc.len);
    herald_buf_free(&doc);
}

/* login: exactly what create printed ({"tenant","app","secret"}, scopes
 * allowed), checked against the stored SHA-256; every failure is the same
 * UNAUTHORIZED so nothing tells which part was wrong. */
static void app_login(svc_req *rq, herald_frame *f)
{
    static const char *const known[] = {"tenant", "app", "secret", "scopes", NULL};
    json_t *args = req_args(rq, f, known), *ten, *app, *sec;
    uint8_t secret[TOKEN_SECRET_LEN];
    char sha[65], user[TOKEN_ID_MAX + 1];
    store_app a;
    int rc;

    if (!args)
        return;
    ten = json_object_get(args, "tenant");
    app = json_object_get(args, "app");
    sec = json_object_get(args, "secret");
    if (!json_is_string(ten) || !json_is_string(app) || !json_is_string(sec)) {
        req_error(rq, HERALD_EINVAL, "tenant, app and secret (strings) are required", f->rid);
        goto out;
    }
    rc = app_id_ok(herald_str_z(json_string_value(app))) &&
                 token_id_valid(json_string_value(ten), json_string_length(ten))
             ? store_app_get(svc_meta(rq->s), herald_str_z(json_string_value(ten)),
                             herald_str_z(json_string_value(app)), &a)
             : HERALD_ENOT_FOUND;
    if (rc == 0)
        rc = token_secret_from_hex(json_string_value(sec), secret) ? HERALD_EUNAUTHORIZED : 0;
    if (rc == 0) {
        secret_sha(secret, sha);
        sodium_memzero(secret, sizeof secret);
        rc = sodium_memcmp(sha, a.secret_sha, 64) == 0 ? 0 : HERALD_EUNAUTHORIZED;
    }
    if (rc == HERALD_ENOT_FOUND)
        rc = HERALD_EUNAUTHORIZED;
    if (rc) {
        log_info("app.login", "%s: refused for %.64s/%.64s: %s",
                 rq->sink.origin ? rq->sink.origin : "-", json_string_value(ten),
                 json_string_value(app), herald_err_name(rc));
        req_error(rq, rc, rc == HERALD_EUNAUTHORIZED ? "invalid app credentials" : NULL, f->rid);
        goto out;
    }
    snprintf(user, sizeof user, "app:%s", json_string_value(app));
    send_token(rq, f->rid, json_string_value(ten), user, false, ACCESS_TTL_S, "access_token",
               herald_str_z(json_string_value(app)));
out:
    json_decref(args);
}

/* user_token: {"userid", "ttl" (s), "admin"}; an app (acting by scope)
 * mints employee and customer tokens only. */
static void user_token(svc_req *rq, herald_frame *f)
{
    static const char *const known[] = {"userid", "ttl", "admin", NULL};
    json_t *args = req_args(rq, f, known), *uid, *ttl, *adm;
    bool as_app = !rq->sess->admin;
    uint64_t secs = USER_TTL_DEFAULT_S;

    if (!args)
        return;
    uid = json_object_get(args, "userid");
    ttl = json_object_get(args, "ttl");
    adm = json_object_get(args, "admin");
    if (!json_is_string(uid) ||
        !token_id_valid(json_string_value(uid), json_string_length(uid)) ||
        strncmp(json_string_value(uid), "app:", 4) == 0) {
        req_error(rq, HERALD_EINVAL, "userid must be a user id (not an app's)", f->rid);
        goto out;
    }
    if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 60 ||
                json_integer_value(ttl) > USER_TTL_MAX_S)) {
        req_error(rq, HERALD_EINVAL, "ttl is 60..2592000 seconds", f->rid);
        goto out;
    }
    if (adm && !json_is_boolean(adm)) {
        req_error(rq, HERALD_EINVAL, "admin must be true or false", f->rid);
        goto out;
    }
    if (adm && json_is_true(adm) && as_app) {
        req_error(rq, HERALD_EFORBIDDEN, "an app mints no admin tokens", f->rid);
        goto out;
    }
    if (ttl)
        secs = (uint64_t)json_integer_value(ttl);
    send_token(rq, f->rid, rq->sess->tenant, json_string_value(uid), adm && json_is_true(adm),
               secs, "token", f->app);
out:
    json_decref(args);
}

void app_registry(svc_req *rq, herald_frame *f)
{
    if (herald_str_eq(f->op, "login")) {
        app_login(rq, f);
        return;
    }
    if (herald_str_eq(f->op, "user_token")) {
        user_token(rq, f);
        return;
    }
    if (herald_str_eq(f->op, "list")) {
        app_list(rq, f);
        return;
    }
    if (!app_id_ok(f->app)) {
        req_error(rq, HERALD_EINVAL, "invalid app id (up to 100 of A-Z a-z 0-9 . _ @ : -)",
                  f->rid);
        return;
    }
    app_create(rq, f);
}
