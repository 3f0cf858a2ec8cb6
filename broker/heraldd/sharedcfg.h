/*
 * sharedcfg.h — configuration blocks that more than one process of heraldd
 * reads: the settings of tenants a process creates (`tenant.*`, heraldd dev
 * and heraldd node) and a gateway's client limits (`gateway.*`, heraldd dev
 * and heraldd gateway). Each block is a struct embedded in the process's
 * config struct, and a macro that expands to its config.h key entries for
 * that struct, so both tables carry the same keys, bounds, defaults and help.
 */
#ifndef HERALD_HERALDD_SHAREDCFG_H
#define HERALD_HERALDD_SHAREDCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd.h"
#include "config.h"
#include "tier.h"
#include "token.h"

/* Settings of the tenants a process creates (TENANT_CREATE). */
typedef struct tenant_defaults {
    uint64_t recall_window;   /* tenant.recall_window_s */
    uint32_t urgent_interval; /* tenant.urgent_interval_s */
    uint32_t urgent_max;      /* tenant.urgent_max_reminders */
    bool receipts;            /* tenant.receipts */
    uint32_t app_dedup;       /* tenant.app_dedup_s */
    uint32_t app_freq;        /* tenant.app_freq_per_min */
    uint32_t customer_limit;  /* tenant.customer_limit */
    uint32_t transfer_wait;   /* tenant.transfer_wait_s */
    char display_name[129];   /* tenant.display_name ("" = the tenant id) */
} tenant_defaults;

#define SHAREDCFG_K_(T, M, S, name, type, field, min, max, def, help)                     \
    {name, type, offsetof(T, M) + offsetof(S, field), sizeof(((S *)0)->field), min, max, def, \
     help}

/* The tenant.* keys of config struct T whose tenant_defaults member is M. */
#define TENANTCFG_KEYS(T, M)                                                                 \
    SHAREDCFG_K_(T, M, tenant_defaults, "tenant.recall_window_s", CFG_U64, recall_window, 1, \
                 14u * 86400, "86400",                                                       \
                 "how long a sender may recall a message (tenants created from now on)"),    \
    SHAREDCFG_K_(T, M, tenant_defaults, "tenant.urgent_interval_s", CFG_U32, urgent_interval, \
                 1, 86400, "300",                                                            \
                 "seconds between reminders of an unconfirmed urgent (DING) message"),      \
    SHAREDCFG_K_(T, M, tenant_defaults, "tenant.urgent_max_reminders", CFG_U32, urgent_max, 1, \
                 100, "3", "reminders before the sender is told to escalate (SMS / phone hook)"), \
    SHAREDCFG_K_(T, M, tenant_defaults, "tenant.receipts", CFG_BOOL, receipts, 0, 0, "true",  \
                 "read receipts (who has read) for tenants created from now on"),           \
    SHAREDCFG_K_(T, M, tenant_defaults, "tenant.app_dedup_s", CFG_U32, app_dedup, 1, 14400,  \
                 "1800",                                                                     \
                 "app messages: the same app and message id again within this many seconds " \
                 "is a duplicate (a request may ask for up to 14400)"),                       \
    SHAREDCFG_K_(T, M, tenant_defaults, "tenant.app_freq_per_min", CFG_U32, app_freq, 1,     \
                 100000, "30",                                                               \
                 "app messages one member may get from one app per minute; more are refused"), \
    SHAREDCFG_K_(T, M, tenant_defaults, "tenant.customer_limit", CFG_U32, customer_limit, 1, \
                 1000000, "50000",                                                           \
                 "customers one employee may own; a transfer to an employee at it is refused"), \
    SHAREDCFG_K_(T, M, tenant_defaults, "tenant.transfer_wait_s", CFG_U32, transfer_wait, 1, \
                 30u * 86400, "86400",                                                       \
                 "in-service customer transfer: seconds the customer may object before the " \
                 "takeover"),                                                                \
    SHAREDCFG_K_(T, M, tenant_defaults, "tenant.display_name", CFG_STR, display_name, 0, 0,  \
                 "",                                                                         \
                 "the enterprise's name in certified identities and employee cards of the "  \
                 "tenants created from now on (empty: the tenant id)")

#define TENANTCFG_MAX 16 /* tenants in dev.tenants / cluster.tenants */

/* Splits a tenant list ("demo,acme") into ids: the count, or 0 when an id
 * is invalid or there are more than TENANTCFG_MAX. */
int tenantcfg_split(const char *list, char out[][TOKEN_ID_MAX + 1]);

/* The TENANT_CREATE command for tenant `name` with secret `hex` (64 hex
 * characters); both strings are borrowed by the command. */
cmd tenantcfg_command(const tenant_defaults *d, const char *name, const char *hex);

