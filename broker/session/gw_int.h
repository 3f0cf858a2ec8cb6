/*
 * gw_int.h — gateway internals shared by gw.c (listener, presence),
 * conn.c (socket I/O and limits), handle.c (request handlers) and
 * fanout.c (commit results → acks and pushes). Loop thread only.
 */
#ifndef HERALD_GW_INT_H
#define HERALD_GW_INT_H

#include <ev.h>
#include <herald/protocol.h>
#include <stdbool.h>

#include "gw.h"
#include "gw_tls.h"
#include "hmap.h"
#include "position.h"
#include "store.h"
#include "token.h"
#include "writer.h"

#define GW_MAX_GROUPS 65u /* meta group + up to 64 shard groups */

/* One shard group held by this process: its store and group-commit writer. */
typedef struct shard {
    store *st;             /* the group's LMDB store (borrowed) */
    writer *wr;            /* its writer thread (owned) */
    bool remind_busy;      /* a REMIND command is in flight */
    bool xfer_busy;        /* a TRANSFER_DUE command is in flight (group 0) */
} shard;

struct gw {
    gw_config cfg;         /* copy of the configuration */
    char listen_addr[272]; /* owned copy of cfg.listen */
    struct ev_loop *loop;  /* the loop everything runs on */
    gw_backend be;         /* cluster hooks (all NULL in dev mode) */
    uint8_t slotmap[256];  /* slot → group when has_slotmap (cluster's meta record) */
    bool has_slotmap;      /* else route_conv_group's formula */
    shard *shards;         /* shard groups, index = group id (owned array) */
    uint32_t nshards;      /* number of groups */
    int lfd;               /* listening socket */
    uint16_t port;         /* bound port */
    ev_io accept_w;        /* readable on lfd */
    ev_timer accept_pause; /* resumes accepting after EMFILE and the like */
    ev_prepare flush_w;    /* flushes pending output once per loop iteration */
    ev_timer remind_w;     /* proposes due urgent reminders, every second */
    conn *flush_head;      /* connections with output to flush */
    conn *all_head;        /* every open connection */
    hmap *presence;        /* "tenant\0user" → first conn of that user */
    gw_tls *tls;           /* TLS on the client port (NULL: plain TCP) */
    uint32_t nconns;       /* open connections */
    uint64_t next_conn_id; /* connection ids, for logs */
    bool stopping;         /* gw_destroy in progress */
    ev_tstamp started;     /* loop time at gw_create, for uptime */
};

struct conn {
    gw *g;                 /* owner */
    int fd;                /* socket; -1 once closed */
    uint64_t id;           /* for logs */
    int refs;              /* 1 while open + 1 per pending request */
    char peer[64];         /* "ip:port" for logs */
    ev_io rio;             /* readable */
    ev_io wio;             /* writable (only while output is stuck) */
    ev_timer timer;        /* hello deadline, then idle timeout */
    ev_tstamp last_rx;     /* time of the last frame received */
    herald_buf in;         /* bytes received, not yet a whole frame */
    herald_buf out;        /* encoded frames not yet written */
    size_t out_off;        /* bytes of out already written */
    double tokens;         /* rate-limit bucket */
    double btokens;        /* byte-rate bucket */
    ev_tstamp refill_at;   /* last bucket refill */
    bool authed;           /* HELLO verified */
    uint64_t dnd_until;    /* do-not-disturb ends (ms since epoch; 0 off) */
    uint64_t last_useq[GW_MAX_GROUPS]; /* per group: the pointer-log seq last pushed
                                          (a deposed leader that has not noticed
                                          may publish what its successor does too) */
    bool admin;            /* token has the tenant-admin role */
    bool closing;          /* close once output is flushed */
    bool in_flush;         /* on g->flush_head list */
    char tenant[TOKEN_ID_MAX + 1]; /* from the verified token */
    char user[TOKEN_ID_MAX + 1];   /* from the verified token */
    conn *u_next, *u_prev; /* sessions of the same user (presence list) */
    conn *a_next, *a_prev; /* g->all_head list */
    conn *f_next;          /* g->flush_head list */
    gw_tls_session *tls;   /* TLS session (NULL: plain TCP) */
    bool tls_read_wants_write; /* the handshake inside a read must write first */
    char *token;           /* front end: the session's token (forwarded with every
                              request; the node verifies it) */
    bool held;             /* front end: HELLO forwarded, its answer not back yet;
                              in presence under the token's claimed user so no
                              push slips between the node reading the position
                              and the session starting: pushes wait in held_out */
    herald_buf held_out;   /* encoded pushes kept while held (≤ out_cap) */
    bool held_over;        /* held_out hit the cap: the session must reconnect */
    bool virt;             /* a virtual connection (node mode): no socket */
    void (*vdone)(void *arg, conn *c); /* virtual: runs when refs reach 0 */
    void *varg;            /* for vdone */
};

/* True while replies to c can still be queued. */
static inline bool conn_open(const conn *c) { return c->virt ? !c->closing : c->fd >= 0; }

typedef struct mass_job mass_job;
typedef struct app_job app_job;
typedef struct xfer_job xfer_job;

/* A request waiting for the writer. */
typedef struct pending {
    conn *c;               /* requester (ref held); NULL for the gateway's own */
    uint32_t shard;        /* gateway's own commands: the shard they went to */
    uint64_t rid;          /* request id to echo */
    uint32_t ftype;        /* request frame type */
    uint32_t op;           /* cmd op */
    char conv[TOKEN_ID_MAX + 1]; /* conversation id */
    uint32_t then;         /* a command to submit once this one applied (CONTACT_ADD) */
    char a[TOKEN_ID_MAX + 1]; /* then's first id (employee) */
    char b[TOKEN_ID_MAX + 1]; /* then's second id (customer) */
    mass_job *job;         /* a mass message this command belongs to */
    app_job *app;          /* an app message this command belongs to */
    xfer_job *xfer;        /* a customer transfer this command belongs to */
    bool quiet;            /* bookkeeping: no reply to the requester */
    uint32_t job_slot;     /* its customer / recipient in the job */
} pending;

