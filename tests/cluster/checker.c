/*
 * checker.c — herald-checker's entry point and the pieces both modes share:
 * options, credentials (--env FILE or the environment), token minting like
 * the CLI, connecting with bounded retries, and which errors are retryable.
 *
 *   herald-checker write  --convs N --rate R --duration S --log FILE [options]
 *   herald-checker verify --log FILE [options]
 *
 * See checker.h for the log format and checker_write.c / checker_verify.c
 * for what each mode does and guarantees.
 */
#include "checker.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_text[] =
    "usage: herald-checker write --convs N --rate R --duration S --log FILE\n"
    "                            [--writers W] [--grace S] [--timeout-ms MS] [--env FILE]\n"
    "       herald-checker verify --log FILE [--settle N] [--deadline S] [--timeout-ms MS]\n"
    "                             [--env FILE]\n"
    "       herald-checker flood --convs N --members M --msgs K [--env FILE] [--deadline S]\n"
    "       herald-checker reach --users N --groups G --singles S --rate R --secs T\n"
    "                            [--senders K] [--bound-ms B] [--env FILE]\n"
    "       herald-checker quorum --user U --conv C [--env FILE]\n"
    "       herald-checker bigflood [--conns N] [--secs S] [--bytes B] [--window W] [--grace S]\n"
    "                               [--env FILE]\n"
    "Credentials: HERALD_GATEWAY, HERALD_TENANT, HERALD_SECRET from the environment, or\n"
    "from --env FILE (a dev.env / cluster.env, re-read before every connect).\n";

uint64_t ck_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ck_sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

uint64_t ck_backoff_next(uint64_t *backoff)
{
    uint64_t now = *backoff < CK_BACKOFF_MIN_MS ? CK_BACKOFF_MIN_MS : *backoff;
    *backoff = now * 2 > CK_BACKOFF_MAX_MS ? CK_BACKOFF_MAX_MS : now * 2;
    return now;
}

/* Applies one NAME=VALUE to the fields being loaded; unknown names ignored. */
static void env_set(const char *name, const char *val, char *gw, char *ten, char *hex)
{
    if (strcmp(name, "HERALD_GATEWAY") == 0)
        snprintf(gw, 256, "%s", val);
    else if (strcmp(name, "HERALD_TENANT") == 0)
        snprintf(ten, TOKEN_ID_MAX + 1, "%s", val);
    else if (strcmp(name, "HERALD_SECRET") == 0)
        snprintf(hex, TOKEN_SECRET_HEX + 2, "%s", val);
}

int ck_env_load(ck_env *e, char *err, size_t errlen)
{
    char gw[256] = "", ten[TOKEN_ID_MAX + 1] = "", hex[TOKEN_SECRET_HEX + 2] = "";
    uint8_t secret[TOKEN_SECRET_LEN];

    if (e->file[0]) {
        char line[1200];
        FILE *f = fopen(e->file, "r");
        if (!f) {
            snprintf(err, errlen, "cannot read %s: %s", e->file, strerror(errno));
            goto keep_old;
        }
        while (fgets(line, sizeof line, f)) {
            char *eq = strchr(line, '=');
            line[strcspn(line, "\r\n")] = '\0';
            if (!eq)
                continue;
            *eq = '\0';
            env_set(line, eq + 1, gw, ten, hex);
        }
        fclose(f);
    } else {
        const char *names[] = {"HERALD_GATEWAY", "HERALD_TENANT", "HERALD_SECRET"};
        for (size_t i = 0; i < 3; i++) {
            const char *v = getenv(names[i]);
            if (v)
                env_set(names[i], v, gw, ten, hex);
        }
    }
    if (!gw[0] || !ten[0] || !hex[0]) {
        snprintf(err, errlen, "%s lacks HERALD_GATEWAY, HERALD_TENANT or HERALD_SECRET",
                 e->file[0] ? e->file : "the environment");
        goto keep_old;
    }
    if (token_secret_from_hex(hex, secret) != 0) {
        snprintf(err, errlen, "HERALD_SECRET must be 64 hex characters");
        goto keep_old;
    }
    snprintf(e->gateway, sizeof e->gateway, "%s", gw);
    snprintf(e->tenant, sizeof e->tenant, "%s", ten);
    memcpy(e->secret, secret, sizeof secret);
    sodium_memzero(secret, sizeof secret);
    e->loaded = true;
    return 0;

keep_old:
    /* A file being rewritten (cluster restart) must not end the run. */
    return e->loaded ? 0 : -1;
}

int ck_connect(ck_env *e, const char *user, herald_client **out, char *err, size_t errlen)
{
    return ck_connect_key(e, user, NULL, 0, out, err, errlen);
}