/* A gateway's client-facing limits. */
typedef struct gw_limits {
    char listen[256];      /* gateway.listen */
    uint32_t max_frame;    /* gateway.max_frame */
    uint32_t rate;         /* gateway.rate: requests/s per connection */
    uint64_t out_cap;      /* gateway.out_cap */
    uint32_t hello_ms;     /* gateway.hello_ms */
    uint32_t idle_ms;      /* gateway.idle_ms */
    uint32_t max_conns;    /* gateway.max_conns */
    char tls_cert[1024];   /* gateway.tls_cert: the client port's certificate + key */
    uint64_t byte_rate;    /* gateway.byte_rate: frame bytes/s per connection */
    char ws_listen[256];   /* gateway.ws_listen: WebSocket HOST:PORT ("" off) */
    char ws_origins[1024]; /* gateway.ws_origins: Origin allow-list ("" any) */
    char mqtt_listen[256]; /* gateway.mqtt_listen: MQTT 3.1.1 address ("" = off) */
    uint32_t mqtt_sessions; /* gateway.mqtt_sessions: persistent MQTT sessions kept */
    char http_listen[256]; /* gateway.http_listen: /metrics, /healthz, /readyz, /api/v1/ ("" off) */
    uint32_t api_rate;     /* gateway.api_rate: open API calls/s per app or user */
    uint32_t api_burst;    /* gateway.api_burst: their bucket depth */
    char console_dir[512]; /* gateway.console_dir: the admin console's files ("" none) */
    bool http_tls;         /* gateway.http_tls: the HTTP port speaks HTTPS (gateway.tls_cert) */
    uint32_t drain_ms;     /* gateway.drain_ms: SIGTERM → /readyz 503 this long, then stop */
    uint32_t offline_batch_ms; /* gateway.offline_batch_ms: offline reports sent this often */
} gw_limits;

#define GWLIMITS_WS_DEFAULT "127.0.0.1:7401" /* gateway.ws_listen's default */
#define GWLIMITS_MQTT_DEFAULT "127.0.0.1:1883" /* gateway.mqtt_listen's default */
#define GWLIMITS_HTTP_DEFAULT "127.0.0.1:7480" /* gateway.http_listen's default */

/* The gateway.* client keys of config struct T whose gw_limits member is M;
 * FLAG(x) appends the dev command-line flag to a help text (or nothing). */
