/*
 * svc.h — the request service: every request handler and the multi-step
 * jobs (mass messages, app messages, customer transfer, contacts), behind
 * one entry point that any transport drives.
 *
 * A request is a verified session (or a HELLO that will verify one), a
 * decoded frame and a reply sink. The service answers through the sink
 * (frames, a close) and calls its done exactly once, when the request and
 * every command it submitted are finished; the transport keeps the sink's
 * context and the session alive until then. Who runs it:
 *   - `heraldd dev`: the session tier's connections (the sink is the
 *     connection); the backend is a group-commit writer per store;
 *   - `heraldd node`: requests forwarded by gateways (the sink appends to
 *     the nng reply); the backend is the node's raft groups.
 * The service never publishes: pushes are events of the replica layer,
 * made from each applied command wherever it is applied.
 *
 * Commands are answered only once durable (dev: the writer's batch is
 * synced; node: the raft entry is committed and applied here). Reads come
 * from short LMDB read transactions on this process's stores.
 *
 * Threads: the loop thread given to svc_create, for everything.
 */
#ifndef HERALD_SVC_H
#define HERALD_SVC_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apply.h"
#include "session.h"
#include "store.h"

struct ev_loop;
struct json_w;
typedef struct svc svc;

/* The heartbeat WELCOME advertises where no gateway.hb_ms is known (the
 * gateway process enforces its own idle timeout). */
#define SVC_HB_MS_DEFAULT 30000u

/* Event callbacks (cbdeliver.c): the deliverer runs on the groups this
 * process leads. Zero fields take the defaults of cbsign.h. */
typedef struct svc_cb_config {
    bool on;               /* run the deliverer (dev and node: yes) */
    uint32_t max_attempts; /* callback.max_attempts: attempts before an event fails */
    uint32_t backoff_ms;   /* callback.backoff_ms: the first retry's wait (doubles) */
    uint32_t timeout_ms;   /* callback.timeout_ms: one POST's deadline */
    uint32_t offline_wait_ms; /* callback.offline_wait_ms: how long a message's
                                 offline reports are gathered at most (0: 1000) */
} svc_cb_config;

typedef struct svc_config {
    uint32_t max_frame;    /* the clients' frame cap: replies are cut to fit it */
    uint32_t hb_ms;        /* heartbeat interval advertised in WELCOME */
    svc_cb_config cb;      /* event callbacks */
} svc_config;

/* The deliverer's counters (this process, since it started). */
typedef struct svc_cb_stats {
    uint64_t attempts;     /* POSTs finished */
    uint64_t failures;     /* … answered non-2xx, timed out or refused */
    uint64_t delivered;    /* … acknowledged (2xx) */
    uint64_t gave_up;      /* events marked failed after the last attempt */
    uint32_t inflight;     /* POSTs in flight now */
    uint32_t apps;         /* callbacks known */
} svc_cb_stats;
/* Zeros when the deliverer is off. Loop thread. */
void svc_cb_stats_get(const svc *s, svc_cb_stats *out);

/* Where replies to one request go. All run on the loop thread. */
typedef struct svc_sink {
    void *ctx;
    /* Queues a reply frame (encoded by the callee). 0, or HERALD_ECLOSED
     * when the requester is gone (the service then sends nothing more). */
    int (*send)(void *ctx, const herald_frame *f);
    /* Sends ERROR(code, text) and ends the requester's connection. */
    void (*fail)(void *ctx, int code, const char *text);
    /* HELLO verified: the session handed with the request is filled and
     * authed; the transport starts it (presence, timers). 0, or an error
     * (the service then fails the connection with it). NULL: nothing to do. */
    int (*started)(void *ctx);
    /* The request is over: nothing more is sent through this sink. */
    void (*done)(void *ctx);
    /* For logs: who asked ("conn 7 127.0.0.1:5012", "gateway 1"). */
    const char *origin;
} svc_sink;

/* How the service's commands are applied, and what it asks of the
 * process. All hooks run on the loop thread. */
