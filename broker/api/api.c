/* api.c — the open API's HTTP side: routing, credentials, rate limits, the
 * call to the request service and the answer; the console's static files.
 * See api.h. */
#include "api.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_int.h"
#include "log.h"
#include "prom.h"
#include "token.h"

#define API_BUCKETS 4096u          /* rate-limit buckets (subjects hash into them) */
#define CONSOLE_FILE_MAX (8u << 20) /* bytes of one console file */
/* The console loads only its own files and talks only to this origin's
 * API: a script injected through data it shows could not load more, send
 * the admin token elsewhere, or be framed by another site. */
#define CONSOLE_HEADERS                                                                  \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; " \
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "    \
    "frame-ancestors 'none'\r\n"                                                         \
    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
#define QUERY_MAX 4096u             /* bytes of a query string */

typedef struct bucket {
    double tokens;
    ev_tstamp at;
} bucket;

struct api {
    api_config cfg;
    char console_dir[512];
    struct ev_loop *loop;
    api_backend be;
    int refs;                        /* 1 + calls in flight */
    bool closed;                     /* api_destroy was called */
    bucket buckets[API_BUCKETS];     /* per token subject (hashed) */
    bucket login;                    /* POST /token, for everyone */
    uint64_t inflight;
    uint64_t limited;
    uint64_t *by_route;              /* [route][class]: 2xx 4xx 5xx */
};

#define CLASSES 3u

typedef struct call {
    api *a;
    http_exchange *x;
    const api_route_def *r;
    size_t ri;
} call;

static void api_unref(api *a)
{
    if (--a->refs == 0) {
        free(a->by_route);
        free(a);
    }
}

/* ---- answers ------------------------------------------------------------- */

static int http_status_of(int code)
{
    switch (code) {
    case HERALD_EPROTOCOL:
    case HERALD_EINVAL:
    case HERALD_ECAP_EXCEEDED:
        return 400;
    case HERALD_EUNAUTHORIZED:
    case HERALD_EEXPIRED:
        return 401;
    case HERALD_EFORBIDDEN:
    case HERALD_ENOT_MEMBER:
        return 403;
    case HERALD_ENOT_FOUND:
        return 404;
    case HERALD_EEXISTS:
        return 409;
    case HERALD_ETOO_BIG:
        return 413;
    case HERALD_ERATE_LIMITED:
        return 429;
    case HERALD_EUNSUPPORTED:
        return 501;
    case HERALD_EBUSY:
    case HERALD_EUNAVAILABLE:
    case HERALD_ESHUTDOWN:
    case HERALD_ENOT_LEADER:
        return 503;
    case HERALD_ETIMEOUT:
        return 504;
    default:
        return 500;
    }
}

static void count(api *a, size_t ri, int status)
{
    if (ri < api_routes_len)
        a->by_route[ri * CLASSES + (status < 400 ? 0 : status < 500 ? 1 : 2)]++;
}

static void answer_error(api *a, size_t ri, http_exchange *x, int status, int code,
                         const char *text)
{
    count(a, ri, status);
    http_reply_error(x, status, code, text ? text : herald_strerror(code));
}

static void answer_ok(api *a, size_t ri, http_exchange *x, const herald_buf *b)
{
    count(a, ri, 200);
    http_reply(x, 200, "application/json", b->data, b->len);
}

/* {"errcode":0,"errmsg":"ok", …the document's members…} */
static int splice_doc(herald_buf *out, herald_str doc)
{
    static const char head[] = "{\"errcode\":0,\"errmsg\":\"ok\"";
    uint32_t n = doc.len;
    while (n && (doc.ptr[n - 1] == ' ' || doc.ptr[n - 1] == '\n'))
        n--;
    if (n < 2 || doc.ptr[0] != '{' || doc.ptr[n - 1] != '}')
        return HERALD_EINTERNAL;
    if (herald_buf_append(out, head, sizeof head - 1))
        return HERALD_ENOMEM;
    /* Skip "{", and add a comma unless the document is empty. */
    {
        uint32_t i = 1;
        while (i < n - 1 && (doc.ptr[i] == ' ' || doc.ptr[i] == '\n'))
            i++;
        if (i < n - 1 && herald_buf_append(out, ",", 1))
            return HERALD_ENOMEM;
        if (herald_buf_append(out, doc.ptr + i, n - i))
            return HERALD_ENOMEM;
    }
    return 0;
}

