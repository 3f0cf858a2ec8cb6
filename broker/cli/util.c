/* util.c — the herald CLI's shared helpers. See cli.h. */
#include "cli.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "token.h"

int cli_usage(const char *msg, const char *line)
{
    fprintf(stderr, "herald: %s\nusage: herald [--as USER] [--admin] [--gateway HOST:PORT] "
                    "[--token TOK] [--timeout S] %s\n",
            msg, line);
    return EXIT_USAGE;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

const char *const cli_conv_kinds[] = {"single", "group", "customer_group", "announce", NULL};

int cli_id(const char *what, const char *s, const char *line)
{
    char m[320];
    if (s && token_id_valid(s, strlen(s)))
        return 0;
    snprintf(m, sizeof m,
             "invalid %s id '%.128s': an id is 1 to %u characters from a-z A-Z 0-9 . _ @ : -",
             what, s ? s : "", TOKEN_ID_MAX);
    return cli_usage(m, line);
}

int cli_choice(const char *what, const char *s, const char *const *choices, const char *line)
{
    char m[320];
    int at;
    for (const char *const *c = choices; *c; c++)
        if (strcmp(*c, s) == 0)
            return 0;
    at = snprintf(m, sizeof m, "unknown %s '%.64s' (valid:", what, s);
    for (const char *const *c = choices; *c && at > 0 && (size_t)at < sizeof m; c++)
        at += snprintf(m + at, sizeof m - (size_t)at, "%s %s", c == choices ? "" : ",", *c);
    if (at > 0 && (size_t)at < sizeof m)
        snprintf(m + at, sizeof m - (size_t)at, ")");
    return cli_usage(m, line);
}

/* ---- a small option parser shared by every verb ----------------------------- */

/* Splits argv into options from `opts` and positional arguments. Returns 0
 * or EXIT_USAGE (message printed). */
int cli_parse_opts(int argc, char **argv, cli_opt *opts, const char **pos, int max_pos,
                      int *npos, const char *line)
{
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        cli_opt *o = NULL;
        if (a[0] == '-' && a[1] == '-') {
            for (cli_opt *p = opts; p && p->name; p++)
                if (strcmp(p->name, a) == 0)
                    o = p;
            if (!o) {
                char m[400];
                int at = snprintf(m, sizeof m, "unknown option '%.64s' (valid:", a);
                for (cli_opt *p = opts; p && p->name && at > 0 && (size_t)at < sizeof m; p++)
                    at += snprintf(m + at, sizeof m - (size_t)at, "%s %s", p == opts ? "" : ",",
                                   p->name);
                if (at > 0 && (size_t)at < sizeof m)
                    snprintf(m + at, sizeof m - (size_t)at,
                             opts && opts->name ? ")" : " none: this verb takes no options)");
                return cli_usage(m, line);
            }
            if (o->flag) {
                *o->val = "1";
            } else {
                if (i + 1 >= argc) {
                    char m[160];
                    snprintf(m, sizeof m, "%s needs a value", a);
                    return cli_usage(m, line);
                }
                *o->val = argv[++i];
                if (o->id && cli_id(o->id, *o->val, line))
                    return EXIT_USAGE;
                if (o->choices && cli_choice(o->name, *o->val, o->choices, line))
                    return EXIT_USAGE;
            }
        } else {
            if (*npos >= max_pos)
                return cli_usage("too many arguments", line);
            pos[(*npos)++] = a;
        }
    }
    return 0;
}

/* A numeric option or argument, with a usage error naming it. */
int cli_num(const char *what, const char *s, uint64_t *out, const char *line)
{
    char m[160];
    if (cli_parse_u64(s, out))
        return 0;
    snprintf(m, sizeof m, "%s must be a non-negative integer, not '%s'", what, s);
    return cli_usage(m, line);
}

/* ---- connection and output ----------------------------------------------------- */

