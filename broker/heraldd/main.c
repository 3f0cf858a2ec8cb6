/*
 * heraldd — the Herald broker daemon.
 *
 *   heraldd dev --data DIR [--listen HOST:PORT] [options]
 *       Everything in one process on loopback: LMDB store under DIR, the
 *       gateway on HOST:PORT (default 127.0.0.1:7400). On first start it
 *       creates tenant "demo"; every start writes DIR/dev.env with
 *       HERALD_GATEWAY, HERALD_TENANT and HERALD_SECRET (and HERALD_WS, the
 *       WebSocket URL, when gateway.ws_listen is on; HERALD_MQTT, when
 *       gateway.mqtt_listen is). SIGTERM/SIGINT stop
 *       it cleanly: queued commands are committed and acknowledged first.
 *
 *   heraldd node --config FILE      a cluster node (see cluster.h, nodecfg.h)
 *   heraldd gateway --config FILE   a cluster gateway
 *   heraldd digest --data DIR       digests of a stopped node's group stores
 */
#include <errno.h>
#include <fcntl.h>
#include <ev.h>
#include <herald/error.h>
#include <herald/protocol.h>
#include <limits.h>
#include <nng/nng.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "cluster.h"
#include "cmd.h"
#include "devcfg.h"
#include "envfile.h"
#include "shutdown.h"
#include "dev.h"
#include "drain.h"
#include "log.h"
#include "obs.h"
#include "sockclose.h"
#include "store.h"
#include "token.h"


static const char usage_text[] =
    "usage: heraldd dev --data DIR [--config FILE] [--listen HOST:PORT] [--max-frame BYTES]\n"
    "                   [--out-cap BYTES] [--rate REQ_PER_S] [--idle-ms MS]\n"
    "                   [--ws-listen HOST:PORT|''] [--http-listen HOST:PORT|'']\n"
    "                   [--mqtt-listen HOST:PORT|'']\n"
    "                   [--log-level debug|info|warn|error] [--no-sync] [--tenants a,b]\n"
    "       heraldd node --config FILE      a cluster node (raft replica of every group)\n"
    "       heraldd gateway --config FILE   a cluster gateway (client connections)\n"
    "       heraldd digest --data DIR       group store digests of a stopped node\n"
    "       heraldd upgrade-data --data DIR store format 1 to 2 (stopped dev or node data)\n"
    "       heraldd sample-config [dev|node|gateway]   every key with its default\n"
    "       heraldd --version | --help\n";

/* Command-line flags and the configuration keys they set. */
static const struct {
    const char *flag; /* --flag VALUE */
    const char *key;  /* configuration key */
} flag_keys[] = {
    {"--data", "store.data"},           {"--listen", "gateway.listen"},
    {"--max-frame", "gateway.max_frame"}, {"--out-cap", "gateway.out_cap"},
    {"--rate", "gateway.rate"},         {"--idle-ms", "gateway.idle_ms"},
    {"--log-level", "log.level"},       {"--tenants", "dev.tenants"},
    {"--ws-listen", "gateway.ws_listen"}, {"--http-listen", "gateway.http_listen"},
    {"--mqtt-listen", "gateway.mqtt_listen"},
};