/* The node's or service's reply frames: an ERROR, or the answer. */
static void on_done(void *arg, int code, const char *text, const uint8_t *frames, size_t n)
{
    call *c = arg;
    api *a = c->a;
    herald_limits lim = {.max_frame = UINT32_MAX / 2};
    herald_frame f;
    herald_buf out = {0};
    size_t at = 0;
    bool answered = false;

    a->inflight--;
    if (code) {
        answer_error(a, c->ri, c->x, http_status_of(code), code, text);
        goto out;
    }
    while (!answered && at + HERALD_FRAME_HEADER <= n) {
        uint32_t len = (uint32_t)frames[at] << 24 | (uint32_t)frames[at + 1] << 16 |
                       (uint32_t)frames[at + 2] << 8 | frames[at + 3];
        if (len > n - at - HERALD_FRAME_HEADER ||
            herald_frame_decode(frames + at + HERALD_FRAME_HEADER, len, &lim, &f) != 0)
            break;
        at += HERALD_FRAME_HEADER + len;
        if (f.type == HERALD_FT_ERROR) {
            char t[512];
            snprintf(t, sizeof t, "%.*s", (int)(f.text.len < 500 ? f.text.len : 500),
                     f.text.ptr ? f.text.ptr : "");
            answer_error(a, c->ri, c->x, http_status_of((int)f.code), (int)f.code,
                         t[0] ? t : NULL);
            answered = true;
        } else if (f.type == HERALD_FT_DELIVER || f.type == HERALD_FT_RECEIPT ||
                   f.type == HERALD_FT_REMIND) {
            /* a push to a session; an API call has none */
        } else if (c->r->mode == AM_ARGS || c->r->mode == AM_DOC) {
            int rc = splice_doc(&out, f.body);
            if (rc)
                answer_error(a, c->ri, c->x, 500, rc, "malformed answer document");
            else
                answer_ok(a, c->ri, c->x, &out);
            answered = true;
        } else {
            json_w w;
            json_init(&w, &out);
            json_obj(&w);
            json_key(&w, "errcode");
            json_u64(&w, 0);
            json_key(&w, "errmsg");
            json_strz(&w, "ok");
            api_render(c->r, &f, &w);
            json_obj_end(&w);
            if (json_done(&w))
                answer_error(a, c->ri, c->x, 500, HERALD_ENOMEM, NULL);
            else
                answer_ok(a, c->ri, c->x, &out);
            answered = true;
        }
        herald_frame_release(&f);
    }
    if (!answered)
        answer_error(a, c->ri, c->x, 502, HERALD_EINTERNAL, "no answer frame");
out:
    herald_buf_free(&out);
    api_unref(a);
    free(c);
}

/* ---- credentials and limits --------------------------------------------- */

