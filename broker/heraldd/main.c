/*
 * heraldd — the Herald broker daemon.
 *
 *   heraldd dev --data DIR [--listen HOST:PORT] [options]
 *       Everything in one process on loopback: LMDB store under DIR, the
 *       gateway on HOST:PORT (default 127.0.0.1:7400). On first start it
 *       creates tenant "demo"; every start writes DIR/dev.env with
 *       HERALD_GATEWAY, HERALD_TENANT and HERALD_SECRET. SIGTERM/SIGINT stop
 *       it cleanly: queued commands are committed and acknowledged first.
 */
#include <errno.h>
#include <fcntl.h>
#include <ev.h>
#include <herald/error.h>
#include <herald/protocol.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "cmd.h"
#include "gw.h"
#include "log.h"
#include "store.h"
#include "token.h"

#define DEV_TENANT "demo"

static const char usage_text[] =
    "usage: heraldd dev --data DIR [--listen HOST:PORT] [--max-frame BYTES]\n"
    "                   [--out-cap BYTES] [--rate REQ_PER_S] [--idle-ms MS]\n"
    "                   [--log-level debug|info|warn|error] [--no-sync]\n"
    "       heraldd --version | --help\n";

/* Options of `heraldd dev`. */
typedef struct dev_opts {
    const char *data;      /* data directory */
    gw_config gw;          /* gateway settings */
    bool no_sync;          /* skip fsync (benchmarks of the CPU path only) */
} dev_opts;

/* Parses an unsigned decimal in [min, max]; false on junk or range. */
static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_dev(int argc, char **argv, dev_opts *o)
{
    static const struct {
        const char *name; /* option */
        uint64_t min;     /* bounds */
        uint64_t max;
    } nums[] = {{"--max-frame", 1024, 64u << 20},
                {"--out-cap", 4096, 1ull << 32},
                {"--rate", 1, 10000000},
                {"--idle-ms", 100, 86400000}};
    gw_config_defaults(&o->gw);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        size_t k;
        if (strcmp(a, "--no-sync") == 0) {
            o->no_sync = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "heraldd: %s needs a value\n%s", a, usage_text);
            return 2;
        }
        i++;
        if (strcmp(a, "--data") == 0) {
            o->data = v;
        } else if (strcmp(a, "--listen") == 0) {
            o->gw.listen = v;
        } else if (strcmp(a, "--log-level") == 0) {
            log_level l;
            if (log_level_parse(v, &l) != 0) {
                fprintf(stderr, "heraldd: --log-level: unknown level '%s'\n", v);
                return 2;
            }
            log_set_level(l);
        } else {
            for (k = 0; k < sizeof nums / sizeof nums[0]; k++)
                if (strcmp(a, nums[k].name) == 0)
                    break;
            if (k == sizeof nums / sizeof nums[0]) {
                fprintf(stderr, "heraldd: unknown option '%s'\n%s", a, usage_text);
                return 2;
            }
            if (!parse_u64(v, nums[k].min, nums[k].max, &n)) {
                fprintf(stderr, "heraldd: %s: '%s' is not a number in [%llu, %llu]\n",
                        a, v, (unsigned long long)nums[k].min,
                        (unsigned long long)nums[k].max);
                return 2;
            }
            if (k == 0)
                o->gw.max_frame = (uint32_t)n;
            else if (k == 1)
                o->gw.out_cap = (size_t)n;
            else if (k == 2)
                o->gw.rate = (uint32_t)n, o->gw.burst = (uint32_t)(n * 2);
            else
                o->gw.idle_ms = (uint32_t)n;
        }
    }
    if (!o->data) {
        fprintf(stderr, "heraldd: --data DIR is required\n%s", usage_text);
        return 2;
    }
    return 0;
}