/* Defaults, then --config FILE, then flags (flags win). */
static int parse_dev(int argc, char **argv, dev_config *o)
{
    char err[512];
    log_level lvl;

    cfg_defaults(devcfg_keys, devcfg_nkeys, o);
    for (int i = 0; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 &&
            cfg_load(devcfg_keys, devcfg_nkeys, o, argv[i + 1], err, sizeof err) != 0) {
            fprintf(stderr, "heraldd: %s\n", err);
            return 2;
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *key = NULL;
        if (strcmp(a, "--no-sync") == 0) {
            o->no_sync = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "heraldd: %s needs a value\n%s", a, usage_text);
            return 2;
        }
        i++;
        if (strcmp(a, "--config") == 0)
            continue;
        for (size_t k = 0; k < sizeof flag_keys / sizeof flag_keys[0]; k++)
            if (strcmp(a, flag_keys[k].flag) == 0)
                key = flag_keys[k].key;
        if (!key) {
            fprintf(stderr, "heraldd: unknown option '%s'\n%s", a, usage_text);
            return 2;
        }
        if (cfg_set(devcfg_keys, devcfg_nkeys, o, key, argv[i], err, sizeof err) != 0) {
            fprintf(stderr, "heraldd: %s: %s\n", a, err);
            return 2;
        }
    }
    if (cfg_check_required(devcfg_keys, devcfg_nkeys, o, err, sizeof err) != 0) {
        fprintf(stderr, "heraldd: %s (--data DIR or store.data in --config)\n%s", err,
                usage_text);
        return 2;
    }
    if (log_level_parse(o->log_level, &lvl) != 0) {
        fprintf(stderr, "heraldd: log.level: unknown level '%s'\n", o->log_level);
        return 2;
    }
    log_set_level(lvl);
    return 0;
}


/* Creates tenant `name` with a fresh secret unless it exists; fills secret. */
static int ensure_tenant(store *st, const dev_config *o, const char *name,
                         uint8_t secret[TOKEN_SECRET_LEN])
{
    store_tenant t;
    char hex[TOKEN_SECRET_HEX + 1];
    herald_buf b = {0};
    apply_result res = {0};
    const uint8_t *cmdp;
    size_t len;
    int rc = store_tenant_get(st, herald_str_z(name), &t);

    if (rc == 0) {
        memcpy(secret, t.secret, TOKEN_SECRET_LEN);
        return 0;
    }
    if (rc != HERALD_ENOT_FOUND)
        return rc;
    token_secret_generate(secret);
    token_secret_to_hex(secret, hex);
    cmd k = tenantcfg_command(&o->tenant, name, hex);
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
        log_info("dev.tenant", "created tenant %s", name);
    return rc;
}

/* DIR/groups records the shard count the data was written with: routing
 * depends on it, so a different store.groups on existing data is refused. */
static int check_layout(const char *dir, uint32_t groups)
{
    char path[PATH_MAX];
    unsigned have = 0;
    FILE *f;
    if (snprintf(path, sizeof path, "%s/groups", dir) >= (int)sizeof path)
        return HERALD_EINVAL;
    f = fopen(path, "r");
    if (f) {
        int ok = fscanf(f, "%u", &have) == 1;
        fclose(f);
        if (!ok) {
            fprintf(stderr, "heraldd: %s is unreadable\n", path);
            return HERALD_ESTORAGE;
        }
        if (have != groups) {
            fprintf(stderr,
                    "heraldd: store.groups: the data in %s was written with %u groups, not %u "
                    "(resharding is not supported)\n",
                    dir, have, groups);
            return HERALD_EINVAL;
        }
        return 0;
    }
    f = fopen(path, "w");
    if (!f || fprintf(f, "%u\n", groups) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        if (f)
            fclose(f);
        return HERALD_EIO;
    }
    fclose(f);
    return 0;
}