#define GWLIMITS_KEYS(T, M, FLAG)                                                            \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.listen", CFG_STR, listen, 1, 0, "127.0.0.1:7400",  \
                 "client TCP address HOST:PORT, port 0 picks a free one" FLAG(" (--listen)")), \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.max_frame", CFG_U32, max_frame, 1024, 64u << 20,  \
                 "1048576",                                                                  \
                 "frame payload cap in bytes, checked before allocating" FLAG(" (--max-frame)")), \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.rate", CFG_U32, rate, 1, 10000000, "2000",        \
                 "sustained requests/s per connection, burst twice that" FLAG(" (--rate)")), \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.out_cap", CFG_U64, out_cap, 4096, 1ull << 32, "8M", \
                 "output backlog per connection before SLOW_CONSUMER" FLAG(" (--out-cap)")), \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.hello_ms", CFG_U32, hello_ms, 100, 600000, "10000", \
                 "time from accept to HELLO"),                                               \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.idle_ms", CFG_U32, idle_ms, 100, 86400000, "90000", \
                 "close a connection silent this long; clients ping every third of it"       \
                 FLAG(" (--idle-ms)")),                                                      \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.max_conns", CFG_U32, max_conns, 1, 1000000,       \
                 "10000", "connection cap; more are refused with BUSY"),                      \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.byte_rate", CFG_U64, byte_rate, 1024, 1ull << 34,  \
                 "16M", "frame bytes/s per connection (burst twice that, at least two "      \
                 "frames); excess gets RATE_LIMITED"),                                        \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.tls_cert", CFG_STR, tls_cert, 0, 0, "",            \
                 "PEM file with the client port's certificate (and chain) followed by its "  \
                 "private key; set, the port speaks TLS only (clients dial tls://HOST:PORT), "  \
                 "and so does gateway.ws_listen (wss://)"),                                   \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.ws_listen", CFG_STR, ws_listen, 0, 0,              \
                 GWLIMITS_WS_DEFAULT,                                                        \
                 "WebSocket address HOST:PORT (ws://HOST:PORT/ws, one binary message per "   \
                 "Herald frame); empty = off; left at the default while gateway.listen picks " \
                 "a free port (port 0), it picks one too" FLAG(" (--ws-listen)")),           \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.ws_origins", CFG_STR, ws_origins, 0, 0, "",        \
                 "browser Origins allowed to open a WebSocket, comma-separated, e.g. "      \
                 "https://app.example.com,http://localhost:8080; others get 403; empty = any " \
                 "(clients that send no Origin are always let in)"),                          \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.mqtt_listen", CFG_STR, mqtt_listen, 0, 0,          \
                 GWLIMITS_MQTT_DEFAULT,                                                      \
                 "MQTT 3.1.1 listener HOST:PORT (user name = user id, password = token); "  \
                 "empty = off; with gateway.tls_cert it speaks MQTT over TLS only; left at " \
                 "the default while gateway.listen picks a free port (port 0), it picks one " \
                 "too" FLAG(" (--mqtt-listen)")),                                            \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.mqtt_sessions", CFG_U32, mqtt_sessions, 1,        \
                 10000000, "10000",                                                          \
                 "persistent MQTT sessions (clean session 0) this process keeps in memory; " \
                 "when full the oldest offline one is forgotten"),                             \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.http_listen", CFG_STR, http_listen, 0, 0,          \
                 GWLIMITS_HTTP_DEFAULT,                                                      \
                 "HTTP address HOST:PORT of the open API (/api/v1/), the console (/console/), " \
                 "GET /metrics (Prometheus), /healthz and /readyz; "                         \
                 "plain HTTP, keep it on loopback or a private network; empty = off; left at " \
                 "the default while gateway.listen picks a free port (port 0), it picks one " \
                 "too" FLAG(" (--http-listen)")),                                            \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.api_rate", CFG_U32, api_rate, 1, 1000000, "100",   \
                 "open API (/api/v1/ on gateway.http_listen) calls/s per app or user; more "  \
                 "get 429 RATE_LIMITED"),                                                     \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.api_burst", CFG_U32, api_burst, 1, 10000000, "200", \
                 "open API calls an app or user may make at once before gateway.api_rate "   \
                 "applies"),                                                                  \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.console_dir", CFG_STR, console_dir, 0, 0, "",       \
                 "directory of the admin console's built files, served at /console/ on "     \
                 "gateway.http_listen (common/console/dist after npm run build); empty = no " \
                 "console"),                                                                  \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.http_tls", CFG_BOOL, http_tls, 0, 0, "false",      \
                 "true: gateway.http_listen speaks HTTPS only, with gateway.tls_cert (the "  \
                 "open API and the console over TLS; Prometheus then scrapes https://)"),     \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.drain_ms", CFG_U32, drain_ms, 0, 600000, "0",      \
                 "on SIGTERM keep serving this long with /readyz answering 503 \"draining\" " \
                 "(so a load balancer moves new clients away), then stop; 0 = stop at "     \
                 "once; a second signal stops at once"),                                     \
    SHAREDCFG_K_(T, M, gw_limits, "gateway.offline_batch_ms", CFG_U32, offline_batch_ms, 10, \
                 10000, "50",                                                                \
                 "message.offline: how often this session tier sends the leader of each "   \
                 "group which recipients of the messages it pushed had no session here")

#define SHAREDCFG_FLAG(x) x
#define SHAREDCFG_NOFLAG(x)

/* A gw_config from the limits (its strings point into l). Applies the
 * free-port rule to l->ws_listen and l->http_listen first: at its default
 * while gateway.listen's port is 0, it becomes the listen host with port 0. */
void gwlimits_config(gw_limits *l, gw_config *g);

/* Event callbacks (`callback.*`, heraldd dev and heraldd node): how the
 * deliverer on a group's leader retries (cbsign.h has the schedule). */
typedef struct callback_limits {
    uint32_t max_attempts; /* callback.max_attempts */
    uint32_t backoff_ms;   /* callback.backoff_ms */
    uint32_t timeout_ms;   /* callback.timeout_ms */
    uint32_t offline_wait_ms; /* callback.offline_wait_ms */
} callback_limits;

/* The callback.* keys of config struct T whose callback_limits member is M. */
#define CALLBACKCFG_KEYS(T, M)                                                               \
    SHAREDCFG_K_(T, M, callback_limits, "callback.max_attempts", CFG_U32, max_attempts, 1,  \
                 1000, "23",                                                                 \
                 "POSTs of one event before it is marked failed (visible in `app events`, "  \
                 "sent again by `app redeliver`); 23 with the default backoff: ~6 h"),       \
    SHAREDCFG_K_(T, M, callback_limits, "callback.backoff_ms", CFG_U32, backoff_ms, 10,     \
                 600000, "1000",                                                             \
                 "wait after an event's first failed POST; it doubles after each one, up to " \
                 "30 min"),                                                                  \
    SHAREDCFG_K_(T, M, callback_limits, "callback.timeout_ms", CFG_U32, timeout_ms, 100,    \
                 60000, "5000", "deadline of one callback POST (connect included)"),        \
    SHAREDCFG_K_(T, M, callback_limits, "callback.offline_wait_ms", CFG_U32, offline_wait_ms, \
                 10, 60000, "1000",                                                          \
                 "message.offline: how long a group's leader waits for every live gateway's " \
                 "report of a message before deciding who had no session anywhere")

#endif