typedef struct svc_backend {
    void *ctx;
    /* Required. Takes *cmd on success (0) and later calls
     * svc_applied(s, cookie, res) exactly once, once the command is durable
     * and applied to this process's store of that group; on error (BUSY: the
     * group's queue is full, not applied) *cmd is untouched. */
    int (*submit)(void *ctx, uint32_t group, herald_buf *cmd, void *cookie);
    /* True when this process leads the group (it runs the periodic
     * commands: urgent reminders, due takeovers). NULL: always. */
    bool (*leads)(void *ctx, uint32_t group);
    /* The node id leading a group (0 unknown), for conversation info.
     * NULL: 0. */
    uint32_t (*leader)(void *ctx, uint32_t group);
    /* Required. Writes the STATUS document (admin status). */
    void (*status)(void *ctx, struct json_w *w);
    /* The session tiers (gateway ids) live for this process now, at most
     * cap of them into ids: whose offline reports decide a message before
     * callback.offline_wait_ms (svc_offline). NULL: the process is the only
     * tier (dev), and each report is the whole answer. */
    uint32_t (*gateways)(void *ctx, uint32_t *ids, uint32_t cap);
} svc_backend;

/* Creates the service over n open stores, one per shard group (stores[i]
 * holds group i; stores[0] also holds the tenants; borrowed). be is copied.
 * 0, HERALD_EINVAL (store groups not 0..n-1, n 0, a required hook
 * missing), HERALD_ENOMEM. */
int svc_create(const svc_config *cfg, struct ev_loop *loop, store *const *stores, uint32_t n,
               const svc_backend *be, svc **out);

/* Runs one request. sess (read; HELLO and DND write it) and the sink's
 * context stay valid until sink->done; f is only read during the call. */
void svc_request(svc *s, session *sess, herald_frame *f, const svc_sink *sink);

/* The session a token opens, verified with its tenant's secret and, when
 * now (Unix seconds) is not 0, its expiry — what HELLO does, for transports
 * that send a token with every request (the open API). Fills *out (authed,
 * tenant, user, admin, do-not-disturb). 0, HERALD_EUNAUTHORIZED, HERALD_EEXPIRED,
 * HERALD_ESTORAGE. */
int svc_session_of(svc *s, const char *tok, size_t len, uint64_t now, session *out);

/* A submitted command's outcome (see svc_backend.submit). */
void svc_applied(svc *s, void *cookie, apply_result *res);

/* `message.offline` (service/offline.c): a session tier's report of the
 * messages it pushed — per message (convs[i], seqs[i]) which counts[i] of
 * the recipients it had no session of (users, report after report; the
 * sender is never among them). Every message of a report is in `group`.
 * Borrowed for the call. */
typedef struct svc_offline_report {
    uint32_t gateway;          /* the reporting tier: gateway id (dev: 0) */
    uint32_t group;            /* the messages' shard group */
    herald_str tenant;
    uint32_t n;                /* messages */
    const herald_str *convs;
    const uint64_t *seqs;
    const uint64_t *counts;    /* add up to n_users */
    uint32_t n_users;
    const herald_str *users;
} svc_offline_report;

/* Takes a report on the group's leader: each message waits for the other
 * live tiers' reports (svc_backend.gateways) or callback.offline_wait_ms,
 * then the users no reporting tier had online are proposed in an OFFLINE
 * command (batched). 0 (taken; over the memory bound some messages are
 * dropped and counted), HERALD_ENOT_LEADER (this process does not lead
 * group), HERALD_EINVAL (counts do not add up, bad ids). */
int svc_offline(svc *s, const svc_offline_report *r);

/* The aggregator's counters (this process, since it started). */
typedef struct svc_offline_stats {
    uint64_t reports;      /* reports taken */
    uint64_t messages;     /* messages in them */
    uint64_t late;         /* … decided already, or reported twice by one tier */
    uint64_t timed_out;    /* messages decided at the window's end (a live tier
                              did not report) */
    uint64_t dropped;      /* messages given up (memory bound, submit failed) */
    uint64_t proposed;     /* OFFLINE commands submitted */
    uint64_t failed;       /* … refused by apply */
    uint64_t events;       /* message.offline events they recorded */
    uint64_t ignored;      /* users apply left out (gone, not members) */
    uint32_t pending;      /* messages held now (aggregating or remembered) */
} svc_offline_stats;
void svc_offline_stats_get(const svc *s, svc_offline_stats *out);

/* A command applied here recorded callback events (res->outbox_events) in
 * its group: this process's deliverer, if it leads the group, looks now
 * rather than at its next poll. Loop thread. */
void svc_outbox_written(svc *s, uint32_t group);

/* The cluster's slot → group map (HERALD_SLOTS bytes, from the meta group)
 * replaces the default formula for routing. Every entry must be < the
 * number of groups (else HERALD_EINVAL, map ignored). */
int svc_set_slotmap(svc *s, const uint8_t *map);

/* Frees the service. Every submitted command must have been answered
 * (svc_applied) before: the backend drains or fails them first. NULL-safe. */
void svc_destroy(svc *s);

#endif