/* Writes DIR/NAME with the variables a client needs (envfile.h). */
static int write_env(const char *dir, const char *name, const char *host, const dev *g,
                     uint16_t http_port, bool http_tls, const char *tenant,
                     const uint8_t secret[TOKEN_SECRET_LEN])
{
    char hex[TOKEN_SECRET_HEX + 1], text[1400], ws[320] = "", mq[300] = "", http[320] = "";
    uint16_t wsport = dev_ws_port(g), mqport = dev_mqtt_port(g);

    token_secret_to_hex(secret, hex);
    /* The WebSocket URL on the same host as the client port. */
    if (wsport)
        snprintf(ws, sizeof ws, "HERALD_WS=%s://%s:%u/ws\n", dev_tls(g) ? "wss" : "ws", host,
                 wsport);
    /* The MQTT listener as bound (port 0 picks one) on the same host. */
    if (mqport)
        snprintf(mq, sizeof mq, "HERALD_MQTT=%s:%u\n", host, mqport);
    /* The operators' HTTP endpoints (gateway.http_listen's host). */
    if (http_port)
        snprintf(http, sizeof http, "HERALD_HTTP=%s://%s:%u\n", http_tls ? "https" : "http",
                 host, http_port);
    if (snprintf(text, sizeof text,
                 "HERALD_GATEWAY=%s:%u\nHERALD_TENANT=%.*s\nHERALD_SECRET=%s\n%s%s%s", host,
                 dev_port(g), (int)TOKEN_ID_MAX, tenant, hex, ws, mq, http) >= (int)sizeof text)
        return HERALD_EINVAL;
    return envfile_write(dir, name, text);
}



/* The HTTP port of `heraldd dev`: its metrics and the open API's. */
typedef struct dev_http {
    dev *g;
    api *a;
    const drain *dr; /* draining: not ready */
} dev_http;

static bool dh_ready(void *ctx, char *why, size_t whylen)
{
    dev_http *dh = ctx;
    if (drain_active(dh->dr)) {
        snprintf(why, whylen, "draining: the process is stopping");
        return false;
    }
    return dev_ready(dh->g, why, whylen);
}

static void dh_metrics(void *ctx, prom_w *w)
{
    dev_http *dh = ctx;
    dev_metrics(dh->g, w);
    api_metrics(dh->a, w);
}

static bool dh_route(void *ctx, http_exchange *x, const http_req *rq, const uint8_t *body,
                     size_t n)
{
    return api_route(ctx, x, rq, body, n);
}