static bool take(bucket *b, ev_tstamp now, double rate, double burst)
{
    if (b->at == 0) {
        b->tokens = burst;
        b->at = now;
    }
    b->tokens += (now - b->at) * rate;
    if (b->tokens > burst)
        b->tokens = burst;
    b->at = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

static uint32_t subject_hash(const char *tenant, const char *user)
{
    uint32_t h = 2166136261u;
    for (const char *p = tenant; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    for (const char *p = user; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h % API_BUCKETS;
}

/* The bearer token: "Authorization: Bearer T" or ?access_token=T (taken
 * out of args). 0, or 401 with why. */
static int bearer(const http_req *rq, json_t *qargs, char *tok, size_t cap, char *why,
                  size_t whylen)
{
    json_t *q = qargs ? json_object_get(qargs, "access_token") : NULL;
    const char *p = NULL;
    size_t n = 0;

    if (rq->auth) {
        if (rq->auth_len < 7 || strncasecmp(rq->auth, "Bearer ", 7) != 0) {
            snprintf(why, whylen, "Authorization must be \"Bearer TOKEN\"");
            return 401;
        }
        p = rq->auth + 7;
        n = rq->auth_len - 7;
    } else if (json_is_string(q)) {
        p = json_string_value(q);
        n = json_string_length(q);
    }
    if (!p || n == 0) {
        snprintf(why, whylen, "an access token is required (Authorization: Bearer TOKEN)");
        return 401;
    }
    if (n >= cap) {
        snprintf(why, whylen, "invalid token");
        return 401;
    }
    memcpy(tok, p, n);
    tok[n] = '\0';
    return 0;
}

/* ---- the console's files ------------------------------------------------- */

static const char *ctype_of(const char *path)
{
    static const char *const map[][2] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".json", "application/json"},
        {".svg", "image/svg+xml"},             {".png", "image/png"},
        {".map", "application/json"},          {".ico", "image/x-icon"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(dot, map[i][0]) == 0)
            return map[i][1];
    return "application/octet-stream";
}

static void console_file(api *a, http_exchange *x, const http_req *rq)
{
    char rel[256], full[800];
    const char *p = rq->path + strlen("/console");
    size_t n = rq->path_len - strlen("/console");
    struct stat st;
    herald_buf b = {0};
    int fd = -1;

    if (!a->console_dir[0]) {
        http_reply_error(x, 404, HERALD_ENOT_FOUND,
                         "no console here (gateway.console_dir is not set)");
        return;
    }
    if (rq->method != HTTP_GET && rq->method != HTTP_HEAD) {
        http_reply_error(x, 405, HERALD_EUNSUPPORTED, "method not allowed: use GET");
        return;
    }
    if (n == 0) {
        http_reply_redirect(x, "/console/");
        return;
    }
    if (n == 1 || (n >= 1 && p[n - 1] == '/'))
        snprintf(rel, sizeof rel, "%.*sindex.html", (int)(n < 200 ? n : 200), p);
    else if (n < sizeof rel)
        snprintf(rel, sizeof rel, "%.*s", (int)n, p);
    else
        rel[0] = '\0';
    /* Only plain names under the directory: no "..", no odd bytes. */
    for (const char *q = rel; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
              *q == '.' || *q == '-' || *q == '_' || *q == '/'))
            rel[0] = '\0';
    if (!rel[0] || strstr(rel, "..") || strstr(rel, "//")) {
        http_reply_error(x, 404, HERALD_ENOT_FOUND, "no such file");
        return;
    }
    snprintf(full, sizeof full, "%s%s", a->console_dir, rel);
    fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > (off_t)CONSOLE_FILE_MAX) {
        if (fd >= 0)
            close(fd);
        http_reply_error(x, 404, HERALD_ENOT_FOUND, "no such file");
        return;
    }
    if (herald_buf_reserve(&b, (size_t)st.st_size) != 0) {
        close(fd);
        http_reply_error(x, 500, HERALD_ENOMEM, NULL);
        return;
    }
    while (b.len < (size_t)st.st_size) {
        ssize_t r = read(fd, b.data + b.len, (size_t)st.st_size - b.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        b.len += (size_t)r;
    }
    close(fd);
    if (b.len != (size_t)st.st_size)
        http_reply_error(x, 500, HERALD_EIO, "cannot read the file");
    else
        http_reply_headers(x, 200, ctype_of(rel), b.data, b.len, CONSOLE_HEADERS);
    herald_buf_free(&b);
}

/* ---- the query string ---------------------------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F'   ? c - 'A' + 10
                                                                 : -1;
}

/* Decodes %XX and '+' of s[0..n) into out (≥ n + 1 bytes). -1 when bad. */
static int unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0)
                return -1;
            out[o++] = (char)(h << 4 | l);
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
        if (out[o - 1] == '\0')
            return -1;
    }
    out[o] = '\0';
    return 0;
}

