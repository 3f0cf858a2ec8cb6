/*
 * herald — command-line client and admin tool. See README.md ("CLI") for the
 * contract; global options come before the verb.
 *
 * Exit status: 0 ok; 1 the operation failed (server error); 2 usage;
 * 3 cannot connect or authenticate.
 */
#include <errno.h>
#include <herald/client.h>
#include <herald/error.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "json.h"
#include "token.h"

#define EXIT_OP 1
#define EXIT_USAGE 2
#define EXIT_CONN 3
#define TOKEN_TTL_DEFAULT 3600
#define MEMBERS_MAX 100000
#define TAGS_MAX 100

/* Global options. */
typedef struct globals {
    const char *as;      /* --as USER */
    bool admin;          /* --admin */
    const char *gateway; /* --gateway or HERALD_GATEWAY */
    const char *token;   /* --token or HERALD_TOKEN */
    int timeout_ms;      /* --timeout */
} globals;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int usage(const char *msg, const char *line)
{
    fprintf(stderr, "herald: %s\nusage: herald [--as USER] [--admin] [--gateway HOST:PORT] "
                    "[--token TOK] [--timeout S] %s\n",
            msg, line);
    return EXIT_USAGE;
}

static bool parse_u64(const char *s, uint64_t *out)
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

/* ---- a small option parser shared by every verb ----------------------------- */

typedef struct opt {
    const char *name;   /* "--count" */
    bool flag;          /* takes no value */
    const char **val;   /* value (or "1" for flags) */
} opt;

/* Splits argv into options from `opts` and positional arguments. Returns 0
 * or EXIT_USAGE (message printed). */
static int parse_opts(int argc, char **argv, opt *opts, const char **pos, int max_pos,
                      int *npos, const char *line)
{
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        opt *o = NULL;
        if (a[0] == '-' && a[1] == '-') {
            for (opt *p = opts; p && p->name; p++)
                if (strcmp(p->name, a) == 0)
                    o = p;
            if (!o) {
                char m[160];
                snprintf(m, sizeof m, "unknown option '%s'", a);
                return usage(m, line);
            }
            if (o->flag) {
                *o->val = "1";
            } else {
                if (i + 1 >= argc) {
                    char m[160];
                    snprintf(m, sizeof m, "%s needs a value", a);
                    return usage(m, line);
                }
                *o->val = argv[++i];
            }
        } else {
            if (*npos >= max_pos)
                return usage("too many arguments", line);
            pos[(*npos)++] = a;
        }
    }
    return 0;
}

/* A numeric option or argument, with a usage error naming it. */
static int num(const char *what, const char *s, uint64_t *out, const char *line)
{
    char m[160];
    if (parse_u64(s, out))
        return 0;
    snprintf(m, sizeof m, "%s must be a non-negative integer, not '%s'", what, s);
    return usage(m, line);
}

/* ---- connection and output ----------------------------------------------------- */

static int fail(herald_client *c, int rc, const char *what)
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
static int mint(const char *user, bool admin, long ttl, char *out, size_t outlen)
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

static int open_client(const globals *g, const uint8_t *key, size_t keylen, herald_client **c)
{
    char minted[TOKEN_TEXT_MAX];
    const char *tok = g->token;
    herald_client_opts o = {.timeout_ms = g->timeout_ms, .sync_key = key,
                            .sync_key_len = keylen};
    int rc;

    if (!tok && (g->as || g->admin)) {
        rc = mint(g->as ? g->as : "admin", g->admin, TOKEN_TTL_DEFAULT, minted, sizeof minted);
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
        fprintf(stderr, "herald: cannot connect to %s: %s: %s\n", g->gateway, herald_err_name(rc),
                herald_strerror(rc));
        return rc == HERALD_EINVAL ? EXIT_USAGE : EXIT_CONN;
    }
    return 0;
}

/* Prints the JSON in b as one line. */
static void emit(herald_buf *b)
{
    fwrite(b->data, 1, b->len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    b->len = 0;
}

static void json_msg(json_w *w, const herald_msg *m, bool typed)
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
    json_obj_end(w);
}

static void json_strlist(json_w *w, const herald_strlist *l)
{
    json_arr(w);
    for (uint32_t i = 0; i < l->n; i++)
        json_strz(w, l->v[i]);
    json_arr_end(w);
}

