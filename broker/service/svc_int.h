/*
 * svc_int.h — request service internals. Floors, each calling only down:
 *   svc.c       the entry point: dispatch table, authorization, lifecycle,
 *               ticks;
 *   handlers    sync.c, message.c, conv.c (convlist.c), directory.c, and the jobs
 *               mass.c, app.c, transfer.c (message.c uses conv.c's checks);
 *   request.c   replies through the sink, steps (a submitted command and
 *               its completion), routing to the stores.
 * Loop thread only.
 */
#ifndef HERALD_SVC_INT_H
#define HERALD_SVC_INT_H

#include <ev.h>
#include <herald/protocol.h>
#include <stdbool.h>

#include "cmd.h"
#include "session.h"
#include "store.h"
#include "svc.h"
#include "token.h"

#define SVC_MAX_GROUPS 65u /* meta group + up to 64 shard groups */

/* One shard group held by this process. */
typedef struct shard {
    store *st;             /* the group's LMDB store (borrowed) */
    bool remind_busy;      /* a REMIND command is in flight */
    bool xfer_busy;        /* a TRANSFER_DUE command is in flight (group 0) */
} shard;

struct svc {
    svc_config cfg;        /* copy of the configuration */
    struct ev_loop *loop;  /* the loop everything runs on */
    svc_backend be;        /* how commands are applied (zeroed: dev mode) */
    uint8_t slotmap[256];  /* slot → group when has_slotmap (cluster's meta record) */
    bool has_slotmap;      /* else route_conv_group's formula */
    shard *shards;         /* shard groups, index = group id (owned array) */
    uint32_t nshards;      /* number of groups */
    ev_timer tick_w;       /* proposes due reminders and takeovers, every second */
    struct cbd *cb;        /* the event-callback deliverer (NULL: off) */
    struct off_agg *off;   /* offline reports being aggregated (offline.c) */
    bool stopping;         /* svc_destroy in progress */
};

/* One request in the service: alive while its handler runs and while any
 * step or job it started is pending. */
typedef struct svc_req {
    svc *s;
    session *sess;         /* the requester's (borrowed until done) */
    bool admin;            /* runs with the tenant-admin role: the session's, or
                              an app's scope grant (authz_check_as) */
    svc_sink sink;         /* copy */
    int refs;              /* 1 for the handler + 1 per holder */
    bool closed;           /* the requester is gone or was failed */
} svc_req;

/* request.c: replies go through the sink. */
void req_hold(svc_req *rq);
/* Drops a hold; the last one calls sink.done and frees rq. */
void req_release(svc_req *rq);
/* True while replies can still reach the requester. */
bool req_open(const svc_req *rq);
int req_send(svc_req *rq, const herald_frame *f);
/* Sends ERROR(code, text or the code's text, ref). */
int req_error(svc_req *rq, int code, const char *text, uint64_t ref);
/* Sends ERROR and ends the requester's connection. */
void req_fail(svc_req *rq, int code, const char *text);
/* The common part of a command for the authenticated actor. */
cmd req_cmd(const svc_req *rq, uint32_t op);
/* Message bytes a HISTORY/SYNC answer may carry so the frame stays under
 * the frame cap. */
size_t req_reply_budget(const svc_req *rq);
/* The group of conv in the requester's tenant. */
uint32_t req_conv_group(const svc_req *rq, herald_str conv);
/* Checks a client-supplied id before it reaches the store (INVAL
 * "invalid <what> id" to the requester when not). */
bool req_id_ok(svc_req *rq, const herald_frame *f, herald_str id, const char *what);

/* A submitted command and what to do with its outcome. */
typedef struct step step;
typedef void (*step_fn)(step *st, apply_result *res);
struct step {
    svc_req *rq;           /* requester (held), or NULL for the service's own */
    uint64_t rid;          /* request id to echo */
    uint32_t op;           /* cmd op */
    uint32_t group;        /* the group it went to */
    char conv[TOKEN_ID_MAX + 1]; /* conversation (or subject) id */
    step_fn done;          /* runs once with the outcome; then rq is released */
    void *job;             /* the job it belongs to (mass, app, transfer) */
    uint32_t slot;         /* its customer / recipient in the job */
    char a[TOKEN_ID_MAX + 1], b[TOKEN_ID_MAX + 1]; /* two more ids a handler keeps */
};