json_t *api_query(const char *q, size_t n, char *why, size_t whylen)
{
    json_t *o = json_object();
    char *k = NULL, *v = NULL;

    if (!o)
        return NULL;
    if (n > QUERY_MAX) {
        snprintf(why, whylen, "the query string is at most %u bytes", QUERY_MAX);
        json_decref(o);
        return NULL;
    }
    k = malloc(n + 1);
    v = malloc(n + 1);
    for (size_t i = 0; k && v && i < n;) {
        size_t j = i, eq;
        while (j < n && q[j] != '&')
            j++;
        for (eq = i; eq < j && q[eq] != '='; eq++)
            ;
        if (j > i) {
            if (unescape(q + i, eq - i, k) != 0 ||
                unescape(q + eq + (eq < j), j - eq - (eq < j), v) != 0 || !k[0]) {
                snprintf(why, whylen, "malformed query string");
                goto fail;
            }
            json_object_set_new(o, k, json_string(v));
        }
        i = j + 1;
    }
    if (!k || !v)
        goto fail;
    free(k);
    free(v);
    return o;
fail:
    free(k);
    free(v);
    json_decref(o);
    return NULL;
}

/* ---- routing ------------------------------------------------------------- */

bool api_route(api *a, http_exchange *x, const http_req *rq, const uint8_t *body, size_t n)
{
    const api_route_def *r;
    bool other = false;
    json_t *args = NULL, *qargs = NULL;
    char tok[TOKEN_TEXT_MAX + 1] = "", why[256] = "";
    api_built b;
    herald_buf enc = {0};
    call *c;
    size_t ri;
    int st;

    if (rq->path_len >= 8 && memcmp(rq->path, "/console", 8) == 0 &&
        (rq->path_len == 8 || rq->path[8] == '/')) {
        console_file(a, x, rq);
        return true;
    }
    if (rq->path_len < 5 || memcmp(rq->path, "/api/", 5) != 0)
        return false;
    r = api_find(rq->method, rq->path, rq->path_len, &other);
    if (!r) {
        if (other)
            http_reply_error(x, 405, HERALD_EUNSUPPORTED, "method not allowed for this path");
        else
            http_reply_error(x, 404, HERALD_ENOT_FOUND, "no such API path");
        return true;
    }
    ri = (size_t)(r - api_routes);
    if (r->mode == AM_LOCAL) {
        herald_buf doc = {0};
        if (api_openapi(&doc) == 0)
            answer_ok(a, ri, x, &doc);
        else
            answer_error(a, ri, x, 500, HERALD_ENOMEM, NULL);
        herald_buf_free(&doc);
        return true;
    }
    if (rq->query) {
        qargs = api_query(rq->query, rq->query_len, why, sizeof why);
        if (!qargs) {
            answer_error(a, ri, x, 400, HERALD_EINVAL, why[0] ? why : NULL);
            return true;
        }
    }
    if (!r->no_auth && (st = bearer(rq, qargs, tok, sizeof tok, why, sizeof why)) != 0) {
        answer_error(a, ri, x, st, HERALD_EUNAUTHORIZED, why);
        goto out;
    }
    if (qargs)
        json_object_del(qargs, "access_token");
    /* Rate limits: per token subject; the credentials exchange as a whole. */
    {
        ev_tstamp now = ev_now(a->loop);
        double rate = a->cfg.rate, burst = a->cfg.burst;
        token_claims cl;
        bool ok;
        if (r->no_auth) {
            ok = take(&a->login, now, rate, burst);
        } else if (token_peek(tok, strlen(tok), &cl) != 0) {
            answer_error(a, ri, x, 401, HERALD_EUNAUTHORIZED, "invalid token");
            goto out;
        } else if (cl.expires <= (uint64_t)ev_now(a->loop)) {
            /* The claim is signed: whoever runs the call checks the MAC. */
            answer_error(a, ri, x, 401, HERALD_EEXPIRED, "token expired");
            goto out;
        } else {
            ok = take(&a->buckets[subject_hash(cl.tenant, cl.user)], now, rate, burst);
        }
        if (!ok) {
            a->limited++;
            answer_error(a, ri, x, 429, HERALD_ERATE_LIMITED,
                         "too many calls for this app or user; retry later");
            goto out;
        }
    }
    if (r->method == HTTP_POST) {
        json_error_t e;
        if (qargs && json_object_size(qargs)) {
            answer_error(a, ri, x, 400, HERALD_EINVAL,
                         "POST takes its parameters as a JSON body, not in the query");
            goto out;
        }
        if (n > a->cfg.max_frame) {
            answer_error(a, ri, x, 413, HERALD_ETOO_BIG, "request body too large");
            goto out;
        }
        args = n ? json_loadb((const char *)body, n, JSON_REJECT_DUPLICATES, &e)
                 : json_object();
        if (!args) {
            snprintf(why, sizeof why, "the body is not valid JSON: %s (line %d, column %d)",
                     e.text, e.line, e.column);
            answer_error(a, ri, x, 400, HERALD_EPROTOCOL, why);
            goto out;
        }
        if (!json_is_object(args)) {
            answer_error(a, ri, x, 400, HERALD_EINVAL, "the body must be a JSON object");
            goto out;
        }
    } else {
        args = qargs ? json_incref(qargs) : json_object();
    }
    st = api_build(r, args, r->method == HTTP_GET, &b, why, sizeof why);
    if (st == 0 && herald_frame_encode(&b.f, &enc) != 0)
        st = 500;
    if (st) {
        api_built_free(&b);
        answer_error(a, ri, x, st, st == 400 ? HERALD_EINVAL : HERALD_ENOMEM,
                     st == 400 ? why : NULL);
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        api_built_free(&b);
        answer_error(a, ri, x, 500, HERALD_ENOMEM, NULL);
        goto out;
    }
    *c = (call){.a = a, .x = x, .r = r, .ri = ri};
    a->refs++;
    a->inflight++;
    a->be.request(a->be.ctx, r->no_auth ? NULL : tok, &b.f, enc.data + HERALD_FRAME_HEADER,
                  enc.len - HERALD_FRAME_HEADER, on_done, c);
    api_built_free(&b);
out:
    herald_buf_free(&enc);
    json_decref(args);
    json_decref(qargs);
    return true;
}