int ck_connect_key(ck_env *e, const char *user, const uint8_t *key, size_t keylen,
                   herald_client **out, char *err, size_t errlen)
{
    char tok[TOKEN_TEXT_MAX], text[256] = "";
    token_claims cl = {.admin = e->admin};
    herald_client_opts o = {.timeout_ms = e->timeout_ms, .ca_file = getenv("HERALD_CA"),
                            .errbuf = text,
                            .errbuf_len = sizeof text, .sync_key = key, .sync_key_len = keylen};
    int rc;

    *out = NULL;
    if (ck_env_load(e, err, errlen) != 0)
        return HERALD_EINVAL;
    snprintf(cl.tenant, sizeof cl.tenant, "%s", e->tenant);
    snprintf(cl.user, sizeof cl.user, "%s", user);
    cl.expires = (uint64_t)time(NULL) + CK_TOKEN_TTL_S;
    rc = token_mint(e->secret, &cl, tok, sizeof tok);
    if (rc) {
        snprintf(err, errlen, "cannot mint a token for '%s': %s", user, herald_strerror(rc));
        return rc;
    }
    rc = herald_client_connect(e->gateway, tok, &o, out);
    sodium_memzero(tok, sizeof tok);
    if (rc)
        snprintf(err, errlen, "connect to %s as %s: %s: %s", e->gateway, user,
                 herald_err_name(rc), text[0] ? text : herald_strerror(rc));
    return rc;
}

int ck_connect_retry(ck_env *e, const char *user, uint64_t deadline_ms, const char *who,
                     herald_client **out)
{
    uint64_t backoff = 0;
    int last = -1, rc;
    char err[512];

    for (;;) {
        rc = ck_connect(e, user, out, err, sizeof err);
        if (rc == 0)
            return 0;
        if (rc != last)
            fprintf(stderr, "%s: %s (retrying)\n", who, err);
        last = rc;
        if (ck_now_ms() + CK_BACKOFF_MIN_MS >= deadline_ms) {
            fprintf(stderr, "%s: giving up: %s\n", who, err);
            return rc;
        }
        ck_sleep_ms(ck_backoff_next(&backoff));
    }
}

bool ck_retryable(int rc)
{
    switch (rc) {
    case HERALD_ECLOSED:
    case HERALD_EIO:
    case HERALD_ETIMEOUT:
    case HERALD_EPROTOCOL:     /* a half-written frame from a dying server */
    case HERALD_ENOT_LEADER:
    case HERALD_ESHUTDOWN:
    case HERALD_EBUSY:
    case HERALD_ERATE_LIMITED:
    case HERALD_ESTORAGE:      /* "not committed": the same cmid may be sent again */
    case HERALD_EINTERNAL:
    case HERALD_ENOMEM:
    case HERALD_EIDLE:
    case HERALD_ESLOW_CONSUMER:
        return true;
    default:
        return false;
    }
}

void ck_drain_events(herald_client *c, int max)
{
    for (int i = 0; c && i < max && herald_client_fd(c) >= 0; i++) {
        herald_event *ev = NULL;
        if (herald_client_next_event(c, 0, &ev) != 0)
            return;
        herald_event_free(ev);
    }
}

int ck_parse_opts(int argc, char **argv, ck_opt *opts, const char *usage)
{
    for (int i = 0; i < argc; i++) {
        ck_opt *o = NULL;
        for (ck_opt *p = opts; p->name; p++)
            if (strcmp(p->name, argv[i]) == 0)
                o = p;
        if (!o) {
            fprintf(stderr, "herald-checker: unknown option '%s'\n%s", argv[i], usage);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "herald-checker: %s needs a value\n%s", argv[i], usage);
            return 2;
        }
        *o->val = argv[++i];
    }
    return 0;
}

int ck_parse_num(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (!s || *s < '0' || *s > '9' || errno || *end || v < min || v > max) {
        fprintf(stderr, "herald-checker: %s must be an integer in [%llu, %llu], not '%s'\n",
                name, (unsigned long long)min, (unsigned long long)max, s ? s : "");
        return 2;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (herald_token_init() != 0) {
        fprintf(stderr, "herald-checker: libsodium failed to initialise\n");
        return 2;
    }
    if (argc >= 2 && strcmp(argv[1], "write") == 0)
        return ck_write_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return ck_verify_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "flood") == 0)
        return ck_flood_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "reach") == 0)
        return ck_reach_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "quorum") == 0)
        return ck_quorum_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "bigflood") == 0)
        return ck_bigflood_main(argc - 2, argv + 2);
    fputs(usage_text, stderr);
    return 2;
}