int cli_fail(herald_client *c, int rc, const char *what)
{
    const char *text = c ? herald_client_last_error(c) : "";
    fprintf(stderr, "herald: %s: %s%s%s\n", herald_err_name(rc), *text ? text : herald_strerror(rc),
            what ? " — " : "", what ? what : "");
    switch (rc) {
    case HERALD_ECLOSED:
    case HERALD_EIO:
    case HERALD_ETIMEOUT:
    case HERALD_EUNAUTHORIZED:
    case HERALD_EEXPIRED:
        return EXIT_CONN;
    default:
        return EXIT_OP;
    }
}

/* Mints a token from HERALD_SECRET/HERALD_TENANT. */
int cli_mint(const char *user, bool admin, long ttl, char *out, size_t outlen)
{
    const char *hex = getenv("HERALD_SECRET"), *ten = getenv("HERALD_TENANT");
    uint8_t secret[TOKEN_SECRET_LEN];
    token_claims cl = {.admin = admin};
    int rc;
    if (!hex || !ten) {
        fprintf(stderr, "herald: minting a token needs HERALD_SECRET and HERALD_TENANT\n");
        return EXIT_CONN;
    }
    if (token_secret_from_hex(hex, secret) != 0) {
        fprintf(stderr, "herald: HERALD_SECRET must be 64 hex characters\n");
        return EXIT_CONN;
    }
    snprintf(cl.tenant, sizeof cl.tenant, "%s", ten);
    snprintf(cl.user, sizeof cl.user, "%s", user);
    cl.expires = (uint64_t)time(NULL) + (uint64_t)ttl;
    rc = token_mint(secret, &cl, out, outlen);
    sodium_memzero(secret, sizeof secret);
    if (rc) {
        fprintf(stderr, "herald: cannot mint a token for '%s': %s\n", user, herald_strerror(rc));
        return EXIT_USAGE;
    }
    return 0;
}

int cli_open(const cli_globals *g, const uint8_t *key, size_t keylen, herald_client **c)
{
    char minted[TOKEN_TEXT_MAX];
    const char *tok = g->token;
    char text[256];
    herald_client_opts o = {.timeout_ms = g->timeout_ms, .sync_key = key,
                            .sync_key_len = keylen, .errbuf = text, .errbuf_len = sizeof text,
                            .ca_file = getenv("HERALD_CA")};
    int rc;

    if (!tok && (g->as || g->admin)) {
        rc = cli_mint(g->as ? g->as : "admin", g->admin, TOKEN_TTL_DEFAULT, minted, sizeof minted);
        if (rc)
            return rc;
        tok = minted;
    }
    if (!tok) {
        fprintf(stderr, "herald: UNAUTHORIZED: no token: set HERALD_TOKEN, or --as USER with "
                        "HERALD_SECRET and HERALD_TENANT\n");
        return EXIT_CONN;
    }
    rc = herald_client_connect(g->gateway, tok, &o, c);
    if (rc) {
        /* The server's reason when it gave one (an expired token …). */
        fprintf(stderr, "herald: %s: %s (connecting to %s)\n", herald_err_name(rc),
                *text ? text : herald_strerror(rc), g->gateway);
        if (rc == HERALD_EINVAL && key)
            fprintf(stderr, "herald: the saved sync key is not readable\n");
        return rc == HERALD_EINVAL && !key ? EXIT_USAGE : EXIT_CONN;
    }
    return 0;
}