/* ---- life ---------------------------------------------------------------- */

int api_create(const api_config *cfg, struct ev_loop *loop, const api_backend *be, api **out)
{
    api *a = calloc(1, sizeof *a);
    struct stat st;

    if (!a)
        return HERALD_ENOMEM;
    a->cfg = *cfg;
    if (!a->cfg.rate)
        a->cfg.rate = 100;
    if (!a->cfg.burst)
        a->cfg.burst = 2 * a->cfg.rate;
    if (!a->cfg.max_frame)
        a->cfg.max_frame = HERALD_FRAME_MAX_DEFAULT;
    if (cfg->console_dir && cfg->console_dir[0]) {
        size_t n = strlen(cfg->console_dir);
        if (n + 2 > sizeof a->console_dir || stat(cfg->console_dir, &st) != 0 ||
            !S_ISDIR(st.st_mode)) {
            free(a);
            return HERALD_EINVAL;
        }
        /* console_file appends "/…" paths: no slash at the end. */
        while (n > 1 && cfg->console_dir[n - 1] == '/')
            n--;
        memcpy(a->console_dir, cfg->console_dir, n);
        a->console_dir[n] = '\0';
    }
    a->cfg.console_dir = NULL;
    a->by_route = calloc(api_routes_len * CLASSES, sizeof *a->by_route);
    if (!a->by_route) {
        free(a);
        return HERALD_ENOMEM;
    }
    a->loop = loop;
    a->be = *be;
    a->refs = 1;
    *out = a;
    return 0;
}

void api_metrics(const api *a, prom_w *w)
{
    static const char *const classes[CLASSES] = {"2xx", "4xx", "5xx"};
    prom_family(w, "herald_api_calls_total", "counter",
                "Open API calls answered, by route and status class");
    for (size_t i = 0; i < api_routes_len; i++)
        for (uint32_t k = 0; k < CLASSES; k++) {
            prom_label l[2] = {{"path", api_routes[i].path}, {"status", classes[k]}};
            if (a->by_route[i * CLASSES + k])
                prom_u64(w, "herald_api_calls_total", l, 2, a->by_route[i * CLASSES + k]);
        }
    prom_one(w, "herald_api_rate_limited_total", "counter", a->limited,
             "Open API calls refused by the per-app (per-user) rate limit");
    prom_one(w, "herald_api_calls_in_flight", "gauge", a->inflight,
             "Open API calls waiting for the request service");
}

void api_destroy(api *a)
{
    if (!a || a->closed)
        return;
    a->closed = true;
    api_unref(a);
}