/* Splits "a,b,c" in place. */
static int split_members(char *s, const char **v, uint32_t *n)
{
    *n = 0;
    for (char *t = strtok(s, ","); t; t = strtok(NULL, ",")) {
        if (*n >= MEMBERS_MAX)
            return -1;
        v[(*n)++] = t;
    }
    return 0;
}

/* ---- verbs ------------------------------------------------------------------------ */

static int v_token(const globals *g, int argc, char **argv)
{
    static const char line[] = "token --user U [--ttl SECONDS]";
    const char *user = NULL, *ttl_s = NULL, *pos[1];
    opt opts[] = {{"--user", false, &user}, {"--ttl", false, &ttl_s}, {0}};
    char tok[TOKEN_TEXT_MAX];
    uint64_t ttl = TOKEN_TTL_DEFAULT;
    int npos, rc = parse_opts(argc, argv, opts, pos, 0, &npos, line);
    if (rc)
        return rc;
    if (!user)
        return usage("--user is required", line);
    if (ttl_s && ((rc = num("--ttl", ttl_s, &ttl, line)) != 0))
        return rc;
    if (ttl == 0 || ttl > 10u * 365 * 86400)
        return usage("--ttl must be between 1 and 315360000 seconds", line);
    rc = mint(user, g->admin, (long)ttl, tok, sizeof tok);
    if (rc)
        return rc;
    puts(tok);
    return 0;
}

static void json_conv_info(json_w *w, const herald_conv_info *i)
{
    json_obj(w);
    json_key(w, "id");
    json_strz(w, i->id);
    json_key(w, "kind");
    json_strz(w, i->kind);
    json_key(w, "owner");
    json_strz(w, i->owner);
    json_key(w, "members");
    json_strlist(w, &i->members);
    json_key(w, "count");
    json_u64(w, i->count);
    json_key(w, "max_seq");
    json_u64(w, i->max_seq);
    json_key(w, "cap");
    json_u64(w, i->cap);
    json_key(w, "created");
    json_u64(w, i->created);
    json_obj_end(w);
}

static int v_conv(const globals *g, int argc, char **argv)
{
    static const char line[] =
        "conv create --kind KIND --members u1,u2,… [--id ID] | conv add|remove CONV --members … "
        "| conv info CONV";
    const char *kind = NULL, *members = NULL, *id = NULL, *pos[2];
    opt opts[] = {{"--kind", false, &kind}, {"--members", false, &members}, {"--id", false, &id},
                  {0}};
    static const char *mv[MEMBERS_MAX];
    char *mcopy = NULL;
    uint32_t n = 0;
    herald_client *c = NULL;
    herald_conv_info info = {0};
    herald_buf b = {0};
    json_w w;
    int npos, rc = parse_opts(argc, argv, opts, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos < 1)
        return usage("conv needs create, add, remove or info", line);
    if (strcmp(pos[0], "create") == 0) {
        if (npos != 1 || !kind || !members)
            return usage("conv create needs --kind and --members", line);
    } else if (strcmp(pos[0], "add") == 0 || strcmp(pos[0], "remove") == 0) {
        if (npos != 2 || !members)
            return usage("conv add/remove needs CONV and --members", line);
    } else if (strcmp(pos[0], "info") == 0) {
        if (npos != 2)
            return usage("conv info needs CONV", line);
    } else {
        return usage("conv needs create, add, remove or info", line);
    }
    if (members) {
        mcopy = strdup(members);
        if (!mcopy || split_members(mcopy, mv, &n) != 0) {
            free(mcopy);
            return usage("too many members", line);
        }
    }
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        goto out;
    if (strcmp(pos[0], "create") == 0)
        rc = herald_client_conv_create(c, kind, id, mv, n, &info);
    else if (strcmp(pos[0], "add") == 0)
        rc = herald_client_conv_add(c, pos[1], mv, n, &info);
    else if (strcmp(pos[0], "remove") == 0)
        rc = herald_client_conv_remove(c, pos[1], mv, n, &info);
    else
        rc = herald_client_conv_info(c, pos[1], &info);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    if (strcmp(pos[0], "info") == 0) {
        json_conv_info(&w, &info);
    } else {
        json_obj(&w);
        json_key(&w, "id");
        json_strz(&w, info.id);
        json_key(&w, "count");
        json_u64(&w, info.count);
        json_obj_end(&w);
    }
    emit(&b);
out:
    herald_conv_info_free(&info);
    herald_buf_free(&b);
    herald_client_close(c);
    free(mcopy);
    return rc;
}