/* Encodes k and submits it to group for rq; done(step, result) runs once
 * it applied. Returns the step (to fill job/slot/a/b), or NULL when it could
 * not be submitted: then rq got the ERROR. */
step *svc_step(svc_req *rq, uint64_t rid, const cmd *k, uint32_t group, step_fn done);
/* The same for the service's own commands (no requester): NULL on failure. */
step *svc_own_step(svc *s, const cmd *k, uint32_t group, step_fn done);
/* The same for an encoded command (taken, also on failure). */
step *svc_step_buf(svc_req *rq, uint64_t rid, uint32_t op, herald_buf *cmdbuf, const char *conv,
                   uint32_t group, step_fn done);
/* A step's rejected outcome to its requester: ERROR(err, errmsg, rid). */
void step_error(const step *st, const apply_result *res);

/* request.c: hands an encoded command (taken on success) to a group: its
 * writer (dev) or the backend (replicated); done(arg, result) runs once
 * it applied. 0, HERALD_EBUSY (the group's queue is full: not applied),
 * HERALD_ENOMEM. */
int svc_submit(svc *s, uint32_t group, herald_buf *cmdbuf,
               void (*done)(void *arg, apply_result *res), void *arg);

/* request.c: routing and stores. */
uint32_t svc_conv_group(const svc *s, herald_str tenant, herald_str conv);
store *svc_conv_store(const svc *s, herald_str tenant, herald_str conv);
store *svc_meta(const svc *s);

/* conv.c: replies CONV_RESULT for conv or an ERROR. check: only members and
 * admins may see it (false right after the requester changed the
 * membership, e.g. left). */
void conv_info_reply(svc_req *rq, uint64_t rid, herald_str conv, bool check);
/* convlist.c: CONV op "list": one page of the requester's conversations
 * (CONV_RESULT) or an ERROR. */
void conv_list(svc_req *rq, const herald_frame *f);
/* conv.c: whether the requester may read conv (member, or admin); sends the
 * ERROR itself when not. */
bool conv_may_read(svc_req *rq, const herald_frame *f);

/* conv.c: whether conv has an external member now. 0 and *ext (with
 * *scanned true when the directory decided), or a store error. */
int conv_external_now(svc_req *rq, herald_str conv, bool *ext, bool *scanned);

/* jsonargs.c: the arguments of an APP management op — f's body, one JSON
 * object whose keys are all in known (NULL-terminated). NULL when absent,
 * malformed, not an object or with an unknown key: then rq got ERROR INVAL
 * saying which. The caller json_decref()s the result. */
struct json_t;
struct json_t *req_args(svc_req *rq, const herald_frame *f, const char *const *known);
/* Answers APP_RESULT(rid, app) with the JSON document in doc as its body. */
void req_send_doc(svc_req *rq, uint64_t rid, herald_str app, const herald_buf *doc);

/* appreg.c: the registered apps: APP op create | list | login | user_token. */
void app_registry(svc_req *rq, herald_frame *f);
/* True for the ops app_registry answers. */
bool app_registry_op(herald_str op);

/* Periodic work (leader only): urgent reminders (message.c) and due
 * customer takeovers (transfer.c). */
void remind_tick(svc *s);
void transfer_tick(svc *s);

/* cbdeliver.c: the event-callback deliverer. */
typedef struct cbd cbd;
int cbd_create(svc *s, cbd **out);
/* offline.c: the offline-report aggregator. */
typedef struct off_agg off_agg;
int off_create(svc *s, off_agg **out);
void off_destroy(off_agg *g); /* NULL-safe */
void off_stats(const off_agg *g, svc_offline_stats *out);
void cbd_destroy(cbd *d);
void cbd_stats(const cbd *d, svc_cb_stats *out);
/* Events were recorded in group: every idle app is looked at soon. */
void cbd_written(cbd *d, uint32_t group);
/* Whether the event is the callback's app's (tenant, time, subscription;
 * not a message the app sent itself); st is the event's group's store. */
struct store_event;
struct store_callback;
bool cbd_wants(store *st, const struct store_callback *cb, const struct store_event *e);

/* callback.c: APP ops callback, events, redeliver. True when op is one. */
bool callback_op(svc_req *rq, herald_frame *f);

#endif