/* mass.c: a mass message in flight (MASS send). */
void mass_start(conn *c, herald_frame *f);
void mass_status(conn *c, herald_frame *f);
/* fanout.c hands these over: the MASS_MARK outcome, then each send's. */
void mass_marked(gw *g, pending *p, apply_result *res);
void mass_sent(gw *g, pending *p, apply_result *res);

/* app.c: an app message or announcement in flight (APP). */
void app_start(conn *c, herald_frame *f);
/* fanout.c hands these over: the APP_MARK outcome, then each delivery's. */
void app_marked(gw *g, pending *p, apply_result *res);
void app_delivered(gw *g, pending *p, apply_result *res);

/* transfer.c: customer transfer (TRANSFER). */
void transfer_start(conn *c, herald_frame *f);
/* fanout.c hands over the outcome of each step of a transfer job (also the
 * gateway's own, without a requester); p is not freed. */
void transfer_step(gw *g, pending *p, apply_result *res);
/* Proposes TRANSFER_DUE to the meta group when a takeover is due (leader only). */
void transfer_tick(gw *g);

/* gw.c: the shard holding (tenant, conv) and the one holding tenants. */
uint32_t gw_conv_group(gw *g, herald_str tenant, herald_str conv);
shard *gw_shard(gw *g, herald_str tenant, herald_str conv);
store *gw_meta(gw *g);

/* conn.c */
void conn_accept(gw *g, int fd, const char *peer);
void conn_ref(conn *c);
/* Marks c authenticated and switches its timer to the idle timeout. */
void conn_authed(conn *c);
void conn_unref(conn *c);
/* Queues a frame; over the output cap the connection is closed with
 * SLOW_CONSUMER. Returns 0, or HERALD_ECLOSED when the conn is (now) closed. */
int conn_send(conn *c, const herald_frame *f);
/* Queues already-encoded frames (length headers included); same cap. */
int conn_send_raw(conn *c, const void *p, size_t n);
/* Front end, HELLO forwarded: puts c in presence as (tenant, user), the
 * token's unverified claim, and keeps what is pushed to it until
 * conn_hold_end. 0 or HERALD_ENOMEM. */
int conn_hold_begin(conn *c, const char *tenant, const char *user);
/* Keeps a push for a held connection. */
void conn_hold_push(conn *c, const herald_frame *f);
/* The HELLO's answer is in: keep (verified as the claimed user; the kept
 * pushes follow what was just queued) or drop (not verified: out of
 * presence, kept pushes discarded). */
void conn_hold_end(conn *c, bool keep);
/* Closes once what is queued is written (bounded by a short linger). */
void conn_close_after_flush(conn *c);
/* Sends ERROR(code, text, ref). */
int conn_send_error(conn *c, int code, const char *text, uint64_t ref);
/* Sends ERROR and closes after flushing (best effort). */
void conn_fail(conn *c, int code, const char *text);
/* Closes now; idempotent. */
void conn_close(conn *c, const char *why);
/* Writes queued output of every connection on the flush list. */
void conn_flush_all(gw *g);

/* gw.c: presence of authenticated sessions. */
int gw_presence_add(gw *g, conn *c);
void gw_presence_del(gw *g, conn *c);
/* First session of (tenant, user) or NULL; follow u_next. */
conn *gw_presence_first(gw *g, const char *tenant, size_t tlen,
                        const char *user, size_t ulen);

/* handle.c: dispatches one decoded frame from c. */
void handle_frame(conn *c, herald_frame *f);
/* handle.c: answers a committed directory change with the entry (id = the
 * user or department). */
void handle_dir_done(conn *c, uint64_t rid, uint32_t op, const char *id);
/* handle.c: replies TAG_RESULT with the customer's tags. */
void handle_tags_of(conn *c, uint64_t rid, herald_str customer);

/* fanout.c: a submitted command's outcome: the reply to its requester. */
void fanout_done(gw *g, void *cookie, apply_result *res);
/* gw.c: hands an encoded command (taken on success) to group i: its
 * writer thread (dev) or the backend (cluster). */
int gw_submit(gw *g, uint32_t i, herald_buf *cmd, void *cookie);
/* Submits an encoded command (taken) on behalf of c; the reply comes from
 * fanout_done. On failure replies with an ERROR itself. */
void fanout_submit(conn *c, const herald_frame *req, uint32_t op,
                   herald_buf *cmdbuf, const char *conv);
/* The same for a command that belongs to a given shard (user state: 0).
 * Returns the pending request (NULL when it failed and ERROR was sent). */
pending *fanout_submit_to(conn *c, const herald_frame *req, uint32_t op, herald_buf *cmdbuf,
                          const char *conv, shard *sh);
/* Replies CONV_RESULT for conv or an ERROR. check: only members and admins
 * may see it (false right after c changed the membership, e.g. left). */
void fanout_conv_info(conn *c, uint64_t rid, herald_str conv, bool check);

/* True when a message with msg_flags should reach c silently (its user is
 * in do-not-disturb and the message is not urgent). */
bool conn_silenced(const conn *c, uint32_t msg_flags, uint64_t now_ms);


/* fanout.c: proposes CMD_REMIND to every shard with reminders due. */
void fanout_remind_tick(gw *g);

/* Milliseconds since the Unix epoch (real time, for commit timestamps). */
uint64_t gw_now_ms(void);

#endif