/* Prints the JSON in b as one line. */
void cli_emit(herald_buf *b)
{
    fwrite(b->data, 1, b->len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    b->len = 0;
}

void cli_json_msg(json_w *w, const herald_msg *m, bool typed)
{
    json_obj(w);
    if (typed) {
        json_key(w, "type");
        json_strz(w, "msg");
    }
    json_key(w, "conv");
    json_str(w, m->conv.ptr, m->conv.len);
    json_key(w, "seq");
    json_u64(w, m->seq);
    json_key(w, "from");
    json_str(w, m->from.ptr, m->from.len);
    if (m->flags & HERALD_MSGF_RECALLED) {
        json_key(w, "recalled"); /* a tombstone: no text */
        json_bool(w, true);
    } else {
        json_key(w, "text");
        json_str(w, m->body.ptr, m->body.len);
    }
    json_key(w, "ts");
    json_u64(w, m->ts);
    json_key(w, "kind");
    json_strz(w, m->kind == HERALD_MK_SYSTEM ? "system" : "text");
    if (m->id_corp.len) {
        /* Certified by the broker: the sender's enterprise and title. */
        json_key(w, "identity");
        json_obj(w);
        json_key(w, "corp");
        json_str(w, m->id_corp.ptr, m->id_corp.len);
        json_key(w, "title");
        json_str(w, m->id_title.ptr, m->id_title.len);
        json_obj_end(w);
    }
    json_key(w, "silent");
    json_bool(w, (m->flags & HERALD_MSGF_SILENT) != 0);
    if (m->flags & HERALD_MSGF_URGENT) {
        /* DING: whether this reader confirmed it (a push is not yet). */
        json_key(w, "urgent");
        json_bool(w, true);
        json_key(w, "confirmed");
        json_bool(w, (m->flags & HERALD_MSGF_CONFIRMED) != 0);
    }
    json_obj_end(w);
}

void cli_json_strlist(json_w *w, const herald_strlist *l)
{
    json_arr(w);
    for (uint32_t i = 0; i < l->n; i++)
        json_strz(w, l->v[i]);
    json_arr_end(w);
}

int cli_split_list(const char *s, uint32_t max, const char *what, const char *line,
                   char **copy, const char ***v, uint32_t *n)
{
    char *save = NULL;
    size_t items = 1;

    *n = 0;
    *v = NULL;
    *copy = strdup(s);
    for (const char *p = s; *p; p++)
        items += *p == ',';
    /* Room for every item (empty ones are skipped, so the count below is
     * what decides "too many"). */
    if (*copy)
        *v = calloc(items, sizeof **v);
    if (!*copy || !*v) {
        fprintf(stderr, "herald: NOMEM: %s\n", herald_strerror(HERALD_ENOMEM));
        goto free_copy;
    }
    for (char *t = strtok_r(*copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n >= max) {
            char m[96];
            snprintf(m, sizeof m, "at most %u %s per call", max, what);
            free(*v);
            *v = NULL;
            free(*copy);
            *copy = NULL;
            *n = 0;
            return cli_usage(m, line);
        }
        if (!token_id_valid(t, strlen(t))) {
            char m[320];
            snprintf(m, sizeof m,
                     "invalid id '%.128s' among the %s: an id is 1 to %u characters from "
                     "a-z A-Z 0-9 . _ @ : -",
                     t, what, TOKEN_ID_MAX);
            free(*v);
            *v = NULL;
            free(*copy);
            *copy = NULL;
            *n = 0;
            return cli_usage(m, line);
        }
        (*v)[(*n)++] = t;
    }
    return 0;
free_copy:
    free(*copy);
    *copy = NULL;
    return EXIT_OP;
}

/* Sends APP op with the arguments in args (a JSON object being written)
 * and prints the answer's JSON (cli.h). */
int app_call(const cli_globals *g, const char *op, const char *app, herald_buf *args)
{
    herald_client *c = NULL;
    herald_buf out = {0};
    int rc;

    if (herald_buf_append(args, "", 1) != 0) {
        herald_buf_free(args);
        return cli_fail(NULL, HERALD_ENOMEM, NULL);
    }
    rc = cli_open(g, NULL, 0, &c);
    if (rc == 0) {
        rc = herald_client_app_call(c, op, app, (const char *)args->data, &out);
        if (rc)
            rc = cli_fail(c, rc, NULL);
        else
            cli_emit(&out);
    }
    herald_client_close(c);
    herald_buf_free(&out);
    herald_buf_free(args);
    return rc;
}