static int run_dev(int argc, char **argv)
{
    dev_config o;
    gw_config gc;
    store_config sc = {0};
    store *stores[64] = {0};
    uint32_t opened = 0;
    dev *g = NULL;
    obs *ob = NULL;
    api *oapi = NULL;
    dev_http dh = {0};
    uint16_t http_port = 0;
    struct ev_loop *loop = EV_DEFAULT;
    drain dr = {0};
    char tenants[TENANTCFG_MAX][TOKEN_ID_MAX + 1];
    uint8_t secrets[TENANTCFG_MAX][TOKEN_SECRET_LEN];
    int n_tenants;
    char host[256];
    const char *colon;
    int rc = parse_dev(argc, argv, &o);

    if (rc)
        return rc;
    if (herald_token_init() != 0) {
        fprintf(stderr, "heraldd: libsodium failed to initialise\n");
        return 1;
    }
    devcfg_gateway(&o, &gc);
    if (mkdir(o.data, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "heraldd: cannot create %s: %s\n", o.data, strerror(errno));
        return 1;
    }
    if (check_layout(o.data, o.groups) != 0)
        return 1;
    sc.no_sync = o.no_sync;
    sc.map_size = (size_t)o.map_size;
    for (; opened < o.groups; opened++) {
        char gdir[PATH_MAX];
        snprintf(gdir, sizeof gdir, "%s/g%u", o.data, opened);
        sc.dir = gdir;
        sc.group = opened;
        rc = store_open(&sc, &stores[opened]);
        if (rc) {
            fprintf(stderr, "heraldd: cannot open store in %s: %s\n", gdir,
                    herald_strerror(rc));
            goto close_store;
        }
    }
    n_tenants = tenantcfg_split(o.tenants, tenants);
    if (n_tenants == 0) {
        fprintf(stderr, "heraldd: dev.tenants: a comma-separated list of tenant ids\n");
        rc = HERALD_EINVAL;
        goto close_store;
    }
    for (int i = 0; i < n_tenants; i++) {
        rc = ensure_tenant(stores[0], &o, tenants[i], secrets[i]);
        if (rc) {
            fprintf(stderr, "heraldd: cannot create tenant %s: %s\n", tenants[i],
                    herald_strerror(rc));
            goto close_store;
        }
    }
    {
        svc_cb_config cb = {.on = true, .max_attempts = o.cb.max_attempts,
                            .backoff_ms = o.cb.backoff_ms, .timeout_ms = o.cb.timeout_ms,
                            .offline_wait_ms = o.cb.offline_wait_ms};
        rc = dev_start(&gc, &cb, loop, stores, o.groups, &g);
    }
    if (rc) {
        fprintf(stderr, "heraldd: cannot listen on %s%s%s%s%s: %s (%s)\n", gc.listen,
                gc.ws_listen && gc.ws_listen[0] ? " / WebSocket " : "",
                gc.ws_listen ? gc.ws_listen : "",
                gc.mqtt_listen && gc.mqtt_listen[0] ? " / MQTT " : "",
                gc.mqtt_listen ? gc.mqtt_listen : "", herald_strerror(rc), strerror(errno));
        goto close_store;
    }
    if (o.gw.http_tls && !o.gw.tls_cert[0]) {
        fprintf(stderr, "heraldd: gateway.http_tls needs gateway.tls_cert\n");
        rc = HERALD_EINVAL;
        goto destroy_gw;
    }
    if (o.gw.http_listen[0]) {
        obs_source os = {.ctx = &dh, .process = "dev", .metrics = dh_metrics,
                         .ready = dh_ready, .route = dh_route};
        const char *hc = strrchr(o.gw.http_listen, ':');
        api_config ac = {.rate = o.gw.api_rate, .burst = o.gw.api_burst,
                         .console_dir = o.gw.console_dir, .max_frame = gc.max_frame};
        api_backend ab = {.ctx = g, .request = dev_api_request};
        os.tls_cert = o.gw.http_tls ? o.gw.tls_cert : NULL;
        rc = api_create(&ac, loop, &ab, &oapi);
        if (rc) {
            fprintf(stderr, "heraldd: gateway.console_dir: %s is not a directory\n",
                    o.gw.console_dir);
            goto destroy_gw;
        }
        dh = (dev_http){.g = g, .a = oapi, .dr = &dr};
        os.route_ctx = oapi;
        rc = obs_create(o.gw.http_listen, loop, &os, &ob);
        if (rc || !hc) {
            fprintf(stderr, "heraldd: gateway.http_listen: cannot listen on %s: %s (%s)\n",
                    o.gw.http_listen, herald_strerror(rc), strerror(errno));
            rc = rc ? rc : HERALD_EINVAL;
            goto destroy_gw;
        }
        http_port = obs_port(ob);
    }
    colon = strrchr(gc.listen, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - gc.listen), gc.listen);
    /* One env file per tenant, then dev.env (the first tenant) last: its
     * appearance tells scripts the server is ready. */
    for (int i = 0; i < n_tenants && rc == 0; i++) {
        char name[TOKEN_ID_MAX + 16];
        snprintf(name, sizeof name, "tenant-%.*s.env", (int)TOKEN_ID_MAX, tenants[i]);
        rc = write_env(o.data, name, host, g, http_port, o.gw.http_tls, tenants[i], secrets[i]);
    }
    if (rc == 0)
        rc = write_env(o.data, "dev.env", host, g, http_port, o.gw.http_tls, tenants[0],
                       secrets[0]);
    if (rc) {
        fprintf(stderr, "heraldd: cannot write the env files in %s\n", o.data);
        goto destroy_gw;
    }
    signal(SIGPIPE, SIG_IGN);
    {
        /* Every client is a descriptor: take the hard limit. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    drain_start(&dr, loop, o.gw.drain_ms, "dev");
    log_info("dev.ready", "heraldd dev ready: gateway %s:%u, data %s, tenants %s", host,
             dev_port(g), o.data, o.tenants);
    ev_run(loop, 0);
    drain_stop(&dr);
destroy_gw:
    obs_destroy(ob);
    api_destroy(oapi);
    dev_stop(g);
close_store:
    for (uint32_t i = 0; i < opened; i++)
        store_close(stores[i]);
    log_info("dev.stop", "stopped");
    return rc ? 1 : 0;
}

/* `heraldd node|gateway --config FILE`: defaults, the file, checks. */
static int load_cluster_config(const char *what, int argc, char **argv, const cfg_key *keys,
                               size_t nkeys, void *target, char *level, size_t levellen)
{
    char err[512];
    log_level lvl;

    if (argc != 2 || strcmp(argv[0], "--config") != 0) {
        fprintf(stderr, "usage: heraldd %s --config FILE\n", what);
        return 2;
    }
    cfg_defaults(keys, nkeys, target);
    if (cfg_load(keys, nkeys, target, argv[1], err, sizeof err) != 0 ||
        cfg_check_required(keys, nkeys, target, err, sizeof err) != 0) {
        fprintf(stderr, "heraldd: %s\n", err);
        return 2;
    }
    (void)levellen;
    if (log_level_parse(level, &lvl) != 0) {
        fprintf(stderr, "heraldd: %s: log.level: unknown level '%s'\n", argv[1], level);
        return 2;
    }
    log_set_level(lvl);
    return 0;
}

static int run_node(int argc, char **argv)
{
    static node_config c;
    char err[512];
    int rc = load_cluster_config("node", argc, argv, nodecfg_keys, nodecfg_nkeys, &c,
                                 c.log_level, sizeof c.log_level);
    if (rc)
        return rc;
    if (nodecfg_validate(&c, err, sizeof err) != 0) {
        fprintf(stderr, "heraldd: %s: %s\n", argv[1], err);
        return 2;
    }
    rc = node_run(&c);
    /* nng's own threads finish and its last queued messages are freed
     * (what leak checkers look at; bounded by the shutdown budget) — unless
     * a socket close was abandoned (sockclose.h): nng_fini would wait for it. */
    if (!sock_close_abandoned())
        nng_fini();
    return rc;
}

static int run_gateway(int argc, char **argv)
{
    static gateway_config c;
    char err[512];
    int rc = load_cluster_config("gateway", argc, argv, gwcfg_keys, gwcfg_nkeys, &c,
                                 c.log_level, sizeof c.log_level);
    if (rc)
        return rc;
    if (nodecfg_gateway_validate(&c, err, sizeof err) != 0) {
        fprintf(stderr, "heraldd: %s: %s\n", argv[1], err);
        return 2;
    }
    rc = front_run(&c);
    if (!sock_close_abandoned())
        nng_fini(); /* as for a node */
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "dev") == 0)
        return run_dev(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "node") == 0)
        return run_node(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "gateway") == 0)
        return run_gateway(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "upgrade-data") == 0)
        return upgrade_run(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "digest") == 0)
        return digest_run(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "sample-config") == 0) {
        const char *which = argc >= 3 ? argv[2] : "dev";
        if (strcmp(which, "node") == 0) {
            printf("# Herald node configuration (heraldd node --config FILE). Generated by\n"
                   "# `heraldd sample-config node`: every key with its default.\n\n");
            cfg_write_sample(nodecfg_keys, nodecfg_nkeys, stdout);
        } else if (strcmp(which, "gateway") == 0) {
            printf("# Herald gateway configuration (heraldd gateway --config FILE). Generated\n"
                   "# by `heraldd sample-config gateway`: every key with its default.\n\n");
            cfg_write_sample(gwcfg_keys, gwcfg_nkeys, stdout);
        } else if (strcmp(which, "dev") == 0) {
            printf("# Herald configuration (heraldd dev --config FILE). Generated by\n"
                   "# `heraldd sample-config`: every key with its default.\n\n");
            cfg_write_sample(devcfg_keys, devcfg_nkeys, stdout);
        } else {
            fprintf(stderr, "heraldd: sample-config: dev, node or gateway\n");
            return 2;
        }
        return 0;
    }
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