/* Creates tenant "demo" with a fresh secret unless it exists; fills secret. */
static int ensure_dev_tenant(store *st, uint8_t secret[TOKEN_SECRET_LEN])
{
    store_tenant t;
    char hex[TOKEN_SECRET_HEX + 1];
    herald_buf b = {0};
    apply_result res = {0};
    const uint8_t *cmdp;
    size_t len;
    int rc = store_tenant_get(st, herald_str_z(DEV_TENANT), &t);

    if (rc == 0) {
        memcpy(secret, t.secret, TOKEN_SECRET_LEN);
        return 0;
    }
    if (rc != HERALD_ENOT_FOUND)
        return rc;
    token_secret_generate(secret);
    token_secret_to_hex(secret, hex);
    cmd k = {.op = CMD_TENANT_CREATE, .tenant = herald_str_z(DEV_TENANT),
             .secret = herald_str_z(hex)};
    rc = cmd_encode(&k, &b);
    if (rc)
        return rc;
    cmdp = b.data;
    len = b.len;
    rc = apply_batch(st, &cmdp, &len, 1, store_applied(st) + 1, &res);
    if (rc == 0)
        rc = res.err;
    apply_result_free(&res);
    herald_buf_free(&b);
    if (rc == 0)
        log_info("dev.tenant", "created tenant %s", DEV_TENANT);
    return rc;
}

/* Writes DIR/dev.env atomically (0600: it holds the tenant secret). */
static int write_env(const char *dir, const char *host, uint16_t port,
                     const uint8_t secret[TOKEN_SECRET_LEN])
{
    char path[PATH_MAX], tmp[PATH_MAX], hex[TOKEN_SECRET_HEX + 1];
    FILE *f;
    int fd;

    token_secret_to_hex(secret, hex);
    if (snprintf(path, sizeof path, "%s/dev.env", dir) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/.dev.env.tmp", dir) >= (int)sizeof tmp)
        return HERALD_EINVAL;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        if (fd >= 0)
            close(fd);
        return HERALD_EIO;
    }
    fprintf(f, "HERALD_GATEWAY=%s:%u\nHERALD_TENANT=%s\nHERALD_SECRET=%s\n", host,
            port, DEV_TENANT, hex);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return HERALD_EIO;
    }
    fclose(f);
    return rename(tmp, path) == 0 ? 0 : HERALD_EIO;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    log_info("dev.signal", "signal %d: shutting down", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

static int run_dev(int argc, char **argv)
{
    dev_opts o = {0};
    store_config sc = {0};
    store *st = NULL;
    gw *g = NULL;
    struct ev_loop *loop = EV_DEFAULT;
    ev_signal sigterm, sigint;
    uint8_t secret[TOKEN_SECRET_LEN];
    char host[256];
    const char *colon;
    int rc = parse_dev(argc, argv, &o);

    if (rc)
        return rc;
    if (herald_token_init() != 0) {
        fprintf(stderr, "heraldd: libsodium failed to initialise\n");
        return 1;
    }
    if (mkdir(o.data, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "heraldd: cannot create %s: %s\n", o.data, strerror(errno));
        return 1;
    }
    sc.dir = o.data;
    sc.no_sync = o.no_sync;
    rc = store_open(&sc, &st);
    if (rc) {
        fprintf(stderr, "heraldd: cannot open store in %s: %s\n", o.data,
                herald_strerror(rc));
        return 1;
    }
    rc = ensure_dev_tenant(st, secret);
    if (rc) {
        fprintf(stderr, "heraldd: cannot create tenant: %s\n", herald_strerror(rc));
        goto close_store;
    }
    rc = gw_create(&o.gw, loop, st, &g);
    if (rc) {
        fprintf(stderr, "heraldd: cannot listen on %s: %s (%s)\n", o.gw.listen,
                herald_strerror(rc), strerror(errno));
        goto close_store;
    }
    colon = strrchr(o.gw.listen, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - o.gw.listen), o.gw.listen);
    rc = write_env(o.data, host, gw_port(g), secret);
    if (rc) {
        fprintf(stderr, "heraldd: cannot write %s/dev.env\n", o.data);
        goto destroy_gw;
    }
    signal(SIGPIPE, SIG_IGN);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    log_info("dev.ready", "heraldd dev ready: gateway %s:%u, data %s, tenant %s", host,
             gw_port(g), o.data, DEV_TENANT);
    ev_run(loop, 0);
    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sigint);
destroy_gw:
    gw_destroy(g);
close_store:
    store_close(st);
    log_info("dev.stop", "stopped");
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "dev") == 0)
        return run_dev(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("heraldd %s (protocol %u)\n", HERALD_VERSION, HERALD_PROTOCOL_VERSION);
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        return 0;
    }
    fputs(usage_text, stderr);
    return 2;
}