static int v_send(const globals *g, int argc, char **argv)
{
    static const char line[] = "send CONV TEXT [--cmid ID] [--silent] [--urgent]";
    const char *cmid = NULL, *silent = NULL, *urgent = NULL, *pos[2];
    opt opts[] = {{"--cmid", false, &cmid}, {"--silent", true, &silent},
                  {"--urgent", true, &urgent}, {0}};
    herald_client *c = NULL;
    herald_ack ack;
    herald_buf b = {0};
    json_w w;
    int npos, rc = parse_opts(argc, argv, opts, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos != 2)
        return usage("send needs CONV and TEXT", line);
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_send(c, pos[0], cmid, pos[1], strlen(pos[1]),
                            (silent ? HERALD_MSGF_SILENT : 0) | (urgent ? HERALD_MSGF_URGENT : 0),
                            &ack);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "conv");
    json_strz(&w, pos[0]);
    json_key(&w, "seq");
    json_u64(&w, ack.seq);
    json_key(&w, "ts");
    json_u64(&w, ack.ts);
    json_key(&w, "dup");
    json_bool(&w, ack.dup);
    json_obj_end(&w);
    emit(&b);
out:
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

/* Loads a saved sync key (missing file: none). */
static int load_state(const char *path, herald_buf *key)
{
    FILE *f = fopen(path, "rb");
    uint8_t chunk[4096];
    size_t n;
    if (!f)
        return errno == ENOENT ? 0 : -1;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (key->len + n > (1u << 20) || herald_buf_append(key, chunk, n) != 0) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* Writes the client's key to path atomically (tmp + rename). */
static int save_state(herald_client *c, const char *path)
{
    char tmp[4096];
    herald_buf key = {0};
    FILE *f;
    int rc = herald_client_sync_key(c, &key);
    if (rc)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f || fwrite(key.data, 1, key.len, f) != key.len || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        if (f)
            fclose(f);
        herald_buf_free(&key);
        return HERALD_EIO;
    }
    fclose(f);
    herald_buf_free(&key);
    return rename(tmp, path) == 0 ? 0 : HERALD_EIO;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int v_sub(const globals *g, int argc, char **argv)
{
    static const char line[] = "sub [--count N] [--timeout SECONDS] [--state FILE]";
    const char *count_s = NULL, *timeout_s = NULL, *state = NULL, *pos[1];
    opt opts[] = {{"--count", false, &count_s}, {"--timeout", false, &timeout_s},
                  {"--state", false, &state}, {0}};
    uint64_t count = 0, timeout = 0, seen = 0, deadline = 0;
    herald_buf key = {0}, b = {0};
    herald_client *c = NULL;
    struct sigaction sa = {.sa_handler = on_signal};
    int npos, rc = parse_opts(argc, argv, opts, pos, 0, &npos, line);

    if (rc)
        return rc;
    if (count_s && (rc = num("--count", count_s, &count, line)) != 0)
        return rc;
    if (timeout_s && (rc = num("--timeout", timeout_s, &timeout, line)) != 0)
        return rc;
    if (state && load_state(state, &key) != 0) {
        fprintf(stderr, "herald: cannot read state file %s\n", state);
        return EXIT_OP;
    }
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = open_client(g, key.len ? key.data : NULL, key.len, &c);
    if (rc == 0 && state)
        rc = save_state(c, state) ? fail(c, HERALD_EIO, "saving the state file") : 0;
    if (rc)
        goto out;
    if (timeout)
        deadline = mono_ms() + timeout * 1000u;
    while (!g_stop && (!count || seen < count)) {
        herald_event *ev;
        json_w w;
        int wait = 200;
        if (deadline) {
            uint64_t now = mono_ms();
            if (now >= deadline)
                break;
            if (deadline - now < (uint64_t)wait)
                wait = (int)(deadline - now);
        }
        rc = herald_client_next_event(c, wait, &ev);
        if (rc == HERALD_ETIMEOUT) {
            rc = 0;
            continue;
        }
        if (rc) {
            rc = fail(c, rc, NULL);
            goto out;
        }
        json_init(&w, &b);
        if (ev->type == HERALD_EV_MSG) {
            json_msg(&w, &ev->msg, true);
        } else if (ev->type == HERALD_EV_REMIND || ev->type == HERALD_EV_ESCALATE) {
            json_obj(&w);
            json_key(&w, "type");
            json_strz(&w, ev->type == HERALD_EV_REMIND ? "remind" : "escalate");
            json_key(&w, "conv");
            json_strz(&w, ev->conv);
            json_key(&w, "seq");
            json_u64(&w, ev->seq);
            json_key(&w, "count");
            json_u64(&w, ev->count);
            if (ev->type == HERALD_EV_ESCALATE) {
                json_key(&w, "pending");
                json_strz(&w, ev->user);
            }
            json_obj_end(&w);
        } else {
            json_obj(&w);
            json_key(&w, "type");
            json_strz(&w, "receipt");
            json_key(&w, "conv");
            json_strz(&w, ev->conv);
            json_key(&w, "user");
            json_strz(&w, ev->user);
            json_key(&w, "seq");
            json_u64(&w, ev->seq);
            json_obj_end(&w);
        }
        herald_event_free(ev);
        emit(&b);
        seen++;
        if (state && save_state(c, state) != 0) {
            rc = fail(c, HERALD_EIO, "saving the state file");
            goto out;
        }
    }
    if (count && seen < count && !g_stop) {
        fprintf(stderr, "herald: TIMEOUT: %llu of %llu events before the timeout\n",
                (unsigned long long)seen, (unsigned long long)count);
        rc = EXIT_OP;
    }
out:
    herald_buf_free(&key);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_history(const globals *g, int argc, char **argv)
{
    static const char line[] = "history CONV [--after SEQ] [--limit N]";
    const char *after_s = NULL, *limit_s = NULL, *pos[1];
    opt opts[] = {{"--after", false, &after_s}, {"--limit", false, &limit_s}, {0}};
    uint64_t after = 0, limit = UINT64_MAX, printed = 0;
    herald_client *c = NULL;
    herald_buf b = {0};
    int npos, rc = parse_opts(argc, argv, opts, pos, 1, &npos, line);

    if (rc)
        return rc;
    if (npos != 1)
        return usage("history needs CONV", line);
    if (after_s && (rc = num("--after", after_s, &after, line)) != 0)
        return rc;
    if (limit_s && (rc = num("--limit", limit_s, &limit, line)) != 0)
        return rc;
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    while (printed < limit) {
        herald_msglist l;
        uint64_t want = limit - printed;
        bool more;
        rc = herald_client_history(c, pos[0], after, want > 1000 ? 1000 : (uint32_t)want, &l);
        if (rc) {
            rc = fail(c, rc, NULL);
            break;
        }
        for (uint32_t i = 0; i < l.n && printed < limit; i++, printed++) {
            json_w w;
            json_init(&w, &b);
            json_msg(&w, &l.v[i], false);
            emit(&b);
            after = l.v[i].seq;
        }
        more = l.more && l.n > 0;
        herald_msglist_free(&l);
        if (!more)
            break;
    }
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

/* Verbs of the shape "VERB CONV SEQ" printing {"conv","seq"}: read, recall. */
typedef int (*conv_seq_fn)(herald_client *c, const char *conv, uint64_t seq, uint64_t *out);

static int run_conv_seq(const globals *g, int argc, char **argv, const char *line,
                        conv_seq_fn op)
{
    const char *pos[2];
    uint64_t seq, result = 0;
    herald_client *c = NULL;
    herald_buf b = {0};
    json_w w;
    int npos, rc = parse_opts(argc, argv, NULL, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos != 2)
        return usage("needs CONV and SEQ", line);
    if ((rc = num("SEQ", pos[1], &seq, line)) != 0)
        return rc;
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = op(c, pos[0], seq, &result);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "conv");
    json_strz(&w, pos[0]);
    json_key(&w, "seq");
    json_u64(&w, result);
    json_obj_end(&w);
    emit(&b);
out:
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_read(const globals *g, int argc, char **argv)
{
    return run_conv_seq(g, argc, argv, "read CONV SEQ", herald_client_read);
}

/* Prints {"conv","seq"} with seq = the system message announcing the recall. */
static int v_recall(const globals *g, int argc, char **argv)
{
    return run_conv_seq(g, argc, argv, "recall CONV SEQ", herald_client_recall);
}

/* TIME for --until: "+30s" / "+15m" / "+2h" / "+1d" from now, Unix seconds,
 * or "YYYY-MM-DDTHH:MM[:SS]Z". Returns ms since the epoch, 0 when invalid. */
static uint64_t parse_time(const char *s)
{
    uint64_t v;
    if (s[0] == '+') {
        char unit;
        size_t n = strlen(s);
        static const struct {
            char u;         /* suffix */
            uint64_t secs;  /* seconds per unit */
        } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
        char digits[32];
        if (n < 3 || n - 2 >= sizeof digits)
            return 0;
        unit = s[n - 1];
        memcpy(digits, s + 1, n - 2);
        digits[n - 2] = '\0';
        if (!parse_u64(digits, &v))
            return 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (units[i].u == unit && v <= UINT32_MAX)
                return ((uint64_t)time(NULL) + v * units[i].secs) * 1000u;
        return 0;
    }
    if (parse_u64(s, &v))
        return v <= UINT32_MAX * 4ull ? v * 1000u : 0;
    {
        struct tm tm = {0};
        const char *end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
        if (end && *end == ':')
            end = strptime(end, ":%S", &tm);
        if (!end || strcmp(end, "Z") != 0)
            return 0;
        return (uint64_t)timegm(&tm) * 1000u;
    }
}

static int v_dnd(const globals *g, int argc, char **argv)
{
    static const char line[] = "dnd on [--until TIME] | off | status   (TIME: +30m, +2h, "
                               "+1d, Unix seconds, or 2026-12-01T09:00Z)";
    const char *until_s = NULL, *pos[1];
    opt opts[] = {{"--until", false, &until_s}, {0}};
    uint64_t until = 0, state;
    herald_client *c = NULL;
    herald_buf b = {0};
    json_w w;
    int npos, rc = parse_opts(argc, argv, opts, pos, 1, &npos, line);

    if (rc)
        return rc;
    if (npos != 1 || (strcmp(pos[0], "on") && strcmp(pos[0], "off") && strcmp(pos[0], "status")))
        return usage("dnd needs on, off or status", line);
    if (until_s) {
        if (strcmp(pos[0], "on") != 0)
            return usage("--until goes with dnd on", line);
        until = parse_time(until_s);
        if (!until)
            return usage("--until: not a time", line);
    }
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_dnd(c, pos[0], until, &state);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "dnd");
    json_bool(&w, state != 0);
    if (state && state != UINT64_MAX) {
        json_key(&w, "until");
        json_u64(&w, state);
    }
    json_obj_end(&w);
    emit(&b);
out:
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_confirm(const globals *g, int argc, char **argv)
{
    return run_conv_seq(g, argc, argv, "confirm CONV SEQ", herald_client_confirm);
}

static int v_urgent_status(const globals *g, int argc, char **argv)
{
    static const char line[] = "urgent-status CONV SEQ";
    const char *pos[2];
    uint64_t seq;
    herald_client *c = NULL;
    herald_strlist ok = {0}, pend = {0};
    herald_buf b = {0};
    json_w w;
    int npos, rc = parse_opts(argc, argv, NULL, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos != 2)
        return usage("urgent-status needs CONV and SEQ", line);
    if ((rc = num("SEQ", pos[1], &seq, line)) != 0)
        return rc;
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_urgent_status(c, pos[0], seq, &ok, &pend);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "confirmed");
    json_strlist(&w, &ok);
    json_key(&w, "pending");
    json_strlist(&w, &pend);
    json_obj_end(&w);
    emit(&b);
out:
    herald_strlist_free(&ok);
    herald_strlist_free(&pend);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_dir(const globals *g, int argc, char **argv)
{
    static const char line[] =
        "dir user add USER --kind internal|external [--dept D] [--title T] [--name N] | "
        "dir user show USER | dir dept add DEPT [--name N] [--parent P] | dir dept show DEPT";
    const char *kind = NULL, *dept = NULL, *title = NULL, *name = NULL, *parent = NULL, *pos[3];
    opt opts[] = {{"--kind", false, &kind},   {"--dept", false, &dept},
                  {"--title", false, &title}, {"--name", false, &name},
                  {"--parent", false, &parent}, {0}};
    herald_dir_entry in = {0}, out = {0};
    herald_client *c = NULL;
    herald_buf b = {0};
    char op[16];
    bool user;
    json_w w;
    int npos, rc = parse_opts(argc, argv, opts, pos, 3, &npos, line);

    if (rc)
        return rc;
    if (npos != 3 || (strcmp(pos[0], "user") && strcmp(pos[0], "dept")) ||
        (strcmp(pos[1], "add") && strcmp(pos[1], "show")))
        return usage("dir needs user|dept add|show ID", line);
    user = strcmp(pos[0], "user") == 0;
    if (user && strcmp(pos[1], "add") == 0 && !kind)
        return usage("dir user add needs --kind internal|external", line);
    if ((!user && (kind || title)) || (user && parent))
        return usage("that option does not apply here", line);
    snprintf(op, sizeof op, "%s.%s", pos[0], pos[1]);
    in = (herald_dir_entry){.user = user ? (char *)pos[2] : NULL,
                            .dept = user ? (char *)dept : (char *)pos[2],
                            .kind = (char *)kind, .name = (char *)name,
                            .title = (char *)title, .parent = (char *)parent};
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_dir(c, op, &in, &out);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    if (user) {
        json_key(&w, "user");
        json_strz(&w, out.user);
        json_key(&w, "kind");
        json_strz(&w, out.kind);
        json_key(&w, "name");
        json_strz(&w, out.name);
        json_key(&w, "title");
        json_strz(&w, out.title);
        json_key(&w, "dept");
        json_strz(&w, out.dept);
    } else {
        json_key(&w, "dept");
        json_strz(&w, out.dept);
        json_key(&w, "name");
        json_strz(&w, out.name);
        json_key(&w, "parent");
        json_strz(&w, out.parent);
    }
    json_obj_end(&w);
    emit(&b);
out:
    herald_dir_entry_free(&out);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_contact(const globals *g, int argc, char **argv)
{
    static const char line[] = "contact add EMPLOYEE CUSTOMER | contact list CUSTOMER";
    const char *pos[3];
    herald_client *c = NULL;
    herald_strlist owners = {0};
    herald_buf b = {0};
    char conv[64];
    json_w w;
    bool add;
    int npos, rc = parse_opts(argc, argv, NULL, pos, 3, &npos, line);

    if (rc)
        return rc;
    add = npos == 3 && strcmp(pos[0], "add") == 0;
    if (!add && !(npos == 2 && strcmp(pos[0], "list") == 0))
        return usage("contact needs add EMPLOYEE CUSTOMER or list CUSTOMER", line);
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = add ? herald_client_contact_add(c, pos[1], pos[2], conv, sizeof conv)
             : herald_client_contact_list(c, pos[1], &owners);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    if (add) {
        json_key(&w, "conv");
        json_strz(&w, conv);
    } else {
        json_key(&w, "customer");
        json_strz(&w, pos[1]);
        json_key(&w, "owners");
        json_strlist(&w, &owners);
    }
    json_obj_end(&w);
    emit(&b);
out:
    herald_strlist_free(&owners);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_tag(const globals *g, int argc, char **argv)
{
    static const char line[] = "tag add|remove CUSTOMER t1,t2,… | tag list CUSTOMER";
    const char *pos[3];
    static const char *tv[TAGS_MAX];
    char *copy = NULL;
    uint32_t n = 0;
    herald_client *c = NULL;
    herald_strlist tags = {0};
    herald_buf b = {0};
    json_w w;
    int npos, rc = parse_opts(argc, argv, NULL, pos, 3, &npos, line);

    if (rc)
        return rc;
    if (!(npos == 2 && strcmp(pos[0], "list") == 0) &&
        !(npos == 3 && (strcmp(pos[0], "add") == 0 || strcmp(pos[0], "remove") == 0)))
        return usage("tag needs add|remove CUSTOMER TAGS or list CUSTOMER", line);
    if (npos == 3) {
        copy = strdup(pos[2]);
        if (!copy)
            return EXIT_OP;
        for (char *t = strtok(copy, ","); t; t = strtok(NULL, ",")) {
            if (n == TAGS_MAX) {
                free(copy);
                return usage("at most 100 tags per call", line);
            }
            tv[n++] = t;
        }
    }
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        goto out;
    rc = herald_client_tags(c, pos[0], pos[1], tv, n, &tags);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "customer");
    json_strz(&w, pos[1]);
    json_key(&w, "tags");
    json_strlist(&w, &tags);
    json_obj_end(&w);
    emit(&b);
out:
    free(copy);
    herald_strlist_free(&tags);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_mass(const globals *g, int argc, char **argv)
{
    static const char line[] = "mass send --tags t1,t2,… [--id ID] TEXT | mass status ID";
    const char *tags_s = NULL, *id = NULL, *pos[2];
    opt opts[] = {{"--tags", false, &tags_s}, {"--id", false, &id}, {0}};
    static const char *tv[TAGS_MAX];
    char *copy = NULL;
    uint32_t n = 0;
    herald_client *c = NULL;
    herald_mass m = {0};
    herald_buf b = {0};
    json_w w;
    bool send;
    int npos, rc = parse_opts(argc, argv, opts, pos, 2, &npos, line);

    if (rc)
        return rc;
    send = npos == 2 && strcmp(pos[0], "send") == 0;
    if (!send && !(npos == 2 && strcmp(pos[0], "status") == 0))
        return usage("mass needs send TEXT or status ID", line);
    if (send) {
        if (!tags_s)
            return usage("mass send needs --tags", line);
        copy = strdup(tags_s);
        if (!copy)
            return EXIT_OP;
        for (char *t = strtok(copy, ","); t; t = strtok(NULL, ",")) {
            if (n == TAGS_MAX) {
                free(copy);
                return usage("at most 100 tags", line);
            }
            tv[n++] = t;
        }
    }
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        goto out;
    rc = send ? herald_client_mass_send(c, id, tv, n, pos[1], &m)
              : herald_client_mass_status(c, pos[1], &m);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "id");
    json_strz(&w, m.id);
    if (send) {
        json_key(&w, "sent");
        json_u64(&w, m.sent);
    }
    json_key(&w, "reached");
    json_strlist(&w, &m.reached);
    json_key(&w, "limited");
    json_strlist(&w, &m.limited);
    json_key(&w, "missed");
    json_strlist(&w, &m.missed);
    json_obj_end(&w);
    emit(&b);
out:
    free(copy);
    herald_mass_free(&m);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_admin(const globals *g, int argc, char **argv)
{
    static const char line[] = "admin status";
    const char *pos[1];
    herald_client *c = NULL;
    herald_buf b = {0};
    int npos, rc = parse_opts(argc, argv, NULL, pos, 1, &npos, line);

    if (rc)
        return rc;
    if (npos != 1 || strcmp(pos[0], "status") != 0)
        return usage("admin needs status", line);
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_status(c, &b);
    if (rc)
        rc = fail(c, rc, NULL);
    else
        emit(&b);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_receipts(const globals *g, int argc, char **argv)
{
    static const char line[] = "receipts CONV SEQ [--after ID] [--limit N]";
    const char *after = NULL, *limit_s = NULL, *pos[2];
    opt opts[] = {{"--after", false, &after}, {"--limit", false, &limit_s}, {0}};
    uint64_t seq, limit = 0;
    herald_client *c = NULL;
    herald_receipts r = {0};
    herald_buf b = {0};
    json_w w;
    int npos, rc = parse_opts(argc, argv, opts, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos != 2)
        return usage("receipts needs CONV and SEQ", line);
    if ((rc = num("SEQ", pos[1], &seq, line)) != 0)
        return rc;
    if (limit_s && ((rc = num("--limit", limit_s, &limit, line)) != 0))
        return rc;
    if (limit > 1000)
        return usage("--limit is at most 1000", line);
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_receipts_page(c, pos[0], seq, after, (uint32_t)limit, &r);
    if (rc) {
        rc = fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "read");
    json_strlist(&w, &r.read);
    json_key(&w, "unread");
    json_strlist(&w, &r.unread);
    json_key(&w, "read_count");
    json_u64(&w, r.n_read);
    json_key(&w, "unread_count");
    json_u64(&w, r.n_unread);
    if (r.more) {
        json_key(&w, "next");
        json_strz(&w, r.next);
    }
    json_obj_end(&w);
    emit(&b);
out:
    herald_receipts_free(&r);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

static int v_ping(const globals *g, int argc, char **argv)
{
    static const char line[] = "ping";
    const char *pos[1];
    uint64_t rtt;
    herald_client *c = NULL;
    int npos, rc = parse_opts(argc, argv, NULL, pos, 0, &npos, line);
    if (rc)
        return rc;
    rc = open_client(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_ping(c, &rtt);
    if (rc)
        rc = fail(c, rc, NULL);
    else
        printf("{\"rtt_us\":%llu}\n", (unsigned long long)rtt);
    herald_client_close(c);
    return rc;
}

typedef struct verb {
    const char *name;                               /* verb */
    int (*run)(const globals *g, int argc, char **argv); /* handler */
    const char *help;                               /* one-line usage */
} verb;

static const verb verbs[] = {
    {"token", v_token, "token --user U [--ttl SECONDS]"},
    {"conv", v_conv, "conv create --kind KIND --members u1,u2,… [--id ID] | add|remove CONV "
                     "--members … | info CONV"},
    {"send", v_send, "send CONV TEXT [--cmid ID] [--silent] [--urgent]"},
    {"confirm", v_confirm, "confirm CONV SEQ"},
    {"urgent-status", v_urgent_status, "urgent-status CONV SEQ"},
    {"sub", v_sub, "sub [--count N] [--timeout SECONDS] [--state FILE]"},
    {"history", v_history, "history CONV [--after SEQ] [--limit N]"},
    {"read", v_read, "read CONV SEQ"},
    {"recall", v_recall, "recall CONV SEQ"},
    {"dnd", v_dnd, "dnd on [--until TIME] | off | status"},
    {"contact", v_contact, "contact add EMPLOYEE CUSTOMER | contact list CUSTOMER"},
    {"dir", v_dir, "dir user add USER --kind internal|external [--dept D] [--title T] "
                   "[--name N] | user show USER | dept add DEPT [--name N] [--parent P] | "
                   "dept show DEPT"},
    {"receipts", v_receipts, "receipts CONV SEQ [--after ID] [--limit N]"},
    {"tag", v_tag, "tag add|remove CUSTOMER t1,t2,… | tag list CUSTOMER"},
    {"mass", v_mass, "mass send --tags t1,t2,… [--id ID] TEXT | mass status ID"},
    {"admin", v_admin, "admin status"},
    {"ping", v_ping, "ping"},
};

static void help(FILE *f)
{
    fprintf(f, "usage: herald [--as USER] [--admin] [--gateway HOST:PORT] [--token TOK] "
               "[--timeout S] VERB …\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "  herald %s\n", verbs[i].help);
    fprintf(f, "env: HERALD_GATEWAY (default 127.0.0.1:7400), HERALD_TOKEN; HERALD_SECRET and "
               "HERALD_TENANT let --as/--admin mint tokens\n");
}

int main(int argc, char **argv)
{
    globals g = {.gateway = getenv("HERALD_GATEWAY"), .token = getenv("HERALD_TOKEN")};
    int i = 1;

    if (herald_token_init() != 0) {
        fprintf(stderr, "herald: libsodium failed to initialise\n");
        return EXIT_OP;
    }
    if (!g.gateway || !*g.gateway)
        g.gateway = "127.0.0.1:7400";
    if (g.token && !*g.token)
        g.token = NULL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t t;
        if (strcmp(a, "--admin") == 0) {
            g.admin = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("herald %s (protocol %u)\n", HERALD_VERSION, HERALD_PROTOCOL_VERSION);
            return 0;
        } else if (!v) {
            fprintf(stderr, "herald: %s needs a value\n", a);
            return EXIT_USAGE;
        } else if (strcmp(a, "--as") == 0) {
            g.as = v;
            i++;
        } else if (strcmp(a, "--gateway") == 0) {
            g.gateway = v;
            i++;
        } else if (strcmp(a, "--token") == 0) {
            g.token = v;
            i++;
        } else if (strcmp(a, "--timeout") == 0) {
            if (!parse_u64(v, &t) || t == 0 || t > 3600) {
                fprintf(stderr, "herald: --timeout must be 1..3600 seconds\n");
                return EXIT_USAGE;
            }
            g.timeout_ms = (int)(t * 1000);
            i++;
        } else {
            fprintf(stderr, "herald: unknown option '%s'\n", a);
            help(stderr);
            return EXIT_USAGE;
        }
    }
    /* --as/--admin mint a fresh token; they win over HERALD_TOKEN. */
    if ((g.as || g.admin) && g.token == getenv("HERALD_TOKEN"))
        g.token = NULL;
    if (i >= argc) {
        help(stderr);
        return EXIT_USAGE;
    }
    for (size_t k = 0; k < sizeof verbs / sizeof verbs[0]; k++)
        if (strcmp(argv[i], verbs[k].name) == 0)
            return verbs[k].run(&g, argc - i - 1, argv + i + 1);
    fprintf(stderr, "herald: unknown verb '%s'\n", argv[i]);
    help(stderr);
    return EXIT_USAGE;
}
